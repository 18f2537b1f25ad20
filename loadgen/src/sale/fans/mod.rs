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

mod buy;
mod queue;

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
use buy::buy;
use queue::{Joined, join, wait_for_turn};
#[cfg(test)]
use queue::{attach, join_once};

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
    /// The fan's number in the whole crowd (across shards).
    index: u64,
    /// In the pre-queue, until the place given at opening is recorded.
    early: std::sync::atomic::AtomicBool,
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
        index: index as u64,
        early: std::sync::atomic::AtomicBool::new(false),
        fingerprint: format!("{}-{index}", crowd.fingerprint_prefix),
        pass: String::new(),
        crowd: crowd.clone(),
    };
    let end = run(user, &mut fan).await;
    // A fan shown ETAs and never admitted counts apart (an admitted one was judged then).
    crowd.recorder.eta.not_admitted(fan.index);
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
            index: 0,
            early: std::sync::atomic::AtomicBool::new(false),
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
