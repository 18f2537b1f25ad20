//! What the tests of the server, the operator CLI, the load generator and the fan app share, so
//! that each is written once and none lives in the server's library:
//!
//! - a backend made for one test ([`Backing`]): the embedded one (a fresh SQLite file, the
//!   waiting room in process) or the distributed one (a fresh PostgreSQL database, dropped at
//!   the end, and the waiting room in Redis, on one server or a cluster, under a key namespace
//!   of its own, deleted at the end);
//! - [`test_config`], the server's configuration for tests, and [`LocalServer`], the server
//!   running in the test's process on loopback ports;
//! - [`FaultProxy`], a TCP proxy that cuts or stalls a dependency on command;
//! - [`wait_until`], a bounded wait on a condition, for tests that would otherwise sleep.
//!
//! PostgreSQL is reached at `TAQUILLA_TEST_PG_URL` (default
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres`), Redis at `TAQUILLA_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`), and the Redis Cluster of [`Backend::RedisCluster`] at
//! `TAQUILLA_TEST_REDIS_CLUSTER_URL` (default the three primaries `.ci/redis-cluster` starts
//! on `127.0.0.1:17001-17003`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::Connection;
use taquilla_server::app::App;
use taquilla_server::config::{Config, Secret};

/// The operator token of [`test_config`].
pub const OPERATOR_TOKEN: &str = "test-operator-token";
/// The signing key of [`test_config`].
pub const SIGNING_KEY: &str = "test-signing-key-0123456789abcdef";

/// The server's configuration for tests: loopback on port 0, the embedded store in
/// `data_dir`, limits out of the way (each test sets those it tests).
pub fn test_config(data_dir: PathBuf) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls_cert: None,
        tls_key: None,
        drain_delay: Duration::ZERO,
        database_url: None,
        database_ca: None,
        redis_url: None,
        redis_ca: None,
        redis_cluster: false,
        redis_namespace: "tq".into(),
        data_dir,
        operator_token: Some(Secret::new(OPERATOR_TOKEN)),
        signing_key: Some(Secret::new(SIGNING_KEY)),
        hold_ttl: Duration::from_secs(600),
        payment_ttl: Duration::from_secs(900),
        pass_ttl: Duration::from_secs(1_800),
        join_rate_per_ip: 100_000,
        join_rate_per_fingerprint: 100_000,
        sales_rate_per_ip: 0,
        sales_rate_per_fan: 0,
        shared_rate_limits: false,
        flag_failed_holds: 30,
        no_show: Duration::from_secs(120),
        grace: Duration::from_secs(120),
        payment_provider_url: None,
        payment_call_timeout: Duration::from_secs(10),
        payment_latency: Duration::from_millis(1),
        payment_latency_tail: Duration::from_millis(1),
        payment_decline_rate: 0.0,
        payment_timeout_rate: 0.0,
        sweep_interval: Duration::from_secs(1),
        reconcile_after: Duration::from_secs(30),
        db_max_connections: 8,
        // Tests race hundreds of clients at the database on purpose; the shedding tests
        // set their own bound.
        max_inflight_sales: 100_000,
        breaker_failures: 5,
        breaker_cool_down: Duration::from_secs(30),
        payment_rate: 0,
        payment_max_wait: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(5),
        db_call_timeout: Duration::from_secs(30),
        seed: None,
        log: "warn".into(),
        log_format: taquilla_server::config::LogFormat::Text,
    }
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite and the in-process waiting room: the embedded default.
    Sqlite,
    /// PostgreSQL and the waiting room in Redis: the distributed deployment.
    Postgres,
    /// PostgreSQL and the waiting room on a Redis Cluster ([`redis_cluster_url`]).
    RedisCluster,
}

/// A backend made for one test: [`test_config`] pointed at it, and what it is made of, which is
/// removed when this is dropped (the SQLite file's directory, the Redis keys) or when the test
/// calls [`Backing::drop_database`] (the PostgreSQL database).
#[derive(Debug)]
pub struct Backing {
    pub config: Config,
    pub data_dir: tempfile::TempDir,
    pub database: Option<PgDatabase>,
    pub redis: Option<RedisNamespace>,
}

impl Backing {
    /// Makes a fresh backend; panics with the reason when PostgreSQL or the temporary directory
    /// cannot be had (a test that needs them cannot run without them).
    pub async fn new(backend: Backend) -> Backing {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = test_config(data_dir.path().to_path_buf());
        let (database, redis) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres | Backend::RedisCluster => {
                let database = PgDatabase::create().await;
                config.database_url = Some(database.url.clone());
                let cluster = backend == Backend::RedisCluster;
                let namespace = if cluster {
                    RedisNamespace::on_cluster()
                } else {
                    RedisNamespace::new()
                };
                config.redis_url = Some(namespace.url.clone());
                config.redis_cluster = cluster;
                // On the cluster the rate limits and abuse flags are shared too, so the same
                // suites cover them there.
                config.shared_rate_limits = cluster;
                config.redis_namespace = namespace.name.clone();
                (Some(database), Some(namespace))
            }
        };
        Backing {
            config,
            data_dir,
            database,
            redis,
        }
    }

    /// Drops the PostgreSQL database, if there is one, closing whatever still uses it.
    pub async fn drop_database(&self) {
        if let Some(database) = &self.database {
            database.drop_database().await;
        }
    }
}

/// A server running inside this process on loopback ports, as the clients' tests start it.
#[derive(Debug)]
pub struct LocalServer {
    pub addr: std::net::SocketAddr,
    pub admin_addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl LocalServer {
    /// Builds the app from `config` and serves it on `127.0.0.1`, on ports the system picks.
    pub async fn start(config: &Config) -> anyhow::Result<LocalServer> {
        let app = App::build(config).await?;
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let (addr, admin_addr) = (grpc.local_addr()?, admin.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(grpc, admin, async move {
            let _ = stopped.await;
        }));
        Ok(LocalServer {
            addr,
            admin_addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drains and stops the server; its result (an error if it failed while serving).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.context("the server task panicked")?,
            None => Ok(()),
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Waits until `condition` holds, checking every 10 ms, for at most `bound`; panics naming
/// `what` if it never does. For tests that wait for something to happen in the background: a
/// fixed sleep is either too short on a loaded machine or longer than needed everywhere else.
pub async fn wait_until<F, Fut>(what: &str, bound: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if condition().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("waited {bound:?} for {what}, in vain");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The PostgreSQL server tests use: `TAQUILLA_TEST_PG_URL`, or the local default.
pub fn pg_admin_url() -> String {
    std::env::var("TAQUILLA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database for one test.
#[derive(Debug)]
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Creates `taquilla_test_<uuid>` on [`pg_admin_url`]; panics with the reason if PostgreSQL
    /// is not reachable (a test that needs it cannot run without it).
    pub async fn create() -> PgDatabase {
        let admin = pg_admin_url();
        let name = format!("taquilla_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin} for tests: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base)
            .unwrap_or(&admin);
        PgDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// Drops the database, closing whatever still uses it.
    pub async fn drop_database(&self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

/// The Redis server tests use: `TAQUILLA_TEST_REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("TAQUILLA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The Redis Cluster tests use: `TAQUILLA_TEST_REDIS_CLUSTER_URL` (its nodes, comma-separated),
/// or the three primaries `.ci/redis-cluster` starts on 127.0.0.1:17001-17003.
pub fn redis_cluster_url() -> String {
    std::env::var("TAQUILLA_TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| {
        "redis://127.0.0.1:17001,redis://127.0.0.1:17002,redis://127.0.0.1:17003".into()
    })
}

