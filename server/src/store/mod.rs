//! Persistent state: events, seats, holds, orders, payments, tickets and the audit log.
//!
//! [`Store`] is the one interface the services use; [`postgres::PgStore`] (production) and
//! [`sqlite::SqliteStore`] (the embedded default) implement it with runtime-checked queries and
//! are run through the same tests. Queries that differ between the two (bulk inserts, row locks)
//! live in each backend; the row types they decode into are shared here.

pub mod postgres;
mod sql;
pub mod sqlite;

pub use sql::{FastPathCounts, FastStep};

use sql::SqlStore;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::breaker::{Breaker, BreakerConfig};

use crate::domain::layout::{Layout, VenueSpec};
use crate::domain::seat_map::{SeatPlace, SectionInfo};
use crate::domain::{InventoryCounts, SalePhase, SaleState, SeatStatus, SectionKind};

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
            sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
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

/// An event to create, with its validated layout.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub name: String,
    pub artist: String,
    pub starts_at_ms: i64,
    pub currency: String,
    pub fee_per_ticket_minor: i64,
    pub max_tickets_per_fan: u32,
    pub layout: Layout,
    pub created_at_ms: i64,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: String,
    pub name: String,
    pub artist: String,
    pub venue: VenueSpec,
    pub starts_at_ms: i64,
    pub currency: String,
    pub fee_per_ticket_minor: i64,
    pub max_tickets_per_fan: u32,
    pub capacity: u32,
    pub sale_state: SaleState,
    pub sale_phase: SalePhase,
    pub sale_opens_at_ms: i64,
    /// The admission valve.
    pub admission: AdmissionSettings,
    /// Seed of the pre-queue shuffle, once the sale has opened (hex).
    pub shuffle_seed: Option<String>,
    /// Presale codes accepted.
    pub presale_codes: Vec<String>,
    /// Sections in display order.
    pub sections: Vec<SectionInfo>,
}

/// The admission valve of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionSettings {
    pub rate_per_minute: u32,
    pub burst: u32,
    pub max_active: u32,
    pub pow_difficulty: u32,
    /// The automatic valve (`domain::valve`): `max_active` and `rate_per_minute` are caps.
    pub auto: bool,
}

/// A change of an event's sale, as an operator makes it.
#[derive(Debug, Clone)]
pub struct SaleUpdate {
    pub state: SaleState,
    pub phase: SalePhase,
    pub opens_at_ms: i64,
    pub shuffle_seed: Option<String>,
    pub presale_codes: Vec<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub event_id: Option<String>,
    pub detail: String,
}

/// Seat counts of every event, by section id.
pub type CountsByEvent = HashMap<String, HashMap<String, InventoryCounts>>;

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

/// How a hold picks its seats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These seat ids.
    Seats(Vec<u32>),
    /// The best `quantity` seats of a section.
    Best { section_id: String, quantity: u32 },
}

/// A hold to make.
#[derive(Debug, Clone)]
pub struct NewHold {
    pub hold_id: String,
    pub event_id: String,
    pub fan_id: String,
    pub selection: Selection,
    pub max_per_fan: u32,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// One seat as shown in holds and orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatInfo {
    pub seat_id: u32,
    pub section_id: String,
    pub row_label: String,
    pub number: u32,
    pub price_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Active,
    CheckedOut,
    Released,
    Expired,
}

impl HoldState {
    pub fn as_db(self) -> &'static str {
        match self {
            HoldState::Active => "ACTIVE",
            HoldState::CheckedOut => "CHECKED_OUT",
            HoldState::Released => "RELEASED",
            HoldState::Expired => "EXPIRED",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(HoldState::Active),
            "CHECKED_OUT" => Some(HoldState::CheckedOut),
            "RELEASED" => Some(HoldState::Released),
            "EXPIRED" => Some(HoldState::Expired),
            _ => None,
        }
    }
}

/// A hold as stored. `seats` are the seats still locked by it (all of them while it is live).
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRecord {
    pub id: String,
    pub event_id: String,
    pub fan_id: String,
    pub state: HoldState,
    pub seat_count: u32,
    pub subtotal_minor: i64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub order_id: Option<String>,
    pub seats: Vec<SeatInfo>,
}

/// What became of a hold request.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldOutcome {
    Held(HoldRecord),
    /// Some requested seats were not available; nothing was held.
    Taken(Vec<u32>),
    /// The fan would exceed the per-fan cap; `already` counts live holds and purchases.
    OverCap {
        already: u32,
        cap: u32,
    },
    /// The section has fewer free seats than asked for.
    NotEnough {
        available: u32,
    },
}

