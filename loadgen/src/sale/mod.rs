//! `taquilla-loadgen` (no subcommand): the sale replayed by a crowd of goose users, each a fan
//! calling the real gRPC API (see [`fans`]), then measured ([`record`]) and judged: the
//! server's audit of every event must be clean and must agree with the run's own ledger of the
//! tickets it was told it bought.

pub mod eta;
pub mod fans;
mod proofs;
pub mod record;
pub mod shard;
pub mod timeline;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::prelude::GooseAttack;
use taquilla_proto::v1 as pb;
use tonic::Request;
use tonic::transport::Channel;

use fans::{Crowd, Mix, Target};
use record::Recorder;
use shard::ServerCount;

/// Ready-made sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Use the events already on sale on the server (`--events` or all open ones).
    None,
    /// Create a fresh 1,000-seat event, open its general sale and let the crowd at it
    /// (what CI runs, with 2,000 fans).
    Small,
    /// The LUX Tour: seed the 8 concerts (142,000 seats), open the presale (code
    /// `LUX-PRESALE`) now and the general sale `--presale-seconds` later, and send the crowd
    /// (400,000 fans unless `--users` says otherwise).
    Lux,
}

/// The presale code the LUX preset opens with.
pub const LUX_PRESALE_CODE: &str = "LUX-PRESALE";

/// `i/n`: this process runs the i-th (1-based) of n disjoint slices of the fans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?} is not a shard like 1/4 (i/n with 1 <= i <= n)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The sale run's options.
#[derive(Debug, Clone, clap::Args)]
pub struct SaleArgs {
    /// Fans to simulate in this shard [default: 2,000; 400,000 with --scenario lux].
    #[arg(long)]
    pub users: Option<usize>,
    /// With --scenario lux: how long the presale runs before the general sale opens.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub presale_seconds: u64,
    /// With a preset: fans join a pre-queue for this long, and the sale opens then (its
    /// pre-queue shuffled by the committed seed; the run checks the proof); with --scenario
    /// lux it opens in the general phase, presale fans placed first [default: the sale opens
    /// at once].
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub prequeue_seconds: u64,
    /// With a preset: fans admitted per minute, per event (with --scenario lux, a cap on the
    /// automatic valve unless --fixed-valve) [default: 60,000 with the automatic valve, which
    /// then sets the pace alone; 6,000 with --fixed-valve].
    #[arg(long)]
    pub admit_per_minute: Option<u32>,
    /// With --scenario lux: a fixed valve (--admit-per-minute, half as many buying at once)
    /// instead of the automatic one, which follows the sales path.
    #[arg(long)]
    pub fixed_valve: bool,
    /// Fans started per second (goose's increase rate).
    #[arg(long, default_value = "500")]
    pub hatch_rate: String,
    /// Events to go for, comma-separated (default: every event whose sale is open or about to).
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
    /// Longest the run may take; fans still waiting then give up.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub duration: u64,
    /// A ready-made sale to set up first.
    #[arg(long, value_enum, default_value = "none")]
    pub scenario: Preset,
    /// Run the i-th of n disjoint slices of the fans (several processes or machines).
    #[arg(long, default_value = "1/1")]
    pub shard: Shard,
    /// gRPC connections per target (HTTP/2, many streams each) [default: one per 2,000 of the
    /// target's fans, at least 8].
    #[arg(long)]
    pub connections: Option<usize>,
    /// `Join` calls each connection carries at once; the fans beyond wait their turn in the
    /// load generator (that wait counts in the join stage's time, not in the call's). Bounds
    /// the load generator's memory when fans arrive faster than the server answers joins.
    #[arg(long, default_value_t = fans::JOINS_IN_FLIGHT)]
    pub joins_in_flight: usize,
    /// Fans join with a `Join` call, then open their `Watch` stream (two round trips), instead
    /// of joining and watching in one `Watch` call (the default).
    #[arg(long)]
    pub separate_join: bool,
    /// goose's report: .html, .json or .md (repeat for several).
    #[arg(long)]
    pub report_file: Vec<String>,
    /// Directory for the results (HdrHistogram log, percentiles, ledger, summary, report),
    /// which `taquilla-loadgen merge` combines across shards.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub mix: Mix,
    /// Further goose options, after `--` (e.g. `-- --no-print-metrics -G goose.log -g`).
    #[arg(last = true)]
    pub goose: Vec<String>,
}

