//! Test harness: starts the real server in-process on loopback port 0 on one of the two
//! backends made for the test (`taquilla_test_support::Backing`), and hands out generated tonic
//! clients and a look at its state. Each test's PostgreSQL database is dropped when its server
//! stops, so no test sees another's leftovers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use taquilla_proto::v1 as pb;
use taquilla_server::app::App;
use taquilla_server::config::Config;
use taquilla_server::domain::clock::{Clock, SystemClock};
use taquilla_server::state::AppState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

// Each test binary uses a different part of what the harness re-exports.
#[allow(unused_imports)]
pub use taquilla_test_support::{
    Backend, Backing, OPERATOR_TOKEN, PgDatabase, RedisNamespace, SIGNING_KEY, wait_until,
};

/// Makes `mod name` with one test per `test => Backend` pair, each running the async test
/// body `name(backend)`.
#[macro_export]
macro_rules! on_backends {
    ($name:ident: $($test:ident => $backend:ident),*) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$name($crate::common::Backend::$backend).await
                }
            )*
        }
    };
}

/// Runs an async test body once per backend: `on_both_backends!(name, ...)` expects
/// `async fn name(backend: Backend)` and makes tests `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $( $crate::on_backends!($name: sqlite => Sqlite, postgres => Postgres); )*
    };
}

