//! Single-thread cost of splitting and encoding one page, without Kafka, optionally side by side
//! with the Python reference (`bench/python/split_bench.py`, the same two loops).
//!
//! - `split_encode`: the page → quotes and article (`parse_page`) → single-object-framed Avro
//!   values (`Encoder`), as the criterion bench `pagesplit_parse_and_encode_35_events`;
//! - `message`: the raw message (JSON envelope) → the records to publish (`split_message`, what
//!   the worker runs on its split threads for each page).
//!
//! ```sh
//! cargo run --release --example split_bench -- [--page FILE] [--seconds S] [--rounds N] \
//!     [--python .local/venv-bench/bin/python]
//! ```
//!
//! With `--python`, each round runs the Rust loops, then the Python ones, so both see the same
//! machine load; the summary gives the median of the rounds and their ratios. It also counts
//! heap allocations per page and times the page's event ids on their own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{TimeZone, Utc};
use clap::Parser;
use pagesplit::encode::{Encoder, Framing};
use pagesplit::envelope::encode_envelope;
use pagesplit::model::{ContentType, EventIds, RawPage};
use pagesplit::parse::{parse_page, ParseOptions};
use pagesplit::pipeline::{split_message, InMessage, Topics};
use pagesplit::trace_context::SpanId;

const URL: &str = "https://www.brecorder.com/news/40336151/putin-assad";

/// The system allocator, counting allocations while `COUNTING` is set.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Heap allocations (and reallocations) per call of `f`.
fn allocations_per_call(calls: u64, mut f: impl FnMut()) -> f64 {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..calls {
        f();
    }
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst) as f64 / calls as f64
}

#[derive(Parser, Debug)]
#[command(about = "Single-thread split + encode throughput, optionally against the Python reference")]
struct Args {
    /// The page (extracted text).
    #[arg(long, default_value = "tests/fixtures/pages/brecorder-putin-assad.masked.txt")]
    page: PathBuf,
    /// Seconds per loop and round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds (the summary takes the median).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Python interpreter with fastavro, to run bench/python/split_bench.py in each round.
    #[arg(long)]
    python: Option<PathBuf>,
}

