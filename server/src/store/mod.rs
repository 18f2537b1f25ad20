//! Persistent state: events, seats, holds, orders, payments, tickets and the audit log.
//!
//! [`Store`] is the one interface the services use. Its one implementation is written once for
//! both databases ([`postgres::PgStore`] in production, [`sqlite::SqliteStore`] embedded), and
//! both run through the same tests. One file per aggregate holds its records and its queries:
//! `events` (events, venues, seats, the sale's state and valve, seat counts), `holds`, `orders`
//! (checkout, refunds, listings), `payments` (attempts, the capture claim, the sale), `sweep`,
//! `audit`, `bans`, `ticket_keys` and `check_in` (the door). `sql` holds what they share: the
//! generic store, the circuit breaker every call goes through, the bounds its queries need, and
//! the [`Store`] implementation. `fast` holds the sales path's one-round-trip writes; `postgres`
//! and `sqlite` what differs between the two databases, their pools and their migrations.

mod audit;
mod bans;
mod check_in;
mod events;
mod fast;
mod holds;
mod orders;
mod payments;
pub mod postgres;
mod sql;
pub mod sqlite;
mod sweep;
mod ticket_keys;

pub use audit::{AuditEntry, AuditFindings, InvariantFinding};
pub use check_in::{CheckInOutcome, DoorTicket};
pub use events::{AdmissionSettings, CountsByEvent, EventRecord, NewEvent, SaleUpdate};
pub use fast::{FastPathCounts, FastStep};
pub use holds::{HoldOutcome, HoldRecord, HoldState, NewHold, ReleaseOutcome, SeatInfo, Selection};
pub use orders::{
    CheckoutOutcome, NewOrder, NewTicket, OrderRecord, OrderState, RefundOutcome, TicketRecord,
    TicketState,
};
pub use payments::{BeginPayment, NewPayment, PaymentRecord, PaymentState};
pub use sweep::SweepStats;
pub use ticket_keys::{RetireRefusal, TicketKeyRecord};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::breaker::{Breaker, BreakerConfig};
use crate::domain::SeatStatus;
use crate::domain::seat_map::SeatPlace;

/// Which database holds the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or failed mid-call; the call may be retried.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// No connection came free in time: every connection is busy (or none can be made).
    #[error("the database is busy: {0}")]
    Busy(String),
    /// The circuit breaker is open: the call was not made.
    #[error("the database's circuit breaker is open; retry in {retry_in_ms} ms")]
    BreakerOpen { retry_in_ms: u64 },
    /// A uniqueness rule refused the write (e.g. the id is taken).
    #[error("{0}")]
    Conflict(String),
    /// The database aborted the transaction to resolve a collision (deadlock, serialization
    /// failure); nothing was written and the call may be retried.
    #[error("the transaction collided with another: {0}")]
    Collision(String),
    /// Stored data that cannot be read back as the domain expects.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut => StoreError::Busy(e.to_string()),
            // PostgreSQL's connection exceptions (class 08), shutdown and start-up (57P0x).
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")) =>
            {
                StoreError::Unavailable(db.message().to_string())
            }
            // A connection that broke mid-conversation: closed during the TLS negotiation
            // (PostgreSQL's SSLRequest answered by an end of file reads as a protocol error),
            // or answering out of turn. A new connection may well succeed.
            sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            // PostgreSQL's deadlock_detected and serialization_failure; SQLite's busy/locked.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40P01" | "40001" | "5" | "6")) =>
            {
                StoreError::Collision(db.message().to_string())
            }
            _ => StoreError::Database(e),
        }
    }
}