/// The Redis a test's server talks to: one server, or a Redis Cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisKind {
    /// One Redis server ([`redis_url`]).
    Node,
    /// A Redis Cluster ([`redis_cluster_url`]).
    Cluster,
}

/// A connection to the tests' Redis of `kind`, as the server makes it (panics, naming the URL,
/// when it cannot be reached: a test that needs it cannot run without it).
pub async fn redis_link(kind: RedisKind) -> taquilla_server::redis_link::RedisLink {
    let (url, cluster) = match kind {
        RedisKind::Node => (redis_url(), false),
        RedisKind::Cluster => (redis_cluster_url(), true),
    };
    match taquilla_server::redis_link::Redis::connect(&url, cluster, None, Duration::from_secs(5))
        .await
    {
        Ok(redis) => redis.link(),
        Err(e) => panic!("{}", unreachable_redis(kind, &e.to_string())),
    }
}

fn unreachable_redis(kind: RedisKind, error: &str) -> String {
    match kind {
        RedisKind::Node => format!("Redis must be reachable for tests ({error})"),
        RedisKind::Cluster => format!(
            "a Redis Cluster must be reachable for tests at {} ({error}); `bash .ci/redis-cluster` \
             starts one on loopback ports, or set TAQUILLA_TEST_REDIS_CLUSTER_URL",
            redis_cluster_url()
        ),
    }
}

/// A Redis key namespace for one test, on one server or on the cluster; its keys are deleted
/// when it is dropped.
#[derive(Debug)]
pub struct RedisNamespace {
    pub name: String,
    /// Where the keys are: [`redis_url`] or [`redis_cluster_url`].
    pub url: String,
    pub kind: RedisKind,
}

impl RedisNamespace {
    /// A namespace on the tests' single Redis server.
    pub fn new() -> RedisNamespace {
        RedisNamespace::of(RedisKind::Node)
    }

    /// A namespace on the tests' Redis Cluster.
    pub fn on_cluster() -> RedisNamespace {
        RedisNamespace::of(RedisKind::Cluster)
    }

    pub fn of(kind: RedisKind) -> RedisNamespace {
        RedisNamespace {
            name: format!("tqtest-{}", uuid::Uuid::new_v4().simple()),
            url: match kind {
                RedisKind::Node => redis_url(),
                RedisKind::Cluster => redis_cluster_url(),
            },
            kind,
        }
    }

