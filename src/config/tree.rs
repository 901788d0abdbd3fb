//! The configuration tree: one typed section per concern, each with its defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Secret;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kafka connection and consumer group.
    pub kafka: KafkaConfig,
    /// Topic names.
    pub topics: TopicsConfig,
    /// How events are encoded.
    pub encoding: EncodingConfig,
    /// The Confluent-compatible schema registry (used when `encoding.format = "confluent"`).
    pub registry: RegistryConfig,
    /// The HTTP endpoint for metrics and health.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Page parsing.
    pub parse: ParseConfig,
    /// Work in flight, draining and progress checks.
    pub pipeline: PipelineConfig,
    /// Delivery guarantee: at-least-once or exactly-once.
    pub delivery: DeliveryConfig,
    /// Which quotes are published to `topics.quotes`.
    pub quotes: QuotesConfig,
}

/// Kafka connection and consumer group.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of brokers.
    pub bootstrap_servers: String,
    /// Consumer group id; every worker of one deployment uses the same.
    pub group_id: String,
    /// Consumer group session timeout in milliseconds (`group_protocol = "classic"`): a worker
    /// that stops heartbeating (killed) loses its partitions to the others after this long. The
    /// drain deadline must be shorter.
    pub session_timeout_ms: u64,
    /// The consumer group protocol: `classic` (the client-side session timeout above, static
    /// membership taking over a restarted worker's partitions at once) or `consumer` (KIP-848:
    /// no rebalance barrier, but the session timeout is the brokers',
    /// `group.consumer.session.timeout.ms`, 45 s at least by default).
    pub group_protocol: GroupProtocol,
    /// Static group membership: the consumer joins with a `group.instance.id` (this worker's
    /// name, `group_instance_id`), so a worker restarted within the session timeout gets its
    /// partitions back at once instead of after a rebalance that waits for its dead predecessor.
    /// A stopped worker's partitions then wait for the session timeout (a static member does
    /// not leave the group). Off, or without a name: dynamic membership.
    pub static_membership: bool,
    /// This worker's `group.instance.id`, unique within the group and the same across its
    /// restarts (a pod name). Empty: `delivery.instance_id`, else the `HOSTNAME` environment
    /// variable; with neither, dynamic membership.
    pub group_instance_id: String,
    /// How clients talk to the brokers: `PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` or
    /// `SASL_SSL` (SASL authentication over TLS).
    pub security_protocol: SecurityProtocol,
    /// SASL mechanism, with a `SASL_*` protocol: `SCRAM-SHA-512`, `SCRAM-SHA-256` or `PLAIN`.
    pub sasl_mechanism: SaslMechanism,
    /// SASL user name, with a `SASL_*` protocol.
    pub sasl_username: String,
    /// SASL password (for example from `PAGESPLIT_KAFKA__SASL_PASSWORD`); never printed.
    /// Give this or `sasl_password_file`, not both.
    pub sasl_password: Secret,
    /// File holding the SASL password (a mounted secret); read at startup, one trailing newline
    /// removed. Give this or `sasl_password`, not both.
    pub sasl_password_file: String,
    /// PEM file of the CA certificate(s) that signed the brokers' certificates, with `SSL` or
    /// `SASL_SSL`; empty: the system's trust store. Broker host names are verified.
    pub ssl_ca_location: String,
    /// PEM file of this client's certificate, for brokers that authenticate clients by TLS
    /// certificate (with `SSL` or `SASL_SSL`, together with `ssl_key_location`).
    pub ssl_certificate_location: String,
    /// PEM file of this client's private key, with `ssl_certificate_location`.
    pub ssl_key_location: String,
    /// Password of `ssl_key_location`, if the key is encrypted (for example from
    /// `PAGESPLIT_KAFKA__SSL_KEY_PASSWORD`); never printed.
    pub ssl_key_password: Secret,
    /// Allow SASL credentials over `SASL_PLAINTEXT`, where the brokers and anyone on the path
    /// see them (`PLAIN`: the password itself). Off: such a configuration is refused; on: every
    /// start logs a warning.
    pub allow_insecure_credentials: bool,
    /// Raw librdkafka settings applied to every client (consumer, producer, admin) last, for
    /// example `"client.rack" = "eu-west-1a"`. Settings that touch security
    /// (`security.protocol`, `sasl.*`, `ssl.*`, `enable.ssl.*`) are refused: use the typed keys.
    pub options: BTreeMap<String, String>,
    /// Raw librdkafka settings for the consumer only, applied after `options`.
    pub consumer_options: BTreeMap<String, String>,
    /// Raw librdkafka settings for the producer only, applied after `options`.
    pub producer_options: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: default_bootstrap_servers(),
            group_id: "pagesplit".to_owned(),
            session_timeout_ms: default_session_timeout_ms(),
            group_protocol: GroupProtocol::Classic,
            static_membership: true,
            group_instance_id: String::new(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: SaslMechanism::ScramSha512,
            sasl_username: String::new(),
            sasl_password: Secret::default(),
            sasl_password_file: String::new(),
            ssl_ca_location: String::new(),
            ssl_certificate_location: String::new(),
            ssl_key_location: String::new(),
            ssl_key_password: Secret::default(),
            allow_insecure_credentials: false,
            options: BTreeMap::new(),
            consumer_options: BTreeMap::new(),
            producer_options: BTreeMap::new(),
        }
    }
}

