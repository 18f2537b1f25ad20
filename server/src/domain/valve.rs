//! The automatic admission valve: how many fans may buy at once, found from how the sales path
//! is doing rather than set by hand.
//!
//! Admission in Taquilla is "when one buyer leaves, another enters", capped by `max_active`.
//! In automatic mode that cap is this controller's `limit`, recomputed every second from the
//! sales path's own feedback over the last second ([`SalesFeedback`]):
//!
//! - **Back off** when the sales path is overloaded: more than 5 % of its calls shed for lack
//!   of room, or the calls' average concurrency (busy time over the period, by Little's law)
//!   above 85 % of the shedding bound. The limit is cut by a tenth: the fans already admitted
//!   keep buying, no new one enters until enough of them finish.
//! - **Open up** when the limit is what holds fans back (at least 80 % of it is in use) and
//!   the sales path has room (concurrency under 60 % of the bound, nothing shed): by a tenth
//!   of the *mean* limit of the valves that share the sales path (this one included), at
//!   least one more fan. Alone, that is +10 %.
//! - Otherwise hold.
//!
//! The limit never exceeds the operator's cap and never goes below [`AutoValve::FLOOR`], so a
//! sale always moves. Opening by a tenth of the mean reaches a sales path's capacity from 20
//! buyers in well under a minute (×1.1 a second is ×17 in 30 s). Several events share one
//! sales path and one signal, so every valve of a node opens by the *same* number of buyers
//! and backs off by the same fraction: additive increase, multiplicative decrease, which is what
//! makes them converge on equal shares (each cut shrinks the gap between two limits by a tenth,
//! each opening keeps it). With +10 % of its own limit each, a valve that fell behind early
//! stayed behind by the same ratio for the whole sale: in the full LUX sale one event of eight
//! was held to a third of the others' buyers and sold its last 9,000 seats alone, after the
//! others had sold out (docs/benchmarks-log.md, runs 44–52). The admission step admits only up
//! to the limit, so active buyers never exceed it, nor the cap.

/// What the sales path did over one period, on this node.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SalesFeedback {
    /// Calls answered at once because the shedding bound was reached.
    pub shed: u64,
    /// Calls that ran and finished.
    pub done: u64,
    /// Time the calls spent running, summed (ms).
    pub busy_ms: f64,
    /// Length of the period (ms).
    pub period_ms: f64,
    /// The shedding bound: calls that may run at once.
    pub bound: u32,
}

impl SalesFeedback {
    /// Calls running at once, on average over the period.
    pub fn concurrency(&self) -> f64 {
        if self.period_ms <= 0.0 {
            return 0.0;
        }
        self.busy_ms / self.period_ms
    }

    fn shed_share(&self) -> f64 {
        let calls = self.shed + self.done;
        if calls == 0 {
            return 0.0;
        }
        self.shed as f64 / calls as f64
    }
}

/// The automatic valve of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoValve {
    limit: f64,
}

impl Default for AutoValve {
    fn default() -> Self {
        AutoValve { limit: Self::START }
    }
}

impl AutoValve {
    /// Buyers at once when the valve starts.
    pub const START: f64 = 20.0;
    /// Never fewer buyers at once than this: a sale always moves.
    pub const FLOOR: f64 = 4.0;
    const SHED_SHARE_TOO_MUCH: f64 = 0.05;
    const BUSY_TOO_MUCH: f64 = 0.85;
    const BUSY_ROOM: f64 = 0.60;
    const IN_USE_TO_GROW: f64 = 0.80;
    const CUT: f64 = 0.9;
    const GROW: f64 = 1.1;

    /// The buyers allowed at once now, at most `cap`.
    pub fn limit(&self, cap: u32) -> u32 {
        (self.limit as u32).min(cap)
    }

    /// The limit before the cap: what [`AutoValve::update`]'s `shared_mean` averages.
    pub fn raw_limit(&self) -> f64 {
        self.limit
    }

