//! The process-wide collector behind the `metrics` facade: counters, gauges and histograms by
//! dimension set, each recording into its own atomics (or, for a histogram, its own short-held
//! lock), so recording never waits on a flush or on another metric; a flush takes what was
//! recorded since the last one and writes it as EMF ([`emf`](super::emf)).

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, SharedString, Unit};

use super::{
    MetricsConfig,
    emf::{self, DimensionSet, Entry, MAX_DIMENSIONS, Value},
};
use crate::log_format::push_json_string;

/// Values a histogram keeps between two flushes; the ones past it are dropped and counted (a
/// flush per invocation writes far fewer; this bounds memory when nothing flushes).
const MAX_KEPT_VALUES: usize = 10_000;

/// What recording needs, shared by every handle of the process.
#[derive(Debug)]
pub(super) struct Collector {
    /// The namespace as a JSON string.
    namespace: String,
    dimensions: Vec<(String, String)>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sets: Vec<Set>,
    /// Described units, by metric name, for metrics registered after their description.
    units: Vec<(KeyName, Option<&'static str>)>,
}

/// The metrics registered with one list of labels.
#[derive(Debug)]
struct Set {
    labels: Vec<Label>,
    rendered: DimensionSet,
    metrics: Vec<Registered>,
}

#[derive(Debug)]
struct Registered {
    name: KeyName,
    /// The name as a JSON string.
    json_name: String,
    unit: Option<&'static str>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<GaugeValue>),
    Histogram(Arc<HistogramValues>),
}

/// What a registration asks for: the kind, before there is a handle of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Of {
    Counter,
    Gauge,
    Histogram,
}

impl Of {
    fn name(self) -> &'static str {
        match self {
            Of::Counter => "counter",
            Of::Gauge => "gauge",
            Of::Histogram => "histogram",
        }
    }

    /// A new handle of this kind.
    fn make(self) -> Kind {
        match self {
            Of::Counter => Kind::Counter(Arc::default()),
            Of::Gauge => Kind::Gauge(Arc::default()),
            Of::Histogram => Kind::Histogram(Arc::default()),
        }
    }
}

impl Kind {
    fn of(&self) -> Of {
        match self {
            Kind::Counter(_) => Of::Counter,
            Kind::Gauge(_) => Of::Gauge,
            Kind::Histogram(_) => Of::Histogram,
        }
    }
}

/// A gauge's last value, and whether it was set since the last flush: a gauge is written at the
/// flush after it was set, not at every flush after that.
#[derive(Debug, Default)]
struct GaugeValue {
    bits: AtomicU64,
    set: AtomicBool,
}

impl metrics::GaugeFn for GaugeValue {
    fn increment(&self, value: f64) {
        metrics::GaugeFn::increment(&self.bits, value);
        self.set.store(true, Ordering::Release);
    }
    fn decrement(&self, value: f64) {
        metrics::GaugeFn::decrement(&self.bits, value);
        self.set.store(true, Ordering::Release);
    }
    fn set(&self, value: f64) {
        metrics::GaugeFn::set(&self.bits, value);
        self.set.store(true, Ordering::Release);
    }
}

/// A histogram's values since the last flush.
#[derive(Debug, Default)]
struct HistogramValues {
    values: Mutex<Vec<f64>>,
    dropped: AtomicU64,
}

