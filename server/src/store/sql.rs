//! The store, written once for both databases: [`SqlStore`] is generic over the sqlx database,
//! and the few statements that differ between PostgreSQL and SQLite (row locks, bulk seat
//! inserts, the per-fan lock, `GREATEST`) come from the [`Dialect`] each backend implements.
//!
//! Every state change is a conditional update whose `WHERE` is the state machine of
//! `domain::inventory`: a hold takes only seats that are AVAILABLE or whose lock has lapsed, a
//! checkout only seats its hold still locks, a sale only seats its order still locks. A write
//! that finds fewer rows than it needs rolls the whole transaction back.

use std::future::Future;
use std::pin::Pin;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::{
    AdmissionSettings, AuditEntry, AuditFindings, BeginPayment, COUNTS_SQL, CheckoutOutcome,
    CountRow, CountsByEvent, EVENT_COLUMNS, EventRecord, EventRow, HoldOutcome, HoldRecord,
    HoldState, InvariantFinding, NewEvent, NewHold, NewOrder, NewPayment, NewTicket, OrderRecord,
    OrderState, PaymentRecord, PaymentState, RefundOutcome, ReleaseOutcome, SaleUpdate, SeatInfo,
    SeatPlaceRow, SeatStatusRow, SectionRow, Selection, StoreError, SweepStats, TicketRecord,
    TicketState,
};
use crate::domain::inventory::{Candidate, choose_best};
use crate::domain::seat_map::SeatPlace;
use crate::domain::{InventoryCounts, SeatStatus};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Rows changed by a statement, for any backend's query result.
pub(crate) trait Affected {
    fn affected(&self) -> u64;
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// What differs between PostgreSQL and SQLite.
pub(crate) trait Dialect: Database {
    /// Appended to the SELECT of best-available candidates: skip rows other transactions are
    /// taking instead of waiting for them.
    const SKIP_LOCKED: &'static str;
    /// Appended to a SELECT of rows the transaction is about to change.
    const FOR_UPDATE: &'static str;
    /// The two-argument maximum function.
    const GREATEST: &'static str;
    /// Whether best-available candidates are read as two queries, free seats and lapsed
    /// locks, each in seat order from its own index and stopping at the limit. On PostgreSQL
    /// one condition with OR read and sorted every free seat of the section (5 ms per hold in
    /// a 5,000-place standing area); on SQLite the split was not faster (BENCHMARKS.md).
    const SPLIT_CANDIDATES: bool;
    /// Whether the sweeper looks for lapsed seat locks one event at a time. PostgreSQL's lapse
    /// index leads with the event (migration 0006), and without it read all of `seats` every
    /// second (39 ms a sweep in the full LUX sale); SQLite's leads with the lock's end.
    const SWEEP_BY_EVENT: bool;
    /// Statements that open a read-only transaction whose reads all see one snapshot.
    const SNAPSHOT_SETUP: &'static [&'static str];
    /// Statements that open an audit's transaction: its reads one snapshot, planned for
    /// whole-event scans.
    const AUDIT_SETUP: &'static [&'static str];

    /// Serializes one fan's holds in one event until the transaction ends (the per-fan cap
    /// counts and then adds; two concurrent holds of one fan must not both count first).
    fn lock_fan<'a>(
        conn: &'a mut Self::Connection,
        key: i64,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;

    /// Lets the current transaction commit without waiting for its WAL to reach disk. Used for
    /// steps whose loss in a crash costs no money and breaks no invariant (a hold, a release, a
    /// checkout, a capture claim): a later durable commit flushes them anyway, and a lost one
    /// only makes a fan redo a step. Payment records and sales always commit durably.
    fn relax_durability<'a>(
        conn: &'a mut Self::Connection,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;

    /// Inserts an event's seats.
    fn insert_seats<'a>(
        conn: &'a mut Self::Connection,
        event: &'a NewEvent,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;

    // The sales path's writes in one round trip each, where the database has them as functions
    // (PostgreSQL, `0005_sales_functions.sql`). Each does the successful case of the general
    // transaction below with the same statements, or changes nothing and says `Declined`, and
    // the general transaction then decides. A database without them says `Unsupported`. Each
    // call commits on its own, so it must be over before `deadline` (it declines otherwise):
    // a caller that gave up must not be left with a write it was told did not happen.

    /// [`SqlStore::sql_hold_seats`]: the held seats, in seat order.
    fn fast_hold<'a>(
        _pool: &'a Pool<Self>,
        _deadline: std::time::Instant,
        _hold: &'a NewHold,
        _fan_lock: i64,
        _candidates: i64,
    ) -> BoxFuture<'a, Result<Fast<Vec<SeatInfoRow>>, sqlx::Error>> {
        Box::pin(async { Ok(Fast::Unsupported) })
    }

    /// [`SqlStore::sql_checkout`]: the order's seats, in seat order, with the hold's event.
    fn fast_checkout<'a>(
        _pool: &'a Pool<Self>,
        _deadline: std::time::Instant,
        _order: &'a NewOrder,
    ) -> BoxFuture<'a, Result<Fast<Vec<CheckoutRow>>, sqlx::Error>> {
        Box::pin(async { Ok(Fast::Unsupported) })
    }

    /// [`SqlStore::sql_begin_payment`] when the order has no attempt yet: the order on each of
    /// its seats' rows, in seat order.
    fn fast_begin_payment<'a>(
        _pool: &'a Pool<Self>,
        _deadline: std::time::Instant,
        _payment: &'a NewPayment,
    ) -> BoxFuture<'a, Result<Fast<Vec<OrderSeatRow>>, sqlx::Error>> {
        Box::pin(async { Ok(Fast::Unsupported) })
    }

    /// [`SqlStore::sql_claim_for_capture`].
    fn fast_claim<'a>(
        _pool: &'a Pool<Self>,
        _deadline: std::time::Instant,
        _payment_id: &'a str,
        _intent_id: &'a str,
        _now_ms: i64,
        _until_ms: i64,
    ) -> BoxFuture<'a, Result<Fast<()>, sqlx::Error>> {
        Box::pin(async { Ok(Fast::Unsupported) })
    }

    /// [`SqlStore::sql_complete_sale`].
    fn fast_complete_sale<'a>(
        _pool: &'a Pool<Self>,
        _deadline: std::time::Instant,
        _payment_id: &'a str,
        _intent_id: &'a str,
        _tickets: &'a [NewTicket],
        _now_ms: i64,
    ) -> BoxFuture<'a, Result<Fast<i64>, sqlx::Error>> {
        Box::pin(async { Ok(Fast::Unsupported) })
    }
}

/// Writes sent to the database in batches (PostgreSQL: `taquilla_hold_batch`, migration 0007):
/// the writes of one step that arrive while earlier ones are in flight go together, one
/// transaction and a fixed number of statements for all of them. Each answers as the step's
/// one-round-trip form ([`Dialect::fast_hold`]) would for this one write: done, or declined
/// (then the general transaction decides), never an error (a batch that fails declines every
/// write in it, and each write's general transaction meets the error on its own).
pub(crate) trait Batches: Send + Sync + std::fmt::Debug {
    /// A best-available hold (any other is declined).
    fn hold(
        &self,
        hold: &NewHold,
        fan_lock: i64,
        candidates: i64,
        deadline: std::time::Instant,
    ) -> BoxFuture<'static, Fast<Vec<SeatInfoRow>>>;
}

/// What a one-round-trip write did.
#[derive(Debug)]
pub(crate) enum Fast<T> {
    /// Done and committed.
    Done(T),
    /// Not the successful case: nothing changed, the general transaction decides.
    Declined,
    /// The database has no such function.
    Unsupported,
}

impl<T> Fast<T> {
    /// A function's answer: its SQLSTATE TQ001 (not the successful case, or past the budget),
    /// 55P03 (a lock it would have waited for) and 40P01 / 40001 (a deadlock or serialization
    /// failure, rolled back) mean declined: the general transaction runs.
    pub(crate) fn from_call(result: Result<T, sqlx::Error>) -> Result<Fast<T>, sqlx::Error> {
        match result {
            Ok(value) => Ok(Fast::Done(value)),
            Err(sqlx::Error::Database(db))
                if matches!(
                    db.code().as_deref(),
                    Some("TQ001" | "55P03" | "40P01" | "40001")
                ) =>
            {
                Ok(Fast::Declined)
            }
            Err(e) => Err(e),
        }
    }
}

