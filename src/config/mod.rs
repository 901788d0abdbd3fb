//! One typed configuration tree, layered: defaults → TOML file → `PAGESPLIT_*` environment → flags.
//!
//! Unknown keys and bad values stop startup with a message naming the key, never its value.
//!
//! - `tree.rs`: the sections and their defaults;
//! - `load.rs`: reading and layering the file, the environment and the flags;
//! - `validate.rs`: cross-field checks, one function per section;
//! - `clients.rs`: librdkafka settings of each Kafka client role (consumer, producer, admin);
//! - `secrets.rs`: secret values, redaction of the tree for display, credentials without TLS.

mod clients;
mod load;
mod secrets;
mod tree;
mod validate;

pub use load::ENV_PREFIX;
pub use secrets::{redact_url, Secret};
pub use tree::{
    Config, DeliveryConfig, DeliveryMode, EncodingConfig, EncodingFormat, GroupProtocol, HttpConfig, KafkaConfig,
    LogConfig, LogFormat, ParseConfig, PipelineConfig, QuoteEmit, QuotesConfig, RegistryConfig, SaslMechanism,
    SecurityProtocol, TopicsConfig, MAX_PAGE_BYTES_LIMIT,
};

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

impl ConfigError {
    /// A [`ConfigError::Value`] for `key`.
    pub(crate) fn value(key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Value {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_defaults() {
        let example = Config::from_toml_str(include_str!("../../deploy/pagesplit.example.toml")).unwrap();
        assert_eq!(example, Config::default());
    }
}
