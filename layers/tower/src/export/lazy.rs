//! A destination whose exporter is built at its first delivery, not at init.
//!
//! Building an exporter can cost more than the function's whole init: the X-Ray exporter builds
//! its segment translator's dispatch table twice (`XrayExporter::new` makes a default one that
//! `with_translator` replaces), and the OTLP/HTTP exporter's builder reads its variables again and
//! builds its client configuration. The first delivery runs after the invocation's response has been
//! sent, so building there takes the cost off both the cold start's init and its first response.
//! Only settings that cannot fail at run time are checked at init (the daemon address is parsed by
//! the configuration); a build that fails (a socket that cannot be bound) fails that delivery,
//! is counted and logged like any failed export, and is retried at the next one.

use std::sync::OnceLock;

use opentelemetry_sdk::{Resource, error::OTelSdkError, trace::SpanData};

use super::pipeline::{Deliver, Delivery, DeliveryFuture, ResourceSource};
use crate::BoxError;

type Build<D> = Box<dyn Fn() -> Result<D, BoxError> + Send + Sync>;

/// A [`Deliver`] built by `build` at the first delivery.
pub(super) struct Lazy<D> {
    build: Build<D>,
    /// Handed to the exporter once built (the pipeline sets it before any delivery); the resource
    /// itself is built then too.
    resource: Option<ResourceSource>,
    built: OnceLock<D>,
}

impl<D: Deliver> Lazy<D> {
    pub(super) fn new(build: impl Fn() -> Result<D, BoxError> + Send + Sync + 'static) -> Self {
        Self {
            build: Box::new(build),
            resource: None,
            built: OnceLock::new(),
        }
    }

    fn get(&self) -> Result<&D, BoxError> {
        if let Some(built) = self.built.get() {
            return Ok(built);
        }
        let mut exporter = (self.build)()?;
        if let Some(resource) = &self.resource {
            exporter.set_resource(resource.get());
        }
        // Invocations running at once may both build; one is kept, the other dropped.
        Ok(self.built.get_or_init(|| exporter))
    }
}

impl<D: Deliver> Deliver for Lazy<D> {
    fn deliver(&self, batch: Vec<SpanData>) -> DeliveryFuture<'_> {
        match self.get() {
            Ok(exporter) => exporter.deliver(batch),
            Err(err) => Box::pin(std::future::ready(Delivery {
                error: Some(OTelSdkError::InternalFailure(format!(
                    "the exporter could not be built: {err}"
                ))),
                ..Delivery::default()
            })),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.set_resource_source(&ResourceSource::ready(resource.clone()));
    }

    /// The built exporter's answer; before it is built, `true` (a failed build trips no breaker).
    fn may_stall(&self) -> bool {
        self.built.get().is_none_or(Deliver::may_stall)
    }

