//! A run's results on disk, so several processes (shards) can be combined: `--out DIR` writes
//! the stage histograms as an HdrHistogram interval log (`stages.hlog`), their percentiles
//! (`percentiles.csv`), the ledger of tickets bought (`ledger.csv`), the counts and the
//! server's figures (`summary.json`) and the printed report (`report.txt`);
//! `taquilla-loadgen merge DIR...` reads them back into one report and one integrity verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::record::Recorder;

/// What the server said about one event at the end of a run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerCount {
    pub sold: u64,
    pub capacity: u64,
    pub sold_out: bool,
    pub cap_per_fan: u32,
}

/// Everything of a shard's run that is not a histogram or the ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub users: usize,
    pub shard_index: usize,
    pub shard_count: usize,
    pub took_ms: u64,
    pub errors: Vec<super::record::ErrorCount>,
    pub outcomes: BTreeMap<String, u64>,
    pub server: BTreeMap<String, ServerCount>,
    pub evidence: Vec<String>,
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// Writes a run's results into `dir` (created if missing).
pub fn save(
    dir: &Path,
    recorder: &Recorder,
    summary: &Summary,
    report: &str,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let log = recorder
        .histogram_log(Duration::from_millis(summary.took_ms))
        .map_err(|e| anyhow::anyhow!("encoding histograms: {e}"))?;
    write(dir, "stages.hlog", &log)?;
    write(
        dir,
        "percentiles.csv",
        recorder.percentiles_csv().as_bytes(),
    )?;
    write(dir, "ledger.csv", recorder.ledger_csv().as_bytes())?;
    write(dir, "summary.json", &serde_json::to_vec_pretty(summary)?)?;
    write(dir, "report.txt", report.as_bytes())?;
    write(dir, "eta.csv", recorder.eta.samples_csv().as_bytes())?;
    // The timeline is this process's own (a merge of shards has none).
    let rows = recorder.timeline.rows();
    if !rows.is_empty() {
        write(dir, "timeline.csv", super::timeline::csv(&rows).as_bytes())?;
        let title = format!(
            "Taquilla sale over time: {} tickets in {:.0} s",
            recorder.tickets_per_event().values().sum::<u64>(),
            summary.took_ms as f64 / 1_000.0
        );
        write(
            dir,
            "timeline.svg",
            super::timeline::svg(&rows, &title).as_bytes(),
        )?;
    }
    Ok(())
}

fn read(dir: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

/// Reads shard directories into one recorder; returns their summaries.
pub fn load(dirs: &[PathBuf], recorder: &Recorder) -> anyhow::Result<Vec<Summary>> {
    let mut summaries = Vec::new();
    for dir in dirs {
        let summary: Summary = serde_json::from_slice(&read(dir, "summary.json")?)
            .map_err(|e| anyhow::anyhow!("{}/summary.json: {e}", dir.display()))?;
        recorder.absorb_histogram_log(&read(dir, "stages.hlog")?)?;
        recorder.absorb_counts(&summary.errors, &summary.outcomes);
        let ledger = String::from_utf8(read(dir, "ledger.csv")?)
            .map_err(|_| anyhow::anyhow!("{}/ledger.csv is not text", dir.display()))?;
        for (n, line) in ledger.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let bad = || anyhow::anyhow!("{}/ledger.csv line {}: {line:?}", dir.display(), n + 1);
            let [event, seat, fan, order, at_ms] = fields.as_slice() else {
                return Err(bad());
            };
            let seat: u32 = seat.parse().map_err(|_| bad())?;
            let at_ms: u64 = at_ms.parse().map_err(|_| bad())?;
            let cap = summary
                .server
                .get(*event)
                .map(|c| c.cap_per_fan)
                .unwrap_or(u32::MAX);
            recorder.absorb_ticket(event, seat, fan, cap, order, at_ms);
        }
        for evidence in &summary.evidence {
            recorder.add_evidence(format!(
                "shard {}/{}: {evidence}",
                summary.shard_index, summary.shard_count
            ));
        }
        summaries.push(summary);
    }
    Ok(summaries)
}
