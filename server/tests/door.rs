//! Tickets at the venue door: Ed25519 codes checked offline with nothing but the public keys
//! file, keys rotated without reissuing tickets and retired so their codes are refused, and a
//! check-in that admits each ticket once, even when two doors on two nodes scan it at the same
//! moment. Both backends; the two-node race on PostgreSQL + Redis.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    Backend, HALL, SIGNING_KEY, TestServer, create_event, order_of, pay_order, wait_until,
};
use taquilla_proto::tickets::{KeyState, PublicKey, PublicKeys, TicketCodeError};
use taquilla_proto::v1 as pb;
use taquilla_server::domain::clock::{Clock, ManualClock, SystemClock};
use tonic::Code;

/// Fan `fan` buys seats 2·fan+1 and 2·fan+2 of "ev" on `server`; returns the paid order.
async fn paid(server: &TestServer, fan: u32) -> pb::Order {
    let order_id = order_of(server, fan).await;
    let mut client = server.fan("ev", &format!("fan-{fan}"));
    let order = pay_order(&mut client, order_id, format!("pay-fan-{fan}")).await;
    assert_eq!(order.state, pb::OrderState::Paid as i32);
    assert_eq!(order.tickets.len(), 2);
    order
}

async fn keys(server: &TestServer) -> pb::TicketKeys {
    server
        .operator()
        .list_ticket_keys(pb::ListTicketKeysRequest {})
        .await
        .expect("keys")
        .into_inner()
}

/// The public keys file as a door scanner receives it: written out and read back, public
/// halves only.
fn scanner_file(keys: &pb::TicketKeys) -> PublicKeys {
    let file = PublicKeys::new(
        keys.keys
            .iter()
            .map(|k| PublicKey {
                kid: k.kid.clone(),
                public_key: k.public_key.clone(),
                state: KeyState::from_name(&k.state).expect("a known state"),
                created_at_ms: k.created_at_unix_ms,
                retired_at_ms: (k.retired_at_unix_ms > 0).then_some(k.retired_at_unix_ms),
            })
            .collect(),
    );
    let text = file.to_json();
    assert!(
        !text.contains(SIGNING_KEY),
        "no secret in the scanners' file"
    );
    PublicKeys::from_json(&text).expect("the file reads back")
}

async fn check_in(
    server: &TestServer,
    code: &str,
    gate: &str,
) -> Result<pb::CheckInResponse, tonic::Status> {
    server
        .operator()
        .check_in(pb::CheckInRequest {
            code: code.into(),
            gate: gate.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The code with its claims' seat changed and the signature kept.
fn tampered(code: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (body, signature) = code.rsplit_once('.').expect("a code");
    let (head, claims) = body.rsplit_once('.').expect("a code");
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).expect("base64")).expect("json");
    claims["seat"] = serde_json::json!(40);
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    format!("{head}.{claims}.{signature}")
}

async fn codes_verify_offline_and_each_ticket_gets_in_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", HALL, 4).await;
    let order = paid(&server, 0).await;
    let keys = keys(&server).await;
    assert_eq!(keys.active_kid, "k1");
    let file = scanner_file(&keys);

    // Offline, with the public keys alone.
    for ticket in &order.tickets {
        assert!(ticket.code.starts_with("tq2.k1."), "{}", ticket.code);
        let (claims, key) = file.verify(&ticket.code).expect("a genuine code");
        assert_eq!(key.kid, "k1");
        assert_eq!(claims.ev, "ev");
        assert_eq!(claims.tk, ticket.ticket_id);
        assert_eq!(claims.ord, order.order_id);
        assert_eq!(Some(claims.seat), ticket.seat.as_ref().map(|s| s.seat_id));
    }
    let forged = tampered(&order.tickets[1].code);
    assert_eq!(file.verify(&forged), Err(TicketCodeError::BadSignature));

    // At the door: in once, named seat; the second scan says when and where the first was.
    let first_code = &order.tickets[0].code;
    let admitted = check_in(&server, first_code, "north-3")
        .await
        .expect("admitted");
    assert_eq!(admitted.ticket_id, order.tickets[0].ticket_id);
    assert_eq!(admitted.gate, "north-3");
    let seat = admitted.seat.expect("the seat");
    assert_eq!(seat.section_name, "Stalls");
    assert_eq!((seat.row.as_str(), seat.number), ("A", 1));
    let again = check_in(&server, first_code, "south-1")
        .await
        .expect_err("a second scan");
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    assert!(again.message().contains("north-3"), "{}", again.message());
    let trailer = |name: &str| {
        again
            .metadata()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(
        trailer(taquilla_proto::FIRST_SCAN_GATE_HEADER).as_deref(),
        Some("north-3")
    );
    assert_eq!(
        trailer(taquilla_proto::FIRST_SCAN_AT_HEADER),
        Some(admitted.checked_in_at_unix_ms.to_string())
    );

    // A tampered code is refused and costs the genuine one nothing.
    let refused = check_in(&server, &forged, "north-3")
        .await
        .expect_err("tampered");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("altered"),
        "{}",
        refused.message()
    );
    check_in(&server, &order.tickets[1].code, "north-3")
        .await
        .expect("the genuine code still gets in");

    // A refunded ticket is refused.
    let refunded = paid(&server, 1).await;
    server
        .operator()
        .refund(pb::RefundRequest {
            order_id: refunded.order_id.clone(),
            return_seats_to_sale: false,
            reason: "test".into(),
        })
        .await
        .expect("refund");
    let status = check_in(&server, &refunded.tickets[0].code, "north-3")
        .await
        .expect_err("refunded");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("refunded"),
        "{}",
        status.message()
    );

    // A gate name that cannot travel is refused before anything is written.
    let status = check_in(&server, &refunded.tickets[1].code, "")
        .await
        .expect_err("no gate");
    assert_eq!(status.code(), Code::InvalidArgument);
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

