//! An event to create, as an operator sends it: every field checked and named when wrong.

use taquilla_proto::money::Currency;
use taquilla_proto::v1 as pb;

use crate::convert;
use crate::domain::ids::{check_event_id, check_text};
use crate::domain::layout::{self, MAX_PRICE_MINOR};
use crate::error::{ApiError, ApiResult};
use crate::store::NewEvent;

/// Most tickets per fan an operator may allow.
const MAX_TICKETS_PER_FAN: u32 = 50;

/// Parses a CreateEvent request into an event to create.
pub(super) fn parse_create_event(
    request: pb::CreateEventRequest,
    now_ms: i64,
) -> ApiResult<NewEvent> {
    let invalid = ApiError::InvalidArgument;
    check_event_id("event_id", &request.event_id).map_err(invalid)?;
    check_text("name", &request.name, 200).map_err(invalid)?;
    check_text("artist", &request.artist, 200).map_err(invalid)?;
    if request.starts_at_unix_ms <= 0 {
        return Err(invalid(
            "starts_at_unix_ms must be the event's start time in milliseconds since 1970".into(),
        ));
    }
    let currency = if request.currency.is_empty() {
        "EUR"
    } else {
        request.currency.as_str()
    };
    let currency = Currency::from_code(currency).map_err(|e| invalid(e.to_string()))?;
    if !(0..=MAX_PRICE_MINOR).contains(&request.fee_per_ticket_minor) {
        return Err(invalid(format!(
            "fee_per_ticket_minor must be between 0 and {MAX_PRICE_MINOR}"
        )));
    }
    let max_tickets_per_fan = match request.max_tickets_per_fan {
        0 => 4,
        n if n <= MAX_TICKETS_PER_FAN => n,
        n => {
            return Err(invalid(format!(
                "max_tickets_per_fan is {n}; at most {MAX_TICKETS_PER_FAN} are allowed"
            )));
        }
    };
    let spec = match request.layout {
        Some(pb::create_event_request::Layout::VenueLayout(layout)) => {
            convert::layout_spec(layout)?
        }
        Some(pb::create_event_request::Layout::LayoutToml(doc)) => {
            layout::parse_toml(&doc).map_err(invalid)?
        }
        Some(pb::create_event_request::Layout::LayoutJson(doc)) => {
            layout::parse_json(&doc).map_err(invalid)?
        }
        None => {
            return Err(invalid(
                "the venue layout is missing: give venue_layout, layout_toml or layout_json".into(),
            ));
        }
    };
    let layout = spec
        .validate(currency)
        .map_err(|e| invalid(format!("layout: {e}")))?;
    Ok(NewEvent {
        id: request.event_id,
        name: request.name,
        artist: request.artist,
        starts_at_ms: request.starts_at_unix_ms,
        currency: currency.code().to_string(),
        fee_per_ticket_minor: request.fee_per_ticket_minor,
        max_tickets_per_fan,
        layout,
        created_at_ms: now_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> pb::CreateEventRequest {
        pb::CreateEventRequest {
            event_id: "demo-1".into(),
            name: "Demo".into(),
            artist: "Band".into(),
            starts_at_unix_ms: 1,
            currency: String::new(),
            fee_per_ticket_minor: 0,
            max_tickets_per_fan: 0,
            layout: Some(pb::create_event_request::Layout::LayoutToml(
                "[venue]\nid = \"v\"\nname = \"V\"\n[[sections]]\nid = \"ga\"\nname = \"GA\"\nkind = \"general_admission\"\nprice = 10\ncapacity = 3\n".into(),
            )),
        }
    }

    fn invalid(req: pb::CreateEventRequest) -> String {
        match parse_create_event(req, 0) {
            Err(ApiError::InvalidArgument(m)) => m,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply() {
        let event = parse_create_event(request(), 7).expect("valid");
        assert_eq!(event.currency, "EUR");
        assert_eq!(event.max_tickets_per_fan, 4);
        assert_eq!(event.layout.capacity(), 3);
        assert_eq!(event.created_at_ms, 7);
    }

    #[test]
    fn prices_are_read_in_the_events_currency() {
        let yen = parse_create_event(
            pb::CreateEventRequest {
                currency: "JPY".into(),
                ..request()
            },
            0,
        )
        .expect("a JPY event");
        assert_eq!(yen.layout.sections[0].price_minor, 10, "10 yen, not 1,000");
        let dinar = parse_create_event(
            pb::CreateEventRequest {
                currency: "KWD".into(),
                ..request()
            },
            0,
        )
        .expect("a KWD event");
        assert_eq!(dinar.layout.sections[0].price_minor, 10_000);
        for (code, says) in [
            ("ABC", "not an ISO 4217 code"),
            ("XAU", "not a currency fans pay in"),
        ] {
            let message = invalid(pb::CreateEventRequest {
                currency: code.into(),
                ..request()
            });
            assert!(message.contains(says), "{code}: {message}");
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        assert!(
            invalid(pb::CreateEventRequest {
                event_id: "Bad Id".into(),
                ..request()
            })
            .contains("event_id")
        );
        assert!(
            invalid(pb::CreateEventRequest {
                name: String::new(),
                ..request()
            })
            .contains("name")
        );
        assert!(
            invalid(pb::CreateEventRequest {
                starts_at_unix_ms: 0,
                ..request()
            })
            .contains("starts_at_unix_ms")
        );
        assert!(
            invalid(pb::CreateEventRequest {
                currency: "euro".into(),
                ..request()
            })
            .contains("currency")
        );
        assert!(
            invalid(pb::CreateEventRequest {
                fee_per_ticket_minor: -1,
                ..request()
            })
            .contains("fee_per_ticket_minor")
        );
        assert!(
            invalid(pb::CreateEventRequest {
                max_tickets_per_fan: 51,
                ..request()
            })
            .contains("max_tickets_per_fan")
        );
        assert!(
            invalid(pb::CreateEventRequest {
                layout: None,
                ..request()
            })
            .contains("layout is missing")
        );
        assert!(
            invalid(pb::CreateEventRequest {
                layout: Some(pb::create_event_request::Layout::LayoutJson("{".into())),
                ..request()
            })
            .contains("not valid JSON")
        );
    }
}