/// Calls `f` for about `seconds` after a short warm-up; calls per second.
fn rate(seconds: f64, mut f: impl FnMut()) -> f64 {
    let warm_up = Instant::now();
    while warm_up.elapsed() < Duration::from_secs_f64((seconds / 4.0).min(0.5)) {
        f();
    }
    let started = Instant::now();
    let mut calls = 0u64;
    loop {
        for _ in 0..100 {
            f();
        }
        calls += 100;
        let elapsed = started.elapsed().as_secs_f64();
        if elapsed >= seconds {
            return calls as f64 / elapsed;
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text =
        std::fs::read_to_string(&args.page).with_context(|| format!("failed to read {}", args.page.display()))?;
    let fetched_at = Utc.with_ymd_and_hms(2024, 12, 8, 10, 15, 0).unwrap();
    let page = RawPage {
        url: URL.to_owned(),
        fetched_at,
        content_type: ContentType::Text,
        charset: None,
        body: text.clone().into_bytes(),
    };
    let message = InMessage {
        topic: "pages.raw".to_owned(),
        partition: 0,
        offset: 0,
        timestamp_ms: None,
        key: Some(URL.as_bytes().to_vec()),
        payload: Some(encode_envelope(URL, fetched_at, "text/plain", &text)),
        headers: Vec::new(),
    };
    let options = ParseOptions::default();
    let encoder = Encoder::new(Framing::SingleObject);
    let topics = Topics {
        quotes: "market.quotes.v1".into(),
        articles: "news.articles.v1".into(),
        dead_letter: "pagesplit.dlq.v1".into(),
        lineage_headers: true,
    };
    let events = split_message(&message, &options, &encoder, &topics, SpanId::random())
        .map_err(|failure| anyhow::anyhow!("the page does not split: {failure:?}"))?
        .records
        .len();

    let split_encode_once = || {
        let parsed = parse_page(black_box(&page), &options).expect("page parses");
        let mut bytes = 0;
        for quote in &parsed.quotes {
            bytes += encoder.encode_quote(quote).expect("quote encodes").len();
        }
        bytes += encoder.encode_article(&parsed.article).expect("article encodes").len();
        black_box(bytes);
    };
    let message_once = || {
        black_box(
            split_message(black_box(&message), &options, &encoder, &topics, SpanId::random()).expect("page splits"),
        );
    };
    let parsed = parse_page(&page, &options).expect("page parses");
    let symbols: Vec<&str> = parsed.quotes.iter().map(|quote| quote.symbol.as_str()).collect();
    let event_ids_once = || {
        let mut ids = EventIds::new(black_box(URL), fetched_at);
        for symbol in &symbols {
            black_box(ids.id(symbol));
        }
        black_box(ids.id("article"));
    };
    let allocations = (
        allocations_per_call(1000, split_encode_once),
        allocations_per_call(1000, message_once),
    );

    let (mut rust_split, mut rust_message, mut py_split, mut py_message) = (vec![], vec![], vec![], vec![]);
    let mut event_ids = vec![];
    for round in 1..=args.rounds {
        let split_encode = rate(args.seconds, split_encode_once);
        let whole_message = rate(args.seconds, message_once);
        event_ids.push(rate(args.seconds / 3.0, event_ids_once));
        println!(
            "round {round}: rust   split_encode {split_encode:>10.0} pages/s ({:.1} µs/page)   message {whole_message:>10.0} pages/s ({:.1} µs/page)",
            1e6 / split_encode,
            1e6 / whole_message
        );
        rust_split.push(split_encode);
        rust_message.push(whole_message);
        if let Some(python) = &args.python {
            let output = Command::new(python)
                .arg("bench/python/split_bench.py")
                .arg("--page")
                .arg(&args.page)
                .arg("--seconds")
                .arg(args.seconds.to_string())
                .output()
                .with_context(|| format!("failed to run {}", python.display()))?;
            if !output.status.success() {
                bail!("split_bench.py failed: {}", String::from_utf8_lossy(&output.stderr));
            }
            let result: serde_json::Value = serde_json::from_slice(&output.stdout)?;
            let (split, whole) = (
                result["split_encode_pages_per_s"].as_f64().unwrap_or(f64::NAN),
                result["message_pages_per_s"].as_f64().unwrap_or(f64::NAN),
            );
            println!(
                "round {round}: python split_encode {split:>10.0} pages/s ({:.1} µs/page)   message {whole:>10.0} pages/s ({:.1} µs/page)   events/page {}",
                1e6 / split,
                1e6 / whole,
                result["events_per_page"]
            );
            py_split.push(split);
            py_message.push(whole);
        }
    }
    let (split, whole) = (median(&mut rust_split), median(&mut rust_message));
    let mut summary = serde_json::json!({
        "page": args.page.display().to_string(),
        "events_per_page": events,
        "rust_split_encode_pages_per_s": split.round(),
        "rust_message_pages_per_s": whole.round(),
        "rust_split_encode_events_per_s": (split * events as f64).round(),
        "rust_allocations_per_page_split_encode": allocations.0,
        "rust_allocations_per_page_message": allocations.1,
        "rust_event_ids_us_per_page": (1e7 / median(&mut event_ids)).round() / 10.0,
    });
    if !py_split.is_empty() {
        let (py_split, py_whole) = (median(&mut py_split), median(&mut py_message));
        summary["python_split_encode_pages_per_s"] = py_split.round().into();
        summary["python_message_pages_per_s"] = py_whole.round().into();
        summary["ratio_split_encode"] = ((split / py_split * 10.0).round() / 10.0).into();
        summary["ratio_message"] = ((whole / py_whole * 10.0).round() / 10.0).into();
    }
    println!("{summary}");
    Ok(())
}
