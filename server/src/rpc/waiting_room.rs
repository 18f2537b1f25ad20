//! `taquilla.v1.WaitingRoom`: joining a queue, watching the position, leaving.

use std::pin::Pin;
use std::sync::Arc;

use taquilla_proto::v1 as pb;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::not_built;
use crate::app::AppState;

#[derive(Debug, Clone)]
pub struct WaitingRoomService {
    #[allow(dead_code)]
    state: Arc<AppState>,
}

impl WaitingRoomService {
    pub fn new(state: Arc<AppState>) -> Self {
        WaitingRoomService { state }
    }
}

type QueueStream = Pin<Box<dyn Stream<Item = Result<pb::QueueUpdate, Status>> + Send>>;

const WAITING_ROOM: &str = "the virtual waiting room (queue, positions and admission)";

#[tonic::async_trait]
impl pb::waiting_room_server::WaitingRoom for WaitingRoomService {
    async fn join(
        &self,
        _request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        Err(not_built("Join", WAITING_ROOM).into())
    }

    type WatchStream = QueueStream;

    async fn watch(
        &self,
        _request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(not_built("Watch", WAITING_ROOM).into())
    }

    async fn leave(
        &self,
        _request: Request<pb::LeaveRequest>,
    ) -> Result<Response<pb::LeaveResponse>, Status> {
        Err(not_built("Leave", WAITING_ROOM).into())
    }
}
