//! Typed configuration: command-line flags with environment fallbacks. Secrets are wrapped in
//! [`Secret`] so that no `Debug` output or log line can show them, and `--help` hides their
//! environment values.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;

/// A string that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself; only for the code that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Secret(s.to_string()))
    }
}

/// A URL with its password removed, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme_end + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A Redis key prefix: letters, digits and `-_.:`, at most 64. Braces would move a Redis
/// Cluster hash tag (an event's keys share the slot of `{ev:<id>}`, which must be the first
/// braces in the key), so they are refused.
pub fn parse_namespace(value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > 64 {
        return Err("the Redis namespace must be 1 to 64 characters".into());
    }
    if value.contains(['{', '}']) {
        return Err(format!(
            "the Redis namespace {value:?} has a brace, which would change which Redis Cluster \
             slot an event's keys share; use letters, digits and -_.:"
        ));
    }
    match value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c)))
    {
        Some(c) => Err(format!(
            "the Redis namespace {value:?} has {c:?}; use letters, digits and -_.:"
        )),
        None => Ok(value.to_string()),
    }
}

/// Sales calls in progress at once per pooled database connection, by default. A sales call
/// spends most of its time away from the database (the payment provider, the shared WAL
/// flush of its commit, Redis): with four per connection the bound was full in the full LUX
/// sale while PostgreSQL's connections sat idle in 88 % of samples, and the automatic valve,
/// which backs off on sheds, held the sale to ~470 tickets/s; with sixteen it sold out in
/// 248 s (docs/benchmarks-log.md, "The full LUX sale on one box", run 8).
pub const INFLIGHT_SALES_PER_CONNECTION: usize = 16;

/// Four database connections per core.
pub fn default_pool_size() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32 * 4)
        .unwrap_or(8)
}

/// Parses a rate between 0 and 1.
pub fn parse_rate(input: &str) -> Result<f64, String> {
    let rate: f64 = input
        .trim()
        .parse()
        .map_err(|_| format!("{input:?} is not a number"))?;
    if !(0.0..=1.0).contains(&rate) {
        return Err(format!("{input:?} must be between 0 and 1"));
    }
    Ok(rate)
}

/// Parses a duration such as `500ms`, `90s`, `10m` or `1h`.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{input:?} has no unit; write e.g. 90s, 10m or 500ms"))?;
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{input:?} does not start with a whole number"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n.saturating_mul(1_000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => {
            return Err(format!(
                "{input:?} has unknown unit {unit:?}; use ms, s, m or h"
            ));
        }
    };
    if ms == 0 {
        return Err(format!("{input:?} must be longer than zero"));
    }
    Ok(Duration::from_millis(ms))
}

/// Taquilla's gRPC server: a fair virtual waiting room in front of a seat inventory that never
/// sells a seat twice.
///
/// With no --database-url it runs on the embedded backend (a SQLite file in --data-dir and an
/// in-process waiting room). With --database-url postgres://… it uses PostgreSQL for the
/// inventory, and with --redis-url redis://… Redis for the waiting room, so several nodes can
/// serve one sale.
#[derive(Debug, Clone, Parser)]
#[command(name = "taquilla-server", version, after_help = EXAMPLES)]
pub struct Config {
    /// Address for the gRPC API.
    #[arg(long, env = "TAQUILLA_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Address for the admin HTTP endpoint (/metrics for Prometheus, /healthz).
    #[arg(long, env = "TAQUILLA_ADMIN_LISTEN", default_value = "127.0.0.1:9464")]
    pub admin_listen: SocketAddr,

