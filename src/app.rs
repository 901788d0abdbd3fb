//! Wiring: startup checks, the clients, the HTTP endpoint and the pipeline.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EncodingFormat};
use crate::encode::{confluent_header, Encoder, Framing, ARTICLE_SCHEMA_JSON, QUOTE_SCHEMA_JSON};
use crate::http::Health;
use crate::metrics::Metrics;
use crate::offsets::OffsetTracker;
use crate::pipeline::{ConsumerFenced, LatestQuotes, Pipeline, RecordLimits, SharedQuoteFilter, Topics};
use crate::quote_filter::{ChangeFilters, QuoteFilter};
use crate::registry::{value_subject, RegistryClient};
use crate::sink::Sink;
use crate::source::{Handover, PageConsumer, SourceContext};

/// How long startup waits for the brokers to answer a metadata request.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// How long startup waits for the transaction coordinator (exactly-once): it first aborts the
/// transaction a crashed predecessor with the same `transactional.id` left open.
const INIT_TRANSACTIONS_TIMEOUT: Duration = Duration::from_secs(60);

/// A worker that passed its startup checks and is running.
pub struct Running {
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served, when enabled.
    pub http_addr: Option<SocketAddr>,
    /// Its readiness.
    pub health: Arc<Health>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Waits until the worker stops; its error if it stopped on one.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("worker task panicked")?
    }
}

/// Runs the worker until `shutdown` is cancelled (then drains, flushes and commits) or a fatal
/// error stops it. A worker whose consumer the group fenced off ([`ConsumerFenced`]) starts
/// again under the same name, unless it was fenced off less than [`REFENCE_WINDOW`] before:
/// then another worker most likely shares its `kafka.group_instance_id`, and it stops.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut last_fenced: Option<Instant> = None;
    loop {
        let result = start(config.clone(), shutdown.clone()).await?.wait().await;
        let Err(error) = result else {
            return Ok(());
        };
        if shutdown.is_cancelled() || error.downcast_ref::<ConsumerFenced>().is_none() {
            return Err(error);
        }
        let now = Instant::now();
        if !rejoin_after_fencing(last_fenced, now) {
            let name = config
                .kafka
                .effective_group_instance_id(&config.delivery)
                .unwrap_or_default();
            return Err(error.context(format!(
                "fenced off twice within {} s: another worker probably uses the same kafka.group_instance_id \
                 (`{name}`)",
                REFENCE_WINDOW.as_secs()
            )));
        }
        last_fenced = Some(now);
        tracing::warn!(error = %error, "the consumer was fenced off; starting again under the same name");
    }
}

/// A worker fenced off again within this time of its previous fencing stops instead of
/// starting again.
pub const REFENCE_WINDOW: Duration = Duration::from_secs(60);

/// Pure: whether a worker fenced off `now` starts again, given when it was last fenced off.
fn rejoin_after_fencing(last_fenced: Option<Instant>, now: Instant) -> bool {
    last_fenced.is_none_or(|last| now.saturating_duration_since(last) >= REFENCE_WINDOW)
}

/// Performs the startup checks and starts the worker in the background.
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let tracker = Arc::new(Mutex::new(OffsetTracker::new()));

    let encoder = Arc::new(resolve_encoder(&config).await?);
    let latest = resolve_latest_quotes(&config).await?;
    prepare_topics(&config).await?;

    let sink = Sink::new(&config.producer_config(), metrics.clone()).context("failed to create the Kafka producer")?;
    init_transactions(&config, &sink).await?;
    let consumer = subscribe(&config, metrics.clone(), tracker.clone())?;

    let health = Arc::new(Health::new({
        let joined = consumer.context().joined_group_flag();
        let metrics = metrics.clone();
        // Not ready while no broker is reachable either: a probe sees a broker outage.
        move || joined.load(std::sync::atomic::Ordering::Relaxed) && metrics.brokers_reachable()
    }));
    let http_shutdown = CancellationToken::new();
    let (http_addr, http_task) = if config.http.enabled {
        let (address, task) =
            crate::http::serve(&config.http, metrics.clone(), health.clone(), http_shutdown.clone()).await?;
        (Some(address), Some(task))
    } else {
        (None, None)
    };
    health.set_started();
    log_started(&config);

    let quote_filter = change_filters(&config, latest.is_some());
    let pipeline = Pipeline {
        consumer,
        sink,
        encoder,
        parse_options: Arc::new(config.parse.options()),
        tracker,
        metrics: metrics.clone(),
        topics: Topics {
            quotes: config.topics.quotes.as_str().into(),
            articles: config.topics.articles.as_str().into(),
            dead_letter: config.topics.dead_letter.as_str().into(),
            lineage_headers: config.topics.lineage_headers,
        },
        latest,
        quote_filter,
        config: config.clone(),
        limits: Arc::new(record_limits(&config).await),
    };
    let task = tokio::spawn(run_until_stopped(
        pipeline,
        shutdown,
        health.clone(),
        http_shutdown,
        http_task,
    ));
    Ok(Running {
        metrics,
        http_addr,
        health,
        task,
    })
}

