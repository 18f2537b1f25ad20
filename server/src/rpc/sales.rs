//! `taquilla.v1.Sales`: seat maps, holds, orders and payments.

use std::pin::Pin;
use std::sync::Arc;

use taquilla_proto::v1 as pb;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::{convert, not_built};
use crate::app::AppState;
use crate::domain::ids::check_event_id;
use crate::error::{ApiError, ApiResult};
use crate::store::EventRecord;

#[derive(Debug, Clone)]
pub struct SalesService {
    state: Arc<AppState>,
}

impl SalesService {
    pub fn new(state: Arc<AppState>) -> Self {
        SalesService { state }
    }
}

/// Looks up an event named in a request, answering INVALID_ARGUMENT or NOT_FOUND.
pub(crate) async fn find_event(state: &AppState, event_id: &str) -> ApiResult<EventRecord> {
    check_event_id("event_id", event_id).map_err(ApiError::InvalidArgument)?;
    state
        .store
        .get_event(event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no event with id {event_id:?}")))
}

impl SalesService {
    async fn list_events(&self) -> ApiResult<pb::ListEventsResponse> {
        let now = self.state.clock.now_ms();
        let events = self.state.store.list_events().await?;
        let counts = self.state.catalog.counts(now).await?;
        Ok(pb::ListEventsResponse {
            events: events
                .iter()
                .map(|e| convert::event(e, counts.get(&e.id)))
                .collect(),
        })
    }

    async fn get_seat_map(&self, request: pb::GetSeatMapRequest) -> ApiResult<pb::SeatMap> {
        let event = find_event(&self.state, &request.event_id).await?;
        let shape = self.state.catalog.shape(&event).await?;
        let sections = if request.section_ids.is_empty() {
            (0..shape.sections.len()).collect::<Vec<_>>()
        } else {
            let mut chosen = Vec::with_capacity(request.section_ids.len());
            for id in &request.section_ids {
                let index = shape.section_index(id).ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "event {:?} has no section {id:?}",
                        request.event_id
                    ))
                })?;
                if !chosen.contains(&index) {
                    chosen.push(index);
                }
            }
            chosen
        };
        let now = self.state.clock.now_ms();
        let statuses = self.state.store.seat_statuses(&event.id, now).await?;
        Ok(convert::seat_map(&event, &shape, &statuses, &sections, now))
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<pb::AvailabilityUpdate, Status>> + Send>>;

const SALES_PATH: &str = "the hold, checkout and payment path";

#[tonic::async_trait]
impl pb::sales_server::Sales for SalesService {
    #[instrument(skip_all)]
    async fn list_events(
        &self,
        _request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        Ok(Response::new(SalesService::list_events(self).await?))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn get_seat_map(
        &self,
        request: Request<pb::GetSeatMapRequest>,
    ) -> Result<Response<pb::SeatMap>, Status> {
        Ok(Response::new(
            SalesService::get_seat_map(self, request.into_inner()).await?,
        ))
    }

    type WatchAvailabilityStream = UpdateStream;

    async fn watch_availability(
        &self,
        _request: Request<pb::WatchAvailabilityRequest>,
    ) -> Result<Response<Self::WatchAvailabilityStream>, Status> {
        Err(not_built("WatchAvailability", "the live seat-map feed").into())
    }

    async fn hold_seats(
        &self,
        _request: Request<pb::HoldSeatsRequest>,
    ) -> Result<Response<pb::HoldSeatsResponse>, Status> {
        Err(not_built("HoldSeats", SALES_PATH).into())
    }

    async fn release_hold(
        &self,
        _request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        Err(not_built("ReleaseHold", SALES_PATH).into())
    }

    async fn checkout(
        &self,
        _request: Request<pb::CheckoutRequest>,
    ) -> Result<Response<pb::CheckoutResponse>, Status> {
        Err(not_built("Checkout", SALES_PATH).into())
    }

    async fn pay(
        &self,
        _request: Request<pb::PayRequest>,
    ) -> Result<Response<pb::PayResponse>, Status> {
        Err(not_built("Pay", SALES_PATH).into())
    }

    async fn get_order(
        &self,
        _request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        Err(not_built("GetOrder", SALES_PATH).into())
    }
}
