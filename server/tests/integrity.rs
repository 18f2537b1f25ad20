//! Integrity under concurrency, through gRPC against a real database on both backends: every
//! test races real concurrent clients and would fail on a double sale, a double charge or a
//! lost order. The operator audit must be clean after each.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use taquilla_proto::v1 as pb;
use taquilla_server::domain::clock::{Clock, ManualClock};
use tonic::Code;

const TEN_SEATS: &str = r#"
[venue]
id = "club"
name = "Club"
[[sections]]
id = "a"
name = "Block A"
kind = "seated"
price = 40
rows = [ { label = "1", seats = 5 }, { label = "2", seats = 5 } ]
"#;

const DRAIN: &str = r#"
[venue]
id = "hall"
name = "Hall"
[[sections]]
id = "s"
name = "Stalls"
kind = "seated"
price = 50
row_count = 6
seats_per_row = 10
[[sections]]
id = "ga"
name = "Standing"
kind = "general_admission"
price = 30
capacity = 40
"#;

fn code_of<T>(result: &Result<T, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn two_hundred_clients_race_for_ten_seats(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", TEN_SEATS, 10).await;

    // Phase 1: everyone wants one of the same ten seats.
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let mut client = server.fan("ev", &format!("fan-{i}"));
        tasks.push(tokio::spawn(async move {
            let seat = i % 10 + 1;
            (seat, i, client.hold_seats(seats(&[seat])).await)
        }));
    }
    let mut winners: HashMap<u32, Vec<u32>> = HashMap::new();
    for task in tasks {
        let (seat, fan, result) = task.await.expect("task");
        match result {
            Ok(_) => winners.entry(seat).or_default().push(fan),
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{status:?}");
                assert!(
                    status.message().contains("just taken"),
                    "{}",
                    status.message()
                );
            }
        }
    }
    for seat in 1..=10 {
        assert_eq!(
            winners.get(&seat).map(Vec::len),
            Some(1),
            "seat {seat}: {winners:?}"
        );
    }
    server.assert_audit_clean("ev").await;

    // Phase 2, all or nothing: overlapping pairs on a fresh event.
    create_event(&server, "ev2", TEN_SEATS, 10).await;
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let mut client = server.fan("ev2", &format!("pair-{i}"));
        tasks.push(tokio::spawn(async move {
            let pair = [i % 10 + 1, (i + 1) % 10 + 1];
            (pair, client.hold_seats(seats_in("ev2", &pair)).await)
        }));
    }
    let mut held: HashSet<u32> = HashSet::new();
    for task in tasks {
        let (pair, result) = task.await.expect("task");
        match result {
            Ok(response) => {
                let hold = response.into_inner().hold.expect("hold");
                let ids: Vec<u32> = hold.seats.iter().map(|s| s.seat_id).collect();
                assert_eq!(ids.len(), 2, "a hold has both seats or none");
                for id in ids {
                    assert!(pair.contains(&id));
                    assert!(held.insert(id), "seat {id} held twice");
                }
            }
            Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    // Exactly the seats held are locked on the map: losers locked nothing.
    let statuses = seat_statuses(&server, "ev2").await;
    let locked: HashSet<u32> = statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == pb::SeatStatus::SoftLocked as i32)
        .map(|(i, _)| i as u32 + 1)
        .collect();
    assert_eq!(locked, held);
    assert!(
        held.len() >= 6,
        "at least three disjoint pairs win: {held:?}"
    );
    server.assert_audit_clean("ev2").await;
    server.stop().await;
}