    /// Deletes the namespace's keys on one server (on a cluster: the keys that primary holds,
    /// one command per key, since keys of several slots cannot go in one DEL).
    fn delete_on(url: &str, pattern: &str) -> Option<Vec<String>> {
        let client = redis::Client::open(url).ok()?;
        let mut conn = client.get_connection().ok()?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut conn)
            .unwrap_or_default();
        for chunk in keys.chunks(500) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("UNLINK").arg(key).ignore();
            }
            let _: redis::RedisResult<()> = pipe.query(&mut conn);
        }
        // A cluster's primaries, from `CLUSTER NODES` (`<id> <ip:port@bus> <flags> …`).
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).ok()?;
        Some(
            nodes
                .lines()
                .filter_map(|line| {
                    let mut fields = line.split_whitespace();
                    let address = fields.nth(1)?;
                    let flags = fields.next()?;
                    let host_port = address.split('@').next()?;
                    flags
                        .split(',')
                        .any(|f| f == "master")
                        .then(|| format!("redis://{host_port}"))
                })
                .collect(),
        )
    }
}

impl Default for RedisNamespace {
    fn default() -> Self {
        RedisNamespace::new()
    }
}

impl Drop for RedisNamespace {
    fn drop(&mut self) {
        let pattern = format!("{}:*", self.name);
        let first = self.url.split(',').next().unwrap_or_default().to_string();
        match self.kind {
            RedisKind::Node => {
                RedisNamespace::delete_on(&first, &pattern);
            }
            RedisKind::Cluster => {
                let primaries = RedisNamespace::delete_on(&first, &pattern).unwrap_or_default();
                for primary in primaries {
                    RedisNamespace::delete_on(&primary, &pattern);
                }
            }
        }
    }
}

/// A TCP proxy on a loopback port in front of a dependency (PostgreSQL, Redis), for fault
/// tests: [`FaultProxy::cut`] drops every open connection and refuses new ones, as a crashed or
/// restarting server would; [`FaultProxy::stall`] keeps connections open but forwards nothing,
/// as a hung server or a network dropping packets would; [`FaultProxy::restore`] lets
/// connections through again (connections that stalled are dropped then, their streams broken).
#[derive(Debug)]
pub struct FaultProxy {
    pub addr: std::net::SocketAddr,
    state: std::sync::Arc<tokio::sync::watch::Sender<Link>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Up,
    Cut,
    Stalled,
}

impl FaultProxy {
    /// Starts forwarding a loopback port to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> std::io::Result<FaultProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = std::sync::Arc::new(tokio::sync::watch::Sender::new(Link::Up));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let mut link = shared.subscribe();
                let now = *link.borrow_and_update();
                match now {
                    // Down: the connection is closed at once.
                    Link::Cut => {
                        drop(client);
                        continue;
                    }
                    // Hung: the connection is accepted and then nothing happens.
                    Link::Stalled => {
                        tokio::spawn(async move {
                            let _ = link.wait_for(|l| *l != Link::Stalled).await.is_ok();
                            drop(client);
                        });
                        continue;
                    }
                    Link::Up => {}
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let stalled = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                        changed = link.wait_for(|l| *l != Link::Up) => {
                            changed.map(|l| *l == Link::Stalled).unwrap_or(false)
                        }
                    };
                    if stalled {
                        // Hold both ends open, silent, until the link is restored or cut.
                        let _ = link.wait_for(|l| *l != Link::Stalled).await;
                    }
                });
            }
        });
        Ok(FaultProxy { addr, state, task })
    }

    /// Drops every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.state.send_replace(Link::Cut);
    }

    /// Keeps every connection open but forwards nothing, in either direction.
    pub fn stall(&self) {
        self.state.send_replace(Link::Stalled);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.send_replace(Link::Up);
    }

    /// `url` (`scheme://user@host:port/path`) with its host and port replaced by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let (userinfo, hostpath) = match rest.rsplit_once('@') {
            Some((user, hostpath)) => (format!("{user}@"), hostpath),
            None => (String::new(), rest),
        };
        let path = hostpath.find('/').map_or("", |i| &hostpath[i..]);
        format!("{scheme}://{userinfo}{}{path}", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.state.send_replace(Link::Cut);
    }
}

/// The `host:port` of a URL such as `postgres://user@host:port/db`.
pub fn host_port(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let hostpath = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = hostpath.split('/').next()?;
    Some(if host.contains(':') {
        host.to_string()
    } else if url.starts_with("redis") {
        format!("{host}:6379")
    } else {
        format!("{host}:5432")
    })
}

/// A certificate authority made for a test (named `name`), and a server certificate it signed
/// for `localhost` and `127.0.0.1`: (CA PEM, certificate PEM, key PEM).
pub fn private_ca(name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, name);
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server params")
            .signed_by(&key, &issuer)
            .expect("server certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}
