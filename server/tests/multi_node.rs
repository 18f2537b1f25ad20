//! Three real server processes share one PostgreSQL database and one Redis: fans joined through
//! all three are admitted at the operator's rate once, globally (not three times it), and when
//! one node is killed with SIGKILL mid-sale its watchers reconnect to another node with their
//! tokens and keep their places; a fan admitted through the cluster buys on another node, and
//! the audit is clean. The same on a Redis Cluster of three primaries (`--redis-cluster`, with
//! the rate limits and abuse flags shared there too).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{OPERATOR_TOKEN, SIGNING_KEY, small_event};
use taquilla_proto::v1 as pb;
use taquilla_test_support::{PgDatabase, RedisKind, RedisNamespace};
use tonic::transport::Channel;

/// One `taquilla-server` process.
struct Node {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(database: &str, namespace: &RedisNamespace) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_taquilla-server"));
        if namespace.kind == RedisKind::Cluster {
            command.args(["--redis-cluster", "--shared-rate-limits"]);
        }
        let mut child = command
            .env_clear()
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--database-url", database])
            .args(["--redis-url", &namespace.url])
            .args(["--redis-namespace", &namespace.name])
            .args([
                "--operator-token",
                OPERATOR_TOKEN,
                "--signing-key",
                SIGNING_KEY,
            ])
            .args(["--join-rate-per-ip", "0", "--sales-rate-per-ip", "0"])
            .args(["--log", "info"])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn taquilla-server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut log = Vec::new();
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the node did not start: {log:#?}"));
            if line.contains("is serving")
                && let Some(addr) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("grpc="))
            {
                break format!("http://{addr}");
            }
            log.push(line);
        };
        // Keep draining the log so the pipe never fills.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Node {
            child,
            url,
            _dir: dir,
        }
    }

    async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect to node")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Operator = pb::operator_client::OperatorClient<
    tonic::service::interceptor::InterceptedService<
        Channel,
        fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
    >,
>;

fn operator(channel: Channel) -> Operator {
    fn token(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let value = format!("Bearer {OPERATOR_TOKEN}").parse().expect("ascii");
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
    pb::operator_client::OperatorClient::with_interceptor(
        channel,
        token as fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
    )
}

async fn admitted_total(operator: &mut Operator) -> u64 {
    operator
        .get_stats(pb::GetStatsRequest {
            event_id: "ev".into(),
        })
        .await
        .expect("stats")
        .into_inner()
        .admitted_total
}

/// What one fan saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    last: Option<pb::QueueStatus>,
    pass: Option<String>,
    /// (position before, first status after) for each reconnection.
    reconnections: Vec<(u64, pb::QueueStatus)>,
}