/// Fans per HTTP/2 connection when `--connections` is not given. Each fan keeps a stream open
/// while it waits, and a connection carrying tens of thousands of them fails them all at once
/// when it breaks (h2's reset bounds; run J in docs/benchmarks-log.md); at 2,000 a connection
/// none broke.
const FANS_PER_CONNECTION: usize = 2_000;

impl SaleArgs {
    /// Fans this process runs.
    pub fn users(&self) -> usize {
        self.users.unwrap_or(match self.scenario {
            Preset::Lux => 400_000,
            _ => 2_000,
        })
    }

    /// Fans admitted per minute per event: `--admit-per-minute`, or its default for the valve.
    /// With the automatic valve the default is high enough never to bind on one box: the old
    /// default of 6,000 a minute held the last event selling to 100 admissions a second, about
    /// 240 tickets/s, while the sales path had room for five times that
    /// (docs/benchmarks-log.md, runs 44–52).
    pub fn admit_per_minute(&self) -> u32 {
        self.admit_per_minute
            .unwrap_or(if self.fixed_valve { 6_000 } else { 60_000 })
    }

    /// Connections to open to each of `targets` servers.
    pub fn connections_per_target(&self, targets: usize) -> usize {
        self.connections.unwrap_or_else(|| {
            self.users()
                .div_ceil(targets.max(1))
                .div_ceil(FANS_PER_CONNECTION)
                .max(8)
        })
    }
}

fn with_token<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

/// Goose's errors print their details only in `Debug`.
fn goose_error(e: goose::GooseError) -> anyhow::Error {
    anyhow::anyhow!("goose: {e:?}")
}

/// Creates the small preset's event and opens it, at once or `prequeue_seconds` from now;
/// returns its id.
async fn set_up_small(
    channel: Channel,
    token: &str,
    prequeue_seconds: u64,
) -> anyhow::Result<String> {
    let mut operator = pb::operator_client::OperatorClient::new(channel);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let event_id = format!("lg-small-{stamp}");
    let layout = r#"
[venue]
id = "lg-hall"
name = "Loadgen Hall"
city = "Madrid"

[[sections]]
id = "front"
name = "Front"
kind = "seated"
price = 90.00
row_count = 10
seats_per_row = 20

[[sections]]
id = "middle"
name = "Middle"
kind = "seated"
price = 60.00
row_count = 20
seats_per_row = 20

[[sections]]
id = "floor"
name = "Floor"
kind = "general_admission"
price = 45.00
capacity = 400
"#;
    operator
        .create_event(with_token(
            pb::CreateEventRequest {
                event_id: event_id.clone(),
                name: "Loadgen small sale".into(),
                artist: "The Crowd".into(),
                starts_at_unix_ms: (stamp as i64) + 30 * 86_400_000,
                currency: "EUR".into(),
                fee_per_ticket_minor: 250,
                max_tickets_per_fan: 4,
                layout: Some(pb::create_event_request::Layout::LayoutToml(layout.into())),
            },
            token,
        )?)
        .await
        .map_err(|s| anyhow::anyhow!("creating the small sale's event: {}", s.message()))?;
    operator
        .set_admission(with_token(
            pb::SetAdmissionRequest {
                event_id: event_id.clone(),
                rate_per_minute: 120_000,
                burst: 2_000,
                max_active: 2_000,
                pow_difficulty_bits: 0,
                auto: false,
            },
            token,
        )?)
        .await
        .map_err(|s| anyhow::anyhow!("setting admission: {}", s.message()))?;
    operator
        .open_sale(with_token(
            pb::OpenSaleRequest {
                event_id: event_id.clone(),
                phase: pb::SalePhase::General as i32,
                opens_at_unix_ms: if prequeue_seconds > 0 {
                    stamp as i64 + prequeue_seconds as i64 * 1_000
                } else {
                    0
                },
                presale_codes: Vec::new(),
            },
            token,
        )?)
        .await
        .map_err(|s| anyhow::anyhow!("opening the sale: {}", s.message()))?;
    Ok(event_id)
}

