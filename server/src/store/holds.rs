//! Holds: taking seats for a fan, all or nothing and within the per-fan cap, reading a hold,
//! and releasing it.

use sqlx::{Database, FromRow};

use crate::domain::inventory::{Candidate, choose_best};

use super::fast::fast_deadline;
use super::sql::{
    Affected, CountOnly, SEAT_INFO, SeatInfoRow, SqlStore, abandon, fan_lock_key, placeholders,
    seat_info, sql_impl, takeable, u32_of,
};
use super::{FastStep, StoreError};

/// How a hold picks its seats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These seat ids.
    Seats(Vec<u32>),
    /// The best `quantity` seats of a section.
    Best { section_id: String, quantity: u32 },
}

/// A hold to make.
#[derive(Debug, Clone)]
pub struct NewHold {
    pub hold_id: String,
    pub event_id: String,
    pub fan_id: String,
    pub selection: Selection,
    pub max_per_fan: u32,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// One seat as shown in holds and orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatInfo {
    pub seat_id: u32,
    pub section_id: String,
    pub row_label: String,
    pub number: u32,
    pub price_minor: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    Active,
    CheckedOut,
    Released,
    Expired,
}

impl HoldState {
    pub fn as_db(self) -> &'static str {
        match self {
            HoldState::Active => "ACTIVE",
            HoldState::CheckedOut => "CHECKED_OUT",
            HoldState::Released => "RELEASED",
            HoldState::Expired => "EXPIRED",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "ACTIVE" => Some(HoldState::Active),
            "CHECKED_OUT" => Some(HoldState::CheckedOut),
            "RELEASED" => Some(HoldState::Released),
            "EXPIRED" => Some(HoldState::Expired),
            _ => None,
        }
    }
}

/// A hold as stored. `seats` are the seats still locked by it (all of them while it is live).
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRecord {
    pub id: String,
    pub event_id: String,
    pub fan_id: String,
    pub state: HoldState,
    pub seat_count: u32,
    pub subtotal_minor: i64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub order_id: Option<String>,
    pub seats: Vec<SeatInfo>,
}

/// What became of a hold request.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldOutcome {
    Held(HoldRecord),
    /// Some requested seats were not available; nothing was held.
    Taken(Vec<u32>),
    /// The fan would exceed the per-fan cap; `already` counts live holds and purchases.
    OverCap {
        already: u32,
        cap: u32,
    },
    /// The section has fewer free seats than asked for.
    NotEnough {
        available: u32,
    },
}

/// What became of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released(u32),
    NotFound,
    NotActive(HoldState),
}

#[derive(Debug, FromRow)]
pub(crate) struct HoldRow {
    pub(super) id: String,
    pub(super) event_id: String,
    pub(super) fan_id: String,
    pub(super) state: String,
    pub(super) seat_count: i64,
    pub(super) subtotal: i64,
    pub(super) created_at: i64,
    pub(super) expires_at: i64,
    pub(super) order_id: Option<String>,
    pub(super) seat_ids: String,
}

pub(super) const HOLD_COLUMNS: &str =
    "id, event_id, fan_id, state, seat_count, subtotal, created_at, expires_at, order_id, seat_ids";

/// Parses a hold's comma-separated seat ids.
pub(super) fn parse_ids(ids: &str) -> Result<Vec<u32>, StoreError> {
    ids.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| StoreError::Corrupt(format!("bad seat id list {ids:?}")))
        })
        .collect()
}

