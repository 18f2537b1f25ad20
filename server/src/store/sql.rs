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

use sqlx::{Database, FromRow, Pool};

use crate::breaker::Breaker;
use crate::domain::SeatStatus;
use crate::domain::seat_map::SeatPlace;

use super::fast::{Batches, Fast};
use super::orders::CheckoutRow;
use super::payments::OrderSeatRow;
use super::{
    AdmissionSettings, AuditEntry, AuditFindings, Backend, BeginPayment, CheckInOutcome,
    CheckoutOutcome, CountsByEvent, EventRecord, FastPathCounts, HoldOutcome, HoldRecord, NewEvent,
    NewHold, NewOrder, NewPayment, NewTicket, OrderRecord, OrderState, PaymentRecord, PaymentState,
    RefundOutcome, ReleaseOutcome, RetireRefusal, SaleUpdate, SeatInfo, Store, StoreError,
    SweepStats, TicketKeyRecord,
};

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
    /// Which database this is.
    const BACKEND: Backend;
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
    /// a 5,000-place standing area); on SQLite the split was not faster (docs/benchmarks-log.md).
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
pub(crate) struct SeatInfoRow {
    pub(super) seat_id: i64,
    pub(super) section_id: String,
    pub(super) row_label: String,
    pub(super) seat_number: i64,
    pub(super) price: i64,
}

#[derive(Debug, FromRow)]
pub(crate) struct CountOnly {
    pub(super) n: i64,
}

pub(super) const SEAT_INFO: &str = "seat_id, section_id, row_label, seat_number, price";

/// A seat a writer may take: free, or locked by a lock that has lapsed (`$now` is the bind
/// index given).
pub(super) fn takeable(now: usize) -> String {
    format!(
        "(status = 'AVAILABLE' OR (status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND locked_until <= ${now}))"
    )
}

/// `($from, $from+1, …)` with `n` placeholders.
pub(super) fn placeholders(from: usize, n: usize) -> String {
    let list: Vec<String> = (from..from + n).map(|i| format!("${i}")).collect();
    format!("({})", list.join(", "))
}

pub(super) fn u32_of(what: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} is out of range")))
}

pub(super) fn seat_info(row: SeatInfoRow) -> Result<SeatInfo, StoreError> {
    Ok(SeatInfo {
        seat_id: u32_of("seat id", row.seat_id)?,
        number: u32_of("seat number", row.seat_number)?,
        section_id: row.section_id,
        row_label: row.row_label,
        price_minor: row.price,
    })
}

/// A stable 64-bit key for the per-fan lock.
pub(super) fn fan_lock_key(event_id: &str, fan_id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{event_id}\n{fan_id}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// Rolls back `tx` and returns `value`: the transaction found it could not do its work.
pub(super) async fn abandon<DB: Database, T>(
    tx: sqlx::Transaction<'static, DB>,
    value: T,
) -> Result<T, StoreError> {
    tx.rollback().await?;
    Ok(value)
}

/// Writes an `impl` block of [`SqlStore`] (inherent, or of a trait) for every database the store
/// runs on, under the one set of bounds its queries need. The bounds are stated here once because
/// Rust does not carry a trait's where clauses to the trait's users, so they cannot live on
/// [`Dialect`]. rustfmt does not format inside a macro's braces: keep blocks in its style by hand.
macro_rules! sql_impl {
    ($(#[$attr:meta])* impl<DB> $($path:ident)::+ $(for $store:ident)? <DB> { $($body:tt)* }) => {
        $(#[$attr])*
        impl<DB> $($path)::+ $(for $store)? <DB>
        where
            DB: $crate::store::sql::Dialect,
            DB::QueryResult: $crate::store::sql::Affected,
            for<'q> DB::Arguments<'q>: ::sqlx::IntoArguments<'q, DB>,
            for<'c> &'c mut DB::Connection: ::sqlx::Executor<'c, Database = DB>,
            for<'q> i64: ::sqlx::Encode<'q, DB> + ::sqlx::Type<DB>,
            for<'q> &'q str: ::sqlx::Encode<'q, DB> + ::sqlx::Type<DB>,
            for<'q> String: ::sqlx::Encode<'q, DB> + ::sqlx::Type<DB>,
            for<'q> Option<String>: ::sqlx::Encode<'q, DB> + ::sqlx::Type<DB>,
            for<'q> Option<&'q str>: ::sqlx::Encode<'q, DB> + ::sqlx::Type<DB>,
            for<'r> i64: ::sqlx::Decode<'r, DB>,
            for<'r> String: ::sqlx::Decode<'r, DB>,
            usize: ::sqlx::ColumnIndex<DB::Row>,
            for<'a> &'a str: ::sqlx::ColumnIndex<DB::Row>,
            for<'r> $crate::store::events::EventRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::events::SectionRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::events::SeatPlaceRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::events::SeatStatusRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::events::CountRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::holds::HoldRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::sql::SeatInfoRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::orders::OrderRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::payments::PaymentRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::orders::TicketRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::audit::DetailRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::bans::BanRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::ticket_keys::TicketKeyRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::check_in::DoorTicketRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::orders::OrderItemRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::orders::OrderTicketRow: ::sqlx::FromRow<'r, DB::Row>,
            for<'r> $crate::store::sql::CountOnly: ::sqlx::FromRow<'r, DB::Row>,
        {
            $($body)*
        }
    };
}
pub(crate) use sql_impl;

sql_impl! {
    #[async_trait::async_trait]
    impl<DB> Store for SqlStore<DB> {
        fn backend(&self) -> Backend {
            DB::BACKEND
        }
        fn breaker(&self) -> &Breaker {
            &self.breaker
        }
        fn fast_path(&self) -> &FastPathCounts {
            &self.fast_path
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.guarded(async {
                sqlx::query("SELECT 1").execute(&self.reader).await?;
                Ok(())
            })
            .await
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
        async fn begin_payment(&self, payment: &NewPayment) -> Result<BeginPayment, StoreError> {
            self.guarded(SqlStore::sql_begin_payment(self, payment))
                .await
        }
        async fn get_payment(&self, payment_id: &str) -> Result<Option<PaymentRecord>, StoreError> {
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
        async fn update_sale(&self, event_id: &str, update: &SaleUpdate) -> Result<(), StoreError> {
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
        async fn check_in(
            &self,
            ticket_id: &str,
            gate: &str,
            now_ms: i64,
        ) -> Result<CheckInOutcome, StoreError> {
            self.guarded(SqlStore::sql_check_in(self, ticket_id, gate, now_ms))
                .await
        }
        async fn ticket_keys(&self) -> Result<Vec<TicketKeyRecord>, StoreError> {
            self.guarded(SqlStore::sql_ticket_keys(self)).await
        }
        async fn first_ticket_key(&self, kid: &str, now_ms: i64) -> Result<(), StoreError> {
            self.guarded(SqlStore::sql_first_ticket_key(self, kid, now_ms))
                .await
        }
        async fn rotate_ticket_key(&self, new_kid: &str, now_ms: i64) -> Result<(), StoreError> {
            self.guarded(SqlStore::sql_rotate_ticket_key(self, new_kid, now_ms))
                .await
        }
        async fn retire_ticket_key(
            &self,
            kid: &str,
            now_ms: i64,
        ) -> Result<Result<(), RetireRefusal>, StoreError> {
            self.guarded(SqlStore::sql_retire_ticket_key(self, kid, now_ms))
                .await
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
        async fn audit(&self, event_id: &str, now_ms: i64) -> Result<AuditFindings, StoreError> {
            self.guarded(SqlStore::sql_audit(self, event_id, now_ms))
                .await
        }
    }
}
