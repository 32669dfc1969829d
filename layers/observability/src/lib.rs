#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
pub mod export;
mod function;
pub mod http_client;
pub mod triggers;

#[cfg(any(feature = "xray-segments", feature = "otlp-udp"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "xray-segments", feature = "otlp-udp"))))]
pub use lambda_observability_daemon as daemon;
pub use lambda_observability_runtime as runtime;
#[cfg(feature = "sigv4")]
#[cfg_attr(docsrs, doc(cfg(feature = "sigv4")))]
pub use lambda_observability_sigv4 as sigv4;
pub use lambda_observability_tower as layers;
pub use lambda_observability_tower::{
    BoxError, ErrorKind, ErrorMapLayer, FunctionError, HttpTraceLayer, JsonEventLayer,
    LoggingLayer, ObservabilityLayer, TimingLayer, TraceLayer, error, json_event, log_format,
    metrics,
};

use lambda_observability_runtime::cold_start;

pub use function::{
    DEFAULT_METRICS_NAMESPACE, Function, Init, install_metrics, invocation_layer, log_config, run,
};