async fn best_available_drains_sections_to_zero(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", DRAIN, 4).await;
    let mut tasks = Vec::new();
    for worker in 0..24u32 {
        let server_channel = server.channel.clone();
        let _ = server_channel;
        let clients: Vec<_> = (0..60)
            .map(|n| server.fan("ev", &format!("w{worker}-f{n}")))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut got: Vec<u32> = Vec::new();
            for (n, mut client) in clients.into_iter().enumerate() {
                let section = if (worker + n as u32).is_multiple_of(3) {
                    "ga"
                } else {
                    "s"
                };
                let quantity = (worker + n as u32) % 4 + 1;
                match client.hold_seats(best("ev", section, quantity)).await {
                    Ok(response) => {
                        let hold = response.into_inner().hold.expect("hold");
                        assert_eq!(hold.seats.len() as u32, quantity);
                        got.extend(hold.seats.iter().map(|s| s.seat_id));
                    }
                    Err(status) => {
                        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                        assert!(
                            status.message().contains("free in section"),
                            "{}",
                            status.message()
                        );
                    }
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    // Whatever the requests could not fit (e.g. 3 wanted, 2 left), sweep up seat by seat.
    for section in ["s", "ga"] {
        let mut n = 0;
        loop {
            let mut client = server.fan("ev", &format!("sweeper-{section}-{n}"));
            n += 1;
            match client.hold_seats(best("ev", section, 1)).await {
                Ok(response) => all.extend(held_ids(response)),
                Err(status) => {
                    assert_eq!(status.code(), Code::FailedPrecondition);
                    break;
                }
            }
        }
    }
    let unique: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "no seat was held twice");
    assert_eq!(all.len(), 100, "every seat and place was held exactly once");
    // The event list is cached for at most half a second.
    let listed = &server;
    wait_until(
        "the event list to show every seat held",
        std::time::Duration::from_millis(1_000),
        || async move {
            let events = listed
                .sales()
                .list_events(pb::ListEventsRequest {})
                .await
                .expect("list")
                .into_inner()
                .events;
            let inventory = events[0].inventory.expect("inventory");
            inventory.available == 0 && inventory.soft_locked == 100
        },
    )
    .await;
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn one_fans_concurrent_holds_respect_the_cap(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", DRAIN, 4).await;
    let pass = pass_for("ev", "greedy", i64::MAX);
    let mut tasks = Vec::new();
    for i in 0..30u32 {
        let mut client = server.sales_with_pass(&pass);
        tasks.push(tokio::spawn(async move {
            let request = if i % 2 == 0 {
                seats_in("ev", &[i + 1])
            } else {
                best("ev", "s", 2)
            };
            client
                .hold_seats(request)
                .await
                .map(|r| r.into_inner().hold.expect("hold").seats.len())
        }));
    }
    let mut held = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(n) => held += n,
            Err(status) => assert!(
                matches!(status.code(), Code::FailedPrecondition | Code::Aborted),
                "{status:?}"
            ),
        }
    }
    assert!(held <= 4, "the fan holds {held} seats with a cap of 4");
    assert!(held >= 3, "the fan got close to the cap ({held})");
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn checkout_racing_hold_expiry(backend: Backend) {
    let clock = ManualClock::new(1_800_000_000_000);
    let server = TestServer::start_with(backend, Arc::new(clock.clone()), |c| {
        c.hold_ttl = std::time::Duration::from_secs(600);
    })
    .await;
    create_event(&server, "ev", DRAIN, 4).await;
    // 60 fans hold one seat each.
    let mut holds = Vec::new();
    for seat in 1..=60u32 {
        let mut fan = server.fan("ev", &format!("fan-{seat}"));
        let hold = fan
            .hold_seats(seats_in("ev", &[seat]))
            .await
            .expect("hold")
            .into_inner()
            .hold
            .expect("hold");
        holds.push((seat, hold));
    }
    let expires_at = holds[0].1.expires_at_unix_ms;
    // Seats 1–30 race one millisecond before expiry, 31–60 exactly at expiry: each holder's
    // checkout against a rival's hold of the same seat, and the sweeper running alongside.
    let mut outcomes = Vec::new();
    for (phase, at) in [(0, expires_at - 1), (1, expires_at)] {
        let now = clock.now_ms();
        clock.advance_ms(at - now);
        let mut tasks = Vec::new();
        for (seat, hold) in holds.iter().filter(|(s, _)| (*s > 30) == (phase == 1)) {
            let mut holder = server.fan("ev", &format!("fan-{seat}"));
            let mut rival = server.fan("ev", &format!("rival-{seat}"));
            let hold_id = hold.hold_id.clone();
            let seat = *seat;
            tasks.push(tokio::spawn(async move {
                let checkout = holder.checkout(pb::CheckoutRequest {
                    hold_id,
                    idempotency_key: format!("checkout-{seat}"),
                });
                let steal = rival.hold_seats(seats_in("ev", &[seat]));
                let (checkout, steal) = tokio::join!(checkout, steal);
                (seat, code_of(&checkout), code_of(&steal))
            }));
        }
        let sweep = taquilla_server::purchase::sweep_once(&server.state.purchases);
        let (_, results) = tokio::join!(sweep, futures_join_all(tasks));
        outcomes.extend(results);
    }
    for (seat, checkout, steal) in outcomes {
        if seat <= 30 {
            assert_eq!(
                (checkout, steal),
                (Code::Ok, Code::Aborted),
                "seat {seat} before expiry"
            );
        } else {
            assert_eq!(
                (checkout, steal),
                (Code::FailedPrecondition, Code::Ok),
                "seat {seat} at expiry"
            );
        }
    }
    let statuses = seat_statuses(&server, "ev").await;
    assert!(
        statuses[..30]
            .iter()
            .all(|s| *s == pb::SeatStatus::HardLocked as i32)
    );
    assert!(
        statuses[30..60]
            .iter()
            .all(|s| *s == pb::SeatStatus::SoftLocked as i32)
    );
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn futures_join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("task"));
    }
    out
}

