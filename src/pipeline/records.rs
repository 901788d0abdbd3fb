//! Pure record building: a consumed message becomes the records of its events
//! ([`split_message`]), the quotes worth sending and their latest-quote copies
//! ([`select_changed_quotes`], [`latest_copy`]),
//! or its dead letter ([`dead_letter`]). Every record carries the provenance headers of
//! [`super::lineage`].

use std::sync::{Arc, Mutex};

use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::Message as _;

use super::lineage::{headers, with_provenance, EventHeaders, Outgoing};
use crate::encode::Encoder;
use crate::envelope::decode_message_reporting_unknown_fields;
use crate::metrics::{FailureCode, Stage};
use crate::parse::{parse_page, ParseOptions};
use crate::quote_filter::{ChangeFilters, QuoteValue};
use crate::sink::OutRecord;
use crate::trace_context::{InvalidTraceContext, PageTrace, SpanId};

#[derive(Debug, Clone)]
pub struct Topics {
    /// Quote events.
    pub quotes: Arc<str>,
    /// Article events.
    pub articles: Arc<str>,
    /// Dead letters.
    pub dead_letter: Arc<str>,
    /// Whether events carry the lineage headers (`topics.lineage_headers`).
    pub lineage_headers: bool,
}

/// The compacted topic that gets every quote, keyed by symbol.
#[derive(Debug, Clone)]
pub struct LatestQuotes {
    /// Its name.
    pub topic: Arc<str>,
    /// The framing header of its values, replacing the quote topic's (Confluent wire format: the
    /// schema id registered under this topic's subject); `None`: the same values as the quote
    /// topic (single-object encoding).
    pub header: Option<Vec<u8>>,
}

/// A consumed message, detached from the consumer.
#[derive(Debug, Clone)]
pub struct InMessage {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Broker timestamp in milliseconds, if any.
    pub timestamp_ms: Option<i64>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub payload: Option<Vec<u8>>,
    /// Record headers (name, value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl InMessage {
    /// Copies a borrowed consumer message.
    pub fn from_borrowed(message: &BorrowedMessage<'_>) -> Self {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    /// Bytes of its key, value and headers (names and values): what holding it costs.
    pub(super) fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.len() + value.as_ref().map_or(0, Vec::len))
            .sum();
        self.payload.as_ref().map_or(0, Vec::len) + self.key.as_ref().map_or(0, Vec::len) + headers
    }

    /// Its headers as (name, value) pairs.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_deref()))
    }

    /// The trace context its headers carry.
    pub fn trace(&self) -> PageTrace {
        PageTrace::from_headers(self.header_pairs())
    }
}

/// A message that could not be turned into events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Where it failed.
    pub stage: Stage,
    /// Stable error code.
    pub code: FailureCode,
    /// Human-readable reason.
    pub message: String,
    /// The page's URL, when it was read far enough to know it.
    pub url: Option<String>,
}

/// The records one page becomes.
#[derive(Debug)]
pub struct Split {
    /// Records in publishing order: the `quotes` quotes, then the article. Copies of the quotes
    /// for the latest-quote topic are made when they are sent ([`latest_copy`]), for the quotes
    /// that changed.
    pub records: Vec<OutRecord>,
    /// Number of quote records.
    pub quotes: usize,
    /// Number of article records.
    pub articles: usize,
    /// The compared values of the quote records, in the same order.
    pub quote_values: Vec<QuoteValue>,
    /// The page's url.
    pub url: String,
    /// When the page was fetched.
    pub fetched_at: chrono::DateTime<chrono::Utc>,
    /// Lines dropped as boilerplate.
    pub boilerplate_lines: usize,
    /// Fields of the page's envelope that were ignored (not part of the input contract).
    pub unknown_fields: Vec<String>,
    /// pagesplit's span of the page.
    pub span: SpanId,
    /// The trace context passed on to its records, when it had a valid `traceparent`.
    pub trace: Option<Outgoing>,
    /// A trace context header of the page dropped as invalid.
    pub trace_dropped: Option<InvalidTraceContext>,
}

