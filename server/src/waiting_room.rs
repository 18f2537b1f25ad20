//! The embedded waiting room: per event, an in-process queue that places fans fairly, tells
//! each watcher their position, and admits them at the rate the operator sets.
//!
//! - **Join** is idempotent per fingerprint (its SHA-256): a second tab gets the same entry.
//!   Before the sale opens, fans wait in a pre-queue; at opening the pre-queue is shuffled with
//!   a published seed ([`shuffle`]) and placed ahead of everyone who arrives later.
//! - **Positions** come from [`QueueOrder`] (Fenwick trees per tier): a watcher's stream
//!   recomputes its own position when the queue changes, at most every [`PUSH_INTERVAL`], and
//!   sends it only if it moved, with a heartbeat every [`HEARTBEAT`].
//! - **Admission** (the pump, every [`PUMP_INTERVAL`]): a token bucket at the operator's rate
//!   with burst, capped by the number of fans buying at once (`max_active`), highest tier first
//!   (presale phase: presale tiers only). An admitted fan gets a signed pass; the slot frees when
//!   they pay, leave, do not hold seats within the no-show window, or their pass expires.
//! - **Grace**: an entry with no open stream for longer than the grace period is removed.
//!
//! Single node only: the distributed backend keeps the same rules in Redis.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taquilla_proto::v1 as pb;
use tokio::sync::{broadcast, watch};
use tokio_stream::Stream;
use tonic::Status;

use crate::domain::clock::Clock;
use crate::domain::queue::{QueueOrder, RateAverage, TokenBucket, shuffle};
use crate::domain::{SalePhase, SaleState};
use crate::error::{ApiError, ApiResult};
use crate::store::{AdmissionSettings, EventRecord};
use crate::tokens::{
    ChallengeClaims, PassClaims, QueueClaims, Signer, TokenKind, pow_zero_bits, sha256_hex,
};

/// A fan's stream of queue updates.
pub type QueueStream = Pin<Box<dyn Stream<Item = Result<pb::QueueUpdate, Status>> + Send>>;

/// How often the pump admits fans and expires slots.
pub const PUMP_INTERVAL: Duration = Duration::from_millis(100);
/// Least time between two position pushes to one watcher near the front (farther back it
/// grows, up to ten times).
pub const PUSH_INTERVAL: Duration = Duration::from_millis(500);
/// A watcher hears from the server at least this often.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

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
struct Limiter {
    per_ip: HashMap<IpAddr, TokenBucket>,
    per_fingerprint: HashMap<String, TokenBucket>,
    last_prune_ms: i64,
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
    token: String,
    initial_position: u64,
    watchers: u32,
    /// When the last stream closed (or the join, if none opened yet); `None` while watched.
    detached_at_ms: Option<i64>,
    admission: Option<Admission>,
    ip: Option<IpAddr>,
    /// Wakes this entry's watchers when its own state changes (admitted, removed, expired).
    signal: Arc<tokio::sync::Notify>,
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
    detached: HashSet<u64>,
    admitted_total: u64,
    /// Open Watch streams.
    watchers: u64,
    seed: Option<u64>,
    alert: Option<pb::Alert>,
    next_alert: u64,
}

/// One event's queue.
#[derive(Debug)]
pub struct Room {
    event_id: String,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    alerts: broadcast::Sender<pb::Alert>,
}

/// Every event's queue on this node.
#[derive(Debug)]
pub struct WaitingRoom {
    clock: Arc<dyn Clock>,
    signer: Signer,
    timings: RoomTimings,
    limits: JoinRateLimits,
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    limiter: Mutex<Limiter>,
    bans: Mutex<Bans>,
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

fn lock(room: &Room) -> ApiResult<std::sync::MutexGuard<'_, Inner>> {
    room.inner
        .lock()
        .map_err(|_| ApiError::Internal("waiting room state poisoned".into()))
}

impl Inner {
    fn min_tier(&self) -> usize {
        match self.phase {
            SalePhase::Presale => PRESALE,
            SalePhase::General => GENERAL,
        }
    }