/// Holds `seat_ids` for `fan` and checks out; returns the order.
async fn order_for(server: &TestServer, event_id: &str, fan: &str, seat_ids: &[u32]) -> pb::Order {
    let mut client = server.fan(event_id, fan);
    let hold = client
        .hold_seats(seats_in(event_id, seat_ids))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    checkout_hold(&mut client, hold.hold_id, format!("co-{fan}-0001")).await
}

/// `fan` pays `order_id` of event "ev" with a good card, in a task of its own.
fn pay_in_background(
    server: &TestServer,
    fan: &str,
    order_id: &str,
    key: &str,
) -> tokio::task::JoinHandle<Result<tonic::Response<pb::PayResponse>, tonic::Status>> {
    let mut payer = server.fan("ev", fan);
    let request = pb::PayRequest {
        order_id: order_id.to_string(),
        idempotency_key: key.to_string(),
        card: Some(good_card()),
    };
    tokio::spawn(async move { payer.pay(request).await })
}

async fn concurrent_pays_charge_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", DRAIN, 4).await;

    // Twenty concurrent calls with the same key: one payment, one charge.
    let order = order_for(&server, "ev", "alice", &[1, 2]).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let mut client = server.fan("ev", "alice");
        let order_id = order.order_id.clone();
        tasks.push(tokio::spawn(async move {
            client
                .pay(pb::PayRequest {
                    order_id,
                    idempotency_key: "pay-alice-once".into(),
                    card: Some(good_card()),
                })
                .await
        }));
    }
    let mut payment_ids = HashSet::new();
    for result in futures_join_all(tasks).await {
        match result {
            Ok(response) => {
                let response = response.into_inner();
                let payment = response.payment.expect("payment");
                assert_eq!(
                    payment.state,
                    pb::PaymentState::Captured as i32,
                    "{payment:?}"
                );
                payment_ids.insert(payment.payment_id);
            }
            // A replay that arrives while the first call is mid-flight may be told to retry.
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        }
    }
    assert_eq!(
        payment_ids.len(),
        1,
        "one key, one payment: {payment_ids:?}"
    );
    assert_eq!(server.provider().charges(), 1);

    // Twenty concurrent calls with different keys: still one charge.
    let order = order_for(&server, "ev", "bob", &[3, 4]).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut client = server.fan("ev", "bob");
        let order_id = order.order_id.clone();
        tasks.push(tokio::spawn(async move {
            client
                .pay(pb::PayRequest {
                    order_id,
                    idempotency_key: format!("pay-bob-key-{i:02}"),
                    card: Some(good_card()),
                })
                .await
        }));
    }
    let mut captured = 0;
    for result in futures_join_all(tasks).await {
        match result {
            Ok(response) => {
                let payment = response.into_inner().payment.expect("payment");
                if payment.state == pb::PaymentState::Captured as i32 {
                    captured += 1;
                }
            }
            Err(status) => assert!(
                matches!(status.code(), Code::Aborted | Code::FailedPrecondition),
                "{status:?}"
            ),
        }
    }
    assert_eq!(captured, 1);
    assert_eq!(server.provider().charges(), 2);
    let paid = server
        .fan("ev", "bob")
        .get_order(pb::GetOrderRequest {
            order_id: order.order_id,
        })
        .await
        .expect("order")
        .into_inner();
    assert_eq!(paid.state, pb::OrderState::Paid as i32);
    assert_eq!(paid.tickets.len(), 2);
    let captures = paid
        .payments
        .iter()
        .filter(|p| p.state == pb::PaymentState::Captured as i32)
        .count();
    assert_eq!(captures, 1);
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn payment_landing_after_the_lock_lapsed_is_voided(backend: Backend) {
    let clock = ManualClock::new(1_800_000_000_000);
    let server = TestServer::start_with(backend, Arc::new(clock.clone()), |c| {
        // The provider takes a while to authorize; the lock lapses meanwhile.
        // Long enough that the test's clock move and rival hold surely land inside it, even on
        // a loaded machine.
        c.payment_latency = std::time::Duration::from_millis(1_500);
        c.payment_latency_tail = std::time::Duration::from_millis(1);
    })
    .await;
    create_event(&server, "ev", DRAIN, 4).await;
    let order = order_for(&server, "ev", "slow", &[5, 6]).await;
    let provider = server.provider();
    let calls_before = provider.calls();
    let pay = pay_in_background(&server, "slow", &order.order_id, "slow-payment-1");
    // While the provider thinks, the order's time runs out and someone else takes a seat.
    wait_until(
        "the payment to reach the provider",
        std::time::Duration::from_secs(10),
        || async move { provider.calls() > calls_before },
    )
    .await;
    clock.advance_ms(order.expires_at_unix_ms - clock.now_ms() + 1);
    let mut rival = server.fan("ev", "rival");
    rival
        .hold_seats(seats_in("ev", &[5]))
        .await
        .expect("the lapsed seat is free again");
    let status = pay.await.expect("task").expect_err("too late");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("not charged"),
        "{}",
        status.message()
    );
    assert_eq!(server.provider().charges(), 0);
    assert_eq!(
        server
            .provider()
            .count(taquilla_server::payments::IntentStatus::Canceled),
        1,
        "the authorization was voided"
    );
    let after = server
        .fan("ev", "slow")
        .get_order(pb::GetOrderRequest {
            order_id: order.order_id,
        })
        .await
        .expect("order")
        .into_inner();
    assert_ne!(after.state, pb::OrderState::Paid as i32);
    assert_eq!(after.payments[0].state, pb::PaymentState::Voided as i32);
    assert!(after.tickets.is_empty());
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

