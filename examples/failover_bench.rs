//! Failover drills against a real broker (run by `bench/failover.sh`): how long the input
//! partitions of a killed, restarted or stopped worker go without output.
//!
//! A paced publisher writes small pages to every partition of a fresh input topic, each page's
//! URL naming its partition (`…/p<partition>/<n>`); a reader follows the article topic (keyed by
//! URL) and notes when each input partition last produced. Workers run as child processes
//! (`pagesplit run` with the given `--set` flags; worker `i` gets `kafka.group_instance_id =
//! failover-<i>` unless static membership is off). Scenarios, each `--rounds` times:
//!
//! - `restart`: one worker is killed (`kill -9`) and started again 0.5 s later: seconds from the
//!   restart to its first output (`first_output_s`) and until every partition produces again
//!   (`all_partitions_s`);
//! - `kill`: one of `--workers` is killed and not restarted: seconds until every partition
//!   (the dead worker's too) produces again; then it is started again for the next round;
//! - `sigterm`: one of `--workers` gets SIGTERM (a scale-in): the same measure, from its exit
//!   (it produces while it drains).
//! - `sigterm-join`: a worker joins (a scale-out) and 0.5 s later, during the rebalance, one of
//!   `--workers` gets SIGTERM: the same measure from its exit, and the longest any partition
//!   went without output from the join until all produce again (`stall_s`); the joiner is then
//!   killed.
//!
//! Topics and group are `pagesplit-failover-<time>-<pid>.*`, deleted at the end.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use pagesplit::config::Config;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};

#[derive(Parser, Debug)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// The pagesplit binary.
    #[arg(long, default_value = "target/debug/pagesplit")]
    bin: String,
    /// `restart`, `kill`, `sigterm` or `sigterm-join`.
    #[arg(long)]
    scenario: String,
    /// Workers in the group.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Input partitions.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Pages per second offered.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Rounds of the scenario.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Name of the settings, printed with each result.
    #[arg(long, default_value = "defaults")]
    label: String,
    /// `key=value` settings for every worker (`--set` of `pagesplit run`).
    #[arg(long = "set")]
    sets: Vec<String>,
    /// Give up on a measure after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Directory for the workers' logs.
    #[arg(long, default_value = "target/bench-failover")]
    out: String,
}

/// When each input partition produced an article, in arrival order.
#[derive(Default)]
struct Outputs {
    seen: Mutex<Vec<(Instant, i32)>>,
    /// Article keys (page URLs) seen, to count pages processed twice.
    urls: Mutex<std::collections::HashSet<Vec<u8>>>,
    duplicates: std::sync::atomic::AtomicU64,
}

impl Outputs {
    /// The longest time any of `partitions` went without output between `from` and `to`.
    fn longest_stall(&self, from: Instant, to: Instant, partitions: i32) -> f64 {
        let seen = self.seen.lock().unwrap();
        let mut last: BTreeMap<i32, Instant> = (0..partitions).map(|partition| (partition, from)).collect();
        let mut longest = Duration::ZERO;
        for (at, partition) in seen.iter().filter(|(at, _)| *at > from && *at <= to) {
            if let Some(previous) = last.insert(*partition, *at) {
                longest = longest.max(*at - previous);
            }
        }
        let tail = last.values().map(|at| to.saturating_duration_since(*at)).max();
        longest.max(tail.unwrap_or_default()).as_secs_f64()
    }

    /// The first output of each partition after `since`.
    fn first_after(&self, since: Instant) -> BTreeMap<i32, Instant> {
        let seen = self.seen.lock().unwrap();
        let mut first = BTreeMap::new();
        for (at, partition) in seen.iter().filter(|(at, _)| *at > since) {
            first.entry(*partition).or_insert(*at);
        }
        first
    }
}

