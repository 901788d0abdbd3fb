//! Pure decoding of a raw page message (value + headers) into a [`RawPage`].
//!
//! The input contract: the value is a JSON envelope
//! `{"url": "...", "fetched_at": "<RFC 3339>", "content_type": "text/plain" | "text/html", "body": "..."}`,
//! or a bare body with `url`, `fetched-at` and `content-type` headers.
//!
//! Forward compatible: fields the envelope does not define are ignored (and reported, so that
//! a crawler adding a field does not send every page to the dead-letter topic), and a UTF-8
//! byte-order mark before the JSON is skipped.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::metrics::FailureCode;
use crate::model::{ContentType, RawPage};

/// Why a message is not a page.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The message has no value at all.
    #[error("message has no value")]
    EmptyMessage,
    /// The value looks like JSON but is not a valid envelope.
    #[error("invalid JSON envelope: {0}")]
    InvalidEnvelope(String),
    /// Neither a JSON envelope nor a bare body with page headers.
    #[error("not a page: value is not a JSON envelope and the `url` header is missing")]
    NotAnEnvelope,
    /// A required header of a bare body is missing.
    #[error("bare body without the `{0}` header")]
    MissingHeader(&'static str),
    /// A header is not UTF-8.
    #[error("header `{0}` is not UTF-8")]
    InvalidHeader(&'static str),
    /// `fetched_at` is not an RFC 3339 timestamp.
    #[error("fetched_at `{0}` is not an RFC 3339 timestamp")]
    InvalidFetchedAt(String),
    /// The content type is neither text nor HTML.
    #[error("unsupported content type `{0}` (expected text/plain or text/html)")]
    UnsupportedContentType(String),
}

impl DecodeError {
    /// Stable code for metrics and dead-letter headers.
    pub fn code(&self) -> &'static str {
        self.failure_code().as_str()
    }

    /// The failure code of a message that is not a page.
    pub fn failure_code(&self) -> FailureCode {
        match self {
            DecodeError::EmptyMessage => FailureCode::EmptyMessage,
            DecodeError::InvalidEnvelope(_) => FailureCode::InvalidEnvelope,
            DecodeError::NotAnEnvelope => FailureCode::NotAnEnvelope,
            DecodeError::MissingHeader(_) => FailureCode::MissingHeader,
            DecodeError::InvalidHeader(_) => FailureCode::InvalidHeader,
            DecodeError::InvalidFetchedAt(_) => FailureCode::InvalidFetchedAt,
            DecodeError::UnsupportedContentType(_) => FailureCode::UnsupportedContentType,
        }
    }
}

/// The JSON envelope, as published by crawlers. Other fields are ignored.
#[derive(Debug, Deserialize)]
struct Envelope {
    url: String,
    fetched_at: String,
    #[serde(default = "default_content_type")]
    content_type: String,
    body: String,
}

/// An envelope without `content_type` holds extracted text.
fn default_content_type() -> String {
    "text/plain".to_owned()
}

/// The UTF-8 byte-order mark some writers put before JSON.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A decoded page and the envelope fields that were ignored.
#[derive(Debug)]
pub struct Decoded {
    /// The page.
    pub page: RawPage,
    /// Names of the JSON envelope's fields pagesplit does not know, in the order they came.
    pub unknown_fields: Vec<String>,
}

/// Decodes one message. `headers` are the Kafka record headers (name, value).
pub fn decode_message<'a>(
    value: Option<&[u8]>,
    headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Result<RawPage, DecodeError> {
    decode_message_reporting_unknown_fields(value, headers).map(|decoded| decoded.page)
}

