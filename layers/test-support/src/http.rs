//! HTTP/1.1 on 127.0.0.1, served by hyper: the [`Request`] a stand-in got, the [`Response`] it
//! gives, and [`serve_http`], which runs an answering function on every connection.

use std::{future::Future, net::SocketAddr};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::AbortHandle};

/// An HTTP/1.1 request as a stand-in received it, body read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target as sent: the path, and the query if there was one.
    pub path: String,
    /// The headers in the order they came, names lowercase (as hyper gives them), values as text.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Reads `request`'s head and whole body.
    async fn read(request: hyper::Request<Incoming>) -> Result<Self, hyper::Error> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await?.to_bytes().to_vec();
        Ok(Self {
            method: parts.method.as_str().to_owned(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        })
    }
}

/// A response, sent as one full body (a `content-length`, no chunks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers besides `content-length` (which hyper writes).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// `status` with `body` and no other header.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// This response with header `name: value` added.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// As the public-IP service answers: `status`, the address as text.
    pub fn public_ip(status: u16) -> Self {
        Self::new(status, "198.51.100.7\n")
    }

    /// As a collector that took an OTLP/HTTP export answers: 200, an empty
    /// `ExportTraceServiceResponse`.
    pub fn export_accepted() -> Self {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
        use prost::Message;
        Self::new(200, ExportTraceServiceResponse::default().encode_to_vec())
            .with_header("content-type", "application/x-protobuf")
    }

    fn into_hyper(self) -> hyper::Response<Full<Bytes>> {
        let mut response = hyper::Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() =
            http::StatusCode::from_u16(self.status).expect("a valid status code");
        for (name, value) in self.headers {
            response.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
                http::HeaderValue::from_str(&value).expect("a valid header value"),
            );
        }
        response
    }
}

/// Serves HTTP/1.1 with keep-alive on 127.0.0.1 (an ephemeral port), and returns the bound
/// address. `answer` gets each request; the [`Response`] it gives is sent, and `None` closes the
/// connection without an answer (an answer that never comes is a future that never ends).
///
/// Accepted streams have `TCP_NODELAY`, and a response goes out in one write: a head and a body
/// in two small segments would wait out the peer's delayed ACK (Nagle), 40 ms per answer on
/// loopback.
pub async fn serve_http<F, Fut>(answer: F) -> SocketAddr
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<Response>> + Send + 'static,
{
    serve(answer).await.0
}

/// [`serve_http`], with a handle that stops accepting connections (the connections open go on).
pub(crate) async fn serve<F, Fut>(answer: F) -> (SocketAddr, AbortHandle)
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<Response>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let answer = answer.clone();
                    async move {
                        let request = Request::read(request)
                            .await
                            .map_err(std::io::Error::other)?;
                        answer(request)
                            .await
                            .map(Response::into_hyper)
                            .ok_or_else(|| std::io::Error::other("closed unanswered"))
                    }
                });
                // No header read timeout: a runtime's keep-alive connection idles between
                // invocations for as long as a test likes. `writev(false)` flattens head and
                // body into one buffer, one write.
                let _ = http1::Builder::new()
                    .header_read_timeout(None)
                    .writev(false)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, server.abort_handle())
}