/// In exactly-once mode, registers the producer's transactional id (fencing older instances).
async fn init_transactions(config: &Config, sink: &Sink) -> anyhow::Result<()> {
    let Some(transactional_id) = config.transactional_id() else {
        return Ok(());
    };
    let producer = sink.clone();
    tokio::task::spawn_blocking(move || producer.init_transactions(INIT_TRANSACTIONS_TIMEOUT))
        .await
        .context("init_transactions task panicked")?
        .with_context(|| format!("failed to initialise transactions with transactional.id `{transactional_id}`"))?;
    tracing::info!(transactional_id, "exactly-once delivery: transactions initialised");
    Ok(())
}

/// The consumer of the input topic, subscribed, with its context (rebalances, statistics).
fn subscribe(
    config: &Config,
    metrics: Arc<Metrics>,
    tracker: Arc<Mutex<OffsetTracker>>,
) -> anyhow::Result<Arc<PageConsumer>> {
    let handover = Arc::new(Handover::new(config.delivery.mode, config.pipeline.revoke_timeout()));
    let context = SourceContext::new(
        metrics,
        tracker,
        handover,
        Duration::from_millis(config.pipeline.stall_timeout_ms),
    );
    let consumer: PageConsumer = config
        .consumer_config()
        .create_with_context(context)
        .context("failed to create the Kafka consumer")?;
    consumer
        .subscribe(&[config.topics.input.as_str()])
        .with_context(|| format!("failed to subscribe to topic `{}`", config.topics.input))?;
    Ok(Arc::new(consumer))
}

fn log_started(config: &Config) {
    tracing::info!(
        input = %config.topics.input,
        quotes = %config.topics.quotes,
        articles = %config.topics.articles,
        dead_letter = %config.topics.dead_letter,
        quotes_latest = %config.topics.quotes_latest,
        quotes_emit = ?config.quotes.emit,
        group = %config.kafka.group_id,
        delivery = ?config.delivery.mode,
        "worker started"
    );
}

/// Runs the pipeline until it stops, marking the worker as draining from the shutdown signal
/// on, then stops the HTTP endpoint.
async fn run_until_stopped(
    pipeline: Pipeline,
    shutdown: CancellationToken,
    health: Arc<Health>,
    http_shutdown: CancellationToken,
    http_task: Option<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    let draining = {
        let health = health.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown.cancelled().await;
            health.set_draining();
        })
    };
    let result = pipeline.run(shutdown).await;
    health.set_draining();
    draining.abort();
    http_shutdown.cancel();
    if let Some(task) = http_task {
        let _ = task.await;
    }
    if let Err(error) = &result {
        tracing::error!(error = %format!("{error:#}"), "worker stopped on an error");
    } else {
        tracing::info!("worker stopped");
    }
    result
}

/// The worker's change filters: the quote topic's with `quotes.emit = "changed"`, the
/// latest-quote topic's when that topic is on; `None` when neither is.
fn change_filters(config: &Config, latest: bool) -> Option<SharedQuoteFilter> {
    let filter = || QuoteFilter::new(config.quotes.max_symbols);
    let filters = ChangeFilters {
        quotes: config.quotes.changed_only().then(filter),
        latest: latest.then(filter),
    };
    (!filters.is_off()).then(|| Arc::new(Mutex::new(filters)))
}

