//! The production store: PostgreSQL through one connection pool. Migrations run on start (sqlx
//! takes an advisory lock, so several nodes may start at once). Concurrency is PostgreSQL's:
//! explicit seats are locked in seat order (`FOR UPDATE`), best-available candidates skip rows
//! other transactions are taking (`FOR UPDATE SKIP LOCKED`), and a fan's holds in one event are
//! serialized by a transaction-scoped advisory lock.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, Postgres};

use super::fast::{Batches, Fast};
use super::orders::CheckoutRow;
use super::payments::OrderSeatRow;
use super::sql::{BoxFuture, Dialect, SeatInfoRow, SqlStore};
use super::{
    Backend, FastPathCounts, FastStep, NewEvent, NewHold, NewOrder, NewPayment, NewTicket,
    Selection, StoreOptions,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub(crate) type PgStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    const BACKEND: Backend = Backend::Postgres;
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const GREATEST: &'static str = "GREATEST";
    const SPLIT_CANDIDATES: bool = true;
    const SWEEP_BY_EVENT: bool = true;
    const SNAPSHOT_SETUP: &'static [&'static str] =
        &["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"];
    const AUDIT_SETUP: &'static [&'static str] = &[
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        // The audit reads whole events: hash joins are right whatever the statistics say.
        // Right after a sale fills the tables, before autovacuum analyzes them, the planner
        // takes them for empty and picks nested loops (an 18,000-seat audit took 40 s).
        "SET LOCAL enable_nestloop = off",
    ];

    fn lock_fan<'a>(
        conn: &'a mut PgConnection,
        key: i64,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }

    fn relax_durability<'a>(conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }

    fn insert_seats<'a>(
        conn: &'a mut PgConnection,
        event: &'a NewEvent,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            // One statement for all seats: arrays unnested server-side.
            let seats = event.layout.seats();
            let ids: Vec<i64> = seats.iter().map(|s| i64::from(s.seat_id)).collect();
            let sections: Vec<&str> = seats
                .iter()
                .map(|s| event.layout.sections[s.section].id.as_str())
                .collect();
            let rows: Vec<&str> = seats.iter().map(|s| s.row_label.as_str()).collect();
            let numbers: Vec<i64> = seats.iter().map(|s| i64::from(s.number)).collect();
            let prices: Vec<i64> = seats.iter().map(|s| s.price_minor).collect();
            sqlx::query(
                "INSERT INTO seats (event_id, seat_id, section_id, row_label, seat_number, price, updated_at) \
                 SELECT $1, u.seat_id, u.section_id, u.row_label, u.seat_number, u.price, $7 \
                 FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[]) \
                   AS u (seat_id, section_id, row_label, seat_number, price)",
            )
            .bind(&event.id)
            .bind(&ids)
            .bind(&sections)
            .bind(&rows)
            .bind(&numbers)
            .bind(&prices)
            .bind(event.created_at_ms)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })
    }

    fn fast_hold<'a>(
        pool: &'a sqlx::PgPool,
        deadline: std::time::Instant,
        hold: &'a NewHold,
        fan_lock: i64,
        candidates: i64,
    ) -> BoxFuture<'a, Result<Fast<Vec<SeatInfoRow>>, sqlx::Error>> {
        Box::pin(async move {
            let (seats, section, quantity) = match &hold.selection {
                Selection::Seats(ids) => (
                    Some(ids.iter().map(|id| i64::from(*id)).collect::<Vec<i64>>()),
                    None,
                    0,
                ),
                Selection::Best {
                    section_id,
                    quantity,
                } => (None, Some(section_id.as_str()), *quantity as i32),
            };
            let Some((mut conn, budget_ms)) = fast_connection(pool, deadline).await? else {
                return Ok(Fast::Declined);
            };
            Fast::from_call(
                sqlx::query_as(
                    "SELECT seat_id, section_id, row_label, seat_number, price \
                     FROM taquilla_hold($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                     ORDER BY seat_id",
                )
                .bind(hold.event_id.as_str())
                .bind(hold.fan_id.as_str())
                .bind(hold.hold_id.as_str())
                .bind(hold.now_ms)
                .bind(hold.expires_at_ms)
                .bind(i64::from(hold.max_per_fan))
                .bind(fan_lock)
                .bind(seats)
                .bind(section)
                .bind(quantity)
                .bind(candidates)
                .bind(budget_ms)
                .fetch_all(&mut *conn)
                .await,
            )
        })
    }

    fn fast_checkout<'a>(
        pool: &'a sqlx::PgPool,
        deadline: std::time::Instant,
        order: &'a NewOrder,
    ) -> BoxFuture<'a, Result<Fast<Vec<CheckoutRow>>, sqlx::Error>> {
        Box::pin(async move {
            let Some((mut conn, budget_ms)) = fast_connection(pool, deadline).await? else {
                return Ok(Fast::Declined);
            };
            Fast::from_call(
                sqlx::query_as(
                    "SELECT event_id, fee, currency, seat_id, section_id, row_label, seat_number, \
                     price FROM taquilla_checkout($1, $2, $3, $4, $5, $6, $7, $8) ORDER BY seat_id",
                )
                .bind(order.order_id.as_str())
                .bind(order.hold_id.as_str())
                .bind(order.fan_id.as_str())
                .bind(order.event_id.as_deref())
                .bind(order.checkout_key.as_str())
                .bind(order.now_ms)
                .bind(order.expires_at_ms)
                .bind(budget_ms)
                .fetch_all(&mut *conn)
                .await,
            )
        })
    }

    fn fast_begin_payment<'a>(
        pool: &'a sqlx::PgPool,
        deadline: std::time::Instant,
        payment: &'a NewPayment,
    ) -> BoxFuture<'a, Result<Fast<Vec<OrderSeatRow>>, sqlx::Error>> {
        Box::pin(async move {
            let Some((mut conn, budget_ms)) = fast_connection(pool, deadline).await? else {
                return Ok(Fast::Declined);
            };
            Fast::from_call(
                sqlx::query_as(
                    "SELECT * FROM taquilla_begin_payment($1, $2, $3, $4, $5, $6, $7, $8) ORDER BY seat_id",
                )
                .bind(payment.payment_id.as_str())
                .bind(payment.order_id.as_str())
                .bind(payment.fan_id.as_deref())
                .bind(payment.event_id.as_deref())
                .bind(payment.idempotency_key.as_str())
                .bind(payment.provider.as_str())
                .bind(payment.now_ms)
                .bind(budget_ms)
                .fetch_all(&mut *conn)
                .await,
            )
        })
    }

    fn fast_claim<'a>(
        pool: &'a sqlx::PgPool,
        deadline: std::time::Instant,
        payment_id: &'a str,
        intent_id: &'a str,
        now_ms: i64,
        until_ms: i64,
    ) -> BoxFuture<'a, Result<Fast<()>, sqlx::Error>> {
        Box::pin(async move {
            let Some((mut conn, budget_ms)) = fast_connection(pool, deadline).await? else {
                return Ok(Fast::Declined);
            };
            Fast::from_call(
                sqlx::query("SELECT taquilla_claim_for_capture($1, $2, $3, $4, $5)")
                    .bind(payment_id)
                    .bind(intent_id)
                    .bind(now_ms)
                    .bind(until_ms)
                    .bind(budget_ms)
                    .execute(&mut *conn)
                    .await
                    .map(drop),
            )
        })
    }

    fn fast_complete_sale<'a>(
        pool: &'a sqlx::PgPool,
        deadline: std::time::Instant,
        payment_id: &'a str,
        intent_id: &'a str,
        tickets: &'a [NewTicket],
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Fast<i64>, sqlx::Error>> {
        Box::pin(async move {
            let ids: Vec<&str> = tickets.iter().map(|t| t.id.as_str()).collect();
            let seats: Vec<i64> = tickets.iter().map(|t| i64::from(t.seat_id)).collect();
            let codes: Vec<&str> = tickets.iter().map(|t| t.code.as_str()).collect();
            let Some((mut conn, budget_ms)) = fast_connection(pool, deadline).await? else {
                return Ok(Fast::Declined);
            };
            Fast::from_call(
                sqlx::query_scalar("SELECT taquilla_sell($1, $2, $3, $4, $5, $6, $7)")
                    .bind(payment_id)
                    .bind(intent_id)
                    .bind(now_ms)
                    .bind(&ids)
                    .bind(&seats)
                    .bind(&codes)
                    .bind(budget_ms)
                    .fetch_one(&mut *conn)
                    .await,
            )
        })
    }
}

