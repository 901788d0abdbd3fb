//! Offline splitting of pages (no Kafka): what the worker would publish, as JSON lines or as
//! Avro object container files. Progress is reported through [`SplitProgress`]; how it is shown
//! is up to the caller.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::encode::{article_value, quote_value, Schemas};
use crate::input::{read_input, Input, Item, PageDefaults};
use crate::model::{Article, ParsedPage, Quote, RawPage};
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
    flush_each_page: bool,
}

impl<W: Write> JsonLines<W> {
    /// JSON lines to `out`; with `flush_each_page` (for a terminal) every page is flushed as soon
    /// as it is written.
    pub fn new(out: W, flush_each_page: bool) -> Self {
        Self { out, flush_each_page }
    }
}

impl<W: Write> EventSink for JsonLines<W> {
    fn write_page(&mut self, parsed: &ParsedPage) -> anyhow::Result<Result<(), (&'static str, String)>> {
        write_json_events(parsed, &mut self.out)?;
        if self.flush_each_page {
            self.out.flush()?;
        }
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

/// An output file that is there already, or a symbolic link (never followed): replacing it must
/// be asked for.
#[derive(Debug, thiserror::Error)]
#[error("{} already exists or is a symbolic link; it is not replaced unless asked to", .0.display())]
pub struct OutputExists(pub PathBuf);

impl AvroFiles {
    /// Creates `directory` if needed and both files in it, never through a symbolic link: a
    /// directory that is one, or a file that exists already (a link included), is refused with
    /// [`OutputExists`] unless `replace`, which removes such a file (a link itself, not what it
    /// points to) and creates a new one, and accepts a linked directory.
    pub fn create(directory: &Path, replace: bool) -> anyhow::Result<Self> {
        let is_link = std::fs::symlink_metadata(directory).is_ok_and(|meta| meta.file_type().is_symlink());
        if is_link && !replace {
            return Err(OutputExists(directory.to_path_buf()).into());
        }
        std::fs::create_dir_all(directory)
            .with_context(|| format!("failed to create the output directory {}", directory.display()))?;
        let schemas = Schemas::bundled();
        let open = |name: &str, schema: &'static apache_avro::Schema| -> anyhow::Result<_> {
            let file = create_new_file(&directory.join(name), replace)?;
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

/// A new file at `path` (`O_CREAT | O_EXCL`: never an existing file, never through a link);
/// with `replace`, whatever is at `path` is removed first.
fn create_new_file(path: &Path, replace: bool) -> anyhow::Result<File> {
    if replace {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).with_context(|| format!("failed to replace {}", path.display())),
        }
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => Ok(file),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Err(OutputExists(path.to_path_buf()).into()),
        Err(error) => Err(error).with_context(|| format!("failed to create {}", path.display())),
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

/// What offline splitting reports while it works; the caller decides how to show it.
pub trait SplitProgress {
    /// Bytes of all inputs read so far (as stored: compressed inputs count compressed).
    fn bytes_read(&self, bytes: u64);
    /// One more page was split or failed.
    fn page_done(&self);
    /// A page or an input failed: one line, `input: code: message`.
    fn failed(&self, line: &str);
}

/// Splits every page of `inputs` into `sink`, reporting progress (input bytes read, pages) and
/// failed pages through `progress`. Failed pages are counted, not fatal; an error of the output
/// is. With `quote_filter` (`quotes.emit = "changed"`), quotes that equal the last quote of their
/// symbol written are left out, as the worker leaves them out of the quote topic.
pub fn split_inputs(
    inputs: &[Input],
    defaults: &PageDefaults,
    options: &ParseOptions,
    quote_filter: Option<&mut QuoteFilter>,
    sink: &mut dyn EventSink,
    progress: &dyn SplitProgress,
) -> anyhow::Result<Summary> {
    let mut run = SplitRun {
        summary: Summary {
            unchanged_quotes: quote_filter.as_ref().map(|_| 0),
            ..Summary::default()
        },
        options,
        quote_filter,
        sink,
        progress,
    };
    let mut done_before = 0u64;
    for input in inputs {
        let mut position = |read: u64| progress.bytes_read(done_before + read);
        read_input(
            input,
            defaults,
            options.max_page_bytes,
            &mut position,
            &mut |name, item| run.item(name, item),
        )?;
        if let Input::File { size, .. } = input {
            done_before += size;
        }
    }
    Ok(run.summary)
}

/// The state of one [`split_inputs`].
struct SplitRun<'a> {
    summary: Summary,
    options: &'a ParseOptions,
    quote_filter: Option<&'a mut QuoteFilter>,
    sink: &'a mut dyn EventSink,
    progress: &'a dyn SplitProgress,
}

impl SplitRun<'_> {
    /// Counts one item of an input; splits it when it is a page.
    fn item(&mut self, name: &str, item: Item) -> anyhow::Result<()> {
        let (code, message) = match item {
            Item::Skipped(code) => {
                *self.summary.skipped.entry(code).or_default() += 1;
                return Ok(());
            }
            Item::Failed { code, message } => {
                // An input that cannot be read at all is not a page; anything else that failed
                // (an envelope line, a WARC record) was meant to be one.
                if code != crate::input::UNREADABLE_INPUT {
                    self.page_done();
                }
                (code, message)
            }
            Item::Page(page) => {
                let result = self.page(&page)?;
                self.page_done();
                match result {
                    Ok(()) => return Ok(()),
                    Err((code, message)) if page.url.starts_with("file://") => (code, message),
                    Err((code, message)) => (code, format!("{}: {message}", page.url)),
                }
            }
        };
        *self.summary.errors.entry(code).or_default() += 1;
        self.progress.failed(&format!("{name}: {code}: {message}"));
        Ok(())
    }

    fn page_done(&mut self) {
        self.summary.pages += 1;
        self.progress.page_done();
    }

    /// Splits one page and writes its events; `Ok(Err(..))` when the page failed.
    fn page(&mut self, page: &RawPage) -> anyhow::Result<Result<(), (&'static str, String)>> {
        let mut parsed = match parse_page(page, self.options) {
            Ok(parsed) => parsed,
            Err(error) => return Ok(Err((error.code(), error.to_string()))),
        };
        if let Some(filter) = self.quote_filter.as_deref_mut() {
            let before = parsed.quotes.len();
            parsed
                .quotes
                .retain(|quote| filter.admit(&quote.symbol, QuoteValue::of(quote)));
            *self.summary.unchanged_quotes.get_or_insert(0) += before - parsed.quotes.len();
        }
        let written = self.sink.write_page(&parsed)?;
        if written.is_ok() {
            self.summary.quotes += parsed.quotes.len();
            self.summary.articles += 1;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Keeps what splitting reported.
    #[derive(Default)]
    struct Recorded {
        bytes: RefCell<Vec<u64>>,
        pages: RefCell<u64>,
        failures: RefCell<Vec<String>>,
    }

    impl SplitProgress for Recorded {
        fn bytes_read(&self, bytes: u64) {
            self.bytes.borrow_mut().push(bytes);
        }
        fn page_done(&self) {
            *self.pages.borrow_mut() += 1;
        }
        fn failed(&self, line: &str) {
            self.failures.borrow_mut().push(line.to_owned());
        }
    }

    #[test]
    fn splitting_reports_bytes_pages_and_failures_through_the_progress() {
        let dir = tempfile::tempdir().unwrap();
        let page = std::fs::read(format!(
            "{}/tests/fixtures/pages/brecorder-putin-assad.masked.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let (good, bad) = (dir.path().join("a.txt"), dir.path().join("b.jsonl"));
        std::fs::write(&good, &page).unwrap();
        std::fs::write(&bad, "{\"not\": \"an envelope\"}\n").unwrap();
        let inputs = crate::input::collect_inputs(&[dir.path().to_path_buf()]).unwrap();
        let total = crate::input::total_size(&inputs).unwrap();
        let mut out = Vec::new();
        let progress = Recorded::default();
        let summary = split_inputs(
            &inputs,
            &PageDefaults::default(),
            &ParseOptions::default(),
            None,
            &mut JsonLines::new(&mut out, false),
            &progress,
        )
        .unwrap();
        assert_eq!((summary.pages, summary.articles), (2, 1));
        assert_eq!(summary.quotes, 34);
        assert_eq!(summary.errors.values().sum::<usize>(), 1);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 35);
        assert_eq!(*progress.pages.borrow(), 2);
        assert_eq!(progress.bytes.borrow().last(), Some(&total));
        let failures = progress.failures.borrow();
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0].starts_with(&format!("{}: invalid_envelope: ", bad.display())),
            "{failures:?}"
        );
    }

    #[test]
    fn avro_output_never_follows_links_nor_replaces_files_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep me").unwrap();
        let out = dir.path().join("events");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&target, out.join(QUOTES_FILE)).unwrap();
        let refused = AvroFiles::create(&out, false).err().expect("a link is refused");
        assert!(refused.downcast_ref::<OutputExists>().is_some(), "{refused:#}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        // An existing file is refused too.
        std::fs::remove_file(out.join(QUOTES_FILE)).unwrap();
        std::fs::write(out.join(ARTICLES_FILE), "old").unwrap();
        let refused = AvroFiles::create(&out, false).err().expect("a file is refused");
        assert_eq!(
            refused.to_string(),
            format!(
                "{} already exists or is a symbolic link; it is not replaced unless asked to",
                out.join(ARTICLES_FILE).display()
            )
        );
        assert_eq!(std::fs::read_to_string(out.join(ARTICLES_FILE)).unwrap(), "old");
        // A linked directory is refused.
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&out, &linked).unwrap();
        let refused = AvroFiles::create(&linked, false)
            .err()
            .expect("a linked directory is refused");
        assert_eq!(
            refused.downcast_ref::<OutputExists>().map(|exists| &exists.0),
            Some(&linked)
        );
        // Asked to replace: the link goes, not what it points to.
        std::fs::remove_file(out.join(QUOTES_FILE)).ok();
        std::os::unix::fs::symlink(&target, out.join(QUOTES_FILE)).unwrap();
        AvroFiles::create(&out, true).unwrap().finish().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        for name in [QUOTES_FILE, ARTICLES_FILE] {
            let meta = std::fs::symlink_metadata(out.join(name)).unwrap();
            assert!(meta.file_type().is_file(), "{name} is a new file");
            assert!(std::fs::read(out.join(name)).unwrap().starts_with(b"Obj\x01"), "{name}");
        }
    }

    #[test]
    fn unchanged_quotes_are_left_out_with_a_filter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(
            &path,
            "AGL 37.94 Decreased By ▼ -0.54 (-1.4%)\nMOSCOW: Something happened today.\n",
        )
        .unwrap();
        let inputs = crate::input::collect_inputs(&[path.clone(), path]).unwrap();
        let mut filter = QuoteFilter::new(100);
        let mut out = Vec::new();
        let summary = split_inputs(
            &inputs,
            &PageDefaults::default(),
            &ParseOptions::default(),
            Some(&mut filter),
            &mut JsonLines::new(&mut out, false),
            &Recorded::default(),
        )
        .unwrap();
        assert_eq!(
            (summary.pages, summary.quotes, summary.unchanged_quotes),
            (2, 1, Some(1))
        );
    }
}
