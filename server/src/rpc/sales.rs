//! `taquilla.v1.Sales`: seat maps, holds, orders and payments.

use std::pin::Pin;
use std::sync::Arc;

use taquilla_proto::v1 as pb;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::shared::{async_stream, find_event};
use crate::auth::Credential;
use crate::convert;
use crate::domain::ids::check_event_id;
use crate::error::{ApiError, ApiResult};
use crate::payments::CardDetails;
use crate::purchase;
use crate::state::AppState;
use crate::store::Selection;

#[derive(Debug, Clone)]
pub struct SalesService {
    state: Arc<AppState>,
}

impl SalesService {
    pub fn new(state: Arc<AppState>) -> Self {
        SalesService { state }
    }
}

/// Checks an id field from a request: present and of a sane length.
fn check_id<'a>(field: &str, id: &'a str) -> ApiResult<&'a str> {
    if id.is_empty() {
        return Err(ApiError::InvalidArgument(format!("{field} is empty")));
    }
    if id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ApiError::InvalidArgument(format!(
            "{field} {id:?} is not an id this service issues"
        )));
    }
    Ok(id)
}

/// Whether a card number passes the Luhn check.
fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// Parses and validates a card; each mistake names its field.
pub(crate) fn parse_card(card: Option<pb::Card>, now_ms: i64) -> ApiResult<CardDetails> {
    let invalid = |m: &str| ApiError::InvalidArgument(m.to_string());
    let card = card.ok_or_else(|| invalid("card is missing"))?;
    let number: String = card.number.chars().filter(|c| *c != ' ').collect();
    if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("card.number must be 12 to 19 digits"));
    }
    if !luhn(&number) {
        return Err(invalid(
            "card.number is not a valid card number (check digit)",
        ));
    }
    if !(1..=12).contains(&card.exp_month) {
        return Err(invalid("card.exp_month must be 1 to 12"));
    }
    if !(2000..=2100).contains(&card.exp_year) {
        return Err(invalid("card.exp_year must be a four-digit year"));
    }
    let today = crate::domain::time::utc_date(now_ms);
    let expiry = format!("{:04}-{:02}", card.exp_year, card.exp_month);
    if expiry.as_str() < &today[..7] {
        return Err(ApiError::FailedPrecondition(format!(
            "the card expired at the end of {expiry}"
        )));
    }
    if !(3..=4).contains(&card.cvc.len()) || !card.cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("card.cvc must be 3 or 4 digits"));
    }
    Ok(CardDetails {
        number,
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        cvc: card.cvc,
    })
}

impl SalesService {
    fn authenticate<T>(&self, rpc: &str, request: &Request<T>) -> ApiResult<Credential> {
        self.state
            .guard
            .authenticate(rpc, request.metadata(), self.state.clock.now_ms())
    }

