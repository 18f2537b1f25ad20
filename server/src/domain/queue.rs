//! The waiting room's pure parts: queue order with positions in O(log n), the admission token
//! bucket, the seeded pre-queue shuffle and the observed-rate average used for ETAs.
//!
//! Queue order: every entry has a tier and an arrival sequence number; a higher tier is ahead
//! of every lower one, and within a tier a smaller sequence number is ahead. Each tier keeps a
//! Fenwick tree over sequence numbers, so a position is the count of entries in higher tiers
//! plus a prefix sum in the entry's tier, and the front is found by descending the tree. A node
//! answers its watchers' positions from this structure without asking anyone.

/// Number of tiers (general, presale, VIP).
pub const TIERS: usize = 3;

/// A Fenwick (binary indexed) tree of counts over indexes 1..=capacity, growing on demand.
#[derive(Debug, Clone, Default)]
pub struct Fenwick {
    tree: Vec<i64>,
}

impl Fenwick {
    fn capacity(&self) -> usize {
        self.tree.len().saturating_sub(1)
    }

    fn grow(&mut self, index: usize) {
        if index <= self.capacity() {
            return;
        }
        let mut capacity = self.capacity().max(1024);
        while capacity < index {
            capacity *= 2;
        }
        // Rebuild from the point values in O(n).
        let old = self.capacity();
        let mut values = vec![0i64; capacity + 1];
        for (i, v) in values.iter_mut().enumerate().take(old + 1).skip(1) {
            *v = self.prefix(i) - self.prefix(i - 1);
        }
        let mut tree = values;
        for i in 1..=capacity {
            let parent = i + (i & i.wrapping_neg());
            if parent <= capacity {
                tree[parent] += tree[i];
            }
        }
        self.tree = tree;
    }

    /// Adds `delta` at `index` (1-based).
    pub fn add(&mut self, index: usize, delta: i64) {
        self.grow(index);
        let mut i = index;
        while i <= self.capacity() {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// Sum of indexes 1..=index.
    pub fn prefix(&self, index: usize) -> i64 {
        let mut i = index.min(self.capacity());
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        sum
    }

    /// The smallest index whose prefix sum reaches `k` (k ≥ 1), if any.
    pub fn find(&self, k: i64) -> Option<usize> {
        let n = self.capacity();
        if k <= 0 || n == 0 {
            return None;
        }
        let mut step = 1usize << (usize::BITS - 1 - n.leading_zeros());
        let mut pos = 0usize;
        let mut remaining = k;
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] < remaining {
                pos = next;
                remaining -= self.tree[next];
            }
            step >>= 1;
        }
        (pos < n).then_some(pos + 1)
    }
}

/// Queue order across tiers; tier `TIERS - 1` is served first.
#[derive(Debug, Clone, Default)]
pub struct QueueOrder {
    tiers: [Fenwick; TIERS],
    counts: [u64; TIERS],
}

impl QueueOrder {
    /// Places an entry (sequence numbers start at 1 and are unique per queue).
    pub fn insert(&mut self, tier: usize, seq: u64) {
        self.tiers[tier].add(seq as usize, 1);
        self.counts[tier] += 1;
    }

    /// Removes an entry that is in the queue.
    pub fn remove(&mut self, tier: usize, seq: u64) {
        self.tiers[tier].add(seq as usize, -1);
        self.counts[tier] -= 1;
    }

    /// 1-based position of an entry that is in the queue.
    pub fn position(&self, tier: usize, seq: u64) -> u64 {
        let ahead: u64 = self.counts[tier + 1..].iter().sum();
        ahead + self.tiers[tier].prefix(seq as usize) as u64
    }

    /// The entry at the front among tiers `min_tier..`, as (tier, seq).
    pub fn front(&self, min_tier: usize) -> Option<(usize, u64)> {
        (min_tier..TIERS)
            .rev()
            .find(|t| self.counts[*t] > 0)
            .and_then(|t| self.tiers[t].find(1).map(|seq| (t, seq as u64)))
    }

