//! A bounded soak on a cluster of brokers (run by `bench/soak.sh`, which starts the cluster with
//! `deploy/local/stack up --brokers 3`): pages published continuously while random faults hit
//! the workers and the brokers, then every event counted by its id.
//!
//! Faults, one at a time, every `--min-interval`..`--max-interval` seconds:
//! - `worker-kill`: a random worker gets `kill -9` and is started again at once (same name);
//! - `broker-kill`: a random node gets `kill -9` (`deploy/local/stack kill kafkaN`); once the
//!   output has resumed it is restarted on its data and the next fault waits until it is back in
//!   every partition's in-sync replicas;
//! - `scale`: 1 worker becomes 3, or 3 become 1 (SIGTERM, a scale-in).
//!
//! Recovery: seconds from the fault (for a scale-in, from the last exit) until every input
//! partition has produced output again, read with `isolation.level=read_committed`.
//! At the end the publisher stops, the workers finish the backlog and stop, and the output
//! topics are read back: pages lost (no article and not dead-lettered), articles and quotes
//! published more than once (by page URL and by `event_id`).
//!
//! Topics and group are `pagesplit-soak-<time>-<pid>.*`, deleted at the end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use pagesplit::config::Config;
use pagesplit::demo::{PageToPublish, Positions};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Headers as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};

#[derive(Parser, Debug)]
struct Args {
    /// Kafka bootstrap servers (every node).
    #[arg(long)]
    bootstrap: String,
    /// The stack script that kills and restarts nodes (its environment names the cluster).
    #[arg(long, default_value = "deploy/local/stack")]
    stack: String,
    /// Nodes of the cluster (`kafka1`..`kafkaN`).
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// The pagesplit binary.
    #[arg(long, default_value = "target/release/pagesplit")]
    bin: String,
    /// How long faults are injected.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// `at-least-once` or `exactly-once`.
    #[arg(long, default_value = "at-least-once")]
    mode: String,
    /// Pages per second offered.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Input partitions.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Shortest time between two faults, seconds.
    #[arg(long, default_value_t = 15)]
    min_interval: u64,
    /// Longest time between two faults, seconds.
    #[arg(long, default_value_t = 30)]
    max_interval: u64,
    /// Seed of the fault schedule (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Give up on a recovery (and on the final catch-up) after this many seconds.
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    /// Directory for the workers' logs.
    #[arg(long, default_value = "target/bench-soak")]
    out: String,
}

/// When each input partition produced an article (read_committed), in arrival order.
#[derive(Default)]
struct Outputs {
    seen: Mutex<Vec<(Instant, i32)>>,
}

/// How long after a fault (at most until the next) a partition without output counts as stalled.
const STALL_WINDOW: Duration = Duration::from_secs(60);

impl Outputs {
    /// The longest time any input partition went without output between `from` and `to`.
    fn longest_stall(&self, from: Instant, to: Instant, partitions: i32) -> f64 {
        let seen = self.seen.lock().unwrap();
        let mut last: HashMap<i32, Instant> = (0..partitions).map(|partition| (partition, from)).collect();
        let mut longest = Duration::ZERO;
        let start = seen.partition_point(|(at, _)| *at <= from);
        for (at, partition) in seen[start..].iter().take_while(|(at, _)| *at <= to) {
            if let Some(previous) = last.insert(*partition, *at) {
                longest = longest.max(*at - previous);
            }
        }
        let tail = last.values().map(|at| to.saturating_duration_since(*at)).max();
        longest.max(tail.unwrap_or_default()).as_secs_f64()
    }

    /// The input partitions that produced after `since`.
    fn produced_after(&self, since: Instant) -> HashSet<i32> {
        let seen = self.seen.lock().unwrap();
        let start = seen.partition_point(|(at, _)| *at <= since);
        seen[start..].iter().map(|(_, partition)| *partition).collect()
    }
}

/// What the publisher sent (acknowledged) and what it could not confirm.
#[derive(Default)]
struct Sent {
    urls: Vec<String>,
    positions: Positions,
    unconfirmed: usize,
}

