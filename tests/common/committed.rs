//! Read-back of transactional topics with `isolation.level=read_committed`, exactly-once
//! accounting of a run, and a publisher of small pages in the background.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pagesplit::config::Config;
use pagesplit::demo::{PageToPublish, Positions};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};

use super::merge_positions;
use super::pages::small_pages;

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
    /// Pages whose article is there more than once.
    pub duplicated: Vec<String>,
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
        duplicated: articles
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(url, _)| url.clone())
            .collect(),
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
        assert_eq!(
            self.article_duplicates,
            0,
            "{name}: duplicate articles, e.g. {:?}",
            &self.duplicated[..self.duplicated.len().min(5)]
        );
        assert_eq!(self.quote_duplicates, 0, "{name}: duplicate quotes");
        assert_eq!(self.quote_records, 3 * sent, "{name}: every page's 3 quotes, once");
        assert_eq!(self.dead_letters, 0, "{name}: no dead letters");
    }
}

/// Publishes rounds of small pages in the background until stopped, remembering what it sent.
pub struct Publisher {
    sent: Arc<Mutex<Vec<PageToPublish>>>,
    positions: Arc<Mutex<Positions>>,
    running: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    /// Starts publishing `per_round` pages every `pause` to `topic`.
    pub fn start(bootstrap: &str, topic: &str, name: &str, per_round: usize, pause: Duration) -> Self {
        let sent: Arc<Mutex<Vec<PageToPublish>>> = Arc::default();
        let positions: Arc<Mutex<Positions>> = Arc::default();
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
                    merge_positions(&mut positions.lock().unwrap(), written);
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
    pub async fn stop(self) -> (Vec<PageToPublish>, Positions) {
        self.running.store(false, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap();
        let sent = self.sent.lock().unwrap().clone();
        let positions = self.positions.lock().unwrap().clone();
        (sent, positions)
    }
}
