//! Metrics for handler code: counters, gauges and histograms with dimensions and units, written
//! to stdout as CloudWatch Embedded Metric Format (EMF) documents once per invocation.
//!
//! Handler code records through the [`metrics`] facade, re-exported here
//! ([`counter!`], [`histogram!`], [`gauge!`], [`describe_counter!`]…): labels become dimensions,
//! described units become EMF units. [`Metrics::install`] installs the process-wide collector
//! once, at init, with the namespace and the dimensions every metric carries (`service`,
//! `FunctionName`); [`TimingLayer`](crate::TimingLayer) then flushes it once per invocation,
//! after the handler, one EMF line per dimension set. Inside an invocation whose log lines are
//! gathered ([`log_format`](crate::log_format)), the EMF lines join them and go out in the same
//! `write` (one `write` fewer per invocation); otherwise they are written to stdout at once. With
//! metrics disabled ([`Metrics::disabled`], `POWERTOOLS_METRICS_DISABLED`) no collector is
//! installed: recording is a no-op and nothing is written.
//!
//! What a flush writes: a counter's sum since the last flush (nothing when it is zero); a gauge's
//! last value, when it was set since the last flush; a histogram's values since the last flush,
//! each one (at most 10,000 are kept between two flushes; the rest are dropped, and a flush that
//! drops any, or a value JSON cannot hold, logs a warning naming the metric). Past the format's
//! limits (100 metrics per document, 100 values per metric) a dimension set takes more than one
//! line; a metric with more than 30 dimensions is not recorded.
//!
//! The collector is process-wide (the facade has one global recorder), which suits Lambda: one
//! process per execution environment. Under concurrent invocations (Lambda Managed Instances) a
//! flush writes what every invocation recorded so far; each value is still written exactly once.
//!
//! ```
//! use lambda_observability_tower::metrics::{self, Metrics, MetricsConfig, Unit};
//!
//! # fn main() -> Result<(), lambda_observability_tower::metrics::MetricsError> {
//! // At init (here disabled, as a doctest cannot own the process-wide recorder).
//! let config = MetricsConfig::new("HelloLambda")
//!     .dimension("service", "hello")
//!     .disabled(true);
//! let metrics = Metrics::install(&config)?;
//! metrics::describe_counter!("Greetings", Unit::Count, "greetings sent");
//!
//! // In the handler.
//! metrics::counter!("Greetings", "PackageManager" => "cargo").increment(1);
//!
//! // After the handler (TimingLayer does this).
//! metrics.flush();
//! # Ok(())
//! # }
//! ```

mod collector;
mod emf;

use std::{
    fmt,
    io::Write,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

// The handles too: registered once (at init), they record without looking their key and labels
// up again, which `counter!` and its kin do on every call.
pub use metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};

use collector::{Collector, Recorder};

type MakeWriter = Arc<dyn Fn() -> Box<dyn Write + Send> + Send + Sync>;

/// What the collector is built with: pure data, filled from the environment's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    namespace: String,
    dimensions: Vec<(String, String)>,
    disabled: bool,
}

impl MetricsConfig {
    /// Metrics in the CloudWatch `namespace`, with no default dimension, enabled.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            dimensions: Vec::new(),
            disabled: false,
        }
    }

    /// Adds a dimension every metric carries (`service`, `FunctionName`). Defaults to none.
    /// Its name must not be used as a metric label.
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.push((name.into(), value.into()));
        self
    }

    /// Turns metrics off: nothing is recorded or written. Defaults to `false`.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }
}

/// The metrics collector could not be installed (another recorder already is).
#[derive(Debug)]
pub struct MetricsError {
    message: String,
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.message)
    }
}

impl std::error::Error for MetricsError {}

/// The flushing side of the process-wide collector; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    collector: Option<&'static Collector>,
    /// `None`: with the invocation's gathered log lines, else stdout.
    make_writer: Option<MakeWriter>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.is_enabled())
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::disabled()
    }
}

impl Metrics {
    /// Installs the process-wide collector `config` describes, writing to stdout; with
    /// [`MetricsConfig::disabled`], installs nothing and returns [`Metrics::disabled`]. Call it
    /// once, at init.
    pub fn install(config: &MetricsConfig) -> Result<Self, MetricsError> {
        if config.disabled {
            return Ok(Self::disabled());
        }
        // Leaked: the recorder lives as long as the process (`metrics` keeps it in a static).
        let collector: &'static Collector = Box::leak(Box::new(Collector::new(config)));
        metrics::set_global_recorder(Recorder(collector)).map_err(|err| MetricsError {
            message: format!("cannot install the metrics collector: {err}"),
        })?;
        Ok(Self {
            collector: Some(collector),
            make_writer: None,
        })
    }

    /// No collector: recording through the facade is a no-op, [`flush`](Self::flush) writes
    /// nothing.
    pub fn disabled() -> Self {
        Self {
            collector: None,
            make_writer: None,
        }
    }

