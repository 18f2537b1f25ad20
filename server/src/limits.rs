//! Rate limits and abuse flagging.
//!
//! [`RateLimiter`] is a token bucket per client address and per key (a fingerprint on `Join`, the
//! fan a pass names on the sales RPCs). Each bucket refills at its rate per minute up to a burst
//! of ten seconds' worth (at least 3). The buckets live in the node's memory, or with
//! `--shared-rate-limits` in Redis, where one Lua script per bucket takes a token atomically
//! against Redis's own clock, so a limit holds across every node of a sale rather than per
//! node. A refused call learns how long until a token is due: the `retry-after-ms` of its
//! `RESOURCE_EXHAUSTED`. If Redis does not answer, the call is let through (limits protect the
//! service; they are not worth refusing paying fans over) and a warning is logged.
//!
//! [`AbuseLog`] is a sliding-window log per event and fan of failed holds: a fan with
//! `threshold` failures inside the last minute is flagged (and stays listed for ten minutes
//! after its last flagged failure) for operators in `GetStats`, who may ban it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use crate::domain::queue::TokenBucket;
use crate::redis_link::RedisLink;
use redis::Value;

/// A limit: so many calls per minute; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
}

impl Rate {
    pub fn per_minute(per_minute: u32) -> Rate {
        Rate { per_minute }
    }

    /// Ten seconds' worth of calls, at least 3.
    pub fn burst(self) -> u32 {
        (self.per_minute / 6).max(3)
    }

    fn unlimited(self) -> bool {
        self.per_minute == 0
    }
}

#[derive(Debug, Default)]
struct LocalBuckets {
    buckets: HashMap<String, TokenBucket>,
    last_prune_ms: i64,
}

impl LocalBuckets {
    /// Takes a token from every one of `wanted`'s buckets if each has one, or none and says
    /// how long until all would: a call refused by one limit spends nothing from the others.
    fn take_all(&mut self, wanted: Vec<(String, Rate)>, now_ms: i64) -> u64 {
        let mut wait = 0;
        for (key, rate) in &wanted {
            let bucket = self
                .buckets
                .entry(key.clone())
                .or_insert_with(|| TokenBucket::full(rate.per_minute, rate.burst(), now_ms));
            wait = wait.max(bucket.wait_ms(now_ms));
        }
        if wait > 0 {
            return wait;
        }
        for (key, _) in &wanted {
            if let Some(bucket) = self.buckets.get_mut(key) {
                bucket.take(1, now_ms);
            }
        }
        0
    }

    /// Forgets callers whose buckets are full again: they owe nothing.
    fn prune(&mut self, now_ms: i64) {
        if now_ms - self.last_prune_ms > 10_000 {
            self.buckets.retain(|_, b| !b.is_full(now_ms));
            self.last_prune_ms = now_ms;
        }
    }
}

/// Takes one token from a bucket kept in a Redis hash, refilled by Redis's clock. Returns 0,
/// or the milliseconds until a token is due. KEYS[1]: the bucket. ARGV: rate per minute, burst.
const TAKE_SCRIPT: &str = r#"
local rate = tonumber(ARGV[1]) / 60000
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
if tokens >= 1 then
  tokens = tokens - 1
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
  return 0
end
return math.max(1, math.ceil((1 - tokens) / rate))
"#;

/// Gives one token back to a bucket kept in a Redis hash (a call another limit refused).
/// KEYS[1]: the bucket. ARGV[1]: its burst.
const REFUND_SCRIPT: &str = r#"
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
if tokens then
  redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(tonumber(ARGV[1]), tokens + 1)))
end
return 0
"#;

#[derive(Debug)]
enum Buckets {
    Local(Mutex<LocalBuckets>),
    Redis {
        connection: RedisLink,
        prefix: String,
        script: redis::Script,
        refund: redis::Script,
    },
}

/// Token buckets per client address and per key for one kind of call.
#[derive(Debug)]
pub struct RateLimiter {
    /// What is limited, in Redis keys and logs ("join", "sales").
    what: &'static str,
    per_ip: Rate,
    per_key: Rate,
    buckets: Buckets,
}

impl RateLimiter {
    /// Buckets in this node's memory.
    pub fn local(what: &'static str, per_ip: Rate, per_key: Rate) -> RateLimiter {
        RateLimiter {
            what,
            per_ip,
            per_key,
            buckets: Buckets::Local(Mutex::new(LocalBuckets::default())),
        }
    }