    /// One period's update: `feedback` from the sales path, `active` the event's buyers now,
    /// `cap` the operator's `max_active`, `shared_mean` the mean [`AutoValve::raw_limit`] of
    /// the valves on this sales path, this one included (its own limit when alone). Returns
    /// the new limit.
    pub fn update(
        &mut self,
        feedback: &SalesFeedback,
        active: u64,
        cap: u32,
        shared_mean: f64,
    ) -> u32 {
        let cap = f64::from(cap.max(1));
        let bound = f64::from(feedback.bound.max(1));
        let busy = feedback.concurrency() / bound;
        if feedback.shed_share() > Self::SHED_SHARE_TOO_MUCH || busy > Self::BUSY_TOO_MUCH {
            self.limit *= Self::CUT;
        } else if active as f64 >= Self::IN_USE_TO_GROW * self.limit.min(cap)
            && busy < Self::BUSY_ROOM
            && feedback.shed == 0
        {
            self.limit += (shared_mean * (Self::GROW - 1.0)).max(1.0);
        }
        // Never above the cap (an operator lowering it takes effect at once) nor below the floor.
        self.limit = self.limit.min(cap).max(Self::FLOOR.min(cap));
        self.limit(cap as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sales path on a simulated clock: calls share a server that completes `capacity` calls
    /// a second (processor sharing), at most `bound` run at once (more are shed and retried
    /// after 200 ms), and each buyer makes `calls` calls with 0.5–1.5 × `think_ms` between
    /// them (a fixed pseudo-random sequence), then leaves. The valve is updated every second; admission fills the free slots every 100 ms
    /// from an endless line.
    struct SalesPath {
        capacity: f64,
        bound: u32,
        calls: u32,
        think_ms: f64,
    }

    #[derive(Clone, Copy)]
    enum Buyer {
        /// Thinking until this time, with this many calls left.
        Thinking(f64, u32),
        /// In a call with this much work (ms of the whole server) left, started at.
        Calling(f64, f64, u32),
    }

    struct Outcome {
        /// Buyers finished per second over the last half of the run.
        finished_per_second: f64,
        /// Calls shed per buyer finished, over the last half.
        shed_per_buyer: f64,
        /// Most buyers at once, and the highest limit, over the whole run.
        most_active: usize,
        highest_limit: u32,
    }

    impl SalesPath {
        /// 1,000 calls a second, 32 at once, four calls a buyer a second apart.
        const THOUSAND_CALLS_A_SECOND: SalesPath = SalesPath {
            capacity: 1_000.0,
            bound: 32,
            calls: 4,
            think_ms: 1_000.0,
        };

        fn run(&self, seconds: u32, cap: u32) -> Outcome {
            const TICK: f64 = 1.0;
            let mut valve = AutoValve::default();
            let mut limit = valve.limit(cap);
            let mut buyers: Vec<Buyer> = Vec::new();
            let mut feedback = SalesFeedback {
                period_ms: 1_000.0,
                bound: self.bound,
                ..SalesFeedback::default()
            };
            let (mut finished, mut shed) = (0u64, 0u64);
            let (mut most_active, mut highest_limit) = (0, limit);
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let mut think = move || {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                self.think_ms * (0.5 + (seed >> 11) as f64 / (1u64 << 53) as f64)
            };
            let ticks = (f64::from(seconds) * 1_000.0 / TICK) as u64;
            for tick in 0..ticks {
                let now = tick as f64 * TICK;
                let second_half = now >= f64::from(seconds) * 500.0;
                if tick % 100 == 0 {
                    while buyers.len() < limit as usize {
                        buyers.push(Buyer::Thinking(now + think(), self.calls));
                    }
                }
                most_active = most_active.max(buyers.len());
                // Calls that want to start now, in order, while the bound has room.
                let mut running = buyers
                    .iter()
                    .filter(|b| matches!(b, Buyer::Calling(..)))
                    .count() as u32;
                for buyer in buyers.iter_mut() {
                    if let Buyer::Thinking(until, left) = *buyer
                        && until <= now
                    {
                        if running < self.bound {
                            running += 1;
                            *buyer = Buyer::Calling(1_000.0 / self.capacity, now, left);
                        } else {
                            feedback.shed += 1;
                            if second_half {
                                shed += 1;
                            }
                            *buyer = Buyer::Thinking(now + 200.0, left);
                        }
                    }
                }
                // The server's work this tick, shared by the running calls.
                let share = if running > 0 {
                    TICK / f64::from(running)
                } else {
                    0.0
                };
                feedback.busy_ms += f64::from(running) * TICK;
                buyers.retain_mut(|buyer| {
                    let Buyer::Calling(work, started, left) = *buyer else {
                        return true;
                    };
                    let _ = started;
                    let work = work - share;
                    if work > 0.0 {
                        *buyer = Buyer::Calling(work, started, left);
                        return true;
                    }
                    feedback.done += 1;
                    if left <= 1 {
                        if second_half {
                            finished += 1;
                        }
                        return false;
                    }
                    *buyer = Buyer::Thinking(now + think(), left - 1);
                    true
                });
                if tick % 1_000 == 999 {
                    let own = valve.raw_limit();
                    limit = valve.update(&feedback, buyers.len() as u64, cap, own);
                    highest_limit = highest_limit.max(limit);
                    feedback = SalesFeedback {
                        period_ms: 1_000.0,
                        bound: self.bound,
                        ..SalesFeedback::default()
                    };
                }
                assert!(buyers.len() <= cap as usize, "more buyers than the cap");
            }
            Outcome {
                finished_per_second: finished as f64 / (f64::from(seconds) / 2.0),
                shed_per_buyer: shed as f64 / finished.max(1) as f64,
                most_active,
                highest_limit,
            }
        }
    }

    #[test]
    fn the_valve_finds_the_sales_paths_capacity_without_shedding_its_buyers() {
        // 1,000 calls a second, 32 at once, four calls a buyer a second apart: at most 250
        // buyers a second can finish, which takes about 1,000 buying at once.
        let path = SalesPath::THOUSAND_CALLS_A_SECOND;
        let outcome = path.run(120, 1_000_000);
        assert!(
            outcome.finished_per_second >= 0.8 * 250.0,
            "settles near capacity: {} buyers/s",
            outcome.finished_per_second
        );
        // Probing for capacity sheds a little; a buyer is shed far less than once.
        assert!(
            outcome.shed_per_buyer < 0.25,
            "calls shed per buyer: {:.3}",
            outcome.shed_per_buyer
        );
    }

    #[test]
    fn the_valve_never_goes_past_the_operators_cap() {
        let path = SalesPath::THOUSAND_CALLS_A_SECOND;
        let outcome = path.run(60, 150);
        assert!(outcome.highest_limit <= 150, "{}", outcome.highest_limit);
        assert!(outcome.most_active <= 150, "{}", outcome.most_active);
        // Under the cap the path has room: the cap binds, and fans are admitted up to it.
        assert_eq!(outcome.highest_limit, 150);
    }

    #[test]
    fn an_overloaded_path_backs_off_and_a_quiet_one_opens_up() {
        let mut valve = AutoValve { limit: 1_000.0 };
        let overloaded = SalesFeedback {
            shed: 500,
            done: 1_000,
            busy_ms: 32_000.0,
            period_ms: 1_000.0,
            bound: 32,
        };
        assert_eq!(valve.update(&overloaded, 1_000, u32::MAX, 1_000.0), 900);
        let quiet = SalesFeedback {
            shed: 0,
            done: 100,
            busy_ms: 5_000.0,
            period_ms: 1_000.0,
            bound: 32,
        };
        assert_eq!(valve.update(&quiet, 800, u32::MAX, 900.0), 990);
        // Room on the path but few buyers: the limit is not what holds fans back, so hold.
        assert_eq!(valve.update(&quiet, 100, u32::MAX, 990.0), 990);
        // Opening adds a tenth of the mean of the valves on the path, not of its own limit.
        assert_eq!(valve.update(&quiet, 990, u32::MAX, 2_000.0), 1_190);
        // Never below the floor.
        for _ in 0..100 {
            valve.update(&overloaded, 0, u32::MAX, 1.0);
        }
        assert_eq!(valve.limit(u32::MAX), AutoValve::FLOOR as u32);
    }

    #[test]
    fn valves_that_share_a_sales_path_converge_on_equal_shares() {
        // Two events on one path, one of them far behind (it opened into a cut): the path
        // alternates between room and overload, as a busy one does, and both valves' buyers
        // fill their limits. Opening each by the same number of buyers and cutting each by the
        // same fraction closes the gap; opening each by a tenth of its own limit would keep
        // the ratio at 10 for ever.
        let mut valves = [AutoValve { limit: 20.0 }, AutoValve { limit: 200.0 }];
        let room = SalesFeedback {
            shed: 0,
            done: 1_000,
            busy_ms: 5_000.0,
            period_ms: 1_000.0,
            bound: 32,
        };
        let overload = SalesFeedback {
            shed: 200,
            done: 1_000,
            busy_ms: 32_000.0,
            period_ms: 1_000.0,
            bound: 32,
        };
        for second in 0..120 {
            let feedback = if second % 2 == 0 { room } else { overload };
            let mean = valves.iter().map(AutoValve::raw_limit).sum::<f64>() / 2.0;
            for valve in &mut valves {
                let active = valve.limit(u32::MAX) as u64;
                valve.update(&feedback, active, u32::MAX, mean);
            }
        }
        let (behind, ahead) = (valves[0].raw_limit(), valves[1].raw_limit());
        assert!(
            ahead > 10.0 * AutoValve::FLOOR,
            "not settled on the floor: {ahead:.0}"
        );
        assert!(
            behind >= 0.9 * ahead,
            "the event that fell behind catches up: {behind:.0} against {ahead:.0}"
        );
    }
}
