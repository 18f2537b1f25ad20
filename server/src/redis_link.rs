//! The connection to Redis: one server, or a Redis Cluster.
//!
//! The waiting room, the shared rate limits and the abuse log talk to Redis through a
//! [`RedisLink`], which is either a connection to one server (reconnecting by itself) or a
//! cluster connection (which sends each command to the primary serving its key's slot, follows
//! the cluster when slots move, and reconnects by itself). Both speak the same commands, so
//! the code above them does not care which it has, with two rules a cluster imposes:
//!
//! - A script's keys must share one slot. Every key of an event carries the hash tag
//!   `{ev:<id>}`, so an event's scripts each run on one primary ([`key_slot`] is checked against
//!   the keys in the waiting room's tests).
//! - A pipeline must keep to one slot. Work over keys in different slots (a caller's address
//!   bucket and its fan bucket, the two ban sets) goes through [`RedisLink::per_slot`]: one
//!   pipeline per slot, sent at once, the answers put back in the order asked.
//!
//! A blocking read (the tailers' XREAD … BLOCK) gets a link of its own,
//! [`Redis::own_link`], so it never holds up the commands queued behind it on a shared
//! connection.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Script, Value};

use crate::config::redact_url;

/// A connection to Redis, cheap to clone (clones share the connection).
#[derive(Clone)]
pub enum RedisLink {
    /// One Redis server, reconnecting by itself.
    Node(ConnectionManager),
    /// A connection of its own to one server (for blocking reads).
    Own(MultiplexedConnection),
    /// A Redis Cluster: each command goes to the primary serving its key's slot.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisLink::Node(_) => "RedisLink::Node",
            RedisLink::Own(_) => "RedisLink::Own",
            RedisLink::Cluster(_) => "RedisLink::Cluster",
        })
    }
}

impl ConnectionLike for RedisLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisLink::Node(c) => c.req_packed_command(cmd),
            RedisLink::Own(c) => c.req_packed_command(cmd),
            RedisLink::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisLink::Node(c) => c.req_packed_commands(pipeline, offset, count),
            RedisLink::Own(c) => c.req_packed_commands(pipeline, offset, count),
            RedisLink::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisLink::Node(c) => c.get_db(),
            RedisLink::Own(c) => c.get_db(),
            RedisLink::Cluster(c) => c.get_db(),
        }
    }
}

impl RedisLink {
    /// Whether this talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisLink::Cluster(_))
    }

    /// Runs one command per item, pipelined, and returns the answers in the items' order.
    /// `key` names the key an item's command touches and `add` appends the command. On one
    /// server this is one pipeline; on a cluster, one pipeline per slot, sent at once. A
    /// pipeline whose scripts Redis does not know yet (`NOSCRIPT`: the first call, or a
    /// primary that restarted) loads `scripts` and is sent once more: a command refused that
    /// way did nothing.
    pub async fn per_slot<I, T: FromRedisValue>(
        &self,
        items: &[I],
        key: impl Fn(&I) -> &str,
        add: impl Fn(&mut Pipeline, &I),
        scripts: &[&Script],
    ) -> RedisResult<Vec<T>> {
        let mut groups: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            let slot = if self.is_cluster() {
                key_slot(key(item))
            } else {
                0
            };
            groups.entry(slot).or_default().push(i);
        }
        let calls = groups.into_values().map(|indices| {
            let mut pipe = redis::pipe();
            for &i in &indices {
                add(&mut pipe, &items[i]);
            }
            let mut link = self.clone();
            async move {
                let mut answer = pipe.query_async::<Vec<Value>>(&mut link).await;
                if matches!(&answer, Err(e) if e.code() == Some("NOSCRIPT")) && !scripts.is_empty()
                {
                    for script in scripts {
                        script.load_async(&mut link).await?;
                    }
                    answer = pipe.query_async::<Vec<Value>>(&mut link).await;
                }
                answer.map(|values| (indices, values))
            }
        });
        let mut answers: Vec<Option<Value>> = vec![None; items.len()];
        for (indices, values) in futures_util::future::try_join_all(calls).await? {
            if values.len() != indices.len() {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "a pipeline answered a different number of commands than it was sent",
                )));
            }
            for (i, value) in indices.into_iter().zip(values) {
                answers[i] = Some(value);
            }
        }
        answers
            .into_iter()
            .map(|value| T::from_redis_value(value.unwrap_or(Value::Nil)))
            .collect::<Result<Vec<T>, _>>()
            .map_err(Into::into)
    }
}

/// What a node needs to reach Redis: the client (to open links of its own) and the shared
/// link every other command goes through.
#[derive(Clone)]
pub struct Redis {
    client: Client,
    link: RedisLink,
}

#[derive(Clone)]
enum Client {
    Node(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("link", &self.link).finish()
    }
}

