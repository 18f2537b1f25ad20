//! Circuit breakers around the server's dependencies (the database, the payment provider).
//!
//! A breaker counts consecutive failures of the calls it guards. While CLOSED every call goes
//! through; after `failures_to_open` failures in a row it turns OPEN and refuses every call at
//! once for `cool_down` (callers answer `UNAVAILABLE` with a retry hint instead of piling
//! requests onto a dependency that is not answering). When the cool-down has passed the next
//! call is let through alone as a probe (HALF_OPEN): its success closes the breaker, its failure
//! opens it for another cool-down. Only failures of the dependency itself count (no connection,
//! no answer in time); a refusal the dependency answered with (a declined card, a seat already
//! taken) is a success as far as the breaker is concerned.
//!
//! [`Machine`] is the pure state machine, driven by explicit instants so it is tested without
//! sleeping; [`Breaker`] wraps it for concurrent use with tokio's clock (pausable in tests).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    /// The name operators see in `GetStats`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Open => "OPEN",
            State::HalfOpen => "HALF_OPEN",
        }
    }

    /// The value of the `taquilla_breaker_state` gauge.
    pub fn gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }
}

/// A breaker's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (at least 1).
    pub failures_to_open: u32,
    /// How long an open breaker refuses calls before letting a probe through.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures_to_open: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// What the machine says about a call about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead.
    Go,
    /// Go ahead as the one probe of a half-open breaker.
    Probe,
    /// Refused without calling; retry after this long.
    Refuse { retry_in: Duration },
}

/// The pure state machine. Every method takes the current instant.
#[derive(Debug, Clone)]
pub struct Machine {
    config: BreakerConfig,
    state: State,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
    times_opened: u64,
}

impl Machine {
    pub fn new(config: BreakerConfig) -> Machine {
        Machine {
            config: BreakerConfig {
                failures_to_open: config.failures_to_open.max(1),
                cool_down: config.cool_down,
            },
            state: State::Closed,
            consecutive_failures: 0,
            opened_at: None,
            probe_in_flight: false,
            times_opened: 0,
        }
    }

    /// The state as of `now` (an open breaker whose cool-down has passed reads HALF_OPEN).
    pub fn state(&self, now: Instant) -> State {
        match (self.state, self.opened_at) {
            (State::Open, Some(at)) if now.duration_since(at) >= self.config.cool_down => {
                State::HalfOpen
            }
            (state, _) => state,
        }
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// How many times the breaker has opened.
    pub fn times_opened(&self) -> u64 {
        self.times_opened
    }

    /// Decides whether a call may go to the dependency now.
    pub fn admit(&mut self, now: Instant) -> Admit {
        if self.state == State::Open && self.state(now) == State::HalfOpen {
            self.state = State::HalfOpen;
            self.probe_in_flight = false;
        }
        match self.state {
            State::Closed => Admit::Go,
            State::Open => Admit::Refuse {
                retry_in: self.remaining(now),
            },
            State::HalfOpen if self.probe_in_flight => Admit::Refuse {
                // The probe's answer is due soon; a second later is a fair hint.
                retry_in: Duration::from_secs(1),
            },
            State::HalfOpen => {
                self.probe_in_flight = true;
                Admit::Probe
            }
        }
    }

    /// Records a call that went through and got an answer from the dependency.
    pub fn success(&mut self, probe: bool) {
        match self.state {
            State::HalfOpen if probe => {
                self.state = State::Closed;
                self.probe_in_flight = false;
                self.opened_at = None;
                self.consecutive_failures = 0;
            }
            State::Closed => self.consecutive_failures = 0,
            // A slow call admitted before the breaker opened says nothing about now.
            State::Open | State::HalfOpen => {}
        }
    }

    /// Records a call that went through and found the dependency failing.
    pub fn failure(&mut self, now: Instant, probe: bool) {
        match self.state {
            State::Closed => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= self.config.failures_to_open {
                    self.open(now);
                }
            }
            State::HalfOpen if probe => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.open(now);
            }
            State::Open | State::HalfOpen => {}
        }
    }

    /// Records a probe that ended without an answer either way (the caller gave up): the next
    /// call may probe instead.
    pub fn abandon_probe(&mut self) {
        if self.state == State::HalfOpen {
            self.probe_in_flight = false;
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open;
        self.opened_at = Some(now);
        self.probe_in_flight = false;
        self.times_opened += 1;
    }

    fn remaining(&self, now: Instant) -> Duration {
        match self.opened_at {
            Some(at) => self.config.cool_down.saturating_sub(now.duration_since(at)),
            None => Duration::ZERO,
        }
        .max(Duration::from_millis(100))
    }
}

