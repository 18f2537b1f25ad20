//! `taquilla.v1.WaitingRoom`: joining a queue, watching the position, leaving.

use std::sync::Arc;

use taquilla_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::app::AppState;
use crate::waiting_room::{JoinInput, Joined};

#[derive(Debug, Clone)]
pub struct WaitingRoomService {
    state: Arc<AppState>,
}

impl WaitingRoomService {
    pub fn new(state: Arc<AppState>) -> Self {
        WaitingRoomService { state }
    }
}

#[tonic::async_trait]
impl pb::waiting_room_server::WaitingRoom for WaitingRoomService {
    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn join(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let ip = request.remote_addr().map(|a| a.ip());
        let request = request.into_inner();
        let event = super::sales::find_event(&self.state, &request.event_id).await?;
        let input = JoinInput {
            fingerprint: request.fingerprint,
            presale_code: request.presale_code,
            ip,
            pow: request.pow_solution.map(|s| (s.challenge, s.nonce)),
        };
        Ok(Response::new(
            match self.state.waiting_room.join(&event, &input).await? {
                Joined::Placed(queue_token, status) => pb::JoinResponse {
                    queue_token,
                    status: Some(status),
                    challenge: None,
                },
                Joined::Challenge(challenge) => pb::JoinResponse {
                    queue_token: String::new(),
                    status: None,
                    challenge: Some(challenge),
                },
            },
        ))
    }

    type WatchStream = crate::waiting_room::QueueStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let token = &request.get_ref().queue_token;
        let event_id = self.state.waiting_room.token_event(token)?;
        let event = super::sales::find_event(&self.state, &event_id).await?;
        let stream = self
            .state
            .waiting_room
            .watch(&event, token, self.state.availability.stopping())
            .await?;
        Ok(Response::new(stream))
    }

    async fn leave(
        &self,
        request: Request<pb::LeaveRequest>,
    ) -> Result<Response<pb::LeaveResponse>, Status> {
        let token = &request.get_ref().queue_token;
        let event_id = self.state.waiting_room.token_event(token)?;
        let event = super::sales::find_event(&self.state, &event_id).await?;
        self.state.waiting_room.leave(&event, token).await?;
        Ok(Response::new(pb::LeaveResponse {}))
    }
}
