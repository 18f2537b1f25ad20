//! The app's state machine, driven by messages as the running app is: what each key, tick and
//! answer does to the screen and which network commands it queues.

mod common;

use common::*;
use ratatui::crossterm::event::KeyCode;
use taquilla_fan::app::{
    App, Command, Failure, Link, Msg, Net, Screen, Selection, ShuffleCheck, check_shuffle, update,
};
use taquilla_proto::v1 as pb;

#[test]
fn joining_from_the_flag_once_the_event_is_known() {
    let mut app = App::new(options(Some(EVENT)), NOW);
    assert_eq!(app.take_commands(), vec![Command::LoadEvents]);
    assert_eq!(app.screen, Screen::Queue);
    net(&mut app, Net::Events(Ok(events())));
    assert_eq!(
        app.take_commands(),
        vec![Command::Join {
            event_id: EVENT.into(),
            fingerprint: "fp-test".into(),
            presale_code: String::new(),
        }]
    );
    net(
        &mut app,
        Net::Joined(Ok(pb::JoinResponse {
            queue_token: "tok".into(),
            status: Some(status(pb::QueueState::Waiting, 9, 9, 9)),
            challenge: None,
        })),
    );
    assert_eq!(
        app.take_commands(),
        vec![Command::WatchQueue {
            token: "tok".into()
        }]
    );
}

#[test]
fn an_unknown_event_flag_falls_back_to_the_list() {
    let mut app = App::new(options(Some("nope")), NOW);
    app.take_commands();
    net(&mut app, Net::Events(Ok(events())));
    assert_eq!(app.screen, Screen::Events);
    assert!(app.take_commands().is_empty());
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.contains("\"nope\""))
    );
}

#[test]
fn admitted_goes_to_the_seat_map_and_stops_watching_the_queue() {
    let mut app = waiting();
    net(
        &mut app,
        Net::Queue(Box::new(pb::QueueUpdate {
            status: Some(status(pb::QueueState::Admitted, 0, 100, 5_000)),
            admission_pass: Some(pass()),
            server_time_unix_ms: NOW + 2_000,
            ..Default::default()
        })),
    );
    assert_eq!(app.screen, Screen::SeatMap);
    assert_eq!(app.pass, Some(pass()));
    // The server's clock is two seconds ahead: countdowns follow it.
    assert_eq!(app.server_offset_ms, 2_000);
    assert_eq!(
        app.take_commands(),
        vec![
            Command::StopQueueWatch,
            Command::LoadSeatMap {
                event_id: EVENT.into()
            }
        ]
    );
    net(&mut app, Net::SeatMap(Ok(seat_map())));
    assert_eq!(
        app.take_commands(),
        vec![Command::WatchAvailability {
            event_id: EVENT.into(),
            after_version: 7
        }]
    );
}

#[test]
fn a_dropped_stream_shows_reconnecting_then_live_keeping_the_place() {
    let mut app = waiting();
    net(
        &mut app,
        Net::Link(Link::Lost {
            attempt: 1,
            retry_at_ms: NOW + 500,
            reason: "connection reset".into(),
        }),
    );
    assert!(matches!(app.link, Link::Lost { attempt: 1, .. }));
    assert_eq!(app.queue_token.as_deref(), Some("tq1.q.token"));
    net(&mut app, Net::Link(Link::Live));
    assert_eq!(app.link, Link::Live);
    assert_eq!(app.queue.as_ref().map(|s| s.position), Some(1_234));
}

#[test]
fn a_lost_place_can_be_rejoined_with_r() {
    let mut app = waiting();
    press(&mut app, KeyCode::Char('r'));
    assert!(
        app.take_commands().is_empty(),
        "r does nothing while in line"
    );
    net(
        &mut app,
        Net::QueueEnded(Failure::new(
            tonic::Code::Unauthenticated,
            "the queue token expired",
        )),
    );
    press(&mut app, KeyCode::Char('r'));
    assert!(matches!(
        app.take_commands().as_slice(),
        [Command::Join { .. }]
    ));
}

#[test]
fn moves_up_explain_why() {
    let mut app = waiting();
    net(
        &mut app,
        Net::Queue(Box::new(pb::QueueUpdate {
            status: Some(status(pb::QueueState::Waiting, 1_300, 45_000, 5_000)),
            move_reason: pb::MoveReason::PriorityTier as i32,
            ..Default::default()
        })),
    );
    assert_eq!(
        app.moved.as_deref(),
        Some("Moved from 1,234 to 1,300: fans with priority (presale or VIP) are served first.")
    );
}

