//! Door check-in: a ticket admitted once, whichever node scans it.

use sqlx::FromRow;

use super::StoreError;
use super::sql::{Affected, SqlStore, sql_impl, u32_of};

/// A ticket as the door sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorTicket {
    pub ticket_id: String,
    pub event_id: String,
    pub order_id: String,
    pub seat_id: u32,
    pub code: String,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckInOutcome {
    /// Admitted now: this scan is the first.
    Admitted(DoorTicket),
    /// Scanned before, at `at_ms` at `gate`.
    AlreadyScanned {
        ticket: DoorTicket,
        at_ms: i64,
        gate: String,
    },
    /// The ticket was refunded.
    Refunded(DoorTicket),
    /// No such ticket.
    NotFound,
}

#[derive(Debug, FromRow)]
pub(crate) struct DoorTicketRow {
    id: String,
    event_id: String,
    order_id: String,
    seat_id: i64,
    code: String,
    state: String,
    checked_in_at: Option<i64>,
    checked_in_gate: Option<String>,
}

sql_impl! {
    impl<DB> SqlStore<DB> {
        async fn sql_door_ticket(&self, ticket_id: &str) -> Result<Option<DoorTicketRow>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT id, event_id, order_id, seat_id, code, state, checked_in_at, checked_in_gate \
                 FROM tickets WHERE id = $1",
            )
            .bind(ticket_id)
            .fetch_optional(&self.writer)
            .await?)
        }

        pub(super) async fn sql_check_in(
            &self,
            ticket_id: &str,
            gate: &str,
            now_ms: i64,
        ) -> Result<CheckInOutcome, StoreError> {
            // The conditional write decides: of two scans at once, on any nodes, one sets the
            // time and the other finds it set.
            let admitted = sqlx::query(
                "UPDATE tickets SET checked_in_at = $2, checked_in_gate = $3 \
                 WHERE id = $1 AND state = 'VALID' AND checked_in_at IS NULL",
            )
            .bind(ticket_id)
            .bind(now_ms)
            .bind(gate)
            .execute(&self.writer)
            .await?
            .affected()
                == 1;
            let Some(row) = self.sql_door_ticket(ticket_id).await? else {
                return Ok(CheckInOutcome::NotFound);
            };
            let ticket = DoorTicket {
                ticket_id: row.id,
                event_id: row.event_id,
                order_id: row.order_id,
                seat_id: u32_of("ticket seat id", row.seat_id)?,
                code: row.code,
            };
            Ok(if admitted {
                CheckInOutcome::Admitted(ticket)
            } else if let Some(at_ms) = row.checked_in_at {
                CheckInOutcome::AlreadyScanned {
                    ticket,
                    at_ms,
                    gate: row.checked_in_gate.unwrap_or_default(),
                }
            } else if row.state == "REFUNDED" {
                CheckInOutcome::Refunded(ticket)
            } else {
                return Err(StoreError::Corrupt(format!(
                    "ticket {} in state {} was neither admitted nor scanned before",
                    ticket.ticket_id, row.state
                )));
            })
        }
    }
}
