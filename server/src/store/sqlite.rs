//! The embedded store: one SQLite file in WAL mode. Writes go through a single connection (SQLite
//! has one writer at a time; queueing writers in the pool instead of in SQLite's busy handler
//! keeps them fair and free of `SQLITE_BUSY`), reads through a pool of read-only connections.
//! With one writer, a write transaction is already serialized: no row locks are needed.

use std::path::Path;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::{BoxFuture, Dialect, SqlStore};
use super::{Backend, NewEvent, StoreOptions};

/// Rows per multi-row INSERT (7 parameters each, well under SQLite's 32,766).
const SEAT_BATCH: usize = 1_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

pub(crate) type SqliteStore = SqlStore<Sqlite>;

impl Dialect for Sqlite {
    const BACKEND: Backend = Backend::Sqlite;
    const SKIP_LOCKED: &'static str = "";
    const FOR_UPDATE: &'static str = "";
    const GREATEST: &'static str = "MAX";
    const SPLIT_CANDIDATES: bool = false;
    const SWEEP_BY_EVENT: bool = false;
    // A transaction's reads share one snapshot from its first read on (WAL mode).
    const SNAPSHOT_SETUP: &'static [&'static str] = &[];
    const AUDIT_SETUP: &'static [&'static str] = &[];

    fn lock_fan<'a>(
        _conn: &'a mut SqliteConnection,
        _key: i64,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        // The single writer connection already serializes every write transaction.
        Box::pin(async { Ok(()) })
    }

    fn relax_durability<'a>(
        _conn: &'a mut SqliteConnection,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        // SQLite's durability is per connection, not per transaction: every commit stays
        // durable (synchronous = FULL).
        Box::pin(async { Ok(()) })
    }

    fn insert_seats<'a>(
        conn: &'a mut SqliteConnection,
        event: &'a NewEvent,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let seats = event.layout.seats();
            for batch in seats.chunks(SEAT_BATCH) {
                let mut sql = String::from(
                    "INSERT INTO seats (event_id, seat_id, section_id, row_label, seat_number, price, updated_at) VALUES ",
                );
                for i in 0..batch.len() {
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push_str("(?, ?, ?, ?, ?, ?, ?)");
                }
                let mut query = sqlx::query(&sql);
                for seat in batch {
                    query = query
                        .bind(&event.id)
                        .bind(i64::from(seat.seat_id))
                        .bind(&event.layout.sections[seat.section].id)
                        .bind(&seat.row_label)
                        .bind(i64::from(seat.number))
                        .bind(seat.price_minor)
                        .bind(event.created_at_ms);
                }
                query.execute(&mut *conn).await?;
            }
            Ok(())
        })
    }
}

/// Opens (creating if needed) the database file and migrates it.
pub(crate) async fn open(path: &Path, options: &StoreOptions) -> anyhow::Result<SqliteStore> {
    let base = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(options.connect_timeout)
        .foreign_keys(true);
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(options.connect_timeout)
        // A file does not hang up: no check (a message to the connection's thread and back)
        // each time a connection is handed out.
        .test_before_acquire(false)
        .connect_with(base.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot open SQLite database {}: {e}", path.display()))?;
    MIGRATOR
        .run(&writer)
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate SQLite database {}: {e}", path.display()))?;
    let reader = SqlitePoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        // A file does not hang up: no check (a message to the connection's thread and back)
        // each time a connection is handed out.
        .test_before_acquire(false)
        .connect_with(base.read_only(true))
        .await
        .map_err(|e| anyhow::anyhow!("cannot open SQLite database {}: {e}", path.display()))?;
    let store = SqlStore {
        writer,
        reader,
        breaker: std::sync::Arc::new(crate::breaker::Breaker::new("database", options.breaker)),
        call_timeout: options.call_timeout,
        last_answer_ms: Default::default(),
        epoch: std::time::Instant::now(),
        fast_path: Default::default(),
        batches: None,
    };
    store.fill_shuffle_secrets().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot commit events' shuffles in SQLite database {}: {e}",
            path.display()
        )
    })?;
    Ok(store)
}
