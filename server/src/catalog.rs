//! The in-memory view of events the RPCs read: seat-map shapes (which never change once an
//! event exists) and a short-lived cache of seat counts, so that a crowd refreshing the event
//! list does not turn into a crowd of GROUP BY queries.
//!
//! When a cached event record or the counts grow old, one caller refreshes them while the
//! others are served the previous value: at thousands of joins per second, letting every caller
//! that arrives after the expiry read the database would queue them all behind the sales
//! transactions for a pooled connection (seen as `UNAVAILABLE` joins at 40,000 fans). Changes
//! made on this node invalidate the entry, so they are never served stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::domain::demo::{self, DemoEvent};
use crate::domain::seat_map::EventShape;
use crate::error::{ApiError, ApiResult};
use crate::store::{CountsByEvent, EventRecord, NewEvent, Store, StoreError};
use taquilla_proto::money::Currency;

/// How long seat counts may be served from cache to the RPCs.
const COUNTS_MAX_AGE: Duration = Duration::from_millis(500);
/// How long an event's record (name, sale state, sections, fee) may be served from cache. A
/// change made on this node is seen at once; one made on another node within this time.
const EVENT_MAX_AGE: Duration = Duration::from_secs(1);
/// The refresh key of the seat counts (event ids never contain a space).
const COUNTS_KEY: &str = "all counts";

/// A claim on refreshing one cache key; dropping it lets the next caller refresh.
struct RefreshClaim<'a> {
    catalog: &'a Catalog,
    key: String,
}

impl Drop for RefreshClaim<'_> {
    fn drop(&mut self) {
        if let Ok(mut refreshing) = self.catalog.refreshing.lock() {
            refreshing.remove(&self.key);
        }
    }
}

#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn Store>,
    shapes: RwLock<HashMap<String, Arc<EventShape>>>,
    /// Held while a shape is loaded, so a crowd's first requests load it once.
    loading: tokio::sync::Mutex<()>,
    events: RwLock<HashMap<String, (Instant, Arc<EventRecord>)>>,
    counts: Mutex<Option<CachedCounts>>,
    /// Each event's paid orders and revenue as last read, for operators' figures while the
    /// database is not answering.
    paid: Mutex<HashMap<String, (u64, i64)>>,
    /// Keys being refreshed right now (event ids, and [`COUNTS_KEY`]).
    refreshing: Mutex<std::collections::HashSet<String>>,
    /// Bumped by every invalidation. A read that started before an invalidation is not cached:
    /// otherwise a slow read of the old state could land in the cache after the change.
    generation: std::sync::atomic::AtomicU64,
    /// Bumped by every change to seat counts made on this node ([`Catalog::invalidate_counts`]).
    counts_generation: std::sync::atomic::AtomicU64,
}

/// Seat counts as read, when, and the [`Catalog::counts_generation`] at the start of the read.
#[derive(Debug, Clone)]
struct CachedCounts {
    at: Instant,
    generation: u64,
    counts: Arc<CountsByEvent>,
}