    /// Serve gRPC over TLS with this certificate chain (PEM); needs --tls-key. Clients then use
    /// https:// addresses (and --tls-ca if the certificate's authority is not a system one).
    #[arg(long, env = "TAQUILLA_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "TAQUILLA_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// On SIGTERM or Ctrl-C, report NOT_SERVING (gRPC health and /healthz) for this long while
    /// still serving, so a load balancer's health checks see it and send new fans elsewhere;
    /// then stop accepting and drain the calls in flight. Set it to the balancer's check
    /// interval times its failure threshold (e.g. 15s). 0s (default): stop accepting at once.
    /// A second signal ends the window early. At most 5m.
    #[arg(long, env = "TAQUILLA_DRAIN_DELAY", default_value = "0s", value_parser = parse_drain_delay)]
    pub drain_delay: Duration,

    /// PostgreSQL URL (postgres://user@host/db) or sqlite://file. Empty: the embedded SQLite file
    /// in --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Certificate authority (PEM) that signed PostgreSQL's certificate, for a managed database
    /// with its own CA; the connection then verifies the certificate and the host name
    /// (sslmode=verify-full unless the URL sets another). Same as sslrootcert= in the URL.
    #[arg(long, env = "TAQUILLA_DATABASE_CA", value_name = "PEM")]
    pub database_ca: Option<PathBuf>,

    /// Redis URL (redis://host:6379) for the waiting room. Empty: in-process waiting room (one
    /// node only). With --redis-cluster, one or more of the cluster's nodes, comma-separated
    /// (redis://10.0.0.1:6379,redis://10.0.0.2:6379).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// The Redis URL is a Redis Cluster: the waiting room, the shared rate limits and the abuse
    /// log spread over its primaries, each event's keys on one slot.
    #[arg(long, env = "TAQUILLA_REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Certificate authority (PEM) that signed Redis's certificate, for a rediss:// URL whose
    /// server is not signed by an authority the system trusts.
    #[arg(long, env = "TAQUILLA_REDIS_CA", value_name = "PEM")]
    pub redis_ca: Option<PathBuf>,

    /// Prefix of every Redis key, so several sales (or test runs) can share one Redis. Every
    /// node of one sale must use the same. Nodes must also share --signing-key.
    #[arg(long, env = "TAQUILLA_REDIS_NAMESPACE", default_value = "tq", value_parser = parse_namespace)]
    pub redis_namespace: String,

    /// Directory for the embedded database and generated secrets.
    #[arg(long, env = "TAQUILLA_DATA_DIR", default_value = "taquilla-data")]
    pub data_dir: PathBuf,

    /// Bearer token operators present. Empty: one is generated and written to
    /// <data-dir>/operator-token (readable only by this user).
    #[arg(long, env = "TAQUILLA_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<Secret>,

    /// Secret key that signs queue tokens, admission passes and ticket codes (16+ bytes). Every
    /// node of one sale needs the same key. Empty: one is generated and kept in
    /// <data-dir>/signing-key.
    #[arg(long, env = "TAQUILLA_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<Secret>,

    /// How long a hold keeps seats (SOFT_LOCKED) before checkout.
    #[arg(long, env = "TAQUILLA_HOLD_TTL", default_value = "10m", value_parser = parse_duration)]
    pub hold_ttl: Duration,

    /// How long an order keeps seats (HARD_LOCKED) while it waits for payment.
    #[arg(long, env = "TAQUILLA_PAYMENT_TTL", default_value = "15m", value_parser = parse_duration)]
    pub payment_ttl: Duration,

    /// How long an admission pass is accepted.
    #[arg(long, env = "TAQUILLA_PASS_TTL", default_value = "30m", value_parser = parse_duration)]
    pub pass_ttl: Duration,

    /// An admitted fan who holds no seats within this time loses the slot to the next fan.
    #[arg(long, env = "TAQUILLA_NO_SHOW", default_value = "2m", value_parser = parse_duration)]
    pub no_show: Duration,

    /// A queue entry with no open Watch stream this long is removed (reconnecting within it
    /// keeps the place).
    #[arg(long, env = "TAQUILLA_GRACE", default_value = "2m", value_parser = parse_duration)]
    pub grace: Duration,

