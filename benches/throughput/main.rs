//! THROUGHPUT on Lambda Managed Instances: one execution environment serving
//! `AWS_LAMBDA_MAX_CONCURRENCY` = 1, 8 and 64 invocations at once, each of whose outbound call
//! (the public-IP GET) is answered after a fixed delay (`THROUGHPUT_DELAY_MS`, default 20 ms: a
//! remote service's latency, which concurrency overlaps). Per case and concurrency, after a
//! warm-up, `THROUGHPUT_INVOCATIONS` (default 2,000) invocations at concurrency 1 and
//! `THROUGHPUT_INVOCATIONS_CONCURRENT` (default 6,000; `THROUGHPUT_INVOCATIONS` alone sets both)
//! above it are served and measured:
//!
//! - **invocations per CPU-second**: the invocations ÷ the process's user + system time over
//!   them (`/proc/PID/stat`, all threads; schedstat beside it, as in `cpu_per_invocation`);
//! - **p50 and p99 latency**: from the Runtime API stand-in handing out the event on `/next` to
//!   its reading the `/response` (`benches/common/warm_api.rs`);
//! - **RSS** at the end (`VmRSS`, `/proc/PID/status`);
//! - **spans delivered**: counted at the receivers (the OTLP datagrams' and the OTLP/HTTP bodies'
//!   protobuf decoded), over the process's life, against the case's spans per invocation × every
//!   invocation served; the bench waits up to 15 s for late ones (a batch processor's timer) and
//!   fails if any is missing.
//!
//! Cases: `bare-work` (`benches/baselines/bare-work`: the work, plain `lambda_runtime`,
//! `run_concurrent` at > 1, no observability), `otlp-udp` (`bootstrap`, OTLP over UDP to a daemon
//! stand-in, the default inside Lambda), `udp-line-writes` (the same with `LOG_BUFFERING=false`: one `write` per line, a control), `udp-warn` (the same with `AWS_LAMBDA_LOG_LEVEL=WARN`:
//! no INFO lines), `otlp-http` (`bootstrap`, OTLP/HTTP to a loopback receiver) and
//! `lr-otel` (`benches/baselines/lr-otel`: the function's own handler, its log lines and spans,
//! on `lambda_runtime`'s own stack, `run_concurrent` + `TracingLayer`, tracing-subscriber JSON logs,
//! tracing-opentelemetry, a batch `SdkTracerProvider` with OTLP/HTTP to the same kind of
//! receiver, `force_flush` at the end of every handler call). The stand-ins are
//! `cpu_per_invocation`'s (`TCP_NODELAY`, each answer in one write, as Lambda's Go `net/http`).
//! Every case runs `THROUGHPUT_REPEATS` times (default 2), the cases in a shuffled order per
//! repeat and concurrency; the table shows medians and the spread of invocations per CPU-second.
//! The JSON goes to `<target>/throughput.json` (`THROUGHPUT_JSON` overrides).
//!
//! The RSS check (`THROUGHPUT_RSS_INVOCATIONS`, e.g. 100000; off by default, long): each selected
//! case at concurrency `THROUGHPUT_RSS_CONCURRENCY` (default 64) serves that many invocations in
//! steps of 10,000 and its `VmRSS` is read after each step.
//!
//! Under `cargo test` (no `--bench`) it is a smoke test: dev builds, 5 invocations after 2 at
//! concurrency 1 and 4, once; it asserts that every invocation was answered (no `/error`) and
//! every span arrived, nothing about time.
//!
//! Knobs: `THROUGHPUT_INVOCATIONS`, `THROUGHPUT_INVOCATIONS_CONCURRENT`, `THROUGHPUT_WARMUP` (default 100, at least one per poller),
//! `THROUGHPUT_REPEATS`, `THROUGHPUT_CONCURRENCY` (comma-separated, default `1,8,64`),
//! `THROUGHPUT_CASES` (comma-separated case names), `THROUGHPUT_DELAY_MS`,
//! `THROUGHPUT_RSS_INVOCATIONS`, `THROUGHPUT_RSS_CONCURRENCY`, `THROUGHPUT_JSON`,
//! `BENCH_BUILD=no`.

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
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use process::{
    Killed, Output, drain, env_list, env_number, load_average, median, micros_per_tick, read_cpu,
    rss_kib, selected, write_json,
};
use roles::{Exporter, Role, Sinks};
use serde_json::{Value, json};
use warm_api::WarmRuntimeApi;