    fn set_resource_source(&mut self, source: &ResourceSource) {
        match self.built.get_mut() {
            Some(exporter) => exporter.set_resource(source.get()),
            None => self.resource = Some(source.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;
    use crate::export::console::tests::span_in;

    /// Counts what it was given; `resource` remembers the resource it was handed.
    struct Counting {
        delivered: Arc<AtomicUsize>,
        resource: Option<Resource>,
    }

    impl Deliver for Counting {
        fn deliver(&self, batch: Vec<SpanData>) -> DeliveryFuture<'_> {
            self.delivered.fetch_add(batch.len(), Ordering::Relaxed);
            assert!(self.resource.is_some(), "the resource was handed on");
            let sent = batch.len() as u64;
            Box::pin(std::future::ready(Delivery {
                sent,
                ..Delivery::default()
            }))
        }

        fn set_resource(&mut self, resource: &Resource) {
            self.resource = Some(resource.clone());
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        futures_executor::block_on(future)
    }

    #[test]
    fn builds_once_at_the_first_delivery_with_the_resource_built_then() {
        let builds = Arc::new(AtomicUsize::new(0));
        let delivered = Arc::new(AtomicUsize::new(0));
        let mut lazy = {
            let (builds, delivered) = (builds.clone(), delivered.clone());
            Lazy::new(move || {
                builds.fetch_add(1, Ordering::Relaxed);
                Ok(Counting {
                    delivered: delivered.clone(),
                    resource: None,
                })
            })
        };
        let resource_builds = Arc::new(AtomicUsize::new(0));
        lazy.set_resource_source(&ResourceSource::new({
            let resource_builds = resource_builds.clone();
            move || {
                resource_builds.fetch_add(1, Ordering::Relaxed);
                Resource::builder_empty().build()
            }
        }));
        assert_eq!(builds.load(Ordering::Relaxed), 0, "nothing built before");
        assert_eq!(
            resource_builds.load(Ordering::Relaxed),
            0,
            "nor the resource"
        );
        for _ in 0..2 {
            let delivery = block_on(lazy.deliver(vec![span_in(1, 1)]));
            assert_eq!(delivery.sent, 1);
        }
        assert_eq!(builds.load(Ordering::Relaxed), 1);
        assert_eq!(resource_builds.load(Ordering::Relaxed), 1);
        assert_eq!(delivered.load(Ordering::Relaxed), 2);
    }

    /// A built exporter that never waits (UDP) says so.
    struct Datagrams;

    impl Deliver for Datagrams {
        fn deliver(&self, _batch: Vec<SpanData>) -> DeliveryFuture<'_> {
            Box::pin(std::future::ready(Delivery::default()))
        }

        fn set_resource(&mut self, _resource: &Resource) {}

        fn may_stall(&self) -> bool {
            false
        }
    }

    /// Before the build the breaker is not consulted on a failed build (`true`, harmless: a
    /// build error trips no breaker); once built, the exporter's own answer counts.
    #[test]
    fn may_stall_is_the_built_exporters_answer() {
        let datagrams = Lazy::new(|| Ok(Datagrams));
        assert!(datagrams.may_stall(), "not built yet");
        block_on(datagrams.deliver(vec![span_in(1, 1)]));
        assert!(!datagrams.may_stall(), "a UDP exporter never waits");

        let delivered = Arc::new(AtomicUsize::new(0));
        let mut counting = Lazy::new(move || {
            Ok(Counting {
                delivered: delivered.clone(),
                resource: None,
            })
        });
        counting.set_resource(&Resource::builder_empty().build());
        block_on(counting.deliver(vec![span_in(1, 1)]));
        assert!(counting.may_stall());
    }

    /// A resource handed over as a plain `Resource` (not a lazy source) reaches the exporter
    /// too, whether it is set before or after the build.
    #[test]
    fn a_plain_resource_reaches_the_exporter_before_or_after_the_build() {
        let resource = Resource::builder_empty()
            .with_attribute(opentelemetry::KeyValue::new("service.name", "hello"))
            .build();
        let delivered = Arc::new(AtomicUsize::new(0));
        let mut lazy = {
            let delivered = delivered.clone();
            Lazy::new(move || {
                Ok(Counting {
                    delivered: delivered.clone(),
                    resource: None,
                })
            })
        };
        // `Counting` asserts that it has a resource when it delivers.
        lazy.set_resource(&resource);
        block_on(lazy.deliver(vec![span_in(1, 1)]));
        lazy.set_resource(&resource);
        let built = lazy.built.get().expect("built");
        assert_eq!(built.resource.as_ref(), Some(&resource));
        assert_eq!(delivered.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_failed_build_fails_the_delivery_and_is_retried() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let lazy = {
            let attempts = attempts.clone();
            Lazy::<Counting>::new(move || {
                attempts.fetch_add(1, Ordering::Relaxed);
                Err("no socket".into())
            })
        };
        for _ in 0..2 {
            let delivery = block_on(lazy.deliver(vec![span_in(1, 1)]));
            assert_eq!(delivery.sent, 0);
            let error = delivery.error.expect("an error").to_string();
            assert!(error.contains("no socket"), "{error}");
        }
        assert_eq!(attempts.load(Ordering::Relaxed), 2);
    }
}
