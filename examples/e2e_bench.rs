//! End-to-end benchmarks against a real broker (run by `bench/e2e.sh`).
//!
//! - `throughput`: preloads N pages (the example pages, their ticker lines rewritten: each site
//!   shows the same symbols on every page, and a quote changes on `--quote-changes` of its
//!   site's pages, 1 % by default) into a topic with several partitions, then times, one after
//!   the other on the same input: a pass-through copy (a minimal rdkafka consume → produce of
//!   the raw bytes with pagesplit's own client settings and the same way of committing: the
//!   ceiling; in this process), pagesplit itself (the release binary as a child process,
//!   single-object encoding; once writing the same records as the Python reference, once also
//!   writing the quotes that changed to a latest-quote topic, as its defaults do) and the Python
//!   reference worker (`bench/python/reference_worker.py`, same client settings). Each is timed
//!   from its first output record until its outputs hold every expected record; per contender:
//!   pages/s, records/s, CPU ms per 1,000 pages, cores busy (its CPU seconds ÷ wall seconds, and
//!   the whole machine's), peak RSS and RSS while working.
//! - `latency`: a paced producer offers pages (fetched_at = now) at a fixed rate to the release
//!   binary running as a child process (`pagesplit run`); latency is taken per page from
//!   `fetched_at` to the broker's append time of its article (the last record of a page; the
//!   output topics use `LogAppendTime`), and from the worker's
//!   `pagesplit_end_to_end_latency_seconds` histogram; the child's RSS is sampled throughout.
//! - `backlog`: preloads a large backlog of small pages, starts the worker with default settings
//!   and samples its RSS while it works through the backlog.
//! - `all`: the three in order, the latency run at half the throughput pagesplit reached with its
//!   default outputs (latest-quote topic included) in the first.
//!
//! Every run uses fresh topics and groups (`pagesplit-bench-<time>-<pid>.*`) and deletes them at
//! the end. Results are printed and written as JSON to `--out`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use pagesplit::config::Config;
use pagesplit::encode::{decode_single_object, unframe, Framed};
use pagesplit::envelope::encode_envelope;
use pagesplit::model::QuoteKind;
use pagesplit::parse::{parse_ticker_line, ParseOptions};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(about = "End-to-end benchmarks of pagesplit against a real broker")]
struct Cli {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "PAGESPLIT_BENCH_BOOTSTRAP",
        default_value = "127.0.0.1:9092"
    )]
    bootstrap: String,
    /// Directory for the JSON results and the worker logs.
    #[arg(long, global = true, default_value = "target/bench-e2e")]
    out: PathBuf,
    /// The share of a site's pages on which a given quote differs from the site's previous page
    /// (1 = new numbers on every page).
    #[arg(long, global = true, default_value_t = DEFAULT_QUOTE_CHANGES)]
    quote_changes: f64,
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Pages per second: pass-through copy, pagesplit, Python reference, on the same input.
    Throughput(ThroughputArgs),
    /// Latency (fetched_at → acknowledged) at a fixed offered load, and the worker's RSS.
    Latency(LatencyArgs),
    /// The worker's RSS while it works through a large backlog.
    Backlog(BacklogArgs),
    /// Throughput, then latency at half the measured pagesplit maximum, then backlog.
    All {
        #[command(flatten)]
        throughput: ThroughputArgs,
        /// Seconds of paced load in the latency run.
        #[arg(long, default_value_t = 40.0)]
        latency_seconds: f64,
        /// Pages preloaded for the backlog run.
        #[arg(long, default_value_t = 1_000_000)]
        backlog_pages: u64,
        /// Small pages for the backlog run (five ticker lines and a paragraph).
        #[arg(long)]
        backlog_small_pages: bool,
    },
}

