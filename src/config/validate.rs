//! Cross-field checks at startup, one function per section. The first failure stops startup
//! with a message naming the key; values shown are never secrets.

use std::collections::BTreeMap;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;
use rdkafka::ClientConfig;

use super::secrets::url_has_credentials;
use super::tree::MAX_QUOTE_SYMBOLS_LIMIT;
use super::{
    Config, ConfigError, DeliveryConfig, EncodingFormat, HttpConfig, KafkaConfig, ParseConfig, PipelineConfig,
    QuotesConfig, RegistryConfig, TopicsConfig, MAX_PAGE_BYTES_LIMIT,
};

type Checked = Result<(), ConfigError>;

fn bad(key: &str, reason: impl Into<String>) -> Checked {
    Err(ConfigError::value(key, reason))
}

impl Config {
    /// Cross-field checks, section by section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        kafka(&self.kafka)?;
        topics(&self.topics)?;
        quotes(&self.quotes)?;
        registry(&self.registry, self.encoding.format)?;
        parse(&self.parse)?;
        http(&self.http)?;
        pipeline(&self.pipeline, &self.kafka, &self.parse)?;
        kafka_security(self)?;
        delivery(&self.delivery, &self.kafka)?;
        raw_options(&self.kafka)
    }
}

fn kafka(kafka: &KafkaConfig) -> Checked {
    if kafka.bootstrap_servers.trim().is_empty() {
        return bad("kafka.bootstrap_servers", "must name at least one broker");
    }
    if kafka.group_id.trim().is_empty() {
        return bad("kafka.group_id", "must not be empty");
    }
    Ok(())
}