    /// Where EMF lines go: a writer per flush, each flush one `write_all`. Defaults to the
    /// invocation's gathered log lines, written with them wherever the log layer writes
    /// (stdout in `lambda_observability`), or to stdout when there are none.
    pub fn writer<W>(mut self, make_writer: impl Fn() -> W + Send + Sync + 'static) -> Self
    where
        W: Write + Send + 'static,
    {
        self.make_writer = Some(Arc::new(move || Box::new(make_writer())));
        self
    }

    /// Whether a collector is installed.
    pub fn is_enabled(&self) -> bool {
        self.collector.is_some()
    }

    /// Writes what was recorded since the last flush, one EMF line per dimension set, and resets
    /// it. The lines are written with one call (or joined to the invocation's gathered log lines,
    /// written with them in one), so lines of concurrent writers never interleave.
    pub fn flush(&self) {
        let Some(collector) = self.collector else {
            return;
        };
        // A line is 300 to 400 bytes: written into a buffer that does not grow on the way.
        let mut lines = String::with_capacity(512);
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        let unwritten = collector.flush(&mut lines, timestamp_ms);
        for (metric, values) in unwritten.0 {
            tracing::warn!(
                metric,
                values,
                "metric values not written: not finite, or more than 10,000 between flushes"
            );
        }
        if lines.is_empty() {
            return;
        }
        let mut out = match &self.make_writer {
            Some(make_writer) => make_writer(),
            None if crate::log_format::join_invocation_lines(lines.as_bytes()) => return,
            None => Box::new(std::io::stdout()),
        };
        if let Err(err) = out.write_all(lines.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %err, "metrics could not be written");
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! The process-wide collector of the unit tests, and a lock: tests that record and flush
    //! hold it, so that no other test's metrics end up in their lines.

    use std::sync::OnceLock;

    use tokio::sync::{Mutex, MutexGuard};

    use super::{Metrics, MetricsConfig};
    use crate::test_support::SharedBuf;

    static METRICS: OnceLock<Metrics> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::const_new(());

    /// The test collector (namespace `Test`, dimension `service=test-service`), writing to a
    /// fresh buffer, drained of what earlier tests left; and the lock to hold meanwhile.
    pub(crate) async fn metrics() -> (Metrics, SharedBuf, MutexGuard<'static, ()>) {
        let (metrics, guard) = installed().await;
        let buf = SharedBuf::default();
        let writer = buf.clone();
        (metrics.writer(move || writer.clone()), buf, guard)
    }

    /// The test collector as installed (its lines join the invocation's log lines), drained of
    /// what earlier tests left; and the lock to hold meanwhile.
    pub(crate) async fn installed() -> (Metrics, MutexGuard<'static, ()>) {
        let guard = LOCK.lock().await;
        let metrics = METRICS.get_or_init(|| {
            Metrics::install(&MetricsConfig::new("Test").dimension("service", "test-service"))
                .expect("the only recorder of the test process")
        });
        metrics.clone().writer(std::io::sink).flush();
        (metrics.clone(), guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[tokio::test]
    async fn metrics_become_one_valid_emf_line_per_dimension_set() {
        let (metrics, out, _guard) = test_support::metrics().await;
        describe_counter!("TestGreetings", Unit::Count, "greetings");
        describe_histogram!("TestAge", Unit::Seconds, "ages");
        counter!("TestGreetings", "PackageManager" => "cargo").increment(2);
        histogram!("TestAge").record(34.0);
        histogram!("TestAge").record(35.0);
        metrics.flush();

        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let docs: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        for doc in &docs {
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(directive["Namespace"], "Test");
            assert!(doc["_aws"]["Timestamp"].as_u64().is_some_and(|t| t > 0));
            assert_eq!(doc["service"], "test-service");
            // Every dimension and metric named in the directive is a top-level member.
            for name in directive["Dimensions"][0]
                .as_array()
                .expect("dimension set")
            {
                assert!(doc[name.as_str().expect("name")].is_string(), "{doc}");
            }
            for metric in directive["Metrics"].as_array().expect("metrics") {
                assert!(
                    !doc[metric["Name"].as_str().expect("name")].is_null(),
                    "{doc}"
                );
            }
        }
        let greetings = docs
            .iter()
            .find(|d| d["TestGreetings"].is_number())
            .expect("counter line");
        assert_eq!(greetings["TestGreetings"], 2);
        assert_eq!(greetings["PackageManager"], "cargo");
        assert_eq!(
            greetings["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["service", "PackageManager"]])
        );
        assert_eq!(
            greetings["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            serde_json::json!([{"Name": "TestGreetings", "Unit": "Count"}])
        );
        let ages = docs
            .iter()
            .find(|d| d["TestAge"].is_array())
            .expect("histogram line");
        assert_eq!(ages["TestAge"], serde_json::json!([34.0, 35.0]));

        // Flushed values are gone: an idle invocation writes nothing.
        metrics.flush();
        assert_eq!(out.lines().len(), 2);
    }

    #[test]
    fn disabled_metrics_write_nothing() {
        let out = crate::test_support::SharedBuf::default();
        let writer = out.clone();
        let metrics = Metrics::install(&MetricsConfig::new("Test").disabled(true))
            .expect("nothing to install")
            .writer(move || writer.clone());
        assert!(!metrics.is_enabled());
        metrics.flush();
        assert!(out.lines().is_empty());
    }
}