#[derive(Args, Debug, Clone)]
struct ThroughputArgs {
    /// Pages to preload.
    #[arg(long, default_value_t = 200_000)]
    pages: u64,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Python interpreter with confluent-kafka and fastavro (bench/python/requirements.txt);
    /// without it the Python reference is skipped.
    #[arg(long)]
    python: Option<PathBuf>,
    /// The release binary: pagesplit's contenders, and the latency and backlog runs of `all`.
    #[arg(long, default_value = "target/release/pagesplit")]
    worker: PathBuf,
    /// Which contenders to run (e.g. `pagesplit` alone while profiling it).
    #[arg(long, value_delimiter = ',', default_value = "pass-through,pagesplit,python")]
    contenders: Vec<Contender>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Contender {
    PassThrough,
    Pagesplit,
    Python,
}

#[derive(Args, Debug, Clone)]
struct LatencyArgs {
    /// Offered load, pages per second.
    #[arg(long)]
    rate: f64,
    /// Seconds of paced load.
    #[arg(long, default_value_t = 40.0)]
    seconds: f64,
    /// Seconds at the start left out of the percentiles.
    #[arg(long, default_value_t = 5.0)]
    warm_up: f64,
    /// Partitions of every topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// The release binary.
    #[arg(long, default_value = "target/release/pagesplit")]
    worker: PathBuf,
}

#[derive(Args, Debug, Clone)]
struct BacklogArgs {
    /// Pages to preload (the throughput run's mix of full pages).
    #[arg(long, default_value_t = 1_000_000)]
    pages: u64,
    /// Preload small pages instead (five ticker lines and a paragraph).
    #[arg(long)]
    small_pages: bool,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// The release binary.
    #[arg(long, default_value = "target/release/pagesplit")]
    worker: PathBuf,
    /// Run pagesplit in this process (`app::start`) instead of the binary; the RSS is then this
    /// process's (a few MB more than the worker's own).
    #[arg(long)]
    in_process: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.out).with_context(|| format!("failed to create {}", cli.out.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if !(0.0..=1.0).contains(&cli.quote_changes) {
        bail!("--quote-changes must be between 0 and 1");
    }
    let mut run = BenchRun::new(&cli.bootstrap, &cli.out, runtime.handle().clone())?;
    run.quote_changes = cli.quote_changes;
    eprintln!("run {} against {}", run.id, run.bootstrap);
    let result = match &cli.command {
        Bench::Throughput(args) => throughput(&mut run, args).map(|report| json!({ "throughput": report })),
        Bench::Latency(args) => latency(&mut run, args).map(|report| json!({ "latency": report })),
        Bench::Backlog(args) => backlog(&mut run, args).map(|report| json!({ "backlog": report })),
        Bench::All {
            throughput: args,
            latency_seconds,
            backlog_pages,
            backlog_small_pages,
        } => all(&mut run, args, *latency_seconds, *backlog_pages, *backlog_small_pages),
    };
    run.cleanup();
    let report = result?;
    let path = cli.out.join(format!("{}.json", run.id));
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    eprintln!("results written to {}", path.display());
    Ok(())
}

fn all(
    run: &mut BenchRun,
    args: &ThroughputArgs,
    latency_seconds: f64,
    backlog_pages: u64,
    backlog_small_pages: bool,
) -> anyhow::Result<Json> {
    let throughput_report = throughput(run, args)?;
    // The latency run uses the worker's defaults, which include the latest-quote topic.
    let max_rate = throughput_report["pagesplit_with_latest"]["pages_per_s"]
        .as_f64()
        .context("no pagesplit throughput measured")?;
    let latency_report = latency(
        run,
        &LatencyArgs {
            rate: (max_rate / 2.0).round(),
            seconds: latency_seconds,
            warm_up: 5.0,
            partitions: args.partitions,
            worker: args.worker.clone(),
        },
    )?;
    let backlog_report = backlog(
        run,
        &BacklogArgs {
            pages: backlog_pages,
            small_pages: backlog_small_pages,
            partitions: args.partitions,
            worker: args.worker.clone(),
            in_process: false,
        },
    )?;
    Ok(json!({ "throughput": throughput_report, "latency": latency_report, "backlog": backlog_report }))
}

// ---------------------------------------------------------------------------------------------
// Throughput
// ---------------------------------------------------------------------------------------------

fn throughput(run: &mut BenchRun, args: &ThroughputArgs) -> anyhow::Result<Json> {
    let mix = PageMix::load(
        &[Path::new("tests/fixtures/pages"), Path::new("examples/pages")],
        run.quote_changes,
    )?;
    eprintln!(
        "page mix: {} (one page in {} of each, {} symbols, a quote changes on {:.1} % of its site's pages)",
        mix.describe(),
        mix.templates.len(),
        mix.symbols_shown(),
        run.quote_changes * 100.0
    );
    let partitions = args.partitions;
    let input = run.topic("pages", partitions, false)?;
    let base_config = client_config(&run.bootstrap, "unused", &input)?;
    let preloaded = preload(&run.bootstrap, &base_config, &input, args.pages, &mix, Utc::now())?;
    let input_ends = run.ends(&input, partitions)?;
    eprintln!(
        "preloaded {} pages ({:.0} MB of envelopes, {} events expected) in {:.1} s",
        args.pages,
        preloaded.bytes as f64 / 1e6,
        preloaded.events,
        preloaded.seconds
    );
    let mut report = json!({
        "pages": args.pages,
        "partitions": partitions,
        "mix": mix.describe(),
        "envelope_bytes": preloaded.bytes,
        "expected_events": preloaded.events,
        "quote_symbols": mix.symbols_shown(),
        "quote_changes": run.quote_changes,
    });

    if args.contenders.contains(&Contender::PassThrough) {
        // The raw bytes copied; then cut into as many records as pagesplit writes (the
        // producer's ceiling for this record count, with no parsing or encoding); then the same,
        // each record with the lineage headers pagesplit writes by default (the producer's
        // ceiling for pagesplit's records as they go on the wire).
        let fan_out = (preloaded.events as f64 / args.pages as f64).round().max(1.0) as usize;
        for shape in [(1, false), (fan_out, false), (fan_out, true)] {
            pass_through_run(run, &input, &input_ends, args.pages, partitions, shape, &mut report)?;
        }
    }
    if args.contenders.contains(&Contender::Pagesplit) {
        let events = preloaded.events as i64;
        // Without the latest-quote topic (the Python reference's records), then with it.
        for with_latest in [false, true] {
            pagesplit_run(
                run,
                &args.worker,
                &input,
                &input_ends,
                args.pages,
                events,
                partitions,
                with_latest,
                &mut report,
            )?;
        }
    }
    if let (Some(python), true) = (&args.python, args.contenders.contains(&Contender::Python)) {
        python_run(
            run,
            python,
            &input,
            &input_ends,
            args.pages,
            preloaded.events as i64,
            partitions,
            &mut report,
        )?;
    }

    let rate = |name: &str| report[name]["pages_per_s"].as_f64();
    let (pagesplit, with_latest, copy, fanned, python) = (
        rate("pagesplit"),
        rate("pagesplit_with_latest"),
        rate("pass_through"),
        rate("pass_through_fanned_out"),
        rate("python"),
    );
    if let (Some(pagesplit), Some(fanned)) = (pagesplit, rate("pass_through_fanned_out_with_headers")) {
        report["ratio_pagesplit_to_pass_through_fanned_out_with_headers"] = round2(pagesplit / fanned).into();
        eprintln!(
            "pagesplit ÷ pass-through fanned out with the lineage headers = {:.2}",
            pagesplit / fanned
        );
    }
    if let (Some(pagesplit), Some(copy)) = (pagesplit, copy) {
        report["ratio_pagesplit_to_pass_through"] = round2(pagesplit / copy).into();
        eprintln!("pagesplit ÷ pass-through = {:.2} (target ≥ 0.8)", pagesplit / copy);
    }
    if let (Some(pagesplit), Some(fanned)) = (pagesplit, fanned) {
        report["ratio_pagesplit_to_pass_through_fanned_out"] = round2(pagesplit / fanned).into();
        eprintln!(
            "pagesplit ÷ pass-through fanned out to as many records = {:.2} (target ≥ 0.85)",
            pagesplit / fanned
        );
    }
    if let (Some(pagesplit), Some(with_latest)) = (pagesplit, with_latest) {
        report["ratio_with_latest_to_without"] = round2(with_latest / pagesplit).into();
        eprintln!(
            "pagesplit with its defaults ÷ without the latest-quote topic = {:.2} (target ≥ 0.9)",
            with_latest / pagesplit
        );
    }
    if let (Some(pagesplit), Some(python)) = (pagesplit, python) {
        report["ratio_pagesplit_to_python"] = round2(pagesplit / python).into();
        eprintln!("pagesplit ÷ Python = {:.1} (target ≥ 10)", pagesplit / python);
    }
    Ok(report)
}

/// The ceiling: copy the raw bytes, each page as `fan_out` records (slices of it, keys varied
/// like symbols); a page is done when all of them are acknowledged. `with_headers`: each record
/// with the lineage headers pagesplit writes by default.
fn pass_through_run(
    run: &mut BenchRun,
    input: &str,
    input_ends: &BTreeMap<i32, i64>,
    pages: u64,
    partitions: i32,
    (fan_out, with_headers): (usize, bool),
    report: &mut Json,
) -> anyhow::Result<()> {
    let name = match (fan_out, with_headers) {
        (1, false) => "pass_through",
        (_, false) => "pass_through_fanned_out",
        (_, true) => "pass_through_fanned_out_with_headers",
    };
    let suffix = if with_headers { "-headers" } else { "" };
    let copy_topic = run.topic(&format!("copy-{fan_out}{suffix}"), partitions, false)?;
    let group = run.group(&format!("copy-{fan_out}{suffix}"));
    let config = client_config(&run.bootstrap, &group, input)?;
    let stop = Arc::new(AtomicBool::new(false));
    let copier = {
        let (config, input, output, stop) = (config.clone(), input.to_owned(), copy_topic.clone(), stop.clone());
        std::thread::spawn(move || pass_through(&config, &input, &output, fan_out, with_headers, &stop))
    };
    let cpu = CpuClock::of_self();
    let sampler = RssSampler::start(std::process::id(), Duration::from_millis(100));
    let window = run.measure(
        &group,
        input,
        input_ends,
        std::slice::from_ref(&copy_topic),
        Some(pages as i64 * fan_out as i64),
        Some(&cpu),
        &mut || !copier.is_finished(),
    );
    let samples = sampler.stop();
    stop.store(true, Ordering::SeqCst);
    let copied = copier.join().map_err(|_| anyhow::anyhow!("pass-through panicked"))?;
    let window = window?;
    copied?;
    let copy_events = run.total(std::slice::from_ref(&copy_topic), partitions)?;
    report[name] = window.report(pages, copy_events);
    // In this process: the largest RSS while copying (the process's peak is the preload's).
    report[name]["peak_rss_mb"] = round1(RssSummary::of(&samples, None).max_kb as f64 / 1024.0).into();
    report[name]["records_per_page"] = fan_out.into();
    report[name]["lineage_headers"] = with_headers.into();
    let headers = if with_headers { ", lineage headers" } else { "" };
    eprintln!(
        "pass-through ({fan_out} record(s) per page{headers}): {}",
        window.summary(pages, copy_events)
    );
    Ok(())
}

/// pagesplit, the release binary (`worker`) as a child process with the run's settings and the
/// `PAGESPLIT_*` variables of the environment. Without the latest-quote topic (`name`
/// "pagesplit") it writes the same records as the Python reference; with it
/// ("pagesplit_with_latest"), what its defaults write. `events`: the quotes and articles the
/// input makes.
#[allow(clippy::too_many_arguments)]
fn pagesplit_run(
    run: &mut BenchRun,
    worker: &Path,
    input: &str,
    input_ends: &BTreeMap<i32, i64>,
    pages: u64,
    events: i64,
    partitions: i32,
    with_latest: bool,
    report: &mut Json,
) -> anyhow::Result<()> {
    let name = if with_latest {
        "pagesplit_with_latest"
    } else {
        "pagesplit"
    };
    let (quotes, articles, dead) = (
        run.topic(&format!("{name}-quotes"), partitions, false)?,
        run.topic(&format!("{name}-articles"), partitions, false)?,
        run.topic(&format!("{name}-dlq"), partitions, false)?,
    );
    let latest = if with_latest {
        run.topic(&format!("{name}-latest"), partitions, false)?
    } else {
        String::new()
    };
    let group = run.group(name);
    let metrics_address = format!("127.0.0.1:{}", free_port()?);
    let mut worker = spawn_worker(
        run,
        worker,
        &[
            ("kafka.group_id", group.as_str()),
            ("topics.input", input),
            ("topics.quotes", quotes.as_str()),
            ("topics.articles", articles.as_str()),
            ("topics.dead_letter", dead.as_str()),
            ("topics.quotes_latest", latest.as_str()),
            ("encoding.format", "single-object"),
            ("http.listen", metrics_address.as_str()),
        ],
        name,
        WorkerEnv::Inherit,
    )?;
    let sampler = RssSampler::start(worker.id(), Duration::from_millis(100));
    let cpu = CpuClock::of(worker.id());
    let mut outputs = vec![quotes.clone(), articles.clone(), dead.clone()];
    // The window ends when every quote and article is written (the latest-quote topic gets a
    // quote only when it changed: how many depends on the order pages are consumed in; they are
    // enqueued with their page's quotes and counted below).
    let window = run.measure(
        &group,
        input,
        input_ends,
        &outputs,
        Some(events),
        Some(&cpu),
        &mut || matches!(worker.try_wait(), Ok(None)),
    );
    let samples = sampler.stop();
    if with_latest {
        outputs.push(latest.clone());
    }
    let waits = http_get(&metrics_address, "/metrics").map(|(_, body)| page_waits(&body));
    terminate(&mut worker);
    worker.wait()?;
    let window = window?;
    let events = run.total(&outputs, partitions)?;
    let dead_letters = run.total(std::slice::from_ref(&dead), partitions)?;
    report[name] = window.report(pages, events);
    report[name]["peak_rss_mb"] = round1(RssSummary::of(&samples, None).peak_kb as f64 / 1024.0).into();
    // From the first output on: flat while it works through the backlog, or growing.
    let startup = window.first_output.duration_since(window.launched).as_secs_f64();
    report[name]["rss_while_working"] = RssSummary::of(&samples, Some(startup)).to_json();
    report[name]["dead_letters"] = dead_letters.into();
    if with_latest {
        let latest_records = run.total(std::slice::from_ref(&latest), partitions)?;
        report[name]["latest_records"] = latest_records.into();
    }
    report[name]["decoded_sample"] = run.check_decodes(&[&quotes, &articles])?.into();
    eprintln!("{name}: {}", window.summary(pages, events));
    match waits {
        Ok(waits) => {
            let line: Vec<String> = waits
                .iter()
                .map(|(wait, (pages, seconds))| format!("{wait} {:.3}", seconds * 1e3 / (*pages).max(1.0)))
                .collect();
            eprintln!("{name}: mean wait per page, ms: {}", line.join(", "));
            report[name]["page_waits"] = waits
                .into_iter()
                .map(|(wait, (pages, seconds))| (wait, json!({"pages": pages, "seconds": seconds})))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        Err(error) => eprintln!("{name}: no page waits from its metrics: {error}"),
    }
    Ok(())
}

/// The worker's `pagesplit_page_wait_seconds` in its metrics text: per `wait`, the pages
/// observed and their total wait in seconds.
fn page_waits(metrics: &str) -> BTreeMap<String, (f64, f64)> {
    let mut waits: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in metrics.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some((metric, labels)) = series.split_once("{wait=\"") else {
            continue;
        };
        let wait = labels.trim_end_matches("\"}").to_owned();
        match metric {
            "pagesplit_page_wait_seconds_count" => waits.entry(wait).or_default().0 = value,
            "pagesplit_page_wait_seconds_sum" => waits.entry(wait).or_default().1 = value,
            _ => {}
        }
    }
    waits
}

/// The Python reference worker, same input, same client settings.
#[allow(clippy::too_many_arguments)]
fn python_run(
    run: &mut BenchRun,
    python: &Path,
    input: &str,
    input_ends: &BTreeMap<i32, i64>,
    pages: u64,
    events: i64,
    partitions: i32,
    report: &mut Json,
) -> anyhow::Result<()> {
    let (quotes, articles, dead) = (
        run.topic("py-quotes", partitions, false)?,
        run.topic("py-articles", partitions, false)?,
        run.topic("py-dlq", partitions, false)?,
    );
    let group = run.group("python");
    let config = bench_config(&run.bootstrap, &group, input, &quotes, &articles, &dead, "")?;
    let clients_file = run.out.join(format!("{}-python-clients.json", run.id));
    std::fs::write(
        &clients_file,
        serde_json::to_string_pretty(&json!({
            "consumer": config.consumer_config().config_map(),
            "producer": config.producer_config().config_map(),
        }))?,
    )?;
    let mut child = Command::new(python)
        .arg("bench/python/reference_worker.py")
        .arg("--clients")
        .arg(&clients_file)
        .args([
            "--input",
            input,
            "--quotes",
            &quotes,
            "--articles",
            &articles,
            "--dead-letter",
            &dead,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to start {}", python.display()))?;
    let cpu = CpuClock::of(child.id());
    let outputs = [quotes.clone(), articles.clone(), dead.clone()];
    let window = run.measure(
        &group,
        input,
        input_ends,
        &outputs,
        Some(events),
        Some(&cpu),
        &mut || matches!(child.try_wait(), Ok(None)),
    );
    terminate(&mut child);
    let mut summary = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut summary)?;
    }
    child.wait()?;
    let _ = std::fs::remove_file(&clients_file);
    let window = window?;
    let events = run.total(&[quotes.clone(), articles.clone(), dead.clone()], partitions)?;
    report["python"] = window.report(pages, events);
    report["python"]["worker_summary"] = serde_json::from_str(summary.trim()).unwrap_or(Json::Null);
    report["python"]["decoded_sample"] = run.check_decodes(&[&quotes, &articles])?.into();
    eprintln!("python: {}", window.summary(pages, events));
    Ok(())
}

/// A minimal consume → produce copy of the raw bytes, with pagesplit's client settings and its
/// way of committing: a message's offset is stored once its copy is acknowledged, as part of
/// the contiguous prefix of finished offsets of its partition; stored offsets are committed by
/// librdkafka's auto-commit.
fn pass_through(
    config: &Config,
    input: &str,
    output: &str,
    fan_out: usize,
    with_headers: bool,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = config.consumer_config().create()?;
    consumer.subscribe(&[input])?;
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let producer: BaseProducer<CopyContext> = config.producer_config().create_with_context(CopyContext {
        acknowledged: acknowledged.clone(),
    })?;
    let mut finished = FinishedOffsets::default();
    let store = |finished: &mut FinishedOffsets| -> anyhow::Result<()> {
        let done: Vec<(i32, i64, bool)> = std::mem::take(&mut *acknowledged.lock().expect("lock"));
        for (partition, offset, ok) in done {
            if !ok {
                bail!("copy of {input}[{partition}]@{offset} failed");
            }
            if let Some(next) = finished.complete(partition, offset) {
                // `store_offsets` stores the offset as given (the next one to consume);
                // `store_offset` would store `next + 1`.
                let mut offsets = TopicPartitionList::new();
                offsets.add_partition_offset(input, partition, Offset::Offset(next))?;
                consumer.store_offsets(&offsets)?;
            }
        }
        Ok(())
    };
    let mut key = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Some(message) = consumer.poll(Duration::from_millis(50)) {
            let message = message?;
            let (partition, offset) = (message.partition(), message.offset());
            finished.track(partition, offset);
            let page = Arc::new(CopiedPage {
                partition,
                offset,
                pending: AtomicUsize::new(fan_out),
                failed: AtomicBool::new(false),
            });
            let payload = message.payload().unwrap_or_default();
            let slice = payload.len().div_ceil(fan_out).max(1);
            let headers = with_headers.then(|| lineage_headers(&message));
            for index in 0..fan_out {
                key.clear();
                key.extend_from_slice(message.key().unwrap_or_default());
                if fan_out > 1 {
                    key.extend_from_slice(format!("#{index}").as_bytes());
                }
                let part = payload
                    .get(index * slice..((index + 1) * slice).min(payload.len()))
                    .unwrap_or_default();
                let mut record = BaseRecord::with_opaque_to(output, page.clone())
                    .key(&key[..])
                    .payload(part);
                if let Some(headers) = &headers {
                    record = record.headers(headers.clone());
                }
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            record = back;
                            producer.poll(Duration::from_millis(5));
                            store(&mut finished)?;
                        }
                        Err((error, _)) => return Err(error.into()),
                    }
                }
            }
        }
        producer.poll(Duration::ZERO);
        store(&mut finished)?;
    }
    producer.flush(Duration::from_secs(10))?;
    store(&mut finished)?;
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// The lineage headers pagesplit puts on a quote by default (source topic, partition, offset,
/// the page's URL, its version), built once per page and copied to each record as pagesplit does.
fn lineage_headers(message: &rdkafka::message::BorrowedMessage<'_>) -> OwnedHeaders {
    let (partition, offset) = (message.partition().to_string(), message.offset().to_string());
    let url = message
        .payload()
        .and_then(|payload| serde_json::from_slice::<Json>(payload).ok())
        .and_then(|page| page["url"].as_str().map(str::to_owned))
        .unwrap_or_default();
    [
        ("pagesplit.source.topic", message.topic()),
        ("pagesplit.source.partition", partition.as_str()),
        ("pagesplit.source.offset", offset.as_str()),
        ("pagesplit.source.url", url.as_str()),
        ("pagesplit.version", env!("CARGO_PKG_VERSION")),
    ]
    .into_iter()
    .fold(OwnedHeaders::new_with_capacity(5), |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(value),
        })
    })
}

