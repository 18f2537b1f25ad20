//! What the commands print: aligned tables with units and thousands separators for people, or
//! JSON with stable field names for scripts.

use serde_json::{Value, json};
use taquilla_proto::v1 as pb;

use taquilla_proto::display::utc_time as time;
pub use taquilla_proto::display::{money, thousands};

fn name<E: std::fmt::Debug>(value: Result<E, prost::UnknownEnumValue>) -> String {
    match value {
        Ok(v) => {
            // Debug of a prost enum is its Rust name, e.g. PendingPayment → PENDING_PAYMENT.
            let debug = format!("{v:?}");
            let mut out = String::new();
            for (i, c) in debug.chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
        Err(_) => "UNKNOWN".into(),
    }
}

fn money_json(m: Option<&pb::Money>) -> Value {
    m.map(|m| json!({ "amount_minor": m.amount_minor, "currency": m.currency }))
        .unwrap_or(Value::Null)
}

/// Prints rows as aligned columns; numbers (columns named in `right`) align right.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>], right: &[usize]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if right.contains(&i) {
                    format!("{c:>w$}", w = widths[i])
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        outln!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

pub struct Output {
    pub(crate) json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    pub(crate) fn print_json(&self, value: Value) {
        outln!("{value}");
    }

    fn event_json(e: &pb::Event) -> Value {
        let inv = e.inventory.unwrap_or_default();
        let venue = e.venue.clone().unwrap_or_default();
        json!({
            "event_id": e.id,
            "name": e.name,
            "venue": venue.name,
            "city": venue.city,
            "starts_at_unix_ms": e.starts_at_unix_ms,
            "capacity": inv.capacity,
            "available": inv.available,
            "held": inv.soft_locked + inv.hard_locked,
            "sold": inv.sold,
            "sale_state": name(pb::SaleState::try_from(e.sale_state)),
            "sale_phase": name(pb::SalePhase::try_from(e.sale_phase)),
        })
    }

    pub fn health(&self, status: &str) {
        if self.json {
            return self.print_json(json!({ "status": status }));
        }
        outln!("{status}");
    }

    pub fn events(&self, events: &[pb::Event]) {
        if self.json {
            return self.print_json(Value::Array(events.iter().map(Self::event_json).collect()));
        }
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                let inv = e.inventory.unwrap_or_default();
                let venue = e.venue.clone().unwrap_or_default();
                vec![
                    e.id.clone(),
                    format!("{}, {}", venue.name, venue.city),
                    time(e.starts_at_unix_ms),
                    thousands(inv.capacity.into()),
                    thousands(inv.sold.into()),
                    thousands((inv.soft_locked + inv.hard_locked).into()),
                    thousands(inv.available.into()),
                    name(pb::SaleState::try_from(e.sale_state)),
                ]
            })
            .collect();
        table(
            &[
                "EVENT",
                "VENUE",
                "STARTS",
                "CAPACITY",
                "SOLD",
                "HELD",
                "AVAILABLE",
                "SALE",
            ],
            &rows,
            &[3, 4, 5, 6],
        );
    }

    pub fn seeded(&self, demo: &str, response: &pb::SeedDemoResponse) {
        if self.json {
            return self.print_json(json!({
                "demo": demo,
                "seats_created": response.seats_created,
                "elapsed_ms": response.elapsed_ms,
                "events": response.events.iter().map(Self::event_json).collect::<Vec<_>>(),
            }));
        }
        outln!(
            "seeded {demo}: {} events, {} seats created in {} ms",
            response.events.len(),
            thousands(response.seats_created),
            thousands(response.elapsed_ms)
        );
        self.events(&response.events);
    }

    pub fn sale(&self, s: &pb::SaleStatus) {
        let state = name(pb::SaleState::try_from(s.state));
        let phase = name(pb::SalePhase::try_from(s.phase));
        if self.json {
            return self.print_json(json!({
                "event_id": s.event_id, "sale_state": state, "sale_phase": phase,
                "opens_at_unix_ms": s.opens_at_unix_ms,
            }));
        }
        outln!(
            "{}: sale {state}, phase {phase}, opens {}",
            s.event_id,
            time(s.opens_at_unix_ms)
        );
    }

    pub fn admission(&self, a: &pb::AdmissionSettings) {
        if self.json {
            return self.print_json(json!({
                "event_id": a.event_id, "rate_per_minute": a.rate_per_minute, "burst": a.burst,
                "max_active": a.max_active, "pow_difficulty_bits": a.pow_difficulty_bits,
                "auto": a.auto, "auto_limit": a.auto_limit,
            }));
        }
        if a.auto {
            outln!(
                "{}: automatic valve, {} buying at once now; caps: {} fans/min (burst {}), {} \
                 buying at once; proof of work {} bits",
                a.event_id,
                thousands(a.auto_limit.into()),
                thousands(a.rate_per_minute.into()),
                thousands(a.burst.into()),
                thousands(a.max_active.into()),
                a.pow_difficulty_bits
            );
            return;
        }
        outln!(
            "{}: admitting {} fans/min (burst {}), at most {} buying at once, proof of work {} bits",
            a.event_id,
            thousands(a.rate_per_minute.into()),
            thousands(a.burst.into()),
            thousands(a.max_active.into()),
            a.pow_difficulty_bits
        );
    }

    pub fn stats(&self, s: &pb::EventStats, live: bool) {
        let inv = s.inventory.unwrap_or_default();
        let tier = |t: pb::QueueTier| {
            s.waiting
                .iter()
                .find(|w| w.tier == t as i32)
                .map(|w| w.waiting)
                .unwrap_or(0)
        };
        let admission = s.admission.clone().unwrap_or_default();
        if self.json {
            return self.print_json(json!({
                "event_id": s.event_id,
                "sale_state": name(pb::SaleState::try_from(s.sale_state)),
                "sale_phase": name(pb::SalePhase::try_from(s.sale_phase)),
                "capacity": inv.capacity, "available": inv.available,
                "held": inv.soft_locked + inv.hard_locked, "sold": inv.sold,
                "prequeue": s.prequeue,
                "waiting_general": tier(pb::QueueTier::General),
                "waiting_presale": tier(pb::QueueTier::Presale),
                "waiting_vip": tier(pb::QueueTier::Vip),
                "active": s.active, "admitted_total": s.admitted_total,
                "admitted_per_minute": s.admitted_per_minute,
                "target_per_minute": admission.rate_per_minute, "max_active": admission.max_active,
                "auto": admission.auto, "auto_limit": admission.auto_limit,
                "eta_last_seconds": s.eta_last_seconds, "watchers": s.watchers,
                "orders_paid": s.orders_paid, "revenue": money_json(s.revenue.as_ref()),
                "shuffle_seed": s.shuffle_seed, "shuffle_commitment": s.shuffle_commitment,
                "shuffle_nonce": s.shuffle_nonce, "manifest_digest": s.manifest_digest,
                "at_unix_ms": s.at_unix_ms,
                "breakers": s.breakers.iter().map(|b| json!({"name": b.name, "state": b.state})).collect::<Vec<_>>(),
            }));
        }
        if live && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            print!("\x1b[2J\x1b[H");
        }
        let rows = vec![
            vec![
                "sale".into(),
                format!(
                    "{} ({})",
                    name(pb::SaleState::try_from(s.sale_state)),
                    name(pb::SalePhase::try_from(s.sale_phase))
                ),
            ],
            vec![
                "seats".into(),
                format!(
                    "{} sold, {} held, {} available of {}",
                    thousands(inv.sold.into()),
                    thousands((inv.soft_locked + inv.hard_locked).into()),
                    thousands(inv.available.into()),
                    thousands(inv.capacity.into())
                ),
            ],
            vec![
                "queue".into(),
                format!(
                    "{} pre-queue; waiting: {} general, {} presale, {} VIP",
                    thousands(s.prequeue),
                    thousands(tier(pb::QueueTier::General)),
                    thousands(tier(pb::QueueTier::Presale)),
                    thousands(tier(pb::QueueTier::Vip))
                ),
            ],
            vec![
                "admitted".into(),
                format!(
                    "{} in all; {:.0}/min observed vs {}/min target; {} buying now (max {}{})",
                    thousands(s.admitted_total),
                    s.admitted_per_minute,
                    thousands(admission.rate_per_minute.into()),
                    thousands(s.active),
                    thousands(if admission.auto {
                        admission.auto_limit.into()
                    } else {
                        admission.max_active.into()
                    }),
                    if admission.auto {
                        format!(
                            ", automatic valve under a cap of {}",
                            thousands(admission.max_active.into())
                        )
                    } else {
                        String::new()
                    }
                ),
            ],
            vec![
                "last in line".into(),
                if s.eta_last_seconds > 0 {
                    format!("admitted in about {} min", s.eta_last_seconds.div_ceil(60))
                } else {
                    "-".into()
                },
            ],
            vec!["watchers".into(), thousands(s.watchers)],
            vec![
                "orders".into(),
                format!(
                    "{} paid, revenue {}",
                    thousands(s.orders_paid),
                    money(s.revenue.as_ref())
                ),
            ],
            vec![
                "breakers".into(),
                if s.breakers.is_empty() {
                    "-".into()
                } else {
                    s.breakers
                        .iter()
                        .map(|b| format!("{} {}", b.name, b.state))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ],
            vec![
                "shuffle commitment".into(),
                if s.shuffle_commitment.is_empty() {
                    "- (the sale opened before commitments)".into()
                } else {
                    s.shuffle_commitment.clone()
                },
            ],
            vec![
                "shuffle seed".into(),
                if s.shuffle_seed.is_empty() {
                    "- (revealed at opening)".into()
                } else {
                    s.shuffle_seed.clone()
                },
            ],
        ];
        outln!("{} at {}", s.event_id, time(s.at_unix_ms));
        table(&["", ""], &rows, &[]);
    }

    pub fn alert(&self, a: &pb::Alert) {
        if self.json {
            return self.print_json(json!({
                "alert_id": a.id, "message": a.message,
                "severity": name(pb::AlertSeverity::try_from(a.severity)), "sent_at_unix_ms": a.sent_at_unix_ms,
            }));
        }
        outln!("alert {} sent: {}", a.id, a.message);
    }

    pub fn banned(&self, removed: u64) {
        if self.json {
            return self.print_json(json!({ "removed_entries": removed }));
        }
        outln!("banned; {} queue entries removed", thousands(removed));
    }

    pub fn orders(&self, orders: &[pb::Order]) {
        if self.json {
            return self.print_json(Value::Array(
                orders
                    .iter()
                    .map(|o| {
                        json!({
                            "order_id": o.order_id, "event_id": o.event_id,
                            "state": name(pb::OrderState::try_from(o.state)),
                            "seats": o.seats.iter().map(|s| s.seat_id).collect::<Vec<_>>(),
                            "total": money_json(o.total.as_ref()),
                            "payments": o.payments.len(), "tickets": o.tickets.len(),
                            "created_at_unix_ms": o.created_at_unix_ms,
                        })
                    })
                    .collect(),
            ));
        }
        let rows: Vec<Vec<String>> = orders
            .iter()
            .map(|o| {
                vec![
                    o.order_id.clone(),
                    name(pb::OrderState::try_from(o.state)),
                    o.seats.len().to_string(),
                    money(o.total.as_ref()),
                    o.tickets.len().to_string(),
                    time(o.created_at_unix_ms),
                ]
            })
            .collect();
        table(
            &["ORDER", "STATE", "SEATS", "TOTAL", "TICKETS", "CREATED"],
            &rows,
            &[2, 3, 4],
        );
    }

    pub fn audit(&self, r: &pb::AuditReport) {
        let inv = r.inventory.unwrap_or_default();
        if self.json {
            return self.print_json(json!({
                "event_id": r.event_id, "ok": r.ok,
                "capacity": inv.capacity, "available": inv.available,
                "soft_locked": inv.soft_locked, "hard_locked": inv.hard_locked, "sold": inv.sold,
                "invariants": r.invariants.iter().map(|i| json!({
                    "name": i.name, "ok": i.ok, "violations": i.violations, "examples": i.examples,
                })).collect::<Vec<_>>(),
            }));
        }
        outln!(
            "audit of {}: {} ({} seats: {} sold, {} held, {} available)",
            r.event_id,
            if r.ok {
                "all invariants hold"
            } else {
                "INVARIANTS FAILED"
            },
            thousands(inv.capacity.into()),
            thousands(inv.sold.into()),
            thousands((inv.soft_locked + inv.hard_locked).into()),
            thousands(inv.available.into())
        );
        let rows: Vec<Vec<String>> = r
            .invariants
            .iter()
            .map(|i| {
                vec![
                    if i.ok { "ok".into() } else { "FAIL".into() },
                    i.name.clone(),
                    thousands(i.violations),
                    i.examples.first().cloned().unwrap_or_default(),
                ]
            })
            .collect();
        table(&["", "INVARIANT", "VIOLATIONS", "EXAMPLE"], &rows, &[2]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(142_000), "142,000");
        assert_eq!(thousands(7), "7");
        assert_eq!(
            money(Some(&pb::Money {
                amount_minor: 123_450,
                currency: "EUR".into()
            })),
            "1,234.50 EUR"
        );
        assert_eq!(name(pb::OrderState::try_from(1)), "PENDING_PAYMENT");
        assert_eq!(time(1_774_897_200_000), "2026-03-30 19:00 UTC");
    }
}
