//! Pure: the headers that say where a record pagesplit writes came from. One naming scheme for
//! events and dead letters ([`headers`]), one function that writes the provenance of a raw page
//! ([`with_provenance`]), and the headers of a page's events, built once per page and shared by
//! its records ([`EventHeaders`]).

use std::sync::Arc;

use rdkafka::message::{Header, OwnedHeaders};

use super::records::InMessage;
use crate::trace_context::{PageTrace, SpanId, TraceParent};

/// Header names of the records pagesplit writes. Stable: downstream code may match on them.
/// Values are UTF-8 text.
pub mod headers {
    /// Topic of the raw page the record comes from (every record).
    pub const SOURCE_TOPIC: &str = "pagesplit.source.topic";
    /// Its partition, in decimal (every record).
    pub const SOURCE_PARTITION: &str = "pagesplit.source.partition";
    /// Its offset, in decimal (every record).
    pub const SOURCE_OFFSET: &str = "pagesplit.source.offset";
    /// The page's URL, on records whose key is not the URL (quotes, latest quotes; dead letters
    /// of pages that were read far enough to know it).
    pub const SOURCE_URL: &str = "pagesplit.source.url";
    /// Broker timestamp of the raw page (ms since the epoch; dead letters).
    pub const SOURCE_TIMESTAMP: &str = "pagesplit.source.timestamp";
    /// Version of pagesplit that wrote the record (every record).
    pub const VERSION: &str = "pagesplit.version";
    /// `decode`, `parse` or `encode` (dead letters).
    pub const STAGE: &str = "pagesplit.stage";
    /// Stable error code (dead letters).
    pub const ERROR_CODE: &str = "pagesplit.error.code";
    /// Human-readable reason (dead letters).
    pub const ERROR_MESSAGE: &str = "pagesplit.error.message";
    /// Present when the original value is left out (the dead letter with it was rejected, e.g.
    /// as too large): its size in bytes and why. The page is still at its source offset.
    pub const VALUE_OMITTED: &str = "pagesplit.value.omitted";
    /// W3C Trace Context of the page, carried to its events with pagesplit's span as the parent.
    pub const TRACEPARENT: &str = crate::trace_context::TRACEPARENT;
    /// W3C Trace Context vendor state, carried along with a valid `traceparent`.
    pub const TRACESTATE: &str = crate::trace_context::TRACESTATE;
}

/// The version written in [`headers::VERSION`].
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Adds the provenance of `message` to `headers`: its topic, partition and offset, the page URL
/// when given, and pagesplit's version.
pub fn with_provenance(mut headers: OwnedHeaders, message: &InMessage, url: Option<&str>) -> OwnedHeaders {
    let (partition, offset) = (message.partition.to_string(), message.offset.to_string());
    for (key, value) in [
        (headers::SOURCE_TOPIC, message.topic.as_str()),
        (headers::SOURCE_PARTITION, partition.as_str()),
        (headers::SOURCE_OFFSET, offset.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    if let Some(url) = url {
        headers = headers.insert(Header {
            key: headers::SOURCE_URL,
            value: Some(url),
        });
    }
    headers.insert(Header {
        key: headers::VERSION,
        value: Some(VERSION),
    })
}

/// The trace context pagesplit passes on from a page: the page's trace with pagesplit's span
/// as the parent, and the page's `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The records' `traceparent`.
    pub parent: TraceParent,
    /// The page's `tracestate`, when it had a valid one.
    pub state: Option<String>,
}

impl Outgoing {
    /// What the span `span` of a page with `trace` passes on; `None` without a valid
    /// `traceparent`.
    pub fn of(trace: PageTrace, span: SpanId) -> Option<Self> {
        Some(Self {
            parent: trace.parent?.child(span),
            state: trace.state,
        })
    }
}

/// The headers of a page's events, built once per page; each record holds a reference, and
/// the producer copies them once per record.
#[derive(Debug, Clone)]
pub struct EventHeaders {
    /// Quotes (and their latest-quote copies): provenance with the page URL, trace context.
    pub quote: Arc<OwnedHeaders>,
    /// The article (keyed by URL): provenance without it, trace context.
    pub article: Arc<OwnedHeaders>,
}

impl EventHeaders {
    /// The headers of the events of `message`, the page at `url`, passing on `trace`.
    pub fn new(message: &InMessage, url: &str, trace: Option<&Outgoing>) -> Self {
        let traceparent = trace.map(|trace| trace.parent.to_string());
        let build = |url: Option<&str>| {
            let mut headers = with_provenance(OwnedHeaders::new_with_capacity(7), message, url);
            if let (Some(trace), Some(traceparent)) = (trace, &traceparent) {
                headers = headers.insert(Header {
                    key: headers::TRACEPARENT,
                    value: Some(traceparent.as_str()),
                });
                if let Some(state) = &trace.state {
                    headers = headers.insert(Header {
                        key: headers::TRACESTATE,
                        value: Some(state.as_str()),
                    });
                }
            }
            Arc::new(headers)
        };
        Self {
            quote: build(Some(url)),
            article: build(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers as _;

    use super::*;

    fn page() -> InMessage {
        InMessage {
            topic: "pages.raw".to_owned(),
            partition: 3,
            offset: 90_210,
            timestamp_ms: None,
            key: None,
            payload: None,
            headers: Vec::new(),
        }
    }

    fn pairs(headers: &OwnedHeaders) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|header| {
                (
                    header.key.to_owned(),
                    String::from_utf8(header.value.unwrap().to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn quotes_name_their_page_articles_are_keyed_by_it() {
        let headers = EventHeaders::new(&page(), "https://example.com/a", None);
        assert_eq!(
            pairs(&headers.quote),
            owned(&[
                ("pagesplit.source.topic", "pages.raw"),
                ("pagesplit.source.partition", "3"),
                ("pagesplit.source.offset", "90210"),
                ("pagesplit.source.url", "https://example.com/a"),
                ("pagesplit.version", env!("CARGO_PKG_VERSION")),
            ])
        );
        assert_eq!(
            pairs(&headers.article),
            owned(&[
                ("pagesplit.source.topic", "pages.raw"),
                ("pagesplit.source.partition", "3"),
                ("pagesplit.source.offset", "90210"),
                ("pagesplit.version", env!("CARGO_PKG_VERSION")),
            ])
        );
    }

    #[test]
    fn events_carry_the_page_s_trace_with_pagesplit_s_span_as_parent() {
        let trace = PageTrace::from_headers([
            (
                "traceparent",
                Some(&b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..]),
            ),
            ("tracestate", Some(&b"congo=t61rcWkgMzE"[..])),
        ]);
        let span = SpanId([1, 2, 3, 4, 5, 6, 7, 8]);
        let outgoing = Outgoing::of(trace, span).unwrap();
        let headers = EventHeaders::new(&page(), "https://example.com/a", Some(&outgoing));
        for headers in [&headers.quote, &headers.article] {
            let pairs = pairs(headers);
            assert_eq!(
                pairs[pairs.len() - 2..],
                owned(&[
                    ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"),
                    ("tracestate", "congo=t61rcWkgMzE"),
                ])
            );
        }
        assert_eq!(Outgoing::of(PageTrace::default(), span), None);
    }
}
