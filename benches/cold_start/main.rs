//! COLD START: from exec to the first response, against a local Runtime API, with full
//! observability on, compared with the same work done with no observability, once per exporter,
//! and (optionally) with the Python original.
//!
//! One cold start spawns a fresh process against its own one-event Runtime API (see
//! [`runtime_api`]) and timestamps, from just before `spawn`: the first `GET /invocation/next`
//! (**init**), the `POST /invocation/{id}/response` (**total**), and the second `/next` (**done**:
//! the span export runs between the response and the next `/next`). Then the process is killed.
//! The event is `events/success.json` with a sampled `Lambda-Runtime-Trace-Id`. Every role gets
//! Lambda's variables (JSON logs at INFO, the X-Ray daemon address), its own local X-Ray daemon
//! socket, OTLP/HTTP receiver and public-IP service, so what each role sent can be counted.
//! Output of the children goes to `/dev/null` (`COLD_START_STDIO=inherit` shows it).
//!
//! Roles (see [`roles`]): `bare-work` (the baseline: greeting + one reqwest GET on plain
//! `lambda_runtime`, no observability; its own package, `benches/baselines/bare-work`),
//! `bare-work-in-bench` (the control: the same code played by this bench executable, the old
//! baseline, [`bare_work`]), `bare-hello` (`benches/baselines/bare-hello`), the same handler on
//! `lambda_runtime` with its documented logging (`lr-logs`) and with its own OpenTelemetry stack
//! (`lr-otel`), both references, not baselines (`benches/baselines/`), `bootstrap` with each
//! exporter (`segments`, `otlp-udp`, `otlp-http`, `otlp-http-signed`, `console`, `none`), and
//! `python` (`benches/python` under `awslambdaric`, with `--bench` only, skipped with a message
//! when `.venv` lacks its packages; `COLD_START_PYTHON=/path/to/python` picks another
//! interpreter, `COLD_START_PYTHON=none` skips it). `bootstrap` and the two baselines are built
//! by `cargo build` when the bench starts, each on its own, with the profile the bench was built
//! with (`--release` under `cargo bench`): see `benches/common/executables.rs`.
//!
//! First a preflight: one cold start per role, run to its second `/next`, showing what arrived
//! at its sinks. `segments` must have exported a segment; any other role that fails or exports
//! nothing is reported and (if it failed) left out under `--bench`, and fails the run under
//! `cargo test` (the smoke run, where every role must work). Then criterion's group
//! `cold_start`, one benchmark per Rust role. Then, with `--bench` only, `COLD_START_ROUNDS` rounds (default 60, 0
//! skips them) in which every role runs once, in a shuffled order, for the medians and the tax
//! ratios that drift on the machine cannot skew; the raw results go to `target/cold-start.json`
//! (`COLD_START_JSON` overrides the path; `scripts/chart.py` draws it).
//! `COLD_START_BASELINE=/path/to/executable` replaces the bare-work baseline with another one.

#[path = "../common/mod.rs"]
mod common;

#[path = "../common/executables.rs"]
mod executables;

mod bare_hello;
mod bare_work;
mod report;
mod roles;
mod runtime_api;

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use criterion::{Criterion, SamplingMode};
use report::{Measured, Report};
use roles::{Exporter, Role, Sinks};
use runtime_api::OneShotRuntimeApi;

const EVENT: &[u8] = include_bytes!("../../events/success.json");

/// How long one cold start may take before the bench gives up on it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait after the response for the second `/next` (the end of the span export).
const DONE_TIMEOUT: Duration = Duration::from_secs(5);

