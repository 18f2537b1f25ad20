//! The simulated payment provider reached over gRPC (`taquilla-paysim`, service
//! `taquilla.sim.v1.PaymentSimulator`): what several server nodes use so that they pay through
//! one provider, as they would through a real one. An intent authorized through one node can be
//! captured, voided or reconciled through another, and an outage hits every node at once.
//!
//! Answers map to [`ProviderError`] on the safe side: only the provider's own "down, nothing
//! processed" answer (UNAVAILABLE with `x-provider-outage`) is [`ProviderError::Unavailable`],
//! after which the purchase path forgets the attempt. Anything that may have reached the
//! provider without an answer (no answer in time, a connection that broke, a lost answer) is a
//! [`ProviderError::Timeout`], which the purchase path reconciles by idempotency key: a call is
//! never taken for unprocessed unless the provider said so.

use std::time::Duration;

use async_trait::async_trait;
use taquilla_proto::sim;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::{CardDetails, Intent, IntentStatus, PaymentProvider, ProviderError};

/// Metadata the simulator sets on an UNAVAILABLE answer it did not process.
pub const OUTAGE_HEADER: &str = "x-provider-outage";

/// A [`PaymentProvider`] that forwards each call to a `taquilla-paysim` process.
#[derive(Debug, Clone)]
pub struct RemoteProvider {
    client: sim::payment_simulator_client::PaymentSimulatorClient<Channel>,
    timeout: Duration,
}

impl RemoteProvider {
    /// Talks to the simulator at `channel`; a call without an answer within `timeout` is a
    /// [`ProviderError::Timeout`].
    pub fn new(channel: Channel, timeout: Duration) -> RemoteProvider {
        RemoteProvider {
            client: sim::payment_simulator_client::PaymentSimulatorClient::new(channel),
            timeout,
        }
    }

    async fn call<T, F>(&self, call: F) -> Result<T, ProviderError>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(ProviderError::Timeout),
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(provider_error(&status)),
        }
    }
}

/// What a status from the simulator (or from the connection to it) means for the payment.
pub fn provider_error(status: &Status) -> ProviderError {
    match status.code() {
        Code::Unavailable if status.metadata().get(OUTAGE_HEADER).is_some() => {
            ProviderError::Unavailable(status.message().to_string())
        }
        Code::FailedPrecondition | Code::InvalidArgument | Code::NotFound => {
            ProviderError::Rejected(status.message().to_string())
        }
        // A lost answer, a connection that broke or could not be made, anything else: the call
        // may have been processed, so it is reconciled by key rather than forgotten.
        _ => ProviderError::Timeout,
    }
}

/// The simulator's intent as the purchase path sees it.
pub fn intent_from_wire(intent: sim::Intent) -> Result<Intent, ProviderError> {
    let status = match intent.status() {
        sim::IntentStatus::RequiresCapture => IntentStatus::RequiresCapture,
        sim::IntentStatus::Succeeded => IntentStatus::Succeeded,
        sim::IntentStatus::Canceled => IntentStatus::Canceled,
        sim::IntentStatus::Declined => IntentStatus::Declined,
        sim::IntentStatus::Refunded => IntentStatus::Refunded,
        // An answer we cannot read may still stand for work done: reconcile it by key.
        sim::IntentStatus::Unspecified => return Err(ProviderError::Timeout),
    };
    Ok(Intent {
        id: intent.id,
        status,
        amount_minor: intent.amount_minor,
        currency: intent.currency,
        decline_reason: (!intent.decline_reason.is_empty()).then_some(intent.decline_reason),
    })
}

/// The purchase path's intent on the wire.
pub fn intent_to_wire(intent: &Intent) -> sim::Intent {
    let status = match intent.status {
        IntentStatus::RequiresCapture => sim::IntentStatus::RequiresCapture,
        IntentStatus::Succeeded => sim::IntentStatus::Succeeded,
        IntentStatus::Canceled => sim::IntentStatus::Canceled,
        IntentStatus::Declined => sim::IntentStatus::Declined,
        IntentStatus::Refunded => sim::IntentStatus::Refunded,
    };
    sim::Intent {
        id: intent.id.clone(),
        status: status.into(),
        amount_minor: intent.amount_minor,
        currency: intent.currency.clone(),
        decline_reason: intent.decline_reason.clone().unwrap_or_default(),
    }
}

#[async_trait]
impl PaymentProvider for RemoteProvider {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn authorize(
        &self,
        idempotency_key: &str,
        amount_minor: i64,
        currency: &str,
        card: &CardDetails,
    ) -> Result<Intent, ProviderError> {
        let request = sim::AuthorizeRequest {
            idempotency_key: idempotency_key.to_string(),
            amount_minor,
            currency: currency.to_string(),
            card_number: card.number.clone(),
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            cvc: card.cvc.clone(),
        };
        intent_from_wire(self.call(self.client.clone().authorize(request)).await?)
    }

    async fn capture(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        let request = sim::IntentRequest {
            intent_id: intent_id.to_string(),
        };
        intent_from_wire(self.call(self.client.clone().capture(request)).await?)
    }

    async fn void(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        let request = sim::IntentRequest {
            intent_id: intent_id.to_string(),
        };
        intent_from_wire(self.call(self.client.clone().void(request)).await?)
    }

    async fn refund(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        let request = sim::IntentRequest {
            intent_id: intent_id.to_string(),
        };
        intent_from_wire(self.call(self.client.clone().refund(request)).await?)
    }

    async fn find(&self, idempotency_key: &str) -> Result<Option<Intent>, ProviderError> {
        let request = sim::FindRequest {
            idempotency_key: idempotency_key.to_string(),
        };
        self.call(self.client.clone().find(request))
            .await?
            .intent
            .map(intent_from_wire)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_providers_own_outage_answer_counts_as_unprocessed() {
        let mut outage = Status::unavailable("simulated outage");
        outage.metadata_mut().insert(
            OUTAGE_HEADER,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        assert!(matches!(
            provider_error(&outage),
            ProviderError::Unavailable(_)
        ));
        // The same code from a broken connection may follow a processed call.
        assert_eq!(
            provider_error(&Status::unavailable("connection reset")),
            ProviderError::Timeout
        );
        assert_eq!(
            provider_error(&Status::deadline_exceeded("answer lost")),
            ProviderError::Timeout
        );
        assert!(matches!(
            provider_error(&Status::failed_precondition("cannot capture")),
            ProviderError::Rejected(_)
        ));
    }

    #[test]
    fn intents_survive_the_wire() {
        for status in [
            IntentStatus::RequiresCapture,
            IntentStatus::Succeeded,
            IntentStatus::Canceled,
            IntentStatus::Declined,
            IntentStatus::Refunded,
        ] {
            let intent = Intent {
                id: "pi_1".into(),
                status,
                amount_minor: 12_345,
                currency: "EUR".into(),
                decline_reason: (status == IntentStatus::Declined).then(|| "card declined".into()),
            };
            assert_eq!(intent_from_wire(intent_to_wire(&intent)), Ok(intent));
        }
        assert_eq!(
            intent_from_wire(sim::Intent::default()),
            Err(ProviderError::Timeout)
        );
    }
}
