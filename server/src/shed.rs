//! Load shedding: a bound on the calls of one kind doing work at once on this node. Past the
//! bound a call is answered at once with `RESOURCE_EXHAUSTED` and a `retry-after-ms` hint,
//! instead of queueing for a database connection until its deadline: overload gives fans a
//! quick, retryable answer, and the calls admitted keep their latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ApiResult};

/// Least and most wait suggested to a shed caller.
const RETRY_MIN_MS: u64 = 200;
const RETRY_MAX_MS: u64 = 10_000;
/// The window over which shed and finished calls are counted.
const WINDOW_MS: u64 = 1_000;

/// The bound for one kind of call.
#[derive(Debug)]
pub struct Shedder {
    what: &'static str,
    limit: usize,
    permits: Arc<Semaphore>,
    shed: AtomicU64,
    /// Calls let through that finished, and the time they took (µs), since start: the
    /// automatic admission valve's feedback.
    done: AtomicU64,
    busy_us: AtomicU64,
    shed_metric: Counter,
    in_flight_metric: Gauge,
    /// Calls shed and calls finished in the current window, and the window's start.
    window: std::sync::Mutex<Window>,
    started: std::time::Instant,
}

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    start_ms: u64,
    shed: u64,
    done: u64,
    /// The last full window's counts.
    last_shed: u64,
    last_done: u64,
}

/// A call let through; the slot frees when it is dropped.
#[derive(Debug)]
pub struct Admitted<'a> {
    _permit: OwnedSemaphorePermit,
    shedder: &'a Shedder,
    since: std::time::Instant,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.shedder.in_flight_metric.dec();
        self.shedder.count(|w| w.done += 1);
        self.shedder.done.fetch_add(1, Ordering::Relaxed);
        let took = self.since.elapsed().as_micros() as u64;
        self.shedder.busy_us.fetch_add(took, Ordering::Relaxed);
    }
}

/// What a shedder has seen since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShedTotals {
    pub shed: u64,
    pub done: u64,
    /// Time the calls let through took, summed (µs).
    pub busy_us: u64,
}

impl Shedder {
    /// At most `limit` calls of `what` (e.g. "sales") at once (at least one).
    pub fn new(what: &'static str, limit: usize) -> Shedder {
        let limit = limit.max(1);
        Shedder {
            what,
            limit,
            permits: Arc::new(Semaphore::new(limit)),
            shed: AtomicU64::new(0),
            done: AtomicU64::new(0),
            busy_us: AtomicU64::new(0),
            shed_metric: Counter::default(),
            in_flight_metric: Gauge::default(),
            window: std::sync::Mutex::new(Window::default()),
            started: std::time::Instant::now(),
        }
    }

    /// Counts in the current window (rolling it over when a second has passed); returns the
    /// last full window's (shed, done).
    fn count(&self, f: impl FnOnce(&mut Window)) -> (u64, u64) {
        let now = self.started.elapsed().as_millis() as u64;
        let Ok(mut w) = self.window.lock() else {
            return (0, 0);
        };
        if now >= w.start_ms + WINDOW_MS {
            let (shed, done) = if now >= w.start_ms + 2 * WINDOW_MS {
                (0, 0)
            } else {
                (w.shed, w.done)
            };
            *w = Window {
                start_ms: now - now % WINDOW_MS,
                last_shed: shed,
                last_done: done,
                ..Window::default()
            };
        }
        f(&mut w);
        (w.last_shed.max(w.shed), w.last_done.max(w.done))
    }

    /// How long a shed caller should wait: about the time the calls turned away lately take to
    /// be served at the rate calls finish (so retries arrive at about the rate there is room
    /// for), from 0.5× to 1.5× so they spread out.
    fn retry_after_ms(&self, shed: u64, done: u64) -> u64 {
        let backlog_ms = shed.saturating_mul(WINDOW_MS) / done.max(1);
        let wait = backlog_ms.clamp(RETRY_MIN_MS, RETRY_MAX_MS);
        wait / 2 + rand::random::<u64>() % wait.max(1)
    }

    /// Lets a call through, or answers it at once.
    pub fn admit(&self) -> ApiResult<Admitted<'_>> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                self.in_flight_metric.inc();
                Ok(Admitted {
                    _permit: permit,
                    shedder: self,
                    since: std::time::Instant::now(),
                })
            }
            Err(_) => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                self.shed_metric.inc();
                let (shed, done) = self.count(|w| w.shed += 1);
                Err(ApiError::ResourceExhausted {
                    message: format!(
                        "the server is busy ({} {} calls at once, its limit); nothing was done, \
                         retry in a moment",
                        self.limit, self.what
                    ),
                    retry_after_ms: self.retry_after_ms(shed, done),
                })
            }
        }
    }

    /// Calls answered at once because the bound was reached, since start.
    pub fn shed_total(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Calls shed, calls finished and their time, since start.
    pub fn totals(&self) -> ShedTotals {
        ShedTotals {
            shed: self.shed.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            busy_us: self.busy_us.load(Ordering::Relaxed),
        }
    }

    /// Calls in progress now.
    pub fn in_flight(&self) -> usize {
        self.limit - self.permits.available_permits()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Publishes `<what>_shed_total` and `<what>_in_flight` in the metrics registry.
    pub fn register(&self, metrics: &crate::metrics::Metrics) {
        metrics.register(
            &format!("{}_shed", self.what),
            &format!(
                "{} calls answered RESOURCE_EXHAUSTED at once because {} were in progress",
                self.what, self.limit
            ),
            self.shed_metric.clone(),
        );
        metrics.register(
            &format!("{}_in_flight", self.what),
            &format!("{} calls in progress (bound: {})", self.what, self.limit),
            self.in_flight_metric.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_calls_are_answered_at_once_and_retryable() {
        let shed = Shedder::new("sales", 2);
        let a = shed.admit().expect("first");
        let _b = shed.admit().expect("second");
        assert_eq!(shed.in_flight(), 2);
        match shed.admit() {
            Err(ApiError::ResourceExhausted {
                message,
                retry_after_ms,
            }) => {
                assert!(message.contains("retry"), "{message}");
                // One turned away, none finished yet this second: about a second.
                assert!((500..1_500).contains(&retry_after_ms), "{retry_after_ms}");
            }
            other => panic!("expected RESOURCE_EXHAUSTED, got {other:?}"),
        }
        assert_eq!(shed.shed_total(), 1);
        drop(a);
        assert_eq!(shed.in_flight(), 1);
        shed.admit().expect("a slot freed");
    }

    #[test]
    fn the_wait_grows_with_the_crowd_turned_away() {
        let shed = Shedder::new("sales", 1);
        // A quiet node: the least wait.
        assert!(shed.retry_after_ms(1, 100) < RETRY_MIN_MS * 3 / 2);
        // 2,000 turned away a second while 200 finish: come back in about 10 s (the most).
        let wait = shed.retry_after_ms(2_000, 200);
        assert!(
            (RETRY_MAX_MS / 2..RETRY_MAX_MS * 3 / 2).contains(&wait),
            "{wait}"
        );
        // 600 turned away, 200 finishing: about 3 s.
        let wait = shed.retry_after_ms(600, 200);
        assert!((1_500..4_500).contains(&wait), "{wait}");
    }
}