impl Catalog {
    pub fn new(store: Arc<dyn Store>) -> Catalog {
        Catalog {
            store,
            shapes: RwLock::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
            events: RwLock::new(HashMap::new()),
            counts: Mutex::new(None),
            paid: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(std::collections::HashSet::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
            counts_generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Claims the refresh of `key`, unless another caller is refreshing it already. The claim
    /// ends when the returned guard drops (also when the caller's future is cancelled).
    fn claim_refresh(&self, key: &str) -> Option<RefreshClaim<'_>> {
        let mut refreshing = self.refreshing.lock().ok()?;
        refreshing.insert(key.to_string()).then(|| RefreshClaim {
            catalog: self,
            key: key.to_string(),
        })
    }

    /// An event's record: at most [`EVENT_MAX_AGE`] old, or the previous record while one
    /// caller refreshes it.
    pub async fn event(&self, event_id: &str) -> Result<Option<Arc<EventRecord>>, StoreError> {
        let cached = self
            .events
            .read()
            .ok()
            .and_then(|events| events.get(event_id).cloned());
        let _claim = match cached {
            Some((at, event)) if at.elapsed() < EVENT_MAX_AGE => return Ok(Some(event)),
            Some((_, stale)) => match self.claim_refresh(event_id) {
                Some(_claim) => match self.load_event(event_id).await {
                    Ok(fresh) => return Ok(fresh),
                    Err(e) => {
                        tracing::warn!(event_id, error = %e, "event refresh failed; serving the previous record");
                        return Ok(Some(stale));
                    }
                },
                None => return Ok(Some(stale)),
            },
            // Nothing to serve meanwhile: the first load (or the one after an invalidation) is
            // made once, however many callers arrive together.
            None => self.loading.lock().await,
        };
        if let Some((_, event)) = self
            .events
            .read()
            .ok()
            .and_then(|events| events.get(event_id).cloned())
        {
            return Ok(Some(event));
        }
        self.load_event(event_id).await
    }

    async fn load_event(&self, event_id: &str) -> Result<Option<Arc<EventRecord>>, StoreError> {
        let generation = self.generation();
        let Some(event) = self.store.get_event(event_id).await? else {
            if let Ok(mut events) = self.events.write() {
                events.remove(event_id);
            }
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

    /// Effective seat counts of every event by section, as the RPCs show them: at most
    /// [`COUNTS_MAX_AGE`] old and read after every change made on this node, or the previous
    /// counts while one caller refreshes them.
    pub async fn counts(&self, now_ms: i64) -> Result<Arc<CountsByEvent>, StoreError> {
        self.counts_within(now_ms, COUNTS_MAX_AGE, true).await
    }

    /// Seat counts for background figures (metrics, the sold-out check): at most `max_age` old,
    /// changes made on this node notwithstanding. Every completed sale changes the counts, so
    /// following changes would read all of them (a `GROUP BY` over every seat of every event)
    /// on each call while a sale runs; the background needs them every few seconds at most.
    pub async fn recent_counts(
        &self,
        now_ms: i64,
        max_age: Duration,
    ) -> Result<Arc<CountsByEvent>, StoreError> {
        self.counts_within(now_ms, max_age, false).await
    }

    async fn counts_within(
        &self,
        now_ms: i64,
        max_age: Duration,
        follow_changes: bool,
    ) -> Result<Arc<CountsByEvent>, StoreError> {
        let cached = self.counts.lock().ok().and_then(|cached| cached.clone());
        let changed = |c: &CachedCounts| follow_changes && c.generation != self.counts_generation();
        let claim = match cached {
            // Changed here since that read: read now (each caller, as none may see the old counts).
            Some(c) if changed(&c) => None,
            Some(c) if c.at.elapsed() < max_age => return Ok(c.counts),
            Some(c) => match self.claim_refresh(COUNTS_KEY) {
                Some(claim) => Some((claim, c.counts)),
                None => return Ok(c.counts),
            },
            None => None,
        };
        let generation = self.counts_generation();
        let counts = match self.store.inventory_counts(now_ms).await {
            Ok(counts) => Arc::new(counts),
            Err(e) => match claim {
                Some((_, stale)) => {
                    tracing::warn!(error = %e, "seat count refresh failed; serving the previous counts");
                    return Ok(stale);
                }
                None => return Err(e),
            },
        };
        // Kept unless a read that started later is there already.
        if let Ok(mut cached) = self.counts.lock()
            && cached.as_ref().is_none_or(|c| c.generation <= generation)
        {
            *cached = Some(CachedCounts {
                at: Instant::now(),
                generation,
                counts: counts.clone(),
            });
        }
        Ok(counts)
    }

    fn counts_generation(&self) -> u64 {
        self.counts_generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// An event's paid orders and their total; the last figures read if the database does not
    /// answer now (an operator watching an outage still sees the sale).
    pub async fn paid_totals(&self, event_id: &str) -> Result<(u64, i64), StoreError> {
        match self.store.paid_totals(event_id).await {
            Ok(totals) => {
                if let Ok(mut paid) = self.paid.lock() {
                    paid.insert(event_id.to_string(), totals);
                }
                Ok(totals)
            }
            Err(e) => match self.paid.lock().ok().and_then(|p| p.get(event_id).copied()) {
                Some(last) => {
                    tracing::warn!(event_id, error = %e, "paid totals unavailable; serving the last read");
                    Ok(last)
                }
                None => Err(e),
            },
        }
    }

    /// Marks cached counts as changed (after a sale, a sweep that freed seats, events created):
    /// [`Catalog::counts`] reads them again; [`Catalog::recent_counts`] keeps its own pace.
    pub fn invalidate_counts(&self) {
        self.counts_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What seeding a demo did.
#[derive(Debug, Clone, Default)]
pub struct SeedOutcome {
    /// Every event of the demo, created now or before.
    pub event_ids: Vec<String>,
    /// Seats created by this call.
    pub seats_created: u64,
}

impl Catalog {
    /// Creates the events of a demo sale that do not exist yet, as made at `now_ms`.
    pub async fn seed_demo(&self, scenario: &str, now_ms: i64) -> ApiResult<SeedOutcome> {
        let events: Vec<DemoEvent> = match scenario {
            "" | demo::LUX_TOUR => demo::lux_tour(),
            other => {
                return Err(ApiError::InvalidArgument(format!(
                    "there is no demo called {other:?}; the demo available is \"{}\"",
                    demo::LUX_TOUR
                )));
            }
        };
        let mut outcome = SeedOutcome::default();
        for event in events {
            outcome.event_ids.push(event.event_id.clone());
            if self.store.get_event(&event.event_id).await?.is_some() {
                continue;
            }
            let invalid = |e: String| ApiError::Internal(format!("demo event is invalid: {e}"));
            let currency =
                Currency::from_code(&event.currency).map_err(|e| invalid(e.to_string()))?;
            let layout = event.layout.validate(currency).map_err(invalid)?;
            let capacity = layout.capacity();
            let new_event = NewEvent {
                id: event.event_id,
                name: event.name,
                artist: event.artist,
                starts_at_ms: event.starts_at_ms,
                currency: event.currency,
                fee_per_ticket_minor: event.fee_per_ticket_minor,
                max_tickets_per_fan: event.max_tickets_per_fan,
                layout,
                created_at_ms: now_ms,
            };
            match self.store.create_event(&new_event).await {
                Ok(()) => outcome.seats_created += u64::from(capacity),
                // Another node (or call) seeded it at the same moment.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.invalidate_counts();
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SalePhase, SaleState};
    use crate::store::{NewEvent, SaleUpdate, StoreOptions};

    async fn store_with_event(dir: &std::path::Path) -> (Arc<dyn Store>, String) {
        let options = StoreOptions {
            max_connections: 2,
            connect_timeout: Duration::from_secs(5),
            call_timeout: Duration::from_secs(30),
            breaker: Default::default(),
            ca: None,
        };
        let store = crate::store::open(None, dir, &options)
            .await
            .expect("store");
        let id = create_demo_event(&store, 0).await;
        (store, id)
    }

    /// Creates the LUX Tour's `index`th event in `store`; returns its id.
    async fn create_demo_event(store: &Arc<dyn Store>, index: usize) -> String {
        let demo = crate::domain::demo::lux_tour().remove(index);
        let id = demo.event_id.clone();
        let currency = Currency::from_code(&demo.currency).expect("EUR");
        store
            .create_event(&NewEvent {
                id: demo.event_id,
                name: demo.name,
                artist: demo.artist,
                starts_at_ms: demo.starts_at_ms,
                currency: demo.currency,
                fee_per_ticket_minor: demo.fee_per_ticket_minor,
                max_tickets_per_fan: demo.max_tickets_per_fan,
                layout: demo.layout.validate(currency).expect("demo layout"),
                created_at_ms: 0,
            })
            .await
            .expect("event");
        id
    }

    fn age(catalog: &Catalog, event_id: &str) {
        let mut events = catalog.events.write().expect("lock");
        let entry = events.get_mut(event_id).expect("cached");
        entry.0 = Instant::now() - EVENT_MAX_AGE * 2;
    }

    /// A change made by another node: this node's cache is not told.
    async fn open_elsewhere(store: &Arc<dyn Store>, event_id: &str) {
        store
            .update_sale(
                event_id,
                &SaleUpdate {
                    state: SaleState::Open,
                    phase: SalePhase::General,
                    opens_at_ms: 0,
                    shuffle_seed: None,
                    presale_codes: Vec::new(),
                },
            )
            .await
            .expect("update");
    }

    #[tokio::test]
    async fn an_old_record_is_refreshed_by_one_caller_while_the_others_get_the_previous_one() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, id) = store_with_event(dir.path()).await;
        let catalog = Catalog::new(store.clone());
        let first = catalog.event(&id).await.expect("read").expect("event");
        assert_eq!(first.sale_state, SaleState::NotOpen);
        open_elsewhere(&store, &id).await;

        // Fresh: served from the cache, the other node's change is not seen yet.
        let cached = catalog.event(&id).await.expect("read").expect("event");
        assert_eq!(cached.sale_state, SaleState::NotOpen);

        // Old, and someone is refreshing it: the previous record, at once.
        age(&catalog, &id);
        let claim = catalog.claim_refresh(&id).expect("nobody refreshes yet");
        assert!(
            catalog.claim_refresh(&id).is_none(),
            "one refresher at a time"
        );
        let stale = catalog.event(&id).await.expect("read").expect("event");
        assert_eq!(stale.sale_state, SaleState::NotOpen);

        // The claim ends with its holder (also a cancelled one): the next caller refreshes.
        drop(claim);
        let fresh = catalog.event(&id).await.expect("read").expect("event");
        assert_eq!(fresh.sale_state, SaleState::Open);
        assert!(
            catalog.claim_refresh(&id).is_some(),
            "the refresher released its claim"
        );
    }

    #[tokio::test]
    async fn a_cancelled_refresh_releases_its_claim() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, id) = store_with_event(dir.path()).await;
        let catalog = Catalog::new(store.clone());
        catalog.event(&id).await.expect("read");
        age(&catalog, &id);
        // Poll the refresh once, then drop it mid-flight, as tonic does when a caller goes away.
        {
            use std::future::Future as _;
            let mut refresh = std::pin::pin!(catalog.event(&id));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(
                refresh.as_mut().poll(&mut cx).is_pending(),
                "the refresh waits for the database"
            );
            assert!(
                catalog.claim_refresh(&id).is_none(),
                "claimed while in flight"
            );
        }
        assert!(
            catalog.claim_refresh(&id).is_some(),
            "a dropped refresh must not block every later one"
        );
    }

    #[tokio::test]
    async fn changes_made_here_are_never_served_stale() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, id) = store_with_event(dir.path()).await;
        let catalog = Catalog::new(store.clone());
        catalog.event(&id).await.expect("read");
        let claim = catalog.claim_refresh(&id).expect("claim");
        open_elsewhere(&store, &id).await;
        // This node made the change, so it invalidates: no previous record to serve.
        catalog.invalidate_event(&id);
        let seen = catalog.event(&id).await.expect("read").expect("event");
        assert_eq!(seen.sale_state, SaleState::Open);
        drop(claim);
    }

    #[tokio::test]
    async fn background_counts_keep_their_pace_while_rpcs_see_every_change_made_here() {
        let dir = tempfile::tempdir().expect("dir");
        let (store, first) = store_with_event(dir.path()).await;
        let catalog = Catalog::new(store.clone());
        assert_eq!(catalog.counts(0).await.expect("counts").len(), 1);
        // A second event, created on this node.
        let second = create_demo_event(&store, 1).await;
        assert_ne!(second, first);
        catalog.invalidate_counts();
        let background = catalog
            .recent_counts(0, Duration::from_secs(60))
            .await
            .expect("counts");
        assert_eq!(background.len(), 1, "the background keeps its own pace");
        let seen = catalog.counts(0).await.expect("counts");
        assert!(seen.contains_key(&second), "an RPC sees the change at once");
        let background = catalog
            .recent_counts(0, Duration::from_secs(60))
            .await
            .expect("counts");
        assert_eq!(background.len(), 2, "and the background the newest read");
        // Changes made elsewhere are seen once the counts are older than the caller allows.
        assert_eq!(
            catalog
                .recent_counts(0, Duration::ZERO)
                .await
                .expect("counts")
                .len(),
            2
        );
    }
}