/// When a one-round-trip write must be over: three quarters of the call's time from now, so
/// that it commits, or declines, well before the caller stops waiting.
fn fast_deadline(call_timeout: std::time::Duration) -> std::time::Instant {
    std::time::Instant::now() + call_timeout * 3 / 4
}

/// The steps that have a one-round-trip form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastStep {
    Hold = 0,
    Checkout = 1,
    BeginPayment = 2,
    Claim = 3,
    CompleteSale = 4,
}

impl FastStep {
    pub const ALL: [FastStep; 5] = [
        FastStep::Hold,
        FastStep::Checkout,
        FastStep::BeginPayment,
        FastStep::Claim,
        FastStep::CompleteSale,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FastStep::Hold => "hold",
            FastStep::Checkout => "checkout",
            FastStep::BeginPayment => "begin_payment",
            FastStep::Claim => "claim",
            FastStep::CompleteSale => "complete_sale",
        }
    }
}

/// How often each step's one-round-trip form was done or declined (then the general
/// transaction ran). A store without the functions counts nothing.
#[derive(Debug, Default)]
pub struct FastPathCounts {
    done: [std::sync::atomic::AtomicU64; 5],
    declined: [std::sync::atomic::AtomicU64; 5],
    batches: [std::sync::atomic::AtomicU64; 5],
    batched: [std::sync::atomic::AtomicU64; 5],
}

impl FastPathCounts {
    /// Counts `outcome` and returns its value when done.
    fn count<T>(&self, step: FastStep, outcome: Fast<T>) -> Option<T> {
        use std::sync::atomic::Ordering::Relaxed;
        match outcome {
            Fast::Done(value) => {
                self.done[step as usize].fetch_add(1, Relaxed);
                Some(value)
            }
            Fast::Declined => {
                self.declined[step as usize].fetch_add(1, Relaxed);
                None
            }
            Fast::Unsupported => None,
        }
    }

    /// Counts one batch of `writes` writes of `step` sent to the database.
    pub(crate) fn count_batch(&self, step: FastStep, writes: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.batches[step as usize].fetch_add(1, Relaxed);
        self.batched[step as usize].fetch_add(writes as u64, Relaxed);
    }

    /// Batches of `step` sent to the database so far, and the writes they carried.
    pub fn batches(&self, step: FastStep) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.batches[step as usize].load(Relaxed),
            self.batched[step as usize].load(Relaxed),
        )
    }

    /// Done and declined so far for `step`.
    pub fn get(&self, step: FastStep) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.done[step as usize].load(Relaxed),
            self.declined[step as usize].load(Relaxed),
        )
    }
}

/// The store over one database. PostgreSQL uses one pool for both fields; SQLite a single
/// writer connection and a pool of readers.
#[derive(Debug, Clone)]
pub(crate) struct SqlStore<DB: Database> {
    pub(crate) writer: Pool<DB>,
    pub(crate) reader: Pool<DB>,
    pub(crate) breaker: std::sync::Arc<crate::breaker::Breaker>,
    /// Longest one store call may take.
    pub(crate) call_timeout: std::time::Duration,
    /// When a call last got an answer from the database (ms since `epoch`): tells a hung
    /// database (no answers at all) from a busy one (slow answers).
    pub(crate) last_answer_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub(crate) epoch: std::time::Instant,
    pub(crate) fast_path: std::sync::Arc<FastPathCounts>,
    /// Where best-available holds go first, on a database that batches them.
    pub(crate) batches: Option<std::sync::Arc<dyn Batches>>,
}

impl<DB: Database> SqlStore<DB> {
    fn full(&self, pool: &Pool<DB>) -> bool {
        pool.size() >= pool.options().get_max_connections()
    }

    /// Runs one store call through the database's circuit breaker, bounded in time. A lost
    /// connection counts as a failure. Running out of time, and waiting in vain for a
    /// connection while the pool had room to open one, count as failures only if no call at
    /// all got an answer from the database while this one waited: otherwise the database is
    /// working, only slowly (two cores saturated by a crowd), which is load for shedding to
    /// answer, and opening the breaker on it would turn a busy minute into an outage (found at
    /// 400,000 fans). Whatever the database answered is a success.
    pub(crate) async fn guarded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let permit = self
            .breaker
            .permit()
            .map_err(|refused| StoreError::BreakerOpen {
                retry_in_ms: u64::try_from(refused.retry_in.as_millis()).unwrap_or(u64::MAX),
            })?;
        let started = self.epoch.elapsed().as_millis() as u64;
        let silent_since_start = || {
            self.last_answer_ms
                .load(std::sync::atomic::Ordering::Relaxed)
                < started
        };
        let result = match tokio::time::timeout(self.call_timeout, call).await {
            Ok(result) => result,
            // A database that stops answering without closing the connection (packets
            // dropped, a hung server) would otherwise hold the call, and never count as down.
            Err(_) => {
                if silent_since_start() {
                    permit.failure();
                } else {
                    drop(permit);
                }
                return Err(StoreError::Unavailable(format!(
                    "the database did not answer within {} s",
                    self.call_timeout.as_secs_f64()
                )));
            }
        };
        if !matches!(
            &result,
            Err(StoreError::Unavailable(_) | StoreError::Busy(_))
        ) {
            self.last_answer_ms.store(
                self.epoch.elapsed().as_millis() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        match &result {
            Err(StoreError::Unavailable(_)) => permit.failure(),
            // A pool with room that still got no connection in time, while nothing else got an
            // answer either: the database is down. Every connection in use, or other calls
            // answered meanwhile: load.
            Err(StoreError::Busy(_))
                if !self.full(&self.writer) && !self.full(&self.reader) && silent_since_start() =>
            {
                permit.failure()
            }
            Err(StoreError::Busy(_)) => drop(permit),
            _ => permit.success(),
        }
        result
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct HoldRow {
    id: String,
    event_id: String,
    fan_id: String,
    state: String,
    seat_count: i64,
    subtotal: i64,
    created_at: i64,
    expires_at: i64,
    order_id: Option<String>,
    seat_ids: String,
}

#[derive(Debug, FromRow)]
pub(crate) struct SeatInfoRow {
    seat_id: i64,
    section_id: String,
    row_label: String,
    seat_number: i64,
    price: i64,
}

/// A seat of a new order, with the order's event and its fee and currency
/// (`taquilla_checkout`).
#[derive(Debug, FromRow)]
pub(crate) struct CheckoutRow {
    event_id: String,
    fee: i64,
    currency: String,
    #[sqlx(flatten)]
    seat: SeatInfoRow,
}

/// An order on one of its seats' rows (`taquilla_begin_payment`).
#[derive(Debug, FromRow)]
pub(crate) struct OrderSeatRow {
    #[sqlx(flatten)]
    order: OrderRow,
    #[sqlx(flatten)]
    seat: SeatInfoRow,
}

#[derive(Debug, FromRow)]
pub(crate) struct OrderRow {
    id: String,
    event_id: String,
    fan_id: String,
    hold_id: String,
    state: String,
    subtotal: i64,
    fees: i64,
    total: i64,
    currency: String,
    expires_at: i64,
    created_at: i64,
    paid_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub(crate) struct PaymentRow {
    id: String,
    order_id: String,
    state: String,
    amount: i64,
    currency: String,
    provider: String,
    provider_intent_id: Option<String>,
    idempotency_key: String,
    provider_idempotency_key: String,
    failure_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Debug, FromRow)]
pub(crate) struct TicketRow {
    id: String,
    seat_id: i64,
    code: String,
    state: String,
    issued_at: i64,
}

#[derive(Debug, FromRow)]
pub(crate) struct OrderItemRow {
    order_id: String,
    seat_id: i64,
    section_id: String,
    row_label: String,
    seat_number: i64,
    price: i64,
}

#[derive(Debug, FromRow)]
pub(crate) struct OrderTicketRow {
    order_id: String,
    id: String,
    seat_id: i64,
    code: String,
    state: String,
    issued_at: i64,
}

#[derive(Debug, FromRow)]
pub(crate) struct BanRow {
    kind: String,
    value: String,
}

#[derive(Debug, FromRow)]
pub(crate) struct DetailRow {
    detail: String,
}

#[derive(Debug, FromRow)]
pub(crate) struct CountOnly {
    n: i64,
}

const SEAT_INFO: &str = "seat_id, section_id, row_label, seat_number, price";
const HOLD_COLUMNS: &str =
    "id, event_id, fan_id, state, seat_count, subtotal, created_at, expires_at, order_id, seat_ids";
const ORDER_COLUMNS: &str = "id, event_id, fan_id, hold_id, state, subtotal, fees, total, currency, \
     expires_at, created_at, paid_at";
const PAYMENT_COLUMNS: &str = "id, order_id, state, amount, currency, provider, provider_intent_id, \
     idempotency_key, provider_idempotency_key, failure_reason, created_at, updated_at";
/// A seat a writer may take: free, or locked by a lock that has lapsed (`$now` is the bind
/// index given).
fn takeable(now: usize) -> String {
    format!(
        "(status = 'AVAILABLE' OR (status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND locked_until <= ${now}))"
    )
}

/// `($from, $from+1, …)` with `n` placeholders.
fn placeholders(from: usize, n: usize) -> String {
    let list: Vec<String> = (from..from + n).map(|i| format!("${i}")).collect();
    format!("({})", list.join(", "))
}

/// Parses a hold's comma-separated seat ids.
fn parse_ids(ids: &str) -> Result<Vec<u32>, StoreError> {
    ids.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| StoreError::Corrupt(format!("bad seat id list {ids:?}")))
        })
        .collect()
}

