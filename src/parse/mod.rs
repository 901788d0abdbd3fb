//! Pure page parsing: a [`RawPage`] in, its quotes and article out.
//!
//! No I/O and no global state: [`parse_page`] decodes the body (honouring the page's charset and,
//! for HTML, its `<meta>` charset), reads the market ticker strip into [`Quote`]s and the rest of
//! the page into an [`Article`].
//!
//! - [`ticker`]: the grammar of one ticker line ([`parse_ticker_line`]).
//! - `text`: pages whose body is extracted text, one block per line.
//! - `html`: pages whose body is HTML markup (content scoring, boilerplate, metadata, ticker
//!   widgets).
//! - `dates`: bylines and publication dates.

mod dates;
mod html;
mod text;
pub mod ticker;

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use encoding_rs::Encoding;

use crate::model::{Article, ContentType, EventIds, ParsedPage, Quote, RawPage};

pub use ticker::{parse_ticker_line, TickerLine};

pub(crate) use html::sniff_meta_charset;

/// Symbols of the market indices printed on the ticker strip.
pub const DEFAULT_INDEX_SYMBOLS: [&str; 4] = ["BR100", "BR30", "KSE100", "KSE30"];

/// Default largest body accepted, in bytes (4 MiB).
pub const DEFAULT_MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Deepest element nesting accepted in an HTML page. Browsers' parsing rules make some steps
/// cost time proportional to the nesting depth, so deeper pages are refused before parsing.
pub const MAX_HTML_DEPTH: usize = 512;

/// How pages are parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// Ticker symbols that are market indices (always `INDEX`, arrow or not).
    pub index_symbols: Vec<String>,
    /// Largest page body accepted, in bytes; larger pages fail with [`ParseError::TooLarge`].
    pub max_page_bytes: usize,
}

impl Default for ParseOptions {
    /// Index symbols `BR100`, `BR30`, `KSE100`, `KSE30`; pages up to 4 MiB.
    fn default() -> Self {
        ParseOptions {
            index_symbols: DEFAULT_INDEX_SYMBOLS.iter().map(|s| s.to_string()).collect(),
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
        }
    }
}

/// Why a page could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is larger than [`ParseOptions::max_page_bytes`].
    #[error("page body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the body, in bytes.
        size: usize,
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// The body is empty or holds only whitespace.
    #[error("page body is empty")]
    EmptyBody,
    /// The page holds neither ticker quotes nor any article text.
    #[error("page has no ticker quotes and no article text")]
    NoContent,
    /// The HTML nests elements deeper than [`MAX_HTML_DEPTH`].
    #[error("HTML nests elements deeper than {limit} levels")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
}

impl ParseError {
    /// A stable snake_case code for metrics labels and the dead-letter topic.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::TooLarge { .. } => "page_too_large",
            ParseError::EmptyBody => "empty_body",
            ParseError::NoContent => "no_content",
            ParseError::TooDeep { .. } => "html_too_deep",
        }
    }
}

/// Splits a page into its distinct ticker quotes (page order) and its article.
///
/// Quotes and the article are stamped with the page's url and fetch time, and carry
/// deterministic ids from [`event_id`] (the symbol, or `article`, as key).
pub fn parse_page(page: &RawPage, options: &ParseOptions) -> Result<ParsedPage, ParseError> {
    let size = page.body.len();
    if size > options.max_page_bytes {
        return Err(ParseError::TooLarge {
            size,
            limit: options.max_page_bytes,
        });
    }
    if page.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::EmptyBody);
    }
    let is_html = page.content_type == ContentType::Html;
    let (text, replaced_invalid_bytes) = decode(&page.body, page.charset.as_deref(), is_html);
    if text.trim().is_empty() {
        return Err(ParseError::EmptyBody);
    }
    let mut quotes = QuoteCollector::new(page);
    let parts = match page.content_type {
        ContentType::Text => {
            let text = strip_controls(text);
            text::parse_text(&text, options, &mut quotes)
        }
        ContentType::Html => {
            if html::nesting_depth_exceeds(&text, MAX_HTML_DEPTH) {
                return Err(ParseError::TooDeep { limit: MAX_HTML_DEPTH });
            }
            html::parse_html(&text, options, &mut quotes)
        }
    };
    if quotes.quotes.is_empty() && parts.title.is_none() && parts.paragraphs.is_empty() {
        return Err(ParseError::NoContent);
    }
    let article = Article {
        event_id: quotes.ids.id("article"),
        url: page.url.clone(),
        fetched_at: page.fetched_at,
        title: parts.title,
        section: parts.section,
        byline: parts.byline,
        published_at: parts.published_at,
        dateline: parts.dateline,
        paragraphs: parts.paragraphs,
        related_headlines: parts.related_headlines,
        comments_closed: parts.comments_closed,
        authors: parts.authors,
        modified_at: parts.modified_at,
        language: parts.language,
        canonical_url: parts.canonical_url,
        description: parts.description,
        image_url: parts.image_url,
    };
    Ok(ParsedPage {
        quotes: quotes.quotes,
        article,
        boilerplate_lines_dropped: parts.dropped,
        replaced_invalid_bytes,
    })
}