pub(super) fn hold_record(row: HoldRow, seats: Vec<SeatInfo>) -> Result<HoldRecord, StoreError> {
    Ok(HoldRecord {
        state: HoldState::from_db(&row.state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown hold state {:?}", row.state)))?,
        seat_count: u32_of("seat count", row.seat_count)?,
        id: row.id,
        event_id: row.event_id,
        fan_id: row.fan_id,
        subtotal_minor: row.subtotal,
        created_at_ms: row.created_at,
        expires_at_ms: row.expires_at,
        order_id: row.order_id,
        seats,
    })
}

/// The record of a hold just made, its seats in seat order.
pub(super) fn held_record(hold: &NewHold, seats: Vec<SeatInfo>) -> HoldRecord {
    HoldRecord {
        id: hold.hold_id.clone(),
        event_id: hold.event_id.clone(),
        fan_id: hold.fan_id.clone(),
        state: HoldState::Active,
        seat_count: seats.len() as u32,
        subtotal_minor: seats.iter().map(|s| s.price_minor).sum(),
        created_at_ms: hold.now_ms,
        expires_at_ms: hold.expires_at_ms,
        order_id: None,
        seats,
    }
}

sql_impl! {
    impl<DB> SqlStore<DB> {
        async fn fan_ticket_count(
            conn: &mut <DB as Database>::Connection,
            event_id: &str,
            fan_id: &str,
            now_ms: i64,
        ) -> Result<u32, StoreError> {
            // Live holds plus orders that are paid or still within their time to pay (a claim for
            // capture extends that time, so an order being charged keeps counting).
            let row: CountOnly = sqlx::query_as(
                "SELECT CAST( \
                   (SELECT COALESCE(SUM(seat_count), 0) FROM holds WHERE event_id = $1 AND fan_id = $2 \
                      AND state = 'ACTIVE' AND expires_at > $3) + \
                   (SELECT COALESCE(SUM(CASE WHEN state = 'PAID' \
                                              OR (state = 'PENDING_PAYMENT' AND expires_at > $3) \
                                            THEN seat_count ELSE 0 END), 0) \
                      FROM orders WHERE event_id = $1 AND fan_id = $2) \
                 AS BIGINT) AS n",
            )
            .bind(event_id)
            .bind(fan_id)
            .bind(now_ms)
            .fetch_one(&mut *conn)
            .await?;
            u32_of("ticket count", row.n)
        }

        pub(super) async fn sql_hold_seats(
            &self,
            hold: &NewHold,
        ) -> Result<HoldOutcome, StoreError> {
            let fan_lock = fan_lock_key(&hold.event_id, &hold.fan_id);
            let candidates = match &hold.selection {
                Selection::Best { quantity, .. } => i64::from(*quantity) * 4 + 8,
                Selection::Seats(_) => 0,
            };
            let deadline = fast_deadline(self.call_timeout);
            let fast = match (&self.batches, &hold.selection) {
                (Some(batches), Selection::Best { .. }) => {
                    batches.hold(hold, fan_lock, candidates, deadline).await
                }
                _ => DB::fast_hold(&self.writer, deadline, hold, fan_lock, candidates).await?,
            };
            if let Some(rows) = self.fast_path.count(FastStep::Hold, fast) {
                let held = rows.into_iter().map(seat_info).collect::<Result<_, _>>()?;
                return Ok(HoldOutcome::Held(held_record(hold, held)));
            }
            let mut tx = self.writer.begin().await?;
            DB::relax_durability(&mut tx).await?;
            DB::lock_fan(&mut tx, fan_lock).await?;
            let already =
                Self::fan_ticket_count(&mut tx, &hold.event_id, &hold.fan_id, hold.now_ms).await?;
            let wanted = match &hold.selection {
                Selection::Seats(ids) => ids.len() as u32,
                Selection::Best { quantity, .. } => *quantity,
            };
            if already + wanted > hold.max_per_fan {
                return abandon(
                    tx,
                    HoldOutcome::OverCap {
                        already,
                        cap: hold.max_per_fan,
                    },
                )
                .await;
            }
            let seat_ids: Vec<u32> = match &hold.selection {
                Selection::Seats(ids) => {
                    // Lock the rows in seat order first, so concurrent holds of overlapping seats
                    // queue instead of deadlocking.
                    let mut sorted = ids.clone();
                    sorted.sort_unstable();
                    let sql = format!(
                        "SELECT seat_id FROM seats WHERE event_id = $1 AND seat_id IN {} ORDER BY seat_id{}",
                        placeholders(2, sorted.len()),
                        DB::FOR_UPDATE
                    );
                    let mut lock = sqlx::query(&sql).bind(hold.event_id.as_str());
                    for id in &sorted {
                        lock = lock.bind(i64::from(*id));
                    }
                    lock.execute(&mut *tx).await?;
                    sorted
                }
                Selection::Best {
                    section_id,
                    quantity,
                } => {
                    let limit = candidates;
                    // First skip rows other holds are taking, so concurrent buyers spread out. If that
                    // leaves too few, the skipped rows may yet come free (their holds take only a few
                    // of the rows they locked): wait for them, in seat order, and re-check each.
                    // The first pass runs in a savepoint: rolling back to it releases the rows it
                    // locked out of order, so the second pass waits while holding no seat locks and
                    // ordered waits cannot deadlock.
                    let retries = DB::SKIP_LOCKED != DB::FOR_UPDATE;
                    if retries {
                        sqlx::query("SAVEPOINT candidates")
                            .execute(&mut *tx)
                            .await?;
                    }
                    let mut rows: Vec<SeatInfoRow> = Vec::new();
                    for (pass, suffix) in [DB::SKIP_LOCKED, DB::FOR_UPDATE].into_iter().enumerate()
                    {
                        if pass == 1 {
                            sqlx::query("ROLLBACK TO SAVEPOINT candidates")
                                .execute(&mut *tx)
                                .await?;
                        }
                        let sql = if DB::SPLIT_CANDIDATES {
                            format!(
                                "WITH free AS (SELECT {SEAT_INFO} FROM seats \
                                   WHERE event_id = $1 AND section_id = $2 AND status = 'AVAILABLE' \
                                   ORDER BY seat_id LIMIT $4{suffix}), \
                                 lapsed AS (SELECT {SEAT_INFO} FROM seats \
                                   WHERE event_id = $1 AND section_id = $2 \
                                     AND status IN ('SOFT_LOCKED', 'HARD_LOCKED') \
                                     AND locked_by IS NOT NULL AND locked_until <= $3 \
                                   ORDER BY seat_id + 0 LIMIT $4{suffix}) \
                                 SELECT {SEAT_INFO} FROM (SELECT * FROM free UNION ALL SELECT * FROM lapsed) c \
                                 ORDER BY seat_id LIMIT $4"
                            )
                        } else {
                            format!(
                                "SELECT {SEAT_INFO} FROM seats WHERE event_id = $1 AND section_id = $2 AND {} \
                                 ORDER BY seat_id LIMIT $4{suffix}",
                                takeable(3),
                            )
                        };
                        rows = sqlx::query_as(&sql)
                            .bind(hold.event_id.as_str())
                            .bind(section_id.as_str())
                            .bind(hold.now_ms)
                            .bind(limit)
                            .fetch_all(&mut *tx)
                            .await?;
                        if rows.len() >= *quantity as usize || !retries {
                            break;
                        }
                    }
                    let candidates: Vec<Candidate> = rows
                        .into_iter()
                        .map(|r| {
                            Ok(Candidate {
                                seat_id: u32_of("seat id", r.seat_id)?,
                                row: r.row_label,
                                number: u32_of("seat number", r.seat_number)?,
                            })
                        })
                        .collect::<Result<_, StoreError>>()?;
                    match choose_best(&candidates, *quantity as usize) {
                        Some(ids) => ids,
                        None => {
                            let available = candidates.len() as u32;
                            return abandon(tx, HoldOutcome::NotEnough { available }).await;
                        }
                    }
                }
            };
            let sql = format!(
                "UPDATE seats SET status = 'SOFT_LOCKED', locked_by = $2, locked_until = $3, hold_id = $4, \
                 order_id = NULL, version = version + 1, updated_at = $5 \
                 WHERE event_id = $1 AND {} AND seat_id IN {} RETURNING {SEAT_INFO}",
                takeable(5),
                placeholders(6, seat_ids.len())
            );
            let mut update = sqlx::query_as::<_, SeatInfoRow>(&sql)
                .bind(hold.event_id.as_str())
                .bind(hold.fan_id.as_str())
                .bind(hold.expires_at_ms)
                .bind(hold.hold_id.as_str())
                .bind(hold.now_ms);
            for id in &seat_ids {
                update = update.bind(i64::from(*id));
            }
            let mut held: Vec<SeatInfo> = update
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(seat_info)
                .collect::<Result<_, _>>()?;
            if held.len() != seat_ids.len() {
                let got: std::collections::HashSet<u32> = held.iter().map(|s| s.seat_id).collect();
                let taken = seat_ids
                    .into_iter()
                    .filter(|id| !got.contains(id))
                    .collect();
                return abandon(tx, HoldOutcome::Taken(taken)).await;
            }
            held.sort_by_key(|s| s.seat_id);
            let record = held_record(hold, held);
            sqlx::query(
                "INSERT INTO holds (id, event_id, fan_id, state, seat_count, subtotal, created_at, expires_at, seat_ids) \
                 VALUES ($1, $2, $3, 'ACTIVE', $4, $5, $6, $7, $8)",
            )
            .bind(hold.hold_id.as_str())
            .bind(hold.event_id.as_str())
            .bind(hold.fan_id.as_str())
            .bind(i64::from(record.seat_count))
            .bind(record.subtotal_minor)
            .bind(hold.now_ms)
            .bind(hold.expires_at_ms)
            .bind(
                record
                    .seats
                    .iter()
                    .map(|s| s.seat_id.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(HoldOutcome::Held(record))
        }

        pub(super) async fn sql_get_hold(
            &self,
            hold_id: &str,
        ) -> Result<Option<HoldRecord>, StoreError> {
            let Some(row) = sqlx::query_as::<_, HoldRow>(&format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1"
            ))
            .bind(hold_id)
            .fetch_optional(&self.reader)
            .await?
            else {
                return Ok(None);
            };
            let ids = parse_ids(&row.seat_ids)?;
            let sql = format!(
                "SELECT {SEAT_INFO} FROM seats WHERE event_id = $1 AND hold_id = $2 AND seat_id IN {} \
                 ORDER BY seat_id",
                placeholders(3, ids.len())
            );
            let mut query = sqlx::query_as::<_, SeatInfoRow>(&sql)
                .bind(row.event_id.as_str())
                .bind(hold_id);
            for id in &ids {
                query = query.bind(i64::from(*id));
            }
            let seats = query
                .fetch_all(&self.reader)
                .await?
                .into_iter()
                .map(seat_info)
                .collect::<Result<_, _>>()?;
            Ok(Some(hold_record(row, seats)?))
        }

        pub(super) async fn sql_release_hold(
            &self,
            hold_id: &str,
            fan_id: &str,
            now_ms: i64,
        ) -> Result<ReleaseOutcome, StoreError> {
            let mut tx = self.writer.begin().await?;
            DB::relax_durability(&mut tx).await?;
            let Some(row) = sqlx::query_as::<_, HoldRow>(&format!(
                "SELECT {HOLD_COLUMNS} FROM holds WHERE id = $1{}",
                DB::FOR_UPDATE
            ))
            .bind(hold_id)
            .fetch_optional(&mut *tx)
            .await?
            .filter(|h| h.fan_id == fan_id) else {
                return abandon(tx, ReleaseOutcome::NotFound).await;
            };
            let state = HoldState::from_db(&row.state).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown hold state {:?}", row.state))
            })?;
            if state != HoldState::Active {
                return abandon(tx, ReleaseOutcome::NotActive(state)).await;
            }
            let ids = parse_ids(&row.seat_ids)?;
            let sql = format!(
                "UPDATE seats SET status = 'AVAILABLE', locked_by = NULL, locked_until = NULL, hold_id = NULL, \
                 version = version + 1, updated_at = $3 \
                 WHERE event_id = $1 AND hold_id = $2 AND status = 'SOFT_LOCKED' AND seat_id IN {}",
                placeholders(4, ids.len())
            );
            let mut release = sqlx::query(&sql)
                .bind(row.event_id.as_str())
                .bind(hold_id)
                .bind(now_ms);
            for id in &ids {
                release = release.bind(i64::from(*id));
            }
            let freed = release.execute(&mut *tx).await?.affected();
            let new_state = if row.expires_at <= now_ms {
                HoldState::Expired
            } else {
                HoldState::Released
            };
            sqlx::query("UPDATE holds SET state = $2 WHERE id = $1 AND state = 'ACTIVE'")
                .bind(hold_id)
                .bind(new_state.as_db())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            if new_state == HoldState::Expired {
                return Ok(ReleaseOutcome::NotActive(HoldState::Expired));
            }
            Ok(ReleaseOutcome::Released(freed as u32))
        }
    }
}
