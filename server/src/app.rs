//! Builds the server from its configuration and runs it until shutdown.
//!
//! [`App::build`] opens the store (running migrations), connects Redis when configured and
//! loads or creates the secrets; [`App::serve`] serves gRPC and the admin endpoint until the
//! shutdown future completes, then drains: health turns NOT_SERVING (for --drain-delay while
//! the node still serves, so load balancers see it), listeners close, in-flight calls get
//! [`DRAIN_TIMEOUT`] to finish.

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prost::Message;
use taquilla_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;

use crate::auth::{OperatorAuth, PassGuard};
use crate::availability::AvailabilityHub;
use crate::catalog::Catalog;
use crate::config::{Config, Secret};
use crate::domain::SaleState;
use crate::domain::clock::{Clock, SystemClock};
use crate::limits::{AbuseLog, Rate, RateLimiter};
use crate::metrics::{Metrics, RpcMetricsLayer};
use crate::payments::PaymentProvider;
use crate::payments::guarded::GuardedProvider;
use crate::payments::remote::RemoteProvider;
use crate::payments::simulated::{SimulatedConfig, SimulatedProvider};
use crate::purchase::Purchases;
use crate::redis_link::Redis;
use crate::rpc::operator::OperatorService;
use crate::rpc::sales::SalesService;
use crate::rpc::waiting_room::WaitingRoomService;
use crate::sale_control::SaleControl;
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::state::AppState;
use crate::store::{self, StoreOptions};
use crate::tokens::{Signer, TicketKeys};
use crate::waiting_room::{JoinRateLimits, RoomTimings, WaitingRoom};
use taquilla_proto::client::ClientTls;

/// How long in-flight calls may take to finish after shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The names the gRPC health service answers for: the whole server ("") and each service.
const HEALTH_NAMES: [&str; 4] = [
    "",
    <pb::waiting_room_server::WaitingRoomServer<WaitingRoomService> as tonic::server::NamedService>::NAME,
    <pb::sales_server::SalesServer<SalesService> as tonic::server::NamedService>::NAME,
    <pb::operator_server::OperatorServer<OperatorService> as tonic::server::NamedService>::NAME,
];

/// Largest gRPC message the server decodes (requests are small; layouts are the largest).
const MAX_DECODE_BYTES: usize = 4 * 1024 * 1024;

/// A built server, ready to serve.
#[derive(Debug)]
pub struct App {
    state: Arc<AppState>,
    operator_auth: OperatorAuth,
    /// Flipped to `true` when shutdown starts; background tasks and streams watch it.
    stop: ShutdownTrigger,
    /// The certificate and key of the gRPC port, when it serves TLS.
    tls: Option<tonic::transport::Identity>,
    /// How long health reports NOT_SERVING before the node stops accepting (--drain-delay).
    drain_delay: Duration,
}

/// Reads the gRPC port's certificate chain and key (PEM), when both are given.
fn load_tls(config: &Config) -> anyhow::Result<Option<tonic::transport::Identity>> {
    let read = |flag: &str, path: &Path| {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {flag} {}: {e}", path.display()))?;
        if !pem.starts_with(b"-----BEGIN") {
            anyhow::bail!(
                "{flag} {} is not a PEM file (it should start with -----BEGIN)",
                path.display()
            );
        }
        Ok(pem)
    };
    match (&config.tls_cert, &config.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            taquilla_proto::client::use_ring_crypto();
            Ok(Some(tonic::transport::Identity::from_pem(
                read("--tls-cert", cert)?,
                read("--tls-key", key)?,
            )))
        }
        _ => anyhow::bail!("TLS needs both --tls-cert and --tls-key"),
    }
}

/// Reads a secret from `path`, or creates it there (readable only by this user) with `fresh`.
fn load_or_create_secret(path: &Path, fresh: impl FnOnce() -> String) -> anyhow::Result<Secret> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read_to_string(path) {
        Ok(existing) if !existing.trim().is_empty() => return Ok(Secret::new(existing.trim())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let value = fresh();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(value.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Secret::new(value))
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Every RPC path the server serves, from the descriptor sets it also serves for reflection.
fn known_methods() -> HashSet<String> {
    let mut methods = HashSet::new();
    for encoded in [
        taquilla_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let service_name = service.name.unwrap_or_default();
                for method in service.method {
                    methods.insert(format!(
                        "/{package}.{service_name}/{}",
                        method.name.unwrap_or_default()
                    ));
                }
            }
        }
    }
    methods
}