/// Decodes one message like [`decode_message`], and names the envelope fields it ignored.
pub fn decode_message_reporting_unknown_fields<'a>(
    value: Option<&[u8]>,
    headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Result<Decoded, DecodeError> {
    let value = match value {
        Some(value) if !value.is_empty() => value,
        _ => return Err(DecodeError::EmptyMessage),
    };
    let mut url = None;
    let mut fetched_at = None;
    let mut content_type = None;
    for (name, header) in headers {
        let slot = match name.to_ascii_lowercase().as_str() {
            "url" => (&mut url, "url"),
            "fetched-at" | "fetched_at" => (&mut fetched_at, "fetched-at"),
            "content-type" | "content_type" => (&mut content_type, "content-type"),
            _ => continue,
        };
        let text = std::str::from_utf8(header.unwrap_or_default()).map_err(|_| DecodeError::InvalidHeader(slot.1))?;
        *slot.0 = Some(text.to_owned());
    }
    let json = value.strip_prefix(UTF8_BOM).unwrap_or(value);
    if url.is_none() && json.trim_ascii_start().first() == Some(&b'{') {
        let mut unknown_fields = Vec::new();
        let invalid = |error: serde_json::Error| DecodeError::InvalidEnvelope(error.to_string());
        let mut json = serde_json::Deserializer::from_slice(json);
        let envelope: Envelope =
            serde_ignored::deserialize(&mut json, |path| unknown_fields.push(path.to_string())).map_err(invalid)?;
        // One object and nothing after it (JSON lines are several envelopes, not one).
        json.end().map_err(invalid)?;
        let (content_type, _charset) = parse_content_type(&envelope.content_type)?;
        let page = RawPage {
            url: envelope.url,
            fetched_at: parse_fetched_at(&envelope.fetched_at)?,
            content_type,
            // The JSON string is already Unicode (UTF-8 bytes here): a `<meta charset>` the page
            // still carries from before it was transcoded no longer applies.
            charset: Some("utf-8".to_owned()),
            body: envelope.body.into_bytes(),
        };
        return Ok(Decoded { page, unknown_fields });
    }
    let url = url.ok_or(DecodeError::NotAnEnvelope)?;
    let fetched_at = fetched_at.ok_or(DecodeError::MissingHeader("fetched-at"))?;
    let content_type = content_type.ok_or(DecodeError::MissingHeader("content-type"))?;
    let (content_type, charset) = parse_content_type(&content_type)?;
    let page = RawPage {
        url,
        fetched_at: parse_fetched_at(&fetched_at)?,
        content_type,
        charset,
        body: value.to_vec(),
    };
    Ok(Decoded {
        page,
        unknown_fields: Vec::new(),
    })
}

fn parse_fetched_at(text: &str) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| DecodeError::InvalidFetchedAt(text.chars().take(64).collect()))
}

/// `text/html; charset=windows-1252` → (Html, Some("windows-1252")).
pub fn parse_content_type(text: &str) -> Result<(ContentType, Option<String>), DecodeError> {
    let mut parts = text.split(';');
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let content_type = match media.as_str() {
        "text/plain" | "text" => ContentType::Text,
        "text/html" | "application/xhtml+xml" | "html" => ContentType::Html,
        _ => return Err(DecodeError::UnsupportedContentType(text.chars().take(64).collect())),
    };
    let charset = parts.find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_owned())
    });
    Ok((content_type, charset))
}

