//! The sale over time, for a person to look at: in 5-second buckets, tickets per second, fans
//! waiting in the queue, fans admitted per minute, sales calls shed and joins told to come back
//! per second, and each stage's p99. `--out DIR` writes it as `timeline.csv` and as a
//! self-contained SVG chart, `timeline.svg` (one panel per series, no scripts, no fonts to
//! fetch), which any browser shows.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::record::Stage;

/// Width of a bucket.
pub const BUCKET_MS: u64 = 5_000;

#[derive(Debug, Default)]
struct Bucket {
    tickets: u64,
    admitted: u64,
    shed: u64,
    joins_refused: u64,
    /// Fans in the queue (joined, not yet admitted nor ended), the most seen in the bucket.
    waiting: i64,
    /// Per stage, in `Stage::ALL` order: milliseconds, 2 significant digits.
    stages: Vec<Option<Histogram<u32>>>,
}

/// What happened when, shared by every fan of the run.
#[derive(Debug)]
pub struct Timeline {
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    buckets: Vec<Bucket>,
    waiting: i64,
}

/// One bucket's figures, as written and drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub t_s: f64,
    pub tickets_per_s: f64,
    pub waiting: i64,
    pub admitted_per_min: f64,
    pub shed_per_s: f64,
    pub joins_refused_per_s: f64,
    /// Per stage (`Stage::ALL` order), the p99 in ms, if any call was recorded.
    pub p99_ms: Vec<Option<u64>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            started: Instant::now(),
            inner: Mutex::default(),
        }
    }

    fn with_bucket(&self, f: impl FnOnce(&mut Bucket, &mut i64)) {
        let index = (self.started.elapsed().as_millis() as u64 / BUCKET_MS) as usize;
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Inner { buckets, waiting } = &mut *inner;
        if buckets.len() <= index {
            buckets.resize_with(index + 1, Bucket::default);
        }
        f(&mut buckets[index], waiting);
    }

    pub fn tickets(&self, n: u64) {
        self.with_bucket(|b, _| b.tickets += n);
    }

    /// A fan entered the queue (+1) or left it, admitted or not (-1).
    pub fn waiting(&self, delta: i64) {
        self.with_bucket(|b, waiting| {
            *waiting += delta;
            b.waiting = b.waiting.max(*waiting);
        });
    }

    pub fn admitted(&self) {
        self.with_bucket(|b, _| b.admitted += 1);
    }

    /// A sales call (hold, checkout, pay) answered RESOURCE_EXHAUSTED.
    pub fn shed(&self) {
        self.with_bucket(|b, _| b.shed += 1);
    }

    /// A join told to come back.
    pub fn join_refused(&self) {
        self.with_bucket(|b, _| b.joins_refused += 1);
    }

    pub fn stage(&self, stage: Stage, took_ms: u64) {
        let Some(index) = Stage::ALL.iter().position(|s| *s == stage) else {
            return;
        };
        self.with_bucket(|b, _| {
            if b.stages.len() < Stage::ALL.len() {
                b.stages.resize_with(Stage::ALL.len(), || None);
            }
            let histogram = b.stages[index].get_or_insert_with(|| {
                Histogram::new_with_bounds(1, 3_600_000, 2).expect("valid bounds")
            });
            let _ = histogram.record(took_ms.clamp(1, 3_600_000));
        });
    }

    /// The buckets so far.
    pub fn rows(&self) -> Vec<Row> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let seconds = BUCKET_MS as f64 / 1_000.0;
        let mut waiting = 0;
        inner
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                // A bucket nobody touched carries the level of the one before.
                if b.waiting != 0 || b.admitted != 0 || b.tickets != 0 {
                    waiting = b.waiting;
                }
                Row {
                    t_s: i as f64 * seconds,
                    tickets_per_s: b.tickets as f64 / seconds,
                    waiting,
                    admitted_per_min: b.admitted as f64 * 60.0 / seconds,
                    shed_per_s: b.shed as f64 / seconds,
                    joins_refused_per_s: b.joins_refused as f64 / seconds,
                    p99_ms: (0..Stage::ALL.len())
                        .map(|s| {
                            b.stages
                                .get(s)
                                .and_then(Option::as_ref)
                                .map(|h| h.value_at_quantile(0.99))
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

/// The rows as CSV: one line a bucket.
pub fn csv(rows: &[Row]) -> String {
    let mut out =
        String::from("t_s,tickets_per_s,waiting,admitted_per_min,shed_per_s,joins_refused_per_s");
    for stage in Stage::ALL {
        let _ = write!(out, ",p99_ms_{}", stage.tag());
    }
    out.push('\n');
    for r in rows {
        let _ = write!(
            out,
            "{},{:.1},{},{:.0},{:.1},{:.1}",
            r.t_s,
            r.tickets_per_s,
            r.waiting,
            r.admitted_per_min,
            r.shed_per_s,
            r.joins_refused_per_s
        );
        for p in &r.p99_ms {
            let _ = write!(out, ",{}", p.map(|v| v.to_string()).unwrap_or_default());
        }
        out.push('\n');
    }
    out
}

const WIDTH: f64 = 900.0;
const PANEL: f64 = 150.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const COLOURS: [&str; 7] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
];

/// One panel: a title, its y axis from 0 (or 1 on a log scale) to the series' top, and lines.
struct Panel<'a> {
    id: &'a str,
    title: &'a str,
    log: bool,
    series: Vec<(String, Vec<(f64, f64)>)>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1_000.0)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The chart: one panel per series group, over the run's seconds.
pub fn svg(rows: &[Row], title: &str) -> String {
    let end = rows
        .last()
        .map_or(1.0, |r| r.t_s + BUCKET_MS as f64 / 1_000.0)
        .max(1.0);
    let points = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| f(r).map(|v| (r.t_s, v)))
            .collect()
    };
    let mut panels = vec![
        Panel {
            id: "tickets",
            title: "tickets/s",
            log: false,
            series: vec![("tickets/s".into(), points(&|r| Some(r.tickets_per_s)))],
        },
        Panel {
            id: "waiting",
            title: "fans waiting",
            log: false,
            series: vec![("fans waiting".into(), points(&|r| Some(r.waiting as f64)))],
        },
        Panel {
            id: "admitted",
            title: "admitted per minute",
            log: false,
            series: vec![(
                "admitted per minute".into(),
                points(&|r| Some(r.admitted_per_min)),
            )],
        },
        Panel {
            id: "shed",
            title: "shed calls/s (hold, checkout, pay) and joins told to come back/s",
            log: false,
            series: vec![
                ("shed calls/s".into(), points(&|r| Some(r.shed_per_s))),
                (
                    "joins told to come back/s".into(),
                    points(&|r| Some(r.joins_refused_per_s)),
                ),
            ],
        },
    ];
    panels.push(Panel {
        id: "p99",
        title: "p99 per stage (ms, log scale)",
        log: true,
        series: Stage::ALL
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                (
                    format!("p99 {}", stage.name()),
                    points(&|r| r.p99_ms.get(i).copied().flatten().map(|v| v as f64)),
                )
            })
            .collect(),
    });
    let height = 40.0 + panels.len() as f64 * (PANEL + 40.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="22" font-size="15">{}</text>"#,
        escape(title)
    );
    let plot_width = WIDTH - LEFT - RIGHT;
    for (p, panel) in panels.iter().enumerate() {
        let top = 40.0 + p as f64 * (PANEL + 40.0) + 20.0;
        let bottom = top + PANEL;
        let max = panel
            .series
            .iter()
            .flat_map(|(_, pts)| pts.iter().map(|(_, v)| *v))
            .fold(0.0f64, f64::max)
            .max(if panel.log { 10.0 } else { 1.0 });
        let y = |v: f64| -> f64 {
            if panel.log {
                bottom - (v.max(1.0).log10() / max.log10()) * PANEL
            } else {
                bottom - v / max * PANEL
            }
        };
        let x = |t: f64| LEFT + t / end * plot_width;
        let _ = writeln!(out, r#"<g id="{}">"#, panel.id);
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{:.1}" font-size="13">{}</text>"#,
            top - 6.0,
            escape(panel.title)
        );
        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{plot_width:.1}" height="{PANEL}" fill="none" stroke="#999"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text x="{:.1}" y="{bottom:.1}" text-anchor="end">{}</text>"#,
            LEFT - 4.0,
            top + 10.0,
            nice(max),
            LEFT - 4.0,
            if panel.log { "1" } else { "0" }
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.0} s</text>"#,
            WIDTH - RIGHT,
            bottom + 14.0,
            end
        );
        for (i, (name, pts)) in panel.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let path: Vec<String> = pts
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline data-series="{}" fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
                escape(name),
                path.join(" ")
            );
            if panel.series.len() > 1 {
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
                    LEFT + 8.0 + (i % 4) as f64 * 200.0,
                    top + 14.0 + (i / 4) as f64 * 13.0,
                    escape(name)
                );
            }
        }
        let _ = writeln!(out, "</g>");
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_carries_every_series_and_escapes_its_title() {
        let timeline = Timeline::new();
        timeline.waiting(3);
        timeline.admitted();
        timeline.waiting(-1);
        timeline.tickets(4);
        timeline.shed();
        timeline.join_refused();
        timeline.stage(Stage::Hold, 12);
        let rows = timeline.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].waiting, 3);
        assert_eq!(rows[0].tickets_per_s, 0.8);
        assert_eq!(rows[0].admitted_per_min, 12.0);
        assert_eq!(rows[0].p99_ms[3], Some(12));
        let chart = svg(&rows, "a <sale>");
        for series in [
            "tickets/s",
            "fans waiting",
            "admitted per minute",
            "shed calls/s",
            "joins told to come back/s",
            "p99 hold",
            "p99 join",
        ] {
            assert!(
                chart.contains(&format!("data-series=\"{series}\"")),
                "{series}"
            );
        }
        assert!(chart.contains("a &lt;sale&gt;"));
        assert!(csv(&rows).starts_with("t_s,tickets_per_s,waiting,"));
    }
}
