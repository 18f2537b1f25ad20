//! The rate limits and abuse flags that nodes share through Redis: a limit spent across nodes
//! holds on every node, a refused call spends nothing from the other limit, and a fan who
//! spreads failures over nodes is flagged on all of them. Each runs on one Redis server and on
//! a Redis Cluster (where a caller's address bucket and its fan bucket are on different slots).

use std::net::IpAddr;

use taquilla_server::limits::{AbuseLog, Rate, RateLimiter};
use taquilla_test_support::{RedisKind, RedisNamespace, redis_link};

/// Runs a test body (`async fn name(kind: RedisKind)`) on one Redis server and on the cluster.
macro_rules! on_redis_and_cluster {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn redis() {
                    super::$name(super::RedisKind::Node).await
                }
                #[tokio::test]
                async fn redis_cluster() {
                    super::$name(super::RedisKind::Cluster).await
                }
            }
        )*
    };
}

on_redis_and_cluster!(
    a_refused_call_spends_nothing_in_redis,
    shared_buckets_hold_across_nodes,
    a_fan_spreading_failures_over_nodes_is_flagged_on_every_node,
);

/// A fan over its own limit keeps calling: the refused calls must not also drain the
/// address's bucket, or one noisy fan would lock out everyone behind the same address.
async fn a_refused_call_spends_nothing_from_the_other_limit(limiter: &RateLimiter) {
    let ip = Some(IpAddr::from([10, 0, 0, 9]));
    // The fan: 18/min, burst 3. The address: 60/min, burst 10.
    for i in 0..3 {
        assert_eq!(limiter.check("noisy", ip, 0).await, Ok(()), "call {i}");
    }
    for _ in 0..20 {
        assert!(limiter.check("noisy", ip, 0).await.is_err());
    }
    // The address spent 3 of its 10: seven other fans still get through.
    for fan in 0..7 {
        assert_eq!(
            limiter.check(&format!("quiet-{fan}"), ip, 0).await,
            Ok(()),
            "fan {fan}"
        );
    }
    assert!(limiter.check("quiet-7", ip, 0).await.is_err());
}

#[tokio::test]
async fn a_refused_call_spends_nothing_locally() {
    let limiter = RateLimiter::local("sales", Rate::per_minute(60), Rate::per_minute(18));
    a_refused_call_spends_nothing_from_the_other_limit(&limiter).await;
}

async fn a_refused_call_spends_nothing_in_redis(kind: RedisKind) {
    let connection = redis_link(kind).await;
    let namespace = RedisNamespace::of(kind);
    let limiter = RateLimiter::shared(
        "sales",
        Rate::per_minute(60),
        Rate::per_minute(18),
        connection,
        &namespace.name,
    );
    a_refused_call_spends_nothing_from_the_other_limit(&limiter).await;
}

async fn shared_buckets_hold_across_nodes(kind: RedisKind) {
    let connection = redis_link(kind).await;
    let namespace = RedisNamespace::of(kind);
    // Two nodes, one Redis: the fan's 6/min (burst 3) is spent across both.
    let a = RateLimiter::shared(
        "sales",
        Rate::per_minute(0),
        Rate::per_minute(6),
        connection.clone(),
        &namespace.name,
    );
    let b = RateLimiter::shared(
        "sales",
        Rate::per_minute(0),
        Rate::per_minute(6),
        connection,
        &namespace.name,
    );
    assert_eq!(a.check("fan", None, 0).await, Ok(()));
    assert_eq!(b.check("fan", None, 0).await, Ok(()));
    assert_eq!(a.check("fan", None, 0).await, Ok(()));
    let wait = b.check("fan", None, 0).await.expect_err("limit spent");
    // A token every 10 s; a few ms have passed since the burst.
    assert!((9_000..=10_000).contains(&wait), "{wait}");
    assert!(a.check("fan", None, 0).await.is_err());
    assert_eq!(a.check("other", None, 0).await, Ok(()));
}

async fn a_fan_spreading_failures_over_nodes_is_flagged_on_every_node(kind: RedisKind) {
    let connection = redis_link(kind).await;
    let namespace = RedisNamespace::of(kind);
    let mut a = AbuseLog::new(5);
    a.share(connection.clone(), &namespace.name);
    let mut b = AbuseLog::new(5);
    b.share(connection, &namespace.name);
    let now = || {
        taquilla_server::domain::clock::Clock::now_ms(&taquilla_server::domain::clock::SystemClock)
    };
    // Two failures on one node, two on the other: under the threshold everywhere.
    for log in [&a, &b, &a, &b] {
        assert_eq!(log.failed_hold("ev", "sly", now()).await, None);
    }
    assert!(a.flagged("ev", now()).await.is_empty());
    // The fifth, on either node, flags the fan for the whole sale.
    let flag = b.failed_hold("ev", "sly", now()).await.expect("flagged");
    assert_eq!(flag.failures, 5);
    for log in [&a, &b] {
        let flags = log.flagged("ev", now()).await;
        assert_eq!(flags.len(), 1, "{flags:?}");
        assert_eq!(flags[0].fan, "sly");
        assert_eq!(flags[0].failures, 5);
    }
    assert!(a.flagged("other", now()).await.is_empty());
    // Another fan's failures are its own.
    assert_eq!(a.failed_hold("ev", "calm", now()).await, None);
    assert_eq!(b.flagged("ev", now()).await.len(), 1);
}