    /// Joins allowed per minute from one network address (burst: a sixth of it). 0: no limit.
    #[arg(long, env = "TAQUILLA_JOIN_RATE_PER_IP", default_value_t = 120)]
    pub join_rate_per_ip: u32,

    /// Joins allowed per minute from one fingerprint (burst: a sixth of it, at least 3). 0: no
    /// limit.
    #[arg(long, env = "TAQUILLA_JOIN_RATE_PER_FINGERPRINT", default_value_t = 30)]
    pub join_rate_per_fingerprint: u32,

    /// Sales calls (hold, release, checkout, pay, order lookups) allowed per minute from one
    /// network address (burst: a sixth of it). 0: no limit.
    #[arg(long, env = "TAQUILLA_SALES_RATE_PER_IP", default_value_t = 30_000)]
    pub sales_rate_per_ip: u32,

    /// Sales calls allowed per minute from one fan (the fingerprint its pass names; burst: a
    /// sixth of it). 0: no limit.
    #[arg(long, env = "TAQUILLA_SALES_RATE_PER_FAN", default_value_t = 600)]
    pub sales_rate_per_fan: u32,

    /// Keep the join and sales rate limits' buckets, and the failed-hold log that flags fans, in
    /// Redis (needs --redis-url), so each limit and flag holds across every node, not per node.
    #[arg(long, env = "TAQUILLA_SHARED_RATE_LIMITS")]
    pub shared_rate_limits: bool,

    /// Flag a fan with this many failed holds in a minute (listed in GetStats for operators).
    /// 0: flag nobody.
    #[arg(long, env = "TAQUILLA_FLAG_FAILED_HOLDS", default_value_t = 30)]
    pub flag_failed_holds: u32,

    /// The payment provider to use: a `taquilla-paysim` process at this address (http:// or
    /// https://), shared by every node of a sale. Without it each node runs the simulated
    /// provider in process, configured by the --payment-latency… flags below.
    #[arg(long, env = "TAQUILLA_PAYMENT_PROVIDER_URL", value_name = "URL")]
    pub payment_provider_url: Option<String>,

    /// With --payment-provider-url: a provider call without an answer this long is taken as
    /// lost and reconciled by its idempotency key.
    #[arg(long, env = "TAQUILLA_PAYMENT_CALL_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub payment_call_timeout: Duration,

    /// Simulated payment provider: least time a call takes.
    #[arg(long, env = "TAQUILLA_PAYMENT_LATENCY", default_value = "2ms", value_parser = parse_duration)]
    pub payment_latency: Duration,

    /// Simulated payment provider: mean extra time per call (exponential tail).
    #[arg(long, env = "TAQUILLA_PAYMENT_LATENCY_TAIL", default_value = "3ms", value_parser = parse_duration)]
    pub payment_latency_tail: Duration,

    /// Simulated payment provider: share of cards declined (0–1; test cards are fixed).
    #[arg(long, env = "TAQUILLA_PAYMENT_DECLINE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_decline_rate: f64,

    /// Simulated payment provider: share of calls whose answer is lost after processing (0–1).
    #[arg(long, env = "TAQUILLA_PAYMENT_TIMEOUT_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_timeout_rate: f64,

    /// How often the sweeper returns lapsed locks to sale and reconciles stuck payments.
    #[arg(long, env = "TAQUILLA_SWEEP_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub sweep_interval: Duration,

    /// A payment in flight this long without progress is reconciled with the provider.
    #[arg(long, env = "TAQUILLA_RECONCILE_AFTER", default_value = "30s", value_parser = parse_duration)]
    pub reconcile_after: Duration,

    /// Most database connections (PostgreSQL) or read connections (SQLite). The default, four
    /// per core, measured best on a 2-core machine sharing it with PostgreSQL (see
    /// docs/benchmarks-log.md): more connections only contend.
    #[arg(long, env = "TAQUILLA_DB_MAX_CONNECTIONS", default_value_t = default_pool_size())]
    pub db_max_connections: u32,

