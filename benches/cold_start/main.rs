//! COLD START: from exec to the first response, against a local Runtime API, with full
//! observability on, compared to a bare `lambda_runtime` hello world measured the same way.
//!
//! One iteration spawns a fresh process against its own one-event Runtime API (see
//! [`runtime_api`]), takes the time from just before `spawn` to the moment the
//! `POST /invocation/{id}/response` has been read, then kills the process. The event is
//! `events/success.json` with a sampled `Lambda-Runtime-Trace-Id`; `bootstrap` runs with JSON logs,
//! the X-Ray exporter (UDP, to a local socket) and its public-IP call answered by a local stand-in.
//! Output of the child goes to `/dev/null` (`COLD_START_STDIO=inherit` shows it).
//!
//! Bench group `cold_start`:
//! * `cold_start/bare_hello`: the baseline, [`bare_hello`], the same process image re-executed.
//! * `cold_start/hello_lambda`: `bootstrap`, the function of this package.
//!
//! After the criterion runs (with `--bench` only) the two are measured again interleaved,
//! `COLD_START_PAIRS` pairs (default 60, 0 skips it), to print medians, the split into init
//! (exec → first `/next`) and first invocation (`/next` → `/response`), and the ratio.
//! `COLD_START_BASELINE=/path/to/executable` replaces the embedded baseline with another one.

#[path = "../common/mod.rs"]
mod common;

mod bare_hello;
mod runtime_api;

use std::{
    ffi::OsString,
    process::{Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use common::{FUNCTION_NAME, Stats, XrayDaemon, ms};
use criterion::{Criterion, SamplingMode};
use runtime_api::OneShotRuntimeApi;

const EVENT: &[u8] = include_bytes!("../../events/success.json");

/// How long one cold start may take before the bench gives up on it.
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    if std::env::var(bare_hello::ROLE_VARIABLE).as_deref() == Ok(bare_hello::ROLE) {
        if let Err(err) = bare_hello::main() {
            eprintln!("bare hello: {err}");
            std::process::exit(1);
        }
        return;
    }

    let environment = Environment::start();
    environment.check_observability();

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .sample_size(20)
        .configure_from_args();
    bench_cold_start(&mut criterion, &environment);
    criterion.final_summary();

    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list");
    if benchmarking {
        let pairs = std::env::var("COLD_START_PAIRS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        environment.interleaved_summary(pairs);
    }
}

fn bench_cold_start(c: &mut Criterion, environment: &Environment) {
    let mut group = c.benchmark_group("cold_start");
    // Every iteration is a whole process life: flat sampling, few and long iterations.
    group.sampling_mode(SamplingMode::Flat);
    for function in [Function::BareHello, Function::HelloLambda] {
        group.bench_function(function.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| environment.cold_start(function).total)
                    .sum()
            });
        });
    }
    group.finish();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    /// A minimal `lambda_runtime` hello world.
    BareHello,
    /// `bootstrap`, with full observability.
    HelloLambda,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Function::BareHello => "bare_hello",
            Function::HelloLambda => "hello_lambda",
        }
    }

    fn command(self) -> Command {
        match self {
            Function::HelloLambda => Command::new(env!("CARGO_BIN_EXE_bootstrap")),
            // The role variable is set with the rest of the environment.
            Function::BareHello => Command::new(baseline_override().unwrap_or_else(|| {
                std::env::current_exe()
                    .expect("path of the bench executable")
                    .into()
            })),
        }
    }
}

/// `COLD_START_BASELINE`: another executable to use as the baseline.
fn baseline_override() -> Option<OsString> {
    std::env::var_os("COLD_START_BASELINE").filter(|v| !v.is_empty())
}

/// One cold start, split at the first `/next`.
#[derive(Debug, Clone, Copy)]
struct ColdStart {
    /// exec → `/response` read.
    total: Duration,
    /// exec → first `/next`: process start and the function's init.
    init: Duration,
    /// first `/next` → `/response`: the first invocation.
    invoke: Duration,
}

/// What stays up for the whole bench: the X-Ray daemon and the public-IP stand-ins.
struct Environment {
    checkip_url: String,
    xray: XrayDaemon,
    stdio_inherit: bool,
    invocations: AtomicU64,
}

impl Environment {
    fn start() -> Self {
        Self {
            checkip_url: runtime_api::start_checkip(),
            xray: XrayDaemon::start(),
            stdio_inherit: std::env::var("COLD_START_STDIO").as_deref() == Ok("inherit"),
            invocations: AtomicU64::new(0),
        }
    }