fn main() {
    // The roles this executable plays itself: the control `bare-work-in-bench`; `bare-work` and
    // `bare-hello` too, the names scripts/instructions.py still sets (the in-bench code, as
    // before issue 16; the bench itself runs the separate binaries for those).
    if let Ok(role) = std::env::var(roles::ROLE_VARIABLE) {
        let result = match role.as_str() {
            "bare-hello" => bare_hello::main(),
            "bare-work" | "bare-work-in-bench" => bare_work::main(),
            other => Err(format!("unknown {}={other}", roles::ROLE_VARIABLE).into()),
        };
        if let Err(err) = result {
            eprintln!("{role}: {err}");
            std::process::exit(1);
        }
        return;
    }

    let started = Instant::now();
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list");

    let environment = Environment::start();
    let mut candidates = Role::RUST.to_vec();
    if benchmarking {
        match python_wanted() {
            Ok(()) => candidates.push(Role::Python),
            Err(reason) => println!("python: skipped: {reason}"),
        }
    }
    // Under `cargo test` (the smoke run) every role must start, answer and export what it is
    // configured for, or the smoke run fails; under `--bench` a broken role is left out and
    // the others are still measured.
    let roles = environment.preflight(&candidates, !benchmarking);

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20)
        .configure_from_args();
    bench_cold_start(&mut criterion, &environment, &roles);
    criterion.final_summary();

    if benchmarking {
        let rounds = std::env::var("COLD_START_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        if rounds > 0 {
            let report = environment.rounds(&roles, rounds);
            report.print();
            let path = executables::json_path("COLD_START_JSON", "cold-start.json");
            match report.write_json(&path) {
                Ok(()) => println!("  raw results: {}", path.display()),
                Err(err) => println!("  could not write {}: {err}", path.display()),
            }
        }
        println!(
            "cold_start bench: {:.0} s in all",
            started.elapsed().as_secs_f64()
        );
    }
}

/// Whether to run the Python original, and if not, why.
fn python_wanted() -> Result<(), String> {
    if std::env::var("COLD_START_PYTHON").as_deref() == Ok("none") {
        return Err("COLD_START_PYTHON=none".into());
    }
    roles::python_unavailable().map_or(Ok(()), Err)
}

fn bench_cold_start(c: &mut Criterion, environment: &Environment, roles: &[Role]) {
    let mut group = c.benchmark_group("cold_start");
    // Every iteration is a whole process life: flat sampling, few and long iterations.
    group.sampling_mode(SamplingMode::Flat);
    for &role in roles.iter().filter(|role| **role != Role::Python) {
        group.bench_function(role.name(), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        environment
                            .cold_start(role, AfterResponse::Kill)
                            .unwrap_or_else(|err| panic!("{err}"))
                            .total
                    })
                    .sum()
            });
        });
    }
    group.finish();
}

/// What to do once the response has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterResponse {
    /// Kill the process at once (criterion: only the total is measured).
    Kill,
    /// Wait up to [`DONE_TIMEOUT`] for the second `/next` first, i.e. for the export to finish.
    AwaitDone,
}

/// One cold start, timed from just before `spawn`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColdStart {
    /// exec → first `/next`: process start and the function's init.
    pub(crate) init: Duration,
    /// exec → `/response` read.
    pub(crate) total: Duration,
    /// exec → second `/next`: the invocation completely done, spans exported included. `None`
    /// when it did not come within [`DONE_TIMEOUT`] or was not awaited.
    pub(crate) done: Option<Duration>,
}

/// What stays up for the whole bench: one set of sinks per role.
struct Environment {
    sinks: Vec<(Role, Sinks)>,
    stdio_inherit: bool,
    invocations: AtomicU64,
    executables: Executables,
}

impl Environment {
    fn start() -> Self {
        Self {
            sinks: Role::RUST
                .into_iter()
                .chain([Role::Python])
                .map(|role| (role, Sinks::start()))
                .collect(),
            stdio_inherit: std::env::var("COLD_START_STDIO").as_deref() == Ok("inherit"),
            invocations: AtomicU64::new(0),
            executables: Executables::stage(),
        }
    }

    fn sinks(&self, role: Role) -> &Sinks {
        self.sinks
            .iter()
            .find_map(|(r, sinks)| (*r == role).then_some(sinks))
            .expect("every role has sinks")
    }

