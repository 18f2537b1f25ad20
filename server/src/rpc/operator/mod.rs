//! `taquilla.v1.Operator`: creating events and running sales. Every call has passed the
//! operator-token interceptor before it reaches this service.

mod create;
mod tickets;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use taquilla_proto::v1 as pb;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::convert;
use crate::domain::ids::check_text;
use crate::domain::{SalePhase, SaleState};
use crate::error::{ApiError, ApiResult};
use crate::sale_control::SaleChange;
use crate::state::AppState;
use crate::store::{AdmissionSettings, AuditEntry, OrderState, StoreError};
use create::parse_create_event;

#[derive(Debug, Clone)]
pub struct OperatorService {
    state: Arc<AppState>,
}

impl OperatorService {
    pub fn new(state: Arc<AppState>) -> Self {
        OperatorService { state }
    }
}

/// How long an audit entry the database refused for now is retried in the background.
const AUDIT_RETRY_FOR: Duration = Duration::from_secs(600);

/// Whether a failed write may succeed later unchanged (the database unreachable, busy, behind
/// an open breaker, or a collision), rather than being refused for what it is.
fn may_succeed_later(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Unavailable(_)
            | StoreError::Busy(_)
            | StoreError::BreakerOpen { .. }
            | StoreError::Collision(_)
    )
}

impl OperatorService {
    /// Records an operator's action, which is done by then. A write the database cannot take
    /// now (every connection busy selling, an outage, its breaker open) is retried in the
    /// background with backoff for up to [`AUDIT_RETRY_FOR`], with the action's own time:
    /// an operator's change during the busiest minute of a sale is the one that must not go
    /// unrecorded.
    async fn audit(&self, action: &str, event_id: Option<&str>, detail: String) {
        let entry = AuditEntry {
            at_ms: self.state.clock.now_ms(),
            actor: "operator".into(),
            action: action.into(),
            event_id: event_id.map(str::to_string),
            detail,
        };
        let Err(e) = self.state.store.record_audit(&entry).await else {
            return;
        };
        if !may_succeed_later(&e) {
            tracing::error!(error = %e, action, detail = %entry.detail, "could not write the audit log");
            return;
        }
        tracing::warn!(error = %e, action, "could not write the audit log yet; retrying in the background");
        let store = self.state.store.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut wait = Duration::from_millis(200);
            loop {
                tokio::time::sleep(wait).await;
                match store.record_audit(&entry).await {
                    Ok(()) => {
                        tracing::info!(action = %entry.action, "wrote the audit log entry after retrying");
                        return;
                    }
                    Err(e) if !may_succeed_later(&e) || started.elapsed() >= AUDIT_RETRY_FOR => {
                        tracing::error!(error = %e, action = %entry.action, detail = %entry.detail,
                            "gave up writing the audit log");
                        return;
                    }
                    Err(_) => wait = (wait * 2).min(Duration::from_secs(5)),
                }
            }
        });
    }

    async fn event_message(&self, event_id: &str) -> ApiResult<pb::Event> {
        let event = super::shared::find_event(&self.state, event_id).await?;
        let counts = self.state.catalog.counts(self.state.clock.now_ms()).await?;
        Ok(convert::event(&event, counts.get(event_id)))
    }

    async fn create_event(
        &self,
        request: pb::CreateEventRequest,
    ) -> ApiResult<pb::CreateEventResponse> {
        let event = parse_create_event(request, self.state.clock.now_ms())?;
        match self.state.store.create_event(&event).await {
            Ok(()) => {}
            Err(StoreError::Conflict(message)) => return Err(ApiError::AlreadyExists(message)),
            Err(e) => return Err(e.into()),
        }
        self.state.catalog.invalidate_counts();
        self.audit(
            "create_event",
            Some(&event.id),
            format!(
                "{} seats at {}",
                event.layout.capacity(),
                event.layout.venue.name
            ),
        )
        .await;
        Ok(pb::CreateEventResponse {
            event: Some(self.event_message(&event.id).await?),
        })
    }

    async fn seed(&self, request: pb::SeedDemoRequest) -> ApiResult<pb::SeedDemoResponse> {
        let started = Instant::now();
        let outcome = self
            .state
            .catalog
            .seed_demo(&request.scenario, self.state.clock.now_ms())
            .await?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if outcome.seats_created > 0 {
            self.audit(
                "seed_demo",
                None,
                format!("{} seats in {elapsed_ms} ms", outcome.seats_created),
            )
            .await;
        }
        let counts = self.state.catalog.counts(self.state.clock.now_ms()).await?;
        let mut events = Vec::with_capacity(outcome.event_ids.len());
        for id in &outcome.event_ids {
            let event = super::shared::find_event(&self.state, id).await?;
            events.push(convert::event(&event, counts.get(id)));
        }
        Ok(pb::SeedDemoResponse {
            events,
            seats_created: outcome.seats_created,
            elapsed_ms,
        })
    }
}

