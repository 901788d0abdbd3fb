//! Data only: the raw page that comes in and the events that go out.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

/// How the body of a raw page is to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentType {
    /// Text already extracted from the page, one block per line.
    Text,
    /// The page's HTML markup.
    Html,
}

/// A page as a crawler published it: where and when it was fetched, and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPage {
    /// The address the page was fetched from.
    pub url: String,
    /// When the crawler fetched the page; quotes are stamped with this time.
    pub fetched_at: DateTime<Utc>,
    /// Whether `body` is extracted text or HTML.
    pub content_type: ContentType,
    /// The character set named by the `content-type` (`charset=`), if any.
    pub charset: Option<String>,
    /// The page body as bytes, in `charset` (UTF-8 when none is named).
    pub body: Vec<u8>,
}

/// Whether a ticker line is a single stock or a market index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QuoteKind {
    /// A listed company's share.
    Stock,
    /// A market index such as KSE100.
    Index,
}

/// Which way the price moved, as the ticker's words say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Direction {
    /// `Increased By`.
    Up,
    /// `Decreased By`.
    Down,
    /// `No Change`.
    Unchanged,
}

/// One line of a page's market ticker strip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// Deterministic id: the same page (url + fetch time) and symbol always give the same id.
    pub event_id: uuid::Uuid,
    /// Ticker symbol as printed (`KSE100`, `AGL`); held inline, without an allocation, up to
    /// 24 bytes.
    pub symbol: compact_str::CompactString,
    /// Stock or index.
    pub kind: QuoteKind,
    /// Last price or index level, exact, without thousands separators.
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// Absolute change, signed.
    #[serde(with = "rust_decimal::serde::str")]
    pub change: Decimal,
    /// Change in percent, signed (`-4.32` for `(-4.32%)`).
    #[serde(with = "rust_decimal::serde::str")]
    pub change_pct: Decimal,
    /// Direction as the words say it.
    pub direction: Direction,
    /// The page the quote was read from (shared by all quotes of the page).
    pub url: std::sync::Arc<str>,
    /// When the page was fetched: the time the quote was observed.
    pub fetched_at: DateTime<Utc>,
}

/// The news article of a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Article {
    /// Deterministic id derived from the page's url and fetch time.
    pub event_id: uuid::Uuid,
    /// The page the article was read from.
    pub url: String,
    /// When the page was fetched.
    pub fetched_at: DateTime<Utc>,
    /// The headline, when the page shows one.
    pub title: Option<String>,
    /// The site section (`Markets`, `Pakistan`), when shown.
    pub section: Option<String>,
    /// Who wrote it (`Reuters`, `BR Web Desk`), when shown.
    pub byline: Option<String>,
    /// When the article was published, from its byline or header, when shown.
    pub published_at: Option<DateTime<Utc>>,
    /// The place the story was filed from (`MOSCOW`), when the first paragraph opens with one.
    pub dateline: Option<String>,
    /// Body paragraphs, verbatim, in page order.
    pub paragraphs: Vec<String>,
    /// Headlines of other articles linked from within the body.
    pub related_headlines: Vec<String>,
    /// Whether the page says comments are closed.
    pub comments_closed: bool,
    /// Every author, from structured data (JSON-LD, meta tags) or else the visible byline.
    pub authors: Vec<String>,
    /// When the article was last modified, when the page says.
    pub modified_at: Option<DateTime<Utc>>,
    /// The article's language (`en`, `de-DE`), as the page declares it.
    pub language: Option<String>,
    /// The page's canonical address, when it names one.
    pub canonical_url: Option<String>,
    /// The page's summary of the article (`og:description`, `description`).
    pub description: Option<String>,
    /// The address of the article's lead image.
    pub image_url: Option<String>,
}

/// Everything one page splits into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPage {
    /// Distinct ticker quotes in page order.
    pub quotes: Vec<Quote>,
    /// The article.
    pub article: Article,
    /// Lines recognised as navigation, widgets or boilerplate and left out of the article.
    pub boilerplate_lines_dropped: usize,
    /// Invalid byte sequences replaced while decoding the body.
    pub replaced_invalid_bytes: bool,
}

/// The deterministic id of an event: the same page (url and fetch time) and the same key
/// (a symbol, or `article`) always give the same id, so consumers can drop redeliveries.
///
/// A UUID version 8 (RFC 9562, custom) whose free 122 bits are those of the XXH3 128-bit hash
/// (seed 0, canonical big-endian bytes) of the name `"{url}\n{fetched_at in ms}\n{key}"`: in
/// Python, `xxhash.xxh3_128_digest(name)` with the version and variant bits set.
pub fn event_id(url: &str, fetched_at: DateTime<Utc>, key: &str) -> uuid::Uuid {
    EventIds::new(url, fetched_at).id(key)
}

/// The ids of all events of one page: the page's part of the name is written once and reused
/// for every key.
#[derive(Clone)]
pub struct EventIds {
    /// `"{url}\n{fetched_at in ms}\n"`, followed by the key of the id last computed.
    name: Vec<u8>,
    /// Length of the page's part of `name`.
    page_len: usize,
}

impl EventIds {
    /// Prepares the ids of a page.
    pub fn new(url: &str, fetched_at: DateTime<Utc>) -> Self {
        use std::io::Write as _;
        let mut name = Vec::with_capacity(url.len() + 48);
        name.extend_from_slice(url.as_bytes());
        writeln!(name, "\n{}", fetched_at.timestamp_millis()).expect("writing to a Vec cannot fail");
        let page_len = name.len();
        Self { name, page_len }
    }

    /// The id of the event with this key (a symbol, or `article`).
    pub fn id(&mut self, key: &str) -> uuid::Uuid {
        self.name.truncate(self.page_len);
        self.name.extend_from_slice(key.as_bytes());
        let hash = xxhash_rust::xxh3::xxh3_128(&self.name);
        uuid::Builder::from_custom_bytes(hash.to_be_bytes()).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v8_of_the_xxh3_hash_of_the_documented_name() {
        let at = DateTime::from_timestamp_millis(1_733_652_900_000).unwrap();
        let url = "https://www.brecorder.com/news/1";
        let name = format!("{url}\n1733652900000\nKSE100");
        let mut bytes = xxhash_rust::xxh3::xxh3_128(name.as_bytes()).to_be_bytes();
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let expected = uuid::Uuid::from_bytes(bytes);
        assert_eq!(event_id(url, at, "KSE100"), expected);
        let mut ids = EventIds::new(url, at);
        assert_eq!(ids.id("KSE100"), expected);
        assert_ne!(ids.id("KSE30"), expected);
        assert_eq!(
            ids.id("KSE100"),
            expected,
            "the key of the previous id must not leak into the next"
        );
        assert_eq!(expected.get_version_num(), 8);
    }
}
