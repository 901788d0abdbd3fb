//! A KRaft cluster of its own (`deploy/local/stack up --brokers N`) for drills that kill and
//! restart brokers, what its metadata says (partition leaders, in-sync replicas), and a
//! follower of an output topic that notes when records arrive.

use std::collections::BTreeMap;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Where the cluster's ports start looking: `PAGESPLIT_TEST_CLUSTER_PORT`, else 29100. Node `i`
/// listens on base + 2(i-1), its controller on the port after.
fn base_port_from() -> u16 {
    std::env::var("PAGESPLIT_TEST_CLUSTER_PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(29100)
}

/// Whether every port of `ports` can be bound on the loopback interface now.
fn all_free(ports: std::ops::Range<u16>) -> bool {
    let listeners: Vec<_> = ports
        .map(|port| std::net::TcpListener::bind(("127.0.0.1", port)))
        .collect();
    listeners.iter().all(Result::is_ok)
}

/// A cluster of `nodes` KRaft nodes (each broker and controller), started with
/// `deploy/local/stack up --brokers N` on free ports from `PAGESPLIT_TEST_CLUSTER_PORT` (default
/// 29100) upwards; stopped (and its data deleted) when dropped. Node `i` has node id `i` and is
/// the stack's service `kafka<i>`.
pub struct OwnCluster {
    /// Broker port of node 1.
    pub base_port: u16,
    /// Number of nodes.
    pub nodes: u16,
    dir: tempfile::TempDir,
}

impl OwnCluster {
    /// Starts a cluster of `nodes` nodes; fails the test if it does not come up.
    pub fn start(nodes: u16) -> Self {
        let from = base_port_from();
        let span = 2 * nodes;
        let base_port = (0..50)
            .map(|step| from + step * span)
            .find(|base| all_free(*base..base + span))
            .expect("free ports for the cluster");
        let cluster = OwnCluster {
            base_port,
            nodes,
            dir: tempfile::tempdir().unwrap(),
        };
        if !cluster.stack(&["up", "--brokers", &nodes.to_string()]).success() {
            cluster.stack(&["logs"]);
            panic!("own cluster of {nodes} nodes did not start");
        }
        cluster
    }

    /// Runs the stack script for this cluster.
    pub fn stack(&self, args: &[&str]) -> ExitStatus {
        Command::new(format!("{}/deploy/local/stack", env!("CARGO_MANIFEST_DIR")))
            .args(args)
            .env("KAFKA_PORT", self.base_port.to_string())
            .env("KAFKA_CONTROLLER_PORT", (self.base_port + 1).to_string())
            .env("STACK_SERVICES", "kafka")
            .env("PAGESPLIT_STACK_DIR", self.dir.path())
            .env_remove("STACK_KEEP_DATA")
            .env_remove("STACK_SECURITY")
            .stdout(if args.first() == Some(&"logs") {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .status()
            .expect("deploy/local/stack runs")
    }

    /// Every node's address.
    pub fn bootstrap(&self) -> String {
        (0..self.nodes)
            .map(|i| format!("127.0.0.1:{}", self.base_port + 2 * i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `kill -9` of node `id` (its data kept).
    pub fn kill(&self, id: i32) {
        assert!(self.stack(&["kill", &format!("kafka{id}")]).success(), "kill node {id}");
    }

    /// SIGTERM to node `id` (a controlled shutdown; its data kept).
    pub fn stop(&self, id: i32) {
        assert!(self.stack(&["stop", &format!("kafka{id}")]).success(), "stop node {id}");
    }

    /// Restarts the stopped nodes on their data and waits until they serve requests.
    pub fn restart_stopped(&self) {
        if !self.stack(&["up"]).success() {
            self.stack(&["logs"]);
            panic!("a node did not restart on its data");
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        self.stack(&["down"]);
    }
}

/// One partition as the metadata describes it.
#[derive(Debug, Clone)]
pub struct PartitionState {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Leader's node id (-1: none).
    pub leader: i32,
    /// Node ids of the in-sync replicas.
    pub isr: Vec<i32>,
}

/// The partitions of `topics` from a metadata request to any live node.
pub fn partitions(bootstrap: &str, topics: &[&str]) -> Vec<PartitionState> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("metadata client");
    let mut states = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap_or_else(|error| panic!("metadata of `{topic}`: {error}"));
        for found in metadata.topics() {
            for partition in found.partitions() {
                states.push(PartitionState {
                    topic: found.name().to_owned(),
                    partition: partition.id(),
                    leader: partition.leader(),
                    isr: partition.isr().to_vec(),
                });
            }
        }
    }
    states
}

/// The node that leads the most partitions of `topics` (the lowest id among equals).
pub fn busiest_leader(bootstrap: &str, topics: &[&str]) -> (i32, Vec<PartitionState>) {
    let states = partitions(bootstrap, topics);
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    for state in &states {
        *led.entry(state.leader).or_default() += 1;
    }
    let (leader, _) = led
        .iter()
        .filter(|(node, _)| **node >= 0)
        .max_by_key(|(node, count)| (**count, -**node))
        .expect("partitions with leaders");
    let mine = states.iter().filter(|state| state.leader == *leader).cloned().collect();
    (*leader, mine)
}

/// Whether every partition of `topics` has all `replicas` nodes in sync (a restarted node has
/// caught up and rejoined).
pub fn fully_in_sync(bootstrap: &str, topics: &[&str], replicas: usize) -> bool {
    let states = partitions(bootstrap, topics);
    !states.is_empty()
        && states
            .iter()
            .all(|state| state.isr.len() == replicas && state.leader >= 0)
}

/// Follows a topic with `isolation.level=read_committed` from its beginning in a thread and
/// notes when each record arrives.
pub struct OutputWatch {
    arrivals: Arc<Mutex<Vec<Instant>>>,
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OutputWatch {
    /// Starts following every partition of `topic` (`partitions` of them).
    pub fn start(bootstrap: &str, topic: &str, partitions: i32) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "pagesplit-output-watch")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("output watch");
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let running = Arc::new(AtomicBool::new(true));
        let thread = {
            let (arrivals, running) = (arrivals.clone(), running.clone());
            std::thread::spawn(move || {
                while running.load(Ordering::Relaxed) {
                    if let Some(Ok(_)) = consumer.poll(Duration::from_millis(50)) {
                        arrivals.lock().unwrap().push(Instant::now());
                    }
                }
            })
        };
        Self {
            arrivals,
            running,
            thread: Some(thread),
        }
    }

    /// Records seen so far.
    pub fn count(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    /// The longest time between `from` and `to` in which no record arrived.
    pub fn longest_gap(&self, from: Instant, to: Instant) -> Duration {
        let arrivals = self.arrivals.lock().unwrap();
        let mut previous = from;
        let mut longest = Duration::ZERO;
        for at in arrivals.iter().filter(|at| **at > from && **at <= to) {
            longest = longest.max(*at - previous);
            previous = *at;
        }
        longest.max(to.saturating_duration_since(previous))
    }
}

impl Drop for OutputWatch {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
