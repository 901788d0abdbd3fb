//! pagesplit turns raw scraped web pages from Kafka into typed, Avro-encoded event streams:
//! one quote event per line of a page's market ticker strip, and one article event per page.
//!
//! ```text
//! src/main.rs      CLI → Config::load → telemetry → app::run(config, shutdown)
//! src/config/      config tree and defaults, loading, validation, librdkafka client settings,
//!                  secrets
//! src/model.rs     RawPage, Quote, Article (data only)
//! src/envelope.rs  pure: Kafka message → RawPage
//! src/parse/       pure: page text/HTML → quotes + article
//! src/encode/      pure: events → Avro datums, registry or single-object framing
//! src/registry.rs  Confluent-compatible schema registry client
//! src/source.rs    Kafka consumer + context (rebalance, commit, statistics)
//! src/sink.rs      Kafka producer: send, classify failures, flush
//! src/offsets.rs   pure: which offsets may be committed
//! src/quote_filter.rs  pure: quote change detection (`quotes.emit = "changed"`)
//! src/trace_context.rs pure: W3C Trace Context headers read, checked and passed on
//! src/pipeline/    the only module that sees both ends, as stages: records (pure), split
//!                  pool, consume, produce, deliver, transactional (exactly-once), drain
//! src/metrics.rs   Prometheus metrics, one function per telemetry event
//! src/http.rs      /metrics, /healthz, /readyz
//! src/app.rs       startup checks and wiring
//! src/input/       pages from files, directories, stdin, gzip, JSON lines and WARC archives
//!                  (input/warc.rs pure: WARC records → pages)
//! src/split.rs     offline splitting of inputs (JSON lines or Avro container files); reports
//!                  progress through a trait, knows nothing of the command line
//! src/client.rs    client-side tools: publish pages, wait for commits, read topics back
//! src/dlq.rs       dead-letter replay
//! src/cli/         the command line: arguments, one module per command, progress bar, logs;
//!                  nothing outside it (and main.rs) uses it
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
pub mod client;
pub mod config;
pub mod dlq;
pub mod encode;
pub mod envelope;
mod http;
mod input;
pub mod metrics;
pub mod model;
mod offsets;
pub mod parse;
pub mod pipeline;
mod quote_filter;
pub mod registry;
mod shutdown;
pub mod sink;
mod source;
mod split;
pub mod trace_context;

/// The client-side tools under the name the integration tests still use.
#[doc(hidden)]
pub use client as demo;
