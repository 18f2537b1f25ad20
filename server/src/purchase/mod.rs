//! The purchase path: holds, checkout and payment, orchestrating the store (which owns every
//! state change, by conditional update) and the payment provider (which is slow, fallible and
//! idempotent by key). Also the sweeper that returns lapsed locks to sale and reconciles
//! payments left in flight.
//!
//! Payment, step by step, so that no answer is ever lost and nobody is charged without a seat:
//!
//! 1. `begin_payment` records a PENDING attempt (one in flight per order, keyed by the fan's
//!    idempotency key; a repeated key returns the first attempt).
//! 2. The provider authorizes, idempotent by the attempt's own key. A lost answer is looked up
//!    by that key; a provider that is down processed nothing, so the attempt is forgotten.
//! 3. `claim_for_capture` checks that the order's hard lock is still live and extends it over
//!    the capture, so the seats cannot lapse while money moves. If the lock already lapsed, the
//!    authorization is voided: never a charge without a seat. When the lock the attempt read at
//!    its start already outlasts the capture window, the claim is skipped: it could only
//!    confirm what that lock guarantees (see [`lock_outlasts`]).
//! 4. The provider captures.
//! 5. `complete_sale` sells the seats, marks the order PAID and the payment CAPTURED and issues
//!    the tickets in one transaction. Should the seats somehow no longer be the order's, the
//!    capture is refunded. It accepts a PENDING attempt too: the claim commits without waiting
//!    for its WAL, and a database crash that loses it must not turn a capture into a refund.
//!
//! An attempt interrupted anywhere (crash, timeout, outage) stays PENDING or AUTHORIZED, and
//! [`resume_payment`] (called by the same key's retry or by the sweeper) picks it up from the
//! provider's record of it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Buyer, Credential};
use crate::catalog::Catalog;
use crate::domain::SaleState;
use crate::domain::clock::Clock;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::payments::guarded::GuardedProvider;
use crate::payments::{CardDetails, Intent, IntentStatus, PaymentProvider, ProviderError};
use crate::sale_control::{SaleChange, SaleControl};
use crate::store::{
    BeginPayment, CheckoutOutcome, EventRecord, HoldOutcome, HoldRecord, HoldState, NewHold,
    NewOrder, NewPayment, NewTicket, OrderRecord, OrderState, PaymentRecord, PaymentState,
    ReleaseOutcome, Selection, Store, TicketRecord, TicketState,
};
use crate::tokens::{TicketClaims, TicketKeys};
use crate::waiting_room::WaitingRoom;

mod checkout;
mod door;
mod hold;
mod pay;
mod refund;
mod sweep;

pub use checkout::{checkout, get_order};
pub use door::check_in;
pub use hold::{hold, release};
pub use pay::{pay, resume_payment};
pub use refund::refund;
pub use sweep::{run_sweeper, sweep_once};

/// How long a claimed order keeps its seats while the capture runs.
pub const CAPTURE_WINDOW: Duration = Duration::from_secs(60);

/// What the purchase path works with: the store, the catalog, the waiting room (a fan's
/// admission ends when they pay), the payment provider, the clock, the ticket keys and the
/// lock durations. The RPC handlers and the sweeper call the functions of this module with it.
#[derive(Debug)]
pub struct Purchases {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub waiting_room: Arc<WaitingRoom>,
    pub clock: Arc<dyn Clock>,
    /// The payment provider, paced at its contract rate and behind its circuit breaker.
    pub provider: Arc<GuardedProvider>,
    pub metrics: Arc<Metrics>,
    /// How long a hold keeps its seats (SOFT_LOCKED).
    pub hold_ttl: Duration,
    /// How long an order keeps its seats for payment (HARD_LOCKED).
    pub payment_ttl: Duration,
    /// How old an unfinished payment must be before the sweeper resumes it.
    pub reconcile_after: Duration,
    /// How often the sweeper runs.
    pub sweep_interval: Duration,
    /// The keys of the tickets it issues.
    pub tickets: TicketKeys,
    /// Ends a sale whose last seat sold (the sweeper's check).
    pub sale_control: Arc<SaleControl>,
}

impl Purchases {
    /// The circuit breakers' states: the database's and the payment provider's.
    pub fn breakers(&self) -> Vec<crate::breaker::Snapshot> {
        vec![
            self.store.breaker().snapshot(),
            self.provider.breaker().snapshot(),
        ]
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

fn seconds_ago(now_ms: i64, then_ms: i64) -> i64 {
    (now_ms - then_ms).max(0) / 1_000
}

/// Checks an idempotency key: 8–64 characters of `[A-Za-z0-9_-]`.
pub fn check_idempotency_key(key: &str) -> ApiResult<()> {
    let ok = (8..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(
            "idempotency_key must be 8 to 64 characters of letters, digits, '-' and '_' \
             (e.g. a UUID); reuse it to retry the same call"
                .into(),
        ))
    }
}