    /// Buckets in Redis under `namespace`, shared by every node using it.
    pub fn shared(
        what: &'static str,
        per_ip: Rate,
        per_key: Rate,
        connection: RedisLink,
        namespace: &str,
    ) -> RateLimiter {
        RateLimiter {
            what,
            per_ip,
            per_key,
            buckets: Buckets::Redis {
                connection,
                prefix: format!("{namespace}:rl:{what}"),
                script: redis::Script::new(TAKE_SCRIPT),
                refund: redis::Script::new(REFUND_SCRIPT),
            },
        }
    }

    /// Counts a call from `ip` for `key`: `Ok`, or the milliseconds until the caller may call
    /// again. `now_ms` is used by the local buckets (Redis uses its own clock).
    pub async fn check(&self, key: &str, ip: Option<IpAddr>, now_ms: i64) -> Result<(), u64> {
        let mut wanted: Vec<(String, Rate)> = Vec::with_capacity(2);
        if let Some(ip) = ip
            && !self.per_ip.unlimited()
        {
            wanted.push((format!("ip:{ip}"), self.per_ip));
        }
        if !self.per_key.unlimited() {
            wanted.push((format!("k:{key}"), self.per_key));
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let wait = match &self.buckets {
            Buckets::Local(local) => {
                let Ok(mut local) = local.lock() else {
                    return Ok(());
                };
                local.prune(now_ms);
                local.take_all(wanted, now_ms)
            }
            Buckets::Redis {
                connection,
                prefix,
                script,
                refund,
            } => {
                // The address's bucket and the key's live in different Redis Cluster slots:
                // one script each, per slot (one pipeline on a single server).
                let buckets: Vec<(String, Rate)> = wanted
                    .into_iter()
                    .map(|(bucket, rate)| (format!("{prefix}:{bucket}"), rate))
                    .collect();
                let answer = connection
                    .per_slot::<_, u64>(
                        &buckets,
                        |(key, _)| key,
                        |pipe, (key, rate)| {
                            pipe.invoke_script(
                                script.key(key).arg(rate.per_minute).arg(rate.burst()),
                            );
                        },
                        &[script],
                    )
                    .await;
                match answer {
                    Ok(waits) => {
                        let wait = waits.iter().copied().max().unwrap_or(0);
                        if wait > 0 {
                            // Refused by one limit: give back what the others took (one
                            // script cannot decide for keys on several slots at once).
                            let taken: Vec<(String, Rate)> = buckets
                                .into_iter()
                                .zip(&waits)
                                .filter(|(_, wait)| **wait == 0)
                                .map(|(bucket, _)| bucket)
                                .collect();
                            let given = connection
                                .per_slot::<_, Value>(
                                    &taken,
                                    |(key, _)| key,
                                    |pipe, (key, rate)| {
                                        pipe.invoke_script(refund.key(key).arg(rate.burst()));
                                    },
                                    &[refund],
                                )
                                .await;
                            if let Err(e) = given {
                                tracing::debug!(what = self.what, error = %e, "a refused call's token was not given back");
                            }
                        }
                        wait
                    }
                    Err(e) => {
                        tracing::warn!(what = self.what, error = %e, "shared rate limits unavailable; letting the call through");
                        0
                    }
                }
            }
        };
        if wait == 0 { Ok(()) } else { Err(wait) }
    }
}

/// How long a flag stays listed after the fan's last flagged failure.
const FLAG_KEPT_MS: i64 = 600_000;
const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The fan (the hash of its fingerprint).
    pub fan: String,
    /// Failures inside the window when last flagged.
    pub failures: usize,
    /// When last flagged (Unix ms).
    pub at_ms: i64,
}

impl Flag {
    /// Why, for operators.
    pub fn reason(&self) -> String {
        format!("{} failed holds in a minute", self.failures)
    }
}

#[derive(Debug, Default)]
struct Log {
    /// Failure times per (event, fan), oldest first, within the window.
    failures: HashMap<(String, String), VecDeque<i64>>,
    /// Flags per event, by fan.
    flagged: HashMap<String, HashMap<String, Flag>>,
    last_prune_ms: i64,
}

/// Records a failed hold in a fan's window (a sorted set of failure times, Redis's clock) and,
/// at the threshold, flags the fan in the event's hash of flags. KEYS: the fan's window, the
/// event's flags. ARGV: window ms, threshold, fan, ms a flag is kept, a unique member, most
/// failures remembered per fan. Returns {failures (0: not flagged), now, newly flagged}.
const FAILED_HOLD_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[5])
local n = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[6])
if n > cap then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - cap - 1)
  n = cap
end
redis.call('PEXPIRE', KEYS[1], window)
if n < tonumber(ARGV[2]) then
  return {0, now, 0}
end
local newly = redis.call('HEXISTS', KEYS[2], ARGV[3]) == 0
redis.call('HSET', KEYS[2], ARGV[3], n .. ':' .. now)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return {n, now, newly and 1 or 0}
"#;

