//! The operators' controls: a sale's state, the admission valve (fixed or automatic),
//! alerts to every watcher, and the queue's figures.

use taquilla_proto::fairness::{self, ShuffleSecret};

use super::replies::SaleReply;
use super::*;

impl WaitingRoom {
    /// Applies a sale change made by an operator (already stored); opening now shuffles the
    /// pre-queue and returns the revealed seed (hex).
    pub async fn set_sale(
        self: &Arc<Self>,
        event: &EventRecord,
        state: SaleState,
        phase: SalePhase,
        opens_at_ms: i64,
        presale_codes: &[String],
    ) -> ApiResult<Option<String>> {
        let room = self.room(event).await?;
        if let Some(shared) = &self.shared {
            let codes = serde_json::to_string(presale_codes).unwrap_or_else(|_| "[]".into());
            let args = [
                state.as_db().to_string(),
                phase.as_db().to_string(),
                opens_at_ms.to_string(),
                codes,
            ];
            for _ in 0..2 {
                let answer: String = shared
                    .run(&shared.scripts.sale, &event.id, &[], &args)
                    .await?;
                match SaleReply::parse(&answer)? {
                    SaleReply::NeedsOpen => {
                        return self
                            .open_shared(shared, &room, phase, opens_at_ms, presale_codes)
                            .await;
                    }
                    SaleReply::Missing => shared.init(event, self.clock.now_ms()).await?,
                    SaleReply::Changed => return Ok(None),
                }
            }
            return Err(ApiError::Unavailable(
                "the waiting room's store lost the queue; retry".into(),
            ));
        }
        let mut inner = lock(&room)?;
        inner.phase = phase;
        inner.opens_at_ms = opens_at_ms;
        inner.presale_codes = presale_codes.iter().cloned().collect();
        let opening = state == SaleState::Open && inner.sale == SaleState::NotOpen;
        if !opening {
            inner.sale = state;
        }
        drop(inner);
        let seed = if opening {
            self.open_embedded(&room, self.clock.now_ms())?
        } else {
            None
        };
        room.sale_changed();
        Ok(seed)
    }

    /// Opens an embedded room's sale: the pre-queue's manifest, the shuffle keyed by the
    /// committed seed and the manifest's digest. Returns the revealed seed (hex), or `None`
    /// when the sale was not waiting to open.
    pub(super) fn open_embedded(&self, room: &Room, now: i64) -> ApiResult<Option<String>> {
        let commitment = room.secret.commitment();
        // The manifest's lines cost a signature and a hash each: made for the pre-queue as it
        // is outside the lock, then completed under it for whoever joined meanwhile.
        let prequeue: Vec<(u64, String, i64)> = {
            let inner = lock(room)?;
            inner
                .prequeue
                .iter()
                .filter_map(|id| inner.entries.get(id).map(|e| (*id, e.fp.clone(), e.iat)))
                .collect()
        };
        let lines: HashMap<u64, Bytes32> = prequeue
            .into_iter()
            .map(|(id, fp, iat)| {
                let line = self.manifest_line(&commitment, &room.event_id, id, &fp, iat);
                (id, line)
            })
            .collect();
        let mut inner = lock(room)?;
        if inner.sale != SaleState::NotOpen {
            return Ok(None);
        }
        let mut manifest = Vec::with_capacity(inner.prequeue.len());
        for id in &inner.prequeue {
            let entry = inner
                .entries
                .get(id)
                .ok_or_else(|| ApiError::Internal(format!("pre-queue entry {id} has no record")))?;
            let line = match lines.get(id) {
                Some(line) => *line,
                None => self.manifest_line(&commitment, &room.event_id, *id, &entry.fp, entry.iat),
            };
            manifest.push((line, tier_byte(entry.tier)));
        }
        let opening = fairness::open(&room.secret, manifest);
        inner.open(opening.key, now);
        // A room opens once: the cell is empty here.
        let _ = room.manifest.set(Arc::new(Manifest {
            entries: opening.entries,
            digest: opening.digest,
        }));
        Ok(Some(hex::encode(room.secret.seed)))
    }

    /// A fan's line in the manifest: the hash of the queue token they hold.
    pub(super) fn manifest_line(
        &self,
        commitment: &Bytes32,
        event_id: &str,
        id: u64,
        fp: &str,
        iat: i64,
    ) -> Bytes32 {
        fairness::manifest_entry(commitment, &self.queue_token(event_id, id, fp, iat))
    }

    /// The proof of `event`'s shuffle: the commitment; once the sale has opened, the seed,
    /// nonce and manifest too.
    pub async fn shuffle_proof(self: &Arc<Self>, event: &EventRecord) -> ApiResult<ShuffleProof> {
        let Some(secret) = &event.shuffle_secret else {
            return Err(ApiError::FailedPrecondition(format!(
                "the sale of {:?} opened before shuffles were committed; it has no proof",
                event.id
            )));
        };
        let room = self.room(event).await?;
        let opened = lock(&room)?.sale != SaleState::NotOpen;
        let commitment = secret.commitment();
        if !opened {
            return Ok(ShuffleProof {
                commitment,
                revealed: None,
            });
        }
        let manifest = room
            .manifest
            .get_or_try_init(|| async {
                match &self.shared {
                    Some(shared) => shared.manifest(&event.id).await,
                    None => Err(ApiError::FailedPrecondition(format!(
                        "this server restarted since the sale of {:?} opened, and the embedded \
                         waiting room kept its pre-queue's manifest in memory only",
                        event.id
                    ))),
                }
            })
            .await?
            .clone();
        Ok(ShuffleProof {
            commitment,
            revealed: Some(Revealed {
                seed: secret.seed,
                nonce: secret.nonce,
                manifest,
            }),
        })
    }

