//! OTLP protobuf written straight from [`SpanData`], byte for byte what `opentelemetry-proto`'s
//! conversion followed by `prost` writes, without building the message tree first: no copy of
//! each attribute's key and value, no tree to free afterwards. Each message is measured, then
//! written, as `prost` does. The resource and scope, the same for every span, are encoded once
//! by `prost` itself ([`Fixed`]).
//!
//! The tests hold the two paths to the same bytes for arbitrary spans.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::{
    Array, InstrumentationScope, KeyValue, Value,
    trace::{SpanId, SpanKind, Status},
};
use opentelemetry_proto::tonic::{
    common::v1::InstrumentationScope as ProtoScope, resource::v1::Resource as ProtoResource,
};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_sdk::trace::SpanData;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

/// The fields of a message that are the same for every span under it, encoded once: those
/// before its repeated field (`head`) and after it (`tail`), so that the message is written in
/// field order, as `prost` writes it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Fixed {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Fixed {
    /// `ResourceSpans`' resource (field 1) and schema URL (field 3).
    pub(crate) fn resource(resource: &ResourceAttributesWithSchema) -> Self {
        let mut head = Vec::new();
        prost::encoding::message::encode(
            1,
            &ProtoResource {
                attributes: resource.attributes.0.clone(),
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            },
            &mut head,
        );
        Self {
            head,
            tail: schema_url(resource.schema_url.as_deref()),
        }
    }

    /// `ScopeSpans`' scope (field 1) and schema URL (field 3).
    pub(crate) fn scope(scope: &InstrumentationScope) -> Self {
        let mut head = Vec::new();
        prost::encoding::message::encode(1, &ProtoScope::from((scope, None)), &mut head);
        Self {
            head,
            tail: schema_url(scope.schema_url()),
        }
    }

    /// Its encoded length.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Writes the message whose repeated field `tag` holds `items` (each written by `write`):
    /// its key and length (`len`, the whole message's), the fixed fields around the items.
    pub(crate) fn write_message<T>(
        &self,
        tag: u32,
        len: usize,
        items: impl IntoIterator<Item = T>,
        buf: &mut Vec<u8>,
        mut write: impl FnMut(T, &mut Vec<u8>),
    ) {
        length_delimited(tag, len, buf);
        buf.extend_from_slice(&self.head);
        for item in items {
            write(item, buf);
        }
        buf.extend_from_slice(&self.tail);
    }
}

fn schema_url(url: Option<&str>) -> Vec<u8> {
    let mut tail = Vec::new();
    if let Some(url) = url.filter(|url| !url.is_empty()) {
        prost::encoding::string::encode(3, &url.to_owned(), &mut tail);
    }
    tail
}

/// The key and length of a length-delimited field.
pub(crate) fn length_delimited(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// The encoded length of a length-delimited field of `len` bytes.
pub(crate) fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn bytes_field(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    length_delimited(tag, bytes.len(), buf);
    buf.extend_from_slice(bytes);
}

/// A proto3 string or bytes field: left out when empty.
fn opt_bytes_len(tag: u32, bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        0
    } else {
        field_len(tag, bytes.len())
    }
}

fn opt_bytes(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    if !bytes.is_empty() {
        bytes_field(tag, bytes, buf);
    }
}

/// A proto3 varint field: left out when zero.
fn opt_varint_len(tag: u32, value: u64) -> usize {
    if value == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(value)
    }
}

