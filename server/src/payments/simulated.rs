//! A simulated payment provider with the failure modes of a real one: latency drawn from a
//! configurable distribution, a decline rate, a timeout rate (the request *is* processed but the
//! answer is lost, the case reconciliation exists for) and an outage switch (nothing is
//! processed). Test cards behave deterministically:
//!
//! | card | result |
//! |---|---|
//! | 4242 4242 4242 4242 | authorized |
//! | 4000 0000 0000 0002 | declined: "card declined" |
//! | 4000 0000 0000 9995 | declined: "insufficient funds" |
//! | any other valid number | declined at the configured rate |

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use rand::{Rng, SeedableRng};

use super::{CardDetails, Intent, IntentStatus, PaymentProvider, ProviderError};

/// How the simulated provider behaves.
#[derive(Debug, Clone)]
pub struct SimulatedConfig {
    /// Least time a call takes.
    pub latency_min: Duration,
    /// Mean extra time on top of the minimum (exponentially distributed, so there is a tail).
    pub latency_mean_extra: Duration,
    /// Share of authorizations declined (cards other than the test cards), 0–1.
    pub decline_rate: f64,
    /// Share of calls whose answer is lost after processing, 0–1.
    pub timeout_rate: f64,
    /// Seed of the random choices, for repeatable runs.
    pub seed: u64,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        SimulatedConfig {
            latency_min: Duration::from_millis(2),
            latency_mean_extra: Duration::from_millis(3),
            decline_rate: 0.0,
            timeout_rate: 0.0,
            seed: 1,
        }
    }
}

#[derive(Debug, Default)]
struct Ledger {
    by_key: HashMap<String, String>,
    intents: HashMap<String, Intent>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct SimulatedProvider {
    config: Mutex<SimulatedConfig>,
    rng: Mutex<rand::rngs::StdRng>,
    ledger: Mutex<Ledger>,
    outage: AtomicBool,
    next_id: AtomicU64,
    captures: AtomicU64,
    calls: AtomicU64,
}

impl SimulatedProvider {
    pub fn new(config: SimulatedConfig) -> SimulatedProvider {
        SimulatedProvider {
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.seed)),
            config: Mutex::new(config),
            ledger: Mutex::new(Ledger::default()),
            outage: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            captures: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        }
    }

    /// Turns the outage on or off: while on, every call fails as unavailable, unprocessed.
    pub fn set_outage(&self, on: bool) {
        self.outage.store(on, Ordering::SeqCst);
    }

    /// Whether the outage is on.
    pub fn outage(&self) -> bool {
        self.outage.load(Ordering::SeqCst)
    }

    /// The share of calls whose answers are lost.
    pub fn timeout_rate(&self) -> f64 {
        self.config.lock().map(|c| c.timeout_rate).unwrap_or(0.0)
    }

    /// Changes the share of calls whose answers are lost.
    pub fn set_timeout_rate(&self, rate: f64) {
        if let Ok(mut config) = self.config.lock() {
            config.timeout_rate = rate.clamp(0.0, 1.0);
        }
    }

    /// Capture calls that charged money (a capture of an already captured intent does not
    /// count): what a test compares with the number of paid orders.
    pub fn charges(&self) -> u64 {
        self.captures.load(Ordering::SeqCst)
    }

    /// Intents in a status, for tests.
    pub fn count(&self, status: IntentStatus) -> usize {
        self.ledger
            .lock()
            .map(|l| l.intents.values().filter(|i| i.status == status).count())
            .unwrap_or(0)
    }

    /// Draws this call's latency and whether its answer is lost.
    fn draw(&self) -> (Duration, bool, f64) {
        let config = self.config.lock().map(|c| c.clone()).unwrap_or_default();
        let Ok(mut rng) = self.rng.lock() else {
            return (config.latency_min, false, 1.0);
        };
        let uniform: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
        let extra = config.latency_mean_extra.as_secs_f64() * -uniform.ln();
        let lost = rng.r#gen::<f64>() < config.timeout_rate;
        let decline_roll = rng.r#gen::<f64>();
        let decline = if decline_roll < config.decline_rate {
            0.0
        } else {
            1.0
        };
        (
            config.latency_min + Duration::from_secs_f64(extra.min(10.0)),
            lost,
            decline,
        )
    }

    /// Calls that reached the provider, answered or not.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn check_outage(&self) -> Result<(), ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.outage.load(Ordering::SeqCst) {
            Err(ProviderError::Unavailable("simulated outage".into()))
        } else {
            Ok(())
        }
    }

    /// Waits the call's latency, then returns `result` or, if the answer is lost, a timeout
    /// (the work behind `result` has been done either way).
    async fn answer<T>(
        &self,
        latency: Duration,
        lost: bool,
        result: T,
    ) -> Result<T, ProviderError> {
        tokio::time::sleep(latency).await;
        if lost {
            Err(ProviderError::Timeout)
        } else {
            Ok(result)
        }
    }

    fn transition(
        &self,
        intent_id: &str,
        change: impl FnOnce(&mut Intent) -> Result<bool, ProviderError>,
    ) -> Result<Intent, ProviderError> {
        let mut ledger = self
            .ledger
            .lock()
            .map_err(|_| ProviderError::Unavailable("ledger poisoned".into()))?;
        let intent = ledger
            .intents
            .get_mut(intent_id)
            .ok_or_else(|| ProviderError::Rejected(format!("no intent {intent_id}")))?;
        if change(intent)? {
            self.captures.fetch_add(1, Ordering::SeqCst);
        }
        Ok(intent.clone())
    }
}

