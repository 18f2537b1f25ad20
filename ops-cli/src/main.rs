//! `taquilla-ops`: the operator's command line. It speaks only to the server's `Operator` and
//! public `Sales` RPCs; it never touches a database. Tables for people by default,
//! `--output json` (stable field names) for scripts; every failure is one line on stderr and a
//! non-zero exit code.

/// Prints a line on stdout like `println!`, but a closed stdout (the output piped into
/// `head`, say) loses the line instead of panicking in the middle of a run.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod commands;
mod output;
mod shuffle;
mod tickets;
mod time;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use taquilla_proto::money::Currency;
use taquilla_proto::v1 as pb;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use output::Output;

/// Run a Taquilla sale from the command line: seed or create events, open and tune the sale,
/// watch it live, answer fans, and audit its integrity.
#[derive(Debug, Parser)]
#[command(
    name = "taquilla-ops",
    version,
    after_help = "Examples:\n  taquilla-ops seed lux-tour\n  taquilla-ops sale open lux-mad-2026-03-30 --phase presale --code FANCLUB\n  taquilla-ops admission set lux-mad-2026-03-30 --rate 3000 --max-active 2000\n  taquilla-ops top lux-mad-2026-03-30\n  taquilla-ops audit lux-mad-2026-03-30"
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

    /// Certificate authority (PEM) to trust for an https:// --server; default: the system's.
    #[arg(long, global = true, env = "TAQUILLA_TLS_CA", value_name = "PEM")]
    tls_ca: Option<PathBuf>,

    /// Name to expect in the server's certificate, if not --server's host.
    #[arg(long, global = true, env = "TAQUILLA_TLS_DOMAIN")]
    tls_domain: Option<String>,

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

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a demo sale. Example: taquilla-ops seed lux-tour
    Seed {
        /// Which demo: lux-tour (8 concerts, 142,000 seats).
        demo: String,
    },
    /// Events: create one from a layout file.
    #[command(subcommand)]
    Event(EventCommand),
    /// Whether the server is serving (the standard gRPC health check); exits 1 when it is
    /// not (draining, say). Example: taquilla-ops health
    Health,
    /// List events with capacity, sold, held, available and sale state. Example: taquilla-ops events
    Events,
    /// Open, pause, resume or close a sale.
    #[command(subcommand)]
    Sale(SaleCommand),
    /// Tune the admission valve.
    #[command(subcommand)]
    Admission(AdmissionCommand),
    /// An event's live figures, once. Example: taquilla-ops stats lux-mad-2026-03-30
    Stats { event: String },
    /// Live figures, refreshed until Ctrl-C. Example: taquilla-ops top lux-mad-2026-03-30
    Top {
        event: String,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Stop after this many refreshes (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Send an alert to everyone in an event's queue.
    /// Example: taquilla-ops broadcast lux-mad-2026-03-30 "Doors at 21:00"
    Broadcast {
        event: String,
        message: String,
        #[arg(long, value_enum, default_value_t = Severity::Info)]
        severity: Severity,
    },
    /// Ban a fingerprint or an IP address from every queue.
    /// Example: taquilla-ops ban --ip 203.0.113.9 --reason "scripted joins"
    Ban {
        #[arg(long, conflicts_with = "ip", required_unless_present = "ip")]
        fingerprint: Option<String>,
        #[arg(long)]
        ip: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// An event's orders, newest first. Example: taquilla-ops orders lux-mad-2026-03-30 --state paid
    Orders {
        event: String,
        #[arg(long, value_enum)]
        state: Option<OrderStateArg>,
        /// Most orders to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Refund a paid order. Example: taquilla-ops refund o_0123 --return-seats
    Refund {
        order: String,
        /// Put the seats back on sale (otherwise they stay off sale).
        #[arg(long)]
        return_seats: bool,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Ticket keys, offline verification and door check-in.
    #[command(subcommand)]
    Tickets(tickets::TicketsCommand),
    /// The proof that an event's pre-queue was shuffled fairly: its commitment, its manifest,
    /// and the check anyone can run (no operator token needed).
    #[command(subcommand)]
    Shuffle(shuffle::ShuffleCommand),
    /// Check an event's integrity invariants; exits 1 when any fails.
    /// Example: taquilla-ops audit lux-mad-2026-03-30
    Audit { event: String },
}

#[derive(Debug, Subcommand)]
enum EventCommand {
    /// Create an event from a venue layout file (TOML or JSON, see the README).
    /// Example: taquilla-ops event create --layout ops-cli/layouts/sala-demo.toml --id demo-1 --name "Demo" --artist "Band" --starts-at 2026-12-31T21:00:00Z
    Create {
        #[arg(long)]
        layout: PathBuf,
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        artist: String,
        /// Start time: RFC 3339 with Z or an offset (2026-12-31T21:00:00Z,
        /// 2026-12-31T22:00+01:00), +DURATION from now, or Unix ms.
        #[arg(long, value_parser = time::parse_when)]
        starts_at: i64,
        /// Booking fee per ticket in the currency's major units: 5.50 in EUR, 500 in JPY.
        #[arg(long, default_value = "0")]
        fee: String,
        #[arg(long, default_value_t = 4)]
        max_per_fan: u32,
        /// ISO 4217 currency of the prices and the fee (EUR, USD, JPY, KWD, …).
        #[arg(long, default_value = "EUR", value_parser = Currency::from_code)]
        currency: Currency,
    },
}

#[derive(Debug, Subcommand)]
enum SaleCommand {
    /// Open a sale now or at a time. Example: taquilla-ops sale open EVENT --phase general
    Open {
        event: String,
        #[arg(long, value_enum)]
        phase: Phase,
        /// When: RFC 3339 with Z or an offset, +DURATION from now, or Unix ms (default now).
        #[arg(long, value_parser = time::parse_when)]
        at: Option<i64>,
        /// Presale codes to accept (repeatable).
        #[arg(long = "code")]
        codes: Vec<String>,
    },
    /// Stop admissions, keeping everyone's place. Example: taquilla-ops sale pause EVENT
    Pause { event: String },
    /// Resume a paused sale. Example: taquilla-ops sale resume EVENT
    Resume { event: String },
    /// End the sale and its queue. Example: taquilla-ops sale close EVENT
    Close { event: String },
}

#[derive(Debug, Subcommand)]
enum AdmissionCommand {
    /// Set the admission valve. Examples: taquilla-ops admission set EVENT --rate 3000 --max-active 2000;
    /// taquilla-ops admission set EVENT --auto [--max-active 5000]
    Set {
        event: String,
        /// Fans admitted per minute ("3000" or "3000/min"); with --auto, a cap (default none).
        #[arg(long, value_parser = parse_rate, allow_hyphen_values = true, required_unless_present = "auto")]
        rate: Option<u32>,
        /// Most fans buying at once; with --auto, a cap (default none).
        #[arg(long, value_parser = parse_positive, allow_hyphen_values = true, required_unless_present = "auto")]
        max_active: Option<u32>,
        /// Let the server find how many may buy at once from how the sales path is doing
        /// (calls shed, calls running at once), every second, under --rate and --max-active.
        #[arg(long)]
        auto: bool,
        /// Most admitted at once after a lull (default: a second's worth).
        #[arg(long, default_value_t = 0)]
        burst: u32,
        /// Proof-of-work difficulty for joining, in leading zero bits (0 = off).
        #[arg(long, default_value_t = 0)]
        pow: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Phase {
    Presale,
    General,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OrderStateArg {
    PendingPayment,
    Paid,
    Expired,
    Cancelled,
    Refunded,
}

fn parse_positive(input: &str) -> Result<u32, String> {
    match input.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{input:?} must be a whole number above zero")),
    }
}

fn parse_rate(input: &str) -> Result<u32, String> {
    let number = input.trim().trim_end_matches("/min").trim_end_matches("/m");
    parse_positive(number)
        .map_err(|_| format!("{input:?} must be fans per minute above zero, e.g. 3000 or 3000/min"))
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

/// Adds the bearer token to every call.
#[derive(Clone)]
struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type OperatorClient = pb::operator_client::OperatorClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

/// Turns a status into one line a person understands.
fn explain(status: tonic::Status) -> anyhow::Error {
    match status.code() {
        tonic::Code::Unavailable => {
            anyhow::anyhow!("the server is unavailable: {}", status.message())
        }
        tonic::Code::Unauthenticated => anyhow::anyhow!(
            "the server refused the operator token: {}",
            status.message()
        ),
        _ => anyhow::anyhow!("{}", status.message()),
    }
}

async fn connect(cli: &Cli) -> anyhow::Result<Channel> {
    let server = &cli.server;
    let tls = taquilla_proto::client::ClientTls::from_options(
        cli.tls_ca.as_deref(),
        cli.tls_domain.as_deref(),
    )
    .map_err(|why| anyhow::anyhow!(why))?;
    taquilla_proto::client::endpoint(server, &tls)
        .map_err(|why| anyhow::anyhow!("--server: {why}"))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| {
            // A TLS failure's cause is in the source chain; say it rather than "is it running?".
            let mut cause = std::error::Error::source(&e);
            let mut detail = String::new();
            while let Some(inner) = cause {
                detail = inner.to_string();
                cause = inner.source();
            }
            if detail.is_empty() {
                anyhow::anyhow!("cannot reach the server at {server}: is it running?")
            } else {
                anyhow::anyhow!("cannot reach the server at {server}: {detail}")
            }
        })
}

fn operator(channel: Channel, token: &str) -> anyhow::Result<OperatorClient> {
    let value = format!("Bearer {token}").parse().map_err(|_| {
        anyhow::anyhow!("the operator token contains characters that cannot be sent")
    })?;
    Ok(pb::operator_client::OperatorClient::with_interceptor(
        channel,
        Bearer(value),
    ))
}

/// Runs the command; `Ok(false)` means it ran but found a failure (the audit).
async fn run(cli: Cli) -> anyhow::Result<bool> {
    let out = Output::new(cli.output == Format::Json);
    // Offline: a code checked against a keys file needs neither server nor token.
    if let Command::Tickets(tickets::TicketsCommand::Verify { code, keys }) = &cli.command {
        return tickets::verify(&out, code, keys);
    }
    if let Command::Shuffle(command) = &cli.command {
        let channel = if command.offline() {
            None
        } else {
            Some(connect(&cli).await?)
        };
        let Command::Shuffle(command) = cli.command else {
            return Ok(false);
        };
        return shuffle::run(channel, &out, command).await;
    }
    // Check what can be checked before connecting.
    let token_needed = !matches!(cli.command, Command::Events | Command::Health);
    let token = if token_needed {
        Some(token(&cli)?)
    } else {
        None
    };
    let new_event = match &cli.command {
        Command::Event(command) => Some(commands::new_event(command)?),
        _ => None,
    };
    let channel = connect(&cli).await?;
    let op = || operator(channel.clone(), token.as_deref().unwrap_or_default());
    match cli.command {
        Command::Seed { demo } => commands::seed(op()?, &out, demo).await,
        Command::Event(_) => match new_event {
            Some(request) => commands::create_event(op()?, &out, request).await,
            None => Ok(false),
        },
        Command::Health => commands::health(channel, &out).await,
        Command::Events => commands::events(channel, &out).await,
        Command::Sale(command) => commands::sale(op()?, &out, command).await,
        Command::Admission(command) => commands::admission(op()?, &out, command).await,
        Command::Stats { event } => commands::stats(op()?, &out, event).await,
        Command::Top {
            event,
            interval,
            count,
        } => commands::top(op()?, &out, event, interval, count).await,
        Command::Broadcast {
            event,
            message,
            severity,
        } => commands::broadcast(op()?, &out, event, message, severity).await,
        Command::Ban {
            fingerprint,
            ip,
            reason,
        } => commands::ban(op()?, &out, fingerprint, ip, reason).await,
        Command::Orders {
            event,
            state,
            limit,
        } => commands::orders(op()?, &out, event, state, limit).await,
        Command::Refund {
            order,
            return_seats,
            reason,
        } => commands::refund(op()?, &out, order, return_seats, reason).await,
        Command::Audit { event } => commands::audit(op()?, &out, event).await,
        Command::Tickets(command) => tickets::run(op()?, &out, command).await,
        Command::Shuffle(_) => Ok(false),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        Err(e) => {
            // One line: clap's first line without its "error: " prefix.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            eprintln!(
                "taquilla-ops: {} (see taquilla-ops --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("taquilla-ops: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod readme_tests {
    use super::*;

    include!("../../.ci/readme_commands.rs");

    /// Every `taquilla-ops` line README.md shows parses as written.
    #[test]
    fn the_readmes_commands_parse() {
        assert_each_parses(
            readme_commands(
                &[
                    "$ops",
                    "cargo run -p taquilla-ops --",
                    "cargo run -q -p taquilla-ops --",
                    "taquilla-ops",
                    "target/release/taquilla-ops",
                ],
                "taquilla-ops",
                &[
                    ("$A", "--server http://127.0.0.1:50061"),
                    ("$B", "--server http://127.0.0.1:50062"),
                ],
            ),
            |argv| Cli::try_parse_from(argv).map(drop),
        );
    }
}
