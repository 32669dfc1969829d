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
#[cfg(feature = "env-filter")]
use tracing_subscriber::EnvFilter;
use tracing_subscriber::{
    Layer,
    filter::{LevelFilter, Targets},
    layer::Context,
};

/// Which events are written, parsed from a directive (`RUST_LOG`'s syntax).
///
/// A level, or `target=level` pairs (`info,hello_lambda=debug`), is a [`Targets`]: a static
/// table, consulted once per call site (its answer is cached there). A directive that names a
/// span or a field (`warn,[invocation]=debug`) needs `EnvFilter`, which tracks every span to find
/// the ones it names, and whose field matching links `regex` (about 180 KB of code and 570
/// relocations that every cold start maps and applies, measured in `docs/cold-start-levers.md`):
/// it is built only with the cargo feature `env-filter`, and only for such a directive.
#[derive(Debug)]
pub(crate) enum LogFilter {
    /// Levels by target.
    Targets(Targets),
    /// Directives that name spans or fields.
    #[cfg(feature = "env-filter")]
    Spans(Box<EnvFilter>),
}

impl LogFilter {
    /// Parses `directive`; the error says why it cannot be used.
    pub(crate) fn parse(directive: &str) -> Result<Self, String> {
        if directive.contains('[') {
            #[cfg(feature = "env-filter")]
            return EnvFilter::try_new(directive)
                .map(|filter| Self::Spans(Box::new(filter)))
                .map_err(|err| err.to_string());
            #[cfg(not(feature = "env-filter"))]
            return Err(
                "a directive that names a span or a field (`[...]`) needs the cargo \
                        feature `env-filter`"
                    .to_owned(),
            );
        }
        // As EnvFilter does: empty directives (`info,`) are skipped.
        let directives: Vec<&str> = directive.split(',').filter(|d| !d.is_empty()).collect();
        directives
            .join(",")
            .parse::<Targets>()
            .map(Self::Targets)
            .map_err(|err| err.to_string())
    }

    fn register_callsite<S: Subscriber>(&self, metadata: &'static Metadata<'static>) -> Interest {
        match self {
            Self::Targets(targets) => Layer::<S>::register_callsite(targets, metadata),
            #[cfg(feature = "env-filter")]
            Self::Spans(filter) => Layer::<S>::register_callsite(filter, metadata),
        }
    }

    fn enabled<S: Subscriber>(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        match self {
            Self::Targets(targets) => Layer::<S>::enabled(targets, metadata, ctx),
            #[cfg(feature = "env-filter")]
            Self::Spans(filter) => filter.enabled(metadata, ctx),
        }
    }

    fn max_level_hint<S: Subscriber>(&self) -> Option<LevelFilter> {
        match self {
            Self::Targets(targets) => Layer::<S>::max_level_hint(targets),
            #[cfg(feature = "env-filter")]
            Self::Spans(filter) => Layer::<S>::max_level_hint(filter),
        }
    }

    /// The filter that tracks spans, if this one does.
    #[cfg(feature = "env-filter")]
    fn spans(&self) -> Option<&EnvFilter> {
        match self {
            Self::Spans(filter) => Some(filter),
            Self::Targets(_) => None,
        }
    }
}

/// The log layer `L` behind the log filter, as the subscriber's global filter: events pass when
/// the [`LogFilter`] enables them, spans at `INFO` and above always (a filter that disabled them,
/// `warn` or `hello_lambda=debug`, would strip the invocation's context from the lines it lets
/// through). Spans are still shown to the filter when its directives name spans
/// (`[invocation]=debug`), so span-scoped directives keep working.
pub(crate) struct EventFilter<L> {
    layer: L,
    filter: LogFilter,
}