/// The parts of an article found on a page, before ids and page fields are attached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ArticleParts {
    pub title: Option<String>,
    pub section: Option<String>,
    pub byline: Option<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub dateline: Option<String>,
    pub paragraphs: Vec<String>,
    pub related_headlines: Vec<String>,
    pub comments_closed: bool,
    pub authors: Vec<String>,
    pub modified_at: Option<DateTime<Utc>>,
    pub language: Option<String>,
    pub canonical_url: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    /// Lines left out of the article as navigation, widgets or boilerplate.
    pub dropped: usize,
}

/// Builds quote events from ticker lines, keeping the first occurrence of each symbol.
pub(crate) struct QuoteCollector<'p> {
    page_url: &'p str,
    /// The page's url, shared by its quotes (made on the first quote).
    url: Option<std::sync::Arc<str>>,
    fetched_at: DateTime<Utc>,
    /// Event ids of this page (the page's part of the hash is computed once).
    pub ids: EventIds,
    pub quotes: Vec<Quote>,
    /// The symbols seen so far, packed into integers for cheap comparison (see [`pack_symbol`]).
    seen: Vec<u128>,
    /// One bit per packed symbol seen (a 256-bit Bloom filter): a symbol whose bit is clear is
    /// new without a scan of `seen`.
    seen_bits: [u64; 4],
    /// Once a page has many quotes, the symbols seen so far, hashed (keeps hostile pages linear).
    index: Option<HashSet<String>>,
}

/// Quotes on a page before duplicate checks switch from a linear scan to a hash set.
const LINEAR_DEDUP_LIMIT: usize = 64;

