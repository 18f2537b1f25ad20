//! The ticket keys (list, rotate, retire) and the door (check-in), as the operator service
//! answers them.

use taquilla_proto::v1 as pb;

use crate::convert;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::tokens::{KeyState, PublicKeys};

/// Every ticket key, as the RPCs answer.
pub(super) fn keys_message(keys: &PublicKeys) -> pb::TicketKeys {
    pb::TicketKeys {
        active_kid: keys
            .keys
            .iter()
            .find(|k| k.state == KeyState::Active)
            .map(|k| k.kid.clone())
            .unwrap_or_default(),
        keys: keys
            .keys
            .iter()
            .map(|k| pb::TicketKey {
                kid: k.kid.clone(),
                public_key: k.public_key.clone(),
                state: k.state.name().into(),
                created_at_unix_ms: k.created_at_ms,
                retired_at_unix_ms: k.retired_at_ms.unwrap_or(0),
            })
            .collect(),
    }
}

/// The keys as they stand now.
pub(super) async fn list(state: &AppState) -> ApiResult<pb::TicketKeys> {
    let tickets = &state.purchases.tickets;
    let keys = tickets
        .public_keys(state.store.as_ref(), state.clock.now_ms())
        .await?;
    Ok(keys_message(&keys))
}

/// Rotates to a new key; returns its id and the keys after.
pub(super) async fn rotate(state: &AppState) -> ApiResult<(String, pb::TicketKeys)> {
    let kid = state
        .purchases
        .tickets
        .rotate(state.store.as_ref(), state.clock.now_ms())
        .await?;
    Ok((kid, list(state).await?))
}

/// Retires `kid`; returns the keys after.
pub(super) async fn retire(state: &AppState, kid: &str) -> ApiResult<pb::TicketKeys> {
    state
        .purchases
        .tickets
        .retire(state.store.as_ref(), kid, state.clock.now_ms())
        .await?;
    list(state).await
}

/// Admits a ticket at the door; the answer names the seat to direct the fan to.
pub(super) async fn check_in(
    state: &AppState,
    request: pb::CheckInRequest,
) -> ApiResult<pb::CheckInResponse> {
    let (ticket, admitted_at_ms) =
        crate::purchase::check_in(&state.purchases, &request.code, &request.gate).await?;
    let event = super::super::shared::find_event(state, &ticket.event_id).await?;
    let shape = state.catalog.shape(&event).await?;
    let seat = shape.spot(ticket.seat_id).map(|spot| pb::SeatRef {
        seat_id: ticket.seat_id,
        section_id: spot.section.id.clone(),
        section_name: spot.section.name.clone(),
        row: spot.row.unwrap_or_default().to_string(),
        number: if spot.row.is_some() { spot.number } else { 0 },
        price: Some(convert::money(spot.section.price_minor, &event.currency)),
    });
    Ok(pb::CheckInResponse {
        ticket_id: ticket.ticket_id,
        event_id: ticket.event_id,
        order_id: ticket.order_id,
        seat,
        checked_in_at_unix_ms: admitted_at_ms,
        gate: request.gate.trim().to_string(),
    })
}