impl<L> EventFilter<L> {
    /// `layer` behind `filter`.
    pub(crate) fn new(layer: L, filter: LogFilter) -> Self {
        Self { layer, filter }
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
        let filtered = self.filter.register_callsite::<S>(metadata);
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
            .max_level_hint::<S>()
            .map(|hint| hint.max(LevelFilter::INFO))
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        #[cfg(feature = "env-filter")]
        if let Some(filter) = self.filter.spans() {
            filter.on_new_span(attrs, id, ctx.clone());
        }
        self.layer.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        #[cfg(feature = "env-filter")]
        if let Some(filter) = self.filter.spans() {
            filter.on_record(id, values, ctx.clone());
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
        #[cfg(feature = "env-filter")]
        if let Some(filter) = self.filter.spans() {
            Layer::<S>::on_enter(filter, id, ctx.clone());
        }
        self.layer.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        #[cfg(feature = "env-filter")]
        if let Some(filter) = self.filter.spans() {
            Layer::<S>::on_exit(filter, id, ctx.clone());
        }
        self.layer.on_exit(id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        #[cfg(feature = "env-filter")]
        if let Some(filter) = self.filter.spans() {
            Layer::<S>::on_close(filter, id.clone(), ctx.clone());
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
/// above. No event reaches it (log lines carry `traceId` and `spanId`; copying them into span
/// events would double what each invocation sends), and it disables nothing for the other layers.
///
/// The callbacks of a span it was not shown (enter, exit, record, close) still reach it: it looks
/// the span up, finds none of its data, and does nothing, which costs what the filter's own
/// look-up cost.
pub(crate) struct OtelSpans<L>(pub(crate) L);

impl<L> OtelSpans<L> {
    fn takes(metadata: &Metadata<'_>) -> bool {
        metadata.is_span() && *metadata.level() <= Level::INFO
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// The events that reach it, as `target LEVEL`.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Seen {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let metadata = event.metadata();
            let line = format!("{} {}", metadata.target(), metadata.level());
            self.0.lock().expect("not poisoned").push(line);
        }
    }

    /// One event at each level from each of four targets (two of them nested in the others).
    fn log_everywhere() {
        macro_rules! at_every_level {
            ($target:literal) => {
                tracing::trace!(target: $target, "trace");
                tracing::debug!(target: $target, "debug");
                tracing::info!(target: $target, "info");
                tracing::warn!(target: $target, "warn");
                tracing::error!(target: $target, "error");
            };
        }
        at_every_level!("hello_lambda");
        at_every_level!("hello_lambda::worker");
        at_every_level!("hyper");
        at_every_level!("hyper_util::client");
    }

    fn seen(filter: LogFilter) -> Vec<String> {
        let seen = Seen::default();
        let subscriber =
            tracing_subscriber::registry().with(EventFilter::new(seen.clone(), filter));
        lambda_observability_test_support::keep_call_sites_undecided();
        tracing::subscriber::with_default(subscriber, log_everywhere);
        seen.0.lock().expect("not poisoned").clone()
    }

    fn parsed(directive: &str) -> LogFilter {
        LogFilter::parse(directive).unwrap_or_else(|err| panic!("{directive}: {err}"))
    }

    #[test]
    fn a_level_and_target_pairs_select_events_by_target_and_level() {
        assert_eq!(
            seen(parsed(
                "warn,hello_lambda=debug,hello_lambda::worker=error,"
            )),
            [
                "hello_lambda DEBUG",
                "hello_lambda INFO",
                "hello_lambda WARN",
                "hello_lambda ERROR",
                "hello_lambda::worker ERROR",
                "hyper WARN",
                "hyper ERROR",
                "hyper_util::client WARN",
                "hyper_util::client ERROR",
            ]
        );
        assert!(seen(parsed("off")).is_empty());
        assert_eq!(
            seen(parsed("hyper_util")).len(),
            5,
            "a bare target is every level"
        );
    }

    #[test]
    fn a_directive_that_does_not_parse_is_refused() {
        for directive in ["hello=loud", "a=b=c", "info,hyper=sometimes"] {
            assert!(LogFilter::parse(directive).is_err(), "{directive}");
        }
    }

    #[cfg(not(feature = "env-filter"))]
    #[test]
    fn without_env_filter_a_span_directive_is_refused_naming_the_feature() {
        let err = LogFilter::parse("warn,[invocation]=debug").expect_err("needs EnvFilter");
        assert!(err.contains("`env-filter`"), "{err}");
    }

    /// `Targets` stands in for `EnvFilter` wherever no directive names a span: the two must let
    /// the same events through.
    #[cfg(feature = "env-filter")]
    #[test]
    fn targets_select_what_env_filter_selects_for_the_same_directive() {
        for directive in [
            "info",
            "TRACE",
            "off",
            "warn,hello_lambda=debug",
            "hello_lambda=trace,hello_lambda::worker=off",
            "debug,hyper=warn,hyper_util::client=error",
            "hello_lambda",
            "info,",
            "error,hyper=info,hyper=debug",
        ] {
            let targets = parsed(directive);
            assert!(matches!(targets, LogFilter::Targets(_)), "{directive}");
            let env_filter = EnvFilter::try_new(directive).expect("parses");
            let env_filter = LogFilter::Spans(Box::new(env_filter));
            assert_eq!(seen(targets), seen(env_filter), "{directive}");
        }
        assert!(matches!(
            parsed("warn,[invocation]=debug"),
            LogFilter::Spans(_)
        ));
    }
}
