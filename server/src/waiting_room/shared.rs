//! The distributed waiting room's Redis side: the Lua scripts that decide (join, admission
//! step, opening, removals) atomically for every node at once, and the event log every node
//! replays into its in-memory replica of each queue.
//!
//! Decisions live in Redis; positions do not. Each script appends what it changed to the
//! event's stream (`…:log`), and every node tails that stream into the same [`super::Inner`]
//! the embedded room uses, so a node answers its own watchers' positions from memory: Redis
//! commands grow with joins and admissions, not with the number of people watching.
//!
//! Every key of an event carries the hash tag `{ev:<id>}`, so each script runs on one Redis
//! Cluster slot (`redis_link::key_slot` checks it in a test).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, Script, Value};
use std::sync::Arc;
use taquilla_proto::v1 as pb;
use tokio::sync::{mpsc, oneshot, watch};

use crate::domain::queue::ReturnPacer;
use crate::domain::{SalePhase, SaleState};
use crate::error::{ApiError, ApiResult};
use crate::redis_link::{Redis, RedisLink};
use crate::store::{AdmissionSettings, EventRecord};

const PRELUDE: &str = include_str!("lua/prelude.lua");

/// How long a node's heartbeat may be silent before other nodes count its streams as closed.
pub const NODE_LEASE: Duration = Duration::from_secs(10);
/// Most admissions one step makes.
pub const STEP_BATCH: u32 = 5_000;
/// Most stream changes one call of the watchers script reads. Redis runs one script at a time
/// and nothing else meanwhile: with 5,000 a call, the 4,000 streams a second that open while a
/// crowd joins made calls of 23 ms on average and up to 93 ms (Redis's slow log in the full
/// LUX sale), which every hold, join and admission waited behind. 500 keep a call to a few ms.
const FLUSH_CHUNK: usize = 500;
/// How long a tailer's read waits in Redis for news.
const BLOCK: Duration = Duration::from_millis(1_000);
/// Log entries read at once.
const READ_BATCH: usize = 1_000;

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// The scripts, loaded once per process (redis-rs sends EVALSHA and loads on NOSCRIPT).
pub(super) struct Scripts {
    pub join: Script,
    pub remove: Script,
    pub watchers: Script,
    pub detach: Script,
    pub step: Script,
    pub open: Script,
    pub sale: Script,
    pub admission: Script,
    pub valve: Script,
    pub alert: Script,
    pub started: Script,
    pub stopped: Script,
    pub init: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            join: script(include_str!("lua/join.lua")),
            remove: script(include_str!("lua/remove.lua")),
            watchers: script(include_str!("lua/watchers.lua")),
            detach: script(include_str!("lua/detach.lua")),
            step: script(include_str!("lua/step.lua")),
            open: script(include_str!("lua/open.lua")),
            sale: script(include_str!("lua/sale.lua")),
            admission: script(include_str!("lua/admission.lua")),
            valve: script(include_str!("lua/valve.lua")),
            alert: script(include_str!("lua/alert.lua")),
            started: script(include_str!("lua/started.lua")),
            stopped: script(include_str!("lua/stopped.lua")),
            init: script(include_str!("lua/init.lua")),
        }
    }
}

/// Redis connections and identity of this node.
pub(super) struct Shared {
    /// Opens the tailers' links of their own.
    redis: Redis,
    /// The link every other command goes through.
    pub conn: RedisLink,
    /// This node's id (random per process): its Watch streams are counted under it.
    pub node: String,
    /// Key prefix (several sales, or several test runs, can share one Redis).
    pub namespace: String,
    pub scripts: Scripts,
    /// Stops the tailers.
    pub stop: watch::Sender<bool>,
    /// The second of this node's last heartbeat.
    pub beat: std::sync::atomic::AtomicI64,
    /// Streams opened ("+id") and closed ("-id:ms") on this node since the last flush, per
    /// event: Redis hears of them in batches, not once per stream.
    pub streams: std::sync::Mutex<HashMap<String, Vec<String>>>,
    /// Per event, the queue of joins waiting for the next batch.
    joins: std::sync::Mutex<HashMap<String, JoinLine>>,
}

