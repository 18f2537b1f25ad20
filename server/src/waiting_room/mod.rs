//! The embedded waiting room: per event, an in-process queue that places fans fairly, tells
//! each watcher their position, and admits them at the rate the operator sets.
//!
//! - **Join** is idempotent per fingerprint (its SHA-256): a second tab gets the same entry.
//!   Before the sale opens, fans wait in a pre-queue; at opening the pre-queue is shuffled with
//!   a published seed ([`shuffle`]) and placed ahead of everyone who arrives later.
//! - **Positions** come from [`QueueOrder`] (Fenwick trees per tier). The room looks at each
//!   watched place on a cadence that grows with its distance from the front and wakes the
//!   watcher only for a visible move; own news (admission), the sale's state and alerts reach
//!   the stream at once; no heartbeats ([`watchers`] says why and how).
//! - **Admission** (the pump, every [`PUMP_INTERVAL`]): a token bucket at the operator's rate
//!   with burst, capped by the number of fans buying at once (`max_active`), highest tier first
//!   (presale phase: presale tiers only). An admitted fan gets a signed pass; the slot frees when
//!   they pay, leave, do not hold seats within the no-show window, or their pass expires.
//! - **Grace**: an entry with no open stream for longer than the grace period is removed.
//!
//! With `--redis-url` the same rules run in Redis for any number of nodes ([`shared`]): Lua
//! scripts decide joins, admissions and removals atomically, and each node replays the event's
//! log into the very same in-memory queue ([`Inner`]) to answer its own watchers' positions.
//!
//! The parts, one file each: `model` (the in-memory line, [`Inner`]), `gate` (bans, join
//! limits, proof of work), `join` (joining and leaving), `watchers` (the streams), `pump`
//! (admission steps), `passes` (passes and the no-show clock while a fan buys), `control`
//! (the operators' controls and figures), and, for Redis, `shared` (the scripts), `keys` (its
//! keys, named), `replies` (the scripts' answers, typed) and `replica` (each node's copy of the
//! line, from the event's log). This file holds the types
//! they share and finds an event's room.

mod control;
mod gate;
mod join;
mod keys;
mod model;
mod passes;
mod pump;
mod replica;
mod replies;
mod shared;
mod watchers;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taquilla_proto::v1 as pb;
use tokio::sync::{broadcast, watch};
use tokio_stream::Stream;
use tonic::Status;

use crate::domain::clock::Clock;
use crate::domain::push::LookWheel;
use crate::domain::queue::{QueueOrder, RateAverage, TokenBucket, shuffle};
use crate::domain::valve::{AutoValve, SalesFeedback};
use crate::domain::{SalePhase, SaleState};
use crate::error::{ApiError, ApiResult};
use crate::limits::{Rate, RateLimiter};
use crate::redis_link::{Redis, RedisLink};
use crate::shutdown::Shutdown;
use crate::store::{AdmissionSettings, EventRecord};
use crate::tokens::{
    ChallengeClaims, PassClaims, QueueClaims, Signer, TokenKind, pow_zero_bits, sha256_hex,
};
use redis::AsyncCommands;
use shared::{Change, Shared, unavailable};
use taquilla_proto::fairness::{Bytes32, ManifestEntry, ShuffleSecret};
use watchers::Signal;

/// A fan's stream of queue updates.
pub type QueueStream = Pin<Box<dyn Stream<Item = Result<pb::QueueUpdate, Status>> + Send>>;

/// How often the pump admits fans, expires slots and looks at watchers' places.
pub const PUMP_INTERVAL: Duration = Duration::from_millis(100);

const GENERAL: usize = 0;
const PRESALE: usize = 1;
const VIP: usize = 2;

/// Timings of the waiting room.
#[derive(Debug, Clone, Copy)]
pub struct RoomTimings {
    /// How long an admission pass is accepted.
    pub pass_ttl: Duration,
    /// An admitted fan must hold seats within this time, or the slot goes to the next fan.
    pub no_show: Duration,
    /// An entry without any open stream this long is removed.
    pub grace: Duration,
}

impl Default for RoomTimings {
    fn default() -> Self {
        RoomTimings {
            pass_ttl: Duration::from_secs(30 * 60),
            no_show: Duration::from_secs(120),
            grace: Duration::from_secs(120),
        }
    }
}

/// Join rate limits, per minute, each with a burst of a sixth of a minute's worth (at least 3).
#[derive(Debug, Clone, Copy)]
pub struct JoinRateLimits {
    pub per_ip: u32,
    pub per_fingerprint: u32,
}