    /// Lets a protected sales call in: authenticates it, counts it against the fan's and the
    /// address's rate limits (operators are not limited) and takes an in-flight slot (load
    /// shedding). Rate limits come first, so a refused call costs no slot.
    async fn admit<T>(
        &self,
        rpc: &str,
        request: &Request<T>,
    ) -> ApiResult<(Credential, crate::shed::Admitted<'_>)> {
        let credential = self.authenticate(rpc, request)?;
        if let Credential::Pass(pass) = &credential {
            let ip = request.remote_addr().map(|a| a.ip());
            let now = self.state.clock.now_ms();
            if let Err(wait) = self.state.sales_limiter.check(&pass.fan, ip, now).await {
                return Err(ApiError::ResourceExhausted {
                    message:
                        "too many requests from this fan or address; wait a moment and try again"
                            .into(),
                    retry_after_ms: wait,
                });
            }
        }
        let admitted = match self.state.sales_shed.admit() {
            Ok(admitted) => admitted,
            Err(shed) => {
                // The fan came to buy and the server turned them away: that is not a no-show,
                // so the turn is kept (as by a hold) instead of lapsing while they wait out the
                // hint. Cheap after the first time: the room remembers it.
                if let Credential::Pass(pass) = &credential
                    && let Err(e) = self.state.waiting_room.started_buying(pass).await
                {
                    tracing::warn!(error = %e, "could not note that a shed fan came to buy");
                }
                return Err(shed);
            }
        };
        Ok((credential, admitted))
    }

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
        let (statuses, version) = self.state.availability.read(&event.id, &shape).await?;
        let mut map = convert::seat_map(&event, &shape, &statuses, &sections, now);
        map.version = version;
        Ok(map)
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<pb::AvailabilityUpdate, Status>> + Send>>;

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

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn watch_availability(
        &self,
        request: Request<pb::WatchAvailabilityRequest>,
    ) -> Result<Response<Self::WatchAvailabilityStream>, Status> {
        let request = request.into_inner();
        let event = find_event(&self.state, &request.event_id).await?;
        let shape = self
            .state
            .catalog
            .shape(&event)
            .await
            .map_err(ApiError::from)?;
        let feed = self
            .state
            .availability
            .watch(&event.id, &shape)
            .await
            .map_err(ApiError::from)?;
        let (version, mut updates) = feed.subscribe();
        let mut stopping = self.state.shutdown.clone();
        let event_id = event.id.clone();
        let stream = async_stream(move |tx| async move {
            // First message: where the stream starts. A client whose map is older must refetch.
            let first = pb::AvailabilityUpdate {
                event_id: event_id.clone(),
                version,
                changes: vec![],
                sections: vec![],
                resync: request.after_version != 0 && request.after_version != version,
            };
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                let update = tokio::select! {
                    update = updates.recv() => update,
                    () = stopping.started() => return,
                };
                let message = match update {
                    Ok(update) => (*update).clone(),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        pb::AvailabilityUpdate {
                            event_id: event_id.clone(),
                            version: 0,
                            changes: vec![],
                            sections: vec![],
                            resync: true,
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn hold_seats(
        &self,
        request: Request<pb::HoldSeatsRequest>,
    ) -> Result<Response<pb::HoldSeatsResponse>, Status> {
        let (credential, _admitted) = self.admit("HoldSeats", &request).await?;
        let request = request.into_inner();
        check_event_id("event_id", &request.event_id).map_err(ApiError::InvalidArgument)?;
        let buyer = credential.buyer_for(&request.event_id)?;
        let event = find_event(&self.state, &request.event_id).await?;
        let selection = match request.selection {
            Some(pb::hold_seats_request::Selection::Seats(seats)) => {
                Selection::Seats(seats.seat_ids)
            }
            Some(pb::hold_seats_request::Selection::BestAvailable(best)) => Selection::Best {
                section_id: best.section_id,
                quantity: best.quantity,
            },
            None => {
                return Err(ApiError::InvalidArgument(
                    "say which seats to hold: give seats (seat ids) or best_available (section and quantity)"
                        .into(),
                )
                .into());
            }
        };
        let hold = match purchase::hold(&self.state.purchases, &buyer, &event, selection).await {
            Ok(hold) => hold,
            Err(e) => {
                if let Credential::Pass(pass) = &credential
                    && e.is_callers()
                {
                    let now = self.state.clock.now_ms();
                    self.state
                        .abuse
                        .failed_hold(&event.id, &pass.fan, now)
                        .await;
                }
                return Err(e.into());
            }
        };
        if let Credential::Pass(pass) = &credential {
            // The hold stands either way; a missed note only shortens the fan's slot to the
            // no-show window.
            if let Err(e) = self.state.waiting_room.started_buying(pass).await {
                tracing::warn!(error = %e, "could not note that an admitted fan started buying");
            }
        }
        Ok(Response::new(pb::HoldSeatsResponse {
            hold: Some(convert::hold(&hold, &event)),
        }))
    }

    #[instrument(skip_all, fields(hold_id = %request.get_ref().hold_id))]
    async fn release_hold(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        let (credential, _admitted) = self.admit("ReleaseHold", &request).await?;
        let hold_id = check_id("hold_id", &request.get_ref().hold_id)?;
        let released = purchase::release(&self.state.purchases, &credential, hold_id).await?;
        Ok(Response::new(pb::ReleaseHoldResponse {
            released_seats: released,
        }))
    }

    #[instrument(skip_all, fields(hold_id = %request.get_ref().hold_id))]
    async fn checkout(
        &self,
        request: Request<pb::CheckoutRequest>,
    ) -> Result<Response<pb::CheckoutResponse>, Status> {
        let (credential, _admitted) = self.admit("Checkout", &request).await?;
        let request = request.into_inner();
        let hold_id = check_id("hold_id", &request.hold_id)?;
        let order = purchase::checkout(
            &self.state.purchases,
            &credential,
            hold_id,
            &request.idempotency_key,
        )
        .await?;
        let event = find_event(&self.state, &order.event_id).await?;
        Ok(Response::new(pb::CheckoutResponse {
            order: Some(convert::order(&order, &event)),
        }))
    }

    #[instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn pay(
        &self,
        request: Request<pb::PayRequest>,
    ) -> Result<Response<pb::PayResponse>, Status> {
        let (credential, _admitted) = self.admit("Pay", &request).await?;
        let request = request.into_inner();
        let order_id = check_id("order_id", &request.order_id)?;
        purchase::check_idempotency_key(&request.idempotency_key)?;
        let card = parse_card(request.card, self.state.clock.now_ms())?;
        // Once started, a payment runs to its end even if the caller goes away (a client
        // deadline, a dropped connection): stopped between steps, its attempt would stay in
        // flight until the reconciler found it, and the fan's retry with the same key would be
        // told to wait for it.
        let purchases = self.state.purchases.clone();
        let order_id = order_id.to_string();
        let paying = tokio::spawn(async move {
            let (order, payment) = purchase::pay(
                &purchases,
                &credential,
                &order_id,
                &request.idempotency_key,
                &card,
            )
            .await?;
            if let (Credential::Pass(pass), crate::store::OrderState::Paid) =
                (&credential, order.state)
            {
                // The payment stands either way; a missed note is retried in the background.
                purchases.waiting_room.finished_buying_or_retry(pass).await;
            }
            ApiResult::Ok((order, payment))
        });
        let (order, payment) = paying
            .await
            .map_err(|e| ApiError::Internal(format!("the payment task ended abnormally: {e}")))??;
        let event = find_event(&self.state, &order.event_id).await?;
        Ok(Response::new(pb::PayResponse {
            order: Some(convert::order(&order, &event)),
            payment: Some(convert::payment(&payment)),
        }))
    }

    #[instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let (credential, _admitted) = self.admit("GetOrder", &request).await?;
        let order_id = check_id("order_id", &request.get_ref().order_id)?;
        let order = purchase::get_order(&self.state.purchases, &credential, order_id).await?;
        let event = find_event(&self.state, &order.event_id).await?;
        Ok(Response::new(convert::order(&order, &event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_2026: i64 = 1_795_000_000_000;

    proptest::proptest! {
        /// Whatever a client sends as a card, the answer is a card or INVALID_ARGUMENT /
        /// FAILED_PRECONDITION naming the field: never a panic.
        #[test]
        fn any_card_is_parsed_or_refused_with_a_reason(
            number in "[0-9 a-z\\-]{0,30}",
            exp_month in proptest::num::u32::ANY,
            exp_year in proptest::num::u32::ANY,
            cvc in ".{0,6}",
        ) {
            let card = pb::Card { number, exp_month, exp_year, cvc };
            match parse_card(Some(card), NOV_2026) {
                Ok(parsed) => {
                    proptest::prop_assert!(parsed.number.bytes().all(|b| b.is_ascii_digit()));
                    proptest::prop_assert!(luhn(&parsed.number));
                    proptest::prop_assert!((1..=12).contains(&parsed.exp_month));
                }
                Err(ApiError::InvalidArgument(m) | ApiError::FailedPrecondition(m)) => {
                    proptest::prop_assert!(m.contains("card"), "{}", m);
                }
                Err(other) => proptest::prop_assert!(false, "unexpected {:?}", other),
            }
        }

        /// Ids and idempotency keys: anything at all is accepted or refused, never a panic, and
        /// what is accepted is safe to log and to store.
        #[test]
        fn any_id_or_key_is_checked(input in "\\PC{0,80}") {
            if let Ok(id) = check_id("order_id", &input) {
                proptest::prop_assert!(id.len() <= 64 && !id.is_empty());
                proptest::prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            }
            if purchase::check_idempotency_key(&input).is_ok() {
                proptest::prop_assert!(!input.chars().any(char::is_control));
            }
        }
    }

    fn card(number: &str) -> pb::Card {
        pb::Card {
            number: number.into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: "123".into(),
        }
    }

    #[test]
    fn luhn_accepts_the_test_cards() {
        for number in [
            "4242424242424242",
            "4000000000000002",
            "4000000000009995",
            "5555555555554444",
        ] {
            assert!(luhn(number), "{number}");
        }
        assert!(!luhn("4242424242424241"));
    }

    #[test]
    fn cards_are_validated_field_by_field() {
        assert!(parse_card(Some(card("4242 4242 4242 4242")), NOV_2026).is_ok());
        let message = |c: Option<pb::Card>| match parse_card(c, NOV_2026) {
            Err(ApiError::InvalidArgument(m)) | Err(ApiError::FailedPrecondition(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(message(None).contains("missing"));
        assert!(message(Some(card("42"))).contains("12 to 19 digits"));
        assert!(message(Some(card("4242424242424241"))).contains("check digit"));
        assert!(
            message(Some(pb::Card {
                exp_month: 0,
                ..card("4242424242424242")
            }))
            .contains("exp_month")
        );
        assert!(
            message(Some(pb::Card {
                exp_year: 26,
                ..card("4242424242424242")
            }))
            .contains("four-digit")
        );
        assert!(
            message(Some(pb::Card {
                exp_year: 2026,
                exp_month: 10,
                ..card("4242424242424242")
            }))
            .contains("expired")
        );
        assert!(
            parse_card(
                Some(pb::Card {
                    exp_year: 2026,
                    exp_month: 11,
                    ..card("4242424242424242")
                }),
                NOV_2026
            )
            .is_ok()
        );
        assert!(
            message(Some(pb::Card {
                cvc: "12a".into(),
                ..card("4242424242424242")
            }))
            .contains("cvc")
        );
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("hold_id", "h_0123abc").is_ok());
        assert!(check_id("hold_id", "").is_err());
        assert!(check_id("hold_id", "h'; DROP TABLE seats").is_err());
        assert!(check_id("hold_id", &"h".repeat(65)).is_err());
    }
}