struct Drill {
    args: Args,
    config: Config,
    outputs: Arc<Outputs>,
    workers: Vec<Option<Child>>,
    /// Where each worker's log stood when it was last started.
    log_starts: Vec<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let id = format!(
        "pagesplit-failover-{}-{}",
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
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(pagesplit::app::prepare_topics(&config))?;
    let stop = Arc::new(AtomicBool::new(false));
    let outputs = Arc::new(Outputs::default());
    let publisher = publish(&config, args.partitions, args.rate, stop.clone())?;
    let reader = read_outputs(&config, outputs.clone(), stop.clone())?;
    let workers = args.workers;
    let mut drill = Drill {
        args,
        config,
        outputs,
        workers: (0..workers).map(|_| None).collect(),
        log_starts: vec![0; workers],
    };
    let result = drill.run();
    for worker in drill.workers.iter_mut().flatten() {
        let _ = worker.kill();
        let _ = worker.wait();
    }
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.join();
    let _ = reader.join();
    runtime.block_on(delete_topics(&drill.config));
    result
}

impl Drill {
    fn run(&mut self) -> anyhow::Result<()> {
        for index in 0..self.workers.len() {
            self.spawn(index)?;
        }
        for round in 1..=self.args.rounds {
            self.wait_all_producing()?;
            self.wait_owns_partitions(0)?;
            let duplicates_before = self.outputs.duplicates.load(Ordering::Relaxed);
            let (since, first_from) = match self.args.scenario.as_str() {
                "restart" => {
                    self.kill(0);
                    // Outputs of the killed worker still on their way to the reader are not
                    // taken for the restarted worker's.
                    std::thread::sleep(Duration::from_millis(500));
                    let restarted = Instant::now();
                    self.spawn(0)?;
                    (restarted, restarted)
                }
                "kill" => {
                    self.kill(0);
                    (Instant::now(), Instant::now())
                }
                "sigterm-join" => self.sigterm_during_join()?,
                "sigterm" => {
                    let pid = self.workers[0].as_ref().map(Child::id).context("worker running")?;
                    let signalled = Instant::now();
                    Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
                    // Its partitions produce while it drains: measured from its exit.
                    if let Some(mut worker) = self.workers[0].take() {
                        worker.wait()?;
                    }
                    println!(
                        "worker stopped {:.2} s after SIGTERM",
                        signalled.elapsed().as_secs_f64()
                    );
                    (Instant::now(), Instant::now())
                }
                other => bail!("unknown scenario {other}"),
            };
            let all = self.wait_every_partition_after(since)?;
            let first = self.outputs.first_after(first_from).values().min().copied();
            // Pages the new owners process again show up within a few seconds of taking over.
            std::thread::sleep(Duration::from_secs(3));
            let duplicates = self.outputs.duplicates.load(Ordering::Relaxed) - duplicates_before;
            println!(
                "scenario={} label={} workers={} round={round} first_output_s={:.2} all_partitions_s={:.2} \
                 duplicates={duplicates}",
                self.args.scenario,
                self.args.label,
                self.workers.len(),
                first.map_or(f64::NAN, |at| (at - first_from).as_secs_f64()),
                (all - since).as_secs_f64(),
            );
            if self.args.scenario == "sigterm-join" {
                println!(
                    "stall_s={:.2} (longest time without output of any partition, join to recovery)",
                    self.outputs.longest_stall(first_from, all, self.args.partitions)
                );
                let joiner = self.workers.len() - 1;
                self.kill(joiner);
                self.workers.pop();
                self.log_starts.pop();
            }
            if self.args.scenario != "restart" {
                if let Some(mut worker) = self.workers[0].take() {
                    let _ = worker.wait();
                }
                self.spawn(0)?;
            }
        }
        Ok(())
    }

    /// A worker joins; during the rebalance worker 0 gets SIGTERM. (its exit, the join)
    fn sigterm_during_join(&mut self) -> anyhow::Result<(Instant, Instant)> {
        let joiner = self.workers.len();
        self.workers.push(None);
        self.log_starts.push(0);
        let joined = Instant::now();
        self.spawn(joiner)?;
        std::thread::sleep(Duration::from_millis(500));
        let pid = self.workers[0].as_ref().map(Child::id).context("worker running")?;
        let signalled = Instant::now();
        Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
        if let Some(mut worker) = self.workers[0].take() {
            worker.wait()?;
        }
        println!(
            "worker stopped {:.2} s after SIGTERM, {:.2} s after the join",
            signalled.elapsed().as_secs_f64(),
            joined.elapsed().as_secs_f64()
        );
        Ok((Instant::now(), joined))
    }

