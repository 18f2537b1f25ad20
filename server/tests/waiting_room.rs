//! The waiting room end to end through gRPC: join, watch, admission pass, and the pass guarding
//! the sales RPCs, on both backends.

mod common;

use std::time::Duration;

use common::*;
use taquilla_proto::v1 as pb;
use tokio_stream::StreamExt;
use tonic::Code;

/// Watches until the stream says ADMITTED; returns the pass.
async fn admitted(server: &TestServer, token: &str) -> pb::AdmissionPass {
    let mut stream = server
        .waiting_room()
        .watch(pb::WatchRequest {
            queue_token: token.into(),
            join: None,
        })
        .await
        .expect("watch")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("an immediate first message")
        .expect("item")
        .expect("ok");
    assert!(first.status.is_some());
    let mut update = first;
    loop {
        if let Some(pass) = update.admission_pass.clone() {
            assert_eq!(
                update.status.as_ref().map(|s| s.state),
                Some(pb::QueueState::Admitted as i32)
            );
            return pass;
        }
        update = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("admitted within 10 s")
            .expect("item")
            .expect("ok");
    }
}

async fn fans_queue_get_passes_and_buy(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", HALL, 4).await;
    // Before opening: pre-queue, no position.
    let (token, status) = {
        let r = server
            .waiting_room()
            .join(pb::JoinRequest {
                event_id: "ev".into(),
                fingerprint: "early-bird".into(),
                ..Default::default()
            })
            .await
            .expect("join")
            .into_inner();
        (r.queue_token, r.status.expect("status"))
    };
    assert_eq!(status.state, pb::QueueState::Prequeue as i32);
    assert_eq!(status.position, 0);
    open_admitting(&server, 50, 50).await;
    let stats = server
        .operator()
        .get_stats(pb::GetStatsRequest {
            event_id: "ev".into(),
        })
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(stats.sale_state, pb::SaleState::Open as i32);
    assert_eq!(
        stats.shuffle_seed.len(),
        64,
        "the shuffle seed is revealed at opening"
    );
    assert_eq!(stats.shuffle_nonce.len(), 64, "and its nonce");
    assert_eq!(stats.shuffle_commitment.len(), 64);
    assert_eq!(stats.manifest_digest.len(), 64);

    let mut buyers = vec![token];
    for i in 0..9 {
        let r = server
            .waiting_room()
            .join(pb::JoinRequest {
                event_id: "ev".into(),
                fingerprint: format!("fan-{i}"),
                ..Default::default()
            })
            .await
            .expect("join")
            .into_inner();
        buyers.push(r.queue_token);
    }
    let mut tasks = Vec::new();
    for (i, token) in buyers.into_iter().enumerate() {
        let channel = server.channel.clone();
        let server_ref = &server;
        let pass = admitted(server_ref, &token).await;
        tasks.push(tokio::spawn(async move {
            let mut sales = pb::sales_client::SalesClient::with_interceptor(
                channel,
                PassInterceptor(pass.token.parse().expect("ascii")),
            );
            let hold = sales
                .hold_seats(best("ev", "s", 2))
                .await
                .expect("hold with pass")
                .into_inner()
                .hold
                .expect("hold");
            let order = checkout_hold(&mut sales, hold.hold_id, format!("checkout-{i:03}")).await;
            let paid = pay_order(
                &mut sales,
                order.order_id.clone(),
                format!("payment-{i:03}"),
            )
            .await;
            assert_eq!(paid.state, pb::OrderState::Paid as i32);
            // A fan whose Pay answer was lost can still learn the outcome with the same pass:
            // the retry with the same key and GetOrder both answer PAID.
            let replay = pay_order(
                &mut sales,
                order.order_id.clone(),
                format!("payment-{i:03}"),
            )
            .await;
            assert_eq!(replay.state, pb::OrderState::Paid as i32);
            assert_eq!(replay.tickets.len(), 2);
            let looked_up = sales
                .get_order(pb::GetOrderRequest {
                    order_id: order.order_id,
                })
                .await
                .expect("the fan can look up their paid order")
                .into_inner();
            assert_eq!(looked_up.state, pb::OrderState::Paid as i32);
            // Paying ends the admission: the pass no longer holds seats.
            let err = sales
                .hold_seats(best("ev", "s", 1))
                .await
                .expect_err("pass used up");
            assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
        }));
    }
    for task in tasks {
        task.await.expect("buyer");
    }
    let stats = server
        .operator()
        .get_stats(pb::GetStatsRequest {
            event_id: "ev".into(),
        })
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(stats.admitted_total, 10);
    assert_eq!(stats.orders_paid, 10);
    assert_eq!(stats.inventory.expect("inventory").sold, 20);
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn queue_tokens_and_sale_controls_are_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", HALL, 4).await;
    let err = server
        .waiting_room()
        .watch(pb::WatchRequest {
            queue_token: "tq1.q.forged.token".into(),
            join: None,
        })
        .await
        .expect_err("forged");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = server
        .waiting_room()
        .join(pb::JoinRequest {
            event_id: "nope".into(),
            fingerprint: "f".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown event");
    assert_eq!(err.code(), Code::NotFound);
    let err = server
        .operator()
        .set_admission(pb::SetAdmissionRequest {
            event_id: "ev".into(),
            rate_per_minute: 0,
            burst: 0,
            max_active: 10,
            pow_difficulty_bits: 0,
            auto: false,
        })
        .await
        .expect_err("rate 0");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("rate_per_minute"));
    let err = server
        .operator()
        .pause_sale(pb::PauseSaleRequest {
            event_id: "ev".into(),
        })
        .await
        .expect_err("not open");
    assert_eq!(err.code(), Code::FailedPrecondition);
    // Alerts reach watchers; leaving ends the place.
    let joined = server
        .waiting_room()
        .join(pb::JoinRequest {
            event_id: "ev".into(),
            fingerprint: "listener".into(),
            ..Default::default()
        })
        .await
        .expect("join")
        .into_inner();
    let mut stream = server
        .waiting_room()
        .watch(pb::WatchRequest {
            queue_token: joined.queue_token.clone(),
            join: None,
        })
        .await
        .expect("watch")
        .into_inner();
    stream.next().await.expect("first").expect("ok");
    server
        .operator()
        .broadcast(pb::BroadcastRequest {
            event_id: "ev".into(),
            message: "Doors at 21:00".into(),
            severity: 0,
        })
        .await
        .expect("broadcast");
    let alert = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let update = stream.next().await.expect("item").expect("ok");
            if let Some(alert) = update.alert {
                return alert;
            }
        }
    })
    .await
    .expect("the alert arrives");
    assert_eq!(alert.message, "Doors at 21:00");
    server
        .waiting_room()
        .leave(pb::LeaveRequest {
            queue_token: joined.queue_token.clone(),
        })
        .await
        .expect("leave");
    let err = server
        .waiting_room()
        .watch(pb::WatchRequest {
            queue_token: joined.queue_token,
            join: None,
        })
        .await
        .expect_err("left");
    assert_eq!(err.code(), Code::NotFound);
    server
        .operator()
        .close_sale(pb::CloseSaleRequest {
            event_id: "ev".into(),
        })
        .await
        .expect("close");
    let err = server
        .waiting_room()
        .join(pb::JoinRequest {
            event_id: "ev".into(),
            fingerprint: "late".into(),
            ..Default::default()
        })
        .await
        .expect_err("closed");
    assert_eq!(err.code(), Code::FailedPrecondition);
    // Marked, so a client tells an ended sale from other refusals without reading the sentence.
    assert_eq!(
        taquilla_proto::sale_ended(&err),
        Some(taquilla_proto::SaleEnded::Closed),
        "{err:?}"
    );
    server.stop().await;
}