/// One fault and how long the output took to resume.
struct Recovery {
    kind: &'static str,
    at: Instant,
    seconds: Option<f64>,
}

struct Soak {
    args: Args,
    config: Config,
    outputs: Arc<Outputs>,
    workers: Vec<Option<Child>>,
    rng: fastrand::Rng,
    recoveries: Vec<Recovery>,
    /// Workers that exited without being told to (and were started again, as a supervisor would).
    unexpected_exits: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !matches!(args.mode.as_str(), "at-least-once" | "exactly-once") {
        bail!("--mode is at-least-once or exactly-once");
    }
    std::fs::create_dir_all(&args.out)?;
    let config = soak_config(&args);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(pagesplit::app::prepare_topics(&config))?;
    let stop = Arc::new(AtomicBool::new(false));
    let outputs = Arc::new(Outputs::default());
    let sent = Arc::new(Mutex::new(Sent::default()));
    let publisher = publish(&config, args.rate, sent.clone(), stop.clone());
    let reader_stop = Arc::new(AtomicBool::new(false));
    let reader = read_outputs(&config, outputs.clone(), reader_stop.clone())?;
    let seed = args
        .seed
        .unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64);
    println!(
        "soak: {} min, {}, {} pages/s, {} partitions, seed {seed}",
        args.minutes, args.mode, args.rate, args.partitions
    );
    let mut soak = Soak {
        workers: (0..3).map(|_| None).collect(),
        rng: fastrand::Rng::with_seed(seed),
        recoveries: Vec::new(),
        unexpected_exits: 0,
        args,
        config,
        outputs,
    };
    let started = Instant::now();
    let result = soak.run(started);
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    let finished = result.and_then(|()| soak.finish(&sent));
    for worker in soak.workers.iter_mut().flatten() {
        let _ = worker.kill();
        let _ = worker.wait();
    }
    reader_stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    let report = finished.and_then(|()| soak.report(&sent.lock().unwrap(), started));
    runtime.block_on(delete_topics(&soak.config));
    report
}

fn soak_config(args: &Args) -> Config {
    let id = format!(
        "pagesplit-soak-{}-{}",
        chrono::Utc::now().format("%H%M%S"),
        std::process::id()
    );
    let mut config = Config::default();
    config.kafka.bootstrap_servers = args.bootstrap.clone();
    config.kafka.group_id = format!("{id}.group");
    config.topics.input = format!("{id}.raw");
    config.topics.quotes = format!("{id}.quotes");
    config.topics.articles = format!("{id}.articles");
    config.topics.dead_letter = format!("{id}.dlq");
    config.topics.quotes_latest = format!("{id}.latest");
    config.topics.create = true;
    config.topics.partitions = args.partitions;
    config.topics.replication_factor = 3.min(args.nodes as i32);
    config
}

impl Soak {
    /// Starts one worker, then injects faults until the soak's time is up.
    fn run(&mut self, started: Instant) -> anyhow::Result<()> {
        self.spawn(0)?;
        self.wait_all_producing(Instant::now())?;
        let end = started + Duration::from_secs_f64(self.args.minutes * 60.0);
        loop {
            let pause = Duration::from_secs(self.rng.u64(self.args.min_interval..=self.args.max_interval));
            if Instant::now() + pause >= end {
                break;
            }
            self.pause(pause)?;
            let kind = ["worker-kill", "broker-kill", "scale"][self.rng.usize(0..3)];
            let at = Instant::now();
            let seconds = match kind {
                "worker-kill" => self.worker_kill()?,
                "broker-kill" => self.broker_kill()?,
                _ => self.scale()?,
            };
            println!(
                "{:>6.1} s  {kind:<12} output resumed after {}",
                started.elapsed().as_secs_f64(),
                seconds.map_or("(not within the timeout)".to_owned(), |s| format!("{s:.2} s"))
            );
            self.recoveries.push(Recovery { kind, at, seconds });
        }
        if let Some(rest) = end.checked_duration_since(Instant::now()) {
            self.pause(rest)?;
        }
        Ok(())
    }

