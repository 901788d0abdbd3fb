//! Offline splitting of pages (no Kafka): what the worker would publish, as JSON lines or as
//! Avro object container files. Progress is reported through [`SplitProgress`]; how it is shown
//! is up to the caller.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::encode::{datum, Schemas};
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

/// The events of one page, encoded for a sink's format; made on any thread, written in order.
pub enum EncodedPage {
    /// JSON lines, one event per line.
    JsonLines(Vec<u8>),
    /// Avro binary datums of the bundled schemas.
    Avro {
        /// The quote events' datums, one after the other.
        quotes: Vec<u8>,
        /// How many quote datums `quotes` holds.
        quote_count: usize,
        /// The article event's datum.
        article: Vec<u8>,
    },
}

/// How a sink wants the events of a page encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON lines (see [`JsonLines`]).
    JsonLines,
    /// Avro datums (see [`AvroFiles`]).
    Avro,
}

impl Format {
    /// Pure: the events of `parsed` in this format; `Err((code, message))` when they do not fit
    /// the schema.
    pub fn encode(self, parsed: &ParsedPage) -> Result<EncodedPage, (&'static str, String)> {
        match self {
            Format::JsonLines => {
                let mut out = Vec::with_capacity(256 * (parsed.quotes.len() + 4));
                for quote in &parsed.quotes {
                    serde_json::to_writer(&mut out, &JsonEvent::Quote(quote)).expect("serializable event");
                    out.push(b'\n');
                }
                serde_json::to_writer(&mut out, &JsonEvent::Article(&parsed.article)).expect("serializable event");
                out.push(b'\n');
                Ok(EncodedPage::JsonLines(out))
            }
            Format::Avro => {
                let mut quotes = Vec::with_capacity(128 * parsed.quotes.len());
                for quote in &parsed.quotes {
                    datum::write_quote(&mut quotes, quote).map_err(|error| (error.code(), error.to_string()))?;
                }
                let mut article = Vec::with_capacity(1024);
                datum::write_article(&mut article, &parsed.article);
                Ok(EncodedPage::Avro {
                    quotes,
                    quote_count: parsed.quotes.len(),
                    article,
                })
            }
        }
    }
}

/// Where `split` writes the events of the pages it splits, in input order.
pub trait EventSink {
    /// The format [`write_page`](Self::write_page) takes.
    fn format(&self) -> Format;

    /// Writes the events of one page, encoded in [`format`](Self::format). `Err` when writing
    /// failed and splitting should stop.
    fn write_page(&mut self, page: EncodedPage) -> anyhow::Result<()>;

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
    fn format(&self) -> Format {
        Format::JsonLines
    }