#[test]
fn best_available_and_picked_seats_become_hold_commands() {
    let mut app = choosing();
    press(&mut app, KeyCode::Char('3'));
    press(&mut app, KeyCode::Char('b'));
    assert_eq!(
        app.take_commands(),
        vec![Command::Hold {
            pass: pass().token,
            event_id: EVENT.into(),
            selection: Selection::Best {
                section_id: "floor".into(),
                quantity: 3
            },
        }]
    );
    // Keys wait while a hold is in flight.
    press(&mut app, KeyCode::Char('b'));
    assert!(app.take_commands().is_empty());
    net(
        &mut app,
        Net::Held(Err(Failure::new(
            tonic::Code::Aborted,
            "Block A row A seat 4 was just taken by someone else",
        ))),
    );
    assert_eq!(app.screen, Screen::SeatMap);
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.starts_with("Too late: Block A"))
    );

    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Char(' '));
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.take_commands(),
        vec![Command::Hold {
            pass: pass().token,
            event_id: EVENT.into(),
            selection: Selection::Seats(vec![102, 103]),
        }]
    );
}

#[test]
fn the_cap_is_enforced_before_asking_the_server() {
    let mut app = choosing();
    press(&mut app, KeyCode::Char('9'));
    assert_eq!(app.quantity, 4);
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.text.contains("at most 4"))
    );
    net(
        &mut app,
        Net::Held(Err(Failure::new(
            tonic::Code::FailedPrecondition,
            "you already hold or bought 4 of the 4 tickets allowed per fan for this event",
        ))),
    );
    assert_eq!(
        app.notice.as_ref().map(|n| n.text.as_str()),
        Some(
            "Not held: You already hold or bought 4 of the 4 tickets allowed per fan for this event."
        )
    );
}

#[test]
fn someone_else_taking_a_picked_seat_unpicks_it_with_a_message() {
    let mut app = choosing();
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Right);
    press(&mut app, KeyCode::Char(' '));
    net(
        &mut app,
        Net::Availability(pb::AvailabilityUpdate {
            event_id: EVENT.into(),
            version: 8,
            changes: vec![pb::SeatChange {
                seat_id: 102,
                status: pb::SeatStatus::SoftLocked as i32,
            }],
            sections: Vec::new(),
            resync: false,
        }),
    );
    let map = app.map.as_ref().expect("map");
    assert!(map.picked.is_empty());
    assert_eq!(
        app.notice.as_ref().map(|n| n.text.as_str()),
        Some("Someone else just took Block A row A seat 2; pick another seat.")
    );
    // A resync reloads the whole map.
    net(
        &mut app,
        Net::Availability(pb::AvailabilityUpdate {
            resync: true,
            ..Default::default()
        }),
    );
    assert_eq!(
        app.take_commands(),
        vec![Command::LoadSeatMap {
            event_id: EVENT.into()
        }]
    );
}

#[test]
fn an_expired_hold_goes_back_to_the_seat_map_with_a_message() {
    let mut app = holding();
    assert_eq!(app.screen, Screen::Hold);
    assert_eq!(app.map.as_ref().map(|m| m.yours.len()), Some(2));
    update(&mut app, Msg::Tick(NOW + 599_000));
    assert_eq!(app.screen, Screen::Hold);
    update(&mut app, Msg::Tick(NOW + 600_000));
    assert_eq!(app.screen, Screen::SeatMap);
    assert!(app.hold.is_none());
    assert_eq!(app.map.as_ref().map(|m| m.yours.len()), Some(0));
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.contains("hold expired"))
    );
}

#[test]
fn checkout_of_a_lapsed_hold_goes_back_to_the_seat_map() {
    let mut app = holding();
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.take_commands(),
        vec![Command::Checkout {
            pass: pass().token,
            hold_id: "h-1".into(),
            idempotency_key: app.idempotency_key("checkout", "h-1", 1),
        }]
    );
    net(
        &mut app,
        Net::CheckedOut(Err(Failure::new(
            tonic::Code::FailedPrecondition,
            "hold \"h-1\" expired",
        ))),
    );
    assert_eq!(app.screen, Screen::SeatMap);
}