    /// A Lambda-like environment: the reserved variables, JSON logs, X-Ray export to the local
    /// daemon, the public-IP call to the local stand-in. Nothing from the bench's own environment.
    fn command(&self, function: Function, runtime_api: &OneShotRuntimeApi) -> Command {
        let mut command = function.command();
        let xray: OsString = self.xray.address.to_string().into();
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hello-bench")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]bench")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("OTEL_TRACES_EXPORTER", "xray")
            .env("AWS_XRAY_DAEMON_ADDRESS", xray)
            .env("CHECKIP_URL", &self.checkip_url)
            .env("PACKAGE_MANAGEMENT_SYSTEM", "cargo")
            .stdin(Stdio::null());
        if self.stdio_inherit {
            command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        if function == Function::BareHello && baseline_override().is_none() {
            command.env(bare_hello::ROLE_VARIABLE, bare_hello::ROLE);
        }
        command
    }

    /// Spawns `function`, serves it one event, measures until its response, kills it.
    fn cold_start(&self, function: Function) -> ColdStart {
        self.run(function, |_| ())
    }

    /// Like [`cold_start`](Self::cold_start), running `after_response` before the kill.
    fn run(
        &self,
        function: Function,
        after_response: impl FnOnce(&OneShotRuntimeApi),
    ) -> ColdStart {
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        let api = OneShotRuntimeApi::start(n, EVENT);
        let mut command = self.command(function, &api);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {}: {err}", function.name()));
        let arrivals = api.wait(TIMEOUT);
        if arrivals.is_ok() {
            after_response(&api);
        }
        let _ = child.kill();
        let _ = child.wait();
        drop(api);
        let arrivals = arrivals.unwrap_or_else(|err| {
            panic!(
                "{}: {err} (COLD_START_STDIO=inherit shows its output)",
                function.name()
            )
        });
        ColdStart {
            total: arrivals.response - started,
            init: arrivals.first_next - started,
            invoke: arrivals.response - arrivals.first_next,
        }
    }

    /// Makes sure the measured configuration really exports spans: one invocation run to its end
    /// (the second `/next`, which comes after the export), then the daemon must have a segment.
    fn check_observability(&self) {
        let before = self.xray.received();
        self.run(Function::HelloLambda, |api| {
            assert!(
                api.wait_next_calls(2, TIMEOUT),
                "hello_lambda did not ask for a second event after its first response"
            );
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.xray.received() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            self.xray.received() > before,
            "hello_lambda exported no segment to the X-Ray daemon: the cold start would be measured without tracing"
        );
    }

    /// Both functions again, alternately (the order flips every pair), for a ratio that drift
    /// on the machine cannot skew.
    fn interleaved_summary(&self, pairs: usize) {
        if pairs == 0 {
            return;
        }
        let mut bare = Vec::with_capacity(pairs);
        let mut ours = Vec::with_capacity(pairs);
        for i in 0..pairs {
            if i % 2 == 0 {
                bare.push(self.cold_start(Function::BareHello));
                ours.push(self.cold_start(Function::HelloLambda));
            } else {
                ours.push(self.cold_start(Function::HelloLambda));
                bare.push(self.cold_start(Function::BareHello));
            }
        }
        let stats = |runs: &[ColdStart], part: fn(&ColdStart) -> Duration| {
            Stats::of(&runs.iter().map(part).collect::<Vec<_>>()).expect("at least one pair")
        };
        println!();
        println!("cold start, {pairs} interleaved pairs, exec -> first /response:");
        println!(
            "  {:<14} {:>11} {:>11} {:>11} {:>11} {:>11}   {:>18} {:>20}",
            "", "median", "mean", "p10", "p90", "min", "init median", "1st invoke median"
        );
        for (function, runs) in [(Function::BareHello, &bare), (Function::HelloLambda, &ours)] {
            let total = stats(runs, |r| r.total);
            println!(
                "  {:<14} {:>11} {:>11} {:>11} {:>11} {:>11}   {:>18} {:>20}",
                function.name(),
                ms(total.median),
                ms(total.mean),
                ms(total.p10),
                ms(total.p90),
                ms(total.min),
                ms(stats(runs, |r| r.init).median),
                ms(stats(runs, |r| r.invoke).median),
            );
        }
        let (b, o) = (stats(&bare, |r| r.total), stats(&ours, |r| r.total));
        let ratio = |ours: Duration, bare: Duration| ours.as_secs_f64() / bare.as_secs_f64();
        let mut paired: Vec<f64> = bare
            .iter()
            .zip(&ours)
            .map(|(b, o)| ratio(o.total, b.total))
            .collect();
        paired.sort_by(f64::total_cmp);
        println!(
            "  hello_lambda / bare_hello: {:.3}x by median, {:.3}x by mean, {:.3}x median of pair ratios (goal: <= 1.15x)",
            ratio(o.median, b.median),
            ratio(o.mean, b.mean),
            paired[paired.len() / 2],
        );
        println!(
            "  X-Ray daemon datagrams received during the whole run: {}",
            self.xray.received()
        );
    }
}