/// A payment that starts with less time left on its order's lock than the capture takes claims
/// the seats first: the lock is extended over the capture, so a rival cannot take a seat and the
/// sweeper cannot free one between the claim and the sale, even once the order's original time
/// has passed. (With more time left the claim is skipped: the lock already covers the capture.)
async fn a_payment_near_its_locks_end_claims_the_seats_over_the_capture(backend: Backend) {
    let clock = ManualClock::new(1_800_000_000_000);
    let server = TestServer::start_with(backend, Arc::new(clock.clone()), |c| {
        // Each provider call takes a while: long enough for the test to act between the claim
        // and the capture's answer, even on a loaded machine.
        c.payment_latency = Duration::from_millis(1_500);
        c.payment_latency_tail = Duration::from_millis(1);
    })
    .await;
    create_event(&server, "ev", DRAIN, 4).await;
    let order = order_for(&server, "ev", "late", &[5, 6]).await;
    // 20 s left to pay: less than the capture window.
    clock.advance_ms(order.expires_at_unix_ms - clock.now_ms() - 20_000);
    let pay = pay_in_background(&server, "late", &order.order_id, "late-payment-1");
    // Wait for the claim: the attempt turns AUTHORIZED once the seats are claimed.
    let mut watcher = server.fan("ev", "late");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = watcher
            .get_order(pb::GetOrderRequest {
                order_id: order.order_id.clone(),
            })
            .await
            .expect("order")
            .into_inner();
        let state = seen.payments.first().map(|p| p.state);
        if state == Some(pb::PaymentState::Authorized as i32) {
            assert!(
                seen.expires_at_unix_ms > order.expires_at_unix_ms,
                "the claim extended the time to pay: {} then {}",
                order.expires_at_unix_ms,
                seen.expires_at_unix_ms
            );
            break;
        }
        // No attempt yet, or one recorded and waiting for the provider; never past the claim.
        assert!(
            state.is_none() || state == Some(pb::PaymentState::Pending as i32),
            "the attempt was claimed before the capture: {seen:?}"
        );
        assert!(std::time::Instant::now() < deadline, "never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While the provider captures, the order's original time passes: the seats stay its own.
    clock.advance_ms(30_000);
    assert!(clock.now_ms() > order.expires_at_unix_ms);
    taquilla_server::purchase::sweep_once(&server.state.purchases)
        .await
        .expect("sweep");
    let status = server
        .fan("ev", "rival")
        .hold_seats(seats_in("ev", &[5]))
        .await
        .expect_err("the seat is still the order's");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let paid = pay.await.expect("task").expect("paid").into_inner();
    let order = paid.order.expect("order");
    assert_eq!(order.state, pb::OrderState::Paid as i32);
    assert_eq!(order.tickets.len(), 2);
    assert_eq!(server.provider().charges(), 1);
    if backend == Backend::Postgres {
        // The claim took its one-round-trip path.
        let claims = server
            .state
            .store
            .fast_path()
            .get(taquilla_server::store::FastStep::Claim);
        assert_eq!(claims, (1, 0));
    }
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn a_lost_provider_answer_is_reconciled_not_dropped(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Arc::new(taquilla_server::domain::clock::SystemClock),
        |c| {
            c.payment_timeout_rate = 1.0;
        },
    )
    .await;
    create_event(&server, "ev", DRAIN, 4).await;
    let order = order_for(&server, "ev", "carol", &[7]).await;
    let pay = |key: &'static str| {
        let mut client = server.fan("ev", "carol");
        let order_id = order.order_id.clone();
        async move {
            client
                .pay(pb::PayRequest {
                    order_id,
                    idempotency_key: key.into(),
                    card: Some(good_card()),
                })
                .await
        }
    };
    // Every answer is lost: the authorization is found by key, the capture's answer is lost.
    let status = pay("carol-pay-key-1").await.expect_err("in doubt");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("same idempotency key"),
        "{}",
        status.message()
    );
    // The provider recovers; the same key's retry finishes the job, charging once.
    server.provider().set_timeout_rate(0.0);
    let response = pay("carol-pay-key-1").await.expect("retry").into_inner();
    assert_eq!(
        response.payment.expect("payment").state,
        pb::PaymentState::Captured as i32
    );
    assert_eq!(
        response.order.expect("order").state,
        pb::OrderState::Paid as i32
    );
    assert_eq!(server.provider().charges(), 1);
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

