//! The sales path's one-round-trip writes (PostgreSQL functions, migrations 0005–0008): what
//! each answered, how often, and the batches they travel in.

use super::NewHold;
use super::sql::{BoxFuture, SeatInfoRow};

/// Writes sent to the database in batches (PostgreSQL: `taquilla_hold_batch`, migration 0007):
/// the writes of one step that arrive while earlier ones are in flight go together, one
/// transaction and a fixed number of statements for all of them. Each answers as the step's
/// one-round-trip form ([`Dialect::fast_hold`]) would for this one write: done, or declined
/// (then the general transaction decides), never an error (a batch that fails declines every
/// write in it, and each write's general transaction meets the error on its own).
pub(crate) trait Batches: Send + Sync + std::fmt::Debug {
    /// A best-available hold (any other is declined).
    fn hold(
        &self,
        hold: &NewHold,
        fan_lock: i64,
        candidates: i64,
        deadline: std::time::Instant,
    ) -> BoxFuture<'static, Fast<Vec<SeatInfoRow>>>;
}

/// What a one-round-trip write did.
#[derive(Debug)]
pub(crate) enum Fast<T> {
    /// Done and committed.
    Done(T),
    /// Not the successful case: nothing changed, the general transaction decides.
    Declined,
    /// The database has no such function.
    Unsupported,
}

impl<T> Fast<T> {
    /// A function's answer: its SQLSTATE TQ001 (not the successful case, or past the budget),
    /// 55P03 (a lock it would have waited for) and 40P01 / 40001 (a deadlock or serialization
    /// failure, rolled back) mean declined: the general transaction runs.
    pub(crate) fn from_call(result: Result<T, sqlx::Error>) -> Result<Fast<T>, sqlx::Error> {
        match result {
            Ok(value) => Ok(Fast::Done(value)),
            Err(sqlx::Error::Database(db))
                if matches!(
                    db.code().as_deref(),
                    Some("TQ001" | "55P03" | "40P01" | "40001")
                ) =>
            {
                Ok(Fast::Declined)
            }
            Err(e) => Err(e),
        }
    }
}

/// When a one-round-trip write must be over: three quarters of the call's time from now, so
/// that it commits, or declines, well before the caller stops waiting.
pub(super) fn fast_deadline(call_timeout: std::time::Duration) -> std::time::Instant {
    std::time::Instant::now() + call_timeout * 3 / 4
}

/// The steps that have a one-round-trip form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastStep {
    Hold = 0,
    Checkout = 1,
    BeginPayment = 2,
    Claim = 3,
    CompleteSale = 4,
}

impl FastStep {
    pub const ALL: [FastStep; 5] = [
        FastStep::Hold,
        FastStep::Checkout,
        FastStep::BeginPayment,
        FastStep::Claim,
        FastStep::CompleteSale,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FastStep::Hold => "hold",
            FastStep::Checkout => "checkout",
            FastStep::BeginPayment => "begin_payment",
            FastStep::Claim => "claim",
            FastStep::CompleteSale => "complete_sale",
        }
    }
}

/// How often each step's one-round-trip form was done or declined (then the general
/// transaction ran). A store without the functions counts nothing.
#[derive(Debug, Default)]
pub struct FastPathCounts {
    done: [std::sync::atomic::AtomicU64; 5],
    declined: [std::sync::atomic::AtomicU64; 5],
    batches: [std::sync::atomic::AtomicU64; 5],
    batched: [std::sync::atomic::AtomicU64; 5],
}

impl FastPathCounts {
    /// Counts `outcome` and returns its value when done.
    pub(super) fn count<T>(&self, step: FastStep, outcome: Fast<T>) -> Option<T> {
        use std::sync::atomic::Ordering::Relaxed;
        match outcome {
            Fast::Done(value) => {
                self.done[step as usize].fetch_add(1, Relaxed);
                Some(value)
            }
            Fast::Declined => {
                self.declined[step as usize].fetch_add(1, Relaxed);
                None
            }
            Fast::Unsupported => None,
        }
    }

    /// Counts one batch of `writes` writes of `step` sent to the database.
    pub(crate) fn count_batch(&self, step: FastStep, writes: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.batches[step as usize].fetch_add(1, Relaxed);
        self.batched[step as usize].fetch_add(writes as u64, Relaxed);
    }

    /// Batches of `step` sent to the database so far, and the writes they carried.
    pub fn batches(&self, step: FastStep) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.batches[step as usize].load(Relaxed),
            self.batched[step as usize].load(Relaxed),
        )
    }

    /// Done and declined so far for `step`.
    pub fn get(&self, step: FastStep) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.done[step as usize].load(Relaxed),
            self.declined[step as usize].load(Relaxed),
        )
    }
}
