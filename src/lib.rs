//! pagesplit turns raw scraped web pages from Kafka into typed, Avro-encoded event streams:
//! one quote event per line of a page's market ticker strip, and one article event per page.
//!
//! ```text
//! src/main.rs      CLI → Config::load → telemetry → app::run(config, shutdown)
//! src/config.rs    config tree, defaults, validation, librdkafka client configs
//! src/model.rs     RawPage, Quote, Article (data only)
//! src/envelope.rs  pure: Kafka message → RawPage
//! src/parse/       pure: page text/HTML → quotes + article
//! src/encode/      pure: events → Avro datums, registry or single-object framing
//! src/registry.rs  Confluent-compatible schema registry client
//! src/source.rs    Kafka consumer + context (rebalance, commit, statistics)
//! src/sink.rs      Kafka producer: send, classify failures, flush
//! src/offsets.rs   pure: which offsets may be committed
//! src/quote_filter.rs  pure: quote change detection (`quotes.emit = "changed"`)
//! src/pipeline.rs  the only module that sees both ends: ordering, offsets, dead letters
//!                  (pipeline/transactional.rs: the exactly-once variant)
//! src/metrics.rs   Prometheus metrics, one function per telemetry event
//! src/http.rs      /metrics, /healthz, /readyz
//! src/app.rs       startup checks and wiring
//! src/split.rs     offline splitting of files (JSON lines or Avro container files)
//! src/warc.rs      pure: WARC / WARC.gz archives → pages
//! src/cli/         command line: arguments, replay, tail, progress
//! src/dlq.rs       dead-letter replay
//! ```
//!
//! Data flow:
//!
//! ```text
//! source ─► pipeline ─► parse ─► encode ─► sink.send ×N
//!    ▲                                        │
//!    └── store offset ◄── all deliveries ok ◄─┘      (failures → dead-letter topic, then store offset)
//! ```

pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod demo;
pub mod dlq;
pub mod encode;
pub mod envelope;
pub mod http;
pub mod metrics;
pub mod model;
pub mod offsets;
pub mod parse;
pub mod pipeline;
pub mod quote_filter;
pub mod registry;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod split;
pub mod warc;
