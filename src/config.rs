//! One typed configuration tree, layered: defaults → TOML file → `PAGESPLIT_*` environment → flags.
//!
//! Unknown keys and bad values stop startup with a message naming the key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Prefix of environment variables that override configuration keys:
/// `PAGESPLIT_<SECTION>__<KEY>`, for example `PAGESPLIT_KAFKA__BOOTSTRAP_SERVERS`.
pub const ENV_PREFIX: &str = "PAGESPLIT_";

/// Environment variables with the prefix that are not configuration keys.
const ENV_NOT_KEYS: &[&str] = &["PAGESPLIT_CONFIG", "PAGESPLIT_LOG"];

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid value for `{key}`: {reason}")]
    Value {
        /// Dotted key, e.g. `pipeline.drain_timeout_ms`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A secret string: never printed by `Debug`, `Display` or serialization.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether a secret was given at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}

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
    /// Consumer group session timeout in milliseconds; the drain deadline must be shorter.
    pub session_timeout_ms: u64,
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
    /// Raw librdkafka settings applied to every client (consumer and producer) last,
    /// for example `"security.protocol" = "SASL_SSL"`.
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
            security_protocol: SecurityProtocol::Plaintext,
            sasl_mechanism: SaslMechanism::ScramSha512,
            sasl_username: String::new(),
            sasl_password: Secret::default(),
            sasl_password_file: String::new(),
            ssl_ca_location: String::new(),
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

/// librdkafka's default consumer group session timeout (45 s).
const fn default_session_timeout_ms() -> u64 {
    45_000
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
    /// Every quote is also produced here, keyed by symbol, whatever `quotes.emit` says: a
    /// compacted topic (`cleanup.policy=compact`) from which a consumer reads the current quote
    /// of every symbol. Empty: not produced.
    pub quotes_latest: String,
    /// Create missing topics at startup (with `partitions` partitions).
    pub create: bool,
    /// Partitions of topics created at startup.
    pub partitions: i32,
    /// Replication factor of topics created at startup.
    pub replication_factor: i32,
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
    /// best effort, see the README). `topics.quotes_latest` gets every quote either way.
    pub emit: QuoteEmit,
    /// With `emit = "changed"`: symbols whose last published quote is remembered. When a new
    /// symbol arrives and the table is full, the half seen least recently is forgotten (their
    /// next quotes are published).
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
const MAX_QUOTE_SYMBOLS_LIMIT: usize = 10_000_000;

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
    /// Base URL of the Confluent-compatible API (Apicurio: `.../apis/ccompat/v7`).
    pub url: String,
    /// Register the schemas at startup; when false they must already be registered.
    pub auto_register: bool,
    /// Basic-auth user name (empty: no authentication).
    pub username: String,
    /// Basic-auth password.
    pub password: Secret,
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
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9808)),
            enabled: true,
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
    /// Bytes of page bodies in flight; consumption waits at this bound.
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
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            max_in_flight_pages: 500,
            max_in_flight_bytes: 64 * 1024 * 1024,
            drain_timeout_ms: 10_000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 10_000,
            statistics_interval_ms: 5_000,
            stall_timeout_ms: 60_000,
            revoke_timeout_ms: default_revoke_timeout_ms(),
            split_workers: 0,
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

/// How long librdkafka tries to deliver a record (`0`: until delivered).
const MESSAGE_TIMEOUT: &str = "message.timeout.ms";

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

