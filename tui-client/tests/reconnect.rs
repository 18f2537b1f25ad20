//! The queue stream survives a dropped connection: with a proxy between the app's network layer
//! and a real server, the test cuts every connection and refuses new ones for a while. The app
//! must say the link is lost, retry with backoff using the same queue token, come back live,
//! still hold exactly one place, and be admitted from it when the sale opens.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::server::{EVENT, TestServer};
use taquilla_fan::app::{Command, Link, Msg, Net, ShuffleCheck};
use taquilla_fan::net::{Network, channel};
use taquilla_proto::v1 as pb;
use tokio::sync::Mutex;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// A TCP proxy that can drop every open connection and refuse new ones.
struct Proxy {
    addr: std::net::SocketAddr,
    refuse: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let refuse = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (r, c) = (refuse.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if r.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                c.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Proxy {
            addr,
            refuse,
            connections,
        }
    }

    /// Drops every open connection and refuses new ones until [`Proxy::heal`].
    async fn cut(&self) {
        self.refuse.store(true, Ordering::SeqCst);
        for task in self.connections.lock().await.drain(..) {
            task.abort();
        }
    }

    fn heal(&self) {
        self.refuse.store(false, Ordering::SeqCst);
    }
}

/// The next network message that `pick` accepts, within 20 seconds.
async fn next<T>(
    rx: &mut UnboundedReceiver<Msg>,
    what: &str,
    mut pick: impl FnMut(Net) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let msg = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 20 s"))
            .expect("channel open");
        if let Msg::Net(net) = msg
            && let Some(found) = pick(*net)
        {
            return found;
        }
    }
}

async fn queued_fans(server: &mut TestServer) -> u64 {
    let stats = server
        .ops
        .get_stats(pb::GetStatsRequest {
            event_id: EVENT.into(),
        })
        .await
        .expect("stats")
        .into_inner();
    stats.prequeue + stats.waiting.iter().map(|t| t.waiting).sum::<u64>() + stats.active
}

/// Fans with a live queue stream, as the server counts them.
async fn watchers(server: &mut TestServer) -> u64 {
    server
        .ops
        .get_stats(pb::GetStatsRequest {
            event_id: EVENT.into(),
        })
        .await
        .expect("stats")
        .into_inner()
        .watchers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_stream_reconnects_with_the_same_token_and_keeps_the_place() {
    let mut server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut network = Network::new(
        channel(&format!("http://{}", proxy.addr), &Default::default()).expect("address"),
        tx,
    );

    network.run(Command::Join {
        event_id: EVENT.into(),
        fingerprint: "fp-reconnect".into(),
        presale_code: String::new(),
    });
    let joined = next(&mut rx, "join answer", |net| match net {
        Net::Joined(result) => Some(result.expect("joined")),
        _ => None,
    })
    .await;
    let token = joined.queue_token.clone();
    network.run(Command::WatchQueue {
        token: token.clone(),
    });
    next(&mut rx, "live link", |net| {
        matches!(net, Net::Link(Link::Live)).then_some(())
    })
    .await;
    let first = next(&mut rx, "queue update", |net| match net {
        Net::Queue(update) => update.status,
        _ => None,
    })
    .await;
    assert_eq!(first.state(), pb::QueueState::Prequeue);
    assert_eq!(queued_fans(&mut server).await, 1);

    proxy.cut().await;
    let lost = next(&mut rx, "lost link", |net| match net {
        Net::Link(link @ Link::Lost { .. }) => Some(link),
        _ => None,
    })
    .await;
    assert!(matches!(lost, Link::Lost { attempt: 1, .. }), "{lost:?}");
    // While refused, the retries back off and keep reporting.
    let again = next(&mut rx, "second lost link", |net| match net {
        Net::Link(Link::Lost { attempt, .. }) if attempt >= 2 => Some(attempt),
        _ => None,
    })
    .await;
    assert!(again >= 2);

    proxy.heal();
    next(&mut rx, "live link after healing", |net| {
        matches!(net, Net::Link(Link::Live)).then_some(())
    })
    .await;
    // Same token, same single place: reconnecting did not join the fan again.
    assert_eq!(queued_fans(&mut server).await, 1);
    assert_eq!(watchers(&mut server).await, 1);

    server.open_sale().await;
    let pass = next(&mut rx, "admission", |net| match net {
        Net::Queue(update) => update.admission_pass,
        _ => None,
    })
    .await;
    assert_eq!(pass.event_id, EVENT);
    assert!(!pass.token.is_empty());

    // The fan, alone in the early queue, checks the shuffle's proof: first place.
    assert_eq!(first.shuffle_commitment.len(), 64, "told in the pre-queue");
    network.run(Command::CheckShuffle {
        event_id: EVENT.into(),
        token: token.clone(),
        shown_position: 1,
        commitment_seen: first.shuffle_commitment.clone(),
    });
    let check = next(&mut rx, "shuffle check", |net| match net {
        Net::ShuffleChecked(check) => Some(check),
        _ => None,
    })
    .await;
    assert_eq!(check, ShuffleCheck::Verified { position: 1 });
    network.run(Command::CheckShuffle {
        event_id: EVENT.into(),
        token,
        shown_position: 2,
        commitment_seen: first.shuffle_commitment,
    });
    let check = next(&mut rx, "shuffle check", |net| match net {
        Net::ShuffleChecked(check) => Some(check),
        _ => None,
    })
    .await;
    assert!(matches!(check, ShuffleCheck::Failed(_)), "{check:?}");
}
