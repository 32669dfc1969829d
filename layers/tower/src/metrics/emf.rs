//! CloudWatch Embedded Metric Format documents, written straight into the flush's buffer: the
//! parts that do not change from one flush to the next (the namespace, each dimension set's names
//! and values, each metric's name) are rendered once, when a dimension set or metric is first
//! registered, and copied. A serializer walking a document tree took 12k instructions per warm
//! invocation for the example's one line (and 24k for the first invocation's); this takes under
//! 1k (docs/benchmarks.md).
//!
//! Limits of the format ([the specification]): at most 100 metrics and 30 dimensions per
//! document, at most 100 values per metric. Metrics past 100 go to further documents; histogram
//! values past 100 too, 100 per document; registrations past 30 dimensions are refused
//! ([`MAX_DIMENSIONS`]).
//!
//! [the specification]: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

use metrics::Unit;

use crate::log_format::push_json_string;

/// Dimensions of one dimension set, defaults and labels together.
pub(super) const MAX_DIMENSIONS: usize = 30;
/// Metrics of one document.
const MAX_METRICS: usize = 100;
/// Values of one metric in one document.
const MAX_VALUES: usize = 100;

/// CloudWatch's name for `unit`; `None` for a unit CloudWatch does not have (nanoseconds), whose
/// metric is then written without one rather than rejected.
pub(super) fn unit_name(unit: Unit) -> Option<&'static str> {
    Some(match unit {
        Unit::Count => "Count",
        Unit::Percent => "Percent",
        Unit::Seconds => "Seconds",
        Unit::Milliseconds => "Milliseconds",
        Unit::Microseconds => "Microseconds",
        Unit::Nanoseconds => return None,
        // CloudWatch's byte units are binary multiples.
        Unit::Tebibytes => "Terabytes",
        Unit::Gibibytes => "Gigabytes",
        Unit::Mebibytes => "Megabytes",
        Unit::Kibibytes => "Kilobytes",
        Unit::Bytes => "Bytes",
        Unit::TerabitsPerSecond => "Terabits/Second",
        Unit::GigabitsPerSecond => "Gigabits/Second",
        Unit::MegabitsPerSecond => "Megabits/Second",
        Unit::KilobitsPerSecond => "Kilobits/Second",
        Unit::BitsPerSecond => "Bits/Second",
        Unit::CountPerSecond => "Count/Second",
    })
}

/// What every document of one dimension set carries, rendered when the set is registered.
#[derive(Debug)]
pub(super) struct DimensionSet {
    /// `["service","FunctionName","PackageManager"]`
    names: String,
    /// `,"service":"hello","FunctionName":"hello","PackageManager":"cargo"`
    members: String,
}

impl DimensionSet {
    /// `dimensions` in order, names unique.
    pub(super) fn new<'a>(dimensions: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut names = String::with_capacity(128);
        names.push('[');
        let mut members = String::with_capacity(256);
        for (name, value) in dimensions {
            if names.len() > 1 {
                names.push(',');
            }
            push_json_string(&mut names, name);
            members.push(',');
            push_json_string(&mut members, name);
            members.push(':');
            push_json_string(&mut members, value);
        }
        names.push(']');
        Self { names, members }
    }
}

/// One metric's value in one flush.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Count(u64),
    Gauge(f64),
    /// A histogram's values, each finite, at least one.
    Values(Vec<f64>),
}

/// One metric of a dimension set with its value, ready to be written.
#[derive(Debug)]
pub(super) struct Entry<'a> {
    /// The name as a JSON string, quotes included.
    pub(super) name: &'a str,
    pub(super) unit: Option<&'static str>,
    pub(super) value: Value,
}

impl Entry<'_> {
    /// How many documents its values need.
    fn rounds(&self) -> usize {
        match &self.value {
            Value::Values(values) => values.len().div_ceil(MAX_VALUES),
            Value::Count(_) | Value::Gauge(_) => 1,
        }
    }
}

