//! `taquilla-loadgen bench-sales`: how many tickets per second the sales path commits through
//! gRPC. Concurrent buyers each run hold (best available) → checkout → pay in a loop, as an
//! operator acting for a fresh fan each time (`x-fan-id`), so the waiting room is not in the
//! measurement. Prints tickets per second and per-call latency percentiles (HDR histograms).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use taquilla_proto::v1 as pb;
use tokio::sync::Mutex;
use tonic::Request;
use tonic::transport::Channel;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent buyers.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to measure.
    #[arg(long, default_value = "15", value_name = "SECONDS")]
    pub seconds: u64,
    /// Tickets per order (the most, with `--mixed-quantity`).
    #[arg(long, default_value_t = 4)]
    pub quantity: u32,
    /// Each order asks for 1 to `--quantity` seats, uniformly at random, as the sale's fans
    /// do (`taquilla-loadgen --scenario lux`: 1 to 4, 2.5 on average), so that tickets per
    /// second compare with the full sale's for the same orders.
    #[arg(long)]
    pub mixed_quantity: bool,
    /// gRPC connections to spread buyers over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
}

#[derive(Debug)]
struct Stats {
    hold: Histogram<u64>,
    checkout: Histogram<u64>,
    pay: Histogram<u64>,
    order: Histogram<u64>,
}

impl Stats {
    fn new() -> anyhow::Result<Stats> {
        let h = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3);
        Ok(Stats {
            hold: h()?,
            checkout: h()?,
            pay: h()?,
            order: h()?,
        })
    }
}

/// Failed calls by step and gRPC status code, with the first message of each; and calls shed
/// and made again, by step.
#[derive(Debug, Default)]
struct Errors(
    std::sync::Mutex<Failures>,
    std::sync::Mutex<BTreeMap<&'static str, u64>>,
);

/// Count and first message by (step, gRPC code).
type Failures = BTreeMap<(&'static str, i32), (u64, String)>;

impl Errors {
    fn shed(&self, step: &'static str) {
        if let Ok(mut map) = self.1.lock() {
            *map.entry(step).or_default() += 1;
        }
    }

    fn count(&self, step: &'static str, status: &tonic::Status) {
        if let Ok(mut map) = self.0.lock() {
            map.entry((step, status.code() as i32))
                .or_insert_with(|| (0, status.message().to_string()))
                .0 += 1;
        }
    }

    fn total(&self) -> u64 {
        self.0
            .lock()
            .map_or(0, |map| map.values().map(|(n, _)| n).sum())
    }

    fn print(&self) {
        if let Ok(map) = self.1.lock() {
            for (step, n) in map.iter() {
                outln!("  {step} was shed {n} times and made again after the server's hint");
            }
        }
        if let Ok(map) = self.0.lock() {
            for ((step, code), (n, message)) in map.iter() {
                outln!(
                    "  {step} failed {n} times with {:?}, e.g. {message:?}",
                    tonic::Code::from(*code)
                );
            }
        }
    }
}

/// Makes a call, and makes it again after the server's `retry-after-ms` hint while it is shed
/// (`RESOURCE_EXHAUSTED`) and the run lasts: a buyer giving up there would leave a hold or an
/// order locked and start over, measuring abandoned work instead of sales.
async fn retrying<T, Fut>(
    errors: &Errors,
    step: &'static str,
    deadline: Instant,
    mut call: impl FnMut() -> Fut,
) -> Result<T, tonic::Status>
where
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    loop {
        match call().await {
            Err(status)
                if status.code() == tonic::Code::ResourceExhausted && Instant::now() < deadline =>
            {
                errors.shed(step);
                let hint = status
                    .metadata()
                    .get("retry-after-ms")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(100);
                tokio::time::sleep(Duration::from_millis(hint.clamp(10, 1_000))).await;
            }
            other => return other.map(tonic::Response::into_inner),
        }
    }
}

fn with_operator<T>(message: T, token: &str, fan: &str) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    request.metadata_mut().insert("x-fan-id", fan.parse()?);
    Ok(request)
}

