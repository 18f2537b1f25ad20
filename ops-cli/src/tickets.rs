//! `taquilla-ops tickets`: the ticket keys (list, export for door scanners, rotate, retire), a
//! code checked offline with a keys file, and the door's check-in.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;
use taquilla_proto::display::{seat_place, utc_time, utc_time_seconds};
use taquilla_proto::tickets::PublicKeys;
use taquilla_proto::v1 as pb;

use crate::output::{Output, table};
use crate::{OperatorClient, explain};

#[derive(Debug, Subcommand)]
pub(crate) enum TicketsCommand {
    /// The keys ticket codes are signed with (list them without a subcommand).
    /// Example: taquilla-ops tickets keys export --out ticket-keys.json
    Keys {
        #[command(subcommand)]
        command: Option<KeysCommand>,
    },
    /// Check a code offline with a public keys file (no server, no token): exits 1 when the
    /// code must be refused. Example: taquilla-ops tickets verify tq2.k1.… --keys ticket-keys.json
    Verify {
        code: String,
        /// The file `tickets keys export` wrote.
        #[arg(long)]
        keys: PathBuf,
    },
    /// Admit a ticket at the door, once; a second scan is refused with when and where the first
    /// was. Example: taquilla-ops tickets check-in tq2.k1.… --gate north-3
    CheckIn {
        code: String,
        /// Where it is scanned (shown to whoever scans it again).
        #[arg(long)]
        gate: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Write every key's public half and state to a file for door scanners.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign new tickets with a new key; codes signed before keep verifying.
    Rotate,
    /// Refuse every code a key rotated out signed (a scanner or key lost, say).
    Retire { kid: String },
}

/// Checks a code against a keys file, offline; `Ok(false)` when it must be refused.
pub(crate) fn verify(out: &Output, code: &str, keys: &Path) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(keys)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", keys.display()))?;
    let keys =
        PublicKeys::from_json(&text).map_err(|why| anyhow::anyhow!("{}: {why}", keys.display()))?;
    match keys.verify(code) {
        Ok((claims, key)) => {
            if out.json {
                out.print_json(json!({
                    "valid": true,
                    "kid": key.kid,
                    "event_id": claims.ev,
                    "seat_id": claims.seat,
                    "order_id": claims.ord,
                    "ticket_id": claims.tk,
                    "issued_at_unix_ms": claims.iat,
                }));
            } else {
                outln!(
                    "VALID: ticket {} for {}, seat {}, order {}, issued {} (key {})",
                    claims.tk,
                    claims.ev,
                    claims.seat,
                    claims.ord,
                    utc_time(claims.iat),
                    key.kid
                );
                outln!("(this checks the code; whether it was already used is known at check-in)");
            }
            Ok(true)
        }
        Err(why) => {
            if out.json {
                out.print_json(json!({ "valid": false, "reason": why.to_string() }));
            } else {
                outln!("REFUSE: {why}");
            }
            Ok(false)
        }
    }
}

