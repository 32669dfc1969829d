//! [`Function`]: a Lambda function executable run as a child process against a
//! [`MockRuntimeApi`], its output in a log file.

use std::{
    ffi::OsStr,
    io::Read,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant, SystemTime},
};

use crate::runtime_api::MockRuntimeApi;

/// A function executable running against a [`MockRuntimeApi`], killed on drop. Its stdout and
/// stderr go to one log file, removed on drop.
#[derive(Debug)]
pub struct Function {
    child: Child,
    log_path: PathBuf,
}

impl Function {
    /// Starts `exe` against `runtime`, with a clean Lambda-like environment plus `env`:
    /// `PATH`, `AWS_LAMBDA_RUNTIME_API`, the function's name (`hello-it`), memory (256), version,
    /// log group and stream, `AWS_REGION=eu-west-1`, `AWS_EXECUTION_ENV`,
    /// `AWS_LAMBDA_LOG_FORMAT=JSON`, a secret access key that must never be logged,
    /// `PACKAGE_MANAGEMENT_SYSTEM=cargo` and `OTEL_TRACES_EXPORTER=none`.
    pub fn start_exe(
        exe: impl AsRef<OsStr>,
        runtime: &MockRuntimeApi,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_exe_unsetting(exe, runtime, env, &[])
    }

    /// [`Function::start_exe`] with the variables in `unset` removed from the environment it
    /// would get, the defaults included: tests of a variable's unset case
    /// (`OTEL_TRACES_EXPORTER`, which the defaults set to `none`) remove it instead of setting it
    /// empty.
    pub fn start_exe_unsetting(
        exe: impl AsRef<OsStr>,
        runtime: &MockRuntimeApi,
        env: &[(&str, &str)],
        unset: &[&str],
    ) -> Self {
        let log_path = std::env::temp_dir().join(format!(
            "bootstrap-{}-{}.log",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(exe);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "hello-it")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/hello-it")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]abc")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_SECRET_ACCESS_KEY", "must-never-be-logged")
            .env("PACKAGE_MANAGEMENT_SYSTEM", "cargo")
            .env("OTEL_TRACES_EXPORTER", "none")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone"))
            .stderr(log);
        for (name, value) in env {
            command.env(name, value);
        }
        for name in unset {
            command.env_remove(name);
        }
        Self {
            child: command.spawn().expect("spawn the function"),
            log_path,
        }
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit (after a signal, say), up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything it wrote so far, stdout and stderr interleaved.
    pub fn logs(&self) -> String {
        // Bytes, then text: a read that meets a write in progress may end inside a character,
        // and `read_to_string` would then return nothing at all.
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&self.log_path) {
            let _ = file.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The JSON log lines.
    pub fn json_logs(&self) -> Vec<serde_json::Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// Resident set size of process `pid`, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The JSON log lines whose `message` contains `text`.
pub fn lines_with_message<'a>(
    logs: &'a [serde_json::Value],
    text: &str,
) -> Vec<&'a serde_json::Value> {
    logs.iter()
        .filter(|l| l["message"].as_str().is_some_and(|m| m.contains(text)))
        .collect()
}

/// The EMF documents among the JSON log lines.
pub fn emf_documents(logs: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    logs.into_iter()
        .filter(|l| l.get("_aws").is_some())
        .collect()
}
