//! Joining through `Watch` (one call: join, then stream, the first message carrying the queue
//! token) against a real server on both backends.

mod common;

use std::time::Duration;

use common::*;
use taquilla_proto::v1 as pb;
use tonic::Code;

/// Calls `Watch` with a join request for `fingerprint`; returns the stream and its first message.
async fn join_watching(
    server: &TestServer,
    fingerprint: &str,
    pow_solution: Option<pb::PowSolution>,
) -> Result<(tonic::Streaming<pb::QueueUpdate>, pb::QueueUpdate), tonic::Status> {
    let mut stream = server
        .waiting_room()
        .watch(pb::WatchRequest {
            queue_token: String::new(),
            join: Some(pb::JoinRequest {
                event_id: "ev".into(),
                fingerprint: fingerprint.into(),
                presale_code: String::new(),
                pow_solution,
            }),
        })
        .await?
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an immediate first message")?
        .expect("a first message");
    Ok((stream, first))
}

/// Joining through `Watch` is joining: one place per fan however many calls (of either kind,
/// at the same moment) make it, Join's limits and proof of work, and the admission arriving on
/// the stream the fan joined on.
async fn joining_through_watch_is_joining(backend: Backend) {
    let server = limiting_fingerprints(backend).await;
    let err = server
        .waiting_room()
        .watch(pb::WatchRequest::default())
        .await
        .expect_err("nothing to watch");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("queue token"), "{err:?}");

    // 30 fans, each joining three times at once: twice through Watch, once with Join.
    let mut calls = Vec::new();
    for fan in 0..30 {
        let fingerprint = format!("fan-{fan}");
        for kind in 0..3 {
            let (server, fingerprint) = (&server, fingerprint.clone());
            calls.push(async move {
                if kind == 2 {
                    let joined = server
                        .waiting_room()
                        .join(pb::JoinRequest {
                            event_id: "ev".into(),
                            fingerprint: fingerprint.clone(),
                            ..Default::default()
                        })
                        .await
                        .expect("join")
                        .into_inner();
                    (fingerprint, joined.queue_token, joined.status, None)
                } else {
                    let (stream, first) = join_watching(server, &fingerprint, None)
                        .await
                        .expect("join through watch");
                    (fingerprint, first.queue_token, first.status, Some(stream))
                }
            });
        }
    }
    let answers = futures_util::future::join_all(calls).await;
    let mut tokens = std::collections::HashMap::new();
    let mut streams = Vec::new();
    for (fingerprint, token, status, stream) in answers {
        assert!(
            !token.is_empty(),
            "{fingerprint}: the first message carries the token"
        );
        let status = status.expect("the status beside the token");
        assert_eq!(status.state, pb::QueueState::Prequeue as i32);
        let known = tokens.entry(fingerprint.clone()).or_insert(token.clone());
        assert_eq!(*known, token, "{fingerprint} got two places");
        if let Some(stream) = stream {
            streams.push((fingerprint, stream));
        }
    }
    assert_eq!(tokens.len(), 30);
    let stats = server.stats("ev").await;
    assert_eq!(stats.prequeue, 30, "one place per fan: {stats:?}");

    // Join's limit per fingerprint (a burst of 3) counts these joins too.
    let err = join_watching(&server, "fan-0", None)
        .await
        .expect_err("over the fingerprint's limit");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.metadata().get("retry-after-ms").is_some(), "{err:?}");

    // At opening every fan hears of the admission on the stream it joined on, pass included.
    open_admitting(&server, 60, 60).await;
    let mut admitted = std::collections::HashSet::new();
    for (fingerprint, mut stream) in streams {
        let pass = loop {
            let update = tokio::time::timeout(Duration::from_secs(10), stream.message())
                .await
                .expect("admitted within 10 s")
                .expect("ok")
                .expect("open");
            assert!(update.queue_token.is_empty(), "the token comes once");
            if let Some(pass) = update.admission_pass {
                break pass;
            }
        };
        assert!(!pass.token.is_empty());
        admitted.insert(fingerprint);
    }
    assert_eq!(admitted.len(), 30);

    // Proof of work through Watch: a challenge alone, then the stream ends; solved, a place.
    server
        .operator()
        .set_admission(pb::SetAdmissionRequest {
            event_id: "ev".into(),
            rate_per_minute: 60,
            burst: 1,
            max_active: 60,
            pow_difficulty_bits: 8,
            auto: false,
        })
        .await
        .expect("pow on");
    let (mut stream, asked) = join_watching(&server, "careful", None)
        .await
        .expect("a challenge");
    assert!(asked.queue_token.is_empty() && asked.status.is_none());
    let challenge = asked.challenge.expect("a challenge");
    assert_eq!(challenge.difficulty_bits, 8);
    assert!(
        stream.message().await.expect("ends cleanly").is_none(),
        "the stream ends after the challenge"
    );
    let err = join_watching(&server, "careful", answer(&challenge, false))
        .await
        .expect_err("wrong answer");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let (_, placed) = join_watching(&server, "careful", answer(&challenge, true))
        .await
        .expect("solved");
    assert!(!placed.queue_token.is_empty());
    let state = placed.status.expect("status").state;
    assert!(
        [
            pb::QueueState::Waiting as i32,
            pb::QueueState::Admitted as i32
        ]
        .contains(&state),
        "{state}"
    );
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

on_every_backend!(joining_through_watch_is_joining);
