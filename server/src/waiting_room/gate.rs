//! The gate in front of the line: bans (by fingerprint or address, shared through Redis),
//! the join rate limits, and proof of work when the operator turns it on.

use super::*;

impl WaitingRoom {
    /// Loads stored bans: (kind, value) with kind FINGERPRINT (value the hash) or IP.
    pub fn load_bans(&self, bans: &[(String, String)]) {
        if let Ok(mut set) = self.bans.lock() {
            for (kind, value) in bans {
                match kind.as_str() {
                    "FINGERPRINT" => {
                        set.fingerprints.insert(value.clone());
                    }
                    "IP" => {
                        if let Ok(ip) = value.parse() {
                            set.ips.insert(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Bans a fingerprint hash or an address: matching entries leave every queue and their
    /// joins are refused. Returns the number of entries removed.
    pub async fn ban(&self, fingerprint_hash: Option<&str>, ip: Option<IpAddr>) -> ApiResult<u64> {
        if let Ok(mut set) = self.bans.lock() {
            if let Some(fp) = fingerprint_hash {
                set.fingerprints.insert(fp.to_string());
            }
            if let Some(ip) = ip {
                set.ips.insert(ip);
            }
        }
        if let Some(shared) = &self.shared {
            // Every node refuses the ban's joins from its next refresh on.
            let (fps, ips) = super::keys::ban_keys(&shared.namespace);
            let mut additions: Vec<(String, String)> = Vec::with_capacity(2);
            if let Some(fp) = fingerprint_hash {
                additions.push((fps, fp.to_string()));
            }
            if let Some(ip) = ip {
                additions.push((ips, ip.to_string()));
            }
            // The two sets are on different Redis Cluster slots: one command per slot.
            shared
                .conn
                .per_slot::<_, redis::Value>(
                    &additions,
                    |(set, _)| set,
                    |pipe, (set, member)| {
                        pipe.sadd(set, member);
                    },
                    &[],
                )
                .await
                .map_err(unavailable)?;
        }
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let mut removed = 0;
        for room in rooms {
            let matching: Vec<u64> = {
                let Ok(inner) = room.inner.lock() else {
                    continue;
                };
                let mut matching: Vec<u64> = Vec::new();
                if let Some(fp) = fingerprint_hash {
                    matching.extend(inner.by_fingerprint.get(fp).copied());
                }
                if let Some(ip) = ip {
                    matching.extend(
                        inner
                            .entries
                            .iter()
                            .filter(|(_, e)| e.ip == Some(ip))
                            .map(|(id, _)| *id),
                    );
                }
                matching.retain(|id| inner.is_live(*id));
                matching
            };
            removed += self.remove(&room.event_id, &matching, "banned").await?;
        }
        Ok(removed)
    }

    /// Removes live entries (left, banned, paid); returns how many were still live.
    pub(super) async fn remove(&self, event_id: &str, ids: &[u64], reason: &str) -> ApiResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        if let Some(shared) = &self.shared {
            let mut args = vec![reason.to_string()];
            args.extend(ids.iter().map(u64::to_string));
            let removed: u64 = shared
                .run(&shared.scripts.remove, event_id, &[], &args)
                .await?;
            return Ok(removed);
        }
        let Some(room) = self.known_room(event_id) else {
            return Ok(0);
        };
        let mut removed = 0;
        {
            let mut inner = lock(&room)?;
            for id in ids {
                if inner.remove_entry(*id) {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Reads the bans every node shares (distributed backend).
    pub(super) async fn refresh_bans(&self, shared: &Shared) -> ApiResult<()> {
        let (fps, ips) = super::keys::ban_keys(&shared.namespace);
        let mut sets = shared
            .conn
            .per_slot::<_, Vec<String>>(
                &[fps, ips],
                String::as_str,
                |pipe, set| {
                    pipe.smembers(set);
                },
                &[],
            )
            .await
            .map_err(unavailable)?
            .into_iter();
        let (fingerprints, addresses) = (
            sets.next().unwrap_or_default(),
            sets.next().unwrap_or_default(),
        );
        if let Ok(mut set) = self.bans.lock() {
            set.fingerprints.extend(fingerprints);
            set.ips
                .extend(addresses.iter().filter_map(|ip| ip.parse::<IpAddr>().ok()));
        }
        Ok(())
    }

    pub(super) fn check_banned(&self, fp: &str, ip: Option<IpAddr>) -> ApiResult<()> {
        let banned = self
            .bans
            .lock()
            .map(|b| b.fingerprints.contains(fp) || ip.is_some_and(|ip| b.ips.contains(&ip)))
            .unwrap_or(false);
        if banned {
            return Err(ApiError::PermissionDenied(
                "this device or network address is banned from the queue".into(),
            ));
        }
        Ok(())
    }

    /// Counts a join against the caller's address and fingerprint.
    pub(super) async fn check_rate(&self, fp: &str, ip: Option<IpAddr>, now: i64) -> ApiResult<()> {
        self.join_limiter
            .check(fp, ip, now)
            .await
            .map_err(|wait| ApiError::ResourceExhausted {
                message: "too many joins from this device or address; wait a moment and try again"
                    .into(),
                retry_after_ms: wait,
            })
    }

    /// Checks a proof of work, or says which challenge to solve.
    pub(super) fn check_pow(
        &self,
        event_id: &str,
        fp: &str,
        bits: u32,
        solution: Option<&(String, String)>,
        now: i64,
    ) -> ApiResult<Option<pb::PowChallenge>> {
        if bits == 0 {
            return Ok(None);
        }
        let fresh = || {
            let exp = now + CHALLENGE_TTL_MS;
            let challenge = self.signer.sign(
                TokenKind::Challenge,
                &ChallengeClaims {
                    ev: event_id.to_string(),
                    fp: fp.to_string(),
                    bits,
                    exp,
                },
            );
            Some(pb::PowChallenge {
                challenge,
                difficulty_bits: bits,
                expires_at_unix_ms: exp,
            })
        };
        let Some((challenge, nonce)) = solution else {
            return Ok(fresh());
        };
        let claims: ChallengeClaims = match self.signer.verify(TokenKind::Challenge, challenge) {
            Ok(claims) => claims,
            Err(_) => return Ok(fresh()),
        };
        if claims.ev != event_id || claims.fp != fp || claims.exp <= now || claims.bits < bits {
            return Ok(fresh());
        }
        if nonce.len() > 32 || pow_zero_bits(challenge, nonce) < bits {
            return Err(ApiError::FailedPrecondition(format!(
                "the proof-of-work answer is wrong: SHA-256(challenge \":\" nonce) needs {bits} leading zero bits"
            )));
        }
        Ok(None)
    }
}