#[test]
fn a_declined_payment_can_be_retried_with_a_new_key_and_a_lost_answer_with_the_same() {
    let mut app = paying();
    for _ in 0..19 {
        press(&mut app, KeyCode::Backspace);
    }
    for c in "4000000000009995".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    let first = app.take_commands();
    let [
        Command::Pay {
            idempotency_key,
            card,
            ..
        },
    ] = first.as_slice()
    else {
        panic!("expected one Pay, got {first:?}");
    };
    assert_eq!(idempotency_key, &app.idempotency_key("pay", "o-1", 1));
    assert!(idempotency_key.starts_with("pay-") && idempotency_key.len() <= 64);
    assert_eq!(card.number, "4000000000009995");
    net(&mut app, Net::Paid(Ok(declined_payment())));
    assert_eq!(app.screen, Screen::Pay);
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.text.contains("Enter to retry"))
    );

    // Retry after the decline: a new attempt, a new key.
    press(&mut app, KeyCode::Enter);
    let second = app.take_commands();
    let retry_key = app.idempotency_key("pay", "o-1", 2);
    assert!(
        matches!(second.as_slice(), [Command::Pay { idempotency_key, .. }] if *idempotency_key == retry_key)
    );
    // The answer is lost: the retry repeats the same attempt with the same key.
    net(
        &mut app,
        Net::Paid(Err(Failure::new(
            tonic::Code::Unavailable,
            "connection reset",
        ))),
    );
    press(&mut app, KeyCode::Enter);
    let third = app.take_commands();
    assert!(
        matches!(third.as_slice(), [Command::Pay { idempotency_key, .. }] if *idempotency_key == retry_key)
    );
    net(
        &mut app,
        Net::Paid(Ok(pb::PayResponse {
            order: Some(paid_order()),
            payment: None,
        })),
    );
    assert_eq!(app.screen, Screen::Tickets);
    assert_eq!(app.order.as_ref().map(|o| o.tickets.len()), Some(2));
}

#[test]
fn a_bad_card_form_is_explained_without_calling_the_server() {
    let mut app = paying();
    press(&mut app, KeyCode::Tab);
    for _ in 0..5 {
        press(&mut app, KeyCode::Backspace);
    }
    for c in "13/29".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    assert!(app.take_commands().is_empty());
    assert_eq!(
        app.notice.as_ref().map(|n| n.text.as_str()),
        Some("Write the expiry date as MM/YY, e.g. 12/29.")
    );
}

#[test]
fn an_order_that_runs_out_while_paying_goes_back_to_the_seat_map() {
    let mut app = paying();
    update(&mut app, Msg::Tick(NOW + 900_000));
    assert_eq!(app.screen, Screen::SeatMap);
    assert!(app.order.is_none());
}

#[test]
fn q_and_ctrl_c_quit_from_any_screen() {
    for mut app in [waiting(), choosing(), holding(), paying()] {
        press(&mut app, KeyCode::Char('q'));
        assert!(app.quit);
    }
    let mut app = paying();
    update(
        &mut app,
        Msg::Key(ratatui::crossterm::event::KeyEvent::new(
            KeyCode::Char('c'),
            ratatui::crossterm::event::KeyModifiers::CONTROL,
        )),
    );
    assert!(app.quit);
}

