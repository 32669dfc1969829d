//! `collector.yaml` is what the ADOT collector Lambda layer loads: it must parse, every pipeline
//! must name components that are defined, only components that layer ships may be used, and the
//! receiver and exporter must match what the function sends.

use std::collections::BTreeSet;

use serde_yaml::Value;

/// Components the ADOT collector Lambda layer ships (it has no processors).
const ADOT_LAMBDA_RECEIVERS: &[&str] = &["otlp"];
const ADOT_LAMBDA_EXPORTERS: &[&str] = &[
    "awsxray",
    "awsemf",
    "debug",
    "logging",
    "otlp",
    "otlphttp",
    "prometheusremotewrite",
];

fn config() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/collector.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("collector.yaml"))
        .expect("valid YAML")
}

/// The component type of a component id (`otlp/2` → `otlp`).
fn component_type(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

fn defined(config: &Value, kind: &str) -> BTreeSet<String> {
    config[kind]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_pipeline_names_defined_components_the_layer_ships() {
    let config = config();
    let pipelines = config["service"]["pipelines"]
        .as_mapping()
        .expect("service.pipelines");
    assert!(!pipelines.is_empty());
    for (name, pipeline) in pipelines {
        for kind in ["receivers", "processors", "exporters"] {
            let names: Vec<&str> = pipeline[kind]
                .as_sequence()
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if kind != "processors" {
                assert!(!names.is_empty(), "pipeline {name:?} needs {kind}");
            }
            let known = defined(&config, kind);
            for id in names {
                assert!(
                    known.contains(id),
                    "pipeline {name:?} uses undefined {kind} {id:?}"
                );
            }
        }
    }
    assert!(
        defined(&config, "processors").is_empty(),
        "the ADOT Lambda layer has no processors"
    );
    for id in defined(&config, "receivers") {
        assert!(
            ADOT_LAMBDA_RECEIVERS.contains(&component_type(&id)),
            "receiver {id} is not in the ADOT Lambda layer"
        );
    }
    for id in defined(&config, "exporters") {
        assert!(
            ADOT_LAMBDA_EXPORTERS.contains(&component_type(&id)),
            "exporter {id} is not in the ADOT Lambda layer"
        );
    }
}

#[test]
fn receiver_and_exporter_match_what_the_function_sends() {
    let config = config();
    // opentelemetry-otlp's HTTP default endpoint is http://localhost:4318.
    assert_eq!(
        config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].as_str(),
        Some("localhost:4318")
    );
    let traces = &config["service"]["pipelines"]["traces"];
    assert!(
        traces["exporters"]
            .as_sequence()
            .is_some_and(|e| e.iter().any(|x| x.as_str() == Some("awsxray")))
    );
    let indexed: Vec<&str> = config["exporters"]["awsxray"]["indexed_attributes"]
        .as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        indexed,
        lambda_observability::export::ANNOTATIONS,
        "annotations indexed like the direct X-Ray path"
    );
}
