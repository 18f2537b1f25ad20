//! The in-memory view of events the RPCs read: seat-map shapes (which never change once an
//! event exists) and a short-lived cache of seat counts, so that a crowd refreshing the event
//! list does not turn into a crowd of GROUP BY queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::domain::seat_map::EventShape;
use crate::store::{CountsByEvent, EventRecord, Store, StoreError};

/// How long seat counts may be served from cache.
const COUNTS_MAX_AGE: Duration = Duration::from_millis(500);
/// How long an event's record (name, sale state, sections, fee) may be served from cache. A
/// change made on this node is seen at once; one made on another node within this time.
const EVENT_MAX_AGE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn Store>,
    shapes: RwLock<HashMap<String, Arc<EventShape>>>,
    /// Held while a shape is loaded, so a crowd's first requests load it once.
    loading: tokio::sync::Mutex<()>,
    events: RwLock<HashMap<String, (Instant, Arc<EventRecord>)>>,
    counts: Mutex<Option<(Instant, Arc<CountsByEvent>)>>,
    /// Bumped by every invalidation. A read that started before an invalidation is not cached:
    /// otherwise a slow read of the old state could land in the cache after the change.
    generation: std::sync::atomic::AtomicU64,
}

impl Catalog {
    pub fn new(store: Arc<dyn Store>) -> Catalog {
        Catalog {
            store,
            shapes: RwLock::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
            events: RwLock::new(HashMap::new()),
            counts: Mutex::new(None),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// An event's record, at most [`EVENT_MAX_AGE`] old.
    pub async fn event(&self, event_id: &str) -> Result<Option<Arc<EventRecord>>, StoreError> {
        if let Some(event) = self.events.read().ok().and_then(|events| {
            events
                .get(event_id)
                .filter(|(at, _)| at.elapsed() < EVENT_MAX_AGE)
                .map(|(_, e)| e.clone())
        }) {
            return Ok(Some(event));
        }
        let generation = self.generation();
        let Some(event) = self.store.get_event(event_id).await? else {
            return Ok(None);
        };
        let event = Arc::new(event);
        if let Ok(mut events) = self.events.write()
            && self.generation() == generation
        {
            events.insert(event_id.to_string(), (Instant::now(), event.clone()));
        }
        Ok(Some(event))
    }

    /// Forgets a cached event record (after this node changed it).
    pub fn invalidate_event(&self, event_id: &str) {
        if let Ok(mut events) = self.events.write() {
            self.bump();
            events.remove(event_id);
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn bump(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn cached_shape(&self, event_id: &str) -> Option<Arc<EventShape>> {
        self.shapes
            .read()
            .ok()
            .and_then(|shapes| shapes.get(event_id).cloned())
    }

    /// The seat-map shape of an event, derived from its seats on first use (once, however many
    /// requests arrive together).
    pub async fn shape(&self, event: &EventRecord) -> Result<Arc<EventShape>, StoreError> {
        if let Some(shape) = self.cached_shape(&event.id) {
            return Ok(shape);
        }
        let _loading = self.loading.lock().await;
        if let Some(shape) = self.cached_shape(&event.id) {
            return Ok(shape);
        }
        let places = self.store.seat_places(&event.id).await?;
        let shape = Arc::new(
            EventShape::derive(event.sections.clone(), &places).map_err(StoreError::Corrupt)?,
        );
        if let Ok(mut shapes) = self.shapes.write() {
            shapes.insert(event.id.clone(), shape.clone());
        }
        Ok(shape)
    }

    /// Effective seat counts of every event by section, at most [`COUNTS_MAX_AGE`] old.
    pub async fn counts(&self, now_ms: i64) -> Result<Arc<CountsByEvent>, StoreError> {
        if let Some(counts) = self.counts.lock().ok().and_then(|cached| {
            cached
                .as_ref()
                .filter(|(at, _)| at.elapsed() < COUNTS_MAX_AGE)
                .map(|(_, counts)| counts.clone())
        }) {
            return Ok(counts);
        }
        let generation = self.generation();
        let counts = Arc::new(self.store.inventory_counts(now_ms).await?);
        if let Ok(mut cached) = self.counts.lock()
            && self.generation() == generation
        {
            *cached = Some((Instant::now(), counts.clone()));
        }
        Ok(counts)
    }

    /// Forgets cached counts (after events are created or seats change hands in bulk).
    pub fn invalidate_counts(&self) {
        if let Ok(mut cached) = self.counts.lock() {
            self.bump();
            *cached = None;
        }
    }
}
