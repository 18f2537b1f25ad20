//! `taquilla-ops shuffle`: the proof that an event's pre-queue was shuffled fairly
//! (`taquilla_proto::fairness`). Its commitment before the sale opens; its manifest, saved to
//! a file, after; and the check anyone can run, against the server or a saved file. These use
//! the public `WaitingRoom` service: no operator token.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};
use taquilla_proto::fairness::{self, Bytes32, ManifestEntry, Proof};
use tonic::transport::Channel;

use crate::explain;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub(crate) enum ShuffleCommand {
    /// The commitment to the shuffle's seed, published before the sale opens (and the seed
    /// once it has). Record it before opening to check against afterwards.
    /// Example: taquilla-ops shuffle commitment lux-mad-2026-03-30
    Commitment { event: String },
    /// Save the proof (commitment, revealed seed and nonce, manifest in join order) to a file,
    /// once the sale has opened.
    /// Example: taquilla-ops shuffle manifest lux-mad-2026-03-30 --out lux-mad.manifest.json
    Manifest {
        event: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Recompute the shuffle from the proof and check it: the seed matches the commitment, the
    /// manifest matches its digest, every place is the seed's. Exits 1 when any does not.
    /// Example: taquilla-ops shuffle verify lux-mad-2026-03-30 --commitment 3f0c…
    Verify {
        event: String,
        /// Check this saved proof (from `shuffle manifest`) instead of asking the server.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// The commitment you recorded before the sale opened; the proof must carry it.
        #[arg(long)]
        commitment: Option<String>,
        /// A fan's queue token: also show that fan's line and place at opening.
        #[arg(long, hide_env_values = true, env = "TAQUILLA_QUEUE_TOKEN")]
        queue_token: Option<String>,
    },
}

impl ShuffleCommand {
    /// Whether the command needs a server (a saved proof is checked offline).
    pub(crate) fn offline(&self) -> bool {
        matches!(
            self,
            ShuffleCommand::Verify {
                manifest: Some(_),
                ..
            }
        )
    }
}

/// Runs a `shuffle` command; `Ok(false)` when a verification failed.
pub(crate) async fn run(
    channel: Option<Channel>,
    out: &Output,
    command: ShuffleCommand,
) -> anyhow::Result<bool> {
    let download = |event: String| {
        let channel = channel.clone();
        async move {
            let channel = channel.ok_or_else(|| anyhow::anyhow!("no server to ask"))?;
            let chunks = fairness::download(channel, &event).await.map_err(explain)?;
            fairness::assemble(chunks).map_err(|why| anyhow::anyhow!("{event}: {why}"))
        }
    };
    match command {
        ShuffleCommand::Commitment { event } => {
            let shown = download(event).await?;
            let h = &shown.header;
            if out.json {
                out.print_json(json!({
                    "event_id": h.event_id,
                    "commitment": h.commitment,
                    "revealed": h.revealed,
                    "seed": h.seed,
                    "nonce": h.nonce,
                    "manifest_digest": h.manifest_digest,
                    "entries": h.entries,
                }));
            } else {
                outln!("commitment: {}", h.commitment);
                if h.revealed {
                    outln!("seed:       {}", h.seed);
                    outln!("nonce:      {}", h.nonce);
                    outln!(
                        "manifest:   {} entries, digest {}",
                        h.entries,
                        h.manifest_digest
                    );
                } else {
                    outln!("The sale has not opened: the seed is revealed at opening.");
                }
            }
            Ok(true)
        }
        ShuffleCommand::Manifest { event, out: path } => {
            let shown = download(event.clone()).await?;
            let proof = shown.proof.ok_or_else(|| {
                anyhow::anyhow!(
                    "the sale of {event} has not opened: its manifest is published at opening \
                     (commitment {})",
                    shown.header.commitment
                )
            })?;
            let text = serde_json::to_string_pretty(&to_json(&event, &proof))?;
            std::fs::write(&path, text + "\n")
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            if out.json {
                out.print_json(json!({
                    "event_id": event,
                    "file": path.display().to_string(),
                    "entries": proof.entries.len(),
                }));
            } else {
                outln!(
                    "Saved the proof of {event}'s shuffle ({} entries) to {}",
                    proof.entries.len(),
                    path.display()
                );
            }
            Ok(true)
        }
        ShuffleCommand::Verify {
            event,
            manifest,
            commitment,
            queue_token,
        } => {
            let proof = match &manifest {
                Some(path) => read(path, &event)?,
                None => {
                    let shown = download(event.clone()).await?;
                    shown.proof.ok_or_else(|| {
                        anyhow::anyhow!(
                            "the sale of {event} has not opened: there is nothing to verify yet \
                             (commitment {})",
                            shown.header.commitment
                        )
                    })?
                }
            };
            verify(
                out,
                &event,
                &proof,
                commitment.as_deref(),
                queue_token.as_deref(),
            )
        }
    }
}

/// Checks a proof and says what it found; `Ok(false)` when it does not hold.
fn verify(
    out: &Output,
    event: &str,
    proof: &Proof,
    recorded: Option<&str>,
    queue_token: Option<&str>,
) -> anyhow::Result<bool> {
    let mut failure = None;
    if let Some(recorded) = recorded {
        let recorded = fairness::bytes32(recorded.trim()).ok_or_else(|| {
            anyhow::anyhow!("--commitment must be 64 hex digits, as `shuffle commitment` shows it")
        })?;
        if recorded != proof.commitment {
            failure = Some(format!(
                "the proof's commitment {} is not the one recorded before opening, {}",
                hex::encode(proof.commitment),
                hex::encode(recorded)
            ));
        }
    }
    let verified = match failure {
        Some(why) => Err(why),
        None => fairness::verify(proof).map_err(|e| e.to_string()),
    };
    let fan = queue_token.map(|token| fairness::find_fan(proof, token));
    if out.json {
        let mut value = json!({
            "event_id": event,
            "verified": verified.is_ok(),
            "entries": proof.entries.len(),
            "commitment": hex::encode(proof.commitment),
        });
        match &verified {
            Ok(v) => value["shuffle_key"] = json!(format!("{:016x}", v.key)),
            Err(why) => value["error"] = json!(why),
        }
        if let Some(fan) = fan {
            value["fan"] = match fan {
                Some((index, position)) => json!({
                    "join_index": index,
                    "position_at_opening": position,
                }),
                None => Value::Null,
            };
        }
        out.print_json(value);
    } else {
        match &verified {
            Ok(v) => outln!(
                "VERIFIED: {event}'s pre-queue of {} fans was shuffled by the committed seed \
                 (commitment {}, shuffle key {:016x}); every place is the one the seed and the \
                 manifest give.",
                v.entries,
                hex::encode(proof.commitment),
                v.key
            ),
            Err(why) => outln!("NOT VERIFIED: {why}"),
        }
        match fan {
            Some(Some((index, position))) => outln!(
                "Your line: joined {} of {}; place {position} in line right after opening.",
                index + 1,
                proof.entries.len()
            ),
            Some(None) => outln!("Your queue token is not in the manifest."),
            None => {}
        }
    }
    Ok(verified.is_ok() && !matches!(fan, Some(None)))
}

/// The proof as saved: hex for the 32-byte values, one object per entry.
fn to_json(event: &str, proof: &Proof) -> Value {
    json!({
        "event_id": event,
        "commitment": hex::encode(proof.commitment),
        "seed": hex::encode(proof.seed),
        "nonce": hex::encode(proof.nonce),
        "manifest_digest": hex::encode(proof.digest),
        "entries": proof.entries.iter().map(|e| json!({
            "entry": hex::encode(e.entry),
            "tier": e.tier,
            "order": e.order,
        })).collect::<Vec<_>>(),
    })
}

/// Reads a proof `shuffle manifest` saved, naming what is wrong with it.
fn read(path: &Path, event: &str) -> anyhow::Result<Proof> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a saved proof: {e}", path.display()))?;
    let bad = |what: &str| anyhow::anyhow!("{}: {what}", path.display());
    if value["event_id"].as_str() != Some(event) {
        return Err(bad(&format!(
            "it is the proof of {}, not of {event}",
            value["event_id"]
        )));
    }
    let hex32 = |field: &str| -> anyhow::Result<Bytes32> {
        value[field]
            .as_str()
            .and_then(fairness::bytes32)
            .ok_or_else(|| bad(&format!("{field} is not 64 hex digits")))
    };
    let entries = value["entries"]
        .as_array()
        .ok_or_else(|| bad("it has no entries list"))?
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Ok(ManifestEntry {
                entry: e["entry"]
                    .as_str()
                    .and_then(fairness::bytes32)
                    .ok_or_else(|| bad(&format!("entry {i} is not 64 hex digits")))?,
                tier: e["tier"]
                    .as_u64()
                    .and_then(|t| u8::try_from(t).ok())
                    .ok_or_else(|| bad(&format!("entry {i}'s tier is not 0, 1 or 2")))?,
                order: e["order"]
                    .as_u64()
                    .and_then(|o| u32::try_from(o).ok())
                    .ok_or_else(|| bad(&format!("entry {i}'s order is not a place")))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Proof {
        commitment: hex32("commitment")?,
        seed: hex32("seed")?,
        nonce: hex32("nonce")?,
        digest: hex32("manifest_digest")?,
        entries,
    })
}
