//! The pump: every [`PUMP_INTERVAL`] it opens scheduled sales, frees lapsed slots, drops
//! entries past their grace and admits from the front, in process or through the Redis scripts
//! (with this node's heartbeat).

use taquilla_proto::fairness::{self, Bytes32};

use super::replies::OpenReply;
use super::shared::unavailable;
use super::*;

impl WaitingRoom {
    /// One admission step for every event: opens scheduled sales, admits fans, frees slots and
    /// removes entries past the grace period.
    pub async fn pump(self: &Arc<Self>) {
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let now = self.clock.now_ms();
        for room in rooms {
            if let Some(shared) = &self.shared {
                if let Err(e) = self.step_shared(shared, &room, now).await {
                    tracing::debug!(event = %room.event_id, error = %e, "admission step failed");
                }
            } else {
                let due = room.inner.lock().is_ok_and(|inner| inner.open_is_due(now));
                let opened = due && matches!(self.open_embedded(&room, now), Ok(Some(_)));
                if let Ok(mut inner) = room.inner.lock() {
                    self.step(&room.event_id, &mut inner, now);
                }
                if opened {
                    room.sale_changed();
                }
            }
            // Positions moved with this step (here, or in Redis and the replica): tell the
            // watchers that are due and whose place moved visibly.
            if let Ok(mut inner) = room.inner.lock() {
                inner.look(now);
            }
        }
    }

    /// One embedded admission step (a sale due to open was opened just before).
    pub(super) fn step(&self, event_id: &str, inner: &mut Inner, now: i64) {
        // Free the slots of no-shows and expired passes.
        let expired: Vec<u64> = inner
            .active
            .iter()
            .copied()
            .filter(|id| {
                inner
                    .entries
                    .get(id)
                    .and_then(|e| e.admission.as_ref())
                    .is_none_or(|a| {
                        a.pass_exp_ms <= now || (!a.started && a.hold_deadline_ms <= now)
                    })
            })
            .collect();
        for id in expired {
            inner.expire_entry(id);
        }
        // Grace period: entries nobody watches are removed.
        // Only waiting entries lapse; one admitted meanwhile leaves the set (its pass and
        // no-show window decide for it).
        let grace = self.timings.grace.as_millis() as i64;
        let mut lapsed = Vec::new();
        while let Some(&(since, id)) = inner.detached.first() {
            if since + grace > now {
                break;
            }
            inner.detached.pop_first();
            if inner.entries.get(&id).is_some_and(|e| {
                matches!(e.state, EntryState::Waiting | EntryState::Prequeue)
                    && e.detached_at_ms == Some(since)
            }) {
                lapsed.push(id);
            }
        }
        for id in lapsed {
            inner.remove_entry(id);
        }
        inner.rate.tick(now);
        if inner.sale != SaleState::Open {
            return;
        }
        let min_tier = inner.min_tier();
        let eligible: u64 = (min_tier..3).map(|t| inner.order.len_tier(t)).sum();
        let room_left = u64::from(inner.buyers_allowed()).saturating_sub(inner.active.len() as u64);
        let wanted = eligible.min(room_left);
        if wanted == 0 {
            return;
        }
        let n = inner.bucket.take(wanted, now);
        let pass_exp = now + self.timings.pass_ttl.as_millis() as i64;
        let deadline = now + self.timings.no_show.as_millis() as i64;
        for _ in 0..n {
            let Some((_, seq)) = inner.order.front(min_tier) else {
                break;
            };
            let Some(id) = inner.by_seq.get(&seq).copied() else {
                break;
            };
            let fp = inner
                .entries
                .get(&id)
                .map(|e| e.fp.clone())
                .unwrap_or_default();
            let admission = self.admission(event_id, id, &fp, now, pass_exp, deadline);
            inner.admit_entry(id, admission);
        }
        inner.rate.record(n, now);
    }

    /// The distributed step: Redis decides (atomically, whichever node runs it); the log tells
    /// every replica. Once a second this node also says it is alive, counts dead nodes' streams
    /// as closed, reads the shared bans and opens a scheduled sale that is due.
    pub(super) async fn step_shared(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        room: &Arc<Room>,
        now: i64,
    ) -> ApiResult<()> {
        shared.flush_streams(&room.event_id, now).await?;
        let args = [
            now.to_string(),
            self.timings.pass_ttl.as_millis().to_string(),
            self.timings.no_show.as_millis().to_string(),
            self.timings.grace.as_millis().to_string(),
            shared::STEP_BATCH.to_string(),
        ];
        let _: Vec<i64> = shared
            .run(&shared.scripts.step, &room.event_id, &[], &args)
            .await?;
        let due_open = {
            let mut inner = lock(room)?;
            inner.rate.tick(now);
            inner.open_is_due(now)
        };
        if due_open {
            let (phase, opens_at, codes) = {
                let inner = lock(room)?;
                (
                    inner.phase,
                    inner.opens_at_ms,
                    inner.presale_codes.iter().cloned().collect::<Vec<_>>(),
                )
            };
            self.open_shared(shared, room, phase, opens_at, &codes)
                .await?;
        }
        let second = now / 1_000;
        if shared
            .beat
            .swap(second, std::sync::atomic::Ordering::Relaxed)
            != second
        {
            self.heartbeat(shared, &room.event_id, now).await?;
            self.refresh_bans(shared).await?;
        }
        Ok(())
    }

