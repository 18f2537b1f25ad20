//! When a waiting fan hears about their place: the pure rules behind the room's pushes.
//!
//! A watcher costs the server nothing while nobody tells it anything, so the room, not each
//! stream, decides when a place is worth a message. Each watched entry is looked at on a
//! cadence that grows with its distance from the front ([`look_interval`]): twice a second
//! near the front, once a minute from the 15,000th place back, where a place changes by a
//! small fraction of itself between two looks; up to four times less often while the sales
//! path needs the machine ([`next_stretch`]: buyers first). A look sends a message only for a
//! change a person would see ([`visible_move`]). Everything else that matters to a fan (admission,
//! removal, the sale's state, an alert) reaches their stream at once, by other means.
//!
//! The looks are kept in a [`LookWheel`]: a ring of slots of `SLOT_MS` each, so scheduling and
//! collecting what is due cost O(1) per look, not a heap operation.

/// Least time between two looks at a place, near the front.
pub const MIN_LOOK_MS: i64 = 500;
/// Most time between two looks at a place, far back.
pub const MAX_LOOK_MS: i64 = 60_000;
/// Places nearer the front than this are told every move.
const EXACT_FROM: u64 = 100;

/// How long until the room looks at a watcher's place again: 4 ms per place ahead, between
/// half a second and a minute (place 125 and nearer: 0.5 s; 1,000: 4 s; 15,000 and farther:
/// 60 s). Measured from the place the watcher was last looked at.
pub fn look_interval(position: u64) -> i64 {
    (position.min(1 << 40) as i64)
        .saturating_mul(4)
        .clamp(MIN_LOOK_MS, MAX_LOOK_MS)
}

/// Most the room spreads its looks out while the sales path is pressed ([`next_stretch`]).
pub const MAX_STRETCH: u32 = 4;
/// A stretched look is never farther off than this: a fan far back still hears within two
/// minutes where they are.
pub const MAX_STRETCHED_LOOK_MS: i64 = 2 * MAX_LOOK_MS;

/// [`look_interval`] spread out `stretch` times (1 to [`MAX_STRETCH`]), at most
/// [`MAX_STRETCHED_LOOK_MS`].
pub fn stretched_look_interval(position: u64, stretch: u32) -> i64 {
    let stretch = i64::from(stretch.clamp(1, MAX_STRETCH));
    (look_interval(position) * stretch).min(MAX_STRETCHED_LOOK_MS)
}

/// Buyers first: how far apart the room's looks at waiting fans' places are over the next
/// second, from what the sales path did in the last one. Place updates are the crowd's largest
/// steady cost while a sale sells (one message per look, since a line that moves at hundreds
/// of fans a second moves every place visibly between two looks), and they compete for the
/// same CPU as holds, checkouts and payments. So while the sales path is pressed (any call
/// shed, or calls running at once above 60 % of its bound on average) the looks spread twice
/// as far each second, up to [`MAX_STRETCH`] times; once it has room again (under 30 %,
/// nothing shed) they come back halfway each second. Admissions, removals, the sale's changes
/// and alerts are not looks: they still reach every stream at once.
pub fn next_stretch(stretch: u32, sales: &super::valve::SalesFeedback) -> u32 {
    let bound = f64::from(sales.bound.max(1));
    let busy = sales.concurrency() / bound;
    let stretch = stretch.clamp(1, MAX_STRETCH);
    if sales.shed > 0 || busy > 0.6 {
        (stretch * 2).min(MAX_STRETCH)
    } else if busy < 0.3 {
        (stretch / 2).max(1)
    } else {
        stretch
    }
}

/// Whether a place moved enough, since the one last sent, for a person to care: any move in
/// the first hundred places, else a move of at least 1 % (the third significant digit).
pub fn visible_move(shown: u64, now: u64) -> bool {
    if shown == now {
        return false;
    }
    now < EXACT_FROM || shown < EXACT_FROM || shown.abs_diff(now).saturating_mul(100) >= shown
}

