//! Offline splitting of pages (no Kafka): what the worker would publish, as JSON lines or as
//! Avro object container files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cli::inputs::{read_input, Input, Item};
use crate::cli::progress::Progress;
use crate::encode::{article_value, quote_value, Schemas};
use crate::envelope::decode_message;
use crate::model::{Article, ContentType, ParsedPage, Quote, RawPage};
use crate::parse::{parse_page, ParseOptions};
use crate::quote_filter::{QuoteFilter, QuoteValue};

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
    /// With `quotes.emit = "changed"`: quotes left out because they equal the last quote of their
    /// symbol that was written.
    pub unchanged_quotes: Option<usize>,
    /// Article events.
    pub articles: usize,
    /// Pages that failed, by error code.
    pub errors: BTreeMap<&'static str, usize>,
    /// WARC records that are not pages (requests, redirects, images, …), by reason.
    pub skipped: BTreeMap<&'static str, usize>,
}

/// Appends ` code=count` for each error, then ` skipped=N code=count…` when anything was skipped:
/// the tail shared by the summaries of `split` and `replay`.
pub fn write_counts_by_code(
    f: &mut std::fmt::Formatter<'_>,
    errors: &BTreeMap<&'static str, usize>,
    skipped: &BTreeMap<&'static str, usize>,
) -> std::fmt::Result {
    for (code, count) in errors {
        write!(f, " {code}={count}")?;
    }
    if !skipped.is_empty() {
        write!(f, " skipped={}", skipped.values().sum::<usize>())?;
        for (code, count) in skipped {
            write!(f, " {code}={count}")?;
        }
    }
    Ok(())
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
        if let Some(unchanged) = self.unchanged_quotes {
            write!(f, " unchanged_quotes={unchanged}")?;
        }
        write_counts_by_code(f, &self.errors, &self.skipped)
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

/// Whether markup read from a file or stdin is HTML: it starts (after whitespace, an XML
/// declaration and comments) with `<!doctype html` (HTML 5, XHTML and HTML 4 doctypes alike) or
/// `<html`.
fn looks_like_html(mut bytes: &[u8]) -> bool {
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
    write_json_events(parsed, out)?;
    summary.quotes += parsed.quotes.len();
    summary.articles += 1;
    Ok(())
}

fn write_json_events(parsed: &ParsedPage, out: &mut impl Write) -> std::io::Result<()> {
    for quote in &parsed.quotes {
        serde_json::to_writer(&mut *out, &JsonEvent::Quote(quote))?;
        out.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut *out, &JsonEvent::Article(&parsed.article))?;
    out.write_all(b"\n")
}

/// Where `split` writes the events of the pages it splits.
pub trait EventSink {
    /// Writes the events of one page. `Ok(Err((code, message)))` when this page's events cannot be
    /// written (they do not fit the schema) and nothing of it was written; `Err` when writing
    /// failed and splitting should stop.
    fn write_page(&mut self, parsed: &ParsedPage) -> anyhow::Result<Result<(), (&'static str, String)>>;

    /// Flushes and closes the output; a line about what was written, if there is more to say
    /// than the summary does.
    fn finish(&mut self) -> anyhow::Result<Option<String>>;
}

/// JSON lines, one event per line: `{"type":"quote",…}` and `{"type":"article",…}` with the
/// Avro schemas' field names and decimals as strings, exactly as printed on the page.
pub struct JsonLines<W: Write> {
    out: W,
    progress: Progress,
    flush_each_page: bool,
}

impl<W: Write> JsonLines<W> {
    /// JSON lines to `out`; with `flush_each_page` (for a terminal) every page is flushed as soon
    /// as it is written, without tearing the progress bar.
    pub fn new(out: W, progress: Progress, flush_each_page: bool) -> Self {
        Self {
            out,
            progress,
            flush_each_page,
        }
    }
}

impl<W: Write> EventSink for JsonLines<W> {
    fn write_page(&mut self, parsed: &ParsedPage) -> anyhow::Result<Result<(), (&'static str, String)>> {
        let (out, flush) = (&mut self.out, self.flush_each_page);
        self.progress.around_stdout(|| {
            write_json_events(parsed, out)?;
            if flush {
                out.flush()?;
            }
            Ok::<_, std::io::Error>(())
        })?;
        Ok(Ok(()))
    }

    fn finish(&mut self) -> anyhow::Result<Option<String>> {
        self.out.flush()?;
        Ok(None)
    }
}

/// File name of the quote events written by [`AvroFiles`].
pub const QUOTES_FILE: &str = "quotes.avro";
/// File name of the article events written by [`AvroFiles`].
pub const ARTICLES_FILE: &str = "articles.avro";

/// Avro object container files, one per event type ([`QUOTES_FILE`], [`ARTICLES_FILE`]), written
/// with the bundled schemas (deflate-compressed blocks): readable by any Avro library or tool.
pub struct AvroFiles {
    directory: PathBuf,
    quotes: Option<apache_avro::Writer<'static, BufWriter<File>>>,
    articles: Option<apache_avro::Writer<'static, BufWriter<File>>>,
    quotes_written: usize,
    articles_written: usize,
}

impl AvroFiles {
    /// Creates `directory` if needed and both files in it (replacing existing ones).
    pub fn create(directory: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("failed to create the output directory {}", directory.display()))?;
        let schemas = Schemas::bundled();
        let open = |name: &str, schema: &'static apache_avro::Schema| -> anyhow::Result<_> {
            let path = directory.join(name);
            let file = File::create(&path).with_context(|| format!("failed to create {}", path.display()))?;
            Ok(apache_avro::Writer::with_codec(
                schema,
                BufWriter::new(file),
                apache_avro::Codec::Deflate(apache_avro::DeflateSettings::default()),
            )?)
        };
        Ok(Self {
            directory: directory.to_path_buf(),
            quotes: Some(open(QUOTES_FILE, &schemas.quote)?),
            articles: Some(open(ARTICLES_FILE, &schemas.article)?),
            quotes_written: 0,
            articles_written: 0,
        })
    }
}

