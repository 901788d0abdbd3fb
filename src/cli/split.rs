//! `pagesplit split`: splits pages offline (no Kafka) into events, JSON lines on stdout or Avro
//! files, with a progress display on stderr.

use std::io::IsTerminal as _;
use std::time::Instant;

use super::args::Codec;
use super::args::SplitArgs;
use super::progress::{Measure, Progress};
use super::{collect_inputs, elapsed_text, page_defaults, PartialFailure};
use crate::config::Config;
use crate::quote_filter::QuoteFilter;
use crate::split::{split_inputs, AvroFiles, ContainerCodec, EncodedPage, EventSink, Format, JsonLines, OutputExists};

/// Splits the inputs `args` name; fails (after everything else is done) when a page failed.
pub fn run(config: &Config, args: &SplitArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let inputs = collect_inputs(&args.inputs)?;
    let total = crate::input::total_size(&inputs);
    let progress = Progress::new("split", "pages", Measure::Bytes, total, args.progress.progress_interval);
    let mut sink: Box<dyn EventSink> = match &args.out {
        Some(directory) => Box::new(
            AvroFiles::create(directory, container_codec(args.codec), args.force).map_err(|error| match error
                .downcast_ref::<OutputExists>(
            ) {
                Some(exists) => anyhow::anyhow!("{exists} (--force replaces it)"),
                None => error,
            })?,
        ),
        None => {
            let stdout = std::io::stdout();
            let on_terminal = stdout.is_terminal();
            Box::new(BesideTheBar {
                sink: JsonLines::new(std::io::BufWriter::new(stdout.lock()), on_terminal),
                progress: progress.clone(),
            })
        }
    };
    // `quotes.emit = "changed"` leaves out what the worker would leave out of the quote topic.
    let mut quote_filter = config
        .quotes
        .changed_only()
        .then(|| QuoteFilter::new(config.quotes.max_symbols));
    let summary = split_inputs(
        &inputs,
        &page_defaults(&args.page),
        &config.parse.options(),
        quote_filter.as_mut(),
        &mut *sink,
        &progress,
        threads(args.jobs),
    );
    progress.finish();
    let written = sink.finish()?;
    let summary = summary?;
    if let Some(written) = written {
        eprintln!("{}", super::terminal_safe(&written));
    }
    eprintln!("{summary} in {}", elapsed_text(started.elapsed()));
    if summary.errors.is_empty() {
        Ok(())
    } else {
        let failed: usize = summary.errors.values().sum();
        Err(PartialFailure(format!("{failed} page(s) could not be split (see above)")).into())
    }
}

/// Events on stdout written so that they do not tear the progress bar when both stdout and
/// stderr are the terminal.
struct BesideTheBar<S> {
    sink: S,
    progress: Progress,
}

impl<S: EventSink> EventSink for BesideTheBar<S> {
    fn format(&self) -> Format {
        self.sink.format()
    }

    fn write_page(&mut self, page: EncodedPage) -> anyhow::Result<()> {
        let sink = &mut self.sink;
        self.progress.around_stdout(|| sink.write_page(page))
    }

    fn finish(&mut self) -> anyhow::Result<Option<String>> {
        self.sink.finish()
    }
}

/// The split threads `--jobs` asks for, else one per core.
fn threads(jobs: Option<u16>) -> usize {
    jobs.map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

fn container_codec(codec: Codec) -> ContainerCodec {
    match codec {
        Codec::Null => ContainerCodec::Null,
        Codec::Deflate => ContainerCodec::Deflate,
        Codec::Snappy => ContainerCodec::Snappy,
        Codec::Zstandard => ContainerCodec::Zstandard,
    }
}
