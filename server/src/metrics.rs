//! Prometheus metrics and the admin HTTP endpoint (`/metrics`, `/healthz`).
//!
//! RPC metrics come from a tower layer around the gRPC router: a request counter by method and
//! gRPC status and a latency histogram by method. Method labels are limited to the methods in
//! the served descriptor sets, so unknown paths cannot grow the label space.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tonic::codegen::http;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyLabels {
    dependency: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FastPathLabels {
    step: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeatLabels {
    event: String,
    status: &'static str,
}

/// One event's figures, as the sweeper reads them each second.
#[derive(Debug, Clone, Default)]
pub struct EventFigures {
    pub prequeue: u64,
    pub waiting: u64,
    pub active: u64,
    pub admitted_total: u64,
    pub watchers: u64,
    /// The automatic valve's limit, when the valve is automatic.
    pub auto_limit: Option<u64>,
    pub available: u64,
    pub soft_locked: u64,
    pub hard_locked: u64,
    pub sold: u64,
}

/// Moves a counter that mirrors a running total kept elsewhere (a breaker's, the store's, a
/// queue's) up to `total`, so it is exported as a counter (`_total`) that `rate()` reads. A
/// total below the counter means its source started over (a sale opened again): the series is
/// made anew from zero, which Prometheus reads as a counter reset.
fn mirror<L>(family: &Family<L, Counter>, labels: &L, total: u64)
where
    L: Clone + std::hash::Hash + Eq,
{
    {
        let counter = family.get_or_create(labels);
        let current = counter.get();
        if total >= current {
            counter.inc_by(total - current);
            return;
        }
    }
    family.remove(labels);
    family.get_or_create(labels).inc_by(total);
}

/// The server's metrics registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_seconds: Family<MethodLabels, Histogram>,
    known_methods: HashSet<String>,
    queue_prequeue: Family<EventLabels, Gauge>,
    queue_waiting: Family<EventLabels, Gauge>,
    queue_active: Family<EventLabels, Gauge>,
    queue_admitted: Family<EventLabels, Counter>,
    queue_watchers: Family<EventLabels, Gauge>,
    queue_auto_limit: Family<EventLabels, Gauge>,
    seats: Family<SeatLabels, Gauge>,
    breaker_state: Family<DependencyLabels, Gauge>,
    breaker_opened: Family<DependencyLabels, Counter>,
    breaker_refused: Family<DependencyLabels, Counter>,
    store_fast_path: Family<FastPathLabels, Counter>,
    store_batches: Family<StepLabels, Counter>,
    store_batched: Family<StepLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~13 s.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

impl Metrics {
    /// A registry whose RPC labels are limited to `known_methods` (paths like
    /// `/taquilla.v1.Sales/HoldSeats`).
    pub fn new(known_methods: HashSet<String>) -> Metrics {
        let mut registry = Registry::with_prefix("taquilla");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        let rpc_seconds = Family::<MethodLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "rpc_requests",
            "gRPC requests by method and status code",
            rpc_requests.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "Time to the response headers of gRPC requests, by method",
            rpc_seconds.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<EventLabels, Gauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let queue_prequeue = gauge(
            &mut registry,
            "queue_prequeue",
            "Fans in the pre-queue, by event",
        );
        let queue_waiting = gauge(
            &mut registry,
            "queue_waiting",
            "Fans waiting in line, by event",
        );
        let queue_active = gauge(
            &mut registry,
            "queue_active",
            "Admitted fans buying now, by event",
        );
        let queue_admitted = Family::<EventLabels, Counter>::default();
        registry.register(
            "queue_admitted",
            "Fans admitted since the sale opened, by event (a sale opened again starts over)",
            queue_admitted.clone(),
        );
        let queue_watchers = gauge(
            &mut registry,
            "queue_watchers",
            "Open Watch streams, by event",
        );
        let queue_auto_limit = gauge(
            &mut registry,
            "queue_auto_limit",
            "The automatic valve's limit of fans buying at once, by event (0: the valve is manual)",
        );
        let seats = Family::<SeatLabels, Gauge>::default();
        registry.register(
            "seats",
            "Seats by event and effective status",
            seats.clone(),
        );
        let breaker_state = Family::<DependencyLabels, Gauge>::default();
        registry.register(
            "breaker_state",
            "Circuit breaker state by dependency: 0 closed, 1 open, 2 half-open",
            breaker_state.clone(),
        );
        let breaker_opened = Family::<DependencyLabels, Counter>::default();
        registry.register(
            "breaker_opened",
            "Times the circuit breaker has opened since the node started, by dependency",
            breaker_opened.clone(),
        );
        let breaker_refused = Family::<DependencyLabels, Counter>::default();
        registry.register(
            "breaker_refused",
            "Calls refused by an open circuit breaker since the node started, by dependency",
            breaker_refused.clone(),
        );
        let store_fast_path = Family::<FastPathLabels, Counter>::default();
        registry.register(
            "store_fast_path",
            "Sales-path writes done in one database round trip, or declined to the general \
             transaction, since the node started, by step (PostgreSQL)",
            store_fast_path.clone(),
        );
        let store_batches = Family::<StepLabels, Counter>::default();
        registry.register(
            "store_batches",
            "Batches of sales-path writes sent to the database since the node started, by step \
             (PostgreSQL)",
            store_batches.clone(),
        );
        let store_batched = Family::<StepLabels, Counter>::default();
        registry.register(
            "store_batched",
            "Writes those batches carried, by step (divided by store_batches_total: the average batch)",
            store_batched.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            rpc_requests,
            rpc_seconds,
            known_methods,
            queue_prequeue,
            queue_waiting,
            queue_active,
            queue_admitted,
            queue_watchers,
            queue_auto_limit,
            seats,
            breaker_state,
            breaker_opened,
            breaker_refused,
            store_fast_path,
            store_batches,
            store_batched,
        }
    }

    /// Publishes how the store's one-round-trip writes fared.
    pub fn set_fast_path(&self, counts: &crate::store::FastPathCounts) {
        for step in crate::store::FastStep::ALL {
            let (done, declined) = counts.get(step);
            for (outcome, n) in [("done", done), ("declined", declined)] {
                let labels = FastPathLabels {
                    step: step.name(),
                    outcome,
                };
                mirror(&self.store_fast_path, &labels, n);
            }
        }
    }

    /// Publishes how many batches of each batched step the store sent, and the writes they
    /// carried (holds, for now: the only step sent in batches).
    pub fn set_batches(&self, counts: &crate::store::FastPathCounts) {
        let step = crate::store::FastStep::Hold;
        let (batches, writes) = counts.batches(step);
        let labels = StepLabels { step: step.name() };
        mirror(&self.store_batches, &labels, batches);
        mirror(&self.store_batched, &labels, writes);
    }

    /// Publishes a circuit breaker's state.
    pub fn set_breaker(&self, breaker: &crate::breaker::Snapshot) {
        let labels = DependencyLabels {
            dependency: breaker.name,
        };
        self.breaker_state
            .get_or_create(&labels)
            .set(breaker.state.gauge());
        mirror(&self.breaker_opened, &labels, breaker.times_opened);
        mirror(&self.breaker_refused, &labels, breaker.refused);
    }

    /// Registers another metric (gauges of the waiting room, breaker states, …).
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.register(name, help, metric);
        }
    }

    /// Publishes one event's figures.
    pub fn set_event(&self, event: &str, f: &EventFigures) {
        let labels = EventLabels {
            event: event.to_string(),
        };
        let set = |family: &Family<EventLabels, Gauge>, value: u64| {
            family.get_or_create(&labels).set(value as i64);
        };
        set(&self.queue_prequeue, f.prequeue);
        set(&self.queue_waiting, f.waiting);
        set(&self.queue_active, f.active);
        mirror(&self.queue_admitted, &labels, f.admitted_total);
        set(&self.queue_watchers, f.watchers);
        set(&self.queue_auto_limit, f.auto_limit.unwrap_or(0));
        for (status, value) in [
            ("available", f.available),
            ("soft_locked", f.soft_locked),
            ("hard_locked", f.hard_locked),
            ("sold", f.sold),
        ] {
            self.seats
                .get_or_create(&SeatLabels {
                    event: event.to_string(),
                    status,
                })
                .set(value as i64);
        }
    }

    fn method_label(&self, path: &str) -> String {
        if self.known_methods.contains(path) {
            path.to_string()
        } else {
            "other".to_string()
        }
    }

    fn observe(&self, method: String, code: &'static str, seconds: f64) {
        self.rpc_seconds
            .get_or_create(&MethodLabels {
                method: method.clone(),
            })
            .observe(seconds);
        self.rpc_requests
            .get_or_create(&RpcLabels { method, code })
            .inc();
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}