impl Config {
    /// Parses a TOML document (no environment overrides) and validates it.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| ConfigError::Invalid(error.to_string()))?;
        Self::from_table(table)
    }

    /// Loads the layers: the optional file, then `PAGESPLIT_*` variables from `env`, then
    /// `overrides` (dotted `key=value` pairs from flags), and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|error| ConfigError::Invalid(format!("{}: {error}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let defaults =
            toml::Table::try_from(Config::default()).map_err(|error| ConfigError::Invalid(error.to_string()))?;
        let mut env_pairs: Vec<(String, String)> = env
            .into_iter()
            // Keys are always `SECTION__KEY`; other PAGESPLIT_* variables are not configuration.
            .filter(|(name, _)| {
                name.starts_with(ENV_PREFIX) && name.contains("__") && !ENV_NOT_KEYS.contains(&name.as_str())
            })
            .collect();
        env_pairs.sort();
        for (name, value) in env_pairs {
            let key = name[ENV_PREFIX.len()..].to_ascii_lowercase().replace("__", ".");
            set_dotted(&mut table, &defaults, &key, &value, &name)?;
        }
        for (key, value) in overrides {
            set_dotted(&mut table, &defaults, key, value, key)?;
        }
        Self::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        // Rendering and re-parsing the merged tree makes serde's errors quote the offending key.
        let text = toml::to_string(&table).map_err(|error| ConfigError::Invalid(error.to_string()))?;
        let config: Config = toml::from_str(&text).map_err(|error| ConfigError::Invalid(error.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn bad(key: &str, reason: impl Into<String>) -> Result<(), ConfigError> {
            Err(ConfigError::Value {
                key: key.to_owned(),
                reason: reason.into(),
            })
        }
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return bad("kafka.bootstrap_servers", "must name at least one broker");
        }
        if self.kafka.group_id.trim().is_empty() {
            return bad("kafka.group_id", "must not be empty");
        }
        for (key, topic) in [
            ("topics.input", &self.topics.input),
            ("topics.quotes", &self.topics.quotes),
            ("topics.articles", &self.topics.articles),
            ("topics.dead_letter", &self.topics.dead_letter),
        ] {
            if topic.is_empty()
                || topic.len() > 249
                || !topic.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return bad(key, format!("`{topic}` is not a valid Kafka topic name"));
            }
        }
        // An output that is also the input (or another output) would feed events back in as
        // pages, or mix two schemas in one topic.
        let outputs = [
            ("topics.quotes", &self.topics.quotes),
            ("topics.articles", &self.topics.articles),
            ("topics.dead_letter", &self.topics.dead_letter),
        ];
        for (index, (key, topic)) in outputs.iter().enumerate() {
            if *topic == &self.topics.input {
                return bad(key, format!("must differ from topics.input (`{topic}`)"));
            }
            if let Some((other, _)) = outputs[..index].iter().find(|(_, earlier)| earlier == topic) {
                return bad(key, format!("must differ from {other} (`{topic}`)"));
            }
        }
        if let Some(latest) = self.topics.quotes_latest() {
            if latest.len() > 249 || !latest.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return bad(
                    "topics.quotes_latest",
                    format!("`{latest}` is not a valid Kafka topic name (empty turns it off)"),
                );
            }
            if [
                &self.topics.input,
                &self.topics.quotes,
                &self.topics.articles,
                &self.topics.dead_letter,
            ]
            .contains(&&self.topics.quotes_latest)
            {
                return bad(
                    "topics.quotes_latest",
                    "must differ from the other topics: it is compacted, keyed by symbol",
                );
            }
        }
        if self.quotes.max_symbols == 0 || self.quotes.max_symbols > MAX_QUOTE_SYMBOLS_LIMIT {
            return bad(
                "quotes.max_symbols",
                format!("must be between 1 and {MAX_QUOTE_SYMBOLS_LIMIT}"),
            );
        }
        if self.topics.partitions < 1 {
            return bad("topics.partitions", "must be at least 1");
        }
        if self.topics.replication_factor < 1 {
            return bad("topics.replication_factor", "must be at least 1");
        }
        if self.encoding.format == EncodingFormat::Confluent
            && !(self.registry.url.starts_with("http://") || self.registry.url.starts_with("https://"))
        {
            return bad("registry.url", "must be an http:// or https:// URL");
        }
        if self.registry.password.is_empty() != self.registry.username.is_empty() {
            return bad("registry.password", "username and password must be given together");
        }
        const LEVELS: &[&str] = &[
            "",
            "NONE",
            "BACKWARD",
            "BACKWARD_TRANSITIVE",
            "FORWARD",
            "FORWARD_TRANSITIVE",
            "FULL",
            "FULL_TRANSITIVE",
        ];
        if !LEVELS.contains(&self.registry.compatibility.as_str()) {
            return bad(
                "registry.compatibility",
                format!("must be one of {}", LEVELS[1..].join(", ")),
            );
        }
        if self.parse.max_page_bytes == 0 || self.parse.max_page_bytes > MAX_PAGE_BYTES_LIMIT {
            return bad(
                "parse.max_page_bytes",
                format!("must be between 1 and {MAX_PAGE_BYTES_LIMIT} (16 MiB)"),
            );
        }
        if self.pipeline.max_in_flight_pages == 0 {
            return bad("pipeline.max_in_flight_pages", "must be greater than 0");
        }
        if self.pipeline.max_in_flight_bytes < self.parse.max_page_bytes {
            return bad(
                "pipeline.max_in_flight_bytes",
                "must be at least parse.max_page_bytes, or a page of the maximum size could never start",
            );
        }
        if self.pipeline.drain_timeout_ms >= self.kafka.session_timeout_ms {
            return bad(
                "pipeline.drain_timeout_ms",
                format!(
                    "must be shorter than kafka.session_timeout_ms ({} ms), or the group evicts the worker while it drains",
                    self.kafka.session_timeout_ms
                ),
            );
        }
        if self.pipeline.retry_backoff_ms == 0 || self.pipeline.retry_backoff_max_ms < self.pipeline.retry_backoff_ms {
            return bad(
                "pipeline.retry_backoff_max_ms",
                "must be at least pipeline.retry_backoff_ms, which must be > 0",
            );
        }
        if self.pipeline.revoke_timeout_ms >= self.kafka.session_timeout_ms {
            return bad(
                "pipeline.revoke_timeout_ms",
                format!(
                    "must be shorter than kafka.session_timeout_ms ({} ms)",
                    self.kafka.session_timeout_ms
                ),
            );
        }
        self.validate_security()?;
        self.validate_delivery()?;
        for (key, options) in [
            ("kafka.options", &self.kafka.options),
            ("kafka.consumer_options", &self.kafka.consumer_options),
            ("kafka.producer_options", &self.kafka.producer_options),
        ] {
            for managed in [
                "enable.auto.offset.store",
                "group.id",
                "bootstrap.servers",
                "transactional.id",
            ] {
                if options.contains_key(managed) {
                    return bad(
                        key,
                        format!("`{managed}` is set by pagesplit itself; use the typed key instead"),
                    );
                }
            }
            // What the delivery guarantee rests on: offsets are committed for records that every
            // in-sync replica stored, written once each.
            for guarantee in [
                "acks",
                "request.required.acks",
                "enable.idempotence",
                "enable.auto.commit",
            ] {
                if options.contains_key(guarantee) {
                    return bad(
                        key,
                        format!(
                            "`{guarantee}` is set by pagesplit itself: its delivery guarantee \
                             rests on it (see delivery.mode)"
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    fn validate_security(&self) -> Result<(), ConfigError> {
        let kafka = &self.kafka;
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::Value {
                key: key.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if kafka.security_protocol.uses_sasl() {
            if kafka.sasl_username.trim().is_empty() {
                return bad("kafka.sasl_username", "must be set with a SASL security_protocol");
            }
            match (kafka.sasl_password.is_empty(), kafka.sasl_password_file.is_empty()) {
                (true, true) => {
                    return bad(
                        "kafka.sasl_password",
                        "set it (or kafka.sasl_password_file) with a SASL security_protocol",
                    )
                }
                (false, false) => {
                    return bad(
                        "kafka.sasl_password_file",
                        "give either kafka.sasl_password or kafka.sasl_password_file, not both",
                    )
                }
                _ => {}
            }
            self.sasl_password()?;
        } else if !kafka.sasl_username.is_empty()
            || !kafka.sasl_password.is_empty()
            || !kafka.sasl_password_file.is_empty()
        {
            return bad(
                "kafka.security_protocol",
                "SASL credentials are set but the protocol is not SASL_SSL or SASL_PLAINTEXT",
            );
        }
        if !kafka.ssl_ca_location.is_empty() {
            if !kafka.security_protocol.uses_tls() {
                return bad(
                    "kafka.ssl_ca_location",
                    "is only used with security_protocol SSL or SASL_SSL",
                );
            }
            if let Err(error) = std::fs::metadata(&kafka.ssl_ca_location) {
                return Err(ConfigError::Value {
                    key: "kafka.ssl_ca_location".to_owned(),
                    reason: format!("cannot read {}: {error}", kafka.ssl_ca_location),
                });
            }
        }
        Ok(())
    }

    fn validate_delivery(&self) -> Result<(), ConfigError> {
        let delivery = &self.delivery;
        let bad = |key: &str, reason: String| {
            Err(ConfigError::Value {
                key: key.to_owned(),
                reason,
            })
        };
        if delivery.transaction_max_pages == 0 {
            return bad("delivery.transaction_max_pages", "must be greater than 0".to_owned());
        }
        if delivery.transaction_max_ms == 0 || delivery.transaction_max_ms >= delivery.transaction_timeout_ms {
            return bad(
                "delivery.transaction_max_ms",
                format!(
                    "must be greater than 0 and shorter than delivery.transaction_timeout_ms ({} ms)",
                    delivery.transaction_timeout_ms
                ),
            );
        }
        if delivery.transaction_timeout_ms > 900_000 {
            return bad(
                "delivery.transaction_timeout_ms",
                "must be at most 900000, the brokers' default transaction.max.timeout.ms".to_owned(),
            );
        }
        if !delivery.exactly_once() {
            return Ok(());
        }
        if delivery.transactional_id_prefix.trim().is_empty() {
            return bad("delivery.transactional_id_prefix", "must not be empty".to_owned());
        }
        if delivery.effective_instance_id().is_none() {
            return bad(
                "delivery.instance_id",
                "must be set in exactly-once mode (a name unique within the group and stable across restarts); \
                 HOSTNAME is not set either"
                    .to_owned(),
            );
        }
        for (key, options) in [
            ("kafka.options", &self.kafka.options),
            ("kafka.consumer_options", &self.kafka.consumer_options),
        ] {
            if options.get("enable.auto.commit").is_some_and(|value| value == "true") {
                return bad(
                    key,
                    "`enable.auto.commit` cannot be true in exactly-once mode: offsets are committed in transactions"
                        .to_owned(),
                );
            }
        }
        Ok(())
    }

    /// The SASL password: `kafka.sasl_password`, else the content of `kafka.sasl_password_file`.
    pub fn sasl_password(&self) -> Result<Secret, ConfigError> {
        if self.kafka.sasl_password_file.is_empty() {
            return Ok(self.kafka.sasl_password.clone());
        }
        let path = &self.kafka.sasl_password_file;
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Value {
            key: "kafka.sasl_password_file".to_owned(),
            reason: format!("cannot read {path}: {error}"),
        })?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            return Err(ConfigError::Value {
                key: "kafka.sasl_password_file".to_owned(),
                reason: format!("{path} is empty"),
            });
        }
        Ok(Secret::new(password))
    }

    /// The producer's `transactional.id` in exactly-once mode:
    /// `<transactional_id_prefix>-<group_id>-<instance_id>`.
    ///
    /// One id per worker, stable across its restarts, rather than one per input partition:
    /// the consumer group metadata sent with each transaction's offsets (KIP-447) already fences
    /// a worker whose partitions were reassigned, so the id only has to let a restarted worker
    /// fence its own predecessor and abort the transaction that one left open.
    pub fn transactional_id(&self) -> Option<String> {
        if !self.delivery.exactly_once() {
            return None;
        }
        let instance = self.delivery.effective_instance_id()?;
        Some(format!(
            "{}-{}-{instance}",
            self.delivery.transactional_id_prefix, self.kafka.group_id
        ))
    }

    /// The effective configuration as TOML, with secrets redacted (for logs and `config check`).
    pub fn redacted_toml(&self) -> String {
        let mut text = toml::to_string_pretty(self).unwrap_or_default();
        for options in [
            &self.kafka.options,
            &self.kafka.consumer_options,
            &self.kafka.producer_options,
        ] {
            for (key, value) in options {
                if is_secret_option(key) && !value.is_empty() {
                    text = text.replace(value.as_str(), "***");
                }
            }
        }
        text
    }

    fn common_client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.kafka.bootstrap_servers);
        let kafka = &self.kafka;
        config.set("security.protocol", kafka.security_protocol.as_str());
        if kafka.security_protocol.uses_sasl() {
            config
                .set("sasl.mechanisms", kafka.sasl_mechanism.as_str())
                .set("sasl.username", &kafka.sasl_username);
            match self.sasl_password() {
                Ok(password) => {
                    config.set("sasl.password", password.expose());
                }
                // Checked at startup; a file gone since then fails authentication, loudly.
                Err(error) => tracing::error!(error = %error, "no SASL password"),
            }
        }
        if kafka.security_protocol.uses_tls() && !kafka.ssl_ca_location.is_empty() {
            config.set("ssl.ca.location", &kafka.ssl_ca_location);
        }
        if self.pipeline.statistics_interval_ms > 0 {
            config.set(
                "statistics.interval.ms",
                self.pipeline.statistics_interval_ms.to_string(),
            );
        }
        config
    }

    /// The consumer's librdkafka settings: offsets are stored by pagesplit once a page's events
    /// are acknowledged and committed in the background (at-least-once), or committed in the
    /// producer's transactions (exactly-once); fetch queues are bounded.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.common_client_config();
        let auto_commit = if self.delivery.exactly_once() { "false" } else { "true" };
        config
            .set("group.id", &self.kafka.group_id)
            .set("enable.auto.commit", auto_commit)
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", self.kafka.session_timeout_ms.to_string())
            // Bound librdkafka's prefetch queue and its fetch responses so a backlog does not
            // fill memory: with 2 MiB and 256 KiB per partition (librdkafka: 64 MiB and 1 MiB) a
            // worker stays near 70 MB through a backlog of a million full pages, at the same
            // speed (a larger record still comes whole: the broker answers with at least one)...
            .set("queued.max.messages.kbytes", "2048")
            .set("max.partition.fetch.bytes", "262144")
            .set("queued.min.messages", "1000")
            // ... and fetch again soon once it has drained: librdkafka's default waits a whole
            // second, which capped a worker at about what that queue holds per second.
            .set("fetch.queue.backoff.ms", "20");
        apply(&mut config, &self.kafka.options);
        apply(&mut config, &self.kafka.consumer_options);
        config
    }

    /// The producer's librdkafka settings: idempotent, acks from all in-sync replicas;
    /// transactional in exactly-once mode.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.admin_config();
        if let Some(transactional_id) = self.transactional_id() {
            config.set("transactional.id", transactional_id).set(
                "transaction.timeout.ms",
                self.delivery.transaction_timeout_ms.to_string(),
            );
        } else if ![&self.kafka.options, &self.kafka.producer_options]
            .iter()
            .any(|options| options.contains_key(MESSAGE_TIMEOUT) || options.contains_key("delivery.timeout.ms"))
        {
            // At-least-once: librdkafka retries a record until the brokers take it, in order
            // (idempotent), however long they are away; the page's offset is held meanwhile.
            // Records given back after a timeout and sent again by pagesplit could land after
            // newer records of their partition (a stale latest quote in a compacted topic).
            config.set(MESSAGE_TIMEOUT, "0");
        }
        config
    }

    /// The largest record pagesplit writes (the producer's `message.max.bytes`, and the
    /// `max.message.bytes` of the article and dead-letter topics it creates): a page of
    /// `parse.max_page_bytes`, its headers and framing fit, so its article or its dead letter is
    /// written whole. A record refused anyway (a topic with a lower limit) dead-letters its page;
    /// a dead letter refused goes without the page's bytes.
    pub fn max_record_bytes(&self) -> usize {
        (self.parse.max_page_bytes + (1 << 20)).max(1_000_000)
    }

    /// The producer's settings without a `transactional.id` (admin clients, metadata).
    pub fn admin_config(&self) -> ClientConfig {
        let mut config = self.common_client_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "100000")
            .set("queue.buffering.max.kbytes", "32768")
            .set("message.max.bytes", self.max_record_bytes().to_string());
        apply(&mut config, &self.kafka.options);
        apply(&mut config, &self.kafka.producer_options);
        config
    }
}

