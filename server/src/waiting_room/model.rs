//! The in-memory line of one event ([`Inner`]): entries, places by tier, admissions and the
//! view a watcher gets. The embedded room runs on it alone; on Redis each node replays the
//! event's log into it.

use super::*;

impl Inner {
    pub(super) fn new(
        sale: SaleState,
        phase: SalePhase,
        opens_at_ms: i64,
        admission: AdmissionSettings,
        seed: Option<u64>,
        presale_codes: &[String],
        now: i64,
    ) -> Inner {
        Inner {
            sale,
            phase,
            opens_at_ms,
            admission,
            bucket: TokenBucket::new(admission.rate_per_minute, admission.burst, now),
            rate: RateAverage::default(),
            presale_codes: presale_codes.iter().cloned().collect(),
            entries: HashMap::new(),
            by_fingerprint: HashMap::new(),
            by_seq: HashMap::new(),
            order: QueueOrder::default(),
            prequeue: Vec::new(),
            next_entry: 0,
            next_seq: 0,
            active: HashSet::new(),
            detached: BTreeSet::new(),
            admitted_total: 0,
            watchers: 0,
            seed,
            commitment: None,
            alert: None,
            next_alert: 1,
            looks: LookWheel::default(),
            looks_due: Vec::new(),
            look_stretch: 1,
            valve: AutoValve::default(),
        }
    }

    /// Most fans buying at once now: the operator's `max_active`, or the automatic valve's
    /// limit under it.
    pub(super) fn buyers_allowed(&self) -> u32 {
        if self.admission.auto {
            self.valve.limit(self.admission.max_active)
        } else {
            self.admission.max_active
        }
    }

    pub(super) fn min_tier(&self) -> usize {
        match self.phase {
            SalePhase::Presale => PRESALE,
            SalePhase::General => GENERAL,
        }
    }

    pub(super) fn place(&mut self, id: u64) {
        self.place_at(id, self.next_seq + 1);
    }