/// The name of a gRPC status code number as sent in `grpc-status`.
fn code_name(value: &str) -> &'static str {
    match value {
        "0" => "OK",
        "1" => "CANCELLED",
        "2" => "UNKNOWN",
        "3" => "INVALID_ARGUMENT",
        "4" => "DEADLINE_EXCEEDED",
        "5" => "NOT_FOUND",
        "6" => "ALREADY_EXISTS",
        "7" => "PERMISSION_DENIED",
        "8" => "RESOURCE_EXHAUSTED",
        "9" => "FAILED_PRECONDITION",
        "10" => "ABORTED",
        "11" => "OUT_OF_RANGE",
        "12" => "UNIMPLEMENTED",
        "13" => "INTERNAL",
        "14" => "UNAVAILABLE",
        "15" => "DATA_LOSS",
        "16" => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// Tower layer recording RPC metrics.
#[derive(Clone, Debug)]
pub struct RpcMetricsLayer {
    metrics: Arc<Metrics>,
}

impl RpcMetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        RpcMetricsLayer { metrics }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// See [`RpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct RpcMetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RpcMetricsService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = self.metrics.method_label(request.uri().path());
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            // Errors answered before any message carry grpc-status in the headers
            // (trailers-only); otherwise the status comes in trailers and was OK so far.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map(code_name)
                    .unwrap_or("OK"),
                Err(_) => "TRANSPORT_ERROR",
            };
            metrics.observe(method, code, started.elapsed().as_secs_f64());
            result
        })
    }
}

