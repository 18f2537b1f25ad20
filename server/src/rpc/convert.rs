//! Conversions between proto messages and domain values. Only this module (and the services
//! that call it) knows both.

use std::collections::HashMap;

use taquilla_proto::v1 as pb;

use crate::domain::layout::{LayoutSpec, RowSpec, SectionSpec, VenueSpec};
use crate::domain::seat_map::EventShape;
use crate::domain::{InventoryCounts, SalePhase, SaleState, SeatStatus, SectionKind};
use crate::error::ApiError;
use crate::store::EventRecord;

pub fn money(amount_minor: i64, currency: &str) -> pb::Money {
    pb::Money {
        amount_minor,
        currency: currency.to_string(),
    }
}

pub fn section_kind(kind: SectionKind) -> pb::SectionKind {
    match kind {
        SectionKind::Seated => pb::SectionKind::Seated,
        SectionKind::GeneralAdmission => pb::SectionKind::GeneralAdmission,
    }
}

pub fn seat_status(status: SeatStatus) -> pb::SeatStatus {
    match status {
        SeatStatus::Available => pb::SeatStatus::Available,
        SeatStatus::SoftLocked => pb::SeatStatus::SoftLocked,
        SeatStatus::HardLocked => pb::SeatStatus::HardLocked,
        SeatStatus::Sold => pb::SeatStatus::Sold,
    }
}

pub fn sale_state(state: SaleState) -> pb::SaleState {
    match state {
        SaleState::NotOpen => pb::SaleState::NotOpen,
        SaleState::Open => pb::SaleState::Open,
        SaleState::Paused => pb::SaleState::Paused,
        SaleState::SoldOut => pb::SaleState::SoldOut,
        SaleState::Closed => pb::SaleState::Closed,
    }
}

pub fn sale_phase(phase: SalePhase) -> pb::SalePhase {
    match phase {
        SalePhase::Presale => pb::SalePhase::Presale,
        SalePhase::General => pb::SalePhase::General,
    }
}

pub fn inventory(counts: &InventoryCounts) -> pb::InventoryCounts {
    pb::InventoryCounts {
        capacity: counts.capacity,
        available: counts.available,
        soft_locked: counts.soft_locked,
        hard_locked: counts.hard_locked,
        sold: counts.sold,
    }
}

/// An event with its counts by section id (counts missing for a section read as all
/// available).
pub fn event(record: &EventRecord, counts: Option<&HashMap<String, InventoryCounts>>) -> pb::Event {
    let mut total = InventoryCounts::default();
    let sections = record
        .sections
        .iter()
        .map(|section| {
            let counts =
                counts
                    .and_then(|c| c.get(&section.id))
                    .copied()
                    .unwrap_or(InventoryCounts {
                        capacity: section.capacity,
                        available: section.capacity,
                        ..InventoryCounts::default()
                    });
            total.merge(&counts);
            pb::SectionSummary {
                id: section.id.clone(),
                name: section.name.clone(),
                kind: section_kind(section.kind).into(),
                price: Some(money(section.price_minor, &record.currency)),
                capacity: section.capacity,
                available: counts.available,
            }
        })
        .collect();
    let min = record
        .sections
        .iter()
        .map(|s| s.price_minor)
        .min()
        .unwrap_or(0);
    let max = record
        .sections
        .iter()
        .map(|s| s.price_minor)
        .max()
        .unwrap_or(0);
    pb::Event {
        id: record.id.clone(),
        name: record.name.clone(),
        artist: record.artist.clone(),
        venue: Some(pb::Venue {
            id: record.venue.id.clone(),
            name: record.venue.name.clone(),
            city: record.venue.city.clone(),
        }),
        starts_at_unix_ms: record.starts_at_ms,
        inventory: Some(inventory(&total)),
        min_price: Some(money(min, &record.currency)),
        max_price: Some(money(max, &record.currency)),
        fee_per_ticket: Some(money(record.fee_per_ticket_minor, &record.currency)),
        max_tickets_per_fan: record.max_tickets_per_fan,
        sale_state: sale_state(record.sale_state).into(),
        sale_phase: sale_phase(record.sale_phase).into(),
        sale_opens_at_unix_ms: record.sale_opens_at_ms,
        sections,
    }
}

/// The seat map of `sections` (indexes into the shape), from effective statuses by seat id.
pub fn seat_map(
    record: &EventRecord,
    shape: &EventShape,
    statuses: &[SeatStatus],
    sections: &[usize],
    read_at_ms: i64,
) -> pb::SeatMap {
    let counts = shape.counts(statuses);
    let status_of = |seat_id: u32| -> i32 {
        (seat_id as usize)
            .checked_sub(1)
            .and_then(|i| statuses.get(i))
            .map(|s| seat_status(*s))
            .unwrap_or(pb::SeatStatus::Unspecified)
            .into()
    };
    let sections = sections
        .iter()
        .map(|&index| {
            let section = &shape.sections[index];
            let info = &section.info;
            pb::SectionMap {
                summary: Some(pb::SectionSummary {
                    id: info.id.clone(),
                    name: info.name.clone(),
                    kind: section_kind(info.kind).into(),
                    price: Some(money(info.price_minor, &record.currency)),
                    capacity: info.capacity,
                    available: counts[index].available,
                }),
                rows: section
                    .rows
                    .iter()
                    .map(|run| pb::RowMap {
                        label: run.label.clone(),
                        first_seat_id: run.first_seat_id,
                        first_seat_number: run.first_number,
                        statuses: (run.first_seat_id..run.first_seat_id + run.len)
                            .map(status_of)
                            .collect(),
                    })
                    .collect(),
                first_seat_id: section.first_seat_id,
            }
        })
        .collect();
    pb::SeatMap {
        event_id: record.id.clone(),
        version: 0,
        sections,
        read_at_unix_ms: read_at_ms,
    }
}

/// A layout sent as a proto structure, in the same form as a TOML or JSON document.
pub fn layout_spec(layout: pb::VenueLayout) -> Result<LayoutSpec, ApiError> {
    let venue = layout.venue.ok_or_else(|| {
        ApiError::InvalidArgument(
            "venue_layout.venue is missing: give the venue's id and name".into(),
        )
    })?;
    let sections = layout
        .sections
        .into_iter()
        .map(|s| {
            let kind = match pb::SectionKind::try_from(s.kind) {
                Ok(pb::SectionKind::Seated) => SectionKind::Seated,
                Ok(pb::SectionKind::GeneralAdmission) => SectionKind::GeneralAdmission,
                _ => {
                    return Err(ApiError::InvalidArgument(format!(
                        "section {:?}: kind must be SEATED or GENERAL_ADMISSION",
                        s.id
                    )));
                }
            };
            Ok(SectionSpec {
                kind,
                price_minor: Some(s.price_minor),
                price: None,
                rows: s
                    .rows
                    .into_iter()
                    .map(|r| RowSpec {
                        label: r.label,
                        seats: r.seats,
                        first_number: (r.first_number != 0).then_some(r.first_number),
                    })
                    .collect(),
                row_count: None,
                seats_per_row: None,
                row_labels: None,
                capacity: (kind == SectionKind::GeneralAdmission || s.capacity != 0)
                    .then_some(s.capacity),
                id: s.id,
                name: s.name,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(LayoutSpec {
        venue: VenueSpec {
            id: venue.id,
            name: venue.name,
            city: venue.city,
        },
        sections,
    })
}
