//! What the subscriber's two layers see, decided without per-layer filters.
//!
//! `tracing-subscriber`'s per-layer filters (`Layer::with_filter`) let each layer see its own
//! spans and events, but they cost on every callback: each `enter`, `exit`, `record` and `close`
//! of every span looks the span up in the registry once more per filtered layer to read which
//! layers it is enabled for, and every callsite keeps a per-thread filter state. A warm invocation
//! of the example enters and exits its spans a dozen times each; with the log layer and the
//! OpenTelemetry layer both filtered that was about 10k instructions per invocation (callgrind),
//! for choices that never need a per-span bookkeeping:
//!
//! * the log filter ([`EventFilter`]) decides for the whole subscriber: an event it disables is
//!   an event no layer wants (the OpenTelemetry layer takes no events), and the spans it must
//!   keep (`INFO` and above, which carry the invocation's context) are the ones OpenTelemetry
//!   takes;
//! * the OpenTelemetry layer ([`OtelSpans`]) filters nothing for the others: it passes on only
//!   the spans it takes, and no event.

use std::any::TypeId;

use tracing::{Dispatch, Event, Level, Metadata, Subscriber, span, subscriber::Interest};
use tracing_subscriber::{EnvFilter, Layer, filter::LevelFilter, layer::Context};

use crate::log_format::FLUSH_TARGET;

/// The log layer `L` behind the log filter, as the subscriber's global filter: events pass when
/// the `EnvFilter` enables them, spans at `INFO` and above always (a filter that disabled them,
/// `warn` or `hello_lambda=debug`, would strip the invocation's context from the lines it lets
/// through). Spans are still shown to the filter when its directives name spans
/// (`[invocation]=debug`), so span-scoped directives keep working.
pub(crate) struct EventFilter<L> {
    layer: L,
    filter: EnvFilter,
    /// Whether a directive names a span or a field (`[…]`): only then does the filter track
    /// spans, and only then are span callbacks shown to it.
    span_directives: bool,
}

impl<L> EventFilter<L> {
    /// `layer` behind `filter`, parsed from `directive`.
    pub(crate) fn new(layer: L, filter: EnvFilter, directive: &str) -> Self {
        Self {
            layer,
            filter,
            span_directives: directive.contains('['),
        }
    }

    /// Spans every line needs: enabled whatever the filter says.
    fn always(metadata: &Metadata<'_>) -> bool {
        metadata.is_span() && *metadata.level() <= Level::INFO
    }
}

impl<S, L> Layer<S> for EventFilter<L>
where
    S: Subscriber,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.layer.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.layer.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // Always registered with the filter, which records span-scoped directives here.
        let filtered = Layer::<S>::register_callsite(&self.filter, metadata);
        if Self::always(metadata) {
            Interest::always()
        } else {
            filtered
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        Self::always(metadata) || self.filter.enabled(metadata, ctx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // INFO spans must be created even when no event below WARN is wanted.
        self.filter
            .max_level_hint()
            .map(|hint| hint.max(LevelFilter::INFO))
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if self.span_directives {
            self.filter.on_new_span(attrs, id, ctx.clone());
        }
        self.layer.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if self.span_directives {
            self.filter.on_record(id, values, ctx.clone());
        }
        self.layer.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.layer.on_follows_from(id, follows, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.layer.on_event(event, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.span_directives {
            self.filter.on_enter(id, ctx.clone());
        }
        self.layer.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if self.span_directives {
            self.filter.on_exit(id, ctx.clone());
        }
        self.layer.on_exit(id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if self.span_directives {
            self.filter.on_close(id.clone(), ctx.clone());
        }
        self.layer.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, ctx: Context<'_, S>) {
        self.layer.on_id_change(old, new, ctx);
    }

    // SAFETY: returns a pointer to `self` for `Self`'s own type id, and otherwise what the
    // wrapped layer returns for the id asked, i.e. a pointer to a value of that type inside it:
    // the contract `Layer::downcast_raw` states (tracing-subscriber's `Filtered` does the same).
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else {
            // SAFETY: forwarded as is; see above.
            unsafe { self.layer.downcast_raw(id) }
        }
    }
}

/// The OpenTelemetry layer `L`, shown only the spans that become OpenTelemetry spans: `INFO` and
/// above, except the flush's ([`FLUSH_TARGET`]). No event reaches it (log lines carry `traceId`
/// and `spanId`; copying them into span events would double what each invocation sends), and it
/// disables nothing for the other layers.
///
/// The callbacks of a span it was not shown (enter, exit, record, close) still reach it: it looks
/// the span up, finds none of its data, and does nothing, which costs what the filter's own
/// look-up cost.
pub(crate) struct OtelSpans<L>(pub(crate) L);

impl<L> OtelSpans<L> {
    fn takes(metadata: &Metadata<'_>) -> bool {
        metadata.is_span() && *metadata.level() <= Level::INFO && metadata.target() != FLUSH_TARGET
    }
}

impl<S, L> Layer<S> for OtelSpans<L>
where
    S: Subscriber,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }

    fn enabled(&self, _: &Metadata<'_>, _: Context<'_, S>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if Self::takes(attrs.metadata()) {
            self.0.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(id, follows, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_exit(id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, ctx: Context<'_, S>) {
        self.0.on_id_change(old, new, ctx);
    }

    // SAFETY: as `EventFilter::downcast_raw`: `self` for `Self`'s type id, otherwise the wrapped
    // layer's answer (tracing-opentelemetry finds its `WithContext` through this).
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else {
            // SAFETY: forwarded as is; see above.
            unsafe { self.0.downcast_raw(id) }
        }
    }
}
