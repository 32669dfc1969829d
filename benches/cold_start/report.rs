//! The interleaved rounds' results: a table with the tax ratios on stdout, and the raw samples as
//! JSON for `scripts/chart.py`.

use std::{path::Path, time::Duration};

use serde_json::{Value, json};

use crate::{
    ColdStart,
    common::{Stats, ms},
    roles::{Received, Role},
};

/// Goal: init of ours (any exporter) at most this many times bare-work's.
pub(crate) const INIT_GOAL: f64 = 1.05;
/// Goal: exec → first `/response` of ours at most this many times bare-work's.
pub(crate) const TOTAL_GOAL: f64 = 1.10;
// The Python ratio is information, not a goal (issue 16 retired "Python ≥ 120× ours": the
// Python interpreter's own start dominates it, observability work cannot move it).

/// One role's runs over the rounds.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) role: Role,
    /// One entry per round; `None` where the run failed.
    runs: Vec<Option<ColdStart>>,
    failures: Vec<String>,
    /// What reached the role's sinks during the rounds.
    pub(crate) received: Received,
    /// Size of the executable started (`None` for Python).
    pub(crate) executable_bytes: Option<u64>,
}

impl Measured {
    pub(crate) fn new(role: Role) -> Self {
        Self {
            role,
            runs: Vec::new(),
            failures: Vec::new(),
            received: Received::default(),
            executable_bytes: None,
        }
    }

    pub(crate) fn push(&mut self, run: Result<ColdStart, String>) {
        match run {
            Ok(run) => self.runs.push(Some(run)),
            Err(err) => {
                self.runs.push(None);
                self.failures.push(err);
            }
        }
    }

    fn ok(&self) -> impl Iterator<Item = &ColdStart> {
        self.runs.iter().flatten()
    }

    fn stats(&self, part: impl Fn(&ColdStart) -> Option<Duration>) -> Option<Stats> {
        Stats::of(&self.ok().filter_map(part).collect::<Vec<_>>())
    }

    fn init(&self) -> Option<Stats> {
        self.stats(|r| Some(r.init))
    }

    fn total(&self) -> Option<Stats> {
        self.stats(|r| Some(r.total))
    }

    fn done(&self) -> Option<Stats> {
        self.stats(|r| r.done)
    }
}

/// Ratios of one role against the baseline and the Python original.
#[derive(Debug, Clone, Copy, Default)]
struct Ratios {
    /// Median init over bare-work's median init.
    init: Option<f64>,
    /// Median total over bare-work's median total.
    total: Option<f64>,
    /// Median over the rounds of (this total / bare-work's total in the same round).
    total_paired: Option<f64>,
    /// Python's median total over this median total.
    python_over: Option<f64>,
    /// Median total over the control's (`bare-work-in-bench`, the old baseline) median total.
    total_over_control: Option<f64>,
    /// Median over the rounds of (this total / the control's total in the same round).
    total_over_control_paired: Option<f64>,
}

/// All roles over all rounds.
#[derive(Debug)]
pub(crate) struct Report {
    rounds: usize,
    roles: Vec<Measured>,
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len().checked_sub(1)? / 2).copied()
}

impl Report {
    pub(crate) fn new(rounds: usize, roles: Vec<Measured>) -> Self {
        Self { rounds, roles }
    }

    fn role(&self, role: Role) -> Option<&Measured> {
        self.roles.iter().find(|m| m.role == role)
    }

