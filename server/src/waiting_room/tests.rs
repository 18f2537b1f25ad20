//! The waiting room's tests, on both backends where the rules are shared.

use super::*;
use crate::domain::clock::ManualClock;
use crate::domain::layout::VenueSpec;
use taquilla_proto::fairness;
use taquilla_test_support::{RedisKind, RedisNamespace};

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
        shuffle_secret: Some(taquilla_proto::fairness::ShuffleSecret {
            seed: [1; 32],
            nonce: [2; 32],
        }),
        presale_codes: vec!["FANCLUB".into(), "VIP-GOLD".into()],
        sections: vec![],
    }
}

#[derive(Debug, Clone, Copy)]
pub(in crate::waiting_room) enum Backend {
    Embedded,
    Redis,
    /// A Redis Cluster of three primaries.
    Cluster,
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

async fn redis_node(clock: &ManualClock, namespace: &RedisNamespace) -> Arc<WaitingRoom> {
    let cluster = namespace.kind == RedisKind::Cluster;
    let redis =
        crate::redis_link::Redis::connect(&namespace.url, cluster, None, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "Redis must be reachable at {} for tests: {e}",
                    namespace.url
                )
            });
    Arc::new(WaitingRoom::with_redis(
        Arc::new(clock.clone()),
        signer(),
        RoomTimings::default(),
        limits(),
        redis,
        &namespace.name,
    ))
}

/// Which Redis a Redis backend is (the embedded one counts as one server: it has none).
fn redis_kind(backend: Backend) -> RedisKind {
    match backend {
        Backend::Cluster => RedisKind::Cluster,
        Backend::Embedded | Backend::Redis => RedisKind::Node,
    }
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
        Backend::Redis | Backend::Cluster => {
            let namespace = RedisNamespace::of(redis_kind(backend));
            Under {
                room: redis_node(clock, &namespace).await,
                _namespace: Some(namespace),
            }
        }
    }
}

/// Makes `mod name` with one test per `test => Backend` pair (each with its attributes), each
/// running the async test body `name(backend)`.
macro_rules! on_backends {
    ($name:ident: $($(#[$attr:meta])* $test:ident => $backend:ident),*) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$attr])*
                async fn $test() {
                    super::$name(super::Backend::$backend).await
                }
            )*
        }
    };
}

/// Runs a test body on the embedded room, on Redis and on a Redis Cluster.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $(
            on_backends!($name:
                embedded => Embedded,
                #[ignore = "needs Redis at TAQUILLA_TEST_REDIS_URL; the suite runs it (cargo test -- --include-ignored)"]
                redis => Redis,
                #[ignore = "needs a Redis Cluster at TAQUILLA_TEST_REDIS_CLUSTER_URL (.ci/redis-cluster); the suite runs it (cargo test -- --include-ignored)"]
                redis_cluster => Cluster
            );
        )*
    };
}

/// Runs a test of several nodes on one Redis server and on a Redis Cluster.
macro_rules! on_redis_and_cluster {
    ($($name:ident),* $(,)?) => {
        $(
            on_backends!($name:
                #[ignore = "needs Redis at TAQUILLA_TEST_REDIS_URL; the suite runs it (cargo test -- --include-ignored)"]
                redis => Redis,
                #[ignore = "needs a Redis Cluster at TAQUILLA_TEST_REDIS_CLUSTER_URL (.ci/redis-cluster); the suite runs it (cargo test -- --include-ignored)"]
                redis_cluster => Cluster
            );
        )*
    };
}