/// What became of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released(u32),
    NotFound,
    NotActive(HoldState),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    PendingPayment,
    Paid,
    Expired,
    Cancelled,
    Refunded,
}

impl OrderState {
    pub fn as_db(self) -> &'static str {
        match self {
            OrderState::PendingPayment => "PENDING_PAYMENT",
            OrderState::Paid => "PAID",
            OrderState::Expired => "EXPIRED",
            OrderState::Cancelled => "CANCELLED",
            OrderState::Refunded => "REFUNDED",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "PENDING_PAYMENT" => Some(OrderState::PendingPayment),
            "PAID" => Some(OrderState::Paid),
            "EXPIRED" => Some(OrderState::Expired),
            "CANCELLED" => Some(OrderState::Cancelled),
            "REFUNDED" => Some(OrderState::Refunded),
            _ => None,
        }
    }
}

/// An order to create from a hold.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub order_id: String,
    pub hold_id: String,
    /// The fan checking out: the hold must be theirs.
    pub fan_id: String,
    /// The event the caller's pass admits to (the hold must be in it); `None` for an operator.
    /// The order's fee and currency are the hold's event's.
    pub event_id: Option<String>,
    pub checkout_key: String,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// What became of a checkout.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckoutOutcome {
    Created(OrderRecord),
    /// The key (or the hold) was already checked out: the first result.
    Existing(OrderRecord),
    HoldNotFound,
    HoldNotActive(HoldState),
    HoldExpired,
    KeyUsedForOtherHold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    Pending,
    Authorized,
    Captured,
    Failed,
    Voided,
    Refunded,
}

impl PaymentState {
    pub fn as_db(self) -> &'static str {
        match self {
            PaymentState::Pending => "PENDING",
            PaymentState::Authorized => "AUTHORIZED",
            PaymentState::Captured => "CAPTURED",
            PaymentState::Failed => "FAILED",
            PaymentState::Voided => "VOIDED",
            PaymentState::Refunded => "REFUNDED",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(PaymentState::Pending),
            "AUTHORIZED" => Some(PaymentState::Authorized),
            "CAPTURED" => Some(PaymentState::Captured),
            "FAILED" => Some(PaymentState::Failed),
            "VOIDED" => Some(PaymentState::Voided),
            "REFUNDED" => Some(PaymentState::Refunded),
            _ => None,
        }
    }

    /// Still waiting for the provider or for the sale to complete.
    pub fn in_flight(self) -> bool {
        matches!(self, PaymentState::Pending | PaymentState::Authorized)
    }
}

/// A payment attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub id: String,
    pub order_id: String,
    pub state: PaymentState,
    pub amount_minor: i64,
    pub currency: String,
    pub provider: String,
    pub provider_intent_id: Option<String>,
    pub idempotency_key: String,
    pub provider_idempotency_key: String,
    pub failure_reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketState {
    Valid,
    Refunded,
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRecord {
    pub id: String,
    pub seat_id: u32,
    pub code: String,
    pub state: TicketState,
    pub issued_at_ms: i64,
}

/// A ticket to issue.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub id: String,
    pub seat_id: u32,
    pub code: String,
}

/// An order with everything attached to it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub id: String,
    pub event_id: String,
    pub fan_id: String,
    pub hold_id: String,
    pub state: OrderState,
    pub subtotal_minor: i64,
    pub fees_minor: i64,
    pub total_minor: i64,
    pub currency: String,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
    pub paid_at_ms: Option<i64>,
    pub items: Vec<SeatInfo>,
    pub payments: Vec<PaymentRecord>,
    pub tickets: Vec<TicketRecord>,
}

/// A payment attempt to record.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub payment_id: String,
    pub order_id: String,
    /// The paying fan; `None` when an operator pays on a fan's behalf.
    pub fan_id: Option<String>,
    /// The event the caller's pass admits to; `None` for an operator.
    pub event_id: Option<String>,
    pub idempotency_key: String,
    pub provider: String,
    pub now_ms: i64,
}

/// What became of a payment start.
#[derive(Debug, Clone, PartialEq)]
pub enum BeginPayment {
    /// A new attempt, PENDING, to send to the provider.
    Started(PaymentRecord, OrderRecord),
    /// The attempt with this key already exists (maybe finished, maybe in flight).
    Replay(PaymentRecord, OrderRecord),
    /// Another attempt (other key) is in flight.
    InFlight(PaymentRecord),
    /// The order cannot be paid: it is paid, expired, cancelled or refunded.
    NotPayable(OrderRecord),
    OrderNotFound,
}