/// Kept back from a one-round-trip write's budget for what follows the function's own check:
/// its commit (a WAL flush for payment records and sales) and the answer's way back.
const FAST_COMMIT_ALLOWANCE: std::time::Duration = std::time::Duration::from_millis(100);

/// The least time worth giving a one-round-trip write.
const MIN_FAST_BUDGET: std::time::Duration = std::time::Duration::from_millis(10);

/// A connection for a one-round-trip write and what is left until `deadline` less the commit
/// allowance, in whole milliseconds; `None` when too little is left to try (the general
/// transaction runs then, and is rolled back if its caller stops waiting).
async fn fast_connection(
    pool: &sqlx::PgPool,
    deadline: std::time::Instant,
) -> Result<Option<(sqlx::pool::PoolConnection<Postgres>, i64)>, sqlx::Error> {
    let conn = pool.acquire().await?;
    let left = deadline
        .saturating_duration_since(std::time::Instant::now())
        .saturating_sub(FAST_COMMIT_ALLOWANCE);
    let budget_ms = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
    Ok((left >= MIN_FAST_BUDGET).then_some((conn, budget_ms)))
}

/// Most writes one batch carries.
const MAX_BATCH: usize = 16;

/// Batches of one step in flight at once. While they are, the writes that arrive wait and go
/// together in the next batch: the fewer in flight, the larger the batches. One in flight
/// sold 4-8 % more than two in the same runs, with batches of ~4.1 holds instead of ~2.2
/// (docs/benchmarks-log.md, "Holds in batches").
const BATCHES_IN_FLIGHT: usize = 1;

