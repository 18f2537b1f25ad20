//! The buying phase of a fan's journey, once admitted: read the seat map (one read per event
//! for the whole crowd), choose what to ask for, hold, maybe let the hold go, checkout, pay
//! (a declined card first for some), and when an answer is lost, look the order up as a fan
//! would. Each step records its time and answers how the journey ends when it does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use goose::prelude::*;
use rand::Rng;
use taquilla_proto::v1 as pb;
use tonic::{Code, Status};

use super::{DECLINED_CARD, End, Failed, Fan, GOOD_CARD, chance, retried, timed, with_pass};
use crate::sale::record::Stage;

/// One hold to try: what to ask for and, for a section the event page showed, its count there
/// (lowered when the section turns out to have fewer together).
type Attempt = (pb::hold_seats_request::Selection, Option<Arc<AtomicU32>>);

async fn seat_map(user: &mut GooseUser, fan: &Fan) -> Option<Arc<pb::SeatMap>> {
    // One read per event for the whole crowd: the fans admitted while it is under way wait for
    // it instead of each asking the server for the same 18,000 seats. Only a map that arrived
    // is kept: after a failed read the next fan in line tries again.
    fan.crowd.seat_maps[fan.event_index]
        .get_or_try_init(|| async {
            retried(user, fan, "GetSeatMap", || {
                let request = pb::GetSeatMapRequest {
                    event_id: fan.event.event_id.clone(),
                    section_ids: Vec::new(),
                };
                let mut sales = fan.sales();
                async move { sales.get_seat_map(request).await }
            })
            .await
            .map(Arc::new)
        })
        .await
        .ok()
        .cloned()
}

fn unsettled(fan: &Fan, order_id: &str) -> crate::sale::record::Unsettled {
    crate::sale::record::Unsettled {
        event: fan.event.event_id.clone(),
        fan: fan.fingerprint.clone(),
        cap: fan.event.cap,
        order_id: order_id.to_string(),
    }
}

/// Returns Ok(true) when paid, Ok(false) when the fan let the hold go.
pub(super) async fn buy(user: &mut GooseUser, fan: &Fan) -> Result<bool, End> {
    let Some(map) = seat_map(user, fan).await else {
        return Err(End::Failed(Failed::new(
            "GetSeatMap",
            Status::unavailable("the seat map could not be read"),
        )));
    };
    let attempts = choose_attempts(fan, &map);
    let hold = hold(user, fan, attempts).await?;
    if chance(fan.crowd.mix.abandon_share) {
        release(user, fan, &hold).await;
        return Ok(false);
    }
    // The fan's idempotency keys for this hold's checkout and payments.
    let key = |what: &str| {
        format!(
            "lg-{what}-{}",
            &taquilla_proto::signed::sha256_hex(&format!("{}:{}", fan.fingerprint, hold.hold_id))
                [..40]
        )
    };
    let order = checkout(user, fan, &hold, &key("co")).await?;
    pay(user, fan, &order, key).await
}

