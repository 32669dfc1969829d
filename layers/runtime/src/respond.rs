//! The innermost invocation-level service: from the invocation to the handler and back to the
//! Runtime API.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use lambda_runtime::{LambdaEvent, LambdaInvocation};
use pin_project_lite::pin_project;
use serde::Serialize;
use tower::Service;

use opentelemetry::trace::Status;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{
    api::{PostError, RuntimeApi, invocation_id},
    report::ErrorReport,
    shutdown::Stopping,
};
use crate::{
    BoxError,
    error::{ErrorKind, InvocationError, catch_panic},
};

type PostFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// A hook [`Respond`] runs just before it posts an invocation's answer, when the invocation's
/// extensions hold one: the layers' way to finish what must be out by the time the caller has the
/// answer. `TimingLayer` flushes the invocation's metrics, `LoggingLayer` logs its end line, and
/// `TraceLayer` writes the log lines it gathered, all of them in one `write`, before the response
/// is posted.
#[derive(Clone)]
pub struct BeforeAnswer(Arc<dyn Fn() + Send + Sync>);

impl BeforeAnswer {
    /// Runs `hook` before the answer is posted.
    pub fn new(hook: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Arc::new(hook))
    }

    /// Puts `hook` in `extensions`, to run before the hook already there, if any. Layers call it
    /// from the outside in, so an inner layer's hook runs first: what it logs is gathered by an
    /// outer layer's hook, which writes it.
    pub fn insert(extensions: &mut http::Extensions, hook: impl Fn() + Send + Sync + 'static) {
        let hook = match extensions.remove::<Self>() {
            Some(Self(then)) => Self::new(move || {
                hook();
                then();
            }),
            None => Self::new(hook),
        };
        extensions.insert(hook);
    }

    /// Runs the hook (and those it was inserted before): what a runtime does just before it posts
    /// the answer.
    pub fn run(&self) {
        (self.0)();
    }
}

impl fmt::Debug for BeforeAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("BeforeAnswer")
    }
}

/// Set once the invocation's answer starts going to the Runtime API: the runtime loop puts one in
/// the invocation's extensions, and an invocation cut off by the drain before its answer started
/// gets an `/error` from the loop instead (a second answer would be refused).
#[derive(Debug, Clone, Default)]
pub(crate) struct Answering(Arc<AtomicBool>);

