//! Shared input layout and invariant checks of the pagesplit fuzz targets.
//!
//! Every check panics (with the offending value in the message) when an invariant is broken,
//! which libFuzzer reports as a crash and saves the input under `fuzz/artifacts/<target>/`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use pagesplit::model::{event_id, ContentType, ParsedPage, QuoteKind, RawPage};
use pagesplit::parse::ticker::{MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, MAX_SYMBOL_LEN};
use pagesplit::parse::{parse_page, parse_ticker_line, ParseError, ParseOptions, TickerLine};
use rust_decimal::Decimal;

/// Largest page body the targets accept (smaller than the service default, so the fuzzer
/// spends its time on parsing rather than on huge inputs; larger bodies must be refused).
pub const MAX_PAGE_BYTES: usize = 64 * 1024;

/// Page address used for every fuzzed page.
pub const URL: &str = "https://www.brecorder.com/news/40000001/fuzz";

/// Charsets selected by bits 1-4 of the first input byte. Index 0 is "no charset"; the rest
/// cover single-byte, multi-byte, UTF-16, unknown and oddly written labels.
pub const CHARSETS: [Option<&str>; 16] = [
    None,
    Some("utf-8"),
    Some("windows-1252"),
    Some("iso-8859-1"),
    Some("utf-16le"),
    Some("utf-16be"),
    Some("shift_jis"),
    Some("gb18030"),
    Some("euc-kr"),
    Some("big5"),
    Some("iso-2022-jp"),
    Some("koi8-r"),
    Some("x-user-defined"),
    Some("replacement"),
    Some(" \"UTF-8\" "),
    Some("no-such-charset"),
];

/// Fixed fetch time of fuzzed pages.
pub fn fetched_at() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_761_035_400_000).expect("valid timestamp")
}

/// Options of the targets: default index symbols, 64 KiB page limit.
pub fn options() -> ParseOptions {
    ParseOptions {
        max_page_bytes: MAX_PAGE_BYTES,
        ..ParseOptions::default()
    }
}

/// Builds a page from fuzz input: the first byte chooses the content type (bit 0: HTML) and
/// the charset (bits 1-4, index into [`CHARSETS`]); the remaining bytes are the body.
pub fn page_from_input(data: &[u8]) -> Option<RawPage> {
    let (&selector, body) = data.split_first()?;
    let content_type = if selector & 1 == 1 {
        ContentType::Html
    } else {
        ContentType::Text
    };
    let charset = CHARSETS[usize::from((selector >> 1) & 0x0f)].map(str::to_string);
    Some(RawPage {
        url: URL.to_string(),
        fetched_at: fetched_at(),
        content_type,
        charset,
        body: body.to_vec(),
    })
}

/// Parses `page` twice and checks the result and its invariants.
pub fn check_page(page: &RawPage, options: &ParseOptions) {
    let first = parse_page(page, options);
    let second = parse_page(page, options);
    assert_eq!(first, second, "parse_page is not deterministic");
    match &first {
        Ok(parsed) => check_parsed(page, options, parsed),
        Err(error) => check_error(page, options, error),
    }
}

fn check_error(page: &RawPage, options: &ParseOptions, error: &ParseError) {
    let size = page.body.len();
    if size > options.max_page_bytes {
        assert_eq!(
            *error,
            ParseError::TooLarge {
                size,
                limit: options.max_page_bytes
            },
            "oversized body not refused as too large"
        );
    } else {
        assert!(
            !matches!(error, ParseError::TooLarge { .. }),
            "body of {size} bytes refused as too large (limit {})",
            options.max_page_bytes
        );
    }
    if page.body.iter().all(u8::is_ascii_whitespace) && size <= options.max_page_bytes {
        assert_eq!(*error, ParseError::EmptyBody, "blank body not refused as empty");
    }
    if matches!(error, ParseError::TooDeep { .. }) {
        assert_eq!(page.content_type, ContentType::Html, "text page refused as too deep");
    }
}

