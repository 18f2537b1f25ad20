//! The foundation, end to end through gRPC on both backends: health, reflection, operator
//! authentication, event creation from layouts, the LUX Tour demo and seat maps.

mod common;

use common::{Backend, SIGNING_KEY, TestServer, http_get, small_event};
use prost::Message;
use taquilla_proto::v1 as pb;
use taquilla_server::tokens::{PassClaims, QueueClaims, Signer, TokenKind};
use tokio_stream::StreamExt;
use tonic::Code;

async fn health_answers_serving(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel.clone());
    for service in [
        "",
        "taquilla.v1.WaitingRoom",
        "taquilla.v1.Sales",
        "taquilla.v1.Operator",
    ] {
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(
            response.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }
    server.stop().await;
}

async fn reflection_lists_the_three_services(backend: Backend) {
    let server = TestServer::start(backend).await;
    // v1
    {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(server.channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection v1")
            .into_inner();
        let response = responses.next().await.expect("a response").expect("ok");
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("expected a service list");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for expected in [
            "taquilla.v1.WaitingRoom",
            "taquilla.v1.Sales",
            "taquilla.v1.Operator",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }
    // v1alpha, for older clients
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(server.channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "taquilla.v1.Sales".into(),
            )),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection v1alpha")
            .into_inner();
        let response = responses.next().await.expect("a response").expect("ok");
        let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
            panic!("expected file descriptors");
        };
        let files: Vec<prost_types::FileDescriptorProto> = files
            .file_descriptor_proto
            .iter()
            .map(|bytes| {
                prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("descriptor")
            })
            .collect();
        let sales = files
            .iter()
            .flat_map(|f| &f.service)
            .find(|s| s.name() == "Sales")
            .expect("Sales service descriptor");
        let methods: Vec<&str> = sales.method.iter().map(|m| m.name()).collect();
        assert_eq!(
            methods,
            [
                "ListEvents",
                "GetSeatMap",
                "WatchAvailability",
                "HoldSeats",
                "ReleaseHold",
                "Checkout",
                "Pay",
                "GetOrder"
            ]
        );
    }
    server.stop().await;
}

async fn operator_rpcs_need_the_operator_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let seed = || pb::SeedDemoRequest {
        scenario: "no-such-demo".into(),
    };

    let err = server
        .operator_without_token()
        .seed_demo(seed())
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message().contains("operator token"),
        "{}",
        err.message()
    );

    let mut wrong = tonic::Request::new(seed());
    wrong.metadata_mut().insert(
        "authorization",
        "Bearer not-the-token".parse().expect("ascii"),
    );
    let err = server
        .operator_without_token()
        .seed_demo(wrong)
        .await
        .expect_err("wrong token");
    assert_eq!(err.code(), Code::Unauthenticated);

    // A fan's genuine credentials are recognised and refused as the wrong kind of caller.
    let signer = Signer::new(SIGNING_KEY.as_bytes()).expect("key");
    let pass = signer.sign(
        TokenKind::AdmissionPass,
        &PassClaims {
            ev: "e".into(),
            fan: "f".into(),
            en: "n".into(),
            iat: 0,
            exp: i64::MAX,
        },
    );
    let queue = signer.sign(
        TokenKind::Queue,
        &QueueClaims {
            ev: "e".into(),
            en: "n".into(),
            fp: "f".into(),
            iat: 0,
        },
    );
    for credential in [pass.clone(), queue] {
        let mut fan = tonic::Request::new(seed());
        fan.metadata_mut().insert(
            "authorization",
            format!("Bearer {credential}").parse().expect("ascii"),
        );
        let err = server
            .operator_without_token()
            .seed_demo(fan)
            .await
            .expect_err("fan token");
        assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    }
    let mut with_pass = tonic::Request::new(seed());
    with_pass.metadata_mut().insert(
        taquilla_proto::ADMISSION_PASS_HEADER,
        pass.parse().expect("ascii"),
    );
    let err = server
        .operator_without_token()
        .seed_demo(with_pass)
        .await
        .expect_err("pass header");
    assert_eq!(err.code(), Code::PermissionDenied);

    // With the token, the call reaches the service (which then refuses the unknown demo).
    let err = server
        .operator()
        .seed_demo(seed())
        .await
        .expect_err("unknown demo");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("lux-tour"), "{}", err.message());
    server.stop().await;
}

