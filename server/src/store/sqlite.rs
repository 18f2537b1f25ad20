//! The embedded store: one SQLite file in WAL mode. Writes go through a single connection (SQLite
//! has one writer at a time; queueing writers in the pool instead of in SQLite's busy handler
//! keeps them fair and free of `SQLITE_BUSY`), reads through a pool of read-only connections.

use std::path::Path;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use sqlx::Sqlite;

use super::{
    AuditEntry, Backend, CountsByEvent, EventRecord, NewEvent, Store, StoreError, StoreOptions,
    shared,
};
use crate::domain::SeatStatus;
use crate::domain::seat_map::SeatPlace;

/// Rows per multi-row INSERT (7 parameters each, well under SQLite's 32,766).
const SEAT_BATCH: usize = 1_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and migrates it.
    pub async fn open(path: &Path, options: &StoreOptions) -> anyhow::Result<SqliteStore> {
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
            .connect_with(base.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot open SQLite database {}: {e}", path.display()))?;
        MIGRATOR.run(&writer).await.map_err(|e| {
            anyhow::anyhow!("cannot migrate SQLite database {}: {e}", path.display())
        })?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.connect_timeout)
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| anyhow::anyhow!("cannot open SQLite database {}: {e}", path.display()))?;
        Ok(SqliteStore { writer, reader })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn create_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        shared::insert_event_header::<Sqlite>(&mut tx, event).await?;
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
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_events(&self) -> Result<Vec<EventRecord>, StoreError> {
        shared::events(&self.reader, None).await
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
        Ok(shared::events(&self.reader, Some(event_id)).await?.pop())
    }

    async fn seat_places(&self, event_id: &str) -> Result<Vec<SeatPlace>, StoreError> {
        shared::seat_places(&self.reader, event_id).await
    }

    async fn seat_statuses(
        &self,
        event_id: &str,
        now_ms: i64,
    ) -> Result<Vec<SeatStatus>, StoreError> {
        shared::seat_statuses(&self.reader, event_id, now_ms).await
    }

    async fn inventory_counts(&self, now_ms: i64) -> Result<CountsByEvent, StoreError> {
        shared::inventory_counts(&self.reader, now_ms).await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        shared::record_audit(&self.writer, entry).await
    }
}
