//! Web archives (WARC, ISO 28500; `.warc` and `.warc.gz`) as a source of pages.
//!
//! The WARC framing (record headers, `Content-Length`, the blank lines between records) is read by
//! the [`warc`] crate; this module turns its records into [`RawPage`]s: `response` records (and
//! `resource` records of text or HTML) are pages, stamped with `WARC-Target-URI` and `WARC-Date`.
//! The HTTP header block of a response gives the content type and charset; the body after it is
//! de-chunked (`Transfer-Encoding: chunked`) and decompressed (`Content-Encoding: gzip` or
//! `deflate`) when needed. [`page_from_record`] is pure; [`WarcPages`] adds the reading.

use std::borrow::Cow;
use std::cell::Cell;
use std::io::{BufReader, Read};
use std::rc::Rc;

use chrono::{DateTime, Utc};

use super::pages::looks_like_html;
use crate::envelope::parse_content_type;
use crate::model::{ContentType, RawPage};

/// The most bytes a body may grow to when it is decompressed; more is refused rather than
/// filling memory (a page is at most a few MiB; see `parse.max_page_bytes`).
pub const MAX_DECODED_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Why a WARC record that should hold a page could not be read as one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WarcError {
    /// The record itself could not be read (malformed WARC headers, wrong length, truncated file).
    #[error("unreadable WARC record: {0}")]
    UnreadableRecord(String),
    /// A `response` record without `WARC-Target-URI`.
    #[error("response record without WARC-Target-URI")]
    MissingTargetUri,
    /// The HTTP header block of a response is malformed.
    #[error("malformed HTTP response: {0}")]
    InvalidHttp(String),
    /// `Transfer-Encoding: chunked` but the chunks are malformed.
    #[error("malformed chunked transfer encoding: {0}")]
    InvalidChunked(String),
    /// A `Content-Encoding` this reader does not decode (e.g. `br`).
    #[error("unsupported content encoding `{0}`")]
    UnsupportedContentEncoding(String),
    /// A compressed body that does not decompress.
    #[error("body does not decompress as {encoding}: {reason}")]
    InvalidContentEncoding {
        /// The content encoding.
        encoding: String,
        /// The decoder's error.
        reason: String,
    },
    /// The decompressed body is larger than [`MAX_DECODED_BODY_BYTES`].
    #[error("decompressed body exceeds {MAX_DECODED_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// A record (header lines and block) longer than the record limit: reading stops there.
    #[error(
        "record {ordinal} is longer than {limit} bytes (4 × parse.max_page_bytes): the rest of the file is not read"
    )]
    RecordTooLarge {
        /// Which record of the file (from 1).
        ordinal: usize,
        /// The limit in bytes.
        limit: u64,
    },
}

impl WarcError {
    /// Stable code for summaries.
    pub fn code(&self) -> &'static str {
        match self {
            WarcError::UnreadableRecord(_) => "warc_unreadable_record",
            WarcError::MissingTargetUri => "warc_missing_target_uri",
            WarcError::InvalidHttp(_) => "invalid_http_response",
            WarcError::InvalidChunked(_) => "invalid_chunked_encoding",
            WarcError::UnsupportedContentEncoding(_) => "unsupported_content_encoding",
            WarcError::InvalidContentEncoding { .. } => "invalid_content_encoding",
            WarcError::BodyTooLarge => "decoded_body_too_large",
            WarcError::RecordTooLarge { .. } => "warc_record_too_large",
        }
    }
}

/// Why a readable record is not a page (not an error: archives hold much besides pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// `warcinfo`, `request`, `metadata`, `revisit`, … records.
    NotAResponse,
    /// A response whose status is not 2xx (redirects, errors).
    HttpStatus,
    /// A response of another content type (images, scripts, style sheets, …).
    NotText,
}

impl Skip {
    /// Stable code for summaries.
    pub fn code(self) -> &'static str {
        match self {
            Skip::NotAResponse => "not_a_response",
            Skip::HttpStatus => "http_status_not_2xx",
            Skip::NotText => "not_text_or_html",
        }
    }
}