async fn rotation_keeps_old_codes_and_retirement_refuses_them(backend: Backend) {
    let clock = ManualClock::new(SystemClock.now_ms());
    let server = TestServer::start_with(backend, Arc::new(clock.clone()), |_| {}).await;
    create_event(&server, "ev", HALL, 4).await;
    let before = paid(&server, 0).await;

    let rotated = server
        .operator()
        .rotate_ticket_key(pb::RotateTicketKeyRequest {})
        .await
        .expect("rotate")
        .into_inner();
    assert_eq!(rotated.active_kid, "k2");
    let states: Vec<(&str, &str)> = rotated
        .keys
        .iter()
        .map(|k| (k.kid.as_str(), k.state.as_str()))
        .collect();
    assert_eq!(states, [("k1", "verifying"), ("k2", "active")]);
    let after = paid(&server, 1).await;
    assert!(after.tickets[0].code.starts_with("tq2.k2."));
    let file = scanner_file(&rotated);
    assert!(
        file.verify(&before.tickets[0].code).is_ok(),
        "k1 still verifies"
    );
    assert!(file.verify(&after.tickets[0].code).is_ok());

    // Too soon: another node may still sign with k1 for a few seconds.
    let soon = server
        .operator()
        .retire_ticket_key(pb::RetireTicketKeyRequest { kid: "k1".into() })
        .await
        .expect_err("too soon");
    assert_eq!(soon.code(), Code::FailedPrecondition, "{soon:?}");
    assert!(soon.message().contains("s from now"), "{}", soon.message());

    clock.advance_ms(31_000);
    let retired = server
        .operator()
        .retire_ticket_key(pb::RetireTicketKeyRequest { kid: "k1".into() })
        .await
        .expect("retire")
        .into_inner();
    let file = scanner_file(&retired);
    match file.verify(&before.tickets[0].code) {
        Err(TicketCodeError::RetiredKey { kid, .. }) => assert_eq!(kid, "k1"),
        other => panic!("a retired key's code must be refused, got {other:?}"),
    }
    let status = check_in(&server, &before.tickets[0].code, "east")
        .await
        .expect_err("retired");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("retired"), "{}", status.message());
    check_in(&server, &after.tickets[0].code, "east")
        .await
        .expect("a k2 code gets in");

    for (kid, code) in [("k2", Code::FailedPrecondition), ("k9", Code::NotFound)] {
        let status = server
            .operator()
            .retire_ticket_key(pb::RetireTicketKeyRequest { kid: kid.into() })
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{kid}: {status:?}");
    }
    server.stop().await;
}

