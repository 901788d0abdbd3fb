//! Offline splitting of page files (no Kafka): what the worker would publish, as JSON lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::envelope::decode_message;
use crate::model::{Article, ContentType, ParsedPage, Quote, RawPage};
use crate::parse::{parse_page, ParseOptions};

/// One event as a JSON line; field names are the Avro schemas' names.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum JsonEvent<'a> {
    /// A quote event.
    Quote(&'a Quote),
    /// An article event.
    Article(&'a Article),
}

/// Counts for the summary printed at the end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Pages read.
    pub pages: usize,
    /// Quote events.
    pub quotes: usize,
    /// Article events.
    pub articles: usize,
    /// Pages that failed, by error code.
    pub errors: BTreeMap<&'static str, usize>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pages={} quotes={} articles={} errors={}",
            self.pages,
            self.quotes,
            self.articles,
            self.errors.values().sum::<usize>()
        )?;
        for (code, count) in &self.errors {
            write!(f, " {code}={count}")?;
        }
        Ok(())
    }
}

/// Where a page read from a file claims to come from.
#[derive(Debug, Clone, Default)]
pub struct PageDefaults {
    /// Overrides the `file://` URL of plain files.
    pub url: Option<String>,
    /// Overrides the fetch time of plain files (default: the file's modification time).
    pub fetched_at: Option<DateTime<Utc>>,
}

/// Reads the pages of one input: a JSON envelope, JSON lines of envelopes, or a plain text or
/// HTML page (by extension).
pub fn pages_from_bytes(
    bytes: &[u8],
    path: Option<&Path>,
    defaults: &PageDefaults,
) -> Vec<Result<RawPage, crate::envelope::DecodeError>> {
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
        || trimmed
            .get(..15)
            .is_some_and(|head| head.eq_ignore_ascii_case(b"<!doctype html>"))
        || trimmed.get(..5).is_some_and(|head| head.eq_ignore_ascii_case(b"<html"));
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

/// Expands directories (recursively, sorted) into files.
pub fn expand_inputs(inputs: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(input)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            entries.sort();
            files.extend(expand_inputs(&entries)?);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Splits every page of `bytes` and writes its events as JSON lines to `out`.
pub fn split_into(
    bytes: &[u8],
    path: Option<&Path>,
    defaults: &PageDefaults,
    options: &ParseOptions,
    out: &mut impl Write,
    summary: &mut Summary,
) -> std::io::Result<()> {
    for page in pages_from_bytes(bytes, path, defaults) {
        summary.pages += 1;
        let parsed = match page {
            Ok(page) => parse_page(&page, options).map_err(|error| (error.code(), error.to_string())),
            Err(error) => Err((error.code(), error.to_string())),
        };
        match parsed {
            Ok(parsed) => write_events(&parsed, out, summary)?,
            Err((code, message)) => {
                *summary.errors.entry(code).or_default() += 1;
                let name = path
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "stdin".to_owned());
                eprintln!("{name}: {code}: {message}");
            }
        }
    }
    Ok(())
}

fn write_events(parsed: &ParsedPage, out: &mut impl Write, summary: &mut Summary) -> std::io::Result<()> {
    for quote in &parsed.quotes {
        serde_json::to_writer(&mut *out, &JsonEvent::Quote(quote))?;
        out.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut *out, &JsonEvent::Article(&parsed.article))?;
    out.write_all(b"\n")?;
    summary.quotes += parsed.quotes.len();
    summary.articles += 1;
    Ok(())
}