fn apply(config: &mut ClientConfig, options: &BTreeMap<String, String>) {
    for (key, value) in options {
        config.set(key, value);
    }
}

/// Whether a raw librdkafka option holds a secret.
fn is_secret_option(key: &str) -> bool {
    key.contains("password") || key.contains("secret") || key.ends_with(".key.pem")
}

/// Sets `key` (dotted) in `table` from a string, typed like the default value at that key.
fn set_dotted(
    table: &mut toml::Table,
    defaults: &toml::Table,
    key: &str,
    raw: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, sections) = parts.split_last().expect("split yields at least one part");
    let mut target = table;
    let mut default = Some(defaults);
    for section in sections {
        default = default.and_then(|d| d.get(*section)).and_then(|v| v.as_table());
        let entry = target
            .entry((*section).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        target = entry.as_table_mut().ok_or_else(|| ConfigError::Value {
            key: key.to_owned(),
            reason: format!("`{section}` is not a section (from {origin})"),
        })?;
    }
    // Keep the value a string where the key is a string (a group id of `123` stays text);
    // read numbers, booleans and arrays where the key holds one of those.
    let value = match default.and_then(|d| d.get(*last)) {
        Some(toml::Value::String(_)) | None => toml::Value::String(raw.to_owned()),
        Some(_) => parse_scalar(raw),
    };
    target.insert((*last).to_owned(), value);
    Ok(())
}