/// The bit of a packed symbol in [`QuoteCollector::seen_bits`]: (word, mask).
fn seen_bit(key: u128) -> (usize, u64) {
    let mixed = ((key as u64) ^ ((key >> 64) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let bit = (mixed >> 56) as usize;
    (bit >> 6, 1 << (bit & 63))
}

/// A symbol of up to 15 bytes as one integer (bytes, then the length); `None` when longer.
fn pack_symbol(symbol: &str) -> Option<u128> {
    let b = symbol.as_bytes();
    if b.len() > 15 {
        return None;
    }
    // Assembled in a register: copying into a byte buffer and reading it back as one integer
    // stalls the CPU's store forwarding.
    let packed = b
        .iter()
        .enumerate()
        .fold(0u128, |acc, (i, &c)| acc | (u128::from(c) << (8 * i)));
    Some(packed | (b.len() as u128) << 120)
}

impl<'p> QuoteCollector<'p> {
    pub(crate) fn new(page: &'p RawPage) -> Self {
        QuoteCollector {
            page_url: &page.url,
            url: None,
            fetched_at: page.fetched_at,
            ids: EventIds::new(&page.url, page.fetched_at),
            quotes: Vec::new(),
            seen: Vec::new(),
            seen_bits: [0; 4],
            index: None,
        }
    }

    /// Adds the quote of `line` unless its symbol was already seen on this page.
    pub(crate) fn push(&mut self, line: &TickerLine<'_>) {
        let packed = pack_symbol(line.symbol);
        let duplicate = match (&self.index, packed) {
            (Some(index), _) => index.contains(line.symbol),
            (None, Some(key)) => {
                let (word, mask) = seen_bit(key);
                self.seen_bits[word] & mask != 0 && self.seen.contains(&key)
            }
            (None, None) => self.quotes.iter().any(|q| q.symbol == line.symbol),
        };
        if duplicate {
            return;
        }
        if self.index.is_none() && self.quotes.len() >= LINEAR_DEDUP_LIMIT {
            self.index = Some(self.quotes.iter().map(|q| q.symbol.to_string()).collect());
        }
        if let Some(index) = self.index.as_mut() {
            index.insert(line.symbol.to_string());
        }
        if self.quotes.is_empty() {
            self.quotes.reserve(40);
            self.seen.reserve(40);
        }
        if let Some(key) = packed {
            let (word, mask) = seen_bit(key);
            self.seen_bits[word] |= mask;
            self.seen.push(key);
        }
        self.quotes.push(Quote {
            event_id: self.ids.id(line.symbol),
            symbol: line.symbol.into(),
            kind: line.kind,
            price: line.price,
            change: line.change,
            change_pct: line.change_pct,
            direction: line.direction,
            url: self.url.get_or_insert_with(|| self.page_url.into()).clone(),
            fetched_at: self.fetched_at,
        });
    }
}

/// Decodes a body to text. The encoding is chosen by byte-order mark, then the charset of the
/// content type, then (HTML only) a `<meta>` charset, then UTF-8. Invalid sequences become
/// U+FFFD; the flag tells whether any were replaced.
fn decode<'b>(body: &'b [u8], charset: Option<&str>, is_html: bool) -> (Cow<'b, str>, bool) {
    let (encoding, bytes) = if let Some((enc, bom_len)) = Encoding::for_bom(body) {
        (enc, &body[bom_len..])
    } else {
        let declared = charset
            .and_then(|c| Encoding::for_label(c.trim().trim_matches(['"', '\'']).as_bytes()))
            .or_else(|| {
                if is_html {
                    html::sniff_meta_charset(body).map(|e| e.output_encoding())
                } else {
                    None
                }
            });
        (declared.unwrap_or(encoding_rs::UTF_8), body)
    };
    if encoding == encoding_rs::UTF_8 {
        // Fast path: valid UTF-8 is borrowed as is (checked with SIMD instructions).
        if let Ok(s) = simdutf8::basic::from_utf8(bytes) {
            return (Cow::Borrowed(s), false);
        }
    }
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    (text, had_errors)
}

/// Removes control characters other than tab, line feed and carriage return (NUL and the
/// like) from a text page; they carry no text and would end up in events.
fn strip_controls(text: Cow<'_, str>) -> Cow<'_, str> {
    let is_bad = |b: u8| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f;
    // Checked in fixed-size chunks without early exit inside a chunk, which vectorises well.
    let any_bad = text
        .as_bytes()
        .chunks(64)
        .any(|chunk| chunk.iter().fold(false, |acc, &b| acc | is_bad(b)));
    if !any_bad {
        return text;
    }
    Cow::Owned(text.chars().filter(|&c| !(c.is_ascii() && is_bad(c as u8))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, QuoteKind};

    /// An HTML page without a declared charset, parsed with the default options.
    fn parse_html_page(html: &str) -> Result<ParsedPage, ParseError> {
        parse_page(
            &page(html.as_bytes(), ContentType::Html, None),
            &ParseOptions::default(),
        )
    }

    fn page(body: &[u8], content_type: ContentType, charset: Option<&str>) -> RawPage {
        RawPage {
            url: "https://www.brecorder.com/news/1/test".into(),
            fetched_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            content_type,
            charset: charset.map(str::to_string),
            body: body.to_vec(),
        }
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(ParseError::TooLarge { size: 2, limit: 1 }.code(), "page_too_large");
        assert_eq!(ParseError::EmptyBody.code(), "empty_body");
        assert_eq!(ParseError::NoContent.code(), "no_content");
        assert_eq!(ParseError::TooDeep { limit: 1 }.code(), "html_too_deep");
    }

    #[test]
    fn defaults() {
        let o = ParseOptions::default();
        assert_eq!(o.index_symbols, ["BR100", "BR30", "KSE100", "KSE30"]);
        assert_eq!(o.max_page_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn too_large_and_empty() {
        let options = ParseOptions {
            max_page_bytes: 10,
            ..ParseOptions::default()
        };
        let p = page(b"0123456789A", ContentType::Text, None);
        assert_eq!(
            parse_page(&p, &options).unwrap_err(),
            ParseError::TooLarge { size: 11, limit: 10 }
        );
        for body in [&b""[..], b" \n\t\r\n"] {
            let p = page(body, ContentType::Text, None);
            assert_eq!(parse_page(&p, &options).unwrap_err(), ParseError::EmptyBody);
        }
        let p = page(b"\0\0\0", ContentType::Text, None);
        assert_eq!(
            parse_page(&p, &ParseOptions::default()).unwrap_err(),
            ParseError::NoContent
        );
    }

    #[test]
    fn quotes_carry_page_identity() {
        let p = page(
            "AGL 37.94 Decreased By ▼ -0.54 (-1.4%)\nKSE100 106,275 Decreased By -4795.3 (-4.32%)\n".as_bytes(),
            ContentType::Text,
            None,
        );
        let parsed = parse_page(&p, &ParseOptions::default()).unwrap();
        assert_eq!(parsed.quotes.len(), 2);
        let q = &parsed.quotes[1];
        assert_eq!(q.symbol, "KSE100");
        assert_eq!(q.kind, QuoteKind::Index);
        assert_eq!(q.direction, Direction::Down);
        assert_eq!(q.price.to_string(), "106275");
        assert_eq!(&*q.url, p.url.as_str());
        assert_eq!(q.fetched_at, p.fetched_at);
        assert_eq!(q.event_id, crate::model::event_id(&p.url, p.fetched_at, "KSE100"));
        assert_eq!(
            parsed.article.event_id,
            crate::model::event_id(&p.url, p.fetched_at, "article")
        );
        assert!(parsed.article.paragraphs.is_empty());
        assert!(!parsed.replaced_invalid_bytes);
    }

    #[test]
    fn many_distinct_and_repeated_symbols_are_deduplicated() {
        let mut body = String::new();
        for round in 0..2 {
            for i in 0..500 {
                body.push_str(&format!("S{i}LONGSYMBOLNAME{} 1.00 Increased By ▲ 0.01 (1%)\n", i % 3));
                body.push_str(&format!("S{i} {round}.00 Increased By ▲ 0.01 (1%)\n"));
            }
        }
        let parsed = parse_page(
            &page(body.as_bytes(), ContentType::Text, None),
            &ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(parsed.quotes.len(), 1000);
        assert_eq!(parsed.quotes[1].symbol, "S0");
        assert_eq!(parsed.quotes[1].price.to_string(), "0.00");
        assert_eq!(parsed.quotes[999].symbol, "S499");
        assert_eq!(parsed.quotes[998].symbol, "S499LONGSYMBOLNAME1");
    }

    #[test]
    fn text_charsets() {
        let body = b"KARACHI: Caf\xe9 owners said prices rose \x96 again.\n";
        let p = page(body, ContentType::Text, Some("windows-1252"));
        let parsed = parse_page(&p, &ParseOptions::default()).unwrap();
        assert_eq!(
            parsed.article.paragraphs,
            ["KARACHI: Café owners said prices rose – again."]
        );
        assert!(!parsed.replaced_invalid_bytes);
        let p = page(body, ContentType::Text, None);
        let parsed = parse_page(&p, &ParseOptions::default()).unwrap();
        assert_eq!(
            parsed.article.paragraphs,
            ["KARACHI: Caf\u{fffd} owners said prices rose \u{fffd} again."]
        );
        assert!(parsed.replaced_invalid_bytes);
    }

    #[test]
    fn nul_bytes_are_removed_from_text() {
        let p = page(
            "AGL 37.94 Decreased\0 By ▼ -0.54 (-1.4%)\nKARACHI: The\0 market rose today.\n".as_bytes(),
            ContentType::Text,
            None,
        );
        let parsed = parse_page(&p, &ParseOptions::default()).unwrap();
        assert_eq!(parsed.quotes.len(), 1);
        assert_eq!(parsed.article.paragraphs, ["KARACHI: The market rose today."]);
    }

    #[test]
    fn a_category_class_on_the_article_is_not_its_section_label() {
        let html = r#"<html><head><meta property="article:section" content="Markets"></head><body class="single category-markets">
            <article class="post category-markets"><h1>Gold rises</h1>
            <div class="category">Markets</div>
            <p>KARACHI: Gold rose Rs500 per tola on Monday, traders said.</p>
            <p>Silver was unchanged at Rs2,100 per tola.</p></article></body></html>"#;
        let parsed = parse_html_page(html).unwrap();
        assert_eq!(parsed.article.section.as_deref(), Some("Markets"));
        assert_eq!(
            parsed.article.paragraphs,
            [
                "KARACHI: Gold rose Rs500 per tola on Monday, traders said.",
                "Silver was unchanged at Rs2,100 per tola."
            ]
        );
    }

    #[test]
    fn times_and_authors_in_sidebars_are_not_the_article_s() {
        let html = r#"<html><body>
            <aside class="sidebar"><ul><li><a href="/old">An old story from last year</a>
              <time datetime="2023-01-05T09:00:00+05:00">5 Jan 2023</time> <span class="author">Someone Else</span></li></ul></aside>
            <article><h1>Gold rises</h1>
            <div class="byline">Recorder Report Published 28 Mar, 2024 11:04am</div>
            <p>KARACHI: Gold rose Rs500 per tola on Monday, traders said.</p></article></body></html>"#;
        let parsed = parse_html_page(html).unwrap();
        assert_eq!(parsed.article.byline.as_deref(), Some("Recorder Report"));
        assert_eq!(
            parsed.article.published_at,
            Some(DateTime::parse_from_rfc3339("2024-03-28T06:04:00Z").unwrap().to_utc())
        );
        assert_eq!(
            parsed.article.paragraphs,
            ["KARACHI: Gold rose Rs500 per tola on Monday, traders said."]
        );
    }

    #[test]
    fn an_author_box_around_the_text_keeps_its_paragraphs() {
        let html = r#"<html><body><article><h1>Gold rises</h1>
            <div class="author-content">
            <p>KARACHI: Gold rose Rs500 per tola on Monday, traders said in a statement issued after the close.</p>
            <p>Silver was unchanged at Rs2,100 per tola, the association said in its evening statement.</p>
            </div></article></body></html>"#;
        let parsed = parse_html_page(html).unwrap();
        assert_eq!(parsed.article.paragraphs.len(), 2, "{:?}", parsed.article);
        assert_eq!(parsed.article.byline, None);
    }

    #[test]
    fn a_paragraph_that_is_mostly_a_link_stays_a_paragraph() {
        let html = r#"<html><body><article><h1>Shares</h1>
            <p><a href="/x">The KSE-100 closed 500 points higher on Monday</a>, Reuters</p>
            <p>KARACHI: Brokers said volumes were thin ahead of the holiday.</p>
            <p><a href="/gold">Gold prices rise by Rs500 per tola</a> »</p>
            </article></body></html>"#;
        let parsed = parse_html_page(html).unwrap();
        assert_eq!(
            parsed.article.paragraphs,
            [
                "The KSE-100 closed 500 points higher on Monday, Reuters",
                "KARACHI: Brokers said volumes were thin ahead of the holiday."
            ]
        );
        assert_eq!(
            parsed.article.related_headlines,
            ["Gold prices rise by Rs500 per tola »"]
        );
    }

    #[test]
    fn self_closing_divs_count_as_open_elements() {
        let html = format!("<html><body>{}<p>x</p></body></html>", "<div/>".repeat(600));
        let error = parse_html_page(&html).unwrap_err();
        assert_eq!(error.code(), "html_too_deep");
    }
}