/// What the fan will try to hold, in order: contenders first go for the front seats of the
/// first seated row; then best available in the sections the event page shows seats in.
fn choose_attempts(fan: &Fan, map: &pb::SeatMap) -> Vec<Attempt> {
    let crowd = &fan.crowd;
    let sections: Vec<pb::SectionSummary> = map
        .sections
        .iter()
        .filter_map(|s| s.summary.clone())
        .collect();
    let quantity =
        rand::thread_rng().gen_range(1..=crowd.mix.max_quantity.clamp(1, fan.event.cap.max(1)));

    // Contenders go for the first seats of the first seated row.
    let mut attempts: Vec<Attempt> = Vec::new();
    if chance(crowd.mix.contend_share)
        && let Some(row) = map.sections.iter().find_map(|s| s.rows.first())
    {
        let seat_ids = (0..quantity.min(row.statuses.len() as u32))
            .map(|i| row.first_seat_id + i)
            .collect();
        attempts.push((
            pb::hold_seats_request::Selection::Seats(pb::SeatSelection { seat_ids }),
            None,
        ));
    }
    // Then best available in sections the event page shows seats in, from a random start;
    // when none has that many, as a person would, fewer (half, then one) before giving up:
    // near the end only scattered seats are left. With the page showing nothing left
    // anywhere, one seat anywhere, once (held seats come back when their holds lapse).
    let best = |section_id: &str, quantity: u32| {
        pb::hold_seats_request::Selection::BestAvailable(pb::BestAvailable {
            section_id: section_id.to_string(),
            quantity,
        })
    };
    let board = &crowd.boards[fan.event_index];
    if board.empty() {
        if !sections.is_empty() {
            let section = &sections[rand::thread_rng().gen_range(0..sections.len())];
            attempts.push((best(&section.id, 1), None));
        }
    } else {
        let mut fewer = vec![quantity, quantity / 2, 1];
        fewer.retain(|q| *q > 0);
        fewer.sort_unstable_by(|a, b| b.cmp(a));
        fewer.dedup();
        for wanted in fewer {
            let picked = board.pick(wanted, 4);
            if picked.is_empty() && !sections.is_empty() && !board.read() {
                // The event page was not read yet: the seat map's sections, blind.
                let start = rand::thread_rng().gen_range(0..sections.len());
                for i in 0..sections.len().min(4) {
                    let section = &sections[(start + i) % sections.len()];
                    attempts.push((best(&section.id, wanted), None));
                }
            }
            for (section_id, available) in picked {
                attempts.push((best(&section_id, wanted), Some(available)));
            }
        }
    }
    attempts
}

/// Tries each attempt until one holds; a refusal because the seats went (or the section has
/// fewer together) moves on to the next, a refusal over the fan's cap ends the journey.
async fn hold(user: &mut GooseUser, fan: &Fan, attempts: Vec<Attempt>) -> Result<pb::Hold, End> {
    let recorder = &fan.crowd.recorder;
    for (selection, shown) in attempts {
        let started = Instant::now();
        let result = retried(user, fan, "HoldSeats", || {
            let request = with_pass(
                pb::HoldSeatsRequest {
                    event_id: fan.event.event_id.clone(),
                    selection: Some(selection.clone()),
                },
                &fan.pass,
            );
            let mut sales = fan.sales();
            async move { sales.hold_seats(request).await }
        })
        .await;
        match result {
            Ok(response) => {
                recorder.stage(Stage::Hold, started.elapsed());
                return response.hold.ok_or(End::SoldOut("no seats left to hold"));
            }
            Err(failed)
                if matches!(
                    failed.status.code(),
                    Code::Aborted | Code::FailedPrecondition
                ) =>
            {
                if failed.status.message().contains("tickets allowed per fan") {
                    return Err(End::SoldOut("hold refused: over the cap"));
                }
                // The section has fewer together than that now: the next fans look elsewhere
                // until the page is read again.
                if let (Some(available), pb::hold_seats_request::Selection::BestAvailable(b)) =
                    (shown, &selection)
                {
                    available.fetch_min(b.quantity.saturating_sub(1), Ordering::Relaxed);
                }
                continue;
            }
            Err(failed) => return Err(End::Failed(failed)),
        }
    }
    Err(End::SoldOut("no seats left to hold"))
}

/// Lets a hold go (the fan changed their mind, or could not check out).
async fn release(user: &mut GooseUser, fan: &Fan, hold: &pb::Hold) {
    let _ = retried(user, fan, "ReleaseHold", || {
        let request = with_pass(
            pb::ReleaseHoldRequest {
                hold_id: hold.hold_id.clone(),
            },
            &fan.pass,
        );
        let mut sales = fan.sales();
        async move { sales.release_hold(request).await }
    })
    .await;
}

