//! The sales path end to end: live seat maps, refunds, several nodes sweeping one database, and
//! a whole 18,000-seat arena sold out through the Sales RPCs with a clean audit.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use taquilla_proto::v1 as pb;
use tokio_stream::StreamExt;
use tonic::Code;

async fn seat_map_changes_are_streamed(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", HALL, 4).await;
    let map = server
        .sales()
        .get_seat_map(pb::GetSeatMapRequest {
            event_id: "ev".into(),
            section_ids: vec![],
        })
        .await
        .expect("map")
        .into_inner();
    let mut stream = server
        .sales()
        .watch_availability(pb::WatchAvailabilityRequest {
            event_id: "ev".into(),
            after_version: map.version,
        })
        .await
        .expect("watch")
        .into_inner();
    let first = stream.next().await.expect("first").expect("ok");
    assert_eq!(first.version, map.version);
    assert!(!first.resync, "the client's map is current");

    let mut fan = server.fan("ev", "watcher-fan");
    fan.hold_seats(seats_in("ev", &[3, 4])).await.expect("hold");
    let update = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an update within the poll interval")
        .expect("item")
        .expect("ok");
    assert!(update.version > map.version);
    let changed: HashSet<u32> = update.changes.iter().map(|c| c.seat_id).collect();
    assert_eq!(changed, HashSet::from([3, 4]));
    assert!(
        update
            .changes
            .iter()
            .all(|c| c.status == pb::SeatStatus::SoftLocked as i32)
    );
    assert_eq!(
        update.sections,
        vec![pb::SectionAvailability {
            section_id: "s".into(),
            available: 38
        }]
    );

    // A client with an old map is told to refetch.
    let mut stale = server
        .sales()
        .watch_availability(pb::WatchAvailabilityRequest {
            event_id: "ev".into(),
            after_version: 1,
        })
        .await
        .expect("watch")
        .into_inner();
    let first = stale.next().await.expect("first").expect("ok");
    assert!(first.resync);
    let err = server
        .sales()
        .watch_availability(pb::WatchAvailabilityRequest {
            event_id: "missing".into(),
            after_version: 0,
        })
        .await
        .expect_err("unknown event");
    assert_eq!(err.code(), Code::NotFound);
    drop(stream);
    drop(stale);
    server.stop().await;
}