async fn lux_tour_seeds_142000_seats_in_8_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut operator = server.operator();
    let seeded = server.seed_lux_tour().await;
    assert_eq!(seeded.seats_created, 142_000);
    assert_eq!(seeded.events.len(), 8);

    let events = server
        .sales()
        .list_events(pb::ListEventsRequest {})
        .await
        .expect("list")
        .into_inner()
        .events;
    assert_eq!(events.len(), 8);
    let capacity: u32 = events
        .iter()
        .map(|e| e.inventory.expect("inventory").capacity)
        .sum();
    let available: u32 = events
        .iter()
        .map(|e| e.inventory.expect("inventory").available)
        .sum();
    assert_eq!(capacity, 142_000);
    assert_eq!(available, 142_000);
    let madrid = events
        .iter()
        .filter(|e| e.venue.as_ref().is_some_and(|v| v.city == "Madrid"));
    assert_eq!(madrid.count(), 4);
    for event in &events {
        let section_sum: u32 = event.sections.iter().map(|s| s.capacity).sum();
        assert_eq!(
            section_sum,
            event.inventory.expect("inventory").capacity,
            "{}",
            event.id
        );
        assert_eq!(
            event.min_price.as_ref().map(|m| m.amount_minor),
            Some(4_500)
        );
        assert_eq!(
            event.max_price.as_ref().map(|m| m.amount_minor),
            Some(50_000)
        );
        assert_eq!(event.sale_state, pb::SaleState::NotOpen as i32);
    }
    // Events are listed by start time.
    let starts: Vec<i64> = events.iter().map(|e| e.starts_at_unix_ms).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));

    // Seeding again changes nothing.
    let again = operator
        .seed_demo(pb::SeedDemoRequest {
            scenario: String::new(),
        })
        .await
        .expect("seed again")
        .into_inner();
    assert_eq!(again.seats_created, 0);
    assert_eq!(again.events.len(), 8);
    server.stop().await;
}

async fn seat_map_of_an_arena_is_one_compact_message(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.seed_lux_tour().await;
    let mut sales = server.sales();
    let map = sales
        .get_seat_map(pb::GetSeatMapRequest {
            event_id: "lux-bcn-2026-04-13".into(),
            section_ids: vec![],
        })
        .await
        .expect("seat map")
        .into_inner();
    let bytes = map.encoded_len();
    assert!(bytes < 64 * 1024, "an 18,000-seat map takes {bytes} bytes");
    let mut seats = 0u32;
    let mut seen_ids = std::collections::HashSet::new();
    for section in &map.sections {
        let summary = section.summary.as_ref().expect("summary");
        if summary.kind == pb::SectionKind::GeneralAdmission as i32 {
            assert!(section.rows.is_empty());
            seats += summary.capacity;
            continue;
        }
        let in_rows: u32 = section.rows.iter().map(|r| r.statuses.len() as u32).sum();
        assert_eq!(in_rows, summary.capacity, "section {}", summary.id);
        for row in &section.rows {
            for (i, status) in row.statuses.iter().enumerate() {
                assert_eq!(*status, pb::SeatStatus::Available as i32);
                assert!(
                    seen_ids.insert(row.first_seat_id + i as u32),
                    "seat ids are unique"
                );
            }
        }
        seats += in_rows;
    }
    assert_eq!(seats, 18_000);

    // One section only.
    let vip = sales
        .get_seat_map(pb::GetSeatMapRequest {
            event_id: "lux-bcn-2026-04-13".into(),
            section_ids: vec!["vip".into()],
        })
        .await
        .expect("vip map")
        .into_inner();
    assert_eq!(vip.sections.len(), 1);
    assert_eq!(vip.sections[0].rows.len(), 10);
    assert_eq!(vip.sections[0].rows[0].first_seat_id, 1);
    assert_eq!(
        vip.sections[0]
            .summary
            .as_ref()
            .and_then(|s| s.price.clone())
            .map(|p| p.amount_minor),
        Some(50_000)
    );

    // Unknown and malformed names get clear answers.
    let err = sales
        .get_seat_map(pb::GetSeatMapRequest {
            event_id: "lux-bcn-2099-01-01".into(),
            section_ids: vec![],
        })
        .await
        .expect_err("unknown event");
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("lux-bcn-2099-01-01"),
        "{}",
        err.message()
    );
    let err = sales
        .get_seat_map(pb::GetSeatMapRequest {
            event_id: "lux-bcn-2026-04-13".into(),
            section_ids: vec!["nope".into()],
        })
        .await
        .expect_err("unknown section");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("nope"), "{}", err.message());
    let err = sales
        .get_seat_map(pb::GetSeatMapRequest {
            event_id: "Not An Id!".into(),
            section_ids: vec![],
        })
        .await
        .expect_err("bad id");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("event_id"), "{}", err.message());
    server.stop().await;
}

