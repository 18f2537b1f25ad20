//! `taquilla-fan`: parses flags, sets up the terminal (restored on exit and on panic) and runs
//! the app. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use taquilla_fan::app::{App, Options};
use taquilla_fan::{event, net};

/// Join a Taquilla waiting room and buy tickets from the terminal.
#[derive(Debug, Parser)]
#[command(
    name = "taquilla-fan",
    version,
    after_help = "Examples:\n  taquilla-fan\n  taquilla-fan --server http://127.0.0.1:50051 --event lux-mad-2026-03-30\n  taquilla-fan --event lux-mad-2026-03-30 --presale-code LUX-EARLY\n\nKeys are shown at the bottom of every screen; ? shows them all, q quits."
)]
struct Cli {
    /// The server's gRPC address.
    #[arg(
        long,
        env = "TAQUILLA_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// Certificate authority (PEM) to trust for an https:// --server; default: the system's.
    #[arg(long, env = "TAQUILLA_TLS_CA", value_name = "PEM")]
    tls_ca: Option<std::path::PathBuf>,
    /// Name to expect in the server's certificate, if not --server's host.
    #[arg(long, env = "TAQUILLA_TLS_DOMAIN")]
    tls_domain: Option<String>,
    /// Event to join straight away (skips the event list).
    #[arg(long, env = "TAQUILLA_EVENT")]
    event: Option<String>,
    /// Device fingerprint: one place in line per fingerprint (default: derived from this user
    /// and machine, so restarting the app keeps the same place).
    #[arg(long, env = "TAQUILLA_FINGERPRINT")]
    fingerprint: Option<String>,
    /// Presale code, for the presale queue.
    #[arg(long, env = "TAQUILLA_PRESALE_CODE", default_value = "")]
    presale_code: String,
}

/// A stable fingerprint for this user on this machine.
fn default_fingerprint() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default();
    let host = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let digest = taquilla_proto::signed::sha256_hex(&format!("{user}@{}", host.trim()));
    format!("tui-{}", &digest[..24])
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let tls = taquilla_proto::client::ClientTls::from_options(
        cli.tls_ca.as_deref(),
        cli.tls_domain.as_deref(),
    );
    let channel = match tls.and_then(|tls| net::channel(&cli.server, &tls)) {
        Ok(channel) => channel,
        Err(why) => {
            eprintln!("taquilla-fan: {why}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        event_id: cli.event,
        fingerprint: cli.fingerprint.unwrap_or_else(default_fingerprint),
        presale_code: cli.presale_code,
        session: uuid::Uuid::new_v4().simple().to_string(),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let network = net::Network::new(channel, tx.clone());
    let app = App::new(options, net::now_ms());
    // Raw mode and the alternate screen, with a panic hook that restores the terminal.
    let mut terminal = match ratatui::try_init() {
        Ok(terminal) => terminal,
        Err(e) => {
            ratatui::restore();
            eprintln!("taquilla-fan: needs an interactive terminal ({e})");
            return ExitCode::from(2);
        }
    };
    event::spawn_terminal_reader(tx.clone());
    event::spawn_ticker(tx);
    let result = event::run(&mut terminal, app, network, rx).await;
    ratatui::restore();
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("taquilla-fan: the terminal failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    include!("../../.ci/readme_commands.rs");

    /// Every `taquilla-fan` command README.md shows parses as written (the bracketed synopsis
    /// apart).
    #[test]
    fn the_readmes_commands_parse() {
        assert_each_parses(
            readme_commands(
                &[
                    "cargo run -p taquilla-fan --",
                    "target/release/taquilla-fan",
                ],
                "taquilla-fan",
                &[],
            ),
            |argv| Cli::try_parse_from(argv).map(drop),
        );
    }
}
