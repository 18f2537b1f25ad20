//! The purchase path: holds, checkout and payment, orchestrating the store (which owns every
//! state change, by conditional update) and the payment provider (which is slow, fallible and
//! idempotent by key). Also the sweeper that returns lapsed locks to sale and reconciles
//! payments left in flight.
//!
//! Payment, step by step, so that no answer is ever lost and nobody is charged without a seat:
//!
//! 1. `begin_payment` records a PENDING attempt (one in flight per order, keyed by the fan's
//!    idempotency key; a repeated key returns the first attempt).
//! 2. The provider authorizes, idempotent by the attempt's own key. A lost answer is looked up
//!    by that key; a provider that is down processed nothing, so the attempt is forgotten.
//! 3. `claim_for_capture` checks that the order's hard lock is still live and extends it over
//!    the capture, so the seats cannot lapse while money moves. If the lock already lapsed, the
//!    authorization is voided: never a charge without a seat. When the lock the attempt read at
//!    its start already outlasts the capture window, the claim is skipped: it could only
//!    confirm what that lock guarantees (see [`lock_outlasts`]).
//! 4. The provider captures.
//! 5. `complete_sale` sells the seats, marks the order PAID and the payment CAPTURED and issues
//!    the tickets in one transaction. Should the seats somehow no longer be the order's, the
//!    capture is refunded. It accepts a PENDING attempt too: the claim commits without waiting
//!    for its WAL, and a database crash that loses it must not turn a capture into a refund.
//!
//! An attempt interrupted anywhere (crash, timeout, outage) stays PENDING or AUTHORIZED, and
//! [`resume_payment`] (called by the same key's retry or by the sweeper) picks it up from the
//! provider's record of it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Buyer, Credential};
use crate::catalog::Catalog;
use crate::domain::SaleState;
use crate::domain::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::payments::guarded::GuardedProvider;
use crate::payments::{CardDetails, Intent, IntentStatus, PaymentProvider, ProviderError};
use crate::sale_control::{SaleChange, SaleControl};
use crate::store::{
    BeginPayment, CheckoutOutcome, EventRecord, HoldOutcome, HoldRecord, HoldState, NewHold,
    NewOrder, NewPayment, NewTicket, OrderRecord, OrderState, PaymentRecord, PaymentState,
    ReleaseOutcome, Selection, Store, TicketRecord, TicketState,
};
use crate::tokens::{TicketClaims, TicketKeys, TokenKind};
use crate::waiting_room::WaitingRoom;

/// How long a claimed order keeps its seats while the capture runs.
pub const CAPTURE_WINDOW: Duration = Duration::from_secs(60);

/// What the purchase path works with: the store, the catalog, the waiting room (a fan's
/// admission ends when they pay), the payment provider, the clock, the ticket keys and the
/// lock durations. The RPC handlers and the sweeper call the functions of this module with it.
#[derive(Debug)]
pub struct Purchases {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub waiting_room: Arc<WaitingRoom>,
    pub clock: Arc<dyn Clock>,
    /// The payment provider, paced at its contract rate and behind its circuit breaker.
    pub provider: Arc<GuardedProvider>,
    pub metrics: Arc<Metrics>,
    /// How long a hold keeps its seats (SOFT_LOCKED).
    pub hold_ttl: Duration,
    /// How long an order keeps its seats for payment (HARD_LOCKED).
    pub payment_ttl: Duration,
    /// How old an unfinished payment must be before the sweeper resumes it.
    pub reconcile_after: Duration,
    /// How often the sweeper runs.
    pub sweep_interval: Duration,
    /// The keys of the tickets it issues.
    pub tickets: TicketKeys,
    /// Ends a sale whose last seat sold (the sweeper's check).
    pub sale_control: Arc<SaleControl>,
}