    fn command(&self, role: Role, runtime_api: &OneShotRuntimeApi) -> Command {
        let mut command = match role {
            Role::Python => {
                let mut python = Command::new(roles::python_interpreter());
                python.args(["-m", "awslambdaric", "lambda_function.handler"]);
                python
            }
            rust => Command::new(self.executables.of(rust).expect("a Rust role")),
        };
        roles::configure(
            &mut command,
            role,
            &runtime_api.address.to_string(),
            self.sinks(role),
        );
        command.stdin(Stdio::null());
        if self.stdio_inherit {
            command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        command
    }

    /// Spawns `role`, serves it one event, measures until its response (and, with
    /// [`AfterResponse::AwaitDone`], its second `/next`), then kills it.
    fn cold_start(&self, role: Role, after: AfterResponse) -> Result<ColdStart, String> {
        let n = self.invocations.fetch_add(1, Ordering::Relaxed);
        let api = OneShotRuntimeApi::start(n, EVENT);
        let mut command = self.command(role, &api);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|err| format!("{}: spawn: {err}", role.name()))?;
        let arrivals = api.wait(TIMEOUT);
        let done = match arrivals {
            Ok(_) if after == AfterResponse::AwaitDone => api.wait_second_next(DONE_TIMEOUT),
            _ => None,
        };
        let _ = child.kill();
        let _ = child.wait();
        drop(api);
        let arrivals = arrivals.map_err(|err| {
            format!(
                "{}: {err} (COLD_START_STDIO=inherit shows its output)",
                role.name()
            )
        })?;
        Ok(ColdStart {
            init: arrivals.first_next - started,
            total: arrivals.response - started,
            done: done.map(|at| at - started),
        })
    }

    /// One cold start per role, to its end: prints what arrived at the role's sinks and returns
    /// the roles that work. `segments` must export (else the measurement would be without
    /// tracing); other roles that export nothing are reported, not dropped.
    fn preflight(&self, candidates: &[Role], strict: bool) -> Vec<Role> {
        println!("cold start preflight: one run per role, what reached its local sinks:");
        let mut working = Vec::new();
        let mut broken = Vec::new();
        for &role in candidates {
            let before = self.sinks(role).received();
            let outcome = self.cold_start(role, AfterResponse::AwaitDone);
            // Datagrams may still be on their way when the second /next arrives.
            std::thread::sleep(Duration::from_millis(50));
            let received = self.sinks(role).received().since(&before);
            match outcome {
                Err(err) => {
                    println!("  {:<18} FAILED, left out: {err}", role.name());
                    broken.push(format!("{}: {err}", role.name()));
                }
                Ok(run) => {
                    let exports = received.expected_exports(role);
                    let flag = match (exports, run.done) {
                        (_, None) => "  <- no second /next: the export did not finish",
                        (Some(0), _) => {
                            "  <- NOTHING OF THE EXPECTED KIND ARRIVED (is this exporter in this build?)"
                        }
                        _ => "",
                    };
                    println!("  {:<18} {}{flag}", role.name(), received.describe());
                    if !flag.is_empty() {
                        broken.push(format!("{}:{flag}", role.name()));
                    }
                    if role == Role::Ours(Exporter::Segments) {
                        assert!(
                            exports.unwrap_or(0) > 0,
                            "segments exported no segment to the X-Ray daemon: the cold start would be measured without tracing"
                        );
                    }
                    working.push(role);
                }
            }
        }
        assert!(
            !strict || broken.is_empty(),
            "cold start preflight: {} role(s) broken: {}",
            broken.len(),
            broken.join("; ")
        );
        working
    }