type StatsStream = Pin<Box<dyn Stream<Item = Result<pb::EventStats, Status>> + Send>>;

/// An event's live figures.
async fn stats(state: &AppState, event_id: &str) -> ApiResult<pb::EventStats> {
    let event = super::shared::find_event(state, event_id).await?;
    let now = state.clock.now_ms();
    let counts = state.catalog.counts(now).await?;
    let mut inventory = crate::domain::InventoryCounts::default();
    if let Some(sections) = counts.get(&event.id) {
        for c in sections.values() {
            inventory.merge(c);
        }
    }
    let room = state.waiting_room.stats(&event).await?;
    // The shuffle's proof (its manifest read once per node and kept): figures without it
    // rather than none when it cannot be had.
    let proof = match state.waiting_room.shuffle_proof(&event).await {
        Ok(proof) => Some(proof),
        Err(ApiError::FailedPrecondition(_)) => None,
        Err(e) => {
            tracing::warn!(event = %event.id, error = %e, "the shuffle's proof is not at hand");
            None
        }
    };
    let revealed = proof.as_ref().and_then(|p| p.revealed.as_ref());
    let (orders_paid, revenue) = state.catalog.paid_totals(&event.id).await?;
    Ok(pb::EventStats {
        event_id: event.id.clone(),
        sale_state: convert::sale_state(event.sale_state).into(),
        sale_phase: convert::sale_phase(event.sale_phase).into(),
        inventory: Some(convert::inventory(&inventory)),
        prequeue: room.prequeue,
        waiting: [
            (pb::QueueTier::General, room.waiting[0]),
            (pb::QueueTier::Presale, room.waiting[1]),
            (pb::QueueTier::Vip, room.waiting[2]),
        ]
        .into_iter()
        .map(|(tier, waiting)| pb::TierStats {
            tier: tier.into(),
            waiting,
        })
        .collect(),
        active: room.active,
        admitted_total: room.admitted_total,
        admitted_per_minute: room.admitted_per_minute,
        admission: Some(pb::AdmissionSettings {
            event_id: event.id.clone(),
            rate_per_minute: event.admission.rate_per_minute,
            burst: event.admission.burst,
            max_active: event.admission.max_active,
            pow_difficulty_bits: event.admission.pow_difficulty,
            auto: event.admission.auto,
            auto_limit: room.auto_limit.unwrap_or_default(),
        }),
        eta_last_seconds: room.eta_last_seconds,
        watchers: room.watchers,
        orders_paid,
        revenue: Some(convert::money(revenue, &event.currency)),
        shuffle_seed: revealed
            .map(|r| hex::encode(r.seed))
            .or(room.shuffle_seed)
            .unwrap_or_default(),
        shuffle_commitment: proof
            .as_ref()
            .map(|p| hex::encode(p.commitment))
            .unwrap_or_default(),
        shuffle_nonce: revealed.map(|r| hex::encode(r.nonce)).unwrap_or_default(),
        manifest_digest: revealed
            .map(|r| hex::encode(r.manifest.digest))
            .unwrap_or_default(),
        breakers: state
            .purchases
            .breakers()
            .into_iter()
            .map(|b| pb::BreakerStatus {
                name: b.name.to_string(),
                state: b.state.as_str().to_string(),
                consecutive_failures: b.consecutive_failures,
            })
            .collect(),
        flagged: state
            .abuse
            .flagged(&event.id, now)
            .await
            .into_iter()
            .map(|flag| pb::FlaggedFingerprint {
                reason: flag.reason(),
                fingerprint_hash: flag.fan,
            })
            .collect(),
        at_unix_ms: now,
    })
}

