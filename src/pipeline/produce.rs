//! At-least-once, the ordered stage: in consumption order, each page's records (but the quotes
//! left out as unchanged) go to the producer; the pages sent are handed, a group at a time, to
//! delivery tasks that wait for their acknowledgements ([`super::deliver`]).

use std::ops::ControlFlow;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use super::context::{DeliveryContext, InFlight, Page};
use super::deliver::Sent;
use super::fatal::Stopped;
use super::split_pool::{PanicStreak, SPLIT_BATCH};
use crate::metrics::Wait;
use crate::sink::{classify, Acks, FailureKind};

/// The at-least-once producing stage.
pub(super) struct Produce {
    /// What deliveries need.
    pub context: DeliveryContext,
    /// The delivery tasks (drained on shutdown).
    pub deliveries: TaskTracker,
}

impl Produce {
    /// Sends the ordered pages until the channel closes or the worker stops.
    pub async fn run(self, mut ordered: mpsc::Receiver<InFlight>) {
        // Pages sent, handed to one delivery task per group (up to a batch) rather than a task
        // per page; the task awaits them concurrently, so a page retrying does not hold back the
        // others.
        let mut sent: Vec<Sent> = Vec::new();
        let panics = PanicStreak::default();
        loop {
            let item = match ordered.try_recv() {
                Ok(item) => item,
                Err(mpsc::error::TryRecvError::Empty) => {
                    self.hand_over(&mut sent);
                    match ordered.recv().await {
                        Some(item) => item,
                        None => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            };
            let Ok(mut page) = self.receive(item, &panics, &mut sent).await else {
                break;
            };
            self.choose_records(&mut page);
            let page = self.enqueue(page, &mut sent).await;
            sent.push(page);
            if sent.len() >= SPLIT_BATCH {
                self.hand_over(&mut sent);
            }
        }
        self.hand_over(&mut sent);
    }

    /// Waits for a page's split (handing over the pages sent meanwhile, so their offsets do not
    /// wait for it).
    async fn receive(&self, item: InFlight, panics: &PanicStreak, sent: &mut Vec<Sent>) -> Result<Page, Stopped> {
        let InFlight {
            ticket,
            mut work,
            permits,
        } = item;
        let answer = match work.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => {
                self.hand_over(sent);
                work.await.map_err(|error| error.to_string())
            }
            Ok(done) => Ok(done),
            Err(closed @ oneshot::error::TryRecvError::Closed) => Err(closed.to_string()),
        };
        let outcome = self.context.split_answer(answer, panics)?;
        Ok(self.context.page(ticket, outcome, permits))
    }

    /// Leaves out the quotes already published with `quotes.emit = "changed"` and adds the
    /// copies of the quotes that changed for the latest-quote topic, in consumption order, as the
    /// records go to the producer.
    fn choose_records(&self, page: &mut Page) {
        let (send, copies) = self.context.choose_records(page);
        let mut send = send.into_iter();
        page.records.retain(|_| send.next().unwrap_or(true));
        page.records.extend(copies);
    }

    /// Enqueues a page's records. While the producer's queue is full, the pages already sent are
    /// handed over first, so their offsets do not wait for it.
    async fn enqueue(&self, page: Page, sent: &mut Vec<Sent>) -> Sent {
        let started = Instant::now();
        let acks = Acks::new();
        let mut unsent = Vec::new();
        let mut rejected = None;
        let stop = &self.context.fatal;
        for (index, record) in page.records.iter().enumerate() {
            let enqueued = self
                .context
                .sink
                .enqueue_with(record, &acks, || {
                    if stop.is_stopped() {
                        return ControlFlow::Break(());
                    }
                    self.hand_over(sent);
                    ControlFlow::Continue(())
                })
                .await;
            match enqueued {
                Ok(()) => {}
                Err(error) if classify(&error) != FailureKind::Transient => {
                    // Refused for good (larger than `message.max.bytes`): the page is
                    // dead-lettered once its other records settle; or the producer failed for
                    // good: the worker stops.
                    rejected = Some(error);
                    break;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "enqueue failed; the record will be sent again");
                    unsent.push(index);
                }
            }
        }
        let enqueued = Instant::now();
        let metrics = &self.context.metrics;
        metrics.page_waited(Wait::ProducerQueue, enqueued.duration_since(started));
        Sent {
            page,
            acks,
            unsent,
            rejected,
            enqueued,
        }
    }

    /// Hands the pages sent so far to a delivery task.
    fn hand_over(&self, sent: &mut Vec<Sent>) {
        if sent.is_empty() {
            return;
        }
        let pages = std::mem::take(sent);
        let context = self.context.clone();
        self.deliveries.spawn(async move {
            futures::future::join_all(pages.into_iter().map(|page| {
                let span = page.page.span.clone();
                context.deliver(page).instrument(span)
            }))
            .await;
        });
    }
}
