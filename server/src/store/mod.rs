//! Persistent state: events, seats, holds, orders, payments, tickets and the audit log.
//!
//! [`Store`] is the one interface the services use; [`postgres::PgStore`] (production) and
//! [`sqlite::SqliteStore`] (the embedded default) implement it with runtime-checked queries and
//! are run through the same tests. Queries that differ between the two (bulk inserts, row locks)
//! live in each backend; the row types they decode into are shared here.

pub mod postgres;
mod shared;
pub mod sqlite;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

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
    /// The database cannot be reached or is overloaded; the call may be retried.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule refused the write (e.g. the id is taken).
    #[error("{0}")]
    Conflict(String),
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
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
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
    /// Sections in display order.
    pub sections: Vec<SectionInfo>,
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

    /// Appends to the audit log.
    async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
}

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections in the pool (PostgreSQL) or read connections (SQLite).
    pub max_connections: u32,
    /// How long to wait for the database when connecting and when acquiring a connection.
    pub connect_timeout: Duration,
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
            Ok(Arc::new(sqlite::SqliteStore::open(&path, options).await?))
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(postgres::PgStore::open(url, options).await?))
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
            Ok(Arc::new(
                sqlite::SqliteStore::open(Path::new(path), options).await?,
            ))
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
     e.sale_state, e.sale_phase, e.sale_opens_at";

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