impl Default for JoinRateLimits {
    fn default() -> Self {
        JoinRateLimits {
            per_ip: 120,
            per_fingerprint: 30,
        }
    }
}

/// How long a proof-of-work challenge may be answered.
const CHALLENGE_TTL_MS: i64 = 120_000;

/// A join request, parsed.
#[derive(Debug, Clone, Default)]
pub struct JoinInput {
    pub fingerprint: String,
    pub presale_code: String,
    pub ip: Option<IpAddr>,
    /// A solved challenge: (challenge, nonce).
    pub pow: Option<(String, String)>,
}

/// What a join gave.
#[derive(Debug, Clone)]
pub enum Joined {
    /// A place (new or the fingerprint's existing one) and its token.
    Placed(String, pb::QueueStatus),
    /// Proof of work is required first.
    Challenge(pb::PowChallenge),
}

#[derive(Debug, Default)]
struct Bans {
    fingerprints: HashSet<String>,
    ips: HashSet<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryState {
    Prequeue,
    Waiting,
    Admitted,
    Removed,
    Expired,
}

#[derive(Debug, Clone)]
struct Admission {
    pass: String,
    pass_exp_ms: i64,
    hold_deadline_ms: i64,
    started: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    tier: usize,
    state: EntryState,
    seq: u64,
    /// The fingerprint's hash and the join time: with the entry id, what its token signs.
    fp: String,
    iat: i64,
    initial_position: u64,
    watchers: u32,
    /// When the last stream closed (or the join, if none opened yet); `None` while watched.
    detached_at_ms: Option<i64>,
    admission: Option<Admission>,
    ip: Option<IpAddr>,
    /// Wakes this entry's watchers when its own state changes (admitted, removed, expired) or
    /// the room's look finds its place moved visibly.
    signal: Arc<Signal>,
    /// The place its streams last computed (what the room's next look compares with).
    shown_position: u64,
    /// When the room looks at its place next (0: not scheduled).
    look_due_ms: i64,
}

#[derive(Debug)]
struct Inner {
    sale: SaleState,
    phase: SalePhase,
    opens_at_ms: i64,
    admission: AdmissionSettings,
    bucket: TokenBucket,
    rate: RateAverage,
    presale_codes: HashSet<String>,
    entries: HashMap<u64, Entry>,
    by_fingerprint: HashMap<String, u64>,
    by_seq: HashMap<u64, u64>,
    order: QueueOrder,
    prequeue: Vec<u64>,
    next_entry: u64,
    next_seq: u64,
    active: HashSet<u64>,
    /// Entries nobody watches, by the time they were left alone (their grace period runs from
    /// it), so each step reads only those whose grace is over: a crowd whose streams dropped
    /// at once (a network blip) costs nothing until it lapses.
    detached: BTreeSet<(i64, u64)>,
    admitted_total: u64,
    /// Open Watch streams.
    watchers: u64,
    /// The key the pre-queue was shuffled with, once the sale has opened.
    seed: Option<u64>,
    /// The commitment to the shuffle's seed (hex), told to fans in the pre-queue.
    commitment: Option<Arc<str>>,
    alert: Option<pb::Alert>,
    next_alert: u64,
    /// When to look at which watcher's place ([`watchers`]).
    looks: LookWheel,
    /// The last look's due list, kept for its capacity.
    looks_due: Vec<(u64, i64)>,
    /// How far apart the looks are now, ×1 to ×4: wider while the sales path is pressed
    /// ([`crate::domain::push::next_stretch`]).
    look_stretch: u32,
    /// The automatic valve, when `admission.auto` (this node's; on Redis its limit is written
    /// to the event's record for the admission step there).
    valve: AutoValve,
}

/// One event's queue.
#[derive(Debug)]
pub struct Room {
    event_id: String,
    inner: Mutex<Inner>,
    /// Counts changes of the sale itself (opened, paused, closed, sold out): every watcher
    /// hears of those at once.
    sale_changed: watch::Sender<u64>,
    alerts: broadcast::Sender<pb::Alert>,
    /// The highest entry id this node's replica knows (a stream for a newer entry waits for it).
    known: watch::Sender<u64>,
    /// Whether the event's queue exists in Redis (distributed backend).
    created: tokio::sync::OnceCell<()>,
    /// The id (ms, seq) of the last log entry this node's replica applied.
    applied: watch::Sender<(u64, u64)>,
    /// The pre-queue's manifest, once the sale has opened (on Redis, read once from there).
    manifest: tokio::sync::OnceCell<Arc<Manifest>>,
    /// The seed and nonce the shuffle is committed to.
    secret: ShuffleSecret,
}

/// The pre-queue at opening, in join order ([`taquilla_proto::fairness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub entries: Vec<ManifestEntry>,
    /// What the shuffle key mixed with the seed.
    pub digest: Bytes32,
}

