//! `taquilla-loadgen bench-queue`: the waiting room under a crowd of idle watchers. Joins N
//! fans, opens N `Watch` streams over a pool of HTTP/2 connections, measures the server's
//! memory per idle watcher and its CPU per update sent to idle watchers (from /proc when the
//! server runs on this machine), then opens the valve and measures the time from each admission
//! (the pass's signed issue time) to the fan's stream delivering it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use taquilla_proto::v1 as pb;
use tokio::sync::Mutex;
use tokio_stream::StreamExt;
use tonic::Request;
use tonic::transport::Channel;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct QueueArgs {
    /// Fans who join and watch.
    #[arg(long, default_value_t = 10_000)]
    pub watchers: u64,
    /// HTTP/2 connections the streams are spread over.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Admissions per minute while measuring notification latency.
    #[arg(long, default_value_t = 60_000)]
    pub rate: u32,
    /// Seconds to measure admissions for.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Joins in flight at once while the fans join (each worker joins one fan after another).
    #[arg(long, default_value_t = 64)]
    pub join_concurrency: usize,
    /// The server's process id, to read its memory and CPU time from /proc (same machine only).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Redis's process id, to read its CPU time during the joins from /proc (same machine only).
    #[arg(long)]
    pub redis_pid: Option<u32>,
}

