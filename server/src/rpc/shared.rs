//! Helpers the services share: finding the event a request names, and a stream fed by a task.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::Status;

use crate::domain::ids::check_event_id;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::EventRecord;

/// Looks up an event named in a request, answering INVALID_ARGUMENT or NOT_FOUND.
pub(crate) async fn find_event(state: &AppState, event_id: &str) -> ApiResult<Arc<EventRecord>> {
    check_event_id("event_id", event_id).map_err(ApiError::InvalidArgument)?;
    state
        .catalog
        .event(event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no event with id {event_id:?}")))
}

/// A stream fed by a task: `body` gets the sender and runs until it returns or the client goes.
pub(crate) fn async_stream<T, F, Fut>(
    body: F,
) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