const EVENT: &[u8] = include_bytes!("../../events/success.json");

/// How long the warm-up or the measured phase may take before the case is given up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

/// How long the bench waits for the last spans after the last response: `lr-otel`'s last
/// `TracingLayer` span leaves with the batch processor's 5 s timer (its flush runs inside it).
const SPAN_TIMEOUT: Duration = Duration::from_secs(15);

/// The RSS check's step.
const RSS_STEP: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Executable {
    BareWork,
    Bootstrap,
    LrOtel,
}

/// Where a case's spans go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SpanSink {
    None,
    /// OTLP datagrams to the daemon stand-in.
    Udp,
    /// OTLP/HTTP to the loopback receiver.
    Http,
}

/// One executable in one configuration.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    what: &'static str,
    executable: Executable,
    /// The environment (`roles::configure`).
    role: Role,
    /// Variables set on top of the role's.
    extra: &'static [(&'static str, &'static str)],
    sink: SpanSink,
    /// Spans every invocation must deliver.
    spans_per_invocation: u64,
}

const CASES: [Case; 6] = [
    Case {
        name: "bare-work",
        what: "the same work, plain lambda_runtime (run_concurrent at > 1), no observability",
        executable: Executable::BareWork,
        role: Role::BareWork,
        extra: &[],
        sink: SpanSink::None,
        spans_per_invocation: 0,
    },
    Case {
        name: "otlp-udp",
        what: "bootstrap, OTLP over UDP to a daemon stand-in (the default inside Lambda)",
        executable: Executable::Bootstrap,
        role: Role::Ours(Exporter::OtlpUdp),
        extra: &[],
        sink: SpanSink::Udp,
        // The invocation span, the handler's and the outbound GET's.
        spans_per_invocation: 3,
    },
    Case {
        name: "udp-line-writes",
        what: "as otlp-udp, LOG_BUFFERING=false (one write per log line, no line timer): a control",
        executable: Executable::Bootstrap,
        role: Role::Ours(Exporter::OtlpUdp),
        extra: &[("LOG_BUFFERING", "false")],
        sink: SpanSink::Udp,
        spans_per_invocation: 3,
    },
    Case {
        name: "udp-warn",
        what: "as otlp-udp, AWS_LAMBDA_LOG_LEVEL=WARN (no INFO lines: what the spans alone cost)",
        executable: Executable::Bootstrap,
        role: Role::Ours(Exporter::OtlpUdp),
        extra: &[("AWS_LAMBDA_LOG_LEVEL", "WARN")],
        sink: SpanSink::Udp,
        spans_per_invocation: 3,
    },
    Case {
        name: "otlp-http",
        what: "bootstrap, OTLP/HTTP to a loopback receiver",
        executable: Executable::Bootstrap,
        role: Role::Ours(Exporter::OtlpHttp),
        extra: &[],
        sink: SpanSink::Http,
        spans_per_invocation: 3,
    },
    Case {
        name: "lr-otel",
        what: "the same handler on lambda_runtime's stack: run_concurrent + TracingLayer, JSON fmt, tracing-opentelemetry, OTLP/HTTP, force_flush per call",
        executable: Executable::LrOtel,
        role: Role::LrOtel,
        extra: &[],
        sink: SpanSink::Http,
        // TracingLayer's `Lambda runtime invoke` span, the handler's `getRuntimeInfo` and the
        // outbound GET's.
        spans_per_invocation: 3,
    },
];

/// The settings of one bench run.
#[derive(Debug)]
struct Settings {
    /// Measured invocations at concurrency 1, and above 1.
    invocations: u64,
    invocations_concurrent: u64,
    warmup: u64,
    repeats: usize,
    concurrency: Vec<usize>,
    cases: Vec<Case>,
    delay: Duration,
    rss_invocations: u64,
    rss_concurrency: usize,
}