fn u32_of(what: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} is out of range")))
}

fn seat_info(row: SeatInfoRow) -> Result<SeatInfo, StoreError> {
    Ok(SeatInfo {
        seat_id: u32_of("seat id", row.seat_id)?,
        number: u32_of("seat number", row.seat_number)?,
        section_id: row.section_id,
        row_label: row.row_label,
        price_minor: row.price,
    })
}

fn hold_record(row: HoldRow, seats: Vec<SeatInfo>) -> Result<HoldRecord, StoreError> {
    Ok(HoldRecord {
        state: HoldState::from_db(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown hold state {:?}", row.state)))?,
        seat_count: u32_of("seat count", row.seat_count)?,
        id: row.id,
        event_id: row.event_id,
        fan_id: row.fan_id,
        subtotal_minor: row.subtotal,
        created_at_ms: row.created_at,
        expires_at_ms: row.expires_at,
        order_id: row.order_id,
        seats,
    })
}

fn ticket_record(
    id: String,
    seat_id: i64,
    code: String,
    state: &str,
    issued_at: i64,
) -> Result<TicketRecord, StoreError> {
    Ok(TicketRecord {
        seat_id: u32_of("seat id", seat_id)?,
        state: match state {
            "VALID" => TicketState::Valid,
            "REFUNDED" => TicketState::Refunded,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown ticket state {other:?}"
                )));
            }
        },
        id,
        code,
        issued_at_ms: issued_at,
    })
}

