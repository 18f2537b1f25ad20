//! `taquilla.v1.WaitingRoom`: joining a queue, watching the position, leaving.

use std::sync::Arc;

use taquilla_proto::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::convert;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::EventRecord;
use crate::waiting_room::{JoinInput, Joined, QueueStream};

#[derive(Debug, Clone)]
pub struct WaitingRoomService {
    state: Arc<AppState>,
}

impl WaitingRoomService {
    pub fn new(state: Arc<AppState>) -> Self {
        WaitingRoomService { state }
    }
}

impl WaitingRoomService {
    /// Joins the queue of the request's event from client address `ip`.
    async fn join_from(
        &self,
        ip: Option<std::net::IpAddr>,
        request: pb::JoinRequest,
    ) -> Result<(Arc<EventRecord>, Joined), Status> {
        let event = super::shared::find_event(&self.state, &request.event_id).await?;
        let input = JoinInput {
            fingerprint: request.fingerprint,
            presale_code: request.presale_code,
            ip,
            pow: request.pow_solution.map(|s| (s.challenge, s.nonce)),
        };
        let joined = self.state.waiting_room.join(&event, &input).await?;
        Ok((event, joined))
    }

    /// `Watch` with a join request: joins, then streams the entry's status, the first message
    /// carrying the queue token; or a single message with the proof-of-work challenge.
    #[instrument(skip_all, fields(event_id = %join.event_id))]
    async fn join_and_watch(
        &self,
        ip: Option<std::net::IpAddr>,
        join: pb::JoinRequest,
    ) -> Result<QueueStream, Status> {
        let (event, joined) = self.join_from(ip, join).await?;
        let token = match joined {
            Joined::Placed(token, _) => token,
            Joined::Challenge(challenge) => {
                let update = pb::QueueUpdate {
                    challenge: Some(challenge),
                    server_time_unix_ms: self.state.clock.now_ms(),
                    ..Default::default()
                };
                return Ok(Box::pin(futures_util::stream::iter([Ok(update)])));
            }
        };
        let stream = self
            .state
            .waiting_room
            .watch(&event, &token, self.state.shutdown.clone())
            .await?;
        // A stream's first message is immediate (the status as it is now): it carries the token.
        let mut token = Some(token);
        Ok(Box::pin(futures_util::StreamExt::map(
            stream,
            move |update| {
                update.map(|mut update| {
                    if let Some(token) = token.take() {
                        update.queue_token = token;
                    }
                    update
                })
            },
        )))
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
        let (_, joined) = self.join_from(ip, request.into_inner()).await?;
        Ok(Response::new(match joined {
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
        }))
    }

    type WatchStream = crate::waiting_room::QueueStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let ip = request.remote_addr().map(|a| a.ip());
        let request = request.into_inner();
        if request.queue_token.is_empty() {
            let Some(join) = request.join else {
                return Err(ApiError::InvalidArgument(
                    "give the queue token from Join, or a join request to join and watch at once"
                        .into(),
                )
                .into());
            };
            return self.join_and_watch(ip, join).await.map(Response::new);
        }
        let token = &request.queue_token;
        let event_id = self.state.waiting_room.token_event(token)?;
        let event = super::shared::find_event(&self.state, &event_id).await?;
        let stream = self
            .state
            .waiting_room
            .watch(&event, token, self.state.shutdown.clone())
            .await?;
        Ok(Response::new(stream))
    }

    type GetShuffleProofStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::ShuffleProofChunk, Status>> + Send>,
    >;

    #[instrument(skip_all, fields(event = %request.get_ref().event_id))]
    async fn get_shuffle_proof(
        &self,
        request: Request<pb::ShuffleProofRequest>,
    ) -> Result<Response<Self::GetShuffleProofStream>, Status> {
        let event = super::shared::find_event(&self.state, &request.get_ref().event_id).await?;
        let proof = self.state.waiting_room.shuffle_proof(&event).await?;
        Ok(Response::new(Box::pin(tokio_stream::iter(
            convert::shuffle_proof(&event.id, proof).map(Ok),
        ))))
    }

    async fn leave(
        &self,
        request: Request<pb::LeaveRequest>,
    ) -> Result<Response<pb::LeaveResponse>, Status> {
        let token = &request.get_ref().queue_token;
        let event_id = self.state.waiting_room.token_event(token)?;
        let event = super::shared::find_event(&self.state, &event_id).await?;
        self.state.waiting_room.leave(&event, token).await?;
        Ok(Response::new(pb::LeaveResponse {}))
    }
}