/// What became of a refund.
#[derive(Debug, Clone, PartialEq)]
pub enum RefundOutcome {
    Refunded(Box<OrderRecord>),
    NotPaid(OrderState),
    NotFound,
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    pub seats_freed: u64,
    pub holds_expired: u64,
    pub orders_expired: u64,
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

// Rows shared by both backends' queries.

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    pub id: String,
    pub name: String,
    pub artist: String,
    pub venue_id: String,
    pub venue_name: String,
    pub venue_city: String,
    pub starts_at: i64,
    pub currency: String,
    pub fee_per_ticket: i64,
    pub max_per_fan: i64,
    pub capacity: i64,
    pub sale_state: String,
    pub sale_phase: String,
    pub sale_opens_at: i64,
    pub rate_per_minute: i64,
    pub burst: i64,
    pub max_active: i64,
    pub pow_difficulty: i64,
    pub admission_auto: i64,
    pub shuffle_seed: Option<String>,
    pub presale_codes: String,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SectionRow {
    pub event_id: String,
    pub id: String,
    pub name: String,
    pub kind: String,
    pub price: i64,
    pub capacity: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SeatPlaceRow {
    pub seat_id: i64,
    pub section_id: String,
    pub row_label: String,
    pub seat_number: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SeatStatusRow {
    pub status: String,
    pub locked_until: Option<i64>,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CountRow {
    pub event_id: String,
    pub section_id: String,
    pub status: String,
    pub expired: i64,
    pub n: i64,
}

pub(crate) const EVENT_COLUMNS: &str = "e.id, e.name, e.artist, e.venue_id, v.name AS venue_name, \
     v.city AS venue_city, e.starts_at, e.currency, e.fee_per_ticket, e.max_per_fan, e.capacity, \
     e.sale_state, e.sale_phase, e.sale_opens_at, e.rate_per_minute, e.burst, e.max_active, \
     e.pow_difficulty, e.admission_auto, e.shuffle_seed, e.presale_codes";

fn u32_of(what: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} is out of range")))
}

pub(crate) fn section_info(row: SectionRow) -> Result<SectionInfo, StoreError> {
    Ok(SectionInfo {
        kind: SectionKind::from_db(&row.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown section kind {:?}", row.kind)))?,
        capacity: u32_of("section capacity", row.capacity)?,
        id: row.id,
        name: row.name,
        price_minor: row.price,
    })
}

/// Joins event rows with their sections (sections must be ordered by event then position).
pub(crate) fn assemble_events(
    events: Vec<EventRow>,
    sections: Vec<SectionRow>,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut by_event: HashMap<String, Vec<SectionInfo>> = HashMap::new();
    for row in sections {
        let event_id = row.event_id.clone();
        by_event
            .entry(event_id)
            .or_default()
            .push(section_info(row)?);
    }
    events
        .into_iter()
        .map(|row| {
            Ok(EventRecord {
                sections: by_event.remove(&row.id).unwrap_or_default(),
                sale_state: SaleState::from_db(&row.sale_state).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown sale state {:?}", row.sale_state))
                })?,
                sale_phase: SalePhase::from_db(&row.sale_phase).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown sale phase {:?}", row.sale_phase))
                })?,
                max_tickets_per_fan: u32_of("max per fan", row.max_per_fan)?,
                capacity: u32_of("capacity", row.capacity)?,
                venue: VenueSpec {
                    id: row.venue_id,
                    name: row.venue_name,
                    city: row.venue_city,
                },
                id: row.id,
                name: row.name,
                artist: row.artist,
                starts_at_ms: row.starts_at,
                currency: row.currency,
                fee_per_ticket_minor: row.fee_per_ticket,
                sale_opens_at_ms: row.sale_opens_at,
                admission: AdmissionSettings {
                    rate_per_minute: u32_of("rate", row.rate_per_minute)?,
                    burst: u32_of("burst", row.burst)?,
                    max_active: u32_of("max active", row.max_active)?,
                    pow_difficulty: u32_of("pow difficulty", row.pow_difficulty)?,
                    auto: row.admission_auto != 0,
                },
                shuffle_seed: row.shuffle_seed,
                presale_codes: row
                    .presale_codes
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

pub(crate) fn seat_places(rows: Vec<SeatPlaceRow>) -> Result<Vec<SeatPlace>, StoreError> {
    rows.into_iter()
        .map(|r| {
            Ok(SeatPlace {
                seat_id: u32_of("seat id", r.seat_id)?,
                section_id: r.section_id,
                row_label: r.row_label,
                number: u32_of("seat number", r.seat_number)?,
            })
        })
        .collect()
}

pub(crate) fn seat_statuses(
    rows: Vec<SeatStatusRow>,
    now_ms: i64,
) -> Result<Vec<SeatStatus>, StoreError> {
    rows.into_iter()
        .map(|r| {
            SeatStatus::from_db(&r.status)
                .map(|s| s.effective(r.locked_until, now_ms))
                .ok_or_else(|| StoreError::Corrupt(format!("unknown seat status {:?}", r.status)))
        })
        .collect()
}

pub(crate) fn counts_by_event(rows: Vec<CountRow>) -> Result<CountsByEvent, StoreError> {
    let mut out: CountsByEvent = HashMap::new();
    for row in rows {
        let status = SeatStatus::from_db(&row.status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown seat status {:?}", row.status)))?;
        let status = if row.expired != 0 {
            SeatStatus::Available
        } else {
            status
        };
        out.entry(row.event_id)
            .or_default()
            .entry(row.section_id)
            .or_default()
            .add(status, u32_of("seat count", row.n)?);
    }
    Ok(out)
}

/// The counting query, the same on both backends: a lock whose time has passed is counted as
/// available.
pub(crate) const COUNTS_SQL: &str = "SELECT event_id, section_id, status, \
     CAST(CASE WHEN status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND locked_until <= $1 THEN 1 ELSE 0 END AS BIGINT) AS expired, \
     COUNT(*) AS n \
     FROM seats GROUP BY event_id, section_id, status, expired";

/// Implements [`Store`] for `SqlStore<$db>` by delegating to the generic implementation.
macro_rules! store_for {
    ($db:ty, $backend:expr) => {
        #[async_trait]
        impl Store for SqlStore<$db> {
            fn backend(&self) -> Backend {
                $backend
            }
            fn breaker(&self) -> &Breaker {
                &self.breaker
            }
            fn fast_path(&self) -> &FastPathCounts {
                &self.fast_path
            }
            async fn ping(&self) -> Result<(), StoreError> {
                self.guarded(SqlStore::sql_ping(self)).await
            }
            async fn create_event(&self, event: &NewEvent) -> Result<(), StoreError> {
                self.guarded(SqlStore::sql_create_event(self, event)).await
            }
            async fn list_events(&self) -> Result<Vec<EventRecord>, StoreError> {
                self.guarded(self.sql_events(None)).await
            }
            async fn get_event(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
                Ok(self.guarded(self.sql_events(Some(event_id))).await?.pop())
            }
            async fn seat_places(&self, event_id: &str) -> Result<Vec<SeatPlace>, StoreError> {
                self.guarded(SqlStore::sql_seat_places(self, event_id))
                    .await
            }
            async fn seat_statuses(
                &self,
                event_id: &str,
                now_ms: i64,
            ) -> Result<Vec<SeatStatus>, StoreError> {
                self.guarded(SqlStore::sql_seat_statuses(self, event_id, now_ms))
                    .await
            }
            async fn inventory_counts(&self, now_ms: i64) -> Result<CountsByEvent, StoreError> {
                self.guarded(SqlStore::sql_inventory_counts(self, now_ms))
                    .await
            }
            async fn has_unsold_seats(&self, event_id: &str) -> Result<bool, StoreError> {
                self.guarded(SqlStore::sql_has_unsold_seats(self, event_id))
                    .await
            }
            async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
                self.guarded(SqlStore::sql_record_audit(self, entry)).await
            }
            async fn hold_seats(&self, hold: &NewHold) -> Result<HoldOutcome, StoreError> {
                self.guarded(SqlStore::sql_hold_seats(self, hold)).await
            }
            async fn get_hold(&self, hold_id: &str) -> Result<Option<HoldRecord>, StoreError> {
                self.guarded(SqlStore::sql_get_hold(self, hold_id)).await
            }
            async fn release_hold(
                &self,
                hold_id: &str,
                fan_id: &str,
                now_ms: i64,
            ) -> Result<ReleaseOutcome, StoreError> {
                self.guarded(SqlStore::sql_release_hold(self, hold_id, fan_id, now_ms))
                    .await
            }
            async fn checkout(&self, order: &NewOrder) -> Result<CheckoutOutcome, StoreError> {
                self.guarded(SqlStore::sql_checkout(self, order)).await
            }
            async fn get_order(&self, order_id: &str) -> Result<Option<OrderRecord>, StoreError> {
                self.guarded(SqlStore::sql_get_order(self, order_id)).await
            }
            async fn begin_payment(
                &self,
                payment: &NewPayment,
            ) -> Result<BeginPayment, StoreError> {
                self.guarded(SqlStore::sql_begin_payment(self, payment))
                    .await
            }
            async fn get_payment(
                &self,
                payment_id: &str,
            ) -> Result<Option<PaymentRecord>, StoreError> {
                self.guarded(SqlStore::sql_get_payment(self, payment_id))
                    .await
            }
            async fn finish_payment(
                &self,
                payment_id: &str,
                state: PaymentState,
                intent_id: Option<&str>,
                reason: &str,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                self.guarded(SqlStore::sql_finish_payment(
                    self, payment_id, state, intent_id, reason, now_ms,
                ))
                .await
            }
            async fn forget_payment(&self, payment_id: &str) -> Result<(), StoreError> {
                self.guarded(SqlStore::sql_forget_payment(self, payment_id))
                    .await
            }
            async fn claim_for_capture(
                &self,
                payment_id: &str,
                intent_id: &str,
                now_ms: i64,
                until_ms: i64,
            ) -> Result<bool, StoreError> {
                self.guarded(SqlStore::sql_claim_for_capture(
                    self, payment_id, intent_id, now_ms, until_ms,
                ))
                .await
            }
            async fn complete_sale(
                &self,
                payment_id: &str,
                intent_id: &str,
                tickets: &[NewTicket],
                now_ms: i64,
            ) -> Result<Option<i64>, StoreError> {
                self.guarded(SqlStore::sql_complete_sale(
                    self, payment_id, intent_id, tickets, now_ms,
                ))
                .await
            }
            async fn stale_payments(
                &self,
                before_ms: i64,
                limit: i64,
            ) -> Result<Vec<PaymentRecord>, StoreError> {
                self.guarded(SqlStore::sql_stale_payments(self, before_ms, limit))
                    .await
            }
            async fn sweep(&self, now_ms: i64, limit: i64) -> Result<SweepStats, StoreError> {
                self.guarded(SqlStore::sql_sweep(self, now_ms, limit)).await
            }
            async fn refund_order(
                &self,
                order_id: &str,
                return_seats: bool,
                now_ms: i64,
            ) -> Result<RefundOutcome, StoreError> {
                self.guarded(SqlStore::sql_refund_order(
                    self,
                    order_id,
                    return_seats,
                    now_ms,
                ))
                .await
            }
            async fn update_sale(
                &self,
                event_id: &str,
                update: &SaleUpdate,
            ) -> Result<(), StoreError> {
                self.guarded(SqlStore::sql_update_sale(self, event_id, update))
                    .await
            }
            async fn list_orders(
                &self,
                event_id: &str,
                state: Option<OrderState>,
                before: Option<(i64, String)>,
                limit: i64,
            ) -> Result<Vec<OrderRecord>, StoreError> {
                self.guarded(SqlStore::sql_list_orders(
                    self, event_id, state, before, limit,
                ))
                .await
            }
            async fn add_ban(
                &self,
                kind: &str,
                value: &str,
                reason: &str,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                self.guarded(SqlStore::sql_add_ban(self, kind, value, reason, now_ms))
                    .await
            }
            async fn list_bans(&self) -> Result<Vec<(String, String)>, StoreError> {
                self.guarded(SqlStore::sql_list_bans(self)).await
            }
            async fn paid_totals(&self, event_id: &str) -> Result<(u64, i64), StoreError> {
                self.guarded(SqlStore::sql_paid_totals(self, event_id))
                    .await
            }
            async fn update_admission(
                &self,
                event_id: &str,
                settings: &AdmissionSettings,
            ) -> Result<(), StoreError> {
                self.guarded(SqlStore::sql_update_admission(self, event_id, settings))
                    .await
            }
            async fn audit(
                &self,
                event_id: &str,
                now_ms: i64,
            ) -> Result<AuditFindings, StoreError> {
                self.guarded(SqlStore::sql_audit(self, event_id, now_ms))
                    .await
            }
        }
    };
}

store_for!(sqlx::Postgres, Backend::Postgres);
store_for!(sqlx::Sqlite, Backend::Sqlite);
