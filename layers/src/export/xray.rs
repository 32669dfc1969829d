//! X-Ray segment documents over UDP to the daemon.

use std::net::SocketAddr;

use opentelemetry_aws::xray_exporter::{
    SegmentTranslator, XrayExporter, daemon_client::XrayDaemonClient,
};

use super::ANNOTATIONS;
use crate::BoxError;

/// An exporter sending each span as a segment document to the daemon at `daemon`, with the
/// [`ANNOTATIONS`] indexed.
pub(super) fn segment_exporter(
    daemon: SocketAddr,
) -> Result<XrayExporter<XrayDaemonClient>, BoxError> {
    let translator =
        SegmentTranslator::new().with_indexed_attrs(ANNOTATIONS.iter().map(|a| (*a).to_owned()));
    Ok(XrayExporter::new(XrayDaemonClient::new(daemon)?).with_translator(translator))
}