/// A call refused by an open breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// The dependency the breaker guards.
    pub name: &'static str,
    /// When a retry may go through.
    pub retry_in: Duration,
}

/// A snapshot of a breaker for `GetStats` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub name: &'static str,
    pub state: State,
    pub consecutive_failures: u32,
    pub times_opened: u64,
    pub refused: u64,
}

/// A breaker shared by concurrent callers.
#[derive(Debug)]
pub struct Breaker {
    name: &'static str,
    machine: Mutex<Machine>,
    refused: std::sync::atomic::AtomicU64,
}

impl Breaker {
    pub fn new(name: &'static str, config: BreakerConfig) -> Breaker {
        Breaker {
            name,
            machine: Mutex::new(Machine::new(config)),
            refused: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Machine> {
        // The machine's methods do not panic; a poisoned lock still holds a consistent machine.
        self.machine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks to make a call. The permit must be told how the call went; dropped untold (the
    /// caller was cancelled), it counts as neither success nor failure.
    pub fn permit(&self) -> Result<Permit<'_>, Refused> {
        match self.lock().admit(Instant::now()) {
            Admit::Go => Ok(Permit {
                breaker: self,
                probe: false,
                done: false,
            }),
            Admit::Probe => {
                tracing::info!(dependency = self.name, "circuit breaker half-open: probing");
                Ok(Permit {
                    breaker: self,
                    probe: true,
                    done: false,
                })
            }
            Admit::Refuse { retry_in } => {
                self.refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(Refused {
                    name: self.name,
                    retry_in,
                })
            }
        }
    }

    /// Runs `call` through the breaker; `is_failure` tells a dependency failure from an answer.
    pub async fn run<T, E, F>(
        &self,
        call: F,
        is_failure: impl FnOnce(&E) -> bool,
    ) -> Result<Result<T, E>, Refused>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        let permit = self.permit()?;
        let result = call.await;
        match &result {
            Err(e) if is_failure(e) => permit.failure(),
            _ => permit.success(),
        }
        Ok(result)
    }

    pub fn snapshot(&self) -> Snapshot {
        let machine = self.lock();
        Snapshot {
            name: self.name,
            state: machine.state(Instant::now()),
            consecutive_failures: machine.consecutive_failures(),
            times_opened: machine.times_opened(),
            refused: self.refused.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Leave to make one call through a [`Breaker`].
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    done: bool,
}

impl Permit<'_> {
    pub fn success(mut self) {
        self.done = true;
        let mut machine = self.breaker.lock();
        let was = machine.state(Instant::now());
        machine.success(self.probe);
        if was != State::Closed && machine.state(Instant::now()) == State::Closed {
            tracing::info!(dependency = self.breaker.name, "circuit breaker closed");
        }
    }

    pub fn failure(mut self) {
        self.done = true;
        let now = Instant::now();
        let mut machine = self.breaker.lock();
        let opened = machine.times_opened();
        machine.failure(now, self.probe);
        if machine.times_opened() > opened {
            tracing::warn!(
                dependency = self.breaker.name,
                failures = machine.consecutive_failures(),
                "circuit breaker opened: calls fail fast until the cool-down has passed"
            );
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.lock().abandon_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failures_to_open: 5,
            cool_down: Duration::from_secs(30),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut m = Machine::new(config());
        for _ in 0..4 {
            assert_eq!(m.admit(t0), Admit::Go);
            m.failure(t0, false);
        }
        // A success in between resets the count.
        assert_eq!(m.admit(t0), Admit::Go);
        m.success(false);
        assert_eq!(m.consecutive_failures(), 0);
        for i in 0..5 {
            assert_eq!(m.state(t0), State::Closed, "after {i} failures");
            assert_eq!(m.admit(t0), Admit::Go);
            m.failure(t0, false);
        }
        assert_eq!(m.state(t0), State::Open);
        assert_eq!(m.times_opened(), 1);
        assert_eq!(
            m.admit(t0 + Duration::from_secs(10)),
            Admit::Refuse {
                retry_in: Duration::from_secs(20)
            }
        );
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_answer_decides() {
        let t0 = Instant::now();
        let mut m = Machine::new(config());
        for _ in 0..5 {
            m.admit(t0);
            m.failure(t0, false);
        }
        let later = t0 + Duration::from_secs(30);
        assert_eq!(m.state(later), State::HalfOpen);
        assert_eq!(m.admit(later), Admit::Probe);
        // While the probe is out, everyone else is refused.
        assert!(matches!(m.admit(later), Admit::Refuse { .. }));
        // The probe fails: open again, for a fresh cool-down.
        m.failure(later, true);
        assert_eq!(m.state(later), State::Open);
        assert_eq!(m.times_opened(), 2);
        assert!(matches!(
            m.admit(later + Duration::from_secs(29)),
            Admit::Refuse { .. }
        ));
        let again = later + Duration::from_secs(30);
        assert_eq!(m.admit(again), Admit::Probe);
        m.success(true);
        assert_eq!(m.state(again), State::Closed);
        assert_eq!(m.consecutive_failures(), 0);
        assert_eq!(m.admit(again), Admit::Go);
    }

    #[test]
    fn late_answers_of_calls_from_before_do_not_move_an_open_breaker() {
        let t0 = Instant::now();
        let mut m = Machine::new(config());
        for _ in 0..5 {
            m.admit(t0);
            m.failure(t0, false);
        }
        m.success(false);
        assert_eq!(m.state(t0), State::Open);
        m.failure(t0 + Duration::from_secs(20), false);
        // The cool-down still counts from the opening.
        assert_eq!(m.state(t0 + Duration::from_secs(30)), State::HalfOpen);
        assert_eq!(m.times_opened(), 1);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe() {
        let t0 = Instant::now();
        let mut m = Machine::new(BreakerConfig {
            failures_to_open: 1,
            cool_down: Duration::from_secs(1),
        });
        m.admit(t0);
        m.failure(t0, false);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(m.admit(later), Admit::Probe);
        m.abandon_probe();
        assert_eq!(m.admit(later), Admit::Probe);
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_follows_the_clock_and_fails_fast_while_open() {
        let breaker = Breaker::new("payment-provider", config());
        let fail = || async { Err::<(), &str>("down") };
        for _ in 0..5 {
            let answer = breaker.run(fail(), |_| true).await;
            assert_eq!(answer, Ok(Err("down")));
        }
        assert_eq!(breaker.snapshot().state, State::Open);
        // Open: the call is not made at all.
        let called = std::sync::atomic::AtomicBool::new(false);
        let refused = breaker
            .run(
                async {
                    called.store(true, std::sync::atomic::Ordering::SeqCst);
                    Ok::<(), &str>(())
                },
                |_| true,
            )
            .await;
        assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(
            refused,
            Err(Refused {
                name: "payment-provider",
                retry_in: Duration::from_secs(30)
            })
        );
        assert_eq!(breaker.snapshot().refused, 1);

        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(breaker.snapshot().state, State::HalfOpen);
        // An answered refusal is not a failure: the probe closes the breaker.
        let answered = breaker.run(async { Err::<(), &str>("declined") }, |_| false);
        assert_eq!(answered.await, Ok(Err("declined")));
        let snapshot = breaker.snapshot();
        assert_eq!(snapshot.state, State::Closed);
        assert_eq!(snapshot.times_opened, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_does_not_wedge_the_breaker() {
        let breaker = Breaker::new(
            "database",
            BreakerConfig {
                failures_to_open: 1,
                cool_down: Duration::from_secs(5),
            },
        );
        let _ = breaker.run(async { Err::<(), ()>(()) }, |_| true).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        let probe = breaker.run(std::future::pending::<Result<(), ()>>(), |_| true);
        // The caller gives up on the probe.
        let timed_out = tokio::time::timeout(Duration::from_secs(1), probe).await;
        assert!(timed_out.is_err());
        let next = breaker.run(async { Ok::<(), ()>(()) }, |_| true).await;
        assert_eq!(next, Ok(Ok(())));
        assert_eq!(breaker.snapshot().state, State::Closed);
    }
}
