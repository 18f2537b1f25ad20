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

#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn Store>,
    shapes: RwLock<HashMap<String, Arc<EventShape>>>,
    counts: Mutex<Option<(Instant, Arc<CountsByEvent>)>>,
}

impl Catalog {
    pub fn new(store: Arc<dyn Store>) -> Catalog {
        Catalog {
            store,
            shapes: RwLock::new(HashMap::new()),
            counts: Mutex::new(None),
        }
    }

    /// The seat-map shape of an event, derived from its seats on first use.
    pub async fn shape(&self, event: &EventRecord) -> Result<Arc<EventShape>, StoreError> {
        if let Some(shape) = self
            .shapes
            .read()
            .ok()
            .and_then(|shapes| shapes.get(&event.id).cloned())
        {
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
        let counts = Arc::new(self.store.inventory_counts(now_ms).await?);
        if let Ok(mut cached) = self.counts.lock() {
            *cached = Some((Instant::now(), counts.clone()));
        }
        Ok(counts)
    }

    /// Forgets cached counts (after events are created or seats change hands in bulk).
    pub fn invalidate_counts(&self) {
        if let Ok(mut cached) = self.counts.lock() {
            *cached = None;
        }
    }
}