/// The capture claim commits without waiting for its WAL (a crash may lose it), so a crash
/// of the database between the claim and the sale can leave an attempt PENDING in the database
/// while the provider has captured its money. The retry must complete the sale from the
/// provider's record, not take the seats for gone and refund the fan.
async fn a_capture_whose_claim_was_lost_in_a_crash_still_sells(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Arc::new(taquilla_server::domain::clock::SystemClock),
        |c| {
            c.payment_timeout_rate = 1.0;
            // Less time to pay than the capture window, so the attempt claims its seats (with
            // more, the lock already outlasts the capture and no claim is made).
            c.payment_ttl = Duration::from_secs(40);
        },
    )
    .await;
    create_event(&server, "ev", DRAIN, 4).await;
    let order = order_for(&server, "ev", "erin", &[5, 6]).await;
    let pay = || {
        let mut client = server.fan("ev", "erin");
        let order_id = order.order_id.clone();
        async move {
            client
                .pay(pb::PayRequest {
                    order_id,
                    idempotency_key: "erin-pay-key-1".into(),
                    card: Some(good_card()),
                })
                .await
        }
    };
    // Authorized, claimed and captured at the provider; the capture's answer is lost.
    let status = pay().await.expect_err("in doubt");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(server.provider().charges(), 1);
    // The database crashes and comes back without the claim's transaction.
    let reverted = server
        .execute_sql(
            "UPDATE payments SET state = 'PENDING', provider_intent_id = NULL \
             WHERE idempotency_key = 'erin-pay-key-1' AND state = 'AUTHORIZED'",
        )
        .await;
    assert_eq!(reverted, 1, "the attempt was claimed before the crash");

    server.provider().set_timeout_rate(0.0);
    let response = pay()
        .await
        .expect("the retry completes the sale")
        .into_inner();
    let payment = response.payment.expect("payment");
    assert_eq!(
        payment.state,
        pb::PaymentState::Captured as i32,
        "{payment:?}"
    );
    assert!(!payment.provider_intent_id.is_empty());
    let order = response.order.expect("order");
    assert_eq!(order.state, pb::OrderState::Paid as i32);
    assert_eq!(order.tickets.len(), 2);
    assert_eq!(server.provider().charges(), 1, "charged once");
    assert_eq!(
        server
            .provider()
            .count(taquilla_server::payments::IntentStatus::Refunded),
        0,
        "the fan was not refunded for seats that were theirs"
    );
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

