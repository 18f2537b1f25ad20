//! The audit log and the integrity audit: every invariant a sale must keep, as a query that
//! returns its violations.

use sqlx::FromRow;

use crate::domain::InventoryCounts;

use super::StoreError;
use super::events::{SeatStatusRow, seat_statuses};
use super::sql::{CountOnly, SqlStore, sql_impl};

/// One line of the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub event_id: Option<String>,
    pub detail: String,
}

/// The outcome of one invariant check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantFinding {
    pub name: &'static str,
    pub description: &'static str,
    pub violations: u64,
    pub examples: Vec<String>,
}

/// An event's audit.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditFindings {
    pub counts: InventoryCounts,
    pub invariants: Vec<InvariantFinding>,
}

impl AuditFindings {
    pub fn ok(&self) -> bool {
        self.invariants.iter().all(|i| i.violations == 0)
    }
}

/// Options for opening a store.

#[derive(Debug, FromRow)]
pub(crate) struct DetailRow {
    pub(super) detail: String,
}

/// The audit's invariant queries: each returns one row per violation, with a sentence. `$1` is
/// the event; `$2`, where used, the audit time.
pub(super) const AUDIT_QUERIES: &[(&str, &str, &str)] = &[
    (
        "no_seat_in_two_live_orders",
        "no seat belongs to two orders that are paid or still awaiting payment",
        "SELECT 'seat ' || oi.seat_id || ' is in ' || COUNT(*) || ' live orders' AS detail \
         FROM order_items oi JOIN orders o ON o.id = oi.order_id \
         WHERE o.event_id = $1 AND (o.state = 'PAID' OR (o.state = 'PENDING_PAYMENT' AND o.expires_at > $2)) \
         GROUP BY oi.seat_id HAVING COUNT(*) > 1 LIMIT 1000",
    ),
    (
        "sold_seat_has_one_ticket",
        "every sold seat has exactly one valid ticket, from its order",
        "WITH valid AS (SELECT seat_id, order_id, COUNT(*) AS n FROM tickets \
                        WHERE event_id = $1 AND state = 'VALID' GROUP BY seat_id, order_id) \
         SELECT 'seat ' || s.seat_id || ' is sold in order ' || s.order_id || ' with ' || \
           COALESCE(v.n, 0) || ' valid tickets' AS detail \
         FROM seats s JOIN orders o ON o.id = s.order_id \
         LEFT JOIN valid v ON v.seat_id = s.seat_id AND v.order_id = s.order_id \
         WHERE s.event_id = $1 AND s.status = 'SOLD' AND o.state <> 'REFUNDED' AND COALESCE(v.n, 0) <> 1 \
         LIMIT 1000",
    ),
    (
        "sold_seat_has_one_captured_payment",
        "every sold seat's order has exactly one captured payment",
        "WITH captured AS (SELECT p.order_id, COUNT(*) AS n FROM payments p JOIN orders o ON o.id = p.order_id \
                           WHERE o.event_id = $1 AND p.state = 'CAPTURED' GROUP BY p.order_id) \
         SELECT 'seat ' || s.seat_id || ' is sold in order ' || s.order_id || ' with ' || \
           COALESCE(c.n, 0) || ' captured payments' AS detail \
         FROM seats s LEFT JOIN orders o ON o.id = s.order_id LEFT JOIN captured c ON c.order_id = s.order_id \
         WHERE s.event_id = $1 AND s.status = 'SOLD' AND COALESCE(o.state, '') <> 'REFUNDED' \
           AND COALESCE(c.n, 0) <> 1 LIMIT 1000",
    ),
    (
        "no_capture_without_seats",
        "every captured payment's order is paid and all its seats are sold to it",
        "WITH items AS (SELECT oi.order_id, COUNT(*) AS n, \
                          SUM(CASE WHEN s.status = 'SOLD' AND s.order_id = oi.order_id THEN 1 ELSE 0 END) AS sold \
                        FROM order_items oi JOIN seats s ON s.event_id = oi.event_id AND s.seat_id = oi.seat_id \
                        WHERE oi.event_id = $1 GROUP BY oi.order_id) \
         SELECT 'payment ' || p.id || ' of order ' || o.id || ' (' || o.state || ') is captured with ' || \
           COALESCE(i.sold, 0) || ' of ' || COALESCE(i.n, 0) || ' seats sold' AS detail \
         FROM payments p JOIN orders o ON o.id = p.order_id LEFT JOIN items i ON i.order_id = o.id \
         WHERE o.event_id = $1 AND p.state = 'CAPTURED' \
           AND (o.state <> 'PAID' OR COALESCE(i.sold, 0) <> COALESCE(i.n, 0) OR COALESCE(i.n, 0) = 0) LIMIT 1000",
    ),
    (
        "paid_order_has_one_capture",
        "every paid order has exactly one captured payment",
        "WITH captured AS (SELECT p.order_id, COUNT(*) AS n FROM payments p JOIN orders o ON o.id = p.order_id \
                           WHERE o.event_id = $1 AND p.state = 'CAPTURED' GROUP BY p.order_id) \
         SELECT 'order ' || o.id || ' is paid with ' || COALESCE(c.n, 0) || ' captured payments' AS detail \
         FROM orders o LEFT JOIN captured c ON c.order_id = o.id \
         WHERE o.event_id = $1 AND o.state = 'PAID' AND COALESCE(c.n, 0) <> 1 LIMIT 1000",
    ),
    (
        "valid_ticket_has_its_seat",
        "every valid ticket's seat is sold in the ticket's order",
        "SELECT 'ticket ' || t.id || ' for seat ' || t.seat_id || ' is valid but the seat is ' || s.status || \
           ' in order ' || COALESCE(s.order_id, 'none') AS detail \
         FROM tickets t JOIN seats s ON s.event_id = t.event_id AND s.seat_id = t.seat_id \
         WHERE t.event_id = $1 AND t.state = 'VALID' \
           AND (s.status <> 'SOLD' OR s.order_id IS NULL OR s.order_id <> t.order_id) LIMIT 1000",
    ),
];