    /// Entries waiting in a tier.
    pub fn len_tier(&self, tier: usize) -> u64 {
        self.counts[tier]
    }

    /// Entries waiting in all tiers.
    pub fn len(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Admission valve: a token bucket refilled at `rate_per_minute` up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    pub rate_per_minute: f64,
    pub burst: f64,
    tokens: f64,
    last_ms: i64,
}

impl TokenBucket {
    pub fn new(rate_per_minute: u32, burst: u32, now_ms: i64) -> TokenBucket {
        TokenBucket {
            rate_per_minute: f64::from(rate_per_minute),
            burst: f64::from(burst.max(1)),
            tokens: 0.0,
            last_ms: now_ms,
        }
    }

    /// Changes the rate and burst from now on, keeping the tokens earned so far.
    pub fn set(&mut self, rate_per_minute: u32, burst: u32, now_ms: i64) {
        self.refill(now_ms);
        self.rate_per_minute = f64::from(rate_per_minute);
        self.burst = f64::from(burst.max(1));
        self.tokens = self.tokens.min(self.burst);
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = (now_ms - self.last_ms).max(0) as f64 / 60_000.0;
        self.tokens = (self.tokens + elapsed * self.rate_per_minute).min(self.burst);
        self.last_ms = now_ms.max(self.last_ms);
    }

    /// Milliseconds until one whole token is available.
    pub fn wait_ms(&mut self, now_ms: i64) -> u64 {
        self.refill(now_ms);
        if self.tokens >= 1.0 || self.rate_per_minute <= 0.0 {
            return 0;
        }
        ((1.0 - self.tokens) * 60_000.0 / self.rate_per_minute).ceil() as u64
    }

    /// Whether the bucket is full at `now_ms` (nothing to remember about its owner).
    pub fn is_full(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        self.tokens >= self.burst
    }

    /// A bucket that starts full.
    pub fn full(rate_per_minute: u32, burst: u32, now_ms: i64) -> TokenBucket {
        let mut bucket = TokenBucket::new(rate_per_minute, burst, now_ms);
        bucket.tokens = bucket.burst;
        bucket
    }

    /// Takes up to `wanted` whole tokens at `now_ms`; returns how many were taken.
    pub fn take(&mut self, wanted: u64, now_ms: i64) -> u64 {
        self.refill(now_ms);
        let n = (self.tokens.floor() as u64).min(wanted);
        self.tokens -= n as f64;
        n
    }
}

/// The pre-queue's shuffle (SplitMix64-driven Fisher–Yates) lives with the rest of the
/// fairness proof in `taquilla_proto::fairness`, which clients verify with.
pub use taquilla_proto::fairness::{SplitMix64, shuffle};

/// The line's pace, for ETAs from what actually happens: the admission steps of the last
/// minute, or of the last [`RateAverage::MIN_ADMISSIONS`] admissions when the valve is slower
/// than that.
///
/// An ETA is the time the fans ahead take at the measured pace, less the time already spent
/// in the current interval: `position × τ − (now − last admission)`, with τ the mean time
/// between admissions. At a steady pace the ETA then falls by a second every second, whether
/// or not anyone ahead was admitted meanwhile: a fan at place 6 with one admission every 30 s
/// is told 3 min, then 2.5 min 30 s later at place 6, and still 2.5 min just after moving to
/// place 5. When admissions stop for longer than the steps' usual spacing, the pace is taken
/// to be at most one step's worth of admissions per that long, and the ETA grows.
///
/// A pace counts as measured only once its steps span [`RateAverage::MIN_SPAN_MS`]: the
/// first seconds of a sale (the valve filling its first slots at once, an opening's work on
/// every node) run at a pace that is not the sale's, and an ETA from them was four times the
/// wait that followed in the full LUX sale (docs/benchmarks-log.md). Until then a fixed
/// valve's ETA comes from its rate and the automatic valve's is unknown ("estimating").
#[derive(Debug, Clone, Default)]
pub struct RateAverage {
    /// (time, admissions) of each step that admitted anyone, oldest first.
    steps: std::collections::VecDeque<(i64, u64)>,
    /// Admissions in `steps`.
    count: u64,
}

impl RateAverage {
    /// The window the pace is measured over.
    const WINDOW_MS: i64 = 60_000;
    /// A slower valve is measured over this many admissions instead.
    pub const MIN_ADMISSIONS: u64 = 10;
    /// The longest history kept for a slow valve.
    const LONGEST_MS: i64 = 15 * 60_000;
    /// The shortest span of steps a pace is measured over.
    pub const MIN_SPAN_MS: i64 = 10_000;