/// Joins sent to Redis in one script call at most.
const JOIN_BATCH: usize = 256;
/// Joins that may wait for an event's next batches (four batches' worth); more are refused.
const JOIN_LINE: usize = 4 * JOIN_BATCH;
/// While an event's joins keep coming, its script calls go at most this often, each with the
/// joins that arrived meanwhile. A call's fixed work (a dozen Redis commands, and a log entry
/// every node then reads and applies) is most of a join's cost when the calls carry one or
/// two joins each, as they did at 500 joins a second per event (docs/benchmarks-log.md, "Join
/// batches"). A join arriving after a quiet spell goes at once.
const JOIN_GATHER: std::time::Duration = std::time::Duration::from_millis(10);
/// The answer to a join that finds the line to Redis full: come back at the time the line's
/// pace has room for this fan ([`ReturnPacer`]).
fn join_line_full(retry_after_ms: u64) -> ApiError {
    ApiError::ResourceExhausted {
        message: "the waiting room is taking in more fans than it can record right now; nothing \
                  was recorded for you yet, join again in a moment"
            .into(),
        retry_after_ms,
    }
}

/// One event's line of joins to Redis, and the pace at which it drains.
#[derive(Debug, Clone)]
struct JoinLine {
    sender: mpsc::Sender<JoinCall>,
    pacer: Arc<std::sync::Mutex<ReturnPacer>>,
}

impl JoinLine {
    /// Joins waiting for a batch.
    fn backlog(&self) -> usize {
        JOIN_LINE - self.sender.capacity()
    }

    /// The refusal for a fan who finds the line full: come back when the pace has room.
    fn full(&self, now_ms: i64) -> ApiError {
        let backlog = self.backlog();
        let retry_after_ms = self
            .pacer
            .lock()
            .map(|mut pacer| pacer.come_back_in(now_ms, backlog))
            .unwrap_or(1_000);
        join_line_full(retry_after_ms)
    }
}

/// Values the join script answers per join.
const JOIN_ANSWER: usize = 7;