    fn place(&mut self, id: u64) {
        self.next_seq += 1;
        let seq = self.next_seq;
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

    /// Opens the sale: the pre-queue is shuffled with a fresh seed and placed first.
    fn open(&mut self, seed: u64) {
        self.seed = Some(seed);
        let mut prequeue = std::mem::take(&mut self.prequeue);
        shuffle(&mut prequeue, seed);
        for id in prequeue {
            self.place(id);
        }
        self.sale = SaleState::Open;
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
    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// One `Watch` stream's state.
struct Watcher {
    changed: watch::Receiver<u64>,
    alerts: broadcast::Receiver<pb::Alert>,
    stopping: watch::Receiver<bool>,
    signal: Arc<tokio::sync::Notify>,
    last: Option<View>,
    first: bool,
    /// Whether the next step is to wait for something to change.
    waiting: bool,
    finished: bool,
    hold_off_until: Option<tokio::time::Instant>,
    guard: Detach,
}

/// Starts the entry's grace period when its last stream goes away (the client disconnected,
/// or the stream ended).
struct Detach {
    rooms: Arc<WaitingRoom>,
    room: Arc<Room>,
    id: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        let now = self.rooms.clock.now_ms();
        if let Ok(mut inner) = self.room.inner.lock() {
            inner.watchers = inner.watchers.saturating_sub(1);
            let mut detached = false;
            if let Some(entry) = inner.entries.get_mut(&self.id) {
                entry.watchers = entry.watchers.saturating_sub(1);
                if entry.watchers == 0 {
                    entry.detached_at_ms = Some(now);
                    detached = true;
                }
            }
            if detached {
                inner.detached.insert(self.id);
            }
        }
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
            limiter: Mutex::new(Limiter::default()),
            bans: Mutex::new(Bans::default()),
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
    pub fn ban(&self, fingerprint_hash: Option<&str>, ip: Option<IpAddr>) -> u64 {
        if let Ok(mut set) = self.bans.lock() {
            if let Some(fp) = fingerprint_hash {
                set.fingerprints.insert(fp.to_string());
            }
            if let Some(ip) = ip {
                set.ips.insert(ip);
            }
        }
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let mut removed = 0;
        for room in rooms {
            let Ok(mut inner) = room.inner.lock() else {
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
            for id in matching {
                let live = inner
                    .entries
                    .get(&id)
                    .is_some_and(|e| !matches!(e.state, EntryState::Removed | EntryState::Expired));
                if live {
                    inner.unplace(id);
                    inner.detached.remove(&id);
                    if let Some(entry) = inner.entries.get_mut(&id) {
                        entry.state = EntryState::Removed;
                        entry.signal.notify_one();
                    }
                    removed += 1;
                }
            }
            drop(inner);
            room.notify();
        }
        removed
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
    fn check_rate(&self, fp: &str, ip: Option<IpAddr>, now: i64) -> ApiResult<()> {
        let Ok(mut limiter) = self.limiter.lock() else {
            return Ok(());
        };
        let burst = |rate: u32| (rate / 6).max(3);
        let limits = self.limits;
        // Forget callers whose buckets are full again: they owe nothing.
        if now - limiter.last_prune_ms > 10_000 {
            limiter.per_ip.retain(|_, b| !b.is_full(now));
            limiter.per_fingerprint.retain(|_, b| !b.is_full(now));
            limiter.last_prune_ms = now;
        }
        let mut wait = 0;
        if let Some(ip) = ip {
            let bucket = limiter
                .per_ip
                .entry(ip)
                .or_insert_with(|| TokenBucket::full(limits.per_ip, burst(limits.per_ip), now));
            if bucket.take(1, now) == 0 {
                wait = wait.max(bucket.wait_ms(now));
            }
        }
        let bucket = limiter
            .per_fingerprint
            .entry(fp.to_string())
            .or_insert_with(|| {
                TokenBucket::full(limits.per_fingerprint, burst(limits.per_fingerprint), now)
            });
        if bucket.take(1, now) == 0 {
            wait = wait.max(bucket.wait_ms(now));
        }
        if wait > 0 {
            return Err(ApiError::ResourceExhausted {
                message: "too many joins from this device or address; wait a moment and try again"
                    .into(),
                retry_after_ms: wait,
            });
        }
        Ok(())
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

    /// The queue of an event, created from its stored sale state on first use.
    fn room(&self, event: &EventRecord) -> ApiResult<Arc<Room>> {
        let mut rooms = self
            .rooms
            .lock()
            .map_err(|_| ApiError::Internal("waiting rooms poisoned".into()))?;
        if let Some(room) = rooms.get(&event.id) {
            return Ok(room.clone());
        }
        let now = self.clock.now_ms();
        let seed = event
            .shuffle_seed
            .as_deref()
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        let room = Arc::new(Room {
            event_id: event.id.clone(),
            inner: Mutex::new(Inner {
                sale: event.sale_state,
                phase: event.sale_phase,
                opens_at_ms: event.sale_opens_at_ms,
                admission: event.admission,
                bucket: TokenBucket::new(
                    event.admission.rate_per_minute,
                    event.admission.burst,
                    now,
                ),
                rate: RateAverage::default(),
                presale_codes: event.presale_codes.iter().cloned().collect(),
                entries: HashMap::new(),
                by_fingerprint: HashMap::new(),
                by_seq: HashMap::new(),
                order: QueueOrder::default(),
                prequeue: Vec::new(),
                next_entry: 0,
                next_seq: 0,
                active: HashSet::new(),
                detached: HashSet::new(),
                admitted_total: 0,
                watchers: 0,
                seed,
                alert: None,
                next_alert: 1,
            }),
            changed: watch::channel(0).0,
            alerts: broadcast::channel(16).0,
        });
        rooms.insert(event.id.clone(), room.clone());
        Ok(room)
    }

    fn known_room(&self, event_id: &str) -> Option<Arc<Room>> {
        self.rooms
            .lock()
            .ok()
            .and_then(|r| r.get(event_id).cloned())
    }

    /// Joins `event`'s queue.
    pub fn join(&self, event: &EventRecord, input: &JoinInput) -> ApiResult<Joined> {
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
        let room = self.room(event)?;
        let now = self.clock.now_ms();
        let fp = sha256_hex(fingerprint);
        self.check_banned(&fp, input.ip)?;
        self.check_rate(&fp, input.ip, now)?;
        let mut inner = lock(&room)?;
        match inner.sale {
            SaleState::Closed => {
                return Err(ApiError::FailedPrecondition(format!(
                    "the sale of {:?} is closed",
                    event.id
                )));
            }
            SaleState::SoldOut => {
                return Err(ApiError::FailedPrecondition(format!(
                    "{:?} is sold out",
                    event.id
                )));
            }
            _ => {}
        }
        let tier = if presale_code.is_empty() {
            GENERAL
        } else if inner.presale_codes.contains(presale_code) {
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
        if let Some(&id) = inner.by_fingerprint.get(&fp) {
            let keep = inner
                .entries
                .get(&id)
                .is_some_and(|e| !matches!(e.state, EntryState::Removed | EntryState::Expired));
            if keep {
                let token = inner
                    .entries
                    .get(&id)
                    .map(|e| e.token.clone())
                    .unwrap_or_default();
                let view = inner
                    .view(&event.id, id, rate)
                    .ok_or_else(|| ApiError::Internal("entry vanished".into()))?;
                return Ok(Joined::Placed(token, view.status));
            }
        }
        if let Some(challenge) = self.check_pow(
            &event.id,
            &fp,
            inner.admission.pow_difficulty,
            input.pow.as_ref(),
            now,
        )? {
            return Ok(Joined::Challenge(challenge));
        }
        inner.next_entry += 1;
        let id = inner.next_entry;
        let token = self.signer.sign(
            TokenKind::Queue,
            &QueueClaims {
                ev: event.id.clone(),
                en: id.to_string(),
                fp: fp.clone(),
                iat: now,
            },
        );
        inner.entries.insert(
            id,
            Entry {
                tier,
                state: EntryState::Prequeue,
                seq: 0,
                token: token.clone(),
                initial_position: 0,
                watchers: 0,
                detached_at_ms: Some(now),
                admission: None,
                ip: input.ip,
                signal: Arc::new(tokio::sync::Notify::new()),
            },
        );
        inner.by_fingerprint.insert(fp, id);
        inner.detached.insert(id);
        if matches!(inner.sale, SaleState::Open | SaleState::Paused) {
            inner.place(id);
        } else {
            inner.prequeue.push(id);
        }
        let view = inner
            .view(&event.id, id, rate)
            .ok_or_else(|| ApiError::Internal("entry vanished".into()))?;
        drop(inner);
        room.notify();
        Ok(Joined::Placed(token, view.status))
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

    /// Leaves the queue at once (an admitted fan frees the slot).
    pub fn leave(&self, token: &str) -> ApiResult<()> {
        let (claims, id) = self.claims(token)?;
        let Some(room) = self.known_room(&claims.ev) else {
            return Ok(());
        };
        let mut inner = lock(&room)?;
        inner.unplace(id);
        inner.detached.remove(&id);
        if let Some(entry) = inner.entries.get_mut(&id) {
            entry.state = EntryState::Removed;
        }
        drop(inner);
        room.notify();
        Ok(())
    }

    /// Streams an entry's status until it ends (removed, expired, closed) or the client goes.
    pub fn watch(
        self: &Arc<Self>,
        token: &str,
        stopping: watch::Receiver<bool>,
    ) -> ApiResult<QueueStream> {
        let (room, id, signal) = self.attach(token)?;
        let watcher = Watcher {
            changed: room.changed.subscribe(),
            alerts: room.alerts.subscribe(),
            stopping,
            signal,
            last: None,
            first: true,
            waiting: false,
            finished: false,
            hold_off_until: None,
            guard: Detach {
                rooms: self.clone(),
                room,
                id,
            },
        };
        // The stream computes each update when polled: no task and no channel per watcher.
        Ok(Box::pin(futures_util::stream::unfold(
            watcher,
            |mut w| async move {
                let rooms = w.guard.rooms.clone();
                let update = rooms.next_update(&mut w).await?;
                Some((Ok(update), w))
            },
        )))
    }

    /// Counts a new watcher of the entry behind `token` (its grace period stops).
    fn attach(&self, token: &str) -> ApiResult<(Arc<Room>, u64, Arc<tokio::sync::Notify>)> {
        let (claims, id) = self.claims(token)?;
        let gone = || {
            ApiError::NotFound(
                "your place in this queue is gone (you left, or it was removed after the grace \
                 period); join again"
                    .into(),
            )
        };
        let room = self.known_room(&claims.ev).ok_or_else(gone)?;
        let signal = {
            let mut inner = lock(&room)?;
            let entry = inner.entries.get_mut(&id).ok_or_else(gone)?;
            if entry.state == EntryState::Removed {
                return Err(gone());
            }
            entry.watchers += 1;
            entry.detached_at_ms = None;
            let signal = entry.signal.clone();
            inner.detached.remove(&id);
            inner.watchers += 1;
            signal
        };
        Ok((room, id, signal))
    }

    /// Computes a watcher's next update, waiting as long as there is nothing to say.
    async fn next_update(&self, w: &mut Watcher) -> Option<pb::QueueUpdate> {
        if w.finished {
            return None;
        }
        loop {
            if w.waiting {
                // Wait for this entry's own change (at once), a room-wide change (positions:
                // read at most every PUSH_INTERVAL), an alert, the heartbeat or shutdown.
                enum Wake {
                    Own,
                    Changed,
                    HoldOffOver,
                    Alert(Option<pb::Alert>),
                    Beat,
                    Stop,
                }
                let holding_off = w
                    .hold_off_until
                    .is_some_and(|until| until > tokio::time::Instant::now());
                let wake = tokio::select! {
                    _ = w.signal.notified() => Wake::Own,
                    _ = w.changed.changed(), if !holding_off => Wake::Changed,
                    _ = tokio::time::sleep_until(w.hold_off_until.unwrap_or_else(tokio::time::Instant::now)), if holding_off => Wake::HoldOffOver,
                    alert = w.alerts.recv() => Wake::Alert(alert.ok()),
                    _ = tokio::time::sleep(HEARTBEAT) => Wake::Beat,
                    _ = w.stopping.wait_for(|s| *s) => Wake::Stop,
                };
                let status = w.last.as_ref().map(|l| l.status.clone());
                let now = self.clock.now_ms();
                match wake {
                    Wake::Own | Wake::HoldOffOver => {}
                    Wake::Changed => {
                        // Read now, then not again before the hold-off ends. Far back in line a
                        // position moves slowly relative to its size, so it is read less often:
                        // 0.5 s near the front, up to 5 s from 20,000th place back.
                        let position = w.last.as_ref().map_or(0, |l| l.status.position);
                        let factor = (position / 2_000).clamp(1, 10) as u32;
                        w.hold_off_until =
                            Some(tokio::time::Instant::now() + PUSH_INTERVAL * factor);
                    }
                    Wake::Alert(None) => continue,
                    Wake::Alert(Some(alert)) => {
                        return Some(pb::QueueUpdate {
                            status,
                            alert: Some(alert),
                            server_time_unix_ms: now,
                            ..Default::default()
                        });
                    }
                    Wake::Beat => {
                        return Some(pb::QueueUpdate {
                            status,
                            heartbeat: true,
                            server_time_unix_ms: now,
                            ..Default::default()
                        });
                    }
                    Wake::Stop => {
                        w.finished = true;
                        return Some(pb::QueueUpdate {
                            status,
                            reconnect: true,
                            server_time_unix_ms: now,
                            ..Default::default()
                        });
                    }
                }
            }
            let room = w.guard.room.clone();
            let (view, alert) = {
                let Ok(inner) = room.inner.lock() else {
                    w.finished = true;
                    return None;
                };
                let rate = f64::from(inner.admission.rate_per_minute);
                (
                    inner.view(&room.event_id, w.guard.id, rate),
                    if w.first { inner.alert.clone() } else { None },
                )
            };
            let Some(view) = view else {
                w.finished = true;
                return None;
            };
            let update = (w.last.as_ref() != Some(&view) || alert.is_some()).then(|| {
                let before = w.last.as_ref().map(|l| l.status.position);
                let reason = match before {
                    Some(before)
                        if before != view.status.position && view.status.position < before =>
                    {
                        pb::MoveReason::Admissions
                    }
                    Some(before) if before != view.status.position => pb::MoveReason::PriorityTier,
                    _ => pb::MoveReason::Unspecified,
                };
                pb::QueueUpdate {
                    status: Some(view.status.clone()),
                    move_reason: reason.into(),
                    alert,
                    admission_pass: view.pass.clone(),
                    heartbeat: false,
                    reconnect: false,
                    server_time_unix_ms: self.clock.now_ms(),
                }
            });
            w.first = false;
            let state = view.status.state;
            w.last = Some(view);
            w.waiting = true;
            let terminal = [
                pb::QueueState::Removed,
                pb::QueueState::Expired,
                pb::QueueState::Closed,
                pb::QueueState::SoldOut,
            ]
            .iter()
            .any(|s| *s as i32 == state);
            if terminal {
                w.finished = true;
                return update;
            }
            if update.is_some() {
                return update;
            }
        }
    }

    /// One admission step for every event: opens scheduled sales, admits fans, frees slots and
    /// removes entries past the grace period.
    pub fn pump(&self) {
        let rooms: Vec<Arc<Room>> = self
            .rooms
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        let now = self.clock.now_ms();
        for room in rooms {
            let changed = match room.inner.lock() {
                Ok(mut inner) => self.step(&room.event_id, &mut inner, now),
                Err(_) => false,
            };
            if changed {
                room.notify();
            }
        }
    }

    fn step(&self, event_id: &str, inner: &mut Inner, now: i64) -> bool {
        let mut changed = false;
        if inner.sale == SaleState::NotOpen && inner.opens_at_ms > 0 && now >= inner.opens_at_ms {
            inner.open(rand::random());
            changed = true;
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
            inner.active.remove(&id);
            if let Some(entry) = inner.entries.get_mut(&id) {
                entry.state = EntryState::Expired;
                entry.signal.notify_one();
            }
            changed = true;
        }
        // Grace period: entries nobody watches are removed.
        let grace = self.timings.grace.as_millis() as i64;
        let lapsed: Vec<u64> = inner
            .detached
            .iter()
            .copied()
            .filter(|id| {
                inner.entries.get(id).is_some_and(|e| {
                    matches!(e.state, EntryState::Waiting | EntryState::Prequeue)
                        && e.detached_at_ms.is_some_and(|t| t + grace <= now)
                })
            })
            .collect();
        for id in lapsed {
            inner.unplace(id);
            inner.detached.remove(&id);
            if let Some(entry) = inner.entries.get_mut(&id) {
                entry.state = EntryState::Removed;
                entry.signal.notify_one();
            }
            changed = true;
        }
        inner.rate.tick(now);
        if inner.sale != SaleState::Open {
            return changed;
        }
        let min_tier = inner.min_tier();
        let eligible: u64 = (min_tier..3).map(|t| inner.order.len_tier(t)).sum();
        let room_left =
            u64::from(inner.admission.max_active).saturating_sub(inner.active.len() as u64);
        let wanted = eligible.min(room_left);
        if wanted == 0 {
            return changed;
        }
        let n = inner.bucket.take(wanted, now);
        for _ in 0..n {
            let Some((tier, seq)) = inner.order.front(min_tier) else {
                break;
            };
            inner.order.remove(tier, seq);
            let Some(id) = inner.by_seq.remove(&seq) else {
                continue;
            };
            let Some(entry) = inner.entries.get_mut(&id) else {
                continue;
            };
            let pass_exp = now + self.timings.pass_ttl.as_millis() as i64;
            let fp = self
                .signer
                .verify::<QueueClaims>(TokenKind::Queue, &entry.token)
                .map(|c| c.fp)
                .unwrap_or_default();
            let pass = self.signer.sign(
                TokenKind::AdmissionPass,
                &PassClaims {
                    ev: event_id.to_string(),
                    fan: fp,
                    en: id.to_string(),
                    iat: now,
                    exp: pass_exp,
                },
            );
            entry.state = EntryState::Admitted;
            entry.signal.notify_waiters();
            entry.signal.notify_one();
            entry.admission = Some(Admission {
                pass,
                pass_exp_ms: pass_exp,
                hold_deadline_ms: now + self.timings.no_show.as_millis() as i64,
                started: false,
            });
            inner.active.insert(id);
            inner.admitted_total += 1;
            changed = true;
        }
        inner.rate.record(n, now);
        changed
    }

    /// Runs the pump until shutdown.
    pub async fn run(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(PUMP_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.pump(),
                _ = stopping.wait_for(|s| *s) => return,
            }
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
            Some(entry) => entry.state == EntryState::Admitted,
            None => true,
        }
    }

    /// The fan behind a pass held seats: the no-show clock stops.
    pub fn started_buying(&self, claims: &PassClaims) {
        self.with_entry(claims, |_, entry| {
            if let Some(admission) = entry.1.admission.as_mut() {
                admission.started = true;
            }
        });
    }

    /// The fan behind a pass paid: their slot goes to the next fan.
    pub fn finished_buying(&self, claims: &PassClaims) {
        self.with_entry(claims, |active, entry| {
            active.remove(&entry.0);
            entry.1.state = EntryState::Removed;
            entry.1.signal.notify_one();
        });
    }

    fn with_entry(
        &self,
        claims: &PassClaims,
        f: impl FnOnce(&mut HashSet<u64>, (u64, &mut Entry)),
    ) {
        let Some(room) = self.known_room(&claims.ev) else {
            return;
        };
        let Ok(id) = claims.en.parse::<u64>() else {
            return;
        };
        if let Ok(mut inner) = room.inner.lock() {
            let Inner {
                active, entries, ..
            } = &mut *inner;
            if let Some(entry) = entries.get_mut(&id) {
                f(active, (id, entry));
            }
        }
        room.notify();
    }

    /// Applies a sale change made by an operator (already stored); opening now shuffles the
    /// pre-queue and returns the seed.
    pub fn set_sale(
        &self,
        event: &EventRecord,
        state: SaleState,
        phase: SalePhase,
        opens_at_ms: i64,
        presale_codes: &[String],
    ) -> ApiResult<Option<u64>> {
        let room = self.room(event)?;
        let mut inner = lock(&room)?;
        inner.phase = phase;
        inner.opens_at_ms = opens_at_ms;
        inner.presale_codes = presale_codes.iter().cloned().collect();
        let mut seed = None;
        match state {
            SaleState::Open if inner.sale == SaleState::NotOpen => {
                let fresh = rand::random();
                inner.open(fresh);
                seed = Some(fresh);
            }
            other => inner.sale = other,
        }
        drop(inner);
        room.notify();
        Ok(seed)
    }

    /// Changes the admission valve live.
    pub fn set_admission(&self, event: &EventRecord, settings: AdmissionSettings) -> ApiResult<()> {
        let room = self.room(event)?;
        let now = self.clock.now_ms();
        let mut inner = lock(&room)?;
        inner.admission = settings;
        inner
            .bucket
            .set(settings.rate_per_minute, settings.burst, now);
        drop(inner);
        room.notify();
        Ok(())
    }

    /// Sends an alert to everyone in the queue.
    pub fn broadcast(
        &self,
        event: &EventRecord,
        message: &str,
        severity: pb::AlertSeverity,
    ) -> ApiResult<pb::Alert> {
        let room = self.room(event)?;
        let mut inner = lock(&room)?;
        let alert = pb::Alert {
            id: inner.next_alert,
            message: message.to_string(),
            severity: severity.into(),
            sent_at_unix_ms: self.clock.now_ms(),
        };
        inner.next_alert += 1;
        inner.alert = Some(alert.clone());
        drop(inner);
        let _ = room.alerts.send(alert.clone());
        Ok(alert)
    }

    /// The queue's figures.
    pub fn stats(&self, event: &EventRecord) -> ApiResult<RoomStats> {
        let room = self.room(event)?;
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::ManualClock;
    use crate::domain::layout::VenueSpec;

    fn event(state: SaleState) -> EventRecord {
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
            },
            shuffle_seed: None,
            presale_codes: vec!["FANCLUB".into(), "VIP-GOLD".into()],
            sections: vec![],
        }
    }

    fn room(clock: &ManualClock) -> WaitingRoom {
        WaitingRoom::new(
            Arc::new(clock.clone()),
            Signer::new(b"0123456789abcdef0123456789abcdef").expect("key"),
            RoomTimings::default(),
            JoinRateLimits {
                per_ip: 1_000_000,
                per_fingerprint: 1_000_000,
            },
        )
    }

    impl WaitingRoom {
        /// Joins with a fingerprint and code; panics on a challenge.
        fn join_as(
            &self,
            event: &EventRecord,
            fingerprint: &str,
            code: &str,
        ) -> ApiResult<(String, pb::QueueStatus)> {
            match self.join(
                event,
                &JoinInput {
                    fingerprint: fingerprint.into(),
                    presale_code: code.into(),
                    ..JoinInput::default()
                },
            )? {
                Joined::Placed(token, status) => Ok((token, status)),
                Joined::Challenge(_) => panic!("unexpected challenge"),
            }
        }
    }

    fn position(room: &WaitingRoom, event: &EventRecord, fingerprint: &str) -> u64 {
        room.join_as(event, fingerprint, "")
            .expect("join")
            .1
            .position
    }

    #[test]
    fn joins_are_idempotent_and_tiers_go_first() {
        let clock = ManualClock::new(1_000);
        let room = room(&clock);
        let ev = event(SaleState::Open);
        let (t1, s1) = room.join_as(&ev, "alice", "").expect("join");
        let (t2, s2) = room.join_as(&ev, "alice", "").expect("again");
        assert_eq!(t1, t2, "a second tab gets the same place");
        assert_eq!((s1.position, s2.position), (1, 1));
        room.join_as(&ev, "bob", "").expect("join");
        let presale = room.join_as(&ev, "carol", "FANCLUB").expect("presale").1;
        assert_eq!(presale.tier, pb::QueueTier::Presale as i32);
        assert_eq!(presale.position, 1);
        let vip = room.join_as(&ev, "dave", "VIP-GOLD").expect("vip").1;
        assert_eq!(vip.position, 1);
        assert_eq!(position(&room, &ev, "alice"), 3, "higher tiers are ahead");
        assert_eq!(position(&room, &ev, "bob"), 4);
        assert!(matches!(
            room.join_as(&ev, "eve", "WRONG"),
            Err(ApiError::InvalidArgument(_))
        ));
        assert!(matches!(
            room.join_as(&ev, "", ""),
            Err(ApiError::InvalidArgument(_))
        ));
    }

    #[test]
    fn the_prequeue_is_shuffled_by_a_published_seed() {
        let clock = ManualClock::new(1_000);
        let room = room(&clock);
        let mut ev = event(SaleState::NotOpen);
        let fans: Vec<String> = (0..200).map(|i| format!("fan-{i}")).collect();
        for fan in &fans {
            let status = room.join_as(&ev, fan, "").expect("join").1;
            assert_eq!(status.state, pb::QueueState::Prequeue as i32);
            assert_eq!(status.position, 0);
        }
        let seed = room
            .set_sale(&ev, SaleState::Open, SalePhase::General, 1_000, &[])
            .expect("open")
            .expect("a seed");
        ev.sale_state = SaleState::Open;
        // A later arrival is behind everyone from the pre-queue.
        assert_eq!(position(&room, &ev, "late"), 201);
        let published = room
            .stats(&ev)
            .expect("stats")
            .shuffle_seed
            .expect("published");
        let seed_again = u64::from_str_radix(&published, 16).expect("hex");
        assert_eq!(seed, seed_again);
        // Recompute the order from the seed and the join order.
        let mut expected: Vec<usize> = (0..fans.len()).collect();
        shuffle(&mut expected, seed_again);
        for (place, fan_index) in expected.iter().enumerate() {
            assert_eq!(position(&room, &ev, &fans[*fan_index]), place as u64 + 1);
        }
    }

    #[test]
    fn rate_and_cap_hold_over_a_simulated_hour() {
        let clock = ManualClock::new(0);
        let room = room(&clock);
        let mut ev = event(SaleState::Open);
        ev.admission = AdmissionSettings {
            rate_per_minute: 300,
            burst: 5,
            max_active: 40,
            pow_difficulty: 0,
        };
        for i in 0..20_000 {
            let token = room.join_as(&ev, &format!("f{i}"), "").expect("join").0;
            room.attach(&token).expect("watching");
        }
        let queue = room.known_room("ev").expect("room");
        let mut most_active = 0;
        for step in 0..36_000 {
            clock.advance_ms(100);
            room.pump();
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
                room.finished_buying(&PassClaims {
                    ev: "ev".into(),
                    fan: String::new(),
                    en: id.to_string(),
                    iat: 0,
                    exp: i64::MAX,
                });
            }
        }
        assert!(
            most_active <= 40,
            "never more than max_active buying at once: {most_active}"
        );
        let admitted = room.stats(&ev).expect("stats").admitted_total;
        let expected = 300 * 60;
        let error = (admitted as f64 - expected as f64).abs() / expected as f64;
        assert!(error <= 0.01, "admitted {admitted} in an hour at 300/min");
    }

    #[test]
    fn no_shows_free_their_slot_and_lose_their_pass() {
        let clock = ManualClock::new(0);
        let room = room(&clock);
        let mut ev = event(SaleState::Open);
        ev.admission.max_active = 1;
        for fan in ["first", "second"] {
            let token = room.join_as(&ev, fan, "").expect("join").0;
            room.attach(&token).expect("watching");
        }
        clock.advance_ms(1_000);
        room.pump();
        let stats = room.stats(&ev).expect("stats");
        assert_eq!((stats.active, stats.admitted_total), (1, 1));
        assert_eq!(position(&room, &ev, "second"), 1, "waits for the slot");
        let first = PassClaims {
            ev: "ev".into(),
            fan: String::new(),
            en: "1".into(),
            iat: 0,
            exp: i64::MAX,
        };
        assert!(room.pass_active(&first));
        // Two minutes without holding seats: the slot goes to the next fan.
        clock.advance_ms(121_000);
        room.pump();
        assert!(!room.pass_active(&first), "a no-show's pass is revoked");
        let stats = room.stats(&ev).expect("stats");
        assert_eq!((stats.active, stats.admitted_total), (1, 2));
    }

    #[test]
    fn leaving_and_the_grace_period_move_positions_up() {
        let clock = ManualClock::new(0);
        let room = room(&clock);
        let ev = event(SaleState::Paused);
        let tokens: Vec<String> = (0..10)
            .map(|i| room.join_as(&ev, &format!("f{i}"), "").expect("join").0)
            .collect();
        assert_eq!(position(&room, &ev, "f9"), 10);
        room.leave(&tokens[0]).expect("leave");
        room.leave(&tokens[3]).expect("leave");
        assert_eq!(position(&room, &ev, "f9"), 8);
        assert_eq!(position(&room, &ev, "f4"), 3);
        // Nobody watches: after the grace period every entry is removed.
        clock.advance_ms(119_000);
        room.pump();
        assert_eq!(room.stats(&ev).expect("stats").waiting[0], 8);
        clock.advance_ms(2_000);
        room.pump();
        assert_eq!(room.stats(&ev).expect("stats").waiting[0], 0);
        assert!(matches!(
            room.leave("garbage"),
            Err(ApiError::Unauthenticated(_))
        ));
    }

    #[test]
    fn presale_phase_admits_presale_tiers_only() {
        let clock = ManualClock::new(0);
        let room = room(&clock);
        let mut ev = event(SaleState::Open);
        ev.sale_phase = SalePhase::Presale;
        ev.admission.burst = 10;
        ev.admission.rate_per_minute = 600;
        room.join_as(&ev, "general", "").expect("join");
        room.join_as(&ev, "fan", "FANCLUB").expect("join");
        clock.advance_ms(10_000);
        room.pump();
        let stats = room.stats(&ev).expect("stats");
        assert_eq!(stats.admitted_total, 1);
        assert_eq!(stats.waiting[0], 1, "the general fan keeps waiting");
        room.set_sale(
            &ev,
            SaleState::Open,
            SalePhase::General,
            0,
            &ev.presale_codes,
        )
        .expect("general");
        clock.advance_ms(1_000);
        room.pump();
        assert_eq!(room.stats(&ev).expect("stats").admitted_total, 2);
    }
}