impl Settings {
    fn from_env(benchmarking: bool) -> Self {
        let (invocations, concurrent, warmup, repeats, concurrency) = if benchmarking {
            (2_000, 6_000, 100, 2, "1,8,64")
        } else {
            (5, 5, 2, 1, "1,4")
        };
        let invocations = env_number("THROUGHPUT_INVOCATIONS", invocations).max(1);
        Self {
            invocations,
            // THROUGHPUT_INVOCATIONS alone sets both.
            invocations_concurrent: env_number(
                "THROUGHPUT_INVOCATIONS_CONCURRENT",
                if std::env::var_os("THROUGHPUT_INVOCATIONS").is_some() {
                    invocations
                } else {
                    concurrent
                },
            )
            .max(1),
            warmup: env_number("THROUGHPUT_WARMUP", warmup),
            repeats: env_number("THROUGHPUT_REPEATS", repeats).max(1) as usize,
            concurrency: env_list("THROUGHPUT_CONCURRENCY", concurrency),
            cases: CASES
                .into_iter()
                .filter(|case| selected("THROUGHPUT_CASES", case.name))
                .collect(),
            delay: Duration::from_millis(env_number("THROUGHPUT_DELAY_MS", 20)),
            rss_invocations: env_number("THROUGHPUT_RSS_INVOCATIONS", 0),
            rss_concurrency: env_number("THROUGHPUT_RSS_CONCURRENCY", 64).max(1) as usize,
        }
    }
}

/// The executables, copied into a directory of the bench's own.
#[derive(Debug)]
struct Executables {
    bare_work: PathBuf,
    bootstrap: PathBuf,
    lr_otel: PathBuf,
}

impl Executables {
    fn of(&self, executable: Executable) -> &Path {
        match executable {
            Executable::BareWork => &self.bare_work,
            Executable::Bootstrap => &self.bootstrap,
            Executable::LrOtel => &self.lr_otel,
        }
    }
}

/// A function process against its own Runtime API stand-in, its output drained and counted.
struct Environment {
    api: WarmRuntimeApi,
    child: Killed,
    output: Arc<Output>,
    /// What the sinks had received before the process started.
    sinks_at_start: roles::Received,
    /// Invocations released so far.
    served: u64,
    concurrency: usize,
}

impl Environment {
    fn start(
        case: Case,
        concurrency: usize,
        executable: &Path,
        sinks: &Sinks,
    ) -> Result<Self, String> {
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
        let sinks_at_start = sinks.received();
        let mut child = command
            .spawn()
            .map_err(|err| format!("spawn {}: {err}", executable.display()))?;
        let output = Arc::new(Output::default());
        if let Some(out) = child.stdout.take() {
            drain(out, output.clone());
        }
        if let Some(err) = child.stderr.take() {
            drain(err, output.clone());
        }
        Ok(Self {
            api,
            child: Killed(child),
            output,
            sinks_at_start,
            served: 0,
            concurrency,
        })
    }

    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Serves `invocations` more and waits until the environment is idle again (every one
    /// answered, every poller back on `/next`); an error at once if the process exits.
    fn serve(&mut self, invocations: u64) -> Result<warm_api::Progress, String> {
        self.api.release(invocations);
        self.served += invocations;
        let deadline = Instant::now() + PHASE_TIMEOUT;
        loop {
            let waited = self.api.wait_idle(self.concurrency, Duration::from_secs(1));
            if waited.is_ok() || Instant::now() >= deadline {
                return waited;
            }
            if let Ok(Some(status)) = self.child.0.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return Err(format!(
                    "the process exited ({status}); its last output: {}",
                    self.output.tail()
                ));
            }
        }
    }