/// Writes `entries` of `set` as EMF lines, each ending in `\n`: one document in the usual case,
/// more when there are more than [`MAX_METRICS`] metrics or a histogram holds more than
/// [`MAX_VALUES`] values (the first document carries every metric, the next ones the histograms'
/// further values).
pub(super) fn write(
    out: &mut String,
    timestamp_ms: u64,
    namespace: &str,
    set: &DimensionSet,
    entries: &[Entry<'_>],
) {
    let rounds = entries.iter().map(Entry::rounds).max().unwrap_or(0);
    for round in 0..rounds {
        let of_round = || entries.iter().filter(move |entry| entry.rounds() > round);
        for first in (0..of_round().count()).step_by(MAX_METRICS) {
            document(
                out,
                timestamp_ms,
                namespace,
                set,
                of_round().skip(first).take(MAX_METRICS),
                round,
            );
        }
    }
}

fn document<'a>(
    out: &mut String,
    timestamp_ms: u64,
    namespace: &str,
    set: &DimensionSet,
    entries: impl Iterator<Item = &'a Entry<'a>> + Clone,
    round: usize,
) {
    out.push_str("{\"_aws\":{\"Timestamp\":");
    out.push_str(itoa::Buffer::new().format(timestamp_ms));
    out.push_str(",\"CloudWatchMetrics\":[{\"Namespace\":");
    out.push_str(namespace);
    out.push_str(",\"Dimensions\":[");
    out.push_str(&set.names);
    out.push_str("],\"Metrics\":[");
    for (at, entry) in entries.clone().enumerate() {
        if at > 0 {
            out.push(',');
        }
        out.push_str("{\"Name\":");
        out.push_str(entry.name);
        if let Some(unit) = entry.unit {
            out.push_str(",\"Unit\":\"");
            out.push_str(unit);
            out.push('"');
        }
        out.push('}');
    }
    out.push_str("]}]}");
    out.push_str(&set.members);
    for entry in entries {
        out.push(',');
        out.push_str(entry.name);
        out.push(':');
        match &entry.value {
            Value::Count(count) => out.push_str(itoa::Buffer::new().format(*count)),
            Value::Gauge(value) => out.push_str(ryu::Buffer::new().format_finite(*value)),
            Value::Values(values) => {
                out.push('[');
                let start = round * MAX_VALUES;
                let end = values.len().min(start + MAX_VALUES);
                for (at, value) in values[start..end].iter().enumerate() {
                    if at > 0 {
                        out.push(',');
                    }
                    out.push_str(ryu::Buffer::new().format_finite(*value));
                }
                out.push(']');
            }
        }
    }
    out.push_str("}\n");
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::*;

    fn entry(
        name: &str,
        unit: Option<&'static str>,
        value: Value,
    ) -> (String, Option<&'static str>, Value) {
        let mut json = String::new();
        push_json_string(&mut json, name);
        (json, unit, value)
    }

    fn written(set: &DimensionSet, metrics: &[(String, Option<&'static str>, Value)]) -> Vec<Json> {
        let entries: Vec<Entry<'_>> = metrics
            .iter()
            .map(|(name, unit, value)| Entry {
                name,
                unit: *unit,
                value: value.clone(),
            })
            .collect();
        let mut out = String::new();
        write(&mut out, 1_700_000_000_123, "\"Test\"", set, &entries);
        assert!(out.ends_with('\n') || out.is_empty());
        out.lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON document"))
            .collect()
    }

    #[test]
    fn a_document_has_the_directive_the_dimensions_and_the_values() {
        let set = DimensionSet::new([("service", "hello"), ("PackageManager", "cargo")]);
        let docs = written(
            &set,
            &[
                entry("Greetings", Some("Count"), Value::Count(3)),
                entry("Load", None, Value::Gauge(0.5)),
                entry("Age", Some("Seconds"), Value::Values(vec![34.0, 35.5])),
            ],
        );
        assert_eq!(
            docs,
            [json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_123_u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Test",
                        "Dimensions": [["service", "PackageManager"]],
                        "Metrics": [
                            {"Name": "Greetings", "Unit": "Count"},
                            {"Name": "Load"},
                            {"Name": "Age", "Unit": "Seconds"},
                        ],
                    }],
                },
                "service": "hello",
                "PackageManager": "cargo",
                "Greetings": 3,
                "Load": 0.5,
                "Age": [34.0, 35.5],
            })]
        );
    }

    #[test]
    fn names_and_values_are_escaped() {
        let set = DimensionSet::new([("a\"b", "c\\d\n")]);
        let docs = written(&set, &[entry("q\"uote", None, Value::Count(1))]);
        assert_eq!(docs[0]["a\"b"], "c\\d\n");
        assert_eq!(docs[0]["q\"uote"], 1);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["a\"b"]])
        );
    }

    #[test]
    fn more_than_100_values_go_to_further_documents() {
        let set = DimensionSet::new([("service", "hello")]);
        let values: Vec<f64> = (0..250).map(f64::from).collect();
        let docs = written(
            &set,
            &[
                entry("Count", Some("Count"), Value::Count(7)),
                entry(
                    "Latency",
                    Some("Milliseconds"),
                    Value::Values(values.clone()),
                ),
            ],
        );
        assert_eq!(docs.len(), 3, "{docs:?}");
        assert_eq!(docs[0]["Count"], 7);
        for doc in &docs[1..] {
            assert!(doc.get("Count").is_none(), "a count is written once: {doc}");
            assert_eq!(
                doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
                json!([{"Name": "Latency", "Unit": "Milliseconds"}])
            );
        }
        let mut all = Vec::new();
        for doc in &docs {
            let part = doc["Latency"].as_array().expect("values");
            assert!(part.len() <= MAX_VALUES);
            all.extend(part.iter().map(|v| v.as_f64().expect("number")));
        }
        assert_eq!(all, values, "every value once, in order");
    }

    #[test]
    fn more_than_100_metrics_go_to_further_documents() {
        let set = DimensionSet::new([("service", "hello")]);
        let metrics: Vec<_> = (0..230)
            .map(|n| entry(&format!("M{n}"), None, Value::Count(n)))
            .collect();
        let docs = written(&set, &metrics);
        assert_eq!(docs.len(), 3);
        let mut seen = 0;
        for doc in &docs {
            let directive = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .expect("metrics");
            assert!(directive.len() <= MAX_METRICS);
            for metric in directive {
                let name = metric["Name"].as_str().expect("name");
                assert_eq!(doc[name], json!(name[1..].parse::<u64>().expect("n")));
                seen += 1;
            }
            assert_eq!(doc["service"], "hello", "each document has the dimensions");
        }
        assert_eq!(seen, 230);
    }

    #[test]
    fn nothing_to_write_writes_nothing() {
        let set = DimensionSet::new([("service", "hello")]);
        assert!(written(&set, &[]).is_empty());
    }

    #[test]
    fn units_are_cloudwatch_names() {
        assert_eq!(unit_name(Unit::Count), Some("Count"));
        assert_eq!(unit_name(Unit::Milliseconds), Some("Milliseconds"));
        assert_eq!(unit_name(Unit::Mebibytes), Some("Megabytes"));
        assert_eq!(unit_name(Unit::CountPerSecond), Some("Count/Second"));
        assert_eq!(unit_name(Unit::Nanoseconds), None, "CloudWatch has none");
    }
}