/// A page being copied: done when its last record is acknowledged.
struct CopiedPage {
    partition: i32,
    offset: i64,
    pending: AtomicUsize,
    failed: AtomicBool,
}

struct CopyContext {
    acknowledged: Arc<Mutex<Vec<(i32, i64, bool)>>>,
}

impl ClientContext for CopyContext {}

impl ProducerContext for CopyContext {
    type DeliveryOpaque = Arc<CopiedPage>;

    fn delivery(&self, result: &DeliveryResult<'_>, page: Self::DeliveryOpaque) {
        if result.is_err() {
            page.failed.store(true, Ordering::SeqCst);
        }
        if page.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.acknowledged.lock().expect("lock").push((
                page.partition,
                page.offset,
                !page.failed.load(Ordering::SeqCst),
            ));
        }
    }
}

/// Per partition, the contiguous prefix of finished offsets.
#[derive(Default)]
struct FinishedOffsets {
    partitions: BTreeMap<i32, (VecDeque<i64>, HashSet<i64>)>,
}

impl FinishedOffsets {
    fn track(&mut self, partition: i32, offset: i64) {
        self.partitions.entry(partition).or_default().0.push_back(offset);
    }

    /// Marks an offset finished; the next offset to commit when the prefix grew.
    fn complete(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let (pending, done) = self.partitions.get_mut(&partition)?;
        done.insert(offset);
        let mut next = None;
        while let Some(first) = pending.front().copied() {
            if !done.remove(&first) {
                break;
            }
            pending.pop_front();
            next = Some(first + 1);
        }
        next
    }
}

// ---------------------------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------------------------

