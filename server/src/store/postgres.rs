//! The production store: PostgreSQL through one connection pool. Migrations run on start (sqlx
//! takes an advisory lock, so several nodes may start at once). Concurrency is PostgreSQL's:
//! explicit seats are locked in seat order (`FOR UPDATE`), best-available candidates skip rows
//! other transactions are taking (`FOR UPDATE SKIP LOCKED`), and a fan's holds in one event are
//! serialized by a transaction-scoped advisory lock.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, Postgres};

use super::sql::{BoxFuture, CheckoutRow, Dialect, Fast, OrderSeatRow, SeatInfoRow, SqlStore};
use super::{NewEvent, NewHold, NewOrder, NewPayment, NewTicket, Selection, StoreOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub(crate) type PgStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const GREATEST: &'static str = "GREATEST";
    const SPLIT_CANDIDATES: bool = true;
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
    Ok((budget_ms >= 10).then_some((conn, budget_ms)))
}

/// A pooled connection idle this long is checked before it is used again.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_millis(100);

/// Connects and migrates; fails with one clear sentence when the URL is malformed or the
/// server cannot be reached within the connect timeout.
pub(crate) async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<PgStore> {
    let shown = crate::config::redact_url(url);
    let connect = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("the database URL {shown} is not valid: {e}"))?
        .application_name("taquilla-server");
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
    Ok(SqlStore {
        writer: pool.clone(),
        reader: pool,
        breaker: std::sync::Arc::new(crate::breaker::Breaker::new("database", options.breaker)),
        call_timeout: options.call_timeout,
        last_answer_ms: Default::default(),
        epoch: std::time::Instant::now(),
        fast_path: Default::default(),
    })
}