async fn refunds_never_make_two_tickets_for_a_seat(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", HALL, 4).await;
    let buy = |fan: &'static str, seat: u32| {
        let mut client = server.fan("ev", fan);
        async move {
            let hold = client
                .hold_seats(seats_in("ev", &[seat]))
                .await
                .expect("hold")
                .into_inner()
                .hold
                .expect("hold");
            let order = checkout_hold(&mut client, hold.hold_id, format!("{fan}-checkout")).await;
            pay_order(&mut client, order.order_id, format!("{fan}-payment")).await
        }
    };
    let first = buy("first-buyer", 1).await;
    let kept = buy("kept-buyer", 2).await;
    let mut operator = server.operator();
    let refunded = operator
        .refund(pb::RefundRequest {
            order_id: first.order_id.clone(),
            return_seats_to_sale: true,
            reason: "test".into(),
        })
        .await
        .expect("refund")
        .into_inner()
        .order
        .expect("order");
    assert_eq!(refunded.state, pb::OrderState::Refunded as i32);
    assert!(
        refunded
            .tickets
            .iter()
            .all(|t| t.state == pb::TicketState::Refunded as i32)
    );
    assert_eq!(
        refunded.payments[0].state,
        pb::PaymentState::Refunded as i32
    );
    // Refunding again changes nothing.
    operator
        .refund(pb::RefundRequest {
            order_id: first.order_id.clone(),
            return_seats_to_sale: true,
            reason: "again".into(),
        })
        .await
        .expect("idempotent");
    // The seat is back on sale and sells again: one valid ticket for it, not two.
    let resold = buy("second-buyer", 1).await;
    assert_eq!(resold.tickets.len(), 1);
    // A withheld refund keeps the seat off sale.
    operator
        .refund(pb::RefundRequest {
            order_id: kept.order_id.clone(),
            return_seats_to_sale: false,
            reason: "withheld".into(),
        })
        .await
        .expect("refund");
    let err = server
        .fan("ev", "late")
        .hold_seats(seats_in("ev", &[2]))
        .await
        .expect_err("withheld seat");
    assert_eq!(err.code(), Code::Aborted);
    // Only paid orders can be refunded.
    let err = operator
        .refund(pb::RefundRequest {
            order_id: "o_nope".into(),
            return_seats_to_sale: true,
            reason: String::new(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

/// Sells every seat of the 18,000-seat Palau Sant Jordi through HoldSeats, Checkout and Pay with
/// 32 concurrent buyers, then checks the audit and the provider's charges.
async fn an_arena_sells_out_with_a_clean_audit(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.seed_lux_tour().await;
    let event = "lux-bcn-2026-04-13";
    let map = server
        .sales()
        .get_seat_map(pb::GetSeatMapRequest {
            event_id: event.into(),
            section_ids: vec![],
        })
        .await
        .expect("map")
        .into_inner();
    let sections: Vec<String> = map
        .sections
        .iter()
        .filter_map(|s| s.summary.as_ref().map(|s| s.id.clone()))
        .collect();
    let mut workers = Vec::new();
    for worker in 0..32usize {
        let sections = sections.clone();
        let clients: Vec<_> = (0..1).map(|_| ()).collect::<Vec<_>>();
        let _ = clients;
        let channel = server.channel.clone();
        workers.push(tokio::spawn(async move {
            let mut sold = 0u32;
            let mut orders = 0u32;
            let mut n = 0u32;
            // Start at a different section per worker, then go round.
            for offset in 0..sections.len() {
                let section = &sections[(worker + offset) % sections.len()];
                let mut quantity = 4;
                loop {
                    n += 1;
                    let fan = format!("w{worker}-fan{n}");
                    let pass = pass_for(event, &fan, i64::MAX);
                    let mut client = pb::sales_client::SalesClient::with_interceptor(
                        channel.clone(),
                        PassInterceptor(pass.parse().expect("ascii")),
                    );
                    let hold = match client.hold_seats(best(event, section, quantity)).await {
                        Ok(r) => r.into_inner().hold.expect("hold"),
                        Err(status) if status.code() == Code::FailedPrecondition => {
                            if status.message().contains("no seats are free") {
                                break;
                            }
                            quantity = (quantity - 1).max(1);
                            continue;
                        }
                        Err(status) => panic!("hold failed: {status:?}"),
                    };
                    let order = checkout_hold(&mut client, hold.hold_id, format!("co-{fan}")).await;
                    let paid = pay_order(&mut client, order.order_id, format!("pay-{fan}")).await;
                    assert_eq!(paid.state, pb::OrderState::Paid as i32);
                    sold += paid.tickets.len() as u32;
                    orders += 1;
                }
            }
            (sold, orders)
        }));
    }
    let mut sold = 0;
    let mut orders = 0;
    for worker in workers {
        let (s, o) = worker.await.expect("worker");
        sold += s;
        orders += o;
    }
    assert_eq!(sold, 18_000);
    assert_eq!(server.provider().charges(), u64::from(orders));
    let report = server.assert_audit_clean(event).await;
    let inventory = report.inventory.expect("inventory");
    assert_eq!(inventory.sold, 18_000);
    assert_eq!(inventory.available, 0);
    // The sweeper's sold-out probe agrees: nothing unsold here, every seat of another event.
    let store = &server.state.store;
    assert!(!store.has_unsold_seats(event).await.expect("probe"));
    assert!(
        store
            .has_unsold_seats("lux-mad-2026-03-30")
            .await
            .expect("probe")
    );
    server.stop().await;
}

/// Two nodes on one PostgreSQL database sweep the same lapsed holds at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sweep_one_database_safely() {
    use std::sync::Arc;
    use taquilla_server::domain::clock::{Clock, ManualClock};
    let clock = ManualClock::new(1_800_000_000_000);
    let a = TestServer::start_with(Backend::Postgres, Arc::new(clock.clone()), |_| {}).await;
    let url = a.database.as_ref().expect("database").url.clone();
    let b = TestServer::start_with(Backend::Sqlite, Arc::new(clock.clone()), move |c| {
        c.database_url = Some(url);
    })
    .await;
    create_event(&a, "ev", HALL, 4).await;
    for seat in 1..=40u32 {
        let node = if seat % 2 == 0 { &a } else { &b };
        node.fan("ev", &format!("f{seat}"))
            .hold_seats(seats_in("ev", &[seat]))
            .await
            .expect("hold");
    }
    clock.advance_ms(11 * 60 * 1_000);
    let now = clock.now_ms();
    let (x, y) = tokio::join!(a.state.store.sweep(now, 7), b.state.store.sweep(now, 7));
    let (x, y) = (x.expect("sweep a"), y.expect("sweep b"));
    assert!(x.seats_freed + y.seats_freed <= 40);
    taquilla_server::purchase::sweep_once(&a.state.purchases)
        .await
        .expect("sweep");
    taquilla_server::purchase::sweep_once(&b.state.purchases)
        .await
        .expect("sweep");
    let statuses = seat_statuses(&a, "ev").await;
    assert!(
        statuses
            .iter()
            .all(|s| *s == pb::SeatStatus::Available as i32)
    );
    a.assert_audit_clean("ev").await;
    b.stop().await;
    a.stop().await;
}

async fn operators_page_through_orders(backend: Backend) {
    let server = TestServer::start(backend).await;
    create_event(&server, "ev", HALL, 4).await;
    let mut expected_paid = HashSet::new();
    for i in 0..5u32 {
        let mut fan = server.fan("ev", &format!("buyer-{i}"));
        let hold = fan
            .hold_seats(seats_in("ev", &[i + 1]))
            .await
            .expect("hold")
            .into_inner()
            .hold
            .expect("hold");
        let order = checkout_hold(&mut fan, hold.hold_id, format!("list-co-{i}")).await;
        if i < 3 {
            fan.pay(pb::PayRequest {
                order_id: order.order_id.clone(),
                idempotency_key: format!("list-pay-{i}"),
                card: Some(good_card()),
            })
            .await
            .expect("pay");
            expected_paid.insert(order.order_id);
        }
    }
    let mut operator = server.operator();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = operator
            .list_orders(pb::ListOrdersRequest {
                event_id: "ev".into(),
                state: 0,
                page_size: 2,
                page_token: token.clone(),
            })
            .await
            .expect("list")
            .into_inner();
        assert!(page.orders.len() <= 2);
        seen.extend(
            page.orders
                .iter()
                .map(|o| (o.order_id.clone(), o.created_at_unix_ms)),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5, "every order once: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0].1 >= w[1].1), "newest first");
    let paid = operator
        .list_orders(pb::ListOrdersRequest {
            event_id: "ev".into(),
            state: pb::OrderState::Paid as i32,
            page_size: 0,
            page_token: String::new(),
        })
        .await
        .expect("paid")
        .into_inner()
        .orders;
    let paid_ids: HashSet<String> = paid.iter().map(|o| o.order_id.clone()).collect();
    assert_eq!(paid_ids, expected_paid);
    assert!(
        paid.iter()
            .all(|o| o.tickets.len() == 1 && o.payments.len() == 1 && o.seats.len() == 1)
    );
    let err = operator
        .list_orders(pb::ListOrdersRequest {
            event_id: "ev".into(),
            state: 0,
            page_size: 0,
            page_token: "garbage!".into(),
        })
        .await
        .expect_err("bad token");
    assert_eq!(err.code(), Code::InvalidArgument);
    server.stop().await;
}

/// On PostgreSQL each write of the sales path is one call of a database function
/// (`0005_sales_functions.sql`) when it succeeds; anything else is declined by the function and
/// decided by the general transaction, with the same answers as on SQLite. This checks both:
/// the successful steps took the short path (without it every count below stays zero), and
/// the refusals still say what the general path says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sales_writes_take_one_round_trip_each() {
    use taquilla_server::store::FastStep;
    let server = TestServer::start(Backend::Postgres).await;
    create_event(&server, "ev", HALL, 4).await;
    let counts = |step| server.state.store.fast_path().get(step);

    let mut a = server.fan("ev", "fan-a");
    let hold = a
        .hold_seats(best("ev", "s", 2))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    assert_eq!(
        hold.seats.iter().map(|s| s.seat_id).collect::<Vec<_>>(),
        [1, 2]
    );
    let order = checkout_hold(&mut a, hold.hold_id.clone(), "checkout-a-1".into()).await;
    assert_eq!(order.seats.len(), 2);
    let paid = pay_order(&mut a, order.order_id.clone(), "pay-a-0001".into()).await;
    assert_eq!(paid.state, pb::OrderState::Paid as i32);
    assert_eq!(paid.tickets.len(), 2);
    // Pay answers with the order as its sale wrote it, without reading it back: exactly what
    // the database now says.
    assert_eq!(paid, stored_order(&mut a, &order.order_id).await);
    let mut b = server.fan("ev", "fan-b");
    let explicit = b
        .hold_seats(seats_in("ev", &[22, 21]))
        .await
        .expect("hold")
        .into_inner()
        .hold
        .expect("hold");
    assert_eq!(
        explicit.seats.iter().map(|s| s.seat_id).collect::<Vec<_>>(),
        [21, 22]
    );
    assert_eq!(counts(FastStep::Hold), (2, 0));
    for step in [
        FastStep::Checkout,
        FastStep::BeginPayment,
        FastStep::CompleteSale,
    ] {
        assert_eq!(counts(step), (1, 0), "{}", step.name());
    }
    // The order's lock outlasted the capture window, so no claim was needed (integrity.rs,
    // `a_payment_near_its_locks_end_claims_the_seats_over_the_capture`, claims).
    assert_eq!(counts(FastStep::Claim), (0, 0));

    // Refusals: declined by the function, explained by the general transaction.
    let taken = server
        .fan("ev", "fan-c")
        .hold_seats(seats_in("ev", &[20, 21]))
        .await
        .expect_err("seat 21 is held");
    assert_eq!(taken.code(), Code::Aborted);
    assert!(
        taken.message().contains("seat ids: 21"),
        "{}",
        taken.message()
    );
    let over = a
        .hold_seats(best("ev", "s", 3))
        .await
        .expect_err("over the cap");
    assert_eq!(over.code(), Code::FailedPrecondition);
    assert!(
        over.message().contains("already hold or bought 2 of the 4"),
        "{}",
        over.message()
    );
    assert_eq!(counts(FastStep::Hold), (2, 2));
    // Replays: the same answers as the first time.
    let again = pay_order(&mut a, order.order_id.clone(), "pay-a-0001".into()).await;
    assert_eq!(again.tickets, paid.tickets);
    assert_eq!(counts(FastStep::BeginPayment), (1, 1));
    let first = checkout_hold(&mut b, explicit.hold_id.clone(), "checkout-b-1".into()).await;
    let replay = checkout_hold(&mut b, explicit.hold_id.clone(), "checkout-b-1".into()).await;
    assert_eq!(replay.order_id, first.order_id);
    assert_eq!(counts(FastStep::Checkout), (2, 1));
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

/// Two 1,000-place sections: "a" fills with locks while "b" is sold from.
const TWO_SECTIONS: &str = r#"
[venue]
id = "arena"
name = "Arena"
[[sections]]
id = "a"
name = "Floor A"
kind = "seated"
price = 50
row_count = 40
seats_per_row = 25
[[sections]]
id = "b"
name = "Floor B"
kind = "seated"
price = 50
row_count = 40
seats_per_row = 25
"#;

/// Index entries PostgreSQL has read so far on each index of the sales tables (its statistics,
/// flushed by every backend within a second or two of going idle).
async fn sales_index_reads(db: &sqlx::PgPool) -> HashMap<String, i64> {
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    sqlx::query_as(
        "SELECT CAST(indexrelname AS TEXT), idx_tup_read FROM pg_stat_user_indexes \
         WHERE relname IN ('seats', 'holds', 'orders', 'order_items', 'payments', 'tickets')",
    )
    .fetch_all(db)
    .await
    .expect("index statistics")
    .into_iter()
    .collect()
}

/// PostgreSQL plans each statement of the sales functions once per connection and keeps the
/// plan. At a sale's opening its statistics say nothing is locked, held or ordered, so indexes
/// over locked seats or pending orders look empty and were chosen over the primary key: every
/// checkout then read every lock of the event, a cost that grows with the sale (migration
/// 0006). With statistics taken at the opening and 800 seats locked elsewhere, an order must
/// still read only a bounded number of index entries (with the old indexes: 2,277 with 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reads_the_same_few_index_entries_however_full_the_sale() {
    // No sweeps during the measurement: they read every lock, by design.
    let server = TestServer::start_with(
        Backend::Postgres,
        std::sync::Arc::new(taquilla_server::domain::clock::SystemClock),
        |config| {
            config.sweep_interval = Duration::from_secs(3_600);
        },
    )
    .await;
    create_event(&server, "ev", TWO_SECTIONS, 4).await;
    let url = &server.database.as_ref().expect("postgres").url;
    let db = sqlx::PgPool::connect(url).await.expect("connect");
    sqlx::query("ANALYZE").execute(&db).await.expect("analyze");

    // 200 fans lock 800 seats of section a; half of them check out.
    for i in 0..200 {
        let mut fan = server.fan("ev", &format!("fan-a{i}"));
        let hold = held(&mut fan, best("ev", "a", 4)).await;
        if i % 2 == 0 {
            checkout_hold(&mut fan, hold.hold_id, format!("checkout-a{i}")).await;
        }
    }
    let sell = |i: u32| {
        let mut fan = server.fan("ev", &format!("fan-b{i}"));
        async move {
            let hold = held(&mut fan, best("ev", "b", 4)).await;
            let order = checkout_hold(&mut fan, hold.hold_id, format!("checkout-b{i}")).await;
            let paid = pay_order(&mut fan, order.order_id, format!("pay-b{i}-key")).await;
            assert_eq!(paid.state, pb::OrderState::Paid as i32);
        }
    };
    // Every pooled connection has planned its statements by now; sell some more, measured.
    for i in 0..20 {
        sell(i).await;
    }
    let before = sales_index_reads(&db).await;
    const ORDERS: u32 = 20;
    for i in 20..20 + ORDERS {
        sell(i).await;
    }
    let after = sales_index_reads(&db).await;
    let mut per_index: Vec<(String, i64)> = after
        .iter()
        .map(|(index, n)| {
            let read = n - before.get(index).copied().unwrap_or(0);
            (index.clone(), read / i64::from(ORDERS))
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    per_index.sort_by_key(|(_, n)| -n);
    let per_order: i64 = per_index.iter().map(|(_, n)| n).sum();
    eprintln!("index entries read per order: {per_order} {per_index:?}");
    // An order's own rows and their dead versions come to about 300; reading the other fans'
    // 800 locks and 100 pending orders comes to thousands.
    assert!(
        per_order < 1_000,
        "an order read {per_order} index entries ({per_index:?}): some statement scans other \
         fans' locks or orders"
    );
    server.assert_audit_clean("ev").await;
    db.close().await;
    server.stop().await;
}

/// The database's best-available choice (`taquilla_choose_best`) is the domain's
/// (`domain::inventory::choose_best`) on random candidate lists: rows of runs with gaps,
/// quantities from 0 to 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_databases_best_available_choice_is_the_domains() {
    use sqlx::Connection;
    use taquilla_server::domain::inventory::{Candidate, choose_best};
    let server = TestServer::start(Backend::Postgres).await;
    let url = server.database.as_ref().expect("database").url.clone();
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut state = 0x5eed_u64;
    let mut next = |bound: u64| {
        // SplitMix64: deterministic, so a failure is reproducible.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    };
    let mut adjacent = 0;
    for case in 0..1_500 {
        let mut candidates = Vec::new();
        let mut seat_id = 0u32;
        for row in ["A", "B", "C", "D"].iter().take(1 + next(4) as usize) {
            let mut number = 0u32;
            for _ in 0..next(9) {
                number += 1 + if next(3) == 0 { next(3) as u32 } else { 0 };
                seat_id += 1 + next(2) as u32;
                candidates.push(Candidate {
                    seat_id,
                    row: row.to_string(),
                    number,
                });
            }
        }
        let quantity = next(7) as usize;
        let expected = choose_best(&candidates, quantity);
        let got: Option<Vec<i64>> = sqlx::query_scalar(
            "SELECT taquilla_choose_best($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4)",
        )
        .bind(
            candidates
                .iter()
                .map(|c| i64::from(c.seat_id))
                .collect::<Vec<_>>(),
        )
        .bind(candidates.iter().map(|c| c.row.clone()).collect::<Vec<_>>())
        .bind(
            candidates
                .iter()
                .map(|c| i64::from(c.number))
                .collect::<Vec<_>>(),
        )
        .bind(quantity as i32)
        .fetch_one(&mut conn)
        .await
        .expect("choose");
        let got = got.map(|ids| ids.into_iter().map(|id| id as u32).collect::<Vec<_>>());
        assert_eq!(got, expected, "case {case}: {quantity} of {candidates:?}");
        if expected
            .as_ref()
            .is_some_and(|ids| ids.len() > 1 && ids[0] != candidates[0].seat_id)
        {
            adjacent += 1;
        }
    }
    // The cases reach past the front seats (adjacency and orphans decided something).
    assert!(
        adjacent > 100,
        "only {adjacent} cases chose beyond the front"
    );
    drop(conn);
    server.stop().await;
}

/// One call of the hold batch function (migration 0007) with what a batch can hold: the same
/// fan three times (the third over the cap counting the first two), a fan whose lock another
/// session has, and a hold that finds too few candidates. The holds that can be made are made,
/// with exactly the seats the single-hold function chooses for the same holds one after
/// another; the others are left out and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_batch_is_the_single_holds_in_turn() {
    use sqlx::{Connection, Row};
    let server = TestServer::start(Backend::Postgres).await;
    for event in ["batch", "single", "tiny"] {
        create_event(&server, event, HALL, 4).await;
    }
    let url = server.database.as_ref().expect("database").url.clone();
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut other = sqlx::PgConnection::connect(&url).await.expect("connect");
    // (event, fan, fan lock, quantity, candidates)
    let holds: [(&str, &str, i64, i32, i64); 6] = [
        ("batch", "ann", 101, 3, 20),
        ("batch", "bob", 102, 4, 24),
        ("batch", "ann", 101, 1, 12),
        ("batch", "ann", 101, 1, 12),
        ("batch", "xia", 105, 2, 16),
        ("tiny", "cai", 106, 3, 2),
    ];
    sqlx::query("SELECT pg_advisory_lock(105)")
        .execute(&mut other)
        .await
        .expect("lock");
    let now = 1_800_000_000_000_i64;
    let col = |f: fn(&(&str, &str, i64, i32, i64)) -> String| -> Vec<String> {
        holds.iter().map(f).collect()
    };
    let rows = sqlx::query(
        "SELECT k, seat_id FROM taquilla_hold_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 5000) \
         ORDER BY k, seat_id",
    )
    .bind(col(|h| h.0.to_string()))
    .bind(col(|h| h.1.to_string()))
    .bind(
        (1..=holds.len())
            .map(|k| format!("hb-{k}"))
            .collect::<Vec<_>>(),
    )
    .bind(vec![now; holds.len()])
    .bind(vec![now + 600_000; holds.len()])
    .bind(vec![4_i64; holds.len()])
    .bind(holds.iter().map(|h| h.2).collect::<Vec<_>>())
    .bind(vec!["s"; holds.len()])
    .bind(holds.iter().map(|h| h.3).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.4).collect::<Vec<_>>())
    .fetch_all(&mut conn)
    .await
    .expect("batch");
    let mut batch: Vec<Vec<i64>> = vec![Vec::new(); holds.len()];
    for row in rows {
        let k: i32 = row.get("k");
        batch[k as usize - 1].push(row.get("seat_id"));
    }
    let made: Vec<usize> = (0..holds.len()).filter(|&i| !batch[i].is_empty()).collect();
    assert_eq!(
        made,
        [0, 1, 2],
        "ann's third (over 4), xia (locked elsewhere) and cai (too few candidates) are left out: {batch:?}"
    );
    for (i, (_, _, _, quantity, _)) in holds.iter().enumerate().take(3) {
        assert_eq!(batch[i].len(), *quantity as usize);
    }
    // The same three holds one after another through the single-hold function, in another
    // event with the same seats.
    for (i, (_, fan, lock, quantity, candidates)) in holds.iter().enumerate().take(3) {
        let single: Vec<i64> = sqlx::query_scalar(
            "SELECT seat_id FROM taquilla_hold('single', $1, $2, $3, $4, 4, $5, NULL, 's', $6, $7, 5000) \
             ORDER BY seat_id",
        )
        .bind(*fan)
        .bind(format!("hs-{i}"))
        .bind(now)
        .bind(now + 600_000)
        .bind(*lock)
        .bind(*quantity)
        .bind(*candidates)
        .fetch_all(&mut conn)
        .await
        .expect("single hold");
        assert_eq!(batch[i], single, "hold {i}: the batch chose other seats");
    }
    // Only the holds made changed anything.
    let held: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, fan_id, seat_count FROM holds WHERE event_id IN ('batch', 'tiny') ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("holds");
    assert_eq!(
        held,
        [
            ("hb-1".to_string(), "ann".to_string(), 3),
            ("hb-2".to_string(), "bob".to_string(), 4),
            ("hb-3".to_string(), "ann".to_string(), 1),
        ]
    );
    let locked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM seats WHERE event_id IN ('batch', 'tiny') AND status <> 'AVAILABLE'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("count");
    assert_eq!(locked, 8);

    for event in ["batch", "single", "tiny"] {
        server.assert_audit_clean(event).await;
    }
    conn.close().await.expect("close");
    other.close().await.expect("close");
    server.stop().await;
}

/// Best-available holds that reach a PostgreSQL node together go to the database in batches,
/// and a batch is as safe as holds one by one: 40 buyers (ten of them asking twice at once)
/// race for a 40-seat hall; no seat is held twice, no fan is over the cap, and the holds that
/// failed were refused for want of seats or for the cap, nothing else. Then each batched hold
/// is checked out three times at once (two keys) and gets one order with the hold's seats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holds_go_in_batches_safely() {
    let server = TestServer::start(Backend::Postgres).await;
    create_event(&server, "ev", HALL, 3).await;
    let mut tasks = Vec::new();
    for i in 0..50u32 {
        let fan = format!("fan-{}", i % 40);
        let mut client = server.fan("ev", &fan);
        tasks.push(tokio::spawn(async move {
            let result = client.hold_seats(best("ev", "s", 1 + i % 2)).await;
            (fan, result.map(|r| r.into_inner().hold.expect("hold")))
        }));
    }
    let mut seats = Vec::new();
    let mut per_fan: HashMap<String, usize> = HashMap::new();
    let mut holds = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (fan, Ok(hold)) => {
                *per_fan.entry(fan.clone()).or_default() += hold.seats.len();
                seats.extend(hold.seats.iter().map(|s| s.seat_id));
                holds.push((fan, hold));
            }
            (_, Err(status)) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
            }
        }
    }
    let unique: HashSet<u32> = seats.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seats.len(),
        "a seat was held twice: {seats:?}"
    );
    assert!(per_fan.values().all(|n| *n <= 3), "{per_fan:?}");
    let (batches, batched) = server
        .state
        .store
        .fast_path()
        .batches(taquilla_server::store::FastStep::Hold);
    assert!(
        batched > batches,
        "50 concurrent holds went one per batch ({batches} batches, {batched} holds)"
    );
    // Every hold checked out three times at once: twice with one key, once with another. All
    // three get the hold's one order, with the hold's seats.
    let mut checkouts = Vec::new();
    for (fan, hold) in &holds {
        for key in ["a", "b", "a"] {
            let mut client = server.fan("ev", fan);
            let (hold_id, key) = (hold.hold_id.clone(), format!("{key}-{}", hold.hold_id));
            checkouts.push(tokio::spawn(async move {
                let order = client
                    .checkout(pb::CheckoutRequest {
                        hold_id: hold_id.clone(),
                        idempotency_key: key,
                    })
                    .await
                    .expect("checkout")
                    .into_inner()
                    .order
                    .expect("order");
                (hold_id, order)
            }));
        }
    }
    let mut orders: HashMap<String, (String, Vec<u32>)> = HashMap::new();
    for task in checkouts {
        let (hold_id, order) = task.await.expect("task");
        let ids = order.seats.iter().map(|s| s.seat_id).collect::<Vec<_>>();
        let first = orders
            .entry(hold_id.clone())
            .or_insert_with(|| (order.order_id.clone(), ids.clone()));
        assert_eq!(
            *first,
            (order.order_id, ids),
            "hold {hold_id} got two orders"
        );
    }
    for (_, hold) in &holds {
        let held = hold.seats.iter().map(|s| s.seat_id).collect::<Vec<_>>();
        assert_eq!(orders[&hold.hold_id].1, held);
    }
    server.assert_audit_clean("ev").await;
    server.stop().await;
}

