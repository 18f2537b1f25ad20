//! Faults mid-sale: the payment provider goes down, the database connection is cut. Each test
//! races real fans against a real database through the fault and checks what was lost (nothing:
//! every order paid once, no seat sold twice, a clean audit) and what fans were told (fast,
//! retryable `UNAVAILABLE` with a retry hint while a circuit breaker is open, never a hang).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Backend, HALL, TestServer, best, create_event, good_card, http_get, order_of, seat_statuses,
    seats_in, wait_until,
};
use taquilla_proto::v1 as pb;
use taquilla_server::domain::clock::SystemClock;
use taquilla_test_support::FaultProxy;
use tonic::Code;

const FANS: u32 = 20;

async fn pay(
    server: &TestServer,
    fan: u32,
    order_id: &str,
) -> Result<pb::PayResponse, tonic::Status> {
    server
        .fan("ev", &format!("fan-{fan}"))
        .pay(pb::PayRequest {
            order_id: order_id.to_string(),
            idempotency_key: format!("pay-fan-{fan}"),
            card: Some(good_card()),
        })
        .await
        .map(|r| r.into_inner())
}

async fn breaker_state(server: &TestServer, name: &str) -> String {
    let stats = server.stats("ev").await;
    stats
        .breakers
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no breaker {name} in {:?}", stats.breakers))
        .state
        .clone()
}

/// How long a fan waits before retrying a call the server refused: the retry hint, after
/// checking the refusal is a retryable one and time is not up.
fn retry_wait(fan: u32, status: &tonic::Status, deadline: Instant) -> Duration {
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::ResourceExhausted | Code::Aborted
        ),
        "fan {fan}: {status:?}"
    );
    assert!(Instant::now() < deadline, "fan {fan} gave up: {status:?}");
    taquilla_proto::retry_after(status).unwrap_or(Duration::from_millis(200))
}

/// Pays every order, each fan retrying as told (retry-after-ms) until paid or `deadline`.
async fn pay_all_retrying(server: &Arc<TestServer>, orders: &[(u32, String)], deadline: Instant) {
    let mut tasks = Vec::new();
    for (fan, order_id) in orders.iter().cloned() {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                match pay(&server, fan, &order_id).await {
                    Ok(answer) => return answer.order.expect("order"),
                    Err(status) => {
                        let wait = retry_wait(fan, &status, deadline).min(Duration::from_secs(2));
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }));
    }
    for task in tasks {
        let order = task.await.expect("fan task");
        assert_eq!(order.state, pb::OrderState::Paid as i32, "{order:?}");
        assert_eq!(order.tickets.len(), 2);
    }
}

async fn a_payment_provider_outage_fails_fast_and_loses_nothing(backend: Backend) {
    let server = TestServer::start_with(backend, Arc::new(SystemClock), |c| {
        c.breaker_failures = 3;
        c.breaker_cool_down = Duration::from_secs(2);
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    let mut orders = Vec::new();
    for fan in 0..FANS {
        orders.push((fan, order_of(&server, fan).await));
    }

    // The provider goes down while every fan pays at once.
    server.provider().set_outage(true);
    let calls_before = server.provider().calls();
    let mut tasks = Vec::new();
    let server = Arc::new(server);
    for (fan, order_id) in orders.iter().cloned() {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            (pay(&server, fan, &order_id).await, started.elapsed())
        }));
    }
    let mut fast_fails = 0;
    for task in tasks {
        let (answer, took) = task.await.expect("fan task");
        let status = answer.expect_err("nothing can be paid during the outage");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains("nothing was charged"),
            "{}",
            status.message()
        );
        assert!(took < Duration::from_secs(2), "a fan waited {took:?}");
        if taquilla_proto::retry_after(&status).is_some() {
            fast_fails += 1;
        }
    }
    // Three failures open the breaker; the calls that had not reached the provider by then
    // fail fast with a retry hint. A closed breaker lets every call through until the third
    // failure is counted, so the fans already past it when it opened (how many depends on the
    // scheduler: with PostgreSQL several finish their database step together) reach the
    // provider too. Each fan either reached the provider or was refused fast, and the breaker
    // opened long before the crowd went through.
    let reached = (server.provider().calls() - calls_before) as u32;
    assert!(
        (3..=FANS / 2).contains(&reached),
        "{reached} provider calls for {FANS} fans paying during an outage"
    );
    assert!(
        fast_fails >= FANS - reached,
        "only {fast_fails} calls were refused by the open breaker ({reached} reached the provider)"
    );
    assert_eq!(breaker_state(&server, "payment-provider").await, "OPEN");
    assert_eq!(breaker_state(&server, "database").await, "CLOSED");
    // While open, a call does not reach the provider at all.
    let calls = server.provider().calls();
    let status = pay(&server, 0, &orders[0].1).await.expect_err("still open");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(server.provider().calls(), calls);
    // The outage is on the metrics page too (published each second).
    let admin = server.admin_addr;
    wait_until(
        "the metrics page to show the provider's breaker open",
        Duration::from_secs(5),
        || async move {
            http_get(admin, "/metrics")
                .await
                .contains("taquilla_breaker_state{dependency=\"payment-provider\"} 1")
        },
    )
    .await;

    // The orders keep their seats: a rival cannot hold them.
    let rival = server
        .fan("ev", "rival")
        .hold_seats(seats_in("ev", &[1, 2]))
        .await
        .expect_err("seats of a pending order are taken");
    assert_eq!(rival.code(), Code::Aborted, "{rival:?}");

    // The provider comes back: after the cool-down a probe closes the breaker and every fan's
    // retry with the same key pays, once.
    server.provider().set_outage(false);
    pay_all_retrying(&server, &orders, Instant::now() + Duration::from_secs(30)).await;
    assert_eq!(breaker_state(&server, "payment-provider").await, "CLOSED");
    assert_eq!(server.provider().charges(), u64::from(FANS));
    server.assert_audit_clean("ev").await;
    let server = Arc::into_inner(server).expect("no other owners");
    server.stop().await;
}