async fn waiting_fans_hear_sold_out(backend: Backend) {
    let server = TestServer::start(backend).await;
    let tiny = "[venue]\nid = \"t\"\nname = \"T\"\n[[sections]]\nid = \"ga\"\nname = \"GA\"\nkind = \"general_admission\"\nprice = 10\ncapacity = 2\n";
    create_event(&server, "ev", tiny, 4).await;
    open_admitting(&server, 10, 1).await;
    let join = |fp: &'static str| {
        let mut client = server.waiting_room();
        async move {
            client
                .join(pb::JoinRequest {
                    event_id: "ev".into(),
                    fingerprint: fp.into(),
                    ..Default::default()
                })
                .await
                .expect("join")
                .into_inner()
                .queue_token
        }
    };
    let first = join("buyer").await;
    let second = join("too-late").await;
    let pass = admitted(&server, &first).await;
    let mut waiting = server
        .waiting_room()
        .watch(pb::WatchRequest {
            queue_token: second,
            join: None,
        })
        .await
        .expect("watch")
        .into_inner();
    let status = waiting
        .next()
        .await
        .expect("first")
        .expect("ok")
        .status
        .expect("status");
    assert_eq!(
        status.state,
        pb::QueueState::Waiting as i32,
        "one buyer at a time"
    );
    let mut sales = server.sales_with_pass(&pass.token);
    let hold = sales
        .hold_seats(best("ev", "ga", 2))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    // The sweeper's sold-out probe: seats locked by a hold, then by an order, are not sold.
    let unsold = || async {
        server
            .state
            .store
            .has_unsold_seats("ev")
            .await
            .expect("probe")
    };
    assert!(unsold().await, "both seats held, none sold");
    let order = checkout_hold(&mut sales, hold.hold_id, "last-two-seats".to_string()).await;
    assert!(unsold().await, "both seats ordered, none sold");
    sales
        .pay(pb::PayRequest {
            order_id: order.order_id,
            idempotency_key: "pay-last-two".into(),
            card: Some(good_card()),
        })
        .await
        .expect("pay");
    assert!(!unsold().await, "both seats sold");
    taquilla_server::purchase::sweep_once(&server.state.purchases)
        .await
        .expect("sweep");
    let last = tokio::time::timeout(Duration::from_secs(10), async {
        let mut last = None;
        while let Some(update) = waiting.next().await {
            last = update.expect("ok").status;
        }
        last
    })
    .await
    .expect("the stream ends")
    .expect("a final status");
    assert_eq!(last.state, pb::QueueState::SoldOut as i32);
    let stats = server
        .operator()
        .get_stats(pb::GetStatsRequest {
            event_id: "ev".into(),
        })
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(stats.sale_state, pb::SaleState::SoldOut as i32);
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn bans_rate_limits_and_proof_of_work(backend: Backend) {
    let server = limiting_fingerprints(backend).await;
    let join = |fp: &str, pow: Option<pb::PowSolution>| {
        let mut client = server.waiting_room();
        let request = pb::JoinRequest {
            event_id: "ev".into(),
            fingerprint: fp.into(),
            presale_code: String::new(),
            pow_solution: pow,
        };
        async move { client.join(request).await }
    };
    // Rate limit per fingerprint: a burst of 3, then RESOURCE_EXHAUSTED with a retry hint.
    for _ in 0..3 {
        join("refresher", None).await.expect("within the burst");
    }
    let err = join("refresher", None).await.expect_err("limited");
    assert_eq!(err.code(), Code::ResourceExhausted);
    let retry: u64 = err
        .metadata()
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after-ms");
    assert!(retry > 0 && retry <= 10_000, "{retry}");
    // Banning a fingerprint removes its entry and refuses it from then on.
    let token = join("bot-1", None)
        .await
        .expect("join")
        .into_inner()
        .queue_token;
    let removed = server
        .operator()
        .ban(pb::BanRequest {
            target: Some(pb::ban_request::Target::Fingerprint("bot-1".into())),
            reason: "scripted".into(),
        })
        .await
        .expect("ban")
        .into_inner()
        .removed_entries;
    assert_eq!(removed, 1);
    assert_eq!(
        join("bot-1", None).await.expect_err("banned").code(),
        Code::PermissionDenied
    );
    assert_eq!(
        server
            .waiting_room()
            .watch(pb::WatchRequest {
                queue_token: token,
                join: None,
            })
            .await
            .expect_err("removed")
            .code(),
        Code::NotFound
    );
    let err = server
        .operator()
        .ban(pb::BanRequest {
            target: Some(pb::ban_request::Target::Ip("300.1.2.3".into())),
            reason: String::new(),
        })
        .await
        .expect_err("bad ip");
    assert_eq!(err.code(), Code::InvalidArgument);
    // Proof of work: asked for, solved, accepted; a wrong answer is refused.
    server
        .operator()
        .set_admission(pb::SetAdmissionRequest {
            event_id: "ev".into(),
            rate_per_minute: 60,
            burst: 1,
            max_active: 10,
            pow_difficulty_bits: 8,
            auto: false,
        })
        .await
        .expect("pow on");
    let asked = join("careful", None).await.expect("challenge").into_inner();
    assert!(asked.queue_token.is_empty());
    let challenge = asked.challenge.expect("a challenge");
    assert_eq!(challenge.difficulty_bits, 8);
    let err = join("careful", answer(&challenge, false))
        .await
        .expect_err("wrong answer");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let placed = join("careful", answer(&challenge, true))
        .await
        .expect("solved")
        .into_inner();
    assert!(!placed.queue_token.is_empty());
    // A challenge is bound to the fingerprint it was issued to.
    let stolen = join(
        "other",
        Some(pb::PowSolution {
            challenge: challenge.challenge,
            nonce: "0".into(),
        }),
    )
    .await
    .expect("a fresh challenge")
    .into_inner();
    assert!(stolen.queue_token.is_empty() && stolen.challenge.is_some());
    // Banning the loopback address refuses everyone here.
    server
        .operator()
        .ban(pb::BanRequest {
            target: Some(pb::ban_request::Target::Ip("127.0.0.1".into())),
            reason: "test".into(),
        })
        .await
        .expect("ban ip");
    assert_eq!(
        join("anyone", None).await.expect_err("banned ip").code(),
        Code::PermissionDenied
    );
    server.stop().await;
}