fn is_topic_name(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= 249 && topic.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn topics(topics: &TopicsConfig) -> Checked {
    for (key, topic) in [
        ("topics.input", &topics.input),
        ("topics.quotes", &topics.quotes),
        ("topics.articles", &topics.articles),
        ("topics.dead_letter", &topics.dead_letter),
    ] {
        if !is_topic_name(topic) {
            return bad(key, format!("`{topic}` is not a valid Kafka topic name"));
        }
    }
    // An output that is also the input (or another output) would feed events back in as
    // pages, or mix two schemas in one topic.
    let outputs = [
        ("topics.quotes", &topics.quotes),
        ("topics.articles", &topics.articles),
        ("topics.dead_letter", &topics.dead_letter),
    ];
    for (index, (key, topic)) in outputs.iter().enumerate() {
        if *topic == &topics.input {
            return bad(key, format!("must differ from topics.input (`{topic}`)"));
        }
        if let Some((other, _)) = outputs[..index].iter().find(|(_, earlier)| earlier == topic) {
            return bad(key, format!("must differ from {other} (`{topic}`)"));
        }
    }
    if let Some(latest) = topics.quotes_latest() {
        if !is_topic_name(latest) {
            return bad(
                "topics.quotes_latest",
                format!("`{latest}` is not a valid Kafka topic name (empty turns it off)"),
            );
        }
        if [&topics.input, &topics.quotes, &topics.articles, &topics.dead_letter].contains(&&topics.quotes_latest) {
            return bad(
                "topics.quotes_latest",
                "must differ from the other topics: it is compacted, keyed by symbol",
            );
        }
    }
    if topics.partitions < 1 {
        return bad("topics.partitions", "must be at least 1");
    }
    if topics.replication_factor < 1 {
        return bad("topics.replication_factor", "must be at least 1");
    }
    Ok(())
}

fn quotes(quotes: &QuotesConfig) -> Checked {
    if quotes.max_symbols == 0 || quotes.max_symbols > MAX_QUOTE_SYMBOLS_LIMIT {
        return bad(
            "quotes.max_symbols",
            format!("must be between 1 and {MAX_QUOTE_SYMBOLS_LIMIT}"),
        );
    }
    Ok(())
}

fn registry(registry: &RegistryConfig, format: EncodingFormat) -> Checked {
    let url = registry.url.trim();
    let https = url.starts_with("https://");
    if format == EncodingFormat::Confluent && !(https || url.starts_with("http://")) {
        return bad("registry.url", "must be an http:// or https:// URL");
    }
    if registry.password.is_empty() != registry.username.is_empty() {
        return bad("registry.password", "username and password must be given together");
    }
    let credentials = !registry.username.is_empty() || url_has_credentials(url);
    if credentials && !https && !registry.allow_insecure_credentials {
        return bad(
            "registry.url",
            "basic-auth credentials would be sent in clear text over http://: use an https:// URL, \
             or set registry.allow_insecure_credentials = true to accept that",
        );
    }
    if !registry.ca_location.is_empty() {
        crate::registry::load_ca_certificates(std::path::Path::new(&registry.ca_location))
            .map_err(|reason| ConfigError::value("registry.ca_location", reason))?;
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
    if !LEVELS.contains(&registry.compatibility.as_str()) {
        return bad(
            "registry.compatibility",
            format!("must be one of {}", LEVELS[1..].join(", ")),
        );
    }
    Ok(())
}

fn parse(parse: &ParseConfig) -> Checked {
    if parse.max_page_bytes == 0 || parse.max_page_bytes > MAX_PAGE_BYTES_LIMIT {
        return bad(
            "parse.max_page_bytes",
            format!("must be between 1 and {MAX_PAGE_BYTES_LIMIT} (16 MiB)"),
        );
    }
    Ok(())
}

fn http(http: &HttpConfig) -> Checked {
    if http.max_connections == 0 {
        return bad("http.max_connections", "must be at least 1");
    }
    if http.header_read_timeout_ms == 0 {
        return bad("http.header_read_timeout_ms", "must be at least 1");
    }
    Ok(())
}

fn pipeline(pipeline: &PipelineConfig, kafka: &KafkaConfig, parse: &ParseConfig) -> Checked {
    if pipeline.max_in_flight_pages == 0 {
        return bad("pipeline.max_in_flight_pages", "must be greater than 0");
    }
    if pipeline.max_in_flight_bytes < parse.max_page_bytes {
        return bad(
            "pipeline.max_in_flight_bytes",
            "must be at least parse.max_page_bytes, or a page of the maximum size could never start",
        );
    }
    if pipeline.drain_timeout_ms >= kafka.session_timeout_ms {
        return bad(
            "pipeline.drain_timeout_ms",
            format!(
                "must be shorter than kafka.session_timeout_ms ({} ms), or the group evicts the worker while it drains",
                kafka.session_timeout_ms
            ),
        );
    }
    if !(10..=60_000).contains(&pipeline.commit_interval_ms) {
        return bad("pipeline.commit_interval_ms", "must be between 10 and 60000");
    }
    if pipeline.retry_backoff_ms == 0 || pipeline.retry_backoff_max_ms < pipeline.retry_backoff_ms {
        return bad(
            "pipeline.retry_backoff_max_ms",
            "must be at least pipeline.retry_backoff_ms, which must be > 0",
        );
    }
    if pipeline.revoke_timeout_ms >= kafka.session_timeout_ms {
        return bad(
            "pipeline.revoke_timeout_ms",
            format!(
                "must be shorter than kafka.session_timeout_ms ({} ms)",
                kafka.session_timeout_ms
            ),
        );
    }
    Ok(())
}

/// SASL credentials, TLS files, and credentials without TLS.
fn kafka_security(config: &Config) -> Checked {
    let kafka = &config.kafka;
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
        config.sasl_password()?;
        if !kafka.security_protocol.uses_tls() && !kafka.allow_insecure_credentials {
            return bad(
                "kafka.security_protocol",
                "SASL_PLAINTEXT sends the SASL credentials without TLS (with PLAIN, the password \
                 itself): use SASL_SSL, or set kafka.allow_insecure_credentials = true to accept that",
            );
        }
    } else if !kafka.sasl_username.is_empty() || !kafka.sasl_password.is_empty() || !kafka.sasl_password_file.is_empty()
    {
        return bad(
            "kafka.security_protocol",
            "SASL credentials are set but the protocol is not SASL_SSL or SASL_PLAINTEXT",
        );
    }
    tls_files(kafka)
}

/// The CA, client certificate and key files: only with TLS, readable, certificate and key together.
fn tls_files(kafka: &KafkaConfig) -> Checked {
    let files = [
        ("kafka.ssl_ca_location", &kafka.ssl_ca_location),
        ("kafka.ssl_certificate_location", &kafka.ssl_certificate_location),
        ("kafka.ssl_key_location", &kafka.ssl_key_location),
    ];
    for (key, path) in files {
        if path.is_empty() {
            continue;
        }
        if !kafka.security_protocol.uses_tls() {
            return bad(key, "is only used with security_protocol SSL or SASL_SSL");
        }
        if let Err(error) = std::fs::metadata(path) {
            return bad(key, format!("cannot read {path}: {error}"));
        }
    }
    if kafka.ssl_certificate_location.is_empty() != kafka.ssl_key_location.is_empty() {
        return bad(
            "kafka.ssl_key_location",
            "kafka.ssl_certificate_location and kafka.ssl_key_location must be given together",
        );
    }
    if !kafka.ssl_key_password.is_empty() && kafka.ssl_key_location.is_empty() {
        return bad("kafka.ssl_key_password", "is only used with kafka.ssl_key_location");
    }
    Ok(())
}

fn delivery(delivery: &DeliveryConfig, kafka: &KafkaConfig) -> Checked {
    if delivery.transaction_max_pages == 0 {
        return bad("delivery.transaction_max_pages", "must be greater than 0");
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
            "must be at most 900000, the brokers' default transaction.max.timeout.ms",
        );
    }
    if !delivery.exactly_once() {
        return Ok(());
    }
    if delivery.transactional_id_prefix.trim().is_empty() {
        return bad("delivery.transactional_id_prefix", "must not be empty");
    }
    if delivery.effective_instance_id().is_none() {
        return bad(
            "delivery.instance_id",
            "must be set in exactly-once mode (a name unique within the group and stable across restarts); \
             HOSTNAME is not set either",
        );
    }
    for (key, options) in [
        ("kafka.options", &kafka.options),
        ("kafka.consumer_options", &kafka.consumer_options),
    ] {
        if options.get("enable.auto.commit").is_some_and(|value| value == "true") {
            return bad(
                key,
                "`enable.auto.commit` cannot be true in exactly-once mode: offsets are committed in transactions",
            );
        }
    }
    Ok(())
}

