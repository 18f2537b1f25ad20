//! The LUX Tour demo sale: Madrid Movistar Arena 4 dates × 17,500 and Barcelona Palau Sant
//! Jordi 4 dates × 18,000 = 142,000 seats. Standard tickets 45–115 €, VIP 500 €, a standing
//! floor at both venues.

use super::SectionKind;
use super::layout::{LayoutSpec, RowLabels, SectionSpec, VenueSpec};
use super::time::utc_ms;

/// Name accepted by `SeedDemo` for this demo.
pub const LUX_TOUR: &str = "lux-tour";

/// One event of a demo.
#[derive(Debug, Clone)]
pub struct DemoEvent {
    pub event_id: String,
    pub name: String,
    pub artist: String,
    pub starts_at_ms: i64,
    pub currency: String,
    pub fee_per_ticket_minor: i64,
    pub max_tickets_per_fan: u32,
    pub layout: LayoutSpec,
}

fn seated(id: &str, name: &str, price_minor: i64, rows: u32, seats_per_row: u32) -> SectionSpec {
    SectionSpec {
        id: id.into(),
        name: name.into(),
        kind: SectionKind::Seated,
        price_minor: Some(price_minor),
        price: None,
        rows: vec![],
        row_count: Some(rows),
        seats_per_row: Some(seats_per_row),
        row_labels: Some(RowLabels::Numbers),
        capacity: None,
    }
}

fn standing(id: &str, name: &str, price_minor: i64, capacity: u32) -> SectionSpec {
    SectionSpec {
        id: id.into(),
        name: name.into(),
        kind: SectionKind::GeneralAdmission,
        price_minor: Some(price_minor),
        price: None,
        rows: vec![],
        row_count: None,
        seats_per_row: None,
        row_labels: None,
        capacity: Some(capacity),
    }
}

/// Sections of an arena: a VIP block, a standing floor, a lower ring of `lower` sections of
/// 20 rows × 25 seats (the front half at 115 €, the rest 95 €) and an upper ring of `upper`
/// sections of 25 rows × 21 seats (the front half at 65 €, the rest 45 €).
fn arena(venue: VenueSpec, floor: u32, lower: u32, upper: u32) -> LayoutSpec {
    let mut sections = vec![
        seated("vip", "VIP Package", 50_000, 10, 20),
        standing("pista", "Pista (standing)", 8_500, floor),
    ];
    for i in 1..=lower {
        let price = if i <= lower / 2 { 11_500 } else { 9_500 };
        sections.push(seated(
            &format!("1{i:02}"),
            &format!("Lower {}", 100 + i),
            price,
            20,
            25,
        ));
    }
    for i in 1..=upper {
        let price = if i <= upper / 2 { 6_500 } else { 4_500 };
        sections.push(seated(
            &format!("2{i:02}"),
            &format!("Upper {}", 200 + i),
            price,
            25,
            21,
        ));
    }
    LayoutSpec { venue, sections }
}

/// Movistar Arena, Madrid: 200 VIP + 4,950 floor + 5,000 lower + 7,350 upper = 17,500.
pub fn movistar_arena() -> LayoutSpec {
    arena(
        VenueSpec {
            id: "movistar-arena".into(),
            name: "Movistar Arena".into(),
            city: "Madrid".into(),
        },
        4_950,
        10,
        14,
    )
}

/// Palau Sant Jordi, Barcelona: 200 VIP + 5,500 floor + 6,000 lower + 6,300 upper = 18,000.
pub fn palau_sant_jordi() -> LayoutSpec {
    arena(
        VenueSpec {
            id: "palau-sant-jordi".into(),
            name: "Palau Sant Jordi".into(),
            city: "Barcelona".into(),
        },
        5_500,
        12,
        12,
    )
}

/// The 8 LUX Tour dates in Spain. Doors at 21:00 local time (19:00 UTC in spring).
pub fn lux_tour() -> Vec<DemoEvent> {
    let madrid = [(3, 30), (4, 1), (4, 3), (4, 4)];
    let barcelona = [(4, 13), (4, 15), (4, 17), (4, 18)];
    let event = |city: &str, code: &str, (month, day): (u32, u32), layout: LayoutSpec| DemoEvent {
        event_id: format!("lux-{code}-2026-{month:02}-{day:02}"),
        name: format!("LUX Tour — {city}"),
        artist: "Rosalía".into(),
        starts_at_ms: utc_ms(2026, month, day, 19, 0),
        currency: "EUR".into(),
        fee_per_ticket_minor: 550,
        max_tickets_per_fan: 4,
        layout,
    };
    madrid
        .into_iter()
        .map(|d| event("Madrid", "mad", d, movistar_arena()))
        .chain(
            barcelona
                .into_iter()
                .map(|d| event("Barcelona", "bcn", d, palau_sant_jordi())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use taquilla_proto::money::Currency;

    #[test]
    fn lux_tour_has_142000_seats_in_8_events() {
        let events = lux_tour();
        assert_eq!(events.len(), 8);
        let mut total = 0;
        for e in &events {
            let layout = e
                .layout
                .validate(Currency::from_code(&e.currency).expect("EUR"))
                .expect("demo layouts are valid");
            let expected = if e.event_id.contains("-mad-") {
                17_500
            } else {
                18_000
            };
            assert_eq!(layout.capacity(), expected, "{}", e.event_id);
            let (min, max) = layout.price_range();
            assert_eq!((min, max), (4_500, 50_000));
            total += layout.capacity();
        }
        assert_eq!(total, 142_000);
        let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.event_id).collect();
        assert_eq!(ids.len(), 8, "event ids are unique");
        for e in &events {
            assert!(crate::domain::ids::check_event_id("event_id", &e.event_id).is_ok());
        }
    }
}