    /// Records `n` admissions at `now_ms`.
    pub fn record(&mut self, n: u64, now_ms: i64) {
        if n == 0 {
            return;
        }
        match self.steps.back_mut() {
            Some((at, admitted)) if *at == now_ms => *admitted += n,
            _ => self.steps.push_back((now_ms, n)),
        }
        self.count += n;
        self.tick(now_ms);
    }

    /// Forgets steps outside the window (keeping enough admissions for a slow valve, and
    /// enough of a span to measure over).
    pub fn tick(&mut self, now_ms: i64) {
        let last = self.steps.back().map_or(now_ms, |s| s.0);
        while let Some(&(at, n)) = self.steps.front() {
            let old = now_ms - at > Self::WINDOW_MS;
            let span_without = self.steps.get(1).map_or(0, |next| last - next.0);
            let enough_without =
                self.count - n >= Self::MIN_ADMISSIONS && span_without >= Self::MIN_SPAN_MS;
            if (old && enough_without) || now_ms - at > Self::LONGEST_MS {
                self.steps.pop_front();
                self.count -= n;
            } else {
                break;
            }
        }
    }

    /// Mean milliseconds between admissions over the steps kept, once they span
    /// [`RateAverage::MIN_SPAN_MS`].
    fn interval_ms(&self) -> Option<f64> {
        let (first, first_n) = *self.steps.front()?;
        let (last, _) = *self.steps.back()?;
        let after_first = self.count - first_n;
        (last - first >= Self::MIN_SPAN_MS && after_first > 0)
            .then(|| (last - first) as f64 / after_first as f64)
    }

    /// Admissions per minute at the measured pace (zero until it is measured).
    pub fn per_minute(&self) -> f64 {
        self.interval_ms().map_or(0.0, |ms| 60_000.0 / ms)
    }

    /// Seconds until `position` is admitted at the measured pace; before a pace is measured,
    /// at `fallback_per_minute` when there is one (a fixed valve's rate); `None` when nothing
    /// is known.
    pub fn eta_seconds(
        &self,
        position: u64,
        fallback_per_minute: Option<f64>,
        now_ms: i64,
    ) -> Option<u64> {
        let Some(interval) = self.interval_ms() else {
            let rate = fallback_per_minute.filter(|r| *r > 0.0)?;
            return Some((position as f64 * 60.0 / rate).ceil() as u64);
        };
        let since = self
            .steps
            .back()
            .map_or(0.0, |(at, _)| (now_ms - at).max(0) as f64);
        // Admissions come in steps (a pump step admits all it may at once): a pause longer
        // than the steps' usual spacing slows the pace to a step's worth per pause.
        let steps = self.steps.len().saturating_sub(1).max(1) as f64;
        let per_step = (self.count - self.steps.front().map_or(0, |s| s.1)) as f64 / steps;
        let interval = interval.max(since / per_step.max(1.0));
        let ms = (position as f64 * interval - since).max(interval.min(1_000.0));
        Some((ms / 1_000.0).ceil() as u64)
    }
}

/// Tells callers turned away from a full line when to come back, one after another at the
/// pace the line drains, rather than all after the same fixed pause (a crowd told "one second"
/// together comes back together, and is turned away together again).
///
/// The pace is measured: the line reports each batch it completes ([`ReturnPacer::drained`]).
/// A caller turned away is given the next free return slot after the current line would have
/// drained; the slots are spaced by the time the line takes per caller.
#[derive(Debug, Clone)]
pub struct ReturnPacer {
    /// Callers the line takes per second (exponentially weighted over batches).
    per_second: f64,
    /// The next free return slot (fractional: callers may come back less than 1 ms apart).
    next_ms: f64,
}

impl ReturnPacer {
    /// A guess of the pace before any batch is measured.
    const FIRST_GUESS_PER_SECOND: f64 = 2_000.0;
    /// Weight of the newest batch in the average.
    const NEWEST: f64 = 0.2;
    /// Shortest pause given: a line that drains at once still gets a breath.
    pub const MIN_MS: u64 = 50;