/// Storage of the inventory and sales records.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// How the sales path's one-round-trip writes fared (PostgreSQL; SQLite has none).
    fn fast_path(&self) -> &FastPathCounts;

    /// The circuit breaker every call to the database goes through.
    fn breaker(&self) -> &Breaker;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates an event, its venue (if new), its sections and all its seats in one transaction.
    /// An existing event id gives [`StoreError::Conflict`].
    async fn create_event(&self, event: &NewEvent) -> Result<(), StoreError>;

    /// Every event, ordered by start time then id.
    async fn list_events(&self) -> Result<Vec<EventRecord>, StoreError>;

    /// One event.
    async fn get_event(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError>;

    /// Where each seat of an event sits, in seat-id order.
    async fn seat_places(&self, event_id: &str) -> Result<Vec<SeatPlace>, StoreError>;

    /// The effective status of each seat of an event at `now_ms`, in seat-id order.
    async fn seat_statuses(
        &self,
        event_id: &str,
        now_ms: i64,
    ) -> Result<Vec<SeatStatus>, StoreError>;

    /// Effective seat counts of every event by section at `now_ms`.
    async fn inventory_counts(&self, now_ms: i64) -> Result<CountsByEvent, StoreError>;

    /// Whether any seat of the event is not sold (available, or locked by a hold or an order,
    /// lapsed or not): two index probes, where [`Store::inventory_counts`] reads every seat.
    async fn has_unsold_seats(&self, event_id: &str) -> Result<bool, StoreError>;

    /// Appends to the audit log.
    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Holds seats for a fan, all or nothing, enforcing the per-fan cap in the same
    /// transaction.
    async fn hold_seats(&self, hold: &NewHold) -> Result<HoldOutcome, StoreError>;

    /// A hold with its seats.
    async fn get_hold(&self, hold_id: &str) -> Result<Option<HoldRecord>, StoreError>;

    /// Releases a live hold at once.
    async fn release_hold(
        &self,
        hold_id: &str,
        fan_id: &str,
        now_ms: i64,
    ) -> Result<ReleaseOutcome, StoreError>;

    /// Turns a live hold into an order awaiting payment (idempotent by the fan's key).
    async fn checkout(&self, order: &NewOrder) -> Result<CheckoutOutcome, StoreError>;

    /// An order with its seats, payments and tickets.
    async fn get_order(&self, order_id: &str) -> Result<Option<OrderRecord>, StoreError>;

    /// Records a new payment attempt (or finds the one with the same key).
    async fn begin_payment(&self, payment: &NewPayment) -> Result<BeginPayment, StoreError>;

    /// A payment by id.
    async fn get_payment(&self, payment_id: &str) -> Result<Option<PaymentRecord>, StoreError>;

    /// Moves a payment in flight to a final failed state (FAILED or VOIDED) with a reason, and
    /// records the provider's intent id when known.
    async fn finish_payment(
        &self,
        payment_id: &str,
        state: PaymentState,
        intent_id: Option<&str>,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Forgets a PENDING payment that never reached the provider, so the same key may retry.
    async fn forget_payment(&self, payment_id: &str) -> Result<(), StoreError>;

    /// After authorization: if the order's hard lock is still live, extends it to `until_ms` and
    /// marks the payment AUTHORIZED; `false` if the lock had lapsed.
    async fn claim_for_capture(
        &self,
        payment_id: &str,
        intent_id: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError>;

    /// After capture of `intent_id`: sells the order's seats, marks order PAID and payment
    /// (PENDING or AUTHORIZED) CAPTURED, and issues the tickets, all in one transaction.
    /// Answers the order's time to pay as the sale found it (capture claims extend it); `None`
    /// if the seats are no longer the order's or the payment is no longer in flight.
    async fn complete_sale(
        &self,
        payment_id: &str,
        intent_id: &str,
        tickets: &[NewTicket],
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// Payments in flight last touched before `before_ms`, for the reconciler.
    async fn stale_payments(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<PaymentRecord>, StoreError>;

    /// Returns lapsed locks to AVAILABLE and expires their holds and orders, in batches of at
    /// most `limit`. Safe to run on several nodes at once.
    async fn sweep(&self, now_ms: i64, limit: i64) -> Result<SweepStats, StoreError>;

    /// Refunds a paid order: its tickets are marked refunded, its captured payment refunded, the
    /// order REFUNDED; with `return_seats` its seats go back on sale, otherwise they stay SOLD
    /// (withheld). One transaction.
    async fn refund_order(
        &self,
        order_id: &str,
        return_seats: bool,
        now_ms: i64,
    ) -> Result<RefundOutcome, StoreError>;

    /// Changes an event's sale state, phase, opening time, shuffle seed and presale codes.
    async fn update_sale(&self, event_id: &str, update: &SaleUpdate) -> Result<(), StoreError>;

    /// An event's orders, newest first: at most `limit`, older than `before` (created at, id),
    /// optionally only in one state.
    async fn list_orders(
        &self,
        event_id: &str,
        state: Option<OrderState>,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError>;

    /// Records a ban (`kind` FINGERPRINT with the fingerprint's hash, or IP).
    async fn add_ban(
        &self,
        kind: &str,
        value: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Every ban, as (kind, value).
    async fn list_bans(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Admits a ticket at the door if no scan has (`gate` and `now_ms` recorded); otherwise
    /// says when and where it was first scanned, or that it was refunded.
    async fn check_in(
        &self,
        ticket_id: &str,
        gate: &str,
        now_ms: i64,
    ) -> Result<CheckInOutcome, StoreError>;

    /// Every ticket key, oldest first.
    async fn ticket_keys(&self) -> Result<Vec<TicketKeyRecord>, StoreError>;

    /// Makes `kid` the active ticket key if there is no key yet (a new database).
    async fn first_ticket_key(&self, kid: &str, now_ms: i64) -> Result<(), StoreError>;

    /// Makes `new_kid` the active ticket key; the one active before keeps verifying.
    /// `Conflict` if the id is taken (another rotation got there first).
    async fn rotate_ticket_key(&self, new_kid: &str, now_ms: i64) -> Result<(), StoreError>;

    /// Retires a key rotated out: codes it signed verify no more.
    async fn retire_ticket_key(
        &self,
        kid: &str,
        now_ms: i64,
    ) -> Result<Result<(), RetireRefusal>, StoreError>;

    /// Paid orders of an event and their total (fees included).
    async fn paid_totals(&self, event_id: &str) -> Result<(u64, i64), StoreError>;

    /// Changes an event's admission valve.
    async fn update_admission(
        &self,
        event_id: &str,
        settings: &AdmissionSettings,
    ) -> Result<(), StoreError>;

    /// Checks an event's integrity invariants.
    async fn audit(&self, event_id: &str, now_ms: i64) -> Result<AuditFindings, StoreError>;
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections in the pool (PostgreSQL) or read connections (SQLite).
    pub max_connections: u32,
    /// How long to wait for the database when connecting and when acquiring a connection.
    pub connect_timeout: Duration,
    /// Longest one call may take (waiting for a connection included); past it the call fails
    /// as UNAVAILABLE and counts against the circuit breaker.
    pub call_timeout: Duration,
    /// The circuit breaker around the database.
    pub breaker: BreakerConfig,
    /// Certificate authority (PEM) to trust for PostgreSQL's certificate (--database-ca).
    pub ca: Option<std::path::PathBuf>,
}

/// Opens the store a database URL names (`postgres://…`, `sqlite://…`), or the embedded SQLite
/// store in `data_dir` when there is no URL, and brings its schema up to date.
pub async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
    options: &StoreOptions,
) -> anyhow::Result<Arc<dyn Store>> {
    match database_url {
        None => {
            std::fs::create_dir_all(data_dir).map_err(|e| {
                anyhow::anyhow!("cannot create data directory {}: {e}", data_dir.display())
            })?;
            let path = data_dir.join("taquilla.db");
            Ok(Arc::new(sqlite::open(&path, options).await?))
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(postgres::open(url, options).await?))
        }
        Some(url) if url.starts_with("sqlite:") => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            if path.is_empty() {
                anyhow::bail!(
                    "the database URL {url:?} names no file; use sqlite://path/to/taquilla.db"
                );
            }
            Ok(Arc::new(sqlite::open(Path::new(path), options).await?))
        }
        Some(url) => {
            let scheme = url.split(':').next().unwrap_or_default();
            anyhow::bail!(
                "unsupported database URL scheme {scheme:?}: use postgres://user@host/db, sqlite://file, or no URL for the embedded default"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    /// What a call learns about a failure decides whether it is retried: a connection that
    /// broke (including during the TLS negotiation) may succeed on a new one.
    #[test]
    fn a_broken_connection_may_be_retried() {
        for error in [
            sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into()),
            sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
            sqlx::Error::PoolClosed,
        ] {
            let shown = error.to_string();
            assert!(
                matches!(StoreError::from(error), StoreError::Unavailable(_)),
                "{shown}"
            );
        }
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Busy(_)
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::Database(_)
        ));
    }
}
