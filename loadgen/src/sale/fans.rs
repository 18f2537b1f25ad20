//! A fan as a goose user. Each user runs one journey: join (a share before the sale opens, a
//! share with a presale code), watch until admitted (some drop and reconnect their stream, some
//! leave), hold (mostly best available in a preferred section, some contending for the same
//! front-row seats, falling back), checkout (some abandon and release instead), pay (some with a
//! card that is declined first, then retry), done. Every call is a tonic call recorded in goose's
//! metrics as `gRPC <Rpc>` with the gRPC status code as the status, and every wait is bounded,
//! so goose's shutdown never waits on a fan.
//!
//! The journey is one goose transaction rather than one per step: its state (the stream, the
//! pass, the hold) lives in the transaction's locals instead of goose session data, which
//! would have to be `Clone + Sync`.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use goose::prelude::*;
use rand::Rng;
use taquilla_proto::v1 as pb;
use tokio::sync::{OnceCell, Semaphore};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::record::{Recorder, Stage};

/// How fans behave; shares are 0–1.
#[derive(Debug, Clone, clap::Args)]
pub struct Mix {
    /// Share of fans that leave the queue before their turn.
    #[arg(long, default_value_t = 0.02)]
    pub leave_share: f64,
    /// Share of fans that drop their stream once while waiting and reconnect with their token.
    #[arg(long, default_value_t = 0.05)]
    pub reconnect_share: f64,
    /// Share of fans that go for the same front-row seats (falling back to best available).
    #[arg(long, default_value_t = 0.10)]
    pub contend_share: f64,
    /// Share of fans that let their hold go instead of checking out.
    #[arg(long, default_value_t = 0.03)]
    pub abandon_share: f64,
    /// Share of fans whose first card is declined; they retry with a good one.
    #[arg(long, default_value_t = 0.05)]
    pub decline_share: f64,
    /// Most tickets a fan asks for (each asks for 1..=this, capped by the event's cap).
    #[arg(long, default_value_t = 4)]
    pub max_quantity: u32,
    /// Share of fans that have a presale code (used while the presale is on).
    #[arg(long, default_value_t = 0.15)]
    pub presale_share: f64,
    /// Longest a fan waits in the queue before giving up.
    #[arg(long, default_value = "600", value_name = "SECONDS")]
    pub patience: u64,
}

/// One event the fans go for, as read before the run.
#[derive(Debug, Clone)]
pub struct Target {
    pub event_id: String,
    pub cap: u32,
    pub presale_codes: Vec<String>,
}

/// Everything the fans share.
#[derive(Debug)]
pub struct Crowd {
    /// Every target's connections, target by target (`per_target` each).
    pub channels: Vec<Channel>,
    /// Connections per target.
    pub per_target: usize,
    pub events: Vec<Target>,
    pub mix: Mix,
    pub recorder: Arc<Recorder>,
    /// Prefix of every fingerprint, unique per shard so shards never share a fan.
    pub fingerprint_prefix: String,
    /// Index of this process's first fan (shard offset).
    pub first_fan: usize,
    /// The run's end: no fan waits beyond it.
    pub deadline: Instant,
    /// Fans still waiting stop at random within this long before `deadline`.
    pub end_spread: Duration,
    seat_maps: Vec<OnceCell<Arc<pb::SeatMap>>>,
    /// What fans know of each event's sections (by `events` index): the seats available as
    /// the event list last showed them, lowered as holds find sections short.
    pub boards: Vec<Board>,
    /// Per connection, the `Join` calls it may carry at once (see [`Crowd::joins_in_flight`]).
    join_slots: Vec<Arc<Semaphore>>,
    /// Fans join with `Join`, then call `Watch`, rather than join through `Watch` at once.
    separate_join: bool,
}