/// A fan's app gives up on a Pay call while it waits for its turn at the provider (a client
/// deadline shorter than the wait): the payment carries on without it, and the retry with the
/// same key finds it paid, instead of being told to wait for the reconciler.
async fn a_payment_whose_caller_gave_up_still_completes(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        Arc::new(taquilla_server::domain::clock::SystemClock),
        |c| {
            // One provider call a second: the second payer waits for its turn.
            c.payment_rate = 1;
            c.payment_max_wait = Duration::from_secs(10);
        },
    )
    .await;
    create_event(&server, "ev", DRAIN, 4).await;
    let first = order_for(&server, "ev", "fay", &[1]).await;
    let second = order_for(&server, "ev", "gus", &[2]).await;
    let pay = |fan: &'static str, order: &pb::Order| {
        let mut client = server.fan("ev", fan);
        let order_id = order.order_id.clone();
        async move {
            client
                .pay(pb::PayRequest {
                    order_id,
                    idempotency_key: format!("{fan}-pay-key-1"),
                    card: Some(good_card()),
                })
                .await
        }
    };
    // The first payer takes the provider's next two turns (authorize now, capture in 1 s);
    // the second's authorization waits for the turn after, and its app gives up meanwhile.
    let (paid, gave_up) = tokio::join!(pay("fay", &first), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tokio::time::timeout(Duration::from_millis(300), pay("gus", &second)).await
    });
    assert_eq!(
        paid.expect("the first payer waits")
            .into_inner()
            .order
            .expect("order")
            .state,
        pb::OrderState::Paid as i32
    );
    assert!(gave_up.is_err(), "the second payer's app gave up first");

    // By the time the app retries, its payment has had its turns at the provider.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let retried = pay("gus", &second)
        .await
        .expect("the retry finds the payment finished")
        .into_inner();
    assert_eq!(
        retried.order.expect("order").state,
        pb::OrderState::Paid as i32
    );
    assert_eq!(server.provider().charges(), 2);
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn declines_can_be_retried_and_tickets_verify_offline(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", DRAIN, 4).await;
    let mut fan = server.fan("ev", "dave");
    let hold = fan
        .hold_seats(best("ev", "s", 3))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    let ids: Vec<u32> = hold.seats.iter().map(|s| s.seat_id).collect();
    assert_eq!(ids, vec![1, 2, 3], "best available: front row, together");
    let checkout = pb::CheckoutRequest {
        hold_id: hold.hold_id.clone(),
        idempotency_key: "dave-checkout".into(),
    };
    let order = fan
        .checkout(checkout.clone())
        .await
        .expect("checkout")
        .into_inner()
        .order
        .expect("order");
    let again = fan
        .checkout(checkout)
        .await
        .expect("same key")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(order.order_id, again.order_id, "checkout is idempotent");
    assert_eq!(
        order.total.as_ref().map(|m| m.amount_minor),
        Some(3 * 5_000 + 3 * 250)
    );

    let declined = fan
        .pay(pb::PayRequest {
            order_id: order.order_id.clone(),
            idempotency_key: "dave-pay-1".into(),
            card: Some(card("4000000000009995")),
        })
        .await
        .expect("a decline is an answer")
        .into_inner();
    let payment = declined.payment.expect("payment");
    assert_eq!(payment.state, pb::PaymentState::Failed as i32);
    assert!(
        payment.failure_reason.contains("insufficient funds"),
        "{}",
        payment.failure_reason
    );
    assert_eq!(
        declined.order.expect("order").state,
        pb::OrderState::PendingPayment as i32
    );

    let paid = pay_order(&mut fan, order.order_id.clone(), "dave-pay-2".to_string()).await;
    assert_eq!(paid.state, pb::OrderState::Paid as i32);
    assert_eq!(paid.payments.len(), 2);
    assert_eq!(paid.tickets.len(), 3);
    // The answer to Pay is the order as stored, the declined attempt included.
    assert_eq!(paid, stored_order(&mut fan, &order.order_id).await);
    let keys = server
        .state
        .purchases
        .tickets
        .public_keys(server.state.store.as_ref(), 0)
        .await
        .expect("ticket keys");
    for ticket in &paid.tickets {
        let (claims, _) = keys.verify(&ticket.code).expect("valid code");
        assert_eq!(claims.ev, "ev");
        assert_eq!(claims.ord, paid.order_id);
        assert_eq!(Some(claims.seat), ticket.seat.as_ref().map(|s| s.seat_id));
    }
    // Paying again with a new key is refused; the first key still answers the same.
    let err = fan
        .pay(pb::PayRequest {
            order_id: order.order_id.clone(),
            idempotency_key: "dave-pay-3".into(),
            card: Some(good_card()),
        })
        .await
        .expect_err("already paid");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(server.provider().charges(), 1);
    // Someone else cannot see or pay Dave's order.
    let err = server
        .fan("ev", "eve")
        .get_order(pb::GetOrderRequest {
            order_id: order.order_id.clone(),
        })
        .await
        .expect_err("not hers");
    assert_eq!(err.code(), Code::NotFound);
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn bad_input_gets_clear_errors_and_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", DRAIN, 4).await;
    create_event(&server, "other", TEN_SEATS, 4).await;
    let mut fan = server.fan("ev", "mallory");
    let cases: Vec<(pb::HoldSeatsRequest, Code, &str)> = vec![
        (seats_in("nope", &[1]), Code::PermissionDenied, "for event"),
        (seats_in("ev", &[]), Code::InvalidArgument, "empty"),
        (seats_in("ev", &[1, 1]), Code::InvalidArgument, "twice"),
        (
            seats_in("ev", &[1, 2, 3, 4, 5]),
            Code::InvalidArgument,
            "at most 4",
        ),
        (seats_in("ev", &[10_000]), Code::NotFound, "no seat 10000"),
        (best("ev", "balcony", 2), Code::NotFound, "no section"),
        (best("ev", "s", 0), Code::InvalidArgument, "quantity"),
        (best("ev", "s", 5), Code::InvalidArgument, "quantity"),
        (
            pb::HoldSeatsRequest {
                event_id: "ev".into(),
                selection: None,
            },
            Code::InvalidArgument,
            "say which seats",
        ),
    ];
    for (request, code, words) in cases {
        let status = fan.hold_seats(request.clone()).await.expect_err("refused");
        assert_eq!(status.code(), code, "{request:?}: {status:?}");
        assert!(
            status.message().contains(words),
            "{:?} should mention {words:?}",
            status.message()
        );
    }
    // Unknown event with a pass for it: not found.
    let status = server
        .fan("nope", "m")
        .hold_seats(seats_in("nope", &[1]))
        .await
        .expect_err("no event");
    assert_eq!(status.code(), Code::NotFound);
    // A pass for another event, no pass, an expired pass, a forged pass.
    let status = server
        .fan("other", "m")
        .hold_seats(seats_in("ev", &[1]))
        .await
        .expect_err("wrong event");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = server
        .sales()
        .hold_seats(seats_in("ev", &[1]))
        .await
        .expect_err("no pass");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("admission pass"),
        "{}",
        status.message()
    );
    let status = server
        .sales_with_pass(&pass_for("ev", "m", 1))
        .hold_seats(seats_in("ev", &[1]))
        .await
        .expect_err("expired");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("expired"), "{}", status.message());
    let forged = pass_for("ev", "m", i64::MAX).replace("tq1.p.", "tq1.p.e30");
    let status = server
        .sales_with_pass(&forged)
        .hold_seats(seats_in("ev", &[1]))
        .await
        .expect_err("forged");
    assert_eq!(status.code(), Code::Unauthenticated);

    // Checkout and pay inputs.
    let hold = fan
        .hold_seats(seats_in("ev", &[1]))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    for key in ["", "short", "has spaces in it", &"k".repeat(65)] {
        let status = fan
            .checkout(pb::CheckoutRequest {
                hold_id: hold.hold_id.clone(),
                idempotency_key: key.into(),
            })
            .await
            .expect_err("bad key");
        assert_eq!(status.code(), Code::InvalidArgument, "{key:?}");
        assert!(status.message().contains("idempotency_key"));
    }
    let status = fan
        .checkout(pb::CheckoutRequest {
            hold_id: "h_unknown".into(),
            idempotency_key: "good-key-1".into(),
        })
        .await
        .expect_err("unknown hold");
    assert_eq!(status.code(), Code::NotFound);
    // The hold is Mallory's, in "ev": neither her pass for another event nor another fan's pass
    // checks it out, before or after she does (the replay must not show her order).
    let strangers = || {
        [
            (server.fan("other", "mallory"), Code::PermissionDenied),
            (server.fan("ev", "trudy"), Code::NotFound),
        ]
    };
    let refused = |hold_id: String| async move {
        for (mut stranger, code) in strangers() {
            let status = stranger
                .checkout(pb::CheckoutRequest {
                    hold_id: hold_id.clone(),
                    idempotency_key: "good-key-1".into(),
                })
                .await
                .expect_err("not theirs");
            assert_eq!(status.code(), code, "{status:?}");
        }
    };
    refused(hold.hold_id.clone()).await;
    let order = checkout_hold(&mut fan, hold.hold_id.clone(), "good-key-1".to_string()).await;
    refused(hold.hold_id.clone()).await;
    // Her own hold in the other event, with the key she already used: the key is named.
    let mut elsewhere = server.fan("other", "mallory");
    let other_hold = held(&mut elsewhere, seats_in("other", &[1])).await;
    let status = elsewhere
        .checkout(pb::CheckoutRequest {
            hold_id: other_hold.hold_id,
            idempotency_key: "good-key-1".into(),
        })
        .await
        .expect_err("key used");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("already used"), "{status:?}");
    let bad_cards = [
        (None, "card is missing"),
        (Some(card("1234")), "12 to 19 digits"),
        (Some(card("4242424242424241")), "check digit"),
        (
            Some(pb::Card {
                exp_month: 13,
                ..good_card()
            }),
            "exp_month",
        ),
        (
            Some(pb::Card {
                cvc: "12".into(),
                ..good_card()
            }),
            "cvc",
        ),
    ];
    for (card, words) in bad_cards {
        let status = fan
            .pay(pb::PayRequest {
                order_id: order.order_id.clone(),
                idempotency_key: "pay-key-1".into(),
                card,
            })
            .await
            .expect_err("bad card");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(words),
            "{:?} should mention {words:?}",
            status.message()
        );
    }
    let status = fan
        .pay(pb::PayRequest {
            order_id: order.order_id.clone(),
            idempotency_key: "pay-key-1".into(),
            card: Some(pb::Card {
                exp_year: 2001,
                ..good_card()
            }),
        })
        .await
        .expect_err("expired card");
    assert_eq!(status.code(), Code::FailedPrecondition);
    // Nothing above changed anything: one seat hard-locked for the order, the rest free.
    assert_eq!(server.provider().charges(), 0);
    let statuses = seat_statuses(&server, "ev").await;
    assert_eq!(statuses[0], pb::SeatStatus::HardLocked as i32);
    assert!(
        statuses[1..]
            .iter()
            .all(|s| *s == pb::SeatStatus::Available as i32)
    );
    let order = fan
        .get_order(pb::GetOrderRequest {
            order_id: order.order_id,
        })
        .await
        .expect("order")
        .into_inner();
    assert!(order.payments.is_empty());
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn releasing_and_sweeping_return_seats(backend: Backend) {
    let clock = ManualClock::new(1_800_000_000_000);
    let server = TestServer::start_with(backend, Arc::new(clock.clone()), |_| {}).await;
    create_event(&server, "ev", DRAIN, 4).await;
    let mut fan = server.fan("ev", "frank");
    let hold = fan
        .hold_seats(seats_in("ev", &[1, 2]))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    let released = fan
        .release_hold(pb::ReleaseHoldRequest {
            hold_id: hold.hold_id.clone(),
        })
        .await
        .expect("release")
        .into_inner();
    assert_eq!(released.released_seats, 2);
    let status = fan
        .release_hold(pb::ReleaseHoldRequest {
            hold_id: hold.hold_id,
        })
        .await
        .expect_err("twice");
    assert_eq!(status.code(), Code::FailedPrecondition);
    // A hold and an unpaid order lapse; the sweeper returns them and records why.
    let order = order_for(&server, "ev", "gina", &[3, 4]).await;
    fan.hold_seats(seats_in("ev", &[5])).await.expect("hold");
    clock.advance_ms(16 * 60 * 1_000);
    taquilla_server::purchase::sweep_once(&server.state.purchases)
        .await
        .expect("sweep");
    let statuses = seat_statuses(&server, "ev").await;
    assert!(
        statuses[..60]
            .iter()
            .all(|s| *s == pb::SeatStatus::Available as i32)
    );
    let lapsed = server
        .fan("ev", "gina")
        .get_order(pb::GetOrderRequest {
            order_id: order.order_id.clone(),
        })
        .await
        .expect("order")
        .into_inner();
    assert_eq!(lapsed.state, pb::OrderState::Expired as i32);
    let status = server
        .fan("ev", "gina")
        .pay(pb::PayRequest {
            order_id: order.order_id,
            idempotency_key: "late-payment".into(),
            card: Some(good_card()),
        })
        .await
        .expect_err("too late");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("ran out"), "{}", status.message());
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

on_both_backends!(
    two_hundred_clients_race_for_ten_seats,
    best_available_drains_sections_to_zero,
    one_fans_concurrent_holds_respect_the_cap,
    checkout_racing_hold_expiry,
    concurrent_pays_charge_once,
    payment_landing_after_the_lock_lapsed_is_voided,
    a_payment_near_its_locks_end_claims_the_seats_over_the_capture,
    a_lost_provider_answer_is_reconciled_not_dropped,
    a_capture_whose_claim_was_lost_in_a_crash_still_sells,
    a_payment_whose_caller_gave_up_still_completes,
    declines_can_be_retried_and_tickets_verify_offline,
    bad_input_gets_clear_errors_and_changes_nothing,
    releasing_and_sweeping_return_seats,
);