/// The encoder of the configured framing; resolves schema ids at the registry when needed.
pub async fn resolve_encoder(config: &Config) -> anyhow::Result<Encoder> {
    match config.encoding.format {
        EncodingFormat::SingleObject => Ok(Encoder::new(Framing::SingleObject)),
        EncodingFormat::Confluent => {
            let client = RegistryClient::new(&config.registry)?;
            let deadline = Duration::from_millis(config.registry.startup_timeout_ms);
            let auto = config.registry.auto_register;
            let level =
                (auto && !config.registry.compatibility.is_empty()).then_some(config.registry.compatibility.as_str());
            let quote_schema_id = client
                .resolve_with_retry(
                    &value_subject(&config.topics.quotes),
                    QUOTE_SCHEMA_JSON,
                    level,
                    auto,
                    deadline,
                )
                .await?;
            let article_schema_id = client
                .resolve_with_retry(
                    &value_subject(&config.topics.articles),
                    ARTICLE_SCHEMA_JSON,
                    level,
                    auto,
                    deadline,
                )
                .await?;
            tracing::info!(
                registry = client.url(),
                quote_schema_id,
                article_schema_id,
                "schema ids resolved"
            );
            Ok(Encoder::new(Framing::Confluent {
                quote_schema_id,
                article_schema_id,
            }))
        }
    }
}

/// The value subjects (TopicNameStrategy) of the output topics with their bundled schemas: the
/// quote topic, the article topic and, when produced, the latest-quote topic.
pub fn value_subjects(config: &Config) -> Vec<(String, &'static str)> {
    let mut subjects = vec![
        (value_subject(&config.topics.quotes), QUOTE_SCHEMA_JSON),
        (value_subject(&config.topics.articles), ARTICLE_SCHEMA_JSON),
    ];
    if let Some(latest) = config.topics.quotes_latest() {
        subjects.push((value_subject(latest), QUOTE_SCHEMA_JSON));
    }
    subjects
}

/// The latest-quote topic, when configured, with the framing of its values: with the Confluent
/// wire format, the quote schema's id under the topic's own subject (`<topic>-value`),
/// registered or looked up like the others.
pub async fn resolve_latest_quotes(config: &Config) -> anyhow::Result<Option<LatestQuotes>> {
    let Some(topic) = config.topics.quotes_latest() else {
        return Ok(None);
    };
    let header = match config.encoding.format {
        EncodingFormat::SingleObject => None,
        EncodingFormat::Confluent => {
            let client = RegistryClient::new(&config.registry)?;
            let auto = config.registry.auto_register;
            let level =
                (auto && !config.registry.compatibility.is_empty()).then_some(config.registry.compatibility.as_str());
            let schema_id = client
                .resolve_with_retry(
                    &value_subject(topic),
                    QUOTE_SCHEMA_JSON,
                    level,
                    auto,
                    Duration::from_millis(config.registry.startup_timeout_ms),
                )
                .await?;
            tracing::info!(topic, schema_id, "latest-quote schema id resolved");
            Some(confluent_header(schema_id))
        }
    };
    Ok(Some(LatestQuotes {
        topic: topic.into(),
        header,
    }))
}

/// Creates the topics (with `topics.create`), else checks that they exist; either way proves
/// the brokers answer. The latest-quote topic is created compacted; when it exists but is not
/// compacted, startup goes on with a warning.
pub async fn prepare_topics(config: &Config) -> anyhow::Result<()> {
    // A plain client first: unlike the admin client, its errors (refused connections, TLS or
    // SASL authentication failures) can be served and named when the brokers cannot be reached.
    let probe: Arc<BaseProducer<ProbeContext>> = Arc::new(
        config
            .admin_config()
            .create_with_context(ProbeContext::default())
            .context("failed to create a Kafka client")?,
    );
    let bootstrap = config.kafka.bootstrap_servers.clone();
    {
        let (probe, bootstrap) = (probe.clone(), bootstrap.clone());
        tokio::task::spawn_blocking(move || probe_brokers(&probe, &bootstrap))
            .await
            .context("metadata task panicked")??;
    }
    let admin: AdminClient<DefaultClientContext> = config
        .admin_config()
        .create()
        .context("failed to create the Kafka admin client")?;
    let mut names = vec![
        config.topics.input.as_str(),
        config.topics.quotes.as_str(),
        config.topics.articles.as_str(),
        config.topics.dead_letter.as_str(),
    ];
    let latest = config.topics.quotes_latest();
    names.extend(latest);
    if config.topics.create {
        create_topics(&admin, config, &names, latest).await?;
    }
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    tokio::task::spawn_blocking(move || wait_for_topics(&probe, &bootstrap, &names))
        .await
        .context("metadata task panicked")??;
    for warning in topic_warnings(&admin, config).await {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// Creates the topics `names` (existing ones are left as they are): the latest-quote topic
/// compacted, the article and dead-letter topics with room for a whole page.
async fn create_topics(
    admin: &AdminClient<DefaultClientContext>,
    config: &Config,
    names: &[&str],
    latest: Option<&str>,
) -> anyhow::Result<()> {
    let max_record_bytes = config.max_record_bytes().to_string();
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            let topic = NewTopic::new(
                name,
                config.topics.partitions,
                TopicReplication::Fixed(config.topics.replication_factor),
            );
            if Some(*name) == latest {
                topic.set(CLEANUP_POLICY, "compact")
            } else if *name == config.topics.articles || *name == config.topics.dead_letter {
                // A page's article, or its dead letter, may be as large as the page.
                topic.set(MAX_MESSAGE_BYTES, &max_record_bytes)
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(METADATA_TIMEOUT))
        .request_timeout(Some(METADATA_TIMEOUT));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .with_context(|| format!("cannot reach Kafka at {}", config.kafka.bootstrap_servers))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("failed to create topic `{topic}`: {code}"),
        }
    }
    Ok(())
}

