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

mod shared;
mod watchers;

pub use shared::key_slot;

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
use crate::shutdown::Shutdown;
use crate::store::{AdmissionSettings, EventRecord};
use crate::tokens::{
    ChallengeClaims, PassClaims, QueueClaims, Signer, TokenKind, pow_zero_bits, sha256_hex,
};
use redis::AsyncCommands;
use shared::{Change, Shared, unavailable};
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
    seed: Option<u64>,
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

impl Inner {
    fn new(
        sale: SaleState,
        phase: SalePhase,
        opens_at_ms: i64,
        admission: AdmissionSettings,
        seed: Option<u64>,
        presale_codes: &[String],
        now: i64,
    ) -> Inner {
        Inner {
            sale,
            phase,
            opens_at_ms,
            admission,
            bucket: TokenBucket::new(admission.rate_per_minute, admission.burst, now),
            rate: RateAverage::default(),
            presale_codes: presale_codes.iter().cloned().collect(),
            entries: HashMap::new(),
            by_fingerprint: HashMap::new(),
            by_seq: HashMap::new(),
            order: QueueOrder::default(),
            prequeue: Vec::new(),
            next_entry: 0,
            next_seq: 0,
            active: HashSet::new(),
            detached: BTreeSet::new(),
            admitted_total: 0,
            watchers: 0,
            seed,
            alert: None,
            next_alert: 1,
            looks: LookWheel::default(),
            looks_due: Vec::new(),
            look_stretch: 1,
            valve: AutoValve::default(),
        }
    }

    /// Most fans buying at once now: the operator's `max_active`, or the automatic valve's
    /// limit under it.
    fn buyers_allowed(&self) -> u32 {
        if self.admission.auto {
            self.valve.limit(self.admission.max_active)
        } else {
            self.admission.max_active
        }
    }

    fn min_tier(&self) -> usize {
        match self.phase {
            SalePhase::Presale => PRESALE,
            SalePhase::General => GENERAL,
        }
    }

    fn place(&mut self, id: u64) {
        self.place_at(id, self.next_seq + 1);
    }

