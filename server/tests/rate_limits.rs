//! Rate limits on the sales RPCs and on Join: a fan past its limit gets RESOURCE_EXHAUSTED with
//! a retry-after-ms hint that is honest (calling again after it goes through); other fans are
//! not affected; a fan failing hold after hold is flagged for operators in GetStats; and with
//! `--shared-rate-limits` a limit holds across two nodes instead of per node.

mod common;

use std::sync::Arc;

use common::*;
use taquilla_proto::v1 as pb;
use taquilla_server::domain::clock::ManualClock;
use tonic::Code;

async fn get_order(server: &TestServer, fan: &str) -> Result<pb::Order, tonic::Status> {
    server
        .fan("ev", fan)
        .get_order(pb::GetOrderRequest {
            order_id: "o-none".into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn a_fan_past_its_limit_is_told_when_to_come_back(backend: Backend) {
    let clock = ManualClock::new(1_800_000_000_000);
    let server = TestServer::start_with(backend, Arc::new(clock.clone()), |c| {
        // 60 a minute: a burst of 10, then one a second.
        c.sales_rate_per_fan = 60;
        c.flag_failed_holds = 5;
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    server
        .fan("ev", "rival")
        .hold_seats(seats_in("ev", &[2]))
        .await
        .expect("rival holds seat 2");

    // Greedy holds seat 1, then tries for the rival's seat again and again.
    server
        .fan("ev", "greedy")
        .hold_seats(seats_in("ev", &[1]))
        .await
        .expect("hold");
    for attempt in 0..9 {
        let status = server
            .fan("ev", "greedy")
            .hold_seats(seats_in("ev", &[2]))
            .await
            .expect_err("seat 2 is taken");
        assert_eq!(
            status.code(),
            Code::Aborted,
            "attempt {attempt}: {status:?}"
        );
    }
    // The burst is spent: the next call is refused before it does anything, with a hint.
    let status = server
        .fan("ev", "greedy")
        .hold_seats(seats_in("ev", &[3]))
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        taquilla_proto::retry_after(&status),
        Some(std::time::Duration::from_secs(1))
    );
    assert!(status.message().contains("too many requests"), "{status:?}");
    // Every sales call counts against the same limit.
    let status = get_order(&server, "greedy").await.expect_err("limited");
    assert_eq!(status.code(), Code::ResourceExhausted);
    // Other fans are not affected.
    let status = get_order(&server, "calm").await.expect_err("no such order");
    assert_eq!(status.code(), Code::NotFound);
    // Nothing was held by the refused call.
    let statuses = seat_statuses(&server, "ev").await;
    assert_eq!(statuses[2], pb::SeatStatus::Available as i32);

    // After the hint, the call goes through.
    clock.advance_ms(1_000);
    server
        .fan("ev", "greedy")
        .hold_seats(seats_in("ev", &[3]))
        .await
        .expect("the hint was honest");

    // Nine failed holds inside a minute (the threshold is five): operators see the fan.
    let stats = server.stats("ev").await;
    assert_eq!(stats.flagged.len(), 1, "{:?}", stats.flagged);
    assert_eq!(stats.flagged[0].fingerprint_hash, "greedy");
    assert_eq!(stats.flagged[0].reason, "9 failed holds in a minute");
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

/// Two nodes share one PostgreSQL and one Redis with `--shared-rate-limits`: a fan's limit is
/// spent across both (with per-node buckets each node would allow a full burst), and its failed
/// holds are counted across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_limits_hold_across_nodes() {
    let limits = |c: &mut taquilla_server::config::Config| {
        // 6 a minute: a burst of 3, then one every 10 s.
        c.sales_rate_per_fan = 6;
        c.join_rate_per_fingerprint = 6;
        c.shared_rate_limits = true;
        c.flag_failed_holds = 3;
    };
    let clock = Arc::new(taquilla_server::domain::clock::SystemClock);
    let a = TestServer::start_with(Backend::Postgres, clock.clone(), limits).await;
    let database = a.database.as_ref().expect("database").url.clone();
    let namespace = a.redis.as_ref().expect("redis").name.clone();
    let b = TestServer::start_with(Backend::Sqlite, clock, move |c| {
        c.database_url = Some(database);
        c.redis_url = Some(taquilla_test_support::redis_url());
        c.redis_namespace = namespace;
        limits(c);
    })
    .await;
    create_event(&a, "ev", HALL, 4).await;

    for node in [&a, &b, &a] {
        let status = get_order(node, "fan").await.expect_err("no such order");
        assert_eq!(status.code(), Code::NotFound);
    }
    for node in [&b, &a] {
        let status = get_order(node, "fan").await.expect_err("limit spent");
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let wait = taquilla_proto::retry_after(&status).expect("hint");
        assert!(wait.as_millis() > 5_000, "{wait:?}");
    }
    let status = get_order(&b, "other").await.expect_err("no such order");
    assert_eq!(status.code(), Code::NotFound);

    // Joins: one fingerprint's limit, spent across the two nodes.
    let join = |server: &TestServer| {
        let mut client = server.waiting_room();
        async move {
            client
                .join(pb::JoinRequest {
                    event_id: "ev".into(),
                    fingerprint: "device-1".into(),
                    ..Default::default()
                })
                .await
        }
    };
    for node in [&a, &b, &b] {
        join(node).await.expect("join");
    }
    let status = join(&a).await.expect_err("limit spent");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Failed holds: a fan spreading them over the nodes is still flagged for the whole sale,
    // and both nodes' GetStats list it.
    a.fan("ev", "first")
        .hold_seats(seats_in("ev", &[1]))
        .await
        .expect("hold");
    for node in [&a, &b] {
        let status = node
            .fan("ev", "sly")
            .hold_seats(seats_in("ev", &[1]))
            .await
            .expect_err("taken");
        assert_eq!(status.code(), Code::Aborted, "{status:?}");
    }
    assert!(a.stats("ev").await.flagged.is_empty(), "two of three");
    let status = b
        .fan("ev", "sly")
        .hold_seats(seats_in("ev", &[1]))
        .await
        .expect_err("taken");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    for node in [&a, &b] {
        let flagged = node.stats("ev").await.flagged;
        assert_eq!(flagged.len(), 1, "{flagged:?}");
        assert_eq!(flagged[0].fingerprint_hash, "sly");
        assert_eq!(flagged[0].reason, "3 failed holds in a minute");
    }

    b.stop().await;
    a.stop().await;
}

on_both_backends!(a_fan_past_its_limit_is_told_when_to_come_back);