/// Runs the benchmark against `channels` (already connected) and prints the result.
pub async fn run(channels: Vec<Channel>, token: String, args: BenchArgs) -> anyhow::Result<()> {
    let first = channels
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no target"))?;
    let mut operator = pb::operator_client::OperatorClient::new(first.clone());
    let mut seed = Request::new(pb::SeedDemoRequest {
        scenario: "lux-tour".into(),
    });
    seed.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    operator.seed_demo(seed).await?;
    let events = pb::sales_client::SalesClient::new(first)
        .list_events(pb::ListEventsRequest {})
        .await?
        .into_inner()
        .events;
    // Every (event, section) pair with seats left; buyers share a cursor into it.
    let targets: Vec<(String, String)> = events
        .iter()
        .flat_map(|e| {
            e.sections
                .iter()
                .filter(|s| s.available >= args.quantity)
                .map(|s| (e.id.clone(), s.id.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    anyhow::ensure!(
        !targets.is_empty(),
        "no seats left to sell; reset the database"
    );
    let targets = Arc::new(targets);
    let exhausted: Arc<Vec<AtomicBool>> =
        Arc::new((0..targets.len()).map(|_| AtomicBool::new(false)).collect());
    let stats = Arc::new(Mutex::new(Stats::new()?));
    let sold = Arc::new(AtomicU64::new(0));
    let orders = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Errors::default());
    let run_id = std::process::id();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut buyers = Vec::new();
    for buyer in 0..args.concurrency {
        let channel = channels[buyer % channels.len()].clone();
        let (targets, exhausted, stats, sold, orders, errors, token) = (
            targets.clone(),
            exhausted.clone(),
            stats.clone(),
            sold.clone(),
            orders.clone(),
            errors.clone(),
            token.clone(),
        );
        let (most, mixed) = (args.quantity.max(1), args.mixed_quantity);
        buyers.push(tokio::spawn(async move {
            let sales = pb::sales_client::SalesClient::new(channel);
            let mut cursor = buyer % targets.len();
            let mut n = 0u64;
            let mut local = Stats::new()?;
            while Instant::now() < deadline {
                let Some(index) = (0..targets.len())
                    .map(|i| (cursor + i) % targets.len())
                    .find(|i| !exhausted[*i].load(Ordering::Relaxed))
                else {
                    break;
                };
                cursor = index;
                let (event, section) = &targets[index];
                n += 1;
                let fan = format!("bench-{run_id}-{buyer}-{n}");
                let quantity = if mixed {
                    rand::Rng::gen_range(&mut rand::thread_rng(), 1..=most)
                } else {
                    most
                };
                let t0 = Instant::now();
                let hold = retrying(&errors, "hold", deadline, || {
                    let mut sales = sales.clone();
                    let request = with_operator(
                        pb::HoldSeatsRequest {
                            event_id: event.clone(),
                            selection: Some(pb::hold_seats_request::Selection::BestAvailable(
                                pb::BestAvailable {
                                    section_id: section.clone(),
                                    quantity,
                                },
                            )),
                        },
                        &token,
                        &fan,
                    );
                    async move {
                        sales
                            .hold_seats(
                                request
                                    .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?,
                            )
                            .await
                    }
                })
                .await;
                let hold = match hold {
                    Ok(r) => r.hold.unwrap_or_default(),
                    Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                        exhausted[index].store(true, Ordering::Relaxed);
                        continue;
                    }
                    Err(status) => {
                        errors.count("hold", &status);
                        continue;
                    }
                };
                let t1 = Instant::now();
                let order = retrying(&errors, "checkout", deadline, || {
                    let mut sales = sales.clone();
                    let request = with_operator(
                        pb::CheckoutRequest {
                            hold_id: hold.hold_id.clone(),
                            idempotency_key: format!("co-{fan}"),
                        },
                        &token,
                        &fan,
                    );
                    async move {
                        sales
                            .checkout(
                                request
                                    .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?,
                            )
                            .await
                    }
                })
                .await;
                let order = match order {
                    Ok(order) => order,
                    Err(status) => {
                        errors.count("checkout", &status);
                        continue;
                    }
                };
                let order = order.order.unwrap_or_default();
                let t2 = Instant::now();
                let paid = retrying(&errors, "pay", deadline, || {
                    let mut sales = sales.clone();
                    let request = with_operator(
                        pb::PayRequest {
                            order_id: order.order_id.clone(),
                            idempotency_key: format!("pay-{fan}"),
                            card: Some(pb::Card {
                                number: "4242424242424242".into(),
                                exp_month: 12,
                                exp_year: 2099,
                                cvc: "123".into(),
                            }),
                        },
                        &token,
                        &fan,
                    );
                    async move {
                        sales
                            .pay(
                                request
                                    .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?,
                            )
                            .await
                    }
                })
                .await;
                let t3 = Instant::now();
                match paid {
                    Ok(r) => {
                        let order = r.order.unwrap_or_default();
                        if order.state == pb::OrderState::Paid as i32 {
                            sold.fetch_add(order.tickets.len() as u64, Ordering::Relaxed);
                            orders.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(status) => {
                        errors.count("pay", &status);
                        continue;
                    }
                }
                let us = |d: Duration| d.as_micros() as u64;
                local.hold.saturating_record(us(t1 - t0));
                local.checkout.saturating_record(us(t2 - t1));
                local.pay.saturating_record(us(t3 - t2));
                local.order.saturating_record(us(t3 - t0));
            }
            let mut all = stats.lock().await;
            all.hold.add(&local.hold)?;
            all.checkout.add(&local.checkout)?;
            all.pay.add(&local.pay)?;
            all.order.add(&local.order)?;
            anyhow::Ok(())
        }));
    }
    for buyer in buyers {
        buyer.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sold = sold.load(Ordering::Relaxed);
    let stats = stats.lock().await;
    outln!(
        "sold {sold} tickets in {} orders in {elapsed:.1} s: {:.0} tickets/s, {:.0} orders/s ({} errors, {} buyers)",
        orders.load(Ordering::Relaxed),
        sold as f64 / elapsed,
        orders.load(Ordering::Relaxed) as f64 / elapsed,
        errors.total(),
        args.concurrency
    );
    errors.print();
    outln!(
        "{:<10} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "call (ms)",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max"
    );
    for (name, h) in [
        ("hold", &stats.hold),
        ("checkout", &stats.checkout),
        ("pay", &stats.pay),
        ("order", &stats.order),
    ] {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
        outln!(
            "{name:<10} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1_000.0
        );
    }
    outln!("TICKETS_PER_SECOND={:.0}", sold as f64 / elapsed);
    outln!(
        "ORDERS_PER_SECOND={:.0}",
        orders.load(Ordering::Relaxed) as f64 / elapsed
    );
    Ok(())
}
