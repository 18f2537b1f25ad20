//! The app's gRPC work. Each [`Command`] runs in a background task that answers on the app's
//! channel with a [`Net`] message, so a slow server never freezes the screen. The queue and
//! availability streams reconnect with capped, jittered exponential backoff; the queue stream
//! reuses the same queue token, so a dropped connection never costs the fan their place.

use std::time::Duration;

use taquilla_proto::v1 as pb;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;

use crate::app::{Command, Failure, Link, Msg, Net, Selection, ShuffleCheck, check_shuffle};

/// How long a unary call may take before the fan is told and may retry.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the shuffle's proof (up to a few megabytes) may take to download.
const PROOF_TIMEOUT: Duration = Duration::from_secs(60);
/// HTTP/2 PING every this long on the connection, whatever the streams do: a quiet queue
/// stream is normal (the server writes only when something changed), so a dead connection is
/// found by the connection's own ping going unanswered, within interval + timeout.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts for a join refused as busy or unreachable before the fan is asked to retry.
const JOIN_ATTEMPTS: u32 = 6;

/// Runs commands against one server.
pub struct Network {
    channel: Channel,
    tx: UnboundedSender<Msg>,
    queue_watch: Option<JoinHandle<()>>,
    availability: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Network")
    }
}

/// Checks the server address and prepares a channel that connects on first use (and again
/// after a drop), so the app starts at once even when the server is down.
pub fn channel(server: &str, tls: &taquilla_proto::client::ClientTls) -> Result<Channel, String> {
    let endpoint = taquilla_proto::client::endpoint(server, tls)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// Whether trying the same call again later may succeed.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Unknown
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Internal
            | Code::Cancelled
    )
}

/// Delay before retry `attempt` (1-based): 0.5 s doubling to 16 s, with up to 25% jitter so a
/// crowd that lost the server together does not come back together.
pub fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1 << attempt.saturating_sub(1).min(5));
    let jitter = rand_below(base / 4 + 1);
    Duration::from_millis(base + jitter)
}

fn rand_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(n);
    hasher.finish() % n.max(1)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn with_pass<T>(message: T, pass: &str) -> Result<tonic::Request<T>, Failure> {
    let mut request = tonic::Request::new(message);
    let value = pass.parse().map_err(|_| {
        Failure::new(
            Code::Unauthenticated,
            "the admission pass is not readable text",
        )
    })?;
    request
        .metadata_mut()
        .insert(taquilla_proto::ADMISSION_PASS_HEADER, value);
    request.set_timeout(CALL_TIMEOUT);
    Ok(request)
}

async fn unary<T, F>(call: F) -> Result<T, Failure>
where
    F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(status.into()),
        Err(_) => Err(Failure::new(
            Code::DeadlineExceeded,
            "the server did not answer in time",
        )),
    }
}

impl Network {
    pub fn new(channel: Channel, tx: UnboundedSender<Msg>) -> Network {
        Network {
            channel,
            tx,
            queue_watch: None,
            availability: None,
        }
    }

