//! What the cold-start bench starts: the baselines, `bootstrap` once per exporter, and the Python
//! original. A role is an executable plus an environment; `bootstrap`'s roles differ only in
//! environment variables, so the bench measures exactly the binary that ships.

use std::{path::PathBuf, process::Command, time::Duration};

use crate::{
    common::{FUNCTION_NAME, XrayDaemon},
    runtime_api::HttpStandIn,
};

/// Set in the environment of the re-executed bench binary to make it play `bare-work-in-bench`.
pub(crate) const ROLE_VARIABLE: &str = "HELLO_LAMBDA_BENCH_ROLE";

/// Where `bootstrap` sends its spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exporter {
    /// X-Ray segment documents over UDP to the daemon.
    Segments,
    /// OTLP over UDP to the daemon (`otlp`, no endpoint, inside Lambda).
    OtlpUdp,
    /// OTLP/HTTP to a local receiver.
    OtlpHttp,
    /// OTLP/HTTP to a local receiver, SigV4-signed with fake credentials.
    OtlpHttpSigned,
    /// A timeline on stderr (which the bench discards unless `COLD_START_STDIO=inherit`).
    Console,
    /// No exporter: logs and metrics only.
    None,
}

/// One kind of process the bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The same work as `bootstrap`, no observability, its own release binary
    /// (`benches/baselines/bare-work`): the reference for the tax ratios.
    BareWork,
    /// The control: the same code played by the bench executable (criterion and the bench code
    /// linked in), the baseline before issue 16. Its ratio to `bare-work` is the correction.
    BareWorkInBench,
    /// The smallest `lambda_runtime` hello world.
    BareHello,
    /// The function's own handler on plain `lambda_runtime` with the logging its documentation
    /// sets up (`lambda_runtime::tracing::init_default_subscriber`: tracing-subscriber's JSON
    /// lines), no spans exported (`benches/baselines/lr-logs`): what logging through `tracing`
    /// alone costs.
    LrLogs,
    /// The same handler on `lambda_runtime`'s own OpenTelemetry stack, as in the throughput bench
    /// (`benches/baselines/lr-otel`: `TracingLayer`, JSON lines, tracing-opentelemetry, a batch
    /// processor with OTLP/HTTP, `force_flush` in the handler).
    LrOtel,
    /// `bootstrap`, full observability, one exporter.
    Ours(Exporter),
    /// The Python original under `awslambdaric` (optional).
    Python,
}

impl Role {
    /// Every Rust role, baselines first.
    pub(crate) const RUST: [Role; 11] = [
        Role::BareWork,
        Role::BareWorkInBench,
        Role::BareHello,
        Role::LrLogs,
        Role::LrOtel,
        Role::Ours(Exporter::Segments),
        Role::Ours(Exporter::OtlpUdp),
        Role::Ours(Exporter::OtlpHttp),
        Role::Ours(Exporter::OtlpHttpSigned),
        Role::Ours(Exporter::Console),
        Role::Ours(Exporter::None),
    ];

    /// The role's name in output, criterion ids and the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::BareWork => "bare-work",
            Role::BareWorkInBench => "bare-work-in-bench",
            Role::BareHello => "bare-hello",
            Role::LrLogs => "lr-logs",
            Role::LrOtel => "lr-otel",
            Role::Ours(Exporter::Segments) => "segments",
            Role::Ours(Exporter::OtlpUdp) => "otlp-udp",
            Role::Ours(Exporter::OtlpHttp) => "otlp-http",
            Role::Ours(Exporter::OtlpHttpSigned) => "otlp-http-signed",
            Role::Ours(Exporter::Console) => "console",
            Role::Ours(Exporter::None) => "none",
            Role::Python => "python",
        }
    }

    /// `baseline`, `control`, `reference`, `ours` or `python`.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Role::BareWork => "baseline",
            Role::BareWorkInBench => "control",
            Role::BareHello | Role::LrLogs | Role::LrOtel => "reference",
            Role::Ours(_) => "ours",
            Role::Python => "python",
        }
    }

    /// One line on what runs.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Role::BareWork => {
                "the same work (greeting + one reqwest GET), plain lambda_runtime, no observability; its own release binary"
            }
            Role::BareWorkInBench => {
                "control: bare-work's code played by the bench executable (criterion linked in), the baseline before issue 16"
            }
            Role::BareHello => "the smallest lambda_runtime hello world; its own release binary",
            Role::LrLogs => {
                "the same handler on lambda_runtime with its documented logging (init_default_subscriber), no span export"
            }
            Role::LrOtel => {
                "the same handler on lambda_runtime's OpenTelemetry stack: TracingLayer, JSON lines, tracing-opentelemetry, OTLP/HTTP, force_flush per call"
            }
            Role::Ours(Exporter::Segments) => {
                "bootstrap, X-Ray segment documents over UDP to the daemon"
            }
            Role::Ours(Exporter::OtlpUdp) => "bootstrap, OTLP over UDP to the daemon",
            Role::Ours(Exporter::OtlpHttp) => "bootstrap, OTLP/HTTP to a local receiver",
            Role::Ours(Exporter::OtlpHttpSigned) => {
                "bootstrap, SigV4-signed OTLP/HTTP to a local receiver"
            }
            Role::Ours(Exporter::Console) => "bootstrap, span timeline on stderr",
            Role::Ours(Exporter::None) => "bootstrap, logs and metrics, no span export",
            Role::Python => "the Python original: awslambdaric, aws-xray-sdk patch_all, requests",
        }
    }

    /// The value of [`ROLE_VARIABLE`] for the role the bench executable plays itself.
    pub(crate) fn role_value(self) -> Option<&'static str> {
        match self {
            Role::BareWorkInBench => Some("bare-work-in-bench"),
            Role::BareWork
            | Role::BareHello
            | Role::LrLogs
            | Role::LrOtel
            | Role::Ours(_)
            | Role::Python => None,
        }
    }
}

