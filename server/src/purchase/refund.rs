//! Refunding a paid order, with or without returning its seats to sale.

use super::*;

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
