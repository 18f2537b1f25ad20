//! The CI preset of the sale: the real `taquilla-loadgen` binary sends 2,000 goose fans at a
//! real server for a 1,000-seat event, on the embedded backend and then on the distributed one
//! (two server nodes sharing PostgreSQL and the Redis waiting room, the fans spread over both),
//! with the waiting room on one Redis server and on a Redis Cluster of three primaries; it
//! must sell out with a clean integrity verdict. And the verdict must be able to fail: a seat sold behind the
//! run's back makes the server's count disagree with the run's ledger, and the run exits 1.

use std::io::Read;
use std::process::Output;

use taquilla_proto::v1 as pb;
use taquilla_test_support::{Backend, Backing, LocalServer, OPERATOR_TOKEN as TOKEN};

struct Server {
    /// Every node's URL, comma-separated (the load generator spreads fans over them).
    url: String,
    nodes: Vec<LocalServer>,
    backing: Backing,
}

/// The embedded backend (one node), or a distributed one: two nodes sharing a fresh
/// PostgreSQL database and a Redis namespace (on one server or on the cluster).
async fn start(backend: Backend) -> Server {
    let distributed = backend != Backend::Sqlite;
    let mut backing = Backing::new(backend).await;
    // The server's own bound on sales calls at once (sixteen per pooled connection): the crowd
    // goes past it, is told to come back in a moment, and does.
    backing.config.max_inflight_sales = 0;
    let mut nodes = Vec::new();
    if distributed {
        nodes.push(
            LocalServer::start(&backing.config)
                .await
                .expect("node 1 starts"),
        );
    }
    nodes.push(
        LocalServer::start(&backing.config)
            .await
            .expect("server starts"),
    );
    Server {
        url: nodes
            .iter()
            .map(LocalServer::url)
            .collect::<Vec<_>>()
            .join(","),
        nodes,
        backing,
    }
}

impl Server {
    async fn loadgen(&self, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_taquilla-loadgen"));
        command
            .env_clear()
            .args(["--target", &self.url, "--token", TOKEN])
            .args(args)
            // goose's own summary is long; the verdict is what the test reads.
            .args(["--", "--no-print-metrics", "--quiet"]);
        tokio::task::spawn_blocking(move || {
            // Bounded: a run that hangs fails the test instead of the whole CI run.
            let mut child = command
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("loadgen runs");
            let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
                std::thread::spawn(move || {
                    let mut bytes = Vec::new();
                    if let Some(mut pipe) = pipe {
                        let _ = pipe.read_to_end(&mut bytes);
                    }
                    bytes
                })
            };
            let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
            let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
            let started = std::time::Instant::now();
            let status = loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    break status;
                }
                if started.elapsed() > std::time::Duration::from_secs(600) {
                    let _ = child.kill();
                    let out = stdout.join().unwrap_or_default();
                    panic!(
                        "the load generator ran over 10 minutes: {}",
                        String::from_utf8_lossy(&out)
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            };
            Output {
                status,
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            }
        })
        .await
        .expect("join")
    }

    async fn stop(self) {
        for node in self.nodes {
            node.stop().await.expect("clean stop");
        }
        self.backing.drop_database().await;
    }
}

