//! The real `taquilla-ops` binary against a real server started by the test, on the embedded
//! backend and on PostgreSQL: every command, JSON output parsed back, and the error cases.

use std::process::Output;

use serde_json::Value;
use sqlx::Connection;
use taquilla_proto::v1 as pb;
use taquilla_test_support::{
    Backend, Backing, LocalServer, OPERATOR_TOKEN as TOKEN, private_ca, test_config,
};

struct Server {
    server: LocalServer,
    backing: Backing,
}

async fn start(postgres: bool) -> Server {
    // The distributed backend: PostgreSQL for the inventory, Redis for the waiting room.
    let backend = if postgres {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let backing = Backing::new(backend).await;
    Server {
        server: LocalServer::start(&backing.config)
            .await
            .expect("server starts"),
        backing,
    }
}

impl Server {
    fn url(&self) -> String {
        self.server.url()
    }

    /// Runs `taquilla-ops ARGS` against this server.
    async fn ops(&self, args: &[&str]) -> Output {
        let mut command = assert_cmd::Command::cargo_bin("taquilla-ops").expect("binary");
        command
            .env_clear()
            .args(["--server", &self.url(), "--token", TOKEN])
            .args(args)
            .timeout(std::time::Duration::from_secs(60));
        tokio::task::spawn_blocking(move || command.output().expect("run"))
            .await
            .expect("join")
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.ops(args).await;
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(self.ok(&all).await.trim()).expect("JSON output")
    }

    async fn stop(self) {
        self.server.stop().await.expect("clean stop");
        self.backing.drop_database().await;
    }
}

/// One line on stderr and a non-zero exit code.
fn assert_one_line_error(out: &Output, words: &str) {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(words),
        "{stderr:?} should mention {words:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Status {"),
        "{stderr}"
    );
}