/// A PostgreSQL server whose database is reached through a [`FaultProxy`], with a breaker
/// that opens after 3 failures for 2 s.
async fn behind_a_proxy(
    configure: impl FnOnce(&mut taquilla_server::config::Config),
) -> (FaultProxy, TestServer) {
    let upstream = taquilla_test_support::host_port(&taquilla_test_support::pg_admin_url())
        .expect("PostgreSQL URL has a host");
    let proxy = FaultProxy::start(upstream).await.expect("proxy");
    let server = TestServer::start_with(Backend::Postgres, Arc::new(SystemClock), |c| {
        if let Some(url) = &c.database_url {
            c.database_url = Some(proxy.url_through(url));
        }
        c.breaker_failures = 3;
        c.breaker_cool_down = Duration::from_secs(2);
        configure(c);
    })
    .await;
    (proxy, server)
}

/// An operator's action taken while the database is out (a broadcast, which needs only the
/// waiting room) is written to the audit log once the database is back, once: the write is
/// retried, not dropped with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_action_in_a_database_outage_reaches_the_audit_log() {
    use sqlx::Connection;
    let (proxy, server) = behind_a_proxy(|c| {
        c.connect_timeout = Duration::from_millis(500);
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    let url = server.database.as_ref().expect("database").url.clone();
    let recorded = || {
        let url = url.clone();
        async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM audit_log WHERE action = 'broadcast' AND detail = 'Doors open at 19:00'",
            )
            .fetch_one(&mut conn)
            .await
            .expect("count")
        }
    };
    proxy.cut();
    server
        .operator()
        .broadcast(pb::BroadcastRequest {
            event_id: "ev".into(),
            message: "Doors open at 19:00".into(),
            severity: pb::AlertSeverity::Info as i32,
        })
        .await
        .expect("a broadcast needs only the waiting room");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(recorded().await, 0, "the database was out");
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    while recorded().await == 0 {
        assert!(
            Instant::now() < deadline,
            "the broadcast never reached the audit log"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(recorded().await, 1, "written once");
    server.stop().await;
}

/// The connection to PostgreSQL is cut mid-sale (as when it restarts): calls fail with
/// `UNAVAILABLE`, the breaker opens and answers at once, and when the database is back the
/// same calls, retried, complete exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_fails_fast_and_loses_nothing() {
    let (proxy, server) = behind_a_proxy(|c| {
        c.connect_timeout = Duration::from_millis(500);
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    let mut orders = Vec::new();
    for fan in 0..FANS / 2 {
        orders.push((fan, order_of(&server, fan).await));
    }

    assert_eq!(breaker_state(&server, "database").await, "CLOSED");
    proxy.cut();
    let server = Arc::new(server);
    // Fans keep calling through the outage: holds of new seats and payments of their orders.
    let mut tasks = Vec::new();
    for (fan, order_id) in orders.iter().cloned() {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = pay(&server, fan, &order_id).await;
            (answer.map(|_| ()), started.elapsed())
        }));
    }
    for fan in FANS / 2..FANS {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = server
                .fan("ev", &format!("fan-{fan}"))
                .hold_seats(seats_in("ev", &[2 * fan + 1, 2 * fan + 2]))
                .await;
            (answer.map(|_| ()), started.elapsed())
        }));
    }
    for task in tasks {
        let (answer, took) = task.await.expect("fan task");
        let status = answer.expect_err("the database is unreachable");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        // At worst one wait for a connection (0.5 s), never a hang.
        assert!(took < Duration::from_secs(3), "a fan waited {took:?}");
    }
    assert_eq!(breaker_state(&server, "database").await, "OPEN");
    let started = Instant::now();
    let status = pay(&server, 0, &orders[0].1).await.expect_err("still open");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        taquilla_proto::retry_after(&status).is_some(),
        "an open breaker gives a retry hint: {status:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(200));
    assert!(
        status.message().contains("database"),
        "{}",
        status.message()
    );
    assert_eq!(server.provider().charges(), 0);

    // The database is back: everyone retries and completes, once.
    proxy.restore();
    pay_all_retrying(&server, &orders, Instant::now() + Duration::from_secs(30)).await;
    let mut held = HashSet::new();
    for fan in FANS / 2..FANS {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = server
                .fan("ev", &format!("fan-{fan}"))
                .hold_seats(seats_in("ev", &[2 * fan + 1, 2 * fan + 2]))
                .await;
            match answer {
                Ok(hold) => {
                    held.insert(hold.into_inner().hold.expect("hold").hold_id);
                    break;
                }
                Err(status) => {
                    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                    assert!(
                        Instant::now() < deadline,
                        "fan {fan} never held: {status:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    assert_eq!(held.len(), (FANS / 2) as usize);
    assert_eq!(breaker_state(&server, "database").await, "CLOSED");
    assert_eq!(server.provider().charges(), u64::from(FANS / 2));
    server.assert_audit_clean("ev").await;
    let server = Arc::into_inner(server).expect("no other owners");
    server.stop().await;
}

/// PostgreSQL stops answering without closing its connections (a hung server, a network that
/// drops packets): every call still ends within the call timeout as `UNAVAILABLE`, the
/// breaker counts those as failures and opens, and when the database answers again the same
/// calls complete once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_hangs_fails_calls_in_bounded_time() {
    let (proxy, server) = behind_a_proxy(|c| {
        // Waiting for a connection would take longer than a call may: only the call timeout
        // bounds a call here, as it does for a query already under way when the database hangs.
        c.connect_timeout = Duration::from_secs(10);
        c.db_call_timeout = Duration::from_secs(1);
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    let mut orders = Vec::new();
    for fan in 0..6 {
        orders.push((fan, order_of(&server, fan).await));
    }
    // The operator is watching (GetStats serves its last figures while the database is out).
    assert_eq!(breaker_state(&server, "database").await, "CLOSED");

    proxy.stall();
    let server = Arc::new(server);
    let mut tasks = Vec::new();
    for (fan, order_id) in orders.iter().cloned() {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = pay(&server, fan, &order_id).await;
            (answer.map(|_| ()), started.elapsed())
        }));
    }
    for task in tasks {
        let (answer, took) = task.await.expect("fan task");
        let status = answer.expect_err("the database does not answer");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        // One call timeout (1 s), and a little: never a hang.
        assert!(took < Duration::from_secs(3), "a fan waited {took:?}");
    }
    assert_eq!(breaker_state(&server, "database").await, "OPEN");
    let started = Instant::now();
    let status = pay(&server, 0, &orders[0].1).await.expect_err("open");
    assert!(taquilla_proto::retry_after(&status).is_some(), "{status:?}");
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(server.provider().charges(), 0);

    // It answers again: the same calls, retried, complete once.
    proxy.restore();
    pay_all_retrying(&server, &orders, Instant::now() + Duration::from_secs(30)).await;
    assert_eq!(breaker_state(&server, "database").await, "CLOSED");
    assert_eq!(server.provider().charges(), orders.len() as u64);
    server.assert_audit_clean("ev").await;
    let server = Arc::into_inner(server).expect("no other owners");
    server.stop().await;
}

/// A database that is slow but answering (here: calls stuck behind a row lock while others go
/// through) is load, not an outage: the calls that run out of time answer `UNAVAILABLE`, but
/// the breaker stays closed for everyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_on_a_database_that_answers_do_not_open_the_breaker() {
    use sqlx::Connection;
    let server = TestServer::start_with(Backend::Postgres, Arc::new(SystemClock), |c| {
        c.breaker_failures = 3;
        c.db_call_timeout = Duration::from_secs(1);
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    // Another client holds seat 1's row locked for 3 s.
    let url = server.database.as_ref().expect("database").url.clone();
    let mut blocker = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut tx = blocker.begin().await.expect("begin");
    sqlx::query("SELECT seat_id FROM seats WHERE event_id = 'ev' AND seat_id = 1 FOR UPDATE")
        .execute(&mut *tx)
        .await
        .expect("lock");
    let server = Arc::new(server);
    let mut stuck = Vec::new();
    for fan in 0..4 {
        let server = server.clone();
        stuck.push(tokio::spawn(async move {
            server
                .fan("ev", &format!("stuck-{fan}"))
                .hold_seats(seats_in("ev", &[1]))
                .await
        }));
    }
    // Meanwhile other fans' calls get answers.
    for fan in 0..15u32 {
        server
            .fan("ev", &format!("fine-{fan}"))
            .hold_seats(seats_in("ev", &[fan + 10]))
            .await
            .expect("the database answers other calls");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in stuck {
        let status = task
            .await
            .expect("task")
            .expect_err("stuck behind the lock");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    assert_eq!(breaker_state(&server, "database").await, "CLOSED");
    tx.rollback().await.expect("rollback");
    server
        .fan("ev", "after")
        .hold_seats(seats_in("ev", &[1]))
        .await
        .expect("seat 1 is free again");
    server.assert_audit_clean("ev").await;
    let server = Arc::into_inner(server).expect("no other owners");
    server.stop().await;
}

/// A one-round-trip write on PostgreSQL commits on its own, so a caller that stops waiting
/// cannot roll it back. Here a hold's call waits (on the event row, which another client keeps
/// locked for 3 s) past the server's 1 s bound, and the fan is told UNAVAILABLE; when the lock
/// goes, the write must not happen after all: no seat held, nothing counted against the fan's
/// cap. The function gives up on the lock after 20 ms (`lock_timeout`) and would decline past
/// its time budget anyway; with neither, the hold commits 2 s after the fan's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_caller_gave_up_does_not_happen_later() {
    use sqlx::Connection;
    let server = TestServer::start_with(Backend::Postgres, Arc::new(SystemClock), |c| {
        c.db_call_timeout = Duration::from_secs(1);
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    let url = server.database.as_ref().expect("database").url.clone();
    let mut blocker = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut tx = blocker.begin().await.expect("begin");
    sqlx::query("SELECT id FROM events WHERE id = 'ev' FOR UPDATE")
        .execute(&mut *tx)
        .await
        .expect("lock");
    let late = server
        .fan("ev", "late")
        .hold_seats(seats_in("ev", &[5, 6]))
        .await
        .expect_err("the database does not answer in time");
    assert_eq!(late.code(), Code::Unavailable, "{late:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    tx.rollback().await.expect("rollback");
    // The call still running in the database finishes now, one way or the other.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let statuses = seat_statuses(&server, "ev").await;
    assert_eq!(
        (statuses[4], statuses[5]),
        (
            pb::SeatStatus::Available as i32,
            pb::SeatStatus::Available as i32
        ),
        "the seats of a hold the fan was told failed are free"
    );
    let hold = server
        .fan("ev", "late")
        .hold_seats(best("ev", "s", 4))
        .await
        .expect("the fan's whole allowance is left")
        .into_inner()
        .hold
        .expect("hold");
    assert_eq!(hold.seats.len(), 4);
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

/// SIGTERM's drain, in process: a node stopping tells its queue watchers to reconnect
/// elsewhere, lets a payment in flight finish (the fan gets the answer, not a reset), refuses
/// new connections, and is gone within the drain limit.
async fn a_draining_node_finishes_in_flight_calls_and_sends_watchers_elsewhere(backend: Backend) {
    let server = TestServer::start_with(backend, Arc::new(SystemClock), |c| {
        // A payment takes a good second: it is surely in flight when the drain starts.
        c.payment_latency = Duration::from_millis(600);
        c.payment_latency_tail = Duration::from_millis(1);
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    server
        .operator()
        .open_sale(common::open_general_now("ev"))
        .await
        .expect("open");
    let order_id = order_of(&server, 0).await;
    // A fan in the queue, watching.
    let token = server
        .waiting_room()
        .join(pb::JoinRequest {
            event_id: "ev".into(),
            fingerprint: "watcher".into(),
            ..Default::default()
        })
        .await
        .expect("join")
        .into_inner()
        .queue_token;
    let mut watch = server
        .waiting_room()
        .watch(pb::WatchRequest {
            queue_token: token,
            join: None,
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("stream")
        .expect("first update");
    assert!(!first.reconnect);

    let provider = server.provider();
    let calls_before = provider.calls();
    let paying = {
        let mut client = server.fan("ev", "fan-0");
        let order_id = order_id.clone();
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
    // Authorize and capture each take 0.6 s: stop while the payment is mid-way, at the provider.
    wait_until(
        "the payment to reach the provider",
        Duration::from_secs(10),
        || async move { provider.calls() > calls_before },
    )
    .await;
    let addr = server.addr;
    let started = Instant::now();
    let stopping = tokio::spawn(server.stop());

    // The watcher is told to reconnect, then the stream ends.
    let told = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match watch.message().await {
                Ok(Some(update)) if update.reconnect => return true,
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return false,
            }
        }
    })
    .await
    .expect("the watcher hears from the draining node at once");
    assert!(told, "the stream ended without saying reconnect");
    // The payment in flight finishes with its real answer.
    let paid = paying
        .await
        .expect("task")
        .expect("the payment in flight completes during the drain")
        .into_inner();
    assert_eq!(
        paid.order.expect("order").state,
        pb::OrderState::Paid as i32
    );
    stopping.await.expect("stopped cleanly");
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "the drain took {:?}",
        started.elapsed()
    );
    // Nobody is listening any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A Redis server of the test's own, with an append-only file synced on every write, so it can
/// be killed (SIGKILL, as a crash) and started again on the same data.
struct PrivateRedis {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("temp dir");
        let child = PrivateRedis::spawn(port, dir.path());
        PrivateRedis { child, port, dir }
    }

    fn spawn(port: u16, dir: &std::path::Path) -> std::process::Child {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test (.ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, then start again on the same data.
    fn crash_and_restart(&mut self, down_for: Duration) {
        self.child.kill().expect("SIGKILL redis");
        let _ = self.child.wait();
        std::thread::sleep(down_for);
        self.child = PrivateRedis::spawn(self.port, self.dir.path());
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One fan: joins, watches (reconnecting to the same node if the stream breaks), and when
/// admitted buys one seat, retrying what the server says is retryable. Returns the paid order.
async fn fan_buys_through_the_queue(server: Arc<TestServer>, fan: u32) -> pb::Order {
    let deadline = Instant::now() + Duration::from_secs(60);
    let token = loop {
        let joined = server
            .waiting_room()
            .join(pb::JoinRequest {
                event_id: "ev".into(),
                fingerprint: format!("queue-fan-{fan}"),
                ..Default::default()
            })
            .await;
        match joined {
            Ok(r) => break r.into_inner().queue_token,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "fan {fan}: {status:?}");
                assert!(Instant::now() < deadline, "fan {fan} never joined");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let pass = 'watching: loop {
        assert!(Instant::now() < deadline, "fan {fan} was never admitted");
        let stream = server
            .waiting_room()
            .watch(pb::WatchRequest {
                queue_token: token.clone(),
                join: None,
            })
            .await;
        if let Ok(stream) = stream {
            let mut stream = stream.into_inner();
            while let Ok(Ok(Some(update))) =
                tokio::time::timeout_at(deadline.into(), stream.message()).await
            {
                if let Some(status) = &update.status {
                    let state = pb::QueueState::try_from(status.state).expect("state");
                    assert!(
                        matches!(
                            state,
                            pb::QueueState::Prequeue
                                | pb::QueueState::Waiting
                                | pb::QueueState::Admitted
                        ),
                        "fan {fan} lost its place: {status:?}"
                    );
                }
                if let Some(pass) = update.admission_pass {
                    break 'watching pass.token;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut client = server.sales_with_pass(&pass);
    let retry = |status: &tonic::Status| retry_wait(fan, status, deadline);
    let hold = loop {
        match client.hold_seats(common::best("ev", "s", 1)).await {
            Ok(r) => break r.into_inner().hold.expect("hold"),
            Err(status) => tokio::time::sleep(retry(&status)).await,
        }
    };
    let order = loop {
        let checkout = client
            .checkout(pb::CheckoutRequest {
                hold_id: hold.hold_id.clone(),
                idempotency_key: format!("checkout-queue-fan-{fan}"),
            })
            .await;
        match checkout {
            Ok(r) => break r.into_inner().order.expect("order"),
            Err(status) => tokio::time::sleep(retry(&status)).await,
        }
    };
    loop {
        let paid = client
            .pay(pb::PayRequest {
                order_id: order.order_id.clone(),
                idempotency_key: format!("pay-queue-fan-{fan}"),
                card: Some(good_card()),
            })
            .await;
        match paid {
            Ok(r) => return r.into_inner().order.expect("order"),
            Err(status) => tokio::time::sleep(retry(&status)).await,
        }
    }
}

/// Redis, holding the waiting room, crashes (SIGKILL) mid-sale and comes back on its
/// append-only file: no fan loses its place, admissions resume, and every fan buys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_sale_loses_no_place_and_the_sale_completes() {
    const FANS: u32 = 30;
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let server = TestServer::start_with(Backend::Postgres, Arc::new(SystemClock), move |c| {
        c.redis_url = Some(url);
        // Paying takes ~0.6 s, so the sale is surely under way when Redis goes down.
        c.payment_latency = Duration::from_millis(300);
        c.payment_latency_tail = Duration::from_millis(1);
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    // Ten buying at a time, so most fans are still in line when Redis goes down.
    server
        .operator()
        .set_admission(pb::SetAdmissionRequest {
            event_id: "ev".into(),
            rate_per_minute: 6_000,
            burst: 10,
            max_active: 10,
            pow_difficulty_bits: 0,
            auto: false,
        })
        .await
        .expect("admission");
    server
        .operator()
        .open_sale(common::open_general_now("ev"))
        .await
        .expect("open");
    let server = Arc::new(server);
    let paid = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let fans: Vec<_> = (0..FANS)
        .map(|fan| {
            let (server, paid) = (server.clone(), paid.clone());
            tokio::spawn(async move {
                let order = fan_buys_through_the_queue(server, fan).await;
                paid.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                order
            })
        })
        .collect();
    // Let the first fans in and pay, then crash Redis for two seconds.
    let paying = &paid;
    wait_until(
        "a first fan to pay",
        Duration::from_secs(30),
        || async move { paying.load(std::sync::atomic::Ordering::SeqCst) > 0 },
    )
    .await;
    let before_crash = paid.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        before_crash < FANS - 10,
        "{before_crash} fans had paid before the crash: too late to test anything"
    );
    let redis = tokio::task::spawn_blocking(move || {
        redis.crash_and_restart(Duration::from_secs(2));
        redis
    })
    .await
    .expect("restart");
    let mut orders = HashSet::new();
    for fan in fans {
        let order = fan.await.expect("fan task");
        assert_eq!(order.state, pb::OrderState::Paid as i32, "{order:?}");
        orders.insert(order.order_id);
    }
    assert_eq!(orders.len(), FANS as usize);
    assert_eq!(server.provider().charges(), u64::from(FANS));
    server.assert_audit_clean("ev").await;
    let server = Arc::into_inner(server).expect("no other owners");
    server.stop().await;
    drop(redis);
}

/// Joins arriving faster than Redis records them wait in a bounded line: past it a fan is told
/// at once to come back (`RESOURCE_EXHAUSTED` with `retry-after-ms`) instead of waiting out its
/// deadline behind a line that only grows, and coming back as told it gets exactly one place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_beyond_what_redis_takes_are_told_to_come_back() {
    // More than one batch in flight plus the line behind it (256 + 1,024).
    const JOINERS: usize = 1_600;
    let redis = taquilla_test_support::redis_url();
    let upstream = taquilla_test_support::host_port(&redis).expect("Redis URL has a host");
    let proxy = FaultProxy::start(upstream).await.expect("proxy");
    let through = proxy.url_through(&redis);
    let server = TestServer::start_with(Backend::Postgres, Arc::new(SystemClock), move |c| {
        c.redis_url = Some(through);
        // A hung Redis call lasts this long before it fails: longer than the test looks.
        c.connect_timeout = Duration::from_secs(10);
        c.join_rate_per_ip = 0;
        // A burst of 3 joins per fan: being told to come back must not spend them.
        c.join_rate_per_fingerprint = 6;
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    let join = |fingerprint: String| {
        let mut room = server.waiting_room();
        async move {
            room.join(pb::JoinRequest {
                event_id: "ev".into(),
                fingerprint,
                ..Default::default()
            })
            .await
        }
    };
    join("first".into()).await.expect("the room answers");

    // Redis stops answering: a batch hangs, the line behind it fills, the rest are told to
    // come back, at once.
    proxy.stall();
    let started = Instant::now();
    let joiners: Vec<_> = (0..JOINERS)
        .map(|i| {
            let first = join(format!("fan-{i}"));
            tokio::spawn(async move { (first.await, started.elapsed()) })
        })
        .collect();
    let mut told_to_come_back = 0;
    let mut waiting = Vec::new();
    for (i, joiner) in joiners.into_iter().enumerate() {
        match tokio::time::timeout_at((started + Duration::from_secs(3)).into(), joiner).await {
            Ok(Ok((Err(status), took))) if status.code() == Code::ResourceExhausted => {
                assert!(took < Duration::from_secs(2), "told after {took:?}");
                assert!(
                    taquilla_proto::retry_after(&status).is_some(),
                    "no hint: {status:?}"
                );
                assert!(status.message().contains("join again"), "{status:?}");
                told_to_come_back += 1;
            }
            Ok(answer) => panic!("fan {i} was answered while Redis hung: {answer:?}"),
            Err(_) => waiting.push(i),
        }
    }
    assert!(
        told_to_come_back >= JOINERS - 256 - 1_024,
        "only {told_to_come_back} of {JOINERS} fans were told to come back"
    );
    assert!(!waiting.is_empty(), "nobody waited in the line");
    // A fan told to come back, coming back while the line is still full, is told the same
    // each time: the refusals did not spend its own join allowance.
    for _ in 0..5 {
        let status = join(format!("fan-{}", JOINERS - 1))
            .await
            .expect_err("the line is still full");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("join again"), "{status:?}");
    }

    // Redis is back: every fan, joining again as told (the waiting ones after their call
    // failed), holds exactly one place.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(60);
    let fans: Vec<_> = (0..JOINERS)
        .map(|i| {
            let join = join(format!("fan-{i}"));
            let mut room = server.waiting_room();
            tokio::spawn(async move {
                let mut answer = join.await;
                loop {
                    match answer {
                        Ok(joined) => return joined.into_inner().queue_token,
                        Err(status) => {
                            assert!(
                                matches!(
                                    status.code(),
                                    Code::ResourceExhausted | Code::Unavailable
                                ),
                                "fan {i}: {status:?}"
                            );
                            assert!(Instant::now() < deadline, "fan {i} never got in");
                            let pause = taquilla_proto::retry_after(&status)
                                .unwrap_or(Duration::from_millis(200));
                            tokio::time::sleep(pause).await;
                        }
                    }
                    answer = room
                        .join(pb::JoinRequest {
                            event_id: "ev".into(),
                            fingerprint: format!("fan-{i}"),
                            ..Default::default()
                        })
                        .await;
                }
            })
        })
        .collect();
    for fan in fans {
        assert!(!fan.await.expect("fan").is_empty());
    }
    // The node's statistics come from its replica of the queue, which follows Redis's log a
    // moment behind the joins' answers: wait (bounded) for it to show them all.
    let settled = Instant::now() + Duration::from_secs(10);
    let mut stats = server.stats("ev").await;
    while stats.prequeue < JOINERS as u64 + 1 && Instant::now() < settled {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats = server.stats("ev").await;
    }
    assert_eq!(stats.prequeue, JOINERS as u64 + 1, "{stats:?}");
    server.stop().await;
}

on_both_backends!(
    a_payment_provider_outage_fails_fast_and_loses_nothing,
    a_draining_node_finishes_in_flight_calls_and_sends_watchers_elsewhere,
);
