//! At-least-once delivery of one page: wait for its records to settle, send again those that
//! failed transiently (with back-off), dead-letter the page when one can never be delivered,
//! then store its offset.
//!
//! ```text
//! settle ─► all acknowledged ─────────────────────────────► store offset
//!   ▲  ├──► failed transiently ─► retry (back-off) ─┐
//!   │  └──► refused for good ──► dead-letter ───────┤       (a fatal producer error stops the worker)
//!   └───────────────────────────────────────────────┘
//! ```

use std::sync::Arc;

use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;

use super::context::{DeliveryContext, Page};
use super::fatal::Stopped;
use crate::backoff::Backoff;
use crate::sink::{classify, Acks, FailureKind};

/// A page whose records were handed to the producer, awaiting their acknowledgements.
pub(super) struct Sent {
    /// The page.
    pub page: Page,
    /// The delivery reports of its records.
    pub acks: Arc<Acks>,
    /// Records that could not be enqueued (for now).
    pub unsent: Vec<usize>,
    /// Why a record was refused for good when enqueued.
    pub rejected: Option<KafkaError>,
    /// When its records were handed to the producer.
    pub enqueued: std::time::Instant,
}

/// How the records of one attempt settled.
struct Settled {
    /// Records to send again.
    failed: Vec<usize>,
    /// Why a record can never be delivered.
    refused: Option<KafkaError>,
}

impl DeliveryContext {
    /// Waits for every record of a page; re-sends those that failed transiently with back-off;
    /// dead-letters the page when a record can never be delivered; then stores the offset.
    /// Stopped meanwhile, the page is abandoned: its offset is not stored, so it is consumed
    /// again later.
    pub async fn deliver(&self, mut sent: Sent) {
        let mut backoff = self.backoff;
        loop {
            let Ok(settled) = self.settle(&mut sent).await else {
                return;
            };
            if let Some(error) = settled.refused {
                if self.dead_letter(&mut sent, &error).is_err() {
                    return;
                }
                continue;
            }
            if settled.failed.is_empty() {
                break;
            }
            if self.retry(&mut sent, settled.failed, &mut backoff).await.is_err() {
                self.metrics.page_finished();
                return;
            }
        }
        self.metrics
            .page_waited(crate::metrics::Wait::Acknowledgement, sent.enqueued.elapsed());
        self.page_delivered(&sent.page);
        self.store_offset(&sent.page);
    }

    /// Waits for the reports of the records sent and sorts the failures: transient ones are
    /// sent again, a record refused for good dead-letters the page, a fatal one stops the worker.
    async fn settle(&self, sent: &mut Sent) -> Result<Settled, Stopped> {
        let reported = tokio::select! {
            reported = sent.acks.settled() => reported,
            _ = self.fatal.stopped() => {
                self.metrics.page_finished();
                return Err(Stopped);
            }
        };
        let records = &sent.page.records;
        let mut failed = std::mem::take(&mut sent.unsent);
        let mut refused = None;
        if let Some(error) = sent.rejected.take() {
            if classify(&error) == FailureKind::Fatal {
                return Err(self.stop_fatal(&records[0].topic, &error));
            }
            refused = Some(error);
        }
        for report in reported {
            // A producer that failed for good purges its queue: those reports look transient.
            let kind = if self.sink.fatal_error().is_some() {
                FailureKind::Fatal
            } else {
                classify(&report.error)
            };
            match kind {
                FailureKind::Transient => {
                    // Identical records are interchangeable: the first not yet chosen.
                    match (0..records.len()).find(|index| !failed.contains(index) && report.is(&records[*index])) {
                        Some(index) => failed.push(index),
                        None => {
                            // Not one of the page's records (not expected): sending them all
                            // again is safe.
                            let rest: Vec<usize> = (0..records.len()).filter(|index| !failed.contains(index)).collect();
                            failed.extend(rest);
                        }
                    }
                }
                FailureKind::Permanent => refused = Some(report.error),
                FailureKind::Fatal => return Err(self.stop_fatal(&report.topic, &report.error)),
            }
        }
        Ok(Settled { failed, refused })
    }

