//! On Redis, each node follows an event's log and replays it into its own in-memory queue
//! ([`Inner`]), from which it answers its own watchers' positions.

use super::*;

impl WaitingRoom {
    /// Follows an event's log into this node's replica until the waiting room stops.
    pub(super) async fn follow(self: Arc<Self>, shared: Arc<Shared>, room: Arc<Room>) {
        let key = shared.keys(&room.event_id).log();
        let mut stop = shared.stop.subscribe();
        let mut last = "0-0".to_string();
        let mut conn = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let connection = match &mut conn {
                Some(connection) => connection,
                None => match shared.blocking_connection().await {
                    Ok(connection) => conn.insert(connection),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach Redis to follow the queue");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = stop.wait_for(|s| *s) => return,
                        }
                        continue;
                    }
                },
            };
            let read = tokio::select! {
                read = Shared::read_log(connection, &key, &last) => read,
                _ = stop.wait_for(|s| *s) => return,
            };
            match read {
                Ok(Some(reply)) => {
                    for stream in reply.keys {
                        self.apply(&room, stream.ids.iter().map(|e| &e.map));
                        if let Some(id) = stream.ids.last() {
                            last = id.id.clone();
                            room.applied.send_replace(shared::log_id(&last));
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "lost Redis while following the queue; reconnecting");
                    conn = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Applies log entries to this node's replica; a change of the sale wakes its watchers.
    pub(super) fn apply<'a>(
        &self,
        room: &Room,
        entries: impl Iterator<Item = &'a HashMap<String, redis::Value>>,
    ) {
        let now = self.clock.now_ms();
        let mut alerts = Vec::new();
        let mut sale_changed = false;
        let known = {
            let Ok(mut inner) = room.inner.lock() else {
                return;
            };
            for fields in entries {
                let Some(changes) = shared::parse(fields) else {
                    tracing::warn!(event = %room.event_id, "skipped an unreadable queue log entry");
                    continue;
                };
                for change in changes {
                    match change {
                        Change::Init {
                            sale,
                            phase,
                            opens_at_ms,
                            admission,
                            seed,
                            codes,
                        } => {
                            sale_changed = true;
                            // The queue starts (again) from here.
                            for entry in inner.entries.values() {
                                entry.signal.wake();
                            }
                            let watchers = inner.watchers;
                            let next_alert = inner.next_alert;
                            let commitment = inner.commitment.take();
                            *inner =
                                Inner::new(sale, phase, opens_at_ms, admission, seed, &codes, now);
                            inner.watchers = watchers;
                            inner.next_alert = next_alert;
                            inner.commitment = commitment;
                        }
                        Change::Join {
                            id,
                            tier,
                            seq,
                            iat,
                            fp,
                            ip,
                        } => inner.add_entry(id, tier, seq, fp, iat, ip),
                        Change::Open { seed, base, count } => {
                            sale_changed = true;
                            if inner.prequeue.len() as u64 != count {
                                tracing::error!(
                                    event = %room.event_id,
                                    replica = inner.prequeue.len(),
                                    redis = count,
                                    "the replica's pre-queue differs from Redis's at opening"
                                );
                            }
                            inner.next_seq = base;
                            inner.open(seed, now);
                        }
                        Change::Sale {
                            sale,
                            phase,
                            opens_at_ms,
                            codes,
                        } => {
                            sale_changed = true;
                            inner.sale = sale;
                            inner.phase = phase;
                            inner.opens_at_ms = opens_at_ms;
                            inner.presale_codes = codes.into_iter().collect();
                        }
                        Change::Admission(settings) => {
                            if settings.auto && !inner.admission.auto {
                                inner.valve = AutoValve::default();
                            }
                            inner.admission = settings;
                        }
                        Change::Removed(ids) => {
                            for id in ids {
                                inner.remove_entry(id);
                            }
                        }
                        Change::Expired(ids) => {
                            for id in ids {
                                inner.expire_entry(id);
                            }
                        }
                        Change::Admitted {
                            at_ms,
                            pass_exp_ms,
                            hold_deadline_ms,
                            ids,
                        } => {
                            inner.rate.record(ids.len() as u64, now);
                            for id in ids {
                                let fp = inner
                                    .entries
                                    .get(&id)
                                    .map(|e| e.fp.clone())
                                    .unwrap_or_default();
                                let admission = self.admission(
                                    &room.event_id,
                                    id,
                                    &fp,
                                    at_ms,
                                    pass_exp_ms,
                                    hold_deadline_ms,
                                );
                                inner.admit_entry(id, admission);
                            }
                        }
                        Change::Started(id) => {
                            if let Some(admission) = inner
                                .entries
                                .get_mut(&id)
                                .and_then(|e| e.admission.as_mut())
                            {
                                admission.started = true;
                            }
                        }
                        Change::Stopped {
                            id,
                            hold_deadline_ms,
                        } => {
                            if let Some(admission) = inner
                                .entries
                                .get_mut(&id)
                                .and_then(|e| e.admission.as_mut())
                            {
                                admission.started = false;
                                admission.hold_deadline_ms = hold_deadline_ms;
                            }
                        }
                        Change::Alert(alert) => {
                            inner.next_alert = inner.next_alert.max(alert.id + 1);
                            inner.alert = Some(alert.clone());
                            alerts.push(alert);
                        }
                    }
                }
            }
            inner.next_entry
        };
        room.known.send_replace(known);
        if sale_changed {
            room.sale_changed();
        }
        for alert in alerts {
            let _ = room.alerts.send(alert);
        }
    }

    /// Waits until this node's replica of an event has applied every log entry written so far
    /// (the distributed backend's replicas follow the log a moment behind).
    pub async fn caught_up(self: &Arc<Self>, event_id: &str) -> ApiResult<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let Some(room) = self.known_room(event_id) else {
            return Ok(());
        };
        let key = shared.keys(event_id).log();
        let mut conn = shared.conn.clone();
        let newest: redis::streams::StreamRangeReply = conn
            .xrevrange_count(&key, "+", "-", 1)
            .await
            .map_err(unavailable)?;
        let Some(newest) = newest.ids.first().map(|e| shared::log_id(&e.id)) else {
            return Ok(());
        };
        let mut applied = room.applied.subscribe();
        let caught_up = tokio::time::timeout(Duration::from_secs(10), async {
            applied.wait_for(|a| *a >= newest).await.is_ok()
        })
        .await;
        if caught_up != Ok(true) {
            return Err(ApiError::Unavailable(
                "this node's replica is behind the queue's log".into(),
            ));
        }
        Ok(())
    }
}