/// The local services one role talks to. Each role has its own, so what arrived can be told
/// apart per role.
#[derive(Debug)]
pub(crate) struct Sinks {
    /// The X-Ray daemon's UDP socket (segments and OTLP over UDP).
    pub(crate) daemon: XrayDaemon,
    /// The OTLP/HTTP receiver.
    pub(crate) otlp: HttpStandIn,
    /// The public-IP service.
    pub(crate) checkip: HttpStandIn,
}

/// What the sinks received so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Received {
    pub(crate) outbound_calls: usize,
    pub(crate) segment_datagrams: usize,
    pub(crate) otlp_datagrams: usize,
    pub(crate) otlp_posts: usize,
    pub(crate) signed_posts: usize,
    /// Spans in the OTLP datagrams and in the OTLP/HTTP bodies.
    pub(crate) otlp_datagram_spans: usize,
    pub(crate) otlp_http_spans: usize,
}

impl Sinks {
    pub(crate) fn start() -> Self {
        Self::with_checkip_delay(Duration::ZERO)
    }

    /// Sinks whose public-IP service answers `delay` after each request.
    pub(crate) fn with_checkip_delay(delay: Duration) -> Self {
        Self {
            daemon: XrayDaemon::start(),
            otlp: HttpStandIn::otlp(),
            checkip: HttpStandIn::checkip_after(delay),
        }
    }

    pub(crate) fn received(&self) -> Received {
        Received {
            outbound_calls: self.checkip.requests(),
            segment_datagrams: self.daemon.segments(),
            otlp_datagrams: self.daemon.otlp(),
            otlp_posts: self.otlp.requests(),
            signed_posts: self.otlp.signed(),
            otlp_datagram_spans: self.daemon.otlp_spans(),
            otlp_http_spans: self.otlp.spans(),
        }
    }
}

impl Received {
    /// What arrived after `before` was taken.
    pub(crate) fn since(&self, before: &Received) -> Received {
        Received {
            outbound_calls: self.outbound_calls - before.outbound_calls,
            segment_datagrams: self.segment_datagrams - before.segment_datagrams,
            otlp_datagrams: self.otlp_datagrams - before.otlp_datagrams,
            otlp_posts: self.otlp_posts - before.otlp_posts,
            signed_posts: self.signed_posts - before.signed_posts,
            otlp_datagram_spans: self.otlp_datagram_spans - before.otlp_datagram_spans,
            otlp_http_spans: self.otlp_http_spans - before.otlp_http_spans,
        }
    }

    /// How many exports of the kind `role` is configured for arrived; `None` when the bench
    /// cannot see them (the console exporter writes to stderr) or the role exports nothing.
    pub(crate) fn expected_exports(&self, role: Role) -> Option<usize> {
        match role {
            Role::Ours(Exporter::Segments) | Role::Python => Some(self.segment_datagrams),
            Role::Ours(Exporter::OtlpUdp) => Some(self.otlp_datagrams),
            Role::Ours(Exporter::OtlpHttp) | Role::LrOtel => Some(self.otlp_posts),
            Role::Ours(Exporter::OtlpHttpSigned) => Some(self.signed_posts),
            Role::Ours(Exporter::Console | Exporter::None)
            | Role::BareWork
            | Role::BareWorkInBench
            | Role::BareHello
            | Role::LrLogs => None,
        }
    }