sql_impl! {
    impl<DB> SqlStore<DB> {
        pub(super) async fn sql_record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO audit_log (at, actor, action, event_id, detail) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(entry.at_ms)
            .bind(entry.actor.as_str())
            .bind(entry.action.as_str())
            .bind(entry.event_id.as_deref())
            .bind(entry.detail.as_str())
            .execute(&self.writer)
            .await?;
            Ok(())
        }

        pub(super) async fn sql_audit(
            &self,
            event_id: &str,
            now_ms: i64,
        ) -> Result<AuditFindings, StoreError> {
            let mut tx = self.reader.begin().await?;
            for setup in DB::AUDIT_SETUP {
                sqlx::query(setup).execute(&mut *tx).await?;
            }
            let mut counts = InventoryCounts::default();
            let rows: Vec<SeatStatusRow> =
                sqlx::query_as("SELECT status, locked_until FROM seats WHERE event_id = $1")
                    .bind(event_id)
                    .fetch_all(&mut *tx)
                    .await?;
            for status in seat_statuses(rows, now_ms)? {
                counts.add(status, 1);
            }
            let capacity: CountOnly =
                sqlx::query_as("SELECT capacity AS n FROM events WHERE id = $1")
                    .bind(event_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let mut invariants = Vec::new();
            let mut check = |name, description, examples: Vec<String>| {
                invariants.push(InvariantFinding {
                    name,
                    description,
                    violations: examples.len() as u64,
                    examples: examples.into_iter().take(20).collect(),
                });
            };
            check(
                "seat_counts_add_up",
                "seats by status add up to the event's capacity",
                if i64::from(counts.capacity) == capacity.n {
                    vec![]
                } else {
                    vec![format!(
                        "{} seats stored for a capacity of {}",
                        counts.capacity, capacity.n
                    )]
                },
            );
            for (name, description, sql) in AUDIT_QUERIES {
                let mut query = sqlx::query_as::<_, DetailRow>(sql).bind(event_id);
                if sql.contains("$2") {
                    query = query.bind(now_ms);
                }
                let examples = query
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|r| r.detail)
                    .collect();
                check(name, description, examples);
            }
            tx.rollback().await?;
            Ok(AuditFindings { counts, invariants })
        }
    }
}