/// Seeds the LUX Tour and opens its presale now and its general sale `presale_seconds` later,
/// or, with `prequeue_seconds`, its general sale then (the crowd in the pre-queue until then,
/// presale fans placed first); returns the event ids.
async fn set_up_lux(
    channel: Channel,
    token: &str,
    prequeue_seconds: u64,
    presale_seconds: u64,
    admit_per_minute: u32,
    fixed_valve: bool,
) -> anyhow::Result<Vec<String>> {
    let mut operator = pb::operator_client::OperatorClient::new(channel);
    let seeded = operator
        .seed_demo(with_token(
            pb::SeedDemoRequest {
                scenario: "lux-tour".into(),
            },
            token,
        )?)
        .await
        .map_err(|s| anyhow::anyhow!("seeding the LUX Tour: {}", s.message()))?
        .into_inner();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut ids = Vec::new();
    for event in seeded.events {
        operator
            .set_admission(with_token(
                pb::SetAdmissionRequest {
                    event_id: event.id.clone(),
                    rate_per_minute: admit_per_minute,
                    burst: (admit_per_minute / 60).max(1),
                    // The automatic valve finds the number buying at once itself.
                    max_active: if fixed_valve {
                        (admit_per_minute / 2).max(1)
                    } else {
                        0
                    },
                    pow_difficulty_bits: 0,
                    auto: !fixed_valve,
                },
                token,
            )?)
            .await
            .map_err(|s| anyhow::anyhow!("setting admission for {}: {}", event.id, s.message()))?;
        let openings = if prequeue_seconds > 0 {
            vec![(
                pb::SalePhase::General,
                now_ms + prequeue_seconds as i64 * 1_000,
                vec![LUX_PRESALE_CODE.to_string()],
            )]
        } else {
            vec![
                (
                    pb::SalePhase::Presale,
                    0,
                    vec![LUX_PRESALE_CODE.to_string()],
                ),
                (
                    pb::SalePhase::General,
                    now_ms + presale_seconds as i64 * 1_000,
                    Vec::new(),
                ),
            ]
        };
        for (phase, at, codes) in openings {
            operator
                .open_sale(with_token(
                    pb::OpenSaleRequest {
                        event_id: event.id.clone(),
                        phase: phase as i32,
                        opens_at_unix_ms: at,
                        presale_codes: codes,
                    },
                    token,
                )?)
                .await
                .map_err(|s| {
                    anyhow::anyhow!("opening the sale of {}: {}", event.id, s.message())
                })?;
        }
        ids.push(event.id);
    }
    Ok(ids)
}

async fn list_events(channel: Channel) -> anyhow::Result<Vec<pb::Event>> {
    Ok(pb::sales_client::SalesClient::new(channel)
        .list_events(pb::ListEventsRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("listing events: {}", s.message()))?
        .into_inner()
        .events)
}

