//! How true the waiting room's ETAs came: every ETA a fan was shown while in line (the first
//! one, when the fan joined the line or was placed in it at opening, and every later one) is
//! kept until the fan is admitted, then compared with the wait that followed. Errors go into
//! HDR histograms by the fan's place when shown; fans never admitted (sold out, left) count
//! apart.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;

/// Which ETA of a fan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shown {
    /// The first ETA shown in line: at joining it, or at being placed in it when the sale
    /// opened.
    AtJoin,
    /// Any later one.
    Update,
}

/// Places when an ETA was shown, for the table.
const BANDS: [(u64, u64); 4] = [(1, 100), (101, 1_000), (1_001, 10_000), (10_001, u64::MAX)];

fn band(position: u64) -> usize {
    BANDS
        .iter()
        .position(|(low, high)| (*low..=*high).contains(&position))
        .unwrap_or(BANDS.len() - 1)
}

#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// Milliseconds since the run started.
    at_ms: u64,
    position: u64,
    eta_s: u64,
}

/// Errors of one (kind, band).
#[derive(Debug, Clone)]
struct Errors {
    /// |ETA − wait|, milliseconds.
    absolute_ms: Histogram<u64>,
    /// |ETA − wait| / wait, in thousandths.
    relative: Histogram<u64>,
    /// Fans admitted later than the ETA said.
    late: u64,
}

/// A histogram of milliseconds, up to ten hours.
fn millis() -> Histogram<u64> {
    // Constant, valid bounds.
    Histogram::new_with_bounds(1, 36_000_000, 3).expect("valid bounds")
}

impl Errors {
    fn new() -> Errors {
        // Constant, valid bounds: up to 1,000 times the wait.
        Errors {
            absolute_ms: millis(),
            relative: Histogram::new_with_bounds(1, 1_000_000, 3).expect("valid bounds"),
            late: 0,
        }
    }
}

/// A fan in line: when it was first seen there, and the ETAs it was shown since.
#[derive(Debug)]
struct InLine {
    entered_ms: u64,
    shown: Vec<Estimate>,
}

#[derive(Debug)]
struct Inner {
    waiting: HashMap<u64, InLine>,
    /// Fans admitted from the line without ever being shown an ETA (the pace not measured
    /// yet, or admitted at once).
    admitted_unestimated: u64,
    /// Time from entering the line to the first ETA shown, of the fans admitted (ms).
    first_eta_after_ms: Histogram<u64>,
    errors: BTreeMap<(Shown, usize), Errors>,
    never_admitted: u64,
    /// Every [`SAMPLE_EVERY`]th admitted fan's ETA at join: (shown at, place, ETA, wait), ms.
    samples: Vec<(u64, u64, u64, u64)>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            waiting: HashMap::new(),
            admitted_unestimated: 0,
            first_eta_after_ms: millis(),
            errors: BTreeMap::new(),
            never_admitted: 0,
            samples: Vec::new(),
        }
    }
}

/// One admitted fan in this many has its ETA at join written out (`eta.csv`).
const SAMPLE_EVERY: u64 = 10;

/// The run's ETAs, shared by every fan.
#[derive(Debug)]
pub struct EtaLog {
    started: Instant,
    inner: Mutex<Inner>,
}

impl Default for EtaLog {
    fn default() -> Self {
        EtaLog::new()
    }
}