/// The log kept in Redis, shared by every node of a sale.
#[derive(Debug)]
struct SharedLog {
    connection: RedisLink,
    namespace: String,
    script: redis::Script,
}

impl SharedLog {
    fn flags_key(&self, event_id: &str) -> String {
        format!("{}:{{ev:{event_id}}}:abuse:flags", self.namespace)
    }

    async fn failed_hold(
        &self,
        event_id: &str,
        fan: &str,
        threshold: usize,
    ) -> redis::RedisResult<(usize, i64, bool)> {
        let mut connection = self.connection.clone();
        let (failures, now, newly): (i64, i64, i64) = self
            .script
            .key(format!(
                "{}:{{ev:{event_id}}}:abuse:fan:{fan}",
                self.namespace
            ))
            .key(self.flags_key(event_id))
            .arg(WINDOW_MS)
            .arg(threshold)
            .arg(fan)
            .arg(FLAG_KEPT_MS)
            .arg(uuid::Uuid::new_v4().simple().to_string())
            .arg(threshold.saturating_mul(4).max(1_000))
            .invoke_async(&mut connection)
            .await?;
        Ok((usize::try_from(failures).unwrap_or(0), now, newly == 1))
    }

    async fn flagged(&self, event_id: &str) -> redis::RedisResult<Vec<Flag>> {
        let mut connection = self.connection.clone();
        let entries: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.flags_key(event_id))
            .query_async(&mut connection)
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|(fan, value)| {
                let (failures, at_ms) = value.split_once(':')?;
                Some(Flag {
                    fan,
                    failures: failures.parse().ok()?,
                    at_ms: at_ms.parse().ok()?,
                })
            })
            .collect())
    }
}

/// A sliding-window log of failed holds per event and fan: in this node's memory, or in Redis
/// for every node of a sale (so a fan cannot spread its failures over nodes to stay under the
/// threshold).
#[derive(Debug)]
pub struct AbuseLog {
    threshold: usize,
    log: Mutex<Log>,
    shared: Option<SharedLog>,
}

impl AbuseLog {
    /// Flags a fan with `threshold` failed holds inside a minute; 0 flags nobody.
    pub fn new(threshold: u32) -> AbuseLog {
        AbuseLog {
            threshold: threshold as usize,
            log: Mutex::new(Log::default()),
            shared: None,
        }
    }

    /// Keeps the log in Redis under `namespace`, shared with every node using it. If Redis
    /// does not answer, failures are logged in this node's memory meanwhile.
    pub fn share(&mut self, connection: RedisLink, namespace: &str) {
        self.shared = Some(SharedLog {
            connection,
            namespace: namespace.to_string(),
            script: redis::Script::new(FAILED_HOLD_SCRIPT),
        });
    }

