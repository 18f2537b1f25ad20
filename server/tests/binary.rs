//! The real `taquilla-server` binary: configuration mistakes end in one clear line and a
//! non-zero exit (never a panic or a hang), and SIGTERM drains and exits cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn server(data_dir: &std::path::Path) -> Command {
    let mut command = bare_server();
    command.arg("--data-dir").arg(data_dir);
    command
}

/// The server with loopback ports and a short connect timeout, but no data dir.
fn bare_server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taquilla-server"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--connect-timeout", "2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Waits for the child to exit, killing it after `limit`.
fn wait_with_limit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the server did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the server with `args` and returns (success, stderr).
fn run_expecting_exit(args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = if args.contains(&"--data-dir") {
        bare_server()
    } else {
        server(dir.path())
    };
    let mut child = command.args(args).spawn().expect("spawn");
    let status = wait_with_limit(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
    }
    (status.success(), stderr)
}

fn assert_one_clear_error(args: &[&str], expected: &str) {
    let (success, stderr) = run_expecting_exit(args);
    assert!(!success, "{args:?} should fail; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("taquilla-server:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected in: {stderr}");
    assert!(
        errors[0].contains(expected),
        "{:?} should mention {expected:?}",
        errors[0]
    );
}

#[test]
fn unsupported_database_url() {
    assert_one_clear_error(
        &["--database-url", "mysql://root@127.0.0.1/test"],
        "unsupported database URL scheme \"mysql\"",
    );
}

#[test]
fn malformed_postgres_url() {
    assert_one_clear_error(&["--database-url", "postgres://[::1"], "is not valid");
}

#[test]
fn unreachable_postgres() {
    assert_one_clear_error(
        &[
            "--database-url",
            "postgres://postgres:secretpw@127.0.0.1:1/taquilla",
        ],
        "PostgreSQL at postgres://postgres@127.0.0.1:1/taquilla",
    );
    let (_, stderr) = run_expecting_exit(&[
        "--database-url",
        "postgres://postgres:secretpw@127.0.0.1:1/taquilla",
    ]);
    assert!(
        !stderr.contains("secretpw"),
        "the password must not be shown: {stderr}"
    );
}

#[test]
fn malformed_and_unreachable_redis() {
    assert_one_clear_error(&["--redis-url", "http://127.0.0.1:6379"], "Redis URL");
    assert_one_clear_error(
        &["--redis-url", "redis://127.0.0.1:1"],
        "Redis at redis://127.0.0.1:1",
    );
}

#[test]
fn unwritable_data_dir() {
    assert_one_clear_error(
        &["--data-dir", "/proc/taquilla-cannot-write-here"],
        "data directory",
    );
}

/// A server process started with `command`, its log lines so far and the rest to come.
struct Running {
    child: Child,
    log: Vec<String>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    /// Spawns `command` and waits (up to 30 s) for "is serving".
    fn start(mut command: Command) -> Running {
        let mut child = command.spawn().expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut running = Running {
            child,
            log: Vec::new(),
            lines,
        };
        running.wait_for_line("is serving", Duration::from_secs(30));
        running
    }

    /// Waits up to `limit` for a log line containing `text`; panics with the log if none.
    fn wait_for_line(&mut self, text: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.log.iter().any(|l| l.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(_) => panic!("no {text:?} within {limit:?}: {:?}", self.log),
            }
        }
    }

    /// The address the "is serving" line gives for `field` (grpc or admin).
    fn addr(&self, field: &str) -> std::net::SocketAddr {
        let prefix = format!("{field}=");
        self.log
            .iter()
            .filter(|l| l.contains("is serving"))
            .flat_map(|l| l.split_whitespace())
            .find_map(|word| word.strip_prefix(prefix.as_str())?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} address in {:?}", self.log))
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    }
}