    /// Says this node is alive for an event, and closes the streams of nodes that are not.
    pub(super) async fn heartbeat(
        &self,
        shared: &Shared,
        event_id: &str,
        now: i64,
    ) -> ApiResult<()> {
        let keys = shared.keys(event_id);
        let nodes = &keys.nodes();
        let mut conn = shared.conn.clone();
        let lease = shared::NODE_LEASE.as_millis() as i64;
        let (dead,): (Vec<String>,) = redis::pipe()
            .cmd("ZADD")
            .arg(nodes)
            .arg("GT")
            .arg(now)
            .arg(&shared.node)
            .ignore()
            .zrangebyscore(nodes, "-inf", now - lease)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        for node in dead {
            // Whoever removes the dead node counts its streams as closed (once).
            let claimed: i64 = conn.zrem(nodes, &node).await.map_err(unavailable)?;
            if claimed == 0 {
                continue;
            }
            tracing::info!(event = %event_id, node = %node, "a node went silent: its streams count as closed");
            let key = keys.node_streams(&node);
            let mut cursor = "0".to_string();
            for _ in 0..100_000 {
                let args = [now.to_string(), cursor.clone()];
                cursor = shared
                    .run(
                        &shared.scripts.detach,
                        event_id,
                        std::slice::from_ref(&key),
                        &args,
                    )
                    .await?;
                if cursor == "0" {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Opens a sale in Redis: the pre-queue shuffled by the committed seed and its manifest
    /// (kept in Redis beside the queue). Returns the revealed seed (hex), or `None` when the
    /// sale was already open (another node opened it).
    pub(super) async fn open_shared(
        &self,
        shared: &Shared,
        room: &Room,
        phase: SalePhase,
        opens_at_ms: i64,
        codes: &[String],
    ) -> ApiResult<Option<String>> {
        let event_id = room.event_id.as_str();
        let keys = shared.keys(event_id);
        let codes = serde_json::to_string(codes).unwrap_or_else(|_| "[]".into());
        let secret = &room.secret;
        let commitment = secret.commitment();
        let mut conn = shared.conn.clone();
        // Each entry's manifest line, made once: a join that lands between reading the
        // pre-queue and opening makes the script refuse, and the next try reads only the
        // newcomers' records.
        let mut lines: HashMap<String, (Bytes32, u8)> = HashMap::new();
        for _ in 0..20 {
            let prequeue: Vec<String> = conn
                .zrange(keys.prequeue(), 0, -1)
                .await
                .map_err(unavailable)?;
            let missing: Vec<&String> = prequeue
                .iter()
                .filter(|id| !lines.contains_key(*id))
                .collect();
            for chunk in missing.chunks(5_000) {
                let records: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(keys.entries())
                    .arg(chunk)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                for (id, record) in chunk.iter().zip(records) {
                    // Left since the pre-queue was read: the script will say it is stale.
                    let Some(record) = record else { continue };
                    let (tier, iat, fp) = entry_record(&record).ok_or_else(|| {
                        ApiError::Internal(format!("entry {id}'s record is malformed: {record:?}"))
                    })?;
                    let numeric: u64 = id.parse().map_err(|_| {
                        ApiError::Internal(format!("pre-queue entry id {id:?} is not a number"))
                    })?;
                    let line = self.manifest_line(&commitment, event_id, numeric, fp, iat);
                    lines.insert((*id).clone(), (line, control::tier_byte(tier)));
                }
            }
            let Some(manifest) = prequeue
                .iter()
                .map(|id| lines.get(id).copied())
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            let opening = fairness::open(secret, manifest);
            let mut shuffled = prequeue;
            shuffle(&mut shuffled, opening.key);
            let mut blob = Vec::with_capacity(opening.entries.len() * fairness::ENTRY_BYTES);
            for entry in &opening.entries {
                entry.encode(&mut blob);
            }
            let mut args = vec![
                format!("{:016x}", opening.key),
                phase.as_db().to_string(),
                opens_at_ms.to_string(),
                codes.clone(),
                shuffled.len().to_string(),
            ];
            args.extend(shuffled);
            args.push(hex::encode(blob));
            let reply: Vec<String> = shared
                .run(&shared.scripts.open, event_id, &[keys.manifest()], &args)
                .await?;
            match OpenReply::parse(&reply)? {
                OpenReply::Opened { .. } => return Ok(Some(hex::encode(secret.seed))),
                OpenReply::Stale => continue,
                OpenReply::NotPending(_) => return Ok(None),
            }
        }
        Err(ApiError::Unavailable(
            "the queue kept changing while opening the sale; retry".into(),
        ))
    }

    /// Runs the pump until shutdown.
    pub async fn run(self: Arc<Self>, mut stopping: Shutdown) {
        let mut ticker = tokio::time::interval(PUMP_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stop = tokio::select! {
                _ = ticker.tick() => false,
                () = stopping.started() => true,
            };
            if stop {
                break;
            }
            self.pump().await;
        }
        if let Some(shared) = &self.shared {
            let _ = shared.stop.send(true);
        }
    }
}

/// An entry's tier, join time and fingerprint hash from its record in Redis
/// (`state|tier|seq|iat|fp`).
fn entry_record(record: &str) -> Option<(usize, i64, &str)> {
    let mut fields = record.splitn(5, '|');
    let _state = fields.next()?;
    let tier = fields.next()?.parse().ok()?;
    let _seq = fields.next()?;
    let iat = fields.next()?.parse().ok()?;
    Some((tier, iat, fields.next()?))
}