impl Crowd {
    pub fn new(
        channels: Vec<Channel>,
        events: Vec<Target>,
        mix: Mix,
        recorder: Arc<Recorder>,
        fingerprint_prefix: String,
        first_fan: usize,
        deadline: Instant,
    ) -> Crowd {
        let seat_maps = events.iter().map(|_| OnceCell::new()).collect();
        let boards = events.iter().map(|_| Board::default()).collect();
        Crowd {
            channels,
            per_target: 1,
            events,
            mix,
            recorder,
            fingerprint_prefix,
            first_fan,
            deadline,
            end_spread: Duration::ZERO,
            seat_maps,
            boards,
            join_slots: Vec::new(),
            separate_join: false,
        }
        .joins_in_flight(JOINS_IN_FLIGHT)
    }

    /// Fans join with a `Join` call and then open their stream (two round trips), as clients
    /// that do not join through `Watch` do.
    pub fn separate_join(mut self, separate: bool) -> Crowd {
        self.separate_join = separate;
        self
    }

    /// Lets each connection carry at most `per_connection` `Join` calls at once; the fans
    /// beyond wait their turn in the load generator. A call in flight costs the load generator
    /// a few KiB (tonic's and hyper's state for the request, its HTTP/2 stream), a fan waiting
    /// for a slot a few hundred bytes: without a bound, a crowd arriving faster than the server answers
    /// joins holds every arrival's call open at once (docs/benchmarks-log.md, run Q).
    pub fn joins_in_flight(mut self, per_connection: usize) -> Crowd {
        self.join_slots = self
            .channels
            .iter()
            .map(|_| {
                Arc::new(Semaphore::new(
                    per_connection.clamp(1, Semaphore::MAX_PERMITS),
                ))
            })
            .collect();
        self
    }

    /// Waits for a free join slot on connection `slot` (none to wait for without connections).
    async fn join_slot(&self, slot: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if self.join_slots.is_empty() {
            return None;
        }
        let slots = self.join_slots[slot % self.join_slots.len()].clone();
        slots.acquire_owned().await.ok()
    }

    /// Has the fans still waiting at the end stop at random within `spread` before it.
    pub fn end_spread(mut self, spread: Duration) -> Crowd {
        self.end_spread = spread;
        self
    }

    /// Shows the fans the sections' availability in `events` (the event list).
    pub fn show(&self, events: &[pb::Event]) {
        for event in events {
            if let Some(i) = self.events.iter().position(|t| t.event_id == event.id) {
                self.boards[i].update(&event.sections);
            }
        }
    }

    /// Says how many connections each target has in `channels` (target by target), so a fan
    /// whose server stops answering moves to the same connection slot on the next target.
    pub fn per_target(mut self, per_target: usize) -> Crowd {
        self.per_target = per_target.max(1);
        self
    }
}

/// One event's sections and the seats each had available when last seen, as a fan's app shows
/// them on the event page: fans pick sections that have seats rather than ask the server for
/// sections it sold out long ago (each such hold is a failed database transaction, and near
/// the end of a sale most of them would be). The crowd refreshes it from `ListEvents` every
/// few seconds ([`Board::update`]); a hold that finds a section short lowers it at once.
#[derive(Debug, Default)]
pub struct Board {
    sections: std::sync::RwLock<Vec<(String, Arc<AtomicU32>)>>,
}

impl Board {
    /// Takes in the sections' availability from the event list.
    pub fn update(&self, sections: &[pb::SectionSummary]) {
        let Ok(mut board) = self.sections.write() else {
            return;
        };
        if board.len() == sections.len()
            && board.iter().zip(sections).all(|((id, _), s)| id == &s.id)
        {
            for ((_, available), section) in board.iter().zip(sections) {
                available.store(section.available, Ordering::Relaxed);
            }
        } else {
            *board = sections
                .iter()
                .map(|s| (s.id.clone(), Arc::new(AtomicU32::new(s.available))))
                .collect();
        }
    }

    /// Up to `most` sections that showed at least `wanted` seats, from a random start; none
    /// when the board is empty (not read yet).
    fn pick(&self, wanted: u32, most: usize) -> Vec<(String, Arc<AtomicU32>)> {
        let Ok(board) = self.sections.read() else {
            return Vec::new();
        };
        if board.is_empty() {
            return Vec::new();
        }
        let start = rand::thread_rng().gen_range(0..board.len());
        (0..board.len())
            .map(|i| &board[(start + i) % board.len()])
            .filter(|(_, available)| available.load(Ordering::Relaxed) >= wanted)
            .take(most)
            .cloned()
            .collect()
    }