/// `GET path` on the admin endpoint: the status code, or `None` if nothing answers.
fn admin_status(admin: std::net::SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// The gRPC health check's answer for `service` ("" for the whole server), over a fresh
/// connection (as a load balancer's check opens one); `None` if the port refuses it.
fn grpc_health(grpc: std::net::SocketAddr, service: &str) -> Option<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
            .ok()?
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await
            .ok()?;
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        let reply = client
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .ok()?;
        Some(reply.into_inner().status)
    })
}

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
const NOT_SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Running {
        mut child,
        mut log,
        lines: rx,
    } = Running::start(server(dir.path()));
    // The operator token was generated into the data dir, readable only by this user.
    let token_file = dir.path().join("operator-token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file)
            .expect("token file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).expect("token");
    assert!(
        !log.iter().any(|l| l.contains(token.trim())),
        "the token must not be logged"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = wait_with_limit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    log.extend(rx.try_iter());
    assert!(log.iter().any(|l| l.contains("stopped")), "{log:?}");
}

/// With --drain-delay, SIGTERM turns health NOT_SERVING (gRPC, for the server and each
/// service, and /healthz) while the node still accepts connections and answers calls, for the
/// whole delay; then it stops.
#[test]
fn the_drain_delay_shows_not_serving_while_still_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = server(dir.path());
    command.args(["--drain-delay", "4s", "--log", "info"]);
    let mut running = Running::start(command);
    let (grpc, admin) = (running.addr("grpc"), running.addr("admin"));
    assert_eq!(admin_status(admin, "/healthz"), Some(200));
    assert_eq!(grpc_health(grpc, ""), Some(SERVING));

    let signalled = Instant::now();
    running.signal("-TERM");
    running.wait_for_line(
        "draining: health reports NOT_SERVING",
        Duration::from_secs(10),
    );
    assert_eq!(admin_status(admin, "/healthz"), Some(503));
    for service in [
        "",
        "taquilla.v1.WaitingRoom",
        "taquilla.v1.Sales",
        "taquilla.v1.Operator",
    ] {
        assert_eq!(
            grpc_health(grpc, service),
            Some(NOT_SERVING),
            "service {service:?}: a new connection is still accepted and told NOT_SERVING"
        );
    }
    assert_eq!(
        admin_status(admin, "/metrics"),
        Some(200),
        "the node still serves during the delay"
    );
    assert!(
        running.child.try_wait().expect("try_wait").is_none(),
        "still running inside the delay"
    );

    let status = wait_with_limit(&mut running.child, Duration::from_secs(20));
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took >= Duration::from_secs(4),
        "stopped after {took:?}, before the 4 s delay ended"
    );
    running.log.extend(running.lines.try_iter());
    assert!(
        running.log.iter().any(|l| l.contains("stopped")),
        "{:?}",
        running.log
    );
}

/// A second signal ends a long drain delay at once: graceful exit stays bounded.
#[test]
fn a_second_signal_ends_the_drain_delay() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = server(dir.path());
    command.args(["--drain-delay", "5m", "--log", "info"]);
    let mut running = Running::start(command);
    let grpc = running.addr("grpc");
    running.signal("-TERM");
    running.wait_for_line(
        "draining: health reports NOT_SERVING",
        Duration::from_secs(10),
    );
    assert_eq!(grpc_health(grpc, ""), Some(NOT_SERVING));
    let second = Instant::now();
    running.signal("-INT");
    let status = wait_with_limit(&mut running.child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    assert!(second.elapsed() < Duration::from_secs(20));
    running.log.extend(running.lines.try_iter());
    assert!(
        running
            .log
            .iter()
            .any(|l| l.contains("second signal: ending the drain delay")),
        "{:?}",
        running.log
    );
}

/// `--log-format json` writes one JSON object per line, the message and fields by name.
#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = server(dir.path());
    command.args(["--log-format", "json"]);
    let mut running = Running::start(command);
    running.signal("-TERM");
    let status = wait_with_limit(&mut running.child, Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    running.log.extend(running.lines.try_iter());
    let serving = running
        .log
        .iter()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
        })
        .find(|entry| entry["fields"]["message"] == "taquilla-server is serving")
        .expect("the serving line");
    assert_eq!(serving["level"], "INFO");
    let grpc = serving["fields"]["grpc"].as_str().expect("grpc address");
    assert!(grpc.parse::<std::net::SocketAddr>().is_ok(), "{grpc}");
}
