//! Fixed states for the screen and update tests: one event, its seat map, a queue, a hold, an
//! order, reached through `update` the way the running app reaches them.

#![allow(dead_code)]

pub mod server;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use taquilla_fan::app::{App, Msg, Net, Options, update};
use taquilla_proto::v1 as pb;

/// 2026-12-01 18:00:00 UTC.
pub const NOW: i64 = 1_796_148_000_000;
pub const EVENT: &str = "lux-madrid-1";

pub fn eur(amount_minor: i64) -> Option<pb::Money> {
    Some(pb::Money {
        amount_minor,
        currency: "EUR".into(),
    })
}

pub fn section(
    id: &str,
    name: &str,
    kind: pb::SectionKind,
    price: i64,
    capacity: u32,
    available: u32,
) -> pb::SectionSummary {
    pb::SectionSummary {
        id: id.into(),
        name: name.into(),
        kind: kind as i32,
        price: eur(price),
        capacity,
        available,
    }
}

pub fn events() -> Vec<pb::Event> {
    let event = |id: &str,
                 name: &str,
                 city: &str,
                 venue: &str,
                 day: i64,
                 available: u32,
                 state: pb::SaleState| pb::Event {
        id: id.into(),
        name: name.into(),
        artist: "LUX".into(),
        venue: Some(pb::Venue {
            id: venue.to_lowercase(),
            name: venue.into(),
            city: city.into(),
        }),
        starts_at_unix_ms: NOW + day * 86_400_000,
        inventory: Some(pb::InventoryCounts {
            capacity: 17_750,
            available,
            soft_locked: 0,
            hard_locked: 0,
            sold: 17_750 - available,
        }),
        min_price: eur(4_500),
        max_price: eur(18_500),
        fee_per_ticket: eur(350),
        max_tickets_per_fan: 4,
        sale_state: state as i32,
        sale_phase: pb::SalePhase::General as i32,
        sale_opens_at_unix_ms: 0,
        sections: Vec::new(),
    };
    vec![
        event(
            EVENT,
            "LUX Madrid 1",
            "Madrid",
            "Riyadh Air Metropolitano",
            10,
            12_345,
            pb::SaleState::Open,
        ),
        event(
            "lux-madrid-2",
            "LUX Madrid 2",
            "Madrid",
            "Riyadh Air Metropolitano",
            11,
            17_750,
            pb::SaleState::NotOpen,
        ),
        event(
            "lux-barcelona-1",
            "LUX Barcelona 1",
            "Barcelona",
            "Estadi Olimpic",
            14,
            0,
            pb::SaleState::SoldOut,
        ),
    ]
}

pub fn seat_map() -> pb::SeatMap {
    let a = pb::SeatStatus::Available as i32;
    let x = pb::SeatStatus::SoftLocked as i32;
    let h = pb::SeatStatus::HardLocked as i32;
    let s = pb::SeatStatus::Sold as i32;
    let mut rows = Vec::new();
    let mut next_id = 101;
    for (r, label) in ["A", "B", "C", "D", "E", "F"].iter().enumerate() {
        let statuses: Vec<i32> = (0..30)
            .map(|i| match (r * 7 + i * 3) % 11 {
                0 => s,
                1 => x,
                2 => h,
                _ => a,
            })
            .collect();
        rows.push(pb::RowMap {
            label: (*label).into(),
            first_seat_id: next_id,
            first_seat_number: 1,
            statuses: statuses.clone(),
        });
        next_id += statuses.len() as u32;
    }
    pb::SeatMap {
        event_id: EVENT.into(),
        version: 7,
        sections: vec![
            pb::SectionMap {
                summary: Some(section(
                    "floor",
                    "Floor (standing)",
                    pb::SectionKind::GeneralAdmission,
                    6_500,
                    400,
                    120,
                )),
                rows: Vec::new(),
                first_seat_id: 1,
            },
            pb::SectionMap {
                summary: Some(section(
                    "a",
                    "Block A",
                    pb::SectionKind::Seated,
                    8_500,
                    180,
                    128,
                )),
                rows,
                first_seat_id: 101,
            },
        ],
        read_at_unix_ms: NOW,
    }
}

pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn net(app: &mut App, net: Net) {
    update(app, Msg::Net(Box::new(net)));
}

pub fn press(app: &mut App, code: KeyCode) {
    update(app, key(code));
}

pub fn options(event: Option<&str>) -> Options {
    Options {
        event_id: event.map(str::to_string),
        fingerprint: "fp-test".into(),
        presale_code: String::new(),
        session: "s1".into(),
    }
}

pub fn status(state: pb::QueueState, position: u64, waiting: u64, initial: u64) -> pb::QueueStatus {
    pb::QueueStatus {
        event_id: EVENT.into(),
        state: state as i32,
        position,
        waiting_total: waiting,
        eta_seconds: position / 10,
        tier: pb::QueueTier::General as i32,
        initial_position: initial,
        sale_opens_at_unix_ms: 0,
        sale_paused: false,
        shuffle_commitment: String::new(),
    }
}