/// Watches a fan's place, first on `home`, then (when the stream breaks) on `fallback`, with
/// the same token.
async fn watch(token: String, home: Channel, fallback: Channel, seen: Arc<Mutex<Seen>>) {
    let mut channel = home;
    let mut reconnected_from: Option<u64> = None;
    loop {
        let stream = pb::waiting_room_client::WaitingRoomClient::new(channel.clone())
            .watch(pb::WatchRequest {
                queue_token: token.clone(),
                join: None,
            })
            .await;
        let mut stream = match stream {
            Ok(stream) => stream.into_inner(),
            Err(status) => panic!("the fan's token was refused: {status:?}"),
        };
        while let Ok(Some(update)) = stream.message().await {
            let mut seen = seen.lock().expect("lock");
            if let Some(status) = update.status {
                if let Some(before) = reconnected_from.take() {
                    seen.reconnections.push((before, status.clone()));
                }
                seen.last = Some(status);
            }
            if let Some(pass) = update.admission_pass {
                seen.pass = Some(pass.token);
                return;
            }
        }
        // The node went away: go to the other one with the same token.
        let before = seen
            .lock()
            .expect("lock")
            .last
            .as_ref()
            .map_or(0, |s| s.position);
        reconnected_from = Some(before);
        channel = fallback.clone();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_admit_at_one_rate_and_survive_a_killed_node() {
    three_nodes_admit_at_one_rate_and_survive_a_killed_node_on(RedisKind::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_a_redis_cluster_admit_at_one_rate_and_survive_a_killed_node() {
    three_nodes_admit_at_one_rate_and_survive_a_killed_node_on(RedisKind::Cluster).await;
}

async fn three_nodes_admit_at_one_rate_and_survive_a_killed_node_on(kind: RedisKind) {
    let database = PgDatabase::create().await;
    let namespace = RedisNamespace::of(kind);
    let nodes: Vec<Node> = (0..3)
        .map(|_| Node::start(&database.url, &namespace))
        .collect();
    let mut channels = Vec::new();
    for node in &nodes {
        channels.push(node.channel().await);
    }
    let mut ops = operator(channels[0].clone());
    ops.create_event(small_event("ev")).await.expect("create");
    // 120 a minute: two a second, for the whole cluster.
    ops.set_admission(pb::SetAdmissionRequest {
        event_id: "ev".into(),
        rate_per_minute: 120,
        burst: 2,
        max_active: 10_000,
        pow_difficulty_bits: 0,
        auto: false,
    })
    .await
    .expect("admission");

    // 60 fans join before the opening, a third through each node, and watch there.
    const FANS: usize = 60;
    // Every node publishes the one commitment to the shuffle, read from the shared database.
    let mut commitments = Vec::new();
    for channel in &channels {
        let stats = operator(channel.clone())
            .get_stats(pb::GetStatsRequest {
                event_id: "ev".into(),
            })
            .await
            .expect("stats")
            .into_inner();
        commitments.push(stats.shuffle_commitment);
    }
    assert_eq!(commitments[0].len(), 64);
    assert!(
        commitments.iter().all(|c| *c == commitments[0]),
        "{commitments:?}"
    );
    let mut seen = HashMap::new();
    let mut tokens = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..FANS {
        let home = channels[i % 3].clone();
        let token = pb::waiting_room_client::WaitingRoomClient::new(home.clone())
            .join(pb::JoinRequest {
                event_id: "ev".into(),
                fingerprint: format!("fan-{i}"),
                ..Default::default()
            })
            .await
            .expect("join")
            .into_inner()
            .queue_token;
        tokens.push(token.clone());
        let fan = Arc::new(Mutex::new(Seen::default()));
        seen.insert(i, fan.clone());
        tasks.push(tokio::spawn(watch(token, home, channels[0].clone(), fan)));
    }
    operator(channels[1].clone())
        .open_sale(common::open_general_now("ev"))
        .await
        .expect("open");

    // Let admissions start, then measure the cluster's rate over 10 s, killing node 3 halfway.
    let deadline = Instant::now() + Duration::from_secs(30);
    while admitted_total(&mut ops).await < 3 {
        assert!(Instant::now() < deadline, "nobody was admitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (start, t0) = (admitted_total(&mut ops).await, Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut nodes = nodes;
    let mut killed = nodes.pop().expect("node 3");
    killed.child.kill().expect("SIGKILL node 3");
    let _ = killed.child.wait();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (end, elapsed) = (admitted_total(&mut ops).await, t0.elapsed());
    let admitted = end - start;
    let expected = elapsed.as_secs_f64() * 2.0;
    assert!(
        (admitted as f64) <= expected * 1.5 + 2.0 && (admitted as f64) >= expected * 0.5,
        "{admitted} admitted in {elapsed:?} at 2 a second for the cluster (3 nodes each \
         admitting at the full rate would give ~{:.0})",
        expected * 3.0
    );

    // A node started after the opening (as one restarted would be) serves the same proof, which
    // holds, names every fan, and carries the commitment published before the joins.
    let late = Node::start(&database.url, &namespace);
    for channel in [late.channel().await, channels[0].clone()] {
        let chunks = taquilla_proto::fairness::download(channel, "ev")
            .await
            .expect("proof");
        let downloaded = taquilla_proto::fairness::assemble(chunks).expect("assembles");
        assert_eq!(downloaded.header.commitment, commitments[0]);
        let proof = downloaded.proof.expect("revealed at opening");
        taquilla_proto::fairness::verify(&proof).expect("the shuffle verifies");
        assert_eq!(proof.entries.len(), FANS);
        for token in &tokens {
            assert!(taquilla_proto::fairness::find_fan(&proof, token).is_some());
        }
    }
    drop(late);

    // Node 3's watchers came back through node 1 with their tokens and kept their places.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let missing: Vec<usize> = (0..FANS)
            .filter(|i| i % 3 == 2)
            .filter(|i| {
                let seen = seen[i].lock().expect("lock");
                seen.pass.is_none() && seen.reconnections.is_empty()
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fans {missing:?} of the killed node never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut reconnected = 0;
    for i in (0..FANS).filter(|i| i % 3 == 2) {
        let seen = seen[&i].lock().expect("lock").clone();
        for (before, after) in &seen.reconnections {
            reconnected += 1;
            let state = pb::QueueState::try_from(after.state).expect("state");
            assert!(
                matches!(state, pb::QueueState::Waiting | pb::QueueState::Admitted),
                "fan {i} lost its place: {after:?}"
            );
            if state == pb::QueueState::Waiting {
                assert!(
                    after.position <= *before,
                    "fan {i} moved back from {before} to {}",
                    after.position
                );
            }
        }
    }
    assert!(reconnected > 0, "node 3 had no waiting watchers to move");

    // A fan admitted through the cluster buys on node 2; the audit on node 1 is clean.
    let pass = loop {
        if let Some(pass) = seen
            .values()
            .find_map(|s| s.lock().expect("lock").pass.clone())
        {
            break pass;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut sales = pb::sales_client::SalesClient::with_interceptor(
        channels[1].clone(),
        common::PassInterceptor(pass.parse().expect("ascii pass")),
    );
    let hold = sales
        .hold_seats(common::best("ev", "a", 2))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    let order = common::checkout_hold(&mut sales, hold.hold_id, "checkout-multi-1".into()).await;
    let order = common::pay_order(&mut sales, order.order_id, "pay-multi-0001".into()).await;
    assert_eq!(order.state, pb::OrderState::Paid as i32);
    let report = ops
        .audit(pb::AuditRequest {
            event_id: "ev".into(),
        })
        .await
        .expect("audit")
        .into_inner();
    assert!(report.ok, "{report:#?}");

    for task in tasks {
        task.abort();
    }
    drop(nodes);
    database.drop_database().await;
}
