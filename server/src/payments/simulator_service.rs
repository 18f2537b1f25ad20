//! The simulated provider served over gRPC (`taquilla.sim.v1.PaymentSimulator`) by
//! `taquilla-paysim`, for sales that run on several server nodes: they all pay through this one
//! process, as they would through a real provider, and an operator (or a fault drill) can take
//! it down for every node at once with `Configure`. [`super::remote::RemoteProvider`] is the
//! client side.

use std::sync::Arc;

use taquilla_proto::sim;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use super::remote::{OUTAGE_HEADER, intent_to_wire};
use super::simulated::SimulatedProvider;
use super::{CardDetails, IntentStatus, PaymentProvider, ProviderError};

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct SimulatorService {
    provider: Arc<SimulatedProvider>,
}

impl SimulatorService {
    pub fn new(provider: Arc<SimulatedProvider>) -> SimulatorService {
        SimulatorService { provider }
    }

    fn stats(&self) -> sim::SimulatorStats {
        let p = &self.provider;
        let count = |status| p.count(status) as u64;
        sim::SimulatorStats {
            outage: p.outage(),
            timeout_rate: p.timeout_rate(),
            calls: p.calls(),
            charges: p.charges(),
            requires_capture: count(IntentStatus::RequiresCapture),
            succeeded: count(IntentStatus::Succeeded),
            canceled: count(IntentStatus::Canceled),
            declined: count(IntentStatus::Declined),
            refunded: count(IntentStatus::Refunded),
        }
    }

    /// Serves the simulator on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), tonic::transport::Error> {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(sim::payment_simulator_server::PaymentSimulatorServer::new(
                self,
            ))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    }
}

/// The simulated provider's failure as the client reads it (see [`super::remote`]).
fn status(error: ProviderError) -> Status {
    match error {
        ProviderError::Unavailable(why) => {
            let mut status = Status::unavailable(format!(
                "the payment provider is down ({why}); the call was not processed"
            ));
            status.metadata_mut().insert(
                OUTAGE_HEADER,
                tonic::metadata::MetadataValue::from_static("1"),
            );
            status
        }
        ProviderError::NotSent { .. } => {
            let mut status = Status::unavailable("the call was not processed");
            status.metadata_mut().insert(
                OUTAGE_HEADER,
                tonic::metadata::MetadataValue::from_static("1"),
            );
            status
        }
        ProviderError::Timeout => Status::deadline_exceeded(
            "the call was processed but its answer was lost; look the intent up by its key",
        ),
        ProviderError::Rejected(why) => Status::failed_precondition(why),
    }
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{field} is required")))
    } else {
        Ok(value)
    }
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl sim::payment_simulator_server::PaymentSimulator for SimulatorService {
    async fn authorize(&self, request: Request<sim::AuthorizeRequest>) -> Answer<sim::Intent> {
        let r = request.into_inner();
        let key = required("idempotency_key", &r.idempotency_key)?;
        if r.amount_minor <= 0 {
            return Err(Status::invalid_argument(
                "amount_minor must be a positive amount",
            ));
        }
        let card = CardDetails {
            number: required("card_number", &r.card_number)?.to_string(),
            exp_month: r.exp_month,
            exp_year: r.exp_year,
            cvc: r.cvc.clone(),
        };
        let intent = self
            .provider
            .authorize(
                key,
                r.amount_minor,
                required("currency", &r.currency)?,
                &card,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(intent_to_wire(&intent)))
    }

    async fn capture(&self, request: Request<sim::IntentRequest>) -> Answer<sim::Intent> {
        let r = request.into_inner();
        let intent = self
            .provider
            .capture(required("intent_id", &r.intent_id)?)
            .await
            .map_err(status)?;
        Ok(Response::new(intent_to_wire(&intent)))
    }

    async fn void(&self, request: Request<sim::IntentRequest>) -> Answer<sim::Intent> {
        let r = request.into_inner();
        let intent = self
            .provider
            .void(required("intent_id", &r.intent_id)?)
            .await
            .map_err(status)?;
        Ok(Response::new(intent_to_wire(&intent)))
    }

    async fn refund(&self, request: Request<sim::IntentRequest>) -> Answer<sim::Intent> {
        let r = request.into_inner();
        let intent = self
            .provider
            .refund(required("intent_id", &r.intent_id)?)
            .await
            .map_err(status)?;
        Ok(Response::new(intent_to_wire(&intent)))
    }

    async fn find(&self, request: Request<sim::FindRequest>) -> Answer<sim::FindResponse> {
        let r = request.into_inner();
        let intent = self
            .provider
            .find(required("idempotency_key", &r.idempotency_key)?)
            .await
            .map_err(status)?;
        Ok(Response::new(sim::FindResponse {
            intent: intent.as_ref().map(intent_to_wire),
        }))
    }

    async fn configure(
        &self,
        request: Request<sim::ConfigureRequest>,
    ) -> Answer<sim::SimulatorStats> {
        let r = request.into_inner();
        if let Some(rate) = r.timeout_rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err(Status::invalid_argument(
                    "timeout_rate must be a share between 0 and 1",
                ));
            }
            self.provider.set_timeout_rate(rate);
        }
        if let Some(on) = r.outage {
            tracing::warn!(outage = on, "payment simulator outage switched");
            self.provider.set_outage(on);
        }
        Ok(Response::new(self.stats()))
    }

    async fn get_stats(&self, _: Request<sim::GetStatsRequest>) -> Answer<sim::SimulatorStats> {
        Ok(Response::new(self.stats()))
    }
}
