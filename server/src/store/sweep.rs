//! The sweeper's one query: lapsed locks go back on sale, their holds and orders expire.

use super::StoreError;
use super::sql::{Affected, SqlStore, sql_impl};

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    pub seats_freed: u64,
    pub holds_expired: u64,
    pub orders_expired: u64,
}

sql_impl! {
    impl<DB> SqlStore<DB> {
        pub(super) async fn sql_sweep(
            &self,
            now_ms: i64,
            limit: i64,
        ) -> Result<SweepStats, StoreError> {
            // `locked_by IS NOT NULL`, `order_id IS NULL` and `paid_at IS NULL` change no result (the
            // rows' state implies them) but name the lapse indexes, which no sales statement can use
            // (PostgreSQL migration 0006).
            let events: Vec<Option<String>> = if DB::SWEEP_BY_EVENT {
                sqlx::query_scalar("SELECT id FROM events ORDER BY id")
                    .fetch_all(&self.writer)
                    .await?
                    .into_iter()
                    .map(Some)
                    .collect()
            } else {
                vec![None]
            };
            let mut seats_freed = 0;
            for event_id in events {
                let sql = format!(
                    "UPDATE seats SET status = 'AVAILABLE', locked_by = NULL, locked_until = NULL, \
                     hold_id = NULL, order_id = NULL, version = version + 1, updated_at = $1 \
                     WHERE (event_id, seat_id) IN (SELECT event_id, seat_id FROM seats \
                         WHERE {}status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND locked_by IS NOT NULL \
                           AND locked_until <= $1 LIMIT $2{}) \
                     AND status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND locked_until <= $1",
                    if event_id.is_some() {
                        "event_id = $3 AND "
                    } else {
                        ""
                    },
                    DB::SKIP_LOCKED
                );
                let mut sweep = sqlx::query(&sql).bind(now_ms).bind(limit);
                if let Some(event_id) = event_id {
                    sweep = sweep.bind(event_id);
                }
                seats_freed += sweep.execute(&self.writer).await?.affected();
            }
            let holds_expired = sqlx::query(
                "UPDATE holds SET state = 'EXPIRED' WHERE id IN \
                 (SELECT id FROM holds WHERE state = 'ACTIVE' AND order_id IS NULL AND expires_at <= $1 \
                   LIMIT $2) \
                 AND state = 'ACTIVE'",
            )
            .bind(now_ms)
            .bind(limit)
            .execute(&self.writer)
            .await?
            .affected();
            let orders_expired = sqlx::query(
                "UPDATE orders SET state = 'EXPIRED', updated_at = $1 WHERE id IN \
                 (SELECT id FROM orders WHERE state = 'PENDING_PAYMENT' AND paid_at IS NULL \
                   AND expires_at <= $1 LIMIT $2) \
                 AND state = 'PENDING_PAYMENT' \
                 AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = orders.id \
                                 AND p.state IN ('PENDING', 'AUTHORIZED'))",
            )
            .bind(now_ms)
            .bind(limit)
            .execute(&self.writer)
            .await?
            .affected();
            Ok(SweepStats {
                seats_freed,
                holds_expired,
                orders_expired,
            })
        }
    }
}