/// A write waiting for its batch.
struct Pending<R, A> {
    request: R,
    deadline: std::time::Instant,
    answer: tokio::sync::oneshot::Sender<Fast<A>>,
}

/// One step's batches: a task gathers the writes waiting and runs each group with `run`, at
/// most [`BATCHES_IN_FLIGHT`] at once.
struct Gatherer<R, A> {
    queue: tokio::sync::mpsc::UnboundedSender<Pending<R, A>>,
}

impl<R, A> std::fmt::Debug for Gatherer<R, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gatherer").finish_non_exhaustive()
    }
}

impl<R: Send + 'static, A: Send + 'static> Gatherer<R, A> {
    /// Starts the gathering task on the current runtime; it ends when the store is dropped.
    fn start<F, Fut>(run: F) -> Gatherer<R, A>
    where
        F: Fn(Vec<Pending<R, A>>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (queue, waiting) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(gather(waiting, run));
        Gatherer { queue }
    }

    /// Queues one write; its answer comes with its batch's. A gathering task that has ended
    /// (its runtime shut down) declines.
    fn submit(&self, request: R, deadline: std::time::Instant) -> BoxFuture<'static, Fast<A>> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let sent = self
            .queue
            .send(Pending {
                request,
                deadline,
                answer,
            })
            .is_ok();
        Box::pin(async move {
            if !sent {
                return Fast::Declined;
            }
            answered.await.unwrap_or(Fast::Declined)
        })
    }
}

/// Gathers waiting writes into batches: takes one, waits for a free batch slot, then takes
/// every write that arrived meanwhile (up to [`MAX_BATCH`]) and runs them together.
async fn gather<R: Send + 'static, A: Send + 'static, F, Fut>(
    mut waiting: tokio::sync::mpsc::UnboundedReceiver<Pending<R, A>>,
    run: F,
) where
    F: Fn(Vec<Pending<R, A>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = waiting.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let running = run(batch);
        tokio::spawn(async move {
            running.await;
            drop(slot);
        });
    }
}

/// The writes of a batch worth sending, with a connection and the call's budget. A write whose
/// caller has gone, or whose own time is too short for the call, is declined without being
/// sent; the budget is the shortest time left among the rest, so the call commits, or
/// declines, before any of them stops waiting. `None` when nothing is left to send.
async fn batch_connection<R, A>(
    pool: &sqlx::PgPool,
    batch: Vec<Pending<R, A>>,
    step: &'static str,
) -> Option<(
    Vec<Pending<R, A>>,
    sqlx::pool::PoolConnection<Postgres>,
    i64,
)> {
    let now = std::time::Instant::now();
    let (batch, late): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| {
        !p.answer.is_closed()
            && p.deadline.saturating_duration_since(now) >= FAST_COMMIT_ALLOWANCE + MIN_FAST_BUDGET
    });
    for pending in late {
        let _ = pending.answer.send(Fast::Declined);
    }
    let deadline = batch.iter().map(|p| p.deadline).min()?;
    match fast_connection(pool, deadline).await {
        Ok(Some((conn, budget_ms))) => Some((batch, conn, budget_ms)),
        Ok(None) => {
            decline_all(batch);
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, writes = batch.len(), step, "no connection for a batch; each write runs alone");
            decline_all(batch);
            None
        }
    }
}