    /// Waits until every span of every invocation served so far arrived (or [`SPAN_TIMEOUT`]);
    /// returns the spans received since the process started.
    fn wait_for_spans(&self, case: Case, sinks: &Sinks) -> u64 {
        let expected = case.spans_per_invocation * self.served;
        let deadline = Instant::now() + SPAN_TIMEOUT;
        loop {
            let got = spans(case, &sinks.received().since(&self.sinks_at_start));
            if got >= expected {
                return got;
            }
            if Instant::now() >= deadline {
                // Where the missing spans went, if the daemon stand-in's socket lost them.
                if case.sink == SpanSink::Udp {
                    eprintln!(
                        "{}: {got} of {expected} spans arrived; the daemon stand-in's socket \
                         dropped {:?} datagram(s) (kernel, receive buffer full)",
                        case.name,
                        sinks.daemon.kernel_drops()
                    );
                }
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn spans(case: Case, received: &roles::Received) -> u64 {
    match case.sink {
        SpanSink::None => 0,
        SpanSink::Udp => received.otlp_datagram_spans as u64,
        SpanSink::Http => received.otlp_http_spans as u64,
    }
}

/// One measured run of one case.
#[derive(Debug, Clone)]
struct Run {
    case: &'static str,
    concurrency: usize,
    invocations: u64,
    cpu_seconds: f64,
    sched_seconds: f64,
    wall_seconds: f64,
    /// `None` when the process used less than a clock tick (a smoke run).
    invocations_per_cpu_second: Option<f64>,
    invocations_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    latencies: usize,
    rss_kib: u64,
    threads: usize,
    spans_expected: u64,
    spans_received: u64,
    log_bytes_per_invocation: f64,
    outbound_per_invocation: f64,
    errors: u64,
    first_error: Option<String>,
}

/// The `q` quantile (nearest rank) of sorted milliseconds.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn run_case(
    case: Case,
    concurrency: usize,
    settings: &Settings,
    executable: &Path,
    sinks: &Sinks,
    tick_us: f64,
) -> Result<Run, String> {
    let mut environment = Environment::start(case, concurrency, executable, sinks)?;
    let pid = environment.pid();

    // Warm-up: at least one invocation per poller, so every connection is open.
    environment.serve(settings.warmup.max(concurrency as u64))?;
    // Datagrams and log lines of the warm-up may still be in flight.
    std::thread::sleep(Duration::from_millis(50));
    environment.api.take_latencies();
    let sinks_before = sinks.received();
    let logs_before = environment.output.bytes();
    let before = read_cpu(pid)?;
    let started = Instant::now();

    let invocations = if concurrency > 1 {
        settings.invocations_concurrent
    } else {
        settings.invocations
    };
    let progress = environment.serve(invocations)?;
    let after = read_cpu(pid)?;
    let wall = started.elapsed().as_secs_f64();
    let rss = rss_kib(pid)?;
    let mut latencies: Vec<f64> = environment
        .api
        .take_latencies()
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let spans_received = environment.wait_for_spans(case, sinks);
    let received = sinks.received().since(&sinks_before);
    let logs = environment.output.bytes() - logs_before;
    let served = environment.served;
    drop(environment);

    let n = invocations as f64;
    let cpu_seconds = (after.ticks - before.ticks) as f64 * tick_us / 1e6;
    Ok(Run {
        case: case.name,
        concurrency,
        invocations,
        cpu_seconds,
        sched_seconds: after.sched_ns.saturating_sub(before.sched_ns) as f64 / 1e9,
        wall_seconds: wall,
        invocations_per_cpu_second: (cpu_seconds > 0.0).then(|| n / cpu_seconds),
        invocations_per_second: n / wall,
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        latencies: latencies.len(),
        rss_kib: rss,
        threads: after.threads,
        spans_expected: case.spans_per_invocation * served,
        spans_received,
        log_bytes_per_invocation: logs as f64 / n,
        outbound_per_invocation: received.outbound_calls as f64 / n,
        errors: progress.errors,
        first_error: progress.first_error,
    })
}

/// The RSS check of one case: `total` invocations at `concurrency`, `VmRSS` after every
/// [`RSS_STEP`].
fn rss_check(
    case: Case,
    concurrency: usize,
    total: u64,
    executable: &Path,
    sinks: &Sinks,
) -> Result<Value, String> {
    let mut environment = Environment::start(case, concurrency, executable, sinks)?;
    let pid = environment.pid();
    environment.serve(concurrency as u64)?;
    let rss_after_warmup = rss_kib(pid)?;
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut done = 0;
    while done < total {
        let step = RSS_STEP.min(total - done);
        errors = environment.serve(step)?.errors;
        environment.api.take_latencies();
        done += step;
        let rss = rss_kib(pid)?;
        println!(
            "  rss {:<10} c={concurrency:<3} {done:>7} invocations: VmRSS {:>7.1} MiB ({:.0} s)",
            case.name,
            rss as f64 / 1024.0,
            started.elapsed().as_secs_f64()
        );
        samples.push(json!({ "invocations": done, "rss_kib": rss }));
    }
    let spans_received = environment.wait_for_spans(case, sinks);
    let spans_expected = case.spans_per_invocation * environment.served;
    drop(environment);
    let at = |n: u64| {
        samples
            .iter()
            .find(|s| s["invocations"] == json!(n))
            .and_then(|s| s["rss_kib"].as_u64())
    };
    let first = samples.first().and_then(|s| s["rss_kib"].as_u64());
    let last = samples.last().and_then(|s| s["rss_kib"].as_u64());
    Ok(json!({
        "case": case.name,
        "concurrency": concurrency,
        "invocations": total,
        "rss_kib_after_warmup": rss_after_warmup,
        "rss_kib_at_10000": at(RSS_STEP).or(first),
        "rss_kib_at_end": last,
        "samples": samples,
        "seconds": started.elapsed().as_secs_f64(),
        "spans_expected": spans_expected,
        "spans_received": spans_received,
        "errors": errors,
    }))
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
    let lr_otel =
        executables::build_lambda_runtime_stack("lr-otel").unwrap_or_else(|err| panic!("{err}"));
    let dir = std::env::temp_dir().join(format!("hello-lambda-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the executables");
    let executables = Executables {
        bare_work: executables::stage(&built.bare_work, &dir, "bare-work"),
        bootstrap: executables::stage(&built.bootstrap, &dir, "bootstrap"),
        lr_otel: executables::stage(&lr_otel, &dir, "lr-otel"),
    };
    let tick_us = micros_per_tick();
    let sinks = Sinks::with_checkip_delay(settings.delay);
    let load_before = load_average();
    println!(
        "throughput: {} invocations at concurrency 1, {} above, after {} of warm-up, outbound call answered after {:?}, {} repeat(s), concurrency {:?}; load average {load_before}",
        settings.invocations,
        settings.invocations_concurrent,
        settings.warmup,
        settings.delay,
        settings.repeats,
        settings.concurrency
    );

    let mut runs: Vec<Run> = Vec::new();
    let mut failures: Vec<(String, usize, String)> = Vec::new();
    let mut shuffle = common::Shuffle::new();
    for _ in 0..settings.repeats {
        for &concurrency in &settings.concurrency {
            for i in shuffle.order(settings.cases.len()) {
                let case = settings.cases[i];
                let executable = executables.of(case.executable);
                match run_case(case, concurrency, &settings, executable, &sinks, tick_us) {
                    Ok(run) => {
                        println!(
                            "  {:<10} c={:<3} {:>8} inv/CPU-s, p50 {:>7.2} ms, p99 {:>7.2} ms, RSS {:>6.1} MiB, spans {}/{}, {:>6.0} inv/s",
                            run.case,
                            run.concurrency,
                            run.invocations_per_cpu_second
                                .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}")),
                            run.p50_ms,
                            run.p99_ms,
                            run.rss_kib as f64 / 1024.0,
                            run.spans_received,
                            run.spans_expected,
                            run.invocations_per_second,
                        );
                        runs.push(run);
                    }
                    Err(err) => {
                        println!("  {:<10} c={concurrency:<3} FAILED: {err}", case.name);
                        failures.push((case.name.to_owned(), concurrency, err));
                    }
                }
            }
        }
    }

    let mut rss_checks = Vec::new();
    if settings.rss_invocations > 0 {
        println!(
            "rss check: {} invocations at concurrency {}, VmRSS every {RSS_STEP}",
            settings.rss_invocations, settings.rss_concurrency
        );
        for case in &settings.cases {
            match rss_check(
                *case,
                settings.rss_concurrency,
                settings.rss_invocations,
                executables.of(case.executable),
                &sinks,
            ) {
                Ok(check) => rss_checks.push(check),
                Err(err) => {
                    println!("  rss {:<10} FAILED: {err}", case.name);
                    failures.push((format!("rss-{}", case.name), settings.rss_concurrency, err));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let load_after = load_average();
    let summary = summarize(&settings, &runs);
    print_table(&summary, &rss_checks, &load_before, &load_after);
    let (generated, mut machine) = common::generated_on();
    machine["load_average_before"] = json!(load_before);
    machine["load_average_after"] = json!(load_after);
    let document = json!({
        "schema": "hello-lambda/throughput/v1",
        "generated_unix": generated,
        "machine": machine,
        "invocations": settings.invocations,
        "invocations_concurrent": settings.invocations_concurrent,
        "warmup": settings.warmup,
        "repeats": settings.repeats,
        "outbound_delay_ms": settings.delay.as_secs_f64() * 1e3,
        "microseconds_per_tick": tick_us,
        "cases": summary,
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        "rss_checks": rss_checks,
        "failures": failures
            .iter()
            .map(|(case, c, err)| json!({ "case": case, "concurrency": c, "error": err }))
            .collect::<Vec<_>>(),
    });
    // A smoke run (`cargo test`) leaves the last measurement's JSON alone.
    if benchmarking || std::env::var_os("THROUGHPUT_JSON").is_some() {
        write_json(
            &executables::json_path("THROUGHPUT_JSON", "throughput.json"),
            &document,
        );
    } else {
        println!("  smoke run: no JSON written (THROUGHPUT_JSON=path writes one)");
    }
    finish(started, &failures, &runs, &rss_checks);
}

/// The closing line; fails the bench on a failed case, an `/error`, an unanswered invocation or a
/// missing span.
fn finish(started: Instant, failures: &[(String, usize, String)], runs: &[Run], rss: &[Value]) {
    println!(
        "throughput bench: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} case(s) failed; the first: {:?}",
        failures.len(),
        failures.first()
    );
    for run in runs {
        assert_eq!(
            run.errors, 0,
            "{} c={}: invocations answered with /error: {:?}",
            run.case, run.concurrency, run.first_error
        );
        assert_eq!(
            run.latencies as u64, run.invocations,
            "{} c={}: not every invocation was answered with a /response",
            run.case, run.concurrency
        );
        assert_eq!(
            run.spans_received, run.spans_expected,
            "{} c={}: spans received at the sink ≠ expected",
            run.case, run.concurrency
        );
    }
    for check in rss {
        assert_eq!(
            check["spans_received"], check["spans_expected"],
            "rss check {}: spans received ≠ expected",
            check["case"]
        );
        assert_eq!(
            check["errors"],
            json!(0),
            "rss check {}: /errors",
            check["case"]
        );
    }
}

fn run_json(run: &Run) -> Value {
    json!({
        "case": run.case,
        "concurrency": run.concurrency,
        "invocations": run.invocations,
        "cpu_seconds": run.cpu_seconds,
        "schedstat_seconds": run.sched_seconds,
        "wall_seconds": run.wall_seconds,
        "invocations_per_cpu_second": run.invocations_per_cpu_second,
        "invocations_per_second": run.invocations_per_second,
        "latency_p50_ms": run.p50_ms,
        "latency_p99_ms": run.p99_ms,
        "latency_max_ms": run.max_ms,
        "rss_kib": run.rss_kib,
        "threads": run.threads,
        "spans_expected": run.spans_expected,
        "spans_received": run.spans_received,
        "log_bytes_per_invocation": run.log_bytes_per_invocation,
        "outbound_calls_per_invocation": run.outbound_per_invocation,
        "errors": run.errors,
    })
}

/// One row per case and concurrency: medians over the repeats, the ratio to bare-work.
fn summarize(settings: &Settings, runs: &[Run]) -> Vec<Value> {
    let mut rows = Vec::new();
    for &concurrency in &settings.concurrency {
        let of = |name: &str| -> Vec<&Run> {
            runs.iter()
                .filter(|r| r.case == name && r.concurrency == concurrency)
                .collect()
        };
        let med = |rs: &[&Run], f: fn(&Run) -> f64| median(rs.iter().map(|r| f(r)).collect());
        let per_cpu_of = |rs: &[&Run]| -> Vec<f64> {
            rs.iter()
                .filter_map(|r| r.invocations_per_cpu_second)
                .collect()
        };
        let bare = median(per_cpu_of(&of("bare-work")));
        for case in &settings.cases {
            let rs = of(case.name);
            let values = per_cpu_of(&rs);
            let per_cpu = median(values.clone());
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
                "invocations_per_cpu_second": per_cpu,
                "invocations_per_cpu_second_min": values.first().map(|_| low),
                "invocations_per_cpu_second_max": values.first().map(|_| high),
                "of_bare_work": per_cpu.zip(bare).map(|(c, b)| c / b),
                "cpu_us_per_invocation": per_cpu.map(|c| 1e6 / c),
                "invocations_per_second": med(&rs, |r| r.invocations_per_second),
                "latency_p50_ms": med(&rs, |r| r.p50_ms),
                "latency_p99_ms": med(&rs, |r| r.p99_ms),
                "rss_kib": med(&rs, |r| r.rss_kib as f64),
                "spans_per_invocation_expected": case.spans_per_invocation,
                "spans_received": rs.iter().map(|r| r.spans_received).sum::<u64>(),
                "spans_expected": rs.iter().map(|r| r.spans_expected).sum::<u64>(),
                "log_bytes_per_invocation": med(&rs, |r| r.log_bytes_per_invocation),
                "outbound_calls_per_invocation": med(&rs, |r| r.outbound_per_invocation),
                "threads": rs.iter().map(|r| r.threads).max(),
            }));
        }
    }
    rows
}

fn print_table(rows: &[Value], rss: &[Value], load_before: &str, load_after: &str) {
    let num = |v: &Value, key: &str, digits: usize| {
        v[key]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
    };
    println!();
    println!(
        "Throughput per CPU-second (user + sys of the whole process), latency (event out on /next → /response in), \
         median of the runs; load average {load_before} before, {load_after} after"
    );
    println!(
        "  {:<10} {:>4} {:>10} {:>17} {:>7} {:>8} {:>9} {:>9} {:>8} {:>15} {:>10} {:>8}",
        "case",
        "c",
        "inv/CPU-s",
        "min .. max",
        "× bare",
        "CPU µs",
        "p50 ms",
        "p99 ms",
        "RSS MiB",
        "spans got/exp",
        "log B/inv",
        "inv/s"
    );
    for row in rows {
        let spread = format!(
            "{} .. {}",
            num(row, "invocations_per_cpu_second_min", 0),
            num(row, "invocations_per_cpu_second_max", 0)
        );
        println!(
            "  {:<10} {:>4} {:>10} {:>17} {:>7} {:>8} {:>9} {:>9} {:>8} {:>15} {:>10} {:>8}",
            row["case"].as_str().unwrap_or("?"),
            row["concurrency"],
            num(row, "invocations_per_cpu_second", 0),
            spread,
            num(row, "of_bare_work", 2),
            num(row, "cpu_us_per_invocation", 0),
            num(row, "latency_p50_ms", 2),
            num(row, "latency_p99_ms", 2),
            row["rss_kib"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k / 1024.0)),
            format!("{}/{}", row["spans_received"], row["spans_expected"]),
            num(row, "log_bytes_per_invocation", 0),
            num(row, "invocations_per_second", 0),
        );
    }
    println!(
        "  × bare = inv/CPU-s ÷ bare-work's at the same concurrency; CPU µs = 1e6 ÷ inv/CPU-s; \
         spans over every run, warm-ups included; inv/s = wall-clock throughput"
    );
    for check in rss {
        let mib = |key: &str| {
            check[key]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k / 1024.0))
        };
        println!(
            "  RSS {} c={}: {} MiB after warm-up, {} MiB at 10,000, {} MiB at {} invocations; spans {}/{}",
            check["case"].as_str().unwrap_or("?"),
            check["concurrency"],
            mib("rss_kib_after_warmup"),
            mib("rss_kib_at_10000"),
            mib("rss_kib_at_end"),
            check["invocations"],
            check["spans_received"],
            check["spans_expected"],
        );
    }
}