impl Answering {
    pub(crate) fn started(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn start(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Turns a [`LambdaInvocation`] into a `LambdaEvent<Bytes>` for the handler-level service (the
/// body is decoded there, e.g. by `JsonEventLayer`), then posts its
/// response to `/invocation/{id}/response` or its error to `/invocation/{id}/error`.
///
/// The error report carries the `errorType` header, the X-Ray cause header and a body with the
/// stack trace (see [`report`](super::report)). It is not logged here: `ErrorMap` logged it
/// once already. A panic that reaches this service (no `ErrorMap` below) is caught, logged once
/// and reported like any other fault.
///
/// An answer the Runtime API does not accept (`400`, `403`, `413`, a connection error) is logged
/// here, once, with the request id, and marks the invocation's span as an error; the service
/// still completes with `Ok`, so that no outer layer logs it again, and the loop goes on. A `5xx`
/// also stops the runtime: no more `/next`, the other invocations in flight get their grace,
/// then `Runtime::run` returns the error (see `docs/runtime.md`). The service's only error is
/// the handler-level service's `poll_ready` error.
pub struct Respond<S> {
    inner: S,
    api: Arc<RuntimeApi>,
    stopping: Arc<Stopping>,
}

impl<S> Respond<S> {
    pub(crate) fn new(inner: S, api: Arc<RuntimeApi>, stopping: Arc<Stopping>) -> Self {
        Self {
            inner,
            api,
            stopping,
        }
    }

    /// The handler-level service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The handler-level service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the handler-level service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for Respond<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            api: self.api.clone(),
            stopping: self.stopping.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Respond<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Respond")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Where the answer to one invocation goes.
struct Reply {
    api: Arc<RuntimeApi>,
    stopping: Arc<Stopping>,
    request_id: String,
    invocation_id: Option<String>,
    answering: Option<Answering>,
    before: Option<BeforeAnswer>,
}

impl Reply {
    fn post<R: Serialize>(self, outcome: Result<R, InvocationError>) -> PostFuture {
        let Self {
            api,
            stopping,
            request_id,
            invocation_id,
            answering,
            before,
        } = self;
        if let Some(answering) = answering {
            answering.start();
        }
        if let Some(before) = before {
            before.run();
        }
        let body = match outcome {
            Ok(response) => serde_json::to_vec(&response).map_err(|err| {
                let error = InvocationError::new(
                    "SerializationError",
                    format!("the response could not be serialized: {err}"),
                    ErrorKind::Fault,
                );
                crate::error::record(&tracing::Span::current(), error)
            }),
            Err(error) => Err(error),
        };
        Box::pin(async move {
            let posted = match body {
                Ok(body) => {
                    api.respond(&request_id, invocation_id.as_deref(), body)
                        .await
                }
                Err(error) => {
                    let report = ErrorReport::invocation(&error);
                    api.report_error(&request_id, invocation_id.as_deref(), &report)
                        .await
                }
            };
            if let Err(err) = posted {
                not_posted(&err, &request_id, &stopping);
                tracing::Span::current()
                    .set_status(Status::error(format!("the answer was not posted: {err}")));
            }
            Ok(())
        })
    }
}

impl<S> Service<LambdaInvocation> for Respond<S>
where
    S: Service<LambdaEvent<Bytes>>,
    S::Response: Serialize,
    S::Error: Into<InvocationError>,
{
    type Response = ();
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(|err| {
            let error: InvocationError = err.into();
            BoxError::from(error)
        })
    }

    fn call(&mut self, req: LambdaInvocation) -> Self::Future {
        let LambdaInvocation {
            parts,
            body,
            context,
        } = req;
        let reply = Reply {
            api: self.api.clone(),
            stopping: self.stopping.clone(),
            request_id: context.request_id.clone(),
            invocation_id: invocation_id(&parts.headers),
            answering: parts.extensions.get::<Answering>().cloned(),
            before: parts.extensions.get::<BeforeAnswer>().cloned(),
        };
        let event = LambdaEvent::new(body, context);
        match catch_panic(|| self.inner.call(event)) {
            Ok(inner) => ResponseFuture::handler(inner, reply),
            Err(panic) => ResponseFuture::posting(reply.post::<()>(Err(uncaught(panic)))),
        }
    }
}

/// The one log line of an answer the Runtime API did not take, with the request id and the
/// status; a `5xx` stops the runtime.
pub(crate) fn not_posted(err: &PostError, request_id: &str, stopping: &Stopping) {
    let status = err.status().map(|s| s.as_u16());
    tracing::error!(
        request_id,
        status,
        "the answer to invocation {request_id} was not taken: {err}"
    );
    if err.is_fatal() {
        stopping.fatal(format!("invocation {request_id}: {err}"));
    }
}

/// A panic no layer below caught: logged here, once.
fn uncaught(panic: InvocationError) -> InvocationError {
    crate::error::record(&tracing::Span::current(), panic)
}

pin_project! {
    /// Response future of [`Respond`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProjection]
    enum State<F> {
        // The handler is running.
        Handler {
            #[pin]
            inner: F,
            reply: Option<Reply>,
        },
        // The answer is being posted.
        Posting { post: PostFuture },
    }
}

impl<F> ResponseFuture<F> {
    fn handler(inner: F, reply: Reply) -> Self {
        Self {
            state: State::Handler {
                inner,
                reply: Some(reply),
            },
        }
    }

    fn posting(post: PostFuture) -> Self {
        Self {
            state: State::Posting { post },
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<R, E>>,
    R: Serialize,
    E: Into<InvocationError>,
{
    type Output = Result<(), BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProjection::Handler { inner, reply } => {
                    let outcome = match catch_panic(|| inner.poll(cx)) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(outcome)) => outcome.map_err(Into::into),
                        Err(panic) => Err(uncaught(panic)),
                    };
                    let Some(reply) = reply.take() else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let post = reply.post(outcome);
                    state.set(State::Posting { post });
                }
                StateProjection::Posting { post } => {
                    return Poll::Ready(ready!(post.as_mut().poll(cx)));
                }
            }
        }
    }
}
