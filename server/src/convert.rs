//! Conversions between proto messages and domain values, below every module that speaks
//! proto: the gRPC services (`rpc`) and the two rooms that build the messages their streams
//! carry (`waiting_room`, `availability`; ARCHITECTURE.md, "Where proto meets the domain").

use std::collections::HashMap;

use taquilla_proto::fairness;
use taquilla_proto::v1 as pb;

use crate::domain::layout::{LayoutSpec, RowSpec, SectionSpec, VenueSpec};
use crate::domain::seat_map::EventShape;
use crate::domain::{InventoryCounts, SalePhase, SaleState, SeatStatus, SectionKind};
use crate::error::ApiError;
use crate::store::{
    EventRecord, HoldRecord, HoldState, OrderRecord, OrderState, PaymentRecord, PaymentState,
    SeatInfo, TicketRecord, TicketState,
};
use crate::waiting_room::ShuffleProof;

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

/// A seat of a hold or order; `names` gives section display names by id.
pub fn seat_ref(seat: &SeatInfo, section_name: &str, currency: &str) -> pb::SeatRef {
    pb::SeatRef {
        seat_id: seat.seat_id,
        section_id: seat.section_id.clone(),
        section_name: section_name.to_string(),
        row: seat.row_label.clone(),
        number: if seat.row_label.is_empty() {
            0
        } else {
            seat.number
        },
        price: Some(money(seat.price_minor, currency)),
    }
}

fn section_name<'a>(event: &'a EventRecord, section_id: &str) -> &'a str {
    event
        .sections
        .iter()
        .find(|s| s.id == section_id)
        .map(|s| s.name.as_str())
        .unwrap_or_default()
}

pub fn hold(hold: &HoldRecord, event: &EventRecord) -> pb::Hold {
    pb::Hold {
        hold_id: hold.id.clone(),
        event_id: hold.event_id.clone(),
        seats: hold
            .seats
            .iter()
            .map(|s| seat_ref(s, section_name(event, &s.section_id), &event.currency))
            .collect(),
        state: match hold.state {
            HoldState::Active => pb::HoldState::Active,
            HoldState::CheckedOut => pb::HoldState::CheckedOut,
            HoldState::Released => pb::HoldState::Released,
            HoldState::Expired => pb::HoldState::Expired,
        }
        .into(),
        expires_at_unix_ms: hold.expires_at_ms,
        subtotal: Some(money(hold.subtotal_minor, &event.currency)),
    }
}

pub fn payment(payment: &PaymentRecord) -> pb::Payment {
    pb::Payment {
        payment_id: payment.id.clone(),
        state: match payment.state {
            PaymentState::Pending => pb::PaymentState::Pending,
            PaymentState::Authorized => pb::PaymentState::Authorized,
            PaymentState::Captured => pb::PaymentState::Captured,
            PaymentState::Failed => pb::PaymentState::Failed,
            PaymentState::Voided => pb::PaymentState::Voided,
            PaymentState::Refunded => pb::PaymentState::Refunded,
        }
        .into(),
        amount: Some(money(payment.amount_minor, &payment.currency)),
        provider_intent_id: payment.provider_intent_id.clone().unwrap_or_default(),
        failure_reason: payment.failure_reason.clone().unwrap_or_default(),
        created_at_unix_ms: payment.created_at_ms,
    }
}

pub fn order(order: &OrderRecord, event: &EventRecord) -> pb::Order {
    let seat = |seat_id: u32| {
        order
            .items
            .iter()
            .find(|s| s.seat_id == seat_id)
            .map(|s| seat_ref(s, section_name(event, &s.section_id), &order.currency))
    };
    pb::Order {
        order_id: order.id.clone(),
        event_id: order.event_id.clone(),
        state: match order.state {
            OrderState::PendingPayment => pb::OrderState::PendingPayment,
            OrderState::Paid => pb::OrderState::Paid,
            OrderState::Expired => pb::OrderState::Expired,
            OrderState::Cancelled => pb::OrderState::Cancelled,
            OrderState::Refunded => pb::OrderState::Refunded,
        }
        .into(),
        seats: order.items.iter().filter_map(|s| seat(s.seat_id)).collect(),
        subtotal: Some(money(order.subtotal_minor, &order.currency)),
        fees: Some(money(order.fees_minor, &order.currency)),
        total: Some(money(order.total_minor, &order.currency)),
        expires_at_unix_ms: if order.state == OrderState::PendingPayment {
            order.expires_at_ms
        } else {
            0
        },
        payments: order.payments.iter().map(payment).collect(),
        tickets: order
            .tickets
            .iter()
            .map(|t: &TicketRecord| pb::Ticket {
                ticket_id: t.id.clone(),
                seat: seat(t.seat_id),
                code: t.code.clone(),
                state: match t.state {
                    TicketState::Valid => pb::TicketState::Valid,
                    TicketState::Refunded => pb::TicketState::Refunded,
                }
                .into(),
            })
            .collect(),
        created_at_unix_ms: order.created_at_ms,
    }
}

