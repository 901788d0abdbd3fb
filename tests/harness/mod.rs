//! Fault-test harness: brokers of their own (started with `deploy/local/stack` on free ports),
//! the worker binary as a child process, and read-back of transactional topics.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use pagesplit::config::Config;
use pagesplit::demo::PageToPublish;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A broker of its own, started with `deploy/local/stack` on free ports; stopped (and its data
/// deleted) when dropped.
pub struct OwnBroker {
    /// PLAINTEXT listener.
    pub port: u16,
    /// SASL_SSL and SSL listeners, when started with `start_secure`.
    pub secure_ports: Option<(u16, u16)>,
    scram_password: Option<String>,
    dir: tempfile::TempDir,
}

impl OwnBroker {
    /// Runs the stack script for this broker.
    pub fn stack(&self, args: &[&str], keep_data: bool) -> ExitStatus {
        let mut command = Command::new(format!("{}/deploy/local/stack", env!("CARGO_MANIFEST_DIR")));
        command
            .args(args)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", (self.port + 1).to_string())
            .env("STACK_SERVICES", "kafka")
            .env("PAGESPLIT_STACK_DIR", self.dir.path())
            .env("STACK_KEEP_DATA", if keep_data { "1" } else { "0" })
            .stdout(if args == ["logs"] {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        if let Some((sasl_ssl, ssl)) = self.secure_ports {
            command
                .env("STACK_SECURITY", "sasl_ssl")
                .env("KAFKA_SASL_SSL_PORT", sasl_ssl.to_string())
                .env("KAFKA_SSL_PORT", ssl.to_string())
                .env("STACK_SCRAM_USER", "pagesplit")
                .env("STACK_SCRAM_PASSWORD", self.scram_password.clone().unwrap_or_default());
        }
        command.status().expect("deploy/local/stack runs")
    }

    fn new(secure: Option<String>) -> Self {
        // Two adjacent free ports for the broker and its controller.
        let port = (0..50)
            .map(|_| free_port())
            .find(|port| *port < 65000 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok())
            .expect("free ports");
        let secure_ports = secure.is_some().then(|| {
            let sasl_ssl = free_port();
            let ssl = (0..50)
                .map(|_| free_port())
                .find(|p| *p != sasl_ssl && *p != port && *p != port + 1)
                .expect("free port");
            (sasl_ssl, ssl)
        });
        let broker = OwnBroker {
            port,
            secure_ports,
            scram_password: secure,
            dir: tempfile::tempdir().unwrap(),
        };
        if !broker.stack(&["up"], false).success() {
            broker.stack(&["logs"], false);
            panic!("own broker did not start");
        }
        broker
    }

    /// A PLAINTEXT broker.
    pub fn start() -> Self {
        Self::new(None)
    }

    /// A broker that also has a SASL_SSL listener (SCRAM-SHA-512 user `pagesplit` with
    /// `scram_password`) and an SSL listener.
    pub fn start_secure(scram_password: &str) -> Self {
        Self::new(Some(scram_password.to_owned()))
    }

    /// The PLAINTEXT bootstrap address.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA certificate that signed the broker's certificate (secure brokers).
    pub fn ca_path(&self) -> std::path::PathBuf {
        self.dir.path().join("kafka/security/ca.pem")
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stack(&["down"], false);
    }
}

/// The worker binary running as a child process.
pub struct Worker {
    child: Child,
    output: Arc<Mutex<String>>,
}

/// How to start a worker.
pub struct WorkerOptions<'a> {
    /// Extra `--set key=value` flags, applied after the topic and group flags.
    pub sets: Vec<(&'a str, String)>,
    /// Extra environment variables.
    pub env: Vec<(&'a str, String)>,
    /// `log.level`.
    pub log_level: &'a str,
    /// Keep stderr in memory (see [`Worker::output`]) instead of passing it through.
    pub capture: bool,
}

impl Default for WorkerOptions<'_> {
    fn default() -> Self {
        Self {
            sets: Vec::new(),
            env: Vec::new(),
            log_level: "warn",
            capture: false,
        }
    }
}

impl Worker {
    /// `pagesplit run` on the broker, group and topics of `config`, registry-less encoding and
    /// HTTP on a free port.
    pub fn spawn(config: &Config, options: WorkerOptions<'_>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pagesplit"));
        command.arg("run");
        let mut sets: Vec<(&str, String)> = vec![
            ("kafka.bootstrap_servers", config.kafka.bootstrap_servers.clone()),
            ("kafka.group_id", config.kafka.group_id.clone()),
            ("topics.input", config.topics.input.clone()),
            ("topics.quotes", config.topics.quotes.clone()),
            ("topics.articles", config.topics.articles.clone()),
            ("topics.dead_letter", config.topics.dead_letter.clone()),
            ("topics.quotes_latest", config.topics.quotes_latest.clone()),
            ("encoding.format", "single-object".to_owned()),
            ("http.listen", "127.0.0.1:0".to_owned()),
            ("log.level", options.log_level.to_owned()),
        ];
        sets.extend(options.sets);
        for (key, value) in sets {
            command.args(["--set", &format!("{key}={value}")]);
        }
        for (name, value) in options.env {
            command.env(name, value);
        }
        command.env_remove("PAGESPLIT_CONFIG").stdout(Stdio::null());
        let output = Arc::new(Mutex::new(String::new()));
        if options.capture {
            // Plain text, to search and print.
            command.env("NO_COLOR", "1").stderr(Stdio::piped());
        } else {
            command.stderr(Stdio::inherit());
        }
        let mut child = command.spawn().expect("worker binary starts");
        if let Some(stderr) = child.stderr.take() {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut output = output.lock().unwrap();
                    output.push_str(&line);
                    output.push('\n');
                }
            });
        }
        Self { child, output }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB, from /proc (None once the process is gone).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Everything captured from stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The address of `/metrics`, once the worker logged it (needs `log.level` info or lower).
    pub fn http_address(&self) -> Option<String> {
        let output = self.output();
        let line = output.lines().find(|line| line.contains("serving /metrics"))?;
        let start = line.find("address=")? + "address=".len();
        Some(line[start..].split_whitespace().next()?.trim_matches('"').to_owned())
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits (bounded) for the exit.
    pub fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_exit(deadline).expect("worker exits after SIGTERM")
    }

    /// Waits until the process exits, at most `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return Some(status);
            }
            if started.elapsed() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Small pages: a 3-line ticker strip and a short article of our own words.
pub fn small_pages(prefix: &str, count: usize) -> Vec<PageToPublish> {
    (0..count)
        .map(|n| PageToPublish {
            url: format!("https://www.brecorder.com/{prefix}/{n}"),
            fetched_at: Utc::now(),
            content_type: "text/plain".to_owned(),
            body: format!(
                "AGL {}.{:02} Increased By ▲ 0.55 (0.72%)\nBOP 5.44 No Change ▼ 0.00 (0%)\nKSE100 106,275 Decreased By -4795.3 (-4.32%)\n\n\
                 KARACHI: Page number {n} of the fault test describes a quiet trading session.\n\n\
                 Brokers said volumes were thin ahead of the holiday.\n\nComments\n\nComments are closed.",
                30 + n % 50,
                n % 100
            ),
        })
        .collect()
}

/// A record read back with `isolation.level=read_committed`.
pub struct CommittedRecord {
    /// Key as text.
    pub key: String,
    /// Value.
    pub value: Vec<u8>,
}

/// Every record of `topic` a `read_committed` consumer sees, from the beginning up to the
/// partitions' current ends. Unlike a plain read up to the high watermark this ends on
/// transactional topics too, whose last offsets are commit markers no consumer receives.
pub fn read_committed(bootstrap: &str, topic: &str, deadline: Duration) -> Vec<CommittedRecord> {
    let ends = pagesplit::demo::end_offsets(bootstrap, topic).expect("end offsets");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pagesplit-committed-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .expect("reader");
    let mut assignment = TopicPartitionList::new();
    for partition in ends.keys() {
        assignment
            .add_partition_offset(topic, *partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut done: BTreeMap<i32, bool> = ends.iter().map(|(partition, end)| (*partition, *end == 0)).collect();
    let mut records = Vec::new();
    let started = Instant::now();
    while done.values().any(|finished| !finished) {
        assert!(
            started.elapsed() < deadline,
            "timed out reading `{topic}` read_committed: {} records, partitions done {done:?}",
            records.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => records.push(CommittedRecord {
                key: message
                    .key()
                    .map(|key| String::from_utf8_lossy(key).into_owned())
                    .unwrap_or_default(),
                value: message.payload().unwrap_or_default().to_vec(),
            }),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                let position = consumer.position().unwrap();
                let at = position
                    .find_partition(topic, partition)
                    .and_then(|element| match element.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    })
                    .unwrap_or(0);
                if at >= ends[&partition] {
                    done.insert(partition, true);
                }
            }
            Some(Err(error)) => panic!("reading `{topic}`: {error}"),
        }
    }
    records
}

/// Exactly-once accounting of one run, from `read_committed` read-backs.
pub struct ExactlyOnce {
    /// Distinct article keys (page URLs).
    pub delivered: usize,
    /// Article records beyond the first per URL.
    pub article_duplicates: usize,
    /// Quote records.
    pub quote_records: usize,
    /// Quote records beyond the first per event_id.
    pub quote_duplicates: usize,
    /// Dead letters.
    pub dead_letters: usize,
    /// Pages sent but without an article.
    pub missing: Vec<String>,
}

/// Reads the output topics `read_committed` and counts what every sent page became.
pub fn account_exactly_once(config: &Config, sent: &[PageToPublish]) -> ExactlyOnce {
    let bootstrap = &config.kafka.bootstrap_servers;
    let deadline = Duration::from_secs(120);
    let mut articles: BTreeMap<String, usize> = BTreeMap::new();
    for record in read_committed(bootstrap, &config.topics.articles, deadline) {
        *articles.entry(record.key).or_default() += 1;
    }
    let schema = &pagesplit::encode::Schemas::bundled().quote;
    let quotes = read_committed(bootstrap, &config.topics.quotes, deadline);
    let mut quote_ids: BTreeMap<String, usize> = BTreeMap::new();
    for record in &quotes {
        let value = pagesplit::demo::decode_event(&record.value, schema).unwrap();
        let id = pagesplit::encode::value_to_json(&value)["event_id"]
            .as_str()
            .unwrap()
            .to_owned();
        *quote_ids.entry(id).or_default() += 1;
    }
    let dead_letters = read_committed(bootstrap, &config.topics.dead_letter, deadline).len();
    ExactlyOnce {
        delivered: articles.len(),
        article_duplicates: articles.values().map(|n| n - 1).sum(),
        quote_records: quotes.len(),
        quote_duplicates: quote_ids.values().map(|n| n - 1).sum(),
        dead_letters,
        missing: sent
            .iter()
            .filter(|page| !articles.contains_key(&page.url))
            .map(|page| page.url.clone())
            .collect(),
    }
}

impl ExactlyOnce {
    /// Prints the numbers and asserts: every page's article and 3 quotes exactly once.
    pub fn assert_exactly_once(&self, name: &str, sent: usize) {
        println!(
            "{name}: sent={sent} delivered={} duplicates={} (articles {}, quotes {}) dead-lettered={} quote_records={}",
            self.delivered,
            self.article_duplicates + self.quote_duplicates,
            self.article_duplicates,
            self.quote_duplicates,
            self.dead_letters,
            self.quote_records
        );
        assert!(
            self.missing.is_empty(),
            "{name}: {} pages lost, e.g. {:?}",
            self.missing.len(),
            &self.missing[..self.missing.len().min(5)]
        );
        assert_eq!(self.article_duplicates, 0, "{name}: duplicate articles");
        assert_eq!(self.quote_duplicates, 0, "{name}: duplicate quotes");
        assert_eq!(self.quote_records, 3 * sent, "{name}: every page's 3 quotes, once");
        assert_eq!(self.dead_letters, 0, "{name}: no dead letters");
    }
}

/// Sum of the end offsets of a topic (records written, including aborted ones and markers).
pub fn written(bootstrap: &str, topic: &str) -> i64 {
    pagesplit::demo::end_offsets(bootstrap, topic)
        .map(|ends| ends.values().sum())
        .unwrap_or(0)
}

/// Polls `check` every 100 ms until it holds; panics after `deadline`.
pub async fn wait_for(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Publishes rounds of small pages in the background until stopped, remembering what it sent.
pub struct Publisher {
    sent: Arc<Mutex<Vec<PageToPublish>>>,
    positions: Arc<Mutex<pagesplit::demo::Positions>>,
    running: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Starts publishing `per_round` pages every `pause` to `topic`.
    pub fn start(bootstrap: &str, topic: &str, name: &str, per_round: usize, pause: Duration) -> Self {
        let sent: Arc<Mutex<Vec<PageToPublish>>> = Arc::default();
        let positions: Arc<Mutex<pagesplit::demo::Positions>> = Arc::default();
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let task = {
            let (sent, positions, running) = (sent.clone(), positions.clone(), running.clone());
            let (bootstrap, topic, name) = (bootstrap.to_owned(), topic.to_owned(), name.to_owned());
            tokio::spawn(async move {
                let mut round = 0;
                while running.load(std::sync::atomic::Ordering::Relaxed) {
                    let pages = small_pages(&format!("{name}/{round}"), per_round);
                    let written = pagesplit::demo::publish_pages(&bootstrap, &topic, &pages)
                        .await
                        .unwrap();
                    {
                        let mut positions = positions.lock().unwrap();
                        for (partition, offset) in written {
                            let highest = positions.entry(partition).or_insert(offset);
                            *highest = (*highest).max(offset);
                        }
                    }
                    sent.lock().unwrap().extend(pages);
                    round += 1;
                    tokio::time::sleep(pause).await;
                }
            })
        };
        Self {
            sent,
            positions,
            running,
            task,
        }
    }

    /// Pages sent so far.
    pub fn sent_count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    /// Stops after the round in progress; returns every page sent and the highest offsets.
    pub async fn stop(self) -> (Vec<PageToPublish>, pagesplit::demo::Positions) {
        self.running.store(false, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap();
        let sent = self.sent.lock().unwrap().clone();
        let positions = self.positions.lock().unwrap().clone();
        (sent, positions)
    }
}