/// Width of a wheel slot: the admission step's period, so a look is at most one step late.
pub const SLOT_MS: i64 = 100;
/// Slots in the wheel: more than [`MAX_STRETCHED_LOOK_MS`] of them, so a look never wraps onto
/// a slot collected before it is due (and if one did, it would be put back, not lost).
const SLOTS: usize = 2048;

/// Looks to do, by the time they are due: `(id, due_ms)` pairs in a ring of slots.
///
/// A look may be stale (its entry was scheduled again, or is no longer watched): the caller
/// keeps each entry's current due time and skips pairs that do not match it. Collecting
/// returns every pair whose slot has passed; a pair collected early (only after a jump of more
/// than the wheel's span) has a due time still ahead, and the caller schedules it again.
#[derive(Debug)]
pub struct LookWheel {
    slots: Vec<Vec<(u64, i64)>>,
    /// The slot number (time / SLOT_MS) collected last.
    cursor: Option<i64>,
    len: usize,
}

impl Default for LookWheel {
    fn default() -> Self {
        LookWheel {
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            cursor: None,
            len: 0,
        }
    }
}

impl LookWheel {
    /// Schedules a look at `id` at `due_ms`.
    pub fn schedule(&mut self, id: u64, due_ms: i64) {
        // A look due in a slot already collected goes in the next one to be collected.
        let slot = match self.cursor {
            Some(cursor) => (due_ms / SLOT_MS).max(cursor + 1),
            None => due_ms / SLOT_MS,
        };
        self.slots[slot.rem_euclid(SLOTS as i64) as usize].push((id, due_ms));
        self.len += 1;
    }

    /// Moves every look whose slot is at or before `now_ms`'s into `due` (which it clears
    /// first): each is due within one slot of `now_ms`.
    pub fn collect(&mut self, now_ms: i64, due: &mut Vec<(u64, i64)>) {
        due.clear();
        let now_slot = now_ms / SLOT_MS;
        let first = match self.cursor {
            Some(cursor) if cursor >= now_slot => return,
            Some(cursor) => (cursor + 1).max(now_slot - SLOTS as i64 + 1),
            // The first collection takes every slot: nothing was scheduled before a cursor.
            None => now_slot - SLOTS as i64 + 1,
        };
        for slot in first..=now_slot {
            let bucket = &mut self.slots[slot.rem_euclid(SLOTS as i64) as usize];
            due.append(bucket);
        }
        self.len -= due.len();
        self.cursor = Some(now_slot);
    }

