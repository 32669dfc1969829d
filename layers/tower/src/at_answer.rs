//! A layer's last work for an invocation, done once: in the
//! [`BeforeAnswer`] hook our runtime runs just before it posts the answer
//! (so that what it writes joins the invocation's lines, written then), or, under a runtime that
//! runs no hook (`lambda_runtime::Runtime`), when the invocation completes. `TimingLayer` (the
//! durations and metrics) and `LoggingLayer` (the end line) finish this way.

use std::sync::{Arc, Mutex, PoisonError};

use lambda_observability_runtime::BeforeAnswer;

/// `finish(value)`, pending until the hook or the layer's future runs it, whichever comes first.
#[derive(Debug)]
pub(crate) struct AtAnswer<T> {
    pending: Arc<Mutex<Option<T>>>,
    finish: fn(T),
}

impl<T> Clone for AtAnswer<T> {
    fn clone(&self) -> Self {
        Self {
            pending: self.pending.clone(),
            finish: self.finish,
        }
    }
}

impl<T: Send + 'static> AtAnswer<T> {
    /// Holds `value` for `finish`, and adds the hook that runs it to `extensions` (before the
    /// hooks of the layers outside, which write what it logs).
    pub(crate) fn insert(extensions: &mut http::Extensions, value: T, finish: fn(T)) -> Self {
        let at_answer = Self {
            pending: Arc::new(Mutex::new(Some(value))),
            finish,
        };
        let hook = at_answer.clone();
        BeforeAnswer::insert(extensions, move || hook.finish());
        at_answer
    }

    /// Runs `finish`, unless it ran already.
    pub(crate) fn finish(&self) {
        if let Some(value) = self.take() {
            (self.finish)(value);
        }
    }

    /// The value, if `finish` has not run: it will not run any more.
    pub(crate) fn take(&self) -> Option<T> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}
