//! `taquilla-ops`: the operator's command line. It speaks only to the server's `Operator` and
//! public `Sales` RPCs; it never touches a database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use taquilla_proto::v1 as pb;
use tonic::Request;
use tonic::metadata::MetadataValue;

/// Run a Taquilla sale: seed events, list them, and (as the server grows) open sales, tune the
/// admission valve, watch live figures and audit integrity.
#[derive(Debug, Parser)]
#[command(
    name = "taquilla-ops",
    version,
    after_help = "Example:\n  taquilla-ops seed lux-tour\n  taquilla-ops events"
)]
struct Cli {
    /// The server's gRPC address.
    #[arg(
        long,
        global = true,
        env = "TAQUILLA_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,

    /// Operator token. Empty: read from <data-dir>/operator-token, where a local embedded server
    /// writes it.
    #[arg(
        long,
        global = true,
        env = "TAQUILLA_OPERATOR_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    /// The local server's data directory (to find its operator token).
    #[arg(
        long,
        global = true,
        env = "TAQUILLA_DATA_DIR",
        default_value = "taquilla-data"
    )]
    data_dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a demo sale. Example: taquilla-ops seed lux-tour
    Seed {
        /// Which demo: lux-tour (8 concerts, 142,000 seats).
        demo: String,
    },
    /// List events with capacity and availability. Example: taquilla-ops events
    Events,
}

fn token(cli: &Cli) -> anyhow::Result<String> {
    if let Some(token) = &cli.token {
        return Ok(token.clone());
    }
    let path = cli.data_dir.join("operator-token");
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_string())
        .map_err(|_| {
            anyhow::anyhow!(
                "no operator token: pass --token or TAQUILLA_OPERATOR_TOKEN (a local server writes one to {})",
                path.display()
            )
        })
}

fn authorized<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().map_err(|_| {
        anyhow::anyhow!("the operator token contains characters that cannot be sent")
    })?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_events(events: &[pb::Event]) {
    println!(
        "{:<22} {:<18} {:<10} {:>9} {:>9} {:>8} {:>8}",
        "EVENT", "VENUE", "CITY", "CAPACITY", "AVAILABLE", "HELD", "SOLD"
    );
    for e in events {
        let inv = e.inventory.unwrap_or_default();
        let venue = e.venue.clone().unwrap_or_default();
        println!(
            "{:<22} {:<18} {:<10} {:>9} {:>9} {:>8} {:>8}",
            e.id,
            venue.name,
            venue.city,
            group_thousands(u64::from(inv.capacity)),
            group_thousands(u64::from(inv.available)),
            group_thousands(u64::from(inv.soft_locked + inv.hard_locked)),
            group_thousands(u64::from(inv.sold)),
        );
    }
}

fn explain(status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::Unavailable => {
            anyhow::anyhow!("the server is unreachable: {}", status.message())
        }
        _ => anyhow::anyhow!("{}", status.message()),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(cli.server.clone())
        .map_err(|_| anyhow::anyhow!("--server {:?} is not a valid URL", cli.server))?
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the server at {}: {e}", cli.server))?;
    match &cli.command {
        Command::Seed { demo } => {
            let token = token(&cli)?;
            let mut client = pb::operator_client::OperatorClient::new(channel);
            let response = client
                .seed_demo(authorized(
                    pb::SeedDemoRequest {
                        scenario: demo.clone(),
                    },
                    &token,
                )?)
                .await
                .map_err(explain)?
                .into_inner();
            println!(
                "seeded {}: {} events, {} seats created in {} ms",
                demo,
                response.events.len(),
                group_thousands(response.seats_created),
                group_thousands(response.elapsed_ms)
            );
            print_events(&response.events);
        }
        Command::Events => {
            let mut client = pb::sales_client::SalesClient::new(channel);
            let response = client
                .list_events(pb::ListEventsRequest {})
                .await
                .map_err(explain)?
                .into_inner();
            print_events(&response.events);
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taquilla-ops: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::group_thousands;

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1_000), "1,000");
        assert_eq!(group_thousands(142_000), "142,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }
}
