//! What the RPC handlers share: the rooms, the store, the purchase path and the sales path's
//! guards. `app` builds it; `rpc` reads it.

use std::sync::Arc;

use crate::auth::AdmissionGuard;
use crate::availability::AvailabilityHub;
use crate::catalog::Catalog;
use crate::domain::clock::Clock;
use crate::limits::{AbuseLog, RateLimiter};
use crate::metrics::Metrics;
use crate::payments::simulated::SimulatedProvider;
use crate::purchase::Purchases;
use crate::sale_control::SaleControl;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::tokens::Signer;
use crate::waiting_room::WaitingRoom;

/// Everything the RPC handlers share.
#[derive(Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    /// Live seat maps.
    pub availability: Arc<AvailabilityHub>,
    /// The waiting room.
    pub waiting_room: Arc<WaitingRoom>,
    /// Holds, checkout, payment and the sweeper.
    pub purchases: Arc<Purchases>,
    /// Opens, pauses, closes and ends sales.
    pub sale_control: Arc<SaleControl>,
    pub clock: Arc<dyn Clock>,
    pub signer: Signer,
    pub metrics: Arc<Metrics>,
    /// The simulated provider behind the purchases' provider when it runs in this process, for
    /// tests and fault injection (none with --payment-provider-url).
    pub simulated_provider: Option<Arc<SimulatedProvider>>,
    /// Who may call the protected sales RPCs.
    pub guard: Arc<dyn AdmissionGuard>,
    /// The bound on sales calls in progress at once (load shedding).
    pub sales_shed: crate::shed::Shedder,
    /// Rate limits of the sales calls, per address and per fan.
    pub sales_limiter: RateLimiter,
    /// Failed holds per fan, to flag abuse.
    pub abuse: AbuseLog,
    /// Streams end when it starts.
    pub shutdown: Shutdown,
}