/// What is published of an event's shuffle: the commitment from the start; the seed, nonce
/// and manifest once the sale has opened.
#[derive(Debug, Clone)]
pub struct ShuffleProof {
    pub commitment: Bytes32,
    pub revealed: Option<Revealed>,
}

/// The opened half of a [`ShuffleProof`].
#[derive(Debug, Clone)]
pub struct Revealed {
    pub seed: Bytes32,
    pub nonce: Bytes32,
    pub manifest: Arc<Manifest>,
}

/// Every event's queue on this node.
#[derive(Debug)]
pub struct WaitingRoom {
    clock: Arc<dyn Clock>,
    signer: Signer,
    timings: RoomTimings,
    limits: JoinRateLimits,
    /// Join rate limits' buckets (this node's, or shared in Redis).
    join_limiter: RateLimiter,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    bans: Mutex<Bans>,
    /// The distributed backend; `None`: everything lives in this process.
    shared: Option<Arc<Shared>>,
    /// How far apart every room's looks at places are now (see `Inner::look_stretch`).
    look_stretch: prometheus_client::metrics::gauge::Gauge,
    /// Messages sent on Watch streams.
    updates_sent: prometheus_client::metrics::counter::Counter,
}

/// What a status message says, to tell whether anything changed.
#[derive(Debug, Clone, PartialEq)]
struct View {
    status: pb::QueueStatus,
    pass: Option<pb::AdmissionPass>,
}

fn tier_of(tier: usize) -> pb::QueueTier {
    match tier {
        VIP => pb::QueueTier::Vip,
        PRESALE => pb::QueueTier::Presale,
        _ => pb::QueueTier::General,
    }
}

fn sale_ended(event_id: &str, state: SaleState) -> ApiError {
    if state == SaleState::SoldOut {
        ApiError::SaleEnded {
            message: format!("{event_id:?} is sold out"),
            why: taquilla_proto::SaleEnded::SoldOut,
        }
    } else {
        ApiError::SaleEnded {
            message: format!("the sale of {event_id:?} is closed"),
            why: taquilla_proto::SaleEnded::Closed,
        }
    }
}

fn lock(room: &Room) -> ApiResult<std::sync::MutexGuard<'_, Inner>> {
    room.inner
        .lock()
        .map_err(|_| ApiError::Internal("waiting room state poisoned".into()))
}

