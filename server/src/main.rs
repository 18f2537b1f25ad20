//! `taquilla-server`: parses flags, sets up logging, builds the server and runs it until SIGINT
//! or SIGTERM. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use taquilla_server::app::App;
use taquilla_server::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: the join path allocates small buffers for every
/// request and reply, and glibc's malloc took a sixth of the server's time there
/// (docs/benchmarks-log.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let app = App::build(&config).await?;
    if let Some(demo) = &config.seed {
        let started = std::time::Instant::now();
        let outcome = app
            .state()
            .catalog
            .seed_demo(demo, app.state().clock.now_ms())
            .await
            .map_err(|e| anyhow::anyhow!("--seed {demo}: {e}"))?;
        tracing::info!(
            demo = %demo,
            events = outcome.event_ids.len(),
            seats_created = outcome.seats_created,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "demo seeded"
        );
        for event in app.state().store.list_events().await? {
            tracing::info!(
                event = %event.id,
                venue = %event.venue.name,
                seats = event.capacity,
                "on sale"
            );
        }
    }
    let grpc = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} for gRPC: {e}", config.listen))?;
    let admin = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} for the admin endpoint: {e}",
                config.admin_listen
            )
        })?;
    // Every SIGINT or SIGTERM: the first starts the drain, a second ends its delay early.
    let signals = futures_util::stream::unfold((), |()| async {
        shutdown_signal().await;
        Some(((), ()))
    });
    app.serve_until(grpc, admin, signals).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taquilla-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