impl EventSink for AvroFiles {
    fn write_page(&mut self, parsed: &ParsedPage) -> anyhow::Result<Result<(), (&'static str, String)>> {
        let quotes = match parsed.quotes.iter().map(quote_value).collect::<Result<Vec<_>, _>>() {
            Ok(quotes) => quotes,
            Err(error) => return Ok(Err((error.code(), error.to_string()))),
        };
        let (Some(quote_writer), Some(article_writer)) = (&mut self.quotes, &mut self.articles) else {
            anyhow::bail!("the Avro files are already closed");
        };
        for quote in quotes {
            quote_writer
                .append_value(quote)
                .with_context(|| format!("failed to write {}", QUOTES_FILE))?;
        }
        article_writer
            .append_value(article_value(&parsed.article))
            .with_context(|| format!("failed to write {}", ARTICLES_FILE))?;
        self.quotes_written += parsed.quotes.len();
        self.articles_written += 1;
        Ok(Ok(()))
    }

    fn finish(&mut self) -> anyhow::Result<Option<String>> {
        for (name, writer) in [(QUOTES_FILE, self.quotes.take()), (ARTICLES_FILE, self.articles.take())] {
            if let Some(writer) = writer {
                let path = self.directory.join(name);
                let written = || -> anyhow::Result<()> {
                    let buffered = writer.into_inner()?;
                    buffered.into_inner().map_err(|error| error.into_error())?.sync_all()?;
                    Ok(())
                };
                written().with_context(|| format!("failed to write {}", path.display()))?;
            }
        }
        Ok(Some(format!(
            "wrote {} quotes to {} and {} articles to {}",
            self.quotes_written,
            self.directory.join(QUOTES_FILE).display(),
            self.articles_written,
            self.directory.join(ARTICLES_FILE).display()
        )))
    }
}

/// Splits every page of `inputs` into `sink`, reporting progress (input bytes read, pages) and
/// failed pages (on stderr, through `progress`). Failed pages are counted, not fatal; an error
/// of the output is.
pub fn split_inputs(
    inputs: &[Input],
    defaults: &PageDefaults,
    options: &ParseOptions,
    sink: &mut dyn EventSink,
    progress: &Progress,
) -> anyhow::Result<Summary> {
    split_inputs_filtered(inputs, defaults, options, None, sink, progress)
}

/// [`split_inputs`], leaving out with `quote_filter` (`quotes.emit = "changed"`) the quotes that
/// equal the last quote of their symbol written, as the worker leaves them out of the quote topic.
pub fn split_inputs_filtered(
    inputs: &[Input],
    defaults: &PageDefaults,
    options: &ParseOptions,
    mut quote_filter: Option<&mut QuoteFilter>,
    sink: &mut dyn EventSink,
    progress: &Progress,
) -> anyhow::Result<Summary> {
    let mut summary = Summary {
        unchanged_quotes: quote_filter.as_ref().map(|_| 0),
        ..Summary::default()
    };
    let mut done_before = 0u64;
    for input in inputs {
        let mut position = |read: u64| progress.set_position(done_before + read);
        read_input(input, defaults, &mut position, &mut |name,
                                                         item|
         -> anyhow::Result<()> {
            let failure = match item {
                Item::Skipped(code) => {
                    *summary.skipped.entry(code).or_default() += 1;
                    return Ok(());
                }
                Item::Failed { code, message } => {
                    // An input that cannot be read at all is not a page; anything else that
                    // failed (an envelope line, a WARC record) was meant to be one.
                    if code != "unreadable_input" {
                        summary.pages += 1;
                        progress.add_items(1);
                    }
                    (code, message)
                }
                Item::Page(page) => {
                    let result = match parse_page(&page, options) {
                        Ok(mut parsed) => {
                            if let Some(filter) = quote_filter.as_deref_mut() {
                                let before = parsed.quotes.len();
                                parsed
                                    .quotes
                                    .retain(|quote| filter.admit(&quote.symbol, QuoteValue::of(quote)));
                                *summary.unchanged_quotes.get_or_insert(0) += before - parsed.quotes.len();
                            }
                            sink.write_page(&parsed)?.map(|()| (parsed.quotes.len(), 1))
                        }
                        Err(error) => Err((error.code(), error.to_string())),
                    };
                    summary.pages += 1;
                    progress.add_items(1);
                    match result {
                        Ok((quotes, articles)) => {
                            summary.quotes += quotes;
                            summary.articles += articles;
                            return Ok(());
                        }
                        Err((code, message)) if page.url.starts_with("file://") => (code, message),
                        Err((code, message)) => (code, format!("{}: {message}", page.url)),
                    }
                }
            };
            *summary.errors.entry(failure.0).or_default() += 1;
            progress.println(&format!("{name}: {}: {}", failure.0, failure.1));
            Ok(())
        })?;
        if let Input::File { size, .. } = input {
            done_before += size;
        }
    }
    Ok(summary)
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
            "<htm",
            "",
        ] {
            assert!(!looks_like_html(text.as_bytes()), "{text}");
        }
    }
}
