//! CPU PER INVOCATION in a real process: the executable under test is started against a local
//! Runtime API stand-in ([`warm_api`], `benches/common/warm_api.rs`), its outbound call answered
//! on loopback, its spans sent to local sinks, its stdout and stderr read through pipes (as Lambda reads them). After a
//! warm-up, the bench reads the process's CPU time, serves `CPU_INVOCATIONS` (default 3,000)
//! warm invocations, waits until the environment is idle again (every response in, the span
//! export done, every poller back on `/next`), reads the CPU time again and divides.
//!
//! CPU time is user + system of the whole process, all threads: `utime + stime` from
//! `/proc/PID/stat` (clock ticks, `getconf CLK_TCK`, usually 10 ms: over 3,000 invocations of
//! ~300 µs that is ±1%), and, finer, the sum of the live threads' on-CPU nanoseconds from
//! `/proc/PID/task/*/schedstat` (a thread that ended in between would be missing from it; the
//! bench says so). Wall time is printed too, but on a shared machine it is mostly the machine.
//!
//! Cases (each at concurrency 1 and 64, `AWS_LAMBDA_MAX_CONCURRENCY=64` with 64 `/next`s served
//! at once): `bare-work` (`benches/baselines/bare-work`: the same work, plain `lambda_runtime`;
//! `run_concurrent` at 64), `lr-logs` (`benches/baselines/lr-logs`: the function's handler on
//! the same `lambda_runtime` with its documented logging, no span export: a reference), and
//! `bootstrap` with OTLP over UDP, the same with
//! `LOG_BUFFERING=false` (one `write` per log line), with `AWS_LAMBDA_LOG_LEVEL=WARN`, with
//! `OTEL_SDK_DISABLED=true`, with all three levers that remove work (SDK disabled, WARN,
//! `POWERTOOLS_METRICS_DISABLED=true`), and with OTLP/HTTP to a local receiver. Every case runs `CPU_REPEATS` times (default 3), the cases interleaved in a shuffled
//! order per repeat; the table shows the median and the spread, the tax over `bare-work` at the
//! same concurrency, and what reached the sinks. The JSON goes to
//! `<target>/cpu-per-invocation.json` (`CPU_PER_INVOCATION_JSON` overrides).
//!
//! The executables are built by `cargo build` at the start, as the package is built
//! (`benches/common/executables.rs`). Under `cargo test` (no `--bench`) it is a smoke test:
//! 20 invocations after 5, once, at concurrency 1 and 4.
//!
//! With `CPU_OUTBOUND_DELAY_MS` (default 0) the public-IP stand-in answers after that delay, as a
//! remote service does: at concurrency 1 the process then sleeps inside every invocation, and
//! every case costs several times what it costs answered at once (bare work about 80 µs at once,
//! 305–350 µs with 20 ms in this bench); at concurrency 64 the invocations in flight keep the
//! process busy and the figures stay closer to the hot ones. That is the regime a real function,
//! and an outside harness with a slower stand-in, runs in; the default measures the hot path.
//!
//! Knobs: `CPU_INVOCATIONS`, `CPU_WARMUP` (default 200), `CPU_REPEATS`, `CPU_CONCURRENCY`
//! (comma-separated, default `1,64`), `CPU_CASES` (comma-separated case names),
//! `CPU_OUTBOUND_DELAY_MS`, `BENCH_BUILD=no`.

#[path = "../common/mod.rs"]
mod common;

#[path = "../common/executables.rs"]
mod executables;

#[allow(dead_code)]
#[path = "../cold_start/runtime_api.rs"]
mod runtime_api;

#[allow(dead_code)]
#[path = "../cold_start/roles.rs"]
mod roles;

#[path = "../common/process.rs"]
mod process;

#[path = "../common/warm_api.rs"]
mod warm_api;

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use process::{
    Killed, Output, drain, env_list, env_number, load_average, median, micros_per_tick, read_cpu,
    selected, write_json,
};
use roles::{Exporter, Role, Sinks};
use serde_json::{Value, json};
use warm_api::WarmRuntimeApi;