/// What one WARC record gives.
#[derive(Debug, PartialEq, Eq)]
pub enum WarcItem {
    /// A page.
    Page(RawPage),
    /// A record that is not a page.
    Skipped(Skip),
    /// A record that should be a page but cannot be read as one.
    Failed(WarcError),
}

/// The parts of a WARC record [`page_from_record`] needs.
#[derive(Debug, Clone, Copy)]
pub struct RecordParts<'a> {
    /// `WARC-Type`, e.g. `response`.
    pub warc_type: &'a str,
    /// `WARC-Target-URI`.
    pub target_uri: Option<&'a str>,
    /// `WARC-Date`.
    pub date: DateTime<Utc>,
    /// The record's own `Content-Type` (`application/http; msgtype=response` for responses).
    pub content_type: Option<&'a str>,
    /// `WARC-Identified-Payload-Type`, used when the HTTP response names no content type.
    pub identified_payload_type: Option<&'a str>,
    /// The record block: for a response, the HTTP status line, headers and body.
    pub block: &'a [u8],
}

/// Turns one WARC record into a page, a skip or an error. Pure.
pub fn page_from_record(record: &RecordParts<'_>) -> WarcItem {
    let is_response = record.warc_type.eq_ignore_ascii_case("response");
    let is_resource = record.warc_type.eq_ignore_ascii_case("resource");
    if !is_response && !is_resource {
        return WarcItem::Skipped(Skip::NotAResponse);
    }
    let Some(url) = record
        .target_uri
        .map(|uri| uri.trim().trim_start_matches('<').trim_end_matches('>'))
        .filter(|uri| !uri.is_empty())
    else {
        return if is_response {
            WarcItem::Failed(WarcError::MissingTargetUri)
        } else {
            WarcItem::Skipped(Skip::NotAResponse)
        };
    };
    if is_resource {
        return match page_type(record.content_type, record.block) {
            Some((content_type, charset)) => WarcItem::Page(RawPage {
                url: url.to_owned(),
                fetched_at: record.date,
                content_type,
                charset,
                body: record.block.to_vec(),
            }),
            None => WarcItem::Skipped(Skip::NotText),
        };
    }
    if !record.block.starts_with(b"HTTP/") {
        // dns:, ftp: and other non-HTTP responses.
        return WarcItem::Skipped(Skip::NotAResponse);
    }
    match http_response(record.block, record.identified_payload_type) {
        Ok(Response::Page {
            content_type,
            charset,
            body,
        }) => WarcItem::Page(RawPage {
            url: url.to_owned(),
            fetched_at: record.date,
            content_type,
            charset,
            body,
        }),
        Ok(Response::Skip(skip)) => WarcItem::Skipped(skip),
        Err(error) => WarcItem::Failed(error),
    }
}

enum Response {
    Page {
        content_type: ContentType,
        charset: Option<String>,
        body: Vec<u8>,
    },
    Skip(Skip),
}

/// The most HTTP headers a response may have.
const MAX_HTTP_HEADERS: usize = 256;

fn http_response(block: &[u8], identified_payload_type: Option<&str>) -> Result<Response, WarcError> {
    // httparse knows HTTP/1.x only; archives of HTTP/2 fetches may record `HTTP/2 200`.
    let block: Cow<'_, [u8]> = match block.iter().position(|b| *b == b' ') {
        Some(space) if !block.starts_with(b"HTTP/1.") => {
            let mut rewritten = b"HTTP/1.1".to_vec();
            rewritten.extend_from_slice(&block[space..]);
            Cow::Owned(rewritten)
        }
        _ => Cow::Borrowed(block),
    };
    let mut headers = vec![httparse::EMPTY_HEADER; MAX_HTTP_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let header_len = match httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true)
        .parse_response(&mut response, &block)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return Err(WarcError::InvalidHttp("the header block does not end".to_owned()))
        }
        Err(error) => return Err(WarcError::InvalidHttp(error.to_string())),
    };
    let status = response.code.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Ok(Response::Skip(Skip::HttpStatus));
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
            .next_back()
    };
    let content_type = header("content-type").filter(|value| !value.is_empty());
    let transfer_encoding = header("transfer-encoding").unwrap_or_default();
    let content_encoding = header("content-encoding").unwrap_or_default();
    let raw_body = &block[header_len..];
    let body = if transfer_encoding
        .split(',')
        .any(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
    {
        dechunk(raw_body)?
    } else {
        raw_body.to_vec()
    };
    let body = decode_content(body, &content_encoding)?;
    let declared = content_type.as_deref().or(identified_payload_type);
    match page_type(declared, &body) {
        Some((content_type, charset)) => Ok(Response::Page {
            content_type,
            charset,
            body,
        }),
        None => Ok(Response::Skip(Skip::NotText)),
    }
}

