//! The production store: PostgreSQL through one connection pool. Migrations run on start (sqlx
//! takes an advisory lock, so several nodes may start at once). Concurrency is PostgreSQL's:
//! explicit seats are locked in seat order (`FOR UPDATE`), best-available candidates skip rows
//! other transactions are taking (`FOR UPDATE SKIP LOCKED`), and a fan's holds in one event are
//! serialized by a transaction-scoped advisory lock.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, Postgres};

use super::sql::{BoxFuture, Dialect, SqlStore};
use super::{NewEvent, StoreOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub(crate) type PgStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const GREATEST: &'static str = "GREATEST";
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
}

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
    })
}