    fn write_page(&mut self, page: EncodedPage) -> anyhow::Result<()> {
        let EncodedPage::JsonLines(lines) = page else {
            anyhow::bail!("JSON lines take pages encoded as JSON lines");
        };
        self.out.write_all(&lines)?;
        if self.flush_each_page {
            self.out.flush()?;
        }
        Ok(())
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

/// The block codec of the Avro container files `split --out` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerCodec {
    /// Uncompressed blocks.
    Null,
    /// Deflate (every Avro implementation reads it).
    #[default]
    Deflate,
    /// Snappy (with the CRC32 Avro appends).
    Snappy,
    /// Zstandard.
    Zstandard,
}

impl ContainerCodec {
    fn codec(self) -> apache_avro::Codec {
        match self {
            ContainerCodec::Null => apache_avro::Codec::Null,
            ContainerCodec::Deflate => apache_avro::Codec::Deflate(apache_avro::DeflateSettings::default()),
            ContainerCodec::Snappy => apache_avro::Codec::Snappy,
            ContainerCodec::Zstandard => apache_avro::Codec::Zstandard(apache_avro::ZstandardSettings::default()),
        }
    }
}

/// Avro object container files, one per event type ([`QUOTES_FILE`], [`ARTICLES_FILE`]), written
/// with the bundled schemas: readable by any Avro library or tool.
pub struct AvroFiles {
    directory: PathBuf,
    quotes: Option<ContainerFile<BufWriter<File>>>,
    articles: Option<ContainerFile<BufWriter<File>>>,
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
    /// points to) and creates a new one, and accepts a linked directory. Blocks are compressed
    /// with `codec`.
    pub fn create(directory: &Path, codec: ContainerCodec, replace: bool) -> anyhow::Result<Self> {
        let is_link = std::fs::symlink_metadata(directory).is_ok_and(|meta| meta.file_type().is_symlink());
        if is_link && !replace {
            return Err(OutputExists(directory.to_path_buf()).into());
        }
        std::fs::create_dir_all(directory)
            .with_context(|| format!("failed to create the output directory {}", directory.display()))?;
        let schemas = Schemas::bundled();
        let open = |name: &str, schema: &'static apache_avro::Schema| -> anyhow::Result<_> {
            let file = create_new_file(&directory.join(name), replace)?;
            ContainerFile::new(schema, BufWriter::new(file), codec.codec())
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

/// Uncompressed bytes of a container block before it is compressed and written (apache-avro's
/// writer uses the same).
const BLOCK_BYTES: usize = 64 * 1024;

/// An Avro object container file written from datums already encoded (by [`datum`], on the split
/// threads): apache-avro writes the header, this the blocks (count, size, compressed datums,
/// sync marker), which is all the format has.
struct ContainerFile<W: Write> {
    out: W,
    codec: apache_avro::Codec,
    marker: [u8; 16],
    block: Vec<u8>,
    count: usize,
}

impl<W: Write> ContainerFile<W> {
    fn new(schema: &apache_avro::Schema, mut out: W, codec: apache_avro::Codec) -> anyhow::Result<Self> {
        let marker: [u8; 16] = uuid::Uuid::new_v4().into_bytes();
        let mut header = Vec::new();
        let mut writer = apache_avro::Writer::builder()
            .schema(schema)
            .writer(&mut header)
            .codec(codec)
            .marker(marker)
            .build()?;
        writer.flush()?;
        drop(writer);
        out.write_all(&header)?;
        Ok(Self {
            out,
            codec,
            marker,
            block: Vec::with_capacity(BLOCK_BYTES + 4096),
            count: 0,
        })
    }

    /// Appends `count` datums, encoded one after the other in `datums`.
    fn append(&mut self, datums: &[u8], count: usize) -> anyhow::Result<()> {
        self.block.extend_from_slice(datums);
        self.count += count;
        if self.block.len() >= BLOCK_BYTES {
            self.write_block()?;
        }
        Ok(())
    }

    fn write_block(&mut self) -> anyhow::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        self.codec.compress(&mut self.block)?;
        let mut prefix = Vec::with_capacity(20);
        datum::write_long(&mut prefix, i64::try_from(self.count)?);
        datum::write_long(&mut prefix, i64::try_from(self.block.len())?);
        self.out.write_all(&prefix)?;
        self.out.write_all(&self.block)?;
        self.out.write_all(&self.marker)?;
        self.block.clear();
        self.count = 0;
        Ok(())
    }

    /// Writes the last block; the underlying writer.
    fn finish(mut self) -> anyhow::Result<W> {
        self.write_block()?;
        self.out.flush()?;
        Ok(self.out)
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
    fn format(&self) -> Format {
        Format::Avro
    }

    fn write_page(&mut self, page: EncodedPage) -> anyhow::Result<()> {
        let EncodedPage::Avro {
            quotes,
            quote_count,
            article,
        } = page
        else {
            anyhow::bail!("Avro files take pages encoded as Avro datums");
        };
        let (Some(quote_file), Some(article_file)) = (&mut self.quotes, &mut self.articles) else {
            anyhow::bail!("the Avro files are already closed");
        };
        quote_file
            .append(&quotes, quote_count)
            .with_context(|| format!("failed to write {}", QUOTES_FILE))?;
        article_file
            .append(&article, 1)
            .with_context(|| format!("failed to write {}", ARTICLES_FILE))?;
        self.quotes_written += quote_count;
        self.articles_written += 1;
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<Option<String>> {
        for (name, writer) in [(QUOTES_FILE, self.quotes.take()), (ARTICLES_FILE, self.articles.take())] {
            if let Some(writer) = writer {
                let path = self.directory.join(name);
                let written = || -> anyhow::Result<()> {
                    let buffered = writer.finish()?;
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

/// Pages split together by the threads of [`split_inputs`]; their events are written in input
/// order once the whole batch is split.
const BATCH_PAGES: usize = 512;
/// A batch is split as soon as its pages hold this many bytes, whatever their count.
const BATCH_BYTES: usize = 32 << 20;

/// Splits every page of `inputs` into `sink` on `threads` threads (at least 1), writing the
/// events in input order, reporting progress (input bytes read, pages) and failed pages through
/// `progress`. Failed pages are counted, not fatal; an error of the output is. With
/// `quote_filter` (`quotes.emit = "changed"`), quotes that equal the last quote of their symbol
/// written are left out, as the worker leaves them out of the quote topic.
pub fn split_inputs(
    inputs: &[Input],
    defaults: &PageDefaults,
    options: &ParseOptions,
    quote_filter: Option<&mut QuoteFilter>,
    sink: &mut dyn EventSink,
    progress: &dyn SplitProgress,
    threads: usize,
) -> anyhow::Result<Summary> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|index| format!("split-{index}"))
        .build()
        .context("failed to start the split threads")?;
    let mut run = SplitRun {
        summary: Summary {
            unchanged_quotes: quote_filter.as_ref().map(|_| 0),
            ..Summary::default()
        },
        options,
        quote_filter,
        format: sink.format(),
        sink,
        progress,
        pool,
        batch: Vec::new(),
        batch_bytes: 0,
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
    run.flush()?;
    Ok(run.summary)
}

/// An item of an input waiting in the batch: a page to split, or one that failed to be read.
enum Waiting {
    Page {
        name: String,
        page: RawPage,
    },
    Failed {
        name: String,
        code: &'static str,
        message: String,
    },
}

/// A page split (and, without a quote filter, encoded) on a split thread.
enum Split {
    Encoded { page: EncodedPage, quotes: usize },
    Parsed(Box<ParsedPage>),
    Failed(&'static str, String),
}

/// The state of one [`split_inputs`].
struct SplitRun<'a> {
    summary: Summary,
    options: &'a ParseOptions,
    quote_filter: Option<&'a mut QuoteFilter>,
    format: Format,
    sink: &'a mut dyn EventSink,
    progress: &'a dyn SplitProgress,
    pool: rayon::ThreadPool,
    batch: Vec<Waiting>,
    batch_bytes: usize,
}

impl SplitRun<'_> {
    /// Counts one item of an input; queues it when it is a page or a failed page.
    fn item(&mut self, name: &str, item: Item) -> anyhow::Result<()> {
        match item {
            Item::Skipped(code) => {
                *self.summary.skipped.entry(code).or_default() += 1;
                return Ok(());
            }
            Item::Failed { code, message } => self.batch.push(Waiting::Failed {
                name: name.to_owned(),
                code,
                message,
            }),
            Item::Page(page) => {
                self.batch_bytes += page.body.len();
                self.batch.push(Waiting::Page {
                    name: name.to_owned(),
                    page,
                });
            }
        }
        if self.batch.len() >= BATCH_PAGES || self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Splits the waiting pages on the split threads and writes their events in input order.
    fn flush(&mut self) -> anyhow::Result<()> {
        use rayon::prelude::*;
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let (options, format, encode) = (self.options, self.format, self.quote_filter.is_none());
        let split: Vec<Option<Split>> = self.pool.install(|| {
            batch
                .par_iter()
                .map(|waiting| match waiting {
                    Waiting::Page { page, .. } => Some(split_page(page, options, format, encode)),
                    Waiting::Failed { .. } => None,
                })
                .collect()
        });
        for (waiting, split) in batch.into_iter().zip(split) {
            self.write(waiting, split)?;
        }
        Ok(())
    }

    /// Writes one item of a batch in order: a split page's events, or its failure.
    fn write(&mut self, waiting: Waiting, split: Option<Split>) -> anyhow::Result<()> {
        let (name, code, message) = match (waiting, split) {
            (Waiting::Failed { name, code, message }, _) => {
                // An input that cannot be read at all is not a page; anything else that failed
                // (an envelope line, a WARC record) was meant to be one.
                if code != crate::input::UNREADABLE_INPUT {
                    self.page_done();
                }
                (name, code, message)
            }
            (Waiting::Page { name, page }, split) => {
                let result = match split.expect("every page is split") {
                    Split::Encoded { page, quotes } => self.write_encoded(page, quotes),
                    Split::Parsed(parsed) => self.write_filtered(*parsed),
                    Split::Failed(code, message) => Ok(Err((code, message))),
                }?;
                self.page_done();
                match result {
                    Ok(()) => return Ok(()),
                    Err((code, message)) if page.url.starts_with("file://") => (name, code, message),
                    Err((code, message)) => (name, code, format!("{}: {message}", page.url)),
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

    /// Leaves out the quotes the filter has seen unchanged, then encodes and writes the rest.
    fn write_filtered(&mut self, mut parsed: ParsedPage) -> anyhow::Result<Result<(), (&'static str, String)>> {
        if let Some(filter) = self.quote_filter.as_deref_mut() {
            let before = parsed.quotes.len();
            parsed
                .quotes
                .retain(|quote| filter.admit(&quote.symbol, QuoteValue::of(quote)));
            *self.summary.unchanged_quotes.get_or_insert(0) += before - parsed.quotes.len();
        }
        match self.format.encode(&parsed) {
            Ok(page) => self.write_encoded(page, parsed.quotes.len()),
            Err(failure) => Ok(Err(failure)),
        }
    }

    fn write_encoded(
        &mut self,
        page: EncodedPage,
        quotes: usize,
    ) -> anyhow::Result<Result<(), (&'static str, String)>> {
        self.sink.write_page(page)?;
        self.summary.quotes += quotes;
        self.summary.articles += 1;
        Ok(Ok(()))
    }
}

/// Pure, on a split thread: parses a page and, with `encode`, encodes its events in `format`.
fn split_page(page: &RawPage, options: &ParseOptions, format: Format, encode: bool) -> Split {
    let parsed = match parse_page(page, options) {
        Ok(parsed) => parsed,
        Err(error) => return Split::Failed(error.code(), error.to_string()),
    };
    if !encode {
        return Split::Parsed(Box::new(parsed));
    }
    match format.encode(&parsed) {
        Ok(page) => Split::Encoded {
            page,
            quotes: parsed.quotes.len(),
        },
        Err((code, message)) => Split::Failed(code, message),
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
            2,
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
        let refused = AvroFiles::create(&out, ContainerCodec::Deflate, false)
            .err()
            .expect("a link is refused");
        assert!(refused.downcast_ref::<OutputExists>().is_some(), "{refused:#}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        // An existing file is refused too.
        std::fs::remove_file(out.join(QUOTES_FILE)).unwrap();
        std::fs::write(out.join(ARTICLES_FILE), "old").unwrap();
        let refused = AvroFiles::create(&out, ContainerCodec::Deflate, false)
            .err()
            .expect("a file is refused");
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
        let refused = AvroFiles::create(&linked, ContainerCodec::Deflate, false)
            .err()
            .expect("a linked directory is refused");
        assert_eq!(
            refused.downcast_ref::<OutputExists>().map(|exists| &exists.0),
            Some(&linked)
        );
        // Asked to replace: the link goes, not what it points to.
        std::fs::remove_file(out.join(QUOTES_FILE)).ok();
        std::os::unix::fs::symlink(&target, out.join(QUOTES_FILE)).unwrap();
        AvroFiles::create(&out, ContainerCodec::Deflate, true)
            .unwrap()
            .finish()
            .unwrap();
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
            2,
        )
        .unwrap();
        assert_eq!(
            (summary.pages, summary.quotes, summary.unchanged_quotes),
            (2, 1, Some(1))
        );
    }

    /// Text pages that differ in their one quote, so the order of the events shows.
    fn numbered_pages(dir: &Path, count: usize) -> Vec<PathBuf> {
        (0..count)
            .map(|index| {
                let path = dir.join(format!("page-{index:04}.txt"));
                let page =
                    format!("S{index} {index}.5 Increased By ▲ 0.5 (1%)\nMOSCOW: Page {index} says something today.\n");
                std::fs::write(&path, page).unwrap();
                path
            })
            .collect()
    }

    #[test]
    fn pages_split_on_several_threads_are_written_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        // More than one batch, so batches follow each other in order too.
        let paths = numbered_pages(dir.path(), BATCH_PAGES + 37);
        let inputs = crate::input::collect_inputs(&paths).unwrap();
        let split = |threads| {
            let mut out = Vec::new();
            let summary = split_inputs(
                &inputs,
                &PageDefaults::default(),
                &ParseOptions::default(),
                None,
                &mut JsonLines::new(&mut out, false),
                &Recorded::default(),
                threads,
            )
            .unwrap();
            (summary, String::from_utf8(out).unwrap())
        };
        let (summary, four) = split(4);
        assert_eq!((summary.pages, summary.quotes, summary.articles), (549, 549, 549));
        let symbols: Vec<String> = four
            .lines()
            .filter_map(|line| {
                let event: serde_json::Value = serde_json::from_str(line).unwrap();
                event["symbol"].as_str().map(str::to_owned)
            })
            .collect();
        let expected: Vec<String> = (0..549).map(|index| format!("S{index}")).collect();
        assert_eq!(symbols, expected);
        assert_eq!(four, split(1).1, "the same lines whatever the thread count");
    }

    #[test]
    fn every_container_codec_writes_files_avro_readers_read() {
        let dir = tempfile::tempdir().unwrap();
        let paths = numbered_pages(dir.path(), 3);
        let inputs = crate::input::collect_inputs(&paths).unwrap();
        for codec in [
            ContainerCodec::Null,
            ContainerCodec::Deflate,
            ContainerCodec::Snappy,
            ContainerCodec::Zstandard,
        ] {
            let out = dir.path().join(format!("{codec:?}"));
            let mut files = AvroFiles::create(&out, codec, false).unwrap();
            let summary = split_inputs(
                &inputs,
                &PageDefaults::default(),
                &ParseOptions::default(),
                None,
                &mut files,
                &Recorded::default(),
                2,
            )
            .unwrap();
            assert_eq!(summary.quotes, 3);
            files.finish().unwrap();
            let reader = apache_avro::Reader::new(File::open(out.join(QUOTES_FILE)).unwrap()).unwrap();
            let prices: Vec<String> = reader
                .map(
                    |value| match crate::encode::value_to_json(&value.unwrap())["price"].clone() {
                        serde_json::Value::String(price) => price,
                        other => panic!("{other}"),
                    },
                )
                .collect();
            assert_eq!(prices, ["0.5", "1.5", "2.5"], "{codec:?}");
            let articles = apache_avro::Reader::new(File::open(out.join(ARTICLES_FILE)).unwrap()).unwrap();
            assert_eq!(articles.count(), 3, "{codec:?}");
        }
    }
}
