//! Test harness: starts the real server in-process on loopback port 0 against a fresh SQLite
//! file or a fresh PostgreSQL database, and hands out generated tonic clients.
//!
//! PostgreSQL is reached at `TAQUILLA_TEST_PG_URL` (default
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres`); each test creates its own database and
//! drops it when the server stops, so no test sees another's leftovers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use sqlx::Connection;
use taquilla_proto::v1 as pb;
use taquilla_server::app::App;
use taquilla_server::config::Config;
use taquilla_server::domain::clock::{Clock, SystemClock};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

pub const OPERATOR_TOKEN: &str = "test-operator-token";
pub const SIGNING_KEY: &str = "test-signing-key-0123456789abcdef";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend: `on_both_backends!(name, ...)` expects
/// `async fn name(backend: Backend)` and makes tests `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )*
    };
}

pub fn pg_admin_url() -> String {
    std::env::var("TAQUILLA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// A PostgreSQL database made for one test.
#[derive(Debug)]
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        let admin = pg_admin_url();
        let name = format!("taquilla_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {admin} for tests: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base)
            .unwrap_or(&admin);
        PgDatabase {
            url: format!("{base}/{name}"),
            name,
        }
    }

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

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub channel: Channel,
    pub backend: Backend,
    pub data_dir: tempfile::TempDir,
    pub database: Option<PgDatabase>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

fn add_operator_token(mut request: Request<()>) -> Result<Request<()>, Status> {
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {OPERATOR_TOKEN}")
            .parse()
            .expect("ascii token"),
    );
    Ok(request)
}

pub type OperatorClient = pb::operator_client::OperatorClient<
    InterceptedService<Channel, fn(Request<()>) -> Result<Request<()>, Status>>,
>;

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, Arc::new(SystemClock), |_| {}).await
    }

    /// Starts a server with a clock and a chance to change its configuration.
    pub async fn start_with(
        backend: Backend,
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_tests(data_dir.path().to_path_buf());
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let db = PgDatabase::create().await;
                config.database_url = Some(db.url.clone());
                Some(db)
            }
        };
        configure(&mut config);
        let app = App::build_with_clock(&config, clock)
            .await
            .expect("server builds");
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = grpc.local_addr().expect("addr");
        let admin_addr = admin.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(grpc, admin, async move {
            let _ = stopped.await;
        }));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to test server");
        TestServer {
            addr,
            admin_addr,
            channel,
            backend,
            data_dir,
            database,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn sales(&self) -> pb::sales_client::SalesClient<Channel> {
        pb::sales_client::SalesClient::new(self.channel.clone())
    }

    pub fn waiting_room(&self) -> pb::waiting_room_client::WaitingRoomClient<Channel> {
        pb::waiting_room_client::WaitingRoomClient::new(self.channel.clone())
    }

    /// An operator client that sends the operator token.
    pub fn operator(&self) -> OperatorClient {
        pb::operator_client::OperatorClient::with_interceptor(
            self.channel.clone(),
            add_operator_token as fn(Request<()>) -> Result<Request<()>, Status>,
        )
    }

    /// An operator client that sends no token.
    pub fn operator_without_token(&self) -> pb::operator_client::OperatorClient<Channel> {
        pb::operator_client::OperatorClient::new(self.channel.clone())
    }

    /// Stops the server (waiting for it to drain) and drops its database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stops cleanly");
        }
        if let Some(db) = &self.database {
            db.drop_database().await;
        }
    }
}

/// A small TOML layout: 10 general-admission places and two rows of seats (5 + 5).
pub const SMALL_LAYOUT: &str = r#"
[venue]
id = "sala-test"
name = "Sala Test"
city = "Madrid"

[[sections]]
id = "floor"
name = "Floor"
kind = "general_admission"
price = 30.00
capacity = 10

[[sections]]
id = "a"
name = "Block A"
kind = "seated"
price_minor = 5000
rows = [ { label = "1", seats = 5 }, { label = "2", seats = 5 } ]
"#;

/// A request creating `event_id` with [`SMALL_LAYOUT`].
pub fn small_event(event_id: &str) -> pb::CreateEventRequest {
    pb::CreateEventRequest {
        event_id: event_id.into(),
        name: "Test Night".into(),
        artist: "The Testers".into(),
        starts_at_unix_ms: 1_900_000_000_000,
        currency: "EUR".into(),
        fee_per_ticket_minor: 250,
        max_tickets_per_fan: 4,
        layout: Some(pb::create_event_request::Layout::LayoutToml(
            SMALL_LAYOUT.into(),
        )),
    }
}