/// The local development broker started by `deploy/local/stack up`.
fn default_bootstrap_servers() -> String {
    "127.0.0.1:9092".to_owned()
}

/// A killed worker's partitions move to the others within this plus a rebalance (measured: see
/// the README's failover table); librdkafka's default, 45 s, left them idle that long. The
/// brokers accept 6 s to 30 min (`group.min.session.timeout.ms`, `group.max.session.timeout.ms`).
const fn default_session_timeout_ms() -> u64 {
    10_000
}

/// The consumer group protocol (librdkafka `group.protocol`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GroupProtocol {
    /// The classic protocol: client-side session timeout, cooperative-sticky assignment.
    Classic,
    /// The KIP-848 protocol: assignment and session timeout on the brokers.
    Consumer,
}

impl GroupProtocol {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }
}

impl KafkaConfig {
    /// The consumer's `group.instance.id`, with static membership: `group_instance_id`, else
    /// `instance_id` (the worker's name), else the `HOSTNAME` environment variable.
    pub fn effective_group_instance_id(&self, delivery: &DeliveryConfig) -> Option<String> {
        if !self.static_membership {
            return None;
        }
        let configured = self.group_instance_id.trim();
        if !configured.is_empty() {
            return Some(configured.to_owned());
        }
        delivery.effective_instance_id()
    }
}

/// How clients talk to the brokers (librdkafka `security.protocol`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    Plaintext,
    /// TLS, no authentication.
    Ssl,
    /// SASL authentication without TLS.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether the protocol authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }

    /// Whether the protocol encrypts with TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// SASL mechanism (librdkafka `sasl.mechanisms`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum SaslMechanism {
    /// SCRAM with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// SCRAM with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Plain user name and password (only over TLS).
    #[serde(rename = "PLAIN")]
    Plain,
}

impl SaslMechanism {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

/// Topic names.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Raw pages are consumed from here.
    pub input: String,
    /// Quote events are produced here, keyed by symbol.
    pub quotes: String,
    /// Article events are produced here, keyed by URL.
    pub articles: String,
    /// Messages that cannot be decoded, parsed or encoded go here, with the reason in headers.
    pub dead_letter: String,
    /// Quotes are also produced here, keyed by symbol, whatever `quotes.emit` says, each only
    /// when it differs from the last one of its symbol this worker produced here: a compacted
    /// topic (`cleanup.policy=compact`) from which a consumer reads the current quote of every
    /// symbol. Empty: not produced.
    pub quotes_latest: String,
    /// Create missing topics at startup (with `partitions` partitions).
    pub create: bool,
    /// Partitions of topics created at startup.
    pub partitions: i32,
    /// Replication factor of topics created at startup.
    pub replication_factor: i32,
    /// Events carry the lineage headers (`pagesplit.source.*`, `pagesplit.version`, the page's
    /// W3C trace context): 150 to 250 bytes (before compression) and one to two microseconds of
    /// the worker's CPU per record, measured (see the README's "Lineage"). Dead letters carry
    /// them either way.
    pub lineage_headers: bool,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            input: "pages.raw".to_owned(),
            quotes: "market.quotes.v1".to_owned(),
            articles: "news.articles.v1".to_owned(),
            dead_letter: "pagesplit.dlq.v1".to_owned(),
            quotes_latest: "market.quotes.latest.v1".to_owned(),
            create: false,
            partitions: 3,
            replication_factor: 1,
            lineage_headers: true,
        }
    }
}