/// Pure: decodes, splits and encodes one message into the records to publish. `span` is
/// pagesplit's span of the page: the parent named by the `traceparent` of its records when the
/// page carried a valid one.
pub fn split_message(
    message: &InMessage,
    options: &ParseOptions,
    encoder: &Encoder,
    topics: &Topics,
    span: SpanId,
) -> Result<Split, Failure> {
    let decoded = decode_message_reporting_unknown_fields(message.payload.as_deref(), message.header_pairs()).map_err(
        |error| Failure {
            stage: Stage::Decode,
            code: error.failure_code(),
            message: error.to_string(),
            url: None,
        },
    )?;
    let page = decoded.page;
    let parsed = parse_page(&page, options).map_err(|error| Failure {
        stage: Stage::Parse,
        code: FailureCode::Parse(error.code()),
        message: error.to_string(),
        url: Some(page.url.clone()),
    })?;
    let encode_failure = |error: crate::encode::EncodeError| Failure {
        stage: Stage::Encode,
        code: FailureCode::Encode(error.code()),
        message: error.to_string(),
        url: Some(page.url.clone()),
    };
    let trace = message.trace();
    let trace_dropped = trace.dropped;
    let trace = Outgoing::of(trace, span);
    let headers = topics
        .lineage_headers
        .then(|| EventHeaders::new(message, &page.url, trace.as_ref()));
    let mut records = Vec::with_capacity(parsed.quotes.len() + 1);
    let quote_values = parsed.quotes.iter().map(QuoteValue::of).collect();
    for quote in &parsed.quotes {
        records.push(OutRecord {
            topic: topics.quotes.clone(),
            key: Some(quote.symbol.as_bytes().to_vec()),
            payload: Some(encoder.encode_quote(quote).map_err(encode_failure)?),
            headers: headers.as_ref().map(|headers| headers.quote.clone()),
        });
    }
    records.push(OutRecord {
        topic: topics.articles.clone(),
        key: Some(parsed.article.url.as_bytes().to_vec()),
        payload: Some(encoder.encode_article(&parsed.article).map_err(encode_failure)?),
        headers: headers.map(|headers| headers.article),
    });
    Ok(Split {
        quotes: parsed.quotes.len(),
        articles: 1,
        quote_values,
        records,
        url: page.url,
        fetched_at: page.fetched_at,
        boilerplate_lines: parsed.boilerplate_lines_dropped,
        unknown_fields: decoded.unknown_fields,
        span,
        trace,
        trace_dropped,
    })
}

/// Pure: the copy of a quote record for the latest-quote topic: keyed by symbol, with the
/// quote's headers, its value reframed with the topic's schema id when it has its own (a
/// Confluent header has the same length whatever the id: the copy is as large as the quote).
pub fn latest_copy(quote: &OutRecord, latest: &LatestQuotes) -> OutRecord {
    let payload = match (
        &latest.header,
        quote.payload.as_deref().and_then(crate::encode::unframe),
    ) {
        (Some(header), Some(crate::encode::Framed::Confluent { datum, .. })) => {
            let mut payload = Vec::with_capacity(header.len() + datum.len());
            payload.extend_from_slice(header);
            payload.extend_from_slice(datum);
            Some(payload)
        }
        _ => quote.payload.clone(),
    };
    OutRecord {
        topic: latest.topic.clone(),
        key: quote.key.clone(),
        payload,
        headers: quote.headers.clone(),
    }
}

/// The change filters of a worker, shared by the ordered stage and the deliveries.
pub type SharedQuoteFilter = Arc<Mutex<ChangeFilters>>;

/// How many events of a page go to which topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct PageCounts {
    /// Quotes sent to the quote topic.
    pub quotes: usize,
    /// Quotes left out as unchanged.
    pub unchanged_quotes: usize,
    /// Copies sent to the latest-quote topic.
    pub latest_quotes: usize,
    /// Articles.
    pub articles: usize,
}

