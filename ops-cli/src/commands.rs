//! One function per `taquilla-ops` command: each makes its calls, prints through [`Output`],
//! and answers whether the command's check passed (health, audit) or the call was made.

use taquilla_proto::v1 as pb;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::output::Output;
use crate::{
    AdmissionCommand, EventCommand, OperatorClient, OrderStateArg, Phase, SaleCommand, Severity,
    explain,
};

/// Seeds a demo scenario.
pub(crate) async fn seed(
    mut op: OperatorClient,
    out: &Output,
    demo: String,
) -> anyhow::Result<bool> {
    let response = op
        .seed_demo(pb::SeedDemoRequest {
            scenario: demo.clone(),
        })
        .await
        .map_err(explain)?
        .into_inner();
    out.seeded(&demo, &response);
    Ok(true)
}

/// The event `event create` asks for: the layout file read, the fee parsed in the event's
/// currency. Everything is checked here, before connecting.
pub(crate) fn new_event(command: &EventCommand) -> anyhow::Result<pb::CreateEventRequest> {
    let EventCommand::Create {
        layout,
        id,
        name,
        artist,
        starts_at,
        fee,
        max_per_fan,
        currency,
    } = command;
    let document = std::fs::read_to_string(layout)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", layout.display()))?;
    let layout_field = if layout.extension().is_some_and(|e| e == "json") {
        pb::create_event_request::Layout::LayoutJson(document)
    } else {
        pb::create_event_request::Layout::LayoutToml(document)
    };
    let fee_per_ticket_minor = currency
        .parse_amount(fee)
        .map_err(|e| anyhow::anyhow!("--fee: {e}"))?;
    Ok(pb::CreateEventRequest {
        event_id: id.clone(),
        name: name.clone(),
        artist: artist.clone(),
        starts_at_unix_ms: *starts_at,
        currency: currency.code().to_string(),
        fee_per_ticket_minor,
        max_tickets_per_fan: *max_per_fan,
        layout: Some(layout_field),
    })
}

/// Creates an event.
pub(crate) async fn create_event(
    mut op: OperatorClient,
    out: &Output,
    request: pb::CreateEventRequest,
) -> anyhow::Result<bool> {
    let response = op
        .create_event(request)
        .await
        .map_err(explain)?
        .into_inner();
    if let Some(event) = response.event {
        out.events(&[event]);
    }
    Ok(true)
}

/// The server's health; `false` unless it is serving.
pub(crate) async fn health(channel: Channel, out: &Output) -> anyhow::Result<bool> {
    use tonic_health::pb::health_check_response::ServingStatus;
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(explain)?
        .into_inner()
        .status();
    out.health(status.as_str_name());
    Ok(status == ServingStatus::Serving)
}

/// Lists the events, as fans see them.
pub(crate) async fn events(channel: Channel, out: &Output) -> anyhow::Result<bool> {
    let events = pb::sales_client::SalesClient::new(channel)
        .list_events(pb::ListEventsRequest {})
        .await
        .map_err(explain)?
        .into_inner()
        .events;
    out.events(&events);
    Ok(true)
}

/// Opens, pauses, resumes or closes a sale.
pub(crate) async fn sale(
    mut op: OperatorClient,
    out: &Output,
    command: SaleCommand,
) -> anyhow::Result<bool> {
    let status = match command {
        SaleCommand::Open {
            event,
            phase,
            at,
            codes,
        } => {
            op.open_sale(pb::OpenSaleRequest {
                event_id: event,
                phase: match phase {
                    Phase::Presale => pb::SalePhase::Presale,
                    Phase::General => pb::SalePhase::General,
                }
                .into(),
                opens_at_unix_ms: at.unwrap_or(0),
                presale_codes: codes,
            })
            .await
        }
        SaleCommand::Pause { event } => {
            op.pause_sale(pb::PauseSaleRequest { event_id: event })
                .await
        }
        SaleCommand::Resume { event } => {
            let stats = op
                .get_stats(pb::GetStatsRequest {
                    event_id: event.clone(),
                })
                .await
                .map_err(explain)?
                .into_inner();
            op.open_sale(pb::OpenSaleRequest {
                event_id: event,
                phase: stats.sale_phase,
                opens_at_unix_ms: 0,
                presale_codes: vec![],
            })
            .await
        }
        SaleCommand::Close { event } => {
            op.close_sale(pb::CloseSaleRequest { event_id: event })
                .await
        }
    }
    .map_err(explain)?
    .into_inner();
    out.sale(&status);
    Ok(true)
}

/// Sets an event's admission valve.
pub(crate) async fn admission(
    mut op: OperatorClient,
    out: &Output,
    command: AdmissionCommand,
) -> anyhow::Result<bool> {
    let AdmissionCommand::Set {
        event,
        rate,
        max_active,
        burst,
        pow,
        auto,
    } = command;
    let settings = op
        .set_admission(pb::SetAdmissionRequest {
            event_id: event,
            rate_per_minute: rate.unwrap_or_default(),
            burst,
            max_active: max_active.unwrap_or_default(),
            pow_difficulty_bits: pow,
            auto,
        })
        .await
        .map_err(explain)?
        .into_inner();
    out.admission(&settings);
    Ok(true)
}

