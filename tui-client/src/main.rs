//! `taquilla-fan`: the fan's terminal app. This first version lists the events on sale; the
//! interactive queue, seat map and checkout screens build on it.

use std::process::ExitCode;

use clap::Parser;
use taquilla_proto::v1 as pb;

/// Join a Taquilla queue and buy tickets from the terminal.
#[derive(Debug, Parser)]
#[command(
    name = "taquilla-fan",
    version,
    after_help = "Example:\n  taquilla-fan --server http://127.0.0.1:50051"
)]
struct Cli {
    /// The server's gRPC address.
    #[arg(
        long,
        env = "TAQUILLA_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// Event to join (skips the event list).
    #[arg(long)]
    event: Option<String>,
    /// Device fingerprint (default: one derived from this machine and user).
    #[arg(long)]
    fingerprint: Option<String>,
    /// Presale code, if you have one.
    #[arg(long)]
    presale_code: Option<String>,
}

fn euros(money: Option<&pb::Money>) -> String {
    money
        .map(|m| {
            format!(
                "{}.{:02} {}",
                m.amount_minor / 100,
                m.amount_minor % 100,
                m.currency
            )
        })
        .unwrap_or_default()
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut client = pb::sales_client::SalesClient::connect(cli.server.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the server at {}: {e}", cli.server))?;
    let events = client
        .list_events(pb::ListEventsRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("{}", s.message()))?
        .into_inner()
        .events;
    for e in events
        .iter()
        .filter(|e| cli.event.as_ref().is_none_or(|id| &e.id == id))
    {
        let venue = e.venue.clone().unwrap_or_default();
        let inventory = e.inventory.unwrap_or_default();
        println!(
            "{}  {} at {}, {}  from {} to {}  ({} of {} available)",
            e.id,
            e.name,
            venue.name,
            venue.city,
            euros(e.min_price.as_ref()),
            euros(e.max_price.as_ref()),
            inventory.available,
            inventory.capacity
        );
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taquilla-fan: {e:#}");
            ExitCode::FAILURE
        }
    }
}
