//! Two server nodes on one PostgreSQL and one Redis paying through one simulated provider
//! process (`--payment-provider-url`, the service `taquilla-paysim` serves), as a multi-node sale
//! pays through a real provider: a payment whose answers were lost on one node is finished
//! through the other with one charge, and a provider outage that hits both nodes at once loses
//! nothing once it ends.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, HALL, TestServer, create_event, good_card, order_of};
use taquilla_proto::v1 as pb;
use taquilla_server::domain::clock::SystemClock;
use taquilla_server::payments::simulated::{SimulatedConfig, SimulatedProvider};
use taquilla_server::payments::simulator_service::SimulatorService;
use tonic::Code;

/// The simulator served on a loopback port; returns its URL.
async fn start_simulator(provider: Arc<SimulatedProvider>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(SimulatorService::new(provider).serve(listener, std::future::pending()));
    url
}

async fn node(provider_url: &str, share_with: Option<&TestServer>) -> TestServer {
    TestServer::start_with(Backend::Postgres, Arc::new(SystemClock), |c| {
        c.payment_provider_url = Some(provider_url.to_string());
        c.payment_call_timeout = Duration::from_secs(2);
        c.breaker_failures = 3;
        c.breaker_cool_down = Duration::from_secs(1);
        c.reconcile_after = Duration::from_secs(1);
        if let Some(first) = share_with {
            c.database_url = first.database.as_ref().map(|db| db.url.clone());
            c.redis_namespace = first
                .redis
                .as_ref()
                .map(|ns| ns.name.clone())
                .unwrap_or_default();
        }
    })
    .await
}

async fn pay(
    server: &TestServer,
    fan: u32,
    order_id: &str,
) -> Result<pb::PayResponse, tonic::Status> {
    pay_with_key(server, fan, order_id, &format!("pay-fan-{fan}")).await
}

async fn pay_with_key(
    server: &TestServer,
    fan: u32,
    order_id: &str,
    key: &str,
) -> Result<pb::PayResponse, tonic::Status> {
    server
        .fan("ev", &format!("fan-{fan}"))
        .pay(pb::PayRequest {
            order_id: order_id.to_string(),
            idempotency_key: key.to_string(),
            card: Some(good_card()),
        })
        .await
        .map(|r| r.into_inner())
}