    /// What arrived, in words, e.g. `60 GET, 60 segment datagrams`.
    pub(crate) fn describe(&self) -> String {
        let mut parts = vec![format!("{} check-ip GET", self.outbound_calls)];
        for (count, what) in [
            (self.segment_datagrams, "segment datagrams"),
            (self.otlp_datagrams, "OTLP datagrams"),
            (self.otlp_posts, "OTLP POSTs"),
            (self.signed_posts, "of them signed"),
        ] {
            if count > 0 {
                parts.push(format!("{count} {what}"));
            }
        }
        parts.join(", ")
    }
}

/// The Python interpreter for the Python role: `COLD_START_PYTHON`, else the workspace's `.venv`.
pub(crate) fn python_interpreter() -> PathBuf {
    std::env::var_os("COLD_START_PYTHON")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
            PathBuf::from,
        )
}

/// `benches/python`: the Python original's code, its working directory and task root.
pub(crate) fn python_task_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/python")
}

/// Why the Python role cannot run here, if it cannot.
pub(crate) fn python_unavailable() -> Option<String> {
    let python = python_interpreter();
    let probe = Command::new(&python)
        .args(["-c", "import awslambdaric, aws_xray_sdk, requests"])
        .output();
    match probe {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "{} cannot import awslambdaric, aws_xray_sdk and requests ({}); `make bench` installs benches/python/requirements.txt into .venv",
            python.display(),
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("no error output")
        )),
        Err(err) => Some(format!(
            "no Python at {} ({err}); set COLD_START_PYTHON or run `make bench`",
            python.display()
        )),
    }
}

/// The environment of one cold start of `role`: what Lambda sets (JSON logs at INFO, active
/// tracing's daemon address), the role's exporter settings and the local sinks. Nothing from the
/// bench's own environment.
pub(crate) fn configure(command: &mut Command, role: Role, runtime_api: &str, sinks: &Sinks) {
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hello-bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]bench")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_XRAY_DAEMON_ADDRESS", sinks.daemon.address.to_string())
        .env("CHECKIP_URL", sinks.checkip.url("/"));
    if let Some(value) = role.role_value() {
        command.env(ROLE_VARIABLE, value);
    }
    if role == Role::Python {
        let root = python_task_root();
        let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/python-bench-cache");
        command
            .current_dir(&root)
            .env("LAMBDA_TASK_ROOT", &root)
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_python3.8")
            .env("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR")
            .env("PACKAGE_MANAGEMENT_SYSTEM", "pip")
            // Compiled bytecode goes to target/, not next to the sources.
            .env("PYTHONPYCACHEPREFIX", cache);
        return;
    }
    // Every Rust role: the custom runtime's environment.
    command
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
        .env("PACKAGE_MANAGEMENT_SYSTEM", "cargo");
    let exporter = match role {
        Role::Ours(exporter) => exporter,
        // `lambda_runtime`'s OpenTelemetry stack reads the standard endpoint variable itself.
        Role::LrOtel => {
            command.env(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                sinks.otlp.url("/v1/traces"),
            );
            return;
        }
        Role::BareWork | Role::BareWorkInBench | Role::BareHello | Role::LrLogs | Role::Python => {
            return;
        }
    };
    match exporter {
        Exporter::Segments => {
            command.env("OTEL_TRACES_EXPORTER", "xray");
        }
        Exporter::OtlpUdp => {
            command.env("OTEL_TRACES_EXPORTER", "otlp");
        }
        Exporter::OtlpHttp | Exporter::OtlpHttpSigned => {
            command.env("OTEL_TRACES_EXPORTER", "otlp").env(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                sinks.otlp.url("/v1/traces"),
            );
            if exporter == Exporter::OtlpHttpSigned {
                // AWS's documentation example credentials: signed, never valid.
                command
                    .env("OTLP_TRACES_SIGV4", "true")
                    .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
                    .env(
                        "AWS_SECRET_ACCESS_KEY",
                        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                    )
                    .env("AWS_SESSION_TOKEN", "bench-session-token");
            }
        }
        Exporter::Console => {
            command.env("OTEL_TRACES_EXPORTER", "console");
        }
        Exporter::None => {
            command.env("OTEL_TRACES_EXPORTER", "none");
        }
    }
}
