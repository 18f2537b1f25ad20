//! `taquilla-loadgen`: replays a high-demand sale against Taquilla servers with simulated fans
//! and measures it. This first version defines its command line; the fan scenarios, goose
//! integration and HDR measurements build on it.

use std::process::ExitCode;

use clap::Parser;

/// Simulate a sale's crowd (up to 400,000 fans) against one or more Taquilla servers and report
/// latency percentiles, time to sell out and an integrity verdict.
#[derive(Debug, Parser)]
#[command(
    name = "taquilla-loadgen",
    version,
    after_help = "Example:\n  taquilla-loadgen --target http://127.0.0.1:50051 --users 2000 --hatch-rate 500"
)]
struct Cli {
    /// Server addresses, comma-separated; fans are spread across them.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:50051")]
    target: Vec<String>,
    /// Number of simulated fans.
    #[arg(long, default_value_t = 2_000)]
    users: u64,
    /// Fans started per second.
    #[arg(long, default_value_t = 500)]
    hatch_rate: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    eprintln!(
        "taquilla-loadgen: the fan scenarios are not available in this version; nothing was sent to {}",
        cli.target.join(", ")
    );
    ExitCode::from(2)
}