/// Turns the hold into an order; on failure lets the seats go rather than leave them locked
/// until the hold lapses.
async fn checkout(
    user: &mut GooseUser,
    fan: &Fan,
    hold: &pb::Hold,
    key: &str,
) -> Result<pb::Order, End> {
    let started = Instant::now();
    let checkout = retried(user, fan, "Checkout", || {
        let request = with_pass(
            pb::CheckoutRequest {
                hold_id: hold.hold_id.clone(),
                idempotency_key: key.to_string(),
            },
            &fan.pass,
        );
        let mut sales = fan.sales();
        async move { sales.checkout(request).await }
    })
    .await;
    match checkout {
        Ok(response) => {
            fan.crowd.recorder.stage(Stage::Checkout, started.elapsed());
            Ok(response.order.unwrap_or_default())
        }
        Err(failed) => {
            // Let the seats go rather than leave them locked until the hold lapses.
            let request = with_pass(
                pb::ReleaseHoldRequest {
                    hold_id: hold.hold_id.clone(),
                },
                &fan.pass,
            );
            let _ = timed(user, "ReleaseHold", fan.sales().release_hold(request)).await;
            Err(End::Failed(failed))
        }
    }
}

/// Pays the order (some fans with a card that is declined first, then a good one). A lost or
/// refused answer is looked up as a fan would; an order whose fate is unknown is left for the
/// run to settle when the sale is over.
async fn pay(
    user: &mut GooseUser,
    fan: &Fan,
    order: &pb::Order,
    key: impl Fn(&str) -> String,
) -> Result<bool, End> {
    let recorder = &fan.crowd.recorder;
    let mut cards = vec![GOOD_CARD];
    if chance(fan.crowd.mix.decline_share) {
        cards.insert(0, DECLINED_CARD);
    }
    for (attempt, number) in cards.into_iter().enumerate() {
        let started = Instant::now();
        let pay_key = key(&format!("pay{attempt}"));
        let paid = retried(user, fan, "Pay", || {
            let request = with_pass(
                pb::PayRequest {
                    order_id: order.order_id.clone(),
                    idempotency_key: pay_key.clone(),
                    card: Some(pb::Card {
                        number: number.into(),
                        exp_month: 12,
                        exp_year: 2099,
                        cvc: "123".into(),
                    }),
                },
                &fan.pass,
            );
            let mut sales = fan.sales();
            async move { sales.pay(request).await }
        })
        .await;
        let order = match paid {
            Ok(paid) => paid.order.unwrap_or_default(),
            Err(failed) => {
                // The answer was lost or refused: what happened to the order is the server's to
                // say, as a fan would look it up. A payment that went through counts as bought.
                let looked_up = retried(user, fan, "GetOrder", || {
                    let request = with_pass(
                        pb::GetOrderRequest {
                            order_id: order.order_id.clone(),
                        },
                        &fan.pass,
                    );
                    let mut sales = fan.sales();
                    async move { sales.get_order(request).await }
                })
                .await;
                match looked_up {
                    Ok(order) if order.state() == pb::OrderState::Paid => order,
                    // Not paid yet, or no word: a payment in flight may still complete, so the
                    // run asks again when the sale is over.
                    _ => {
                        recorder.unsettled(unsettled(fan, &order.order_id));
                        return Err(End::Failed(failed));
                    }
                }
            }
        };
        if order.state() == pb::OrderState::Paid {
            recorder.stage(Stage::Pay, started.elapsed());
            let tickets: Vec<(u32, String)> = order
                .tickets
                .iter()
                .map(|t| {
                    (
                        t.seat.as_ref().map(|s| s.seat_id).unwrap_or(0),
                        t.code.clone(),
                    )
                })
                .collect();
            recorder.bought(
                &fan.event.event_id,
                &fan.fingerprint,
                fan.event.cap,
                &order.order_id,
                &tickets,
            );
            return Ok(true);
        }
    }
    recorder.unsettled(unsettled(fan, &order.order_id));
    Err(End::SoldOut("payment never went through"))
}
