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

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = server(dir.path()).spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("is serving")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => panic!("the server did not start: {log:?}"),
        }
    }
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