    /// Most sales calls (hold, release, checkout, pay, order lookups) in progress at once on
    /// this node; more are answered at once with RESOURCE_EXHAUSTED and retry-after-ms instead
    /// of queueing for a database connection. 0: sixteen per pooled database connection.
    #[arg(long, env = "TAQUILLA_MAX_INFLIGHT_SALES", default_value_t = 0)]
    pub max_inflight_sales: u32,

    /// Consecutive failures of the database or the payment provider that open its circuit
    /// breaker (calls then fail fast with UNAVAILABLE).
    #[arg(long, env = "TAQUILLA_BREAKER_FAILURES", default_value_t = 5)]
    pub breaker_failures: u32,

    /// How long an open circuit breaker refuses calls before letting one probe through.
    #[arg(long, env = "TAQUILLA_BREAKER_COOL_DOWN", default_value = "30s", value_parser = parse_duration)]
    pub breaker_cool_down: Duration,

    /// The payment provider's contract rate: calls per second sent to it, evenly spaced (a
    /// leaky bucket). 0: unpaced.
    #[arg(long, env = "TAQUILLA_PAYMENT_RATE", default_value_t = 2_000)]
    pub payment_rate: u32,

    /// Longest a payment call waits for its turn at --payment-rate; a call that would wait
    /// longer is answered RESOURCE_EXHAUSTED with retry-after-ms, not sent.
    #[arg(long, env = "TAQUILLA_PAYMENT_MAX_WAIT", default_value = "2s", value_parser = parse_duration)]
    pub payment_max_wait: Duration,

    /// How long to wait for the database or Redis before giving up.
    #[arg(long, env = "TAQUILLA_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Longest one database call may take (a database that stops answering without closing
    /// its connections); past it the call fails UNAVAILABLE and counts against the breaker.
    #[arg(long, env = "TAQUILLA_DB_CALL_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub db_call_timeout: Duration,

    /// Seed a demo sale at start ("lux-tour": 8 concerts, 142,000 seats); existing events are
    /// left as they are.
    #[arg(long, value_name = "DEMO")]
    pub seed: Option<String>,

    /// Log filter (tracing's EnvFilter syntax), e.g. info or taquilla_server=debug.
    #[arg(long, env = "TAQUILLA_LOG", default_value = "info")]
    pub log: String,

    /// Log lines as text for people, or as one JSON object per line for log shippers.
    #[arg(long, env = "TAQUILLA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How the server writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-07T10:00:00Z  INFO taquilla_server::app: taquilla-server is serving grpc=…`
    Text,
    /// `{"timestamp":"…","level":"INFO","fields":{"message":"taquilla-server is serving",…},…}`
    Json,
}

const EXAMPLES: &str = "Examples:
  taquilla-server --seed lux-tour
  taquilla-server --database-url postgres://postgres@127.0.0.1/taquilla --redis-url redis://127.0.0.1:6379";

impl Config {
    /// The circuit breakers' settings.
    pub fn breaker(&self) -> crate::breaker::BreakerConfig {
        crate::breaker::BreakerConfig {
            failures_to_open: self.breaker_failures.max(1),
            cool_down: self.breaker_cool_down,
        }
    }
}

/// Reads a certificate authority file (PEM) given by `flag`; the error names the file.
pub fn read_ca_pem(path: &std::path::Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("{flag}: cannot read {}: {e}", path.display()))?;
    anyhow::ensure!(
        pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----"),
        "{flag}: {} is not a PEM certificate (no -----BEGIN CERTIFICATE-----)",
        path.display()
    );
    Ok(pem)
}

/// Longest --drain-delay: a node told to stop should stop within minutes, whatever it is told.
const MAX_DRAIN_DELAY: Duration = Duration::from_secs(300);

