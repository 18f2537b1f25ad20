//! The payment provider as the purchase path sees it: every call is paced by a leaky bucket at
//! the provider's contract rate and goes through a circuit breaker.
//!
//! The leaky bucket is a queue that drains at a constant rate: each call takes the next free
//! slot (one every `1 / rate` seconds) and waits for it, so bursts of Pay calls reach the
//! provider evenly spaced and never above the contract. A call whose slot is further away than
//! `max_wait` is not queued at all: it fails at once as [`ProviderError::NotSent`] with the time
//! after which a retry would find room, which the API answers as `RESOURCE_EXHAUSTED` with
//! `retry-after-ms`. The breaker counts timeouts and outages (not declines or refusals, which
//! are answers); while it is open calls fail at once as `NotSent` too, answered `UNAVAILABLE`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{CardDetails, Intent, NotSent, PaymentProvider, ProviderError};
use crate::breaker::{Breaker, BreakerConfig};

/// Paces calls at a constant rate (a leaky bucket used as a meter queue).
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    max_wait: Duration,
    next_free: Mutex<Option<Instant>>,
}

impl Pacer {
    /// `rate_per_second` 0 paces nothing.
    pub fn new(rate_per_second: u32, max_wait: Duration) -> Pacer {
        let interval = if rate_per_second == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / rate_per_second
        };
        Pacer {
            interval,
            max_wait,
            next_free: Mutex::new(None),
        }
    }

    /// Reserves the next slot at or after `now`: how long to wait for it, or, if that is longer
    /// than the most a call may wait, how long until a retry would find a slot in time.
    pub fn reserve(&self, now: Instant) -> Result<Duration, Duration> {
        self.reserve_as(now, true)
    }

    /// Like [`Pacer::reserve`]; a call that may not be refused (`refusable` false) takes its slot
    /// however far away it is.
    fn reserve_as(&self, now: Instant, refusable: bool) -> Result<Duration, Duration> {
        if self.interval.is_zero() {
            return Ok(Duration::ZERO);
        }
        let mut next_free = self
            .next_free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = next_free.map_or(now, |at| at.max(now));
        let wait = slot - now;
        if refusable && wait > self.max_wait {
            return Err((wait - self.max_wait).max(Duration::from_millis(50)));
        }
        *next_free = Some(slot + self.interval);
        Ok(wait)
    }

    /// Waits for this call's slot. Only a call that starts a payment (`refusable`) is refused
    /// when the line is long: the calls that finish one (capture, void, refund, lookups) always
    /// wait their turn, or an authorized payment could be starved of its capture.
    pub async fn pace(&self, refusable: bool) -> Result<(), ProviderError> {
        match self.reserve_as(Instant::now(), refusable) {
            Ok(wait) if wait.is_zero() => Ok(()),
            Ok(wait) => {
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Err(retry_after) => Err(ProviderError::NotSent {
                why: NotSent::RateLimited,
                retry_after,
            }),
        }
    }
}

/// A provider behind a leaky bucket and a circuit breaker.
#[derive(Debug)]
pub struct GuardedProvider {
    inner: Arc<dyn PaymentProvider>,
    pacer: Pacer,
    breaker: Breaker,
}

impl GuardedProvider {
    pub fn new(
        inner: Arc<dyn PaymentProvider>,
        rate_per_second: u32,
        max_wait: Duration,
        breaker: BreakerConfig,
    ) -> GuardedProvider {
        GuardedProvider {
            inner,
            pacer: Pacer::new(rate_per_second, max_wait),
            breaker: Breaker::new("payment-provider", breaker),
        }
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    async fn guarded<T, F>(&self, refusable: bool, call: F) -> Result<T, ProviderError>
    where
        F: std::future::Future<Output = Result<T, ProviderError>>,
    {
        // Ask the breaker first: a refused call does not take a slot from the bucket.
        let permit = self
            .breaker
            .permit()
            .map_err(|refused| ProviderError::NotSent {
                why: NotSent::BreakerOpen,
                retry_after: refused.retry_in,
            })?;
        // A call refused by the bucket was not made: it tells the breaker nothing (the permit
        // is dropped untold).
        self.pacer.pace(refusable).await?;
        let result = call.await;
        match &result {
            Err(ProviderError::Timeout | ProviderError::Unavailable(_)) => permit.failure(),
            _ => permit.success(),
        }
        result
    }
}

#[async_trait]
impl PaymentProvider for GuardedProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn authorize(
        &self,
        idempotency_key: &str,
        amount_minor: i64,
        currency: &str,
        card: &CardDetails,
    ) -> Result<Intent, ProviderError> {
        self.guarded(
            true,
            self.inner
                .authorize(idempotency_key, amount_minor, currency, card),
        )
        .await
    }

    async fn capture(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        self.guarded(false, self.inner.capture(intent_id)).await
    }

    async fn void(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        self.guarded(false, self.inner.void(intent_id)).await
    }

    async fn refund(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        self.guarded(false, self.inner.refund(intent_id)).await
    }