fn opt_varint(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

/// A proto3 fixed64 field: left out when zero.
fn opt_fixed64_len(tag: u32, value: u64) -> usize {
    if value == 0 { 0 } else { key_len(tag) + 8 }
}

fn opt_fixed64(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn opt_fixed32_len(tag: u32, value: u32) -> usize {
    if value == 0 { 0 } else { key_len(tag) + 4 }
}

fn opt_fixed32(tag: u32, value: u32, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// One element of an `AnyValue` (a scalar, or an array's element).
#[derive(Clone, Copy)]
enum Scalar<'a> {
    Bool(bool),
    I64(i64),
    F64(f64),
    Str(&'a str),
}

impl Scalar<'_> {
    /// The `AnyValue` body: a `oneof` field is written even when it holds its type's default.
    fn len(self) -> usize {
        match self {
            Scalar::Str(s) => field_len(1, s.len()),
            Scalar::Bool(_) => key_len(2) + 1,
            Scalar::I64(i) => key_len(3) + encoded_len_varint(i as u64),
            Scalar::F64(_) => key_len(4) + 8,
        }
    }

    fn write(self, buf: &mut Vec<u8>) {
        match self {
            Scalar::Str(s) => bytes_field(1, s.as_bytes(), buf),
            Scalar::Bool(b) => {
                encode_key(2, WireType::Varint, buf);
                encode_varint(u64::from(b), buf);
            }
            Scalar::I64(i) => {
                encode_key(3, WireType::Varint, buf);
                encode_varint(i as u64, buf);
            }
            Scalar::F64(f) => {
                encode_key(4, WireType::SixtyFourBit, buf);
                buf.extend_from_slice(&f.to_le_bytes());
            }
        }
    }
}

/// An array's elements as scalars (`Array` is non-exhaustive: an unknown kind has none).
fn elements(array: &Array) -> Box<dyn Iterator<Item = Scalar<'_>> + '_> {
    match array {
        Array::Bool(v) => Box::new(v.iter().map(|b| Scalar::Bool(*b))),
        Array::I64(v) => Box::new(v.iter().map(|i| Scalar::I64(*i))),
        Array::F64(v) => Box::new(v.iter().map(|f| Scalar::F64(*f))),
        Array::String(v) => Box::new(v.iter().map(|s| Scalar::Str(s.as_str()))),
        _ => Box::new(std::iter::empty()),
    }
}

/// The `ArrayValue` body: each element an `AnyValue` (field 1).
fn array_len(array: &Array) -> usize {
    elements(array).map(|e| field_len(1, e.len())).sum()
}

/// The `AnyValue` body of `value` (`Value` is non-exhaustive: an unknown kind is an empty one).
fn any_len(value: &Value) -> usize {
    match value {
        Value::Bool(b) => Scalar::Bool(*b).len(),
        Value::I64(i) => Scalar::I64(*i).len(),
        Value::F64(f) => Scalar::F64(*f).len(),
        Value::String(s) => Scalar::Str(s.as_str()).len(),
        Value::Array(array) => field_len(5, array_len(array)),
        _ => 0,
    }
}

fn write_any(value: &Value, buf: &mut Vec<u8>) {
    match value {
        Value::Bool(b) => Scalar::Bool(*b).write(buf),
        Value::I64(i) => Scalar::I64(*i).write(buf),
        Value::F64(f) => Scalar::F64(*f).write(buf),
        Value::String(s) => Scalar::Str(s.as_str()).write(buf),
        Value::Array(array) => {
            length_delimited(5, array_len(array), buf);
            for element in elements(array) {
                length_delimited(1, element.len(), buf);
                element.write(buf);
            }
        }
        _ => {}
    }
}

/// The `KeyValue` body: the key (left out when empty) and the value (always present).
fn key_value_len(kv: &KeyValue) -> usize {
    opt_bytes_len(1, kv.key.as_str().as_bytes()) + field_len(2, any_len(&kv.value))
}

/// Repeated `KeyValue` field `tag`.
fn attributes_len(tag: u32, attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| field_len(tag, key_value_len(kv)))
        .sum()
}

fn attributes(tag: u32, attributes: &[KeyValue], buf: &mut Vec<u8>) {
    for kv in attributes {
        // The value's length once, for both length prefixes.
        let key = kv.key.as_str().as_bytes();
        let value_len = any_len(&kv.value);
        length_delimited(tag, opt_bytes_len(1, key) + field_len(2, value_len), buf);
        opt_bytes(1, key, buf);
        length_delimited(2, value_len, buf);
        write_any(&kv.value, buf);
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// OTLP's span flags: the W3C trace flags, and whether the parent was remote (and that this is
/// known).
fn flags(remote: bool, trace_flags: u8) -> u32 {
    const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
    const CONTEXT_IS_REMOTE: u32 = 0x200;
    u32::from(trace_flags) | CONTEXT_HAS_IS_REMOTE | if remote { CONTEXT_IS_REMOTE } else { 0 }
}

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// The `Status` body: its message (an error's description) and code.
fn status_parts(status: &Status) -> (&str, u64) {
    match status {
        Status::Unset => ("", 0),
        Status::Ok => ("", 1),
        Status::Error { description } => (description, 2),
    }
}

fn status_len(status: &Status) -> usize {
    let (message, code) = status_parts(status);
    opt_bytes_len(2, message.as_bytes()) + opt_varint_len(3, code)
}

fn event_len(event: &opentelemetry::trace::Event) -> usize {
    opt_fixed64_len(1, nanos(event.timestamp))
        + opt_bytes_len(2, event.name.as_bytes())
        + attributes_len(3, &event.attributes)
        + opt_varint_len(4, u64::from(event.dropped_attributes_count))
}

fn link_len(link: &opentelemetry::trace::Link, trace_state: &str) -> usize {
    field_len(1, 16)
        + field_len(2, 8)
        + opt_bytes_len(3, trace_state.as_bytes())
        + attributes_len(4, &link.attributes)
        + opt_varint_len(5, u64::from(link.dropped_attributes_count))
        + opt_fixed32_len(
            6,
            flags(
                link.span_context.is_remote(),
                link.span_context.trace_flags().to_u8(),
            ),
        )
}

/// The encoded length of `span`'s `Span` message body.
pub(crate) fn span_len(span: &SpanData) -> usize {
    let trace_state = span.span_context.trace_state().header();
    let parent = parent_span_id(span);
    opt_bytes_len(1, &span.span_context.trace_id().to_bytes())
        + opt_bytes_len(2, &span.span_context.span_id().to_bytes())
        + opt_bytes_len(3, trace_state.as_bytes())
        + opt_bytes_len(4, parent.as_ref().map_or(&[][..], |id| &id[..]))
        + opt_fixed32_len(16, span_flags(span))
        + opt_bytes_len(5, span.name.as_bytes())
        + opt_varint_len(6, kind(&span.span_kind))
        + opt_fixed64_len(7, nanos(span.start_time))
        + opt_fixed64_len(8, nanos(span.end_time))
        + attributes_len(9, &span.attributes)
        + opt_varint_len(10, u64::from(span.dropped_attributes_count))
        + span
            .events
            .events
            .iter()
            .map(|event| field_len(11, event_len(event)))
            .sum::<usize>()
        + opt_varint_len(12, u64::from(span.events.dropped_count))
        + span
            .links
            .links
            .iter()
            .map(|link| {
                field_len(
                    13,
                    link_len(link, &link.span_context.trace_state().header()),
                )
            })
            .sum::<usize>()
        + opt_varint_len(14, u64::from(span.links.dropped_count))
        + field_len(15, status_len(&span.status))
}

fn parent_span_id(span: &SpanData) -> Option<[u8; 8]> {
    (span.parent_span_id != SpanId::INVALID).then(|| span.parent_span_id.to_bytes())
}

fn span_flags(span: &SpanData) -> u32 {
    flags(
        span.parent_span_is_remote,
        span.span_context.trace_flags().to_u8(),
    )
}

/// Writes `span`'s `Span` message body (`span_len` bytes), fields in tag order as `prost` writes
/// them (`flags`, field 16, last, although the schema declares it after `parent_span_id`).
pub(crate) fn span(span: &SpanData, buf: &mut Vec<u8>) {
    let trace_state = span.span_context.trace_state().header();
    opt_bytes(1, &span.span_context.trace_id().to_bytes(), buf);
    opt_bytes(2, &span.span_context.span_id().to_bytes(), buf);
    opt_bytes(3, trace_state.as_bytes(), buf);
    let parent = parent_span_id(span);
    opt_bytes(4, parent.as_ref().map_or(&[][..], |id| &id[..]), buf);
    opt_bytes(5, span.name.as_bytes(), buf);
    opt_varint(6, kind(&span.span_kind), buf);
    opt_fixed64(7, nanos(span.start_time), buf);
    opt_fixed64(8, nanos(span.end_time), buf);
    attributes(9, &span.attributes, buf);
    opt_varint(10, u64::from(span.dropped_attributes_count), buf);
    for event in &span.events.events {
        length_delimited(11, event_len(event), buf);
        opt_fixed64(1, nanos(event.timestamp), buf);
        opt_bytes(2, event.name.as_bytes(), buf);
        attributes(3, &event.attributes, buf);
        opt_varint(4, u64::from(event.dropped_attributes_count), buf);
    }
    opt_varint(12, u64::from(span.events.dropped_count), buf);
    for link in &span.links.links {
        let trace_state = link.span_context.trace_state().header();
        length_delimited(13, link_len(link, &trace_state), buf);
        opt_bytes(1, &link.span_context.trace_id().to_bytes(), buf);
        opt_bytes(2, &link.span_context.span_id().to_bytes(), buf);
        opt_bytes(3, trace_state.as_bytes(), buf);
        attributes(4, &link.attributes, buf);
        opt_varint(5, u64::from(link.dropped_attributes_count), buf);
        opt_fixed32(
            6,
            flags(
                link.span_context.is_remote(),
                link.span_context.trace_flags().to_u8(),
            ),
            buf,
        );
    }
    opt_varint(14, u64::from(span.links.dropped_count), buf);
    let (message, code) = status_parts(&span.status);
    length_delimited(15, status_len(&span.status), buf);
    opt_bytes(2, message.as_bytes(), buf);
    opt_varint(3, code, buf);
    opt_fixed32(16, span_flags(span), buf);
}

#[cfg(test)]
mod tests {
    use std::{borrow::Cow, time::Duration};

    use opentelemetry::{
        StringValue,
        trace::{Event, Link, SpanContext, TraceFlags, TraceId, TraceState},
    };
    use opentelemetry_proto::{
        tonic::collector::trace::v1::ExportTraceServiceRequest,
        transform::trace::tonic::group_spans_by_resource_and_scope,
    };
    use opentelemetry_sdk::{
        Resource,
        trace::{SpanEvents, SpanLinks},
    };
    use proptest::{collection::vec, option, prelude::*};
    use prost::Message as _;

    use super::*;
    use crate::otlp_udp::encode;

    /// What `opentelemetry-proto`'s conversion and `prost` write for `batch`.
    fn reference(batch: Vec<SpanData>, resource: &ResourceAttributesWithSchema) -> Vec<u8> {
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, resource),
        }
        .encode_to_vec()
    }

    /// What the exporter sends for `batch`, all of it sampled, in one datagram, decoded from its
    /// base64.
    fn direct(batch: Vec<SpanData>, resource: &ResourceAttributesWithSchema) -> Vec<u8> {
        let encoded = encode(batch, &Fixed::resource(resource), usize::MAX);
        assert_eq!(encoded.datagrams.len(), 1);
        let datagram = &encoded.datagrams[0].bytes;
        let payload = &datagram[datagram.iter().position(|&b| b == b'\n').expect("header") + 4..];
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, payload).expect("base64")
    }

    fn string() -> impl Strategy<Value = String> {
        prop_oneof![Just(String::new()), "[a-z.]{1,12}", "\\PC{0,20}"]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::I64),
            prop_oneof![Just(0.0), Just(-0.0), any::<f64>()].prop_map(Value::F64),
            string().prop_map(|s| Value::String(s.into())),
            vec(any::<bool>(), 0..3).prop_map(|v| Value::Array(Array::Bool(v))),
            vec(any::<i64>(), 0..3).prop_map(|v| Value::Array(Array::I64(v))),
            vec(any::<f64>(), 0..3).prop_map(|v| Value::Array(Array::F64(v))),
            vec(string(), 0..3).prop_map(|v| Value::Array(Array::String(
                v.into_iter().map(StringValue::from).collect()
            ))),
        ]
    }

    fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
        vec(
            (string(), value()).prop_map(|(k, v)| KeyValue::new(k, v)),
            0..4,
        )
    }

    fn time() -> impl Strategy<Value = SystemTime> {
        prop_oneof![
            Just(UNIX_EPOCH),
            Just(UNIX_EPOCH - Duration::from_secs(1)),
            (0u64..=u64::MAX / 2).prop_map(|ns| UNIX_EPOCH + Duration::from_nanos(ns)),
        ]
    }

    fn trace_state() -> impl Strategy<Value = TraceState> {
        prop_oneof![
            Just(TraceState::default()),
            Just(TraceState::from_key_value([("vendor", "value"), ("other", "x")]).expect("valid")),
        ]
    }

    fn context() -> impl Strategy<Value = SpanContext> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 8]>(),
            any::<u8>(),
            any::<bool>(),
            trace_state(),
        )
            .prop_map(|(trace, span, flags, remote, state)| {
                SpanContext::new(
                    TraceId::from_bytes(trace),
                    SpanId::from_bytes(span),
                    TraceFlags::new(flags | 1),
                    remote,
                    state,
                )
            })
    }

    fn status() -> impl Strategy<Value = Status> {
        prop_oneof![
            Just(Status::Unset),
            Just(Status::Ok),
            string().prop_map(|d| Status::Error {
                description: Cow::Owned(d)
            }),
        ]
    }

    fn scope() -> impl Strategy<Value = InstrumentationScope> {
        prop_oneof![
            Just(InstrumentationScope::default()),
            Just(
                InstrumentationScope::builder("hello")
                    .with_version("1.2.3")
                    .with_schema_url("https://opentelemetry.io/schemas/1.26.0")
                    .with_attributes([KeyValue::new("scope.attribute", 7)])
                    .build()
            ),
        ]
    }

    prop_compose! {
        fn event()(name in string(), time in time(), attributes in attributes(), dropped in 0u32..3) -> Event {
            Event::new(name, time, attributes, dropped)
        }
    }

    prop_compose! {
        fn link()(context in context(), attributes in attributes(), dropped in 0u32..3) -> Link {
            Link::new(context, attributes, dropped)
        }
    }

    prop_compose! {
        fn span_data()(
            context in context(),
            parent in option::of(any::<[u8; 8]>()),
            parent_is_remote in any::<bool>(),
            kind in prop_oneof![
                Just(SpanKind::Internal), Just(SpanKind::Server), Just(SpanKind::Client),
                Just(SpanKind::Producer), Just(SpanKind::Consumer)
            ],
            name in string(),
            (start, end) in (time(), time()),
            attributes in attributes(),
            dropped in (0u32..3, 0u32..3, 0u32..3),
            events in vec(event(), 0..3),
            links in vec(link(), 0..3),
            status in status(),
            scope in scope(),
        ) -> SpanData {
            let mut span_events = SpanEvents::default();
            span_events.events = events;
            span_events.dropped_count = dropped.1;
            let mut span_links = SpanLinks::default();
            span_links.links = links;
            span_links.dropped_count = dropped.2;
            SpanData {
                span_context: context,
                parent_span_id: parent.map_or(SpanId::INVALID, SpanId::from_bytes),
                parent_span_is_remote: parent_is_remote,
                span_kind: kind,
                name: name.into(),
                start_time: start,
                end_time: end,
                attributes,
                dropped_attributes_count: dropped.0,
                events: span_events,
                links: span_links,
                status,
                instrumentation_scope: scope,
            }
        }
    }

    fn resource() -> impl Strategy<Value = ResourceAttributesWithSchema> {
        (attributes(), any::<bool>()).prop_map(|(attributes, with_schema)| {
            let builder = Resource::builder_empty().with_attributes(attributes);
            let builder = if with_schema {
                builder.with_schema_url([], "https://opentelemetry.io/schemas/1.26.0")
            } else {
                builder
            };
            (&builder.build()).into()
        })
    }

    proptest! {
        #[test]
        fn any_batch_is_encoded_byte_for_byte_as_the_sdk_conversion_and_prost_encode_it(
            batch in vec(span_data(), 1..5),
            resource in resource(),
        ) {
            prop_assert_eq!(direct(batch.clone(), &resource), reference(batch, &resource));
        }

        #[test]
        fn span_len_is_the_length_of_what_span_writes(span in span_data()) {
            let mut buf = Vec::new();
            super::span(&span, &mut buf);
            prop_assert_eq!(buf.len(), span_len(&span));
        }
    }
}