/// Runs the sale; returns whether the integrity verdict passed.
pub async fn run(
    targets: &[String],
    channels: Vec<Channel>,
    token: Option<String>,
    args: SaleArgs,
) -> anyhow::Result<bool> {
    let first = channels
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no target"))?;
    let mut wanted = args.events.clone();
    let mut presale_codes = Vec::new();
    let users = args.users();
    if args.scenario != Preset::None {
        let token = token.as_deref().ok_or_else(|| {
            anyhow::anyhow!("--scenario small and lux need the operator token (--token)")
        })?;
        if args.scenario == Preset::Small {
            wanted = vec![set_up_small(first.clone(), token, args.prequeue_seconds).await?];
        } else {
            wanted = set_up_lux(
                first.clone(),
                token,
                args.prequeue_seconds,
                args.presale_seconds,
                args.admit_per_minute(),
                args.fixed_valve,
            )
            .await?;
            presale_codes = vec![LUX_PRESALE_CODE.to_string()];
        }
    }
    let events = list_events(first.clone()).await?;
    let targets_events: Vec<Target> = events
        .iter()
        .filter(|e| {
            if wanted.is_empty() {
                matches!(e.sale_state(), pb::SaleState::Open | pb::SaleState::NotOpen)
            } else {
                wanted.contains(&e.id)
            }
        })
        .map(|e| Target {
            event_id: e.id.clone(),
            cap: e.max_tickets_per_fan.max(1),
            presale_codes: presale_codes.clone(),
        })
        .collect();
    for id in &wanted {
        anyhow::ensure!(
            targets_events.iter().any(|t| &t.event_id == id),
            "there is no event {id:?} on {}",
            targets[0]
        );
    }
    anyhow::ensure!(
        !targets_events.is_empty(),
        "no event is on sale; open one or pass --scenario small"
    );

    let recorder = Arc::new(Recorder::new());
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let crowd = Arc::new(
        Crowd::new(
            channels.clone(),
            targets_events.clone(),
            args.mix.clone(),
            recorder.clone(),
            format!("lg{}of{}", args.shard.index, args.shard.count),
            (args.shard.index - 1) * users,
            deadline,
        )
        .per_target(args.connections_per_target(targets.len()))
        .joins_in_flight(args.joins_in_flight)
        .separate_join(args.separate_join)
        // A second of spread per 40,000 fans: a 400,000-fan run winds down over its last 10 s.
        .end_spread(Duration::from_secs_f64(users as f64 / 40_000.0)),
    );
    crowd.show(&events);
    // The event page every few seconds, as fans' apps read it: which sections have seats.
    let boards = tokio::spawn(fans::keep_boards(
        crowd.clone(),
        first.clone(),
        Duration::from_secs(4),
    ));
    anyhow::ensure!(fans::install(crowd), "the crowd was already installed");

    let config = GooseConfiguration::parse_args_default(&args.goose)
        .map_err(|e| anyhow::anyhow!("goose options: {e}"))?;
    let mut attack = GooseAttack::initialize_with_config(config)
        .map_err(goose_error)?
        .register_scenario(fans::scenario())
        // One shared HTTP client for all users (goose's default is one per user, ~115 KiB
        // each); the fans speak gRPC through the channel pool anyway.
        .set_client_builder_without_cookies(
            goose::client::GooseClientBuilder::new().without_cookies(),
        )
        .map_err(goose_error)?
        .set_default(GooseDefault::Host, targets[0].as_str())
        .map_err(goose_error)?
        .set_default(GooseDefault::Users, users)
        .map_err(goose_error)?
        .set_default(GooseDefault::IncreaseRate, args.hatch_rate.as_str())
        .map_err(goose_error)?
        // Each fan makes one journey; the run ends when every fan is done (each bounded by
        // --duration, so goose's shutdown never waits on a stuck fan).
        .set_default(GooseDefault::Iterations, 1usize)
        .map_err(goose_error)?;
    for file in &args.report_file {
        attack = attack.set_default(GooseDefault::ReportFile, file.as_str())?;
    }
    let started = Instant::now();
    attack.execute().await.map_err(goose_error)?;
    let took = started.elapsed();
    boards.abort();

    // Orders whose fans left without seeing them paid are looked up now that the sale is
    // calm; payments still in flight get up to a minute to finish.
    let settled_lines = settle(&first, token.as_deref(), &recorder).await?;

    // What the server says now: each event's own audit reads the database in one snapshot;
    // without a token, the event list, whose counts may be up to half a second old for sales
    // another node made (`Catalog::counts`), read once that has passed.
    if token.is_none() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let after = list_events(first.clone()).await?;
    let mut server = BTreeMap::new();
    for target in &targets_events {
        let Some(event) = after.iter().find(|e| e.id == target.event_id) else {
            recorder.add_evidence(format!("event {} vanished", target.event_id));
            continue;
        };
        let audited = match &token {
            Some(token) => audit(first.clone(), token, &event.id, &recorder).await?,
            None => {
                outln!(
                    "{}: no --token, so the server's audit was not run",
                    event.id
                );
                None
            }
        };
        let inventory = audited.or(event.inventory).unwrap_or_default();
        server.insert(
            event.id.clone(),
            ServerCount {
                sold: u64::from(inventory.sold),
                capacity: u64::from(inventory.capacity),
                sold_out: inventory.available == 0
                    && inventory.soft_locked == 0
                    && inventory.hard_locked == 0,
                cap_per_fan: target.cap,
            },
        );
    }
    let fairness = proofs::check_shuffles(first.clone(), &targets_events, &recorder).await;
    // With shards or other buyers the server may have sold more than this process saw; a
    // single shard must match exactly.
    let mut report = verdict(&recorder, &server, args.shard.count == 1, took);
    for line in settled_lines.into_iter().chain(fairness) {
        report.push_str(&line);
        report.push('\n');
    }
    report.push('\n');
    report.push_str(&recorder.eta.table());
    let report = format!(
        "\nTaquilla sale: {} fans (shard {}/{}) against {} in {:.1} s\n\n{report}",
        users,
        args.shard.index,
        args.shard.count,
        targets.join(", "),
        took.as_secs_f64()
    );
    outln!("{report}");
    if let Some(dir) = &args.out {
        let (errors, outcomes) = recorder.counts();
        let summary = shard::Summary {
            users,
            shard_index: args.shard.index,
            shard_count: args.shard.count,
            took_ms: took.as_millis() as u64,
            errors,
            outcomes,
            server,
            evidence: recorder.evidence(),
        };
        shard::save(dir, &recorder, &summary, &report)?;
    }
    Ok(recorder.evidence().is_empty())
}