    /// Waits `duration`, restarting meanwhile any worker that exits on its own.
    fn pause(&mut self, duration: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.supervise()?;
            std::thread::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())));
        }
        Ok(())
    }

    /// Starts again, as a supervisor would, every worker that exited without being told to.
    fn supervise(&mut self) -> anyhow::Result<()> {
        for index in 0..self.workers.len() {
            let exited = match self.workers[index].as_mut() {
                Some(worker) => worker.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                println!("worker {index} exited on its own ({status}); started again");
                self.unexpected_exits += 1;
                self.spawn(index)?;
            }
        }
        Ok(())
    }

    fn running(&self) -> Vec<usize> {
        (0..self.workers.len()).filter(|i| self.workers[*i].is_some()).collect()
    }

    fn worker_kill(&mut self) -> anyhow::Result<Option<f64>> {
        let running = self.running();
        let victim = running[self.rng.usize(0..running.len())];
        let fault = Instant::now();
        self.kill(victim);
        self.spawn(victim)?;
        self.recovered_after(fault)
    }

    fn broker_kill(&mut self) -> anyhow::Result<Option<f64>> {
        let node = self.rng.u32(1..=self.args.nodes);
        let fault = Instant::now();
        self.stack(&["kill", &format!("kafka{node}")])?;
        let seconds = self.recovered_after(fault)?;
        self.stack(&["up"])?;
        let deadline = Instant::now() + Duration::from_secs(self.args.timeout);
        while !fully_in_sync(&self.config, self.args.nodes.min(3) as usize) {
            if Instant::now() > deadline {
                bail!("node {node} not back in sync within {} s", self.args.timeout);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(seconds)
    }

    fn scale(&mut self) -> anyhow::Result<Option<f64>> {
        let running = self.running();
        if running.len() == 1 {
            let fault = Instant::now();
            for index in (0..3).filter(|i| !running.contains(i)) {
                self.spawn(index)?;
            }
            return self.recovered_after(fault);
        }
        let keep = running[self.rng.usize(0..running.len())];
        for index in running.into_iter().filter(|i| *i != keep) {
            if let Some(worker) = self.workers[index].as_ref() {
                Command::new("kill")
                    .args(["-TERM", &worker.id().to_string()])
                    .status()?;
            }
        }
        for index in 0..3 {
            if index != keep {
                if let Some(mut worker) = self.workers[index].take() {
                    worker.wait()?;
                }
            }
        }
        self.recovered_after(Instant::now())
    }

    /// Seconds from `fault` until every input partition produced again; `None` past the timeout.
    fn recovered_after(&mut self, fault: Instant) -> anyhow::Result<Option<f64>> {
        let deadline = fault + Duration::from_secs(self.args.timeout);
        loop {
            self.supervise()?;
            if self.outputs.produced_after(fault).len() == self.args.partitions as usize {
                let seen = self.outputs.seen.lock().unwrap();
                let mut first: HashMap<i32, Instant> = HashMap::new();
                let start = seen.partition_point(|(at, _)| *at <= fault);
                for (at, partition) in &seen[start..] {
                    first.entry(*partition).or_insert(*at);
                }
                return Ok(first.values().max().map(|at| (*at - fault).as_secs_f64()));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_all_producing(&mut self, since: Instant) -> anyhow::Result<()> {
        self.recovered_after(since)?
            .map(|_| ())
            .context("the output did not start")
    }

    fn stack(&self, args: &[&str]) -> anyhow::Result<()> {
        let status = Command::new(&self.args.stack)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {}", self.args.stack))?;
        if !status.success() {
            bail!("{} {} failed", self.args.stack, args.join(" "));
        }
        Ok(())
    }

    /// Starts worker `index` (again), named `soak-<index>`.
    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let config = &self.config;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let sets = [
            format!("kafka.bootstrap_servers={}", config.kafka.bootstrap_servers),
            format!("kafka.group_id={}", config.kafka.group_id),
            format!("kafka.group_instance_id=soak-{index}"),
            format!("topics.input={}", config.topics.input),
            format!("topics.quotes={}", config.topics.quotes),
            format!("topics.articles={}", config.topics.articles),
            format!("topics.dead_letter={}", config.topics.dead_letter),
            format!("topics.quotes_latest={}", config.topics.quotes_latest),
            "encoding.format=single-object".to_owned(),
            format!("delivery.mode={}", self.args.mode),
            format!("delivery.instance_id=soak-{index}"),
            format!("http.listen=127.0.0.1:{port}"),
            "log.level=info".to_owned(),
        ];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{}/worker-{index}.log", self.args.out))?;
        let mut command = Command::new(&self.args.bin);
        command.arg("run");
        for set in sets {
            command.args(["--set", &set]);
        }
        let child = command
            .env_remove("HOSTNAME")
            .env_remove("PAGESPLIT_CONFIG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.args.bin))?;
        self.workers[index] = Some(child);
        Ok(())
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut worker) = self.workers[index].take() {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }

    /// Waits until the group has committed past every page published, then stops the workers.
    fn finish(&mut self, sent: &Mutex<Sent>) -> anyhow::Result<()> {
        let positions = sent.lock().unwrap().positions.clone();
        let deadline = Instant::now() + Duration::from_secs(self.args.timeout);
        while pagesplit::demo::wait_committed(
            &self.config.kafka.bootstrap_servers,
            &self.config.kafka.group_id,
            &self.config.topics.input,
            &positions,
            Duration::from_secs(5),
        )
        .is_err()
        {
            self.supervise()?;
            if Instant::now() > deadline {
                bail!("the workers did not catch up with the backlog");
            }
        }
        for worker in self.workers.iter().flatten() {
            Command::new("kill")
                .args(["-TERM", &worker.id().to_string()])
                .status()?;
        }
        for worker in self.workers.iter_mut() {
            if let Some(mut worker) = worker.take() {
                worker.wait()?;
            }
        }
        Ok(())
    }

    fn report(&self, sent: &Sent, started: Instant) -> anyhow::Result<()> {
        let counts = count_outputs(&self.config)?;
        let lost = sent
            .urls
            .iter()
            .filter(|url| !counts.articles.contains_key(*url) && !counts.dead_lettered.contains(*url))
            .count();
        let duplicate_articles: usize = counts.articles.values().map(|n| n - 1).sum();
        let duplicate_quotes: usize = counts.quotes.values().map(|n| n - 1).sum();
        println!(
            "soak {}: {:.1} min, {} faults, pages sent {} (unconfirmed {}), lost {lost}, dead-lettered {}, \
             articles {} (duplicates {duplicate_articles}), quotes {} distinct (duplicates {duplicate_quotes})",
            self.args.mode,
            started.elapsed().as_secs_f64() / 60.0,
            self.recoveries.len(),
            sent.urls.len(),
            sent.unconfirmed,
            counts.dead_lettered.len(),
            counts.articles.len(),
            counts.quotes.len(),
        );
        let mut by_kind: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut unrecovered = 0;
        for recovery in &self.recoveries {
            match recovery.seconds {
                Some(seconds) => by_kind.entry(recovery.kind).or_default().push(seconds),
                None => unrecovered += 1,
            }
        }
        let all: Vec<f64> = by_kind.values().flatten().copied().collect();
        for (kind, seconds) in by_kind.iter().map(|(k, v)| (*k, v.clone())).chain([("all", all)]) {
            println!("resumed  {kind:<12} {}", summary(seconds));
        }
        let mut stalls: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (index, recovery) in self.recoveries.iter().enumerate() {
            let next = self.recoveries.get(index + 1).map_or(Instant::now(), |next| next.at);
            let to = next.min(recovery.at + STALL_WINDOW);
            stalls
                .entry(recovery.kind)
                .or_default()
                .push(self.outputs.longest_stall(recovery.at, to, self.args.partitions));
        }
        let all: Vec<f64> = stalls.values().flatten().copied().collect();
        for (kind, seconds) in stalls.iter().map(|(k, v)| (*k, v.clone())).chain([("all", all)]) {
            println!("stalled  {kind:<12} {}", summary(seconds));
        }
        println!("faults without recovery within {} s: {unrecovered}", self.args.timeout);
        println!(
            "workers that exited on their own (started again): {}",
            self.unexpected_exits
        );
        if lost > 0 || unrecovered > 0 {
            bail!("{lost} pages lost, {unrecovered} faults without recovery");
        }
        if self.args.mode == "exactly-once" && duplicate_articles + duplicate_quotes > 0 {
            bail!("duplicates in exactly-once");
        }
        Ok(())
    }
}

/// `n`, min, median and max of `seconds`.
fn summary(mut seconds: Vec<f64>) -> String {
    if seconds.is_empty() {
        return "n=0".to_owned();
    }
    seconds.sort_by(f64::total_cmp);
    format!(
        "n={} min {:.2} s  median {:.2} s  max {:.2} s",
        seconds.len(),
        seconds[0],
        seconds[seconds.len() / 2],
        seconds[seconds.len() - 1]
    )
}

/// Whether every partition of the soak's topics has `replicas` nodes in sync.
fn fully_in_sync(config: &Config, replicas: usize) -> bool {
    let Ok(consumer) = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .create::<BaseConsumer>()
    else {
        return false;
    };
    [&config.topics.input, &config.topics.quotes, &config.topics.articles]
        .iter()
        .all(
            |topic| match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
                Ok(metadata) => metadata
                    .topics()
                    .iter()
                    .flat_map(|found| found.partitions())
                    .all(|partition| partition.isr().len() == replicas && partition.leader() >= 0),
                Err(_) => false,
            },
        )
}

/// Publishes a tenth of `rate` pages every 100 ms until stopped; records what was acknowledged.
fn publish(config: &Config, rate: u32, sent: Arc<Mutex<Sent>>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (bootstrap, topic) = (config.kafka.bootstrap_servers.clone(), config.topics.input.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000")
            .create()
            .expect("producer");
        let per_round = (rate / 10).max(1) as usize;
        let mut round: u64 = 0;
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let pages = pages(round, per_round);
            runtime.block_on(send_pages(&producer, &topic, pages, &sent));
            round += 1;
            let due = started + Duration::from_millis(100 * round);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    })
}

/// Sends `pages` keyed by URL and waits for every acknowledgement; records in `sent` what
/// was acknowledged (URL, highest offsets) and counts what was not.
async fn send_pages(producer: &FutureProducer, topic: &str, pages: Vec<PageToPublish>, sent: &Mutex<Sent>) {
    let values: Vec<Vec<u8>> = pages
        .iter()
        .map(|page| pagesplit::envelope::encode_envelope(&page.url, page.fetched_at, &page.content_type, &page.body))
        .collect();
    let deliveries = pages.iter().zip(&values).map(|(page, value)| {
        producer.send(
            FutureRecord::to(topic).key(page.url.as_bytes()).payload(value),
            Duration::from_secs(5),
        )
    });
    let results = futures::future::join_all(deliveries).await;
    let mut sent = sent.lock().unwrap();
    for (page, result) in pages.into_iter().zip(results) {
        match result {
            Ok(delivered) => {
                let highest = sent.positions.entry(delivered.partition).or_insert(delivered.offset);
                *highest = (*highest).max(delivered.offset);
                sent.urls.push(page.url);
            }
            Err((error, _)) => {
                eprintln!("publishing {}: {error}", page.url);
                sent.unconfirmed += 1;
            }
        }
    }
}

fn pages(round: u64, count: usize) -> Vec<PageToPublish> {
    (0..count)
        .map(|n| PageToPublish {
            url: format!("https://www.brecorder.com/soak/{round}/{n}"),
            fetched_at: chrono::Utc::now(),
            content_type: "text/plain".to_owned(),
            body: format!(
                "AGL {}.{:02} Increased By ▲ 0.55 (0.72%)\nBOP 5.44 No Change ▼ 0.00 (0%)\n\
                 KSE100 106,275 Decreased By -4795.3 (-4.32%)\n\n\
                 KARACHI: Page {n} of round {round} of the soak.\n\nBrokers said volumes were thin.",
                30 + round % 50,
                n % 100
            ),
        })
        .collect()
}

/// Follows the article topic (read_committed) from its beginning, noting each record's input
/// partition (its `pagesplit.source.partition` header).
fn read_outputs(
    config: &Config,
    outputs: Arc<Outputs>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .set("group.id", format!("{}.reader", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "20")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..config.topics.partitions {
        assignment.add_partition_offset(&config.topics.articles, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let partition = message.headers().and_then(|headers| {
                headers
                    .iter()
                    .find(|header| header.key == "pagesplit.source.partition")
                    .and_then(|header| std::str::from_utf8(header.value?).ok()?.parse().ok())
            });
            if let Some(partition) = partition {
                outputs.seen.lock().unwrap().push((Instant::now(), partition));
            }
        }
    }))
}

/// The outputs read back: articles per URL, quotes per event id, dead-lettered page keys.
struct Counts {
    articles: HashMap<String, usize>,
    quotes: HashMap<String, usize>,
    dead_lettered: HashSet<String>,
}

fn count_outputs(config: &Config) -> anyhow::Result<Counts> {
    let bootstrap = &config.kafka.bootstrap_servers;
    let mut articles = HashMap::new();
    for (key, _) in read_committed(bootstrap, &config.topics.articles)? {
        *articles.entry(key).or_default() += 1;
    }
    let schema = &pagesplit::encode::Schemas::bundled().quote;
    let mut quotes = HashMap::new();
    for (_, value) in read_committed(bootstrap, &config.topics.quotes)? {
        let event = pagesplit::demo::decode_event(&value, schema)?;
        let id = pagesplit::encode::value_to_json(&event)["event_id"]
            .as_str()
            .context("a quote without event_id")?
            .to_owned();
        *quotes.entry(id).or_default() += 1;
    }
    let dead_lettered = read_committed(bootstrap, &config.topics.dead_letter)?
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    Ok(Counts {
        articles,
        quotes,
        dead_lettered,
    })
}

/// Every record (key, value) of `topic` a read_committed consumer sees up to the current ends.
fn read_committed(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let ends = pagesplit::demo::end_offsets(bootstrap, topic)?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pagesplit-soak-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in ends.keys() {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut done: BTreeMap<i32, bool> = ends.iter().map(|(partition, end)| (*partition, *end == 0)).collect();
    let mut records = Vec::new();
    let started = Instant::now();
    while done.values().any(|finished| !finished) {
        if started.elapsed() > Duration::from_secs(300) {
            bail!("reading `{topic}` did not end: partitions done {done:?}");
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => records.push((
                String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                message.payload().unwrap_or_default().to_vec(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                let position = consumer.position()?;
                if let Some(Offset::Offset(at)) = position
                    .find_partition(topic, partition)
                    .map(|element| element.offset())
                {
                    if at >= ends[&partition] {
                        done.insert(partition, true);
                    }
                }
            }
            Some(Err(error)) => bail!("reading `{topic}`: {error}"),
        }
    }
    Ok(records)
}

async fn delete_topics(config: &Config) {
    let Ok(admin) = config
        .admin_config()
        .create::<rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>>()
    else {
        return;
    };
    let topics = [
        config.topics.input.as_str(),
        config.topics.quotes.as_str(),
        config.topics.articles.as_str(),
        config.topics.dead_letter.as_str(),
        config.topics.quotes_latest.as_str(),
    ];
    let _ = admin.delete_topics(&topics, &rdkafka::admin::AdminOptions::new()).await;
}
