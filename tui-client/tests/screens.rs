//! Every screen rendered at 80×24 from fixed states, compared with the text snapshots in
//! `tests/snapshots/`. After an intended change to a screen, regenerate them with
//! `UPDATE_SNAPSHOTS=1 cargo test -p taquilla-fan --test screens` and review the diff.

mod common;

use common::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use taquilla_fan::app::{App, Link, Msg, Net, ShuffleCheck, update};
use taquilla_fan::ui;
use taquilla_proto::v1 as pb;

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|frame| ui::draw(frame, app)).expect("draw");
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..height {
        let line: String = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

fn assert_snapshot(name: &str, app: &App) {
    let actual = render(app, 80, 24);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "screen {name} changed.\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

#[test]
fn event_list() {
    let mut app = App::new(options(None), NOW);
    net(&mut app, Net::Events(Ok(events())));
    press(&mut app, KeyCode::Down);
    assert_snapshot("events", &app);
}

#[test]
fn event_list_when_the_server_is_down() {
    let mut app = App::new(options(None), NOW);
    net(
        &mut app,
        Net::Events(Err(tonic::Status::unavailable("").into())),
    );
    assert_snapshot("events_unreachable", &app);
}

#[test]
fn queue_waiting_with_alert_and_move_reason() {
    assert_snapshot("queue_waiting", &waiting());
}

#[test]
fn queue_before_the_sale_opens() {
    let mut app = App::new(options(Some(EVENT)), NOW);
    net(&mut app, Net::Events(Ok(events())));
    let mut early = status(pb::QueueState::Prequeue, 0, 812, 0);
    early.sale_opens_at_unix_ms = NOW + 754_000;
    early.shuffle_commitment = "3f0c".repeat(16);
    net(
        &mut app,
        Net::Joined(Ok(pb::JoinResponse {
            queue_token: "tq1.q.token".into(),
            status: Some(early),
            challenge: None,
        })),
    );
    net(&mut app, Net::Link(Link::Live));
    assert_snapshot("queue_prequeue", &app);
}

#[test]
fn queue_with_the_place_verified_and_not() {
    let mut app = waiting();
    net(
        &mut app,
        Net::ShuffleChecked(ShuffleCheck::Verified { position: 5_000 }),
    );
    assert_snapshot("queue_verified", &app);
    net(
        &mut app,
        Net::ShuffleChecked(ShuffleCheck::Failed(
            "the shuffle puts you at place 4,210, but the room showed 5,000".into(),
        )),
    );
    assert_snapshot("queue_not_verified", &app);
}

#[test]
fn queue_after_the_connection_dropped() {
    let mut app = waiting();
    net(
        &mut app,
        Net::Link(Link::Lost {
            attempt: 2,
            retry_at_ms: NOW + 1_500,
            reason: "the server cannot be reached".into(),
        }),
    );
    assert_snapshot("queue_reconnecting", &app);
}

#[test]
fn seat_map_with_picks() {
    let mut app = choosing();
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Down);
    assert_snapshot("seat_map", &app);
}

#[test]
fn seat_map_general_admission_with_help() {
    let mut app = choosing();
    press(&mut app, KeyCode::Char('?'));
    assert_snapshot("seat_map_help", &app);
}

#[test]
fn hold_summary() {
    let mut app = holding();
    update(&mut app, Msg::Tick(NOW + 61_000));
    assert_snapshot("hold", &app);
}

#[test]
fn payment_declined() {
    let mut app = paying();
    press(&mut app, KeyCode::Enter);
    net(&mut app, Net::Paid(Ok(declined_payment())));
    assert_snapshot("pay_declined", &app);
}

#[test]
fn tickets() {
    let mut app = paying();
    press(&mut app, KeyCode::Enter);
    net(
        &mut app,
        Net::Paid(Ok(pb::PayResponse {
            order: Some(paid_order()),
            payment: None,
        })),
    );
    assert_snapshot("tickets", &app);
}

/// The app never draws outside the frame or panics on tiny or odd sizes.
#[test]
fn every_screen_survives_small_and_large_terminals() {
    let apps = [waiting(), choosing(), holding(), paying()];
    for app in &apps {
        for (w, h) in [(20, 8), (40, 12), (80, 24), (132, 43), (10, 4)] {
            let text = render(app, w, h);
            assert_eq!(text.lines().count(), h as usize);
        }
    }
}