    /// Whether the board was read.
    fn read(&self) -> bool {
        self.sections.read().is_ok_and(|board| !board.is_empty())
    }

    /// Whether the board was read and shows no seat available anywhere.
    fn empty(&self) -> bool {
        self.sections.read().is_ok_and(|board| {
            !board.is_empty()
                && board
                    .iter()
                    .all(|(_, available)| available.load(Ordering::Relaxed) == 0)
        })
    }
}

/// Reads the event list every `every` for the crowd's boards, until the run's deadline. A
/// read that fails or takes longer than `every` is skipped: the boards keep what they show.
pub async fn keep_boards(crowd: Arc<Crowd>, channel: Channel, every: Duration) {
    let mut sales = pb::sales_client::SalesClient::new(channel);
    while Instant::now() + every < crowd.deadline {
        tokio::time::sleep(every).await;
        let Ok(Ok(response)) =
            tokio::time::timeout(every, sales.list_events(pb::ListEventsRequest {})).await
        else {
            continue;
        };
        crowd.show(&response.into_inner().events);
    }
}

static CROWD: OnceLock<Arc<Crowd>> = OnceLock::new();

/// Installs the crowd the goose transactions read (goose transactions are plain functions).
pub fn install(crowd: Arc<Crowd>) -> bool {
    CROWD.set(crowd).is_ok()
}

/// The goose scenario of one fan.
pub fn scenario() -> Scenario {
    scenario!("Fan").register_transaction(transaction!(journey).set_name("journey"))
}

/// Test cards of the simulated provider.
const GOOD_CARD: &str = "4242424242424242";
const DECLINED_CARD: &str = "4000000000000002";
/// Bound on each call; a call slower than this counts as DEADLINE_EXCEEDED.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// `Join` calls one connection carries at once by default (`--joins-in-flight`).
pub const JOINS_IN_FLIGHT: usize = 500;

struct Fan {
    crowd: Arc<Crowd>,
    /// Index of the fan's connection in `crowd.channels`; moves to the next target's when
    /// the fan's server stops answering (a node killed or drained), as a real app would.
    slot: AtomicUsize,
    event: Target,
    event_index: usize,
    fingerprint: String,
    pass: String,
}

impl Fan {
    fn channel(&self) -> Channel {
        let channels = &self.crowd.channels;
        channels[self.slot.load(Ordering::Relaxed) % channels.len()].clone()
    }

    fn sales(&self) -> pb::sales_client::SalesClient<Channel> {
        pb::sales_client::SalesClient::new(self.channel())
    }

    fn waiting_room(&self) -> pb::waiting_room_client::WaitingRoomClient<Channel> {
        pb::waiting_room_client::WaitingRoomClient::new(self.channel())
    }

    /// The same connection slot on the next target (every node serves every fan: tokens and
    /// passes are signed with the cluster's key).
    fn fail_over(&self) {
        let step = self.crowd.per_target;
        if self.crowd.channels.len() > step {
            self.slot.fetch_add(step, Ordering::Relaxed);
        }
    }
}

/// A failed step: the RPC and its status.
struct Failed {
    rpc: &'static str,
    status: Status,
}

impl Failed {
    fn new(rpc: &'static str, status: Status) -> Failed {
        Failed { rpc, status }
    }
}

