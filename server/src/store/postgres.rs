//! The production store: PostgreSQL through a connection pool. Migrations run on start (sqlx
//! takes an advisory lock, so several nodes may start at once).

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres};

use super::{
    AuditEntry, Backend, CountsByEvent, EventRecord, NewEvent, Store, StoreError, StoreOptions,
    shared,
};
use crate::domain::SeatStatus;
use crate::domain::seat_map::SeatPlace;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects and migrates; fails with one clear sentence when the URL is malformed or the
    /// server cannot be reached within the connect timeout.
    pub async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<PgStore> {
        let shown = crate::config::redact_url(url);
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("the database URL {shown} is not valid: {e}"))?
            .application_name("taquilla-server");
        // One direct connection first: the pool would only say "timed out", while a single
        // attempt says why (refused, wrong password, no such database).
        let probe = tokio::time::timeout(
            options.connect_timeout,
            sqlx::PgConnection::connect_with(&connect),
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
        Ok(PgStore { pool })
    }

    /// The pool, for tests and tools that inspect the database directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        shared::insert_event_header::<Postgres>(&mut tx, event).await?;
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_events(&self) -> Result<Vec<EventRecord>, StoreError> {
        shared::events(&self.pool, None).await
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
        Ok(shared::events(&self.pool, Some(event_id)).await?.pop())
    }

    async fn seat_places(&self, event_id: &str) -> Result<Vec<SeatPlace>, StoreError> {
        shared::seat_places(&self.pool, event_id).await
    }

    async fn seat_statuses(
        &self,
        event_id: &str,
        now_ms: i64,
    ) -> Result<Vec<SeatStatus>, StoreError> {
        shared::seat_statuses(&self.pool, event_id, now_ms).await
    }

    async fn inventory_counts(&self, now_ms: i64) -> Result<CountsByEvent, StoreError> {
        shared::inventory_counts(&self.pool, now_ms).await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        shared::record_audit(&self.pool, entry).await
    }
}
