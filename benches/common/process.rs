//! What the process-level benches (`cpu_per_invocation`, `throughput`) read from a running
//! function process and from the machine: CPU time from `/proc`, the resident set, the load
//! average, its piped output drained and counted; plus the knobs' parsing and a median.
#![allow(dead_code)]

use std::{
    io::Read,
    path::Path,
    process::{Child, Command},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

/// A number from the environment variable `name`, or `default`.
pub(crate) fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Comma-separated positive numbers from `name` (or `default`, the same form).
pub(crate) fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .filter(|&c| c > 0)
        .collect()
}

/// Whether `name` is selected by the comma-separated list in the variable `variable` (all are,
/// if it is unset).
pub(crate) fn selected(variable: &str, name: &str) -> bool {
    std::env::var(variable)
        .ok()
        .is_none_or(|w| w.split(',').any(|n| n.trim() == name))
}

/// The process's CPU time at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuReading {
    /// `utime + stime` from `/proc/PID/stat`, clock ticks.
    pub(crate) ticks: u64,
    /// Sum of `/proc/PID/task/*/schedstat`'s first field (on-CPU ns) over the live threads.
    pub(crate) sched_ns: u64,
    pub(crate) threads: usize,
}

pub(crate) fn read_cpu(pid: u32) -> Result<CpuReading, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|err| format!("/proc/{pid}/stat: {err}"))?;
    // The fields after `(comm)`: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {n}"))
    };
    let ticks = field(14)? + field(15)?;
    let mut sched_ns = 0;
    let mut threads = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|err| format!("/proc/{pid}/task: {err}"))?;
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            threads += 1;
            sched_ns += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(CpuReading {
        ticks,
        sched_ns,
        threads,
    })
}

/// `VmRSS` of `/proc/PID/status`, KiB.
pub(crate) fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|err| format!("/proc/{pid}/status: {err}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status: no VmRSS"))
}

/// Microseconds per clock tick (`getconf CLK_TCK`; 100 Hz if it cannot be asked).
pub(crate) fn micros_per_tick() -> f64 {
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&hz| hz > 0.0)
        .unwrap_or(100.0);
    1e6 / hz
}

/// What a child wrote to its pipes: the bytes counted, the last few KB kept for error messages.
#[derive(Debug, Default)]
pub(crate) struct Output {
    bytes: AtomicU64,
    tail: Mutex<Vec<u8>>,
}

impl Output {
    const TAIL: usize = 2048;

    /// Bytes read so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The last bytes read, as text.
    pub(crate) fn tail(&self) -> String {
        String::from_utf8_lossy(&self.tail.lock().expect("lock")).into_owned()
    }
}

/// Reads a child's pipe to the end, counting the bytes (and keeping the last few).
pub(crate) fn drain(mut pipe: impl Read + Send + 'static, output: Arc<Output>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            output.bytes.fetch_add(n as u64, Ordering::Relaxed);
            let mut tail = output.tail.lock().expect("lock");
            tail.extend_from_slice(&buf[n.saturating_sub(Output::TAIL)..n]);
            let excess = tail.len().saturating_sub(Output::TAIL);
            tail.drain(..excess);
        }
    });
}

/// A child process killed (and reaped) when dropped.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let len = values.len();
    match len {
        0 => None,
        _ if len % 2 == 1 => Some(values[len / 2]),
        _ => Some((values[len / 2 - 1] + values[len / 2]) / 2.0),
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` has them.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Writes `document` as pretty JSON to `path` (its directory created) and says where.
pub(crate) fn write_json(path: &Path, document: &serde_json::Value) {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::write(
                path,
                serde_json::to_string_pretty(document).unwrap_or_default() + "\n",
            )
        });
    match written {
        Ok(()) => println!("  raw results: {}", path.display()),
        Err(err) => println!("  could not write {}: {err}", path.display()),
    }
}