    /// Puts an entry in line with sequence number `seq` (larger: farther back in its tier).
    pub(super) fn place_at(&mut self, id: u64, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.seq = seq;
            entry.state = EntryState::Waiting;
            self.order.insert(entry.tier, seq);
            self.by_seq.insert(seq, id);
            entry.initial_position = self.order.position(entry.tier, seq);
        }
    }

    pub(super) fn unplace(&mut self, id: u64) {
        if let Some(entry) = self.entries.get(&id) {
            match entry.state {
                EntryState::Waiting => {
                    self.order.remove(entry.tier, entry.seq);
                    self.by_seq.remove(&entry.seq);
                }
                EntryState::Prequeue => self.prequeue.retain(|e| *e != id),
                EntryState::Admitted => {
                    self.active.remove(&id);
                }
                _ => {}
            }
        }
    }

    /// A new entry, in line (`seq` > 0) or in the pre-queue.
    pub(super) fn add_entry(
        &mut self,
        id: u64,
        tier: usize,
        seq: u64,
        fp: String,
        iat: i64,
        ip: Option<IpAddr>,
    ) {
        self.entries.insert(
            id,
            Entry {
                tier,
                state: EntryState::Prequeue,
                seq: 0,
                fp: fp.clone(),
                iat,
                initial_position: 0,
                watchers: 0,
                detached_at_ms: Some(iat),
                admission: None,
                ip,
                signal: Arc::default(),
                shown_position: 0,
                look_due_ms: 0,
            },
        );
        self.by_fingerprint.insert(fp, id);
        self.next_entry = self.next_entry.max(id);
        if seq > 0 {
            self.place_at(id, seq);
        } else {
            self.prequeue.push(id);
        }
    }

    /// Whether an entry is still in line or buying.
    pub(super) fn is_live(&self, id: u64) -> bool {
        self.entries
            .get(&id)
            .is_some_and(|e| !matches!(e.state, EntryState::Removed | EntryState::Expired))
    }

    /// Takes a live entry out of the queue for good (left, banned, paid, grace period over).
    pub(super) fn remove_entry(&mut self, id: u64) -> bool {
        if !self.is_live(id) {
            return false;
        }
        self.unplace(id);
        if let Some(since) = self.entries.get(&id).and_then(|e| e.detached_at_ms) {
            self.detached.remove(&(since, id));
        }
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.state = EntryState::Removed;
            entry.signal.wake();
        }
        true
    }

    /// An admitted fan's slot ended without a purchase (no-show, pass expired).
    pub(super) fn expire_entry(&mut self, id: u64) {
        self.active.remove(&id);
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.state = EntryState::Expired;
            entry.signal.wake();
        }
    }

    /// Admits a fan: out of line, into the active set, with a pass.
    pub(super) fn admit_entry(&mut self, id: u64, admission: Admission) {
        if let Some(entry) = self.entries.get(&id)
            && entry.state == EntryState::Waiting
        {
            self.order.remove(entry.tier, entry.seq);
            self.by_seq.remove(&entry.seq);
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.state = EntryState::Admitted;
        entry.signal.wake();
        entry.admission = Some(admission);
        self.active.insert(id);
        self.admitted_total += 1;
    }

    /// Opens the sale: the pre-queue is shuffled with a fresh seed and placed first. Its
    /// watchers, looked at rarely while they had no place, are looked at from now on the
    /// cadence of their new places.
    pub(super) fn open(&mut self, seed: u64, now: i64) {
        self.seed = Some(seed);
        let mut prequeue = std::mem::take(&mut self.prequeue);
        shuffle(&mut prequeue, seed);
        for &id in &prequeue {
            self.place(id);
        }
        // Placed one by one, an entry's first position did not count the higher tiers placed
        // after it: its place right after opening is the one to show (and to check).
        for &id in &prequeue {
            if let Some(entry) = self.entries.get(&id) {
                let position = self.order.position(entry.tier, entry.seq);
                if let Some(entry) = self.entries.get_mut(&id) {
                    entry.initial_position = position;
                }
            }
        }
        self.sale = SaleState::Open;
        for id in prequeue {
            self.reschedule_look(id, now);
        }
    }

    /// Whether a sale with an opening time is due to open.
    pub(super) fn open_is_due(&self, now: i64) -> bool {
        self.sale == SaleState::NotOpen && self.opens_at_ms > 0 && now >= self.opens_at_ms
    }

    /// The shuffle's commitment, for a fan in the pre-queue.
    pub(super) fn commitment_for(&self, state: pb::QueueState) -> String {
        match (&self.commitment, state) {
            (Some(c), pb::QueueState::Prequeue) => c.to_string(),
            _ => String::new(),
        }
    }

    /// Seconds until `position` is admitted at the line's measured pace (a fixed valve's rate
    /// before there is one); zero when unknown or the sale is not admitting.
    pub(super) fn eta(&self, position: u64, now_ms: i64) -> u64 {
        if position == 0 || self.sale != SaleState::Open {
            return 0;
        }
        let fallback = (!self.admission.auto).then(|| f64::from(self.admission.rate_per_minute));
        self.rate
            .eta_seconds(position, fallback, now_ms)
            .unwrap_or(0)
    }

    pub(super) fn view(&self, event_id: &str, id: u64, now_ms: i64) -> Option<View> {
        let entry = self.entries.get(&id)?;
        let state = match (self.sale, entry.state) {
            (SaleState::Closed, EntryState::Waiting | EntryState::Prequeue) => {
                pb::QueueState::Closed
            }
            // Nothing is left to buy, for those in line and those admitted alike.
            (
                SaleState::SoldOut,
                EntryState::Waiting | EntryState::Prequeue | EntryState::Admitted,
            ) => pb::QueueState::SoldOut,
            (_, EntryState::Prequeue) => pb::QueueState::Prequeue,
            (_, EntryState::Waiting) => pb::QueueState::Waiting,
            (_, EntryState::Admitted) => pb::QueueState::Admitted,
            (_, EntryState::Removed) => pb::QueueState::Removed,
            (_, EntryState::Expired) => pb::QueueState::Expired,
        };
        let position = if state == pb::QueueState::Waiting {
            self.order.position(entry.tier, entry.seq)
        } else {
            0
        };
        let eta_seconds = self.eta(position, now_ms);
        Some(View {
            status: pb::QueueStatus {
                event_id: event_id.to_string(),
                state: state.into(),
                position,
                waiting_total: self.order.len() + self.prequeue.len() as u64,
                eta_seconds,
                tier: tier_of(entry.tier).into(),
                initial_position: entry.initial_position,
                sale_opens_at_unix_ms: self.opens_at_ms,
                sale_paused: self.sale == SaleState::Paused,
                shuffle_commitment: self.commitment_for(state),
            },
            pass: entry.admission.as_ref().map(|a| pb::AdmissionPass {
                token: a.pass.clone(),
                event_id: event_id.to_string(),
                expires_at_unix_ms: a.pass_exp_ms,
                hold_deadline_unix_ms: a.hold_deadline_ms,
            }),
        })
    }
}