/// The JSON envelope of a page, as `replay` and the demo publish it.
pub fn encode_envelope(url: &str, fetched_at: DateTime<Utc>, content_type: &str, body: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "url": url,
        "fetched_at": fetched_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "content_type": content_type,
        "body": body,
    }))
    .expect("a JSON object of strings serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_envelope() {
        let value = encode_envelope(
            "https://www.brecorder.com/news/1",
            "2024-12-08T10:15:00Z".parse().unwrap(),
            "text/plain",
            "AGL 37.94 Decreased By ▼ -0.54 (-1.4%)",
        );
        let page = decode_message(Some(&value), []).unwrap();
        assert_eq!(page.url, "https://www.brecorder.com/news/1");
        assert_eq!(page.fetched_at.timestamp(), 1_733_652_900);
        assert_eq!(page.content_type, ContentType::Text);
        assert!(page.body.starts_with("AGL 37.94".as_bytes()));
        assert_eq!(
            page.charset.as_deref(),
            Some("utf-8"),
            "an envelope's body is Unicode whatever <meta> says"
        );
    }

    #[test]
    fn bare_body_with_headers() {
        let headers = [
            ("url", Some(&b"https://example.com/a"[..])),
            ("fetched-at", Some(&b"2024-12-08T15:15:00+05:00"[..])),
            ("content-type", Some(&b"text/html; charset=windows-1252"[..])),
        ];
        let page = decode_message(Some(b"<html>\xe9</html>"), headers).unwrap();
        assert_eq!(page.content_type, ContentType::Html);
        assert_eq!(page.charset.as_deref(), Some("windows-1252"));
        assert_eq!(page.fetched_at.to_rfc3339(), "2024-12-08T10:15:00+00:00");
        assert_eq!(page.body, b"<html>\xe9</html>");
    }

    #[test]
    fn unknown_envelope_fields_are_ignored_and_named() {
        let value = br#"{"url":"https://example.com/a","crawler":{"id":7,"tags":["x"]},"fetched_at":"2024-12-08T10:15:00Z","body":"AGL 37.94","lang":"en"}"#;
        let decoded = decode_message_reporting_unknown_fields(Some(value), []).unwrap();
        assert_eq!(decoded.unknown_fields, ["crawler", "lang"]);
        assert_eq!(decoded.page.url, "https://example.com/a");
        assert_eq!(decoded.page.body, b"AGL 37.94");
        assert_eq!(decoded.page.content_type, ContentType::Text);
        let known = encode_envelope("u", "2024-12-08T10:15:00Z".parse().unwrap(), "text/html", "<p>x</p>");
        let decoded = decode_message_reporting_unknown_fields(Some(&known), []).unwrap();
        assert!(decoded.unknown_fields.is_empty());
        // A known field of the wrong type is still an invalid envelope.
        let value = br#"{"url":"u","fetched_at":"2024-12-08T10:15:00Z","body":"x","content_type":7,"extra":1}"#;
        assert_eq!(decode_message(Some(value), []).unwrap_err().code(), "invalid_envelope");
    }

    #[test]
    fn anything_after_the_envelope_makes_it_invalid() {
        let mut value = encode_envelope("u", "2024-12-08T10:15:00Z".parse().unwrap(), "text/plain", "x");
        value.extend_from_slice(b"\n{\"url\":\"v\"}");
        assert_eq!(decode_message(Some(&value), []).unwrap_err().code(), "invalid_envelope");
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let mut value = UTF8_BOM.to_vec();
        value.extend(encode_envelope(
            "https://example.com/bom",
            "2024-12-08T10:15:00Z".parse().unwrap(),
            "text/plain",
            "AGL 37.94",
        ));
        let page = decode_message(Some(&value), []).unwrap();
        assert_eq!(page.url, "https://example.com/bom");
        assert_eq!(page.fetched_at.timestamp(), 1_733_652_900);
        assert_eq!(page.body, b"AGL 37.94");
        // Without a JSON object after it, still not an envelope.
        assert_eq!(
            decode_message(Some(b"\xEF\xBB\xBFhello"), []).unwrap_err().code(),
            "not_an_envelope"
        );
    }

    #[test]
    fn bad_messages_have_codes() {
        assert_eq!(decode_message(None, []).unwrap_err().code(), "empty_message");
        assert_eq!(
            decode_message(Some(b"hello"), []).unwrap_err().code(),
            "not_an_envelope"
        );
        assert_eq!(
            decode_message(Some(b"{\"url\": 1}"), []).unwrap_err().code(),
            "invalid_envelope"
        );
        assert_eq!(
            decode_message(Some(b"{not json"), []).unwrap_err().code(),
            "invalid_envelope"
        );
        let value = br#"{"url":"u","fetched_at":"yesterday","content_type":"text/plain","body":"x"}"#;
        assert_eq!(
            decode_message(Some(value), []).unwrap_err().code(),
            "invalid_fetched_at"
        );
        let value = br#"{"url":"u","fetched_at":"2024-01-01T00:00:00Z","content_type":"image/png","body":"x"}"#;
        assert_eq!(
            decode_message(Some(value), []).unwrap_err().code(),
            "unsupported_content_type"
        );
        let headers = [("url", Some(&b"u"[..]))];
        assert_eq!(
            decode_message(Some(b"body"), headers).unwrap_err().code(),
            "missing_header"
        );
    }
}