/// Two PostgreSQL nodes batch the holds that reach each of them, and their batches race for the
/// same section: 60 buyers split over the nodes ask for 1 to 3 seats of a 40-seat hall at once,
/// then single seats are taken until none is left. Every seat is held exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_batches_race_for_one_section() {
    let a = TestServer::start(Backend::Postgres).await;
    let url = a.database.as_ref().expect("database").url.clone();
    let b = TestServer::start_with(
        Backend::Sqlite,
        std::sync::Arc::new(taquilla_server::domain::clock::SystemClock),
        move |c| {
            c.database_url = Some(url);
        },
    )
    .await;
    create_event(&a, "ev", HALL, 4).await;
    let mut tasks = Vec::new();
    for i in 0..60u32 {
        let node = if i % 2 == 0 { &a } else { &b };
        let mut client = node.fan("ev", &format!("fan-{i}"));
        tasks.push(tokio::spawn(async move {
            client.hold_seats(best("ev", "s", 1 + i % 3)).await
        }));
    }
    let mut seats = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(response) => seats.extend(held_ids(response)),
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    for n in 0.. {
        let node = if n % 2 == 0 { &a } else { &b };
        match node
            .fan("ev", &format!("last-{n}"))
            .hold_seats(best("ev", "s", 1))
            .await
        {
            Ok(response) => seats.extend(held_ids(response)),
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                break;
            }
        }
    }
    let unique: HashSet<u32> = seats.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seats.len(),
        "a seat was held twice: {seats:?}"
    );
    assert_eq!(unique.len(), 40, "every seat was held exactly once");
    let batched = |node: &TestServer| {
        node.state
            .store
            .fast_path()
            .batches(taquilla_server::store::FastStep::Hold)
    };
    let (x, y) = (batched(&a), batched(&b));
    assert!(x.0 > 0 && y.0 > 0, "both nodes sent batches: {x:?} {y:?}");
    a.assert_audit_clean("ev").await;
    b.stop().await;
    a.stop().await;
}

on_both_backends!(
    operators_page_through_orders,
    seat_map_changes_are_streamed,
    refunds_never_make_two_tickets_for_a_seat,
    an_arena_sells_out_with_a_clean_audit,
);