fn check_parsed(page: &RawPage, options: &ParseOptions, parsed: &ParsedPage) {
    assert!(
        page.body.len() <= options.max_page_bytes,
        "body of {} bytes accepted over the limit of {}",
        page.body.len(),
        options.max_page_bytes
    );
    let mut symbols = HashSet::new();
    for quote in &parsed.quotes {
        check_symbol(&quote.symbol);
        assert!(
            symbols.insert(quote.symbol.as_str()),
            "symbol {:?} appears twice among the quotes",
            quote.symbol
        );
        check_decimal("price", &quote.symbol, quote.price);
        check_decimal("change", &quote.symbol, quote.change);
        check_decimal("change_pct", &quote.symbol, quote.change_pct);
        assert!(
            !quote.price.is_sign_negative() || quote.price.is_zero(),
            "negative price {} of {:?}",
            quote.price,
            quote.symbol
        );
        if options.index_symbols.iter().any(|s| *s == quote.symbol) {
            assert_eq!(
                quote.kind,
                QuoteKind::Index,
                "index symbol {:?} is not an index",
                quote.symbol
            );
        }
        assert_eq!(&*quote.url, page.url.as_str(), "quote url differs from the page url");
        assert_eq!(
            quote.fetched_at, page.fetched_at,
            "quote time differs from the fetch time"
        );
        assert_eq!(
            quote.event_id,
            event_id(&page.url, page.fetched_at, &quote.symbol),
            "event id of {:?} is not the documented id",
            quote.symbol
        );
    }
    let article = &parsed.article;
    assert_eq!(article.url, page.url, "article url differs from the page url");
    assert_eq!(
        article.fetched_at, page.fetched_at,
        "article time differs from the fetch time"
    );
    assert_eq!(
        article.event_id,
        event_id(&page.url, page.fetched_at, "article"),
        "article event id is not the documented id"
    );
    assert!(
        !parsed.quotes.is_empty() || article.title.is_some() || !article.paragraphs.is_empty(),
        "page without quotes, title or paragraphs accepted"
    );
    if page.content_type == ContentType::Text {
        // Text pages have NUL and other control characters removed before parsing.
        let fields = article
            .title
            .iter()
            .chain(&article.section)
            .chain(&article.byline)
            .chain(&article.dateline)
            .chain(&article.paragraphs)
            .chain(&article.related_headlines);
        for field in fields {
            assert!(
                !field
                    .chars()
                    .any(|c| c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')),
                "control character in article text {field:?}"
            );
        }
    }
}

/// A symbol is non-empty, at most [`MAX_SYMBOL_LEN`] bytes, without whitespace, and made of
/// uppercase ASCII letters, digits, `-` and `.`.
pub fn check_symbol(symbol: &str) {
    assert!(!symbol.is_empty(), "empty symbol");
    assert!(
        !symbol.chars().any(char::is_whitespace),
        "symbol {symbol:?} contains whitespace"
    );
    assert!(
        symbol.len() <= MAX_SYMBOL_LEN,
        "symbol {symbol:?} is longer than {MAX_SYMBOL_LEN} bytes"
    );
    assert!(
        symbol
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-' || c == b'.'),
        "symbol {symbol:?} has characters outside the ticker grammar"
    );
}

/// A ticker number fits `decimal(18, 6)`: scale at most 6, at most 12 integer digits.
pub fn check_decimal(field: &str, symbol: &str, value: Decimal) {
    assert!(
        value.scale() as usize <= MAX_FRACTION_DIGITS,
        "{field} {value} of {symbol:?} has scale {} > {MAX_FRACTION_DIGITS}",
        value.scale()
    );
    let limit = Decimal::from(10_i64.pow(MAX_INTEGER_DIGITS as u32));
    assert!(
        value.abs() < limit,
        "{field} {value} of {symbol:?} has more than {MAX_INTEGER_DIGITS} integer digits"
    );
}

/// Reads `line` as a ticker line (twice, for determinism) and checks what it returns.
pub fn check_ticker_line(line: &str, options: &ParseOptions) {
    let first = parse_ticker_line(line, options);
    let second = parse_ticker_line(line, options);
    assert_eq!(first, second, "parse_ticker_line is not deterministic");
    if let Some(TickerLine {
        symbol,
        kind,
        price,
        change,
        change_pct,
        has_arrow,
        ..
    }) = first
    {
        check_symbol(symbol);
        check_decimal("price", symbol, price);
        check_decimal("change", symbol, change);
        check_decimal("change_pct", symbol, change_pct);
        assert!(line.contains(symbol), "symbol {symbol:?} is not part of the line");
        if !has_arrow {
            assert_eq!(kind, QuoteKind::Index, "line without arrow is not an index");
        }
    }
}