    /// `rounds` rounds; in each, every role once, in an order shuffled per round.
    fn rounds(&self, roles: &[Role], rounds: usize) -> Report {
        let before: Vec<_> = roles.iter().map(|&r| self.sinks(r).received()).collect();
        let mut measured: Vec<Measured> = roles.iter().map(|&r| Measured::new(r)).collect();
        let mut shuffle = common::Shuffle::new();
        for _ in 0..rounds {
            for i in shuffle.order(roles.len()) {
                measured[i].push(self.cold_start(roles[i], AfterResponse::AwaitDone));
            }
        }
        for ((m, &role), before) in measured.iter_mut().zip(roles).zip(&before) {
            m.received = self.sinks(role).received().since(before);
            m.executable_bytes = self.executables.of(role).and_then(file_size);
        }
        Report::new(rounds, measured)
    }
}

fn bench_executable() -> PathBuf {
    std::env::current_exe().expect("path of the bench executable")
}

/// The executables the Rust roles run, copied into a directory of their own before anything is
/// measured, as Lambda runs a file unpacked from the zip rather than the file a linker wrote. The
/// same bytes of a freshly linked `bootstrap` measured 0.92–0.94× (the bench's own build ÷ it,
/// three runs) from the linker's file and 0.98–0.99× (paired) from a copy: copying every
/// executable the same way keeps where a file came from out of the comparison.
///
/// `bootstrap`, `bare-work`, `bare-hello`, `lr-logs` and `lr-otel` are built by `cargo build` at
/// the start of the bench (`benches/common/executables.rs`), each on its own, with the release
/// profile `bootstrap` ships with; the bench executable itself is staged too, for the control
/// role `bare-work-in-bench`.
struct Executables {
    dir: PathBuf,
    bootstrap: PathBuf,
    bootstrap_segments: PathBuf,
    bench: PathBuf,
    bare_work: PathBuf,
    bare_hello: PathBuf,
    lr_logs: PathBuf,
    lr_otel: PathBuf,
}

impl Executables {
    fn stage() -> Self {
        let built = executables::build(true).unwrap_or_else(|err| panic!("{err}"));
        let [lr_logs, lr_otel] = ["lr-logs", "lr-otel"].map(|package| {
            executables::build_lambda_runtime_stack(package).unwrap_or_else(|err| panic!("{err}"))
        });
        let dir =
            std::env::temp_dir().join(format!("hello-lambda-cold-start-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the executables");
        let bare_work = match baseline_override() {
            Some(other) => executables::stage(&other, &dir, "baseline"),
            None => executables::stage(&built.bare_work, &dir, "bare-work"),
        };
        Self {
            bootstrap: executables::stage(&built.bootstrap, &dir, "bootstrap"),
            bootstrap_segments: executables::stage(
                built
                    .bootstrap_segments
                    .as_deref()
                    .expect("built with segments"),
                &dir,
                "bootstrap-segments",
            ),
            bench: executables::stage(&bench_executable(), &dir, "bench"),
            bare_work,
            bare_hello: executables::stage(&built.bare_hello, &dir, "bare-hello"),
            lr_logs: executables::stage(&lr_logs, &dir, "lr-logs"),
            lr_otel: executables::stage(&lr_otel, &dir, "lr-otel"),
            dir,
        }
    }

    /// The copy `role` runs; `None` for the Python original, which runs the interpreter.
    fn of(&self, role: Role) -> Option<&PathBuf> {
        match role {
            // Segment documents are opt-in (`--features xray-segments`): the build that has them.
            Role::Ours(Exporter::Segments) => Some(&self.bootstrap_segments),
            Role::Ours(_) => Some(&self.bootstrap),
            Role::BareWork => Some(&self.bare_work),
            Role::BareWorkInBench => Some(&self.bench),
            Role::BareHello => Some(&self.bare_hello),
            Role::LrLogs => Some(&self.lr_logs),
            Role::LrOtel => Some(&self.lr_otel),
            Role::Python => None,
        }
    }
}

impl Drop for Executables {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `COLD_START_BASELINE`: another executable to use as the bare-work baseline.
fn baseline_override() -> Option<PathBuf> {
    std::env::var_os("COLD_START_BASELINE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn file_size(path: impl Into<PathBuf>) -> Option<u64> {
    std::fs::metadata(path.into()).ok().map(|m| m.len())
}