/// In line at 1,234 of 45,678 after starting at 5,000, with an operator alert.
pub fn waiting() -> App {
    let mut app = App::new(options(Some(EVENT)), NOW);
    net(&mut app, Net::Events(Ok(events())));
    net(
        &mut app,
        Net::Joined(Ok(pb::JoinResponse {
            queue_token: "tq1.q.token".into(),
            status: Some(status(pb::QueueState::Waiting, 5_000, 46_000, 5_000)),
            challenge: None,
        })),
    );
    net(
        &mut app,
        Net::Queue(Box::new(pb::QueueUpdate {
            status: Some(status(pb::QueueState::Waiting, 1_234, 45_678, 5_000)),
            move_reason: pb::MoveReason::Admissions as i32,
            alert: Some(pb::Alert {
                id: 1,
                message: "Block A is almost gone; the floor still has plenty of room.".into(),
                severity: pb::AlertSeverity::Warning as i32,
                sent_at_unix_ms: NOW - 60_000,
            }),
            admission_pass: None,
            heartbeat: false,
            reconnect: false,
            server_time_unix_ms: NOW,
            ..Default::default()
        })),
    );
    app.take_commands();
    app
}

pub fn pass() -> pb::AdmissionPass {
    pb::AdmissionPass {
        token: "tq1.p.pass".into(),
        event_id: EVENT.into(),
        expires_at_unix_ms: NOW + 1_800_000,
        hold_deadline_unix_ms: NOW + 300_000,
    }
}

/// Admitted, seat map loaded, cursor in Block A.
pub fn choosing() -> App {
    let mut app = waiting();
    net(
        &mut app,
        Net::Queue(Box::new(pb::QueueUpdate {
            status: Some(status(pb::QueueState::Admitted, 0, 45_000, 5_000)),
            move_reason: pb::MoveReason::Admissions as i32,
            alert: None,
            admission_pass: Some(pass()),
            heartbeat: false,
            reconnect: false,
            server_time_unix_ms: NOW,
            ..Default::default()
        })),
    );
    net(&mut app, Net::SeatMap(Ok(seat_map())));
    app.take_commands();
    app
}

pub fn seat_ref(id: u32, row: &str, number: u32) -> pb::SeatRef {
    pb::SeatRef {
        seat_id: id,
        section_id: "a".into(),
        section_name: "Block A".into(),
        row: row.into(),
        number,
        price: eur(8_500),
    }
}

pub fn hold() -> pb::Hold {
    pb::Hold {
        hold_id: "h-1".into(),
        event_id: EVENT.into(),
        seats: vec![seat_ref(104, "A", 4), seat_ref(105, "A", 5)],
        state: pb::HoldState::Active as i32,
        expires_at_unix_ms: NOW + 600_000,
        subtotal: eur(17_000),
    }
}

pub fn holding() -> App {
    let mut app = choosing();
    net(&mut app, Net::Held(Ok(hold())));
    app.take_commands();
    app
}

pub fn order(state: pb::OrderState) -> pb::Order {
    pb::Order {
        order_id: "o-1".into(),
        event_id: EVENT.into(),
        state: state as i32,
        seats: hold().seats,
        subtotal: eur(17_000),
        fees: eur(700),
        total: eur(17_700),
        expires_at_unix_ms: NOW + 900_000,
        payments: Vec::new(),
        tickets: Vec::new(),
        created_at_unix_ms: NOW,
    }
}

pub fn paying() -> App {
    let mut app = holding();
    net(
        &mut app,
        Net::CheckedOut(Ok(order(pb::OrderState::PendingPayment))),
    );
    app.take_commands();
    app
}

pub fn declined_payment() -> pb::PayResponse {
    pb::PayResponse {
        order: Some(order(pb::OrderState::PendingPayment)),
        payment: Some(pb::Payment {
            payment_id: "p-1".into(),
            state: pb::PaymentState::Failed as i32,
            amount: eur(17_700),
            provider_intent_id: "pi_1".into(),
            failure_reason: "card declined: insufficient funds".into(),
            created_at_unix_ms: NOW,
        }),
    }
}

pub fn paid_order() -> pb::Order {
    let mut order = order(pb::OrderState::Paid);
    order.tickets = order
        .seats
        .iter()
        .enumerate()
        .map(|(i, seat)| pb::Ticket {
            ticket_id: format!("t-{i}"),
            seat: Some(seat.clone()),
            code: format!("tq1.t.eyJldiI6Imx1eC1tYWRyaWQtMSIsInNlYXQiOjEwNH0.MAC{i}abcdefghijklmnopqrstuvwxyz0123456789"),
            state: pb::TicketState::Valid as i32,
        })
        .collect();
    order
}
