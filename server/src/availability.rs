//! Live seat maps. Each node keeps, per event that someone is looking at, the last seat
//! statuses it read and a version number; every read (a `GetSeatMap`, or the feed's own poll
//! while `WatchAvailability` streams are open) is diffed against it, and the changes go to the
//! event's watchers as one coalesced update per read. Reads come from the database, so changes
//! made by every node (and lapsed locks) show up, and the cost is one status query per event per
//! poll interval, whatever the number of watchers. `GetSeatMap` callers that arrive together
//! share one read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taquilla_proto::v1 as pb;
use tokio::sync::broadcast;

use crate::convert;
use crate::domain::SeatStatus;
use crate::domain::seat_map::EventShape;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

/// How often a watched event's statuses are read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// A feed nobody watches or reads for this long is dropped.
const IDLE_AFTER: Duration = Duration::from_secs(30);
/// Updates buffered per watcher before it must resync.
const BUFFER: usize = 64;

#[derive(Debug)]
struct Snapshot {
    version: u64,
    statuses: Vec<SeatStatus>,
    /// When the read behind `statuses` started; older reads are not applied over newer ones.
    read_started: Instant,
    last_used: Instant,
}

/// One event's feed.
#[derive(Debug)]
pub struct Feed {
    event_id: String,
    shape: Arc<EventShape>,
    snapshot: Mutex<Snapshot>,
    updates: broadcast::Sender<Arc<pb::AvailabilityUpdate>>,
}

impl Feed {
    /// The current version.
    pub fn version(&self) -> u64 {
        self.snapshot.lock().map(|s| s.version).unwrap_or(0)
    }

    /// Subscribes to updates, returning the version they start after.
    pub fn subscribe(&self) -> (u64, broadcast::Receiver<Arc<pb::AvailabilityUpdate>>) {
        // Subscribe under the lock so no update falls between the version and the receiver.
        let snapshot = self.snapshot.lock();
        let receiver = self.updates.subscribe();
        (snapshot.map(|s| s.version).unwrap_or(0), receiver)
    }

    /// Applies a read of every seat's status started at `started`; returns the version the
    /// statuses correspond to.
    pub fn observe(&self, statuses: Vec<SeatStatus>, started: Instant) -> u64 {
        let Ok(mut snapshot) = self.snapshot.lock() else {
            return 0;
        };
        snapshot.last_used = Instant::now();
        if started < snapshot.read_started {
            return snapshot.version;
        }
        snapshot.read_started = started;
        let changes: Vec<pb::SeatChange> = statuses
            .iter()
            .zip(snapshot.statuses.iter())
            .enumerate()
            .filter(|(_, (new, old))| new != old)
            .map(|(i, (new, _))| pb::SeatChange {
                seat_id: i as u32 + 1,
                status: convert::seat_status(*new).into(),
            })
            .collect();
        if changes.is_empty() {
            return snapshot.version;
        }
        let before = self.shape.counts(&snapshot.statuses);
        let after = self.shape.counts(&statuses);
        let sections = self
            .shape
            .sections
            .iter()
            .zip(before.iter().zip(after.iter()))
            .filter(|(_, (b, a))| b.available != a.available)
            .map(|(section, (_, a))| pb::SectionAvailability {
                section_id: section.info.id.clone(),
                available: a.available,
            })
            .collect();
        snapshot.version += 1;
        snapshot.statuses = statuses;
        let update = pb::AvailabilityUpdate {
            event_id: self.event_id.clone(),
            version: snapshot.version,
            changes,
            sections,
            resync: false,
        };
        // No receivers is fine: nobody is watching right now.
        let _ = self.updates.send(Arc::new(update));
        snapshot.version
    }
}

/// Every feed of this node.
#[derive(Debug)]
pub struct AvailabilityHub {
    store: Arc<dyn Store>,
    clock: Arc<dyn crate::domain::clock::Clock>,
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
    /// One per event being read: [`AvailabilityHub::read`]'s callers queue on it.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Status reads made for `GetSeatMap` callers.
    reads: std::sync::atomic::AtomicU64,
    stop: Shutdown,
}