/// A --drain-delay: a duration as [`parse_duration`] reads it, or zero, at most five minutes.
fn parse_drain_delay(input: &str) -> Result<Duration, String> {
    let delay = match input.trim() {
        "0" | "0s" | "0ms" => Duration::ZERO,
        _ => parse_duration(input)?,
    };
    if delay > MAX_DRAIN_DELAY {
        return Err(format!(
            "{input:?} is longer than the {}s a draining node may wait",
            MAX_DRAIN_DELAY.as_secs()
        ));
    }
    Ok(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_namespaces_keep_the_cluster_hash_tag() {
        assert_eq!(parse_namespace("tq"), Ok("tq".into()));
        assert_eq!(
            parse_namespace("lux-2026:madrid"),
            Ok("lux-2026:madrid".into())
        );
        for bad in ["", "a{b", "a}b", "{tq}", "with space", "naïve"] {
            assert!(parse_namespace(bad).is_err(), "{bad:?}");
        }
        assert!(parse_namespace(&"x".repeat(65)).is_err());
        let refused = parse_namespace("t{q}").expect_err("braces");
        assert!(refused.contains("brace"), "{refused}");
        assert!(
            Config::try_parse_from(["taquilla-server", "--redis-namespace", "a{b}"]).is_err(),
            "the flag checks it"
        );
    }

    #[test]
    fn drain_delays() {
        assert_eq!(parse_drain_delay("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_drain_delay("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_drain_delay("5m"), Ok(MAX_DRAIN_DELAY));
        assert!(
            parse_drain_delay("6m")
                .expect_err("too long")
                .contains("longer than")
        );
        assert!(parse_drain_delay("-1s").is_err());
    }

    include!("../../.ci/readme_commands.rs");

    /// Every `taquilla-server` line README.md shows parses as written.
    #[test]
    fn the_readmes_commands_parse() {
        assert_each_parses(
            readme_commands(
                &[
                    "cargo run -p taquilla-server --",
                    "cargo run --release -p taquilla-server --",
                    "target/release/taquilla-server",
                    "taquilla-server",
                ],
                "taquilla-server",
                &[
                    ("\"$(openssl rand -hex 24)\"", "0123456789abcdef01234567"),
                    ("\"$(openssl rand -hex 32)\"", &"ab".repeat(32)),
                    ("$TAQUILLA_OPERATOR_TOKEN", "0123456789abcdef01234567"),
                    ("$KEY", &"ab".repeat(32)),
                    ("$n", "1"),
                ],
            ),
            |argv| Config::try_parse_from(argv).map(drop),
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
        assert!(
            parse_duration("10")
                .expect_err("must fail")
                .contains("no unit")
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten m").is_err());
        assert!(
            parse_duration("5d")
                .expect_err("must fail")
                .contains("unknown unit")
        );
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.example:5432/taquilla"),
            "postgres://app@db.example:5432/taquilla"
        );
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:6379"),
            "redis://@127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("postgres://localhost/db"),
            "postgres://localhost/db"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let config = Config::try_parse_from([
            "taquilla-server",
            "--operator-token",
            "test-operator-token",
            "--signing-key",
            "test-signing-key-0123456789abcdef",
        ])
        .expect("flags parse");
        let shown = format!("{config:?}");
        assert!(!shown.contains("test-operator-token"), "{shown}");
        assert!(!shown.contains("test-signing-key"), "{shown}");
    }

    #[test]
    fn flags_parse() {
        let config = Config::try_parse_from([
            "taquilla-server",
            "--listen",
            "0.0.0.0:6000",
            "--hold-ttl",
            "2m",
            "--seed",
            "lux-tour",
        ])
        .expect("parse");
        assert_eq!(config.listen.port(), 6000);
        assert_eq!(config.hold_ttl, Duration::from_secs(120));
        assert_eq!(config.seed.as_deref(), Some("lux-tour"));
    }
}