const EVENT: &[u8] = include_bytes!("../../events/success.json");

/// How long the warm-up or the measured phase may take before the case is given up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);

/// One configuration of one executable.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    what: &'static str,
    /// `BareWork`, `LrLogs` or `Ours(exporter)`: which executable and base environment
    /// (`roles::configure`).
    role: Role,
    /// Variables set on top of the role's.
    extra: &'static [(&'static str, &'static str)],
}

const CASES: [Case; 8] = [
    Case {
        name: "bare-work",
        what: "the same work, plain lambda_runtime, no observability (its own release binary)",
        role: Role::BareWork,
        extra: &[],
    },
    Case {
        name: "lr-logs",
        what: "the same handler on lambda_runtime with its documented logging (init_default_subscriber), no span export",
        role: Role::LrLogs,
        extra: &[],
    },
    Case {
        name: "otlp-udp",
        what: "bootstrap, OTLP over UDP to a daemon stand-in (the default inside Lambda)",
        role: Role::Ours(Exporter::OtlpUdp),
        extra: &[],
    },
    Case {
        name: "otlp-udp-line-writes",
        what: "as otlp-udp, LOG_BUFFERING=false (one write per log line: the lever's control)",
        role: Role::Ours(Exporter::OtlpUdp),
        extra: &[("LOG_BUFFERING", "false")],
    },
    Case {
        name: "otlp-udp-warn",
        what: "as otlp-udp, AWS_LAMBDA_LOG_LEVEL=WARN (no INFO lines)",
        role: Role::Ours(Exporter::OtlpUdp),
        extra: &[("AWS_LAMBDA_LOG_LEVEL", "WARN")],
    },
    Case {
        name: "sdk-disabled",
        what: "bootstrap, OTEL_SDK_DISABLED=true (logs and metrics, no spans)",
        role: Role::Ours(Exporter::OtlpUdp),
        extra: &[("OTEL_SDK_DISABLED", "true")],
    },
    Case {
        name: "floor",
        what: "bootstrap, OTEL_SDK_DISABLED=true, AWS_LAMBDA_LOG_LEVEL=WARN, POWERTOOLS_METRICS_DISABLED=true",
        role: Role::Ours(Exporter::OtlpUdp),
        extra: &[
            ("OTEL_SDK_DISABLED", "true"),
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ("POWERTOOLS_METRICS_DISABLED", "true"),
        ],
    },
    Case {
        name: "otlp-http",
        what: "bootstrap, OTLP/HTTP to a local receiver (answers 200 at once)",
        role: Role::Ours(Exporter::OtlpHttp),
        extra: &[],
    },
];

/// The settings of one bench run.
#[derive(Debug)]
struct Settings {
    invocations: u64,
    warmup: u64,
    repeats: usize,
    concurrency: Vec<usize>,
    cases: Vec<Case>,
    /// How long the public-IP stand-in waits before it answers (`CPU_OUTBOUND_DELAY_MS`,
    /// default 0): with a delay the process waits inside every invocation, as a real outbound
    /// call makes it (and, at concurrency 1, sleeps).
    outbound_delay: Duration,
}

impl Settings {
    fn from_env(benchmarking: bool) -> Self {
        let (invocations, warmup, repeats, concurrency) = if benchmarking {
            (3_000, 200, 3, "1,64")
        } else {
            (20, 5, 1, "1,4")
        };
        let concurrency = env_list("CPU_CONCURRENCY", concurrency);
        let cases = CASES
            .into_iter()
            .filter(|case| selected("CPU_CASES", case.name))
            .collect();
        Self {
            invocations: env_number("CPU_INVOCATIONS", invocations).max(1),
            warmup: env_number("CPU_WARMUP", warmup),
            repeats: env_number("CPU_REPEATS", repeats as u64).max(1) as usize,
            concurrency,
            cases,
            outbound_delay: Duration::from_millis(env_number("CPU_OUTBOUND_DELAY_MS", 0)),
        }
    }
}