impl PageCounts {
    /// What a page's split sends, before any quote is left out.
    pub fn of(split: &Split) -> Self {
        Self {
            quotes: split.quotes,
            unchanged_quotes: 0,
            latest_quotes: 0,
            articles: split.articles,
        }
    }

    /// As the metrics take them.
    pub fn delivered<'a>(
        &self,
        topics: &'a Topics,
        latest: Option<&'a LatestQuotes>,
    ) -> crate::metrics::DeliveredEvents<'a> {
        crate::metrics::DeliveredEvents {
            quotes_topic: &topics.quotes,
            quotes: self.quotes,
            unchanged_quotes: self.unchanged_quotes,
            latest_topic: latest.map(|latest| &*latest.topic),
            latest_quotes: self.latest_quotes,
            articles_topic: &topics.articles,
            articles: self.articles,
        }
    }
}

/// Pure: the dead letter of a message: its original key, value and headers, plus its
/// provenance and the reason.
pub fn dead_letter(message: &InMessage, failure: &Failure, topic: &str) -> OutRecord {
    dead_letter_with(message, failure, topic, None)
}

/// Pure: the dead letter of a message whose full dead letter was rejected for good (`why`, e.g.
/// too large for the dead-letter topic): the same key and pagesplit's headers (the error message
/// cut to [`OMITTED_MESSAGE_BYTES`]), neither the message's own headers nor its value, and a
/// [`VALUE_OMITTED`](headers::VALUE_OMITTED) header with the value's size and `why`.
pub fn dead_letter_without_value(message: &InMessage, failure: &Failure, topic: &str, why: &str) -> OutRecord {
    let size = message.payload.as_ref().map_or(0, Vec::len);
    dead_letter_with(message, failure, topic, Some(format!("{size} bytes: {why}")))
}

/// The longest error message in a dead letter without its value.
pub const OMITTED_MESSAGE_BYTES: usize = 1024;