/// One join waiting for its batch: the script's five arguments, and where the answer goes.
struct JoinCall {
    args: [String; 5],
    reply: oneshot::Sender<Result<Vec<String>, String>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("node", &self.node)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Turns a Redis failure into the retryable answer a caller sees (the detail goes to the log).
pub(super) fn unavailable(e: redis::RedisError) -> ApiError {
    tracing::warn!(error = %e, "Redis call failed");
    store_unavailable()
}

fn store_unavailable() -> ApiError {
    ApiError::Unavailable(
        "the waiting room's store is not answering right now; please retry in a moment".into(),
    )
}

use super::keys::EventKeys;

impl Shared {
    pub fn new(redis: Redis, namespace: &str) -> Shared {
        Shared {
            conn: redis.link(),
            redis,
            node: format!("{:016x}", rand::random::<u64>()),
            namespace: namespace.to_string(),
            scripts: Scripts::new(),
            stop: watch::channel(false).0,
            beat: std::sync::atomic::AtomicI64::new(i64::MIN),
            streams: std::sync::Mutex::new(HashMap::new()),
            joins: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// An event's keys in this node's namespace.
    pub(super) fn keys(&self, event_id: &str) -> EventKeys {
        EventKeys::new(&self.namespace, event_id)
    }

    /// The hash counting this node's Watch streams of an event.
    pub fn my_key(&self, event_id: &str) -> String {
        self.keys(event_id).node_streams(&self.node)
    }

    /// Runs `script` with an event's keys (and `extra` keys after them).
    pub async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        event_id: &str,
        extra: &[String],
        args: &[String],
    ) -> ApiResult<T> {
        let mut invocation = script.prepare_invoke();
        for key in self.keys(event_id).in_script_order().iter().chain(extra) {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let mut conn = self.conn.clone();
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    /// The pre-queue's manifest, as the opening node wrote it.
    pub async fn manifest(&self, event_id: &str) -> ApiResult<Arc<super::Manifest>> {
        let mut conn = self.conn.clone();
        let stored: Option<String> = conn
            .get(self.keys(event_id).manifest())
            .await
            .map_err(unavailable)?;
        let stored = stored.ok_or_else(|| {
            ApiError::FailedPrecondition(format!(
                "the waiting room's store has no manifest of {event_id:?}'s pre-queue (it lost \
                 its data since the sale opened)"
            ))
        })?;
        let entries = hex::decode(&stored)
            .ok()
            .and_then(|blob| taquilla_proto::fairness::ManifestEntry::decode_all(&blob))
            .ok_or_else(|| {
                ApiError::Internal(format!("{event_id:?}'s manifest in Redis is malformed"))
            })?;
        let digest =
            taquilla_proto::fairness::manifest_digest(entries.iter().map(|e| (&e.entry, e.tier)));
        Ok(Arc::new(super::Manifest { entries, digest }))
    }

    /// Runs one join (fingerprint hash, tier, now, ip, proof of work done) and returns the
    /// script's seven values for it, or `["missing"]` when the event is not in Redis. Joins
    /// that arrive while a batch is in flight go together in the next one: one script call
    /// and one round trip for many fans.
    pub async fn join(
        self: &Arc<Self>,
        event_id: &str,
        args: [String; 5],
    ) -> ApiResult<Vec<String>> {
        let line = {
            let mut joins = self
                .joins
                .lock()
                .map_err(|_| ApiError::Internal("join batches poisoned".into()))?;
            match joins.get(event_id) {
                Some(line) if !line.sender.is_closed() => line.clone(),
                _ => {
                    let (sender, receiver) = mpsc::channel(JOIN_LINE);
                    let line = JoinLine {
                        sender,
                        pacer: Arc::default(),
                    };
                    tokio::spawn(Shared::join_batches(
                        Arc::downgrade(self),
                        event_id.to_string(),
                        receiver,
                        line.pacer.clone(),
                    ));
                    joins.insert(event_id.to_string(), line.clone());
                    line
                }
            }
        };
        let (reply, answer) = oneshot::channel();
        let gone = || ApiError::Unavailable("the waiting room is shutting down; retry".into());
        // The line of joins waiting for Redis is bounded: past it a fan is told at once to come
        // back shortly, rather than wait out its deadline while the line grows (400,000 fans
        // joining faster than Redis took them piled up 3 million timed-out joins and gigabytes
        // of waiting calls; docs/benchmarks-log.md, run M). Nothing is recorded for a refused join.
        match line.sender.try_send(JoinCall { args, reply }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(call)) => {
                // The script's arguments hold the join's time.
                let now_ms = call.args[2].parse().unwrap_or_default();
                return Err(line.full(now_ms));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(gone()),
        }
        match answer.await.map_err(|_| gone())? {
            Ok(values) => Ok(values),
            Err(detail) => {
                tracing::warn!(error = %detail, "Redis join failed");
                Err(store_unavailable())
            }
        }
    }

    /// Refuses a join at once when the event's line of joins waiting for Redis is full (as
    /// [`Shared::join`] would), so the caller is told before anything else is spent on it.
    pub fn check_join_line(&self, event_id: &str, now_ms: i64) -> ApiResult<()> {
        let full = self.joins.lock().ok().and_then(|joins| {
            joins
                .get(event_id)
                .filter(|line| line.sender.capacity() == 0)
                .cloned()
        });
        match full {
            Some(line) => Err(line.full(now_ms)),
            None => Ok(()),
        }
    }

    /// Sends an event's joins to Redis, a batch at a time, until the node stops.
    async fn join_batches(
        shared: std::sync::Weak<Shared>,
        event_id: String,
        mut calls: mpsc::Receiver<JoinCall>,
        pacer: Arc<std::sync::Mutex<ReturnPacer>>,
    ) {
        let mut batch = Vec::with_capacity(JOIN_BATCH);
        let mut last_call: Option<tokio::time::Instant> = None;
        while calls.recv_many(&mut batch, JOIN_BATCH).await > 0 {
            if let Some(next) = last_call.map(|at| at + JOIN_GATHER)
                && batch.len() < JOIN_BATCH
                && tokio::time::Instant::now() < next
            {
                // Gathers the joins arriving until this event's next call is due.
                let _ = tokio::time::timeout_at(next, async {
                    loop {
                        let room = JOIN_BATCH - batch.len();
                        if room == 0 || calls.recv_many(&mut batch, room).await == 0 {
                            break;
                        }
                    }
                })
                .await;
            }
            last_call = Some(tokio::time::Instant::now());
            let started = std::time::Instant::now();
            // (The queue's sender lives in `Shared`: once it is gone, so is this task.)
            let Some(this) = shared.upgrade() else {
                return;
            };
            let mut args = Vec::with_capacity(1 + batch.len() * 5);
            args.push(batch.len().to_string());
            for call in &mut batch {
                // The script's arguments are the caller's; it waits only for the answer.
                args.extend(call.args.iter_mut().map(std::mem::take));
            }
            let mut invocation = this.scripts.join.prepare_invoke();
            for key in this.keys(&event_id).in_script_order() {
                invocation.key(key);
            }
            invocation.arg(args);
            let mut conn = this.conn.clone();
            let answer: redis::RedisResult<Vec<String>> = invocation.invoke_async(&mut conn).await;
            if let Ok(mut pacer) = pacer.lock() {
                pacer.drained(batch.len(), started.elapsed().as_secs_f64() * 1_000.0);
            }
            match answer {
                Ok(values) if values.len() == batch.len() * JOIN_ANSWER => {
                    // Each caller takes its seven values; nothing is copied.
                    let mut values = values.into_iter();
                    for call in batch.drain(..) {
                        let _ = call
                            .reply
                            .send(Ok(values.by_ref().take(JOIN_ANSWER).collect()));
                    }
                }
                Ok(values) if values.first().map(String::as_str) == Some("missing") => {
                    for call in batch.drain(..) {
                        let _ = call.reply.send(Ok(vec!["missing".to_string()]));
                    }
                }
                Ok(values) => {
                    let detail = format!("the join script answered {} values", values.len());
                    for call in batch.drain(..) {
                        let _ = call.reply.send(Err(detail.clone()));
                    }
                }
                Err(e) => {
                    let detail = e.to_string();
                    for call in batch.drain(..) {
                        let _ = call.reply.send(Err(detail.clone()));
                    }
                }
            }
        }
    }

    /// Notes a stream opened (`+id`) or closed (`-id:ms`) on this node.
    pub fn note_stream(&self, event_id: &str, change: String) {
        if let Ok(mut streams) = self.streams.lock() {
            streams
                .entry(event_id.to_string())
                .or_default()
                .push(change);
        }
    }

    /// Tells Redis of the streams opened and closed on this node since the last flush.
    pub async fn flush_streams(&self, event_id: &str, now_ms: i64) -> ApiResult<()> {
        let changes = match self.streams.lock() {
            Ok(mut streams) => streams.remove(event_id).unwrap_or_default(),
            Err(_) => return Ok(()),
        };
        let node = [self.my_key(event_id)];
        let mut start = 0;
        while start < changes.len() {
            let end = (start + FLUSH_CHUNK).min(changes.len());
            let mut args = Vec::with_capacity(end - start + 2);
            args.push(now_ms.to_string());
            args.push(self.node.clone());
            args.extend_from_slice(&changes[start..end]);
            if let Err(e) = self
                .run::<i64>(&self.scripts.watchers, event_id, &node, &args)
                .await
            {
                // Keep what was not told, in order, ahead of anything newer.
                if let Ok(mut streams) = self.streams.lock() {
                    let mut rest = changes[start..].to_vec();
                    rest.extend(streams.remove(event_id).unwrap_or_default());
                    streams.insert(event_id.to_string(), rest);
                }
                return Err(e);
            }
            start = end;
        }
        Ok(())
    }

    /// Creates the event's queue in Redis from its database record, if it is not there.
    pub async fn init(&self, event: &EventRecord, now_ms: i64) -> ApiResult<()> {
        let codes = serde_json::to_string(&event.presale_codes).unwrap_or_else(|_| "[]".into());
        let args = [
            now_ms.to_string(),
            event.sale_state.as_db().to_string(),
            event.sale_phase.as_db().to_string(),
            event.sale_opens_at_ms.to_string(),
            event.admission.rate_per_minute.to_string(),
            event.admission.burst.to_string(),
            event.admission.max_active.to_string(),
            event.admission.pow_difficulty.to_string(),
            event.shuffle_seed.clone().unwrap_or_else(|| "-".into()),
            codes,
        ];
        let created: i64 = self.run(&self.scripts.init, &event.id, &[], &args).await?;
        // The automatic valve is not in the starting entry (its format predates it): an event
        // recorded with it turns it on right after, as the operator did.
        if created == 1 && event.admission.auto {
            self.set_admission(&event.id, &event.admission, now_ms)
                .await?;
        }
        Ok(())
    }

    /// Changes the admission valve (every node hears of it through the log).
    pub async fn set_admission(
        &self,
        event_id: &str,
        settings: &AdmissionSettings,
        now_ms: i64,
    ) -> ApiResult<()> {
        let args = [
            now_ms.to_string(),
            settings.rate_per_minute.to_string(),
            settings.burst.to_string(),
            settings.max_active.to_string(),
            settings.pow_difficulty.to_string(),
            if settings.auto { "1" } else { "0" }.to_string(),
            (crate::domain::valve::AutoValve::START as u32).to_string(),
        ];
        let _: String = self
            .run(&self.scripts.admission, event_id, &[], &args)
            .await?;
        Ok(())
    }

    /// Writes the automatic valve's limit this node tuned.
    pub async fn set_auto_limit(&self, event_id: &str, limit: u32) -> ApiResult<()> {
        let _: i64 = self
            .run(&self.scripts.valve, event_id, &[], &[limit.to_string()])
            .await?;
        Ok(())
    }

    /// A link of its own for a tailer's blocking reads (a blocked read on the shared link
    /// would hold up every other command behind it).
    pub async fn blocking_connection(&self) -> redis::RedisResult<RedisLink> {
        self.redis.own_link(BLOCK + Duration::from_secs(5)).await
    }

    /// Reads the log after `last`, waiting up to [`BLOCK`] for news.
    pub async fn read_log(
        conn: &mut RedisLink,
        key: &str,
        last: &str,
    ) -> redis::RedisResult<Option<StreamReadReply>> {
        let options = StreamReadOptions::default()
            .block(BLOCK.as_millis() as usize)
            .count(READ_BATCH);
        conn.xread_options(&[key], &[last], &options).await
    }
}

/// What one log entry says happened.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change {
    /// The queue's starting point (also after Redis lost its data: everything before is gone).
    Init {
        sale: SaleState,
        phase: SalePhase,
        opens_at_ms: i64,
        admission: AdmissionSettings,
        seed: Option<u64>,
        codes: Vec<String>,
    },
    Join {
        id: u64,
        tier: usize,
        seq: u64,
        iat: i64,
        fp: String,
        ip: Option<IpAddr>,
    },
    /// The pre-queue, shuffled by `seed`, takes sequence numbers from `base + 1`.
    Open {
        seed: u64,
        base: u64,
        count: u64,
    },
    Sale {
        sale: SaleState,
        phase: SalePhase,
        opens_at_ms: i64,
        codes: Vec<String>,
    },
    Admission(AdmissionSettings),
    Removed(Vec<u64>),
    Expired(Vec<u64>),
    Admitted {
        at_ms: i64,
        pass_exp_ms: i64,
        hold_deadline_ms: i64,
        ids: Vec<u64>,
    },
    Started(u64),
    /// The fan let their seats go: the no-show clock runs again, to this deadline.
    Stopped {
        id: u64,
        hold_deadline_ms: i64,
    },
    Alert(pb::Alert),
}

fn text(value: &Value) -> Option<String> {
    redis::from_redis_value_ref::<String>(value).ok()
}

fn ids(words: &[&str]) -> Option<Vec<u64>> {
    words.iter().map(|w| w.parse().ok()).collect()
}

fn settings(words: &[&str]) -> Option<AdmissionSettings> {
    Some(AdmissionSettings {
        rate_per_minute: words.first()?.parse().ok()?,
        burst: words.get(1)?.parse().ok()?,
        max_active: words.get(2)?.parse().ok()?,
        pow_difficulty: words.get(3)?.parse().ok()?,
        // Absent from entries written before the automatic valve existed.
        auto: words.get(4) == Some(&"1"),
    })
}

fn sale_change(payload: &str) -> Option<Change> {
    let mut parts = payload.splitn(4, ' ');
    Some(Change::Sale {
        sale: SaleState::from_db(parts.next()?)?,
        phase: SalePhase::from_db(parts.next()?)?,
        opens_at_ms: parts.next()?.parse().ok()?,
        codes: serde_json::from_str(parts.next()?).ok()?,
    })
}

/// Reads one log entry's fields (an opening carries its sale change too: the opening first).
pub(super) fn parse(fields: &HashMap<String, Value>) -> Option<Vec<Change>> {
    let mut changes = Vec::new();
    if let Some(payload) = fields.get("I").and_then(text) {
        let mut parts = payload.splitn(9, ' ');
        let sale = SaleState::from_db(parts.next()?)?;
        let phase = SalePhase::from_db(parts.next()?)?;
        let opens_at_ms = parts.next()?.parse().ok()?;
        let words: Vec<&str> = (0..4).filter_map(|_| parts.next()).collect();
        let admission = settings(&words)?;
        let seed = parts.next()?;
        let seed = u64::from_str_radix(seed, 16).ok();
        let codes = serde_json::from_str(parts.next()?).ok()?;
        changes.push(Change::Init {
            sale,
            phase,
            opens_at_ms,
            admission,
            seed,
            codes,
        });
    }
    if let Some(payload) = fields.get("J").and_then(text) {
        for join in payload.split(';') {
            let mut w = join.split(' ');
            changes.push(Change::Join {
                id: w.next()?.parse().ok()?,
                tier: w.next()?.parse::<usize>().ok()?.min(2),
                seq: w.next()?.parse().ok()?,
                iat: w.next()?.parse().ok()?,
                fp: w.next()?.to_string(),
                ip: w.next().and_then(|ip| ip.parse().ok()),
            });
        }
    }
    if let Some(payload) = fields.get("O").and_then(text) {
        let w: Vec<&str> = payload.split(' ').collect();
        changes.push(Change::Open {
            seed: u64::from_str_radix(w.first()?, 16).ok()?,
            base: w.get(1)?.parse().ok()?,
            count: w.get(2)?.parse().ok()?,
        });
    }
    if let Some(payload) = fields.get("M").and_then(text) {
        changes.push(sale_change(&payload)?);
    }
    if let Some(payload) = fields.get("D").and_then(text) {
        let w: Vec<&str> = payload.split(' ').collect();
        changes.push(Change::Admission(settings(&w)?));
    }
    if let Some(payload) = fields.get("R").and_then(text) {
        let w: Vec<&str> = payload.split(' ').collect();
        // The first word is the reason.
        changes.push(Change::Removed(ids(w.get(1..)?)?));
    }
    if let Some(payload) = fields.get("X").and_then(text) {
        let w: Vec<&str> = payload.split(' ').collect();
        changes.push(Change::Expired(ids(&w)?));
    }
    if let Some(payload) = fields.get("A").and_then(text) {
        let w: Vec<&str> = payload.split(' ').collect();
        changes.push(Change::Admitted {
            at_ms: w.first()?.parse().ok()?,
            pass_exp_ms: w.get(1)?.parse().ok()?,
            hold_deadline_ms: w.get(2)?.parse().ok()?,
            ids: ids(w.get(3..)?)?,
        });
    }
    if let Some(payload) = fields.get("S").and_then(text) {
        changes.push(Change::Started(payload.parse().ok()?));
    }
    if let Some(payload) = fields.get("U").and_then(text) {
        let (id, deadline) = payload.split_once(' ')?;
        changes.push(Change::Stopped {
            id: id.parse().ok()?,
            hold_deadline_ms: deadline.parse().ok()?,
        });
    }
    if let Some(payload) = fields.get("B").and_then(text) {
        let w: Vec<&str> = payload.split(' ').collect();
        let severity: i32 = w.get(1)?.parse().ok()?;
        changes.push(Change::Alert(pb::Alert {
            id: w.first()?.parse().ok()?,
            severity,
            sent_at_unix_ms: w.get(2)?.parse().ok()?,
            message: fields.get("m").and_then(text).unwrap_or_default(),
        }));
    }
    Some(changes)
}

/// A stream entry id ("ms-seq") as a comparable pair.
pub(super) fn log_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::BulkString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn log_entries_parse() {
        assert_eq!(
            parse(&fields(&[(
                "J",
                "7 1 0 1700000000000 abcd 10.0.0.1;8 0 3 1700000000001 ef -"
            )])),
            Some(vec![
                Change::Join {
                    id: 7,
                    tier: 1,
                    seq: 0,
                    iat: 1_700_000_000_000,
                    fp: "abcd".into(),
                    ip: "10.0.0.1".parse().ok(),
                },
                Change::Join {
                    id: 8,
                    tier: 0,
                    seq: 3,
                    iat: 1_700_000_000_001,
                    fp: "ef".into(),
                    ip: None,
                }
            ])
        );
        assert_eq!(
            parse(&fields(&[
                ("O", "00000000000000ff 3 2"),
                ("M", "OPEN GENERAL 5 [\"A B\"]")
            ])),
            Some(vec![
                Change::Open {
                    seed: 255,
                    base: 3,
                    count: 2
                },
                Change::Sale {
                    sale: SaleState::Open,
                    phase: SalePhase::General,
                    opens_at_ms: 5,
                    codes: vec!["A B".into()],
                }
            ])
        );
        assert_eq!(
            parse(&fields(&[("A", "10 20 30 4 5")])),
            Some(vec![Change::Admitted {
                at_ms: 10,
                pass_exp_ms: 20,
                hold_deadline_ms: 30,
                ids: vec![4, 5],
            }])
        );
        assert_eq!(
            parse(&fields(&[("R", "grace 1 2")])),
            Some(vec![Change::Removed(vec![1, 2])])
        );
        assert_eq!(
            parse(&fields(&[("B", "3 2 99"), ("m", "doors open at 9")])),
            Some(vec![Change::Alert(pb::Alert {
                id: 3,
                severity: 2,
                sent_at_unix_ms: 99,
                message: "doors open at 9".into(),
            })])
        );
        assert_eq!(
            parse(&fields(&[(
                "I",
                "NOT_OPEN PRESALE 0 600 10 500 0 - [\"FANCLUB\"]"
            )])),
            Some(vec![Change::Init {
                sale: SaleState::NotOpen,
                phase: SalePhase::Presale,
                opens_at_ms: 0,
                admission: AdmissionSettings {
                    rate_per_minute: 600,
                    burst: 10,
                    max_active: 500,
                    pow_difficulty: 0,
                    auto: false,
                },
                seed: None,
                codes: vec!["FANCLUB".into()],
            }])
        );
        assert_eq!(parse(&fields(&[("J", "x")])), None, "malformed");
    }
}
