//! Fuzzes `pagesplit::envelope::decode_message` (JSON envelopes and bare bodies with headers),
//! then parses every page it accepts.
//!
//! Input: first byte = selector, then `url 0xFF fetched-at 0xFF content-type 0xFF value`
//! (0xFF never occurs in UTF-8, so it cannot cut a valid header). Selector bits:
//! 0: no value at all; 1: send `url`; 2: send `fetched-at`; 3: send `content-type`;
//! 4: spell the header names differently (`URL`, `fetched_at`, `Content_Type`);
//! 5: send the `url` header without a value; 6: add an unrelated header.

#![no_main]

use chrono::SubsecRound;
use libfuzzer_sys::fuzz_target;
use pagesplit::envelope::{decode_message, encode_envelope};
use pagesplit::model::ContentType;
use pagesplit_fuzz::{check_page, options};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(4, |&b| b == 0xFF);
    let url = parts.next().unwrap_or_default();
    let fetched_at = parts.next().unwrap_or_default();
    let content_type = parts.next().unwrap_or_default();
    let value = parts.next().unwrap_or_default();

    let alternative = selector & 0x10 != 0;
    let mut headers: Vec<(&str, Option<&[u8]>)> = Vec::new();
    if selector & 0x40 != 0 {
        headers.push(("x-crawler", Some(b"fuzz")));
    }
    if selector & 0x02 != 0 {
        let header = if selector & 0x20 != 0 { None } else { Some(url) };
        headers.push((if alternative { "URL" } else { "url" }, header));
    }
    if selector & 0x04 != 0 {
        headers.push((if alternative { "fetched_at" } else { "fetched-at" }, Some(fetched_at)));
    }
    if selector & 0x08 != 0 {
        headers.push((
            if alternative { "Content_Type" } else { "content-type" },
            Some(content_type),
        ));
    }
    let value = if selector & 0x01 != 0 { None } else { Some(value) };

    let first = decode_message(value, headers.iter().copied());
    let second = decode_message(value, headers.iter().copied());
    assert_eq!(first, second, "decode_message is not deterministic");
    let Ok(page) = first else {
        return;
    };

    let has_url_header = headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("url"));
    if !has_url_header {
        // A JSON envelope: its body is Unicode already, so the page is read as UTF-8 whatever a
        // `<meta>` charset says; and it survives a round trip through `encode_envelope` (which
        // writes the fetch time in milliseconds).
        assert_eq!(
            page.charset.as_deref(),
            Some("utf-8"),
            "JSON envelope page is not marked UTF-8"
        );
        let body = std::str::from_utf8(&page.body).expect("JSON envelope body is UTF-8");
        let year = chrono::Datelike::year(&page.fetched_at);
        if (1..=9999).contains(&year) {
            let media = match page.content_type {
                ContentType::Text => "text/plain",
                ContentType::Html => "text/html",
            };
            let encoded = encode_envelope(&page.url, page.fetched_at, media, body);
            let again = decode_message(Some(&encoded), []).expect("re-encoded envelope decodes");
            let mut expected = page.clone();
            expected.fetched_at = page.fetched_at.trunc_subsecs(3);
            assert_eq!(again, expected, "envelope does not survive encode_envelope");
        }
    }

    check_page(&page, &options());
});