/// Pays through `server`, retrying retryable answers as told (and, after an attempt that
/// failed without reaching the provider, with a new key, as a fan's app does), until PAID or
/// `deadline`.
async fn pay_until_paid(server: &TestServer, fan: u32, order_id: &str, deadline: Instant) {
    let mut key = format!("pay-fan-{fan}");
    loop {
        assert!(Instant::now() < deadline, "fan {fan} gave up");
        match pay_with_key(server, fan, order_id, &key).await {
            Ok(answer) => {
                let order = answer.order.expect("order");
                if order.state == pb::OrderState::Paid as i32 {
                    return;
                }
                let payment = answer.payment.expect("payment");
                assert_eq!(
                    payment.state,
                    pb::PaymentState::Failed as i32,
                    "{payment:?}"
                );
                assert!(
                    payment.failure_reason.contains("never reached"),
                    "{payment:?}"
                );
                key.push_str("-again");
            }
            Err(status) => {
                assert!(
                    matches!(status.code(), Code::Unavailable | Code::ResourceExhausted),
                    "fan {fan}: {status:?}"
                );
                let wait = taquilla_proto::retry_after(&status)
                    .unwrap_or(Duration::from_millis(200))
                    .min(Duration::from_secs(1));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_pay_through_one_provider_and_lose_nothing() {
    let provider = Arc::new(SimulatedProvider::new(SimulatedConfig {
        latency_min: Duration::from_millis(1),
        latency_mean_extra: Duration::from_millis(1),
        ..SimulatedConfig::default()
    }));
    let url = start_simulator(provider.clone()).await;
    let a = node(&url, None).await;
    let b = node(&url, Some(&a)).await;
    create_event(&a, "ev", HALL, 4).await;
    let mut orders = Vec::new();
    for fan in 0..8 {
        orders.push(order_of(&a, fan).await);
    }

    // A normal payment through node B: one charge at the shared provider.
    pay_until_paid(&b, 0, &orders[0], Instant::now() + Duration::from_secs(10)).await;
    assert_eq!(provider.charges(), 1);

    // Every answer from the provider is lost: through node A the fan is told the payment is
    // being confirmed; the provider did the work (authorized and captured).
    provider.set_timeout_rate(1.0);
    let status = pay(&a, 1, &orders[1]).await.expect_err("answers lost");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("same idempotency key"),
        "{}",
        status.message()
    );
    provider.set_timeout_rate(0.0);
    // The fan retries through node B (node A might be gone): B finds the intent at the shared
    // provider by its key and finishes the order, without a second charge.
    pay_until_paid(&b, 1, &orders[1], Instant::now() + Duration::from_secs(15)).await;
    assert_eq!(
        provider.charges(),
        2,
        "the lost capture was not charged twice"
    );

    // The provider goes down for both nodes at once.
    provider.set_outage(true);
    for fan in 2..8u32 {
        let node = if fan % 2 == 0 { &a } else { &b };
        let status = pay(node, fan, &orders[fan as usize])
            .await
            .expect_err("nothing is paid during the outage");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains("nothing was charged"),
            "{}",
            status.message()
        );
    }
    // Three failures on each node opened its breaker: calls now fail without reaching the
    // provider.
    let calls = provider.calls();
    for node in [&a, &b] {
        let status = pay(node, 2, &orders[2]).await.expect_err("open");
        assert!(taquilla_proto::retry_after(&status).is_some(), "{status:?}");
    }
    assert_eq!(provider.calls(), calls, "an open breaker sent a call");
    assert_eq!(provider.charges(), 2);

    // Back: every fan's retry with the same key pays once, through either node.
    provider.set_outage(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    for fan in 2..8u32 {
        let node = if fan % 2 == 0 { &b } else { &a };
        pay_until_paid(node, fan, &orders[fan as usize], deadline).await;
    }
    assert_eq!(provider.charges(), 8, "one charge per paid order");
    a.assert_audit_clean("ev").await;
    b.assert_audit_clean("ev").await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_is_a_timeout_reconciled_later_not_a_lost_payment() {
    // No simulator listens on this port yet: calls cannot even connect. The server must not
    // take that for "not processed" and drop the attempt's record; it is reconciled once the
    // provider answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let url = format!("http://{addr}");
    let a = node(&url, None).await;
    create_event(&a, "ev", HALL, 4).await;
    let order = order_of(&a, 0).await;
    let status = pay(&a, 0, &order).await.expect_err("no provider");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    // The provider comes up on that address; the same key pays, once.
    let provider = Arc::new(SimulatedProvider::new(SimulatedConfig::default()));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    tokio::spawn(SimulatorService::new(provider.clone()).serve(listener, std::future::pending()));
    pay_until_paid(&a, 0, &order, Instant::now() + Duration::from_secs(20)).await;
    assert_eq!(provider.charges(), 1);
    a.assert_audit_clean("ev").await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_to_the_provider_broken_mid_call_is_reconciled_not_forgotten() {
    // Authorizations take 400 ms; the connection breaks while one is in flight. The provider
    // has the intent: the fan must not be told nothing was charged, and the retry must find
    // that intent rather than authorize a second one.
    let provider = Arc::new(SimulatedProvider::new(SimulatedConfig {
        latency_min: Duration::from_millis(400),
        latency_mean_extra: Duration::from_millis(1),
        ..SimulatedConfig::default()
    }));
    let url = start_simulator(provider.clone()).await;
    let proxy =
        taquilla_test_support::FaultProxy::start(url.trim_start_matches("http://").to_string())
            .await
            .expect("proxy");
    let a = node(&format!("http://{}", proxy.addr), None).await;
    create_event(&a, "ev", HALL, 4).await;
    let order = order_of(&a, 0).await;
    let paying = {
        let fan = a.fan("ev", "fan-0");
        let order = order.clone();
        tokio::spawn(async move {
            let mut fan = fan;
            fan.pay(pb::PayRequest {
                order_id: order,
                idempotency_key: "pay-fan-0".into(),
                card: Some(good_card()),
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    proxy.cut();
    let status = paying
        .await
        .expect("task")
        .expect_err("the answer never came");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        !status.message().contains("nothing was charged"),
        "the provider has the authorization, yet the fan was told: {}",
        status.message()
    );
    proxy.restore();
    pay_until_paid(&a, 0, &order, Instant::now() + Duration::from_secs(30)).await;
    assert_eq!(provider.charges(), 1);
    assert_eq!(
        provider.count(taquilla_server::payments::IntentStatus::Succeeded),
        1,
        "one intent, captured"
    );
    assert_eq!(
        provider.count(taquilla_server::payments::IntentStatus::RequiresCapture),
        0,
        "no second authorization left hanging"
    );
    a.assert_audit_clean("ev").await;
    a.stop().await;
}