/// Blocks until every topic of `names` is in the brokers' metadata with partitions: newly
/// created topics can take a moment to appear.
fn wait_for_topics(probe: &BaseProducer<ProbeContext>, bootstrap: &str, names: &[String]) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + METADATA_TIMEOUT;
    loop {
        let metadata = probe
            .client()
            .fetch_metadata(None, METADATA_TIMEOUT)
            .map_err(|error| unreachable_error(probe, bootstrap, &error))?;
        let missing = names.iter().find(|name| {
            !metadata
                .topics()
                .iter()
                .any(|topic| topic.name() == name.as_str() && topic.error().is_none() && !topic.partitions().is_empty())
        });
        match missing {
            None => return Ok(()),
            Some(name) if std::time::Instant::now() >= deadline => {
                bail!("topic `{name}` does not exist at {bootstrap}; create it or set topics.create = true")
            }
            Some(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The topic config that makes a topic compacted.
const CLEANUP_POLICY: &str = "cleanup.policy";

/// The topic config that bounds a record batch.
const MAX_MESSAGE_BYTES: &str = "max.message.bytes";

/// What is wrong with the existing output topics' configuration, as warnings: a latest-quote
/// topic that is not compacted (it keeps every quote for its retention, and a reader from the
/// start reads them all instead of about one per symbol); an article or dead-letter topic whose
/// `max.message.bytes` is below [`Config::max_record_bytes`] (a large page's article is refused
/// there and its page dead-lettered; its dead letter loses the page's bytes).
pub async fn topic_warnings(admin: &AdminClient<DefaultClientContext>, config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(topic) = config.topics.quotes_latest() {
        match topic_config(admin, topic, CLEANUP_POLICY).await {
            Ok(policy) if policy.split(',').any(|policy| policy.trim() == "compact") => {}
            Ok(policy) => warnings.push(format!(
                "the latest-quote topic `{topic}` (topics.quotes_latest) has cleanup.policy={policy}, not \
                 compact: it keeps every quote for its retention; set cleanup.policy=compact on it"
            )),
            Err(error) => warnings.push(error),
        }
    }
    let needed = config.max_record_bytes();
    for (key, topic) in [
        ("topics.articles", &config.topics.articles),
        ("topics.dead_letter", &config.topics.dead_letter),
    ] {
        match topic_config(admin, topic, MAX_MESSAGE_BYTES).await {
            Ok(limit) => match limit.parse::<usize>() {
                Ok(limit) if limit < needed => warnings.push(format!(
                    "topic `{topic}` ({key}) has max.message.bytes={limit}, below the {needed} bytes a page \
                     of parse.max_page_bytes may need: larger records are refused there (and dead letters \
                     written without the page); raise it with kafka-configs.sh --alter --entity-type topics \
                     --entity-name {topic} --add-config max.message.bytes={needed}"
                )),
                _ => {}
            },
            Err(error) => warnings.push(error),
        }
    }
    warnings
}

/// The largest record each output topic takes: its `max.message.bytes` (where the brokers say)
/// and the producer's `message.max.bytes`. Pages with a larger event are dead-lettered whole.
pub async fn record_limits(config: &Config) -> RecordLimits {
    let producer = config
        .producer_config()
        .get("message.max.bytes")
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| config.max_record_bytes());
    let mut limits = RecordLimits::new(producer);
    let Ok(admin) = config.admin_config().create::<AdminClient<DefaultClientContext>>() else {
        return limits;
    };
    let mut topics = vec![
        config.topics.quotes.as_str(),
        config.topics.articles.as_str(),
        config.topics.dead_letter.as_str(),
    ];
    topics.extend(config.topics.quotes_latest());
    for topic in topics {
        match topic_config(&admin, topic, MAX_MESSAGE_BYTES).await {
            Ok(limit) => {
                if let Ok(limit) = limit.parse() {
                    limits.topics.insert(topic.to_owned(), limit);
                }
            }
            Err(error) => tracing::warn!(error, "record size limit unknown; the producer's applies"),
        }
    }
    limits
}

/// One config value of a topic, as the broker describes it.
async fn topic_config(admin: &AdminClient<DefaultClientContext>, topic: &str, key: &str) -> Result<String, String> {
    let options = AdminOptions::new().request_timeout(Some(METADATA_TIMEOUT));
    let cannot = |error: &dyn std::fmt::Display| format!("cannot read {key} of topic `{topic}`: {error}");
    match admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
    {
        Ok(mut results) => match results.pop() {
            Some(Ok(resource)) => Ok(resource
                .get(key)
                .and_then(|entry| entry.value.clone())
                .unwrap_or_default()),
            Some(Err(code)) => Err(cannot(&code)),
            None => Err(cannot(&"no answer")),
        },
        Err(error) => Err(cannot(&error)),
    }
}

/// Remembers the last error a client reported (a refused connection, a failed TLS handshake or
/// SASL authentication), to name it when startup cannot reach the brokers.
#[derive(Default)]
struct ProbeContext {
    last_error: Mutex<Option<String>>,
}

impl ClientContext for ProbeContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(error = %error, reason, "Kafka client error during startup");
        let mut last_error = self.last_error.lock().expect("error lock");
        // "all brokers are down" follows the reason they are; keep the reason.
        if last_error.is_none() || error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            *last_error = Some(reason.to_owned());
        }
    }

    fn stats(&self, _statistics: rdkafka::Statistics) {}
}

