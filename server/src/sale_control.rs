//! The one owner of a sale's state: opening it (now or at a time), pausing, closing and ending
//! it sold out. Operators' calls and the sweeper's sold-out check all change it here.
//!
//! A change goes to the waiting room first, then to the store, then to the catalog's cache:
//!
//! 1. The waiting room acts on it (on Redis, for every node at once): opening now shuffles the
//!    pre-queue by the seed committed to when the event was made, and reveals it; pausing, closing or selling out stops admissions and ends
//!    or tells the streams. If it refuses (Redis down), nothing has changed and the call fails.
//! 2. The store records it (the state every node reads at start and every restart finds),
//!    with the seed when the sale opened now. If this fails, the room already acts on the
//!    change and the call fails; the same change may be retried, since both steps are
//!    idempotent for a given state, and a node that restarts before the retry follows the
//!    store (which still holds the earlier state) until it is made.
//! 3. The catalog forgets its copy of the event, so the next read sees the change.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::domain::{SalePhase, SaleState};
use crate::error::ApiResult;
use crate::store::{EventRecord, SaleUpdate, Store};
use crate::waiting_room::WaitingRoom;

/// A sale's state after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleChange {
    pub state: SaleState,
    pub phase: SalePhase,
    /// When the sale opens (or opened).
    pub opens_at_ms: i64,
    pub presale_codes: Vec<String>,
}

impl SaleChange {
    /// `event`'s sale as it is, moved to `state`.
    pub fn to_state(event: &EventRecord, state: SaleState) -> SaleChange {
        SaleChange {
            state,
            phase: event.sale_phase,
            opens_at_ms: event.sale_opens_at_ms,
            presale_codes: event.presale_codes.clone(),
        }
    }
}

/// Changes sales' states, in the one order above.
#[derive(Debug)]
pub struct SaleControl {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    waiting_room: Arc<WaitingRoom>,
}

impl SaleControl {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        waiting_room: Arc<WaitingRoom>,
    ) -> SaleControl {
        SaleControl {
            store,
            catalog,
            waiting_room,
        }
    }

    /// Moves `event`'s sale to `change`; returns the pre-queue's shuffle seed (hex) when this
    /// change opened the sale now.
    pub async fn apply(
        &self,
        event: &EventRecord,
        change: SaleChange,
    ) -> ApiResult<Option<String>> {
        let seed = self
            .waiting_room
            .set_sale(
                event,
                change.state,
                change.phase,
                change.opens_at_ms,
                &change.presale_codes,
            )
            .await?;
        self.store
            .update_sale(
                &event.id,
                &SaleUpdate {
                    state: change.state,
                    phase: change.phase,
                    opens_at_ms: change.opens_at_ms,
                    shuffle_seed: seed.clone(),
                    presale_codes: change.presale_codes,
                },
            )
            .await?;
        self.catalog.invalidate_event(&event.id);
        Ok(seed)
    }
}