    /// Changes the admission valve live.
    pub async fn set_admission(
        self: &Arc<Self>,
        event: &EventRecord,
        settings: AdmissionSettings,
    ) -> ApiResult<()> {
        let room = self.room(event).await?;
        let now = self.clock.now_ms();
        if let Some(shared) = &self.shared {
            return shared.set_admission(&event.id, &settings, now).await;
        }
        let mut inner = lock(&room)?;
        if settings.auto && !inner.admission.auto {
            inner.valve = AutoValve::default();
        }
        inner.admission = settings;
        inner
            .bucket
            .set(settings.rate_per_minute, settings.burst, now);
        Ok(())
    }

    /// Sends an alert to everyone in the queue.
    pub async fn broadcast(
        self: &Arc<Self>,
        event: &EventRecord,
        message: &str,
        severity: pb::AlertSeverity,
    ) -> ApiResult<pb::Alert> {
        let room = self.room(event).await?;
        let now = self.clock.now_ms();
        if let Some(shared) = &self.shared {
            let args = [
                i32::from(severity).to_string(),
                now.to_string(),
                message.to_string(),
            ];
            let id: u64 = shared
                .run(&shared.scripts.alert, &event.id, &[], &args)
                .await?;
            return Ok(pb::Alert {
                id,
                message: message.to_string(),
                severity: severity.into(),
                sent_at_unix_ms: now,
            });
        }
        let mut inner = lock(&room)?;
        let alert = pb::Alert {
            id: inner.next_alert,
            message: message.to_string(),
            severity: severity.into(),
            sent_at_unix_ms: now,
        };
        inner.next_alert += 1;
        inner.alert = Some(alert.clone());
        drop(inner);
        let _ = room.alerts.send(alert.clone());
        Ok(alert)
    }

    /// The queue's figures (distributed: from this node's replica; watchers on this node).
    pub async fn stats(self: &Arc<Self>, event: &EventRecord) -> ApiResult<RoomStats> {
        let room = self.room(event).await?;
        let inner = lock(&room)?;
        let waiting = [
            inner.order.len_tier(0),
            inner.order.len_tier(1),
            inner.order.len_tier(2),
        ];
        let total: u64 = waiting.iter().sum();
        Ok(RoomStats {
            prequeue: inner.prequeue.len() as u64,
            waiting,
            active: inner.active.len() as u64,
            admitted_total: inner.admitted_total,
            admitted_per_minute: inner.rate.per_minute(),
            eta_last_seconds: inner.eta(total, self.clock.now_ms()),
            watchers: inner.watchers,
            shuffle_seed: inner.seed.map(|s| format!("{s:016x}")),
            auto_limit: inner.admission.auto.then(|| inner.buyers_allowed()),
        })
    }

    /// The automatic valves of this node's events follow the sales path: called once a second
    /// with what the sales path did in that second ([`crate::domain::valve`]).
    /// The room's looks at waiting fans' places follow it too (buyers first).
    pub async fn tune_valves(self: &Arc<Self>, feedback: &SalesFeedback) {
        let was = u32::try_from(self.look_stretch.get()).unwrap_or(1);
        let stretch = crate::domain::push::next_stretch(was, feedback);
        self.look_stretch.set(i64::from(stretch));
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        // The valves on this node share its sales path: each opens by a tenth of their mean
        // limit (additive increase), so they converge on equal shares (domain::valve).
        let tuned = |inner: &Inner| inner.admission.auto && inner.sale == SaleState::Open;
        let limits: Vec<f64> = rooms
            .iter()
            .filter_map(|room| {
                let inner = room.inner.lock().ok()?;
                tuned(&inner).then(|| inner.valve.raw_limit())
            })
            .collect();
        let shared_mean = limits.iter().sum::<f64>() / limits.len().max(1) as f64;
        for room in rooms {
            let limit = {
                let Ok(mut inner) = room.inner.lock() else {
                    continue;
                };
                inner.look_stretch = stretch;
                if !tuned(&inner) {
                    continue;
                }
                let (active, cap) = (inner.active.len() as u64, inner.admission.max_active);
                inner.valve.update(feedback, active, cap, shared_mean)
            };
            if let Some(shared) = &self.shared
                && let Err(e) = shared.set_auto_limit(&room.event_id, limit).await
            {
                tracing::debug!(event = %room.event_id, error = %e, "automatic valve not written");
            }
        }
    }
}

/// The event's committed shuffle secret. An event that has none (its record predates
/// commitments and its sale was not open when the server last started, so it was not given
/// one) is shuffled with a fresh secret nobody saw a commitment to, as before commitments.
pub(super) fn shuffle_secret(event: &EventRecord) -> ShuffleSecret {
    event.shuffle_secret.clone().unwrap_or_else(|| {
        tracing::warn!(event = %event.id, "no shuffle commitment: opening with an uncommitted seed");
        ShuffleSecret {
            seed: rand::random(),
            nonce: rand::random(),
        }
    })
}

/// A tier as the manifest carries it.
pub(super) fn tier_byte(tier: usize) -> u8 {
    u8::try_from(tier.min(VIP)).unwrap_or(0)
}
