//! librdkafka settings of each Kafka client role.
//!
//! Every client gets the connection: brokers, security (from the typed keys only) and
//! statistics, then `kafka.options`. On top, each role gets only what it needs:
//! - consumer: the group, offsets stored by pagesplit, bounded fetch queues,
//!   `kafka.consumer_options`;
//! - producer: idempotence, acks from all in-sync replicas, batching, compression, the record
//!   size, `kafka.producer_options`; then a `transactional.id` (exactly-once) or no delivery
//!   timeout (at-least-once);
//! - admin: nothing more (topic creation, metadata).

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use super::{Config, GroupProtocol};

/// How long librdkafka tries to deliver a record (`0`: until delivered).
const MESSAGE_TIMEOUT: &str = "message.timeout.ms";

/// The longest wait between two connection attempts to a broker (librdkafka: 10 s).
const RECONNECT_BACKOFF_MAX_MS: &str = "1000";

impl Config {
    /// What every client needs to reach the brokers: addresses, security, statistics.
    fn connection_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        let kafka = &self.kafka;
        config
            .set("bootstrap.servers", &kafka.bootstrap_servers)
            .set("security.protocol", kafka.security_protocol.as_str());
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
        if kafka.security_protocol.uses_tls() {
            for (property, path) in [
                ("ssl.ca.location", &kafka.ssl_ca_location),
                ("ssl.certificate.location", &kafka.ssl_certificate_location),
                ("ssl.key.location", &kafka.ssl_key_location),
            ] {
                if !path.is_empty() {
                    config.set(property, path);
                }
            }
            if !kafka.ssl_key_password.is_empty() {
                config.set("ssl.key.password", kafka.ssl_key_password.expose());
            }
        }
        // A broker that died is tried again every second at most (librdkafka: backing off up to
        // 10 s). Until the others have fenced it and moved its partitions, a lookup still names
        // it as leader or coordinator, and the clients go on connecting to it; only a failed
        // connection makes the producer ask again for its transaction coordinator. With 10 s
        // between attempts, exactly-once output resumed up to 10 s after the new coordinator was
        // elected; with 1 s, within 2 s.
        config.set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS);
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
        let mut config = self.connection_config();
        let auto_commit = if self.delivery.exactly_once() { "false" } else { "true" };
        config
            .set("group.id", &self.kafka.group_id)
            .set("enable.auto.commit", auto_commit)
            .set("auto.commit.interval.ms", self.pipeline.commit_interval_ms.to_string())
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
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
        self.group_membership(&mut config);
        apply(&mut config, &self.kafka.options);
        apply(&mut config, &self.kafka.consumer_options);
        config
    }

    /// How the consumer takes part in its group: the protocol, and with static membership the
    /// worker's `group.instance.id`. The classic protocol gets the session timeout and
    /// cooperative-sticky assignment; the consumer protocol (KIP-848) leaves both to the brokers
    /// (librdkafka refuses them there).
    fn group_membership(&self, config: &mut ClientConfig) {
        match self.kafka.group_protocol {
            GroupProtocol::Classic => {
                config
                    .set("partition.assignment.strategy", "cooperative-sticky")
                    .set("session.timeout.ms", self.kafka.session_timeout_ms.to_string());
            }
            GroupProtocol::Consumer => {
                config.set("group.protocol", GroupProtocol::Consumer.as_str());
            }
        }
        if let Some(instance) = self.kafka.effective_group_instance_id(&self.delivery) {
            config.set("group.instance.id", instance);
        }
    }

    /// The worker's producer: idempotent, acks from all in-sync replicas; transactional in
    /// exactly-once mode, else retrying each record until the brokers take it.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = self.plain_producer_config();
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

    /// A producer with the worker's producer settings but no transactions and librdkafka's
    /// delivery timeout: for one-off producers (dead-letter replay) that report a record the
    /// brokers do not take rather than hold an offset for it.
    pub fn plain_producer_config(&self) -> ClientConfig {
        let mut config = self.connection_config();
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

    /// The admin client's settings (topic creation, metadata): the connection only.
    pub fn admin_config(&self) -> ClientConfig {
        let mut config = self.connection_config();
        apply(&mut config, &self.kafka.options);
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
}

fn apply(config: &mut ClientConfig, options: &BTreeMap<String, String>) {
    for (key, value) in options {
        config.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DeliveryMode;

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
    fn static_membership_takes_the_workers_name_and_the_consumer_protocol_leaves_the_session_to_the_brokers() {
        let config = Config::from_toml_str("[kafka]\ngroup_instance_id = \"pagesplit-7\"\n").unwrap();
        let consumer = config.consumer_config();
        assert_eq!(consumer.get("group.instance.id"), Some("pagesplit-7"));
        assert_eq!(consumer.get("session.timeout.ms"), Some("10000"));
        assert_eq!(
            consumer.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(consumer.get("group.protocol"), None, "classic, librdkafka's default");
        // The worker's name when no group instance id is given.
        let config = Config::from_toml_str("[delivery]\ninstance_id = \"worker-3\"\n").unwrap();
        assert_eq!(config.consumer_config().get("group.instance.id"), Some("worker-3"));
        let config = Config::from_toml_str(
            "[kafka]\nstatic_membership = false\ngroup_instance_id = \"x\"\n[delivery]\ninstance_id = \"w\"\n",
        )
        .unwrap();
        assert_eq!(config.consumer_config().get("group.instance.id"), None);
        let config =
            Config::from_toml_str("[kafka]\ngroup_protocol = \"consumer\"\ngroup_instance_id = \"p-1\"\n").unwrap();
        let consumer = config.consumer_config();
        assert_eq!(consumer.get("group.protocol"), Some("consumer"));
        assert_eq!(consumer.get("group.instance.id"), Some("p-1"));
        for classic_only in [
            "session.timeout.ms",
            "partition.assignment.strategy",
            "heartbeat.interval.ms",
        ] {
            assert_eq!(consumer.get(classic_only), None, "{classic_only}");
        }
        // librdkafka accepts what the consumer protocol is given.
        let created: Result<rdkafka::consumer::BaseConsumer, _> = consumer.create();
        assert!(created.is_ok(), "{:?}", created.err());
    }

    #[test]
    fn the_commit_interval_is_librdkafkas_auto_commit_interval() {
        assert_eq!(
            Config::default().consumer_config().get("auto.commit.interval.ms"),
            Some("100")
        );
        let config = Config::from_toml_str("[pipeline]\ncommit_interval_ms = 200\n").unwrap();
        assert_eq!(config.consumer_config().get("auto.commit.interval.ms"), Some("200"));
        let error = Config::from_toml_str("[pipeline]\ncommit_interval_ms = 0\n").unwrap_err();
        assert!(error.to_string().contains("pipeline.commit_interval_ms"), "{error}");
    }

    #[test]
    fn every_client_tries_a_lost_broker_again_within_a_second_unless_told_otherwise() {
        let config = Config::default();
        for client in [
            config.consumer_config(),
            config.producer_config(),
            config.plain_producer_config(),
            config.admin_config(),
        ] {
            assert_eq!(client.get("reconnect.backoff.max.ms"), Some("1000"));
        }
        let config = Config::from_toml_str("[kafka.options]\n\"reconnect.backoff.max.ms\" = \"5000\"\n").unwrap();
        assert_eq!(config.producer_config().get("reconnect.backoff.max.ms"), Some("5000"));
        assert_eq!(config.consumer_config().get("reconnect.backoff.max.ms"), Some("5000"));
        // librdkafka accepts it (it must not be below `reconnect.backoff.ms`, 100 ms).
        let created: Result<rdkafka::producer::BaseProducer, _> = Config::default().producer_config().create();
        assert!(created.is_ok(), "{:?}", created.err());
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
    fn raw_options_pass_through_and_secrets_are_redacted() {
        let config = Config::from_toml_str(
            "[kafka.options]\n\"client.rack\" = \"rack-1\"\n[kafka.producer_options]\n\"linger.ms\" = \"20\"\n\
             [registry]\nurl = \"https://registry.example/apis/ccompat/v7\"\nusername = \"u\"\npassword = \"s3cret\"\n",
        )
        .unwrap();
        for client in [
            config.producer_config(),
            config.consumer_config(),
            config.admin_config(),
        ] {
            assert_eq!(client.get("client.rack"), Some("rack-1"));
        }
        assert_eq!(config.producer_config().get("linger.ms"), Some("20"));
        assert_eq!(config.consumer_config().get("linger.ms"), None);
        let shown = config.redacted_toml();
        assert!(!shown.contains("s3cret") && shown.contains("client.rack"), "{shown}");
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn each_client_role_gets_only_its_own_settings() {
        let config = Config::default();
        let admin = config.admin_config();
        for producer_only in [
            "enable.idempotence",
            "acks",
            "compression.type",
            "linger.ms",
            "message.max.bytes",
        ] {
            assert_eq!(admin.get(producer_only), None, "{producer_only}");
            assert_eq!(config.consumer_config().get(producer_only), None, "{producer_only}");
        }
        for consumer_only in ["group.id", "enable.auto.offset.store", "queued.max.messages.kbytes"] {
            assert_eq!(admin.get(consumer_only), None, "{consumer_only}");
            assert_eq!(config.producer_config().get(consumer_only), None, "{consumer_only}");
        }
        assert_eq!(admin.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        let producer = config.producer_config();
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("compression.type"), Some("lz4"));
        let plain = config.plain_producer_config();
        assert_eq!(plain.get("enable.idempotence"), Some("true"));
        assert_eq!(plain.get("message.max.bytes"), Some("5242880"));
        assert_eq!(plain.get("message.timeout.ms"), None, "librdkafka's delivery timeout");
        assert_eq!(plain.get("transactional.id"), None);
    }

    #[test]
    fn client_certificates_reach_every_client() {
        let dir = tempfile::tempdir().unwrap();
        let (certificate, key) = (dir.path().join("client.pem"), dir.path().join("client.key"));
        std::fs::write(&certificate, "certificate").unwrap();
        std::fs::write(&key, "key").unwrap();
        let config = Config::load(
            None,
            vec![(
                "PAGESPLIT_KAFKA__SSL_KEY_PASSWORD".to_owned(),
                "key-passphrase-1".to_owned(),
            )],
            &[
                ("kafka.security_protocol".to_owned(), "SSL".to_owned()),
                (
                    "kafka.ssl_certificate_location".to_owned(),
                    certificate.display().to_string(),
                ),
                ("kafka.ssl_key_location".to_owned(), key.display().to_string()),
            ],
        )
        .unwrap();
        for client in [
            config.consumer_config(),
            config.producer_config(),
            config.admin_config(),
        ] {
            assert_eq!(
                client.get("ssl.certificate.location"),
                Some(certificate.to_str().unwrap())
            );
            assert_eq!(client.get("ssl.key.location"), Some(key.to_str().unwrap()));
            assert_eq!(client.get("ssl.key.password"), Some("key-passphrase-1"));
        }
        let shown = config.redacted_toml();
        assert!(shown.contains("ssl_key_password = \"***\""), "{shown}");
        assert!(!shown.contains("key-passphrase-1") && !format!("{config:?}").contains("key-passphrase-1"));
    }
}