/// Serves `/metrics` and `/healthz` until `shutdown` completes; `/healthz` answers 503
/// "draining" once `draining` is set (the node is about to stop accepting).
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    draining: Arc<std::sync::atomic::AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let router = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let draining = draining.load(std::sync::atomic::Ordering::Relaxed);
                async move {
                    if draining {
                        (http::StatusCode::SERVICE_UNAVAILABLE, "draining\n")
                    } else {
                        (http::StatusCode::OK, "ok\n")
                    }
                }
            }),
        );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        let metrics = Metrics::new(["/taquilla.v1.Sales/ListEvents".to_string()].into());
        assert_eq!(
            metrics.method_label("/taquilla.v1.Sales/ListEvents"),
            "/taquilla.v1.Sales/ListEvents"
        );
        assert_eq!(metrics.method_label("/x.Y/Z"), "other");
        metrics.observe("other".into(), "OK", 0.01);
        let text = metrics.encode();
        assert!(
            text.contains("taquilla_rpc_requests_total{method=\"other\",code=\"OK\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("taquilla_rpc_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[test]
    fn running_totals_are_counters_named_total() {
        let metrics = Metrics::new(HashSet::new());
        let breaker = |times_opened, refused| crate::breaker::Snapshot {
            name: "payments",
            state: crate::breaker::State::Open,
            consecutive_failures: 0,
            times_opened,
            refused,
        };
        metrics.set_breaker(&breaker(2, 40));
        metrics.set_breaker(&breaker(3, 45));
        let figures = |admitted_total| EventFigures {
            admitted_total,
            ..EventFigures::default()
        };
        metrics.set_event("e1", &figures(500));
        let store = crate::store::FastPathCounts::default();
        store.count_batch(crate::store::FastStep::Hold, 40);
        store.count_batch(crate::store::FastStep::Hold, 24);
        metrics.set_fast_path(&store);
        metrics.set_batches(&store);
        let text = metrics.encode();
        for (kind, line) in [
            (
                "# TYPE taquilla_breaker_opened counter",
                "taquilla_breaker_opened_total{dependency=\"payments\"} 3",
            ),
            (
                "# TYPE taquilla_breaker_refused counter",
                "taquilla_breaker_refused_total{dependency=\"payments\"} 45",
            ),
            (
                "# TYPE taquilla_queue_admitted counter",
                "taquilla_queue_admitted_total{event=\"e1\"} 500",
            ),
            (
                "# TYPE taquilla_store_fast_path counter",
                "taquilla_store_fast_path_total{step=\"hold\",outcome=\"done\"} 0",
            ),
            (
                "# TYPE taquilla_store_batches counter",
                "taquilla_store_batches_total{step=\"hold\"} 2",
            ),
            (
                "# TYPE taquilla_store_batched counter",
                "taquilla_store_batched_total{step=\"hold\"} 64",
            ),
            (
                "# TYPE taquilla_breaker_state gauge",
                "taquilla_breaker_state{dependency=\"payments\"} 1",
            ),
        ] {
            assert!(text.contains(kind), "{kind} in {text}");
            assert!(text.contains(line), "{line} in {text}");
        }
        // A sale opened again counts from zero: the series starts over (a counter reset).
        metrics.set_event("e1", &figures(7));
        let text = metrics.encode();
        assert!(
            text.contains("taquilla_queue_admitted_total{event=\"e1\"} 7"),
            "{text}"
        );
    }

    #[test]
    fn status_codes_have_names() {
        assert_eq!(code_name("0"), "OK");
        assert_eq!(code_name("8"), "RESOURCE_EXHAUSTED");
        assert_eq!(code_name("99"), "UNKNOWN");
    }
}