/// Raw librdkafka options set by pagesplit itself.
const MANAGED_OPTIONS: &[&str] = &[
    "enable.auto.offset.store",
    "group.id",
    "bootstrap.servers",
    "transactional.id",
];

/// What the delivery guarantee rests on: offsets are committed for records that every in-sync
/// replica stored, written once each.
const GUARANTEE_OPTIONS: &[&str] = &[
    "acks",
    "request.required.acks",
    "enable.idempotence",
    "enable.auto.commit",
];

/// The raw librdkafka options: none that pagesplit sets itself, none that touch security, and
/// only properties and values librdkafka knows (checked here, where the error can leave the
/// value out: librdkafka's own message would show it).
fn raw_options(kafka: &KafkaConfig) -> Checked {
    for (section, options) in [
        ("kafka.options", &kafka.options),
        ("kafka.consumer_options", &kafka.consumer_options),
        ("kafka.producer_options", &kafka.producer_options),
    ] {
        for key in options.keys() {
            let normalized = key.trim().to_ascii_lowercase();
            if let Some(instead) = typed_security_key(&normalized) {
                return bad(
                    section,
                    format!("`{key}` touches security and is refused as a raw librdkafka option: {instead}"),
                );
            }
            if MANAGED_OPTIONS.contains(&normalized.as_str()) {
                return bad(
                    section,
                    format!("`{key}` is set by pagesplit itself; use the typed key instead"),
                );
            }
            if GUARANTEE_OPTIONS.contains(&normalized.as_str()) {
                return bad(
                    section,
                    format!(
                        "`{key}` is set by pagesplit itself: its delivery guarantee rests on it (see delivery.mode)"
                    ),
                );
            }
        }
        librdkafka_accepts(section, options)?;
    }
    Ok(())
}