fn order_record(
    row: OrderRow,
    items: Vec<SeatInfo>,
    payments: Vec<PaymentRecord>,
    tickets: Vec<TicketRecord>,
) -> Result<OrderRecord, StoreError> {
    Ok(OrderRecord {
        state: OrderState::from_db(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown order state {:?}", row.state)))?,
        id: row.id,
        event_id: row.event_id,
        fan_id: row.fan_id,
        hold_id: row.hold_id,
        subtotal_minor: row.subtotal,
        fees_minor: row.fees,
        total_minor: row.total,
        currency: row.currency,
        expires_at_ms: row.expires_at,
        created_at_ms: row.created_at,
        paid_at_ms: row.paid_at,
        items,
        payments,
        tickets,
    })
}

fn payment_record(row: PaymentRow) -> Result<PaymentRecord, StoreError> {
    Ok(PaymentRecord {
        state: PaymentState::from_db(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown payment state {:?}", row.state)))?,
        id: row.id,
        order_id: row.order_id,
        amount_minor: row.amount,
        currency: row.currency,
        provider: row.provider,
        provider_intent_id: row.provider_intent_id,
        idempotency_key: row.idempotency_key,
        provider_idempotency_key: row.provider_idempotency_key,
        failure_reason: row.failure_reason,
        created_at_ms: row.created_at,
        updated_at_ms: row.updated_at,
    })
}

/// The record of a hold just made, its seats in seat order.
fn held_record(hold: &NewHold, seats: Vec<SeatInfo>) -> HoldRecord {
    HoldRecord {
        id: hold.hold_id.clone(),
        event_id: hold.event_id.clone(),
        fan_id: hold.fan_id.clone(),
        state: HoldState::Active,
        seat_count: seats.len() as u32,
        subtotal_minor: seats.iter().map(|s| s.price_minor).sum(),
        created_at_ms: hold.now_ms,
        expires_at_ms: hold.expires_at_ms,
        order_id: None,
        seats,
    }
}

/// What an order takes from its event.
#[derive(Debug, FromRow)]
struct EventFees {
    event_id: String,
    fee_per_ticket: i64,
    currency: String,
}

/// Whether the caller of `order` may act in `event_id` (a pass admits to one event).
fn in_event(order: &NewOrder, event_id: &str) -> bool {
    order.event_id.as_deref().is_none_or(|e| e == event_id)
}

/// The record of an order just created from a hold in `event`, its seats in seat order.
fn created_order(order: &NewOrder, event: EventFees, seats: Vec<SeatInfo>) -> OrderRecord {
    let EventFees {
        event_id,
        fee_per_ticket,
        currency,
    } = event;
    let subtotal: i64 = seats.iter().map(|s| s.price_minor).sum();
    let fees = fee_per_ticket * seats.len() as i64;
    OrderRecord {
        id: order.order_id.clone(),
        event_id,
        fan_id: order.fan_id.clone(),
        hold_id: order.hold_id.clone(),
        state: OrderState::PendingPayment,
        subtotal_minor: subtotal,
        fees_minor: fees,
        total_minor: subtotal + fees,
        currency,
        expires_at_ms: order.expires_at_ms,
        created_at_ms: order.now_ms,
        paid_at_ms: None,
        items: seats,
        payments: Vec::new(),
        tickets: Vec::new(),
    }
}

/// The record of a payment attempt just started.
fn started_payment(new: &NewPayment, order: &OrderRecord) -> PaymentRecord {
    PaymentRecord {
        id: new.payment_id.clone(),
        order_id: new.order_id.clone(),
        state: PaymentState::Pending,
        amount_minor: order.total_minor,
        currency: order.currency.clone(),
        provider: new.provider.clone(),
        provider_intent_id: None,
        idempotency_key: new.idempotency_key.clone(),
        provider_idempotency_key: new.payment_id.clone(),
        failure_reason: None,
        created_at_ms: new.now_ms,
        updated_at_ms: new.now_ms,
    }
}

/// A stable 64-bit key for the per-fan lock.
fn fan_lock_key(event_id: &str, fan_id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{event_id}\n{fan_id}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Rolls back `tx` and returns `value`: the transaction found it could not do its work.
async fn abandon<DB: Database, T>(
    tx: sqlx::Transaction<'static, DB>,
    value: T,
) -> Result<T, StoreError> {
    tx.rollback().await?;
    Ok(value)
}

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    <DB as Database>::QueryResult: Affected,
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> String: Decode<'r, DB>,
    usize: ColumnIndex<<DB as Database>::Row>,
    for<'a> &'a str: ColumnIndex<<DB as Database>::Row>,
    for<'r> EventRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> SectionRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> SeatPlaceRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> SeatStatusRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> CountRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> HoldRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> SeatInfoRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> OrderRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> PaymentRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> TicketRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> DetailRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> BanRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> OrderItemRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> OrderTicketRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> CountOnly: FromRow<'r, <DB as Database>::Row>,
{
    /// The seat ids of an order, in seat order.
    async fn order_seat_ids(
        conn: &mut <DB as Database>::Connection,
        order_id: &str,
    ) -> Result<Vec<u32>, StoreError> {
        let rows: Vec<CountOnly> = sqlx::query_as(
            "SELECT seat_id AS n FROM order_items WHERE order_id = $1 ORDER BY seat_id",
        )
        .bind(order_id)
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter().map(|r| u32_of("seat id", r.n)).collect()
    }

    pub(crate) async fn sql_ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    pub(crate) async fn sql_create_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        let venue = &event.layout.venue;
        sqlx::query(
            "INSERT INTO venues (id, name, city) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, city = excluded.city",
        )
        .bind(venue.id.as_str())
        .bind(venue.name.as_str())
        .bind(venue.city.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO events (id, venue_id, name, artist, starts_at, currency, fee_per_ticket, \
             max_per_fan, capacity, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(event.id.as_str())
        .bind(venue.id.as_str())
        .bind(event.name.as_str())
        .bind(event.artist.as_str())
        .bind(event.starts_at_ms)
        .bind(event.currency.as_str())
        .bind(event.fee_per_ticket_minor)
        .bind(i64::from(event.max_tickets_per_fan))
        .bind(i64::from(event.layout.capacity()))
        .bind(event.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("an event with id {:?} already exists", event.id))
            }
            other => other,
        })?;
        for (position, section) in event.layout.sections.iter().enumerate() {
            sqlx::query(
                "INSERT INTO sections (event_id, id, name, kind, price, capacity, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(event.id.as_str())
            .bind(section.id.as_str())
            .bind(section.name.as_str())
            .bind(section.kind.as_db())
            .bind(section.price_minor)
            .bind(i64::from(section.capacity))
            .bind(position as i64)
            .execute(&mut *tx)
            .await?;
        }
        DB::insert_seats(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn sql_events(
        &self,
        only: Option<&str>,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let (events, sections): (Vec<EventRow>, Vec<SectionRow>) = match only {
            Some(event_id) => {
                let events = sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events e JOIN venues v ON v.id = e.venue_id WHERE e.id = $1"
                ))
                .bind(event_id)
                .fetch_all(&self.reader)
                .await?;
                let sections = sqlx::query_as(
                    "SELECT event_id, id, name, kind, price, capacity FROM sections \
                     WHERE event_id = $1 ORDER BY position",
                )
                .bind(event_id)
                .fetch_all(&self.reader)
                .await?;
                (events, sections)
            }
            None => {
                let events = sqlx::query_as(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events e JOIN venues v ON v.id = e.venue_id \
                     ORDER BY e.starts_at, e.id"
                ))
                .fetch_all(&self.reader)
                .await?;
                let sections = sqlx::query_as(
                    "SELECT event_id, id, name, kind, price, capacity FROM sections \
                     ORDER BY event_id, position",
                )
                .fetch_all(&self.reader)
                .await?;
                (events, sections)
            }
        };
        super::assemble_events(events, sections)
    }

    pub(crate) async fn sql_seat_places(
        &self,
        event_id: &str,
    ) -> Result<Vec<SeatPlace>, StoreError> {
        let rows: Vec<SeatPlaceRow> = sqlx::query_as(
            "SELECT seat_id, section_id, row_label, seat_number FROM seats WHERE event_id = $1 \
             ORDER BY seat_id",
        )
        .bind(event_id)
        .fetch_all(&self.reader)
        .await?;
        super::seat_places(rows)
    }

    pub(crate) async fn sql_seat_statuses(
        &self,
        event_id: &str,
        now_ms: i64,
    ) -> Result<Vec<SeatStatus>, StoreError> {
        let rows: Vec<SeatStatusRow> = sqlx::query_as(
            "SELECT status, locked_until FROM seats WHERE event_id = $1 ORDER BY seat_id",
        )
        .bind(event_id)
        .fetch_all(&self.reader)
        .await?;
        super::seat_statuses(rows, now_ms)
    }

    pub(crate) async fn sql_inventory_counts(
        &self,
        now_ms: i64,
    ) -> Result<CountsByEvent, StoreError> {
        let rows: Vec<CountRow> = sqlx::query_as(COUNTS_SQL)
            .bind(now_ms)
            .fetch_all(&self.reader)
            .await?;
        super::counts_by_event(rows)
    }

    pub(crate) async fn sql_has_unsold_seats(&self, event_id: &str) -> Result<bool, StoreError> {
        // A sold seat has no `locked_by`; a locked one always has (the table's checks): the
        // partial indexes on free seats (`seats_available`) and on locked ones (`seats_lapse`)
        // answer both halves without touching sold seats.
        let unsold: i64 = sqlx::query_scalar(
            "SELECT CAST(CASE WHEN EXISTS (SELECT 1 FROM seats WHERE event_id = $1 AND status = 'AVAILABLE') \
             OR EXISTS (SELECT 1 FROM seats WHERE event_id = $1 AND locked_by IS NOT NULL) \
             THEN 1 ELSE 0 END AS BIGINT)",
        )
        .bind(event_id)
        .fetch_one(&self.reader)
        .await?;
        Ok(unsold != 0)
    }

    pub(crate) async fn sql_record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
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

    async fn fan_ticket_count(
        conn: &mut <DB as Database>::Connection,
        event_id: &str,
        fan_id: &str,
        now_ms: i64,
    ) -> Result<u32, StoreError> {
        // Live holds plus orders that are paid or still within their time to pay (a claim for
        // capture extends that time, so an order being charged keeps counting).
        let row: CountOnly = sqlx::query_as(
            "SELECT CAST( \
               (SELECT COALESCE(SUM(seat_count), 0) FROM holds WHERE event_id = $1 AND fan_id = $2 \
                  AND state = 'ACTIVE' AND expires_at > $3) + \
               (SELECT COALESCE(SUM(CASE WHEN state = 'PAID' \
                                          OR (state = 'PENDING_PAYMENT' AND expires_at > $3) \
                                        THEN seat_count ELSE 0 END), 0) \
                  FROM orders WHERE event_id = $1 AND fan_id = $2) \
             AS BIGINT) AS n",
        )
        .bind(event_id)
        .bind(fan_id)
        .bind(now_ms)
        .fetch_one(&mut *conn)
        .await?;
        u32_of("ticket count", row.n)
    }

    pub(crate) async fn sql_hold_seats(&self, hold: &NewHold) -> Result<HoldOutcome, StoreError> {
        let fan_lock = fan_lock_key(&hold.event_id, &hold.fan_id);
        let candidates = match &hold.selection {
            Selection::Best { quantity, .. } => i64::from(*quantity) * 4 + 8,
            Selection::Seats(_) => 0,
        };
        let deadline = fast_deadline(self.call_timeout);
        let fast = match (&self.batches, &hold.selection) {
            (Some(batches), Selection::Best { .. }) => {
                batches.hold(hold, fan_lock, candidates, deadline).await
            }
            _ => DB::fast_hold(&self.writer, deadline, hold, fan_lock, candidates).await?,
        };
        if let Some(rows) = self.fast_path.count(FastStep::Hold, fast) {
            let held = rows.into_iter().map(seat_info).collect::<Result<_, _>>()?;
            return Ok(HoldOutcome::Held(held_record(hold, held)));
        }
        let mut tx = self.writer.begin().await?;
        DB::relax_durability(&mut tx).await?;
        DB::lock_fan(&mut tx, fan_lock).await?;
        let already =
            Self::fan_ticket_count(&mut tx, &hold.event_id, &hold.fan_id, hold.now_ms).await?;
        let wanted = match &hold.selection {
            Selection::Seats(ids) => ids.len() as u32,
            Selection::Best { quantity, .. } => *quantity,
        };
        if already + wanted > hold.max_per_fan {
            return abandon(
                tx,
                HoldOutcome::OverCap {
                    already,
                    cap: hold.max_per_fan,
                },
            )
            .await;
        }
        let seat_ids: Vec<u32> = match &hold.selection {
            Selection::Seats(ids) => {
                // Lock the rows in seat order first, so concurrent holds of overlapping seats
                // queue instead of deadlocking.
                let mut sorted = ids.clone();
                sorted.sort_unstable();
                let sql = format!(
                    "SELECT seat_id FROM seats WHERE event_id = $1 AND seat_id IN {} ORDER BY seat_id{}",
                    placeholders(2, sorted.len()),
                    DB::FOR_UPDATE
                );
                let mut lock = sqlx::query(&sql).bind(hold.event_id.as_str());
                for id in &sorted {
                    lock = lock.bind(i64::from(*id));
                }
                lock.execute(&mut *tx).await?;
                sorted
            }
            Selection::Best {
                section_id,
                quantity,
            } => {
                let limit = candidates;
                // First skip rows other holds are taking, so concurrent buyers spread out. If that
                // leaves too few, the skipped rows may yet come free (their holds take only a few
                // of the rows they locked): wait for them, in seat order, and re-check each.
                // The first pass runs in a savepoint: rolling back to it releases the rows it
                // locked out of order, so the second pass waits while holding no seat locks and
                // ordered waits cannot deadlock.
                let retries = DB::SKIP_LOCKED != DB::FOR_UPDATE;
                if retries {
                    sqlx::query("SAVEPOINT candidates")
                        .execute(&mut *tx)
                        .await?;
                }
                let mut rows: Vec<SeatInfoRow> = Vec::new();
                for (pass, suffix) in [DB::SKIP_LOCKED, DB::FOR_UPDATE].into_iter().enumerate() {
                    if pass == 1 {
                        sqlx::query("ROLLBACK TO SAVEPOINT candidates")
                            .execute(&mut *tx)
                            .await?;
                    }
                    let sql = if DB::SPLIT_CANDIDATES {
                        format!(
                            "WITH free AS (SELECT {SEAT_INFO} FROM seats \
                               WHERE event_id = $1 AND section_id = $2 AND status = 'AVAILABLE' \
                               ORDER BY seat_id LIMIT $4{suffix}), \
                             lapsed AS (SELECT {SEAT_INFO} FROM seats \
                               WHERE event_id = $1 AND section_id = $2 \
                                 AND status IN ('SOFT_LOCKED', 'HARD_LOCKED') \
                                 AND locked_by IS NOT NULL AND locked_until <= $3 \
                               ORDER BY seat_id + 0 LIMIT $4{suffix}) \
                             SELECT {SEAT_INFO} FROM (SELECT * FROM free UNION ALL SELECT * FROM lapsed) c \
                             ORDER BY seat_id LIMIT $4"
                        )
                    } else {
                        format!(
                            "SELECT {SEAT_INFO} FROM seats WHERE event_id = $1 AND section_id = $2 AND {} \
                             ORDER BY seat_id LIMIT $4{suffix}",
                            takeable(3),
                        )
                    };
                    rows = sqlx::query_as(&sql)
                        .bind(hold.event_id.as_str())
                        .bind(section_id.as_str())
                        .bind(hold.now_ms)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?;
                    if rows.len() >= *quantity as usize || !retries {
                        break;
                    }
                }
                let candidates: Vec<Candidate> = rows
                    .into_iter()
                    .map(|r| {
                        Ok(Candidate {
                            seat_id: u32_of("seat id", r.seat_id)?,
                            row: r.row_label,
                            number: u32_of("seat number", r.seat_number)?,
                        })
                    })
                    .collect::<Result<_, StoreError>>()?;
                match choose_best(&candidates, *quantity as usize) {
                    Some(ids) => ids,
                    None => {
                        let available = candidates.len() as u32;
                        return abandon(tx, HoldOutcome::NotEnough { available }).await;
                    }
                }
            }
        };
        let sql = format!(
            "UPDATE seats SET status = 'SOFT_LOCKED', locked_by = $2, locked_until = $3, hold_id = $4, \
             order_id = NULL, version = version + 1, updated_at = $5 \
             WHERE event_id = $1 AND {} AND seat_id IN {} RETURNING {SEAT_INFO}",
            takeable(5),
            placeholders(6, seat_ids.len())
        );
        let mut update = sqlx::query_as::<_, SeatInfoRow>(&sql)
            .bind(hold.event_id.as_str())
            .bind(hold.fan_id.as_str())
            .bind(hold.expires_at_ms)
            .bind(hold.hold_id.as_str())
            .bind(hold.now_ms);
        for id in &seat_ids {
            update = update.bind(i64::from(*id));
        }
        let mut held: Vec<SeatInfo> = update
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(seat_info)
            .collect::<Result<_, _>>()?;
        if held.len() != seat_ids.len() {
            let got: std::collections::HashSet<u32> = held.iter().map(|s| s.seat_id).collect();
            let taken = seat_ids
                .into_iter()
                .filter(|id| !got.contains(id))
                .collect();
            return abandon(tx, HoldOutcome::Taken(taken)).await;
        }
        held.sort_by_key(|s| s.seat_id);
        let record = held_record(hold, held);
        sqlx::query(
            "INSERT INTO holds (id, event_id, fan_id, state, seat_count, subtotal, created_at, expires_at, seat_ids) \
             VALUES ($1, $2, $3, 'ACTIVE', $4, $5, $6, $7, $8)",
        )
        .bind(hold.hold_id.as_str())
        .bind(hold.event_id.as_str())
        .bind(hold.fan_id.as_str())
        .bind(i64::from(record.seat_count))
        .bind(record.subtotal_minor)
        .bind(hold.now_ms)
        .bind(hold.expires_at_ms)
        .bind(
            record
                .seats
                .iter()
                .map(|s| s.seat_id.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(HoldOutcome::Held(record))
    }

    pub(crate) async fn sql_get_hold(
        &self,
        hold_id: &str,
    ) -> Result<Option<HoldRecord>, StoreError> {
        let Some(row) = sqlx::query_as::<_, HoldRow>(&format!(
            "SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1"
        ))
        .bind(hold_id)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let ids = parse_ids(&row.seat_ids)?;
        let sql = format!(
            "SELECT {SEAT_INFO} FROM seats WHERE event_id = $1 AND hold_id = $2 AND seat_id IN {} \
             ORDER BY seat_id",
            placeholders(3, ids.len())
        );
        let mut query = sqlx::query_as::<_, SeatInfoRow>(&sql)
            .bind(row.event_id.as_str())
            .bind(hold_id);
        for id in &ids {
            query = query.bind(i64::from(*id));
        }
        let seats = query
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .map(seat_info)
            .collect::<Result<_, _>>()?;
        Ok(Some(hold_record(row, seats)?))
    }

    pub(crate) async fn sql_release_hold(
        &self,
        hold_id: &str,
        fan_id: &str,
        now_ms: i64,
    ) -> Result<ReleaseOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        DB::relax_durability(&mut tx).await?;
        let Some(row) = sqlx::query_as::<_, HoldRow>(&format!(
            "SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1{}",
            DB::FOR_UPDATE
        ))
        .bind(hold_id)
        .fetch_optional(&mut *tx)
        .await?
        .filter(|h| h.fan_id == fan_id) else {
            return abandon(tx, ReleaseOutcome::NotFound).await;
        };
        let state = HoldState::from_db(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown hold state {:?}", row.state)))?;
        if state != HoldState::Active {
            return abandon(tx, ReleaseOutcome::NotActive(state)).await;
        }
        let ids = parse_ids(&row.seat_ids)?;
        let sql = format!(
            "UPDATE seats SET status = 'AVAILABLE', locked_by = NULL, locked_until = NULL, hold_id = NULL, \
             version = version + 1, updated_at = $3 \
             WHERE event_id = $1 AND hold_id = $2 AND status = 'SOFT_LOCKED' AND seat_id IN {}",
            placeholders(4, ids.len())
        );
        let mut release = sqlx::query(&sql)
            .bind(row.event_id.as_str())
            .bind(hold_id)
            .bind(now_ms);
        for id in &ids {
            release = release.bind(i64::from(*id));
        }
        let freed = release.execute(&mut *tx).await?.affected();
        let new_state = if row.expires_at <= now_ms {
            HoldState::Expired
        } else {
            HoldState::Released
        };
        sqlx::query("UPDATE holds SET state = $2 WHERE id = $1 AND state = 'ACTIVE'")
            .bind(hold_id)
            .bind(new_state.as_db())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if new_state == HoldState::Expired {
            return Ok(ReleaseOutcome::NotActive(HoldState::Expired));
        }
        Ok(ReleaseOutcome::Released(freed as u32))
    }

    /// An order with its seats and payments, and its tickets if `with_tickets`; `lock` takes
    /// the order row for the rest of the transaction.
    async fn order_in(
        conn: &mut <DB as Database>::Connection,
        clause: &str,
        key: &str,
        second: Option<&str>,
        lock: bool,
        with_tickets: bool,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE {clause}{}",
            if lock { DB::FOR_UPDATE } else { "" }
        );
        let mut query = sqlx::query_as::<_, OrderRow>(&sql).bind(key);
        if let Some(second) = second {
            query = query.bind(second);
        }
        let Some(row) = query.fetch_optional(&mut *conn).await? else {
            return Ok(None);
        };
        let items = sqlx::query_as::<_, SeatInfoRow>(
            "SELECT oi.seat_id, s.section_id, s.row_label, s.seat_number, oi.price \
             FROM order_items oi JOIN seats s ON s.event_id = oi.event_id AND s.seat_id = oi.seat_id \
             WHERE oi.order_id = $1 ORDER BY oi.seat_id",
        )
        .bind(row.id.as_str())
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(seat_info)
        .collect::<Result<_, _>>()?;
        let payments = sqlx::query_as::<_, PaymentRow>(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = $1 ORDER BY created_at, id"
        ))
        .bind(row.id.as_str())
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(payment_record)
        .collect::<Result<_, _>>()?;
        let tickets = if with_tickets {
            sqlx::query_as::<_, TicketRow>(
                "SELECT id, seat_id, code, state, issued_at FROM tickets WHERE order_id = $1 ORDER BY seat_id",
            )
            .bind(row.id.as_str())
            .fetch_all(&mut *conn)
            .await?
        } else {
            Vec::new()
        }
        .into_iter()
        .map(|t| ticket_record(t.id, t.seat_id, t.code, &t.state, t.issued_at))
        .collect::<Result<_, StoreError>>()?;
        Ok(Some(order_record(row, items, payments, tickets)?))
    }

    pub(crate) async fn sql_get_order(
        &self,
        order_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        // The order, its seats, payments and tickets are separate statements: read in one
        // snapshot, or a payment that turned AUTHORIZED between two of them shows beside the
        // order's time to pay from before its claim extended it.
        let mut tx = self.reader.begin().await?;
        for setup in DB::SNAPSHOT_SETUP {
            sqlx::query(setup).execute(&mut *tx).await?;
        }
        let order = Self::order_in(&mut tx, "id = $1", order_id, None, false, true).await?;
        tx.commit().await?;
        Ok(order)
    }

    pub(crate) async fn sql_checkout(
        &self,
        order: &NewOrder,
    ) -> Result<CheckoutOutcome, StoreError> {
        let deadline = fast_deadline(self.call_timeout);
        let fast = DB::fast_checkout(&self.writer, deadline, order).await?;
        if let Some(rows) = self.fast_path.count(FastStep::Checkout, fast) {
            let event = rows
                .first()
                .map(|r| EventFees {
                    event_id: r.event_id.clone(),
                    fee_per_ticket: r.fee,
                    currency: r.currency.clone(),
                })
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "order {} was created without seats",
                        order.order_id
                    ))
                })?;
            let seats = rows
                .into_iter()
                .map(|r| seat_info(r.seat))
                .collect::<Result<_, _>>()?;
            return Ok(CheckoutOutcome::Created(created_order(order, event, seats)));
        }
        let mut tx = self.writer.begin().await?;
        DB::relax_durability(&mut tx).await?;
        if let Some(existing) = Self::order_in(
            &mut tx,
            "fan_id = $1 AND checkout_key = $2",
            &order.fan_id,
            Some(&order.checkout_key),
            false,
            true,
        )
        .await?
        {
            // The key names another hold (wherever it is): say so. The same hold seen through a
            // pass for another event: as if it did not exist, as below.
            let outcome = if existing.hold_id != order.hold_id {
                CheckoutOutcome::KeyUsedForOtherHold
            } else if !in_event(order, &existing.event_id) {
                CheckoutOutcome::HoldNotFound
            } else {
                CheckoutOutcome::Existing(existing)
            };
            return abandon(tx, outcome).await;
        }
        let Some(hold) = sqlx::query_as::<_, HoldRow>(&format!(
            "SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1{}",
            DB::FOR_UPDATE
        ))
        .bind(order.hold_id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .filter(|h| h.fan_id == order.fan_id && in_event(order, &h.event_id)) else {
            return abandon(tx, CheckoutOutcome::HoldNotFound).await;
        };
        match HoldState::from_db(&hold.state) {
            Some(HoldState::Active) => {}
            Some(HoldState::CheckedOut) => {
                let existing =
                    Self::order_in(&mut tx, "hold_id = $1", &order.hold_id, None, false, true)
                        .await?;
                return abandon(
                    tx,
                    existing.map_or(CheckoutOutcome::HoldNotActive(HoldState::CheckedOut), |o| {
                        CheckoutOutcome::Existing(o)
                    }),
                )
                .await;
            }
            Some(other) => return abandon(tx, CheckoutOutcome::HoldNotActive(other)).await,
            None => {
                return Err(StoreError::Corrupt(format!(
                    "unknown hold state {:?}",
                    hold.state
                )));
            }
        }
        let ids = parse_ids(&hold.seat_ids)?;
        let sql = format!(
            "UPDATE seats SET status = 'HARD_LOCKED', order_id = $3, locked_until = $4, \
             version = version + 1, updated_at = $5 \
             WHERE event_id = $1 AND hold_id = $2 AND status = 'SOFT_LOCKED' AND locked_until > $5 \
             AND seat_id IN {} RETURNING {SEAT_INFO}",
            placeholders(6, ids.len())
        );
        let mut lock = sqlx::query_as::<_, SeatInfoRow>(&sql)
            .bind(hold.event_id.as_str())
            .bind(order.hold_id.as_str())
            .bind(order.order_id.as_str())
            .bind(order.expires_at_ms)
            .bind(order.now_ms);
        for id in &ids {
            lock = lock.bind(i64::from(*id));
        }
        let mut seats: Vec<SeatInfo> = lock
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(seat_info)
            .collect::<Result<_, _>>()?;
        seats.sort_by_key(|s| s.seat_id);
        if seats.len() as u64 != hold.seat_count as u64 || seats.is_empty() {
            tx.rollback().await?;
            // The hold lapsed: record it, so the fan sees why.
            sqlx::query("UPDATE holds SET state = 'EXPIRED' WHERE id = $1 AND state = 'ACTIVE'")
                .bind(order.hold_id.as_str())
                .execute(&self.writer)
                .await?;
            return Ok(CheckoutOutcome::HoldExpired);
        }
        let event: EventFees = sqlx::query_as(
            "SELECT id AS event_id, fee_per_ticket, currency FROM events WHERE id = $1",
        )
        .bind(hold.event_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let created = created_order(order, event, seats);
        sqlx::query(
            "INSERT INTO orders (id, event_id, fan_id, hold_id, state, subtotal, fees, total, currency, \
             expires_at, checkout_key, created_at, updated_at, seat_count) \
             VALUES ($1, $2, $3, $4, 'PENDING_PAYMENT', $5, $6, $7, $8, $9, $10, $11, $11, $12)",
        )
        .bind(order.order_id.as_str())
        .bind(hold.event_id.as_str())
        .bind(order.fan_id.as_str())
        .bind(order.hold_id.as_str())
        .bind(created.subtotal_minor)
        .bind(created.fees_minor)
        .bind(created.total_minor)
        .bind(created.currency.as_str())
        .bind(order.expires_at_ms)
        .bind(order.checkout_key.as_str())
        .bind(order.now_ms)
        .bind(created.items.len() as i64)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "INSERT INTO order_items (order_id, event_id, seat_id, price) VALUES {}",
            (0..created.items.len())
                .map(|i| format!("($1, $2, ${}, ${})", 3 + 2 * i, 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut items = sqlx::query(&sql)
            .bind(order.order_id.as_str())
            .bind(hold.event_id.as_str());
        for seat in &created.items {
            items = items.bind(i64::from(seat.seat_id)).bind(seat.price_minor);
        }
        items.execute(&mut *tx).await?;
        sqlx::query("UPDATE holds SET state = 'CHECKED_OUT', order_id = $2 WHERE id = $1")
            .bind(order.hold_id.as_str())
            .bind(order.order_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CheckoutOutcome::Created(created))
    }

    pub(crate) async fn sql_begin_payment(
        &self,
        new: &NewPayment,
    ) -> Result<BeginPayment, StoreError> {
        let deadline = fast_deadline(self.call_timeout);
        let fast = DB::fast_begin_payment(&self.writer, deadline, new).await?;
        if let Some(rows) = self.fast_path.count(FastStep::BeginPayment, fast) {
            let mut rows = rows.into_iter();
            let first = rows.next().ok_or_else(|| {
                StoreError::Corrupt(format!("order {} has no seats", new.order_id))
            })?;
            let mut items = vec![seat_info(first.seat)?];
            for row in rows {
                items.push(seat_info(row.seat)?);
            }
            let order = order_record(first.order, items, Vec::new(), Vec::new())?;
            return Ok(BeginPayment::Started(started_payment(new, &order), order));
        }
        let mut tx = self.writer.begin().await?;
        // The order row stays locked: payment starts of one order are serialized.
        let Some(order) = Self::order_in(&mut tx, "id = $1", &new.order_id, None, true, false)
            .await?
            .filter(|o| new.fan_id.as_ref().is_none_or(|fan| *fan == o.fan_id))
            .filter(|o| {
                new.event_id
                    .as_ref()
                    .is_none_or(|event| *event == o.event_id)
            })
        else {
            return abandon(tx, BeginPayment::OrderNotFound).await;
        };
        if let Some(same) = order
            .payments
            .iter()
            .find(|p| p.idempotency_key == new.idempotency_key)
        {
            let same = same.clone();
            return abandon(tx, BeginPayment::Replay(same, order)).await;
        }
        if let Some(in_flight) = order.payments.iter().find(|p| p.state.in_flight()) {
            let in_flight = in_flight.clone();
            return abandon(tx, BeginPayment::InFlight(in_flight)).await;
        }
        if order.state != OrderState::PendingPayment || order.expires_at_ms <= new.now_ms {
            return abandon(tx, BeginPayment::NotPayable(order)).await;
        }
        sqlx::query(
            "INSERT INTO payments (id, order_id, state, amount, currency, provider, idempotency_key, \
             provider_idempotency_key, created_at, updated_at) \
             VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $1, $7, $7)",
        )
        .bind(new.payment_id.as_str())
        .bind(new.order_id.as_str())
        .bind(order.total_minor)
        .bind(order.currency.as_str())
        .bind(new.provider.as_str())
        .bind(new.idempotency_key.as_str())
        .bind(new.now_ms)
        .execute(&mut *tx)
        .await?;
        let payment = started_payment(new, &order);
        tx.commit().await?;
        Ok(BeginPayment::Started(payment, order))
    }

    pub(crate) async fn sql_get_payment(
        &self,
        payment_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        sqlx::query_as::<_, PaymentRow>(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
        ))
        .bind(payment_id)
        .fetch_optional(&self.reader)
        .await?
        .map(payment_record)
        .transpose()
    }

    pub(crate) async fn sql_finish_payment(
        &self,
        payment_id: &str,
        state: PaymentState,
        intent_id: Option<&str>,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE payments SET state = $2, provider_intent_id = COALESCE($3, provider_intent_id), \
             failure_reason = $4, updated_at = $5 \
             WHERE id = $1 AND state IN ('PENDING', 'AUTHORIZED')",
        )
        .bind(payment_id)
        .bind(state.as_db())
        .bind(intent_id)
        .bind(reason)
        .bind(now_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(crate) async fn sql_forget_payment(&self, payment_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM payments WHERE id = $1 AND state = 'PENDING'")
            .bind(payment_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub(crate) async fn sql_claim_for_capture(
        &self,
        payment_id: &str,
        intent_id: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let deadline = fast_deadline(self.call_timeout);
        let fast = DB::fast_claim(
            &self.writer,
            deadline,
            payment_id,
            intent_id,
            now_ms,
            until_ms,
        )
        .await?;
        if self.fast_path.count(FastStep::Claim, fast).is_some() {
            return Ok(true);
        }
        let mut tx = self.writer.begin().await?;
        DB::relax_durability(&mut tx).await?;
        let Some(order) = sqlx::query_as::<_, OrderRow>(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = $1){}",
            DB::FOR_UPDATE
        ))
        .bind(payment_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return abandon(tx, false).await;
        };
        let ids = Self::order_seat_ids(&mut tx, &order.id).await?;
        let sql = format!(
            "UPDATE seats SET locked_until = {}(locked_until, $4), version = version + 1, updated_at = $3 \
             WHERE event_id = $1 AND order_id = $2 AND status = 'HARD_LOCKED' AND locked_until > $3 \
             AND seat_id IN {}",
            DB::GREATEST,
            placeholders(5, ids.len())
        );
        let mut extend = sqlx::query(&sql)
            .bind(order.event_id.as_str())
            .bind(order.id.as_str())
            .bind(now_ms)
            .bind(until_ms);
        for id in &ids {
            extend = extend.bind(i64::from(*id));
        }
        let extended = extend.execute(&mut *tx).await?.affected();
        if order.state != "PENDING_PAYMENT" || ids.is_empty() || extended != ids.len() as u64 {
            return abandon(tx, false).await;
        }
        // The order's time to pay follows its seats' claim (the per-fan cap counts it meanwhile).
        sqlx::query(&format!(
            "UPDATE orders SET expires_at = {}(expires_at, $2), updated_at = $3 WHERE id = $1",
            DB::GREATEST
        ))
        .bind(order.id.as_str())
        .bind(until_ms)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let authorized = sqlx::query(
            "UPDATE payments SET state = 'AUTHORIZED', provider_intent_id = $2, updated_at = $3 \
             WHERE id = $1 AND state IN ('PENDING', 'AUTHORIZED')",
        )
        .bind(payment_id)
        .bind(intent_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .affected();
        if authorized != 1 {
            return abandon(tx, false).await;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn sql_complete_sale(
        &self,
        payment_id: &str,
        intent_id: &str,
        tickets: &[NewTicket],
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let deadline = fast_deadline(self.call_timeout);
        let fast = DB::fast_complete_sale(
            &self.writer,
            deadline,
            payment_id,
            intent_id,
            tickets,
            now_ms,
        )
        .await?;
        if let Some(expires_at) = self.fast_path.count(FastStep::CompleteSale, fast) {
            return Ok(Some(expires_at));
        }
        let mut tx = self.writer.begin().await?;
        let Some(order) = sqlx::query_as::<_, OrderRow>(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = $1){}",
            DB::FOR_UPDATE
        ))
        .bind(payment_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return abandon(tx, None).await;
        };
        let ids: Vec<u32> = tickets.iter().map(|t| t.seat_id).collect();
        let sql = format!(
            "UPDATE seats SET status = 'SOLD', sold_to = $3, sold_at = $4, locked_by = NULL, \
             locked_until = NULL, hold_id = NULL, version = version + 1, updated_at = $4 \
             WHERE event_id = $1 AND order_id = $2 AND status = 'HARD_LOCKED' AND seat_id IN {}",
            placeholders(5, ids.len())
        );
        let mut sell = sqlx::query(&sql)
            .bind(order.event_id.as_str())
            .bind(order.id.as_str())
            .bind(order.fan_id.as_str())
            .bind(now_ms);
        for id in &ids {
            sell = sell.bind(i64::from(*id));
        }
        let sold = sell.execute(&mut *tx).await?.affected();
        let paid = sqlx::query(
            "UPDATE orders SET state = 'PAID', paid_at = $2, updated_at = $2 \
             WHERE id = $1 AND state = 'PENDING_PAYMENT'",
        )
        .bind(order.id.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .affected();
        // Any attempt in flight: normally AUTHORIZED by its claim, but the claim commits
        // without waiting for its WAL, so a database crash can lose it and leave the attempt
        // PENDING while the provider holds the captured money. The capture is what counts.
        let captured = sqlx::query(
            "UPDATE payments SET state = 'CAPTURED', provider_intent_id = $3, updated_at = $2 \
             WHERE id = $1 AND state IN ('PENDING', 'AUTHORIZED')",
        )
        .bind(payment_id)
        .bind(now_ms)
        .bind(intent_id)
        .execute(&mut *tx)
        .await?
        .affected();
        if sold != tickets.len() as u64 || paid != 1 || captured != 1 || tickets.is_empty() {
            return abandon(tx, None).await;
        }
        let sql = format!(
            "INSERT INTO tickets (id, event_id, seat_id, order_id, fan_id, code, state, issued_at) VALUES {}",
            (0..tickets.len())
                .map(|i| format!(
                    "(${}, $1, ${}, $2, $3, ${}, 'VALID', $4)",
                    5 + 3 * i,
                    6 + 3 * i,
                    7 + 3 * i
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut insert = sqlx::query(&sql)
            .bind(order.event_id.as_str())
            .bind(order.id.as_str())
            .bind(order.fan_id.as_str())
            .bind(now_ms);
        for ticket in tickets {
            insert = insert
                .bind(ticket.id.as_str())
                .bind(i64::from(ticket.seat_id))
                .bind(ticket.code.as_str());
        }
        insert.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(order.expires_at))
    }

    pub(crate) async fn sql_stale_payments(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        sqlx::query_as::<_, PaymentRow>(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE state IN ('PENDING', 'AUTHORIZED') \
             AND failure_reason IS NULL AND updated_at < $1 ORDER BY updated_at LIMIT $2"
        ))
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.writer)
        .await?
        .into_iter()
        .map(payment_record)
        .collect()
    }

    pub(crate) async fn sql_sweep(
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

    pub(crate) async fn sql_refund_order(
        &self,
        order_id: &str,
        return_seats: bool,
        now_ms: i64,
    ) -> Result<RefundOutcome, StoreError> {
        let mut tx = self.writer.begin().await?;
        let Some(order) = sqlx::query_as::<_, OrderRow>(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1{}",
            DB::FOR_UPDATE
        ))
        .bind(order_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return abandon(tx, RefundOutcome::NotFound).await;
        };
        let state = OrderState::from_db(&order.state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown order state {:?}", order.state)))?;
        if state != OrderState::Paid {
            return abandon(tx, RefundOutcome::NotPaid(state)).await;
        }
        sqlx::query(
            "UPDATE tickets SET state = 'REFUNDED' WHERE order_id = $1 AND state = 'VALID'",
        )
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE payments SET state = 'REFUNDED', updated_at = $2 WHERE order_id = $1 AND state = 'CAPTURED'",
        )
        .bind(order_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if return_seats {
            let ids = Self::order_seat_ids(&mut tx, order_id).await?;
            let sql = format!(
                "UPDATE seats SET status = 'AVAILABLE', sold_to = NULL, sold_at = NULL, order_id = NULL, \
                 hold_id = NULL, locked_by = NULL, locked_until = NULL, version = version + 1, updated_at = $3 \
                 WHERE event_id = $1 AND order_id = $2 AND status = 'SOLD' AND seat_id IN {}",
                placeholders(4, ids.len())
            );
            let mut release = sqlx::query(&sql)
                .bind(order.event_id.as_str())
                .bind(order_id)
                .bind(now_ms);
            for id in &ids {
                release = release.bind(i64::from(*id));
            }
            release.execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE orders SET state = 'REFUNDED', updated_at = $2 WHERE id = $1")
            .bind(order_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let refunded = Self::order_in(&mut tx, "id = $1", order_id, None, false, true)
            .await?
            .ok_or_else(|| StoreError::Corrupt("the refunded order vanished".into()))?;
        tx.commit().await?;
        Ok(RefundOutcome::Refunded(Box::new(refunded)))
    }

    pub(crate) async fn sql_update_sale(
        &self,
        event_id: &str,
        update: &SaleUpdate,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE events SET sale_state = $2, sale_phase = $3, sale_opens_at = $4, \
             shuffle_seed = COALESCE($5, shuffle_seed), presale_codes = $6 WHERE id = $1",
        )
        .bind(event_id)
        .bind(update.state.as_db())
        .bind(update.phase.as_db())
        .bind(update.opens_at_ms)
        .bind(update.shuffle_seed.as_deref())
        .bind(update.presale_codes.join(","))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(crate) async fn sql_list_orders(
        &self,
        event_id: &str,
        state: Option<OrderState>,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let (before_at, before_id) = before.unwrap_or((i64::MAX, String::new()));
        let rows: Vec<OrderRow> = sqlx::query_as(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE event_id = $1 AND ($2 = '' OR state = $2) \
             AND (created_at < $3 OR (created_at = $3 AND $4 <> '' AND id < $4)) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(event_id)
        .bind(state.map(OrderState::as_db).unwrap_or(""))
        .bind(before_at)
        .bind(before_id.as_str())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids = placeholders(1, rows.len());
        let items_sql = format!(
            "SELECT oi.order_id, oi.seat_id, s.section_id, s.row_label, s.seat_number, oi.price \
             FROM order_items oi JOIN seats s ON s.event_id = oi.event_id AND s.seat_id = oi.seat_id \
             WHERE oi.order_id IN {ids} ORDER BY oi.seat_id"
        );
        let mut items_query = sqlx::query_as::<_, OrderItemRow>(&items_sql);
        for row in &rows {
            items_query = items_query.bind(row.id.as_str());
        }
        let items = items_query.fetch_all(&self.reader).await?;
        let payments_sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id IN {ids} ORDER BY created_at, id"
        );
        let mut payments_query = sqlx::query_as::<_, PaymentRow>(&payments_sql);
        for row in &rows {
            payments_query = payments_query.bind(row.id.as_str());
        }
        let payments = payments_query.fetch_all(&self.reader).await?;
        let tickets_sql = format!(
            "SELECT order_id, id, seat_id, code, state, issued_at FROM tickets WHERE order_id IN {ids} \
             ORDER BY seat_id"
        );
        let mut tickets_query = sqlx::query_as::<_, OrderTicketRow>(&tickets_sql);
        for row in &rows {
            tickets_query = tickets_query.bind(row.id.as_str());
        }
        let tickets = tickets_query.fetch_all(&self.reader).await?;
        let mut orders = Vec::with_capacity(rows.len());
        for row in rows {
            let order_items = items
                .iter()
                .filter(|i| i.order_id == row.id)
                .map(|i| {
                    seat_info(SeatInfoRow {
                        seat_id: i.seat_id,
                        section_id: i.section_id.clone(),
                        row_label: i.row_label.clone(),
                        seat_number: i.seat_number,
                        price: i.price,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let order_payments = payments
                .iter()
                .filter(|p| p.order_id == row.id)
                .map(|p| payment_record(p.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            let order_tickets = tickets
                .iter()
                .filter(|t| t.order_id == row.id)
                .map(|t| {
                    ticket_record(
                        t.id.clone(),
                        t.seat_id,
                        t.code.clone(),
                        &t.state,
                        t.issued_at,
                    )
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            orders.push(order_record(
                row,
                order_items,
                order_payments,
                order_tickets,
            )?);
        }
        Ok(orders)
    }

    pub(crate) async fn sql_add_ban(
        &self,
        kind: &str,
        value: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bans (kind, value, reason, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(kind)
        .bind(value)
        .bind(reason)
        .bind(now_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(crate) async fn sql_list_bans(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows: Vec<BanRow> = sqlx::query_as("SELECT kind, value FROM bans")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(|r| (r.kind, r.value)).collect())
    }

    pub(crate) async fn sql_paid_totals(&self, event_id: &str) -> Result<(u64, i64), StoreError> {
        let count: CountOnly = sqlx::query_as(
            "SELECT COUNT(*) AS n FROM orders WHERE event_id = $1 AND state = 'PAID'",
        )
        .bind(event_id)
        .fetch_one(&self.reader)
        .await?;
        let total: CountOnly = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) AS n FROM orders \
             WHERE event_id = $1 AND state = 'PAID'",
        )
        .bind(event_id)
        .fetch_one(&self.reader)
        .await?;
        Ok((count.n.max(0) as u64, total.n))
    }

    pub(crate) async fn sql_update_admission(
        &self,
        event_id: &str,
        settings: &AdmissionSettings,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE events SET rate_per_minute = $2, burst = $3, max_active = $4, pow_difficulty = $5, \
             admission_auto = $6 WHERE id = $1",
        )
        .bind(event_id)
        .bind(i64::from(settings.rate_per_minute))
        .bind(i64::from(settings.burst))
        .bind(i64::from(settings.max_active))
        .bind(i64::from(settings.pow_difficulty))
        .bind(i64::from(settings.auto))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub(crate) async fn sql_audit(
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
        for status in super::seat_statuses(rows, now_ms)? {
            counts.add(status, 1);
        }
        let capacity: CountOnly = sqlx::query_as("SELECT capacity AS n FROM events WHERE id = $1")
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

/// The audit's invariant queries: each returns one row per violation, with a sentence. `$1` is
/// the event; `$2`, where used, the audit time.
const AUDIT_QUERIES: &[(&str, &str, &str)] = &[
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