async fn events_are_created_from_layouts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut operator = server.operator();
    let created = operator
        .create_event(small_event("test-night"))
        .await
        .expect("create")
        .into_inner()
        .event
        .expect("event");
    assert_eq!(created.id, "test-night");
    assert_eq!(created.inventory.expect("inventory").capacity, 20);
    assert_eq!(created.sections.len(), 2);
    assert_eq!(created.fee_per_ticket.map(|m| m.amount_minor), Some(250));

    // The same layout as JSON and as a proto structure.
    let json = r#"{"venue":{"id":"sala-json","name":"Sala JSON"},
        "sections":[{"id":"ga","name":"GA","kind":"general_admission","price_minor":1000,"capacity":7}]}"#;
    let mut request = small_event("json-night");
    request.layout = Some(pb::create_event_request::Layout::LayoutJson(json.into()));
    let event = operator
        .create_event(request)
        .await
        .expect("json")
        .into_inner()
        .event
        .expect("event");
    assert_eq!(event.inventory.expect("inventory").capacity, 7);

    let mut request = small_event("proto-night");
    request.layout = Some(pb::create_event_request::Layout::VenueLayout(
        pb::VenueLayout {
            venue: Some(pb::Venue {
                id: "sala-proto".into(),
                name: "Sala Proto".into(),
                city: "Bilbao".into(),
            }),
            sections: vec![pb::SectionLayout {
                id: "s".into(),
                name: "Stalls".into(),
                kind: pb::SectionKind::Seated as i32,
                price_minor: 2_000,
                rows: vec![pb::RowLayout {
                    label: "A".into(),
                    seats: 12,
                    first_number: 0,
                }],
                capacity: 0,
            }],
        },
    ));
    let event = operator
        .create_event(request)
        .await
        .expect("proto")
        .into_inner()
        .event
        .expect("event");
    assert_eq!(event.inventory.expect("inventory").capacity, 12);

    // Taken ids and bad layouts are refused, and nothing is half-created.
    let err = operator
        .create_event(small_event("test-night"))
        .await
        .expect_err("duplicate");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("test-night"), "{}", err.message());

    let mut bad = small_event("bad-night");
    bad.layout = Some(pb::create_event_request::Layout::LayoutToml(
        "[venue]\nid = \"v\"\nname = \"V\"\n[[sections]]\nid = \"a\"\nname = \"A\"\nkind = \"seated\"\nprice = 10\nrows = [ { label = \"A\", seats = 0 } ]\n".into(),
    ));
    let err = operator.create_event(bad).await.expect_err("zero seats");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("row \"A\" has 0 seats"),
        "{}",
        err.message()
    );

    let events = server
        .sales()
        .list_events(pb::ListEventsRequest {})
        .await
        .expect("list")
        .into_inner()
        .events;
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(!ids.contains(&"bad-night"));
    server.stop().await;
}

async fn metrics_count_rpcs(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .sales()
        .list_events(pb::ListEventsRequest {})
        .await
        .expect("list");
    let _ = server
        .sales()
        .get_seat_map(pb::GetSeatMapRequest {
            event_id: "missing".into(),
            section_ids: vec![],
        })
        .await;
    server
        .operator()
        .create_event(small_event("gauged"))
        .await
        .expect("create");
    taquilla_server::purchase::sweep_once(&server.state.purchases)
        .await
        .expect("sweep");
    let body = http_get(server.admin_addr, "/metrics").await;
    assert!(
        body.contains("taquilla_seats{event=\"gauged\",status=\"available\"} 20"),
        "{body}"
    );
    assert!(body.contains("taquilla_queue_waiting"), "{body}");
    assert!(
        body.contains(
            "taquilla_rpc_requests_total{method=\"/taquilla.v1.Sales/ListEvents\",code=\"OK\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains("method=\"/taquilla.v1.Sales/GetSeatMap\",code=\"NOT_FOUND\"} 1"),
        "{body}"
    );
    server.stop().await;
}