    /// Looks scheduled and not yet collected (stale ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn far_back_is_looked_at_rarely_and_the_front_often() {
        assert_eq!(look_interval(1), MIN_LOOK_MS);
        assert_eq!(look_interval(125), 500);
        assert_eq!(look_interval(1_000), 4_000);
        assert_eq!(look_interval(15_000), MAX_LOOK_MS);
        assert_eq!(look_interval(400_000), MAX_LOOK_MS);
        assert_eq!(look_interval(u64::MAX), MAX_LOOK_MS);
        let mut last = 0;
        for p in 0..20_000 {
            let i = look_interval(p);
            assert!(i >= last, "the interval never shrinks farther back");
            last = i;
        }
    }

    #[test]
    fn looks_spread_out_while_buyers_need_the_machine_and_come_back_after() {
        use crate::domain::valve::SalesFeedback;
        let second = |shed: u64, running: f64| SalesFeedback {
            shed,
            done: 500,
            busy_ms: running * 1_000.0,
            period_ms: 1_000.0,
            bound: 100,
        };
        // Pressed: a call shed, or 61 of 100 calls running on average.
        assert_eq!(next_stretch(1, &second(1, 10.0)), 2);
        assert_eq!(next_stretch(2, &second(0, 61.0)), 4);
        assert_eq!(
            next_stretch(4, &second(3, 90.0)),
            MAX_STRETCH,
            "never past the most"
        );
        // In between: held.
        assert_eq!(next_stretch(4, &second(0, 45.0)), 4);
        // Room again: back halfway each second, never below once.
        assert_eq!(next_stretch(4, &second(0, 20.0)), 2);
        assert_eq!(next_stretch(2, &second(0, 0.0)), 1);
        assert_eq!(next_stretch(1, &second(0, 0.0)), 1);
        // An idle second (no calls at all) is room.
        assert_eq!(next_stretch(4, &SalesFeedback::default()), 2);

        assert_eq!(stretched_look_interval(1, 1), look_interval(1));
        assert_eq!(stretched_look_interval(1_000, 4), 16_000);
        assert_eq!(stretched_look_interval(400_000, 4), MAX_STRETCHED_LOOK_MS);
        assert_eq!(stretched_look_interval(1_000, 0), look_interval(1_000));
        assert_eq!(stretched_look_interval(1_000, 99), 16_000);
        for p in [0, 1, 125, 1_000, 15_000, u64::MAX] {
            for stretch in 1..=MAX_STRETCH {
                let i = stretched_look_interval(p, stretch);
                assert!(i >= look_interval(p) && i <= MAX_STRETCHED_LOOK_MS);
            }
        }
    }

    #[test]
    fn only_moves_a_person_would_see_are_sent() {
        assert!(!visible_move(5, 5));
        assert!(visible_move(5, 4));
        assert!(visible_move(99, 98));
        assert!(visible_move(150, 99), "reaching the first hundred is news");
        assert!(!visible_move(10_000, 9_901));
        assert!(visible_move(10_000, 9_900));
        assert!(visible_move(10_000, 10_100), "moving back is news too");
        assert!(!visible_move(400_000, 399_000));
        assert!(visible_move(400_000, 396_000));
    }

    #[test]
    fn the_wheel_gives_each_look_once_when_due() {
        let mut wheel = LookWheel::default();
        let mut due = Vec::new();
        wheel.collect(10_000, &mut due);
        assert!(due.is_empty());
        wheel.schedule(1, 10_050); // this slot was collected: goes in the next one
        wheel.schedule(2, 10_500);
        wheel.schedule(3, 70_000);
        assert_eq!(wheel.len(), 3);
        wheel.collect(10_100, &mut due);
        assert_eq!(due, vec![(1, 10_050)]);
        wheel.collect(10_100, &mut due);
        assert!(due.is_empty(), "a slot is collected once");
        wheel.collect(10_499, &mut due);
        assert!(due.is_empty(), "not before its slot");
        wheel.collect(10_500, &mut due);
        assert_eq!(due, vec![(2, 10_500)]);
        wheel.collect(69_999, &mut due);
        assert!(due.is_empty());
        wheel.collect(70_050, &mut due);
        assert_eq!(due, vec![(3, 70_000)]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn a_long_gap_collects_everything_and_loses_nothing() {
        let mut wheel = LookWheel::default();
        let mut due = Vec::new();
        wheel.collect(0, &mut due);
        for id in 0..5_000u64 {
            wheel.schedule(id, (id as i64 * 37) % 200_000);
        }
        // Far past every due time, and past the wheel's span: every look comes out once.
        wheel.collect(1_000_000, &mut due);
        let mut ids: Vec<u64> = due.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..5_000).collect::<Vec<_>>());
        assert!(wheel.is_empty());
    }

    #[test]
    fn looks_collected_in_steps_come_out_in_order_of_their_slots() {
        let mut wheel = LookWheel::default();
        let mut due = Vec::new();
        let start = 1_000_000;
        wheel.collect(start, &mut due);
        for id in 0..2_000u64 {
            wheel.schedule(id, start + 1 + (id as i64 * 7919) % MAX_LOOK_MS);
        }
        let mut seen = 0;
        let mut now = start;
        while now < start + MAX_LOOK_MS + SLOT_MS {
            now += SLOT_MS;
            wheel.collect(now, &mut due);
            for (_, at) in &due {
                assert!(at / SLOT_MS <= now / SLOT_MS, "collected before its slot");
                assert!(*at > now - 2 * SLOT_MS, "collected late");
            }
            seen += due.len();
        }
        assert_eq!(seen, 2_000);
    }
}