impl EtaLog {
    pub fn new() -> EtaLog {
        EtaLog {
            started: Instant::now(),
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Fan `fan` is in line at place `position` and was shown `eta_s` seconds (zero: no ETA,
    /// the room is estimating). Ignored outside the line (no place).
    pub fn shown(&self, fan: u64, position: u64, eta_s: u64) {
        if position == 0 {
            return;
        }
        let at_ms = self.now_ms();
        let mut inner = self.lock();
        let in_line = inner.waiting.entry(fan).or_insert_with(|| InLine {
            entered_ms: at_ms,
            shown: Vec::new(),
        });
        if eta_s > 0 {
            in_line.shown.push(Estimate {
                at_ms,
                position,
                eta_s,
            });
        }
    }

    /// Fan `fan` was admitted now: each ETA it was shown is compared with the wait after it.
    pub fn admitted(&self, fan: u64) {
        let now_ms = self.now_ms();
        let mut inner = self.lock();
        let Some(InLine { entered_ms, shown }) = inner.waiting.remove(&fan) else {
            return;
        };
        match shown.first() {
            None => inner.admitted_unestimated += 1,
            Some(first) => {
                let after = first.at_ms.saturating_sub(entered_ms).clamp(1, 36_000_000);
                let _ = inner.first_eta_after_ms.record(after);
            }
        }
        for (i, estimate) in shown.iter().enumerate() {
            let kind = if i == 0 { Shown::AtJoin } else { Shown::Update };
            let wait_ms = now_ms.saturating_sub(estimate.at_ms).max(1);
            let eta_ms = estimate.eta_s * 1_000;
            if i == 0 && fan.is_multiple_of(SAMPLE_EVERY) {
                inner
                    .samples
                    .push((estimate.at_ms, estimate.position, eta_ms, wait_ms));
            }
            let off_ms = eta_ms.abs_diff(wait_ms).max(1);
            let errors = inner
                .errors
                .entry((kind, band(estimate.position)))
                .or_insert_with(Errors::new);
            let _ = errors.absolute_ms.record(off_ms.min(36_000_000));
            let _ = errors
                .relative
                .record((off_ms * 1_000 / wait_ms).clamp(1, 1_000_000));
            if wait_ms > eta_ms {
                errors.late += 1;
            }
        }
    }

    /// Fan `fan` left the line without being admitted (sold out, left, gave up).
    pub fn not_admitted(&self, fan: u64) {
        let mut inner = self.lock();
        if inner
            .waiting
            .remove(&fan)
            .is_some_and(|in_line| !in_line.shown.is_empty())
        {
            inner.never_admitted += 1;
        }
    }

    /// A sample of the ETAs at join, one admitted fan in [`SAMPLE_EVERY`], as CSV: when it
    /// was shown (ms since the run began), the place, the ETA and the wait that followed.
    pub fn samples_csv(&self) -> String {
        let mut out = String::from("shown_at_ms,position,eta_ms,wait_ms\n");
        for (at, position, eta, wait) in &self.lock().samples {
            let _ = writeln!(out, "{at},{position},{eta},{wait}");
        }
        out
    }

    /// The table: per kind and band, how many, the absolute and relative errors' p50/p90/p99,
    /// and the share admitted later than said.
    pub fn table(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        if inner.errors.is_empty() && inner.admitted_unestimated == 0 {
            out.push_str("ETAs: none shown to a fan who was then admitted\n");
            return out;
        }
        out.push_str(
            "ETA error (shown vs actual wait to admission)\n\
             shown      places          fans   abs p50   abs p90   abs p99  rel p50  rel p90  rel p99  late\n",
        );
        let mut totals: BTreeMap<Shown, Errors> = BTreeMap::new();
        for ((kind, band_index), errors) in &inner.errors {
            let total = totals.entry(*kind).or_insert_with(Errors::new);
            let _ = total.absolute_ms.add(&errors.absolute_ms);
            let _ = total.relative.add(&errors.relative);
            total.late += errors.late;
            let (low, high) = BANDS[*band_index];
            let places = if high == u64::MAX {
                format!("{low}+")
            } else {
                format!("{low}-{high}")
            };
            row(&mut out, *kind, &places, errors);
        }
        for (kind, errors) in &totals {
            row(&mut out, *kind, "all", errors);
        }
        let _ = writeln!(
            out,
            "fans shown an ETA and never admitted (sold out, left, gave up): {}",
            inner.never_admitted
        );
        let first = &inner.first_eta_after_ms;
        let _ = writeln!(
            out,
            "admitted fans never shown an ETA (\"estimating...\" until admitted): {}; \
             first ETA after entering the line: p50 {:.1} s, p90 {:.1} s, p99 {:.1} s",
            inner.admitted_unestimated,
            first.value_at_quantile(0.5) as f64 / 1_000.0,
            first.value_at_quantile(0.9) as f64 / 1_000.0,
            first.value_at_quantile(0.99) as f64 / 1_000.0,
        );
        out
    }
}

fn row(out: &mut String, kind: Shown, places: &str, e: &Errors) {
    let seconds = |q: f64| e.absolute_ms.value_at_quantile(q) as f64 / 1_000.0;
    let percent = |q: f64| e.relative.value_at_quantile(q) as f64 / 10.0;
    let n = e.relative.len();
    let _ = writeln!(
        out,
        "{:<10} {:<12} {:>8} {:>8.1}s {:>8.1}s {:>8.1}s {:>7.0}% {:>7.0}% {:>7.0}% {:>4.0}%",
        match kind {
            Shown::AtJoin => "at join",
            Shown::Update => "update",
        },
        places,
        n,
        seconds(0.5),
        seconds(0.9),
        seconds(0.99),
        percent(0.5),
        percent(0.9),
        percent(0.99),
        if n > 0 {
            e.late as f64 * 100.0 / n as f64
        } else {
            0.0
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_measured_against_the_wait_that_followed() {
        let log = EtaLog::new();
        // Shown 60 s at place 50: admitted at once, so the ETA was 60 s too long.
        log.shown(1, 50, 60);
        log.admitted(1);
        // A fan never admitted is counted apart, not as an error.
        log.shown(2, 5_000, 100);
        log.not_admitted(2);
        // Nothing shown: nothing recorded.
        log.admitted(3);
        log.shown(4, 0, 10);
        log.admitted(4);
        let inner = log.lock();
        assert_eq!(inner.never_admitted, 1);
        assert!(inner.waiting.is_empty());
        let errors = &inner.errors[&(Shown::AtJoin, 0)];
        assert_eq!(errors.relative.len(), 1);
        // About 60 s off, relative to a wait of about a millisecond: the top of the scale.
        assert!(
            errors.absolute_ms.max() >= 59_000,
            "{}",
            errors.absolute_ms.max()
        );
        assert!(errors.relative.max() > 1_000);
        assert_eq!(errors.late, 0);
        assert_eq!(inner.errors.len(), 1);
        drop(inner);
        let table = log.table();
        assert!(
            table.contains("at join") && table.contains("1-100"),
            "{table}"
        );
        // One admitted fan in ten is sampled: fan 10 is, fan 1 is not.
        log.shown(10, 70, 7);
        log.admitted(10);
        let csv = log.samples_csv();
        assert_eq!(csv.lines().count(), 2, "{csv}");
        assert!(
            csv.lines().nth(1).is_some_and(|l| l.contains(",70,7000,")),
            "{csv}"
        );
    }

    #[test]
    fn the_first_eta_is_the_one_at_join_and_bands_follow_the_place() {
        let log = EtaLog::new();
        log.shown(7, 20_000, 300);
        log.shown(7, 900, 30);
        log.shown(7, 40, 2);
        log.admitted(7);
        let inner = log.lock();
        let kinds: Vec<(Shown, usize)> = inner.errors.keys().copied().collect();
        assert_eq!(
            kinds,
            vec![(Shown::AtJoin, 3), (Shown::Update, 0), (Shown::Update, 1)]
        );
        // Admitted at once: each ETA was later than the wait, none early.
        assert!(inner.errors.values().all(|e| e.late == 0));
    }

    #[test]
    fn fans_in_line_before_any_eta_are_counted_and_their_first_eta_judged_alone() {
        let log = EtaLog::new();
        // In line while the room estimates, then admitted: no ETA to judge, counted apart.
        log.shown(1, 30, 0);
        log.shown(1, 10, 0);
        log.admitted(1);
        // Estimating at first, then an ETA: that one is the fan's first, judged against the
        // wait after it was shown.
        log.shown(2, 500, 0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        log.shown(2, 400, 40);
        log.admitted(2);
        // Never shown an ETA and not admitted: neither admitted nor "shown and never admitted".
        log.shown(3, 9_000, 0);
        log.not_admitted(3);
        let inner = log.lock();
        assert_eq!(inner.admitted_unestimated, 1);
        assert_eq!(inner.never_admitted, 0);
        assert_eq!(inner.first_eta_after_ms.len(), 1);
        assert!(inner.first_eta_after_ms.max() >= 20);
        let kinds: Vec<(Shown, usize)> = inner.errors.keys().copied().collect();
        assert_eq!(kinds, vec![(Shown::AtJoin, 1)], "place 400, the first ETA");
        drop(inner);
        let table = log.table();
        assert!(
            table
                .contains("admitted fans never shown an ETA (\"estimating...\" until admitted): 1"),
            "{table}"
        );
    }
}
