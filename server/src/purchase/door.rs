//! The venue door: a ticket code checked (Ed25519 against the ticket keys, or an older HMAC
//! code until its event has passed) and admitted once, whichever node scans it.

use super::Purchases;
use crate::error::{ApiError, ApiResult};
use crate::store::{CheckInOutcome, DoorTicket};
use crate::tokens::{TicketClaims, peek_ticket, verify_ticket};

/// How long after its event's start an older (HMAC, `tq1`) code still gets in: a day, for
/// late entry; after that only Ed25519 codes are accepted.
pub const LEGACY_CODES_UNTIL_AFTER_START_MS: i64 = 24 * 3_600_000;

/// A gate name: 1 to 64 of letters, digits, space and `-_./` (it travels in gRPC metadata).
fn check_gate(gate: &str) -> ApiResult<()> {
    let ok = !gate.is_empty()
        && gate.len() <= 64
        && gate
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" -_./".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(format!(
            "gate {gate:?} must be 1 to 64 letters, digits, spaces or -_./ (e.g. \"north-3\")"
        )))
    }
}

/// Checks `code` and admits its ticket at `gate` if no scan has; returns the ticket and the
/// time it was admitted.
pub async fn check_in(
    purchases: &Purchases,
    code: &str,
    gate: &str,
) -> ApiResult<(DoorTicket, i64)> {
    let code = code.trim();
    let gate = gate.trim();
    check_gate(gate)?;
    let now = purchases.clock.now_ms();
    let claims = genuine_claims(purchases, code, now).await?;
    match purchases.store.check_in(&claims.tk, gate, now).await? {
        CheckInOutcome::Admitted(ticket) => Ok((ticket, now)),
        CheckInOutcome::AlreadyScanned {
            ticket,
            at_ms,
            gate,
        } => Err(ApiError::AlreadyScanned {
            message: format!(
                "ticket {} (seat {}) was already scanned at {} at gate {gate:?}: do not admit",
                ticket.ticket_id,
                ticket.seat_id,
                taquilla_proto::display::utc_time_seconds(at_ms)
            ),
            at_ms,
            gate,
        }),
        CheckInOutcome::Refunded(ticket) => Err(ApiError::FailedPrecondition(format!(
            "ticket {} was refunded: not valid for entry",
            ticket.ticket_id
        ))),
        CheckInOutcome::NotFound => Err(ApiError::NotFound(format!(
            "the code is genuine but ticket {} is not in this sale's records",
            claims.tk
        ))),
    }
}

/// The claims of a genuine code, or why it is refused.
async fn genuine_claims(purchases: &Purchases, code: &str, now: i64) -> ApiResult<TicketClaims> {
    let refused = |why: String| ApiError::InvalidArgument(format!("{why}: do not admit"));
    if !code.starts_with("tq1.") {
        let keys = purchases
            .tickets
            .public_keys(purchases.store.as_ref(), now)
            .await?;
        return keys
            .verify(code)
            .map(|(claims, _)| claims)
            .map_err(|e| refused(e.to_string()));
    }
    // An older HMAC code: its event's own key, until the event has passed.
    let event_id = peek_ticket(code)
        .map(|claims| claims.ev)
        .ok_or_else(|| refused("this is not a ticket code".into()))?;
    let claims = verify_ticket(code, &purchases.tickets.legacy_key(&event_id))
        .map_err(|e| refused(e.to_string()))?;
    let event = purchases
        .store
        .get_event(&claims.ev)
        .await?
        .ok_or_else(|| refused(format!("event {:?} is not in this sale", claims.ev)))?;
    if now > event.starts_at_ms + LEGACY_CODES_UNTIL_AFTER_START_MS {
        return Err(refused(format!(
            "this older (tq1) code was for {}, which has passed",
            event.id
        )));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_names() {
        for good in ["north-3", "Gate A", "door_1/left", "x"] {
            assert!(check_gate(good).is_ok(), "{good}");
        }
        for bad in ["", "puerta ñ", "a\nb", &"g".repeat(65)] {
            assert!(check_gate(bad).is_err(), "{bad:?}");
        }
    }
}