    /// Records a failed hold. Returns the flag if the fan is (still) over the threshold.
    pub async fn failed_hold(&self, event_id: &str, fan: &str, now_ms: i64) -> Option<Flag> {
        if self.threshold == 0 {
            return None;
        }
        if let Some(shared) = &self.shared {
            match shared.failed_hold(event_id, fan, self.threshold).await {
                Ok((0, _, _)) => return None,
                Ok((failures, at_ms, newly)) => {
                    if newly {
                        tracing::warn!(
                            event_id,
                            fan,
                            failures,
                            "fan flagged: many failed holds in a minute"
                        );
                    }
                    return Some(Flag {
                        fan: fan.to_string(),
                        failures,
                        at_ms,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "shared abuse log unavailable; logging in this node");
                }
            }
        }
        self.failed_hold_here(event_id, fan, now_ms)
    }

    fn failed_hold_here(&self, event_id: &str, fan: &str, now_ms: i64) -> Option<Flag> {
        let mut log = self.log.lock().ok()?;
        if now_ms - log.last_prune_ms > 10_000 {
            log.failures
                .retain(|_, times| times.back().is_some_and(|t| now_ms - t < WINDOW_MS));
            for flags in log.flagged.values_mut() {
                flags.retain(|_, f| now_ms - f.at_ms < FLAG_KEPT_MS);
            }
            log.flagged.retain(|_, flags| !flags.is_empty());
            log.last_prune_ms = now_ms;
        }
        let times = log
            .failures
            .entry((event_id.to_string(), fan.to_string()))
            .or_default();
        while times.front().is_some_and(|t| now_ms - t >= WINDOW_MS) {
            times.pop_front();
        }
        times.push_back(now_ms);
        // Enough to tell how far over the threshold a fan is, bounded per fan.
        if times.len() > self.threshold.saturating_mul(4).max(1_000) {
            times.pop_front();
        }
        let failures = times.len();
        if failures < self.threshold {
            return None;
        }
        let flag = Flag {
            fan: fan.to_string(),
            failures,
            at_ms: now_ms,
        };
        let newly = log
            .flagged
            .entry(event_id.to_string())
            .or_default()
            .insert(fan.to_string(), flag.clone())
            .is_none();
        if newly {
            tracing::warn!(
                event_id,
                fan,
                failures,
                "fan flagged: many failed holds in a minute"
            );
        }
        Some(flag)
    }

    /// The fans flagged in an event recently, most failures first.
    pub async fn flagged(&self, event_id: &str, now_ms: i64) -> Vec<Flag> {
        let mut flags: Vec<Flag> = match self.log.lock() {
            Ok(log) => log
                .flagged
                .get(event_id)
                .map(|flags| flags.values().cloned().collect())
                .unwrap_or_default(),
            Err(_) => vec![],
        };
        if let Some(shared) = &self.shared {
            match shared.flagged(event_id).await {
                Ok(everywhere) => {
                    // Flags logged here while Redis was out, and those of every node.
                    for flag in everywhere {
                        match flags.iter_mut().find(|f| f.fan == flag.fan) {
                            Some(known) if known.at_ms >= flag.at_ms => {}
                            Some(known) => *known = flag,
                            None => flags.push(flag),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "shared abuse log unavailable; showing this node's flags");
                }
            }
        }
        flags.retain(|f| now_ms - f.at_ms < FLAG_KEPT_MS);
        flags.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.fan.cmp(&b.fan)));
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_buckets_allow_a_burst_then_the_rate() {
        let limiter = RateLimiter::local("sales", Rate::per_minute(0), Rate::per_minute(60));
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        // Burst of 10 (ten seconds' worth of 60/min).
        for i in 0..10 {
            assert_eq!(limiter.check("fan-a", ip, 0).await, Ok(()), "call {i}");
        }
        assert_eq!(limiter.check("fan-a", ip, 0).await, Err(1_000));
        // Another fan has its own bucket.
        assert_eq!(limiter.check("fan-b", ip, 0).await, Ok(()));
        // One token a second.
        assert_eq!(limiter.check("fan-a", ip, 500).await, Err(500));
        assert_eq!(limiter.check("fan-a", ip, 1_000).await, Ok(()));
        assert_eq!(limiter.check("fan-a", ip, 1_000).await, Err(1_000));
    }

    #[tokio::test]
    async fn the_address_limit_covers_every_key_behind_it() {
        let limiter = RateLimiter::local("sales", Rate::per_minute(18), Rate::per_minute(0));
        let ip = Some(IpAddr::from([10, 0, 0, 7]));
        for fan in 0..3 {
            assert_eq!(limiter.check(&format!("f{fan}"), ip, 0).await, Ok(()));
        }
        assert!(limiter.check("f9", ip, 0).await.is_err());
        // Another address is not affected; no address (a test transport) is not limited.
        assert_eq!(
            limiter
                .check("f9", Some(IpAddr::from([10, 0, 0, 8])), 0)
                .await,
            Ok(())
        );
        assert_eq!(limiter.check("f9", None, 0).await, Ok(()));
    }

    #[tokio::test]
    async fn failures_inside_a_minute_flag_a_fan() {
        let log = AbuseLog::new(5);
        for i in 0..4 {
            assert_eq!(log.failed_hold("ev", "fan", i * 10_000).await, None);
        }
        // The first failure (at 0) has left the window by 60 s: four inside it, not flagged.
        assert_eq!(log.failed_hold("ev", "fan", 60_000).await, None);
        let flag = log.failed_hold("ev", "fan", 61_000).await.expect("flagged");
        assert_eq!(flag.failures, 5);
        assert_eq!(flag.reason(), "5 failed holds in a minute");
        assert_eq!(log.flagged("ev", 61_000).await, vec![flag]);
        assert!(log.flagged("other-event", 61_000).await.is_empty());
        // Another fan with few failures is not listed.
        log.failed_hold("ev", "calm", 61_000).await;
        assert_eq!(log.flagged("ev", 61_000).await.len(), 1);
        // The flag lapses ten minutes after the last flagged failure.
        assert_eq!(log.flagged("ev", 61_000 + 599_999).await.len(), 1);
        assert!(log.flagged("ev", 61_000 + 600_000).await.is_empty());
    }

    #[tokio::test]
    async fn threshold_zero_flags_nobody() {
        let log = AbuseLog::new(0);
        for i in 0..100 {
            assert_eq!(log.failed_hold("ev", "fan", i).await, None);
        }
        assert!(log.flagged("ev", 100).await.is_empty());
    }
}