    /// A record can never be delivered: the page goes to the dead-letter topic instead (its
    /// quotes may not have reached the quote topic: the filter forgets them, so the next ones
    /// are published); a dead letter that can never be delivered goes once more without the
    /// page's bytes. The new record is sent after the next back-off.
    fn dead_letter(&self, sent: &mut Sent, error: &KafkaError) -> Result<(), Stopped> {
        let page = &mut sent.page;
        if page.dead_lettered.is_some() {
            self.dead_letter_refused(page, error)?;
        } else {
            self.forget_quotes(page);
            self.dead_letter_instead(page, error);
        }
        sent.unsent = vec![0];
        Ok(())
    }

    /// The change filters forget the symbols of a page's quotes and latest-quote copies.
    fn forget_quotes(&self, page: &Page) {
        let Some(filter) = &self.quote_filter else {
            return;
        };
        let latest = self.latest.as_ref().map(|latest| &latest.topic);
        let mut filter = filter.lock().expect("quote filter lock");
        let quotes = page
            .records
            .iter()
            .filter(|record| record.topic == self.topics.quotes || Some(&record.topic) == latest);
        for record in quotes {
            if let Some(symbol) = record.key.as_deref().and_then(|key| std::str::from_utf8(key).ok()) {
                filter.forget(symbol);
            }
        }
    }

    /// Sends the failed records again after a back-off.
    async fn retry(&self, sent: &mut Sent, failed: Vec<usize>, backoff: &mut Backoff) -> Result<(), Stopped> {
        if self.fatal.is_stopped() {
            return Err(Stopped);
        }
        let wait = backoff.next_wait();
        self.metrics
            .produce_retried(&format!("{} record(s) of the page failed", failed.len()), wait);
        self.fatal.sleep(wait).await?;
        for index in failed {
            match self.sink.enqueue(&sent.page.records[index], &sent.acks).await {
                Ok(()) => {}
                Err(error) if classify(&error) != FailureKind::Transient => {
                    sent.rejected = Some(error);
                    break;
                }
                Err(_) => sent.unsent.push(index),
            }
        }
        Ok(())
    }

    /// The producer failed for good (authorization, fencing, its own fatal error): the worker
    /// stops with the cause; the page's offset is not stored.
    fn stop_fatal(&self, topic: &str, error: &KafkaError) -> Stopped {
        let reason = self.sink.fatal_error().unwrap_or_else(|| error.to_string());
        let stopped = self
            .fatal
            .fail(anyhow::anyhow!("fatal produce error on topic {topic}: {reason}"));
        self.metrics.page_finished();
        stopped
    }

    /// Stores the page's offset, when it completes the contiguous prefix of its partition;
    /// librdkafka commits stored offsets in the background.
    fn store_offset(&self, page: &Page) {
        // Stored while holding the tracker's lock, so the stores of one partition reach librdkafka
        // in order: it keeps the last offset stored, even a lower one, and would commit that.
        let mut tracker = self.tracker.lock().expect("tracker lock");
        let Some(next_offset) = tracker.complete(&page.ticket) else {
            return;
        };
        // `rd_kafka_offsets_store` stores the offset as given (the next one to consume);
        // `store_offset` would store `next_offset + 1` and skip a page on the next handover.
        let mut offsets = rdkafka::TopicPartitionList::new();
        let stored = offsets
            .add_partition_offset(
                &page.ticket.topic,
                page.ticket.partition,
                rdkafka::Offset::Offset(next_offset),
            )
            .and_then(|()| self.consumer.store_offsets(&offsets));
        if let Err(error) = stored {
            // The partition was revoked meanwhile: another worker owns it now.
            tracing::debug!(error = %error, "offset not stored");
        }
    }
}
