//! The seat state machine and best-available seat selection, as pure rules.
//!
//! ```text
//! AVAILABLE --hold--> SOFT_LOCKED --checkout--> HARD_LOCKED --paid--> SOLD (final)
//!    ^                    | expiry / release        | expiry / lapse
//!    +--------------------+-------------------------+
//! ```
//!
//! A lock is live while `locked_until` is in the future; a lapsed lock is AVAILABLE to every
//! reader and writer whether or not the sweeper has reset the row. SOLD is final: only an
//! operator refund that returns the seat to sale makes it AVAILABLE again, and its old ticket is
//! refunded first, so a seat never has two valid tickets. The SQL of both stores implements
//! exactly these rules as conditional updates; this module states them and is tested alone.

use super::SeatStatus;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A hold (cart) of a fan.
    Hold { hold_id: String, fan_id: String },
    /// An order awaiting payment.
    Order { order_id: String, fan_id: String },
}

/// A seat's full state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub status: SeatStatus,
    pub owner: Option<Owner>,
    pub locked_until_ms: Option<i64>,
    /// The order a SOLD seat was sold in, and to whom.
    pub sold: Option<(String, String)>,
}

impl Seat {
    pub fn available() -> Seat {
        Seat {
            status: SeatStatus::Available,
            owner: None,
            locked_until_ms: None,
            sold: None,
        }
    }

    /// The status a reader sees at `now_ms`.
    pub fn effective(&self, now_ms: i64) -> SeatStatus {
        self.status.effective(self.locked_until_ms, now_ms)
    }

    fn live_owner(&self, now_ms: i64) -> Option<&Owner> {
        match self.effective(now_ms) {
            SeatStatus::SoftLocked | SeatStatus::HardLocked => self.owner.as_ref(),
            _ => None,
        }
    }
}

/// Something that can happen to a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Hold {
        hold_id: String,
        fan_id: String,
        until_ms: i64,
    },
    Release {
        hold_id: String,
    },
    Checkout {
        hold_id: String,
        order_id: String,
        until_ms: i64,
    },
    /// Payment authorized: keep the seat for the order until `until_ms` while capturing.
    Claim {
        order_id: String,
        until_ms: i64,
    },
    Sell {
        order_id: String,
    },
    Expire,
    /// Operator refund returning the seat to sale.
    RefundToSale {
        order_id: String,
    },
}

/// Why a command does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the seat is not available")]
    NotAvailable,
    #[error("the seat is not held by this hold (or the hold expired)")]
    NotHeldBy,
    #[error("the seat is not locked for this order (or the lock lapsed)")]
    NotLockedForOrder,
    #[error("the seat was not sold in this order")]
    NotSoldInOrder,
    #[error("the seat's lock has not expired")]
    NotExpired,
}

/// Applies `command` to `seat` at `now_ms`.
pub fn apply(seat: &Seat, command: &Command, now_ms: i64) -> Result<Seat, TransitionError> {
    match command {
        Command::Hold {
            hold_id,
            fan_id,
            until_ms,
        } => {
            if seat.effective(now_ms) != SeatStatus::Available {
                return Err(TransitionError::NotAvailable);
            }
            Ok(Seat {
                status: SeatStatus::SoftLocked,
                owner: Some(Owner::Hold {
                    hold_id: hold_id.clone(),
                    fan_id: fan_id.clone(),
                }),
                locked_until_ms: Some(*until_ms),
                sold: None,
            })
        }
        Command::Release { hold_id } => match seat.live_owner(now_ms) {
            Some(Owner::Hold { hold_id: h, .. })
                if h == hold_id && seat.status == SeatStatus::SoftLocked =>
            {
                Ok(Seat::available())
            }
            _ => Err(TransitionError::NotHeldBy),
        },
        Command::Checkout {
            hold_id,
            order_id,
            until_ms,
        } => match seat.live_owner(now_ms) {
            Some(Owner::Hold { hold_id: h, fan_id })
                if h == hold_id && seat.status == SeatStatus::SoftLocked =>
            {
                Ok(Seat {
                    status: SeatStatus::HardLocked,
                    owner: Some(Owner::Order {
                        order_id: order_id.clone(),
                        fan_id: fan_id.clone(),
                    }),
                    locked_until_ms: Some(*until_ms),
                    sold: None,
                })
            }
            _ => Err(TransitionError::NotHeldBy),
        },
        Command::Claim { order_id, until_ms } => match seat.live_owner(now_ms) {
            Some(Owner::Order { order_id: o, .. })
                if o == order_id && seat.status == SeatStatus::HardLocked =>
            {
                Ok(Seat {
                    locked_until_ms: seat.locked_until_ms.map(|u| u.max(*until_ms)),
                    ..seat.clone()
                })
            }
            _ => Err(TransitionError::NotLockedForOrder),
        },
        Command::Sell { order_id } => match seat.live_owner(now_ms) {
            Some(Owner::Order {
                order_id: o,
                fan_id,
            }) if o == order_id && seat.status == SeatStatus::HardLocked => Ok(Seat {
                status: SeatStatus::Sold,
                owner: None,
                locked_until_ms: None,
                sold: Some((order_id.clone(), fan_id.clone())),
            }),
            _ => Err(TransitionError::NotLockedForOrder),
        },
        Command::Expire => match seat.status {
            SeatStatus::SoftLocked | SeatStatus::HardLocked
                if seat.effective(now_ms) == SeatStatus::Available =>
            {
                Ok(Seat::available())
            }
            _ => Err(TransitionError::NotExpired),
        },
        Command::RefundToSale { order_id } => match &seat.sold {
            Some((o, _)) if o == order_id && seat.status == SeatStatus::Sold => {
                Ok(Seat::available())
            }
            _ => Err(TransitionError::NotSoldInOrder),
        },
    }
}