    pub fn new() -> ReturnPacer {
        ReturnPacer {
            per_second: Self::FIRST_GUESS_PER_SECOND,
            next_ms: 0.0,
        }
    }

    /// The line took `callers` in `took_ms` milliseconds (a batch, start to answer).
    pub fn drained(&mut self, callers: usize, took_ms: f64) {
        if callers == 0 {
            return;
        }
        let pace = callers as f64 * 1_000.0 / took_ms.max(0.1);
        self.per_second = self.per_second * (1.0 - Self::NEWEST) + pace * Self::NEWEST;
    }

    /// Callers the line takes per second, as measured.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// The pause to give a caller turned away at `now_ms` while `backlog` callers wait.
    pub fn come_back_in(&mut self, now_ms: i64, backlog: usize) -> u64 {
        let per_caller_ms = 1_000.0 / self.per_second.max(1.0);
        let drained_at = now_ms as f64 + backlog as f64 * per_caller_ms;
        let slot = drained_at.max(self.next_ms);
        self.next_ms = slot + per_caller_ms;
        ((slot - now_ms as f64).max(0.0) as u64).max(Self::MIN_MS)
    }
}

impl Default for ReturnPacer {
    fn default() -> Self {
        ReturnPacer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fenwick_prefix_find_and_growth() {
        let mut f = Fenwick::default();
        for i in [3usize, 5, 2_000, 70_000] {
            f.add(i, 1);
        }
        assert_eq!(f.prefix(2), 0);
        assert_eq!(f.prefix(3), 1);
        assert_eq!(f.prefix(69_999), 3);
        assert_eq!(f.prefix(100_000), 4);
        assert_eq!(f.find(1), Some(3));
        assert_eq!(f.find(3), Some(2_000));
        assert_eq!(f.find(4), Some(70_000));
        assert_eq!(f.find(5), None);
        f.add(3, -1);
        assert_eq!(f.find(1), Some(5));
    }

    #[test]
    fn higher_tiers_go_first_and_fifo_within() {
        let mut q = QueueOrder::default();
        q.insert(0, 1);
        q.insert(0, 2);
        q.insert(1, 3);
        q.insert(2, 4);
        assert_eq!(q.position(2, 4), 1);
        assert_eq!(q.position(1, 3), 2);
        assert_eq!(q.position(0, 1), 3);
        assert_eq!(q.position(0, 2), 4);
        assert_eq!(q.front(0), Some((2, 4)));
        assert_eq!(q.front(1), Some((2, 4)));
        q.remove(2, 4);
        assert_eq!(q.front(0), Some((1, 3)));
        q.remove(1, 3);
        assert_eq!(q.front(1), None, "presale phase admits no general fans");
        assert_eq!(q.front(0), Some((0, 1)));
        assert_eq!(q.position(0, 2), 2);
        assert_eq!(q.len(), 2);
    }

    proptest! {
        /// Positions match a sorted list under any mix of inserts and removals.
        #[test]
        fn positions_match_a_sorted_list(ops in proptest::collection::vec((0..3usize, any::<bool>()), 1..300)) {
            let mut q = QueueOrder::default();
            let mut list: Vec<(usize, u64)> = Vec::new();
            for (seq, (tier, keep)) in ops.into_iter().enumerate() {
                let seq = seq as u64 + 1;
                q.insert(tier, seq);
                list.push((tier, seq));
                if !keep && list.len() > 1 {
                    let (t, s) = list.remove(list.len() / 2);
                    q.remove(t, s);
                }
            }
            let mut sorted = list.clone();
            sorted.sort_by_key(|(t, s)| (std::cmp::Reverse(*t), *s));
            for (i, (t, s)) in sorted.iter().enumerate() {
                prop_assert_eq!(q.position(*t, *s), i as u64 + 1);
            }
            prop_assert_eq!(q.front(0), sorted.first().copied());
        }
    }

    #[test]
    fn bucket_respects_rate_and_burst() {
        let mut b = TokenBucket::new(600, 20, 0);
        assert_eq!(b.take(100, 0), 0);
        assert_eq!(b.take(100, 1_000), 10, "10 per second");
        assert_eq!(b.take(100, 60_000), 20, "capped by the burst");
        // Over a simulated hour at 1 ms ticks of 100 ms, admissions track rate × time.
        let mut b = TokenBucket::new(1_234, 50, 0);
        let mut admitted = 0;
        for t in (100..=3_600_000).step_by(100) {
            admitted += b.take(u64::MAX, t);
        }
        assert!(
            (admitted as f64 - 1_234.0 * 60.0).abs() <= 1.0,
            "{admitted}"
        );
        b.set(60, 5, 3_600_000);
        assert_eq!(b.take(100, 3_605_000), 5);
    }

    #[test]
    fn shuffle_is_a_recomputable_permutation() {
        let mut a: Vec<u32> = (0..1_000).collect();
        let mut b = a.clone();
        shuffle(&mut a, 42);
        shuffle(&mut b, 42);
        assert_eq!(a, b, "same seed, same order");
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1_000).collect::<Vec<_>>(), "a permutation");
        let mut c: Vec<u32> = (0..1_000).collect();
        shuffle(&mut c, 43);
        assert_ne!(a, c);
        // Uniform enough: each item lands in the first half about half the time.
        let mut first_half = 0;
        for seed in 0..2_000u64 {
            let mut v: Vec<u32> = (0..10).collect();
            shuffle(&mut v, seed);
            if v[..5].contains(&0) {
                first_half += 1;
            }
        }
        assert!((900..1_100).contains(&first_half), "{first_half}");
    }

