//! Redis load does not grow with watchers: 1,000 and then 10,000 fans watch their place on a
//! distributed-backend server while the valve admits fans (so every position moves), and
//! Redis's own command counters (`INFO commandstats`) show about the same traffic both times:
//! the node's pump, heartbeat and log reads, not a command per watcher. (A design that polls
//! `ZRANK` per fan each second would send 10,000 commands a second here.)
//!
//! Alone in its test binary so no other test's Redis traffic is counted.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use taquilla_proto::v1 as pb;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const FEW: u64 = 1_000;
const MANY: u64 = 10_000;
const WINDOW: Duration = Duration::from_secs(6);

/// Commands Redis has served since it started, from `INFO commandstats`.
async fn redis_commands(conn: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|line| line.split("calls=").nth(1))
        .filter_map(|rest| rest.split(',').next())
        .filter_map(|calls| calls.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_commands_grow_with_admissions_not_with_watchers() {
    let server = TestServer::start(Backend::Postgres).await;
    let mut request = small_event("crowd");
    request.layout = Some(pb::create_event_request::Layout::LayoutToml(
        "[venue]\nid = \"hall\"\nname = \"Hall\"\n[[sections]]\nid = \"ga\"\nname = \"GA\"\nkind = \"general_admission\"\nprice = 10\ncapacity = 1000\n".into(),
    ));
    server
        .operator()
        .create_event(request)
        .await
        .expect("create event");
    server
        .operator()
        .set_admission(pb::SetAdmissionRequest {
            event_id: "crowd".into(),
            rate_per_minute: 600,
            burst: 1,
            max_active: 100_000,
            pow_difficulty_bits: 0,
            auto: false,
        })
        .await
        .expect("admission");
    let mut channels = Vec::new();
    for _ in 0..20 {
        channels.push(
            tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
                .expect("endpoint")
                .connect()
                .await
                .expect("connect"),
        );
    }
    let received = Arc::new(AtomicU64::new(0));
    let client = redis::Client::open(taquilla_test_support::redis_url()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");

    // A few fans join the pre-queue and watch; the valve opens (10 admissions a second, so
    // every position moves all the time); Redis's traffic is measured.
    crowd(&channels, 0..FEW, &received).await;
    server
        .operator()
        .open_sale(pb::OpenSaleRequest {
            event_id: "crowd".into(),
            phase: pb::SalePhase::General as i32,
            opens_at_unix_ms: 0,
            presale_codes: vec![],
        })
        .await
        .expect("open");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (few_commands, few_messages) = window(&mut conn, &received).await;
    // Ten times as many watch; the same valve; Redis's traffic again.
    crowd(&channels, FEW..MANY, &received).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (many_commands, many_messages) = window(&mut conn, &received).await;

    let stats = server
        .operator()
        .get_stats(pb::GetStatsRequest {
            event_id: "crowd".into(),
        })
        .await
        .expect("stats")
        .into_inner();
    let seconds = WINDOW.as_secs();
    println!(
        "{FEW} watchers: {few_commands} Redis commands in {seconds} s, {few_messages} messages to watchers"
    );
    println!(
        "{MANY} watchers: {many_commands} Redis commands in {seconds} s, {many_messages} messages to watchers"
    );
    assert_eq!(stats.watchers, MANY, "every stream is open on this node");
    assert!(stats.admitted_total >= 100, "the valve was open: {stats:?}");
    // Each admission is a message (60 in a window at 10 a second), and the watchers near the
    // front hear their places move; those far back hear it more rarely (waiting_room::watchers).
    assert!(
        few_messages >= 100 && many_messages >= 100,
        "the watchers heard their admissions and their places move: {few_messages}, {many_messages}"
    );
    // Ten times the watchers, about the same Redis traffic (commands run inside the scripts
    // included): the pump's steps, heartbeats and log reads, not a command per watcher.
    assert!(
        many_commands <= few_commands * 3 / 2 + 60,
        "Redis traffic grew with watchers: {few_commands} → {many_commands} commands"
    );
    server.stop().await;
}

/// Fans `ids` join and watch; each stream is read at once (as a fan's app does), counting its
/// messages. Returns when all of them have their first message.
async fn crowd(channels: &[Channel], ids: std::ops::Range<u64>, received: &Arc<AtomicU64>) {
    let watching = Arc::new(AtomicU64::new(0));
    let count = ids.end - ids.start;
    let ids: Vec<u64> = ids.collect();
    for (n, chunk) in ids.chunks(250).enumerate() {
        let channel = channels[n % channels.len()].clone();
        let received = received.clone();
        let watching = watching.clone();
        let chunk = chunk.to_vec();
        tokio::spawn(async move {
            let mut room = pb::waiting_room_client::WaitingRoomClient::new(channel);
            for i in chunk {
                let joined = room
                    .join(pb::JoinRequest {
                        event_id: "crowd".into(),
                        fingerprint: format!("fan-{i}"),
                        ..Default::default()
                    })
                    .await
                    .expect("join")
                    .into_inner();
                let mut stream = room
                    .watch(pb::WatchRequest {
                        queue_token: joined.queue_token,
                        join: None,
                    })
                    .await
                    .expect("watch")
                    .into_inner();
                stream.next().await.expect("a first message").expect("ok");
                watching.fetch_add(1, Ordering::Relaxed);
                let received = received.clone();
                tokio::spawn(async move {
                    while let Some(update) = stream.next().await {
                        if update.is_ok() {
                            received.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while watching.load(Ordering::Relaxed) < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "watchers set up in time: {} of {count}",
            watching.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Redis commands served and messages watchers heard during [`WINDOW`].
async fn window(conn: &mut redis::aio::MultiplexedConnection, received: &AtomicU64) -> (u64, u64) {
    let commands = redis_commands(conn).await;
    let messages = received.load(Ordering::Relaxed);
    tokio::time::sleep(WINDOW).await;
    (
        redis_commands(conn).await - commands,
        received.load(Ordering::Relaxed) - messages,
    )
}