/// As [`on_both_backends!`], and once more with the waiting room on a Redis Cluster: tests
/// `name::sqlite`, `name::postgres` and `name::redis_cluster`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            $crate::on_backends!(
                $name: sqlite => Sqlite, postgres => Postgres, redis_cluster => RedisCluster
            );
        )*
    };
}

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub channel: Channel,
    pub backend: Backend,
    pub state: Arc<AppState>,
    pub data_dir: tempfile::TempDir,
    pub database: Option<PgDatabase>,
    pub redis: Option<RedisNamespace>,
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
        TestServer::try_start_with(backend, clock, configure)
            .await
            .expect("server builds")
    }

    /// As [`TestServer::start_with`], or why the server could not be built.
    pub async fn try_start_with(
        backend: Backend,
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<TestServer> {
        let Backing {
            mut config,
            data_dir,
            database,
            redis,
        } = Backing::new(backend).await;
        configure(&mut config);
        let app = match App::build_with_clock(&config, clock).await {
            Ok(app) => app,
            Err(e) => {
                if let Some(database) = &database {
                    database.drop_database().await;
                }
                return Err(e);
            }
        };
        let state = app.state().clone();
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
        Ok(TestServer {
            addr,
            admin_addr,
            channel,
            backend,
            state,
            data_dir,
            database,
            redis,
            stop: Some(stop),
            task: Some(task),
        })
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

    /// Seeds the LUX Tour demo (8 concerts, 142,000 seats) and returns what was seeded.
    pub async fn seed_lux_tour(&self) -> pb::SeedDemoResponse {
        self.operator()
            .seed_demo(pb::SeedDemoRequest {
                scenario: "lux-tour".into(),
            })
            .await
            .expect("seed the LUX Tour")
            .into_inner()
    }

    /// A sales client that presents `pass` in `x-admission-pass`.
    pub fn sales_with_pass(&self, pass: &str) -> SalesClientWithPass {
        pb::sales_client::SalesClient::with_interceptor(
            self.channel.clone(),
            PassInterceptor(pass.parse().expect("ascii pass")),
        )
    }

    /// A sales client for `fan` with a fresh pass for `event_id`.
    pub fn fan(&self, event_id: &str, fan: &str) -> SalesClientWithPass {
        self.sales_with_pass(&pass_for(event_id, fan, i64::MAX))
    }

    /// The simulated payment provider.
    pub fn provider(&self) -> &taquilla_server::payments::simulated::SimulatedProvider {
        self.state
            .simulated_provider
            .as_deref()
            .expect("the test server uses the simulated provider")
    }

    /// Runs the operator audit of `event_id` and panics with the report unless it is clean.
    pub async fn assert_audit_clean(&self, event_id: &str) -> pb::AuditReport {
        let report = self
            .operator()
            .audit(pb::AuditRequest {
                event_id: event_id.into(),
            })
            .await
            .expect("audit")
            .into_inner();
        assert!(report.ok, "audit of {event_id} failed: {report:#?}");
        report
    }

    /// An event's live figures, as operators see them.
    pub async fn stats(&self, event_id: &str) -> pb::EventStats {
        self.operator()
            .get_stats(pb::GetStatsRequest {
                event_id: event_id.into(),
            })
            .await
            .expect("stats")
            .into_inner()
    }

    /// Runs one SQL statement on the server's database behind its back, as a crash or an
    /// operator would leave it; returns the rows it changed.
    pub async fn execute_sql(&self, sql: &str) -> u64 {
        use sqlx::Connection;
        match &self.database {
            Some(db) => {
                let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
                sqlx::query(sql)
                    .execute(&mut conn)
                    .await
                    .expect("sql")
                    .rows_affected()
            }
            None => {
                let path = self.data_dir.path().join("taquilla.db");
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .expect("connect");
                sqlx::query(sql)
                    .execute(&mut conn)
                    .await
                    .expect("sql")
                    .rows_affected()
            }
        }
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

/// Adds an admission pass to every call.
#[derive(Clone)]
pub struct PassInterceptor(pub tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for PassInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert(taquilla_proto::ADMISSION_PASS_HEADER, self.0.clone());
        Ok(request)
    }
}

pub type SalesClientWithPass =
    pb::sales_client::SalesClient<InterceptedService<Channel, PassInterceptor>>;

/// An admission pass for `fan` to `event_id`, signed with the test key, valid until `exp_ms`.
pub fn pass_for(event_id: &str, fan: &str, exp_ms: i64) -> String {
    use taquilla_server::tokens::{PassClaims, Signer, TokenKind};
    Signer::new(SIGNING_KEY.as_bytes()).expect("key").sign(
        TokenKind::AdmissionPass,
        &PassClaims {
            ev: event_id.into(),
            fan: fan.into(),
            en: format!("entry-{fan}"),
            iat: 0,
            exp: exp_ms,
        },
    )
}

/// Creates an event from a TOML layout with a given per-fan cap.
pub async fn create_event(server: &TestServer, event_id: &str, layout: &str, max_per_fan: u32) {
    let mut request = small_event(event_id);
    request.layout = Some(pb::create_event_request::Layout::LayoutToml(layout.into()));
    request.max_tickets_per_fan = max_per_fan;
    server
        .operator()
        .create_event(request)
        .await
        .expect("create event");
}

pub fn seats(ids: &[u32]) -> pb::HoldSeatsRequest {
    seats_in("ev", ids)
}

pub fn seats_in(event_id: &str, ids: &[u32]) -> pb::HoldSeatsRequest {
    pb::HoldSeatsRequest {
        event_id: event_id.into(),
        selection: Some(pb::hold_seats_request::Selection::Seats(
            pb::SeatSelection {
                seat_ids: ids.to_vec(),
            },
        )),
    }
}

pub fn best(event_id: &str, section: &str, quantity: u32) -> pb::HoldSeatsRequest {
    pb::HoldSeatsRequest {
        event_id: event_id.into(),
        selection: Some(pb::hold_seats_request::Selection::BestAvailable(
            pb::BestAvailable {
                section_id: section.into(),
                quantity,
            },
        )),
    }
}

pub fn good_card() -> pb::Card {
    card("4242424242424242")
}

pub fn card(number: &str) -> pb::Card {
    pb::Card {
        number: number.into(),
        exp_month: 12,
        exp_year: 2099,
        cvc: "123".into(),
    }
}

/// Seat statuses of an event by seat id (index 0 is seat 1), from the public seat map.
pub async fn seat_statuses(server: &TestServer, event_id: &str) -> Vec<i32> {
    let map = server
        .sales()
        .get_seat_map(pb::GetSeatMapRequest {
            event_id: event_id.into(),
            section_ids: vec![],
        })
        .await
        .expect("seat map")
        .into_inner();
    let mut statuses = Vec::new();
    for section in map.sections {
        let summary = section.summary.expect("summary");
        if section.rows.is_empty() {
            // General admission: the map carries counts only.
            continue;
        }
        for row in section.rows {
            for (i, status) in row.statuses.iter().enumerate() {
                let id = (row.first_seat_id + i as u32) as usize;
                if statuses.len() < id {
                    statuses.resize(id, 0);
                }
                statuses[id - 1] = *status;
            }
        }
        let _ = summary;
    }
    statuses
}

/// A 40-seat seated hall: section "s", 4 rows of 10.
pub const HALL: &str = r#"
[venue]
id = "hall"
name = "Hall"
[[sections]]
id = "s"
name = "Stalls"
kind = "seated"
price = 50
row_count = 4
seats_per_row = 10
"#;

/// The seat ids of a hold's answer; panics if it carries no hold.
pub fn held_ids(response: tonic::Response<pb::HoldSeatsResponse>) -> Vec<u32> {
    response
        .into_inner()
        .hold
        .expect("hold")
        .seats
        .iter()
        .map(|s| s.seat_id)
        .collect()
}

/// Holds seats; panics on failure.
pub async fn held(client: &mut SalesClientWithPass, request: pb::HoldSeatsRequest) -> pb::Hold {
    client
        .hold_seats(request)
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold")
}

/// Checks out a hold; panics on failure.
pub async fn checkout_hold(
    client: &mut SalesClientWithPass,
    hold_id: String,
    key: String,
) -> pb::Order {
    client
        .checkout(pb::CheckoutRequest {
            hold_id,
            idempotency_key: key,
        })
        .await
        .expect("checkout")
        .into_inner()
        .order
        .expect("order")
}

/// Fan `i` (`fan-<i>`) holds seats 2i+1 and 2i+2 of event `ev` and checks out; returns the
/// order id.
pub async fn order_of(server: &TestServer, fan: u32) -> String {
    let mut client = server.fan("ev", &format!("fan-{fan}"));
    let hold = client
        .hold_seats(seats_in("ev", &[2 * fan + 1, 2 * fan + 2]))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    checkout_hold(&mut client, hold.hold_id, format!("checkout-fan-{fan}"))
        .await
        .order_id
}

/// Pays an order with the card that always works; returns the order afterwards.
pub async fn pay_order(
    client: &mut SalesClientWithPass,
    order_id: String,
    key: String,
) -> pb::Order {
    client
        .pay(pb::PayRequest {
            order_id,
            idempotency_key: key,
            card: Some(good_card()),
        })
        .await
        .expect("pay")
        .into_inner()
        .order
        .expect("order")
}

/// The order as `GetOrder` shows it; panics on failure.
pub async fn stored_order(client: &mut SalesClientWithPass, order_id: &str) -> pb::Order {
    client
        .get_order(pb::GetOrderRequest {
            order_id: order_id.into(),
        })
        .await
        .expect("get order")
        .into_inner()
}

/// A minimal HTTP/1.1 GET over loopback.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read");
    body
}

/// Opens `event_id`'s general sale now.
pub fn open_general_now(event_id: &str) -> pb::OpenSaleRequest {
    pb::OpenSaleRequest {
        event_id: event_id.into(),
        phase: pb::SalePhase::General as i32,
        opens_at_unix_ms: 0,
        presale_codes: vec![],
    }
}

/// Opens event `event_id`'s sale now in `phase` with presale `codes`.
pub async fn open(server: &TestServer, event_id: &str, phase: pb::SalePhase, codes: &[&str]) {
    server
        .operator()
        .open_sale(pb::OpenSaleRequest {
            event_id: event_id.into(),
            phase: phase as i32,
            opens_at_unix_ms: 0,
            presale_codes: codes.iter().map(|c| c.to_string()).collect(),
        })
        .await
        .expect("open sale");
}

/// Sets event `ev`'s valve to 6,000 fans a minute with `burst` and `max_active`, then opens
/// its general sale now.
pub async fn open_admitting(server: &TestServer, burst: u32, max_active: u32) {
    server
        .operator()
        .set_admission(pb::SetAdmissionRequest {
            event_id: "ev".into(),
            rate_per_minute: 6_000,
            burst,
            max_active,
            pow_difficulty_bits: 0,
            auto: false,
        })
        .await
        .expect("admission");
    open(server, "ev", pb::SalePhase::General, &[]).await;
}

/// A server allowing 6 joins a minute per fingerprint (a burst of 3), with event `ev`.
pub async fn limiting_fingerprints(backend: Backend) -> TestServer {
    let server = TestServer::start_with(
        backend,
        std::sync::Arc::new(taquilla_server::domain::clock::SystemClock),
        |c| c.join_rate_per_fingerprint = 6,
    )
    .await;
    create_event(&server, "ev", HALL, 4).await;
    server
}

/// An answer to `challenge`: the right nonce, or one that does not answer it.
pub fn answer(challenge: &pb::PowChallenge, right: bool) -> Option<pb::PowSolution> {
    let (text, bits) = (&challenge.challenge, challenge.difficulty_bits);
    let nonce = if right {
        taquilla_server::tokens::solve_pow(text, bits)
    } else {
        (0u64..)
            .map(|n| n.to_string())
            .find(|n| taquilla_server::tokens::pow_zero_bits(text, n) < bits)
            .expect("a wrong nonce")
    };
    Some(pb::PowSolution {
        challenge: text.clone(),
        nonce,
    })
}