/// Whether a (lower-case) librdkafka property touches transport security or authentication.
fn touches_security(key: &str) -> bool {
    key == "security.protocol"
        || ["sasl.", "ssl.", "ssl_", "enable.ssl.", "enable.sasl."]
            .iter()
            .any(|prefix| key.starts_with(prefix))
        || key.contains("oauthbearer")
}

/// For a raw option that touches security, what to set instead.
fn typed_security_key(key: &str) -> Option<&'static str> {
    if !touches_security(key) {
        return None;
    }
    Some(match key {
        "security.protocol" => "use kafka.security_protocol",
        "sasl.mechanism" | "sasl.mechanisms" => "use kafka.sasl_mechanism",
        "sasl.username" => "use kafka.sasl_username",
        "sasl.password" => "use kafka.sasl_password or kafka.sasl_password_file",
        "ssl.ca.location" | "ssl.ca.pem" | "ssl_ca" | "ssl.ca.certificate.stores" => "use kafka.ssl_ca_location",
        "ssl.certificate.location" | "ssl.certificate.pem" | "ssl_certificate" => "use kafka.ssl_certificate_location",
        "ssl.key.location" | "ssl.key.pem" | "ssl_key" => "use kafka.ssl_key_location",
        "ssl.key.password" => "use kafka.ssl_key_password",
        "enable.ssl.certificate.verification" | "ssl.endpoint.identification.algorithm" => {
            "broker certificates and host names are always verified; use kafka.ssl_ca_location to trust a private CA"
        }
        _ => "use kafka.security_protocol, kafka.sasl_* and kafka.ssl_* (the only security settings pagesplit takes)",
    })
}