/// Runs a command that needs the server.
pub(crate) async fn run(
    mut op: OperatorClient,
    out: &Output,
    command: TicketsCommand,
) -> anyhow::Result<bool> {
    match command {
        TicketsCommand::Verify { code, keys } => verify(out, &code, &keys),
        TicketsCommand::Keys { command } => {
            let keys = match command {
                None => op.list_ticket_keys(pb::ListTicketKeysRequest {}).await,
                Some(KeysCommand::Rotate) => {
                    op.rotate_ticket_key(pb::RotateTicketKeyRequest {}).await
                }
                Some(KeysCommand::Retire { kid }) => {
                    op.retire_ticket_key(pb::RetireTicketKeyRequest { kid })
                        .await
                }
                Some(KeysCommand::Export { out: path }) => {
                    let keys = op
                        .list_ticket_keys(pb::ListTicketKeysRequest {})
                        .await
                        .map_err(explain)?
                        .into_inner();
                    export(out, &keys, &path)?;
                    return Ok(true);
                }
            }
            .map_err(explain)?
            .into_inner();
            show_keys(out, &keys);
            Ok(true)
        }
        TicketsCommand::CheckIn { code, gate } => {
            let admitted = op
                .check_in(pb::CheckInRequest {
                    code: code.trim().to_string(),
                    gate,
                })
                .await;
            match admitted {
                Ok(response) => {
                    show_admitted(out, &response.into_inner());
                    Ok(true)
                }
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::AlreadyExists
                            | tonic::Code::FailedPrecondition
                            | tonic::Code::InvalidArgument
                            | tonic::Code::NotFound
                    ) =>
                {
                    if out.json {
                        out.print_json(json!({
                            "admitted": false,
                            "reason": status.message(),
                            "first_scan_at_unix_ms": status
                                .metadata()
                                .get(taquilla_proto::FIRST_SCAN_AT_HEADER)
                                .and_then(|v| v.to_str().ok()?.parse::<i64>().ok()),
                            "first_scan_gate": status
                                .metadata()
                                .get(taquilla_proto::FIRST_SCAN_GATE_HEADER)
                                .and_then(|v| v.to_str().ok()),
                        }));
                    } else {
                        outln!("REFUSE: {}", status.message());
                    }
                    Ok(false)
                }
                Err(status) => Err(explain(status)),
            }
        }
    }
}

fn export(out: &Output, keys: &pb::TicketKeys, path: &Path) -> anyhow::Result<()> {
    let file = PublicKeys::new(
        keys.keys
            .iter()
            .map(|k| {
                Ok(taquilla_proto::tickets::PublicKey {
                    kid: k.kid.clone(),
                    public_key: k.public_key.clone(),
                    state: taquilla_proto::tickets::KeyState::from_name(&k.state).ok_or_else(
                        || anyhow::anyhow!("the server sent key {} in state {:?}", k.kid, k.state),
                    )?,
                    created_at_ms: k.created_at_unix_ms,
                    retired_at_ms: (k.retired_at_unix_ms > 0).then_some(k.retired_at_unix_ms),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    std::fs::write(path, file.to_json() + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    if out.json {
        out.print_json(json!({ "written": path.display().to_string(), "keys": file.keys.len() }));
    } else {
        outln!(
            "wrote {} public keys to {} (active: {}); give this file to door scanners",
            file.keys.len(),
            path.display(),
            keys.active_kid
        );
    }
    Ok(())
}

fn show_keys(out: &Output, keys: &pb::TicketKeys) {
    if out.json {
        return out.print_json(json!({
            "active_kid": keys.active_kid,
            "keys": keys.keys.iter().map(|k| json!({
                "kid": k.kid,
                "state": k.state,
                "public_key": k.public_key,
                "created_at_unix_ms": k.created_at_unix_ms,
                "retired_at_unix_ms": (k.retired_at_unix_ms > 0).then_some(k.retired_at_unix_ms),
            })).collect::<Vec<_>>(),
        }));
    }
    let rows: Vec<Vec<String>> = keys
        .keys
        .iter()
        .map(|k| {
            vec![
                k.kid.clone(),
                k.state.clone(),
                utc_time(k.created_at_unix_ms),
                utc_time(k.retired_at_unix_ms),
                k.public_key.clone(),
            ]
        })
        .collect();
    table(
        &["KEY", "STATE", "CREATED", "RETIRED", "PUBLIC KEY"],
        &rows,
        &[],
    );
}

fn show_admitted(out: &Output, admitted: &pb::CheckInResponse) {
    let place = seat_place(admitted.seat.as_ref());
    if out.json {
        return out.print_json(json!({
            "admitted": true,
            "ticket_id": admitted.ticket_id,
            "event_id": admitted.event_id,
            "order_id": admitted.order_id,
            "seat": place,
            "checked_in_at_unix_ms": admitted.checked_in_at_unix_ms,
            "gate": admitted.gate,
        }));
    }
    outln!(
        "ADMIT: ticket {} for {}: {} (checked in {} at {})",
        admitted.ticket_id,
        admitted.event_id,
        place,
        utc_time_seconds(admitted.checked_in_at_unix_ms),
        admitted.gate
    );
}