/// A shuffle's proof as `GetShuffleProof` streams it: the header first, then the manifest in
/// chunks made as the stream is read.
pub fn shuffle_proof(
    event_id: &str,
    proof: ShuffleProof,
) -> impl Iterator<Item = pb::ShuffleProofChunk> + Send + use<> {
    let mut header = pb::ShuffleProofHeader {
        event_id: event_id.to_string(),
        commitment: hex::encode(proof.commitment),
        ..Default::default()
    };
    let manifest = proof.revealed.map(|revealed| {
        header.revealed = true;
        header.seed = hex::encode(revealed.seed);
        header.nonce = hex::encode(revealed.nonce);
        header.manifest_digest = hex::encode(revealed.manifest.digest);
        header.entries = revealed.manifest.entries.len() as u64;
        revealed.manifest
    });
    let chunks = manifest.as_ref().map_or(1, |m| {
        m.entries.len().div_ceil(fairness::ENTRIES_PER_CHUNK).max(1)
    });
    let mut header = Some(header);
    (0..chunks).map(move |i| {
        let entries = manifest.as_ref().map_or_else(Vec::new, |m| {
            m.entries
                .chunks(fairness::ENTRIES_PER_CHUNK)
                .nth(i)
                .unwrap_or_default()
                .iter()
                .map(|e| pb::ManifestEntry {
                    entry: e.entry.to_vec(),
                    tier: fairness::tier_of_rank(e.tier).into(),
                    order: e.order,
                })
                .collect()
        });
        pb::ShuffleProofChunk {
            header: header.take(),
            entries,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use taquilla_proto::fairness;

    use crate::waiting_room::{Manifest, Revealed, ShuffleProof};

    #[test]
    fn a_proof_streams_as_a_header_then_the_manifest_in_order_in_chunks() {
        let secret = fairness::ShuffleSecret {
            seed: [1; 32],
            nonce: [2; 32],
        };
        let commitment = secret.commitment();
        let n = 2 * fairness::ENTRIES_PER_CHUNK + 1;
        let opening = fairness::open(
            &secret,
            (0..n).map(|i| {
                let entry = fairness::manifest_entry(&commitment, &format!("t{i}"));
                (entry, u8::from(i % 7 == 0))
            }),
        );
        let proof = ShuffleProof {
            commitment,
            revealed: Some(Revealed {
                seed: secret.seed,
                nonce: secret.nonce,
                manifest: Arc::new(Manifest {
                    entries: opening.entries.clone(),
                    digest: opening.digest,
                }),
            }),
        };
        let chunks: Vec<_> = super::shuffle_proof("ev", proof).collect();
        assert_eq!(chunks.len(), 3);
        assert!(chunks[0].header.is_some() && chunks[1..].iter().all(|c| c.header.is_none()));
        assert_eq!(chunks[2].entries.len(), 1);
        let downloaded = fairness::assemble(chunks).expect("assembles");
        let back = downloaded.proof.expect("revealed");
        assert_eq!(back.entries, opening.entries, "every entry, in join order");
        fairness::verify(&back).expect("verifies");
        // Before opening: the header alone.
        let sealed: Vec<_> = super::shuffle_proof(
            "ev",
            ShuffleProof {
                commitment,
                revealed: None,
            },
        )
        .collect();
        assert_eq!(sealed.len(), 1);
        assert!(sealed[0].entries.is_empty());
        assert_eq!(sealed[0].header.as_ref().map(|h| h.revealed), Some(false));
    }
}