impl Redis {
    /// Connects to Redis at `url` (over TLS for `rediss://`, trusting `ca` or the system's
    /// authorities) and checks that it answers, within `timeout`. With `cluster`, `url` is one
    /// or more of the cluster's nodes, comma-separated; the client learns the rest from them.
    pub async fn connect(
        url: &str,
        cluster: bool,
        ca: Option<&Path>,
        timeout: Duration,
    ) -> anyhow::Result<Redis> {
        let urls: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let shown = urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(",");
        anyhow::ensure!(!urls.is_empty(), "the Redis URL is empty");
        anyhow::ensure!(
            cluster || urls.len() == 1,
            "the Redis URL {shown} names several servers: for a Redis Cluster give --redis-cluster too"
        );
        let certificates = match ca {
            None => None,
            Some(path) => {
                anyhow::ensure!(
                    urls.iter().all(|u| u.starts_with("rediss://")),
                    "--redis-ca is given but the Redis URL {shown} is not rediss:// (TLS)"
                );
                Some(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(crate::config::read_ca_pem(path, "--redis-ca")?),
                })
            }
        };
        let invalid =
            |e: redis::RedisError| anyhow::anyhow!("the Redis URL {shown} is not valid: {e}");
        let connecting = async {
            if cluster {
                let mut builder = ClusterClientBuilder::new(urls.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2);
                if let Some(certificates) = certificates {
                    builder = builder.certs(certificates);
                }
                let client = builder.build().map_err(invalid)?;
                let link = client.get_async_connection().await.map_err(|e| {
                    anyhow::anyhow!("cannot connect to the Redis Cluster at {shown}: {e}")
                })?;
                Ok::<_, anyhow::Error>(Redis {
                    client: Client::Cluster(Box::new(client)),
                    link: RedisLink::Cluster(link),
                })
            } else {
                let client = match certificates {
                    None => redis::Client::open(urls[0]),
                    Some(certificates) => redis::Client::build_with_tls(urls[0], certificates),
                }
                .map_err(invalid)?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                let link = client
                    .get_connection_manager_with_config(config)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {shown}: {e}"))?;
                Ok(Redis {
                    client: Client::Node(Box::new(client)),
                    link: RedisLink::Node(link),
                })
            }
        };
        let redis = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| {
                anyhow::anyhow!("cannot reach Redis at {shown}: no answer within {timeout:?}")
            })??;
        let mut link = redis.link.clone();
        let pong: String = redis::cmd("PING")
            .query_async(&mut link)
            .await
            .map_err(|e| anyhow::anyhow!("Redis at {shown} did not answer PING: {e}"))?;
        anyhow::ensure!(
            pong == "PONG",
            "Redis at {shown} answered PING with {pong:?}"
        );
        if !cluster {
            // A cluster's node answers a plain client until the first key of another node's
            // slot: say so at the start instead. (A server that refuses INFO is not asked.)
            let info: RedisResult<String> = redis::cmd("INFO")
                .arg("cluster")
                .query_async(&mut link)
                .await;
            anyhow::ensure!(
                !info.is_ok_and(|info| info.lines().any(|l| l.trim() == "cluster_enabled:1")),
                "Redis at {shown} is a node of a Redis Cluster: give --redis-cluster too \
                 (and, if you like, more of its nodes, comma-separated)"
            );
        }
        if cluster {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut link)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{shown} does not answer as a Redis Cluster (CLUSTER INFO): {e}"
                    )
                })?;
            anyhow::ensure!(
                info.lines().any(|l| l.trim() == "cluster_state:ok"),
                "the Redis Cluster at {shown} is not serving every slot (CLUSTER INFO says {})",
                info.lines()
                    .find(|l| l.starts_with("cluster_state"))
                    .unwrap_or("no cluster_state")
                    .trim()
            );
        }
        Ok(redis)
    }

    /// The link every command but blocking reads goes through.
    pub fn link(&self) -> RedisLink {
        self.link.clone()
    }

    /// A link of its own, whose answers may take up to `response_timeout` (a blocking read
    /// on the shared link would hold up every command behind it).
    pub async fn own_link(&self, response_timeout: Duration) -> RedisResult<RedisLink> {
        match &self.client {
            Client::Node(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(5)))
                    .set_response_timeout(Some(response_timeout));
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(RedisLink::Own)
            }
            Client::Cluster(client) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(Duration::from_secs(5))
                    .set_response_timeout(response_timeout);
                client
                    .get_async_connection_with_config(config)
                    .await
                    .map(RedisLink::Cluster)
            }
        }
    }
}

/// The Redis Cluster slot of a key: CRC16/XMODEM of its hash tag (the text between the first
/// `{` and the next `}`, when not empty), or of the whole key, modulo 16,384.
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match key.find('{') {
        Some(open) => match key[open + 1..].find('}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    let mut crc: u16 = 0;
    for byte in hashed {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

#[cfg(test)]
mod tests {
    use super::key_slot;

    #[test]
    fn slots_are_the_clusters() {
        // Known slots from the Redis Cluster specification's examples.
        assert_eq!(key_slot("123456789"), 0x31C3);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        assert_eq!(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
        assert_ne!(
            key_slot("foo{}{bar}"),
            key_slot("bar"),
            "an empty tag hashes the key"
        );
        assert_eq!(key_slot("foo{{bar}}zap"), key_slot("{bar"));
        assert_eq!(key_slot("foo{bar}{zap}"), key_slot("bar"));
    }
}