fn latency(run: &mut BenchRun, args: &LatencyArgs) -> anyhow::Result<Json> {
    let mix = PageMix::load(
        &[Path::new("tests/fixtures/pages"), Path::new("examples/pages")],
        run.quote_changes,
    )?;
    let partitions = args.partitions;
    let input = run.topic("lat-pages", partitions, false)?;
    // The broker stamps output records with their append time: the moment they were written,
    // just before the acknowledgement.
    let quotes = run.topic("lat-quotes", partitions, true)?;
    let articles = run.topic("lat-articles", partitions, true)?;
    let dead = run.topic("lat-dlq", partitions, true)?;
    let latest = run.topic("lat-latest", partitions, true)?;
    let group = run.group("latency");
    let port = free_port()?;
    let mut worker = spawn_worker(
        run,
        &args.worker,
        &[
            ("kafka.group_id", group.as_str()),
            ("topics.input", input.as_str()),
            ("topics.quotes", quotes.as_str()),
            ("topics.articles", articles.as_str()),
            ("topics.dead_letter", dead.as_str()),
            ("topics.quotes_latest", latest.as_str()),
            ("encoding.format", "single-object"),
            ("http.listen", &format!("127.0.0.1:{port}")),
        ],
        "latency",
        WorkerEnv::Clean,
    )?;
    let result = (|| -> anyhow::Result<Json> {
        let metrics_address = format!("127.0.0.1:{port}");
        wait_ready(&metrics_address, &mut worker)?;
        let sampler = RssSampler::start(worker.id(), Duration::from_millis(100));
        eprintln!(
            "offering {:.0} pages/s for {:.0} s to the worker (pid {})",
            args.rate,
            args.seconds,
            worker.id()
        );
        let config = client_config(&run.bootstrap, "unused", &input)?;
        let started_at = Utc::now();
        let sent = paced_publish(&config, &input, &mix, args.rate, Duration::from_secs_f64(args.seconds))?;
        let input_ends = run.ends(&input, partitions)?;
        let cpu = CpuClock::of(worker.id());
        let window = run.measure(
            &group,
            &input,
            &input_ends,
            std::slice::from_ref(&articles),
            None,
            Some(&cpu),
            &mut || matches!(worker.try_wait(), Ok(None)),
        )?;
        let metrics = http_get(&metrics_address, "/metrics")?.1;
        let samples = sampler.stop();
        // Per page: fetched_at (in the article) → append time of the article.
        let warm_up_end = started_at.timestamp_millis() + (args.warm_up * 1000.0) as i64;
        let mut latencies: Vec<f64> = read_all(&run.bootstrap, &articles, partitions, sent)?
            .into_iter()
            .filter_map(|(appended, value)| {
                let fetched = article_fetched_at(&value)?;
                (fetched >= warm_up_end).then(|| (appended - fetched) as f64)
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        let histogram = histogram_quantiles(&metrics, "pagesplit_end_to_end_latency_seconds");
        let rss = RssSummary::of(&samples, None);
        let report = json!({
            "offered_pages_per_s": args.rate,
            "seconds": args.seconds,
            "pages_sent": sent,
            "pages_measured": latencies.len(),
            "warm_up_seconds": args.warm_up,
            "ms_fetched_at_to_article_appended": {
                "p50": percentile(&latencies, 0.50),
                "p90": percentile(&latencies, 0.90),
                "p99": percentile(&latencies, 0.99),
                "max": latencies.last().copied(),
            },
            "worker_histogram_ms": histogram,
            "committed_seconds_after_last_page": round1(window.done.duration_since(window.launched).as_secs_f64()),
            "rss": rss.to_json(),
        });
        eprintln!(
            "latency at {:.0} pages/s: p50 {:.1} ms, p99 {:.1} ms (fetched_at → article appended); worker histogram p50 {} ms, p99 {} ms; peak RSS {:.1} MB",
            args.rate,
            percentile(&latencies, 0.50).unwrap_or(f64::NAN),
            percentile(&latencies, 0.99).unwrap_or(f64::NAN),
            report["worker_histogram_ms"]["p50"],
            report["worker_histogram_ms"]["p99"],
            rss.peak_kb as f64 / 1024.0
        );
        Ok(report)
    })();
    terminate(&mut worker);
    worker.wait()?;
    result
}

/// Publishes pages at `rate` per second for `duration`, each stamped with fetched_at = now;
/// returns how many.
fn paced_publish(config: &Config, topic: &str, mix: &PageMix, rate: f64, duration: Duration) -> anyhow::Result<u64> {
    let mut client = config.producer_config();
    // Each page leaves at once: the latency measured is the worker's, not a crawler's batching.
    client.set("linger.ms", "0");
    let failed = Arc::new(AtomicU64::new(0));
    let producer: BaseProducer<CountingContext> =
        client.create_with_context(CountingContext { failed: failed.clone() })?;
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < duration {
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            let (url, body, _) = mix.page(sent);
            let value = encode_envelope(&url, Utc::now(), "text/plain", &body);
            send(&producer, BaseRecord::to(topic).key(url.as_bytes()).payload(&value))?;
            sent += 1;
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1));
    }
    producer.flush(Duration::from_secs(30))?;
    if failed.load(Ordering::SeqCst) > 0 {
        bail!("{} pages could not be published", failed.load(Ordering::SeqCst));
    }
    Ok(sent)
}

/// Reads `expected` records of a topic from the beginning: (broker timestamp, value).
fn read_all(bootstrap: &str, topic: &str, partitions: i32, expected: u64) -> anyhow::Result<Vec<(i64, Vec<u8>)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pagesplit-bench-reader")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut records = Vec::with_capacity(expected as usize);
    while (records.len() as u64) < expected {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("read only {} of {expected} records of {topic}", records.len());
        }
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message?;
            let timestamp = message.timestamp().to_millis().unwrap_or_default();
            records.push((timestamp, message.payload().unwrap_or_default().to_vec()));
        }
    }
    Ok(records)
}

/// `fetched_at` of a framed article datum: its third field, after two strings.
fn article_fetched_at(value: &[u8]) -> Option<i64> {
    let mut datum = match unframe(value)? {
        Framed::SingleObject { datum, .. } | Framed::Confluent { datum, .. } => datum,
    };
    for _ in 0..2 {
        let length = usize::try_from(read_long(&mut datum)?).ok()?;
        datum = datum.get(length..)?;
    }
    read_long(&mut datum)
}

/// An Avro `long`: zigzag varint.
fn read_long(bytes: &mut &[u8]) -> Option<i64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    None
}

/// p50/p90/p99 in milliseconds of a Prometheus histogram in text format, interpolated within
/// buckets as `histogram_quantile` does.
fn histogram_quantiles(metrics: &str, name: &str) -> Json {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            let Some((bound, count)) = rest.split_once("\"} ") else {
                continue;
            };
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().unwrap_or(f64::NAN)
            };
            buckets.push((bound, count.trim().parse().unwrap_or(0.0)));
        }
    }
    let total = buckets.last().map_or(0.0, |(_, count)| *count);
    let quantile = |q: f64| -> Option<f64> {
        let rank = q * total;
        let mut previous = (0.0, 0.0);
        for (bound, count) in &buckets {
            if *count >= rank && total > 0.0 {
                if bound.is_infinite() {
                    return Some(previous.0 * 1000.0);
                }
                let within = if count > &previous.1 {
                    (rank - previous.1) / (count - previous.1)
                } else {
                    0.0
                };
                return Some((previous.0 + (bound - previous.0) * within) * 1000.0);
            }
            previous = (*bound, *count);
        }
        None
    };
    let bounds: Vec<String> = buckets
        .iter()
        .map(|(bound, count)| format!("≤{bound}s:{count}"))
        .collect();
    json!({
        "count": total,
        "p50": quantile(0.5).map(round1),
        "p90": quantile(0.9).map(round1),
        "p99": quantile(0.99).map(round1),
        "buckets": bounds.join(" "),
    })
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((sorted.len() - 1) as f64 * q).round() as usize])
}

// ---------------------------------------------------------------------------------------------
// Backlog
// ---------------------------------------------------------------------------------------------

