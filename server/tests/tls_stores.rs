//! PostgreSQL and Redis over TLS, as managed services serve them: a PostgreSQL cluster and a
//! Redis of this test's own on loopback, each with a certificate from a certificate authority
//! made in the test. A sale runs through both (sslmode=verify-full with --database-ca, a
//! rediss:// URL with --redis-ca); a certificate from another authority stops the start in one
//! line that names the problem.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{HALL, TestServer, create_event, order_of, pay_order};
use taquilla_server::domain::clock::SystemClock;
use taquilla_test_support::{Backend, private_ca};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a command as the `postgres` user when this test runs as root (PostgreSQL refuses to
/// run as root), as itself otherwise.
fn as_postgres(program: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false);
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// PostgreSQL's server programs (Debian: /usr/lib/postgresql/<version>/bin).
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server must be installed for this test (.ci/run installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("initdb in /usr/lib/postgresql/*/bin")
}

/// A PostgreSQL cluster of the test's own that accepts only TLS connections on loopback.
struct TlsPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl TlsPostgres {
    fn start(cert: &str, key: &str) -> TlsPostgres {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::write(dir.path().join("server.crt"), cert).expect("cert");
        std::fs::write(dir.path().join("server.key"), key).expect("key");
        std::fs::set_permissions(
            dir.path().join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("key mode");
        // The cluster's files belong to the user that runs it.
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let bin = pg_bin();
        let status = as_postgres(&bin.join("initdb"))
            .args(["--auth=trust", "-U", "postgres", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        let port = free_port();
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{dir}'\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n\
             fsync = off\n",
            dir = dir.path().display()
        );
        let conf_path = data.join("postgresql.auto.conf");
        let mut existing = std::fs::read_to_string(&conf_path).unwrap_or_default();
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing).expect("conf");
        // TLS only: a connection in the clear is refused.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("hba");
        let status = as_postgres(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("server.log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(
            status.success(),
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        );
        wait_for_port(port, "PostgreSQL");
        TlsPostgres { dir, port }
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A Redis of the test's own that speaks only TLS on loopback.
struct TlsRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    fn start(ca: &str, cert: &str, key: &str) -> TlsRedis {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, pem) in [("ca.crt", ca), ("redis.crt", cert), ("redis.key", key)] {
            std::fs::write(dir.path().join(name), pem).expect("pem");
        }
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(dir.path().join("redis.crt"))
            .arg("--tls-key-file")
            .arg(dir.path().join("redis.key"))
            .arg("--tls-ca-cert-file")
            .arg(dir.path().join("ca.crt"))
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test (.ci/run installs it)");
        wait_for_port(port, "Redis");
        TlsRedis {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a server with this configuration does not start; panics if it does.
async fn start_error(configure: impl FnOnce(&mut taquilla_server::config::Config)) -> String {
    match TestServer::try_start_with(Backend::Postgres, Arc::new(SystemClock), configure).await {
        Ok(server) => {
            server.stop().await;
            panic!("the server started");
        }
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_runs_over_tls_to_postgres_and_redis() {
    let (ca, cert, key) = private_ca("Taquilla test data-store CA");
    let postgres = TlsPostgres::start(&cert, &key);
    let redis = TlsRedis::start(&ca, &cert, &key);
    let files = tempfile::tempdir().expect("temp dir");
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).expect("ca");

    // A connection in the clear is refused: the cluster is TLS only.
    let plain = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        postgres.port
    );
    let refused = start_error(|c| {
        c.database_url = Some(plain.clone());
    })
    .await;
    assert!(
        refused.contains("cannot connect to PostgreSQL"),
        "{refused}"
    );

    let database = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        postgres.port
    );
    let server = TestServer::start_with(Backend::Postgres, Arc::new(SystemClock), |c| {
        c.database_url = Some(database.clone());
        c.database_ca = Some(ca_file.clone());
        c.redis_url = Some(format!("rediss://localhost:{}", redis.port));
        c.redis_ca = Some(ca_file.clone());
    })
    .await;
    create_event(&server, "ev", HALL, 4).await;
    let order_id = order_of(&server, 0).await;
    let paid = pay_order(&mut server.fan("ev", "fan-0"), order_id, "pay-fan-0".into()).await;
    assert_eq!(paid.tickets.len(), 2);
    server.assert_audit_clean("ev").await;
    // The waiting room is on the TLS Redis: a fan joins the open sale's line there.
    assert_eq!(server.state.waiting_room.backend(), "redis");
    common::open(&server, "ev", taquilla_proto::v1::SalePhase::General, &[]).await;
    let joined = server
        .waiting_room()
        .join(taquilla_proto::v1::JoinRequest {
            event_id: "ev".into(),
            fingerprint: "tls-fan".into(),
            ..Default::default()
        })
        .await
        .expect("joined through the TLS Redis")
        .into_inner();
    assert!(!joined.queue_token.is_empty(), "{joined:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_authority_stops_the_start_in_one_line() {
    let (_, cert, key) = private_ca("The data stores' CA");
    let (other_ca, _, _) = private_ca("Some other CA");
    let postgres = TlsPostgres::start(&cert, &key);
    let redis = TlsRedis::start(&other_ca, &cert, &key);
    let files = tempfile::tempdir().expect("temp dir");
    let wrong_ca = files.path().join("other-ca.pem");
    std::fs::write(&wrong_ca, &other_ca).expect("ca");
    let database = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        postgres.port
    );
    let error = start_error(|c| {
        c.database_url = Some(database.clone());
        c.database_ca = Some(wrong_ca.clone());
    })
    .await;
    println!("PostgreSQL with an unknown issuer: {error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("PostgreSQL"), "{error}");
    assert!(
        error.to_lowercase().contains("certificate"),
        "names the certificate problem: {error}"
    );

    let error = start_error(|c| {
        c.redis_url = Some(format!("rediss://localhost:{}", redis.port));
        c.redis_ca = Some(wrong_ca.clone());
    })
    .await;
    println!("Redis with an unknown issuer: {error}");
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("Redis"), "{error}");
    assert!(
        error.to_lowercase().contains("certificate"),
        "names the certificate problem: {error}"
    );

    let missing = files.path().join("missing.pem");
    let error = start_error(|c| {
        c.database_url = Some(database.clone());
        c.database_ca = Some(missing.clone());
    })
    .await;
    assert!(
        error.contains("--database-ca") && error.contains("missing.pem"),
        "{error}"
    );
}
