//! Pure W3C Trace Context (<https://www.w3.org/TR/trace-context/>): a page's `traceparent` and
//! `tracestate` headers read and checked, and the `traceparent` of the records split from it,
//! whose parent is pagesplit's processing span of the page.
//!
//! The rules followed: a `traceparent` is `version-trace_id-parent_id-flags` in lowercase hex;
//! version `ff` is invalid; version `00` has exactly these four fields, a higher version may have
//! more after a dash (they are not carried: pagesplit writes version `00`); neither id may be
//! all zeros; two `traceparent` headers are invalid. The flags are kept as they came. A
//! `tracestate` is carried only along with a valid `traceparent`, as it came (several headers
//! joined with commas), when it is a list of at most 32 `key=value` members with distinct keys.

use std::fmt;

/// Header name of the trace parent.
pub const TRACEPARENT: &str = "traceparent";
/// Header name of the vendor trace state.
pub const TRACESTATE: &str = "tracestate";

/// The version pagesplit writes.
const VERSION: u8 = 0;
/// Length of a version-00 `traceparent`.
const TRACEPARENT_LEN: usize = 55;
/// Most list members of a `tracestate`.
const MAX_TRACESTATE_MEMBERS: usize = 32;

/// A valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id (never all zeros).
    pub trace_id: [u8; 16],
    /// The id of the parent span (never all zeros).
    pub parent_id: [u8; 8],
    /// The trace flags (bit 0: sampled), as received.
    pub flags: u8,
}

/// Why a trace context header was dropped. Never fails a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTraceContext {
    /// Not `version-trace_id-parent_id-flags` in lowercase hex of the right lengths.
    #[error("traceparent is not version-traceid-parentid-flags in lowercase hex")]
    Malformed,
    /// Version `ff`, which the specification forbids.
    #[error("traceparent has the forbidden version ff")]
    ForbiddenVersion,
    /// A trace id of zeros.
    #[error("traceparent has an all-zero trace id")]
    ZeroTraceId,
    /// A parent id of zeros.
    #[error("traceparent has an all-zero parent id")]
    ZeroParentId,
    /// More than one `traceparent` header.
    #[error("the page has more than one traceparent header")]
    Repeated,
    /// A `tracestate` that is not a list of at most 32 distinct `key=value` members.
    #[error("tracestate is not a list of at most 32 distinct key=value members")]
    InvalidTracestate,
}

impl InvalidTraceContext {
    /// Stable code, the `code` label of `pagesplit_trace_context_dropped_total`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::ForbiddenVersion => "forbidden_version",
            Self::ZeroTraceId => "zero_trace_id",
            Self::ZeroParentId => "zero_parent_id",
            Self::Repeated => "repeated",
            Self::InvalidTracestate => "invalid_tracestate",
        }
    }

    /// The header dropped: `traceparent` (and with it any `tracestate`) or `tracestate` alone.
    pub fn header(self) -> &'static str {
        match self {
            Self::InvalidTracestate => TRACESTATE,
            _ => TRACEPARENT,
        }
    }
}

/// Lowercase hex digit value.
fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// Lowercase hex of exactly `N` bytes.
fn hex_bytes<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut bytes = [0; N];
    for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *byte = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
    }
    Some(bytes)
}

impl TraceParent {
    /// Reads a `traceparent` header value (surrounding blanks ignored).
    pub fn parse(value: &[u8]) -> Result<Self, InvalidTraceContext> {
        use InvalidTraceContext::{ForbiddenVersion, Malformed, ZeroParentId, ZeroTraceId};
        let value = value.trim_ascii();
        if value.len() < TRACEPARENT_LEN {
            return Err(Malformed);
        }
        let [version] = hex_bytes::<1>(&value[..2]).ok_or(Malformed)?;
        if version == 0xff {
            return Err(ForbiddenVersion);
        }
        // Version 00 is exactly four fields; a later version may add fields after a dash.
        let longer_ok = version != VERSION && value.get(TRACEPARENT_LEN) == Some(&b'-');
        if value.len() > TRACEPARENT_LEN && !longer_ok {
            return Err(Malformed);
        }
        if [2, 35, 52].iter().any(|&at| value[at] != b'-') {
            return Err(Malformed);
        }
        let trace_id = hex_bytes::<16>(&value[3..35]).ok_or(Malformed)?;
        let parent_id = hex_bytes::<8>(&value[36..52]).ok_or(Malformed)?;
        let [flags] = hex_bytes::<1>(&value[53..55]).ok_or(Malformed)?;
        if trace_id == [0; 16] {
            return Err(ZeroTraceId);
        }
        if parent_id == [0; 8] {
            return Err(ZeroParentId);
        }
        Ok(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace parent of what the span `span_id` sends: the same trace and flags, the span as
    /// the parent.
    pub fn child(self, span_id: SpanId) -> Self {
        Self {
            parent_id: span_id.0,
            ..self
        }
    }

    /// The trace id in lowercase hex (32 digits).
    pub fn trace_id_hex(&self) -> Hex<'_> {
        Hex(&self.trace_id)
    }
}

/// Version 00: `00-<trace id>-<parent id>-<flags>`.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{VERSION:02x}-{}-{}-{:02x}",
            Hex(&self.trace_id),
            Hex(&self.parent_id),
            self.flags
        )
    }
}