/// An admitted fan whose holds are shed (the node at its bound on sales calls) past the no-show
/// window keeps the turn: the server, not the fan, kept them from starting to buy.
async fn a_fan_shed_past_the_no_show_window_keeps_the_turn(backend: Backend) {
    let server = TestServer::start_with(
        backend,
        std::sync::Arc::new(taquilla_server::domain::clock::SystemClock),
        |c| {
            c.max_inflight_sales = 1;
            c.no_show = Duration::from_secs(1);
            // A payment holds the one sales slot for about 5 s (authorize, then capture).
            c.payment_latency = Duration::from_millis(2_500);
            c.payment_latency_tail = Duration::from_millis(1);
        },
    )
    .await;
    create_event(&server, "ev", HALL, 4).await;
    let order_id = order_of(&server, 0).await;
    open_admitting(&server, 10, 10).await;
    let token = server
        .waiting_room()
        .join(pb::JoinRequest {
            event_id: "ev".into(),
            fingerprint: "patient".into(),
            ..Default::default()
        })
        .await
        .expect("join")
        .into_inner()
        .queue_token;
    let pass = admitted(&server, &token).await;

    let provider = server.provider();
    let calls_before = provider.calls();
    let paying = {
        let mut client = server.fan("ev", "fan-0");
        tokio::spawn(async move {
            client
                .pay(pb::PayRequest {
                    order_id,
                    idempotency_key: "pay-fan-0".into(),
                    card: Some(good_card()),
                })
                .await
        })
    };
    wait_until(
        "the payment to reach the provider",
        Duration::from_secs(10),
        || async move { provider.calls() > calls_before },
    )
    .await;
    let mut sales = server.sales_with_pass(&pass.token);
    let started = std::time::Instant::now();
    let mut shed = 0;
    let hold = loop {
        match sales.hold_seats(seats_in("ev", &[21])).await {
            Ok(hold) => break hold.into_inner(),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(started.elapsed() < Duration::from_secs(15), "{status:?}");
                shed += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "shed for {:?} only: the no-show window (1 s) was not tested",
        started.elapsed()
    );
    assert!(shed > 5, "{shed}");
    assert!(hold.hold.is_some());
    paying.await.expect("task").expect("paid");
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

on_every_backend!(
    a_fan_shed_past_the_no_show_window_keeps_the_turn,
    bans_rate_limits_and_proof_of_work,
    fans_queue_get_passes_and_buy,
    queue_tokens_and_sale_controls_are_checked,
    waiting_fans_hear_sold_out,
);
