#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod at_answer;
pub mod error_map;
pub mod export;
mod filters;
pub mod http_client;
pub mod json_event;
pub mod log_format;
pub mod logging;
pub mod metrics;
pub mod observability;
pub mod timing;
pub mod trace;

pub use error_map::ErrorMapLayer;
pub use http_client::HttpTraceLayer;
pub use json_event::JsonEventLayer;
pub use lambda_observability_runtime::{
    BoxError,
    error::{self, ErrorKind, FunctionError},
};
pub use logging::LoggingLayer;
pub use observability::ObservabilityLayer;
pub use timing::TimingLayer;
pub use trace::TraceLayer;

use lambda_observability_runtime::{cold_start, deadline, facts};

#[cfg(test)]
pub(crate) mod test_support;
