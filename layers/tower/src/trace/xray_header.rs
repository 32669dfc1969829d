//! The invocation's parent from Lambda's `Lambda-Runtime-Trace-Id` header.
//!
//! Lambda writes `Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1|?>`, often followed by
//! `;Lineage=<value>`. Those two shapes are read here in one pass; anything else goes to
//! `opentelemetry-aws`'s parser, whose answer this one gives for every header (the proptest
//! below). Its parser splits the header into vectors, formats the trace id into a new string and
//! builds a trace state from the other entries: about 3k instructions per invocation.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry_aws::trace::xray_propagator::span_context_from_str;

/// X-Ray's `Sampled=?`: the decision is left to the receiver (`opentelemetry-aws`'s flag for it).
const DEFERRED: TraceFlags = TraceFlags::new(0x02);

/// The span context the header names, as `opentelemetry_aws`'s `span_context_from_str` reads
/// it: `None` when that gives none (no usable `Root`, or an entry the trace state refuses).
pub(super) fn parent_from_header(header: &str) -> Option<SpanContext> {
    match canonical(header.as_bytes()) {
        Some(context) => Some(context),
        None => span_context_from_str(header),
    }
}

/// `Root=1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx;Parent=xxxxxxxxxxxxxxxx;Sampled=d`, then nothing
/// or `;Lineage=<value>` (the trace state's one entry, as the full parser makes it).
fn canonical(header: &[u8]) -> Option<SpanContext> {
    const ROOT: &[u8] = b"Root=1-";
    const PARENT: &[u8] = b";Parent=";
    const SAMPLED: &[u8] = b";Sampled=";
    let rest = header.strip_prefix(ROOT)?;
    let (time, rest) = rest.split_at_checked(8)?;
    let rest = rest.strip_prefix(b"-")?;
    let (unique, rest) = rest.split_at_checked(24)?;
    let rest = rest.strip_prefix(PARENT)?;
    let (parent, rest) = rest.split_at_checked(16)?;
    let (decision, more) = rest.strip_prefix(SAMPLED)?.split_first()?;
    let flags = match decision {
        b'0' => TraceFlags::default(),
        b'1' => TraceFlags::SAMPLED,
        b'?' => DEFERRED,
        _ => return None,
    };
    let trace_state = match more {
        [] => TraceState::default(),
        more => {
            let lineage = more.strip_prefix(b";Lineage=")?;
            if lineage.contains(&b';') {
                return None;
            }
            // A value the trace state refuses: the full parser says `None`, from its own reading.
            TraceState::from_key_value([("lineage", std::str::from_utf8(lineage).ok()?)]).ok()?
        }
    };
    let trace_id = (hex(time)? << 96) | hex(unique)?;
    if trace_id == 0 {
        // Not a trace id: the full parser says so too (`None`).
        return None;
    }
    Some(SpanContext::new(
        TraceId::from(trace_id),
        SpanId::from(hex(parent)? as u64),
        flags,
        true,
        trace_state,
    ))
}

/// Hex digits (either case) as a number; at most 32 of them.
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |value, &digit| {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            b'A'..=b'F' => digit - b'A' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(nibble))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lambdas_header_is_read_in_one_pass() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let context = canonical(header.as_bytes()).expect("the canonical shape");
        assert_eq!(
            context.trace_id().to_string(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(context.span_id().to_string(), "53995c3f42cd8ad8");
        assert!(context.is_sampled() && context.is_remote());
        assert_eq!(Some(context), span_context_from_str(header));

        let header = format!("{header};Lineage=1:abcdef12:0");
        let context = canonical(header.as_bytes()).expect("with its lineage");
        assert_eq!(context.trace_state().get("lineage"), Some("1:abcdef12:0"));
        assert_eq!(Some(context), span_context_from_str(&header));
    }

    /// Pieces of headers: Lambda's own, near misses of each part, and noise.
    fn header() -> impl Strategy<Value = String> {
        let root = prop_oneof![
            4 => ("[0-9a-fA-F]{8}", "[0-9a-fA-F]{24}").prop_map(|(t, u)| format!("Root=1-{t}-{u}")),
            1 => Just("Root=1-00000000-000000000000000000000000".to_owned()),
            1 => "[0-9a-fA-F]{24}".prop_map(|u| format!("Root=1-00000000-{u}")),
            1 => "[0-9a-fA-F]{8}".prop_map(|t| format!("Root=1-{t}-000000000000000000000000")),
            1 => "Root=[0-9]-[0-9a-gA-G]{7,9}-[0-9a-gA-G]{23,25}",
            1 => "[Rr]oot=[ -~]{0,40}",
        ];
        let parent = prop_oneof![
            4 => "[0-9a-fA-F]{16}".prop_map(|p| format!(";Parent={p}")),
            1 => ";Parent=[0-9a-gA-G+]{15,17}",
            1 => Just(";Parent=0000000000000000".to_owned()),
            1 => Just(String::new()),
        ];
        let sampled = prop_oneof![
            4 => "[01?]".prop_map(|s| format!(";Sampled={s}")),
            1 => ";Sampled=[ -~]{0,3}",
            1 => Just(String::new()),
        ];
        let more = prop_oneof![
            3 => Just(String::new()),
            2 => ";Lineage=[0-9]:[0-9a-f]{8}:[0-9]",
            1 => ";Lineage=[ -~]{0,12}",
            1 => "[;= -~]{0,12}",
        ];
        (root, parent, sampled, more).prop_map(|(r, p, s, m)| format!("{r}{p}{s}{m}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn every_header_reads_as_opentelemetry_aws_reads_it(header in header()) {
            let full = span_context_from_str(&header);
            // The one pass, where it answers (about a quarter of these headers): the same.
            if let Some(context) = canonical(header.as_bytes()) {
                prop_assert_eq!(Some(context), full.clone());
            }
            prop_assert_eq!(parent_from_header(&header), full);
        }
    }

    #[test]
    fn the_one_pass_takes_only_the_canonical_shape() {
        for header in [
            // Other or more entries, a missing one, another order, a shorter id: the full
            // parser's.
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Self=1-abc",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=1:a:0;Self=1",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Parent=53995c3f42cd8ad8;Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=1",
        ] {
            assert_eq!(canonical(header.as_bytes()), None, "{header}");
            assert!(parent_from_header(header).is_some(), "{header}");
        }
    }
}