/// Reads a flag or environment value as a TOML value (number, bool, array), else a string.
fn parse_scalar(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::load(None, env(&[]), &[]).unwrap();
        assert_eq!(config.kafka.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(config.topics.quotes, "market.quotes.v1");
        assert_eq!(config.http.listen.port(), 9808);
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[kafka]\ngroup_id = \"from-file\"\nbootstrap_servers = \"file:9092\"\n[pipeline]\nmax_in_flight_pages = 7\n").unwrap();
        let config = Config::load(
            Some(&path),
            env(&[
                ("PAGESPLIT_KAFKA__BOOTSTRAP_SERVERS", "env:9092"),
                ("PAGESPLIT_PIPELINE__MAX_IN_FLIGHT_PAGES", "9"),
                ("PAGESPLIT_KAFKA__GROUP_ID", "123"),
                ("OTHER", "x"),
            ]),
            &[("kafka.bootstrap_servers".into(), "flag:9092".into())],
        )
        .unwrap();
        assert_eq!(config.kafka.bootstrap_servers, "flag:9092");
        // A numeric-looking value for a string key stays a string.
        assert_eq!(config.kafka.group_id, "123");
        assert_eq!(config.pipeline.max_in_flight_pages, 9);
    }

    #[test]
    fn unknown_key_is_named() {
        let error = Config::from_toml_str("[kafka]\nbootstrap_server = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("bootstrap_server"), "{error}");
        let error = Config::load(None, env(&[("PAGESPLIT_HTTP__LISTN", "1")]), &[]).unwrap_err();
        assert!(error.to_string().contains("listn"), "{error}");
    }

    #[test]
    fn bad_value_is_named() {
        let error = Config::load(None, env(&[("PAGESPLIT_HTTP__LISTEN", "nowhere")]), &[]).unwrap_err();
        assert!(error.to_string().contains("listen"), "{error}");
        let error = Config::from_toml_str("[pipeline]\ndrain_timeout_ms = 60000\n").unwrap_err();
        assert!(error.to_string().contains("pipeline.drain_timeout_ms"), "{error}");
        let error = Config::from_toml_str("[encoding]\nformat = \"xml\"\n").unwrap_err();
        assert!(error.to_string().contains("format"), "{error}");
        let error = Config::from_toml_str("[parse]\nmax_page_bytes = 16777217\n").unwrap_err();
        assert!(error.to_string().contains("parse.max_page_bytes"), "{error}");
        let config = Config::from_toml_str("[parse]\nmax_page_bytes = 16777216\n").unwrap();
        assert_eq!(config.producer_config().get("message.max.bytes"), Some("17825792"));
    }

    #[test]
    fn an_output_topic_may_not_be_the_input_or_another_output() {
        let error = Config::from_toml_str("[topics]\nquotes = \"pages.raw\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value for `topics.quotes`: must differ from topics.input (`pages.raw`)"
        );
        let error = Config::from_toml_str("[topics]\narticles = \"market.quotes.v1\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value for `topics.articles`: must differ from topics.quotes (`market.quotes.v1`)"
        );
        let error = Config::from_toml_str("[topics]\ninput = \"pagesplit.dlq.v1\"\n").unwrap_err();
        let error = error.to_string();
        assert!(
            error.starts_with("invalid value for `topics.dead_letter`: must differ from topics.input"),
            "{error}"
        );
    }

    #[test]
    fn raw_options_may_not_weaken_the_delivery_guarantee() {
        for (section, key) in [
            ("kafka.producer_options", "acks"),
            ("kafka.options", "enable.idempotence"),
            ("kafka.consumer_options", "enable.auto.commit"),
        ] {
            let error = Config::from_toml_str(&format!("[{section}]\n\"{key}\" = \"0\"\n")).unwrap_err();
            let error = error.to_string();
            let expected = format!("invalid value for `{section}`: `{key}` is set by pagesplit itself");
            assert!(error.starts_with(&expected), "{error}");
        }
    }

    #[test]
    fn raw_options_pass_through_and_secrets_are_redacted() {
        let config = Config::from_toml_str(
            "[kafka.options]\n\"sasl.password\" = \"hunter2\"\n\"security.protocol\" = \"SASL_SSL\"\n[registry]\nusername = \"u\"\npassword = \"s3cret\"\n",
        )
        .unwrap();
        assert_eq!(config.producer_config().get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.consumer_config().get("sasl.password"), Some("hunter2"));
        let shown = config.redacted_toml();
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}

#[cfg(test)]
mod delivery_and_security_tests {
    use super::*;

    #[test]
    fn at_least_once_is_the_default_and_has_no_transactions() {
        let config = Config::default();
        assert_eq!(config.delivery.mode, DeliveryMode::AtLeastOnce);
        assert_eq!(config.transactional_id(), None);
        assert_eq!(config.consumer_config().get("enable.auto.commit"), Some("true"));
        assert_eq!(config.producer_config().get("transactional.id"), None);
        assert_eq!(config.producer_config().get("message.timeout.ms"), Some("0"));
        let config = Config::from_toml_str("[kafka.producer_options]\n\"message.timeout.ms\" = \"600000\"\n").unwrap();
        assert_eq!(config.producer_config().get("message.timeout.ms"), Some("600000"));
    }

    #[test]
    fn exactly_once_uses_transactions_and_no_auto_commit() {
        let config = Config::from_toml_str(
            "[kafka]\ngroup_id = \"prices\"\n[delivery]\nmode = \"exactly-once\"\ninstance_id = \"worker-0\"\n",
        )
        .unwrap();
        assert_eq!(config.transactional_id().as_deref(), Some("pagesplit-prices-worker-0"));
        assert_eq!(
            config.producer_config().get("transactional.id"),
            Some("pagesplit-prices-worker-0")
        );
        assert_eq!(config.producer_config().get("transaction.timeout.ms"), Some("60000"));
        // librdkafka bounds it by the transaction timeout.
        assert_eq!(config.producer_config().get("message.timeout.ms"), None);
        assert_eq!(config.admin_config().get("transactional.id"), None);
        assert_eq!(config.consumer_config().get("enable.auto.commit"), Some("false"));
    }

    #[test]
    fn delivery_errors_name_the_key() {
        let error = Config::from_toml_str("[delivery]\nmode = \"twice\"\n").unwrap_err();
        assert!(error.to_string().contains("mode"), "{error}");
        let error = Config::from_toml_str("[delivery]\nmax_pages = 3\n").unwrap_err();
        assert!(error.to_string().contains("max_pages"), "{error}");
        let error = Config::from_toml_str("[delivery]\ntransaction_max_ms = 60000\n").unwrap_err();
        assert!(error.to_string().contains("delivery.transaction_max_ms"), "{error}");
        let error = Config::from_toml_str("[delivery]\ntransaction_max_pages = 0\n").unwrap_err();
        assert!(error.to_string().contains("delivery.transaction_max_pages"), "{error}");
        let error = Config::from_toml_str(
            "[delivery]\nmode = \"exactly-once\"\ninstance_id = \"a\"\n[kafka.consumer_options]\n\"enable.auto.commit\" = \"true\"\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("kafka.consumer_options"), "{error}");
        let error = Config::from_toml_str("[kafka.producer_options]\n\"transactional.id\" = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("transactional.id"), "{error}");
        let error = Config::from_toml_str("[pipeline]\nrevoke_timeout_ms = 45000\n").unwrap_err();
        assert!(error.to_string().contains("pipeline.revoke_timeout_ms"), "{error}");
    }

    #[test]
    fn sasl_ssl_settings_reach_the_clients_and_the_password_is_never_printed() {
        let config = Config::load(
            None,
            vec![("PAGESPLIT_KAFKA__SASL_PASSWORD".to_owned(), "hunter2-secret".to_owned())],
            &[
                ("kafka.security_protocol".to_owned(), "SASL_SSL".to_owned()),
                ("kafka.sasl_username".to_owned(), "pagesplit".to_owned()),
            ],
        )
        .unwrap();
        for client in [
            config.consumer_config(),
            config.producer_config(),
            config.admin_config(),
        ] {
            assert_eq!(client.get("security.protocol"), Some("SASL_SSL"));
            assert_eq!(client.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
            assert_eq!(client.get("sasl.username"), Some("pagesplit"));
            assert_eq!(client.get("sasl.password"), Some("hunter2-secret"));
            assert!(!format!("{client:?}").contains("hunter2"));
        }
        let shown = config.redacted_toml();
        assert!(shown.contains("sasl_password = \"***\""), "{shown}");
        assert!(!shown.contains("hunter2") && !format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn the_password_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "from-a-file\n").unwrap();
        let text = format!(
            "[kafka]\nsecurity_protocol = \"SASL_SSL\"\nsasl_username = \"u\"\nsasl_password_file = \"{}\"\n",
            path.display()
        );
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!(config.producer_config().get("sasl.password"), Some("from-a-file"));
        assert!(!config.redacted_toml().contains("from-a-file"));
        std::fs::remove_file(&path).unwrap();
        let error = Config::from_toml_str(&text).unwrap_err();
        assert!(error.to_string().contains("kafka.sasl_password_file"), "{error}");
    }

    #[test]
    fn security_errors_name_the_key() {
        let error = Config::from_toml_str("[kafka]\nsecurity_protocol = \"SASL_SSL\"\n").unwrap_err();
        assert!(error.to_string().contains("kafka.sasl_username"), "{error}");
        let error =
            Config::from_toml_str("[kafka]\nsecurity_protocol = \"SASL_SSL\"\nsasl_username = \"u\"\n").unwrap_err();
        assert!(error.to_string().contains("kafka.sasl_password"), "{error}");
        let error = Config::from_toml_str(
            "[kafka]\nsecurity_protocol = \"SASL_SSL\"\nsasl_username = \"u\"\nsasl_password = \"p\"\nsasl_password_file = \"/f\"\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("kafka.sasl_password_file"), "{error}");
        assert!(!error.to_string().contains("\"p\""), "{error}");
        let error = Config::from_toml_str("[kafka]\nsasl_username = \"u\"\n").unwrap_err();
        assert!(error.to_string().contains("kafka.security_protocol"), "{error}");
        let error = Config::from_toml_str("[kafka]\nsecurity_protocol = \"TLS\"\n").unwrap_err();
        assert!(error.to_string().contains("security_protocol"), "{error}");
        let error = Config::from_toml_str("[kafka]\nssl_ca_location = \"/ca.pem\"\n").unwrap_err();
        assert!(error.to_string().contains("kafka.ssl_ca_location"), "{error}");
    }
}

#[cfg(test)]
mod quotes_tests {
    use super::*;

    #[test]
    fn quotes_default_to_all_with_a_compacted_latest_topic() {
        let config = Config::default();
        assert_eq!(config.quotes.emit, QuoteEmit::All);
        assert!(!config.quotes.changed_only());
        assert_eq!(config.quotes.max_symbols, 100_000);
        assert_eq!(config.topics.quotes_latest(), Some("market.quotes.latest.v1"));
    }

    #[test]
    fn emit_changed_and_the_latest_topic_come_from_every_layer() {
        let config = Config::load(
            None,
            vec![("PAGESPLIT_QUOTES__EMIT".to_owned(), "changed".to_owned())],
            &[
                ("quotes.max_symbols".to_owned(), "500".to_owned()),
                ("topics.quotes_latest".to_owned(), String::new()),
            ],
        )
        .unwrap();
        assert!(config.quotes.changed_only());
        assert_eq!(config.quotes.max_symbols, 500);
        assert_eq!(config.topics.quotes_latest(), None, "empty turns it off");
        let config = Config::from_toml_str("[topics]\nquotes_latest = \"prices.latest\"\n").unwrap();
        assert_eq!(config.topics.quotes_latest(), Some("prices.latest"));
    }

    #[test]
    fn bad_quote_settings_name_the_key() {
        let error = Config::from_toml_str("[quotes]\nemit = \"some\"\n").unwrap_err();
        assert!(error.to_string().contains("emit"), "{error}");
        let error = Config::from_toml_str("[quotes]\nmax_symbols = 0\n").unwrap_err();
        assert!(error.to_string().contains("quotes.max_symbols"), "{error}");
        let error = Config::from_toml_str("[quotes]\nmax_symbols = 20000000\n").unwrap_err();
        assert!(error.to_string().contains("quotes.max_symbols"), "{error}");
        let error = Config::load(
            None,
            vec![("PAGESPLIT_QUOTES__MAX_SYMBOLS".to_owned(), "-1".to_owned())],
            &[],
        )
        .unwrap_err();
        assert!(error.to_string().contains("max_symbols"), "{error}");
        let error = Config::from_toml_str("[quotes]\nemitt = \"all\"\n").unwrap_err();
        assert!(error.to_string().contains("emitt"), "{error}");
        let error = Config::from_toml_str("[topics]\nquotes_latest = \"market.quotes.v1\"\n").unwrap_err();
        assert!(error.to_string().contains("topics.quotes_latest"), "{error}");
        let error = Config::from_toml_str("[topics]\nquotes_latest = \"latest quotes\"\n").unwrap_err();
        assert!(error.to_string().contains("topics.quotes_latest"), "{error}");
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_defaults() {
        let example = Config::from_toml_str(include_str!("../deploy/pagesplit.example.toml")).unwrap();
        assert_eq!(example, Config::default());
    }
}