    fn ratios(&self, measured: &Measured) -> Ratios {
        let Some(bare) = self.role(Role::BareWork) else {
            return Ratios::default();
        };
        let median_of =
            |m: &Measured, stats: fn(&Measured) -> Option<Stats>| stats(m).map(|s| s.median);
        let over_bare = |stats: fn(&Measured) -> Option<Stats>| {
            Some(ratio(median_of(measured, stats)?, median_of(bare, stats)?))
        };
        let paired_with = |other: &Measured| {
            median(
                measured
                    .runs
                    .iter()
                    .zip(&other.runs)
                    .filter_map(|(ours, other)| {
                        Some(ratio(ours.as_ref()?.total, other.as_ref()?.total))
                    })
                    .collect(),
            )
        };
        let control = self.role(Role::BareWorkInBench);
        let python_over = self.role(Role::Python).and_then(|python| {
            Some(ratio(
                median_of(python, Measured::total)?,
                median_of(measured, Measured::total)?,
            ))
        });
        Ratios {
            init: over_bare(Measured::init),
            total: over_bare(Measured::total),
            total_paired: paired_with(bare),
            python_over: python_over.filter(|_| measured.role != Role::Python),
            total_over_control: control.and_then(|control| {
                Some(ratio(
                    median_of(measured, Measured::total)?,
                    median_of(control, Measured::total)?,
                ))
            }),
            total_over_control_paired: control.and_then(paired_with),
        }
    }