/// How a journey ended, counted in the report.
enum End {
    Bought,
    Left,
    GaveUp,
    Abandoned,
    SoldOut(&'static str),
    QueueEnded(pb::QueueState),
    Failed(Failed),
}

async fn record(user: &mut GooseUser, rpc: &str, started: Instant, result: Result<(), &Status>) {
    record_took(user, rpc, started.elapsed(), result).await
}

/// Tells goose about a call that took `took`.
async fn record_took(user: &mut GooseUser, rpc: &str, took: Duration, result: Result<(), &Status>) {
    let (success, code, error) = match result {
        Ok(()) => (true, Code::Ok, None),
        Err(status) => (
            // A refusal the API promises (taken seat, rate limit) is an answer, not a failure
            // of the service; goose counts it under its own status code either way.
            matches!(
                status.code(),
                Code::Aborted | Code::ResourceExhausted | Code::FailedPrecondition
            ),
            status.code(),
            Some(status.message()),
        ),
    };
    let _ = user
        .record_custom_request_duration("gRPC", rpc, took, success, Some(code as u16), error)
        .await;
}

/// Runs `call` with a bound; no answer in time is DEADLINE_EXCEEDED.
async fn bounded<T, F>(call: F) -> Result<T, Status>
where
    F: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
{
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded("no answer in time")),
    }
}

/// Runs `call` with a bound, records it in goose's metrics under `rpc`.
async fn timed<T, F>(user: &mut GooseUser, rpc: &'static str, call: F) -> Result<T, Failed>
where
    F: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
{
    let started = Instant::now();
    let result = bounded(call).await;
    record(user, rpc, started, result.as_ref().map(|_| ())).await;
    if let Err(status) = &result
        && let Some(crowd) = CROWD.get()
    {
        crowd.recorder.error(rpc, status.code());
    }
    result.map_err(|status| Failed::new(rpc, status))
}

/// Like [`timed`], retrying what the server says may work later (a rate limit, shedding, an
/// open breaker: as often as it says, for as long as the run lasts; a failure, UNAVAILABLE, a
/// timeout or a broken connection without a hint, up to five times, on the next target), after the server's `retry-after-ms` or a growing pause, never
/// past the run's deadline. Only for calls that are safe to repeat: every sales call here is
/// (holds are all-or-nothing and capped per fan; checkout and pay carry idempotency keys).
async fn retried<T, F, Fut>(
    user: &mut GooseUser,
    fan: &Fan,
    rpc: &'static str,
    mut call: F,
) -> Result<T, Failed>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
{
    let deadline = CROWD.get().map(|c| c.deadline).unwrap_or_else(Instant::now);
    let mut attempt = 0u32;
    let mut failures = 0u32;
    loop {
        match timed(user, rpc, call()).await {
            // A deliberate "busy" or "paused, retry in N ms" (rate limit, shedding, an open
            // circuit breaker) is retried as told for as long as the fan's patience lasts; a
            // failure only a few times, on the next server (its own may be gone).
            Err(failed)
                if match failed.status.code() {
                    Code::ResourceExhausted => attempt < 10_000,
                    Code::Unavailable if taquilla_proto::retry_after(&failed.status).is_some() => {
                        attempt < 10_000
                    }
                    Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Cancelled
                    | Code::Unknown => {
                        failures += 1;
                        fan.fail_over();
                        failures <= 5
                    }
                    _ => false,
                } =>
            {
                attempt += 1;
                let pause = taquilla_proto::retry_after(&failed.status)
                    .unwrap_or_else(|| jittered(Duration::from_millis(100 << attempt.min(6))))
                    .min(Duration::from_secs(15));
                if Instant::now() + pause >= deadline {
                    return Err(failed);
                }
                let _ = user.flush_metrics_before_wait();
                tokio::time::sleep(pause).await;
            }
            other => return other,
        }
    }
}

/// Whether a failed Watch is worth attaching again with the same token: the server was busy,
/// or the connection to it broke (a node killed mid-stream answers CANCELLED or UNKNOWN on the
/// calls it had under way, UNAVAILABLE on new ones). A refusal of the token itself is final.
fn reattachable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::Cancelled
            | Code::Unknown
            | Code::DeadlineExceeded
    )
}

fn with_pass<T>(message: T, pass: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = pass.parse() {
        request
            .metadata_mut()
            .insert(taquilla_proto::ADMISSION_PASS_HEADER, value);
    }
    request
}

