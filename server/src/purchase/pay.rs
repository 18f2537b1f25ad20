//! Paying an order, step by step (this module's parent says how), and picking up an
//! attempt left in flight.

use super::*;

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

pub(super) fn not_payable(order: &OrderRecord, now: i64) -> ApiError {
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
pub(super) type Settled = (PaymentRecord, Option<OrderRecord>);

/// Sends a new attempt to the provider and carries it as far as it goes.
pub(super) async fn drive(
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

pub(super) fn in_doubt() -> ApiError {
    ApiError::Unavailable(
        "the payment provider did not answer in time; your payment is being confirmed. \
         Call Pay again with the same idempotency key to see the result (you will not be charged twice)"
            .into(),
    )
}

/// The answer to a payment left in flight (authorized, maybe captured) by a provider call that
/// did not finish: the same key, retried, finishes it; a call not sent says when to retry.
pub(super) fn unfinished(e: ProviderError) -> ApiError {
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

pub(super) async fn reload(purchases: &Purchases, payment_id: &str) -> ApiResult<PaymentRecord> {
    purchases
        .store
        .get_payment(payment_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("payment {payment_id} vanished")))
}

/// Carries an attempt on from the provider's view of its intent.
pub(super) async fn after_authorization(
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
pub(super) fn lock_outlasts(order: Option<&OrderRecord>, until: i64) -> bool {
    order.is_some_and(|o| o.state == OrderState::PendingPayment && o.expires_at_ms >= until)
}

/// The order's lock lapsed before the money moved: release the authorization.
pub(super) async fn void_lapsed(
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
pub(super) async fn complete(
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
    let signer = purchases.tickets.signer();
    let tickets: Vec<NewTicket> = order
        .items
        .iter()
        .map(|seat| {
            let id = new_id("t");
            let code = signer.sign(&TicketClaims {
                ev: order.event_id.clone(),
                seat: seat.seat_id,
                ord: order.id.clone(),
                tk: id.clone(),
                iat: now,
            });
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
pub(super) fn sold_order(
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
