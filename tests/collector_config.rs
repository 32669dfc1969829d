//! The ADOT collector Lambda layer loads `collector.yaml` (the default: OTLP, signed with SigV4,
//! to X-Ray's OTLP endpoint) or `collector-awsxray.yaml` (segment documents through the
//! deprecated `awsxray` exporter, for accounts without CloudWatch Transaction Search). Both must
//! parse, every pipeline must name components that are defined, only components the layer ships
//! may be used, and the receiver and exporter must match what the function sends and where
//! X-Ray takes it.

use std::collections::BTreeSet;

use serde_yaml::Value;

/// The components built into the ADOT collector Lambda layer, from
/// aws-observability/aws-otel-lambda `adot/collector/lambdacomponents/default.go` (`Components()`;
/// the same list as that repository's README table "ADOT Lambda Layer available components").
/// The layer has no processors and no connectors.
const ADOT_LAMBDA_RECEIVERS: &[&str] = &["otlp"];
const ADOT_LAMBDA_EXPORTERS: &[&str] = &[
    "awsxray",
    "awsemf",
    "prometheusremotewrite",
    "logging",
    "otlp",
    "otlphttp",
];
const ADOT_LAMBDA_EXTENSIONS: &[&str] = &["sigv4auth"];

/// Where the function's OTLP exporter posts in the `adot` variant.
const FUNCTION_OTLP_TRACES_ENDPOINT: &str = "http://localhost:4318/v1/traces";

fn load(file: &str) -> Value {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: invalid YAML: {e}"))
}

fn default_config() -> Value {
    load("collector.yaml")
}

fn awsxray_config() -> Value {
    load("collector-awsxray.yaml")
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

fn names(list: &Value) -> Vec<&str> {
    list.as_sequence()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Every component is defined before use, ships with the layer, and every extension an
/// exporter authenticates with is enabled in `service.extensions`.
fn assert_consistent_and_shipped(file: &str, config: &Value) {
    let pipelines = config["service"]["pipelines"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{file}: no service.pipelines"));
    assert!(!pipelines.is_empty(), "{file}: no pipelines");
    for (name, pipeline) in pipelines {
        for kind in ["receivers", "processors", "exporters"] {
            let ids = names(&pipeline[kind]);
            if kind != "processors" {
                assert!(!ids.is_empty(), "{file}: pipeline {name:?} needs {kind}");
            }
            let known = defined(config, kind);
            for id in ids {
                assert!(
                    known.contains(id),
                    "{file}: pipeline {name:?} uses undefined {kind} {id:?}"
                );
            }
        }
    }
    for kind in ["processors", "connectors"] {
        assert!(
            defined(config, kind).is_empty(),
            "{file}: the ADOT Lambda layer has no {kind}"
        );
    }
    for (kind, shipped) in [
        ("receivers", ADOT_LAMBDA_RECEIVERS),
        ("exporters", ADOT_LAMBDA_EXPORTERS),
        ("extensions", ADOT_LAMBDA_EXTENSIONS),
    ] {
        for id in defined(config, kind) {
            assert!(
                shipped.contains(&component_type(&id)),
                "{file}: {kind} {id:?} is not in the ADOT Lambda layer"
            );
        }
    }
    let enabled = names(&config["service"]["extensions"]);
    let extensions = defined(config, "extensions");
    for id in &enabled {
        assert!(
            extensions.contains(*id),
            "{file}: service.extensions names undefined {id:?}"
        );
    }
    for id in &extensions {
        assert!(
            enabled.contains(&id.as_str()),
            "{file}: extension {id:?} is defined but not enabled in service.extensions"
        );
    }
    for id in defined(config, "exporters") {
        if let Some(auth) = config["exporters"][id.as_str()]["auth"]["authenticator"].as_str() {
            assert!(
                enabled.contains(&auth),
                "{file}: exporter {id:?} authenticates with {auth:?}, which is not enabled"
            );
        }
    }
}

/// The receiver listens, on localhost only, where the function posts (OTLP HTTP) and on the
/// standard gRPC port.
fn assert_receiver_matches_the_function(file: &str, config: &Value) {
    let protocols = &config["receivers"]["otlp"]["protocols"];
    assert_eq!(
        protocols["http"]["endpoint"].as_str(),
        Some("localhost:4318"),
        "{file}: OTLP HTTP receiver"
    );
    assert_eq!(
        protocols["grpc"]["endpoint"].as_str(),
        Some("localhost:4317"),
        "{file}: OTLP gRPC receiver"
    );
    let authority = FUNCTION_OTLP_TRACES_ENDPOINT
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .expect("http://host:port/path");
    assert_eq!(
        protocols["http"]["endpoint"].as_str(),
        Some(authority),
        "{file}: the function posts to {FUNCTION_OTLP_TRACES_ENDPOINT}"
    );
}

fn traces_exporters(config: &Value) -> Vec<&str> {
    names(&config["service"]["pipelines"]["traces"]["exporters"])
}

#[test]
fn both_configurations_use_only_defined_components_the_layer_ships() {
    assert_consistent_and_shipped("collector.yaml", &default_config());
    assert_consistent_and_shipped("collector-awsxray.yaml", &awsxray_config());
}

#[test]
fn both_receivers_listen_where_the_function_sends() {
    assert_receiver_matches_the_function("collector.yaml", &default_config());
    assert_receiver_matches_the_function("collector-awsxray.yaml", &awsxray_config());
}

#[test]
fn the_default_exports_signed_otlp_to_the_xray_endpoint_and_has_no_awsxray() {
    let config = default_config();
    assert_eq!(traces_exporters(&config), ["otlphttp"]);
    let exporter = &config["exporters"]["otlphttp"];
    assert_eq!(
        exporter["traces_endpoint"].as_str(),
        Some("https://xray.${env:AWS_REGION}.amazonaws.com/v1/traces")
    );
    assert_eq!(
        exporter["auth"]["authenticator"].as_str(),
        Some("sigv4auth")
    );
    let sigv4 = &config["extensions"]["sigv4auth"];
    assert_eq!(sigv4["service"].as_str(), Some("xray"));
    assert_eq!(sigv4["region"].as_str(), Some("${env:AWS_REGION}"));
    let raw = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/collector.yaml"))
        .expect("collector.yaml");
    let uncommented: String = raw
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !uncommented.contains("awsxray"),
        "collector.yaml must not use the deprecated awsxray exporter"
    );
}

#[test]
fn the_awsxray_variant_indexes_the_annotations_the_function_sets() {
    let config = awsxray_config();
    assert_eq!(traces_exporters(&config), ["awsxray"]);
    let indexed = names(&config["exporters"]["awsxray"]["indexed_attributes"]);
    assert_eq!(
        indexed,
        lambda_observability::export::ANNOTATIONS,
        "annotations indexed like the segments path"
    );
}