impl metrics::HistogramFn for HistogramValues {
    fn record(&self, value: f64) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        if values.len() < MAX_KEPT_VALUES {
            values.push(value);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What a flush could not write: histogram values past [`MAX_KEPT_VALUES`] or not finite, and
/// gauges whose value is not finite (JSON has no NaN or infinity), by metric name.
#[derive(Debug, Default)]
pub(super) struct Unwritten(pub(super) Vec<(String, u64)>);

impl Collector {
    pub(super) fn new(config: &MetricsConfig) -> Self {
        let mut namespace = String::with_capacity(config.namespace.len() + 2);
        push_json_string(&mut namespace, &config.namespace);
        Self {
            namespace,
            dimensions: config.dimensions.clone(),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn describe(&self, name: KeyName, unit: Option<Unit>) {
        let unit = unit.and_then(emf::unit_name);
        let mut state = self.state();
        for set in &mut state.sets {
            for metric in set.metrics.iter_mut().filter(|m| m.name == name) {
                metric.unit = unit;
            }
        }
        match state.units.iter_mut().find(|(known, _)| *known == name) {
            Some((_, known)) => *known = unit,
            None => state.units.push((name, unit)),
        }
    }

    /// The handle of `key`, of kind `of`: the one registered before (`counter!` and its kin
    /// register at every call; nothing is made then), or a new one. `None` when `key` is
    /// registered as another kind, or has too many dimensions, which a warning says (logged once
    /// the collector's lock is released: a layer of the subscriber may record metrics too).
    fn register(&self, key: &Key, of: Of) -> Option<Kind> {
        let registered = self.register_locked(key, of);
        if let Err(refusal) = &registered {
            tracing::warn!(metric = key.name(), "metric not recorded: {refusal}");
        }
        registered.ok()
    }

    fn register_locked(&self, key: &Key, of: Of) -> Result<Kind, String> {
        let mut state = self.state();
        let State { sets, units } = &mut *state;
        let set = match sets
            .iter()
            .position(|set| set.labels.iter().eq(key.labels()))
        {
            Some(at) => &mut sets[at],
            None => {
                sets.push(self.new_set(key)?);
                let at = sets.len() - 1;
                &mut sets[at]
            }
        };
        if let Some(known) = set.metrics.iter().find(|m| m.name.as_str() == key.name()) {
            if known.kind.of() != of {
                return Err(format!(
                    "asked for as a {}, it is registered as a {}",
                    of.name(),
                    known.kind.of().name()
                ));
            }
            return Ok(known.kind.clone());
        }
        let name = key.name_shared();
        let mut json_name = String::with_capacity(name.as_str().len() + 2);
        push_json_string(&mut json_name, name.as_str());
        let unit = units
            .iter()
            .find(|(known, _)| *known == name)
            .and_then(|(_, unit)| *unit);
        let kind = of.make();
        set.metrics.push(Registered {
            name,
            json_name,
            unit,
            kind: kind.clone(),
        });
        Ok(kind)
    }

    /// The dimension set of `key`'s labels: the configured dimensions, then the labels (a label
    /// named like a configured dimension gives it its value).
    fn new_set(&self, key: &Key) -> Result<Set, String> {
        let mut dimensions: Vec<(&str, &str)> = self
            .dimensions
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        for label in key.labels() {
            match dimensions.iter_mut().find(|(name, _)| *name == label.key()) {
                Some(dimension) => dimension.1 = label.value(),
                None => dimensions.push((label.key(), label.value())),
            }
        }
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(format!(
                "{} dimensions, where EMF allows {MAX_DIMENSIONS}",
                dimensions.len()
            ));
        }
        Ok(Set {
            labels: key.labels().cloned().collect(),
            rendered: DimensionSet::new(dimensions),
            metrics: Vec::new(),
        })
    }

    /// Appends what was recorded since the last flush to `out` as EMF lines, one per dimension
    /// set that has something (more past the format's limits), and resets it.
    pub(super) fn flush(&self, out: &mut String, timestamp_ms: u64) -> Unwritten {
        let mut unwritten = Unwritten::default();
        let state = self.state();
        let mut entries = Vec::new();
        for set in &state.sets {
            entries.clear();
            for metric in &set.metrics {
                let Some(value) = take(&metric.kind, &metric.name, &mut unwritten) else {
                    continue;
                };
                entries.push(Entry {
                    name: &metric.json_name,
                    unit: metric.unit,
                    value,
                });
            }
            emf::write(out, timestamp_ms, &self.namespace, &set.rendered, &entries);
        }
        unwritten
    }
}

/// A metric's value since the last flush, if it has one to write.
fn take(kind: &Kind, name: &KeyName, unwritten: &mut Unwritten) -> Option<Value> {
    let mut missed = |count: u64| {
        if count > 0 {
            unwritten.0.push((name.as_str().to_owned(), count));
        }
    };
    match kind {
        Kind::Counter(count) => match count.swap(0, Ordering::AcqRel) {
            0 => None,
            count => Some(Value::Count(count)),
        },
        Kind::Gauge(gauge) => {
            if !gauge.set.swap(false, Ordering::AcqRel) {
                return None;
            }
            let value = f64::from_bits(gauge.bits.load(Ordering::Acquire));
            if value.is_finite() {
                Some(Value::Gauge(value))
            } else {
                missed(1);
                None
            }
        }
        Kind::Histogram(histogram) => {
            let mut values = std::mem::take(
                &mut *histogram
                    .values
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            let recorded = values.len();
            values.retain(|value| value.is_finite());
            missed(histogram.dropped.swap(0, Ordering::Relaxed) + (recorded - values.len()) as u64);
            (!values.is_empty()).then_some(Value::Values(values))
        }
    }
}

/// The `metrics` recorder over the process-wide collector.
#[derive(Debug)]
pub(super) struct Recorder(pub(super) &'static Collector);

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.0.describe(key, unit);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.0.describe(key, unit);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.0.describe(key, unit);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match self.0.register(key, Of::Counter) {
            Some(Kind::Counter(count)) => Counter::from_arc(count),
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match self.0.register(key, Of::Gauge) {
            Some(Kind::Gauge(gauge)) => Gauge::from_arc(gauge),
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match self.0.register(key, Of::Histogram) {
            Some(Kind::Histogram(values)) => Histogram::from_arc(values),
            _ => Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use metrics::Recorder as _;
    use serde_json::{Value as Json, json};

    use super::*;

    const META: Metadata<'static> = Metadata::new("test", metrics::Level::INFO, None);

    /// A collector of its own (not the process-wide one), and its recorder.
    fn recorder() -> Recorder {
        let config = MetricsConfig::new("Test")
            .dimension("service", "hello")
            .dimension("FunctionName", "fn");
        Recorder(Box::leak(Box::new(Collector::new(&config))))
    }

    fn flushed(recorder: &Recorder) -> (Vec<Json>, Vec<(String, u64)>) {
        let mut out = String::new();
        let unwritten = recorder.0.flush(&mut out, 42);
        let docs = out
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON"))
            .collect();
        (docs, unwritten.0)
    }

    fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
        Key::from_parts(
            name,
            labels
                .iter()
                .map(|(k, v)| Label::new(*k, *v))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn one_line_per_dimension_set_with_what_was_recorded_since_the_last_flush() {
        let recorder = recorder();
        recorder.describe_counter("Greetings".into(), Some(Unit::Count), "".into());
        let greetings =
            recorder.register_counter(&key("Greetings", &[("PackageManager", "cargo")]), &META);
        let cold = recorder.register_counter(&key("ColdStart", &[]), &META);
        greetings.increment(2);
        greetings.increment(1);
        cold.increment(1);

        let (docs, unwritten) = flushed(&recorder);
        assert!(unwritten.is_empty());
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert_eq!(docs[0]["Greetings"], 3);
        assert_eq!(docs[0]["PackageManager"], "cargo");
        assert_eq!(docs[0]["service"], "hello");
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["service", "FunctionName", "PackageManager"]])
        );
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "Greetings", "Unit": "Count"}])
        );
        assert_eq!(docs[1]["ColdStart"], 1);
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "ColdStart"}]),
            "not described: no unit"
        );

        // Counters start again from zero; an idle flush writes nothing.
        assert!(flushed(&recorder).0.is_empty());
        greetings.increment(5);
        let (docs, _) = flushed(&recorder);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["Greetings"], 5);
    }

    #[test]
    fn the_same_key_gets_the_same_metric() {
        let recorder = recorder();
        let a = recorder.register_counter(&key("Hits", &[("route", "/")]), &META);
        let b = recorder.register_counter(&key("Hits", &[("route", "/")]), &META);
        a.increment(1);
        b.increment(1);
        let (docs, _) = flushed(&recorder);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["Hits"], 2);
    }

    #[test]
    fn a_description_after_registration_still_gives_the_unit() {
        let recorder = recorder();
        let latency = recorder.register_histogram(&key("Latency", &[]), &META);
        recorder.describe_histogram("Latency".into(), Some(Unit::Milliseconds), "".into());
        latency.record(1.5);
        let (docs, _) = flushed(&recorder);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "Latency", "Unit": "Milliseconds"}])
        );
        assert_eq!(docs[0]["Latency"], json!([1.5]));
    }

    #[test]
    fn a_gauge_is_written_after_it_was_set_with_its_last_value() {
        let recorder = recorder();
        let depth = recorder.register_gauge(&key("Depth", &[]), &META);
        depth.set(3.0);
        depth.increment(1.5);
        let (docs, _) = flushed(&recorder);
        assert_eq!(docs[0]["Depth"], 4.5);
        assert!(
            flushed(&recorder).0.is_empty(),
            "not set since: not written"
        );
        depth.decrement(0.5);
        assert_eq!(flushed(&recorder).0[0]["Depth"], 4.0);
    }

    #[test]
    fn values_json_cannot_hold_are_counted_not_written() {
        let recorder = recorder();
        let latency = recorder.register_histogram(&key("Latency", &[]), &META);
        let load = recorder.register_gauge(&key("Load", &[]), &META);
        latency.record(f64::NAN);
        latency.record(2.0);
        load.set(f64::INFINITY);
        let (docs, unwritten) = flushed(&recorder);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["Latency"], json!([2.0]));
        assert!(docs[0].get("Load").is_none());
        assert_eq!(
            unwritten,
            [("Latency".to_owned(), 1), ("Load".to_owned(), 1)]
        );
    }

    #[test]
    fn a_histogram_keeps_a_bounded_number_of_values_between_flushes() {
        let recorder = recorder();
        let latency = recorder.register_histogram(&key("Latency", &[]), &META);
        for _ in 0..MAX_KEPT_VALUES + 7 {
            latency.record(1.0);
        }
        let (docs, unwritten) = flushed(&recorder);
        let written: usize = docs
            .iter()
            .map(|doc| doc["Latency"].as_array().expect("values").len())
            .sum();
        assert_eq!(written, MAX_KEPT_VALUES);
        assert_eq!(unwritten, [("Latency".to_owned(), 7)]);
    }

    #[tokio::test]
    async fn a_name_registered_as_another_kind_records_nothing_and_says_so() {
        let recorder = recorder();
        let lines = crate::test_support::capture_logs(async {
            let count = recorder.register_counter(&key("Thing", &[]), &META);
            let gauge = recorder.register_gauge(&key("Thing", &[]), &META);
            count.increment(1);
            gauge.set(9.0);
        })
        .await;
        let (docs, _) = flushed(&recorder);
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["Thing"], 1, "the counter, registered first");
        let warning: Json = serde_json::from_str(&lines[0]).expect("JSON");
        assert_eq!(warning["level"], "WARN");
        assert_eq!(warning["metric"], "Thing");
        assert_eq!(
            warning["message"],
            "metric not recorded: asked for as a gauge, it is registered as a counter"
        );
    }

    #[test]
    fn a_label_named_like_a_configured_dimension_gives_it_its_value() {
        let recorder = recorder();
        let hits = recorder.register_counter(&key("Hits", &[("service", "other")]), &META);
        hits.increment(1);
        let (docs, _) = flushed(&recorder);
        assert_eq!(docs[0]["service"], "other");
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["service", "FunctionName"]]),
            "each name once"
        );
    }

    #[test]
    fn more_than_30_dimensions_are_refused() {
        let recorder = recorder();
        let labels: Vec<Label> = (0..29).map(|n| Label::new(format!("d{n}"), "v")).collect();
        let hits = recorder.register_counter(&Key::from_parts("Hits", labels), &META);
        hits.increment(1);
        assert!(flushed(&recorder).0.is_empty(), "2 configured + 29 labels");
        let labels: Vec<Label> = (0..28).map(|n| Label::new(format!("d{n}"), "v")).collect();
        let hits = recorder.register_counter(&Key::from_parts("Hits", labels), &META);
        hits.increment(1);
        assert_eq!(flushed(&recorder).0[0]["Hits"], 1, "30 in all");
    }
}