fn backlog(run: &mut BenchRun, args: &BacklogArgs) -> anyhow::Result<Json> {
    let mut mix = PageMix::load(
        &[Path::new("tests/fixtures/pages"), Path::new("examples/pages")],
        run.quote_changes,
    )?;
    if args.small_pages {
        mix = mix.small();
    }
    let size = if args.small_pages { "small" } else { "full" };
    let input = run.topic("backlog-pages", args.partitions, false)?;
    let (quotes, articles, dead) = (
        run.topic("backlog-quotes", args.partitions, false)?,
        run.topic("backlog-articles", args.partitions, false)?,
        run.topic("backlog-dlq", args.partitions, false)?,
    );
    let latest = run.topic("backlog-latest", args.partitions, false)?;
    let config = client_config(&run.bootstrap, "unused", &input)?;
    let preloaded = preload(&run.bootstrap, &config, &input, args.pages, &mix, Utc::now())?;
    let input_ends = run.ends(&input, args.partitions)?;
    eprintln!(
        "backlog: preloaded {} {size} pages ({:.0} MB) in {:.1} s; starting the worker with default settings",
        args.pages,
        preloaded.bytes as f64 / 1e6,
        preloaded.seconds
    );
    let group = run.group("backlog");
    let outputs = [articles.clone()];
    let mut progress: Vec<(f64, i64)> = Vec::new();
    let launched = Instant::now();
    let (window, samples) = if args.in_process {
        let config = bench_config(&run.bootstrap, &group, &input, &quotes, &articles, &dead, &latest)?;
        let shutdown = CancellationToken::new();
        let running = run
            .runtime
            .block_on(pagesplit::app::start(config, shutdown.clone()))
            .context("pagesplit did not start")?;
        let sampler = RssSampler::start(std::process::id(), Duration::from_millis(250));
        let cpu = CpuClock::of_self();
        let result = run.measure_with_progress(
            &group,
            &input,
            &input_ends,
            &outputs,
            None,
            Some(&cpu),
            &mut progress,
            &mut || true,
        );
        let samples = sampler.stop();
        shutdown.cancel();
        run.runtime.block_on(running.wait())?;
        (result?, samples)
    } else {
        let port = free_port()?;
        let mut worker = spawn_worker(
            run,
            &args.worker,
            &[
                ("kafka.group_id", group.as_str()),
                ("topics.input", input.as_str()),
                ("topics.quotes", quotes.as_str()),
                ("topics.articles", articles.as_str()),
                ("topics.dead_letter", dead.as_str()),
                ("topics.quotes_latest", latest.as_str()),
                // No schema registry here; everything else stays at its default.
                ("encoding.format", "single-object"),
                ("http.listen", &format!("127.0.0.1:{port}")),
            ],
            "backlog",
            WorkerEnv::Clean,
        )?;
        let sampler = RssSampler::start(worker.id(), Duration::from_millis(250));
        let cpu = CpuClock::of(worker.id());
        let result = run.measure_with_progress(
            &group,
            &input,
            &input_ends,
            &outputs,
            None,
            Some(&cpu),
            &mut progress,
            &mut || matches!(worker.try_wait(), Ok(None)),
        );
        let samples = sampler.stop();
        terminate(&mut worker);
        worker.wait()?;
        (result?, samples)
    };
    let first_output = window.first_output.duration_since(launched).as_secs_f64();
    let rss = RssSummary::of(&samples, Some(first_output));
    let total: i64 = input_ends.values().sum();
    // The RSS curve: one point per tenth of the backlog worked through.
    let mut curve = Vec::new();
    for tenth in 1..=10 {
        let goal = total * tenth / 10;
        if let Some((at, done)) = progress.iter().find(|(_, done)| *done >= goal) {
            let sample = samples.iter().rfind(|sample| sample.at <= *at);
            curve.push(json!({
                "seconds": round1(*at),
                "committed_pages": done,
                "rss_mb": sample.map(|sample| round1(sample.rss_kb as f64 / 1024.0)),
                "threads": sample.map(|sample| sample.threads),
            }));
        }
    }
    let seconds = window.seconds();
    let records = run.total(&[quotes, articles, dead, latest], args.partitions)?;
    eprintln!(
        "backlog of {} pages worked through in {:.1} s ({:.0} pages/s); RSS while working: min {:.1} MB, max {:.1} MB, VmHWM {:.1} MB",
        args.pages,
        seconds,
        args.pages as f64 / seconds,
        rss.min_kb as f64 / 1024.0,
        rss.max_kb as f64 / 1024.0,
        rss.peak_kb as f64 / 1024.0
    );
    Ok(json!({
        "pages": args.pages,
        "small_pages": args.small_pages,
        "in_process": args.in_process,
        "envelope_bytes": preloaded.bytes,
        "seconds": round1(seconds),
        "pages_per_s": (args.pages as f64 / seconds).round(),
        "records": records,
        "records_per_s": (records as f64 / seconds).round(),
        "cpu_ms_per_1000_pages": window.cpu_seconds.map(|cpu| round1(cpu * 1e6 / args.pages as f64)),
        "cores_busy": window.cpu_seconds.map(|cpu| round2(cpu / seconds)),
        "machine_cores_busy": window.machine_cores_busy.map(round2),
        "context_switches_per_page": window.context_switches.map(|n| round2(n as f64 / args.pages as f64)),
        "rss_while_working": rss.to_json(),
        "curve": curve,
    }))
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

/// The example pages as templates: their ticker lines are rewritten for every page with other
/// symbols and numbers (deterministically, from the page's number), their text kept.
struct PageMix {
    templates: Vec<Template>,
    /// Stock symbols to draw from: the examples' own, then made-up ones (a prime count, so
    /// that any stride walks through distinct symbols).
    symbols: Vec<String>,
    /// The share of a site's pages on which a given quote differs from its previous page.
    changes: f64,
}

struct Template {
    name: String,
    lines: Vec<Line>,
}

enum Line {
    Text(String),
    Stock,
    Index(String),
}

/// Symbols to draw from; prime.
const SYMBOL_POOL: usize = 401;

/// By default a quote changes on one page of its site in a hundred.
const DEFAULT_QUOTE_CHANGES: f64 = 0.01;

impl PageMix {
    /// The masked `*.txt` pages of `dirs` (the same file name once).
    fn load(dirs: &[&Path], changes: f64) -> anyhow::Result<Self> {
        let options = ParseOptions::default();
        let mut templates = Vec::new();
        let mut names = HashSet::new();
        let mut symbols = Vec::new();
        for dir in dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("failed to list {}", dir.display()))?
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.to_string_lossy().ends_with(".masked.txt"))
                .collect();
            files.sort();
            for file in files {
                let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
                if !names.insert(name.clone()) {
                    continue;
                }
                let text = std::fs::read_to_string(&file)?;
                let lines = text
                    .split('\n')
                    .map(|line| match parse_ticker_line(line, &options) {
                        Some(ticker) if ticker.kind == QuoteKind::Index => Line::Index(ticker.symbol.to_owned()),
                        Some(ticker) => {
                            if !symbols.iter().any(|known| known == ticker.symbol) {
                                symbols.push(ticker.symbol.to_owned());
                            }
                            Line::Stock
                        }
                        None => Line::Text(line.to_owned()),
                    })
                    .collect();
                templates.push(Template { name, lines });
            }
        }
        if templates.is_empty() {
            bail!("no *.masked.txt pages found");
        }
        // Made-up four-letter symbols fill the pool.
        let mut n = 0u32;
        while symbols.len() < SYMBOL_POOL {
            let made_up: String = (0..4)
                .map(|i| (b'A' + ((n / 26u32.pow(i)) % 26) as u8) as char)
                .collect();
            n += 7;
            if !symbols.contains(&made_up) {
                symbols.push(made_up);
            }
        }
        Ok(Self {
            templates,
            symbols,
            changes,
        })
    }

    /// Small pages: five ticker lines and one paragraph of the first page with a ticker strip.
    fn small(self) -> Self {
        let source = self
            .templates
            .iter()
            .find(|template| template.lines.iter().any(|line| matches!(line, Line::Stock)))
            .unwrap_or(&self.templates[0]);
        let mut lines = Vec::new();
        lines.extend(
            source
                .lines
                .iter()
                .filter(|l| matches!(l, Line::Stock))
                .take(4)
                .map(|_| Line::Stock),
        );
        lines.extend(
            source
                .lines
                .iter()
                .filter_map(|l| match l {
                    Line::Index(symbol) => Some(Line::Index(symbol.clone())),
                    _ => None,
                })
                .take(1),
        );
        lines.push(Line::Text(String::new()));
        if let Some(Line::Text(paragraph)) = source
            .lines
            .iter()
            .find(|l| matches!(l, Line::Text(text) if text.len() > 80))
        {
            lines.push(Line::Text(paragraph.clone()));
        }
        lines.push(Line::Text(String::new()));
        Self {
            templates: vec![Template {
                name: format!("{} (first 5 ticker lines and one paragraph)", source.name),
                lines,
            }],
            symbols: self.symbols,
            changes: self.changes,
        }
    }

    /// The symbols the pages show (the same on every page of a site).
    fn symbols_shown(&self) -> usize {
        let options = ParseOptions::default();
        let mut shown = HashSet::new();
        for site in 0..self.templates.len() as u64 {
            let (_, body, _) = self.page(site);
            for line in body.split('\n') {
                if let Some(ticker) = parse_ticker_line(line, &options) {
                    shown.insert(ticker.symbol.to_owned());
                }
            }
        }
        shown.len()
    }

    fn describe(&self) -> String {
        self.templates
            .iter()
            .map(|t| {
                let quotes = t.lines.iter().filter(|l| !matches!(l, Line::Text(_))).count();
                format!("{} ({quotes} quotes)", t.name)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Page number `i`: its URL, its body and its number of events. Pages take their template
    /// in turn, one site each; a site's ticker strip shows the same symbols on every page, and a
    /// symbol's quote stays the same from one page of the site to the next but on a `changes`
    /// share of them (each symbol at its own moment; the same symbol has the same quote on every
    /// site at the same time).
    fn page(&self, i: u64) -> (String, String, u64) {
        let sites = self.templates.len() as u64;
        let template = &self.templates[(i % sites) as usize];
        let site_page = i / sites;
        let mut strip = SplitMix64((i % sites).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
        let first = strip.below(SYMBOL_POOL as u64) as usize;
        let stride = 1 + strip.below(SYMBOL_POOL as u64 - 1) as usize;
        let mut stocks = 0;
        let mut events = 1;
        let mut body = String::with_capacity(4096);
        for (index, line) in template.lines.iter().enumerate() {
            if index > 0 {
                body.push('\n');
            }
            match line {
                Line::Text(text) => body.push_str(text),
                Line::Stock => {
                    let symbol = &self.symbols[(first + stocks * stride) % SYMBOL_POOL];
                    stocks += 1;
                    events += 1;
                    stock_line(&mut body, symbol, &mut self.quote_numbers(symbol, site_page));
                }
                Line::Index(symbol) => {
                    events += 1;
                    index_line(&mut body, symbol, &mut self.quote_numbers(symbol, site_page));
                }
            }
        }
        let url = format!("https://www.brecorder.com/news/{}/bench-page-{i}", 40_000_000 + i);
        (url, body, events)
    }

    /// The random numbers of `symbol`'s quote on a site's page `site_page`: a new draw each
    /// time `site_page × changes + phase` passes a whole number, the phase being the symbol's own.
    fn quote_numbers(&self, symbol: &str, site_page: u64) -> SplitMix64 {
        // FNV-1a of the symbol: the same symbol draws the same numbers on every site.
        let seed = symbol.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        });
        let phase = SplitMix64(seed).next() as f64 / u64::MAX as f64;
        let version = (site_page as f64 * self.changes + phase) as u64;
        SplitMix64(seed ^ version.wrapping_mul(0xbf58_476d_1ce4_e5b9))
    }
}

/// `AGL 37.94 Decreased By ▼ -0.54 (-1.4%)`, with new numbers.
fn stock_line(out: &mut String, symbol: &str, random: &mut SplitMix64) {
    use std::fmt::Write as _;
    let price = 100 + random.below(50_000); // hundredths
    let (words, arrow, sign, change) = match random.below(20) {
        0 => ("No Change", '▼', "", 0),
        n => {
            let change = (price * (1 + random.below(1000)) / 10_000).max(1);
            if n % 2 == 0 {
                ("Increased By", '▲', "", change)
            } else {
                ("Decreased By", '▼', "-", change)
            }
        }
    };
    let percent = change * 10_000 / price; // hundredths of a percent
    let _ = write!(
        out,
        "{symbol} {} {words} {arrow} {sign}{} ({sign}{}%)",
        decimal(price, 2, false),
        decimal(change, 2, false),
        decimal(percent, 2, true)
    );
}

/// `KSE100 106,275 Decreased By -4795.3 (-4.32%)`, with new numbers.
fn index_line(out: &mut String, symbol: &str, random: &mut SplitMix64) {
    use std::fmt::Write as _;
    let level = 5_000 + random.below(115_000);
    let change = level * (1 + random.below(500)); // tenths × 1000
    let change = (change / 1000).max(1);
    let up = random.below(2) == 0;
    let (words, sign) = if up {
        ("Increased By", "")
    } else {
        ("Decreased By", "-")
    };
    let percent = change * 1000 / level; // hundredths of a percent
    let thousands = format!("{},{:03}", level / 1000, level % 1000);
    let _ = write!(
        out,
        "{symbol} {thousands} {words} {sign}{} ({sign}{}%)",
        decimal(change, 1, false),
        decimal(percent, 2, true)
    );
}

/// `value` with `scale` implied decimals, e.g. (12345, 2) → `123.45`; `trim` drops trailing
/// zeros as the ticker prints percentages (`-1.4`, `-3`).
fn decimal(value: u64, scale: u32, trim: bool) -> String {
    let unit = 10u64.pow(scale);
    let mut text = format!("{}.{:0width$}", value / unit, value % unit, width = scale as usize);
    if trim {
        while text.ends_with('0') {
            text.pop();
        }
        if text.ends_with('.') {
            text.pop();
        }
    }
    text
}

/// A small deterministic random number generator (SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

struct Preloaded {
    bytes: u64,
    events: u64,
    seconds: f64,
}

/// Publishes pages 0..count as JSON envelopes keyed by URL, fetched one millisecond apart from
/// `fetched_from`, with pagesplit's producer settings.
fn preload(
    bootstrap: &str,
    config: &Config,
    topic: &str,
    count: u64,
    mix: &PageMix,
    fetched_from: DateTime<Utc>,
) -> anyhow::Result<Preloaded> {
    let failed = Arc::new(AtomicU64::new(0));
    let producer: BaseProducer<CountingContext> = config
        .producer_config()
        .create_with_context(CountingContext { failed: failed.clone() })
        .with_context(|| format!("failed to create a producer for {bootstrap}"))?;
    let started = Instant::now();
    let (mut bytes, mut events) = (0u64, 0u64);
    for i in 0..count {
        let (url, body, page_events) = mix.page(i);
        let fetched_at = fetched_from + chrono::Duration::milliseconds(i as i64);
        let value = encode_envelope(&url, fetched_at, "text/plain", &body);
        bytes += value.len() as u64;
        events += page_events;
        send(&producer, BaseRecord::to(topic).key(url.as_bytes()).payload(&value))?;
        producer.poll(Duration::ZERO);
        if (i + 1) % 250_000 == 0 {
            eprintln!("  preloaded {} pages", i + 1);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    if failed.load(Ordering::SeqCst) > 0 {
        bail!("{} pages could not be preloaded", failed.load(Ordering::SeqCst));
    }
    Ok(Preloaded {
        bytes,
        events,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn send<C: ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, [u8], Vec<u8>>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => return Err(error.into()),
        }
    }
}

struct CountingContext {
    failed: Arc<AtomicU64>,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Topics, groups and measurements
// ---------------------------------------------------------------------------------------------

/// One run: its unique id, and the topics and groups it created (deleted by `cleanup`).
struct BenchRun {
    id: String,
    bootstrap: String,
    out: PathBuf,
    runtime: tokio::runtime::Handle,
    admin: AdminClient<DefaultClientContext>,
    topics: Vec<String>,
    groups: Vec<String>,
    /// The page mix's share of quotes that change from page to page (`--quote-changes`).
    quote_changes: f64,
}

/// The time window of one contender.
struct Window {
    launched: Instant,
    first_output: Instant,
    /// Every output written (or, without an expected count, every input page committed).
    done: Instant,
    /// Every input page committed.
    committed: Instant,
    /// CPU seconds the contender used from its first output to the end.
    cpu_seconds: Option<f64>,
    /// Context switches of its threads over the same time.
    context_switches: Option<u64>,
    /// Cores the whole machine kept busy over the same time (all processes, the broker's too).
    machine_cores_busy: Option<f64>,
}

impl Window {
    fn seconds(&self) -> f64 {
        self.done.duration_since(self.first_output).as_secs_f64()
    }

    fn report(&self, pages: u64, events: i64) -> Json {
        let seconds = self.seconds();
        let cpu_seconds = self.cpu_seconds;
        json!({
            "seconds": round2(seconds),
            "startup_seconds": round2(self.first_output.duration_since(self.launched).as_secs_f64()),
            "committed_after_seconds": round2(self.committed.duration_since(self.done).as_secs_f64()),
            "pages_per_s": (pages as f64 / seconds).round(),
            "events": events,
            "events_per_s": (events as f64 / seconds).round(),
            "cpu_seconds": cpu_seconds.map(round2),
            "cpu_ms_per_1000_pages": cpu_seconds.map(|cpu| round1(cpu * 1e6 / pages as f64)),
            "cores_busy": cpu_seconds.map(|cpu| round2(cpu / seconds)),
            "machine_cores_busy": self.machine_cores_busy.map(round2),
            "context_switches_per_page": self.context_switches.map(|n| round2(n as f64 / pages as f64)),
        })
    }

    fn summary(&self, pages: u64, events: i64) -> String {
        let seconds = self.seconds();
        let cpu = self.cpu_seconds.map_or_else(String::new, |cpu| {
            format!(
                ", {:.1} CPU ms per 1,000 pages, {:.2} cores busy",
                cpu * 1e6 / pages as f64,
                cpu / seconds
            )
        });
        let machine = self
            .machine_cores_busy
            .map_or_else(String::new, |busy| format!(" (machine: {busy:.2})"));
        format!(
            "{pages} pages in {seconds:.1} s: {:.0} pages/s, {:.0} records/s ({events} records){cpu}{machine}",
            pages as f64 / seconds,
            events as f64 / seconds
        )
    }
}

impl BenchRun {
    fn new(bootstrap: &str, out: &Path, runtime: tokio::runtime::Handle) -> anyhow::Result<Self> {
        let now = Utc::now();
        let id = format!("pagesplit-bench-{}-{}", now.format("%Y%m%d%H%M%S"), std::process::id());
        let admin = ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
        Ok(Self {
            id,
            bootstrap: bootstrap.to_owned(),
            out: out.to_owned(),
            runtime,
            admin,
            topics: Vec::new(),
            groups: Vec::new(),
            quote_changes: DEFAULT_QUOTE_CHANGES,
        })
    }

    /// Creates `<run id>.<role>`; with `log_append_time`, the broker stamps each record with
    /// the time it appended it.
    fn topic(&mut self, role: &str, partitions: i32, log_append_time: bool) -> anyhow::Result<String> {
        let name = format!("{}.{role}", self.id);
        let mut topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
        if log_append_time {
            topic = topic.set("message.timestamp.type", "LogAppendTime");
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = self.runtime.block_on(self.admin.create_topics([&topic], &options))?;
        for result in results {
            result.map_err(|(topic, code)| anyhow::anyhow!("failed to create {topic}: {code}"))?;
        }
        self.topics.push(name.clone());
        // Wait until every partition has a leader.
        self.ends(&name, partitions)?;
        Ok(name)
    }

    fn group(&mut self, role: &str) -> String {
        let name = format!("{}.{role}", self.id);
        self.groups.push(name.clone());
        name
    }

    /// A client for watermark look-ups.
    fn watermark_client(&self) -> anyhow::Result<BaseConsumer> {
        Ok(ClientConfig::new().set("bootstrap.servers", &self.bootstrap).create()?)
    }

    /// High watermarks of every partition.
    fn ends(&self, topic: &str, partitions: i32) -> anyhow::Result<BTreeMap<i32, i64>> {
        ends_with(&self.watermark_client()?, topic, partitions)
    }

    /// Records in the topics, all partitions.
    fn total(&self, topics: &[String], partitions: i32) -> anyhow::Result<i64> {
        total_with(&self.watermark_client()?, topics, partitions)
    }

    #[allow(clippy::too_many_arguments)]
    fn measure(
        &self,
        group: &str,
        input: &str,
        ends: &BTreeMap<i32, i64>,
        outputs: &[String],
        expected_outputs: Option<i64>,
        cpu: Option<&CpuClock>,
        alive: &mut dyn FnMut() -> bool,
    ) -> anyhow::Result<Window> {
        self.measure_with_progress(
            group,
            input,
            ends,
            outputs,
            expected_outputs,
            cpu,
            &mut Vec::new(),
            alive,
        )
    }

    /// Waits for the first record in `outputs`, then until `group` has committed every
    /// partition of `input` up to `ends`; `progress` gets (seconds since the start, committed
    /// pages) about once a second; `cpu` is read at the first output and at the end. With
    /// `expected_outputs`, the window ends when the outputs hold that many records (the commit,
    /// up to an auto-commit interval later, is still waited for but not timed).
    #[allow(clippy::too_many_arguments)]
    fn measure_with_progress(
        &self,
        group: &str,
        input: &str,
        ends: &BTreeMap<i32, i64>,
        outputs: &[String],
        expected_outputs: Option<i64>,
        cpu: Option<&CpuClock>,
        progress: &mut Vec<(f64, i64)>,
        alive: &mut dyn FnMut() -> bool,
    ) -> anyhow::Result<Window> {
        let committed_reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        let mut wanted = TopicPartitionList::new();
        for partition in ends.keys() {
            wanted.add_partition(input, *partition);
        }
        let partitions = ends.len() as i32;
        let watermarks = self.watermark_client()?;
        let launched = Instant::now();
        let mut first_output = None;
        let mut cpu_at_first_output = None;
        let mut switches_at_first_output = None;
        let mut machine_at_first_output = None;
        let mut last_progress = launched;
        let mut outputs_complete: Option<Reading> = None;
        let deadline = Duration::from_secs(3600);
        loop {
            // Serve the client's own events (it is never polled otherwise).
            watermarks.poll(Duration::ZERO);
            if first_output.is_none() || (expected_outputs.is_some() && outputs_complete.is_none()) {
                let total = total_with(&watermarks, outputs, partitions)?;
                if first_output.is_none() && total > 0 {
                    first_output = Some(Instant::now());
                    cpu_at_first_output = cpu.and_then(CpuClock::read);
                    switches_at_first_output = cpu.and_then(CpuClock::context_switches);
                    machine_at_first_output = MachineCpu::read();
                }
                if expected_outputs.is_some_and(|expected| total >= expected) {
                    outputs_complete = Some((
                        Instant::now(),
                        cpu.and_then(CpuClock::read),
                        cpu.and_then(CpuClock::context_switches),
                        MachineCpu::read(),
                    ));
                }
            }
            let committed = committed_reader.committed_offsets(wanted.clone(), Duration::from_secs(5))?;
            let mut done = 0;
            let mut behind = false;
            for (partition, end) in ends {
                let offset = match committed.find_partition(input, *partition).map(|e| e.offset()) {
                    Some(Offset::Offset(offset)) => offset,
                    _ => 0,
                };
                done += offset.min(*end);
                behind |= offset < *end;
            }
            let now = Instant::now();
            if now.duration_since(last_progress) >= Duration::from_secs(1) || !behind {
                progress.push((now.duration_since(launched).as_secs_f64(), done));
                last_progress = now;
            }
            if !behind {
                let (done, cpu_at_end, switches_at_end, machine_at_end) = outputs_complete.unwrap_or_else(|| {
                    (
                        now,
                        cpu.and_then(CpuClock::read),
                        cpu.and_then(CpuClock::context_switches),
                        MachineCpu::read(),
                    )
                });
                return Ok(Window {
                    launched,
                    first_output: first_output.unwrap_or(now),
                    done,
                    committed: now,
                    cpu_seconds: cpu_at_first_output.zip(cpu_at_end).map(|(first, end)| end - first),
                    context_switches: switches_at_first_output
                        .zip(switches_at_end)
                        .map(|(first, end)| end.saturating_sub(first)),
                    machine_cores_busy: machine_at_first_output
                        .zip(machine_at_end)
                        .and_then(|(first, end)| end.cores_busy_since(&first)),
                });
            }
            if !alive() {
                bail!("the worker of group {group} stopped before it was done");
            }
            if launched.elapsed() > deadline {
                bail!("group {group} did not finish within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Decodes the first records of each topic with the bundled schemas (single-object); how
    /// many decoded.
    fn check_decodes(&self, topics: &[&String]) -> anyhow::Result<u64> {
        let mut decoded = 0;
        for topic in topics {
            let available = self.ends(topic, 1)?.values().sum::<i64>().clamp(0, 50) as u64;
            for (_, value) in read_all(&self.bootstrap, topic, 1, available)? {
                if decode_single_object(&value).is_none() {
                    bail!("a record of {topic} does not decode with the bundled schemas");
                }
                decoded += 1;
            }
        }
        Ok(decoded)
    }

    /// Deletes the run's topics and groups (best effort).
    fn cleanup(&mut self) {
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let groups: Vec<&str> = self.groups.iter().map(String::as_str).collect();
        if !groups.is_empty() {
            if let Err(error) = self.runtime.block_on(self.admin.delete_groups(&groups, &options)) {
                eprintln!("could not delete groups: {error}");
            }
        }
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        if !topics.is_empty() {
            match self.runtime.block_on(self.admin.delete_topics(&topics, &options)) {
                Ok(_) => eprintln!(
                    "deleted {} topics and {} groups of {}",
                    topics.len(),
                    groups.len(),
                    self.id
                ),
                Err(error) => eprintln!("could not delete topics: {error}"),
            }
        }
        self.topics.clear();
        self.groups.clear();
    }
}

/// High watermarks of every partition; retries for a while (a new topic may have no leader yet).
fn ends_with(client: &BaseConsumer, topic: &str, partitions: i32) -> anyhow::Result<BTreeMap<i32, i64>> {
    let started = Instant::now();
    let mut ends = BTreeMap::new();
    for partition in 0..partitions {
        loop {
            match client.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
                Ok((_, high)) => {
                    ends.insert(partition, high);
                    break;
                }
                Err(_) if started.elapsed() < Duration::from_secs(30) => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => {
                    return Err(error).with_context(|| format!("no watermarks for {topic}[{partition}]"));
                }
            }
        }
    }
    Ok(ends)
}

/// Records in the topics, all partitions.
fn total_with(client: &BaseConsumer, topics: &[String], partitions: i32) -> anyhow::Result<i64> {
    let mut total = 0;
    for topic in topics {
        total += ends_with(client, topic, partitions)?.values().sum::<i64>();
    }
    Ok(total)
}

/// The worker configuration of a contender: defaults, the run's topics and group, single-object
/// encoding (no registry), no HTTP endpoint.
/// pagesplit's client settings for a client that only reads `input` (as `group`) or writes to
/// it: the output topics are placeholders, distinct as the configuration requires.
fn client_config(bootstrap: &str, group: &str, input: &str) -> anyhow::Result<Config> {
    bench_config(
        bootstrap,
        group,
        input,
        "unused.quotes",
        "unused.articles",
        "unused.dlq",
        "",
    )
}

fn bench_config(
    bootstrap: &str,
    group: &str,
    input: &str,
    quotes: &str,
    articles: &str,
    dead_letter: &str,
    quotes_latest: &str,
) -> anyhow::Result<Config> {
    let overrides: Vec<(String, String)> = [
        ("kafka.bootstrap_servers", bootstrap),
        ("kafka.group_id", group),
        ("topics.input", input),
        ("topics.quotes", quotes),
        ("topics.articles", articles),
        ("topics.dead_letter", dead_letter),
        ("topics.quotes_latest", quotes_latest),
        ("encoding.format", "single-object"),
        ("http.enabled", "false"),
    ]
    .iter()
    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
    .collect();
    // `PAGESPLIT_*` settings of the environment apply too, below these (e.g.
    // `PAGESPLIT_TOPICS__LINEAGE_HEADERS=false` to measure what the lineage headers cost).
    Ok(Config::load(None, std::env::vars(), &overrides)?)
}

// ---------------------------------------------------------------------------------------------
// Child processes: the worker binary, CPU time, RSS
// ---------------------------------------------------------------------------------------------

/// Which `PAGESPLIT_*` variables of the calling shell a worker sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkerEnv {
    /// None: only the settings given.
    Clean,
    /// All of them, below the settings given (e.g. `PAGESPLIT_TOPICS__LINEAGE_HEADERS=false`).
    Inherit,
}

fn spawn_worker(
    run: &BenchRun,
    worker: &Path,
    settings: &[(&str, &str)],
    role: &str,
    env: WorkerEnv,
) -> anyhow::Result<Child> {
    if !worker.exists() {
        bail!("{} not found: build it with `cargo build --release`", worker.display());
    }
    let log_path = run.out.join(format!("{}-{role}-worker.log", run.id));
    let log = std::fs::File::create(&log_path)?;
    let mut command = Command::new(worker);
    command
        .arg("run")
        .args(["--set", &format!("kafka.bootstrap_servers={}", run.bootstrap)]);
    for (key, value) in settings {
        command.args(["--set", &format!("{key}={value}")]);
    }
    // Only the settings above: no PAGESPLIT_* variables from the calling shell.
    for (name, _) in std::env::vars() {
        if env == WorkerEnv::Clean && name.starts_with("PAGESPLIT_") {
            command.env_remove(name);
        }
    }
    let child = command
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("failed to start {}", worker.display()))?;
    eprintln!("worker pid {} (log: {})", child.id(), log_path.display());
    Ok(child)
}

/// SIGTERM: the worker (or the Python reference) drains, commits and exits.
fn terminate(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    }
}

fn wait_ready(address: &str, worker: &mut Child) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok((200, _)) = http_get(address, "/readyz") {
            return Ok(());
        }
        if !matches!(worker.try_wait(), Ok(None)) {
            bail!("the worker exited during startup; see its log");
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the worker did not become ready within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http_get(address: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address.parse()?, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
    Ok((status, body))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// User + system CPU time of a process, read from /proc.
struct CpuClock {
    pid: String,
}

impl CpuClock {
    fn of_self() -> Self {
        Self { pid: "self".to_owned() }
    }

    fn of(pid: u32) -> Self {
        Self { pid: pid.to_string() }
    }

    fn read(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // Fields after the command name (which may contain spaces): utime is the 12th, stime the 13th.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // USER_HZ is 100 on Linux.
        Some(ticks / 100.0)
    }

    /// Voluntary and involuntary context switches of all the process's current threads.
    fn context_switches(&self) -> Option<u64> {
        let mut total = 0;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.pid)).ok()? {
            let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
            for line in status.lines() {
                if let Some(rest) = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    total += rest.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        Some(total)
    }
}

/// A moment of a run: when, the contender's CPU seconds and context switches, the machine's CPU.
type Reading = (Instant, Option<f64>, Option<u64>, Option<MachineCpu>);

/// The machine's CPU time, busy and total, from the first line of /proc/stat.
#[derive(Debug, Clone, Copy)]
struct MachineCpu {
    busy: u64,
    total: u64,
    cores: usize,
}

impl MachineCpu {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cores = stat
            .lines()
            .filter(|line| line.starts_with("cpu") && !line.starts_with("cpu "))
            .count();
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|field| field.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is within user).
        let total: u64 = ticks.iter().take(8).sum();
        let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0);
        Some(Self {
            busy: total - idle,
            total,
            cores,
        })
    }

    /// The cores kept busy on average since `earlier`.
    fn cores_busy_since(&self, earlier: &Self) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|total| *total > 0)?;
        let busy = self.busy.saturating_sub(earlier.busy);
        Some(busy as f64 / total as f64 * self.cores as f64)
    }
}

/// VmRSS and VmHWM of a process, sampled periodically.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<RssSample>>,
}

#[derive(Debug, Clone, Copy)]
struct RssSample {
    at: f64,
    rss_kb: u64,
    hwm_kb: u64,
    threads: u64,
}

impl RssSampler {
    fn start(pid: u32, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut samples = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                        break;
                    };
                    let field = |name: &str| {
                        status
                            .lines()
                            .find_map(|line| line.strip_prefix(name))
                            .and_then(|rest| rest.split_whitespace().next())
                            .and_then(|kb| kb.parse().ok())
                            .unwrap_or(0)
                    };
                    samples.push(RssSample {
                        at: started.elapsed().as_secs_f64(),
                        rss_kb: field("VmRSS:"),
                        hwm_kb: field("VmHWM:"),
                        threads: field("Threads:"),
                    });
                    std::thread::sleep(every);
                }
                samples
            })
        };
        Self { stop, thread }
    }

    fn stop(self) -> Vec<RssSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