impl Purchases {
    /// The circuit breakers' states: the database's and the payment provider's.
    pub fn breakers(&self) -> Vec<crate::breaker::Snapshot> {
        vec![
            self.store.breaker().snapshot(),
            self.provider.breaker().snapshot(),
        ]
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn seconds_ago(now_ms: i64, then_ms: i64) -> i64 {
    (now_ms - then_ms).max(0) / 1_000
}

/// Holds seats for `buyer` in `event`.
pub async fn hold(
    purchases: &Purchases,
    buyer: &Buyer,
    event: &EventRecord,
    selection: Selection,
) -> ApiResult<HoldRecord> {
    if matches!(event.sale_state, SaleState::Closed) {
        return Err(ApiError::FailedPrecondition(format!(
            "the sale of {:?} is closed",
            event.id
        )));
    }
    let shape = purchases.catalog.shape(event).await?;
    let cap = event.max_tickets_per_fan;
    match &selection {
        Selection::Seats(ids) => {
            if ids.is_empty() {
                return Err(ApiError::InvalidArgument(
                    "seats.seat_ids is empty; list the seats to hold".into(),
                ));
            }
            if ids.len() > cap as usize {
                return Err(ApiError::InvalidArgument(format!(
                    "{} seats were asked for; at most {cap} tickets per fan are allowed for this event",
                    ids.len()
                )));
            }
            let mut seen = HashSet::new();
            for id in ids {
                if !seen.insert(id) {
                    return Err(ApiError::InvalidArgument(format!(
                        "seat {id} is listed twice in seats.seat_ids"
                    )));
                }
                if shape.section_of(*id).is_none() {
                    return Err(ApiError::NotFound(format!(
                        "event {:?} has no seat {id}",
                        event.id
                    )));
                }
            }
        }
        Selection::Best {
            section_id,
            quantity,
        } => {
            if shape.section_index(section_id).is_none() {
                return Err(ApiError::NotFound(format!(
                    "event {:?} has no section {section_id:?}",
                    event.id
                )));
            }
            if *quantity == 0 || *quantity > cap {
                return Err(ApiError::InvalidArgument(format!(
                    "best_available.quantity must be between 1 and {cap} (the per-fan cap of this event)"
                )));
            }
        }
    }
    let now = purchases.clock.now_ms();
    let request = NewHold {
        hold_id: new_id("h"),
        event_id: event.id.clone(),
        fan_id: buyer.fan_id.clone(),
        selection: selection.clone(),
        max_per_fan: cap,
        now_ms: now,
        expires_at_ms: now + purchases.hold_ttl.as_millis() as i64,
    };
    match purchases.store.hold_seats(&request).await? {
        HoldOutcome::Held(hold) => Ok(hold),
        HoldOutcome::Taken(ids) => {
            let names: Vec<String> = ids
                .iter()
                .map(|id| shape.describe(*id).unwrap_or_else(|| format!("seat {id}")))
                .collect();
            Err(ApiError::Aborted(format!(
                "{} {} just taken by someone else; nothing was held, choose other seats (seat ids: {})",
                names.join(", "),
                if ids.len() == 1 { "was" } else { "were" },
                ids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        HoldOutcome::OverCap { already, cap } => Err(ApiError::FailedPrecondition(format!(
            "you already hold or bought {already} of the {cap} tickets allowed per fan for this event"
        ))),
        HoldOutcome::NotEnough { available } => {
            let section = match &selection {
                Selection::Best { section_id, .. } => section_id.as_str(),
                Selection::Seats(_) => "",
            };
            Err(ApiError::FailedPrecondition(if available == 0 {
                format!("no seats are free in section {section:?} right now")
            } else {
                format!("only {available} seats are free in section {section:?} right now")
            }))
        }
    }
}

/// Loads a hold the caller may act on; another fan's hold is reported as missing.
async fn own_hold(
    purchases: &Purchases,
    credential: &Credential,
    hold_id: &str,
) -> ApiResult<(HoldRecord, Buyer)> {
    let missing = || ApiError::NotFound(format!("there is no hold {hold_id:?}"));
    let hold = purchases
        .store
        .get_hold(hold_id)
        .await?
        .ok_or_else(missing)?;
    let buyer = credential.buyer_for(&hold.event_id)?;
    if hold.fan_id != buyer.fan_id {
        return Err(missing());
    }
    Ok((hold, buyer))
}

/// Releases a hold.
pub async fn release(
    purchases: &Purchases,
    credential: &Credential,
    hold_id: &str,
) -> ApiResult<u32> {
    let (_, buyer) = own_hold(purchases, credential, hold_id).await?;
    match purchases
        .store
        .release_hold(hold_id, &buyer.fan_id, purchases.clock.now_ms())
        .await?
    {
        ReleaseOutcome::Released(n) => {
            if let Credential::Pass(pass) = credential
                && let Err(e) = purchases.waiting_room.stopped_buying(pass).await
            {
                // The slot then lasts until the pass expires, as before the release.
                tracing::warn!(error = %e, "could not restart the no-show clock of a released hold");
            }
            Ok(n)
        }
        ReleaseOutcome::NotFound => {
            Err(ApiError::NotFound(format!("there is no hold {hold_id:?}")))
        }
        ReleaseOutcome::NotActive(HoldState::CheckedOut) => Err(ApiError::FailedPrecondition(
            format!("hold {hold_id:?} was already checked out; its seats belong to an order"),
        )),
        ReleaseOutcome::NotActive(HoldState::Expired) => Err(ApiError::FailedPrecondition(
            format!("hold {hold_id:?} had already expired; its seats are back on sale"),
        )),
        ReleaseOutcome::NotActive(_) => Err(ApiError::FailedPrecondition(format!(
            "hold {hold_id:?} was already released"
        ))),
    }
}

/// Checks an idempotency key: 8–64 characters of `[A-Za-z0-9_-]`.
pub fn check_idempotency_key(key: &str) -> ApiResult<()> {
    let ok = (8..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(
            "idempotency_key must be 8 to 64 characters of letters, digits, '-' and '_' \
             (e.g. a UUID); reuse it to retry the same call"
                .into(),
        ))
    }
}

/// Turns a hold into an order. The store checks the hold is the caller's (and in their pass's
/// event), so the hold is read only to explain a refusal.
pub async fn checkout(
    purchases: &Purchases,
    credential: &Credential,
    hold_id: &str,
    key: &str,
) -> ApiResult<OrderRecord> {
    check_idempotency_key(key)?;
    // A missing hold, another fan's, one outside the pass's event, or an operator who named no
    // fan: the refusal `own_hold` gives.
    let explain = || async {
        match own_hold(purchases, credential, hold_id).await {
            Err(e) => e,
            Ok(_) => ApiError::NotFound(format!("there is no hold {hold_id:?}")),
        }
    };
    let Some(fan_id) = credential.fan_id() else {
        return Err(explain().await);
    };
    let event_id = match credential {
        Credential::Pass(pass) => Some(pass.ev.clone()),
        Credential::Operator { .. } => None,
    };
    let now = purchases.clock.now_ms();
    let request = NewOrder {
        order_id: new_id("o"),
        hold_id: hold_id.to_string(),
        fan_id: fan_id.to_string(),
        event_id,
        checkout_key: key.to_string(),
        now_ms: now,
        expires_at_ms: now + purchases.payment_ttl.as_millis() as i64,
    };
    let outcome = match purchases.store.checkout(&request).await {
        // Two checkouts with one key at once: the loser finds the winner's order.
        Err(crate::store::StoreError::Conflict(_)) => purchases.store.checkout(&request).await?,
        other => other?,
    };
    match outcome {
        CheckoutOutcome::Created(order) | CheckoutOutcome::Existing(order) => Ok(order),
        CheckoutOutcome::HoldNotFound => Err(explain().await),
        CheckoutOutcome::HoldExpired | CheckoutOutcome::HoldNotActive(HoldState::Expired) => {
            let (hold, _) = own_hold(purchases, credential, hold_id).await?;
            Err(ApiError::FailedPrecondition(format!(
                "hold {hold_id:?} expired {} s ago and its seats went back on sale; hold seats again",
                seconds_ago(now, hold.expires_at_ms)
            )))
        }
        CheckoutOutcome::HoldNotActive(purchases) => Err(ApiError::FailedPrecondition(format!(
            "hold {hold_id:?} cannot be checked out: it is {}",
            purchases.as_db().to_lowercase().replace('_', " ")
        ))),
        CheckoutOutcome::KeyUsedForOtherHold => {
            own_hold(purchases, credential, hold_id).await?;
            Err(ApiError::InvalidArgument(
                "idempotency_key was already used for another checkout; use a new key for a new checkout"
                    .into(),
            ))
        }
    }
}

/// An order the caller may see; another fan's order is reported as missing.
pub async fn get_order(
    purchases: &Purchases,
    credential: &Credential,
    order_id: &str,
) -> ApiResult<OrderRecord> {
    let missing = || ApiError::NotFound(format!("there is no order {order_id:?}"));
    let order = purchases
        .store
        .get_order(order_id)
        .await?
        .ok_or_else(missing)?;
    if !credential.is_operator() {
        let buyer = credential.buyer_for(&order.event_id)?;
        if buyer.fan_id != order.fan_id {
            return Err(missing());
        }
    }
    Ok(order)
}

/// Pays an order with a card.
pub async fn pay(
    purchases: &Purchases,
    credential: &Credential,
    order_id: &str,
    key: &str,
    card: &CardDetails,
) -> ApiResult<(OrderRecord, PaymentRecord)> {
    check_idempotency_key(key)?;
    // The caller's right to the order is checked inside begin_payment: a fan pays only their
    // own orders, with a pass for the order's event; an operator pays any.
    let (fan_id, event_id) = match credential {
        Credential::Operator { .. } => (None, None),
        Credential::Pass(pass) => (Some(pass.fan.clone()), Some(pass.ev.clone())),
    };
    for attempt in 0..2 {
        let now = purchases.clock.now_ms();
        let begin = purchases
            .store
            .begin_payment(&NewPayment {
                payment_id: new_id("p"),
                order_id: order_id.to_string(),
                fan_id: fan_id.clone(),
                event_id: event_id.clone(),
                idempotency_key: key.to_string(),
                provider: purchases.provider.name().to_string(),
                now_ms: now,
            })
            .await;
        let begin = match begin {
            // Two first calls with one key at once: the loser replays the winner's attempt.
            Err(crate::store::StoreError::Conflict(_)) if attempt == 0 => continue,
            other => other?,
        };
        let (payment, sold) = match begin {
            BeginPayment::Started(payment, order) => {
                drive(purchases, payment, &order, card).await?
            }
            BeginPayment::Replay(payment, _) if payment.state.in_flight() => {
                (resume_payment(purchases, payment).await?, None)
            }
            BeginPayment::Replay(payment, _) => (payment, None),
            BeginPayment::InFlight(other) => {
                if other.updated_at_ms < now - purchases.reconcile_after.as_millis() as i64
                    && attempt == 0
                {
                    resume_payment(purchases, other).await?;
                    continue;
                }
                return Err(ApiError::Aborted(
                    "another payment for this order is in progress; wait for it, then retry".into(),
                ));
            }
            BeginPayment::NotPayable(order) => return Err(not_payable(&order, now)),
            BeginPayment::OrderNotFound => {
                return Err(ApiError::NotFound(format!(
                    "there is no order {order_id:?}"
                )));
            }
        };
        let order = match sold {
            Some(order) => order,
            None => purchases
                .store
                .get_order(order_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("there is no order {order_id:?}")))?,
        };
        return Ok((order, payment));
    }
    Err(ApiError::Aborted(
        "another payment for this order is in progress; wait for it, then retry".into(),
    ))
}

fn not_payable(order: &OrderRecord, now: i64) -> ApiError {
    match order.state {
        OrderState::Paid => {
            ApiError::FailedPrecondition(format!("order {:?} is already paid", order.id))
        }
        OrderState::Refunded => {
            ApiError::FailedPrecondition(format!("order {:?} was refunded", order.id))
        }
        OrderState::Cancelled => {
            ApiError::FailedPrecondition(format!("order {:?} was cancelled", order.id))
        }
        OrderState::PendingPayment | OrderState::Expired => ApiError::FailedPrecondition(format!(
            "the time to pay order {:?} ran out {} s ago and its seats went back on sale",
            order.id,
            seconds_ago(now, order.expires_at_ms)
        )),
    }
}

/// An attempt as far as it went and, when it sold the seats of an order the caller already had
/// in hand, that order as it now stands (so it need not be read back).
type Settled = (PaymentRecord, Option<OrderRecord>);

/// Sends a new attempt to the provider and carries it as far as it goes.
async fn drive(
    purchases: &Purchases,
    payment: PaymentRecord,
    order: &OrderRecord,
    card: &CardDetails,
) -> ApiResult<Settled> {
    let answer = purchases
        .provider
        .authorize(
            &payment.provider_idempotency_key,
            payment.amount_minor,
            &payment.currency,
            card,
        )
        .await;
    let intent = match answer {
        Ok(intent) => intent,
        Err(ProviderError::Timeout) => {
            match purchases
                .provider
                .find(&payment.provider_idempotency_key)
                .await
            {
                Ok(Some(intent)) => intent,
                _ => return Err(in_doubt()),
            }
        }
        Err(ProviderError::NotSent { why, retry_after }) => {
            purchases.store.forget_payment(&payment.id).await?;
            return Err(why.api_error(retry_after));
        }
        Err(ProviderError::Unavailable(reason)) => {
            tracing::warn!(%reason, payment = %payment.id, "payment provider unavailable");
            purchases.store.forget_payment(&payment.id).await?;
            return Err(ApiError::Unavailable(
                "the payment provider is unavailable; nothing was charged, please retry shortly"
                    .into(),
            ));
        }
        Err(ProviderError::Rejected(reason)) => {
            let now = purchases.clock.now_ms();
            purchases
                .store
                .finish_payment(&payment.id, PaymentState::Failed, None, &reason, now)
                .await?;
            return Ok((reload(purchases, &payment.id).await?, None));
        }
    };
    after_authorization(purchases, payment, Some(order), intent).await
}

fn in_doubt() -> ApiError {
    ApiError::Unavailable(
        "the payment provider did not answer in time; your payment is being confirmed. \
         Call Pay again with the same idempotency key to see the result (you will not be charged twice)"
            .into(),
    )
}

/// The answer to a payment left in flight (authorized, maybe captured) by a provider call that
/// did not finish: the same key, retried, finishes it; a call not sent says when to retry.
fn unfinished(e: ProviderError) -> ApiError {
    match e {
        ProviderError::NotSent { why, retry_after } => {
            let retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
            let message = format!(
                "your payment is being confirmed but the payment provider cannot be reached \
                 right now. Call Pay again with the same idempotency key in {} s to see the \
                 result (you will not be charged twice)",
                retry_after_ms.div_ceil(1_000).max(1)
            );
            match why {
                crate::payments::NotSent::BreakerOpen => ApiError::CircuitOpen {
                    message,
                    retry_after_ms,
                },
                crate::payments::NotSent::RateLimited => ApiError::ResourceExhausted {
                    message,
                    retry_after_ms,
                },
            }
        }
        _ => in_doubt(),
    }
}

async fn reload(purchases: &Purchases, payment_id: &str) -> ApiResult<PaymentRecord> {
    purchases
        .store
        .get_payment(payment_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("payment {payment_id} vanished")))
}

/// Carries an attempt on from the provider's view of its intent.
async fn after_authorization(
    purchases: &Purchases,
    payment: PaymentRecord,
    order: Option<&OrderRecord>,
    intent: Intent,
) -> ApiResult<Settled> {
    let now = purchases.clock.now_ms();
    match intent.status {
        IntentStatus::Declined => {
            let reason = format!(
                "card declined: {}",
                intent
                    .decline_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            );
            purchases
                .store
                .finish_payment(
                    &payment.id,
                    PaymentState::Failed,
                    Some(&intent.id),
                    &reason,
                    now,
                )
                .await?;
        }
        IntentStatus::Canceled => {
            purchases
                .store
                .finish_payment(
                    &payment.id,
                    PaymentState::Voided,
                    Some(&intent.id),
                    "authorization released",
                    now,
                )
                .await?;
        }
        IntentStatus::Refunded => {
            purchases
                .store
                .finish_payment(
                    &payment.id,
                    PaymentState::Refunded,
                    Some(&intent.id),
                    "refunded",
                    now,
                )
                .await?;
        }
        IntentStatus::RequiresCapture => {
            let until = now + CAPTURE_WINDOW.as_millis() as i64;
            if !lock_outlasts(order, until)
                && !purchases
                    .store
                    .claim_for_capture(&payment.id, &intent.id, now, until)
                    .await?
            {
                // A concurrent retry of the same attempt may have completed it meanwhile.
                let current = reload(purchases, &payment.id).await?;
                if !current.state.in_flight() {
                    return Ok((current, None));
                }
                return void_lapsed(purchases, &payment, &intent)
                    .await
                    .map(|p| (p, None));
            }
            match purchases.provider.capture(&intent.id).await {
                Ok(captured) if captured.status == IntentStatus::Succeeded => {
                    return complete(purchases, &payment, order, &intent).await;
                }
                Ok(other) => {
                    tracing::error!(intent = %other.id, status = ?other.status, "capture did not succeed");
                    purchases
                        .store
                        .finish_payment(
                            &payment.id,
                            PaymentState::Voided,
                            Some(&intent.id),
                            "the provider would not capture",
                            now,
                        )
                        .await?;
                }
                Err(ProviderError::Rejected(reason)) => {
                    purchases
                        .store
                        .finish_payment(
                            &payment.id,
                            PaymentState::Voided,
                            Some(&intent.id),
                            &reason,
                            now,
                        )
                        .await?;
                }
                // Timeout or outage: the attempt stays AUTHORIZED with its seats claimed; the
                // retry of the same key, or the sweeper, captures it.
                Err(e) => return Err(unfinished(e)),
            }
        }
        IntentStatus::Succeeded => return complete(purchases, &payment, order, &intent).await,
    }
    Ok((reload(purchases, &payment.id).await?, None))
}

/// Whether the order, as this attempt read it when it began, keeps its seats until `until` (the
/// end of the capture window) without a claim. A hard lock only ever grows while the order is
/// pending (a claim extends it; nothing shortens it), no other attempt can be in flight, and
/// nobody may take a seat before its lock's time: so if the lock the attempt saw lasts past
/// the window, the seats are the order's throughout the capture, which is all the claim would
/// establish (its extension would change nothing). The claim's round trip is then skipped and
/// the attempt stays PENDING until the sale records it CAPTURED; a resumed attempt, which did
/// not read the order, always claims.
fn lock_outlasts(order: Option<&OrderRecord>, until: i64) -> bool {
    order.is_some_and(|o| o.state == OrderState::PendingPayment && o.expires_at_ms >= until)
}

/// The order's lock lapsed before the money moved: release the authorization.
async fn void_lapsed(
    purchases: &Purchases,
    payment: &PaymentRecord,
    intent: &Intent,
) -> ApiResult<PaymentRecord> {
    match purchases.provider.void(&intent.id).await {
        Ok(_) => {
            let now = purchases.clock.now_ms();
            purchases
                .store
                .finish_payment(
                    &payment.id,
                    PaymentState::Voided,
                    Some(&intent.id),
                    "the time to pay ran out before the payment went through; the authorization was released",
                    now,
                )
                .await?;
            Err(ApiError::FailedPrecondition(
                "the time to pay this order ran out before the payment went through; \
                 the authorization was released and you were not charged"
                    .into(),
            ))
        }
        // The sweeper voids it later; the seats are gone either way.
        Err(_) => Err(ApiError::FailedPrecondition(
            "the time to pay this order ran out before the payment went through; \
             you will not be charged"
                .into(),
        )),
    }
}

/// Captured: sell the seats and issue the tickets, or refund if the seats are gone. `known` is
/// the order as the caller read it when the attempt began, if it did.
async fn complete(
    purchases: &Purchases,
    payment: &PaymentRecord,
    known: Option<&OrderRecord>,
    intent: &Intent,
) -> ApiResult<Settled> {
    let loaded;
    let order = match known {
        Some(order) => order,
        None => {
            loaded = purchases
                .store
                .get_order(&payment.order_id)
                .await?
                .ok_or_else(|| {
                    ApiError::Internal(format!("order {} vanished", payment.order_id))
                })?;
            &loaded
        }
    };
    let now = purchases.clock.now_ms();
    let signer = purchases.tickets.signer(&order.event_id);
    let tickets: Vec<NewTicket> = order
        .items
        .iter()
        .map(|seat| {
            let id = new_id("t");
            let code = signer.sign(
                TokenKind::Ticket,
                &TicketClaims {
                    ev: order.event_id.clone(),
                    seat: seat.seat_id,
                    ord: order.id.clone(),
                    tk: id.clone(),
                    iat: now,
                },
            );
            NewTicket {
                id,
                seat_id: seat.seat_id,
                code,
            }
        })
        .collect();
    if let Some(expires_at_ms) = purchases
        .store
        .complete_sale(&payment.id, &intent.id, &tickets, now)
        .await?
    {
        purchases.catalog.invalidate_counts();
        // The sale wrote exactly this: the attempt captured with its intent, the order paid with
        // these tickets. The records as they now stand, without reading them back.
        let captured = PaymentRecord {
            state: PaymentState::Captured,
            provider_intent_id: Some(intent.id.clone()),
            updated_at_ms: now,
            ..payment.clone()
        };
        let sold = known.map(|order| sold_order(order, expires_at_ms, &captured, &tickets, now));
        return Ok((captured, sold));
    }
    // Already completed by a concurrent resume of the same attempt?
    let current = reload(purchases, &payment.id).await?;
    if current.state == PaymentState::Captured {
        return Ok((current, None));
    }
    tracing::error!(payment = %payment.id, order = %order.id, "captured but the seats are gone: refunding");
    match purchases.provider.refund(&intent.id).await {
        Ok(_) => {
            purchases
                .store
                .finish_payment(
                    &payment.id,
                    PaymentState::Refunded,
                    Some(&intent.id),
                    "the seats were no longer held; refunded",
                    now,
                )
                .await?;
            Err(ApiError::FailedPrecondition(
                "the seats of this order were no longer held when the payment completed; the charge was refunded"
                    .into(),
            ))
        }
        Err(_) => Err(in_doubt()),
    }
}

/// `order` after its sale completed with `payment`: paid, with `tickets`, its time to pay as
/// the sale found it (`expires_at_ms`), and `payment` after the attempts it had (in the order
/// `GetOrder` lists them: by creation time, then id).
fn sold_order(
    order: &OrderRecord,
    expires_at_ms: i64,
    payment: &PaymentRecord,
    tickets: &[NewTicket],
    now: i64,
) -> OrderRecord {
    let mut payments: Vec<PaymentRecord> = order
        .payments
        .iter()
        .filter(|p| p.id != payment.id)
        .cloned()
        .chain(std::iter::once(payment.clone()))
        .collect();
    payments.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    let mut tickets: Vec<TicketRecord> = tickets
        .iter()
        .map(|t| TicketRecord {
            id: t.id.clone(),
            seat_id: t.seat_id,
            code: t.code.clone(),
            state: TicketState::Valid,
            issued_at_ms: now,
        })
        .collect();
    tickets.sort_by_key(|t| t.seat_id);
    OrderRecord {
        state: OrderState::Paid,
        expires_at_ms,
        paid_at_ms: Some(now),
        payments,
        tickets,
        ..order.clone()
    }
}

/// Picks up an attempt left in flight (after a timeout, outage or crash) from the provider's
/// record of it.
pub async fn resume_payment(
    purchases: &Purchases,
    payment: PaymentRecord,
) -> ApiResult<PaymentRecord> {
    let intent = match purchases
        .provider
        .find(&payment.provider_idempotency_key)
        .await
    {
        Ok(Some(intent)) => intent,
        Ok(None) => {
            let now = purchases.clock.now_ms();
            if payment.updated_at_ms < now - purchases.reconcile_after.as_millis() as i64 {
                purchases
                    .store
                    .finish_payment(
                        &payment.id,
                        PaymentState::Failed,
                        None,
                        "the payment never reached the provider",
                        now,
                    )
                    .await?;
                return reload(purchases, &payment.id).await;
            }
            return Err(in_doubt());
        }
        Err(e) => return Err(unfinished(e)),
    };
    Ok(after_authorization(purchases, payment, None, intent)
        .await?
        .0)
}

/// Runs the sweeper until `stop` flips: lapsed locks back to sale, holds and orders expired,
/// payments in flight reconciled. Several nodes may run it at once.
pub async fn run_sweeper(purchases: Arc<Purchases>, mut stop: crate::shutdown::Shutdown) {
    let mut ticker = tokio::time::interval(purchases.sweep_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.started() => return,
        }
        if let Err(e) = sweep_once(&purchases).await {
            tracing::warn!(error = %e, "sweep failed; will retry");
        }
    }
}

/// How old the seat counts behind metrics and the sold-out check may be: reading them is a
/// `GROUP BY` over every seat (~145 ms of PostgreSQL for the LUX Tour's 142,000 while it
/// sells), which twice a second took 30 % of a core from the sales path.
const BACKGROUND_COUNTS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(5);

/// Publishes each event's queue and seat figures as metrics.
async fn publish_figures(purchases: &Purchases) -> ApiResult<()> {
    for breaker in purchases.breakers() {
        purchases.metrics.set_breaker(&breaker);
    }
    if purchases.store.backend() == crate::store::Backend::Postgres {
        purchases.metrics.set_fast_path(purchases.store.fast_path());
        purchases.metrics.set_batches(purchases.store.fast_path());
    }
    let counts = purchases
        .catalog
        .recent_counts(purchases.clock.now_ms(), BACKGROUND_COUNTS_MAX_AGE)
        .await?;
    for (event_id, sections) in counts.iter() {
        let mut seats = crate::domain::InventoryCounts::default();
        for c in sections.values() {
            seats.merge(c);
        }
        let mut figures = crate::metrics::EventFigures {
            available: seats.available.into(),
            soft_locked: seats.soft_locked.into(),
            hard_locked: seats.hard_locked.into(),
            sold: seats.sold.into(),
            ..Default::default()
        };
        if purchases.waiting_room.event_ids().contains(event_id)
            && let Some(event) = purchases.catalog.event(event_id).await?
        {
            let room = purchases.waiting_room.stats(&event).await?;
            figures.prequeue = room.prequeue;
            figures.waiting = room.waiting.iter().sum();
            figures.active = room.active;
            figures.admitted_total = room.admitted_total;
            figures.watchers = room.watchers;
            figures.auto_limit = room.auto_limit.map(u64::from);
        }
        purchases.metrics.set_event(event_id, &figures);
    }
    Ok(())
}

/// Ends the queue of every event whose seats are all sold: waiting fans are told SOLD_OUT.
async fn end_sold_out_queues(purchases: &Purchases) -> ApiResult<()> {
    let events = purchases.waiting_room.event_ids();
    if events.is_empty() {
        return Ok(());
    }
    // Capacities never change, so counts of any age tell which events have seats at all.
    let counts = purchases
        .catalog
        .recent_counts(purchases.clock.now_ms(), BACKGROUND_COUNTS_MAX_AGE)
        .await?;
    for event_id in events {
        let capacity: u32 = counts
            .get(&event_id)
            .map(|sections| sections.values().map(|c| c.capacity).sum())
            .unwrap_or(0);
        if capacity == 0 {
            continue;
        }
        let Some(event) = purchases.catalog.event(&event_id).await? else {
            continue;
        };
        if !matches!(
            event.sale_state,
            SaleState::Open | SaleState::Paused | SaleState::NotOpen
        ) || purchases.store.has_unsold_seats(&event_id).await?
        {
            continue;
        }
        purchases
            .sale_control
            .apply(&event, SaleChange::to_state(&event, SaleState::SoldOut))
            .await?;
        tracing::info!(event = %event_id, "sold out: the queue has ended");
    }
    Ok(())
}

/// One pass of the sweeper.
pub async fn sweep_once(purchases: &Purchases) -> ApiResult<()> {
    const BATCH: i64 = 5_000;
    loop {
        let stats = purchases
            .store
            .sweep(purchases.clock.now_ms(), BATCH)
            .await?;
        if stats.seats_freed + stats.holds_expired + stats.orders_expired > 0 {
            tracing::debug!(?stats, "swept");
            purchases.catalog.invalidate_counts();
        }
        if stats.seats_freed < BATCH as u64
            && stats.holds_expired < BATCH as u64
            && stats.orders_expired < BATCH as u64
        {
            break;
        }
    }
    end_sold_out_queues(purchases).await?;
    publish_figures(purchases).await?;
    let before = purchases.clock.now_ms() - purchases.reconcile_after.as_millis() as i64;
    for payment in purchases.store.stale_payments(before, 100).await? {
        let id = payment.id.clone();
        match resume_payment(purchases, payment).await {
            Ok(p) => {
                tracing::info!(payment = %id, purchases = ?p.state, "reconciled a payment left in flight")
            }
            Err(e) => tracing::debug!(payment = %id, error = %e, "payment still in doubt"),
        }
    }
    Ok(())
}

/// Refunds a paid order (operator action): the charge is refunded at the provider first (safe
/// to repeat), then tickets, payment and order are marked refunded and, if asked, the seats go
/// back on sale. Refunding a refunded order returns it unchanged.
pub async fn refund(
    purchases: &Purchases,
    order_id: &str,
    return_seats: bool,
) -> ApiResult<OrderRecord> {
    let order = purchases
        .store
        .get_order(order_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no order {order_id:?}")))?;
    match order.state {
        OrderState::Refunded => return Ok(order),
        OrderState::Paid => {}
        other => {
            return Err(ApiError::FailedPrecondition(format!(
                "order {order_id:?} is {} and has nothing to refund",
                other.as_db().to_lowercase().replace('_', " ")
            )));
        }
    }
    let Some(intent_id) = order
        .payments
        .iter()
        .find(|p| p.state == PaymentState::Captured)
        .and_then(|p| p.provider_intent_id.clone())
    else {
        return Err(ApiError::Internal(format!(
            "paid order {order_id} has no captured payment"
        )));
    };
    match purchases.provider.refund(&intent_id).await {
        Ok(_) => {}
        Err(ProviderError::Rejected(reason)) => {
            return Err(ApiError::FailedPrecondition(format!(
                "the provider refused the refund: {reason}"
            )));
        }
        Err(_) => {
            return Err(ApiError::Unavailable(
                "the payment provider did not confirm the refund; retry (it will not refund twice)"
                    .into(),
            ));
        }
    }
    match purchases
        .store
        .refund_order(order_id, return_seats, purchases.clock.now_ms())
        .await?
    {
        crate::store::RefundOutcome::Refunded(order) => {
            purchases.catalog.invalidate_counts();
            Ok(*order)
        }
        crate::store::RefundOutcome::NotPaid(OrderState::Refunded) => purchases
            .store
            .get_order(order_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("there is no order {order_id:?}"))),
        crate::store::RefundOutcome::NotPaid(other) => Err(ApiError::FailedPrecondition(format!(
            "order {order_id:?} is {} and has nothing to refund",
            other.as_db().to_lowercase().replace('_', " ")
        ))),
        crate::store::RefundOutcome::NotFound => Err(ApiError::NotFound(format!(
            "there is no order {order_id:?}"
        ))),
    }
}
