//! Holding seats (all or nothing, within the fan's cap) and letting them go.

use super::*;

/// Holds seats for `buyer` in `event`.
pub async fn hold(
    purchases: &Purchases,
    buyer: &Buyer,
    event: &EventRecord,
    selection: Selection,
) -> ApiResult<HoldRecord> {
    if matches!(event.sale_state, SaleState::Closed) {
        return Err(ApiError::FailedPrecondition(format!(
            "the sale of {:?} is closed",
            event.id
        )));
    }
    let shape = purchases.catalog.shape(event).await?;
    let cap = event.max_tickets_per_fan;
    match &selection {
        Selection::Seats(ids) => {
            if ids.is_empty() {
                return Err(ApiError::InvalidArgument(
                    "seats.seat_ids is empty; list the seats to hold".into(),
                ));
            }
            if ids.len() > cap as usize {
                return Err(ApiError::InvalidArgument(format!(
                    "{} seats were asked for; at most {cap} tickets per fan are allowed for this event",
                    ids.len()
                )));
            }
            let mut seen = HashSet::new();
            for id in ids {
                if !seen.insert(id) {
                    return Err(ApiError::InvalidArgument(format!(
                        "seat {id} is listed twice in seats.seat_ids"
                    )));
                }
                if shape.section_of(*id).is_none() {
                    return Err(ApiError::NotFound(format!(
                        "event {:?} has no seat {id}",
                        event.id
                    )));
                }
            }
        }
        Selection::Best {
            section_id,
            quantity,
        } => {
            if shape.section_index(section_id).is_none() {
                return Err(ApiError::NotFound(format!(
                    "event {:?} has no section {section_id:?}",
                    event.id
                )));
            }
            if *quantity == 0 || *quantity > cap {
                return Err(ApiError::InvalidArgument(format!(
                    "best_available.quantity must be between 1 and {cap} (the per-fan cap of this event)"
                )));
            }
        }
    }
    let now = purchases.clock.now_ms();
    let request = NewHold {
        hold_id: new_id("h"),
        event_id: event.id.clone(),
        fan_id: buyer.fan_id.clone(),
        selection: selection.clone(),
        max_per_fan: cap,
        now_ms: now,
        expires_at_ms: now + purchases.hold_ttl.as_millis() as i64,
    };
    match purchases.store.hold_seats(&request).await? {
        HoldOutcome::Held(hold) => Ok(hold),
        HoldOutcome::Taken(ids) => {
            let names: Vec<String> = ids
                .iter()
                .map(|id| shape.describe(*id).unwrap_or_else(|| format!("seat {id}")))
                .collect();
            Err(ApiError::Aborted(format!(
                "{} {} just taken by someone else; nothing was held, choose other seats (seat ids: {})",
                names.join(", "),
                if ids.len() == 1 { "was" } else { "were" },
                ids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        HoldOutcome::OverCap { already, cap } => Err(ApiError::FailedPrecondition(format!(
            "you already hold or bought {already} of the {cap} tickets allowed per fan for this event"
        ))),
        HoldOutcome::NotEnough { available } => {
            let section = match &selection {
                Selection::Best { section_id, .. } => section_id.as_str(),
                Selection::Seats(_) => "",
            };
            Err(ApiError::FailedPrecondition(if available == 0 {
                format!("no seats are free in section {section:?} right now")
            } else {
                format!("only {available} seats are free in section {section:?} right now")
            }))
        }
    }
}

/// Loads a hold the caller may act on; another fan's hold is reported as missing.
pub(super) async fn own_hold(
    purchases: &Purchases,
    credential: &Credential,
    hold_id: &str,
) -> ApiResult<(HoldRecord, Buyer)> {
    let missing = || ApiError::NotFound(format!("there is no hold {hold_id:?}"));
    let hold = purchases
        .store
        .get_hold(hold_id)
        .await?
        .ok_or_else(missing)?;
    let buyer = credential.buyer_for(&hold.event_id)?;
    if hold.fan_id != buyer.fan_id {
        return Err(missing());
    }
    Ok((hold, buyer))
}

/// Releases a hold.
pub async fn release(
    purchases: &Purchases,
    credential: &Credential,
    hold_id: &str,
) -> ApiResult<u32> {
    let (_, buyer) = own_hold(purchases, credential, hold_id).await?;
    match purchases
        .store
        .release_hold(hold_id, &buyer.fan_id, purchases.clock.now_ms())
        .await?
    {
        ReleaseOutcome::Released(n) => {
            if let Credential::Pass(pass) = credential
                && let Err(e) = purchases.waiting_room.stopped_buying(pass).await
            {
                // The slot then lasts until the pass expires, as before the release.
                tracing::warn!(error = %e, "could not restart the no-show clock of a released hold");
            }
            Ok(n)
        }
        ReleaseOutcome::NotFound => {
            Err(ApiError::NotFound(format!("there is no hold {hold_id:?}")))
        }
        ReleaseOutcome::NotActive(HoldState::CheckedOut) => Err(ApiError::FailedPrecondition(
            format!("hold {hold_id:?} was already checked out; its seats belong to an order"),
        )),
        ReleaseOutcome::NotActive(HoldState::Expired) => Err(ApiError::FailedPrecondition(
            format!("hold {hold_id:?} had already expired; its seats are back on sale"),
        )),
        ReleaseOutcome::NotActive(_) => Err(ApiError::FailedPrecondition(format!(
            "hold {hold_id:?} was already released"
        ))),
    }
}
