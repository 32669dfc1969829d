//! OTLP/HTTP: a receiver that checks and decodes what a collector would ([`OtlpReceiver`]), and
//! helpers reading an `ExportTraceServiceRequest` (spans, attributes, ids).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, any_value::Value},
    trace::v1::Span,
};
use prost::Message;

use crate::http::{Request, Response, serve};

/// The path an OTLP/HTTP collector serves traces at unless told otherwise.
pub const DEFAULT_TRACES_PATH: &str = "/v1/traces";

/// How the OTLP receiver answers a valid export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpMode {
    /// 200 with an empty `ExportTraceServiceResponse`.
    Accept,
    /// 500, every time.
    Fail,
    /// Reads the request and never answers.
    Hang,
}

/// An export the OTLP receiver decoded.
#[derive(Debug, Clone)]
pub struct OtlpExport {
    /// The request target it was posted to.
    pub path: String,
    /// Its headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Its body, decoded.
    pub request: ExportTraceServiceRequest,
}

#[derive(Debug)]
struct Checks {
    /// The one path exports are taken at.
    traces_path: Mutex<String>,
    /// What was rejected, and why.
    rejections: Mutex<Vec<String>>,
}

impl Checks {
    /// `request` decoded, or why a collector would reject it.
    fn check(&self, request: &Request) -> Result<ExportTraceServiceRequest, String> {
        let path = request.path.split('?').next().unwrap_or_default();
        let traces_path = self.traces_path.lock().expect("lock").clone();
        if path != traces_path {
            return Err(format!("not the traces path {traces_path}"));
        }
        if request.method != "POST" {
            return Err("not a POST".into());
        }
        let media_type = request
            .header("content-type")
            .and_then(|v| v.split(';').next())
            .map(str::trim);
        if !media_type.is_some_and(|t| t.eq_ignore_ascii_case("application/x-protobuf")) {
            return Err(format!(
                "content-type {media_type:?}, not application/x-protobuf"
            ));
        }
        ExportTraceServiceRequest::decode(request.body.as_slice())
            .map_err(|e| format!("not an ExportTraceServiceRequest: {e}"))
    }
}

/// Fails the test, when the last handle goes, if anything was rejected.
#[derive(Debug)]
struct Guard {
    checks: Arc<Checks>,
    server: tokio::task::AbortHandle,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            return;
        }
        if let Ok(rejections) = self.checks.rejections.lock() {
            assert!(
                rejections.is_empty(),
                "OTLP receiver rejected: {rejections:#?}"
            );
        }
    }
}

/// A real OTLP/HTTP (protobuf) trace receiver on 127.0.0.1. It takes what a collector takes: a
/// `POST` to the traces path ([`DEFAULT_TRACES_PATH`] unless
/// [`OtlpReceiver::serve_traces_at`] says otherwise), `content-type: application/x-protobuf`,
/// a body that decodes as an `ExportTraceServiceRequest` (uncompressed). Anything else is
/// answered 400 and recorded ([`OtlpReceiver::rejections`]); [`OtlpReceiver::spans`] and
/// dropping the last handle fail the test on a rejection (unless it is already panicking).
/// What it takes is recorded in [`OtlpReceiver::exports`] and answered as its [`OtlpMode`] says.
#[derive(Debug, Clone)]
pub struct OtlpReceiver {
    /// `http://127.0.0.1:<port>`: `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    /// Every export taken so far.
    pub exports: Arc<Mutex<Vec<OtlpExport>>>,
    checks: Arc<Checks>,
    _guard: Arc<Guard>,
}

impl OtlpReceiver {
    /// A receiver answering valid exports as `mode` says.
    pub async fn start(mode: OtlpMode) -> Self {
        let exports = Arc::new(Mutex::new(Vec::new()));
        let checks = Arc::new(Checks {
            traces_path: Mutex::new(DEFAULT_TRACES_PATH.into()),
            rejections: Mutex::new(Vec::new()),
        });
        let (seen, check) = (exports.clone(), checks.clone());
        let (address, server) = serve(move |request| {
            let rejected = match check.check(&request) {
                Ok(decoded) => {
                    seen.lock().expect("lock").push(OtlpExport {
                        path: request.path,
                        headers: request.headers,
                        request: decoded,
                    });
                    None
                }
                Err(why) => {
                    let what = format!("{} {}: {why}", request.method, request.path);
                    check.rejections.lock().expect("lock").push(what.clone());
                    Some(Response::new(400, what))
                }
            };
            async move {
                if rejected.is_some() {
                    return rejected;
                }
                match mode {
                    OtlpMode::Accept => Some(Response::export_accepted()),
                    OtlpMode::Fail => Some(Response::new(500, "collector unavailable")),
                    OtlpMode::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        None
                    }
                }
            }
        })
        .await;
        Self {
            endpoint: format!("http://{address}"),
            exports,
            checks: checks.clone(),
            _guard: Arc::new(Guard { checks, server }),
        }
    }

    /// Takes exports at `path` (`/custom/traces`, say) instead, as a collector configured so
    /// would; `/v1/traces` is then rejected like any other path.
    pub fn serve_traces_at(&self, path: &str) {
        *self.checks.traces_path.lock().expect("lock") = path.into();
    }

    /// The requests rejected so far, each with why.
    pub fn rejections(&self) -> Vec<String> {
        self.checks.rejections.lock().expect("lock").clone()
    }

    /// Every span received so far, with the resource attributes of its batch. Fails on a
    /// rejected request.
    pub fn spans(&self) -> Vec<ResourceSpan> {
        let rejections = self.rejections();
        assert!(
            rejections.is_empty(),
            "OTLP receiver rejected: {rejections:#?}"
        );
        let exports = self.exports.lock().expect("lock");
        exports
            .iter()
            .flat_map(|export| request_spans(&export.request))
            .collect()
    }
}

/// An OTLP span with the resource attributes of its batch.
pub type ResourceSpan = (Vec<(String, String)>, Span);

/// The spans of an OTLP export request, each with the resource attributes of its batch.
pub fn request_spans(request: &ExportTraceServiceRequest) -> Vec<ResourceSpan> {
    let mut spans = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource: Vec<(String, String)> = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .map(|kv| (kv.key.clone(), any_value_text(kv.value.as_ref())))
            .collect();
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                spans.push((resource.clone(), span.clone()));
            }
        }
    }
    spans
}

/// The distinct trace ids (hex) of the spans of an OTLP export request.
pub fn request_trace_ids(request: &ExportTraceServiceRequest) -> HashSet<String> {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| hex(&s.trace_id))
        .collect()
}

/// An OTLP attribute value as text (`"aws"`, `"true"`, `"256"`).
pub fn any_value_text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// The value of attribute `key` on an OTLP span, as text.
pub fn span_attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| any_value_text(kv.value.as_ref()))
}

/// The value of resource attribute `key`.
pub fn resource_attr<'a>(resource: &'a [(String, String)], key: &str) -> Option<&'a str> {
    resource
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