/// The page type of a body: from its declared content type, else sniffed as files are
/// ([`looks_like_html`]: HTML, anything else text). `None` when the declared type is not text or
/// HTML.
fn page_type(declared: Option<&str>, body: &[u8]) -> Option<(ContentType, Option<String>)> {
    match declared.map(str::trim).filter(|d| !d.is_empty()) {
        Some(declared) => parse_content_type(declared).ok(),
        None => {
            let html = looks_like_html(body);
            Some((if html { ContentType::Html } else { ContentType::Text }, None))
        }
    }
}

/// Removes chunked transfer encoding (RFC 9112 §7.1): hex size lines, data, CRLF; a zero size
/// ends the body (trailers are ignored).
pub fn dechunk(mut input: &[u8]) -> Result<Vec<u8>, WarcError> {
    let mut body = Vec::with_capacity(input.len());
    loop {
        let (consumed, size) = match httparse::parse_chunk_size(input) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) => return Err(WarcError::InvalidChunked("truncated chunk size".to_owned())),
            Err(_) => return Err(WarcError::InvalidChunked("invalid chunk size".to_owned())),
        };
        input = &input[consumed..];
        if size == 0 {
            return Ok(body);
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|size| *size <= input.len())
            .ok_or_else(|| WarcError::InvalidChunked("chunk longer than the data left".to_owned()))?;
        body.extend_from_slice(&input[..size]);
        input = &input[size..];
        input = input
            .strip_prefix(b"\r\n")
            .or_else(|| input.strip_prefix(b"\n"))
            .ok_or_else(|| WarcError::InvalidChunked("chunk not followed by CRLF".to_owned()))?;
    }
}

/// Undoes `Content-Encoding` (`gzip`, `x-gzip`, `deflate`; `identity` or none leaves the body).
pub fn decode_content(body: Vec<u8>, content_encoding: &str) -> Result<Vec<u8>, WarcError> {
    let mut decoded = body;
    // Codings are listed in the order they were applied; undo them last to first.
    for coding in content_encoding.split(',').map(str::trim).rev() {
        let coding = coding.to_ascii_lowercase();
        decoded = match coding.as_str() {
            "" | "identity" => decoded,
            "gzip" | "x-gzip" => inflate(flate2::read::MultiGzDecoder::new(decoded.as_slice()), &coding)?,
            "deflate" => {
                // `deflate` means zlib-wrapped deflate, but some servers send raw deflate.
                match inflate(flate2::read::ZlibDecoder::new(decoded.as_slice()), &coding) {
                    Ok(inflated) => inflated,
                    Err(WarcError::BodyTooLarge) => return Err(WarcError::BodyTooLarge),
                    Err(_) => inflate(flate2::read::DeflateDecoder::new(decoded.as_slice()), &coding)?,
                }
            }
            _ => return Err(WarcError::UnsupportedContentEncoding(coding)),
        };
    }
    Ok(decoded)
}

fn inflate(decoder: impl Read, encoding: &str) -> Result<Vec<u8>, WarcError> {
    let mut out = Vec::new();
    decoder
        .take(MAX_DECODED_BODY_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|error| WarcError::InvalidContentEncoding {
            encoding: encoding.to_owned(),
            reason: error.to_string(),
        })?;
    if out.len() as u64 > MAX_DECODED_BODY_BYTES {
        return Err(WarcError::BodyTooLarge);
    }
    Ok(out)
}

