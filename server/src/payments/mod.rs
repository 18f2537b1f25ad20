//! Payment providers. The purchase path talks to a [`PaymentProvider`] with Stripe-like
//! semantics: an authorization creates an *intent* keyed by our idempotency key (asking twice
//! with one key returns the same intent, never a second charge), which is then captured, voided
//! or refunded. [`simulated::SimulatedProvider`] is the shipped provider: configurable latency,
//! decline rate, timeout rate and an outage switch. It runs inside each server node, or as a
//! process of its own that several nodes share ([`simulator_service`] serves it,
//! [`remote::RemoteProvider`] calls it), as a real provider would be.

pub mod guarded;
pub mod remote;
pub mod simulated;
pub mod simulator_service;

use async_trait::async_trait;

/// Where a payment intent stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentStatus {
    /// Authorized: funds reserved, not yet charged.
    RequiresCapture,
    /// Charged.
    Succeeded,
    /// Authorization released without charge.
    Canceled,
    /// The card was declined; nothing reserved.
    Declined,
    /// Charged, then refunded.
    Refunded,
}

/// A payment intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub id: String,
    pub status: IntentStatus,
    pub amount_minor: i64,
    pub currency: String,
    /// Why it was declined, for a person.
    pub decline_reason: Option<String>,
}

/// A card as the provider receives it (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDetails {
    pub number: String,
    pub exp_month: u32,
    pub exp_year: u32,
    pub cvc: String,
}

/// A provider call that did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// No answer in time: the request may or may not have been processed. Reconcile by key.
    #[error("the payment provider did not answer in time")]
    Timeout,
    /// The request certainly was not processed (provider down, connection refused).
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the operation (e.g. capturing a canceled intent).
    #[error("the payment provider refused: {0}")]
    Rejected(String),
    /// The call was not sent: certainly not processed. Retry after `retry_after`.
    #[error("the payment call was not sent ({why:?}); retry in {retry_after:?}")]
    NotSent {
        why: NotSent,
        retry_after: std::time::Duration,
    },
}

/// Why a payment call was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    /// The provider's circuit breaker is open.
    BreakerOpen,
    /// The calls waiting for the provider's contract rate would take too long.
    RateLimited,
}

impl NotSent {
    /// The answer to a fan whose call was not sent.
    pub fn api_error(self, retry_after: std::time::Duration) -> crate::error::ApiError {
        let retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
        let seconds = retry_after_ms.div_ceil(1_000).max(1);
        match self {
            NotSent::BreakerOpen => crate::error::ApiError::CircuitOpen {
                message: format!(
                    "the payment provider is failing, so payments are paused while it recovers; \
                     nothing was charged and the order stays payable, please retry in {seconds} s"
                ),
                retry_after_ms,
            },
            NotSent::RateLimited => crate::error::ApiError::ResourceExhausted {
                message: format!(
                    "too many payments are waiting for the payment provider; nothing was \
                     charged and the order stays payable, please retry in {seconds} s"
                ),
                retry_after_ms,
            },
        }
    }
}

/// A payment provider.
#[async_trait]
pub trait PaymentProvider: Send + Sync + std::fmt::Debug + 'static {
    /// Name stored with each payment.
    fn name(&self) -> &'static str;

    /// Authorizes `amount_minor`; idempotent by `idempotency_key`.
    async fn authorize(
        &self,
        idempotency_key: &str,
        amount_minor: i64,
        currency: &str,
        card: &CardDetails,
    ) -> Result<Intent, ProviderError>;

    /// Captures an authorized intent; capturing a captured intent returns it unchanged.
    async fn capture(&self, intent_id: &str) -> Result<Intent, ProviderError>;

    /// Releases an authorization without charging; voiding a canceled intent returns it.
    async fn void(&self, intent_id: &str) -> Result<Intent, ProviderError>;

    /// Refunds a captured intent.
    async fn refund(&self, intent_id: &str) -> Result<Intent, ProviderError>;

    /// The intent created with `idempotency_key`, if any: how a timeout is reconciled.
    async fn find(&self, idempotency_key: &str) -> Result<Option<Intent>, ProviderError>;
}
