//! Turning a hold into an order, and reading one's own orders.

use super::hold::own_hold;
use super::*;

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
