//! The sweeper: lapsed locks back to sale, holds and orders expired, payments in flight
//! reconciled, sold-out queues ended, and the figures behind `/metrics`.

use super::*;

/// Runs the sweeper until `stop` flips: lapsed locks back to sale, holds and orders expired,
/// payments in flight reconciled. Several nodes may run it at once.
pub async fn run_sweeper(purchases: Arc<Purchases>, mut stop: crate::shutdown::Shutdown) {
    let mut ticker = tokio::time::interval(purchases.sweep_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut keys_read_at = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.started() => return,
        }
        if let Err(e) = sweep_once(&purchases).await {
            tracing::warn!(error = %e, "sweep failed; will retry");
        }
        // A ticket key rotated on another node: sign with the new one within seconds.
        if keys_read_at.elapsed() >= crate::tokens::REFRESH_EVERY {
            keys_read_at = std::time::Instant::now();
            let now = purchases.clock.now_ms();
            if let Err(e) = purchases
                .tickets
                .refresh(purchases.store.as_ref(), now)
                .await
            {
                tracing::warn!(error = %e, "cannot read the ticket keys; signing with the last read");
            }
        }
    }
}

/// How old the seat counts behind metrics and the sold-out check may be: reading them is a
/// `GROUP BY` over every seat (~145 ms of PostgreSQL for the LUX Tour's 142,000 while it
/// sells), which twice a second took 30 % of a core from the sales path.
pub(super) const BACKGROUND_COUNTS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(5);

/// Publishes each event's queue and seat figures as metrics.
pub(super) async fn publish_figures(purchases: &Purchases) -> ApiResult<()> {
    for breaker in purchases.breakers() {
        purchases.metrics.set_breaker(&breaker);
    }
    if purchases.store.backend() == crate::store::Backend::Postgres {
        purchases.metrics.set_fast_path(purchases.store.fast_path());
        purchases.metrics.set_batches(purchases.store.fast_path());
    }
    let counts = purchases
        .catalog
        .recent_counts(purchases.clock.now_ms(), BACKGROUND_COUNTS_MAX_AGE)
        .await?;
    for (event_id, sections) in counts.iter() {
        let mut seats = crate::domain::InventoryCounts::default();
        for c in sections.values() {
            seats.merge(c);
        }
        let mut figures = crate::metrics::EventFigures {
            available: seats.available.into(),
            soft_locked: seats.soft_locked.into(),
            hard_locked: seats.hard_locked.into(),
            sold: seats.sold.into(),
            ..Default::default()
        };
        if purchases.waiting_room.event_ids().contains(event_id)
            && let Some(event) = purchases.catalog.event(event_id).await?
        {
            let room = purchases.waiting_room.stats(&event).await?;
            figures.prequeue = room.prequeue;
            figures.waiting = room.waiting.iter().sum();
            figures.active = room.active;
            figures.admitted_total = room.admitted_total;
            figures.watchers = room.watchers;
            figures.auto_limit = room.auto_limit.map(u64::from);
        }
        purchases.metrics.set_event(event_id, &figures);
    }
    Ok(())
}

/// Ends the queue of every event whose seats are all sold: waiting fans are told SOLD_OUT.
pub(super) async fn end_sold_out_queues(purchases: &Purchases) -> ApiResult<()> {
    let events = purchases.waiting_room.event_ids();
    if events.is_empty() {
        return Ok(());
    }
    // Capacities never change, so counts of any age tell which events have seats at all.
    let counts = purchases
        .catalog
        .recent_counts(purchases.clock.now_ms(), BACKGROUND_COUNTS_MAX_AGE)
        .await?;
    for event_id in events {
        let capacity: u32 = counts
            .get(&event_id)
            .map(|sections| sections.values().map(|c| c.capacity).sum())
            .unwrap_or(0);
        if capacity == 0 {
            continue;
        }
        let Some(event) = purchases.catalog.event(&event_id).await? else {
            continue;
        };
        if !matches!(
            event.sale_state,
            SaleState::Open | SaleState::Paused | SaleState::NotOpen
        ) || purchases.store.has_unsold_seats(&event_id).await?
        {
            continue;
        }
        purchases
            .sale_control
            .apply(&event, SaleChange::to_state(&event, SaleState::SoldOut))
            .await?;
        tracing::info!(event = %event_id, "sold out: the queue has ended");
    }
    Ok(())
}

/// One pass of the sweeper.
pub async fn sweep_once(purchases: &Purchases) -> ApiResult<()> {
    const BATCH: i64 = 5_000;
    loop {
        let stats = purchases
            .store
            .sweep(purchases.clock.now_ms(), BATCH)
            .await?;
        if stats.seats_freed + stats.holds_expired + stats.orders_expired > 0 {
            tracing::debug!(?stats, "swept");
            purchases.catalog.invalidate_counts();
        }
        if stats.seats_freed < BATCH as u64
            && stats.holds_expired < BATCH as u64
            && stats.orders_expired < BATCH as u64
        {
            break;
        }
    }
    end_sold_out_queues(purchases).await?;
    publish_figures(purchases).await?;
    let before = purchases.clock.now_ms() - purchases.reconcile_after.as_millis() as i64;
    for payment in purchases.store.stale_payments(before, 100).await? {
        let id = payment.id.clone();
        match resume_payment(purchases, payment).await {
            Ok(p) => {
                tracing::info!(payment = %id, purchases = ?p.state, "reconciled a payment left in flight")
            }
            Err(e) => tracing::debug!(payment = %id, error = %e, "payment still in doubt"),
        }
    }
    Ok(())
}
