//! Queries whose SQL is the same on PostgreSQL and SQLite, written once, generic over the sqlx
//! database. Backend-specific statements (bulk inserts, row locks) stay in each backend.

use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::{
    AuditEntry, COUNTS_SQL, CountRow, CountsByEvent, EVENT_COLUMNS, EventRecord, EventRow,
    SeatPlaceRow, SeatStatusRow, SectionRow, StoreError,
};
use crate::domain::SeatStatus;
use crate::domain::seat_map::SeatPlace;

pub(crate) async fn events<DB: Database>(
    pool: &Pool<DB>,
    only: Option<&str>,
) -> Result<Vec<EventRecord>, StoreError>
where
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    for<'r> EventRow: FromRow<'r, <DB as Database>::Row>,
    for<'r> SectionRow: FromRow<'r, <DB as Database>::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    // One statement text per shape, so each is prepared once per connection.
    let (events, sections): (Vec<EventRow>, Vec<SectionRow>) = match only {
        Some(event_id) => {
            let events = sqlx::query_as(EVENTS_ONE_SQL.as_str())
                .bind(event_id)
                .fetch_all(pool)
                .await?;
            let sections = sqlx::query_as(
                "SELECT event_id, id, name, kind, price, capacity FROM sections \
                 WHERE event_id = $1 ORDER BY position",
            )
            .bind(event_id)
            .fetch_all(pool)
            .await?;
            (events, sections)
        }
        None => {
            let events = sqlx::query_as(EVENTS_ALL_SQL.as_str())
                .fetch_all(pool)
                .await?;
            let sections = sqlx::query_as(
                "SELECT event_id, id, name, kind, price, capacity FROM sections \
                 ORDER BY event_id, position",
            )
            .fetch_all(pool)
            .await?;
            (events, sections)
        }
    };
    super::assemble_events(events, sections)
}

static EVENTS_ALL_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events e JOIN venues v ON v.id = e.venue_id \
         ORDER BY e.starts_at, e.id"
    )
});

static EVENTS_ONE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events e JOIN venues v ON v.id = e.venue_id WHERE e.id = $1"
    )
});

pub(crate) async fn seat_places<DB: Database>(
    pool: &Pool<DB>,
    event_id: &str,
) -> Result<Vec<SeatPlace>, StoreError>
where
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    for<'r> SeatPlaceRow: FromRow<'r, <DB as Database>::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let rows: Vec<SeatPlaceRow> = sqlx::query_as(
        "SELECT seat_id, section_id, row_label, seat_number FROM seats WHERE event_id = $1 \
         ORDER BY seat_id",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;
    super::seat_places(rows)
}

pub(crate) async fn seat_statuses<DB: Database>(
    pool: &Pool<DB>,
    event_id: &str,
    now_ms: i64,
) -> Result<Vec<SeatStatus>, StoreError>
where
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    for<'r> SeatStatusRow: FromRow<'r, <DB as Database>::Row>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let rows: Vec<SeatStatusRow> = sqlx::query_as(
        "SELECT status, locked_until FROM seats WHERE event_id = $1 ORDER BY seat_id",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;
    super::seat_statuses(rows, now_ms)
}

pub(crate) async fn inventory_counts<DB: Database>(
    pool: &Pool<DB>,
    now_ms: i64,
) -> Result<CountsByEvent, StoreError>
where
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    for<'r> CountRow: FromRow<'r, <DB as Database>::Row>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let rows: Vec<CountRow> = sqlx::query_as(COUNTS_SQL)
        .bind(now_ms)
        .fetch_all(pool)
        .await?;
    super::counts_by_event(rows)
}

pub(crate) async fn record_audit<DB: Database>(
    pool: &Pool<DB>,
    entry: &AuditEntry,
) -> Result<(), StoreError>
where
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, event_id, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(entry.at_ms)
    .bind(entry.actor.clone())
    .bind(entry.action.clone())
    .bind(entry.event_id.clone())
    .bind(entry.detail.clone())
    .execute(pool)
    .await?;
    Ok(())
}

/// Inserts the venue (or updates its name), the event and its sections: the same statements on
/// both backends, inside the caller's transaction.
pub(crate) async fn insert_event_header<'c, DB: Database>(
    conn: &'c mut <DB as Database>::Connection,
    event: &super::NewEvent,
) -> Result<(), StoreError>
where
    for<'q> <DB as Database>::Arguments<'q>: IntoArguments<'q, DB>,
    for<'e> &'e mut <DB as Database>::Connection: Executor<'e, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let venue = &event.layout.venue;
    sqlx::query(
        "INSERT INTO venues (id, name, city) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, city = excluded.city",
    )
    .bind(venue.id.as_str())
    .bind(venue.name.as_str())
    .bind(venue.city.as_str())
    .execute(&mut *conn)
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
    .execute(&mut *conn)
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
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