impl OperatorService {
    /// Pauses or closes a sale.
    async fn change_state(
        &self,
        event: &crate::store::EventRecord,
        state: SaleState,
        action: &str,
    ) -> ApiResult<pb::SaleStatus> {
        self.state
            .sale_control
            .apply(event, SaleChange::to_state(event, state))
            .await?;
        self.audit(action, Some(&event.id), String::new()).await;
        Ok(pb::SaleStatus {
            event_id: event.id.clone(),
            state: convert::sale_state(state).into(),
            phase: convert::sale_phase(event.sale_phase).into(),
            opens_at_unix_ms: event.sale_opens_at_ms,
        })
    }
}

#[tonic::async_trait]
impl pb::operator_server::Operator for OperatorService {
    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn create_event(
        &self,
        request: Request<pb::CreateEventRequest>,
    ) -> Result<Response<pb::CreateEventResponse>, Status> {
        Ok(Response::new(
            OperatorService::create_event(self, request.into_inner()).await?,
        ))
    }

    #[instrument(skip_all, fields(scenario = %request.get_ref().scenario))]
    async fn seed_demo(
        &self,
        request: Request<pb::SeedDemoRequest>,
    ) -> Result<Response<pb::SeedDemoResponse>, Status> {
        Ok(Response::new(self.seed(request.into_inner()).await?))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn open_sale(
        &self,
        request: Request<pb::OpenSaleRequest>,
    ) -> Result<Response<pb::SaleStatus>, Status> {
        let request = request.into_inner();
        let event = super::shared::find_event(&self.state, &request.event_id).await?;
        let phase = match pb::SalePhase::try_from(request.phase) {
            Ok(pb::SalePhase::Presale) => SalePhase::Presale,
            Ok(pb::SalePhase::General) => SalePhase::General,
            _ => {
                return Err(
                    ApiError::InvalidArgument("phase must be PRESALE or GENERAL".into()).into(),
                );
            }
        };
        if matches!(event.sale_state, SaleState::Closed | SaleState::SoldOut) {
            return Err(ApiError::FailedPrecondition(format!(
                "the sale of {:?} has ended and cannot reopen",
                event.id
            ))
            .into());
        }
        let mut codes = event.presale_codes.clone();
        for code in request.presale_codes {
            if code.is_empty()
                || code.len() > 64
                || !code
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ApiError::InvalidArgument(format!(
                    "presale code {code:?} must be 1 to 64 letters, digits, '-' or '_'"
                ))
                .into());
            }
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        let now = self.state.clock.now_ms();
        let scheduled = request.opens_at_unix_ms > now && event.sale_state == SaleState::NotOpen;
        let state = if scheduled {
            SaleState::NotOpen
        } else {
            SaleState::Open
        };
        let opens_at = if scheduled {
            request.opens_at_unix_ms
        } else {
            now
        };
        self.state
            .sale_control
            .apply(
                &event,
                SaleChange {
                    state,
                    phase,
                    opens_at_ms: opens_at,
                    presale_codes: codes,
                },
            )
            .await?;
        self.audit(
            "open_sale",
            Some(&event.id),
            format!(
                "{phase:?} phase, {}",
                if scheduled { "scheduled" } else { "open now" }
            ),
        )
        .await;
        Ok(Response::new(pb::SaleStatus {
            event_id: event.id.clone(),
            state: convert::sale_state(state).into(),
            phase: convert::sale_phase(phase).into(),
            opens_at_unix_ms: opens_at,
        }))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn pause_sale(
        &self,
        request: Request<pb::PauseSaleRequest>,
    ) -> Result<Response<pb::SaleStatus>, Status> {
        let event = super::shared::find_event(&self.state, &request.get_ref().event_id).await?;
        if event.sale_state != SaleState::Open {
            return Err(ApiError::FailedPrecondition(format!(
                "only an open sale can be paused; {:?} is {}",
                event.id,
                event.sale_state.as_db().to_lowercase().replace('_', " ")
            ))
            .into());
        }
        Ok(Response::new(
            self.change_state(&event, SaleState::Paused, "pause_sale")
                .await?,
        ))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn close_sale(
        &self,
        request: Request<pb::CloseSaleRequest>,
    ) -> Result<Response<pb::SaleStatus>, Status> {
        let event = super::shared::find_event(&self.state, &request.get_ref().event_id).await?;
        Ok(Response::new(
            self.change_state(&event, SaleState::Closed, "close_sale")
                .await?,
        ))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn set_admission(
        &self,
        request: Request<pb::SetAdmissionRequest>,
    ) -> Result<Response<pb::AdmissionSettings>, Status> {
        let mut request = request.into_inner();
        let event = super::shared::find_event(&self.state, &request.event_id).await?;
        let invalid = |m: &str| Status::from(ApiError::InvalidArgument(m.to_string()));
        // With the automatic valve the two figures are caps, and 0 means no cap of one's own.
        if request.auto {
            for cap in [&mut request.rate_per_minute, &mut request.max_active] {
                if *cap == 0 {
                    *cap = 1_000_000;
                }
            }
        }
        if !(1..=1_000_000).contains(&request.rate_per_minute) {
            return Err(invalid("rate_per_minute must be between 1 and 1,000,000"));
        }
        if !(1..=1_000_000).contains(&request.max_active) {
            return Err(invalid("max_active must be between 1 and 1,000,000"));
        }
        if request.pow_difficulty_bits > 32 {
            return Err(invalid("pow_difficulty_bits must be between 0 and 32"));
        }
        let settings = AdmissionSettings {
            rate_per_minute: request.rate_per_minute,
            burst: if request.burst == 0 {
                request.rate_per_minute.div_ceil(60)
            } else {
                request.burst
            },
            max_active: request.max_active,
            pow_difficulty: request.pow_difficulty_bits,
            auto: request.auto,
        };
        self.state
            .waiting_room
            .set_admission(&event, settings)
            .await?;
        self.state
            .store
            .update_admission(&event.id, &settings)
            .await
            .map_err(ApiError::from)?;
        self.state.catalog.invalidate_event(&event.id);
        self.audit("set_admission", Some(&event.id), format!("{settings:?}"))
            .await;
        let auto_limit = if settings.auto {
            let room = self.state.waiting_room.stats(&event).await?;
            room.auto_limit.unwrap_or_default()
        } else {
            0
        };
        Ok(Response::new(pb::AdmissionSettings {
            event_id: event.id.clone(),
            rate_per_minute: settings.rate_per_minute,
            burst: settings.burst,
            max_active: settings.max_active,
            pow_difficulty_bits: settings.pow_difficulty,
            auto: settings.auto,
            auto_limit,
        }))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn get_stats(
        &self,
        request: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::EventStats>, Status> {
        Ok(Response::new(
            stats(&self.state, &request.get_ref().event_id).await?,
        ))
    }

    type WatchStatsStream = StatsStream;

    async fn watch_stats(
        &self,
        request: Request<pb::WatchStatsRequest>,
    ) -> Result<Response<Self::WatchStatsStream>, Status> {
        let request = request.into_inner();
        let interval = match request.interval_ms {
            0 => 1_000,
            ms @ 250..=60_000 => ms,
            _ => {
                return Err(ApiError::InvalidArgument(
                    "interval_ms must be between 250 and 60,000".into(),
                )
                .into());
            }
        };
        // Fail now, not in the stream, for an unknown event.
        super::shared::find_event(&self.state, &request.event_id).await?;
        let state = self.state.clone();
        let mut stopping = state.shutdown.clone();
        let stream = super::shared::async_stream(move |tx| async move {
            let mut ticker =
                tokio::time::interval(std::time::Duration::from_millis(u64::from(interval)));
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = stopping.started() => return,
                }
                let message = stats(&state, &request.event_id).await.map_err(Status::from);
                if tx.send(message).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn broadcast(
        &self,
        request: Request<pb::BroadcastRequest>,
    ) -> Result<Response<pb::BroadcastResponse>, Status> {
        let request = request.into_inner();
        let event = super::shared::find_event(&self.state, &request.event_id).await?;
        check_text("message", &request.message, 500).map_err(ApiError::InvalidArgument)?;
        let severity = pb::AlertSeverity::try_from(request.severity)
            .ok()
            .filter(|s| *s != pb::AlertSeverity::Unspecified)
            .unwrap_or(pb::AlertSeverity::Info);
        let alert = self
            .state
            .waiting_room
            .broadcast(&event, &request.message, severity)
            .await?;
        self.audit("broadcast", Some(&event.id), request.message)
            .await;
        Ok(Response::new(pb::BroadcastResponse { alert: Some(alert) }))
    }

    #[instrument(skip_all)]
    async fn ban(
        &self,
        request: Request<pb::BanRequest>,
    ) -> Result<Response<pb::BanResponse>, Status> {
        let request = request.into_inner();
        let (kind, value, fingerprint, ip) = match request.target {
            Some(pb::ban_request::Target::Fingerprint(fp)) => {
                if fp.is_empty() || fp.len() > 128 {
                    return Err(ApiError::InvalidArgument(
                        "fingerprint must be 1 to 128 characters".into(),
                    )
                    .into());
                }
                let hash = crate::tokens::sha256_hex(&fp);
                ("FINGERPRINT", hash.clone(), Some(hash), None)
            }
            Some(pb::ban_request::Target::Ip(ip)) => {
                let ip: std::net::IpAddr = ip.trim().parse().map_err(|_| {
                    ApiError::InvalidArgument(format!("ip {ip:?} is not an IPv4 or IPv6 address"))
                })?;
                ("IP", ip.to_string(), None, Some(ip))
            }
            None => {
                return Err(ApiError::InvalidArgument(
                    "say what to ban: a fingerprint or an ip".into(),
                )
                .into());
            }
        };
        self.state
            .store
            .add_ban(kind, &value, &request.reason, self.state.clock.now_ms())
            .await
            .map_err(ApiError::from)?;
        let removed = self
            .state
            .waiting_room
            .ban(fingerprint.as_deref(), ip)
            .await?;
        self.audit(
            "ban",
            None,
            format!(
                "{kind} {value}: {} ({removed} entries removed)",
                request.reason
            ),
        )
        .await;
        Ok(Response::new(pb::BanResponse {
            removed_entries: removed,
        }))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let request = request.into_inner();
        let event = super::shared::find_event(&self.state, &request.event_id).await?;
        let state = match pb::OrderState::try_from(request.state) {
            Ok(pb::OrderState::Unspecified) => None,
            Ok(pb::OrderState::PendingPayment) => Some(OrderState::PendingPayment),
            Ok(pb::OrderState::Paid) => Some(OrderState::Paid),
            Ok(pb::OrderState::Expired) => Some(OrderState::Expired),
            Ok(pb::OrderState::Cancelled) => Some(OrderState::Cancelled),
            Ok(pb::OrderState::Refunded) => Some(OrderState::Refunded),
            Err(_) => {
                return Err(ApiError::InvalidArgument("state is not an order state".into()).into());
            }
        };
        let page_size = match request.page_size {
            0 => 100,
            n @ 1..=1_000 => n,
            _ => {
                return Err(ApiError::InvalidArgument(
                    "page_size must be between 1 and 1,000".into(),
                )
                .into());
            }
        };
        let before = if request.page_token.is_empty() {
            None
        } else {
            let bad = || {
                Status::from(ApiError::InvalidArgument(
                    "page_token is not one this service issued; start again without it".into(),
                ))
            };
            let raw = URL_SAFE_NO_PAD
                .decode(&request.page_token)
                .map_err(|_| bad())?;
            let text = String::from_utf8(raw).map_err(|_| bad())?;
            let (at, id) = text.split_once('.').ok_or_else(bad)?;
            Some((at.parse::<i64>().map_err(|_| bad())?, id.to_string()))
        };
        let mut orders = self
            .state
            .store
            .list_orders(&event.id, state, before, i64::from(page_size) + 1)
            .await
            .map_err(ApiError::from)?;
        let next_page_token = if orders.len() > page_size as usize {
            orders.truncate(page_size as usize);
            orders
                .last()
                .map(|o| URL_SAFE_NO_PAD.encode(format!("{}.{}", o.created_at_ms, o.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListOrdersResponse {
            orders: orders.iter().map(|o| convert::order(o, &event)).collect(),
            next_page_token,
        }))
    }

    #[instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn refund(
        &self,
        request: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::RefundResponse>, Status> {
        let request = request.into_inner();
        if request.order_id.is_empty() {
            return Err(ApiError::InvalidArgument("order_id is empty".into()).into());
        }
        let order = crate::purchase::refund(
            &self.state.purchases,
            &request.order_id,
            request.return_seats_to_sale,
        )
        .await?;
        self.audit(
            "refund",
            Some(&order.event_id),
            format!(
                "order {} refunded{}; reason: {}",
                order.id,
                if request.return_seats_to_sale {
                    ", seats back on sale"
                } else {
                    ", seats withheld"
                },
                request.reason
            ),
        )
        .await;
        let event = super::shared::find_event(&self.state, &order.event_id).await?;
        Ok(Response::new(pb::RefundResponse {
            order: Some(convert::order(&order, &event)),
        }))
    }

    #[instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn audit(
        &self,
        request: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditReport>, Status> {
        let event = super::shared::find_event(&self.state, &request.get_ref().event_id).await?;
        let now = self.state.clock.now_ms();
        let findings = self
            .state
            .store
            .audit(&event.id, now)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::AuditReport {
            event_id: event.id.clone(),
            ok: findings.ok(),
            inventory: Some(convert::inventory(&findings.counts)),
            invariants: findings
                .invariants
                .into_iter()
                .map(|f| pb::InvariantResult {
                    name: f.name.to_string(),
                    description: f.description.to_string(),
                    ok: f.violations == 0,
                    violations: f.violations,
                    examples: f.examples,
                })
                .collect(),
            checked_at_unix_ms: now,
        }))
    }

    async fn list_ticket_keys(
        &self,
        _request: Request<pb::ListTicketKeysRequest>,
    ) -> Result<Response<pb::TicketKeys>, Status> {
        Ok(Response::new(tickets::list(&self.state).await?))
    }

    async fn rotate_ticket_key(
        &self,
        _request: Request<pb::RotateTicketKeyRequest>,
    ) -> Result<Response<pb::TicketKeys>, Status> {
        let (kid, keys) = tickets::rotate(&self.state).await?;
        self.audit(
            "ticket_key_rotate",
            None,
            format!("ticket key {kid} signs new tickets"),
        )
        .await;
        Ok(Response::new(keys))
    }

    #[instrument(skip_all, fields(kid = %request.get_ref().kid))]
    async fn retire_ticket_key(
        &self,
        request: Request<pb::RetireTicketKeyRequest>,
    ) -> Result<Response<pb::TicketKeys>, Status> {
        let kid = request.into_inner().kid;
        let keys = tickets::retire(&self.state, kid.trim()).await?;
        self.audit(
            "ticket_key_retire",
            None,
            format!("ticket key {} retired: its codes are refused", kid.trim()),
        )
        .await;
        Ok(Response::new(keys))
    }

    #[instrument(skip_all, fields(gate = %request.get_ref().gate))]
    async fn check_in(
        &self,
        request: Request<pb::CheckInRequest>,
    ) -> Result<Response<pb::CheckInResponse>, Status> {
        Ok(Response::new(
            tickets::check_in(&self.state, request.into_inner()).await?,
        ))
    }
}