#[async_trait]
impl PaymentProvider for SimulatedProvider {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn authorize(
        &self,
        idempotency_key: &str,
        amount_minor: i64,
        currency: &str,
        card: &CardDetails,
    ) -> Result<Intent, ProviderError> {
        self.check_outage()?;
        let (latency, lost, decline_roll) = self.draw();
        let intent = {
            let mut ledger = self
                .ledger
                .lock()
                .map_err(|_| ProviderError::Unavailable("ledger poisoned".into()))?;
            if let Some(id) = ledger.by_key.get(idempotency_key).cloned() {
                ledger.intents.get(&id).cloned()
            } else {
                None
            }
            .unwrap_or_else(|| {
                let decline_reason = match card.number.as_str() {
                    "4242424242424242" => None,
                    "4000000000000002" => Some("card declined".to_string()),
                    "4000000000009995" => Some("insufficient funds".to_string()),
                    _ if decline_roll == 0.0 => Some("card declined".to_string()),
                    _ => None,
                };
                let id = format!("pi_sim_{:08}", self.next_id.fetch_add(1, Ordering::SeqCst));
                let intent = Intent {
                    id: id.clone(),
                    status: if decline_reason.is_some() {
                        IntentStatus::Declined
                    } else {
                        IntentStatus::RequiresCapture
                    },
                    amount_minor,
                    currency: currency.to_string(),
                    decline_reason,
                };
                ledger
                    .by_key
                    .insert(idempotency_key.to_string(), id.clone());
                ledger.intents.insert(id, intent.clone());
                intent
            })
        };
        self.answer(latency, lost, intent).await
    }

    async fn capture(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        self.check_outage()?;
        let (latency, lost, _) = self.draw();
        let intent = self.transition(intent_id, |intent| match intent.status {
            IntentStatus::RequiresCapture => {
                intent.status = IntentStatus::Succeeded;
                Ok(true)
            }
            IntentStatus::Succeeded => Ok(false),
            other => Err(ProviderError::Rejected(format!(
                "cannot capture an intent that is {other:?}"
            ))),
        })?;
        self.answer(latency, lost, intent).await
    }

    async fn void(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        self.check_outage()?;
        let (latency, lost, _) = self.draw();
        let intent = self.transition(intent_id, |intent| match intent.status {
            IntentStatus::RequiresCapture | IntentStatus::Canceled => {
                intent.status = IntentStatus::Canceled;
                Ok(false)
            }
            IntentStatus::Declined => Ok(false),
            other => Err(ProviderError::Rejected(format!(
                "cannot void an intent that is {other:?}"
            ))),
        })?;
        self.answer(latency, lost, intent).await
    }