/// A seat that may be chosen by best-available selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub seat_id: u32,
    pub row: String,
    pub number: u32,
}

/// Chooses `quantity` seats among free `candidates` (front rows first, in seat-id order):
/// adjacent seats in one row when possible, preferring a block that leaves no single orphan
/// seat beside it, then the frontmost row. Without room for an adjacent block, the frontmost
/// free seats. `None` when there are fewer candidates than `quantity`.
pub fn choose_best(candidates: &[Candidate], quantity: usize) -> Option<Vec<u32>> {
    if quantity == 0 || candidates.len() < quantity {
        return None;
    }
    // Runs of consecutive numbers in one row, in candidate order.
    let mut runs: Vec<&[Candidate]> = Vec::new();
    let mut start = 0;
    for i in 1..=candidates.len() {
        let breaks = i == candidates.len()
            || candidates[i].row != candidates[i - 1].row
            || candidates[i].number != candidates[i - 1].number + 1;
        if breaks {
            runs.push(&candidates[start..i]);
            start = i;
        }
    }
    // Score each run that fits: exact fits and runs leaving 2+ seats beat those leaving one
    // orphan; earlier (front) runs beat later ones.
    let best = runs
        .iter()
        .enumerate()
        .filter(|(_, run)| run.len() >= quantity)
        .min_by_key(|(order, run)| (run.len() - quantity == 1, *order));
    match best {
        Some((_, run)) => Some(run[..quantity].iter().map(|c| c.seat_id).collect()),
        None => Some(candidates[..quantity].iter().map(|c| c.seat_id).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hold(h: &str, f: &str, until: i64) -> Command {
        Command::Hold {
            hold_id: h.into(),
            fan_id: f.into(),
            until_ms: until,
        }
    }

    #[test]
    fn the_happy_path() {
        let s = Seat::available();
        let s = apply(&s, &hold("h1", "f1", 100), 0).expect("hold");
        assert_eq!(s.status, SeatStatus::SoftLocked);
        let s = apply(
            &s,
            &Command::Checkout {
                hold_id: "h1".into(),
                order_id: "o1".into(),
                until_ms: 200,
            },
            50,
        )
        .expect("checkout");
        assert_eq!(s.status, SeatStatus::HardLocked);
        let s = apply(
            &s,
            &Command::Sell {
                order_id: "o1".into(),
            },
            150,
        )
        .expect("sell");
        assert_eq!(s.status, SeatStatus::Sold);
        assert_eq!(s.sold, Some(("o1".into(), "f1".into())));
        // Final: nothing but a refund moves it, and a sold seat never expires.
        assert_eq!(
            apply(&s, &Command::Expire, 10_000),
            Err(TransitionError::NotExpired)
        );
        assert_eq!(
            apply(&s, &hold("h2", "f2", 20_000), 10_000),
            Err(TransitionError::NotAvailable)
        );
    }

    #[test]
    fn lapsed_locks_are_available_at_once() {
        let s = apply(&Seat::available(), &hold("h1", "f1", 100), 0).expect("hold");
        assert_eq!(
            apply(&s, &hold("h2", "f2", 300), 99),
            Err(TransitionError::NotAvailable)
        );
        let taken = apply(&s, &hold("h2", "f2", 300), 100).expect("expired lock is free");
        // The first hold can no longer check out.
        let checkout = Command::Checkout {
            hold_id: "h1".into(),
            order_id: "o1".into(),
            until_ms: 500,
        };
        assert_eq!(
            apply(&taken, &checkout, 101),
            Err(TransitionError::NotHeldBy)
        );
    }

    #[test]
    fn payment_after_the_lock_lapsed_cannot_sell() {
        let s = apply(&Seat::available(), &hold("h1", "f1", 100), 0).expect("hold");
        let s = apply(
            &s,
            &Command::Checkout {
                hold_id: "h1".into(),
                order_id: "o1".into(),
                until_ms: 200,
            },
            10,
        )
        .expect("checkout");
        assert_eq!(
            apply(
                &s,
                &Command::Sell {
                    order_id: "o1".into()
                },
                200
            ),
            Err(TransitionError::NotLockedForOrder)
        );
        // A claim before the lapse keeps the seat through a slow capture.
        let claimed = apply(
            &s,
            &Command::Claim {
                order_id: "o1".into(),
                until_ms: 1_000,
            },
            199,
        )
        .expect("claim");
        assert!(
            apply(
                &claimed,
                &Command::Sell {
                    order_id: "o1".into()
                },
                900
            )
            .is_ok()
        );
    }

    #[test]
    fn best_available_prefers_adjacent_without_orphans() {
        let row = |r: &str, nums: &[u32], first_id: u32| -> Vec<Candidate> {
            nums.iter()
                .enumerate()
                .map(|(i, n)| Candidate {
                    seat_id: first_id + i as u32,
                    row: r.into(),
                    number: *n,
                })
                .collect()
        };
        // Row A: seats 1,2,3 free (a pair would orphan one); row B: 1..4 free.
        let mut c = row("A", &[1, 2, 3], 1);
        c.extend(row("B", &[1, 2, 3, 4], 10));
        assert_eq!(
            choose_best(&c, 2),
            Some(vec![10, 11]),
            "avoids leaving seat A3 alone"
        );
        assert_eq!(
            choose_best(&c, 3),
            Some(vec![1, 2, 3]),
            "exact fit in the front row"
        );
        // Gaps split runs; no run fits 5, so the frontmost seats are taken.
        assert_eq!(choose_best(&c, 5), Some(vec![1, 2, 3, 10, 11]));
        assert_eq!(choose_best(&c, 8), None);
        assert_eq!(choose_best(&c, 0), None);
        // Non-consecutive numbers in a row are not adjacent.
        let gappy = row("C", &[1, 3, 5], 20);
        assert_eq!(choose_best(&gappy, 2), Some(vec![20, 21]));
    }

    fn command_strategy() -> impl Strategy<Value = (usize, Command, i64)> {
        let ids = prop_oneof![Just("a"), Just("b"), Just("c")];
        (0..4usize, 0..7u8, ids.clone(), ids, 0..50i64).prop_map(|(seat, kind, x, y, dt)| {
            let command = match kind {
                0 => hold(&format!("h{x}"), &format!("f{y}"), 0),
                1 => Command::Release {
                    hold_id: format!("h{x}"),
                },
                2 => Command::Checkout {
                    hold_id: format!("h{x}"),
                    order_id: format!("o{x}{y}"),
                    until_ms: 0,
                },
                3 => Command::Claim {
                    order_id: format!("o{x}{y}"),
                    until_ms: 0,
                },
                4 => Command::Sell {
                    order_id: format!("o{x}{y}"),
                },
                5 => Command::Expire,
                _ => Command::RefundToSale {
                    order_id: format!("o{x}{y}"),
                },
            };
            (seat, command, dt)
        })
    }

    proptest! {
        /// Random interleavings of every command on a few seats never sell a seat to two orders
        /// at once, never leave a SOLD seat without its order, and only a refund un-sells.
        #[test]
        fn invariants_hold_under_any_interleaving(steps in proptest::collection::vec(command_strategy(), 1..200)) {
            let mut seats = vec![Seat::available(); 4];
            let mut now = 0i64;
            for (index, command, dt) in steps {
                now += dt;
                // Locks last 30 ms from the time of the command.
                let command = match command {
                    Command::Hold { hold_id, fan_id, .. } => Command::Hold { hold_id, fan_id, until_ms: now + 30 },
                    Command::Checkout { hold_id, order_id, .. } => Command::Checkout { hold_id, order_id, until_ms: now + 30 },
                    Command::Claim { order_id, .. } => Command::Claim { order_id, until_ms: now + 30 },
                    other => other,
                };
                let before = seats[index].clone();
                if let Ok(after) = apply(&before, &command, now) {
                    if before.status == SeatStatus::Sold {
                        let is_refund = matches!(command, Command::RefundToSale { .. });
                        prop_assert!(is_refund, "only a refund leaves SOLD");
                    }
                    if after.status == SeatStatus::Sold {
                        prop_assert!(after.sold.is_some());
                        prop_assert!(after.owner.is_none() && after.locked_until_ms.is_none());
                    }
                    if matches!(after.status, SeatStatus::SoftLocked | SeatStatus::HardLocked) {
                        prop_assert!(after.owner.is_some() && after.locked_until_ms.is_some());
                    }
                    if let (SeatStatus::HardLocked, Some(Owner::Order { .. })) = (after.status, &after.owner) {
                        let came_from_a_lock = before.owner.is_some();
                        prop_assert!(came_from_a_lock, "an order lock comes from a hold or an order");
                    }
                    seats[index] = after;
                }
            }
        }
    }
}