impl AvailabilityHub {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn crate::domain::clock::Clock>,
        stop: Shutdown,
    ) -> AvailabilityHub {
        AvailabilityHub {
            store,
            clock,
            feeds: Mutex::new(HashMap::new()),
            gates: Mutex::new(HashMap::new()),
            reads: std::sync::atomic::AtomicU64::new(0),
            stop,
        }
    }

    /// An event's statuses as of a read that started after this call did (so never older than
    /// the call), applied to its feed, with their version. Callers that arrive together share
    /// one read: while a read is under way the others wait for it, and those who arrived before
    /// it started take its result, so a crowd asking for the same seat map costs one database
    /// read per event at a time instead of one per caller.
    pub async fn read(
        self: &Arc<Self>,
        event_id: &str,
        shape: &Arc<EventShape>,
    ) -> Result<(Vec<SeatStatus>, u64), StoreError> {
        let arrived = Instant::now();
        let gate = self.gate(event_id);
        let _turn = gate.lock().await;
        if let Some(feed) = self
            .feeds
            .lock()
            .ok()
            .and_then(|f| f.get(event_id).cloned())
            && let Ok(snapshot) = feed.snapshot.lock()
            && snapshot.read_started >= arrived
        {
            return Ok((snapshot.statuses.clone(), snapshot.version));
        }
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let statuses = self
            .store
            .seat_statuses(event_id, self.clock.now_ms())
            .await?;
        let feed = self.feed(event_id, shape, &statuses, started);
        let version = feed.observe(statuses.clone(), started);
        Ok((statuses, version))
    }

    /// How many database reads [`AvailabilityHub::read`] has made.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The lock that lines up an event's reads. Gates are kept per event; past 1,024 of them
    /// the ones nobody holds or waits on are dropped.
    fn gate(&self, event_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut gates) = self.gates.lock() else {
            return Arc::new(tokio::sync::Mutex::new(()));
        };
        if gates.len() > 1_024 {
            // Gates nobody holds or waits on are dropped; a busy event keeps its own.
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        }
        gates
            .entry(event_id.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
    }

    /// The feed of an event, started (with its poller) if needed.
    pub async fn watch(
        self: &Arc<Self>,
        event_id: &str,
        shape: &Arc<EventShape>,
    ) -> Result<Arc<Feed>, StoreError> {
        if let Some(feed) = self
            .feeds
            .lock()
            .ok()
            .and_then(|f| f.get(event_id).cloned())
        {
            return Ok(feed);
        }
        let started = Instant::now();
        let statuses = self
            .store
            .seat_statuses(event_id, self.clock.now_ms())
            .await?;
        Ok(self.feed(event_id, shape, &statuses, started))
    }

    fn feed(
        self: &Arc<Self>,
        event_id: &str,
        shape: &Arc<EventShape>,
        statuses: &[SeatStatus],
        started: Instant,
    ) -> Arc<Feed> {
        let Ok(mut feeds) = self.feeds.lock() else {
            // A poisoned map only happens after a panic elsewhere; serve without a feed.
            return Arc::new(self.new_feed(event_id, shape, statuses, started));
        };
        if let Some(feed) = feeds.get(event_id) {
            return feed.clone();
        }
        let feed = Arc::new(self.new_feed(event_id, shape, statuses, started));
        feeds.insert(event_id.to_string(), feed.clone());
        tokio::spawn(self.clone().poll(feed.clone()));
        feed
    }

    fn new_feed(
        &self,
        event_id: &str,
        shape: &Arc<EventShape>,
        statuses: &[SeatStatus],
        started: Instant,
    ) -> Feed {
        let (updates, _) = broadcast::channel(BUFFER);
        Feed {
            event_id: event_id.to_string(),
            shape: shape.clone(),
            snapshot: Mutex::new(Snapshot {
                version: 1,
                statuses: statuses.to_vec(),
                read_started: started,
                last_used: Instant::now(),
            }),
            updates,
        }
    }

    /// Reads the event while anyone watches; drops the feed once idle.
    async fn poll(self: Arc<Self>, feed: Arc<Feed>) {
        let mut stop = self.stop.clone();
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.started() => return,
            }
            if feed.updates.receiver_count() == 0 {
                let idle = feed
                    .snapshot
                    .lock()
                    .map(|s| s.last_used.elapsed() > IDLE_AFTER)
                    .unwrap_or(true);
                if idle {
                    if let Ok(mut feeds) = self.feeds.lock() {
                        feeds.remove(&feed.event_id);
                    }
                    return;
                }
                continue;
            }
            let started = Instant::now();
            match self
                .store
                .seat_statuses(&feed.event_id, self.clock.now_ms())
                .await
            {
                Ok(statuses) => {
                    feed.observe(statuses, started);
                }
                Err(e) => {
                    tracing::warn!(event = %feed.event_id, error = %e, "seat map poll failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SectionKind;
    use crate::domain::seat_map::{SeatPlace, SectionInfo};

    fn shape() -> Arc<EventShape> {
        let sections = vec![SectionInfo {
            id: "a".into(),
            name: "A".into(),
            kind: SectionKind::Seated,
            price_minor: 1,
            capacity: 3,
        }];
        let seats: Vec<SeatPlace> = (1..=3)
            .map(|i| SeatPlace {
                seat_id: i,
                section_id: "a".into(),
                row_label: "1".into(),
                number: i,
            })
            .collect();
        Arc::new(EventShape::derive(sections, &seats).expect("shape"))
    }

    #[test]
    fn observe_sends_only_changes_and_ignores_older_reads() {
        let (updates, _) = broadcast::channel(8);
        let t0 = Instant::now();
        let feed = Feed {
            event_id: "e".into(),
            shape: shape(),
            snapshot: Mutex::new(Snapshot {
                version: 1,
                statuses: vec![SeatStatus::Available; 3],
                read_started: t0,
                last_used: t0,
            }),
            updates,
        };
        let (v, mut rx) = feed.subscribe();
        assert_eq!(v, 1);
        let t1 = t0 + Duration::from_millis(1);
        let v = feed.observe(
            vec![
                SeatStatus::Available,
                SeatStatus::Sold,
                SeatStatus::Available,
            ],
            t1,
        );
        assert_eq!(v, 2);
        let update = rx.try_recv().expect("an update");
        assert_eq!(update.version, 2);
        assert_eq!(update.changes.len(), 1);
        assert_eq!(update.changes[0].seat_id, 2);
        assert_eq!(update.sections[0].available, 2);
        // Nothing changed: no update, same version.
        assert_eq!(
            feed.observe(
                vec![
                    SeatStatus::Available,
                    SeatStatus::Sold,
                    SeatStatus::Available
                ],
                t1
            ),
            2
        );
        assert!(rx.try_recv().is_err());
        // A read that started before the last applied one is stale.
        assert_eq!(feed.observe(vec![SeatStatus::Sold; 3], t0), 2);
        assert!(rx.try_recv().is_err());
    }
}