    async fn refund(&self, intent_id: &str) -> Result<Intent, ProviderError> {
        self.check_outage()?;
        let (latency, lost, _) = self.draw();
        let intent = self.transition(intent_id, |intent| match intent.status {
            IntentStatus::Succeeded | IntentStatus::Refunded => {
                intent.status = IntentStatus::Refunded;
                Ok(false)
            }
            other => Err(ProviderError::Rejected(format!(
                "cannot refund an intent that is {other:?}"
            ))),
        })?;
        self.answer(latency, lost, intent).await
    }

    async fn find(&self, idempotency_key: &str) -> Result<Option<Intent>, ProviderError> {
        self.check_outage()?;
        let (latency, _, _) = self.draw();
        let found = self.ledger.lock().ok().and_then(|ledger| {
            ledger
                .by_key
                .get(idempotency_key)
                .and_then(|id| ledger.intents.get(id).cloned())
        });
        tokio::time::sleep(latency).await;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(number: &str) -> CardDetails {
        CardDetails {
            number: number.into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: "123".into(),
        }
    }

    fn quick() -> SimulatedConfig {
        SimulatedConfig {
            latency_min: Duration::ZERO,
            latency_mean_extra: Duration::ZERO,
            ..SimulatedConfig::default()
        }
    }

    #[tokio::test]
    async fn same_key_same_intent_one_charge() {
        let p = SimulatedProvider::new(quick());
        let a = p
            .authorize("k1", 100, "EUR", &card("4242424242424242"))
            .await
            .expect("auth");
        let b = p
            .authorize("k1", 100, "EUR", &card("4242424242424242"))
            .await
            .expect("auth");
        assert_eq!(a.id, b.id);
        assert_eq!(a.status, IntentStatus::RequiresCapture);
        p.capture(&a.id).await.expect("capture");
        p.capture(&a.id).await.expect("capture again");
        assert_eq!(p.charges(), 1);
        assert!(matches!(
            p.void(&a.id).await,
            Err(ProviderError::Rejected(_))
        ));
        assert_eq!(
            p.refund(&a.id).await.expect("refund").status,
            IntentStatus::Refunded
        );
    }

    #[tokio::test]
    async fn test_cards_and_outage() {
        let p = SimulatedProvider::new(quick());
        let declined = p
            .authorize("k2", 100, "EUR", &card("4000000000009995"))
            .await
            .expect("auth");
        assert_eq!(declined.status, IntentStatus::Declined);
        assert_eq!(
            declined.decline_reason.as_deref(),
            Some("insufficient funds")
        );
        p.set_outage(true);
        assert!(matches!(
            p.authorize("k3", 100, "EUR", &card("4242424242424242"))
                .await,
            Err(ProviderError::Unavailable(_))
        ));
        p.set_outage(false);
        assert_eq!(
            p.find("k3").await.expect("find"),
            None,
            "nothing was processed"
        );
    }

    #[tokio::test]
    async fn a_lost_answer_was_still_processed() {
        let p = SimulatedProvider::new(SimulatedConfig {
            timeout_rate: 1.0,
            ..quick()
        });
        assert_eq!(
            p.authorize("k4", 100, "EUR", &card("4242424242424242"))
                .await,
            Err(ProviderError::Timeout)
        );
        let found = p.find("k4").await.expect("find").expect("processed");
        assert_eq!(found.status, IntentStatus::RequiresCapture);
    }

    #[tokio::test]
    async fn decline_rate_applies_to_other_cards() {
        let p = SimulatedProvider::new(SimulatedConfig {
            decline_rate: 1.0,
            ..quick()
        });
        let intent = p
            .authorize("k5", 1, "EUR", &card("5555555555554444"))
            .await
            .expect("auth");
        assert_eq!(intent.status, IntentStatus::Declined);
        let ok = p
            .authorize("k6", 1, "EUR", &card("4242424242424242"))
            .await
            .expect("auth");
        assert_eq!(ok.status, IntentStatus::RequiresCapture);
    }
}