    /// Starts `command` in the background.
    pub fn run(&mut self, command: Command) {
        let channel = self.channel.clone();
        let tx = self.tx.clone();
        let send = move |net: Net| {
            let _ = tx.send(Msg::Net(Box::new(net)));
        };
        match command {
            Command::LoadEvents => {
                tokio::spawn(async move {
                    let mut client = pb::sales_client::SalesClient::new(channel);
                    let events = unary(client.list_events(pb::ListEventsRequest {}))
                        .await
                        .map(|r| r.events);
                    send(Net::Events(events));
                });
            }
            Command::Join {
                event_id,
                fingerprint,
                presale_code,
            } => {
                tokio::spawn(join(channel, event_id, fingerprint, presale_code, send));
            }
            Command::WatchQueue { token } => {
                if let Some(task) = self.queue_watch.take() {
                    task.abort();
                }
                self.queue_watch = Some(tokio::spawn(watch_queue(channel, token, send)));
            }
            Command::CheckShuffle {
                event_id,
                token,
                shown_position,
                commitment_seen,
            } => {
                tokio::spawn(async move {
                    let check = match tokio::time::timeout(
                        PROOF_TIMEOUT,
                        taquilla_proto::fairness::download(channel, &event_id),
                    )
                    .await
                    {
                        Ok(Ok(chunks)) => {
                            check_shuffle(chunks, &token, shown_position, &commitment_seen)
                        }
                        Ok(Err(status)) => ShuffleCheck::Failed(format!(
                            "the proof could not be downloaded: {}",
                            Failure::from(status).sentence()
                        )),
                        Err(_) => {
                            ShuffleCheck::Failed("the proof could not be downloaded in time".into())
                        }
                    };
                    send(Net::ShuffleChecked(check));
                });
            }
            Command::StopQueueWatch => {
                if let Some(task) = self.queue_watch.take() {
                    task.abort();
                }
            }
            Command::LoadSeatMap { event_id } => {
                tokio::spawn(async move {
                    let mut client = pb::sales_client::SalesClient::new(channel);
                    let map = unary(client.get_seat_map(pb::GetSeatMapRequest {
                        event_id,
                        section_ids: Vec::new(),
                    }))
                    .await;
                    send(Net::SeatMap(map));
                });
            }
            Command::WatchAvailability {
                event_id,
                after_version,
            } => {
                if let Some(task) = self.availability.take() {
                    task.abort();
                }
                self.availability = Some(tokio::spawn(watch_availability(
                    channel,
                    event_id,
                    after_version,
                    send,
                )));
            }
            Command::Hold {
                pass,
                event_id,
                selection,
            } => {
                tokio::spawn(async move {
                    let selection = Some(match selection {
                        Selection::Seats(seat_ids) => {
                            pb::hold_seats_request::Selection::Seats(pb::SeatSelection { seat_ids })
                        }
                        Selection::Best {
                            section_id,
                            quantity,
                        } => pb::hold_seats_request::Selection::BestAvailable(pb::BestAvailable {
                            section_id,
                            quantity,
                        }),
                    });
                    let result = match with_pass(
                        pb::HoldSeatsRequest {
                            event_id,
                            selection,
                        },
                        &pass,
                    ) {
                        Ok(request) => {
                            let mut client = pb::sales_client::SalesClient::new(channel);
                            unary(client.hold_seats(request)).await.and_then(|r| {
                                r.hold.ok_or_else(|| {
                                    Failure::new(
                                        Code::Internal,
                                        "the server answered without a hold",
                                    )
                                })
                            })
                        }
                        Err(failure) => Err(failure),
                    };
                    send(Net::Held(result));
                });
            }
            Command::Release { pass, hold_id } => {
                tokio::spawn(async move {
                    let result = match with_pass(pb::ReleaseHoldRequest { hold_id }, &pass) {
                        Ok(request) => {
                            let mut client = pb::sales_client::SalesClient::new(channel);
                            unary(client.release_hold(request))
                                .await
                                .map(|r| r.released_seats)
                        }
                        Err(failure) => Err(failure),
                    };
                    send(Net::Released(result));
                });
            }
            Command::Checkout {
                pass,
                hold_id,
                idempotency_key,
            } => {
                tokio::spawn(async move {
                    let request = pb::CheckoutRequest {
                        hold_id,
                        idempotency_key,
                    };
                    let result = match with_pass(request, &pass) {
                        Ok(request) => {
                            let mut client = pb::sales_client::SalesClient::new(channel);
                            unary(client.checkout(request)).await.and_then(|r| {
                                r.order.ok_or_else(|| {
                                    Failure::new(
                                        Code::Internal,
                                        "the server answered without an order",
                                    )
                                })
                            })
                        }
                        Err(failure) => Err(failure),
                    };
                    send(Net::CheckedOut(result));
                });
            }
            Command::Pay {
                pass,
                order_id,
                idempotency_key,
                card,
            } => {
                tokio::spawn(async move {
                    let request = pb::PayRequest {
                        order_id,
                        idempotency_key,
                        card: Some(card),
                    };
                    let result = match with_pass(request, &pass) {
                        Ok(request) => {
                            let mut client = pb::sales_client::SalesClient::new(channel);
                            unary(client.pay(request)).await
                        }
                        Err(failure) => Err(failure),
                    };
                    send(Net::Paid(result));
                });
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for task in [self.queue_watch.take(), self.availability.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

async fn join(
    channel: Channel,
    event_id: String,
    fingerprint: String,
    presale_code: String,
    send: impl Fn(Net),
) {
    let mut client = pb::waiting_room_client::WaitingRoomClient::new(channel);
    let mut solution = None;
    let mut last = Failure::new(Code::Unavailable, "the server cannot be reached");
    let mut attempt = 0;
    while attempt < JOIN_ATTEMPTS {
        let request = pb::JoinRequest {
            event_id: event_id.clone(),
            fingerprint: fingerprint.clone(),
            presale_code: presale_code.clone(),
            pow_solution: solution.take(),
        };
        match unary(client.join(request)).await {
            Ok(joined) if joined.queue_token.is_empty() => {
                let Some(challenge) = joined.challenge else {
                    last =
                        Failure::new(Code::Internal, "the server answered without a queue token");
                    break;
                };
                send(Net::Solving(challenge.difficulty_bits));
                solution = tokio::task::spawn_blocking(move || {
                    taquilla_proto::signed::solve_challenge(&challenge)
                })
                .await
                .ok();
            }
            Ok(joined) => {
                send(Net::Joined(Ok(joined)));
                return;
            }
            Err(failure) if retryable(failure.code) => {
                attempt += 1;
                let wait = failure.retry_after.unwrap_or_else(|| backoff(attempt));
                last = failure;
                tokio::time::sleep(wait).await;
            }
            Err(failure) => {
                last = failure;
                break;
            }
        }
    }
    send(Net::Joined(Err(last)));
}

/// Whether a queue state is final: the stream will not bring anything more.
fn is_final(state: pb::QueueState) -> bool {
    matches!(
        state,
        pb::QueueState::Removed
            | pb::QueueState::Expired
            | pb::QueueState::SoldOut
            | pb::QueueState::Closed
    )
}

async fn watch_queue(channel: Channel, token: String, send: impl Fn(Net)) {
    let mut client = pb::waiting_room_client::WaitingRoomClient::new(channel);
    let mut attempt = 0u32;
    loop {
        let reason = match client
            .watch(pb::WatchRequest {
                queue_token: token.clone(),
                join: None,
            })
            .await
        {
            Ok(response) => {
                let mut stream = response.into_inner();
                send(Net::Link(Link::Live));
                loop {
                    // No timeout here: the connection's keepalive ends a dead stream.
                    match stream.message().await {
                        Ok(Some(update)) => {
                            attempt = 0;
                            let reconnect = update.reconnect;
                            let done = update.status.as_ref().is_some_and(|s| is_final(s.state()));
                            send(Net::Queue(Box::new(update)));
                            if done {
                                return;
                            }
                            if reconnect {
                                break "the server asked to reconnect".to_string();
                            }
                        }
                        Ok(None) => break "the server closed the stream".to_string(),
                        Err(status) if !retryable(status.code()) => {
                            send(Net::QueueEnded(status.into()));
                            return;
                        }
                        Err(status) => break Failure::from(status).message,
                    }
                }
            }
            Err(status) if !retryable(status.code()) => {
                send(Net::QueueEnded(status.into()));
                return;
            }
            Err(status) => Failure::from(status).message,
        };
        attempt += 1;
        let wait = backoff(attempt);
        send(Net::Link(Link::Lost {
            attempt,
            retry_at_ms: now_ms() + wait.as_millis() as i64,
            reason,
        }));
        tokio::time::sleep(wait).await;
    }
}

async fn watch_availability(
    channel: Channel,
    event_id: String,
    mut after_version: u64,
    send: impl Fn(Net),
) {
    let mut client = pb::sales_client::SalesClient::new(channel);
    let mut attempt = 0u32;
    loop {
        if let Ok(response) = client
            .watch_availability(pb::WatchAvailabilityRequest {
                event_id: event_id.clone(),
                after_version,
            })
            .await
        {
            let mut stream = response.into_inner();
            while let Ok(Some(update)) = stream.message().await {
                attempt = 0;
                after_version = after_version.max(update.version);
                let resync = update.resync;
                send(Net::Availability(update));
                if resync {
                    // The app reloads the map and starts a new watch from its version.
                    return;
                }
            }
        }
        attempt += 1;
        tokio::time::sleep(backoff(attempt)).await;
    }
}