/// Buys one seat of `event` as an operator acting for a fan; returns the order id and the
/// ticket's code.
async fn buy(server: &Server, event: &str) -> (String, String) {
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut sales = pb::sales_client::SalesClient::new(channel);
    fn with<T>(message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {TOKEN}").parse().expect("ascii"),
        );
        r.metadata_mut()
            .insert("x-fan-id", "box-office-fan".parse().expect("ascii"));
        r
    }
    let hold = sales
        .hold_seats(with(pb::HoldSeatsRequest {
            event_id: event.into(),
            selection: Some(pb::hold_seats_request::Selection::BestAvailable(
                pb::BestAvailable {
                    section_id: "a".into(),
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
        .checkout(with(pb::CheckoutRequest {
            hold_id: hold.hold_id,
            idempotency_key: "ops-test-checkout".into(),
        }))
        .await
        .expect("checkout")
        .into_inner()
        .order
        .expect("order");
    let paid = sales
        .pay(with(pb::PayRequest {
            order_id: order.order_id.clone(),
            idempotency_key: "ops-test-payment".into(),
            card: Some(pb::Card {
                number: "4242424242424242".into(),
                exp_month: 12,
                exp_year: 2099,
                cvc: "123".into(),
            }),
        }))
        .await
        .expect("pay")
        .into_inner()
        .order
        .expect("order");
    let code = paid.tickets.first().expect("a ticket").code.clone();
    (order.order_id, code)
}

/// Runs `taquilla-ops ARGS` with no server at all (a closed port), as a door scanner offline.
async fn offline(args: &[&str]) -> Output {
    let mut command = assert_cmd::Command::cargo_bin("taquilla-ops").expect("binary");
    command
        .env_clear()
        .args(["--server", "http://127.0.0.1:1"])
        .args(args)
        .timeout(std::time::Duration::from_secs(60));
    tokio::task::spawn_blocking(move || command.output().expect("run"))
        .await
        .expect("join")
}

/// The pre-queue's shuffle checked from the command line: the commitment before opening, the
/// manifest saved after, verified against the server and offline, a fan's own place found with
/// their queue token, and a tampered entry, a wrong seed and another commitment each refused.
async fn the_shuffle_is_verified_from_the_command_line(postgres: bool) {
    let server = start(postgres).await;
    server.json(&["seed", "lux-tour"]).await;
    let event = "lux-bcn-2026-04-13";
    let before = server.json(&["shuffle", "commitment", event]).await;
    assert_eq!(before["revealed"], false);
    let commitment = before["commitment"]
        .as_str()
        .expect("commitment")
        .to_string();
    assert_eq!(commitment.len(), 64);
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("manifest.json");
    let path = file.to_str().expect("utf-8 path");
    let early = server
        .ops(&["shuffle", "manifest", event, "--out", path])
        .await;
    assert_one_line_error(&early, "has not opened");

    // The sale is scheduled with its presale code; fans join the pre-queue, every fourth
    // with the code.
    server
        .json(&[
            "sale", "open", event, "--phase", "general", "--at", "+1h", "--code", "FANCLUB",
        ])
        .await;
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut room = pb::waiting_room_client::WaitingRoomClient::new(channel);
    let mut tokens = Vec::new();
    for i in 0..40 {
        let joined = room
            .join(pb::JoinRequest {
                event_id: event.into(),
                fingerprint: format!("cli-fan-{i}"),
                presale_code: if i % 4 == 0 {
                    "FANCLUB".into()
                } else {
                    String::new()
                },
                pow_solution: None,
            })
            .await
            .expect("join")
            .into_inner();
        let status = joined.status.expect("status");
        assert_eq!(
            status.shuffle_commitment, commitment,
            "told in the pre-queue"
        );
        tokens.push(joined.queue_token);
    }
    server
        .json(&[
            "sale", "open", event, "--phase", "general", "--code", "FANCLUB",
        ])
        .await;

    // Saved, then verified against the server and from the file.
    server
        .ok(&["shuffle", "manifest", event, "--out", path])
        .await;
    let online = server
        .json(&["shuffle", "verify", event, "--commitment", &commitment])
        .await;
    assert_eq!(online["verified"], true, "{online}");
    assert_eq!(online["entries"], 40);
    let fan = 5;
    let offline_check = offline(&[
        "shuffle",
        "verify",
        event,
        "--manifest",
        path,
        "--commitment",
        &commitment,
        "--queue-token",
        &tokens[fan],
        "--output",
        "json",
    ])
    .await;
    assert!(offline_check.status.success(), "{offline_check:?}");
    let checked: Value = serde_json::from_slice(&offline_check.stdout).expect("JSON");
    assert_eq!(checked["verified"], true);
    assert_eq!(checked["fan"]["join_index"], fan);
    let watched = room
        .watch(pb::WatchRequest {
            queue_token: tokens[fan].clone(),
            join: None,
        })
        .await
        .expect("watch")
        .into_inner()
        .message()
        .await
        .expect("a message")
        .expect("status")
        .status
        .expect("status");
    assert_eq!(
        checked["fan"]["position_at_opening"], watched.initial_position,
        "the proof's place is the one the fan was given"
    );
    let table = offline(&["shuffle", "verify", event, "--manifest", path]).await;
    assert!(
        String::from_utf8_lossy(&table.stdout)
            .contains("VERIFIED: lux-bcn-2026-04-13's pre-queue of 40 fans"),
        "{table:?}"
    );

    // A changed entry, a wrong seed, a commitment other than the one recorded: refused.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
    let mut tampered = saved.clone();
    let entry = tampered["entries"][3]["entry"]
        .as_str()
        .expect("hex")
        .to_string();
    let flipped = if entry.starts_with('0') { "1" } else { "0" };
    tampered["entries"][3]["entry"] = Value::from(format!("{flipped}{}", &entry[1..]));
    let said = refused(dir.path(), event, "tampered.json", tampered, &[]).await;
    assert!(
        said.contains("NOT VERIFIED") && said.contains("manifest was changed"),
        "{said}"
    );
    let mut wrong_seed = saved.clone();
    wrong_seed["seed"] = Value::from("00".repeat(32));
    let said = refused(dir.path(), event, "seed.json", wrong_seed, &[]).await;
    assert!(said.contains("not the one committed to"), "{said}");
    let said = refused(
        dir.path(),
        event,
        "commitment.json",
        saved,
        &["--commitment", &"ab".repeat(32)],
    )
    .await;
    assert!(
        said.contains("not the one recorded before opening"),
        "{said}"
    );
    server.stop().await;
}

/// Verifies a changed copy of a saved proof offline, which must fail; returns what it said.
async fn refused(
    dir: &std::path::Path,
    event: &str,
    name: &str,
    proof: Value,
    extra: &[&str],
) -> String {
    let file = dir.join(name);
    std::fs::write(&file, proof.to_string()).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let mut args = vec!["shuffle", "verify", event, "--manifest", path];
    args.extend(extra);
    let out = offline(&args).await;
    assert!(!out.status.success(), "{name}: must fail");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffle_embedded() {
    the_shuffle_is_verified_from_the_command_line(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffle_postgres_and_redis() {
    the_shuffle_is_verified_from_the_command_line(true).await;
}

/// The ticket keys exported for door scanners, a code checked offline with them, and the
/// door's check-in: once, then refused with where it was first scanned.
async fn tickets_at_the_door(server: &Server, code: &str) {
    let keys = server.ok(&["tickets", "keys"]).await;
    assert!(keys.contains("k1") && keys.contains("active"), "{keys}");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("ticket-keys.json");
    let file = file.to_str().expect("utf-8 path");
    let exported = server
        .ok(&["tickets", "keys", "export", "--out", file])
        .await;
    assert!(exported.contains("wrote 1 public keys"), "{exported}");

    let valid = offline(&["tickets", "verify", code, "--keys", file]).await;
    assert!(valid.status.success(), "{valid:?}");
    assert!(String::from_utf8_lossy(&valid.stdout).starts_with("VALID"));
    let mut forged = code.to_string();
    let at = forged.len() - 3;
    forged.replace_range(at..at + 1, if &code[at..at + 1] == "A" { "B" } else { "A" });
    let refused = offline(&["tickets", "verify", &forged, "--keys", file]).await;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("REFUSE"));
    assert_one_line_error(
        &offline(&[
            "tickets",
            "verify",
            code,
            "--keys",
            "/nonexistent/keys.json",
        ])
        .await,
        "cannot read",
    );

    let admitted = server
        .ok(&["tickets", "check-in", code, "--gate", "north-3"])
        .await;
    assert!(admitted.starts_with("ADMIT"), "{admitted}");
    let again = server
        .ops(&[
            "tickets", "check-in", code, "--gate", "south-1", "--output", "json",
        ])
        .await;
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    let again: Value = serde_json::from_slice(&again.stdout).expect("JSON");
    assert_eq!(again["admitted"], false);
    assert_eq!(again["first_scan_gate"], "north-3");
    assert!(again["first_scan_at_unix_ms"].as_i64().is_some(), "{again}");
}

async fn run_a_sale_from_the_command_line(postgres: bool) {
    let server = start(postgres).await;
    // Seed and list.
    let seeded = server.json(&["seed", "lux-tour"]).await;
    assert_eq!(seeded["seats_created"], 142_000);
    assert_eq!(seeded["events"].as_array().map(Vec::len), Some(8));
    let events = server.json(&["events"]).await;
    let capacity: u64 = events
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["capacity"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(capacity, 142_000);
    let table = server.ok(&["events"]).await;
    assert!(
        table.contains("17,500") && table.contains("Movistar Arena"),
        "{table}"
    );

    // An event from the shipped layout file.
    let layout = concat!(env!("CARGO_MANIFEST_DIR"), "/layouts/sala-demo.toml");
    let created = server
        .ok(&[
            "event",
            "create",
            "--layout",
            layout,
            "--id",
            "demo-1",
            "--name",
            "Demo Night",
            "--artist",
            "Band",
            "--starts-at",
            "2026-12-31T21:00:00Z",
            "--fee",
            "5.50",
        ])
        .await;
    assert!(
        created.contains("demo-1") && created.contains("2026-12-31 21:00 UTC"),
        "{created}"
    );

    // Run the sale.
    let opened = server
        .json(&[
            "sale", "open", "demo-1", "--phase", "presale", "--code", "FANCLUB",
        ])
        .await;
    assert_eq!(opened["sale_state"], "OPEN");
    assert_eq!(opened["sale_phase"], "PRESALE");
    let admission = server
        .json(&[
            "admission",
            "set",
            "demo-1",
            "--rate",
            "600/min",
            "--max-active",
            "100",
        ])
        .await;
    assert_eq!(admission["rate_per_minute"], 600);
    assert_eq!(admission["burst"], 10);
    // The automatic valve, capped, on another event: recorded, and shown where it starts.
    let auto = server
        .json(&[
            "admission",
            "set",
            "lux-mad-2026-03-30",
            "--auto",
            "--max-active",
            "300",
        ])
        .await;
    assert_eq!(auto["auto"], true);
    assert_eq!(auto["max_active"], 300);
    assert_eq!(auto["rate_per_minute"], 1_000_000, "no rate cap given");
    assert_eq!(auto["auto_limit"], 20);
    let auto_stats = server.json(&["stats", "lux-mad-2026-03-30"]).await;
    assert_eq!(auto_stats["auto"], true, "read back from the store");
    assert_eq!(auto_stats["auto_limit"], 20);
    let table = server
        .ok(&["admission", "set", "lux-bcn-2026-04-13", "--auto"])
        .await;
    assert!(
        table.contains("automatic valve, 20 buying at once now"),
        "{table}"
    );
    let stats = server.json(&["stats", "demo-1"]).await;
    assert_eq!(stats["sale_state"], "OPEN");
    assert_eq!(stats["capacity"], 400 + 60 + 300);
    assert_eq!(stats["shuffle_seed"].as_str().map(str::len), Some(64));
    assert_eq!(stats["shuffle_commitment"].as_str().map(str::len), Some(64));
    let top = server
        .ok(&[
            "top",
            "demo-1",
            "--count",
            "2",
            "--interval",
            "0.25",
            "--output",
            "json",
        ])
        .await;
    let lines: Vec<Value> = top
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["event_id"], "demo-1");
    let alert = server
        .json(&[
            "broadcast",
            "demo-1",
            "Doors at 21:00",
            "--severity",
            "warning",
        ])
        .await;
    assert_eq!(alert["message"], "Doors at 21:00");
    assert_eq!(alert["severity"], "WARNING");
    assert_eq!(
        server
            .json(&["ban", "--fingerprint", "bot-42", "--reason", "scripted"])
            .await["removed_entries"],
        0
    );
    let opened = server
        .json(&["sale", "open", "demo-1", "--phase", "general"])
        .await;
    assert_eq!(opened["sale_phase"], "GENERAL");
    assert_eq!(
        server.json(&["sale", "pause", "demo-1"]).await["sale_state"],
        "PAUSED"
    );
    assert_eq!(
        server.json(&["sale", "resume", "demo-1"]).await["sale_state"],
        "OPEN"
    );

    // Orders, refunds and the audit.
    let (order_id, code) = buy(&server, "demo-1").await;
    tickets_at_the_door(&server, &code).await;
    let orders = server.json(&["orders", "demo-1", "--state", "paid"]).await;
    assert_eq!(orders.as_array().map(Vec::len), Some(1));
    assert_eq!(orders[0]["order_id"], order_id.as_str());
    assert_eq!(orders[0]["total"]["amount_minor"], 5_500 + 550);
    let table = server.ok(&["orders", "demo-1"]).await;
    assert!(table.contains("60.50 EUR"), "{table}");
    let refunded = server
        .json(&["refund", &order_id, "--return-seats", "--reason", "test"])
        .await;
    assert_eq!(refunded[0]["state"], "REFUNDED");
    let audit = server.json(&["audit", "demo-1"]).await;
    assert_eq!(audit["ok"], true);
    assert!(
        server
            .ok(&["audit", "demo-1"])
            .await
            .contains("all invariants hold")
    );
    assert_eq!(
        server.json(&["sale", "close", "demo-1"]).await["sale_state"],
        "CLOSED"
    );

    // Errors: one clear line and a non-zero exit code.
    assert_one_line_error(
        &server.ops(&["stats", "no-such-event"]).await,
        "there is no event",
    );
    let mut wrong = assert_cmd::Command::cargo_bin("taquilla-ops").expect("binary");
    wrong.env_clear().args([
        "--server",
        &server.url(),
        "--token",
        "wrong",
        "stats",
        "demo-1",
    ]);
    let wrong = tokio::task::spawn_blocking(move || wrong.output().expect("run"))
        .await
        .expect("join");
    assert_one_line_error(&wrong, "operator token");
    assert_one_line_error(
        &server
            .ops(&[
                "admission",
                "set",
                "demo-1",
                "--rate",
                "0",
                "--max-active",
                "5",
            ])
            .await,
        "above zero",
    );
    assert_one_line_error(
        &server
            .ops(&[
                "admission",
                "set",
                "demo-1",
                "--rate",
                "lots",
                "--max-active",
                "5",
            ])
            .await,
        "per minute",
    );
    assert_one_line_error(
        &server
            .ops(&[
                "admission",
                "set",
                "demo-1",
                "--rate",
                "-5",
                "--max-active",
                "5",
            ])
            .await,
        "above zero",
    );
    assert_one_line_error(
        &server.ops(&["sale", "pause", "demo-1"]).await,
        "only an open sale can be paused",
    );

    // A broken invariant makes the audit exit 1 and say which.
    if !postgres {
        let db = server.backing.data_dir.path().join("taquilla.db");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("db");
        sqlx::query("UPDATE seats SET status = 'SOLD', order_id = 'o_forged', sold_to = 'x', sold_at = 1 WHERE event_id = 'demo-1' AND seat_id = 500")
            .execute(&mut conn)
            .await
            .expect("corrupt");
        let out = server.ops(&["audit", "demo-1"]).await;
        assert_eq!(out.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("FAIL") && stdout.contains("sold_seat_has_one_ticket"),
            "{stdout}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded() {
    run_a_sale_from_the_command_line(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    run_a_sale_from_the_command_line(true).await;
}

#[test]
fn unreachable_server_is_one_line() {
    let out = assert_cmd::Command::cargo_bin("taquilla-ops")
        .expect("binary")
        .env_clear()
        .args(["--server", "http://127.0.0.1:1", "--token", "t", "events"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("run");
    assert_one_line_error(&out, "cannot reach the server");
    let out = assert_cmd::Command::cargo_bin("taquilla-ops")
        .expect("binary")
        .env_clear()
        .args(["--server", "not a url", "events"])
        .output()
        .expect("run");
    assert_one_line_error(&out, "not a server address");
    let help = assert_cmd::Command::cargo_bin("taquilla-ops")
        .expect("binary")
        .args(["sale", "open", "--help"])
        .output()
        .expect("run");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Example"));
}

/// The gRPC port over TLS: the CLI trusts the server through --tls-ca, by name or by address;
/// without the CA, or speaking plain HTTP/2 to it, it is refused with one line that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_certificate_authority() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ca, cert, key) = private_ca("Taquilla test CA");
    let path = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path.to_string_lossy().into_owned()
    };
    let (ca, cert, key) = (
        path("ca.pem", &ca),
        path("server.pem", &cert),
        path("server.key", &key),
    );
    let mut config = test_config(dir.path().join("data"));
    config.tls_cert = Some(cert.clone().into());
    config.tls_key = Some(key.into());
    let server = LocalServer::start(&config)
        .await
        .expect("TLS server starts");
    let port = server.addr.port();
    let ops = |args: Vec<String>| async move {
        let mut command = assert_cmd::Command::cargo_bin("taquilla-ops").expect("binary");
        command
            .env_clear()
            .args(["--token", TOKEN])
            .args(&args)
            .timeout(std::time::Duration::from_secs(60));
        tokio::task::spawn_blocking(move || command.output().expect("run"))
            .await
            .expect("join")
    };
    let args = |server: String, extra: &[&str]| {
        let mut args = vec!["--server".to_string(), server];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("seed".into());
        args.push("lux-tour".into());
        args
    };

    for address in [
        format!("https://localhost:{port}"),
        format!("https://127.0.0.1:{port}"),
    ] {
        let out = ops(args(address.clone(), &["--tls-ca", &ca])).await;
        assert!(
            out.status.success(),
            "{address}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("lux-mad-2026-03-30"));
    }
    // The system's authorities do not know this CA.
    let out = ops(args(format!("https://localhost:{port}"), &[])).await;
    assert_one_line_error(&out, "certificate");
    // The certificate names localhost and 127.0.0.1, not tickets.example.
    let out = ops(args(
        format!("https://127.0.0.1:{port}"),
        &["--tls-ca", &ca, "--tls-domain", "tickets.example"],
    ))
    .await;
    assert_one_line_error(&out, "certificate");
    // Plain HTTP/2 to a TLS port gets no answer.
    let out = ops(args(format!("http://127.0.0.1:{port}"), &[])).await;
    assert!(!out.status.success());
    // TLS options with a plain address are a mistake, said as such.
    let out = ops(args(format!("http://127.0.0.1:{port}"), &["--tls-ca", &ca])).await;
    assert_one_line_error(&out, "not an https:// address");
    // A CA file that is not there.
    let missing = dir
        .path()
        .join("missing.pem")
        .to_string_lossy()
        .into_owned();
    let out = ops(args(
        format!("https://localhost:{port}"),
        &["--tls-ca", &missing],
    ))
    .await;
    assert_one_line_error(&out, "cannot read the TLS CA file");
    server.stop().await.expect("clean stop");
}