    #[test]
    fn eta_follows_the_observed_rate() {
        let mut r = RateAverage::default();
        assert_eq!(
            r.eta_seconds(100, Some(600.0), 0),
            Some(10),
            "a fixed valve's rate"
        );
        assert_eq!(r.eta_seconds(100, None, 0), None, "nothing known yet");
        for s in 0..=120 {
            r.record(2, s * 1_000);
        }
        assert!((r.per_minute() - 120.0).abs() < 1.0, "{}", r.per_minute());
        let eta = r.eta_seconds(120, None, 120_000).expect("a rate is known");
        assert_eq!(eta, 60, "120 places at 120 a minute");
    }

    #[test]
    fn a_slow_steady_valve_gives_an_eta_that_falls_as_time_passes() {
        // Two fans a minute: one admission every 30 s for ten minutes.
        let mut r = RateAverage::default();
        for i in 0..20 {
            r.record(1, i * 30_000);
        }
        let last = 19 * 30_000;
        assert!((r.per_minute() - 2.0).abs() < 0.01, "{}", r.per_minute());
        // Place 6 just after an admission: 3 minutes; 30 s later, still place 6: 2.5 min;
        // then admitted ahead, place 5: 2.5 min again, never more.
        assert_eq!(r.eta_seconds(6, None, last), Some(180));
        assert_eq!(r.eta_seconds(6, None, last + 29_000), Some(151));
        r.record(1, last + 30_000);
        assert_eq!(r.eta_seconds(5, None, last + 30_000), Some(150));
        // No admission for three minutes: the pace is at most one per three minutes now.
        let stalled = r.eta_seconds(5, None, last + 210_000).expect("known");
        assert!(stalled >= 5 * 180 - 180, "{stalled}");
    }