/// Codes issued before Ed25519 (HMAC, `tq1`) still get in until their event has passed.
async fn older_codes_get_in_until_the_event(backend: Backend) {
    use taquilla_server::tokens::{Signer, TicketClaims, TokenKind, ticket_key};
    let clock = ManualClock::new(SystemClock.now_ms());
    let server = TestServer::start_with(backend, Arc::new(clock.clone()), |_| {}).await;
    create_event(&server, "ev", HALL, 4).await;
    let order = paid(&server, 0).await;
    let legacy = |ticket: &pb::Ticket| {
        Signer::new(&ticket_key(SIGNING_KEY.as_bytes(), "ev"))
            .expect("key")
            .sign(
                TokenKind::Ticket,
                &TicketClaims {
                    ev: "ev".into(),
                    seat: ticket.seat.as_ref().map(|s| s.seat_id).unwrap_or_default(),
                    ord: order.order_id.clone(),
                    tk: ticket.ticket_id.clone(),
                    iat: 1,
                },
            )
    };
    let old = legacy(&order.tickets[0]);
    assert!(old.starts_with("tq1."));
    check_in(&server, &old, "west")
        .await
        .expect("an older code gets in before the event");

    // The event (small_event: 1,900,000,000,000) has passed by more than a day.
    clock.advance_ms(1_900_000_000_000 + 25 * 3_600_000 - clock.now_ms());
    let status = check_in(&server, &legacy(&order.tickets[1]), "west")
        .await
        .expect_err("passed");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("passed"), "{}", status.message());
    server.stop().await;
}

/// Every ticket scanned at two doors at the same moment (on two nodes sharing PostgreSQL and
/// Redis; on one embedded node) gets in exactly once; the refused scan names the winner's gate.
async fn two_doors_scanning_one_ticket_admit_it_once(backend: Backend) {
    let a = TestServer::start(backend).await;
    let b = match backend {
        Backend::Postgres | Backend::RedisCluster => Some(
            TestServer::start_with(backend, Arc::new(SystemClock), |c| {
                c.database_url = a.database.as_ref().map(|db| db.url.clone());
                c.redis_namespace = a
                    .redis
                    .as_ref()
                    .map(|ns| ns.name.clone())
                    .unwrap_or_default();
            })
            .await,
        ),
        Backend::Sqlite => None,
    };
    let other = b.as_ref().unwrap_or(&a);
    create_event(&a, "ev", HALL, 4).await;
    let mut codes = Vec::new();
    for fan in 0..6 {
        codes.extend(paid(&a, fan).await.tickets.into_iter().map(|t| t.code));
    }
    for code in &codes {
        let (on_a, on_b) = tokio::join!(
            check_in(&a, code, "gate-a"),
            check_in(other, code, "gate-b")
        );
        let (won, lost) = match (on_a, on_b) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            (a, b) => panic!("exactly one door admits {code}: {a:?} / {b:?}"),
        };
        assert_eq!(lost.code(), Code::AlreadyExists, "{lost:?}");
        assert!(lost.message().contains(&won.gate), "{}", lost.message());
    }
    // A crowd of doors on one ticket: still one admission.
    let paid_more = paid(&a, 7).await;
    let code = paid_more.tickets[0].code.clone();
    let scans: Vec<_> = (0..12)
        .map(|i| {
            let server = if i % 2 == 0 { &a } else { other };
            check_in(server, &code, if i % 2 == 0 { "gate-a" } else { "gate-b" })
        })
        .collect();
    let results = futures_util::future::join_all(scans).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|s| s.code() == Code::AlreadyExists)
    );
    a.assert_audit_clean("ev").await;

    // A rotation on one node reaches the other's signing within seconds.
    if let Some(b) = &b {
        a.operator()
            .rotate_ticket_key(pb::RotateTicketKeyRequest {})
            .await
            .expect("rotate");
        wait_until(
            "the other node signs with k2",
            Duration::from_secs(15),
            || async { b.state.purchases.tickets.signer().kid() == "k2" },
        )
        .await;
    }
    if let Some(b) = b {
        b.stop().await;
    }
    a.stop().await;
}

on_both_backends!(
    codes_verify_offline_and_each_ticket_gets_in_once,
    rotation_keeps_old_codes_and_retirement_refuses_them,
    older_codes_get_in_until_the_event,
    two_doors_scanning_one_ticket_admit_it_once,
);
