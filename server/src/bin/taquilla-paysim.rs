//! `taquilla-paysim`: the simulated payment provider as a process of its own, which every server
//! node of a sale pays through (`taquilla-server --payment-provider-url`), with commands to take
//! it down and bring it back (fault drills) and to read what it charged.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use taquilla_proto::client::ClientTls;
use taquilla_proto::sim;
use taquilla_server::config::{parse_duration, parse_rate};
use taquilla_server::payments::simulated::{SimulatedConfig, SimulatedProvider};
use taquilla_server::payments::simulator_service::SimulatorService;
use tracing_subscriber::EnvFilter;

/// The simulated payment provider, served over gRPC for several Taquilla server nodes.
#[derive(Debug, Parser)]
#[command(name = "taquilla-paysim", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the simulated provider until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50090")]
        listen: SocketAddr,
        /// Least time a call takes.
        #[arg(long, default_value = "2ms", value_parser = parse_duration)]
        latency: Duration,
        /// Mean extra time per call (exponential tail).
        #[arg(long, default_value = "3ms", value_parser = parse_duration)]
        latency_tail: Duration,
        /// Share of cards declined (0–1; the test cards are fixed).
        #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
        decline_rate: f64,
        /// Share of calls whose answer is lost after processing (0–1).
        #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
        timeout_rate: f64,
        /// Log filter (tracing's EnvFilter syntax).
        #[arg(long, default_value = "info")]
        log: String,
    },
    /// Take the provider down (`on`: every call fails unprocessed) or bring it back (`off`).
    Outage {
        #[arg(value_parser = ["on", "off"])]
        switch: String,
        /// The simulator's address.
        #[arg(long, default_value = "http://127.0.0.1:50090")]
        target: String,
    },
    /// Print what the provider has seen and charged, as JSON.
    Stats {
        /// The simulator's address.
        #[arg(long, default_value = "http://127.0.0.1:50090")]
        target: String,
    },
}

const EXAMPLES: &str = "Examples:
  taquilla-paysim serve --listen 127.0.0.1:50090
  taquilla-server --payment-provider-url http://127.0.0.1:50090 --database-url … --redis-url …
  taquilla-paysim outage on; sleep 60; taquilla-paysim outage off
  taquilla-paysim stats";

async fn client(
    target: &str,
) -> anyhow::Result<sim::payment_simulator_client::PaymentSimulatorClient<tonic::transport::Channel>>
{
    let channel = taquilla_proto::client::endpoint(target, &ClientTls::default())
        .map_err(|e| anyhow::anyhow!(e))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the payment simulator at {target}: {e}"))?;
    Ok(sim::payment_simulator_client::PaymentSimulatorClient::new(
        channel,
    ))
}

fn print(stats: &sim::SimulatorStats) {
    println!(
        "{}",
        serde_json::json!({
            "outage": stats.outage,
            "timeout_rate": stats.timeout_rate,
            "calls": stats.calls,
            "charges": stats.charges,
            "intents": {
                "requires_capture": stats.requires_capture,
                "succeeded": stats.succeeded,
                "canceled": stats.canceled,
                "declined": stats.declined,
                "refunded": stats.refunded,
            },
        })
    );
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            latency,
            latency_tail,
            decline_rate,
            timeout_rate,
            log,
        } => {
            let filter = EnvFilter::try_new(&log).unwrap_or_else(|_| EnvFilter::new("info"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            let provider = Arc::new(SimulatedProvider::new(SimulatedConfig {
                latency_min: latency,
                latency_mean_extra: latency_tail,
                decline_rate,
                timeout_rate,
                seed: rand::random(),
            }));
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
            tracing::info!(%listen, "payment simulator serving");
            SimulatorService::new(provider)
                .serve(listener, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
        }
        Command::Outage { switch, target } => {
            let stats = client(&target)
                .await?
                .configure(sim::ConfigureRequest {
                    outage: Some(switch == "on"),
                    timeout_rate: None,
                })
                .await
                .map_err(|s| anyhow::anyhow!("{}", s.message()))?
                .into_inner();
            print(&stats);
        }
        Command::Stats { target } => {
            let stats = client(&target)
                .await?
                .get_stats(sim::GetStatsRequest {})
                .await
                .map_err(|s| anyhow::anyhow!("{}", s.message()))?
                .into_inner();
            print(&stats);
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taquilla-paysim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    include!("../../../.ci/readme_commands.rs");

    /// Every `taquilla-paysim` line README.md shows parses as written.
    #[test]
    fn the_readmes_commands_parse() {
        assert_each_parses(
            readme_commands(
                &["target/release/taquilla-paysim", "taquilla-paysim"],
                "taquilla-paysim",
                &[],
            ),
            |argv| Cli::try_parse_from(argv).map(drop),
        );
    }
}