async fn journey(user: &mut GooseUser) -> TransactionResult {
    let Some(crowd) = CROWD.get().cloned() else {
        return Ok(());
    };
    if crowd.channels.is_empty() || crowd.events.is_empty() {
        return Ok(());
    }
    let index = crowd.first_fan + user.weighted_users_index;
    let event_index = index % crowd.events.len();
    let mut fan = Fan {
        slot: AtomicUsize::new(index % crowd.channels.len()),
        event: crowd.events[event_index].clone(),
        event_index,
        fingerprint: format!("{}-{index}", crowd.fingerprint_prefix),
        pass: String::new(),
        crowd: crowd.clone(),
    };
    let end = run(user, &mut fan).await;
    let outcome = match end {
        End::Bought => "bought".to_string(),
        End::Left => "left the queue".to_string(),
        End::GaveUp => "gave up waiting".to_string(),
        End::Abandoned => "abandoned the hold".to_string(),
        End::SoldOut(why) => why.to_string(),
        End::QueueEnded(pb::QueueState::SoldOut) => "queue: sold out".to_string(),
        End::QueueEnded(pb::QueueState::Closed) => "queue: sale closed".to_string(),
        End::QueueEnded(_) => "queue: removed or expired".to_string(),
        End::Failed(failed) => format!("failed at {} ({:?})", failed.rpc, failed.status.code()),
    };
    crowd.recorder.outcome(&outcome);
    Ok(())
}