    /// The table on stdout.
    pub(crate) fn print(&self) {
        let cell = |stats: Option<Stats>| stats.map_or_else(|| "-".to_owned(), |s| ms(s.median));
        let factor =
            |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}x"));
        println!();
        println!(
            "cold start, {} rounds (each role once per round, shuffled order); medians; \
             init = exec -> first /next, total = exec -> first /response, done = exec -> second /next",
            self.rounds
        );
        println!(
            "  {:<18} {:>7} {:>11} {:>11} {:>25} {:>11} {:>8} {:>8} {:>8} {:>9}  reached the sinks",
            "role",
            "ok",
            "init",
            "total",
            "total p10 .. p90",
            "done",
            "init/bw",
            "total/bw",
            "paired",
            "python/x"
        );
        for measured in &self.roles {
            let ratios = self.ratios(measured);
            let total = measured.total();
            let spread = total.map_or_else(
                || "-".to_owned(),
                |s| format!("{} .. {}", ms(s.p10), ms(s.p90)),
            );
            let exported = match measured.received.expected_exports(measured.role) {
                Some(0) => "  <- nothing of the expected kind arrived",
                _ => "",
            };
            println!(
                "  {:<18} {:>7} {:>11} {:>11} {:>25} {:>11} {:>8} {:>8} {:>8} {:>9}  {}{exported}",
                measured.role.name(),
                format!("{}/{}", measured.ok().count(), measured.runs.len()),
                cell(measured.init()),
                cell(total),
                spread,
                cell(measured.done()),
                factor(ratios.init),
                factor(ratios.total),
                factor(ratios.total_paired),
                ratios
                    .python_over
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}x")),
                measured.received.describe(),
            );
            if let Some(first) = measured.failures.first() {
                println!(
                    "  {:<18} {} failed run(s), the first: {first}",
                    "",
                    measured.failures.len()
                );
            }
        }
        println!(
            "  bw = bare-work (the same work, no observability); paired = median of the per-round ratios; \
             python/x = the Python original's total over this role's"
        );
        println!(
            "  goals for ours: init/bw <= {INIT_GOAL:.2}x, total/bw <= {TOTAL_GOAL:.2}x \
             (python/x is information, not a goal); old paired = the same per-round ratio over \
             bare-work-in-bench, the baseline before issue 16"
        );
        for measured in self
            .roles
            .iter()
            .filter(|m| matches!(m.role, Role::Ours(_)))
        {
            let ratios = self.ratios(measured);
            let verdict = |value: Option<f64>, ok: fn(f64) -> bool| match value {
                None => "n/a",
                Some(v) if ok(v) => "met",
                Some(_) => "NOT met",
            };
            println!(
                "    {:<18} init {} ({}), total {} ({}; paired {}; old paired {}), python/x {}",
                measured.role.name(),
                factor(ratios.init),
                verdict(ratios.init, |v| v <= INIT_GOAL),
                factor(ratios.total),
                verdict(ratios.total, |v| v <= TOTAL_GOAL),
                factor(ratios.total_paired),
                factor(ratios.total_over_control_paired),
                ratios
                    .python_over
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}x")),
            );
        }
        if let Some(control) = self.role(Role::BareWorkInBench) {
            let ratios = self.ratios(control);
            println!(
                "  correction (control): bare-work-in-bench / bare-work: init {}, total {} (paired {}); \
                 above 1 means the old in-bench baseline started slower and flattered every ratio",
                factor(ratios.init),
                factor(ratios.total),
                factor(ratios.total_paired),
            );
        }
        let size = |role: Role| {
            self.role(role)
                .and_then(|m| m.executable_bytes)
                .map_or_else(|| "-".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6))
        };
        println!(
            "  executables: bootstrap {} (with xray-segments, the segments role: {}), bare-work {}, \
             bare-hello {}, lr-logs {}, lr-otel {} (each `cargo build --release` on its own); the \
             bench executable (bare-work-in-bench) {}",
            size(Role::Ours(crate::roles::Exporter::OtlpUdp)),
            size(Role::Ours(crate::roles::Exporter::Segments)),
            size(Role::BareWork),
            size(Role::BareHello),
            size(Role::LrLogs),
            size(Role::LrOtel),
            size(Role::BareWorkInBench),
        );
    }

    /// The raw results as JSON (schema in `docs/benchmarks.md`).
    pub(crate) fn to_json(&self) -> Value {
        let millis = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let stats = |s: Option<Stats>| {
            s.map_or(Value::Null, |s| {
                json!({
                    "median": millis(s.median),
                    "mean": millis(s.mean),
                    "p10": millis(s.p10),
                    "p90": millis(s.p90),
                    "min": millis(s.min),
                })
            })
        };
        let samples = |m: &Measured, part: fn(&ColdStart) -> Option<Duration>| {
            m.runs
                .iter()
                .map(|r| {
                    r.as_ref()
                        .and_then(part)
                        .map_or(Value::Null, |d| json!(millis(d)))
                })
                .collect::<Vec<_>>()
        };
        let roles: Vec<Value> = self
            .roles
            .iter()
            .map(|m| {
                let ratios = self.ratios(m);
                let r = m.received;
                json!({
                    "name": m.role.name(),
                    "kind": m.role.kind(),
                    "description": m.role.description(),
                    "executable_bytes": m.executable_bytes,
                    "runs": m.runs.len(),
                    "failed": m.failures.len(),
                    "first_failure": m.failures.first(),
                    "init_ms": stats(m.init()),
                    "total_ms": stats(m.total()),
                    "done_ms": stats(m.done()),
                    "samples_ms": {
                        "init": samples(m, |r| Some(r.init)),
                        "total": samples(m, |r| Some(r.total)),
                        "done": samples(m, |r| r.done),
                    },
                    "received": {
                        "checkip_requests": r.outbound_calls,
                        "segment_datagrams": r.segment_datagrams,
                        "otlp_datagrams": r.otlp_datagrams,
                        "otlp_http_posts": r.otlp_posts,
                        "otlp_http_signed_posts": r.signed_posts,
                        "expected_exports": r.expected_exports(m.role),
                    },
                    "ratios": {
                        "init_over_bare_work": ratios.init,
                        "total_over_bare_work": ratios.total,
                        "total_over_bare_work_paired": ratios.total_paired,
                        "python_over_this": ratios.python_over,
                        "total_over_bare_work_in_bench": ratios.total_over_control,
                        "total_over_bare_work_in_bench_paired": ratios.total_over_control_paired,
                    },
                })
            })
            .collect();
        let (generated, machine) = crate::common::generated_on();
        json!({
            "schema": "hello-lambda/cold-start/v2",
            "generated_unix": generated,
            "machine": machine,
            "rounds": self.rounds,
            "baseline": Role::BareWork.name(),
            "goals": {
                "init_over_bare_work_max": INIT_GOAL,
                "total_over_bare_work_max": TOTAL_GOAL,
            },
            "control": Role::BareWorkInBench.name(),
            "roles": roles,
        })
    }

    pub(crate) fn write_json(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }
}