/// Bytes read ahead of the record being parsed.
const READ_AHEAD_BYTES: usize = 256 * 1024;

/// Reads the records of an (already decompressed) WARC stream one at a time, each at most a
/// limit of bytes long (its header lines too).
///
/// A record that cannot be read is reported as [`WarcError::UnreadableRecord`] and reading goes
/// on with the next one; a failing read of the stream itself (I/O error, corrupt gzip member)
/// or a record over the limit ([`WarcError::RecordTooLarge`]) ends the stream after reporting it.
pub struct WarcPages<R: Read> {
    records: warc::RecordIter<BufReader<Budgeted<R>>>,
    /// Bytes the current record may still read from the stream.
    budget: Rc<Cell<u64>>,
    record_limit: u64,
    ordinal: usize,
    finished: bool,
}

impl<R: Read> WarcPages<R> {
    /// Reads WARC records from `reader` (a `.warc.gz` must be decompressed first, e.g. with
    /// `flate2::read::MultiGzDecoder`: every record is a gzip member of its own), each at most
    /// `record_limit` bytes long.
    pub fn with_record_limit(reader: R, record_limit: u64) -> Self {
        let budget = Rc::new(Cell::new(0));
        let reader = Budgeted {
            inner: reader,
            budget: budget.clone(),
        };
        Self {
            records: warc::WarcReader::new(BufReader::with_capacity(READ_AHEAD_BYTES, reader)).iter_records(),
            budget,
            record_limit,
            ordinal: 0,
            finished: false,
        }
    }
}

/// A stream that fails once its budget of bytes is spent (the budget is renewed per record).
struct Budgeted<R> {
    inner: R,
    budget: Rc<Cell<u64>>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.budget.get();
        if left == 0 {
            return Err(std::io::Error::other("the WARC record is longer than the record limit"));
        }
        let wanted = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..wanted])?;
        self.budget.set(left - read as u64);
        Ok(read)
    }
}

impl<R: Read> Iterator for WarcPages<R> {
    type Item = WarcItem;

    fn next(&mut self) -> Option<WarcItem> {
        if self.finished {
            return None;
        }
        // The record may read its limit plus what the buffer reads ahead of it.
        self.budget.set(self.record_limit + READ_AHEAD_BYTES as u64);
        let record = self.records.next()?;
        self.ordinal += 1;
        let record = match record {
            Ok(record) => record,
            Err(warc::Error::ReadData(_)) if self.budget.get() == 0 => {
                self.finished = true;
                return Some(WarcItem::Failed(WarcError::RecordTooLarge {
                    ordinal: self.ordinal,
                    limit: self.record_limit,
                }));
            }
            Err(error) => {
                let fatal = matches!(error, warc::Error::ReadData(_) | warc::Error::UnexpectedEOB);
                self.finished = fatal;
                return Some(WarcItem::Failed(WarcError::UnreadableRecord(format!(
                    "record {}: {}",
                    self.ordinal,
                    describe(&error)
                ))));
            }
        };
        let target_uri = record.header(warc::WarcHeader::TargetURI);
        let content_type = record.header(warc::WarcHeader::ContentType);
        let payload_type = record.header(warc::WarcHeader::IdentifiedPayloadType);
        let warc_type = record.warc_type().to_string();
        Some(page_from_record(&RecordParts {
            warc_type: &warc_type,
            target_uri: target_uri.as_deref(),
            date: *record.date(),
            content_type: content_type.as_deref(),
            identified_payload_type: payload_type.as_deref(),
            block: record.body(),
        }))
    }
}

fn describe(error: &warc::Error) -> String {
    match error {
        warc::Error::ParseHeaders(_) => "malformed WARC header block".to_owned(),
        warc::Error::MissingHeader(header) => format!("missing WARC header {header}"),
        warc::Error::MalformedHeader(header, reason) => format!("malformed WARC header {header}: {reason}"),
        warc::Error::ReadData(io) => format!("read failed: {io}"),
        warc::Error::ReadOverflow => "block longer than its Content-Length".to_owned(),
        warc::Error::UnexpectedEOB => "file ends inside the record".to_owned(),
    }
}