/// Each option through librdkafka's own configuration parser, reporting the key only.
fn librdkafka_accepts(section: &str, options: &BTreeMap<String, String>) -> Checked {
    for (key, value) in options {
        let mut probe = ClientConfig::new();
        probe.set(key, value);
        match probe.create_native_config() {
            Ok(_) => {}
            Err(KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, ..)) => {
                return bad(section, format!("`{key}` is not a librdkafka configuration property"));
            }
            Err(_) => return bad(section, format!("librdkafka refuses the value of `{key}` (not shown)")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn raw_options_touching_security_are_refused_naming_the_typed_key() {
        for (key, instead) in [
            ("security.protocol", "use kafka.security_protocol"),
            ("sasl.mechanism", "use kafka.sasl_mechanism"),
            ("sasl.username", "use kafka.sasl_username"),
            ("sasl.password", "use kafka.sasl_password"),
            ("ssl.ca.location", "use kafka.ssl_ca_location"),
            ("ssl.certificate.location", "use kafka.ssl_certificate_location"),
            ("ssl.key.password", "use kafka.ssl_key_password"),
            (
                "enable.ssl.certificate.verification",
                "use kafka.ssl_ca_location to trust a private CA",
            ),
            (
                "ssl.endpoint.identification.algorithm",
                "host names are always verified",
            ),
            (
                "SSL.Endpoint.Identification.Algorithm",
                "host names are always verified",
            ),
            (
                "sasl.oauthbearer.config",
                "use kafka.security_protocol, kafka.sasl_* and kafka.ssl_*",
            ),
            (
                "ssl.cipher.suites",
                "use kafka.security_protocol, kafka.sasl_* and kafka.ssl_*",
            ),
        ] {
            for section in ["kafka.options", "kafka.consumer_options", "kafka.producer_options"] {
                let text = format!("[{section}]\n\"{key}\" = \"raw-value-1\"\n");
                let error = Config::from_toml_str(&text).unwrap_err().to_string();
                let expected = format!(
                    "invalid value for `{section}`: `{key}` touches security and is refused as a raw librdkafka option: "
                );
                assert!(error.starts_with(&expected), "{error}");
                assert!(error.contains(instead), "{error}");
                assert!(!error.contains("raw-value-1"), "{error}");
            }
        }
        // The downgrade: SASL_SSL typed, PLAINTEXT raw.
        let error = Config::from_toml_str(
            "[kafka]\nsecurity_protocol = \"SASL_SSL\"\nsasl_username = \"u\"\nsasl_password = \"p\"\n\
             [kafka.options]\n\"security.protocol\" = \"PLAINTEXT\"\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("use kafka.security_protocol"), "{error}");
    }

    #[test]
    fn raw_options_librdkafka_does_not_know_are_refused_without_their_value() {
        let error = Config::from_toml_str("[kafka.options]\n\"client.idd\" = \"value-s3cret\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value for `kafka.options`: `client.idd` is not a librdkafka configuration property"
        );
        let error =
            Config::from_toml_str("[kafka.consumer_options]\n\"fetch.wait.max.ms\" = \"value-s3cret\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value for `kafka.consumer_options`: librdkafka refuses the value of `fetch.wait.max.ms` (not shown)"
        );
        let config = Config::from_toml_str("[kafka.consumer_options]\n\"fetch.wait.max.ms\" = \"50\"\n").unwrap();
        assert_eq!(config.consumer_config().get("fetch.wait.max.ms"), Some("50"));
    }

    #[test]
    fn sasl_without_tls_needs_an_explicit_allowance() {
        for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let text = format!(
                "[kafka]\nsecurity_protocol = \"SASL_PLAINTEXT\"\nsasl_mechanism = \"{mechanism}\"\n\
                 sasl_username = \"u\"\nsasl_password = \"pw-1\"\n"
            );
            let error = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(
                error.starts_with("invalid value for `kafka.security_protocol`: SASL_PLAINTEXT sends the SASL credentials without TLS"),
                "{error}"
            );
            assert!(
                error.contains("kafka.allow_insecure_credentials = true") && !error.contains("pw-1"),
                "{error}"
            );
            let allowed = Config::from_toml_str(&format!("{text}allow_insecure_credentials = true\n")).unwrap();
            assert_eq!(
                allowed.consumer_config().get("security.protocol"),
                Some("SASL_PLAINTEXT")
            );
        }
    }

    #[test]
    fn registry_credentials_over_http_need_an_explicit_allowance() {
        for registry in [
            "url = \"http://registry:8080/apis\"\nusername = \"u\"\npassword = \"pw-1\"\n",
            "url = \"http://u:pw-1@registry:8080/apis\"\n",
        ] {
            let text = format!("[registry]\n{registry}");
            let error = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(
                error.starts_with(
                    "invalid value for `registry.url`: basic-auth credentials would be sent in clear text over http://"
                ),
                "{error}"
            );
            assert!(
                error.contains("registry.allow_insecure_credentials = true") && !error.contains("pw-1"),
                "{error}"
            );
            Config::from_toml_str(&format!("{text}allow_insecure_credentials = true\n")).unwrap();
            Config::from_toml_str(&text.replace("http://", "https://")).unwrap();
        }
        // Without credentials, http:// is fine (the default).
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn client_certificate_settings_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client.pem");
        std::fs::write(&file, "pem").unwrap();
        let file = file.display();
        for (text, key) in [
            (
                format!("[kafka]\nssl_certificate_location = \"{file}\"\nssl_key_location = \"{file}\"\n"),
                "kafka.ssl_certificate_location",
            ),
            (
                format!("[kafka]\nsecurity_protocol = \"SSL\"\nssl_certificate_location = \"{file}\"\n"),
                "kafka.ssl_key_location",
            ),
            (
                "[kafka]\nsecurity_protocol = \"SSL\"\nssl_key_location = \"/nowhere.key\"\n".to_owned(),
                "kafka.ssl_key_location",
            ),
            (
                "[kafka]\nsecurity_protocol = \"SSL\"\nssl_key_password = \"pw-1\"\n".to_owned(),
                "kafka.ssl_key_password",
            ),
        ] {
            let error = Config::from_toml_str(&text).unwrap_err().to_string();
            assert!(error.starts_with(&format!("invalid value for `{key}`")), "{error}");
            assert!(!error.contains("pw-1"), "{error}");
        }
    }
}