impl TopicsConfig {
    /// The compacted topic of every symbol's latest quote, unless turned off.
    pub fn quotes_latest(&self) -> Option<&str> {
        Some(self.quotes_latest.as_str()).filter(|topic| !topic.is_empty())
    }
}

/// Which quotes are published to the quote topic.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum QuoteEmit {
    /// Every quote of every page.
    All,
    /// Only a quote whose price, change, change % or direction differs from the last quote of
    /// its symbol this worker published.
    Changed,
}

/// Which quotes are published to `topics.quotes`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuotesConfig {
    /// `all` (every quote of every page) or `changed` (only a quote whose price, change,
    /// change % or direction differs from the last one of its symbol this worker published;
    /// best effort, see the README). `topics.quotes_latest` gets only changed quotes either way.
    pub emit: QuoteEmit,
    /// Symbols whose last published quote is remembered, for the quote topic (with `emit =
    /// "changed"`) and for the latest-quote topic, each. When a new symbol arrives and the table
    /// is full, the half seen least recently is forgotten (their next quotes are published).
    pub max_symbols: usize,
}

impl Default for QuotesConfig {
    fn default() -> Self {
        Self {
            emit: QuoteEmit::All,
            max_symbols: default_max_quote_symbols(),
        }
    }
}

/// Far more symbols than one exchange lists, yet a few MB of memory.
const fn default_max_quote_symbols() -> usize {
    100_000
}

/// Upper bound of `quotes.max_symbols`: beyond it the table would take gigabytes.
pub(super) const MAX_QUOTE_SYMBOLS_LIMIT: usize = 10_000_000;

impl QuotesConfig {
    /// Whether unchanged quotes are left out of the quote topic.
    pub fn changed_only(&self) -> bool {
        self.emit == QuoteEmit::Changed
    }
}

/// How events are framed on the wire.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EncodingFormat {
    /// Confluent Schema Registry wire format: magic byte 0, 4-byte schema id, Avro datum.
    Confluent,
    /// Avro single-object encoding: `C3 01`, 8-byte schema fingerprint, Avro datum. No registry.
    SingleObject,
}

/// How events are encoded.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EncodingConfig {
    /// `confluent` (registry wire format) or `single-object` (registry-less).
    pub format: EncodingFormat,
}

impl Default for EncodingConfig {
    fn default() -> Self {
        Self {
            format: EncodingFormat::Confluent,
        }
    }
}

/// The Confluent-compatible schema registry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Base URL of the Confluent-compatible API (Apicurio: `.../apis/ccompat/v7`). A password in
    /// it (`https://user:password@host/...`) is shown as `***`.
    pub url: String,
    /// Register the schemas at startup; when false they must already be registered.
    pub auto_register: bool,
    /// Basic-auth user name (empty: no authentication).
    pub username: String,
    /// Basic-auth password.
    pub password: Secret,
    /// Allow basic-auth credentials (`username`/`password`, or a user and password in `url`)
    /// over `http://`, where anyone on the path reads them. Off: such a configuration is
    /// refused; on: every start logs a warning.
    pub allow_insecure_credentials: bool,
    /// PEM file of CA certificates to trust for an `https://` registry, besides the public web
    /// roots (a private CA). Empty: the file named by the environment variable `SSL_CERT_FILE`,
    /// if set.
    pub ca_location: String,
    /// Timeout of one registry request in milliseconds.
    pub request_timeout_ms: u64,
    /// How long startup keeps retrying an unreachable registry, in milliseconds.
    pub startup_timeout_ms: u64,
    /// Compatibility level set on the subjects when pagesplit registers them (`FULL` by default:
    /// new consumers read old events and old consumers read new ones); empty leaves the
    /// registry's setting alone.
    pub compatibility: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8081/apis/ccompat/v7".to_owned(),
            auto_register: true,
            username: String::new(),
            password: Secret::default(),
            allow_insecure_credentials: false,
            ca_location: String::new(),
            request_timeout_ms: 5_000,
            startup_timeout_ms: 30_000,
            compatibility: "FULL".to_owned(),
        }
    }
}