/// Whether the start of a (decompressed) stream looks like a WARC file.
pub fn looks_like_warc(head: &[u8]) -> bool {
    head.starts_with(b"WARC/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2024-12-08T10:15:00Z".parse().unwrap()
    }

    fn response(block: &[u8]) -> WarcItem {
        page_from_record(&RecordParts {
            warc_type: "response",
            target_uri: Some("https://example.com/a"),
            date: at(),
            content_type: Some("application/http; msgtype=response"),
            identified_payload_type: None,
            block,
        })
    }

    fn page(item: WarcItem) -> RawPage {
        match item {
            WarcItem::Page(page) => page,
            other => panic!("not a page: {other:?}"),
        }
    }

    #[test]
    fn response_gives_content_type_charset_and_body() {
        let page = page(response(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=windows-1252\r\nContent-Length: 9\r\n\r\n<p>caf\xe9</p>",
        ));
        assert_eq!(page.url, "https://example.com/a");
        assert_eq!(page.fetched_at, at());
        assert_eq!(page.content_type, ContentType::Html);
        assert_eq!(page.charset.as_deref(), Some("windows-1252"));
        assert_eq!(page.body, b"<p>caf\xe9</p>");
    }

    #[test]
    fn chunked_and_gzip_are_undone() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"AGL 37.94 Decreased By -0.54 (-1.4%)\n").unwrap();
        let compressed = gz.finish().unwrap();
        let (first, second) = compressed.split_at(10);
        let mut block = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n".to_vec();
        for chunk in [first, second] {
            block.extend_from_slice(format!("{:x};ext=1\r\n", chunk.len()).as_bytes());
            block.extend_from_slice(chunk);
            block.extend_from_slice(b"\r\n");
        }
        block.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
        let page = page(response(&block));
        assert_eq!(page.body, b"AGL 37.94 Decreased By -0.54 (-1.4%)\n");
        assert_eq!(page.content_type, ContentType::Text);
    }

    #[test]
    fn raw_and_zlib_deflate_both_decode() {
        use std::io::Write as _;
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(b"hello").unwrap();
        assert_eq!(decode_content(zlib.finish().unwrap(), "deflate").unwrap(), b"hello");
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(b"hello").unwrap();
        assert_eq!(decode_content(raw.finish().unwrap(), "deflate").unwrap(), b"hello");
        assert_eq!(
            decode_content(b"x".to_vec(), "br").unwrap_err().code(),
            "unsupported_content_encoding"
        );
        assert_eq!(
            decode_content(b"not gzip".to_vec(), "gzip").unwrap_err().code(),
            "invalid_content_encoding"
        );
    }

    #[test]
    fn non_pages_are_skipped_not_failed() {
        assert_eq!(
            response(b"HTTP/1.1 301 Moved\r\nLocation: /b\r\n\r\n"),
            WarcItem::Skipped(Skip::HttpStatus)
        );
        assert_eq!(
            response(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n\x89PNG"),
            WarcItem::Skipped(Skip::NotText)
        );
        let request = RecordParts {
            warc_type: "request",
            target_uri: Some("https://example.com/a"),
            date: at(),
            content_type: None,
            identified_payload_type: None,
            block: b"GET / HTTP/1.1\r\n\r\n",
        };
        assert_eq!(page_from_record(&request), WarcItem::Skipped(Skip::NotAResponse));
    }

    #[test]
    fn malformed_responses_fail_with_codes() {
        assert_eq!(
            response(b"HTTP/1.1 2x0 OK\r\nContent-Type: text/plain\r\n\r\nbody").code_of_failure(),
            Some("invalid_http_response")
        );
        assert_eq!(
            response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc").code_of_failure(),
            Some("invalid_chunked_encoding")
        );
        let no_uri = RecordParts {
            warc_type: "response",
            target_uri: None,
            date: at(),
            content_type: None,
            identified_payload_type: None,
            block: b"HTTP/1.1 200 OK\r\n\r\nx",
        };
        assert_eq!(
            page_from_record(&no_uri).code_of_failure(),
            Some("warc_missing_target_uri")
        );
    }

    #[test]
    fn http2_status_lines_and_sniffed_html_are_accepted() {
        let page = page(response(b"HTTP/2 200\r\nServer: x\r\n\r\n<!DOCTYPE html><p>x</p>"));
        assert_eq!(page.content_type, ContentType::Html);
        assert_eq!(page.charset, None);
    }

    #[test]
    fn responses_without_a_content_type_are_sniffed_as_files_are() {
        let sniffed = |body: &[u8]| {
            let mut block = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n".to_vec();
            block.extend_from_slice(body);
            page(response(&block)).content_type
        };
        let xhtml = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.1//EN\">";
        assert_eq!(sniffed(xhtml), ContentType::Html);
        assert_eq!(sniffed(b"<!-- saved -->\n<html><p>x</p>"), ContentType::Html);
        assert_eq!(sniffed(b"<?xml version=\"1.0\"?><rss/>"), ContentType::Text);
        assert_eq!(sniffed(b"AGL 37.94"), ContentType::Text);
    }

    #[test]
    fn unreadable_records_are_reported_and_reading_goes_on() {
        let record = |id: &str, date: &str, body: &str| {
            let block = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n{body}");
            format!(
                "WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{id}>\r\nWARC-Date: {date}\r\n\
                 WARC-Target-URI: https://example.com/{id}\r\nContent-Type: application/http; msgtype=response\r\n\
                 Content-Length: {}\r\n\r\n{block}\r\n\r\n",
                block.len()
            )
        };
        let file = [
            record("1", "2024-12-08T10:15:00Z", "one"),
            record("2", "yesterday", "two"),
            record("3", "2024-12-08T10:16:00Z", "three"),
        ]
        .concat();
        let items: Vec<WarcItem> = WarcPages::with_record_limit(file.as_bytes(), 1 << 20).collect();
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(page_of(&items[0]).body, b"one");
        assert_eq!(items[1].code_of_failure(), Some("warc_unreadable_record"));
        assert_eq!(page_of(&items[2]).body, b"three");
    }

    #[test]
    fn records_longer_than_the_limit_end_the_reading() {
        let first = "WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:1>\r\n\
                     WARC-Date: 2024-12-08T10:15:00Z\r\nWARC-Target-URI: https://example.com/1\r\n\
                     Content-Type: text/plain\r\nContent-Length: 3\r\n\r\none\r\n\r\n";
        // A header line of 2 MiB.
        let mut long_header = first.as_bytes().to_vec();
        long_header.extend_from_slice(b"WARC/1.1\r\nWARC-Type: resource\r\nX-Long: ");
        long_header.extend(vec![b'x'; 2 << 20]);
        // A record declaring 10 GiB, followed by 2 MiB of its block.
        let mut long_block = first.as_bytes().to_vec();
        long_block.extend_from_slice(
            b"WARC/1.1\r\nWARC-Type: resource\r\nWARC-Record-ID: <urn:uuid:2>\r\n\
              WARC-Date: 2024-12-08T10:15:00Z\r\nContent-Length: 10737418240\r\n\r\n",
        );
        long_block.extend(vec![b'y'; 2 << 20]);
        for file in [long_header, long_block] {
            let items: Vec<WarcItem> = WarcPages::with_record_limit(file.as_slice(), 64 * 1024).collect();
            assert_eq!(items.len(), 2, "{:?}", items.last());
            assert_eq!(page_of(&items[0]).body, b"one");
            assert_eq!(
                items[1],
                WarcItem::Failed(WarcError::RecordTooLarge {
                    ordinal: 2,
                    limit: 64 * 1024
                })
            );
        }
    }

    fn page_of(item: &WarcItem) -> &RawPage {
        match item {
            WarcItem::Page(page) => page,
            other => panic!("not a page: {other:?}"),
        }
    }

    impl WarcItem {
        fn code_of_failure(&self) -> Option<&'static str> {
            match self {
                WarcItem::Failed(error) => Some(error.code()),
                _ => None,
            }
        }
    }
}
