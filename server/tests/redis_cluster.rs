//! The waiting room on a real Redis Cluster of three primaries (`.ci/redis-cluster`): each
//! event's keys live on one slot, events spread over the primaries, work over several slots
//! comes back in the order asked, and a cluster given as a single server (or the other way
//! round) stops the start with a line that says what to give.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{Backend, HALL, TestServer, create_event, open};
use taquilla_proto::v1 as pb;
use taquilla_server::domain::clock::SystemClock;
use taquilla_server::redis_link::{Redis, key_slot};
use taquilla_test_support::{RedisKind, RedisNamespace, redis_cluster_url, redis_link, redis_url};

/// The cluster's primaries (`host:port`), from `CLUSTER NODES`.
async fn primaries() -> Vec<String> {
    let first = redis_cluster_url()
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    let client = redis::Client::open(first).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("a cluster node answers");
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER NODES");
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.nth(1)?.split('@').next()?.to_string();
            let flags = fields.next()?;
            flags.split(',').any(|f| f == "master").then_some(address)
        })
        .collect()
}

/// The keys under `pattern` that one primary holds.
async fn keys_on(primary: &str, pattern: &str) -> Vec<String> {
    let client = redis::Client::open(format!("redis://{primary}")).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("a primary answers");
    redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await
        .expect("KEYS")
}

/// Six events sold through one cluster: every key of an event is on one primary and one slot
/// (its scripts never cross slots), and the events between them use more than one primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_events_keys_share_a_slot_and_events_spread_over_the_primaries() {
    let server = TestServer::start(Backend::RedisCluster).await;
    let namespace = server.redis.as_ref().expect("a namespace").name.clone();
    let events: Vec<String> = (1..=6).map(|i| format!("lux-{i}")).collect();
    for event in &events {
        create_event(&server, event, HALL, 4).await;
        open(&server, event, pb::SalePhase::General, &[]).await;
        server
            .waiting_room()
            .join(pb::JoinRequest {
                event_id: event.clone(),
                fingerprint: format!("fan-of-{event}"),
                ..Default::default()
            })
            .await
            .expect("join");
    }
    let primaries = primaries().await;
    assert_eq!(primaries.len(), 3, "three primaries: {primaries:?}");
    // event → the primaries and slots its keys were found on.
    let mut homes: BTreeMap<String, (BTreeSet<String>, BTreeSet<u16>)> = BTreeMap::new();
    for primary in &primaries {
        for key in keys_on(primary, &format!("{namespace}:*")).await {
            let Some(event) = key
                .split_once("{ev:")
                .and_then(|(_, rest)| rest.split_once('}'))
                .map(|(event, _)| event.to_string())
            else {
                continue;
            };
            let home = homes.entry(event).or_default();
            home.0.insert(primary.clone());
            home.1.insert(key_slot(&key));
        }
    }
    for event in &events {
        let (on, slots) = homes
            .get(event)
            .unwrap_or_else(|| panic!("{event} has keys on the cluster: {homes:?}"));
        assert_eq!(on.len(), 1, "{event}'s keys are on one primary: {on:?}");
        assert_eq!(slots.len(), 1, "{event}'s keys are on one slot: {slots:?}");
    }
    let used: BTreeSet<&String> = homes.values().flat_map(|(on, _)| on).collect();
    assert!(
        used.len() >= 2,
        "six events spread over the primaries: {homes:?}"
    );
    server.stop().await;
}

/// Commands over keys of many slots, pipelined per slot, come back in the order asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_over_many_slots_comes_back_in_order() {
    let namespace = RedisNamespace::of(RedisKind::Cluster);
    let link = redis_link(RedisKind::Cluster).await;
    let keys: Vec<String> = (0..40)
        .map(|i| format!("{}:k{i}", namespace.name))
        .collect();
    let slots: BTreeSet<u16> = keys.iter().map(|k| key_slot(k)).collect();
    assert!(slots.len() > 30, "the keys are spread over slots");
    let set: Vec<redis::Value> = link
        .per_slot(
            &keys,
            String::as_str,
            |pipe, key| {
                pipe.set(key, format!("value of {key}"));
            },
            &[],
        )
        .await
        .expect("set on every primary");
    assert_eq!(set.len(), keys.len());
    let read: Vec<String> = link
        .per_slot(
            &keys,
            String::as_str,
            |pipe, key| {
                pipe.get(key);
            },
            &[],
        )
        .await
        .expect("read from every primary");
    let expected: Vec<String> = keys.iter().map(|k| format!("value of {k}")).collect();
    assert_eq!(read, expected);
}

/// A cluster given as one server, or one server given as a cluster, is refused at the start
/// in one line that says what to give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_and_a_single_server_are_not_mistaken_for_each_other() {
    let timeout = std::time::Duration::from_secs(5);
    let first_node = redis_cluster_url()
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    let refused = Redis::connect(&first_node, false, None, timeout)
        .await
        .expect_err("a cluster's node as a single server");
    assert!(
        refused.to_string().contains("give --redis-cluster"),
        "{refused}"
    );
    let refused = Redis::connect(&redis_cluster_url(), false, None, timeout)
        .await
        .expect_err("several servers without --redis-cluster");
    assert!(refused.to_string().contains("--redis-cluster"), "{refused}");
    let refused = Redis::connect(&redis_url(), true, None, timeout)
        .await
        .expect_err("a single server as a cluster");
    assert!(!refused.to_string().contains('\n'), "one line: {refused}");
    // The server's own start says it too.
    let started = TestServer::try_start_with(Backend::RedisCluster, Arc::new(SystemClock), |c| {
        c.redis_cluster = false;
        c.redis_url = Some(first_node.clone());
    })
    .await;
    let Err(error) = started else {
        panic!("a server on a cluster's node without --redis-cluster started");
    };
    assert!(
        format!("{error:#}").contains("--redis-cluster"),
        "{error:#}"
    );
}
