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
            create: false,
            partitions: 3,
            replication_factor: 1,
        }
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
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            max_in_flight_pages: 1_000,
            max_in_flight_bytes: 64 * 1024 * 1024,
            drain_timeout_ms: 10_000,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 10_000,
            statistics_interval_ms: 5_000,
            stall_timeout_ms: 60_000,
        }
    }
}

impl PipelineConfig {
    /// The drain deadline.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
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
        if self.topics.dead_letter == self.topics.input {
            return bad("topics.dead_letter", "must differ from topics.input");
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
        if self.parse.max_page_bytes == 0 {
            return bad("parse.max_page_bytes", "must be greater than 0");
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
        for (key, options) in [
            ("kafka.options", &self.kafka.options),
            ("kafka.consumer_options", &self.kafka.consumer_options),
            ("kafka.producer_options", &self.kafka.producer_options),
        ] {
            for managed in ["enable.auto.offset.store", "group.id", "bootstrap.servers"] {
                if options.contains_key(managed) {
                    return bad(
                        key,
                        format!("`{managed}` is set by pagesplit itself; use the typed key instead"),
                    );
                }
            }
        }
        Ok(())
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
        if self.pipeline.statistics_interval_ms > 0 {
            config.set(
                "statistics.interval.ms",
                self.pipeline.statistics_interval_ms.to_string(),
            );
        }
        config
    }

    /// The consumer's librdkafka settings: offsets are stored by pagesplit once a page's events
    /// are acknowledged and committed in the background; fetch queues are bounded.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = self.common_client_config();
        config
            .set("group.id", &self.kafka.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", self.kafka.session_timeout_ms.to_string())
            // Bound librdkafka's prefetch queue so a backlog does not fill memory.
            .set("queued.max.messages.kbytes", "16384")
            .set("queued.min.messages", "1000");
        apply(&mut config, &self.kafka.options);
        apply(&mut config, &self.kafka.consumer_options);
        config
    }

    /// The producer's librdkafka settings: idempotent, acks from all in-sync replicas.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.common_client_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "100000")
            .set("queue.buffering.max.kbytes", "65536");
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
mod example_tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_defaults() {
        let example = Config::from_toml_str(include_str!("../deploy/pagesplit.example.toml")).unwrap();
        assert_eq!(example, Config::default());
    }
}