/// The Grafana dashboard the repository ships graphs only metrics `/metrics` exports (by the
/// names Prometheus stores: counters with `_total`, histograms with `_bucket`), and has a panel
/// for each thing an operator watches during a sale.
async fn the_dashboard_graphs_only_exported_metrics(backend: Backend) {
    let server = TestServer::start(backend).await;
    // What a node exports once it serves a sale: an event, calls, a sweep's figures.
    server
        .operator()
        .create_event(small_event("graphed"))
        .await
        .expect("create");
    server
        .sales()
        .list_events(pb::ListEventsRequest {})
        .await
        .expect("list");
    taquilla_server::purchase::sweep_once(&server.state.purchases)
        .await
        .expect("sweep");
    let body = http_get(server.admin_addr, "/metrics").await;
    let mut exported = std::collections::BTreeSet::new();
    for line in body.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            match kind {
                "counter" => {
                    exported.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        exported.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    exported.insert(name.to_string());
                }
            }
        }
    }
    assert!(exported.contains("taquilla_rpc_requests_total"), "{body}");

    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/grafana/taquilla-sale.json"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut titles = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for panel in panels {
        titles.push(panel["title"].as_str().expect("a title").to_lowercase());
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("taquilla_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                used.insert(name);
            }
        }
    }
    let variable = dashboard["templating"]["list"][0]["definition"]
        .as_str()
        .expect("the event variable");
    assert!(variable.contains("taquilla_queue_waiting"), "{variable}");
    // The store's round-trip counters exist on PostgreSQL only (README, "Metrics").
    let postgres_only = |name: &str| name.starts_with("taquilla_store_");
    let missing: Vec<&String> = used
        .difference(&exported)
        .filter(|name| backend == Backend::Postgres || !postgres_only(name))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard graphs {missing:?}, which /metrics does not export: {body}"
    );
    for subject in [
        "queue",
        "admissions",
        "tickets sold per second",
        "shed",
        "breakers",
        "p99",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(subject)),
            "no panel for {subject}: {titles:?}"
        );
    }
    assert!(used.len() >= 15, "{used:?}");
    server.stop().await;
}

/// A crowd admitted at once asks for the same 18,000-seat map: the node reads it from the
/// database once per wave of callers, not once per caller, and every caller still sees the
/// seats held before it asked.
async fn a_crowd_reading_one_seat_map_shares_the_reads(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.seed_lux_tour().await;
    let event = "lux-bcn-2026-04-13";
    server
        .fan(event, "early")
        .hold_seats(common::seats_in(event, &[7]))
        .await
        .expect("hold");
    let before = server.state.availability.reads();
    let callers: Vec<_> = (0..200)
        .map(|_| {
            let mut sales = server.sales();
            tokio::spawn(async move {
                sales
                    .get_seat_map(pb::GetSeatMapRequest {
                        event_id: event.into(),
                        section_ids: vec![],
                    })
                    .await
                    .map(|r| r.into_inner())
            })
        })
        .collect();
    for caller in callers {
        let map = caller.await.expect("caller").expect("seat map");
        let vip = &map.sections[0].rows[0];
        assert_eq!(vip.first_seat_id, 1);
        assert_eq!(vip.statuses[6], pb::SeatStatus::SoftLocked as i32);
        assert_eq!(vip.statuses[5], pb::SeatStatus::Available as i32);
    }
    let reads = server.state.availability.reads() - before;
    assert!(reads >= 1);
    assert!(reads <= 100, "200 callers made {reads} reads");
    server.stop().await;
}

on_both_backends!(
    health_answers_serving,
    a_crowd_reading_one_seat_map_shares_the_reads,
    reflection_lists_the_three_services,
    operator_rpcs_need_the_operator_token,
    lux_tour_seeds_142000_seats_in_8_events,
    seat_map_of_an_arena_is_one_compact_message,
    events_are_created_from_layouts,
    metrics_count_rpcs,
    the_dashboard_graphs_only_exported_metrics,
);