/// CPU time of the server, this process and Redis (where known), read together.
fn cpu_times(args: &QueueArgs) -> [Option<Duration>; 3] {
    [
        args.server_pid.and_then(cpu_time),
        cpu_time(std::process::id()),
        args.redis_pid.and_then(cpu_time),
    ]
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The process's CPU time so far (user + system), from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which is in parentheses and may hold spaces): state is the
    // first, utime the 12th and stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    // Clock ticks: 100 a second on Linux.
    Some(Duration::from_millis((user + system) * 10))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn operator<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// Runs the benchmark and prints its figures.
pub async fn run(channels: Vec<Channel>, token: String, args: QueueArgs) -> anyhow::Result<()> {
    let first = channels
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no target"))?;
    let mut op = pb::operator_client::OperatorClient::new(first.clone());
    let event_id = format!("queue-bench-{}", std::process::id());
    op.create_event(operator(
        pb::CreateEventRequest {
            event_id: event_id.clone(),
            name: "Queue bench".into(),
            artist: "Bench".into(),
            starts_at_unix_ms: now_ms() + 86_400_000,
            currency: "EUR".into(),
            fee_per_ticket_minor: 0,
            max_tickets_per_fan: 4,
            layout: Some(pb::create_event_request::Layout::LayoutToml(
                "[venue]\nid = \"bench-hall\"\nname = \"Bench Hall\"\n[[sections]]\nid = \"ga\"\nname = \"GA\"\nkind = \"general_admission\"\nprice = 10\ncapacity = 1000\n".into(),
            )),
        },
        &token,
    )?)
    .await?;
    // Closed valve while the crowd gathers.
    op.set_admission(operator(
        pb::SetAdmissionRequest {
            event_id: event_id.clone(),
            rate_per_minute: 1,
            burst: 1,
            max_active: 1,
            pow_difficulty_bits: 0,
            auto: false,
        },
        &token,
    )?)
    .await?;
    op.open_sale(operator(
        pb::OpenSaleRequest {
            event_id: event_id.clone(),
            phase: pb::SalePhase::General.into(),
            opens_at_unix_ms: 0,
            presale_codes: vec![],
        },
        &token,
    )?)
    .await?;

    // Joins.
    let joins = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let tokens = Arc::new(Mutex::new(Vec::with_capacity(args.watchers as usize)));
    let next = Arc::new(AtomicU64::new(0));
    let cpu_at_start = cpu_times(&args);
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..args.join_concurrency.max(1) {
        let mut room =
            pb::waiting_room_client::WaitingRoomClient::new(channels[w % channels.len()].clone());
        let (joins, tokens, next, event_id) = (
            joins.clone(),
            tokens.clone(),
            next.clone(),
            event_id.clone(),
        );
        let total = args.watchers;
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                let t0 = Instant::now();
                let joined = room
                    .join(pb::JoinRequest {
                        event_id: event_id.clone(),
                        fingerprint: format!("bench-fan-{i}"),
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                joins
                    .lock()
                    .await
                    .saturating_record(t0.elapsed().as_micros() as u64);
                tokens.lock().await.push(joined.queue_token);
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let join_secs = started.elapsed().as_secs_f64();
    // CPU per join of each process on this machine: what the join phase cost each of them.
    let cpu_at_end = cpu_times(&args);
    let join_cpu: [Option<f64>; 3] = std::array::from_fn(|i| {
        let spent = cpu_at_end[i]?.saturating_sub(cpu_at_start[i]?);
        Some(spent.as_secs_f64() * 1e6 / args.watchers.max(1) as f64)
    });

    // Watchers.
    let rss_before = args.server_pid.and_then(rss_kib);
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 600_000, 3,
    )?));
    let first_seen = Arc::new(AtomicU64::new(0));
    let admitted_seen = Arc::new(AtomicU64::new(0));
    let updates_seen = Arc::new(AtomicU64::new(0));
    let tokens = std::mem::take(&mut *tokens.lock().await);
    let mut streams = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.into_iter().enumerate() {
        let mut room =
            pb::waiting_room_client::WaitingRoomClient::new(channels[i % channels.len()].clone());
        let (latency, first_seen, admitted_seen, updates_seen) = (
            latency.clone(),
            first_seen.clone(),
            admitted_seen.clone(),
            updates_seen.clone(),
        );
        streams.push(tokio::spawn(async move {
            let Ok(response) = room
                .watch(pb::WatchRequest {
                    queue_token: token,
                    join: None,
                })
                .await
            else {
                return;
            };
            let mut stream = response.into_inner();
            let mut first = true;
            while let Some(Ok(update)) = stream.next().await {
                updates_seen.fetch_add(1, Ordering::Relaxed);
                if first {
                    first_seen.fetch_add(1, Ordering::Relaxed);
                    first = false;
                }
                if let Some(pass) = update.admission_pass {
                    if let Some(claims) = taquilla_proto::signed::peek_pass(&pass.token) {
                        let delay = (now_ms() - claims.iat).max(0) as u64;
                        latency.lock().await.saturating_record(delay.max(1));
                    }
                    admitted_seen.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while first_seen.load(Ordering::Relaxed) < args.watchers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let watching = first_seen.load(Ordering::Relaxed);
    // Let the server settle before reading its memory.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_after = args.server_pid.and_then(rss_kib);
    // What idle watchers cost the server: its CPU over a quiet window, and the updates it sent
    // in it (none are due while the line does not move).
    const QUIET: Duration = Duration::from_secs(10);
    let cpu_before = args.server_pid.and_then(cpu_time);
    let updates_before = updates_seen.load(Ordering::Relaxed);
    tokio::time::sleep(QUIET).await;
    let quiet_updates = updates_seen.load(Ordering::Relaxed) - updates_before;
    let quiet_cpu = args
        .server_pid
        .and_then(cpu_time)
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));

    // Open the valve and time notifications.
    op.set_admission(operator(
        pb::SetAdmissionRequest {
            event_id: event_id.clone(),
            rate_per_minute: args.rate,
            burst: args.rate.div_ceil(60).max(1),
            max_active: 1_000_000,
            pow_difficulty_bits: 0,
            auto: false,
        },
        &token,
    )?)
    .await?;
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    op.close_sale(operator(
        pb::CloseSaleRequest {
            event_id: event_id.clone(),
        },
        &token,
    )?)
    .await?;
    let admitted = admitted_seen.load(Ordering::Relaxed);
    for s in streams {
        s.abort();
    }

    let joins = joins.lock().await;
    let latency = latency.lock().await;
    outln!(
        "joins: {} in {join_secs:.1} s = {:.0}/s (p50 {:.1} ms, p99 {:.1} ms)",
        args.watchers,
        args.watchers as f64 / join_secs,
        joins.value_at_quantile(0.5) as f64 / 1_000.0,
        joins.value_at_quantile(0.99) as f64 / 1_000.0
    );
    let spent: Vec<String> = ["server", "load generator", "Redis"]
        .iter()
        .zip(join_cpu)
        .filter_map(|(name, cpu)| cpu.map(|us| format!("{name} {us:.0} µs")))
        .collect();
    outln!(
        "CPU per join (/proc, 10 ms ticks): {}{}",
        spent.join(", "),
        join_cpu[0].map_or(String::new(), |us| format!(
            "; the server's share alone would fill one core at {:.0} joins/s",
            1e6 / us.max(f64::MIN_POSITIVE)
        ))
    );
    outln!(
        "watchers: {watching} streams open over {} connections",
        channels.len()
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        outln!(
            "server memory: {before} KiB before the streams, {after} KiB with them: {:.2} KiB per idle watcher",
            (after.saturating_sub(before)) as f64 / watching.max(1) as f64
        );
    }
    if let Some(cpu) = quiet_cpu {
        let watcher_seconds = watching.max(1) as f64 * QUIET.as_secs_f64();
        outln!(
            "idle watchers: server CPU {:.0} ms per second over {} s, {quiet_updates} updates sent; {:.3} µs per watcher-second",
            cpu.as_secs_f64() * 1_000.0 / QUIET.as_secs_f64(),
            QUIET.as_secs(),
            cpu.as_secs_f64() * 1e6 / watcher_seconds
        );
    }
    outln!(
        "admission -> stream delivered: {admitted} admissions in {} s at {}/min: p50 {} ms, p99 {} ms, max {} ms",
        args.seconds,
        args.rate,
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.max()
    );
    Ok(())
}