impl App {
    /// Builds the server with the system clock.
    pub async fn build(config: &Config) -> anyhow::Result<App> {
        App::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Builds the server with a given clock (tests move time by hand).
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        // TLS to PostgreSQL, Redis or gRPC clients: rustls with ring, whatever else is linked.
        taquilla_proto::client::use_ring_crypto();
        let options = StoreOptions {
            max_connections: config.db_max_connections,
            connect_timeout: config.connect_timeout,
            call_timeout: config.db_call_timeout,
            breaker: config.breaker(),
            ca: config.database_ca.clone(),
        };
        let tls = load_tls(config)?;
        let store = store::open(config.database_url.as_deref(), &config.data_dir, &options).await?;
        let redis = match &config.redis_url {
            Some(url) => Some(
                Redis::connect(
                    url,
                    config.redis_cluster,
                    config.redis_ca.as_deref(),
                    config.connect_timeout,
                )
                .await?,
            ),
            None => None,
        };
        let signing_key = match &config.signing_key {
            Some(key) => key.clone(),
            None => load_or_create_secret(&config.data_dir.join("signing-key"), || random_hex(32))?,
        };
        let signer = Signer::new(signing_key.expose().as_bytes())
            .map_err(|e| anyhow::anyhow!("--signing-key: {e}"))?;
        let operator_token = match &config.operator_token {
            Some(token) => token.clone(),
            None => {
                let path = config.data_dir.join("operator-token");
                let token = load_or_create_secret(&path, || random_hex(24))?;
                tracing::info!(path = %path.display(), "operator token is in this file");
                token
            }
        };
        let metrics = Arc::new(Metrics::new(known_methods()));
        let sales_shed = crate::shed::Shedder::new(
            "sales",
            match config.max_inflight_sales {
                0 => {
                    crate::config::INFLIGHT_SALES_PER_CONNECTION
                        * config.db_max_connections.max(1) as usize
                }
                n => n as usize,
            },
        );
        sales_shed.register(&metrics);
        let (provider, simulated): (Arc<dyn PaymentProvider>, _) =
            match &config.payment_provider_url {
                Some(url) => {
                    let endpoint = taquilla_proto::client::endpoint(url, &ClientTls::default())
                        .map_err(|e| anyhow::anyhow!("--payment-provider-url: {e}"))?
                        .connect_timeout(config.connect_timeout)
                        .tcp_nodelay(true);
                    let remote =
                        RemoteProvider::new(endpoint.connect_lazy(), config.payment_call_timeout);
                    (Arc::new(remote), None)
                }
                None => {
                    let simulated = Arc::new(SimulatedProvider::new(SimulatedConfig {
                        latency_min: config.payment_latency,
                        latency_mean_extra: config.payment_latency_tail,
                        decline_rate: config.payment_decline_rate,
                        timeout_rate: config.payment_timeout_rate,
                        seed: rand::random(),
                    }));
                    (simulated.clone(), Some(simulated))
                }
            };
        let operator_auth = OperatorAuth::new(&operator_token, signer.clone());
        let (stop, shutdown) = crate::shutdown::channel();
        let timings = RoomTimings {
            pass_ttl: config.pass_ttl,
            no_show: config.no_show,
            grace: config.grace,
        };
        let limits = JoinRateLimits {
            per_ip: config.join_rate_per_ip,
            per_fingerprint: config.join_rate_per_fingerprint,
        };
        let mut waiting_room = match &redis {
            Some(redis) => WaitingRoom::with_redis(
                clock.clone(),
                signer.clone(),
                timings,
                limits,
                redis.clone(),
                &config.redis_namespace,
            ),
            None => WaitingRoom::new(clock.clone(), signer.clone(), timings, limits),
        };
        let sales_rates = (
            Rate::per_minute(config.sales_rate_per_ip),
            Rate::per_minute(config.sales_rate_per_fan),
        );
        let mut abuse = AbuseLog::new(config.flag_failed_holds);
        let sales_limiter = match (&redis, config.shared_rate_limits) {
            (Some(redis), true) => {
                waiting_room.share_join_limits(redis.link(), &config.redis_namespace);
                abuse.share(redis.link(), &config.redis_namespace);
                RateLimiter::shared(
                    "sales",
                    sales_rates.0,
                    sales_rates.1,
                    redis.link(),
                    &config.redis_namespace,
                )
            }
            (None, true) => anyhow::bail!(
                "--shared-rate-limits keeps the limits in Redis: give --redis-url too"
            ),
            (_, false) => RateLimiter::local("sales", sales_rates.0, sales_rates.1),
        };
        waiting_room.register(&metrics);
        let waiting_room = Arc::new(waiting_room);
        waiting_room.load_bans(
            &store
                .list_bans()
                .await
                .map_err(|e| anyhow::anyhow!("cannot read the bans: {e}"))?,
        );
        let catalog = Arc::new(Catalog::new(store.clone()));
        let sale_control = Arc::new(SaleControl::new(
            store.clone(),
            catalog.clone(),
            waiting_room.clone(),
        ));
        let tickets = TicketKeys::new(signing_key);
        tickets
            .refresh(store.as_ref(), clock.now_ms())
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the ticket keys: {e}"))?;
        let purchases = Arc::new(Purchases {
            store: store.clone(),
            catalog: catalog.clone(),
            waiting_room: waiting_room.clone(),
            clock: clock.clone(),
            provider: Arc::new(GuardedProvider::new(
                provider,
                config.payment_rate,
                config.payment_max_wait,
                config.breaker(),
            )),
            metrics: metrics.clone(),
            hold_ttl: config.hold_ttl,
            payment_ttl: config.payment_ttl,
            reconcile_after: config.reconcile_after,
            sweep_interval: config.sweep_interval,
            tickets,
            sale_control: sale_control.clone(),
        });
        let state = Arc::new(AppState {
            waiting_room: waiting_room.clone(),
            catalog,
            availability: Arc::new(AvailabilityHub::new(
                store.clone(),
                clock.clone(),
                shutdown.clone(),
            )),
            purchases,
            sale_control,
            store,
            clock,
            signer: signer.clone(),
            metrics,
            simulated_provider: simulated,
            guard: Arc::new(PassGuard::new(operator_auth.clone(), signer, waiting_room)),
            sales_shed,
            sales_limiter,
            abuse,
            shutdown,
        });
        Ok(App {
            state,
            operator_auth,
            stop,
            tls,
            drain_delay: config.drain_delay,
        })
    }

