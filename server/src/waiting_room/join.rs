//! Joining the line (one place per fingerprint, the presale codes, the full line's return
//! slots) and leaving it; reading a queue token's claims.

use super::replies::JoinReply;
use super::*;

impl WaitingRoom {
    /// Joins `event`'s queue.
    pub async fn join(
        self: &Arc<Self>,
        event: &EventRecord,
        input: &JoinInput,
    ) -> ApiResult<Joined> {
        let fingerprint = input.fingerprint.as_str();
        let presale_code = input.presale_code.as_str();
        if fingerprint.is_empty()
            || fingerprint.len() > 128
            || fingerprint.chars().any(char::is_control)
        {
            return Err(ApiError::InvalidArgument(
                "fingerprint must be 1 to 128 printable characters".into(),
            ));
        }
        let room = self.room(event).await?;
        let now = self.clock.now_ms();
        let fp = sha256_hex(fingerprint);
        self.check_banned(&fp, input.ip)?;
        // A join the node cannot take now is turned away before it spends the fan's rate
        // limit: being told to come back must not make coming back slower.
        if let Some(shared) = &self.shared {
            shared.check_join_line(&event.id, now)?;
        }
        self.check_rate(&fp, input.ip, now).await?;
        let (shared, tier, pow_bits, challenge, pow_done) = {
            let mut inner = lock(&room)?;
            match inner.sale {
                SaleState::Closed => return Err(sale_ended(&event.id, SaleState::Closed)),
                SaleState::SoldOut => return Err(sale_ended(&event.id, SaleState::SoldOut)),
                _ => {}
            }
            let tier = if presale_code.is_empty() {
                GENERAL
            } else if inner.presale_codes.contains(presale_code)
                || event.presale_codes.iter().any(|c| c == presale_code)
            {
                if presale_code.starts_with("VIP") {
                    VIP
                } else {
                    PRESALE
                }
            } else {
                return Err(ApiError::InvalidArgument(
                    "the presale code is not valid for this event".into(),
                ));
            };
            let existing = inner
                .by_fingerprint
                .get(&fp)
                .copied()
                .filter(|id| inner.is_live(*id));
            if self.shared.is_none()
                && let Some(id) = existing
            {
                let token = inner
                    .entries
                    .get(&id)
                    .map(|e| self.queue_token(&event.id, id, &e.fp, e.iat))
                    .unwrap_or_default();
                let view = inner
                    .view(&event.id, id, now)
                    .ok_or_else(|| ApiError::Internal("entry vanished".into()))?;
                return Ok(Joined::Placed(token, view.status));
            }
            let pow_bits = inner.admission.pow_difficulty;
            let challenge = if existing.is_some() {
                None
            } else {
                self.check_pow(&event.id, &fp, pow_bits, input.pow.as_ref(), now)?
            };
            // A new entry needs the work done; the replica's word that one exists may be stale.
            let pow_done = challenge.is_none() && (existing.is_none() || pow_bits == 0);
            let Some(shared) = self.shared.clone() else {
                if let Some(challenge) = challenge {
                    return Ok(Joined::Challenge(challenge));
                }
                let id = inner.next_entry + 1;
                let seq = if matches!(inner.sale, SaleState::Open | SaleState::Paused) {
                    inner.next_seq + 1
                } else {
                    0
                };
                inner.add_entry(id, tier, seq, fp.clone(), now, input.ip);
                inner.detached.insert((now, id));
                let view = inner
                    .view(&event.id, id, now)
                    .ok_or_else(|| ApiError::Internal("entry vanished".into()))?;
                drop(inner);
                return Ok(Joined::Placed(
                    self.queue_token(&event.id, id, &fp, now),
                    view.status,
                ));
            };
            (shared, tier, pow_bits, challenge, pow_done)
        };
        let args = || {
            [
                fp.clone(),
                tier.to_string(),
                now.to_string(),
                input
                    .ip
                    .map_or_else(|| "-".to_string(), |ip| ip.to_string()),
                if pow_done { "1" } else { "0" }.to_string(),
            ]
        };
        let mut reply = JoinReply::parse(&shared.join(&event.id, args()).await?)?;
        if reply == JoinReply::Missing {
            // Redis lost the event's queue (restarted without persistence): start it again.
            shared.init(event, now).await?;
            reply = JoinReply::parse(&shared.join(&event.id, args()).await?)?;
        }
        let placed = match reply {
            JoinReply::Ended(state) => return Err(sale_ended(&event.id, state)),
            JoinReply::Challenge => {
                // The replica did not know the entry yet; a solved challenge joins.
                let challenge = match challenge {
                    Some(challenge) => challenge,
                    None => self
                        .check_pow(&event.id, &fp, pow_bits.max(1), None, now)?
                        .ok_or_else(|| ApiError::Internal("no challenge made".into()))?,
                };
                return Ok(Joined::Challenge(challenge));
            }
            JoinReply::Missing => {
                return Err(ApiError::Internal(
                    "the join script answered \"missing\" twice".into(),
                ));
            }
            JoinReply::Placed(placed) => placed,
        };
        let id = placed.id;
        let state = match placed.state.as_str() {
            "P" => pb::QueueState::Prequeue,
            "W" => pb::QueueState::Waiting,
            "A" | "S" => pb::QueueState::Admitted,
            "X" => pb::QueueState::Expired,
            _ => pb::QueueState::Removed,
        };
        let tier = placed.tier.min(VIP);
        let iat = placed.iat;
        let position = placed.position;
        let inner = lock(&room)?;
        let initial_position = inner
            .entries
            .get(&id)
            .filter(|e| e.fp == fp)
            .map_or(position, |e| e.initial_position);
        let eta_seconds = inner.eta(position, self.clock.now_ms());
        let status = pb::QueueStatus {
            event_id: event.id.clone(),
            state: state.into(),
            position,
            waiting_total: placed.waiting_total,
            eta_seconds,
            tier: tier_of(tier).into(),
            initial_position,
            sale_opens_at_unix_ms: inner.opens_at_ms,
            sale_paused: inner.sale == SaleState::Paused,
            shuffle_commitment: inner.commitment_for(state),
        };
        Ok(Joined::Placed(
            self.queue_token(&event.id, id, &fp, iat),
            status,
        ))
    }

    pub(super) fn claims(&self, token: &str) -> ApiResult<(QueueClaims, u64)> {
        let claims: QueueClaims = self
            .signer
            .verify(TokenKind::Queue, token)
            .map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
        let id = claims.en.parse().map_err(|_| {
            ApiError::Unauthenticated("the queue token is not in the expected format".into())
        })?;
        Ok((claims, id))
    }

    /// The event a queue token is for.
    pub fn token_event(&self, token: &str) -> ApiResult<String> {
        Ok(self.claims(token)?.0.ev)
    }

    /// Leaves the queue at once (an admitted fan frees the slot).
    pub async fn leave(self: &Arc<Self>, event: &EventRecord, token: &str) -> ApiResult<()> {
        let (claims, id) = self.claims(token)?;
        if claims.ev != event.id {
            return Err(ApiError::InvalidArgument(
                "the queue token is for another event".into(),
            ));
        }
        self.room(event).await?;
        self.remove(&event.id, &[id], "left").await?;
        Ok(())
    }
}