impl rdkafka::producer::ProducerContext for ProbeContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _result: &rdkafka::producer::DeliveryResult<'_>, _opaque: ()) {}
}

/// Proves that the brokers answer (and accept this client's credentials).
fn probe_brokers(probe: &BaseProducer<ProbeContext>, bootstrap: &str) -> anyhow::Result<()> {
    match probe.client().fetch_metadata(None, METADATA_TIMEOUT) {
        Ok(_) => Ok(()),
        Err(error) => Err(unreachable_error(probe, bootstrap, &error)),
    }
}

/// "cannot reach Kafka", with the reason the client last reported.
fn unreachable_error(probe: &BaseProducer<ProbeContext>, bootstrap: &str, error: &KafkaError) -> anyhow::Error {
    // Serves the queued error events (and logs) into the context.
    probe.poll(Duration::from_millis(100));
    match probe.context().last_error.lock().expect("error lock").take() {
        Some(reason) => {
            anyhow::anyhow!("cannot reach Kafka at {bootstrap} (kafka.bootstrap_servers): {reason} ({error})")
        }
        None => anyhow::anyhow!("cannot reach Kafka at {bootstrap} (kafka.bootstrap_servers): {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fenced_worker_starts_again_unless_it_was_fenced_within_the_window() {
        let start = Instant::now();
        assert!(rejoin_after_fencing(None, start));
        assert!(!rejoin_after_fencing(Some(start), start + Duration::from_secs(3)));
        assert!(!rejoin_after_fencing(
            Some(start),
            start + REFENCE_WINDOW - Duration::from_millis(1)
        ));
        assert!(rejoin_after_fencing(Some(start), start + REFENCE_WINDOW));
    }

    #[test]
    fn only_a_fenced_consumer_is_told_apart() {
        let fenced = anyhow::Error::new(ConsumerFenced {
            reason: "Broker: Static consumer fenced by other consumer with same group.instance.id".into(),
        });
        assert!(fenced.downcast_ref::<ConsumerFenced>().is_some());
        assert_eq!(
            fenced.to_string(),
            "the consumer group fenced this member off (static membership): Broker: Static consumer fenced by \
             other consumer with same group.instance.id"
        );
        let other = anyhow::anyhow!("fatal consumer error: Fatal");
        assert!(other.downcast_ref::<ConsumerFenced>().is_none());
    }
}