struct RssSummary {
    min_kb: u64,
    max_kb: u64,
    peak_kb: u64,
    max_threads: u64,
    samples: usize,
}

impl RssSummary {
    /// Over the samples from `from` seconds on (all when `None`).
    fn of(samples: &[RssSample], from: Option<f64>) -> Self {
        let window: Vec<&RssSample> = samples.iter().filter(|s| s.at >= from.unwrap_or(0.0)).collect();
        Self {
            min_kb: window.iter().map(|s| s.rss_kb).min().unwrap_or(0),
            max_kb: window.iter().map(|s| s.rss_kb).max().unwrap_or(0),
            peak_kb: samples.iter().map(|s| s.hwm_kb).max().unwrap_or(0),
            max_threads: window.iter().map(|s| s.threads).max().unwrap_or(0),
            samples: window.len(),
        }
    }

    fn to_json(&self) -> Json {
        json!({
            "min_mb": round1(self.min_kb as f64 / 1024.0),
            "max_mb": round1(self.max_kb as f64 / 1024.0),
            "peak_vmhwm_mb": round1(self.peak_kb as f64 / 1024.0),
            "max_threads": self.max_threads,
            "samples": self.samples,
        })
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(test, feature = "broker-tests"))]
mod tests {
    use super::*;

    #[test]
    fn page_waits_are_read_from_the_metrics_text() {
        let text = "# TYPE pagesplit_page_wait_seconds histogram\n\
            pagesplit_page_wait_seconds_bucket{wait=\"ordering\",le=\"0.00001\"} 1\n\
            pagesplit_page_wait_seconds_sum{wait=\"ordering\"} 0.25\n\
            pagesplit_page_wait_seconds_count{wait=\"ordering\"} 10\n\
            pagesplit_page_wait_seconds_count{wait=\"split_queue\"} 3\n\
            pagesplit_page_processing_seconds_count 10\n";
        let waits = page_waits(text);
        assert_eq!(waits.len(), 2);
        assert_eq!(waits["ordering"], (10.0, 0.25));
        assert_eq!(waits["split_queue"], (3.0, 0.0));
    }