/// The HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on; loopback by default, `0.0.0.0:9808` in containers.
    pub listen: SocketAddr,
    /// Serve the endpoint at all.
    pub enabled: bool,
    /// Connections open at once; one more is closed at once (and logged), so that idle or slow
    /// clients cannot use up the worker's file descriptors.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, in milliseconds; a connection
    /// that has not sent them by then is closed. Each connection serves one request.
    pub header_read_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9808)),
            enabled: true,
            max_connections: 64,
            header_read_timeout_ms: 5_000,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `pagesplit=debug,rdkafka=warn`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_owned(),
        }
    }
}

/// Page parsing.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ParseConfig {
    /// Ticker symbols that are market indexes, whatever their line looks like.
    pub index_symbols: Vec<String>,
    /// Pages larger than this many bytes are dead-lettered with `page_too_large`.
    pub max_page_bytes: usize,
}

impl Default for ParseConfig {
    fn default() -> Self {
        let defaults = crate::parse::ParseOptions::default();
        Self {
            index_symbols: defaults.index_symbols,
            max_page_bytes: defaults.max_page_bytes,
        }
    }
}

impl ParseConfig {
    /// The options the pure parser takes.
    pub fn options(&self) -> crate::parse::ParseOptions {
        crate::parse::ParseOptions {
            index_symbols: self.index_symbols.clone(),
            max_page_bytes: self.max_page_bytes,
        }
    }
}

/// Work in flight, draining and progress checks.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Pages consumed but not yet fully acknowledged; consumption waits at this bound.
    pub max_in_flight_pages: usize,
    /// Bytes of pages in flight (each its value, key and headers); consumption waits at this
    /// bound.
    pub max_in_flight_bytes: usize,
    /// On shutdown, how long in-flight pages may take to finish, in milliseconds.
    pub drain_timeout_ms: u64,
    /// First back-off in milliseconds before re-sending a page whose events failed transiently.
    pub retry_backoff_ms: u64,
    /// Longest back-off in milliseconds between re-sends.
    pub retry_backoff_max_ms: u64,
    /// Emit librdkafka statistics (lag, queues) every this many milliseconds; 0 turns them off.
    pub statistics_interval_ms: u64,
    /// A partition with lag that makes no progress for this long is reported as stalled.
    pub stall_timeout_ms: u64,
    /// When the group takes partitions away, how long in-flight pages of those partitions may
    /// take to finish (what finished is committed before the partitions go; the rest is consumed
    /// again by the new owner), in milliseconds.
    pub revoke_timeout_ms: u64,
    /// Threads that split and encode pages (each a batch at a time); 0 means one per CPU.
    pub split_workers: usize,
    /// At-least-once: stored offsets are committed this often, in milliseconds (librdkafka's
    /// `auto.commit.interval.ms`). After a crash, the pages finished since the last commit are
    /// consumed again, with those in flight.
    pub commit_interval_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            max_in_flight_pages: 500,
            max_in_flight_bytes: 64 * 1024 * 1024,
            drain_timeout_ms: 8_000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 10_000,
            statistics_interval_ms: 5_000,
            stall_timeout_ms: 60_000,
            revoke_timeout_ms: default_revoke_timeout_ms(),
            split_workers: 0,
            commit_interval_ms: default_commit_interval_ms(),
        }
    }
}

