//! Events with their venues, sections and seats: creating them, reading them back, the sale's
//! state and admission valve, and seat counts.

use std::collections::HashMap;

use crate::domain::layout::{Layout, VenueSpec};
use crate::domain::seat_map::{SeatPlace, SectionInfo};
use crate::domain::{InventoryCounts, SalePhase, SaleState, SeatStatus, SectionKind};

pub use taquilla_proto::fairness::ShuffleSecret;

use super::StoreError;
use super::sql::{SqlStore, sql_impl, u32_of};

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
    /// The admission valve.
    pub admission: AdmissionSettings,
    /// Seed of the pre-queue shuffle, once the sale has opened (hex).
    pub shuffle_seed: Option<String>,
    /// The seed and nonce the pre-queue's shuffle is committed to (none for events whose sale
    /// opened before commitments existed).
    pub shuffle_secret: Option<ShuffleSecret>,
    /// Presale codes accepted.
    pub presale_codes: Vec<String>,
    /// Sections in display order.
    pub sections: Vec<SectionInfo>,
}

/// The admission valve of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionSettings {
    pub rate_per_minute: u32,
    pub burst: u32,
    pub max_active: u32,
    pub pow_difficulty: u32,
    /// The automatic valve (`domain::valve`): `max_active` and `rate_per_minute` are caps.
    pub auto: bool,
}

/// A change of an event's sale, as an operator makes it.
#[derive(Debug, Clone)]
pub struct SaleUpdate {
    pub state: SaleState,
    pub phase: SalePhase,
    pub opens_at_ms: i64,
    pub shuffle_seed: Option<String>,
    pub presale_codes: Vec<String>,
}

/// Seat counts of every event, by section id.
pub type CountsByEvent = HashMap<String, HashMap<String, InventoryCounts>>;

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
    pub rate_per_minute: i64,
    pub burst: i64,
    pub max_active: i64,
    pub pow_difficulty: i64,
    pub admission_auto: i64,
    pub shuffle_seed: Option<String>,
    pub shuffle_secret: Option<String>,
    pub presale_codes: String,
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
     e.sale_state, e.sale_phase, e.sale_opens_at, e.rate_per_minute, e.burst, e.max_active, \
     e.pow_difficulty, e.admission_auto, e.shuffle_seed, e.shuffle_secret, e.presale_codes";

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
            let shuffle_secret = row
                .shuffle_secret
                .as_deref()
                .map(|hex| {
                    ShuffleSecret::from_hex(hex).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "event {:?}'s shuffle secret is not 128 hex digits",
                            row.id
                        ))
                    })
                })
                .transpose()?;
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
                admission: AdmissionSettings {
                    rate_per_minute: u32_of("rate", row.rate_per_minute)?,
                    burst: u32_of("burst", row.burst)?,
                    max_active: u32_of("max active", row.max_active)?,
                    pow_difficulty: u32_of("pow difficulty", row.pow_difficulty)?,
                    auto: row.admission_auto != 0,
                },
                shuffle_seed: row.shuffle_seed,
                shuffle_secret,
                presale_codes: row
                    .presale_codes
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
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

sql_impl! {
    impl<DB> SqlStore<DB> {
        pub(super) async fn sql_create_event(&self, event: &NewEvent) -> Result<(), StoreError> {
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
                 max_per_fan, capacity, created_at, shuffle_secret) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
            .bind(fresh_shuffle_secret().to_hex())
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

        pub(super) async fn sql_events(
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
            assemble_events(events, sections)
        }

        pub(super) async fn sql_seat_places(
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
            seat_places(rows)
        }

        pub(super) async fn sql_seat_statuses(
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
            seat_statuses(rows, now_ms)
        }

        pub(super) async fn sql_inventory_counts(
            &self,
            now_ms: i64,
        ) -> Result<CountsByEvent, StoreError> {
            let rows: Vec<CountRow> = sqlx::query_as(COUNTS_SQL)
                .bind(now_ms)
                .fetch_all(&self.reader)
                .await?;
            counts_by_event(rows)
        }

        pub(super) async fn sql_has_unsold_seats(
            &self,
            event_id: &str,
        ) -> Result<bool, StoreError> {
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

        pub(super) async fn sql_update_sale(
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

        /// Gives every event whose sale has not opened and that has no shuffle secret one
        /// (events made before commitments existed); returns how many lacked one. Safe with
        /// several nodes starting at once: the first secret written is kept.
        pub(crate) async fn fill_shuffle_secrets(&self) -> Result<u64, StoreError> {
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM events WHERE shuffle_secret IS NULL AND sale_state = 'NOT_OPEN'",
            )
            .fetch_all(&self.writer)
            .await?;
            let filled = ids.len() as u64;
            for id in ids {
                sqlx::query(
                    "UPDATE events SET shuffle_secret = $2 WHERE id = $1 AND shuffle_secret IS NULL",
                )
                .bind(id.as_str())
                .bind(fresh_shuffle_secret().to_hex())
                .execute(&self.writer)
                .await?;
            }
            Ok(filled)
        }

        pub(super) async fn sql_update_admission(
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
    }
}

/// A new event's shuffle secret, from the operating system's randomness.
fn fresh_shuffle_secret() -> ShuffleSecret {
    ShuffleSecret {
        seed: rand::random(),
        nonce: rand::random(),
    }
}
