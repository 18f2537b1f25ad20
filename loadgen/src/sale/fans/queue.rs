//! The waiting phase of a fan's journey: join the queue (through `Watch` unless told to join
//! separately; solving the proof of work when asked), then watch until admitted, reattaching
//! when the stream breaks, and some fans dropping their stream or leaving the line. A fan spends
//! most of a crowded run here, so what these futures keep across their waits is kept small.

use super::*;

/// Joins the queue (solving the proof of work when the server asks for one); returns the fan's
/// place ([`Joined`]). That call is told to goose only when the fan's wait ends (see
/// [`wait_for_turn`]); every other answer at once.
///
/// A fan the server keeps waiting or tells to come back spends much of a crowded run here, so
/// this loop keeps little across its pauses: each try is boxed and gone before the pause.
pub(super) async fn join(user: &mut GooseUser, fan: &mut Fan) -> Result<Joined, End> {
    let presale_code = if chance(fan.crowd.mix.presale_share) {
        fan.event.presale_codes.first().cloned().unwrap_or_default()
    } else {
        String::new()
    };
    let mut solution = None;
    let mut failures = 0u32;
    let mut refusals = 0u32;
    loop {
        // A fan waits for one of its connection's join slots here, holding only the wait: the
        // try (request, call) is built once it has one. The wait is the load generator's, not
        // the server's, so it is bounded by the run, not by the call's deadline.
        let asked = Instant::now();
        let slot = fan.slot.load(Ordering::Relaxed);
        let until_the_end = fan.crowd.deadline.saturating_duration_since(asked);
        let Ok(permit) = tokio::time::timeout(until_the_end, fan.crowd.join_slot(slot)).await
        else {
            return Err(End::GaveUp);
        };
        let tried = join_once(user, fan, &presale_code, solution.take(), asked, permit);
        let wait = match Box::pin(tried).await {
            Tried::Joined(joined) => return Ok(joined),
            Tried::Challenged(solved) => {
                solution = solved;
                continue;
            }
            Tried::Failed(failed) => {
                let deadline = fan.crowd.deadline;
                match failed.status.code() {
                    // Come back when the server says: its hint is this fan's own return slot,
                    // paced at the rate its line drains, so the crowd comes back spread out
                    // (a fixed pause brought everyone back together: run N, 4.4 million
                    // refused joins). Without a hint, back off exponentially.
                    Code::ResourceExhausted if Instant::now() < deadline => {
                        refusals += 1;
                        match taquilla_proto::retry_after(&failed.status) {
                            Some(hint) => {
                                hint + hint.mul_f64(rand::thread_rng().r#gen::<f64>() * 0.05)
                            }
                            None => jittered(Duration::from_millis(500 << refusals.min(5))),
                        }
                        .min(Duration::from_secs(60))
                    }
                    // The server or what it stands on is down: joining is idempotent (one
                    // entry per fingerprint), so try again, on the next server, a few times.
                    code if reattachable(code) && failures < 10 && Instant::now() < deadline => {
                        failures += 1;
                        fan.fail_over();
                        taquilla_proto::retry_after(&failed.status)
                            .unwrap_or_else(|| {
                                jittered(Duration::from_millis(250 << failures.min(5)))
                            })
                            .min(Duration::from_secs(10))
                    }
                    // Arrived after the event sold out: that is the fan's answer.
                    _ if taquilla_proto::sale_ended(&failed.status)
                        == Some(taquilla_proto::SaleEnded::SoldOut) =>
                    {
                        return Err(End::SoldOut("sold out before joining"));
                    }
                    _ => return Err(End::Failed(failed)),
                }
            }
        };
        let _ = user.flush_metrics_before_wait();
        tokio::time::sleep(wait).await;
    }
}

/// A fan's place in line: the queue token, when the join was answered and how long it took,
/// and, joined through `Watch`, the stream it was made on.
pub(super) struct Joined {
    pub(super) token: String,
    pub(super) at: Instant,
    pub(super) took: Duration,
    pub(super) opened: Option<Box<Opened>>,
}

/// A `Watch` stream opened by joining through it, with its first message (the fan's status,
/// read for the token it carries; the wait reads it as any other).
pub(super) struct Opened {
    stream: tonic::Streaming<pb::QueueUpdate>,
    first: Box<pb::QueueUpdate>,
}

/// What a join call answered.
enum Answer {
    Token(String, Option<Box<Opened>>),
    Challenge(pb::PowChallenge),
}

/// One join call: `Join`, or, by default, `Watch` with the join request, which joins and opens
/// the fan's stream in one round trip (the server's and the load generator's cost per fan:
/// docs/benchmarks-log.md, "Joining through Watch").
async fn ask_to_join(fan: &Fan, request: pb::JoinRequest) -> Result<Answer, Status> {
    if fan.crowd.separate_join {
        let joined = bounded(fan.waiting_room().join(request)).await?;
        return match (joined.queue_token.is_empty(), joined.challenge) {
            (false, _) => Ok(Answer::Token(joined.queue_token, None)),
            (true, Some(challenge)) => Ok(Answer::Challenge(challenge)),
            (true, None) => Err(Status::internal(
                "the join answered neither a token nor a challenge",
            )),
        };
    }
    let mut waiting_room = fan.waiting_room();
    let opened = async move {
        let mut stream = waiting_room
            .watch(pb::WatchRequest {
                queue_token: String::new(),
                join: Some(request),
            })
            .await?
            .into_inner();
        match stream.message().await? {
            Some(first) => Ok((stream, first)),
            None => Err(Status::unavailable(
                "the stream ended before its first message",
            )),
        }
    };
    let (stream, mut first) = match tokio::time::timeout(CALL_TIMEOUT, opened).await {
        Ok(opened) => opened?,
        Err(_) => return Err(Status::deadline_exceeded("no answer in time")),
    };
    if let Some(challenge) = first.challenge.take() {
        return Ok(Answer::Challenge(challenge));
    }
    if first.queue_token.is_empty() {
        return Err(Status::internal(
            "the stream's first message carried no queue token",
        ));
    }
    let token = std::mem::take(&mut first.queue_token);
    Ok(Answer::Token(
        token,
        Some(Box::new(Opened {
            stream,
            first: Box::new(first),
        })),
    ))
}

/// What one try at joining came to.
pub(super) enum Tried {
    Joined(Joined),
    /// The server asked for a proof of work first; here is the solution (none if solving
    /// failed, and the next try is asked again).
    Challenged(Option<pb::PowSolution>),
    Failed(Failed),
}

/// One join call ([`ask_to_join`]) on the join slot `permit` of the fan's connection (see
/// [`Crowd::joins_in_flight`]), given back when the answer comes. Goose and the error counts
/// see only the call; the join stage's time is the fan's, from `asked` (before the wait for the
/// slot) to the answer.
pub(super) async fn join_once(
    user: &mut GooseUser,
    fan: &Fan,
    presale_code: &str,
    solution: Option<pb::PowSolution>,
    asked: Instant,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Tried {
    let recorder = fan.crowd.recorder.clone();
    let started = Instant::now();
    let request = pb::JoinRequest {
        event_id: fan.event.event_id.clone(),
        fingerprint: fan.fingerprint.clone(),
        presale_code: presale_code.to_string(),
        pow_solution: solution,
    };
    let answer = ask_to_join(fan, request).await;
    drop(permit);
    let took = started.elapsed();
    let answer = match answer {
        Ok(Answer::Token(token, opened)) => {
            recorder.stage(Stage::Join, asked.elapsed());
            return Tried::Joined(Joined {
                token,
                at: Instant::now(),
                took,
                opened,
            });
        }
        Ok(Answer::Challenge(challenge)) => Ok(challenge),
        Err(status) => Err(status),
    };
    Box::pin(record_took(user, "Join", took, answer.as_ref().map(|_| ()))).await;
    match answer {
        // No token yet: the server asks for a proof of work first.
        Ok(challenge) => Tried::Challenged(
            tokio::task::spawn_blocking(move || {
                taquilla_proto::signed::solve_challenge(&challenge)
            })
            .await
            .ok(),
        ),
        Err(status) => {
            recorder.error("Join", status.code());
            Tried::Failed(Failed::new("Join", status))
        }
    }
}

/// Watches the queue until the fan's turn comes; returns the admission pass.
///
/// This is where a fan spends most of the run, so what it keeps while it waits is the load
/// generator's memory: the stream and a few numbers. Every other call here is boxed, and the
/// fan's `Join` and `Watch` calls are told to goose when the wait ends rather than when they
/// were answered: goose would otherwise hold them in the fan's pending request and unsent
/// metrics batch for the whole wait, about 2.5 KiB a fan. (Goose's per-second graph shows them
/// at that time; their durations are the calls' own.)
pub(super) async fn wait_for_turn(
    user: &mut GooseUser,
    fan: &mut Fan,
    token: &str,
    joined_at: Instant,
    join_took: Duration,
    mut opened: Option<Box<Opened>>,
) -> Result<String, End> {
    let mut join_untold = Some(join_took);
    let crowd = fan.crowd.clone();
    // Counted in the timeline's "fans waiting" until this wait ends, however it ends.
    struct Waiting<'a>(&'a crate::sale::timeline::Timeline);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.waiting(-1);
        }
    }
    crowd.recorder.timeline.waiting(1);
    let _waiting = Waiting(&crowd.recorder.timeline);
    let patience = joined_at + Duration::from_secs(crowd.mix.patience);
    // The fans still waiting when the run ends stop over its last moments, not all at the
    // same instant: 400,000 journeys ending at once had goose's metrics backlog add 0.9 GiB to
    // the load generator's peak (docs/benchmarks-log.md, run L).
    let run_ends = crowd
        .deadline
        .checked_sub(crowd.end_spread.mul_f64(rand::thread_rng().r#gen::<f64>()))
        .unwrap_or(crowd.deadline);
    let own_patience = patience < run_ends;
    let give_up_at = patience.min(run_ends);
    let leaves = chance(crowd.mix.leave_share);
    let mut reconnects_left = u32::from(chance(crowd.mix.reconnect_share));

    loop {
        // What goose was told so far goes now, not after the wait (a proof-of-work answer, an
        // earlier stream's record).
        let _ = user.flush_metrics_before_wait();
        let attached = Box::pin(attach(
            fan,
            token,
            give_up_at,
            leaves,
            reconnects_left > 0,
            opened.take(),
        ))
        .await;
        if let Some(took) = join_untold.take() {
            Box::pin(record_took(user, "Join", took, Ok(()))).await;
        }
        let watched = match attached {
            Attached::Read(took, watched) => {
                // A stream opened by the join was that call: told to goose as the join.
                if let Some(took) = took {
                    Box::pin(record_took(user, "Watch", took, Ok(()))).await;
                }
                watched
            }
            Attached::Refused(took, status) => {
                Box::pin(record_took(user, "Watch", took, Err(&status))).await;
                crowd.recorder.error("Watch", status.code());
                if !reattachable(status.code()) || Instant::now() >= give_up_at {
                    return Err(End::Failed(Failed::new("Watch", status)));
                }
                if status.code() != Code::ResourceExhausted {
                    // The token is good on every node: reattach through the next one.
                    fan.fail_over();
                }
                let _ = user.flush_metrics_before_wait();
                tokio::time::sleep(jittered(Duration::from_millis(500))).await;
                continue;
            }
            Attached::NoAnswer => return Err(End::GaveUp),
        };
        match watched {
            Watched::Admitted(pass) => {
                // Every ETA this fan was shown is judged against the wait it had.
                crowd.recorder.eta.admitted(fan.index);
                let seen = Instant::now();
                crowd.recorder.stage(Stage::Queue, seen - joined_at);
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                if pass.server_time_unix_ms > 0 {
                    let lag = (now_ms - pass.server_time_unix_ms).max(0) as u64;
                    crowd
                        .recorder
                        .stage(Stage::AdmissionSeen, Duration::from_millis(lag));
                }
                return Ok(pass.token);
            }
            Watched::Ended(state) => return Err(End::QueueEnded(state)),
            Watched::Reconnect => {
                reconnects_left = reconnects_left.saturating_sub(1);
            }
            Watched::Broken => {}
            Watched::Leave => {
                let _ = Box::pin(timed(
                    user,
                    "Leave",
                    fan.waiting_room().leave(pb::LeaveRequest {
                        queue_token: token.to_string(),
                    }),
                ))
                .await;
                return Err(End::Left);
            }
            Watched::OutOfPatience => {
                // A fan whose patience ran out says so; at the run's end the fans just stop
                // (every one of them calling Leave at the same instant would be a storm of
                // the load generator's own making, and the server's grace period removes
                // them all the same).
                if own_patience {
                    let _ = Box::pin(fan.waiting_room().leave(pb::LeaveRequest {
                        queue_token: token.to_string(),
                    }))
                    .await;
                }
                return Err(End::GaveUp);
            }
        }
    }
}

/// What came of reading a `Watch` stream.
pub(super) enum Watched {
    Admitted(Admitted),
    /// The queue ended for the fan (sold out, closed, removed, expired).
    Ended(pb::QueueState),
    /// The fan means to drop the stream and attach again.
    Reconnect,
    /// The stream ended or failed: attach again.
    Broken,
    /// The fan means to leave the queue.
    Leave,
    OutOfPatience,
}

/// An admission pass as the stream delivered it.
pub(super) struct Admitted {
    token: String,
    server_time_unix_ms: i64,
}

/// How a `Watch` call went: how long the stream took to open (none for the stream the join
/// opened) and what reading it came to, or the server's refusal, or no answer within the call's
/// bound.
pub(super) enum Attached {
    Read(Option<Duration>, Watched),
    Refused(Duration, Status),
    NoAnswer,
}

/// Opens a `Watch` stream with the queue token (or takes the one the join opened) and reads it
/// until something ends the wait.
/// This future is the fan's waiting state, so it holds the stream, one timer and a few numbers;
/// the opening call is boxed, and scoped so its answer's room is not kept while reading.
/// A fan who `leaves` does so 5–30 s after the stream opened (the server writes only when
/// something changed, so a count of messages would keep a fan far back waiting for minutes).
pub(super) async fn attach(
    fan: &Fan,
    token: &str,
    give_up_at: Instant,
    leaves: bool,
    reconnects: bool,
    opened: Option<Box<Opened>>,
) -> Attached {
    let started = Instant::now();
    let (mut stream, mut first, took) = match opened {
        Some(opened) => {
            let Opened { stream, first } = *opened;
            (stream, Some(first), None)
        }
        None => {
            let opened = Box::pin(tokio::time::timeout(
                CALL_TIMEOUT,
                fan.waiting_room().watch(pb::WatchRequest {
                    queue_token: token.to_string(),
                    join: None,
                }),
            ))
            .await;
            match opened {
                Ok(Ok(response)) => (response.into_inner(), None, Some(started.elapsed())),
                Ok(Err(status)) => return Attached::Refused(started.elapsed(), status),
                Err(_) => return Attached::NoAnswer,
            }
        }
    };
    let leave_at = leaves.then(|| {
        Instant::now() + Duration::from_millis(rand::thread_rng().gen_range(5_000..30_000))
    });
    let leaving = leave_at.is_some_and(|at| at < give_up_at);
    let out_of_patience =
        tokio::time::sleep_until(leave_at.unwrap_or(give_up_at).min(give_up_at).into());
    tokio::pin!(out_of_patience);
    let mut updates = 0u32;
    loop {
        // The next update, or None once the fan's patience (or the run) is over.
        let next = if let Some(first) = first.take() {
            Some(Some(Ok(*first)))
        } else {
            std::future::poll_fn(|cx| {
                use tokio_stream::Stream;
                if let std::task::Poll::Ready(item) = std::pin::Pin::new(&mut stream).poll_next(cx)
                {
                    return std::task::Poll::Ready(Some(item));
                }
                out_of_patience.as_mut().poll(cx).map(|()| None)
            })
            .await
        };
        let update = match next {
            None if leaving => return Attached::Read(took, Watched::Leave),
            None => return Attached::Read(took, Watched::OutOfPatience),
            Some(Some(Ok(update))) => update,
            Some(None) | Some(Some(Err(_))) => return Attached::Read(took, Watched::Broken),
        };
        updates += 1;
        if let Some(status) = &update.status {
            noted(fan, token, status);
        }
        if let Some(pass) = update.admission_pass {
            return Attached::Read(
                took,
                Watched::Admitted(Admitted {
                    token: pass.token,
                    server_time_unix_ms: update.server_time_unix_ms,
                }),
            );
        }
        let state = update
            .status
            .as_ref()
            .map(|s| s.state())
            .unwrap_or_default();
        let watched = if matches!(
            state,
            pb::QueueState::SoldOut
                | pb::QueueState::Closed
                | pb::QueueState::Removed
                | pb::QueueState::Expired
        ) {
            Watched::Ended(state)
        } else if reconnects && updates >= 1 {
            Watched::Reconnect
        } else {
            continue;
        };
        return Attached::Read(took, watched);
    }
}

/// What a status tells the run's records: the ETA shown in line, and, for a fan who was in the
/// pre-queue, the place it was given when the sale opened.
fn noted(fan: &Fan, token: &str, status: &pb::QueueStatus) {
    match status.state() {
        pb::QueueState::Prequeue => fan.early.store(true, Ordering::Relaxed),
        pb::QueueState::Waiting | pb::QueueState::Admitted
            if fan.early.swap(false, Ordering::Relaxed) =>
        {
            fan.crowd
                .recorder
                .placed(&fan.event.event_id, token, status.initial_position);
        }
        _ => {}
    }
    if status.state() == pb::QueueState::Waiting {
        fan.crowd
            .recorder
            .eta
            .shown(fan.index, status.position, status.eta_seconds);
    }
}