    /// Puts an entry in line with sequence number `seq` (larger: farther back in its tier).
    fn place_at(&mut self, id: u64, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.seq = seq;
            entry.state = EntryState::Waiting;
            self.order.insert(entry.tier, seq);
            self.by_seq.insert(seq, id);
            entry.initial_position = self.order.position(entry.tier, seq);
        }
    }

    fn unplace(&mut self, id: u64) {
        if let Some(entry) = self.entries.get(&id) {
            match entry.state {
                EntryState::Waiting => {
                    self.order.remove(entry.tier, entry.seq);
                    self.by_seq.remove(&entry.seq);
                }
                EntryState::Prequeue => self.prequeue.retain(|e| *e != id),
                EntryState::Admitted => {
                    self.active.remove(&id);
                }
                _ => {}
            }
        }
    }

    /// A new entry, in line (`seq` > 0) or in the pre-queue.
    fn add_entry(
        &mut self,
        id: u64,
        tier: usize,
        seq: u64,
        fp: String,
        iat: i64,
        ip: Option<IpAddr>,
    ) {
        self.entries.insert(
            id,
            Entry {
                tier,
                state: EntryState::Prequeue,
                seq: 0,
                fp: fp.clone(),
                iat,
                initial_position: 0,
                watchers: 0,
                detached_at_ms: Some(iat),
                admission: None,
                ip,
                signal: Arc::default(),
                shown_position: 0,
                look_due_ms: 0,
            },
        );
        self.by_fingerprint.insert(fp, id);
        self.next_entry = self.next_entry.max(id);
        if seq > 0 {
            self.place_at(id, seq);
        } else {
            self.prequeue.push(id);
        }
    }

    /// Whether an entry is still in line or buying.
    fn is_live(&self, id: u64) -> bool {
        self.entries
            .get(&id)
            .is_some_and(|e| !matches!(e.state, EntryState::Removed | EntryState::Expired))
    }

    /// Takes a live entry out of the queue for good (left, banned, paid, grace period over).
    fn remove_entry(&mut self, id: u64) -> bool {
        if !self.is_live(id) {
            return false;
        }
        self.unplace(id);
        if let Some(since) = self.entries.get(&id).and_then(|e| e.detached_at_ms) {
            self.detached.remove(&(since, id));
        }
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.state = EntryState::Removed;
            entry.signal.wake();
        }
        true
    }

    /// An admitted fan's slot ended without a purchase (no-show, pass expired).
    fn expire_entry(&mut self, id: u64) {
        self.active.remove(&id);
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.state = EntryState::Expired;
            entry.signal.wake();
        }
    }

    /// Admits a fan: out of line, into the active set, with a pass.
    fn admit_entry(&mut self, id: u64, admission: Admission) {
        if let Some(entry) = self.entries.get(&id)
            && entry.state == EntryState::Waiting
        {
            self.order.remove(entry.tier, entry.seq);
            self.by_seq.remove(&entry.seq);
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.state = EntryState::Admitted;
        entry.signal.wake();
        entry.admission = Some(admission);
        self.active.insert(id);
        self.admitted_total += 1;
    }

    /// Opens the sale: the pre-queue is shuffled with a fresh seed and placed first. Its
    /// watchers, looked at rarely while they had no place, are looked at from now on the
    /// cadence of their new places.
    fn open(&mut self, seed: u64, now: i64) {
        self.seed = Some(seed);
        let mut prequeue = std::mem::take(&mut self.prequeue);
        shuffle(&mut prequeue, seed);
        for &id in &prequeue {
            self.place(id);
        }
        self.sale = SaleState::Open;
        for id in prequeue {
            self.reschedule_look(id, now);
        }
    }

    fn view(&self, event_id: &str, id: u64, rate_fallback: f64) -> Option<View> {
        let entry = self.entries.get(&id)?;
        let state = match (self.sale, entry.state) {
            (SaleState::Closed, EntryState::Waiting | EntryState::Prequeue) => {
                pb::QueueState::Closed
            }
            // Nothing is left to buy, for those in line and those admitted alike.
            (
                SaleState::SoldOut,
                EntryState::Waiting | EntryState::Prequeue | EntryState::Admitted,
            ) => pb::QueueState::SoldOut,
            (_, EntryState::Prequeue) => pb::QueueState::Prequeue,
            (_, EntryState::Waiting) => pb::QueueState::Waiting,
            (_, EntryState::Admitted) => pb::QueueState::Admitted,
            (_, EntryState::Removed) => pb::QueueState::Removed,
            (_, EntryState::Expired) => pb::QueueState::Expired,
        };
        let position = if state == pb::QueueState::Waiting {
            self.order.position(entry.tier, entry.seq)
        } else {
            0
        };
        let eta_seconds = if position > 0 && self.sale == SaleState::Open {
            self.rate.eta_seconds(position, rate_fallback).unwrap_or(0)
        } else {
            0
        };
        Some(View {
            status: pb::QueueStatus {
                event_id: event_id.to_string(),
                state: state.into(),
                position,
                waiting_total: self.order.len() + self.prequeue.len() as u64,
                eta_seconds,
                tier: tier_of(entry.tier).into(),
                initial_position: entry.initial_position,
                sale_opens_at_unix_ms: self.opens_at_ms,
                sale_paused: self.sale == SaleState::Paused,
            },
            pass: entry.admission.as_ref().map(|a| pb::AdmissionPass {
                token: a.pass.clone(),
                event_id: event_id.to_string(),
                expires_at_unix_ms: a.pass_exp_ms,
                hold_deadline_unix_ms: a.hold_deadline_ms,
            }),
        })
    }
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
    pub fn share_join_limits(
        &mut self,
        connection: redis::aio::ConnectionManager,
        namespace: &str,
    ) {
        self.join_limiter = RateLimiter::shared(
            "join",
            Rate::per_minute(self.limits.per_ip),
            Rate::per_minute(self.limits.per_fingerprint),
            connection,
            namespace,
        );
    }

    /// A waiting room whose queues live in Redis, shared with every node that uses the same
    /// Redis and `namespace`.
    pub fn with_redis(
        clock: Arc<dyn Clock>,
        signer: Signer,
        timings: RoomTimings,
        limits: JoinRateLimits,
        client: redis::Client,
        connection: redis::aio::ConnectionManager,
        namespace: &str,
    ) -> WaitingRoom {
        let mut room = WaitingRoom::new(clock, signer, timings, limits);
        room.shared = Some(Arc::new(Shared::new(client, connection, namespace)));
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

    /// Loads stored bans: (kind, value) with kind FINGERPRINT (value the hash) or IP.
    pub fn load_bans(&self, bans: &[(String, String)]) {
        if let Ok(mut set) = self.bans.lock() {
            for (kind, value) in bans {
                match kind.as_str() {
                    "FINGERPRINT" => {
                        set.fingerprints.insert(value.clone());
                    }
                    "IP" => {
                        if let Ok(ip) = value.parse() {
                            set.ips.insert(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Bans a fingerprint hash or an address: matching entries leave every queue and their
    /// joins are refused. Returns the number of entries removed.
    pub async fn ban(&self, fingerprint_hash: Option<&str>, ip: Option<IpAddr>) -> ApiResult<u64> {
        if let Ok(mut set) = self.bans.lock() {
            if let Some(fp) = fingerprint_hash {
                set.fingerprints.insert(fp.to_string());
            }
            if let Some(ip) = ip {
                set.ips.insert(ip);
            }
        }
        if let Some(shared) = &self.shared {
            // Every node refuses the ban's joins from its next refresh on.
            let (fps, ips) = shared::ban_keys(&shared.namespace);
            let mut conn = shared.conn.clone();
            let mut pipe = redis::pipe();
            if let Some(fp) = fingerprint_hash {
                pipe.sadd(&fps, fp).ignore();
            }
            if let Some(ip) = ip {
                pipe.sadd(&ips, ip.to_string()).ignore();
            }
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let mut removed = 0;
        for room in rooms {
            let matching: Vec<u64> = {
                let Ok(inner) = room.inner.lock() else {
                    continue;
                };
                let mut matching: Vec<u64> = Vec::new();
                if let Some(fp) = fingerprint_hash {
                    matching.extend(inner.by_fingerprint.get(fp).copied());
                }
                if let Some(ip) = ip {
                    matching.extend(
                        inner
                            .entries
                            .iter()
                            .filter(|(_, e)| e.ip == Some(ip))
                            .map(|(id, _)| *id),
                    );
                }
                matching.retain(|id| inner.is_live(*id));
                matching
            };
            removed += self.remove(&room.event_id, &matching, "banned").await?;
        }
        Ok(removed)
    }

    /// Removes live entries (left, banned, paid); returns how many were still live.
    async fn remove(&self, event_id: &str, ids: &[u64], reason: &str) -> ApiResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        if let Some(shared) = &self.shared {
            let mut args = vec![reason.to_string()];
            args.extend(ids.iter().map(u64::to_string));
            let removed: u64 = shared
                .run(&shared.scripts.remove, event_id, &[], &args)
                .await?;
            return Ok(removed);
        }
        let Some(room) = self.known_room(event_id) else {
            return Ok(0);
        };
        let mut removed = 0;
        {
            let mut inner = lock(&room)?;
            for id in ids {
                if inner.remove_entry(*id) {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Reads the bans every node shares (distributed backend).
    async fn refresh_bans(&self, shared: &Shared) -> ApiResult<()> {
        let (fps, ips) = shared::ban_keys(&shared.namespace);
        let mut conn = shared.conn.clone();
        let (fingerprints, addresses): (Vec<String>, Vec<String>) = redis::pipe()
            .smembers(&fps)
            .smembers(&ips)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if let Ok(mut set) = self.bans.lock() {
            set.fingerprints.extend(fingerprints);
            set.ips
                .extend(addresses.iter().filter_map(|ip| ip.parse::<IpAddr>().ok()));
        }
        Ok(())
    }

    fn check_banned(&self, fp: &str, ip: Option<IpAddr>) -> ApiResult<()> {
        let banned = self
            .bans
            .lock()
            .map(|b| b.fingerprints.contains(fp) || ip.is_some_and(|ip| b.ips.contains(&ip)))
            .unwrap_or(false);
        if banned {
            return Err(ApiError::PermissionDenied(
                "this device or network address is banned from the queue".into(),
            ));
        }
        Ok(())
    }

    /// Counts a join against the caller's address and fingerprint.
    async fn check_rate(&self, fp: &str, ip: Option<IpAddr>, now: i64) -> ApiResult<()> {
        self.join_limiter
            .check(fp, ip, now)
            .await
            .map_err(|wait| ApiError::ResourceExhausted {
                message: "too many joins from this device or address; wait a moment and try again"
                    .into(),
                retry_after_ms: wait,
            })
    }

    /// Checks a proof of work, or says which challenge to solve.
    fn check_pow(
        &self,
        event_id: &str,
        fp: &str,
        bits: u32,
        solution: Option<&(String, String)>,
        now: i64,
    ) -> ApiResult<Option<pb::PowChallenge>> {
        if bits == 0 {
            return Ok(None);
        }
        let fresh = || {
            let exp = now + CHALLENGE_TTL_MS;
            let challenge = self.signer.sign(
                TokenKind::Challenge,
                &ChallengeClaims {
                    ev: event_id.to_string(),
                    fp: fp.to_string(),
                    bits,
                    exp,
                },
            );
            Some(pb::PowChallenge {
                challenge,
                difficulty_bits: bits,
                expires_at_unix_ms: exp,
            })
        };
        let Some((challenge, nonce)) = solution else {
            return Ok(fresh());
        };
        let claims: ChallengeClaims = match self.signer.verify(TokenKind::Challenge, challenge) {
            Ok(claims) => claims,
            Err(_) => return Ok(fresh()),
        };
        if claims.ev != event_id || claims.fp != fp || claims.exp <= now || claims.bits < bits {
            return Ok(fresh());
        }
        if nonce.len() > 32 || pow_zero_bits(challenge, nonce) < bits {
            return Err(ApiError::FailedPrecondition(format!(
                "the proof-of-work answer is wrong: SHA-256(challenge \":\" nonce) needs {bits} leading zero bits"
            )));
        }
        Ok(None)
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
        let room = Arc::new(Room {
            event_id: event.id.clone(),
            inner: Mutex::new(Inner::new(
                event.sale_state,
                event.sale_phase,
                event.sale_opens_at_ms,
                event.admission,
                seed,
                &event.presale_codes,
                now,
            )),
            sale_changed: watch::channel(0).0,
            alerts: broadcast::channel(16).0,
            known: watch::channel(0).0,
            created: tokio::sync::OnceCell::new(),
            applied: watch::channel((0, 0)).0,
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

    /// Joins `event`'s queue.
    pub async fn join(
        self: &Arc<Self>,
        event: &EventRecord,
        input: &JoinInput,
    ) -> ApiResult<Joined> {
        let fingerprint = input.fingerprint.as_str();
        let presale_code = input.presale_code.as_str();
        if fingerprint.is_empty()
            || fingerprint.len() > 128
            || fingerprint.chars().any(char::is_control)
        {
            return Err(ApiError::InvalidArgument(
                "fingerprint must be 1 to 128 printable characters".into(),
            ));
        }
        let room = self.room(event).await?;
        let now = self.clock.now_ms();
        let fp = sha256_hex(fingerprint);
        self.check_banned(&fp, input.ip)?;
        // A join the node cannot take now is turned away before it spends the fan's rate
        // limit: being told to come back must not make coming back slower.
        if let Some(shared) = &self.shared {
            shared.check_join_line(&event.id, now)?;
        }
        self.check_rate(&fp, input.ip, now).await?;
        let (shared, tier, rate, pow_bits, challenge, pow_done) = {
            let mut inner = lock(&room)?;
            match inner.sale {
                SaleState::Closed => return Err(sale_ended(&event.id, SaleState::Closed)),
                SaleState::SoldOut => return Err(sale_ended(&event.id, SaleState::SoldOut)),
                _ => {}
            }
            let tier = if presale_code.is_empty() {
                GENERAL
            } else if inner.presale_codes.contains(presale_code)
                || event.presale_codes.iter().any(|c| c == presale_code)
            {
                if presale_code.starts_with("VIP") {
                    VIP
                } else {
                    PRESALE
                }
            } else {
                return Err(ApiError::InvalidArgument(
                    "the presale code is not valid for this event".into(),
                ));
            };
            let rate = f64::from(inner.admission.rate_per_minute);
            let existing = inner
                .by_fingerprint
                .get(&fp)
                .copied()
                .filter(|id| inner.is_live(*id));
            if self.shared.is_none()
                && let Some(id) = existing
            {
                let token = inner
                    .entries
                    .get(&id)
                    .map(|e| self.queue_token(&event.id, id, &e.fp, e.iat))
                    .unwrap_or_default();
                let view = inner
                    .view(&event.id, id, rate)
                    .ok_or_else(|| ApiError::Internal("entry vanished".into()))?;
                return Ok(Joined::Placed(token, view.status));
            }
            let pow_bits = inner.admission.pow_difficulty;
            let challenge = if existing.is_some() {
                None
            } else {
                self.check_pow(&event.id, &fp, pow_bits, input.pow.as_ref(), now)?
            };
            // A new entry needs the work done; the replica's word that one exists may be stale.
            let pow_done = challenge.is_none() && (existing.is_none() || pow_bits == 0);
            let Some(shared) = self.shared.clone() else {
                if let Some(challenge) = challenge {
                    return Ok(Joined::Challenge(challenge));
                }
                let id = inner.next_entry + 1;
                let seq = if matches!(inner.sale, SaleState::Open | SaleState::Paused) {
                    inner.next_seq + 1
                } else {
                    0
                };
                inner.add_entry(id, tier, seq, fp.clone(), now, input.ip);
                inner.detached.insert((now, id));
                let view = inner
                    .view(&event.id, id, rate)
                    .ok_or_else(|| ApiError::Internal("entry vanished".into()))?;
                drop(inner);
                return Ok(Joined::Placed(
                    self.queue_token(&event.id, id, &fp, now),
                    view.status,
                ));
            };
            (shared, tier, rate, pow_bits, challenge, pow_done)
        };
        let args = || {
            [
                fp.clone(),
                tier.to_string(),
                now.to_string(),
                input
                    .ip
                    .map_or_else(|| "-".to_string(), |ip| ip.to_string()),
                if pow_done { "1" } else { "0" }.to_string(),
            ]
        };
        let mut reply = shared.join(&event.id, args()).await?;
        if reply.first().map(String::as_str) == Some("missing") {
            // Redis lost the event's queue (restarted without persistence): start it again.
            shared.init(event, now).await?;
            reply = shared.join(&event.id, args()).await?;
        }
        let word = |i: usize| reply.get(i).map(String::as_str).unwrap_or_default();
        let number = |i: usize| word(i).parse::<u64>().unwrap_or_default();
        match word(0) {
            "ended" => {
                let state = SaleState::from_db(word(1)).unwrap_or(SaleState::Closed);
                return Err(sale_ended(&event.id, state));
            }
            "pow" => {
                // The replica did not know the entry yet; a solved challenge joins.
                let challenge = match challenge {
                    Some(challenge) => challenge,
                    None => self
                        .check_pow(&event.id, &fp, pow_bits.max(1), None, now)?
                        .ok_or_else(|| ApiError::Internal("no challenge made".into()))?,
                };
                return Ok(Joined::Challenge(challenge));
            }
            "new" | "existing" => {}
            other => {
                return Err(ApiError::Internal(format!(
                    "the join script answered {other:?}"
                )));
            }
        }
        let id = number(1);
        let state = match word(2) {
            "P" => pb::QueueState::Prequeue,
            "W" => pb::QueueState::Waiting,
            "A" | "S" => pb::QueueState::Admitted,
            "X" => pb::QueueState::Expired,
            _ => pb::QueueState::Removed,
        };
        let tier = (number(3) as usize).min(VIP);
        let iat: i64 = word(4).parse().unwrap_or(now);
        let position = number(5);
        let inner = lock(&room)?;
        let initial_position = inner
            .entries
            .get(&id)
            .filter(|e| e.fp == fp)
            .map_or(position, |e| e.initial_position);
        let eta_seconds = if position > 0 && inner.sale == SaleState::Open {
            inner.rate.eta_seconds(position, rate).unwrap_or(0)
        } else {
            0
        };
        let status = pb::QueueStatus {
            event_id: event.id.clone(),
            state: state.into(),
            position,
            waiting_total: number(6),
            eta_seconds,
            tier: tier_of(tier).into(),
            initial_position,
            sale_opens_at_unix_ms: inner.opens_at_ms,
            sale_paused: inner.sale == SaleState::Paused,
        };
        Ok(Joined::Placed(
            self.queue_token(&event.id, id, &fp, iat),
            status,
        ))
    }

    fn claims(&self, token: &str) -> ApiResult<(QueueClaims, u64)> {
        let claims: QueueClaims = self
            .signer
            .verify(TokenKind::Queue, token)
            .map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
        let id = claims.en.parse().map_err(|_| {
            ApiError::Unauthenticated("the queue token is not in the expected format".into())
        })?;
        Ok((claims, id))
    }

    /// The event a queue token is for.
    pub fn token_event(&self, token: &str) -> ApiResult<String> {
        Ok(self.claims(token)?.0.ev)
    }

    /// Leaves the queue at once (an admitted fan frees the slot).
    pub async fn leave(self: &Arc<Self>, event: &EventRecord, token: &str) -> ApiResult<()> {
        let (claims, id) = self.claims(token)?;
        if claims.ev != event.id {
            return Err(ApiError::InvalidArgument(
                "the queue token is for another event".into(),
            ));
        }
        self.room(event).await?;
        self.remove(&event.id, &[id], "left").await?;
        Ok(())
    }

    /// One admission step for every event: opens scheduled sales, admits fans, frees slots and
    /// removes entries past the grace period.
    pub async fn pump(self: &Arc<Self>) {
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let now = self.clock.now_ms();
        for room in rooms {
            if let Some(shared) = &self.shared {
                if let Err(e) = self.step_shared(shared, &room, now).await {
                    tracing::debug!(event = %room.event_id, error = %e, "admission step failed");
                }
            } else {
                let opened = match room.inner.lock() {
                    Ok(mut inner) => self.step(&room.event_id, &mut inner, now),
                    Err(_) => false,
                };
                if opened {
                    room.sale_changed();
                }
            }
            // Positions moved with this step (here, or in Redis and the replica): tell the
            // watchers that are due and whose place moved visibly.
            if let Ok(mut inner) = room.inner.lock() {
                inner.look(now);
            }
        }
    }

    /// One embedded admission step; returns whether it opened the sale.
    fn step(&self, event_id: &str, inner: &mut Inner, now: i64) -> bool {
        let mut opened = false;
        if inner.sale == SaleState::NotOpen && inner.opens_at_ms > 0 && now >= inner.opens_at_ms {
            inner.open(rand::random(), now);
            opened = true;
        }
        // Free the slots of no-shows and expired passes.
        let expired: Vec<u64> = inner
            .active
            .iter()
            .copied()
            .filter(|id| {
                inner
                    .entries
                    .get(id)
                    .and_then(|e| e.admission.as_ref())
                    .is_none_or(|a| {
                        a.pass_exp_ms <= now || (!a.started && a.hold_deadline_ms <= now)
                    })
            })
            .collect();
        for id in expired {
            inner.expire_entry(id);
        }
        // Grace period: entries nobody watches are removed.
        // Only waiting entries lapse; one admitted meanwhile leaves the set (its pass and
        // no-show window decide for it).
        let grace = self.timings.grace.as_millis() as i64;
        let mut lapsed = Vec::new();
        while let Some(&(since, id)) = inner.detached.first() {
            if since + grace > now {
                break;
            }
            inner.detached.pop_first();
            if inner.entries.get(&id).is_some_and(|e| {
                matches!(e.state, EntryState::Waiting | EntryState::Prequeue)
                    && e.detached_at_ms == Some(since)
            }) {
                lapsed.push(id);
            }
        }
        for id in lapsed {
            inner.remove_entry(id);
        }
        inner.rate.tick(now);
        if inner.sale != SaleState::Open {
            return opened;
        }
        let min_tier = inner.min_tier();
        let eligible: u64 = (min_tier..3).map(|t| inner.order.len_tier(t)).sum();
        let room_left = u64::from(inner.buyers_allowed()).saturating_sub(inner.active.len() as u64);
        let wanted = eligible.min(room_left);
        if wanted == 0 {
            return opened;
        }
        let n = inner.bucket.take(wanted, now);
        let pass_exp = now + self.timings.pass_ttl.as_millis() as i64;
        let deadline = now + self.timings.no_show.as_millis() as i64;
        for _ in 0..n {
            let Some((_, seq)) = inner.order.front(min_tier) else {
                break;
            };
            let Some(id) = inner.by_seq.get(&seq).copied() else {
                break;
            };
            let fp = inner
                .entries
                .get(&id)
                .map(|e| e.fp.clone())
                .unwrap_or_default();
            let admission = self.admission(event_id, id, &fp, now, pass_exp, deadline);
            inner.admit_entry(id, admission);
        }
        inner.rate.record(n, now);
        opened
    }

    /// The distributed step: Redis decides (atomically, whichever node runs it); the log tells
    /// every replica. Once a second this node also says it is alive, counts dead nodes' streams
    /// as closed, reads the shared bans and opens a scheduled sale that is due.
    async fn step_shared(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        room: &Arc<Room>,
        now: i64,
    ) -> ApiResult<()> {
        shared.flush_streams(&room.event_id, now).await?;
        let args = [
            now.to_string(),
            self.timings.pass_ttl.as_millis().to_string(),
            self.timings.no_show.as_millis().to_string(),
            self.timings.grace.as_millis().to_string(),
            shared::STEP_BATCH.to_string(),
        ];
        let _: Vec<i64> = shared
            .run(&shared.scripts.step, &room.event_id, &[], &args)
            .await?;
        let due_open = {
            let mut inner = lock(room)?;
            inner.rate.tick(now);
            inner.sale == SaleState::NotOpen && inner.opens_at_ms > 0 && now >= inner.opens_at_ms
        };
        if due_open {
            let (phase, opens_at, codes) = {
                let inner = lock(room)?;
                (
                    inner.phase,
                    inner.opens_at_ms,
                    inner.presale_codes.iter().cloned().collect::<Vec<_>>(),
                )
            };
            self.open_shared(shared, &room.event_id, phase, opens_at, &codes)
                .await?;
        }
        let second = now / 1_000;
        if shared
            .beat
            .swap(second, std::sync::atomic::Ordering::Relaxed)
            != second
        {
            self.heartbeat(shared, &room.event_id, now).await?;
            self.refresh_bans(shared).await?;
        }
        Ok(())
    }

    /// Says this node is alive for an event, and closes the streams of nodes that are not.
    async fn heartbeat(&self, shared: &Shared, event_id: &str, now: i64) -> ApiResult<()> {
        let keys = shared.keys(event_id);
        let nodes = &keys[shared::NODES];
        let mut conn = shared.conn.clone();
        let lease = shared::NODE_LEASE.as_millis() as i64;
        let (dead,): (Vec<String>,) = redis::pipe()
            .cmd("ZADD")
            .arg(nodes)
            .arg("GT")
            .arg(now)
            .arg(&shared.node)
            .ignore()
            .zrangebyscore(nodes, "-inf", now - lease)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        for node in dead {
            // Whoever removes the dead node counts its streams as closed (once).
            let claimed: i64 = conn.zrem(nodes, &node).await.map_err(unavailable)?;
            if claimed == 0 {
                continue;
            }
            tracing::info!(event = %event_id, node = %node, "a node went silent: its streams count as closed");
            let key = shared::node_key(&shared.namespace, event_id, &node);
            let mut cursor = "0".to_string();
            for _ in 0..100_000 {
                let args = [now.to_string(), cursor.clone()];
                cursor = shared
                    .run(
                        &shared.scripts.detach,
                        event_id,
                        std::slice::from_ref(&key),
                        &args,
                    )
                    .await?;
                if cursor == "0" {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Opens a sale in Redis: the pre-queue shuffled by a fresh, published seed. Returns the
    /// seed, or `None` when the sale was already open (another node opened it).
    async fn open_shared(
        &self,
        shared: &Shared,
        event_id: &str,
        phase: SalePhase,
        opens_at_ms: i64,
        codes: &[String],
    ) -> ApiResult<Option<u64>> {
        let keys = shared.keys(event_id);
        let codes = serde_json::to_string(codes).unwrap_or_else(|_| "[]".into());
        let mut conn = shared.conn.clone();
        // A join may land between reading the pre-queue and opening: then read again.
        for _ in 0..20 {
            let mut prequeue: Vec<String> = conn
                .zrange(&keys[shared::PRE], 0, -1)
                .await
                .map_err(unavailable)?;
            let seed: u64 = rand::random();
            shuffle(&mut prequeue, seed);
            let mut args = vec![
                format!("{seed:016x}"),
                phase.as_db().to_string(),
                opens_at_ms.to_string(),
                codes.clone(),
                prequeue.len().to_string(),
            ];
            args.extend(prequeue);
            let reply: Vec<String> = shared
                .run(&shared.scripts.open, event_id, &[], &args)
                .await?;
            match reply.first().map(String::as_str) {
                Some("ok") => return Ok(Some(seed)),
                Some("stale") => continue,
                _ => return Ok(None),
            }
        }
        Err(ApiError::Unavailable(
            "the queue kept changing while opening the sale; retry".into(),
        ))
    }

    /// Follows an event's log into this node's replica until the waiting room stops.
    async fn follow(self: Arc<Self>, shared: Arc<Shared>, room: Arc<Room>) {
        let key = shared.keys(&room.event_id)[shared::LOG].clone();
        let mut stop = shared.stop.subscribe();
        let mut last = "0-0".to_string();
        let mut conn = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let connection = match &mut conn {
                Some(connection) => connection,
                None => match shared.blocking_connection().await {
                    Ok(connection) => conn.insert(connection),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach Redis to follow the queue");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = stop.wait_for(|s| *s) => return,
                        }
                        continue;
                    }
                },
            };
            let read = tokio::select! {
                read = Shared::read_log(connection, &key, &last) => read,
                _ = stop.wait_for(|s| *s) => return,
            };
            match read {
                Ok(Some(reply)) => {
                    for stream in reply.keys {
                        self.apply(&room, stream.ids.iter().map(|e| &e.map));
                        if let Some(id) = stream.ids.last() {
                            last = id.id.clone();
                            room.applied.send_replace(shared::log_id(&last));
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "lost Redis while following the queue; reconnecting");
                    conn = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Applies log entries to this node's replica; a change of the sale wakes its watchers.
    fn apply<'a>(
        &self,
        room: &Room,
        entries: impl Iterator<Item = &'a HashMap<String, redis::Value>>,
    ) {
        let now = self.clock.now_ms();
        let mut alerts = Vec::new();
        let mut sale_changed = false;
        let known = {
            let Ok(mut inner) = room.inner.lock() else {
                return;
            };
            for fields in entries {
                let Some(changes) = shared::parse(fields) else {
                    tracing::warn!(event = %room.event_id, "skipped an unreadable queue log entry");
                    continue;
                };
                for change in changes {
                    match change {
                        Change::Init {
                            sale,
                            phase,
                            opens_at_ms,
                            admission,
                            seed,
                            codes,
                        } => {
                            sale_changed = true;
                            // The queue starts (again) from here.
                            for entry in inner.entries.values() {
                                entry.signal.wake();
                            }
                            let watchers = inner.watchers;
                            let next_alert = inner.next_alert;
                            *inner =
                                Inner::new(sale, phase, opens_at_ms, admission, seed, &codes, now);
                            inner.watchers = watchers;
                            inner.next_alert = next_alert;
                        }
                        Change::Join {
                            id,
                            tier,
                            seq,
                            iat,
                            fp,
                            ip,
                        } => inner.add_entry(id, tier, seq, fp, iat, ip),
                        Change::Open { seed, base, count } => {
                            sale_changed = true;
                            if inner.prequeue.len() as u64 != count {
                                tracing::error!(
                                    event = %room.event_id,
                                    replica = inner.prequeue.len(),
                                    redis = count,
                                    "the replica's pre-queue differs from Redis's at opening"
                                );
                            }
                            inner.next_seq = base;
                            inner.open(seed, now);
                        }
                        Change::Sale {
                            sale,
                            phase,
                            opens_at_ms,
                            codes,
                        } => {
                            sale_changed = true;
                            inner.sale = sale;
                            inner.phase = phase;
                            inner.opens_at_ms = opens_at_ms;
                            inner.presale_codes = codes.into_iter().collect();
                        }
                        Change::Admission(settings) => {
                            if settings.auto && !inner.admission.auto {
                                inner.valve = AutoValve::default();
                            }
                            inner.admission = settings;
                        }
                        Change::Removed(ids) => {
                            for id in ids {
                                inner.remove_entry(id);
                            }
                        }
                        Change::Expired(ids) => {
                            for id in ids {
                                inner.expire_entry(id);
                            }
                        }
                        Change::Admitted {
                            at_ms,
                            pass_exp_ms,
                            hold_deadline_ms,
                            ids,
                        } => {
                            inner.rate.record(ids.len() as u64, now);
                            for id in ids {
                                let fp = inner
                                    .entries
                                    .get(&id)
                                    .map(|e| e.fp.clone())
                                    .unwrap_or_default();
                                let admission = self.admission(
                                    &room.event_id,
                                    id,
                                    &fp,
                                    at_ms,
                                    pass_exp_ms,
                                    hold_deadline_ms,
                                );
                                inner.admit_entry(id, admission);
                            }
                        }
                        Change::Started(id) => {
                            if let Some(admission) = inner
                                .entries
                                .get_mut(&id)
                                .and_then(|e| e.admission.as_mut())
                            {
                                admission.started = true;
                            }
                        }
                        Change::Stopped {
                            id,
                            hold_deadline_ms,
                        } => {
                            if let Some(admission) = inner
                                .entries
                                .get_mut(&id)
                                .and_then(|e| e.admission.as_mut())
                            {
                                admission.started = false;
                                admission.hold_deadline_ms = hold_deadline_ms;
                            }
                        }
                        Change::Alert(alert) => {
                            inner.next_alert = inner.next_alert.max(alert.id + 1);
                            inner.alert = Some(alert.clone());
                            alerts.push(alert);
                        }
                    }
                }
            }
            inner.next_entry
        };
        room.known.send_replace(known);
        if sale_changed {
            room.sale_changed();
        }
        for alert in alerts {
            let _ = room.alerts.send(alert);
        }
    }

    /// Waits until this node's replica of an event has applied every log entry written so far
    /// (the distributed backend's replicas follow the log a moment behind).
    pub async fn caught_up(self: &Arc<Self>, event_id: &str) -> ApiResult<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let Some(room) = self.known_room(event_id) else {
            return Ok(());
        };
        let key = shared.keys(event_id)[shared::LOG].clone();
        let mut conn = shared.conn.clone();
        let newest: redis::streams::StreamRangeReply = conn
            .xrevrange_count(&key, "+", "-", 1)
            .await
            .map_err(unavailable)?;
        let Some(newest) = newest.ids.first().map(|e| shared::log_id(&e.id)) else {
            return Ok(());
        };
        let mut applied = room.applied.subscribe();
        let caught_up = tokio::time::timeout(Duration::from_secs(10), async {
            applied.wait_for(|a| *a >= newest).await.is_ok()
        })
        .await;
        if caught_up != Ok(true) {
            return Err(ApiError::Unavailable(
                "this node's replica is behind the queue's log".into(),
            ));
        }
        Ok(())
    }

    /// Runs the pump until shutdown.
    pub async fn run(self: Arc<Self>, mut stopping: Shutdown) {
        let mut ticker = tokio::time::interval(PUMP_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stop = tokio::select! {
                _ = ticker.tick() => false,
                () = stopping.started() => true,
            };
            if stop {
                break;
            }
            self.pump().await;
        }
        if let Some(shared) = &self.shared {
            let _ = shared.stop.send(true);
        }
    }

    /// Events whose queue lives on this node.
    pub fn event_ids(&self) -> Vec<String> {
        self.rooms
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether a pass's admission still holds (this node revokes passes of fans whose slot ended;
    /// passes it does not know, from another node or a test, stand on their signature).
    pub fn pass_active(&self, claims: &PassClaims) -> bool {
        let Some(room) = self.known_room(&claims.ev) else {
            return true;
        };
        let Ok(inner) = room.inner.lock() else {
            return true;
        };
        let Ok(id) = claims.en.parse::<u64>() else {
            return true;
        };
        match inner.entries.get(&id) {
            // A replica may not have heard of the admission yet; it knows when one ended.
            Some(entry) if self.shared.is_some() => entry.fp == claims.fan && inner.is_live(id),
            Some(entry) => entry.state == EntryState::Admitted,
            None => true,
        }
    }

    /// The fan behind a pass held seats: the no-show clock stops.
    pub async fn started_buying(&self, claims: &PassClaims) -> ApiResult<()> {
        let Ok(id) = claims.en.parse::<u64>() else {
            return Ok(());
        };
        let already = match self.known_room(&claims.ev) {
            None => false,
            Some(room) => {
                let mut inner = lock(&room)?;
                let admission = inner
                    .entries
                    .get_mut(&id)
                    .and_then(|e| e.admission.as_mut());
                match admission {
                    Some(admission) if admission.started => true,
                    Some(admission) => {
                        admission.started = true;
                        false
                    }
                    None => false,
                }
            }
        };
        if let Some(shared) = &self.shared
            && !already
        {
            let args = [id.to_string(), claims.exp.to_string()];
            let _: i64 = shared
                .run(&shared.scripts.started, &claims.ev, &[], &args)
                .await?;
        }
        Ok(())
    }

    /// The fan behind a pass let their seats go (released a hold): the no-show clock starts
    /// again. A fan who holds again within the window keeps the slot, as at admission; one who
    /// walked away frees it then, rather than when the pass expires (30 minutes of a slot the
    /// next fan in line could have used: with 3 % of buyers walking away, most of the slots in
    /// a long sale). Seats the fan still holds or has ordered stay theirs to check out and pay:
    /// a lapsed slot only stops new holds.
    pub async fn stopped_buying(&self, claims: &PassClaims) -> ApiResult<()> {
        let Ok(id) = claims.en.parse::<u64>() else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let deadline = (now + self.timings.no_show.as_millis() as i64).min(claims.exp);
        if let Some(room) = self.known_room(&claims.ev) {
            let mut inner = lock(&room)?;
            if let Some(admission) = inner
                .entries
                .get_mut(&id)
                .and_then(|e| e.admission.as_mut())
                .filter(|a| a.started)
            {
                admission.started = false;
                admission.hold_deadline_ms = deadline;
            }
        }
        if let Some(shared) = &self.shared {
            let args = [id.to_string(), deadline.to_string()];
            let _: i64 = shared
                .run(&shared.scripts.stopped, &claims.ev, &[], &args)
                .await?;
        }
        Ok(())
    }

    /// The fan behind a pass paid: their slot goes to the next fan.
    pub async fn finished_buying(&self, claims: &PassClaims) -> ApiResult<()> {
        let Ok(id) = claims.en.parse::<u64>() else {
            return Ok(());
        };
        self.remove(&claims.ev, &[id], "paid").await?;
        Ok(())
    }

    /// Frees a paying fan's slot like [`WaitingRoom::finished_buying`]; if the store does not
    /// answer (Redis restarting), keeps trying in the background with backoff until it does or
    /// the pass expires. A slot left taken would hold the line back by one fan until then, and a
    /// blip during a busy minute would leave `max_active` of them.
    pub async fn finished_buying_or_retry(self: &Arc<Self>, claims: &PassClaims) {
        let Err(e) = self.finished_buying(claims).await else {
            return;
        };
        tracing::warn!(error = %e, "could not free a paying fan's slot; retrying in the background");
        let (room, claims) = (self.clone(), claims.clone());
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(250);
            loop {
                tokio::time::sleep(wait).await;
                match room.finished_buying(&claims).await {
                    Ok(()) => {
                        tracing::info!("freed a paying fan's slot after the store came back");
                        return;
                    }
                    Err(e) if room.clock.now_ms() >= claims.exp => {
                        tracing::warn!(error = %e, "gave up freeing a paying fan's slot: the pass has expired");
                        return;
                    }
                    Err(_) => wait = (wait * 2).min(Duration::from_secs(10)),
                }
            }
        });
    }

    /// Applies a sale change made by an operator (already stored); opening now shuffles the
    /// pre-queue and returns the seed.
    pub async fn set_sale(
        self: &Arc<Self>,
        event: &EventRecord,
        state: SaleState,
        phase: SalePhase,
        opens_at_ms: i64,
        presale_codes: &[String],
    ) -> ApiResult<Option<u64>> {
        let room = self.room(event).await?;
        if let Some(shared) = &self.shared {
            let codes = serde_json::to_string(presale_codes).unwrap_or_else(|_| "[]".into());
            let args = [
                state.as_db().to_string(),
                phase.as_db().to_string(),
                opens_at_ms.to_string(),
                codes,
            ];
            for _ in 0..2 {
                let answer: String = shared
                    .run(&shared.scripts.sale, &event.id, &[], &args)
                    .await?;
                match answer.as_str() {
                    "needs_open" => {
                        return self
                            .open_shared(shared, &event.id, phase, opens_at_ms, presale_codes)
                            .await;
                    }
                    "missing" => shared.init(event, self.clock.now_ms()).await?,
                    _ => return Ok(None),
                }
            }
            return Err(ApiError::Unavailable(
                "the waiting room's store lost the queue; retry".into(),
            ));
        }
        let mut inner = lock(&room)?;
        inner.phase = phase;
        inner.opens_at_ms = opens_at_ms;
        inner.presale_codes = presale_codes.iter().cloned().collect();
        let mut seed = None;
        match state {
            SaleState::Open if inner.sale == SaleState::NotOpen => {
                let fresh = rand::random();
                inner.open(fresh, self.clock.now_ms());
                seed = Some(fresh);
            }
            other => inner.sale = other,
        }
        drop(inner);
        room.sale_changed();
        Ok(seed)
    }

    /// Changes the admission valve live.
    pub async fn set_admission(
        self: &Arc<Self>,
        event: &EventRecord,
        settings: AdmissionSettings,
    ) -> ApiResult<()> {
        let room = self.room(event).await?;
        let now = self.clock.now_ms();
        if let Some(shared) = &self.shared {
            return shared.set_admission(&event.id, &settings, now).await;
        }
        let mut inner = lock(&room)?;
        if settings.auto && !inner.admission.auto {
            inner.valve = AutoValve::default();
        }
        inner.admission = settings;
        inner
            .bucket
            .set(settings.rate_per_minute, settings.burst, now);
        Ok(())
    }

    /// Sends an alert to everyone in the queue.
    pub async fn broadcast(
        self: &Arc<Self>,
        event: &EventRecord,
        message: &str,
        severity: pb::AlertSeverity,
    ) -> ApiResult<pb::Alert> {
        let room = self.room(event).await?;
        let now = self.clock.now_ms();
        if let Some(shared) = &self.shared {
            let args = [
                i32::from(severity).to_string(),
                now.to_string(),
                message.to_string(),
            ];
            let id: u64 = shared
                .run(&shared.scripts.alert, &event.id, &[], &args)
                .await?;
            return Ok(pb::Alert {
                id,
                message: message.to_string(),
                severity: severity.into(),
                sent_at_unix_ms: now,
            });
        }
        let mut inner = lock(&room)?;
        let alert = pb::Alert {
            id: inner.next_alert,
            message: message.to_string(),
            severity: severity.into(),
            sent_at_unix_ms: now,
        };
        inner.next_alert += 1;
        inner.alert = Some(alert.clone());
        drop(inner);
        let _ = room.alerts.send(alert.clone());
        Ok(alert)
    }

    /// The queue's figures (distributed: from this node's replica; watchers on this node).
    pub async fn stats(self: &Arc<Self>, event: &EventRecord) -> ApiResult<RoomStats> {
        let room = self.room(event).await?;
        let inner = lock(&room)?;
        let waiting = [
            inner.order.len_tier(0),
            inner.order.len_tier(1),
            inner.order.len_tier(2),
        ];
        let total: u64 = waiting.iter().sum();
        Ok(RoomStats {
            prequeue: inner.prequeue.len() as u64,
            waiting,
            active: inner.active.len() as u64,
            admitted_total: inner.admitted_total,
            admitted_per_minute: inner.rate.per_minute(),
            eta_last_seconds: inner
                .rate
                .eta_seconds(total, f64::from(inner.admission.rate_per_minute))
                .unwrap_or(0),
            watchers: inner.watchers,
            shuffle_seed: inner.seed.map(|s| format!("{s:016x}")),
            auto_limit: inner.admission.auto.then(|| inner.buyers_allowed()),
        })
    }

    /// The automatic valves of this node's events follow the sales path: called once a second
    /// with what the sales path did in that second ([`crate::domain::valve`]).
    /// The room's looks at waiting fans' places follow it too (buyers first).
    pub async fn tune_valves(self: &Arc<Self>, feedback: &SalesFeedback) {
        let was = u32::try_from(self.look_stretch.get()).unwrap_or(1);
        let stretch = crate::domain::push::next_stretch(was, feedback);
        self.look_stretch.set(i64::from(stretch));
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        // The valves on this node share its sales path: each opens by a tenth of their mean
        // limit (additive increase), so they converge on equal shares (domain::valve).
        let tuned = |inner: &Inner| inner.admission.auto && inner.sale == SaleState::Open;
        let limits: Vec<f64> = rooms
            .iter()
            .filter_map(|room| {
                let inner = room.inner.lock().ok()?;
                tuned(&inner).then(|| inner.valve.raw_limit())
            })
            .collect();
        let shared_mean = limits.iter().sum::<f64>() / limits.len().max(1) as f64;
        for room in rooms {
            let limit = {
                let Ok(mut inner) = room.inner.lock() else {
                    continue;
                };
                inner.look_stretch = stretch;
                if !tuned(&inner) {
                    continue;
                }
                let (active, cap) = (inner.active.len() as u64, inner.admission.max_active);
                inner.valve.update(feedback, active, cap, shared_mean)
            };
            if let Some(shared) = &self.shared
                && let Err(e) = shared.set_auto_limit(&room.event_id, limit).await
            {
                tracing::debug!(event = %room.event_id, error = %e, "automatic valve not written");
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::clock::ManualClock;
    use crate::domain::layout::VenueSpec;
    use crate::testing::{RedisNamespace, redis_url};

    pub(in crate::waiting_room) fn event(state: SaleState) -> EventRecord {
        EventRecord {
            id: "ev".into(),
            name: "Ev".into(),
            artist: "A".into(),
            venue: VenueSpec {
                id: "v".into(),
                name: "V".into(),
                city: String::new(),
            },
            starts_at_ms: 0,
            currency: "EUR".into(),
            fee_per_ticket_minor: 0,
            max_tickets_per_fan: 4,
            capacity: 10,
            sale_state: state,
            sale_phase: SalePhase::General,
            sale_opens_at_ms: 0,
            admission: AdmissionSettings {
                rate_per_minute: 60,
                burst: 1,
                max_active: 1_000,
                pow_difficulty: 0,
                auto: false,
            },
            shuffle_seed: None,
            presale_codes: vec!["FANCLUB".into(), "VIP-GOLD".into()],
            sections: vec![],
        }
    }

    #[derive(Debug, Clone, Copy)]
    pub(in crate::waiting_room) enum Backend {
        Embedded,
        Redis,
    }

    /// A waiting room under test (and, on Redis, the namespace its keys live in).
    pub(in crate::waiting_room) struct Under {
        room: Arc<WaitingRoom>,
        _namespace: Option<RedisNamespace>,
    }

    impl std::ops::Deref for Under {
        type Target = Arc<WaitingRoom>;
        fn deref(&self) -> &Arc<WaitingRoom> {
            &self.room
        }
    }

    fn signer() -> Signer {
        Signer::new(b"0123456789abcdef0123456789abcdef").expect("key")
    }

    fn limits() -> JoinRateLimits {
        JoinRateLimits {
            per_ip: 1_000_000,
            per_fingerprint: 1_000_000,
        }
    }

    async fn redis_node(clock: &ManualClock, namespace: &str) -> Arc<WaitingRoom> {
        let client = redis::Client::open(redis_url()).expect("redis url");
        let connection = client.get_connection_manager().await.unwrap_or_else(|e| {
            panic!("Redis must be reachable at {} for tests: {e}", redis_url())
        });
        Arc::new(WaitingRoom::with_redis(
            Arc::new(clock.clone()),
            signer(),
            RoomTimings::default(),
            limits(),
            client,
            connection,
            namespace,
        ))
    }

    pub(in crate::waiting_room) async fn room(backend: Backend, clock: &ManualClock) -> Under {
        match backend {
            Backend::Embedded => Under {
                room: Arc::new(WaitingRoom::new(
                    Arc::new(clock.clone()),
                    signer(),
                    RoomTimings::default(),
                    limits(),
                )),
                _namespace: None,
            },
            Backend::Redis => {
                let namespace = RedisNamespace::new();
                Under {
                    room: redis_node(clock, &namespace.name).await,
                    _namespace: Some(namespace),
                }
            }
        }
    }

    /// Runs a test body on the embedded room and on Redis.
    macro_rules! on_both_backends {
        ($($name:ident),* $(,)?) => {
            $(
                mod $name {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn embedded() {
                        super::$name(super::Backend::Embedded).await
                    }
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn redis() {
                        super::$name(super::Backend::Redis).await
                    }
                }
            )*
        };
    }

    on_both_backends!(
        joins_are_idempotent_and_tiers_go_first,
        the_prequeue_is_shuffled_by_a_published_seed,
        rate_and_cap_hold_over_a_simulated_hour,
        no_shows_free_their_slot_and_lose_their_pass,
        leaving_and_the_grace_period_move_positions_up,
        presale_phase_admits_presale_tiers_only,
        concurrent_joins_get_one_place_each,
        the_automatic_valve_admits_up_to_its_limit_and_never_past_the_cap,
    );

    impl WaitingRoom {
        /// Joins with a fingerprint and code; panics on a challenge.
        pub(in crate::waiting_room) async fn join_as(
            self: &Arc<Self>,
            event: &EventRecord,
            fingerprint: &str,
            code: &str,
        ) -> ApiResult<(String, pb::QueueStatus)> {
            match self
                .join(
                    event,
                    &JoinInput {
                        fingerprint: fingerprint.into(),
                        presale_code: code.into(),
                        ..JoinInput::default()
                    },
                )
                .await?
            {
                Joined::Placed(token, status) => Ok((token, status)),
                Joined::Challenge(_) => panic!("unexpected challenge"),
            }
        }

        /// The figures once this node's replica has caught up with everything so far.
        async fn settled_stats(self: &Arc<Self>, event: &EventRecord) -> RoomStats {
            self.caught_up(&event.id).await.expect("caught up");
            self.stats(event).await.expect("stats")
        }
    }

    /// Fans `f0`, `f1`, … join, each counted as watched (no stream to drop, so no grace period
    /// starts).
    async fn join_watched(room: &Arc<WaitingRoom>, ev: &EventRecord, fans: usize) {
        for i in 0..fans {
            let token = room
                .join_as(ev, &format!("f{i}"), "")
                .await
                .expect("join")
                .0;
            if i == 0 {
                room.caught_up(&ev.id).await.expect("caught up");
            }
            room.attach(ev, &token).await.expect("watching");
        }
    }

    async fn position(room: &Arc<WaitingRoom>, event: &EventRecord, fingerprint: &str) -> u64 {
        room.join_as(event, fingerprint, "")
            .await
            .expect("join")
            .1
            .position
    }

    fn pass(id: u64, fingerprint: &str) -> PassClaims {
        PassClaims {
            ev: "ev".into(),
            fan: sha256_hex(fingerprint),
            en: id.to_string(),
            iat: 0,
            exp: i64::MAX,
        }
    }

    async fn joins_are_idempotent_and_tiers_go_first(backend: Backend) {
        let clock = ManualClock::new(1_000);
        let room = room(backend, &clock).await;
        let ev = event(SaleState::Open);
        let (t1, s1) = room.join_as(&ev, "alice", "").await.expect("join");
        let (t2, s2) = room.join_as(&ev, "alice", "").await.expect("again");
        assert_eq!(t1, t2, "a second tab gets the same place");
        assert_eq!((s1.position, s2.position), (1, 1));
        room.join_as(&ev, "bob", "").await.expect("join");
        let presale = room
            .join_as(&ev, "carol", "FANCLUB")
            .await
            .expect("presale")
            .1;
        assert_eq!(presale.tier, pb::QueueTier::Presale as i32);
        assert_eq!(presale.position, 1);
        let vip = room.join_as(&ev, "dave", "VIP-GOLD").await.expect("vip").1;
        assert_eq!(vip.position, 1);
        assert_eq!(vip.waiting_total, 4);
        assert_eq!(
            position(&room, &ev, "alice").await,
            3,
            "higher tiers are ahead"
        );
        assert_eq!(position(&room, &ev, "bob").await, 4);
        assert!(matches!(
            room.join_as(&ev, "eve", "WRONG").await,
            Err(ApiError::InvalidArgument(_))
        ));
        assert!(matches!(
            room.join_as(&ev, "", "").await,
            Err(ApiError::InvalidArgument(_))
        ));
        // The replica agrees with the queue.
        let stats = room.settled_stats(&ev).await;
        assert_eq!(stats.waiting, [2, 1, 1]);
    }

    /// Joins racing each other (on Redis, batched together into one script call): one entry
    /// per fingerprint however many tabs join at once, and every place taken exactly once.
    async fn concurrent_joins_get_one_place_each(backend: Backend) {
        let clock = ManualClock::new(1_000);
        let room = room(backend, &clock).await;
        let ev = event(SaleState::Open);
        let mut calls = Vec::new();
        for i in 0..300 {
            // Fans 0..100 join three times each, at once; the rest once.
            let fan = format!("fan-{}", if i < 300 - 200 { i % 34 } else { i });
            let room = room.room.clone();
            let ev = ev.clone();
            calls.push(tokio::spawn(async move {
                let (token, status) = room.join_as(&ev, &fan, "").await.expect("join");
                (fan, token, status.position)
            }));
        }
        let mut tokens: HashMap<String, String> = HashMap::new();
        let mut places: HashMap<u64, String> = HashMap::new();
        for call in calls {
            let (fan, token, position) = call.await.expect("task");
            if let Some(earlier) = tokens.insert(fan.clone(), token.clone()) {
                assert_eq!(earlier, token, "{fan}: every tab gets the same place");
            }
            if let Some(other) = places.insert(position, fan.clone()) {
                assert_eq!(other, fan, "place {position} given to two fans");
            }
        }
        assert_eq!(tokens.len(), 234);
        let mut taken: Vec<u64> = places.keys().copied().collect();
        taken.sort_unstable();
        assert_eq!(taken, (1..=234).collect::<Vec<u64>>());
        assert_eq!(room.settled_stats(&ev).await.waiting[0], 234);
    }

    async fn the_prequeue_is_shuffled_by_a_published_seed(backend: Backend) {
        let clock = ManualClock::new(1_000);
        let room = room(backend, &clock).await;
        let mut ev = event(SaleState::NotOpen);
        let fans: Vec<String> = (0..200).map(|i| format!("fan-{i}")).collect();
        for fan in &fans {
            let status = room.join_as(&ev, fan, "").await.expect("join").1;
            assert_eq!(status.state, pb::QueueState::Prequeue as i32);
            assert_eq!(status.position, 0);
        }
        room.caught_up(&ev.id).await.expect("caught up");
        let seed = room
            .set_sale(&ev, SaleState::Open, SalePhase::General, 1_000, &[])
            .await
            .expect("open")
            .expect("a seed");
        ev.sale_state = SaleState::Open;
        // A later arrival is behind everyone from the pre-queue.
        assert_eq!(position(&room, &ev, "late").await, 201);
        let published = room
            .settled_stats(&ev)
            .await
            .shuffle_seed
            .expect("published");
        let seed_again = u64::from_str_radix(&published, 16).expect("hex");
        assert_eq!(seed, seed_again);
        // Recompute the order from the seed and the join order.
        let mut expected: Vec<usize> = (0..fans.len()).collect();
        shuffle(&mut expected, seed_again);
        for (place, fan_index) in expected.iter().enumerate() {
            assert_eq!(
                position(&room, &ev, &fans[*fan_index]).await,
                place as u64 + 1
            );
        }
        // And this node's replica, which positions watchers, has the very same order.
        let queue = room.known_room("ev").expect("room");
        let inner = queue.inner.lock().expect("lock");
        for (place, fan_index) in expected.iter().enumerate() {
            let id = inner.by_fingerprint[&sha256_hex(&fans[*fan_index])];
            let entry = &inner.entries[&id];
            assert_eq!(
                inner.order.position(entry.tier, entry.seq),
                place as u64 + 1
            );
        }
    }

    async fn rate_and_cap_hold_over_a_simulated_hour(backend: Backend) {
        let clock = ManualClock::new(0);
        let room = room(backend, &clock).await;
        let mut ev = event(SaleState::Open);
        ev.admission = AdmissionSettings {
            rate_per_minute: 300,
            burst: 5,
            max_active: 40,
            pow_difficulty: 0,
            auto: false,
        };
        join_watched(&room, &ev, 20_000).await;
        let queue = room.known_room("ev").expect("room");
        let mut most_active = 0;
        for step in 0..36_000 {
            clock.advance_ms(100);
            room.pump().await;
            room.caught_up(&ev.id).await.expect("caught up");
            let active: Vec<u64> = queue
                .inner
                .lock()
                .map(|i| i.active.iter().copied().collect())
                .unwrap_or_default();
            most_active = most_active.max(active.len());
            // Half the steps, everyone admitted pays at once and frees the slot.
            if step % 2 == 1 {
                continue;
            }
            for id in active {
                room.finished_buying(&pass(id, "")).await.expect("finished");
            }
        }
        assert!(
            most_active <= 40,
            "never more than max_active buying at once: {most_active}"
        );
        let admitted = room.settled_stats(&ev).await.admitted_total;
        let expected = 300 * 60;
        let error = (admitted as f64 - expected as f64).abs() / expected as f64;
        assert!(error <= 0.01, "admitted {admitted} in an hour at 300/min");
    }

    async fn no_shows_free_their_slot_and_lose_their_pass(backend: Backend) {
        let clock = ManualClock::new(0);
        let room = room(backend, &clock).await;
        let mut ev = event(SaleState::Open);
        ev.admission.max_active = 1;
        for fan in ["first", "second"] {
            let token = room.join_as(&ev, fan, "").await.expect("join").0;
            room.attach(&ev, &token).await.expect("watching");
        }
        clock.advance_ms(1_000);
        room.pump().await;
        let stats = room.settled_stats(&ev).await;
        assert_eq!((stats.active, stats.admitted_total), (1, 1));
        assert_eq!(
            position(&room, &ev, "second").await,
            1,
            "waits for the slot"
        );
        let first = pass(1, "first");
        assert!(room.pass_active(&first));
        // Two minutes without holding seats: the slot goes to the next fan.
        clock.advance_ms(121_000);
        room.pump().await;
        let stats = room.settled_stats(&ev).await;
        assert!(!room.pass_active(&first), "a no-show's pass is revoked");
        assert_eq!((stats.active, stats.admitted_total), (1, 2));
        // The second fan holds seats: the slot lasts until the pass expires, not the window.
        room.started_buying(&PassClaims {
            exp: 1_000_000,
            ..pass(2, "second")
        })
        .await
        .expect("started");
        clock.advance_ms(121_000);
        room.pump().await;
        let stats = room.settled_stats(&ev).await;
        assert_eq!(stats.active, 1, "a fan who is buying keeps the slot");
        assert!(room.pass_active(&pass(2, "second")));
        // The second fan lets the seats go and holds again within the window: kept.
        let second = PassClaims {
            exp: 10_000_000,
            ..pass(2, "second")
        };
        room.stopped_buying(&second).await.expect("stopped");
        clock.advance_ms(60_000);
        room.pump().await;
        assert!(room.pass_active(&second), "within the window");
        room.started_buying(&second).await.expect("started again");
        clock.advance_ms(121_000);
        room.pump().await;
        assert!(room.pass_active(&second), "holding again stops the clock");
        // Lets them go again and walks away: the slot goes to the next fan after the window,
        // long before the pass expires.
        let third = room.join_as(&ev, "third", "").await.expect("join").0;
        room.attach(&ev, &third).await.expect("watching");
        room.stopped_buying(&second).await.expect("stopped");
        clock.advance_ms(119_000);
        room.pump().await;
        assert!(room.pass_active(&second), "the window is not over");
        assert_eq!(room.settled_stats(&ev).await.admitted_total, 2);
        clock.advance_ms(2_000);
        room.pump().await;
        let stats = room.settled_stats(&ev).await;
        assert!(
            !room.pass_active(&second),
            "a fan who walked away loses the slot"
        );
        assert_eq!((stats.active, stats.admitted_total), (1, 3));
    }

    async fn leaving_and_the_grace_period_move_positions_up(backend: Backend) {
        let clock = ManualClock::new(0);
        let room = room(backend, &clock).await;
        let ev = event(SaleState::Paused);
        let mut tokens = Vec::new();
        for i in 0..10 {
            tokens.push(
                room.join_as(&ev, &format!("f{i}"), "")
                    .await
                    .expect("join")
                    .0,
            );
        }
        assert_eq!(position(&room, &ev, "f9").await, 10);
        room.leave(&ev, &tokens[0]).await.expect("leave");
        room.leave(&ev, &tokens[3]).await.expect("leave");
        assert_eq!(position(&room, &ev, "f9").await, 8);
        assert_eq!(position(&room, &ev, "f4").await, 3);
        // A stream that attaches and goes away restarts the grace period from then.
        clock.advance_ms(60_000);
        room.caught_up(&ev.id).await.expect("caught up");
        let stream = room
            .watch(&ev, &tokens[9], crate::shutdown::channel().1)
            .await
            .expect("watching");
        drop(stream);
        // Nobody watches: after the grace period every entry is removed.
        clock.advance_ms(59_000);
        room.pump().await;
        assert_eq!(room.settled_stats(&ev).await.waiting[0], 8);
        clock.advance_ms(2_000);
        room.pump().await;
        assert_eq!(
            room.settled_stats(&ev).await.waiting[0],
            1,
            "f9 still in grace"
        );
        clock.advance_ms(60_000);
        room.pump().await;
        assert_eq!(room.settled_stats(&ev).await.waiting[0], 0);
        assert!(matches!(
            room.leave(&ev, "garbage").await,
            Err(ApiError::Unauthenticated(_))
        ));
        assert!(matches!(
            room.attach(&ev, &tokens[1]).await,
            Err(ApiError::NotFound(_))
        ));
    }

    async fn the_automatic_valve_admits_up_to_its_limit_and_never_past_the_cap(backend: Backend) {
        let clock = ManualClock::new(1_000_000);
        let room = room(backend, &clock).await;
        let mut ev = event(SaleState::Open);
        ev.admission = AdmissionSettings {
            rate_per_minute: 60_000,
            burst: 1_000,
            max_active: 50,
            pow_difficulty: 0,
            auto: true,
        };
        join_watched(&room, &ev, 200).await;
        let step = || async {
            clock.advance_ms(100);
            room.pump().await;
            room.settled_stats(&ev).await
        };
        let stats = step().await;
        assert_eq!(stats.active, AutoValve::START as u64, "starts small");
        assert_eq!(stats.auto_limit, Some(AutoValve::START as u32));
        let room_on_the_path = SalesFeedback {
            shed: 0,
            done: 100,
            busy_ms: 1_000.0,
            period_ms: 1_000.0,
            bound: 32,
        };
        let mut most = 0;
        for _ in 0..20 {
            room.tune_valves(&room_on_the_path).await;
            let stats = step().await;
            most = most.max(stats.active);
            assert_eq!(stats.active, u64::from(stats.auto_limit.expect("auto")));
        }
        assert_eq!(most, 50, "opens up to the operator's cap and no further");
        // The sales path is shedding: no one more is let in until buyers finish, and those
        // buying keep their turn.
        let overloaded = SalesFeedback {
            shed: 50,
            done: 100,
            ..room_on_the_path
        };
        room.tune_valves(&overloaded).await;
        let stats = step().await;
        assert_eq!(stats.auto_limit, Some(45));
        assert_eq!((stats.active, stats.admitted_total), (50, 50));
        let queue = room.known_room("ev").expect("room");
        let buying: Vec<u64> = queue
            .inner
            .lock()
            .map(|i| i.active.iter().copied().take(10).collect())
            .unwrap_or_default();
        for id in buying {
            room.finished_buying(&pass(id, "")).await.expect("finished");
        }
        let stats = step().await;
        assert_eq!(
            (stats.active, stats.admitted_total),
            (45, 55),
            "ten left, five came in: the new limit"
        );
    }

    async fn presale_phase_admits_presale_tiers_only(backend: Backend) {
        let clock = ManualClock::new(0);
        let room = room(backend, &clock).await;
        let mut ev = event(SaleState::Open);
        ev.sale_phase = SalePhase::Presale;
        ev.admission.burst = 10;
        ev.admission.rate_per_minute = 600;
        room.join_as(&ev, "general", "").await.expect("join");
        room.join_as(&ev, "fan", "FANCLUB").await.expect("join");
        clock.advance_ms(10_000);
        room.pump().await;
        let stats = room.settled_stats(&ev).await;
        assert_eq!(stats.admitted_total, 1);
        assert_eq!(stats.waiting[0], 1, "the general fan keeps waiting");
        room.set_sale(
            &ev,
            SaleState::Open,
            SalePhase::General,
            0,
            &ev.presale_codes,
        )
        .await
        .expect("general");
        room.caught_up(&ev.id).await.expect("caught up");
        clock.advance_ms(1_000);
        room.pump().await;
        assert_eq!(room.settled_stats(&ev).await.admitted_total, 2);
    }

    /// Two nodes on one Redis, both pumping at once: each fan is admitted once, and together
    /// they admit at the event's rate, not twice it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_admit_each_fan_once_at_one_rate() {
        let clock = ManualClock::new(0);
        let namespace = RedisNamespace::new();
        let a = redis_node(&clock, &namespace.name).await;
        let b = redis_node(&clock, &namespace.name).await;
        let mut ev = event(SaleState::Open);
        ev.admission = AdmissionSettings {
            rate_per_minute: 600,
            burst: 10,
            max_active: 100_000,
            pow_difficulty: 0,
            auto: false,
        };
        for i in 0..2_000 {
            let node = if i % 2 == 0 { &a } else { &b };
            let token = node
                .join_as(&ev, &format!("f{i}"), "")
                .await
                .expect("join")
                .0;
            if i < 2 {
                node.caught_up(&ev.id).await.expect("caught up");
            }
            node.attach(&ev, &token).await.expect("watching");
        }
        // One simulated minute, both nodes stepping every 100 ms at the same instants.
        for _ in 0..600 {
            clock.advance_ms(100);
            tokio::join!(a.pump(), b.pump());
        }
        let on_a = a.settled_stats(&ev).await;
        let on_b = b.settled_stats(&ev).await;
        assert_eq!(on_a.admitted_total, on_b.admitted_total, "replicas agree");
        assert!(
            (595..=610).contains(&on_a.admitted_total),
            "600 a minute across both nodes, not 1,200: {}",
            on_a.admitted_total
        );
        // Every admitted entry is admitted once: the active set has exactly as many fans.
        assert_eq!(on_a.active, on_a.admitted_total);
        assert_eq!(on_a.waiting[0] + on_a.admitted_total, 2_000);
        let admitted: HashSet<u64> = {
            let queue = a.known_room("ev").expect("room");
            let inner = queue.inner.lock().expect("lock");
            inner.active.iter().copied().collect()
        };
        assert_eq!(admitted.len() as u64, on_a.admitted_total);
        // The oldest joins went first (FIFO across nodes).
        assert!((1..=on_a.admitted_total).all(|id| admitted.contains(&id)));
    }

    /// A node that dies without closing its streams: once its heartbeat lapses another node
    /// counts them as closed, so the grace period starts and abandoned places do not linger.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_nodes_streams_count_as_closed() {
        let clock = ManualClock::new(0);
        let namespace = RedisNamespace::new();
        let dead = redis_node(&clock, &namespace.name).await;
        let alive = redis_node(&clock, &namespace.name).await;
        let ev = event(SaleState::Paused);
        let token = dead.join_as(&ev, "fan", "").await.expect("join").0;
        dead.caught_up(&ev.id).await.expect("caught up");
        dead.attach(&ev, &token).await.expect("watching");
        alive.join_as(&ev, "other", "").await.expect("join");
        dead.pump().await;
        alive.pump().await;
        // The dead node never beats again; its fan is still watched as far as Redis knows,
        // until the lease (10 s) ends and the living node counts the stream as closed.
        for _ in 0..30 {
            clock.advance_ms(1_000);
            alive.pump().await;
        }
        assert_eq!(alive.settled_stats(&ev).await.waiting[0], 2);
        // 'other' never watched: gone at 120 s. The fan has the whole grace period from the
        // cleanup (~11 s) to reconnect elsewhere.
        clock.advance_ms(95_000);
        alive.pump().await;
        assert_eq!(
            alive.settled_stats(&ev).await.waiting[0],
            1,
            "only 'other' lapsed"
        );
        clock.advance_ms(10_000);
        alive.pump().await;
        assert_eq!(
            alive.settled_stats(&ev).await.waiting[0],
            0,
            "the dead node's fan lapsed"
        );
    }
}