/// An event's live figures, once.
pub(crate) async fn stats(
    mut op: OperatorClient,
    out: &Output,
    event: String,
) -> anyhow::Result<bool> {
    let stats = op
        .get_stats(pb::GetStatsRequest { event_id: event })
        .await
        .map_err(explain)?
        .into_inner();
    out.stats(&stats, false);
    Ok(true)
}

/// An event's live figures, as they change, until Ctrl-C or `count` updates.
pub(crate) async fn top(
    mut op: OperatorClient,
    out: &Output,
    event: String,
    interval: f64,
    count: Option<u64>,
) -> anyhow::Result<bool> {
    let interval_ms = (interval * 1_000.0).round().clamp(250.0, 60_000.0) as u32;
    let mut stream = op
        .watch_stats(pb::WatchStatsRequest {
            event_id: event,
            interval_ms,
        })
        .await
        .map_err(explain)?
        .into_inner();
    let mut shown = 0u64;
    loop {
        tokio::select! {
            item = stream.next() => {
                let Some(item) = item else { break };
                out.stats(&item.map_err(explain)?, true);
                shown += 1;
                if count.is_some_and(|c| shown >= c) {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(true)
}

/// Sends an alert to everyone waiting for an event.
pub(crate) async fn broadcast(
    mut op: OperatorClient,
    out: &Output,
    event: String,
    message: String,
    severity: Severity,
) -> anyhow::Result<bool> {
    let alert = op
        .broadcast(pb::BroadcastRequest {
            event_id: event,
            message,
            severity: match severity {
                Severity::Info => pb::AlertSeverity::Info,
                Severity::Warning => pb::AlertSeverity::Warning,
                Severity::Critical => pb::AlertSeverity::Critical,
            }
            .into(),
        })
        .await
        .map_err(explain)?
        .into_inner()
        .alert
        .unwrap_or_default();
    out.alert(&alert);
    Ok(true)
}

/// Bans a fingerprint or an address.
pub(crate) async fn ban(
    mut op: OperatorClient,
    out: &Output,
    fingerprint: Option<String>,
    ip: Option<String>,
    reason: String,
) -> anyhow::Result<bool> {
    let target = match (fingerprint, ip) {
        (Some(f), _) => pb::ban_request::Target::Fingerprint(f),
        (None, Some(ip)) => pb::ban_request::Target::Ip(ip),
        (None, None) => anyhow::bail!("say what to ban: --fingerprint or --ip"),
    };
    let response = op
        .ban(pb::BanRequest {
            target: Some(target),
            reason,
        })
        .await
        .map_err(explain)?
        .into_inner();
    out.banned(response.removed_entries);
    Ok(true)
}

/// Lists an event's orders, newest first, page by page up to `limit`.
pub(crate) async fn orders(
    mut op: OperatorClient,
    out: &Output,
    event: String,
    state: Option<OrderStateArg>,
    limit: u32,
) -> anyhow::Result<bool> {
    let state = state.map(|s| match s {
        OrderStateArg::PendingPayment => pb::OrderState::PendingPayment,
        OrderStateArg::Paid => pb::OrderState::Paid,
        OrderStateArg::Expired => pb::OrderState::Expired,
        OrderStateArg::Cancelled => pb::OrderState::Cancelled,
        OrderStateArg::Refunded => pb::OrderState::Refunded,
    });
    let mut orders = Vec::new();
    let mut page_token = String::new();
    while orders.len() < limit as usize {
        let page = op
            .list_orders(pb::ListOrdersRequest {
                event_id: event.clone(),
                state: state.map(i32::from).unwrap_or(0),
                page_size: (limit as usize - orders.len()).min(1_000) as u32,
                page_token: page_token.clone(),
            })
            .await
            .map_err(explain)?
            .into_inner();
        orders.extend(page.orders);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    out.orders(&orders);
    Ok(true)
}

/// Refunds a paid order.
pub(crate) async fn refund(
    mut op: OperatorClient,
    out: &Output,
    order: String,
    return_seats: bool,
    reason: String,
) -> anyhow::Result<bool> {
    let refunded = op
        .refund(pb::RefundRequest {
            order_id: order,
            return_seats_to_sale: return_seats,
            reason,
        })
        .await
        .map_err(explain)?
        .into_inner()
        .order
        .unwrap_or_default();
    out.orders(&[refunded]);
    Ok(true)
}

/// Checks an event's integrity; `false` unless it is clean.
pub(crate) async fn audit(
    mut op: OperatorClient,
    out: &Output,
    event: String,
) -> anyhow::Result<bool> {
    let report = op
        .audit(pb::AuditRequest { event_id: event })
        .await
        .map_err(explain)?
        .into_inner();
    out.audit(&report);
    Ok(report.ok)
}
