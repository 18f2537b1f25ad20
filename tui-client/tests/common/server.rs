//! A real server for the tests that need one: embedded storage in a temp dir, one small event
//! created and put on sale through the operator API.

use std::net::SocketAddr;

use taquilla_proto::v1 as pb;
use taquilla_test_support::{LocalServer, test_config};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

pub const TOKEN: &str = taquilla_test_support::OPERATOR_TOKEN;
pub const EVENT: &str = "sala-e2e";

const LAYOUT: &str = r#"
[venue]
id = "sala-e2e"
name = "Sala E2E"
city = "Madrid"

[[sections]]
id = "a"
name = "Block A"
kind = "seated"
price = 55.00
row_count = 3
seats_per_row = 12

[[sections]]
id = "floor"
name = "Floor"
kind = "general_admission"
price = 35.00
capacity = 50
"#;

type Interceptor = fn(Request<()>) -> Result<Request<()>, Status>;
pub type Operator = pb::operator_client::OperatorClient<InterceptedService<Channel, Interceptor>>;

fn with_token(mut request: Request<()>) -> Result<Request<()>, Status> {
    let value = format!("Bearer {TOKEN}")
        .parse()
        .map_err(|_| Status::internal("token is not ASCII"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub ops: Operator,
    _server: LocalServer,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with event [`EVENT`] created (a seated block of 36 and a floor of 50,
    /// 2.50 EUR fee per ticket). The sale is not open yet.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = LocalServer::start(&test_config(dir.path().to_path_buf()))
            .await
            .expect("server starts");
        let addr = server.addr;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut ops = pb::operator_client::OperatorClient::with_interceptor(
            channel,
            with_token as Interceptor,
        );
        ops.create_event(pb::CreateEventRequest {
            event_id: EVENT.into(),
            name: "Sala E2E Night".into(),
            artist: "The Testers".into(),
            starts_at_unix_ms: 1_900_000_000_000,
            currency: "EUR".into(),
            fee_per_ticket_minor: 250,
            max_tickets_per_fan: 4,
            layout: Some(pb::create_event_request::Layout::LayoutToml(LAYOUT.into())),
        })
        .await
        .expect("create event");
        ops.set_admission(pb::SetAdmissionRequest {
            event_id: EVENT.into(),
            rate_per_minute: 6_000,
            burst: 0,
            max_active: 100,
            pow_difficulty_bits: 0,
            auto: false,
        })
        .await
        .expect("admission");
        TestServer {
            addr,
            ops,
            _server: server,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Opens the general sale now.
    pub async fn open_sale(&mut self) {
        self.ops
            .open_sale(pb::OpenSaleRequest {
                event_id: EVENT.into(),
                phase: pb::SalePhase::General as i32,
                opens_at_unix_ms: 0,
                presale_codes: Vec::new(),
            })
            .await
            .expect("open sale");
    }
}