fn dead_letter_with(message: &InMessage, failure: &Failure, topic: &str, omitted: Option<String>) -> OutRecord {
    use headers as h;
    let mut headers = OwnedHeaders::new_with_capacity(message.headers.len() + 10);
    let mut error_message = failure.message.as_str();
    if omitted.is_none() {
        // Incoming `pagesplit.*` headers are dropped: a page may not claim a reason of its own.
        for (name, value) in message
            .headers
            .iter()
            .filter(|(name, _)| !name.starts_with("pagesplit."))
        {
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
    } else if error_message.len() > OMITTED_MESSAGE_BYTES {
        let mut end = OMITTED_MESSAGE_BYTES;
        while !error_message.is_char_boundary(end) {
            end -= 1;
        }
        error_message = &error_message[..end];
    }
    headers = with_provenance(headers, message, failure.url.as_deref());
    let timestamp = message.timestamp_ms.map(|ms| ms.to_string()).unwrap_or_default();
    for (key, value) in [
        (h::SOURCE_TIMESTAMP, timestamp.as_str()),
        (h::STAGE, failure.stage.as_str()),
        (h::ERROR_CODE, failure.code.as_str()),
        (h::ERROR_MESSAGE, error_message),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    let payload = match &omitted {
        None => message.payload.clone(),
        Some(omitted) => {
            headers = headers.insert(Header {
                key: h::VALUE_OMITTED,
                value: Some(omitted.as_str()),
            });
            None
        }
    };
    OutRecord {
        topic: topic.into(),
        key: message.key.clone(),
        payload,
        headers: Some(Arc::new(headers)),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::encode::{unframe, Framed, Framing};

    pub(in crate::pipeline) const PAGE: &str =
        include_str!("../../tests/fixtures/pages/brecorder-putin-assad.masked.txt");

    pub(in crate::pipeline) fn topics() -> Topics {
        Topics {
            quotes: "market.quotes.v1".into(),
            articles: "news.articles.v1".into(),
            dead_letter: "pagesplit.dlq.v1".into(),
            lineage_headers: true,
        }
    }

    pub(in crate::pipeline) fn message(body: &str, minute: u32) -> InMessage {
        use chrono::TimeZone as _;
        let fetched_at = chrono::Utc.with_ymd_and_hms(2024, 12, 8, 10, minute, 0).unwrap();
        InMessage {
            topic: "pages.raw".to_owned(),
            partition: 0,
            offset: i64::from(minute),
            timestamp_ms: None,
            key: None,
            payload: Some(crate::envelope::encode_envelope(
                "https://www.brecorder.com/news/1",
                fetched_at,
                "text/plain",
                body,
            )),
            headers: Vec::new(),
        }
    }

    pub(in crate::pipeline) fn split(body: &str, minute: u32, encoder: &Encoder) -> Split {
        split_message(
            &message(body, minute),
            &ParseOptions::default(),
            encoder,
            &topics(),
            SpanId([7; 8]),
        )
        .unwrap()
    }

    /// The records of a split with a latest-quote copy of every quote after them.
    fn with_every_copy(split: &Split, latest: &LatestQuotes) -> Vec<OutRecord> {
        let copies = split.records[..split.quotes]
            .iter()
            .map(|quote| latest_copy(quote, latest));
        split.records.iter().cloned().chain(copies).collect()
    }

    /// (topic, key) of the records sent: those flagged, then the latest-quote copies chosen.
    fn header_values(record: &OutRecord) -> Vec<(String, String)> {
        use rdkafka::message::Headers as _;
        record
            .headers
            .as_ref()
            .expect("the record has headers")
            .iter()
            .map(|header| {
                let value = header.value.map(|value| String::from_utf8_lossy(value).into_owned());
                (header.key.to_owned(), value.unwrap_or_default())
            })
            .collect()
    }

    #[test]
    fn every_record_of_a_page_names_its_page_and_carries_its_trace() {
        let encoder = Encoder::new(Framing::SingleObject);
        let latest = LatestQuotes {
            topic: "market.quotes.latest.v1".into(),
            header: None,
        };
        let mut page = message(PAGE, 5);
        page.partition = 1;
        page.headers = vec![
            (
                "traceparent".to_owned(),
                Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec()),
            ),
            ("tracestate".to_owned(), Some(b"congo=t61rcWkgMzE".to_vec())),
        ];
        let split = split_message(&page, &ParseOptions::default(), &encoder, &topics(), SpanId([7; 8])).unwrap();
        assert_eq!(split.trace_dropped, None);
        let records = with_every_copy(&split, &latest);
        let version = env!("CARGO_PKG_VERSION").to_owned();
        let pair = |key: &str, value: &str| (key.to_owned(), value.to_owned());
        let traceparent = pair("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-0707070707070707-01");
        let tracestate = pair("tracestate", "congo=t61rcWkgMzE");
        let source = [
            pair("pagesplit.source.topic", "pages.raw"),
            pair("pagesplit.source.partition", "1"),
            pair("pagesplit.source.offset", "5"),
        ];
        let mut quote = source.to_vec();
        quote.extend([
            pair("pagesplit.source.url", "https://www.brecorder.com/news/1"),
            pair("pagesplit.version", &version),
            traceparent.clone(),
            tracestate.clone(),
        ]);
        let mut article = source.to_vec();
        article.extend([pair("pagesplit.version", &version), traceparent, tracestate]);
        assert_eq!(records.len(), 69);
        for (index, record) in records.iter().enumerate() {
            let want = if index == 34 { &article } else { &quote };
            assert_eq!(&header_values(record), want, "record {index} ({})", record.topic);
        }
        // Built once per page: every quote and latest copy shares one set of headers.
        let first = records[0].headers.as_ref().unwrap();
        assert!(records[..34]
            .iter()
            .chain(&records[35..])
            .all(|record| Arc::ptr_eq(record.headers.as_ref().unwrap(), first)));

        // An invalid traceparent is dropped (and said so); the page splits all the same.
        page.headers[0].1 = Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01".to_vec());
        let split = split_message(&page, &ParseOptions::default(), &encoder, &topics(), SpanId([7; 8])).unwrap();
        assert_eq!(split.trace_dropped, Some(InvalidTraceContext::ZeroParentId));
        assert_eq!(split.trace, None);
        assert_eq!(header_values(&split.records[0]).len(), 5);
        assert_eq!(header_values(&split.records[34]).len(), 4);

        // topics.lineage_headers = false: events without headers, the trace still in the log.
        page.headers[0].1 = Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec());
        let bare = Topics {
            lineage_headers: false,
            ..topics()
        };
        let split = split_message(&page, &ParseOptions::default(), &encoder, &bare, SpanId([7; 8])).unwrap();
        assert!(split.records.iter().all(|record| record.headers.is_none()));
        assert!(split.trace.is_some());
    }

    #[test]
    fn a_dead_letter_names_its_page_s_url_once_it_is_known() {
        let page = message("", 6);
        let failure = split_message(
            &page,
            &ParseOptions::default(),
            &Encoder::new(Framing::SingleObject),
            &topics(),
            SpanId([1; 8]),
        )
        .unwrap_err();
        assert_eq!(failure.code, "empty_body");
        assert_eq!(failure.url.as_deref(), Some("https://www.brecorder.com/news/1"));
        let dead = header_values(&dead_letter(&page, &failure, "pagesplit.dlq.v1"));
        let names: Vec<&str> = dead.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pagesplit.source.topic",
                "pagesplit.source.partition",
                "pagesplit.source.offset",
                "pagesplit.source.url",
                "pagesplit.version",
                "pagesplit.source.timestamp",
                "pagesplit.stage",
                "pagesplit.error.code",
                "pagesplit.error.message",
            ]
        );
        assert_eq!(dead[3].1, "https://www.brecorder.com/news/1");
        let mut not_a_page = page.clone();
        not_a_page.payload = Some(b"x".to_vec());
        let failure = split_message(
            &not_a_page,
            &ParseOptions::default(),
            &Encoder::new(Framing::SingleObject),
            &topics(),
            SpanId([1; 8]),
        )
        .unwrap_err();
        assert_eq!(failure.url, None);
        let dead = header_values(&dead_letter(&not_a_page, &failure, "pagesplit.dlq.v1"));
        assert!(dead.iter().all(|(name, _)| name != "pagesplit.source.url"));
    }

    #[test]
    fn the_size_of_a_message_counts_its_headers() {
        let mut page = message("x", 1);
        let value = page.payload.as_ref().unwrap().len();
        page.key = Some(b"key".to_vec());
        assert_eq!(page.size(), value + 3);
        page.headers = vec![
            ("crawler".to_owned(), Some(vec![b'h'; 900_000])),
            ("empty".to_owned(), None),
        ];
        assert_eq!(page.size(), value + 3 + 7 + 900_000 + 5);
    }

    #[test]
    fn incoming_pagesplit_headers_do_not_reach_the_dead_letter() {
        use headers as h;
        let mut page = message(PAGE, 4);
        page.headers = vec![
            (h::ERROR_CODE.to_owned(), Some(b"spoofed".to_vec())),
            (h::VALUE_OMITTED.to_owned(), Some(b"0 bytes".to_vec())),
            ("pagesplit.anything".to_owned(), None),
            ("crawler".to_owned(), Some(b"c1".to_vec())),
        ];
        let failure = Failure {
            stage: Stage::Parse,
            code: FailureCode::SplitPanicked,
            message: "boom".to_owned(),
            url: None,
        };
        let record = dead_letter(&page, &failure, "pagesplit.dlq.v1");
        let headers: Vec<(String, Option<String>)> = record
            .headers
            .as_ref()
            .unwrap()
            .iter()
            .map(|header| {
                (
                    header.key.to_owned(),
                    header.value.map(|value| String::from_utf8_lossy(value).into_owned()),
                )
            })
            .collect();
        let named = |name: &str| headers.iter().filter(|(key, _)| key == name).collect::<Vec<_>>();
        assert_eq!(
            named(h::ERROR_CODE),
            [&(h::ERROR_CODE.to_owned(), Some("split_panicked".to_owned()))]
        );
        assert!(named(h::VALUE_OMITTED).is_empty(), "{headers:?}");
        assert!(named("pagesplit.anything").is_empty(), "{headers:?}");
        assert_eq!(named("crawler"), [&("crawler".to_owned(), Some("c1".to_owned()))]);
        assert_eq!(
            headers.len(),
            9,
            "the page's one header and pagesplit's eight: {headers:?}"
        );
    }

    #[test]
    fn a_dead_letter_without_value_keeps_the_reason_but_not_the_page() {
        let mut page = message(PAGE, 4);
        page.headers = vec![("crawler".to_owned(), Some(b"x".repeat(2000)))];
        let failure = Failure {
            stage: Stage::Parse,
            code: FailureCode::SplitPanicked,
            message: "é".repeat(600),
            url: None,
        };
        let whole = dead_letter(&page, &failure, "pagesplit.dlq.v1");
        assert_eq!(whole.payload, page.payload);
        let header = |record: &OutRecord, name: &str| {
            record
                .headers
                .as_ref()
                .unwrap()
                .iter()
                .find(|header| header.key == name)
                .and_then(|header| header.value.map(|value| String::from_utf8_lossy(value).into_owned()))
        };
        assert_eq!(header(&whole, "crawler").map(|value| value.len()), Some(2000));
        assert_eq!(header(&whole, headers::ERROR_MESSAGE).unwrap().len(), 1200);
        assert_eq!(header(&whole, headers::VALUE_OMITTED), None);

        let bare = dead_letter_without_value(&page, &failure, "pagesplit.dlq.v1", "too large");
        assert_eq!(bare.payload, None);
        assert_eq!(bare.key, page.key);
        assert_eq!(header(&bare, "crawler"), None, "the message's own headers are left out");
        assert_eq!(header(&bare, headers::ERROR_MESSAGE).unwrap(), "é".repeat(512));
        assert_eq!(header(&bare, headers::ERROR_CODE).unwrap(), "split_panicked");
        assert_eq!(header(&bare, headers::SOURCE_OFFSET).unwrap(), "4");
        let size = page.payload.as_ref().unwrap().len();
        assert_eq!(
            header(&bare, headers::VALUE_OMITTED).unwrap(),
            format!("{size} bytes: too large")
        );
    }

    #[test]
    fn every_quote_is_copied_to_the_latest_topic_with_its_own_schema_id() {
        let encoder = Encoder::new(Framing::Confluent {
            quote_schema_id: 7,
            article_schema_id: 8,
        });
        let latest = LatestQuotes {
            topic: "market.quotes.latest.v1".into(),
            header: Some(crate::encode::confluent_header(9)),
        };
        let split = split(PAGE, 0, &encoder);
        assert_eq!((split.quotes, split.articles), (34, 1));
        assert_eq!(split.records.len(), 35);
        assert_eq!(split.quote_values.len(), 34);
        let records = with_every_copy(&split, &latest);
        for (quote, copy) in records[..34].iter().zip(&records[35..]) {
            assert_eq!(&*quote.topic, "market.quotes.v1");
            assert_eq!(&*copy.topic, "market.quotes.latest.v1");
            assert_eq!(quote.key, copy.key);
            let (
                Some(Framed::Confluent { schema_id: 7, datum }),
                Some(Framed::Confluent {
                    schema_id: 9,
                    datum: copied,
                }),
            ) = (
                unframe(quote.payload.as_deref().unwrap()),
                unframe(copy.payload.as_deref().unwrap()),
            )
            else {
                panic!("not reframed: {quote:?} {copy:?}")
            };
            assert_eq!(datum, copied);
        }
        assert_eq!(&*split.records[34].topic, "news.articles.v1");
        // Single-object values carry the schema's fingerprint, the same for both topics.
        let encoder = Encoder::new(Framing::SingleObject);
        let latest = LatestQuotes { header: None, ..latest };
        let single = super::tests::split(PAGE, 0, &encoder);
        assert_eq!(
            single.records[0].payload,
            latest_copy(&single.records[0], &latest).payload
        );
    }
}