fn decline_all<R, A>(batch: Vec<Pending<R, A>>) {
    for pending in batch {
        let _ = pending.answer.send(Fast::Declined);
    }
}

/// Answers each write of a batch with the rows the call returned for it (tagged with its
/// 1-based place, `k`): done with its rows, or declined when it has none. A failed call
/// declines them all.
fn answer_batch<R, A, Row>(
    batch: Vec<Pending<R, Vec<A>>>,
    rows: Result<Fast<Vec<Row>>, sqlx::Error>,
    step: &'static str,
    split: impl Fn(Row) -> (i32, A),
) {
    let rows = match rows {
        Ok(Fast::Done(rows)) => rows,
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::warn!(error = %e, writes = batch.len(), step, "a batch failed; each write runs alone");
            Vec::new()
        }
    };
    let mut answers: Vec<Vec<A>> = batch.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let (k, value) = split(row);
        if let Some(answer) = usize::try_from(k)
            .ok()
            .and_then(|k| k.checked_sub(1))
            .and_then(|i| answers.get_mut(i))
        {
            answer.push(value);
        }
    }
    for (pending, answer) in batch.into_iter().zip(answers) {
        let _ = pending.answer.send(if answer.is_empty() {
            Fast::Declined
        } else {
            Fast::Done(answer)
        });
    }
}

/// A best-available hold for a batch.
struct BatchHold {
    hold: NewHold,
    section: String,
    quantity: i32,
    fan_lock: i64,
    candidates: i64,
}

/// A seat of a hold batch's answer, tagged with its hold's place in the batch.
#[derive(Debug, sqlx::FromRow)]
struct BatchSeatRow {
    k: i32,
    #[sqlx(flatten)]
    seat: SeatInfoRow,
}

/// The PostgreSQL [`Batches`]: best-available holds go to `taquilla_hold_batch` (migration
/// 0007). Checkouts went to a batch function too, and were no faster (docs/benchmarks-log.md,
/// "Holds in batches").
#[derive(Debug)]
pub(crate) struct PgBatches {
    holds: Gatherer<BatchHold, Vec<SeatInfoRow>>,
}

impl PgBatches {
    fn start(pool: sqlx::PgPool, counts: std::sync::Arc<FastPathCounts>) -> PgBatches {
        PgBatches {
            holds: Gatherer::start(move |batch| {
                run_hold_batch(pool.clone(), counts.clone(), batch)
            }),
        }
    }
}

impl Batches for PgBatches {
    fn hold(
        &self,
        hold: &NewHold,
        fan_lock: i64,
        candidates: i64,
        deadline: std::time::Instant,
    ) -> BoxFuture<'static, Fast<Vec<SeatInfoRow>>> {
        let Selection::Best {
            section_id,
            quantity,
        } = &hold.selection
        else {
            return Box::pin(async { Fast::Declined });
        };
        let request = BatchHold {
            section: section_id.clone(),
            quantity: i32::try_from(*quantity).unwrap_or(i32::MAX),
            hold: hold.clone(),
            fan_lock,
            candidates,
        };
        self.holds.submit(request, deadline)
    }
}