/// A proof as `GetShuffleProof` sends it, of `fans` fans with tokens `tok-0`, `tok-1`, …, in
/// chunks of `per_chunk` entries; and the commitment.
fn proof_chunks(fans: usize, per_chunk: usize) -> (Vec<pb::ShuffleProofChunk>, String) {
    use taquilla_proto::fairness;
    let secret = fairness::ShuffleSecret {
        seed: [4; 32],
        nonce: [5; 32],
    };
    let commitment = secret.commitment();
    let opening = fairness::open(
        &secret,
        (0..fans).map(|i| {
            (
                fairness::manifest_entry(&commitment, &format!("tok-{i}")),
                0,
            )
        }),
    );
    let header = pb::ShuffleProofHeader {
        event_id: EVENT.into(),
        commitment: hex(&commitment),
        revealed: true,
        seed: hex(&secret.seed),
        nonce: hex(&secret.nonce),
        manifest_digest: hex(&opening.digest),
        entries: fans as u64,
    };
    let mut chunks: Vec<pb::ShuffleProofChunk> = opening
        .entries
        .chunks(per_chunk)
        .map(|entries| pb::ShuffleProofChunk {
            header: None,
            entries: entries
                .iter()
                .map(|e| pb::ManifestEntry {
                    entry: e.entry.to_vec(),
                    tier: pb::QueueTier::General as i32,
                    order: e.order,
                })
                .collect(),
        })
        .collect();
    chunks[0].header = Some(header);
    (chunks, hex(&commitment))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn leaving_the_early_queue_checks_the_shuffle_once() {
    let mut app = App::new(options(Some(EVENT)), NOW);
    net(&mut app, Net::Events(Ok(events())));
    let mut early = status(pb::QueueState::Prequeue, 0, 30, 0);
    early.shuffle_commitment = "c0ffee".into();
    net(
        &mut app,
        Net::Joined(Ok(pb::JoinResponse {
            queue_token: "tok-7".into(),
            status: Some(early.clone()),
            challenge: None,
        })),
    );
    app.take_commands();
    let update = |status| {
        Net::Queue(Box::new(pb::QueueUpdate {
            status: Some(status),
            move_reason: pb::MoveReason::SaleOpened as i32,
            ..Default::default()
        }))
    };
    net(&mut app, update(early));
    assert!(
        app.take_commands().is_empty(),
        "nothing to check before opening"
    );
    assert_eq!(app.commitment_seen.as_deref(), Some("c0ffee"));
    net(
        &mut app,
        update(status(pb::QueueState::Waiting, 12, 30, 12)),
    );
    assert_eq!(
        app.take_commands(),
        vec![Command::CheckShuffle {
            event_id: EVENT.into(),
            token: "tok-7".into(),
            shown_position: 12,
            commitment_seen: "c0ffee".into(),
        }]
    );
    assert_eq!(app.shuffle, Some(ShuffleCheck::Checking));
    net(
        &mut app,
        update(status(pb::QueueState::Waiting, 11, 30, 12)),
    );
    assert!(app.take_commands().is_empty(), "checked once");
    net(
        &mut app,
        Net::ShuffleChecked(ShuffleCheck::Verified { position: 12 }),
    );
    assert_eq!(app.shuffle, Some(ShuffleCheck::Verified { position: 12 }));
}

#[test]
fn a_fans_place_is_verified_against_the_proof() {
    let (chunks, commitment) = proof_chunks(25_000, 10_000);
    assert_eq!(chunks.len(), 3);
    let place = |token: &str| {
        let proof = taquilla_proto::fairness::assemble(chunks.clone())
            .expect("assembles")
            .proof
            .expect("revealed");
        taquilla_proto::fairness::find_fan(&proof, token)
            .expect("listed")
            .1
    };
    let mine = place("tok-123");
    assert_eq!(
        check_shuffle(chunks.clone(), "tok-123", mine, &commitment),
        ShuffleCheck::Verified { position: mine }
    );
    // The room showed another place than the proof gives.
    assert!(matches!(
        check_shuffle(chunks.clone(), "tok-123", mine + 1, &commitment),
        ShuffleCheck::Failed(why) if why.contains(&format!("place {mine}"))
    ));
    // Another commitment than the one shown before opening.
    assert!(matches!(
        check_shuffle(chunks.clone(), "tok-123", mine, &"ab".repeat(32)),
        ShuffleCheck::Failed(why) if why.contains("not")
    ));
    // Not in the manifest.
    assert!(matches!(
        check_shuffle(chunks.clone(), "someone", mine, &commitment),
        ShuffleCheck::Failed(why) if why.contains("not in the published manifest")
    ));
    // A changed entry, and a wrong seed.
    let mut tampered = chunks.clone();
    tampered[1].entries[5].entry[0] ^= 1;
    assert!(matches!(
        check_shuffle(tampered, "tok-123", mine, &commitment),
        ShuffleCheck::Failed(why) if why.contains("manifest was changed")
    ));
    let mut wrong_seed = chunks;
    if let Some(header) = wrong_seed[0].header.as_mut() {
        header.seed = "00".repeat(32);
    }
    assert!(matches!(
        check_shuffle(wrong_seed, "tok-123", mine, &commitment),
        ShuffleCheck::Failed(why) if why.contains("not the one committed to")
    ));
}