    /// Starts worker `index` (again).
    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let config = &self.config;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut sets = vec![
            format!("kafka.bootstrap_servers={}", config.kafka.bootstrap_servers),
            format!("kafka.group_id={}", config.kafka.group_id),
            format!("kafka.group_instance_id=failover-{index}"),
            format!("topics.input={}", config.topics.input),
            format!("topics.quotes={}", config.topics.quotes),
            format!("topics.articles={}", config.topics.articles),
            format!("topics.dead_letter={}", config.topics.dead_letter),
            format!("topics.quotes_latest={}", config.topics.quotes_latest),
            "encoding.format=single-object".to_owned(),
            format!("http.listen=127.0.0.1:{port}"),
            "log.level=info".to_owned(),
        ];
        sets.extend(self.args.sets.iter().cloned());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(index))?;
        self.log_starts[index] = log.metadata()?.len();
        let mut command = Command::new(&self.args.bin);
        command.arg("run");
        for set in sets {
            command.args(["--set", &set]);
        }
        let child = command
            .env_remove("HOSTNAME")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.args.bin))?;
        self.workers[index] = Some(child);
        Ok(())
    }

    fn log_path(&self, index: usize) -> String {
        format!("{}/{}-worker-{index}.log", self.args.out, self.args.label)
    }

    /// Waits until worker `index` owns a partition (from its log since it was last started), so
    /// that stopping it takes partitions away.
    fn wait_owns_partitions(&self, index: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let log = std::fs::read(self.log_path(index))?;
            let since = String::from_utf8_lossy(&log[self.log_starts[index] as usize..]).into_owned();
            let owned =
                since.matches("partition assigned").count() as i64 - since.matches("partition revoked").count() as i64;
            if owned > 0 {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(self.args.timeout) {
                bail!("worker {index} owns no partition");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut worker) = self.workers[index].take() {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }

    /// Waits until every partition has produced within the last second, twice 3 s apart.
    fn wait_all_producing(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut steady_since = None;
        loop {
            let recent = self.outputs.first_after(Instant::now() - Duration::from_secs(1));
            if recent.len() == self.args.partitions as usize {
                let since = *steady_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(3) {
                    return Ok(());
                }
            } else {
                steady_since = None;
            }
            if started.elapsed() > Duration::from_secs(self.args.timeout) {
                bail!(
                    "not every partition produces ({} of {})",
                    recent.len(),
                    self.args.partitions
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every partition has produced after `since`; when the last one did.
    fn wait_every_partition_after(&self, since: Instant) -> anyhow::Result<Instant> {
        loop {
            let first = self.outputs.first_after(since);
            if first.len() == self.args.partitions as usize {
                return Ok(*first.values().max().expect("partitions"));
            }
            if since.elapsed() > Duration::from_secs(self.args.timeout) {
                bail!(
                    "after {} s only partitions {:?} produce again",
                    self.args.timeout,
                    first.keys().collect::<Vec<_>>()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Publishes pages to every partition in turn at `rate` per second until stopped.
fn publish(
    config: &Config,
    partitions: i32,
    rate: u32,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .set("linger.ms", "5")
        .create()?;
    let topic = config.topics.input.clone();
    Ok(std::thread::spawn(move || {
        let started = Instant::now();
        let mut sent: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            let due = started + Duration::from_secs_f64(sent as f64 / f64::from(rate));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let partition = (sent % partitions as u64) as i32;
            let url = format!("https://www.brecorder.com/failover/p{partition}/{sent}");
            let body = format!(
                "AGL {}.{:02} Increased By ▲ 0.55 (0.72%)\nBOP 5.44 No Change ▼ 0.00 (0%)\n\n\
                 KARACHI: Page {sent} of the failover drill.\n\nBrokers said volumes were thin.",
                30 + sent % 50,
                sent % 100
            );
            let value = pagesplit::envelope::encode_envelope(&url, chrono::Utc::now(), "text/plain", &body);
            let record = BaseRecord::to(&topic).key(&url).payload(&value).partition(partition);
            if producer.send(record).is_err() {
                producer.poll(Duration::from_millis(10));
                continue;
            }
            producer.poll(Duration::ZERO);
            sent += 1;
        }
        let _ = producer.flush(Duration::from_secs(5));
    }))
}

/// Follows the article topic from its end, noting each input partition's outputs.
fn read_outputs(
    config: &Config,
    outputs: Arc<Outputs>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.bootstrap_servers)
        .set("group.id", format!("{}.reader", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..config.topics.partitions {
        assignment.add_partition_offset(&config.topics.articles, partition, Offset::End)?;
    }
    consumer.assign(&assignment)?;
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let partition = message
                .key()
                .and_then(|key| std::str::from_utf8(key).ok())
                .and_then(|url| url.split("/p").nth(1))
                .and_then(|rest| rest.split('/').next())
                .and_then(|number| number.parse().ok());
            if let Some(partition) = partition {
                outputs.seen.lock().unwrap().push((Instant::now(), partition));
            }
            if let Some(key) = message.key() {
                if !outputs.urls.lock().unwrap().insert(key.to_vec()) {
                    outputs.duplicates.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }))
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