/// The first "server sold N of C, this run was told it bought T" line of a report.
fn sold_and_told(report: &str) -> (u64, u64, u64) {
    let line = report
        .lines()
        .find(|l| l.contains("server sold"))
        .unwrap_or_else(|| panic!("no sold line in {report}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    match numbers.as_slice() {
        [.., sold, capacity, told] => (*sold, *capacity, *told),
        _ => panic!("unreadable sold line {line:?}"),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn the_small_sale_sells_out_cleanly(backend: Backend) {
    let server = start(backend).await;
    let results = tempfile::tempdir().expect("temp dir");
    let out_dir = results.path().to_string_lossy().into_owned();
    let out = server
        .loadgen(&[
            "--scenario",
            "small",
            "--users",
            "2000",
            "--hatch-rate",
            "1000",
            "--duration",
            "120",
            "--prequeue-seconds",
            "2",
            "--out",
            &out_dir,
        ])
        .await;
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("integrity: OK"), "{report}");
    // The fans who joined in the first two seconds were shuffled at opening: the proof holds
    // and every one of them who saw the opening was given the place it gives.
    let (in_prequeue, checked) = report
        .lines()
        .find_map(|l| {
            let rest = l.split("shuffle verified: ").nth(1)?;
            let mut words = rest.split_whitespace();
            let fans: u64 = words.next()?.parse().ok()?;
            let checked: u64 = rest
                .split(", ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some((fans, checked))
        })
        .unwrap_or_else(|| panic!("no shuffle line: {report}"));
    assert!(
        in_prequeue >= 100,
        "{in_prequeue} fans in the pre-queue: {report}"
    );
    assert!(
        checked >= 100,
        "{checked} fans checked their places: {report}"
    );
    assert!(!report.contains(" not\n"), "{report}");
    // (The small sale admits its whole crowd at once: no fan waits in line with an ETA.)
    assert!(report.contains("ETA"), "{report}");
    // Fans who let their hold go near the end may leave a few seats unsold when nobody is
    // left to take them; what was sold must be exactly what the fans were told.
    let (sold, capacity, told) = sold_and_told(&report);
    assert_eq!((sold, capacity), (told, 1_000), "{report}");
    assert!(
        sold >= 900,
        "the crowd of 2,000 bought only {sold} of 1,000: {report}"
    );
    if sold == capacity {
        assert!(report.contains("time to sell out:"), "{report}");
    }
    for stage in [
        "join",
        "time in queue",
        "hold",
        "checkout",
        "pay",
        "end to end",
    ] {
        assert!(report.contains(stage), "stage {stage} missing: {report}");
    }
    // The timeline chart: a picture of the run with every series, drawn from what happened.
    let chart = std::fs::read_to_string(results.path().join("timeline.svg")).expect("timeline.svg");
    assert!(chart.starts_with("<svg"), "{chart}");
    for series in [
        "tickets/s",
        "fans waiting",
        "admitted per minute",
        "shed calls/s",
        "joins told to come back/s",
        "p99 join",
        "p99 hold",
        "p99 checkout",
        "p99 pay",
    ] {
        assert!(
            chart.contains(&format!("data-series=\"{series}\"")),
            "series {series} missing"
        );
    }
    let csv = std::fs::read_to_string(results.path().join("timeline.csv")).expect("timeline.csv");
    let tickets: f64 = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1)?.parse::<f64>().ok())
        .sum::<f64>()
        * 5.0;
    assert_eq!(
        tickets.round() as u64,
        told,
        "the chart's tickets are the run's: {csv}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_sale_sells_out_cleanly_embedded() {
    the_small_sale_sells_out_cleanly(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_sale_sells_out_cleanly_on_two_nodes_with_postgres_and_redis() {
    the_small_sale_sells_out_cleanly(Backend::Postgres).await;
}

/// The same sale with the waiting room, the shared rate limits and the abuse log on a Redis
/// Cluster of three primaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_sale_sells_out_cleanly_on_two_nodes_with_a_redis_cluster() {
    the_small_sale_sells_out_cleanly(Backend::RedisCluster).await;
}

fn with_token<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("ascii"),
    );
    request
        .metadata_mut()
        .insert("x-fan-id", "box-office".parse().expect("ascii"));
    request
}

/// Creates `event_id` (one standing area of `capacity`, at most 2 per fan), opens its general
/// sale and lets fans in quickly.
async fn create_open_event(channel: tonic::transport::Channel, event_id: &str, capacity: u32) {
    let mut operator = pb::operator_client::OperatorClient::new(channel);
    operator
        .create_event(with_token(pb::CreateEventRequest {
            event_id: event_id.into(),
            name: "Side door".into(),
            artist: "Nobody".into(),
            starts_at_unix_ms: 1_900_000_000_000,
            currency: "EUR".into(),
            fee_per_ticket_minor: 0,
            max_tickets_per_fan: 2,
            layout: Some(pb::create_event_request::Layout::LayoutToml(format!(
                "[venue]\nid = \"v\"\nname = \"V\"\ncity = \"Madrid\"\n\n[[sections]]\nid = \"ga\"\nname = \"GA\"\nkind = \"general_admission\"\nprice = 10.00\ncapacity = {capacity}\n"
            ))),
        }))
        .await
        .expect("event");
    operator
        .open_sale(with_token(pb::OpenSaleRequest {
            event_id: event_id.into(),
            phase: pb::SalePhase::General as i32,
            opens_at_unix_ms: 0,
            presale_codes: Vec::new(),
        }))
        .await
        .expect("open");
    operator
        .set_admission(with_token(pb::SetAdmissionRequest {
            event_id: event_id.into(),
            rate_per_minute: 60_000,
            burst: 500,
            max_active: 500,
            pow_difficulty_bits: 0,
            auto: false,
        }))
        .await
        .expect("admission");
}

async fn connect(url: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_the_run_was_not_told_about_fails_the_verdict() {
    let server = start(Backend::Sqlite).await;
    let channel = connect(&server.url).await;
    create_open_event(channel.clone(), "side-door", 30).await;
    // One ticket sold at the box office, not by the run.
    let mut sales = pb::sales_client::SalesClient::new(channel);
    let hold = sales
        .hold_seats(with_token(pb::HoldSeatsRequest {
            event_id: "side-door".into(),
            selection: Some(pb::hold_seats_request::Selection::BestAvailable(
                pb::BestAvailable {
                    section_id: "ga".into(),
                    quantity: 1,
                },
            )),
        }))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    let order = sales
        .checkout(with_token(pb::CheckoutRequest {
            hold_id: hold.hold_id,
            idempotency_key: "box-office-checkout".into(),
        }))
        .await
        .expect("checkout")
        .into_inner()
        .order
        .expect("order");
    sales
        .pay(with_token(pb::PayRequest {
            order_id: order.order_id,
            idempotency_key: "box-office-payment".into(),
            card: Some(pb::Card {
                number: "4242424242424242".into(),
                exp_month: 12,
                exp_year: 2099,
                cvc: "123".into(),
            }),
        }))
        .await
        .expect("pay");

    let out = server
        .loadgen(&[
            "--events",
            "side-door",
            "--users",
            "60",
            "--hatch-rate",
            "100",
            "--duration",
            "60",
        ])
        .await;
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("integrity: FAILED"), "{report}");
    assert!(
        report.contains("side-door: the server sold 30 tickets but this run was told of 29"),
        "{report}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_merge_into_one_report_and_verdict() {
    let server = start(Backend::Sqlite).await;
    create_open_event(connect(&server.url).await, "sharded", 300).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = |i: usize| dir.path().join(format!("shard-{i}")).display().to_string();
    let (one, two) = (out(1), out(2));
    let run = |shard: &'static str, out: String| {
        let url = server.url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_taquilla-loadgen"))
                .env_clear()
                .args(["--target", &url, "--token", TOKEN, "--events", "sharded"])
                .args(["--users", "300", "--hatch-rate", "500", "--duration", "60"])
                .args(["--shard", shard, "--out", &out])
                // Every hold is bought, so the 300 seats all sell and the totals are exact.
                .args(["--abandon-share", "0"])
                .args(["--", "--no-print-metrics", "--quiet"])
                .output()
                .expect("loadgen runs")
        })
    };
    let (a, b) = (run("1/2", one.clone()), run("2/2", two.clone()));
    let (a, b) = (a.await.expect("join"), b.await.expect("join"));
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", text(out));
        // A shard alone cannot compare its ledger with the whole sale.
        assert!(text(out).contains("integrity: OK"), "{}", text(out));
    }
    for file in [
        "stages.hlog",
        "percentiles.csv",
        "ledger.csv",
        "summary.json",
        "report.txt",
    ] {
        assert!(dir.path().join("shard-1").join(file).exists(), "{file}");
    }
    let merged = std::process::Command::new(env!("CARGO_BIN_EXE_taquilla-loadgen"))
        .args(["merge", &one, &two])
        .output()
        .expect("merge runs");
    let report = text(&merged);
    assert!(merged.status.success(), "{report}");
    assert!(report.contains("600 fans in 2 shards"), "{report}");
    assert!(
        report.contains("sharded: server sold 300 of 300, this run was told it bought 300"),
        "{report}"
    );
    assert!(report.contains("integrity: OK"), "{report}");
    // One shard alone is not the whole sale: no exact comparison, and it says so.
    let partial = std::process::Command::new(env!("CARGO_BIN_EXE_taquilla-loadgen"))
        .args(["merge", &one])
        .output()
        .expect("merge runs");
    assert!(
        text(&partial).contains("not all present"),
        "{}",
        text(&partial)
    );
    server.stop().await;
}