    async fn find(&self, idempotency_key: &str) -> Result<Option<Intent>, ProviderError> {
        self.guarded(false, self.inner.find(idempotency_key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::simulated::{SimulatedConfig, SimulatedProvider};

    #[test]
    fn the_bucket_spaces_calls_evenly_and_refuses_past_the_longest_wait() {
        let pacer = Pacer::new(100, Duration::from_millis(50));
        let t0 = Instant::now();
        // Six calls at once: slots 0, 10, 20, 30, 40, 50 ms.
        let waits: Vec<_> = (0..6).map(|_| pacer.reserve(t0)).collect();
        let expected: Vec<_> = (0..6).map(|i| Ok(Duration::from_millis(10 * i))).collect();
        assert_eq!(waits, expected);
        // The seventh would wait 60 ms, more than 50: refused, retry when the line has drained.
        assert_eq!(pacer.reserve(t0), Err(Duration::from_millis(50)));
        // Time passes: the line drains at the contract rate and there is room again.
        let later = t0 + Duration::from_millis(30);
        assert_eq!(pacer.reserve(later), Ok(Duration::from_millis(30)));
        // Long idle: no credit is saved up, the next call goes at once and the one after waits.
        let idle = t0 + Duration::from_secs(10);
        assert_eq!(pacer.reserve(idle), Ok(Duration::ZERO));
        assert_eq!(pacer.reserve(idle), Ok(Duration::from_millis(10)));
    }

    #[test]
    fn calls_finishing_a_payment_wait_their_turn_instead_of_being_refused() {
        let pacer = Pacer::new(100, Duration::from_millis(20));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(pacer.reserve(t0).is_ok());
        }
        // A new authorization would wait 30 ms: refused.
        assert!(pacer.reserve(t0).is_err());
        // A capture takes the slot anyway, and the line grows behind it.
        assert_eq!(pacer.reserve_as(t0, false), Ok(Duration::from_millis(30)));
        assert_eq!(pacer.reserve_as(t0, false), Ok(Duration::from_millis(40)));
    }

    #[test]
    fn rate_zero_paces_nothing() {
        let pacer = Pacer::new(0, Duration::ZERO);
        let t0 = Instant::now();
        for _ in 0..1_000 {
            assert_eq!(pacer.reserve(t0), Ok(Duration::ZERO));
        }
    }

    fn card() -> CardDetails {
        CardDetails {
            number: "4242424242424242".into(),
            exp_month: 12,
            exp_year: 2099,
            cvc: "123".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_reach_the_provider_at_the_contract_rate() {
        let simulated = Arc::new(SimulatedProvider::new(SimulatedConfig {
            latency_min: Duration::ZERO,
            latency_mean_extra: Duration::ZERO,
            ..SimulatedConfig::default()
        }));
        let provider = Arc::new(GuardedProvider::new(
            simulated,
            20,
            Duration::from_secs(10),
            BreakerConfig::default(),
        ));
        let start = Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..41 {
            let provider = provider.clone();
            calls.spawn(async move {
                provider
                    .authorize(&format!("k{i}"), 100, "EUR", &card())
                    .await
                    .map(|_| Instant::now())
            });
        }
        let mut done = Vec::new();
        while let Some(answer) = calls.join_next().await {
            done.push(answer.expect("task").expect("authorized"));
        }
        done.sort();
        // 41 calls at 20/s: the last goes out 2 s after the first, none sooner.
        assert_eq!(done[40] - start, Duration::from_secs(2));
        for pair in done.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(50));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_opens_the_breaker_and_calls_then_fail_without_reaching_the_provider() {
        let simulated = Arc::new(SimulatedProvider::new(SimulatedConfig::default()));
        let provider = GuardedProvider::new(
            simulated.clone(),
            0,
            Duration::ZERO,
            BreakerConfig {
                failures_to_open: 3,
                cool_down: Duration::from_secs(30),
            },
        );
        // A declined card is an answer, not a failure.
        let declined = CardDetails {
            number: "4000000000000002".into(),
            ..card()
        };
        for i in 0..5 {
            let intent = provider
                .authorize(&format!("d{i}"), 100, "EUR", &declined)
                .await
                .expect("an answer");
            assert_eq!(intent.status, crate::payments::IntentStatus::Declined);
        }
        simulated.set_outage(true);
        for i in 0..3 {
            let answer = provider
                .authorize(&format!("o{i}"), 100, "EUR", &card())
                .await;
            assert!(
                matches!(answer, Err(ProviderError::Unavailable(_))),
                "{answer:?}"
            );
        }
        let calls_before = simulated.calls();
        let refused = provider.authorize("x", 100, "EUR", &card()).await;
        assert_eq!(
            refused,
            Err(ProviderError::NotSent {
                why: NotSent::BreakerOpen,
                retry_after: Duration::from_secs(30)
            })
        );
        assert_eq!(
            simulated.calls(),
            calls_before,
            "the provider was not called"
        );

        // The outage ends; after the cool-down one probe goes through and closes the breaker.
        simulated.set_outage(false);
        tokio::time::advance(Duration::from_secs(30)).await;
        let intent = provider
            .authorize("after", 100, "EUR", &card())
            .await
            .expect("authorized");
        assert_eq!(
            intent.status,
            crate::payments::IntentStatus::RequiresCapture
        );
        assert_eq!(
            provider.breaker().snapshot().state,
            crate::breaker::State::Closed
        );
    }
}
