//! What a sale run measures and remembers: an HDR histogram per stage of the fan's journey,
//! error counts by gRPC status, tickets per second, and the ledger of every ticket the server
//! said this run bought (for the integrity verdict).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The measured stages of a fan's journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// The Join call.
    Join,
    /// From joined to the admission seen on the stream.
    Queue,
    /// From the server stamping the admission to this fan's stream delivering it.
    AdmissionSeen,
    /// HoldSeats (the successful attempt).
    Hold,
    /// Checkout.
    Checkout,
    /// Pay (the attempt that paid).
    Pay,
    /// From Join to paid.
    EndToEnd,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Join,
        Stage::Queue,
        Stage::AdmissionSeen,
        Stage::Hold,
        Stage::Checkout,
        Stage::Pay,
        Stage::EndToEnd,
    ];

    /// The stage's tag in HdrHistogram logs (no spaces or commas).
    pub fn tag(self) -> &'static str {
        match self {
            Stage::Join => "join",
            Stage::Queue => "queue",
            Stage::AdmissionSeen => "admission_seen",
            Stage::Hold => "hold",
            Stage::Checkout => "checkout",
            Stage::Pay => "pay",
            Stage::EndToEnd => "end_to_end",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.tag() == tag)
    }

    pub fn name(self) -> &'static str {
        match self {
            Stage::Join => "join",
            Stage::Queue => "time in queue",
            Stage::AdmissionSeen => "admission -> seen",
            Stage::Hold => "hold",
            Stage::Checkout => "checkout",
            Stage::Pay => "pay",
            Stage::EndToEnd => "end to end",
        }
    }
}

/// One ticket the server confirmed to this run.
#[derive(Debug, Clone)]
pub struct Bought {
    pub fan: String,
    pub order_id: String,
    /// Milliseconds from the run's start.
    pub at_ms: u64,
}

/// Failed calls of one RPC with one status code: (rpc, code, count).
pub type ErrorCount = (String, String, u64);

/// An order whose payment outcome a fan could not learn during the run.
#[derive(Debug, Clone)]
pub struct Unsettled {
    pub event: String,
    pub fan: String,
    pub cap: u32,
    pub order_id: String,
}

/// A problem found in what the run was told.
pub type Evidence = String;

#[derive(Debug, Default)]
struct Inner {
    stages: BTreeMap<Stage, Histogram<u64>>,
    errors: BTreeMap<(String, String), u64>,
    outcomes: BTreeMap<String, u64>,
    /// (event, seat id) → who bought it.
    seats: HashMap<(String, u32), Bought>,
    /// (event, fan) → tickets bought.
    per_fan: HashMap<(String, String), u32>,
    /// Seconds since start → tickets confirmed in that second.
    per_second: BTreeMap<u64, u64>,
    last_ticket_at: Option<Duration>,
    evidence: Vec<Evidence>,
    unsettled: Vec<Unsettled>,
}

/// Shared by every fan of the run.
#[derive(Debug)]
pub struct Recorder {
    started: Instant,
    inner: Mutex<Inner>,
    /// The same events over time, for the chart.
    pub timeline: super::timeline::Timeline,
    /// The ETAs fans were shown, against their waits.
    pub eta: super::eta::EtaLog,
    /// Fans who were in a pre-queue: where they were placed at opening, to check against the
    /// shuffle's proof.
    placements: Mutex<Vec<Placement>>,
}

/// A fan of a pre-queue and the place it was shown right after the sale opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub event_id: String,
    pub queue_token: String,
    pub position: u64,
}