/// One measured run of one case.
#[derive(Debug, Clone)]
struct Run {
    case: &'static str,
    concurrency: usize,
    invocations: u64,
    cpu_us_per_invocation: f64,
    sched_us_per_invocation: f64,
    wall_us_per_invocation: f64,
    threads_before: usize,
    threads_after: usize,
    log_bytes_per_invocation: f64,
    outbound_per_invocation: f64,
    exports_per_invocation: Option<f64>,
    errors: u64,
    first_error: Option<String>,
}

fn run_case(
    case: Case,
    concurrency: usize,
    settings: &Settings,
    executable: &Path,
    sinks: &Sinks,
    tick_us: f64,
) -> Result<Run, String> {
    let api = WarmRuntimeApi::start(EVENT);
    let mut command = Command::new(executable);
    roles::configure(&mut command, case.role, &api.address.to_string(), sinks);
    command.envs(case.extra.iter().copied());
    if concurrency > 1 {
        command.env("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string());
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|err| format!("spawn {}: {err}", executable.display()))?;
    let log_bytes = Arc::new(Output::default());
    if let Some(out) = child.stdout.take() {
        drain(out, log_bytes.clone());
    }
    if let Some(err) = child.stderr.take() {
        drain(err, log_bytes.clone());
    }
    let child = Killed(child);
    let pid = child.0.id();

    // Warm-up: at least one invocation per poller, so every connection is open.
    api.release(settings.warmup.max(concurrency as u64));
    api.wait_idle(concurrency, PHASE_TIMEOUT)?;
    // Datagrams and log lines of the warm-up may still be in flight.
    std::thread::sleep(Duration::from_millis(50));
    let sinks_before = sinks.received();
    let logs_before = log_bytes.bytes();
    let before = read_cpu(pid)?;
    let started = Instant::now();

    api.release(settings.invocations);
    let progress = api.wait_idle(concurrency, PHASE_TIMEOUT)?;
    let after = read_cpu(pid)?;
    let wall = started.elapsed();
    std::thread::sleep(Duration::from_millis(50));
    let received = sinks.received().since(&sinks_before);
    let logs = log_bytes.bytes() - logs_before;
    drop(child);

    let n = settings.invocations as f64;
    Ok(Run {
        case: case.name,
        concurrency,
        invocations: settings.invocations,
        cpu_us_per_invocation: (after.ticks - before.ticks) as f64 * tick_us / n,
        sched_us_per_invocation: after.sched_ns.saturating_sub(before.sched_ns) as f64 / 1e3 / n,
        wall_us_per_invocation: wall.as_secs_f64() * 1e6 / n,
        threads_before: before.threads,
        threads_after: after.threads,
        log_bytes_per_invocation: logs as f64 / n,
        outbound_per_invocation: received.outbound_calls as f64 / n,
        exports_per_invocation: received.expected_exports(case.role).map(|e| e as f64 / n),
        errors: progress.errors,
        first_error: progress.first_error,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let benchmarking = args.iter().any(|a| a == "--bench");
    let started = Instant::now();
    let settings = Settings::from_env(benchmarking);
    let built = executables::build(false).unwrap_or_else(|err| panic!("{err}"));
    let dir = std::env::temp_dir().join(format!("hello-lambda-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the executables");
    let bootstrap = executables::stage(&built.bootstrap, &dir, "bootstrap");
    let bare_work = executables::stage(&built.bare_work, &dir, "bare-work");
    let lr_logs = settings
        .cases
        .iter()
        .any(|case| case.role == Role::LrLogs)
        .then(|| {
            let built = executables::build_lambda_runtime_stack("lr-logs")
                .unwrap_or_else(|err| panic!("{err}"));
            executables::stage(&built, &dir, "lr-logs")
        });
    let tick_us = micros_per_tick();
    let sinks = Sinks::with_checkip_delay(settings.outbound_delay);
    let load_before = load_average();
    println!(
        "cpu per invocation: {} warm invocations after {} of warm-up, {} repeat(s), concurrency {:?}, outbound call answered after {:?}; load average {load_before}",
        settings.invocations,
        settings.warmup,
        settings.repeats,
        settings.concurrency,
        settings.outbound_delay
    );

    let mut runs: Vec<Run> = Vec::new();
    let mut failures: Vec<(String, usize, String)> = Vec::new();
    let mut shuffle = common::Shuffle::new();
    for _ in 0..settings.repeats {
        for &concurrency in &settings.concurrency {
            for i in shuffle.order(settings.cases.len()) {
                let case = settings.cases[i];
                let executable = match case.role {
                    Role::BareWork => &bare_work,
                    Role::LrLogs => lr_logs.as_ref().expect("built when selected"),
                    _ => &bootstrap,
                };
                match run_case(case, concurrency, &settings, executable, &sinks, tick_us) {
                    Ok(run) => {
                        println!(
                            "  {:<14} c={:<3} {:>8.1} µs CPU/invocation (schedstat {:>8.1}), wall {:>8.1} µs",
                            run.case,
                            run.concurrency,
                            run.cpu_us_per_invocation,
                            run.sched_us_per_invocation,
                            run.wall_us_per_invocation
                        );
                        runs.push(run);
                    }
                    Err(err) => {
                        println!("  {:<14} c={concurrency:<3} FAILED: {err}", case.name);
                        failures.push((case.name.to_owned(), concurrency, err));
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let load_after = load_average();
    let summary = summarize(&settings, &runs);
    print_table(&summary, &load_before, &load_after);
    let (generated, mut machine) = common::generated_on();
    machine["load_average_before"] = json!(load_before);
    machine["load_average_after"] = json!(load_after);
    let document = json!({
        "schema": "hello-lambda/cpu-per-invocation/v1",
        "generated_unix": generated,
        "machine": machine,
        "invocations": settings.invocations,
        "warmup": settings.warmup,
        "repeats": settings.repeats,
        "outbound_delay_ms": settings.outbound_delay.as_secs_f64() * 1e3,
        "microseconds_per_tick": tick_us,
        "cases": summary,
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        "failures": failures
            .iter()
            .map(|(case, c, err)| json!({ "case": case, "concurrency": c, "error": err }))
            .collect::<Vec<_>>(),
    });
    // A smoke run (`cargo test`) leaves the last measurement's JSON alone.
    if benchmarking || std::env::var_os("CPU_PER_INVOCATION_JSON").is_some() {
        write_json(
            &executables::json_path("CPU_PER_INVOCATION_JSON", "cpu-per-invocation.json"),
            &document,
        );
    } else {
        println!("  smoke run: no JSON written (CPU_PER_INVOCATION_JSON=path writes one)");
    }
    finish(started, &failures, &runs);
}

/// The closing line; fails the bench on a failed case or an `/error`.
fn finish(started: Instant, failures: &[(String, usize, String)], runs: &[Run]) {
    println!(
        "cpu_per_invocation bench: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} case(s) failed; the first: {:?}",
        failures.len(),
        failures.first()
    );
    let with_errors: Vec<&Run> = runs.iter().filter(|r| r.errors > 0).collect();
    assert!(
        with_errors.is_empty(),
        "invocations answered with /error: {:?}",
        with_errors.first().map(|r| (&r.case, &r.first_error))
    );
}

fn run_json(run: &Run) -> Value {
    json!({
        "case": run.case,
        "concurrency": run.concurrency,
        "invocations": run.invocations,
        "cpu_us_per_invocation": run.cpu_us_per_invocation,
        "schedstat_us_per_invocation": run.sched_us_per_invocation,
        "wall_us_per_invocation": run.wall_us_per_invocation,
        "threads_before": run.threads_before,
        "threads_after": run.threads_after,
        "log_bytes_per_invocation": run.log_bytes_per_invocation,
        "outbound_calls_per_invocation": run.outbound_per_invocation,
        "exports_per_invocation": run.exports_per_invocation,
        "errors": run.errors,
    })
}

/// One row per case and concurrency: medians over the repeats, the tax over bare-work.
fn summarize(settings: &Settings, runs: &[Run]) -> Vec<Value> {
    let mut rows = Vec::new();
    for &concurrency in &settings.concurrency {
        let of = |name: &str| -> Vec<&Run> {
            runs.iter()
                .filter(|r| r.case == name && r.concurrency == concurrency)
                .collect()
        };
        let med = |rs: &[&Run], f: fn(&Run) -> f64| median(rs.iter().map(|r| f(r)).collect());
        let bare = med(&of("bare-work"), |r| r.cpu_us_per_invocation);
        for case in &settings.cases {
            let rs = of(case.name);
            let cpu = med(&rs, |r| r.cpu_us_per_invocation);
            let values: Vec<f64> = rs.iter().map(|r| r.cpu_us_per_invocation).collect();
            let (low, high) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            rows.push(json!({
                "case": case.name,
                "what": case.what,
                "concurrency": concurrency,
                "runs": rs.len(),
                "cpu_us_per_invocation": cpu,
                "cpu_us_min": values.first().map(|_| low),
                "cpu_us_max": values.first().map(|_| high),
                "schedstat_us_per_invocation": med(&rs, |r| r.sched_us_per_invocation),
                "wall_us_per_invocation": med(&rs, |r| r.wall_us_per_invocation),
                "over_bare_work_us": cpu.zip(bare).map(|(c, b)| c - b),
                "over_bare_work_ratio": cpu.zip(bare).map(|(c, b)| c / b),
                "log_bytes_per_invocation": med(&rs, |r| r.log_bytes_per_invocation),
                "outbound_calls_per_invocation": med(&rs, |r| r.outbound_per_invocation),
                "exports_per_invocation": med(&rs, |r| r.exports_per_invocation.unwrap_or(f64::NAN))
                    .filter(|v| v.is_finite()),
                "threads": rs.iter().map(|r| r.threads_after).max(),
                "threads_changed": rs.iter().any(|r| r.threads_after != r.threads_before),
            }));
        }
    }
    rows
}

fn print_table(rows: &[Value], load_before: &str, load_after: &str) {
    let num = |v: &Value, key: &str, digits: usize| {
        v[key]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
    };
    println!();
    println!(
        "CPU per warm invocation (user + sys of the whole process, /proc/PID/stat), median of the runs; \
         load average {load_before} before, {load_after} after"
    );
    println!(
        "  {:<14} {:>4} {:>10} {:>19} {:>10} {:>10} {:>9} {:>10} {:>8} {:>8}  what",
        "case",
        "c",
        "CPU µs",
        "min .. max",
        "schedstat",
        "over bare",
        "× bare",
        "log B/inv",
        "GET/inv",
        "exp/inv"
    );
    for row in rows {
        let spread = format!(
            "{} .. {}",
            num(row, "cpu_us_min", 1),
            num(row, "cpu_us_max", 1)
        );
        let changed = if row["threads_changed"].as_bool() == Some(true) {
            "  (threads came or went: schedstat misses the ones that ended)"
        } else {
            ""
        };
        println!(
            "  {:<14} {:>4} {:>10} {:>19} {:>10} {:>10} {:>9} {:>10} {:>8} {:>8}  {}{changed}",
            row["case"].as_str().unwrap_or("?"),
            row["concurrency"],
            num(row, "cpu_us_per_invocation", 1),
            spread,
            num(row, "schedstat_us_per_invocation", 1),
            num(row, "over_bare_work_us", 1),
            num(row, "over_bare_work_ratio", 2),
            num(row, "log_bytes_per_invocation", 0),
            num(row, "outbound_calls_per_invocation", 2),
            num(row, "exports_per_invocation", 2),
            row["what"].as_str().unwrap_or(""),
        );
    }
    println!(
        "  over bare = CPU µs minus bare-work's at the same concurrency; exp/inv = span exports that \
         reached the sink per invocation (datagrams or POSTs); log B/inv = stdout + stderr bytes"
    );
}
