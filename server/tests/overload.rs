//! Load shedding: a crowd far larger than the server's bound on sales calls (4 in progress at
//! once, 2 database connections) floods `HoldSeats`. Calls past the bound are answered at once
//! with RESOURCE_EXHAUSTED and a retry-after-ms hint; fans who honour it all get their seat;
//! nothing times out or answers UNAVAILABLE; the health service answers SERVING throughout; the
//! audit is clean. On both backends.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use tonic::Code;

const FANS: usize = 200;

async fn a_flood_is_shed_with_retryable_answers(backend: Backend) {
    let clock = Arc::new(taquilla_server::domain::clock::SystemClock);
    let server = TestServer::start_with(backend, clock, |config| {
        config.db_max_connections = 2;
        config.max_inflight_sales = 4;
    })
    .await;
    create_event(
        &server,
        "flood",
        "[venue]\nid = \"hall\"\nname = \"Hall\"\n[[sections]]\nid = \"ga\"\nname = \"GA\"\nkind = \"general_admission\"\nprice = 10\ncapacity = 1000\n",
        4,
    )
    .await;

    // The health service, asked every 50 ms while the flood lasts.
    let flooding = Arc::new(AtomicBool::new(true));
    let health = {
        let mut client = tonic_health::pb::health_client::HealthClient::new(server.channel.clone());
        let flooding = flooding.clone();
        tokio::spawn(async move {
            let mut checks = 0u32;
            let mut slowest = Duration::ZERO;
            while flooding.load(Ordering::Relaxed) {
                let started = Instant::now();
                let answer = tokio::time::timeout(
                    Duration::from_secs(2),
                    client.check(tonic_health::pb::HealthCheckRequest {
                        service: "taquilla.v1.Sales".into(),
                    }),
                )
                .await
                .expect("health answers within 2 s during the flood")
                .expect("health check")
                .into_inner();
                assert_eq!(
                    answer.status,
                    tonic_health::pb::health_check_response::ServingStatus::Serving as i32
                );
                slowest = slowest.max(started.elapsed());
                checks += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (checks, slowest)
        })
    };

    let shed = Arc::new(AtomicU64::new(0));
    let mut fans = Vec::new();
    for i in 0..FANS {
        let mut sales = server.fan("flood", &format!("fan-{i}"));
        let shed = shed.clone();
        fans.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut slowest_admitted = Duration::ZERO;
            loop {
                assert!(Instant::now() < deadline, "fan-{i} never got a seat");
                let started = Instant::now();
                match sales.hold_seats(best("flood", "ga", 1)).await {
                    Ok(hold) => {
                        slowest_admitted = slowest_admitted.max(started.elapsed());
                        let hold = hold.into_inner().hold.expect("a hold");
                        assert_eq!(hold.seats.len(), 1);
                        return slowest_admitted;
                    }
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        shed.fetch_add(1, Ordering::Relaxed);
                        let wait = taquilla_proto::retry_after(&status)
                            .expect("a shed call says when to retry");
                        tokio::time::sleep(wait).await;
                    }
                    Err(status) => panic!("fan-{i}: {status:?}"),
                }
            }
        }));
    }
    let mut slowest = Duration::ZERO;
    for fan in fans {
        slowest = slowest.max(fan.await.expect("fan"));
    }
    flooding.store(false, Ordering::Relaxed);
    let (checks, slowest_health) = health.await.expect("health task");
    let shed = shed.load(Ordering::Relaxed);
    println!(
        "{backend:?}: {FANS} fans, {shed} calls shed, slowest admitted hold {slowest:?}, \
         {checks} health checks (slowest {slowest_health:?})"
    );
    assert!(shed > 0, "a crowd of {FANS} went past a bound of 4");
    // Admitted calls do not queue behind the crowd: far below the 5 s a call would wait for a
    // pooled connection before giving up.
    assert!(
        slowest < Duration::from_secs(5),
        "slowest admitted hold {slowest:?}"
    );
    assert_eq!(server.state.sales_shed.shed_total(), shed);
    assert_eq!(server.state.sales_shed.in_flight(), 0);
    assert!(checks > 0);
    let report = server.assert_audit_clean("flood").await;
    // (The audit counts from the database; GetStats may show counts up to 0.5 s old.)
    let inventory = report.inventory.expect("inventory");
    assert_eq!(inventory.soft_locked, FANS as u32, "one seat held per fan");
    server.stop().await;
}

on_both_backends!(a_flood_is_shed_with_retryable_answers);