impl Room {
    fn sale_changed(&self) {
        self.sale_changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Snapshot of one event's queue, for operators.
#[derive(Debug, Clone, Default)]
pub struct RoomStats {
    pub prequeue: u64,
    pub waiting: [u64; 3],
    pub active: u64,
    pub admitted_total: u64,
    pub admitted_per_minute: f64,
    pub eta_last_seconds: u64,
    pub watchers: u64,
    pub shuffle_seed: Option<String>,
    /// With the automatic valve: the fans it lets buy at once now.
    pub auto_limit: Option<u32>,
}

impl WaitingRoom {
    pub fn new(
        clock: Arc<dyn Clock>,
        signer: Signer,
        timings: RoomTimings,
        limits: JoinRateLimits,
    ) -> WaitingRoom {
        WaitingRoom {
            clock,
            signer,
            timings,
            limits,
            rooms: Mutex::new(HashMap::new()),
            join_limiter: RateLimiter::local(
                "join",
                Rate::per_minute(limits.per_ip),
                Rate::per_minute(limits.per_fingerprint),
            ),
            bans: Mutex::new(Bans::default()),
            shared: None,
            look_stretch: {
                let stretch = prometheus_client::metrics::gauge::Gauge::default();
                stretch.set(1);
                stretch
            },
            updates_sent: Default::default(),
        }
    }

    /// Publishes `queue_look_stretch` and `watch_updates_total` in the metrics registry.
    pub fn register(&self, metrics: &crate::metrics::Metrics) {
        metrics.register(
            "queue_look_stretch",
            "How many times farther apart than usual the room looks at waiting fans' places \
             (1 to 4; wider while the sales path is pressed: buyers first)",
            self.look_stretch.clone(),
        );
        metrics.register(
            "watch_updates",
            "Messages sent on Watch streams",
            self.updates_sent.clone(),
        );
    }

    /// Keeps the join limits' buckets in Redis, shared by every node (`--shared-rate-limits`).
    pub fn share_join_limits(&mut self, link: RedisLink, namespace: &str) {
        self.join_limiter = RateLimiter::shared(
            "join",
            Rate::per_minute(self.limits.per_ip),
            Rate::per_minute(self.limits.per_fingerprint),
            link,
            namespace,
        );
    }

    /// A waiting room whose queues live in Redis (one server or a cluster), shared with every
    /// node that uses the same Redis and `namespace`.
    pub fn with_redis(
        clock: Arc<dyn Clock>,
        signer: Signer,
        timings: RoomTimings,
        limits: JoinRateLimits,
        redis: Redis,
        namespace: &str,
    ) -> WaitingRoom {
        let mut room = WaitingRoom::new(clock, signer, timings, limits);
        room.shared = Some(Arc::new(Shared::new(redis, namespace)));
        room
    }

    /// Which backend holds the queues: "embedded" or "redis".
    pub fn backend(&self) -> &'static str {
        if self.shared.is_some() {
            "redis"
        } else {
            "embedded"
        }
    }

    /// The queue token of an entry (the same bytes on every node: it signs only the entry).
    fn queue_token(&self, event_id: &str, id: u64, fp: &str, iat: i64) -> String {
        self.signer.sign(
            TokenKind::Queue,
            &QueueClaims {
                ev: event_id.to_string(),
                en: id.to_string(),
                fp: fp.to_string(),
                iat,
            },
        )
    }

    /// An admission: the pass (the same bytes on every node) and its deadlines.
    fn admission(
        &self,
        event_id: &str,
        id: u64,
        fp: &str,
        at_ms: i64,
        pass_exp_ms: i64,
        hold_deadline_ms: i64,
    ) -> Admission {
        let pass = self.signer.sign(
            TokenKind::AdmissionPass,
            &PassClaims {
                ev: event_id.to_string(),
                fan: fp.to_string(),
                en: id.to_string(),
                iat: at_ms,
                exp: pass_exp_ms,
            },
        );
        Admission {
            pass,
            pass_exp_ms,
            hold_deadline_ms,
            started: false,
        }
    }

    /// The queue of an event, created from its stored sale state on first use (distributed:
    /// created in Redis if it is not there, and this node's replica starts following its log).
    async fn room(self: &Arc<Self>, event: &EventRecord) -> ApiResult<Arc<Room>> {
        let (room, new) = self.local_room(event)?;
        if let Some(shared) = &self.shared {
            if new {
                tokio::spawn(self.clone().follow(shared.clone(), room.clone()));
            }
            room.created
                .get_or_try_init(|| shared.init(event, self.clock.now_ms()))
                .await?;
        }
        Ok(room)
    }

    /// Makes sure this node serves an event's queue (distributed: follows its log from now on).
    pub async fn serve_event(self: &Arc<Self>, event: &EventRecord) -> ApiResult<()> {
        self.room(event).await.map(|_| ())
    }

    fn local_room(&self, event: &EventRecord) -> ApiResult<(Arc<Room>, bool)> {
        let mut rooms = self
            .rooms
            .lock()
            .map_err(|_| ApiError::Internal("waiting rooms poisoned".into()))?;
        if let Some(room) = rooms.get(&event.id) {
            return Ok((room.clone(), false));
        }
        let now = self.clock.now_ms();
        let seed = event
            .shuffle_seed
            .as_deref()
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        let mut inner = Inner::new(
            event.sale_state,
            event.sale_phase,
            event.sale_opens_at_ms,
            event.admission,
            seed,
            &event.presale_codes,
            now,
        );
        inner.commitment = event
            .shuffle_secret
            .as_ref()
            .map(|s| Arc::from(hex::encode(s.commitment())));
        let room = Arc::new(Room {
            event_id: event.id.clone(),
            inner: Mutex::new(inner),
            sale_changed: watch::channel(0).0,
            alerts: broadcast::channel(16).0,
            known: watch::channel(0).0,
            created: tokio::sync::OnceCell::new(),
            applied: watch::channel((0, 0)).0,
            manifest: tokio::sync::OnceCell::new(),
            secret: control::shuffle_secret(event),
        });
        rooms.insert(event.id.clone(), room.clone());
        Ok((room, true))
    }

    fn known_room(&self, event_id: &str) -> Option<Arc<Room>> {
        self.rooms
            .lock()
            .ok()
            .and_then(|r| r.get(event_id).cloned())
    }

    /// Events whose queue lives on this node.
    pub fn event_ids(&self) -> Vec<String> {
        self.rooms
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
pub(super) mod tests;