    #[test]
    fn admissions_in_bursts_are_not_a_stall() {
        // Fifty fans every two seconds: 25 a second, though no one is admitted in between.
        let mut r = RateAverage::default();
        for i in 0..30 {
            r.record(50, i * 2_000);
        }
        let eta = r
            .eta_seconds(2_500, None, 29 * 2_000 + 1_900)
            .expect("known");
        assert!(
            (98..=101).contains(&eta),
            "2,500 places at 25 a second: {eta} s"
        );
    }

    #[test]
    fn the_first_seconds_of_admissions_are_not_yet_a_pace() {
        // Twenty fans at once, then a slow trickle for nine seconds: no pace yet.
        let mut r = RateAverage::default();
        r.record(20, 0);
        for s in 1..10 {
            r.record(1, s * 1_000);
        }
        assert_eq!(r.eta_seconds(100, None, 9_000), None, "the automatic valve");
        assert_eq!(
            r.eta_seconds(100, Some(600.0), 9_000),
            Some(10),
            "a fixed valve's rate until measured"
        );
        assert_eq!(r.per_minute(), 0.0);
        // From ten seconds of steps on, the measured pace.
        r.record(1, 10_000);
        assert_eq!(r.eta_seconds(10, None, 10_000), Some(10));
    }

    #[test]
    fn a_burst_after_a_stall_keeps_a_span_to_measure_over() {
        // One fan a second for a minute, nothing for two minutes, then 30 at once.
        let mut r = RateAverage::default();
        for s in 0..60 {
            r.record(1, s * 1_000);
        }
        r.record(30, 180_000);
        // The steps kept still span ten seconds or more: the pace is the slow one it was, not
        // unknown and not 30 fans in no time.
        let eta = r.eta_seconds(10, None, 180_000).expect("a pace is kept");
        assert!(eta >= 10, "{eta}");
    }

    #[test]
    fn the_window_keeps_a_minute_or_the_last_admissions() {
        let mut r = RateAverage::default();
        // A fast minute, then a slow one: the pace follows the last minute.
        for ms in (0..60_000).step_by(100) {
            r.record(10, ms);
        }
        for ms in (60_000..180_000).step_by(1_000) {
            r.record(1, ms);
        }
        assert!((r.per_minute() - 60.0).abs() < 2.0, "{}", r.per_minute());
    }

    #[test]
    fn callers_turned_away_come_back_at_the_pace_the_line_drains() {
        let mut pacer = ReturnPacer::new();
        // The line takes 256 callers in 64 ms: 4,000 a second, 0.25 ms each.
        for _ in 0..50 {
            pacer.drained(256, 64.0);
        }
        assert!((pacer.per_second() - 4_000.0).abs() < 1.0);
        // 4,000 turned away in the same millisecond, with 1,024 waiting: the first comes back
        // when those have gone (256 ms), the rest one every 0.25 ms after it, over a second.
        let pauses: Vec<u64> = (0..4_000)
            .map(|_| pacer.come_back_in(1_000, 1_024))
            .collect();
        assert!((255..=257).contains(&pauses[0]), "{}", pauses[0]);
        assert!(pauses.windows(2).all(|w| w[1] >= w[0]), "returns in order");
        let last = *pauses.last().expect("pauses");
        assert!((1_200..=1_300).contains(&last), "{last}");
        // A second later the slots already given are still honoured.
        let later = pacer.come_back_in(2_000, 0);
        assert!(later >= last - 1_000 - 1, "{later}");
        // Once the line is idle again the pause is short.
        assert_eq!(pacer.come_back_in(10_000, 0), ReturnPacer::MIN_MS);
    }
}
