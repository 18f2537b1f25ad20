//! Admission passes while a fan buys: whether a pass still stands, and the no-show clock
//! (started when a fan is admitted or lets their seats go, stopped by a hold, ended by paying).

use super::*;

impl WaitingRoom {
    /// Whether a pass's admission still holds (this node revokes passes of fans whose slot ended;
    /// passes it does not know, from another node or a test, stand on their signature).
    pub fn pass_active(&self, claims: &PassClaims) -> bool {
        let Some(room) = self.known_room(&claims.ev) else {
            return true;
        };
        let Ok(inner) = room.inner.lock() else {
            return true;
        };
        let Ok(id) = claims.en.parse::<u64>() else {
            return true;
        };
        match inner.entries.get(&id) {
            // A replica may not have heard of the admission yet; it knows when one ended.
            Some(entry) if self.shared.is_some() => entry.fp == claims.fan && inner.is_live(id),
            Some(entry) => entry.state == EntryState::Admitted,
            None => true,
        }
    }

    /// The fan behind a pass held seats: the no-show clock stops.
    pub async fn started_buying(&self, claims: &PassClaims) -> ApiResult<()> {
        let Ok(id) = claims.en.parse::<u64>() else {
            return Ok(());
        };
        let already = match self.known_room(&claims.ev) {
            None => false,
            Some(room) => {
                let mut inner = lock(&room)?;
                let admission = inner
                    .entries
                    .get_mut(&id)
                    .and_then(|e| e.admission.as_mut());
                match admission {
                    Some(admission) if admission.started => true,
                    Some(admission) => {
                        admission.started = true;
                        false
                    }
                    None => false,
                }
            }
        };
        if let Some(shared) = &self.shared
            && !already
        {
            let args = [id.to_string(), claims.exp.to_string()];
            let _: i64 = shared
                .run(&shared.scripts.started, &claims.ev, &[], &args)
                .await?;
        }
        Ok(())
    }

    /// The fan behind a pass let their seats go (released a hold): the no-show clock starts
    /// again. A fan who holds again within the window keeps the slot, as at admission; one who
    /// walked away frees it then, rather than when the pass expires (30 minutes of a slot the
    /// next fan in line could have used: with 3 % of buyers walking away, most of the slots in
    /// a long sale). Seats the fan still holds or has ordered stay theirs to check out and pay:
    /// a lapsed slot only stops new holds.
    pub async fn stopped_buying(&self, claims: &PassClaims) -> ApiResult<()> {
        let Ok(id) = claims.en.parse::<u64>() else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let deadline = (now + self.timings.no_show.as_millis() as i64).min(claims.exp);
        if let Some(room) = self.known_room(&claims.ev) {
            let mut inner = lock(&room)?;
            if let Some(admission) = inner
                .entries
                .get_mut(&id)
                .and_then(|e| e.admission.as_mut())
                .filter(|a| a.started)
            {
                admission.started = false;
                admission.hold_deadline_ms = deadline;
            }
        }
        if let Some(shared) = &self.shared {
            let args = [id.to_string(), deadline.to_string()];
            let _: i64 = shared
                .run(&shared.scripts.stopped, &claims.ev, &[], &args)
                .await?;
        }
        Ok(())
    }

    /// The fan behind a pass paid: their slot goes to the next fan.
    pub async fn finished_buying(&self, claims: &PassClaims) -> ApiResult<()> {
        let Ok(id) = claims.en.parse::<u64>() else {
            return Ok(());
        };
        self.remove(&claims.ev, &[id], "paid").await?;
        Ok(())
    }

    /// Frees a paying fan's slot like [`WaitingRoom::finished_buying`]; if the store does not
    /// answer (Redis restarting), keeps trying in the background with backoff until it does or
    /// the pass expires. A slot left taken would hold the line back by one fan until then, and a
    /// blip during a busy minute would leave `max_active` of them.
    pub async fn finished_buying_or_retry(self: &Arc<Self>, claims: &PassClaims) {
        let Err(e) = self.finished_buying(claims).await else {
            return;
        };
        tracing::warn!(error = %e, "could not free a paying fan's slot; retrying in the background");
        let (room, claims) = (self.clone(), claims.clone());
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(250);
            loop {
                tokio::time::sleep(wait).await;
                match room.finished_buying(&claims).await {
                    Ok(()) => {
                        tracing::info!("freed a paying fan's slot after the store came back");
                        return;
                    }
                    Err(e) if room.clock.now_ms() >= claims.exp => {
                        tracing::warn!(error = %e, "gave up freeing a paying fan's slot: the pass has expired");
                        return;
                    }
                    Err(_) => wait = (wait * 2).min(Duration::from_secs(10)),
                }
            }
        });
    }
}
