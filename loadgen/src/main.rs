//! `taquilla-loadgen`: replays a high-demand sale against Taquilla servers and measures it.
//! Without a subcommand it runs the sale with a crowd of goose users ([`sale`]); `bench-sales`
//! and `bench-queue` measure the sales path and the waiting room alone.

/// Prints a line on stdout like `println!`, but a closed stdout (the output piped into
/// `head`, say) loses the line instead of panicking in the middle of a run.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod bench;
mod queue_bench;
mod sale;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the load generator shares the machine with the
/// server it measures, and every call allocates (docs/benchmarks-log.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Simulate a sale's crowd against one or more Taquilla servers and measure it.
#[derive(Debug, Parser)]
#[command(
    name = "taquilla-loadgen",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  taquilla-loadgen --token T --scenario small --users 2000 --hatch-rate 500\n  taquilla-loadgen --target http://a:50051,http://b:50051 --events lux-mad-2026-03-30 --users 400000 --hatch-rate 5000 --report-file report.html\n  taquilla-loadgen bench-sales --token T --concurrency 64 --seconds 15"
)]
struct Cli {
    /// Server addresses, comma-separated; load is spread across them.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    target: Vec<String>,
    /// Certificate authority (PEM) to trust for https:// targets; default: the system's.
    #[arg(long, env = "TAQUILLA_TLS_CA", value_name = "PEM", global = true)]
    tls_ca: Option<std::path::PathBuf>,
    /// Name to expect in the servers' certificates, if not the targets' hosts.
    #[arg(long, env = "TAQUILLA_TLS_DOMAIN", global = true)]
    tls_domain: Option<String>,
    /// Operator token (needed by bench-sales, which seeds and buys as an operator).
    #[arg(
        long,
        env = "TAQUILLA_OPERATOR_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    sale: sale::SaleArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure hold → checkout → pay throughput (tickets per second) and latency.
    /// Example: taquilla-loadgen bench-sales --token T --concurrency 64 --seconds 15
    BenchSales(bench::BenchArgs),
    /// Measure the waiting room: joins per second, server memory and CPU per idle watcher, and the time
    /// from admission to the fan's stream delivering it.
    /// Example: taquilla-loadgen bench-queue --token T --watchers 100000 --server-pid 1234
    BenchQueue(queue_bench::QueueArgs),
    /// Combine the results of several shards (`--shard i/n --out DIR`) into one report and one
    /// integrity verdict; exits 1 if it fails.
    /// Example: taquilla-loadgen merge results/1 results/2 results/3
    Merge {
        /// The shards' result directories.
        #[arg(required = true)]
        dirs: Vec<std::path::PathBuf>,
    },
}

async fn connect(
    targets: &[String],
    tls: &taquilla_proto::client::ClientTls,
    per_target: usize,
) -> anyhow::Result<Vec<tonic::transport::Channel>> {
    let mut channels = Vec::new();
    for target in targets {
        for _ in 0..per_target.max(1) {
            let channel = taquilla_proto::client::endpoint(target, tls)
                .map_err(|why| anyhow::anyhow!("--target: {why}"))?
                .tcp_nodelay(true)
                // Thousands of streams share a connection: h2 caps the small DATA frames a
                // connection may hold unread at half its window, so give it a big one.
                .initial_connection_window_size(16 * 1024 * 1024)
                // Fans that stop watching reset their streams; the server's next message for
                // a stream h2 has forgotten counts as a local error, and h2 closes a connection
                // after 1,024 of those in its life, failing every one of the tens of thousands
                // of fans on it at once (run J in docs/benchmarks-log.md). The server is ours:
                // remember resets long enough, and do not count them against the connection.
                .http2_max_concurrent_reset_streams(100_000)
                .http2_max_local_error_reset_streams(None)
                .connect()
                .await
                .map_err(|e| anyhow::anyhow!("cannot reach {target}: {e}"))?;
            channels.push(channel);
        }
    }
    Ok(channels)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let tls = taquilla_proto::client::ClientTls::from_options(
        cli.tls_ca.as_deref(),
        cli.tls_domain.as_deref(),
    )
    .map_err(|why| anyhow::anyhow!(why))?;
    match cli.command {
        Some(Command::BenchSales(args)) => {
            let token = cli
                .token
                .ok_or_else(|| anyhow::anyhow!("bench-sales needs the operator token (--token)"))?;
            let channels = connect(&cli.target, &tls, args.connections).await?;
            bench::run(channels, token, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::BenchQueue(args)) => {
            let token = cli
                .token
                .ok_or_else(|| anyhow::anyhow!("bench-queue needs the operator token (--token)"))?;
            let channels = connect(&cli.target, &tls, args.connections).await?;
            queue_bench::run(channels, token, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Merge { dirs }) => Ok(if sale::merge(&dirs)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        None => {
            let per_target = cli.sale.connections_per_target(cli.target.len());
            let channels = connect(&cli.target, &tls, per_target).await?;
            let passed = sale::run(&cli.target, channels, cli.token, cli.sale).await?;
            Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("taquilla-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    include!("../../.ci/readme_commands.rs");

    /// Every `taquilla-loadgen` line README.md shows parses as written, goose's options after
    /// `--` included.
    #[test]
    fn the_readmes_commands_parse() {
        assert_each_parses(
            readme_commands(
                &["$lg", "taquilla-loadgen", "target/release/taquilla-loadgen"],
                "taquilla-loadgen",
                &[("\"$(cat taquilla-data/operator-token)\"", "T")],
            ),
            |argv| {
                let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
                if cli.command.is_none() {
                    goose::config::GooseConfiguration::parse_args_default(&cli.sale.goose)
                        .map_err(|e| format!("goose options: {e}"))?;
                }
                Ok::<(), String>(())
            },
        );
    }
}