async fn run_hold_batch(
    pool: sqlx::PgPool,
    counts: std::sync::Arc<FastPathCounts>,
    batch: Vec<Pending<BatchHold, Vec<SeatInfoRow>>>,
) {
    let Some((batch, mut conn, budget_ms)) = batch_connection(&pool, batch, "hold").await else {
        return;
    };
    counts.count_batch(FastStep::Hold, batch.len());
    let column = |f: fn(&BatchHold) -> i64| batch.iter().map(|p| f(&p.request)).collect::<Vec<_>>();
    let text = |f: fn(&BatchHold) -> &str| batch.iter().map(|p| f(&p.request)).collect::<Vec<_>>();
    let rows = sqlx::query_as::<_, BatchSeatRow>(
        "SELECT k, seat_id, section_id, row_label, seat_number, price \
         FROM taquilla_hold_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(text(|h| &h.hold.event_id))
    .bind(text(|h| &h.hold.fan_id))
    .bind(text(|h| &h.hold.hold_id))
    .bind(column(|h| h.hold.now_ms))
    .bind(column(|h| h.hold.expires_at_ms))
    .bind(column(|h| i64::from(h.hold.max_per_fan)))
    .bind(column(|h| h.fan_lock))
    .bind(text(|h| &h.section))
    .bind(
        batch
            .iter()
            .map(|p| p.request.quantity)
            .collect::<Vec<i32>>(),
    )
    .bind(column(|h| h.candidates))
    .bind(budget_ms)
    .fetch_all(&mut *conn)
    .await;
    answer_batch(batch, Fast::from_call(rows), "hold", |r: BatchSeatRow| {
        (r.k, r.seat)
    });
}

/// Every PL/pgSQL function of the store, as it runs (the file says how it is applied).
pub const FUNCTIONS: &str = include_str!("../../../migrations/postgres-functions.sql");

/// The advisory lock under which one node at a time compares and applies [`FUNCTIONS`].
const FUNCTIONS_LOCK: i64 = 0x7471_6675_6e63; // "tqfunc"

/// The SHA-256 of [`FUNCTIONS`], in hex, as `taquilla_functions` records it.
pub fn functions_digest() -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(FUNCTIONS.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Applies [`FUNCTIONS`] when the database's recorded digest is not this node's, in one
/// transaction under an advisory lock, so nodes starting together apply it once and a call in
/// flight sees the old definitions or the new ones, never a mix. Answers whether it applied.
pub(crate) async fn define_functions(pool: &sqlx::PgPool) -> Result<bool, sqlx::Error> {
    let digest = functions_digest();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(FUNCTIONS_LOCK)
        .execute(&mut *tx)
        .await?;
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT sha256 FROM taquilla_functions WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
    if recorded.as_deref() == Some(digest.as_str()) {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::raw_sql(FUNCTIONS).execute(&mut *tx).await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    sqlx::query(
        "INSERT INTO taquilla_functions (id, sha256, applied_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = EXCLUDED.applied_at",
    )
    .bind(&digest)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// A pooled connection idle this long is checked before it is used again.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_millis(100);

/// Connects and migrates; fails with one clear sentence when the URL is malformed or the
/// server cannot be reached within the connect timeout.
pub(crate) async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<PgStore> {
    let shown = crate::config::redact_url(url);
    let mut connect = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("the database URL {shown} is not valid: {e}"))?
        .application_name("taquilla-server");
    if let Some(ca) = &options.ca {
        // Read it here so that a missing or wrong file is named, not reported as a TLS error.
        crate::config::read_ca_pem(ca, "--database-ca")?;
        connect = connect.ssl_root_cert(ca);
        if !url.contains("sslmode=") {
            connect = connect.ssl_mode(sqlx::postgres::PgSslMode::VerifyFull);
        }
    }
    // One direct connection first: the pool would only say "timed out", while a single
    // attempt says why (refused, wrong password, no such database).
    let probe = tokio::time::timeout(
        options.connect_timeout,
        PgConnection::connect_with(&connect),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "cannot reach PostgreSQL at {shown}: no answer within {:?}",
            options.connect_timeout
        )
    })?
    .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {shown}: {e}"))?;
    let _ = probe.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        // sqlx checks every connection it hands out with a round trip to the server, one more
        // per database call (five per order). Only a connection idle for 100 ms is checked: in
        // steady use none is, and after a restart or an outage every connection older than it
        // has been idle at least that long, so only a restart shorter than 100 ms can leave a
        // dead connection to fail one call (like any database error). (sqlx also checks each
        // connection given back to the pool, after the caller has its answer; it has no
        // setting for that.)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(connect)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {shown}: {e}"))?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate PostgreSQL at {shown}: {e}"))?;
    define_functions(&pool).await.map_err(|e| {
        anyhow::anyhow!("cannot define the functions in PostgreSQL at {shown}: {e}")
    })?;
    let fast_path = std::sync::Arc::new(FastPathCounts::default());
    let batches = PgBatches::start(pool.clone(), fast_path.clone());
    let store = SqlStore {
        writer: pool.clone(),
        reader: pool,
        breaker: std::sync::Arc::new(crate::breaker::Breaker::new("database", options.breaker)),
        call_timeout: options.call_timeout,
        last_answer_ms: Default::default(),
        epoch: std::time::Instant::now(),
        fast_path,
        batches: Some(std::sync::Arc::new(batches)),
    };
    store.fill_shuffle_secrets().await.map_err(|e| {
        anyhow::anyhow!("cannot commit events' shuffles in PostgreSQL at {shown}: {e}")
    })?;
    Ok(store)
}