/// `pause` scaled by a random factor in [0.5, 1.5): fans that failed together (a connection
/// that broke under thousands of them) come back spread out instead of all at once.
fn jittered(pause: Duration) -> Duration {
    pause.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

fn chance(share: f64) -> bool {
    share > 0.0 && rand::thread_rng().gen_bool(share.clamp(0.0, 1.0))
}

/// Every fan's journey lives for the whole run, most of it waiting in line, so its future is
/// part of the load generator's memory per fan (docs/benchmarks-log.md, "Load generator
/// memory"): each phase is boxed, so a waiting fan carries only the waiting phase, and in it
/// every call that is not the wait itself is boxed too.
async fn run(user: &mut GooseUser, fan: &mut Fan) -> End {
    let journey_started = Instant::now();
    let Joined {
        token,
        at,
        took,
        opened,
    } = match Box::pin(join(user, fan)).await {
        Ok(joined) => joined,
        Err(end) => return end,
    };
    match Box::pin(wait_for_turn(user, fan, &token, at, took, opened)).await {
        Ok(pass) => fan.pass = pass,
        Err(end) => return end,
    }
    drop(token);
    // Hold, checkout, pay.
    // Boxed: most fans spend the run waiting in line, and an inline purchase future would make
    // every waiting fan's journey as large as a buying one's.
    match Box::pin(buy(user, fan)).await {
        Ok(true) => {
            fan.crowd
                .recorder
                .stage(Stage::EndToEnd, journey_started.elapsed());
            End::Bought
        }
        Ok(false) => End::Abandoned,
        Err(end) => end,
    }
}

/// Joins the queue (solving the proof of work when the server asks for one); returns the fan's
/// place ([`Joined`]). That call is told to goose only when the fan's wait ends (see
/// [`wait_for_turn`]); every other answer at once.
///
/// A fan the server keeps waiting or tells to come back spends much of a crowded run here, so
/// this loop keeps little across its pauses: each try is boxed and gone before the pause.
async fn join(user: &mut GooseUser, fan: &mut Fan) -> Result<Joined, End> {
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
struct Joined {
    token: String,
    at: Instant,
    took: Duration,
    opened: Option<Box<Opened>>,
}

/// A `Watch` stream opened by joining through it, with its first message (the fan's status,
/// read for the token it carries; the wait reads it as any other).
struct Opened {
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
enum Tried {
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
async fn join_once(
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
async fn wait_for_turn(
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
    struct Waiting<'a>(&'a super::timeline::Timeline);
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
enum Watched {
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
struct Admitted {
    token: String,
    server_time_unix_ms: i64,
}

/// How a `Watch` call went: how long the stream took to open (none for the stream the join
/// opened) and what reading it came to, or the server's refusal, or no answer within the call's
/// bound.
enum Attached {
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
async fn attach(
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

async fn seat_map(user: &mut GooseUser, fan: &Fan) -> Option<Arc<pb::SeatMap>> {
    // One read per event for the whole crowd: the fans admitted while it is under way wait for
    // it instead of each asking the server for the same 18,000 seats. Only a map that arrived
    // is kept: after a failed read the next fan in line tries again.
    fan.crowd.seat_maps[fan.event_index]
        .get_or_try_init(|| async {
            retried(user, fan, "GetSeatMap", || {
                let request = pb::GetSeatMapRequest {
                    event_id: fan.event.event_id.clone(),
                    section_ids: Vec::new(),
                };
                let mut sales = fan.sales();
                async move { sales.get_seat_map(request).await }
            })
            .await
            .map(Arc::new)
        })
        .await
        .ok()
        .cloned()
}

fn unsettled(fan: &Fan, order_id: &str) -> super::record::Unsettled {
    super::record::Unsettled {
        event: fan.event.event_id.clone(),
        fan: fan.fingerprint.clone(),
        cap: fan.event.cap,
        order_id: order_id.to_string(),
    }
}

/// Returns Ok(true) when paid, Ok(false) when the fan let the hold go.
async fn buy(user: &mut GooseUser, fan: &Fan) -> Result<bool, End> {
    let crowd = fan.crowd.clone();
    let recorder = crowd.recorder.clone();
    let Some(map) = seat_map(user, fan).await else {
        return Err(End::Failed(Failed::new(
            "GetSeatMap",
            Status::unavailable("the seat map could not be read"),
        )));
    };
    let map = Some(map);
    let sections: Vec<pb::SectionSummary> = map
        .as_deref()
        .map(|m| {
            m.sections
                .iter()
                .filter_map(|s| s.summary.clone())
                .collect()
        })
        .unwrap_or_default();
    let quantity =
        rand::thread_rng().gen_range(1..=crowd.mix.max_quantity.clamp(1, fan.event.cap.max(1)));

    // Contenders go for the first seats of the first seated row.
    let mut attempts: Vec<(pb::hold_seats_request::Selection, Option<Arc<AtomicU32>>)> = Vec::new();
    if chance(crowd.mix.contend_share)
        && let Some(row) = map
            .as_deref()
            .and_then(|m| m.sections.iter().find_map(|s| s.rows.first()))
    {
        let seat_ids = (0..quantity.min(row.statuses.len() as u32))
            .map(|i| row.first_seat_id + i)
            .collect();
        attempts.push((
            pb::hold_seats_request::Selection::Seats(pb::SeatSelection { seat_ids }),
            None,
        ));
    }
    // Then best available in sections the event page shows seats in, from a random start;
    // when none has that many, as a person would, fewer (half, then one) before giving up:
    // near the end only scattered seats are left. With the page showing nothing left
    // anywhere, one seat anywhere, once (held seats come back when their holds lapse).
    let best = |section_id: &str, quantity: u32| {
        pb::hold_seats_request::Selection::BestAvailable(pb::BestAvailable {
            section_id: section_id.to_string(),
            quantity,
        })
    };
    let board = &crowd.boards[fan.event_index];
    if board.empty() {
        if !sections.is_empty() {
            let section = &sections[rand::thread_rng().gen_range(0..sections.len())];
            attempts.push((best(&section.id, 1), None));
        }
    } else {
        let mut fewer = vec![quantity, quantity / 2, 1];
        fewer.retain(|q| *q > 0);
        fewer.sort_unstable_by(|a, b| b.cmp(a));
        fewer.dedup();
        for wanted in fewer {
            let picked = board.pick(wanted, 4);
            if picked.is_empty() && !sections.is_empty() && !board.read() {
                // The event page was not read yet: the seat map's sections, blind.
                let start = rand::thread_rng().gen_range(0..sections.len());
                for i in 0..sections.len().min(4) {
                    let section = &sections[(start + i) % sections.len()];
                    attempts.push((best(&section.id, wanted), None));
                }
            }
            for (section_id, available) in picked {
                attempts.push((best(&section_id, wanted), Some(available)));
            }
        }
    }
    let mut hold = None;
    for (selection, shown) in attempts {
        let started = Instant::now();
        let result = retried(user, fan, "HoldSeats", || {
            let request = with_pass(
                pb::HoldSeatsRequest {
                    event_id: fan.event.event_id.clone(),
                    selection: Some(selection.clone()),
                },
                &fan.pass,
            );
            let mut sales = fan.sales();
            async move { sales.hold_seats(request).await }
        })
        .await;
        match result {
            Ok(response) => {
                recorder.stage(Stage::Hold, started.elapsed());
                hold = response.hold;
                break;
            }
            Err(failed)
                if matches!(
                    failed.status.code(),
                    Code::Aborted | Code::FailedPrecondition
                ) =>
            {
                if failed.status.message().contains("tickets allowed per fan") {
                    return Err(End::SoldOut("hold refused: over the cap"));
                }
                // The section has fewer together than that now: the next fans look elsewhere
                // until the page is read again.
                if let (Some(available), pb::hold_seats_request::Selection::BestAvailable(b)) =
                    (shown, &selection)
                {
                    available.fetch_min(b.quantity.saturating_sub(1), Ordering::Relaxed);
                }
                continue;
            }
            Err(failed) => return Err(End::Failed(failed)),
        }
    }
    let Some(hold) = hold else {
        return Err(End::SoldOut("no seats left to hold"));
    };

    if chance(crowd.mix.abandon_share) {
        let _ = retried(user, fan, "ReleaseHold", || {
            let request = with_pass(
                pb::ReleaseHoldRequest {
                    hold_id: hold.hold_id.clone(),
                },
                &fan.pass,
            );
            let mut sales = fan.sales();
            async move { sales.release_hold(request).await }
        })
        .await;
        return Ok(false);
    }

    let started = Instant::now();
    let key = |what: &str| {
        format!(
            "lg-{what}-{}",
            &taquilla_proto::signed::sha256_hex(&format!("{}:{}", fan.fingerprint, hold.hold_id))
                [..40]
        )
    };
    let checkout = retried(user, fan, "Checkout", || {
        let request = with_pass(
            pb::CheckoutRequest {
                hold_id: hold.hold_id.clone(),
                idempotency_key: key("co"),
            },
            &fan.pass,
        );
        let mut sales = fan.sales();
        async move { sales.checkout(request).await }
    })
    .await;
    let order = match checkout {
        Ok(response) => {
            recorder.stage(Stage::Checkout, started.elapsed());
            response.order.unwrap_or_default()
        }
        Err(failed) => {
            // Let the seats go rather than leave them locked until the hold lapses.
            let request = with_pass(
                pb::ReleaseHoldRequest {
                    hold_id: hold.hold_id.clone(),
                },
                &fan.pass,
            );
            let _ = timed(user, "ReleaseHold", fan.sales().release_hold(request)).await;
            return Err(End::Failed(failed));
        }
    };

    let mut cards = vec![GOOD_CARD];
    if chance(crowd.mix.decline_share) {
        cards.insert(0, DECLINED_CARD);
    }
    for (attempt, number) in cards.into_iter().enumerate() {
        let started = Instant::now();
        let pay_key = key(&format!("pay{attempt}"));
        let paid = retried(user, fan, "Pay", || {
            let request = with_pass(
                pb::PayRequest {
                    order_id: order.order_id.clone(),
                    idempotency_key: pay_key.clone(),
                    card: Some(pb::Card {
                        number: number.into(),
                        exp_month: 12,
                        exp_year: 2099,
                        cvc: "123".into(),
                    }),
                },
                &fan.pass,
            );
            let mut sales = fan.sales();
            async move { sales.pay(request).await }
        })
        .await;
        let order = match paid {
            Ok(paid) => paid.order.unwrap_or_default(),
            Err(failed) => {
                // The answer was lost or refused: what happened to the order is the server's to
                // say, as a fan would look it up. A payment that went through counts as bought.
                let looked_up = retried(user, fan, "GetOrder", || {
                    let request = with_pass(
                        pb::GetOrderRequest {
                            order_id: order.order_id.clone(),
                        },
                        &fan.pass,
                    );
                    let mut sales = fan.sales();
                    async move { sales.get_order(request).await }
                })
                .await;
                match looked_up {
                    Ok(order) if order.state() == pb::OrderState::Paid => order,
                    // Not paid yet, or no word: a payment in flight may still complete, so the
                    // run asks again when the sale is over.
                    _ => {
                        recorder.unsettled(unsettled(fan, &order.order_id));
                        return Err(End::Failed(failed));
                    }
                }
            }
        };
        if order.state() == pb::OrderState::Paid {
            recorder.stage(Stage::Pay, started.elapsed());
            let tickets: Vec<(u32, String)> = order
                .tickets
                .iter()
                .map(|t| {
                    (
                        t.seat.as_ref().map(|s| s.seat_id).unwrap_or(0),
                        t.code.clone(),
                    )
                })
                .collect();
            recorder.bought(
                &fan.event.event_id,
                &fan.fingerprint,
                fan.event.cap,
                &order.order_id,
                &tickets,
            );
            return Ok(true);
        }
    }
    recorder.unsettled(unsettled(fan, &order.order_id));
    Err(End::SoldOut("payment never went through"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        mix: Mix,
    }

    /// goose keeps one `GooseUser` per fan in the fan's task for the whole run. Upstream goose
    /// 0.19 carried the whole configuration inline in each (2,040 bytes a user); the vendored
    /// goose holds it behind an `Arc` (vendor/README.md). This fails if that patch is lost (it
    /// checks the size, not that goose's user factory shares one `Arc`).
    #[test]
    fn goose_users_hold_the_configuration_behind_a_pointer() {
        let user = std::mem::size_of::<GooseUser>();
        println!("GooseUser {user} B");
        assert!(user <= 1_280, "a GooseUser takes {user} bytes");
    }

    /// Every fan's journey lives for the whole run, most of it waiting in line: what it keeps
    /// while it waits (the journey's own future, the boxed waiting phase and the boxed stream
    /// reader) is the load generator's memory per fan beyond goose's own. This keeps it so.
    #[test]
    fn a_waiting_fan_costs_little_memory() {
        let config =
            goose::config::GooseConfiguration::parse_args_default::<&str>(&[]).expect("config");
        let mut user =
            GooseUser::single("http://127.0.0.1:1".parse().expect("url"), &config).expect("user");
        let journey = std::mem::size_of_val(&journey(&mut user));
        let crowd = Arc::new(Crowd::new(
            Vec::new(),
            Vec::new(),
            <Defaults as clap::Parser>::parse_from(["loadgen"]).mix,
            Arc::new(super::super::record::Recorder::new()),
            String::new(),
            0,
            Instant::now(),
        ));
        let mut fan = Fan {
            crowd,
            slot: AtomicUsize::new(0),
            event: Target {
                event_id: String::new(),
                cap: 1,
                presale_codes: Vec::new(),
            },
            event_index: 0,
            fingerprint: String::new(),
            pass: String::new(),
        };
        let reading = std::mem::size_of_val(&attach(&fan, "", Instant::now(), false, false, None));
        let waiting = std::mem::size_of_val(&wait_for_turn(
            &mut user,
            &mut fan,
            "",
            Instant::now(),
            Duration::ZERO,
            None,
        ));
        let total = journey + waiting + reading;
        println!("journey {journey} B, waiting phase {waiting} B, stream reader {reading} B");
        assert!(total <= 1_280, "a waiting fan's futures take {total} bytes");
        // A fan kept waiting for a join answer, or told to come back, holds the join loop.
        let joining = std::mem::size_of_val(&join(&mut user, &mut fan));
        let trying =
            std::mem::size_of_val(&join_once(&mut user, &fan, "", None, Instant::now(), None));
        println!("join loop {joining} B, one try {trying} B");
        assert!(
            joining <= 512,
            "the join loop's future takes {joining} bytes"
        );
        // (A try lives only while its call is in flight, which `--joins-in-flight` bounds.)
    }
}