/// Bytes shown as lowercase hex.
#[derive(Debug, Clone, Copy)]
pub struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// The id of a span of pagesplit's (never all zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanId(pub [u8; 8]);

impl SpanId {
    /// A new random span id (the thread's fast generator: ids need to be unique, not secret).
    pub fn random() -> Self {
        loop {
            let id = fastrand::u64(..);
            if id != 0 {
                return Self(id.to_be_bytes());
            }
        }
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Hex(&self.0).fmt(f)
    }
}

/// Whether a `tracestate` key is valid: `simple-key` or `tenant-id@system-id`.
fn valid_tracestate_key(key: &str) -> bool {
    let tail = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/');
    match key.split_once('@') {
        None => {
            let bytes = key.as_bytes();
            (1..=256).contains(&bytes.len()) && bytes[0].is_ascii_lowercase() && bytes[1..].iter().all(|&c| tail(c))
        }
        Some((tenant, system)) => {
            let (tenant, system) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&tenant.len())
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && tenant[1..].iter().all(|&c| tail(c))
                && (1..=14).contains(&system.len())
                && system[0].is_ascii_lowercase()
                && system[1..].iter().all(|&c| tail(c))
        }
    }
}

/// Whether a `tracestate` value is valid: 1 to 256 printable characters but `,` and `=`, not
/// ending in a space.
fn valid_tracestate_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    (1..=256).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && bytes.last() != Some(&b' ')
}

/// Checks a `tracestate` value: at most 32 `key=value` members with distinct keys, separated by
/// commas and optional blanks (empty members are allowed and not counted).
pub fn check_tracestate(value: &str) -> Result<(), InvalidTraceContext> {
    let mut keys: Vec<&str> = Vec::new();
    for member in value.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=').ok_or(InvalidTraceContext::InvalidTracestate)?;
        let fresh = !keys.contains(&key);
        if !(valid_tracestate_key(key) && valid_tracestate_value(value) && fresh) {
            return Err(InvalidTraceContext::InvalidTracestate);
        }
        keys.push(key);
        if keys.len() > MAX_TRACESTATE_MEMBERS {
            return Err(InvalidTraceContext::InvalidTracestate);
        }
    }
    Ok(())
}

/// The trace context of a raw page, as its headers carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageTrace {
    /// Its valid `traceparent`.
    pub parent: Option<TraceParent>,
    /// Its `tracestate`, when valid and along with a valid `traceparent`.
    pub state: Option<String>,
    /// What was dropped as invalid, if anything.
    pub dropped: Option<InvalidTraceContext>,
}

