//! Pages from the bytes of one file or of standard input: a JSON envelope, JSON lines of
//! envelopes, or a plain text or HTML page; and the one test of whether markup is HTML.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::envelope::{decode_message, DecodeError};
use crate::model::{ContentType, RawPage};

/// Where a page read from a file claims to come from.
#[derive(Debug, Clone, Default)]
pub struct PageDefaults {
    /// Overrides the `file://` URL of plain files.
    pub url: Option<String>,
    /// Overrides the fetch time of plain files (default: the file's modification time).
    pub fetched_at: Option<DateTime<Utc>>,
}

/// Reads the pages of one input: a JSON envelope, JSON lines of envelopes, or a plain text or
/// HTML page (HTML by extension or by [`looks_like_html`]).
pub fn pages_from_bytes(
    bytes: &[u8],
    path: Option<&Path>,
    defaults: &PageDefaults,
) -> Vec<Result<RawPage, DecodeError>> {
    let trimmed = bytes.trim_ascii_start();
    if trimmed.first() == Some(&b'{') {
        let whole = decode_message(Some(bytes), []);
        if whole.is_ok() {
            return vec![whole];
        }
        return bytes
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .map(|line| decode_message(Some(line), []))
            .collect();
    }
    let is_html = path
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
        || looks_like_html(trimmed);
    let url = defaults.url.clone().unwrap_or_else(|| match path {
        Some(path) => format!(
            "file://{}",
            std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
        ),
        None => "stdin:".to_owned(),
    });
    let fetched_at = defaults.fetched_at.unwrap_or_else(|| {
        path.and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok())
            .map(DateTime::<Utc>::from)
            .unwrap_or_else(Utc::now)
    });
    vec![Ok(RawPage {
        url,
        fetched_at,
        content_type: if is_html { ContentType::Html } else { ContentType::Text },
        charset: None,
        body: bytes.to_vec(),
    })]
}

/// Whether markup that names no content type is HTML: it starts (after whitespace, an XML
/// declaration and comments) with `<!doctype html` (HTML 5, XHTML and HTML 4 doctypes alike) or
/// `<html`. Used for files, standard input and WARC responses without a `Content-Type`.
pub fn looks_like_html(mut bytes: &[u8]) -> bool {
    loop {
        bytes = bytes.trim_ascii_start();
        let skip_to = |end: &[u8], bytes: &[u8]| memchr::memmem::find(bytes, end).map(|at| at + end.len());
        let rest = if bytes.starts_with(b"<?") {
            skip_to(b"?>", bytes)
        } else if bytes.starts_with(b"<!--") {
            skip_to(b"-->", bytes)
        } else {
            break;
        };
        match rest {
            Some(at) => bytes = &bytes[at..],
            None => return false,
        }
    }
    let starts = |prefix: &[u8]| {
        bytes
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    starts(b"<!doctype html") || starts(b"<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_told_from_text_by_its_start() {
        for html in [
            "<!DOCTYPE html>\n<html>",
            "  <!doctype HTML><p>x",
            "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"x\">",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.1//EN\">",
            "<!-- saved from url=(0042)https://www.brecorder.com/ -->\n<html lang=\"en\">",
            "<HTML><BODY>",
        ] {
            assert!(looks_like_html(html.as_bytes()), "{html}");
        }
        for text in [
            "AGL 37.94 Decreased By ▼ -0.54 (-1.4%)",
            "<!-- a comment never closed <html>",
            "<?xml version=\"1.0\"?><rss>",
            "<htm",
            "",
        ] {
            assert!(!looks_like_html(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn files_are_html_by_extension_or_content() {
        let dir = tempfile::tempdir().unwrap();
        let defaults = PageDefaults {
            url: Some("https://example.com/p".to_owned()),
            fetched_at: Some("2024-12-08T10:15:00Z".parse().unwrap()),
        };
        let page = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, body).unwrap();
            let mut pages = pages_from_bytes(body.as_bytes(), Some(&path), &defaults);
            assert_eq!(pages.len(), 1);
            pages.remove(0).unwrap()
        };
        assert_eq!(page("a.htm", "<p>x</p>").content_type, ContentType::Html);
        assert_eq!(
            page("b.txt", "<?xml version=\"1.0\"?>\n<html>").content_type,
            ContentType::Html
        );
        let text = page("c.txt", "AGL 37.94");
        assert_eq!(text.content_type, ContentType::Text);
        assert_eq!(text.url, "https://example.com/p");
        assert_eq!(text.fetched_at, defaults.fetched_at.unwrap());
    }
}
