//! The one configuration of an execution environment, read from the environment once.
//!
//! Only [`Config`]'s constructors read variables; every layer and the pipeline take their
//! settings from it.

pub mod telemetry;

pub use telemetry::TelemetrySettings;