fn histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to 1 hour at 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid HDR histogram bounds")
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            started: Instant::now(),
            inner: Mutex::default(),
            timeline: super::timeline::Timeline::new(),
            eta: super::eta::EtaLog::new(),
            placements: Mutex::default(),
        }
    }

    /// A fan who was in `event_id`'s pre-queue was shown `position` when the sale opened.
    pub fn placed(&self, event_id: &str, queue_token: &str, position: u64) {
        self.placements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Placement {
                event_id: event_id.to_string(),
                queue_token: queue_token.to_string(),
                position,
            });
    }

    /// The placements recorded for `event_id`.
    pub fn placements(&self, event_id: &str) -> Vec<Placement> {
        self.placements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .filter(|p| p.event_id == event_id)
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn stage(&self, stage: Stage, took: Duration) {
        let micros = (took.as_micros() as u64).clamp(1, 3_600_000_000);
        self.timeline.stage(stage, micros / 1_000);
        if stage == Stage::Queue {
            self.timeline.admitted();
        }
        let mut inner = self.lock();
        let h = inner.stages.entry(stage).or_insert_with(histogram);
        let _ = h.record(micros);
    }

    /// Counts a failed call by RPC and status code.
    pub fn error(&self, rpc: &str, code: tonic::Code) {
        if code == tonic::Code::ResourceExhausted {
            match rpc {
                "Join" => self.timeline.join_refused(),
                "HoldSeats" | "Checkout" | "Pay" => self.timeline.shed(),
                _ => {}
            }
        }
        *self
            .lock()
            .errors
            .entry((rpc.to_string(), format!("{code:?}")))
            .or_default() += 1;
    }

    /// Counts how fans' journeys ended.
    pub fn outcome(&self, outcome: &str) {
        *self.lock().outcomes.entry(outcome.to_string()).or_default() += 1;
    }

    /// Records tickets the server confirmed; notes evidence if a seat comes back twice or a
    /// fan goes over `cap`.
    pub fn bought(
        &self,
        event: &str,
        fan: &str,
        cap: u32,
        order_id: &str,
        tickets: &[(u32, String)],
    ) {
        let at_ms = self.started.elapsed().as_millis() as u64;
        self.timeline.tickets(tickets.len() as u64);
        for (seat, code) in tickets {
            if code.is_empty() {
                self.add_evidence(format!(
                    "seat {seat} of {event} was sold to {fan} without a ticket code"
                ));
            }
            self.absorb_ticket(event, *seat, fan, cap, order_id, at_ms);
        }
    }

    /// Notes an order whose outcome the fan could not learn.
    pub fn unsettled(&self, order: Unsettled) {
        self.lock().unsettled.push(order);
    }

    /// Takes the orders to look up after the run.
    pub fn take_unsettled(&self) -> Vec<Unsettled> {
        std::mem::take(&mut self.lock().unsettled)
    }

    /// Adds a paid order learnt after the run (its tickets count from the end of the run, in
    /// the ledger and on the timeline alike, so the chart's tickets are the run's).
    pub fn settled(&self, order: &Unsettled, seats: &[u32]) {
        let at_ms = self.started.elapsed().as_millis() as u64;
        self.timeline.tickets(seats.len() as u64);
        for seat in seats {
            self.absorb_ticket(
                &order.event,
                *seat,
                &order.fan,
                order.cap,
                &order.order_id,
                at_ms,
            );
        }
    }

    pub fn add_evidence(&self, evidence: Evidence) {
        self.lock().evidence.push(evidence);
    }

    pub fn evidence(&self) -> Vec<Evidence> {
        self.lock().evidence.clone()
    }

    /// Tickets this run bought, per event.
    pub fn tickets_per_event(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (event, _) in self.lock().seats.keys() {
            *out.entry(event.clone()).or_default() += 1;
        }
        out
    }

    pub fn last_ticket_at(&self) -> Option<Duration> {
        self.lock().last_ticket_at
    }

    /// Adds one confirmed ticket (from a `Pay` answer or another shard's ledger) to the ledger,
    /// noting evidence if the seat was already sold or the fan goes over `cap`.
    pub fn absorb_ticket(
        &self,
        event: &str,
        seat: u32,
        fan: &str,
        cap: u32,
        order_id: &str,
        at_ms: u64,
    ) {
        let mut inner = self.lock();
        let bought = Bought {
            fan: fan.to_string(),
            order_id: order_id.to_string(),
            at_ms,
        };
        if let Some(earlier) = inner.seats.insert((event.to_string(), seat), bought) {
            let evidence = format!(
                "seat {seat} of {event} sold twice: to {} in order {} and to {fan} in order {order_id}",
                earlier.fan, earlier.order_id
            );
            inner.evidence.push(evidence);
        }
        let count = inner
            .per_fan
            .entry((event.to_string(), fan.to_string()))
            .or_default();
        *count += 1;
        if *count == cap.saturating_add(1) {
            let evidence =
                format!("fan {fan} holds more than the cap of {cap} tickets for {event}");
            inner.evidence.push(evidence);
        }
        *inner.per_second.entry(at_ms / 1_000).or_default() += 1;
        let at = Duration::from_millis(at_ms);
        inner.last_ticket_at = Some(inner.last_ticket_at.map_or(at, |t| t.max(at)));
    }

    /// The ledger as CSV rows: event, seat, fan, order, ms from the start.
    pub fn ledger_csv(&self) -> String {
        let inner = self.lock();
        let mut rows: Vec<_> = inner.seats.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = String::from("event,seat,fan,order,at_ms\n");
        for ((event, seat), b) in rows {
            let _ = writeln!(out, "{event},{seat},{},{},{}", b.fan, b.order_id, b.at_ms);
        }
        out
    }

    /// Every stage's histogram, tagged, as an HdrHistogram interval log.
    pub fn histogram_log(&self, took: Duration) -> std::io::Result<Vec<u8>> {
        use hdrhistogram::serialization::V2DeflateSerializer;
        use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
        let inner = self.lock();
        let mut out = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let mut writer = IntervalLogWriterBuilder::new()
            .add_comment(
                "Taquilla loadgen: one histogram per stage of the fan's journey, in microseconds",
            )
            .with_start_time(std::time::SystemTime::now() - took)
            .begin_log_with(&mut out, &mut serializer)?;
        for (stage, h) in &inner.stages {
            writer
                .write_histogram(h, Duration::ZERO, took, Tag::new(stage.tag()))
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        }
        drop(writer);
        Ok(out)
    }

    /// Adds the histograms of an interval log written by [`Recorder::histogram_log`].
    pub fn absorb_histogram_log(&self, log: &[u8]) -> anyhow::Result<()> {
        use base64::Engine as _;
        use hdrhistogram::serialization::Deserializer;
        use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
        let mut deserializer = Deserializer::new();
        for entry in IntervalLogIterator::new(log) {
            let entry = entry.map_err(|e| anyhow::anyhow!("bad histogram log: {e:?}"))?;
            let LogEntry::Interval(interval) = entry else {
                continue;
            };
            let Some(stage) = interval.tag().and_then(|t| Stage::from_tag(t.as_str())) else {
                continue;
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(interval.encoded_histogram())
                .map_err(|e| anyhow::anyhow!("bad histogram encoding: {e}"))?;
            let h: Histogram<u64> = deserializer
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| anyhow::anyhow!("bad histogram: {e:?}"))?;
            let mut inner = self.lock();
            let mine = inner.stages.entry(stage).or_insert_with(histogram);
            mine.add(&h)
                .map_err(|e| anyhow::anyhow!("histograms do not add: {e:?}"))?;
        }
        Ok(())
    }

    /// Error and outcome counts, for the shard summary.
    pub fn counts(&self) -> (Vec<ErrorCount>, BTreeMap<String, u64>) {
        let inner = self.lock();
        (
            inner
                .errors
                .iter()
                .map(|((rpc, code), n)| (rpc.clone(), code.clone(), *n))
                .collect(),
            inner.outcomes.clone(),
        )
    }

    /// Adds another shard's error and outcome counts.
    pub fn absorb_counts(&self, errors: &[ErrorCount], outcomes: &BTreeMap<String, u64>) {
        let mut inner = self.lock();
        for (rpc, code, n) in errors {
            *inner.errors.entry((rpc.clone(), code.clone())).or_default() += n;
        }
        for (outcome, n) in outcomes {
            *inner.outcomes.entry(outcome.clone()).or_default() += n;
        }
    }

    /// The report printed at the end (and saved next to the HDR CSV).
    pub fn report(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<20}{:>9}{:>11}{:>11}{:>11}{:>11}{:>11}",
            "stage (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for stage in Stage::ALL {
            let Some(h) = inner.stages.get(&stage) else {
                continue;
            };
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
            let _ = writeln!(
                out,
                "{:<20}{:>9}{:>11.1}{:>11.1}{:>11.1}{:>11.1}{:>11.1}",
                stage.name(),
                h.len(),
                ms(0.5),
                ms(0.9),
                ms(0.99),
                ms(0.999),
                h.max() as f64 / 1_000.0
            );
        }
        let _ = writeln!(out, "\njourneys:");
        for (outcome, n) in &inner.outcomes {
            let _ = writeln!(out, "  {outcome:<34}{n:>9}");
        }
        let (limited, failed): (Vec<_>, Vec<_>) = inner
            .errors
            .iter()
            .partition(|((_, code), _)| code == "ResourceExhausted");
        let _ = writeln!(
            out,
            "\ndeliberate RESOURCE_EXHAUSTED (rate limits, shedding):"
        );
        for ((rpc, _), n) in &limited {
            let _ = writeln!(out, "  {rpc:<34}{n:>9}");
        }
        let _ = writeln!(out, "\nother failed calls by status:");
        for ((rpc, code), n) in &failed {
            let _ = writeln!(out, "  {:<34}{n:>9}", format!("{rpc} {code}"));
        }
        let _ = writeln!(out, "\ntickets per second (5 s buckets from the start):");
        let mut buckets: BTreeMap<u64, u64> = BTreeMap::new();
        for (second, n) in &inner.per_second {
            *buckets.entry(second / 5).or_default() += n;
        }
        for (bucket, n) in buckets {
            let _ = writeln!(
                out,
                "  {:>4}-{:<4}s {:>9.1}/s",
                bucket * 5,
                bucket * 5 + 5,
                n as f64 / 5.0
            );
        }
        out
    }

    /// Every stage's histogram as CSV: stage, percentile, microseconds.
    pub fn percentiles_csv(&self) -> String {
        let inner = self.lock();
        let mut out = String::from("stage,percentile,micros,count\n");
        for stage in Stage::ALL {
            if let Some(h) = inner.stages.get(&stage) {
                for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
                    let _ = writeln!(
                        out,
                        "{},{},{},{}",
                        stage.name(),
                        q * 100.0,
                        h.value_at_quantile(q),
                        h.len()
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_bought_twice_or_a_fan_over_the_cap_is_evidence() {
        let r = Recorder::new();
        r.bought(
            "ev",
            "fan-1",
            4,
            "o1",
            &[(1, "c1".into()), (2, "c2".into())],
        );
        assert!(r.evidence().is_empty());
        r.bought("ev", "fan-2", 4, "o2", &[(2, "c3".into())]);
        r.bought(
            "ev",
            "fan-1",
            4,
            "o3",
            &[(3, "c4".into()), (4, "c5".into()), (5, "c6".into())],
        );
        let evidence = r.evidence();
        assert_eq!(evidence.len(), 2, "{evidence:?}");
        assert!(evidence[0].contains("seat 2 of ev sold twice"));
        assert!(evidence[1].contains("fan fan-1 holds more than the cap of 4"));
        assert_eq!(r.tickets_per_event().get("ev"), Some(&5));
    }

    /// Tickets of an order the run learnt was paid only after it ended are on the timeline
    /// too: the chart adds up to the tickets the run was told of.
    #[test]
    fn tickets_settled_after_the_run_are_on_the_timeline() {
        let r = Recorder::new();
        r.bought(
            "ev",
            "fan-1",
            4,
            "o1",
            &[(1, "c1".into()), (2, "c2".into())],
        );
        r.settled(
            &Unsettled {
                event: "ev".into(),
                fan: "fan-2".into(),
                cap: 4,
                order_id: "o2".into(),
            },
            &[3, 4, 5],
        );
        assert!(r.evidence().is_empty());
        let told: u64 = r.tickets_per_event().values().sum();
        let charted: f64 = r
            .timeline
            .rows()
            .iter()
            .map(|row| row.tickets_per_s * super::super::timeline::BUCKET_MS as f64 / 1_000.0)
            .sum();
        assert_eq!(told, 5);
        assert_eq!(charted.round() as u64, told);
    }

    #[test]
    fn histogram_logs_and_ledgers_merge() {
        let a = Recorder::new();
        for ms in 1..=100 {
            a.stage(Stage::Hold, Duration::from_millis(ms));
        }
        a.bought("ev", "f1", 4, "o1", &[(7, "c".into())]);
        let b = Recorder::new();
        b.stage(Stage::Hold, Duration::from_millis(5_000));
        let merged = Recorder::new();
        for r in [&a, &b] {
            let log = r.histogram_log(Duration::from_secs(1)).expect("log");
            merged.absorb_histogram_log(&log).expect("read back");
        }
        let report = merged.report();
        let hold = report
            .lines()
            .find(|l| l.starts_with("hold"))
            .expect("hold line");
        assert!(hold.contains(" 101 "), "{hold}");
        let max: f64 = hold
            .split_whitespace()
            .last()
            .and_then(|v| v.parse().ok())
            .expect("max column");
        // 3 significant digits: 5,000 ms is kept within 0.1%.
        assert!(
            (5_000.0..5_006.0).contains(&max),
            "max from the second shard: {hold}"
        );
        // The same seat in two shards' ledgers is a double sale.
        merged.absorb_ticket("ev", 7, "f1", 4, "o1", 10);
        merged.absorb_ticket("ev", 7, "f2", 4, "o2", 20);
        assert_eq!(merged.evidence().len(), 1);
        assert!(a.ledger_csv().contains("ev,7,f1,o1,"));
    }

    #[test]
    fn the_report_has_every_recorded_stage() {
        let r = Recorder::new();
        r.stage(Stage::Join, Duration::from_millis(3));
        r.stage(Stage::Pay, Duration::from_millis(40));
        r.error("HoldSeats", tonic::Code::ResourceExhausted);
        r.error("Pay", tonic::Code::Unavailable);
        let report = r.report();
        assert!(report.contains("join"));
        assert!(report.contains("pay"));
        assert!(!report.contains("checkout "));
        assert!(report.contains("HoldSeats"));
        assert!(report.contains("Pay Unavailable"));
        assert!(r.percentiles_csv().contains("join,50,"));
    }
}