/// Looks up the orders fans left without seeing paid; counts the paid ones in the ledger.
async fn settle(
    channel: &Channel,
    token: Option<&str>,
    recorder: &Recorder,
) -> anyhow::Result<Vec<String>> {
    let mut pending = recorder.take_unsettled();
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let Some(token) = token else {
        return Ok(vec![format!(
            "{} orders were left without an answer; no --token, so they were not looked up",
            pending.len()
        )]);
    };
    let total = pending.len();
    let (mut paid, mut unanswered) = (0, 0);
    let mut sales = pb::sales_client::SalesClient::new(channel.clone());
    let give_up = Instant::now() + Duration::from_secs(60);
    while !pending.is_empty() {
        let mut again = Vec::new();
        unanswered = 0;
        for order in pending {
            let request = with_token(
                pb::GetOrderRequest {
                    order_id: order.order_id.clone(),
                },
                token,
            )?;
            match sales
                .get_order(request)
                .await
                .map(tonic::Response::into_inner)
            {
                Ok(found) if found.state() == pb::OrderState::Paid => {
                    let seats: Vec<u32> = found
                        .tickets
                        .iter()
                        .filter_map(|t| t.seat.as_ref().map(|s| s.seat_id))
                        .collect();
                    recorder.settled(&order, &seats);
                    paid += 1;
                }
                // A payment still being authorized or captured: ask again shortly.
                Ok(found)
                    if found.state() == pb::OrderState::PendingPayment
                        && found.payments.iter().any(|p| {
                            matches!(
                                p.state(),
                                pb::PaymentState::Pending | pb::PaymentState::Authorized
                            )
                        }) =>
                {
                    again.push(order)
                }
                Ok(_) => {}
                Err(_) => {
                    unanswered += 1;
                    again.push(order);
                }
            }
        }
        if again.is_empty() || Instant::now() >= give_up {
            break;
        }
        pending = again;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(vec![format!(
        "{total} orders were left without an answer during the run; looked up after it: {paid} paid{}",
        if unanswered > 0 {
            format!(", {unanswered} still unanswered")
        } else {
            String::new()
        }
    )])
}

/// Adds the failed invariants of the server's audit of `event_id` to the evidence; returns the
/// seat counts the audit read (none if it could not run).
async fn audit(
    channel: Channel,
    token: &str,
    event_id: &str,
    recorder: &Recorder,
) -> anyhow::Result<Option<pb::InventoryCounts>> {
    let mut operator = pb::operator_client::OperatorClient::new(channel);
    match operator
        .audit(with_token(
            pb::AuditRequest {
                event_id: event_id.into(),
            },
            token,
        )?)
        .await
    {
        Ok(report) => {
            let report = report.into_inner();
            for check in report.invariants.iter().filter(|c| !c.ok) {
                recorder.add_evidence(format!(
                    "{event_id}: audit: {} ({} violations, e.g. {})",
                    check.name,
                    check.violations,
                    check.examples.join("; ")
                ));
            }
            if !report.ok && report.invariants.iter().all(|c| c.ok) {
                recorder.add_evidence(format!("{event_id}: audit failed"));
            }
            Ok(report.inventory)
        }
        Err(status) => {
            recorder.add_evidence(format!(
                "{event_id}: audit could not run: {}",
                status.message()
            ));
            Ok(None)
        }
    }
}

/// Compares the ledger with the server's counts (exactly when the ledger is the whole sale's)
/// and writes the report with the verdict.
pub fn verdict(
    recorder: &Recorder,
    server: &BTreeMap<String, ServerCount>,
    exact: bool,
    took: Duration,
) -> String {
    let bought = recorder.tickets_per_event();
    let mut lines = String::new();
    for (event, count) in server {
        let ours = bought.get(event).copied().unwrap_or(0);
        lines.push_str(&format!(
            "{event}: server sold {} of {}, this run was told it bought {ours}\n",
            count.sold, count.capacity
        ));
        if exact && count.sold != ours {
            recorder.add_evidence(format!(
                "{event}: the server sold {} tickets but this run was told of {ours}",
                count.sold
            ));
        }
    }
    let mut report = recorder.report();
    report.push('\n');
    report.push_str(&lines);
    let sold_out = !server.is_empty() && server.values().all(|c| c.sold_out);
    match (sold_out, recorder.last_ticket_at()) {
        (true, Some(at)) => {
            report.push_str(&format!("time to sell out: {:.1} s\n", at.as_secs_f64()))
        }
        _ => report.push_str(&format!(
            "not sold out by the end of the run ({:.1} s)\n",
            took.as_secs_f64()
        )),
    }
    let evidence = recorder.evidence();
    if evidence.is_empty() {
        report.push_str(
            "integrity: OK (audit clean, ledger agrees, no seat twice, no fan over the cap)\n",
        );
    } else {
        report.push_str("integrity: FAILED\n");
        for e in &evidence {
            report.push_str(&format!("  {e}\n"));
        }
    }
    report
}

/// `taquilla-loadgen merge DIR...`: one report and one verdict from several shards' results.
pub fn merge(dirs: &[PathBuf]) -> anyhow::Result<bool> {
    anyhow::ensure!(
        !dirs.is_empty(),
        "name the shards' result directories (written with --out)"
    );
    let recorder = Recorder::new();
    let summaries = shard::load(dirs, &recorder)?;
    // The server's figures from the shard that finished last saw the most sales.
    let mut server: BTreeMap<String, ServerCount> = BTreeMap::new();
    let mut took = Duration::ZERO;
    for summary in &summaries {
        took = took.max(Duration::from_millis(summary.took_ms));
        for (event, count) in &summary.server {
            let entry = server.entry(event.clone()).or_insert(*count);
            if count.sold > entry.sold {
                *entry = *count;
            }
        }
    }
    let count = summaries[0].shard_count;
    let mut indices: Vec<usize> = summaries.iter().map(|s| s.shard_index).collect();
    indices.sort_unstable();
    indices.dedup();
    let complete = summaries.iter().all(|s| s.shard_count == count)
        && indices == (1..=count).collect::<Vec<_>>();
    if !complete {
        outln!(
            "shards {indices:?} of {count}: not all present, so the ledger is not compared exactly"
        );
    }
    let users: usize = summaries.iter().map(|s| s.users).sum();
    let report = verdict(&recorder, &server, complete, took);
    outln!(
        "\nTaquilla sale: {users} fans in {} shards, longest {:.1} s\n\n{report}",
        summaries.len(),
        took.as_secs_f64()
    );
    Ok(recorder.evidence().is_empty())
}