    /// State shared by the handlers.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves gRPC on `grpc` and the admin endpoint on `admin` until `shutdown` completes, then
    /// drains.
    pub async fn serve(
        self,
        grpc: TcpListener,
        admin: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.serve_until(grpc, admin, futures_util::stream::once(shutdown))
            .await
    }

    /// Serves until the first of `signals` (or their end), then drains: health reports
    /// NOT_SERVING for the drain delay while calls and connections are still served, then
    /// the node stops accepting, tells its watchers to reconnect elsewhere and gives calls in
    /// flight [`DRAIN_TIMEOUT`]. A second signal ends the drain delay early.
    pub async fn serve_until(
        self,
        grpc: TcpListener,
        admin: TcpListener,
        signals: impl futures_util::Stream<Item = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut signals = std::pin::pin!(signals);
        let state = self.state.clone();
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in HEALTH_NAMES {
            health
                .set_service_status(name, tonic_health::ServingStatus::Serving)
                .await;
        }

        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(taquilla_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let waiting_room =
            pb::waiting_room_server::WaitingRoomServer::new(WaitingRoomService::new(state.clone()))
                .max_decoding_message_size(MAX_DECODE_BYTES);
        let sales = pb::sales_server::SalesServer::new(SalesService::new(state.clone()))
            .max_decoding_message_size(MAX_DECODE_BYTES);
        let operator = InterceptedService::new(
            pb::operator_server::OperatorServer::new(OperatorService::new(state.clone()))
                .max_decoding_message_size(MAX_DECODE_BYTES),
            self.operator_auth.clone(),
        );

        let stop = self.stop;
        let stopped = |mut shutdown: Shutdown| async move { shutdown.started().await };

        let grpc_addr = grpc.local_addr()?;
        let admin_addr = admin.local_addr()?;
        let mut builder = tonic::transport::Server::builder();
        if let Some(identity) = self.tls {
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .context("the TLS certificate or key is not usable")?;
        }
        let router = builder
            .tcp_nodelay(true)
            // Liveness is per connection, not per stream: a PING every 30 s on each HTTP/2
            // connection, unanswered within 20 s closes it (and its streams). Queue streams
            // carry no heartbeat messages (waiting_room::watchers).
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .layer(RpcMetricsLayer::new(state.metrics.clone()))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(waiting_room)
            .add_service(sales)
            .add_service(operator);
        // Connections are accepted here, not by tonic, so tonic's own TCP_NODELAY setting does
        // not reach them: set it on each, or small responses wait ~40 ms for delayed ACKs.
        let incoming = TcpListenerStream::new(grpc).map(|accepted| {
            accepted.inspect(|stream| {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "could not set TCP_NODELAY");
                }
            })
        });
        let mut grpc_task =
            tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped(stop.subscribe())));
        let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut admin_task = tokio::spawn(crate::metrics::serve_admin(
            admin,
            state.metrics.clone(),
            draining.clone(),
            stopped(stop.subscribe()),
        ));
        let sweeper = tokio::spawn(crate::purchase::run_sweeper(
            state.purchases.clone(),
            stop.subscribe(),
        ));
        let valves = tokio::spawn(tune_valves(state.clone(), stop.subscribe()));
        let pump = tokio::spawn(state.waiting_room.clone().run(stop.subscribe()));
        if state.waiting_room.backend() == "redis" {
            // Follow every live sale's queue from the start, so this node's bans reach all of
            // them and its pump helps admit (any node may run the step).
            let state = state.clone();
            tokio::spawn(async move {
                match state.store.list_events().await {
                    Ok(events) => {
                        for event in events.iter().filter(|e| {
                            matches!(
                                e.sale_state,
                                SaleState::NotOpen | SaleState::Open | SaleState::Paused
                            )
                        }) {
                            if let Err(e) = state.waiting_room.serve_event(event).await {
                                tracing::warn!(event = %event.id, error = %e, "cannot follow the queue yet");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list the events to follow"),
                }
            });
        }
        tracing::info!(
            grpc = %grpc_addr,
            admin = %admin_addr,
            backend = %state.store.backend(),
            waiting_room = state.waiting_room.backend(),
            "taquilla-server is serving"
        );

        tokio::select! {
            _ = signals.next() => {}
            result = &mut grpc_task => {
                result.context("the gRPC server task failed")??;
                anyhow::bail!("the gRPC server stopped unexpectedly");
            }
            result = &mut admin_task => {
                result.context("the admin server task failed")??;
                anyhow::bail!("the admin server stopped unexpectedly");
            }
        }

        for name in HEALTH_NAMES {
            health
                .set_service_status(name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        draining.store(true, std::sync::atomic::Ordering::Relaxed);
        if !self.drain_delay.is_zero() {
            tracing::info!(
                delay = ?self.drain_delay,
                "draining: health reports NOT_SERVING while the node still serves; a second signal stops it now"
            );
            tokio::select! {
                () = tokio::time::sleep(self.drain_delay) => {}
                Some(()) = signals.next() => tracing::info!("second signal: ending the drain delay"),
            }
        }
        tracing::info!("shutting down: draining in-flight calls");
        stop.start();
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut grpc_task).await {
            Ok(result) => result.context("the gRPC server task failed")??,
            Err(_) => {
                tracing::warn!(
                    "in-flight calls did not finish within {DRAIN_TIMEOUT:?}; stopping anyway"
                );
                grpc_task.abort();
            }
        }
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut admin_task).await {
            Ok(result) => result.context("the admin server task failed")??,
            Err(_) => admin_task.abort(),
        }
        if tokio::time::timeout(DRAIN_TIMEOUT, sweeper).await.is_err() {
            tracing::warn!("the sweeper did not stop in time");
        }
        if tokio::time::timeout(DRAIN_TIMEOUT, pump).await.is_err() {
            tracing::warn!("the admission pump did not stop in time");
        }
        if tokio::time::timeout(DRAIN_TIMEOUT, valves).await.is_err() {
            tracing::warn!("the automatic valves did not stop in time");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Once a second, hands the sales path's last second (calls shed, finished, time busy) to
/// the waiting room's automatic valves, until `stop`.
async fn tune_valves(state: Arc<AppState>, mut stop: Shutdown) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = state.sales_shed.totals();
    let mut last_at = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.started() => return,
        }
        let now = state.sales_shed.totals();
        let feedback = crate::domain::valve::SalesFeedback {
            shed: now.shed - last.shed,
            done: now.done - last.done,
            busy_ms: (now.busy_us - last.busy_us) as f64 / 1_000.0,
            period_ms: last_at.elapsed().as_secs_f64() * 1_000.0,
            bound: u32::try_from(state.sales_shed.limit()).unwrap_or(u32::MAX),
        };
        (last, last_at) = (now, std::time::Instant::now());
        state.waiting_room.tune_valves(&feedback).await;
    }
}