    /// The throughput harness on a few pages against the test broker: each contender works
    /// through every page, writes every expected record and nothing to the dead-letter topic,
    /// and the ratios are reported.
    #[test]
    fn the_throughput_harness_runs_on_a_few_pages() {
        let bootstrap = std::env::var("PAGESPLIT_TEST_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
        let out = std::env::temp_dir().join(format!("pagesplit-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut run = BenchRun::new(&bootstrap, &out, runtime.handle().clone()).unwrap();
        // Quotes that never change: the latest-quote topic gets each symbol once, whatever the
        // order the pages are consumed in.
        run.quote_changes = 0.0;
        // The debug binary next to this test's (`cargo build` first).
        let worker = std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("pagesplit");
        let args = ThroughputArgs {
            pages: 3_000,
            partitions: 2,
            python: None,
            worker,
            contenders: vec![Contender::PassThrough, Contender::Pagesplit],
        };
        let report = throughput(&mut run, &args);
        run.cleanup();
        std::fs::remove_dir_all(&out).ok();
        let report = report.unwrap();
        assert_eq!(report["pages"], 3_000);
        let expected = report["expected_events"].as_i64().unwrap();
        // Two pages in three carry a 34-line ticker strip: 34 quotes and an article; the third
        // an article only.
        assert_eq!(expected, 2_000 * 35 + 1_000);
        assert_eq!(report["pass_through"]["events"], 3_000);
        assert_eq!(report["pass_through_fanned_out"]["events"], 3_000 * 24);
        assert_eq!(report["pass_through_fanned_out_with_headers"]["events"], 3_000 * 24);
        assert_eq!(report["pass_through_fanned_out_with_headers"]["lineage_headers"], true);
        assert_eq!(report["pagesplit"]["events"], expected);
        // The two strips' symbols (34 lines each, a few shared): each on the latest-quote topic
        // once.
        let symbols = report["quote_symbols"].as_i64().unwrap();
        assert_eq!(symbols, 64);
        assert_eq!(report["pagesplit_with_latest"]["latest_records"], symbols);
        assert_eq!(report["pagesplit_with_latest"]["events"], expected + symbols);
        for name in ["pagesplit", "pagesplit_with_latest"] {
            assert_eq!(report[name]["dead_letters"], 0, "{name}");
            assert!(report[name]["decoded_sample"].as_u64().unwrap() > 0, "{name}");
            // Every page passed each wait, read from the worker's metrics before it stopped.
            for wait in ["split_queue", "ordering", "producer_queue", "acknowledgement"] {
                assert_eq!(report[name]["page_waits"][wait]["pages"], 3_000.0, "{name} {wait}");
            }
        }
        for ratio in [
            "ratio_pagesplit_to_pass_through",
            "ratio_pagesplit_to_pass_through_fanned_out",
            "ratio_pagesplit_to_pass_through_fanned_out_with_headers",
        ] {
            // Reported (a few pages in a debug build say nothing about its value).
            assert!(report[ratio].as_f64().is_some(), "{ratio}");
        }
    }
}