impl PipelineConfig {
    /// Threads splitting pages: `split_workers`, or one per CPU when it is 0.
    pub fn effective_split_workers(&self) -> usize {
        match self.split_workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

/// At-least-once duplicates per crash are the pages in flight plus those finished within one
/// commit interval (measured: see the README's failover section).
const fn default_commit_interval_ms() -> u64 {
    COMMIT_INTERVAL_DEFAULT_MS
}

/// The default of `pipeline.commit_interval_ms`.
pub(super) const COMMIT_INTERVAL_DEFAULT_MS: u64 = 100;

/// Long enough for pages already sent to be acknowledged, short next to the group's
/// `max.poll.interval.ms` (300 s) that bounds how long a rebalance callback may take.
const fn default_revoke_timeout_ms() -> u64 {
    5_000
}

impl PipelineConfig {
    /// The drain deadline.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// The revoke deadline.
    pub fn revoke_timeout(&self) -> Duration {
        Duration::from_millis(self.revoke_timeout_ms)
    }
}

/// The delivery guarantee.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryMode {
    /// A page's offset is committed after all its events are acknowledged; after a crash or a
    /// rebalance some events are published again, with the same `event_id`.
    AtLeastOnce,
    /// A batch of pages' events and their input offsets are committed in one Kafka transaction;
    /// `read_committed` consumers see every event once.
    ExactlyOnce,
}

/// Delivery guarantee.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// `at-least-once` or `exactly-once` (transactions; downstream consumers must read with
    /// `isolation.level=read_committed`).
    pub mode: DeliveryMode,
    /// Exactly-once: first part of the producer's `transactional.id`,
    /// `<prefix>-<kafka.group_id>-<instance_id>`.
    pub transactional_id_prefix: String,
    /// Exactly-once: this worker's name, unique among the workers of the group and the same
    /// across its restarts (a StatefulSet pod name, a host name), so that a restarted worker
    /// fences its crashed predecessor and aborts its open transaction at once. Empty: the
    /// `HOSTNAME` environment variable.
    pub instance_id: String,
    /// Exactly-once: a transaction is committed once it holds this many pages...
    pub transaction_max_pages: usize,
    /// ...or once it has been open this long, in milliseconds (the latency downstream
    /// `read_committed` consumers see).
    pub transaction_max_ms: u64,
    /// Exactly-once: the broker aborts a transaction left open longer than this (a crashed
    /// worker's), in milliseconds; at most the broker's `transaction.max.timeout.ms` (15 min).
    pub transaction_timeout_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            mode: DeliveryMode::AtLeastOnce,
            transactional_id_prefix: "pagesplit".to_owned(),
            instance_id: String::new(),
            transaction_max_pages: 500,
            transaction_max_ms: 100,
            transaction_timeout_ms: default_transaction_timeout_ms(),
        }
    }
}

/// The largest `parse.max_page_bytes`: its record (plus 1 MiB) must fit the producer's queue
/// (`queue.buffering.max.kbytes`, 32 MiB) with room to spare.
pub const MAX_PAGE_BYTES_LIMIT: usize = 16 << 20;

/// librdkafka's default `transaction.timeout.ms` (60 s).
const fn default_transaction_timeout_ms() -> u64 {
    60_000
}

impl DeliveryConfig {
    /// Whether transactions are used.
    pub fn exactly_once(&self) -> bool {
        self.mode == DeliveryMode::ExactlyOnce
    }

    /// The instance id in use: `instance_id`, else the `HOSTNAME` environment variable.
    pub fn effective_instance_id(&self) -> Option<String> {
        if !self.instance_id.trim().is_empty() {
            return Some(self.instance_id.trim().to_owned());
        }
        std::env::var("HOSTNAME").ok().filter(|name| !name.trim().is_empty())
    }

    /// The longest a transaction stays open before it is committed.
    pub fn transaction_max_duration(&self) -> Duration {
        Duration::from_millis(self.transaction_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_default_to_all_with_a_compacted_latest_topic() {
        let config = Config::default();
        assert_eq!(config.quotes.emit, QuoteEmit::All);
        assert!(!config.quotes.changed_only());
        assert_eq!(config.quotes.max_symbols, 100_000);
        assert_eq!(config.topics.quotes_latest(), Some("market.quotes.latest.v1"));
    }
}