on_every_backend!(
    joins_are_idempotent_and_tiers_go_first,
    the_prequeue_is_shuffled_by_the_committed_seed_and_its_manifest,
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

async fn the_prequeue_is_shuffled_by_the_committed_seed_and_its_manifest(backend: Backend) {
    let clock = ManualClock::new(1_000);
    let room = room(backend, &clock).await;
    let mut ev = event(SaleState::NotOpen);
    let secret = ev.shuffle_secret.clone().expect("a committed event");
    let commitment = hex::encode(secret.commitment());
    // Before anyone joins, the commitment is published and nothing else.
    let before = room.shuffle_proof(&ev).await.expect("proof");
    assert_eq!(hex::encode(before.commitment), commitment);
    assert!(before.revealed.is_none(), "nothing revealed before opening");
    // 200 fans, every fifth with a presale code (a higher tier, placed first).
    let fans: Vec<String> = (0..200).map(|i| format!("fan-{i}")).collect();
    let mut tokens = Vec::new();
    for (i, fan) in fans.iter().enumerate() {
        let code = if i % 5 == 0 { "FANCLUB" } else { "" };
        let (token, status) = room.join_as(&ev, fan, code).await.expect("join");
        assert_eq!(status.state, pb::QueueState::Prequeue as i32);
        assert_eq!(status.position, 0);
        assert_eq!(
            status.shuffle_commitment, commitment,
            "told in the pre-queue"
        );
        tokens.push(token);
    }
    room.caught_up(&ev.id).await.expect("caught up");
    let seed = room
        .set_sale(&ev, SaleState::Open, SalePhase::General, 1_000, &[])
        .await
        .expect("open")
        .expect("a seed");
    assert_eq!(
        seed,
        hex::encode(secret.seed),
        "the committed seed is revealed"
    );
    ev.sale_state = SaleState::Open;
    // A later arrival is behind everyone from the pre-queue.
    assert_eq!(position(&room, &ev, "late").await, 201);
    // The proof: commitment, seed, nonce and the manifest in join order.
    let shown = room.shuffle_proof(&ev).await.expect("proof");
    let revealed = shown.revealed.expect("revealed at opening");
    assert_eq!(revealed.seed, secret.seed);
    assert_eq!(revealed.nonce, secret.nonce);
    let proof = fairness::Proof {
        commitment: shown.commitment,
        seed: revealed.seed,
        nonce: revealed.nonce,
        digest: revealed.manifest.digest,
        entries: revealed.manifest.entries.clone(),
    };
    assert_eq!(proof.entries.len(), 200);
    fairness::verify(&proof).expect("an honest opening verifies");
    // Every fan finds their own line, in join order, and the place it gives them is the one
    // the room gives them, on the node's own replica too.
    for (i, (fan, token)) in fans.iter().zip(&tokens).enumerate() {
        let (index, place) = fairness::find_fan(&proof, token).expect("listed");
        assert_eq!(index, i, "{fan}: join order");
        let status = room.join_as(&ev, fan, "").await.expect("join").1;
        assert_eq!(
            status.position, place,
            "{fan}: the room's place is the proof's"
        );
        assert_eq!(
            status.initial_position, place,
            "{fan}: first place after opening"
        );
        if i % 5 == 0 {
            assert!(place <= 40, "{fan}: presale fans are first ({place})");
        }
    }
    // A changed manifest, a wrong seed or a commitment that does not match all fail.
    let mut tampered = proof.clone();
    tampered.entries[7].entry[0] ^= 1;
    assert!(matches!(
        fairness::verify(&tampered),
        Err(fairness::VerifyError::Digest { .. })
    ));
    let mut wrong_seed = proof.clone();
    wrong_seed.seed[31] ^= 1;
    assert!(matches!(
        fairness::verify(&wrong_seed),
        Err(fairness::VerifyError::Commitment { .. })
    ));
    let mut other_commitment = proof;
    other_commitment.commitment = fairness::commitment(&[3; 32], &secret.nonce);
    assert!(matches!(
        fairness::verify(&other_commitment),
        Err(fairness::VerifyError::Commitment { .. })
    ));
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
async fn two_nodes_admit_each_fan_once_at_one_rate(backend: Backend) {
    let clock = ManualClock::new(0);
    let namespace = RedisNamespace::of(redis_kind(backend));
    let a = redis_node(&clock, &namespace).await;
    let b = redis_node(&clock, &namespace).await;
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
async fn a_dead_nodes_streams_count_as_closed(backend: Backend) {
    let clock = ManualClock::new(0);
    let namespace = RedisNamespace::of(redis_kind(backend));
    let dead = redis_node(&clock, &namespace).await;
    let alive = redis_node(&clock, &namespace).await;
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

on_redis_and_cluster!(
    two_nodes_admit_each_fan_once_at_one_rate,
    a_dead_nodes_streams_count_as_closed,
);
