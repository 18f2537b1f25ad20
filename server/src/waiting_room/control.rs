//! The operators' controls: a sale's state, the admission valve (fixed or automatic),
//! alerts to every watcher, and the queue's figures.

use super::replies::SaleReply;
use super::*;

impl WaitingRoom {
    /// Applies a sale change made by an operator (already stored); opening now shuffles the
    /// pre-queue and returns the seed.
    pub async fn set_sale(
        self: &Arc<Self>,
        event: &EventRecord,
        state: SaleState,
        phase: SalePhase,
        opens_at_ms: i64,
        presale_codes: &[String],
    ) -> ApiResult<Option<u64>> {
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
                            .open_shared(shared, &event.id, phase, opens_at_ms, presale_codes)
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
        let mut seed = None;
        match state {
            SaleState::Open if inner.sale == SaleState::NotOpen => {
                let fresh = rand::random();
                inner.open(fresh, self.clock.now_ms());
                seed = Some(fresh);
            }
            other => inner.sale = other,
        }
        drop(inner);
        room.sale_changed();
        Ok(seed)
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
            eta_last_seconds: inner
                .rate
                .eta_seconds(total, f64::from(inner.admission.rate_per_minute))
                .unwrap_or(0),
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