impl PageTrace {
    /// Reads the `traceparent` and `tracestate` headers (names compared ignoring ASCII case)
    /// from a page's headers.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Self {
        let mut parents = Vec::new();
        let mut states: Vec<&[u8]> = Vec::new();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(TRACEPARENT) {
                parents.push(value.unwrap_or_default());
            } else if name.eq_ignore_ascii_case(TRACESTATE) {
                states.extend(value);
            }
        }
        let parent = match parents.as_slice() {
            [] => return Self::default(),
            [one] => TraceParent::parse(one),
            _ => Err(InvalidTraceContext::Repeated),
        };
        let parent = match parent {
            Ok(parent) => parent,
            Err(invalid) => {
                return Self {
                    dropped: Some(invalid),
                    ..Self::default()
                }
            }
        };
        let mut trace = Self {
            parent: Some(parent),
            ..Self::default()
        };
        if states.is_empty() {
            return trace;
        }
        let joined = states
            .iter()
            .map(|state| std::str::from_utf8(state).map(|state| state.trim_matches([' ', '\t'])))
            .collect::<Result<Vec<&str>, _>>();
        match joined.map(|states| states.join(",")) {
            Ok(state) if check_tracestate(&state).is_ok() => {
                trace.state = (!state.trim_matches([' ', '\t', ',']).is_empty()).then_some(state);
            }
            _ => trace.dropped = Some(InvalidTraceContext::InvalidTracestate),
        }
        trace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn trace(headers: &[(&str, &str)]) -> PageTrace {
        PageTrace::from_headers(headers.iter().map(|(name, value)| (*name, Some(value.as_bytes()))))
    }

    #[test]
    fn the_specification_s_example_is_read_and_written_back() {
        let parent = TraceParent::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(parent.trace_id_hex().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.parent_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert_eq!(parent.flags, 1);
        assert_eq!(parent.to_string(), EXAMPLE);
        assert_eq!(TraceParent::parse(format!(" {EXAMPLE}\t").as_bytes()), Ok(parent));
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_and_names_the_span_as_its_parent() {
        let parent = TraceParent::parse(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00").unwrap();
        let span = SpanId([0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8]);
        let child = parent.child(span);
        assert_eq!(
            child.to_string(),
            "00-0af7651916cd43dd8448eb211c80319c-53995c3f42cd8ad8-00"
        );
        assert_eq!(span.to_string(), "53995c3f42cd8ad8");
        // Unknown flag bits are kept as they came.
        let flagged = TraceParent::parse(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03").unwrap();
        assert!(flagged.child(span).to_string().ends_with("-53995c3f42cd8ad8-03"));
    }

    #[test]
    fn a_later_version_is_read_and_written_as_version_00_without_its_extra_fields() {
        let later =
            TraceParent::parse(b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next").unwrap();
        assert_eq!(later.to_string(), EXAMPLE);
        let exact = TraceParent::parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(exact.to_string(), EXAMPLE);
        assert_eq!(
            TraceParent::parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"),
            Err(InvalidTraceContext::Malformed)
        );
    }

    #[test]
    fn invalid_traceparents_are_told_apart() {
        use InvalidTraceContext::*;
        let cases: [(&str, InvalidTraceContext); 12] = [
            ("", Malformed),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", Malformed),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", Malformed),
            ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", Malformed),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01", Malformed),
            ("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", Malformed),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x", Malformed),
            ("0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Malformed),
            ("00+4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Malformed),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ForbiddenVersion,
            ),
            ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", ZeroTraceId),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", ZeroParentId),
        ];
        for (value, why) in cases {
            assert_eq!(TraceParent::parse(value.as_bytes()), Err(why), "{value:?}");
        }
        assert_eq!(TraceParent::parse(b"\xff\xfe"), Err(Malformed));
        assert_eq!(ZeroTraceId.code(), "zero_trace_id");
        assert_eq!(
            (Repeated.header(), InvalidTracestate.header()),
            ("traceparent", "tracestate")
        );
    }

    #[test]
    fn tracestate_comes_only_with_a_valid_traceparent() {
        let state = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
        let both = trace(&[("traceparent", EXAMPLE), ("tracestate", state)]);
        assert_eq!(both.parent.unwrap().to_string(), EXAMPLE);
        assert_eq!(both.state.as_deref(), Some(state));
        assert_eq!(both.dropped, None);

        let alone = trace(&[("tracestate", state)]);
        assert_eq!(alone, PageTrace::default(), "no traceparent: nothing, nothing dropped");

        let bad_parent = trace(&[("tracestate", state), ("TraceParent", "00-xyz")]);
        assert_eq!(
            bad_parent,
            PageTrace {
                parent: None,
                state: None,
                dropped: Some(InvalidTraceContext::Malformed),
            }
        );
        let twice = trace(&[("traceparent", EXAMPLE), ("traceparent", EXAMPLE)]);
        assert_eq!(twice.dropped, Some(InvalidTraceContext::Repeated));
        assert_eq!(twice.parent, None);
    }

    #[test]
    fn several_tracestate_headers_are_joined_and_an_invalid_one_is_dropped_alone() {
        let joined = trace(&[
            ("traceparent", EXAMPLE),
            ("tracestate", "rojo=00f067aa0ba902b7"),
            ("tracestate", " congo=t61rcWkgMzE "),
        ]);
        assert_eq!(joined.state.as_deref(), Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
        assert_eq!(joined.dropped, None);

        for bad in [
            "rojo",
            "Rojo=1",
            "rojo=1,rojo=2",
            "rojo=a=b",
            "rojo=",
            "rojo=del\u{7f}",
            "1tenant=x",
            "tenant@1system=x",
            "tenant@systemnamewaytoolong=x",
        ] {
            let dropped = trace(&[("traceparent", EXAMPLE), ("tracestate", bad)]);
            assert_eq!(dropped.dropped, Some(InvalidTraceContext::InvalidTracestate), "{bad:?}");
            assert_eq!(dropped.state, None, "{bad:?}");
            assert!(dropped.parent.is_some(), "the traceparent stays: {bad:?}");
        }
        let members: Vec<String> = (0..33).map(|index| format!("k{index}=v")).collect();
        assert_eq!(
            check_tracestate(&members[..32].join(",")),
            Ok(()),
            "32 members are allowed"
        );
        assert_eq!(
            check_tracestate(&members.join(",")),
            Err(InvalidTraceContext::InvalidTracestate)
        );
        assert_eq!(check_tracestate("1tenant@vendor=x, ,a*/_-b=v"), Ok(()));
        let empty = trace(&[("traceparent", EXAMPLE), ("tracestate", " , ")]);
        assert_eq!((empty.state, empty.dropped), (None, None));
    }

    #[test]
    fn span_ids_are_random_and_never_zero() {
        let ids: std::collections::HashSet<[u8; 8]> = (0..1000).map(|_| SpanId::random().0).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&[0; 8]));
    }
}
