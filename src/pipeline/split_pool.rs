//! The split pool: a fixed set of threads that turn consumed messages into records, and the
//! streak of panicking pages that stops the worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::records::{split_message, Failure, InMessage, Split, Topics};
use crate::encode::Encoder;
use crate::metrics::{FailureCode, Stage};
use crate::parse::ParseOptions;
use crate::trace_context::SpanId;

/// A page as split: the message, its events or why it failed, and its times in the pool.
pub(super) type SplitOutcome = (InMessage, Result<Split, Failure>, SplitTimes);

/// A page's times in the split pool.
#[derive(Debug, Clone, Copy)]
pub(super) struct SplitTimes {
    /// Waiting in the queue for a split thread.
    pub queued: Duration,
    /// Splitting it.
    pub took: Duration,
    /// When it was split.
    pub done: Instant,
}

/// Most pages a split thread takes from the queue at once, splits, then answers together.
pub(super) const SPLIT_BATCH: usize = 32;

/// A page to split, when it was queued, and where its outcome goes.
type SplitJob = (InMessage, Instant, oneshot::Sender<SplitOutcome>);

/// A fixed pool of threads that split pages (CPU work, off the runtime's threads; a fixed
/// number, where the blocking pool would grow a thread whenever none was idle at a hand-over).
/// A thread takes every page waiting (up to [`SPLIT_BATCH`]), splits them and answers them
/// together: under load the ordered stage wakes once per batch, not once per page. The threads
/// end when the splitter is dropped, after the pages already queued.
pub(super) struct Splitter {
    jobs: crossbeam_channel::Sender<SplitJob>,
}

impl Splitter {
    /// Starts `workers` threads (at least one).
    pub fn spawn(
        workers: usize,
        encoder: Arc<Encoder>,
        options: Arc<ParseOptions>,
        topics: Topics,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = crossbeam_channel::unbounded::<SplitJob>();
        for index in 0..workers.max(1) {
            let (queue, encoder, options, topics) = (queue.clone(), encoder.clone(), options.clone(), topics.clone());
            std::thread::Builder::new()
                .name(format!("pagesplit-split-{index}"))
                .spawn(move || {
                    let mut batch = Vec::with_capacity(SPLIT_BATCH);
                    let take_waiting = |batch: &mut Vec<SplitJob>| {
                        while batch.len() < SPLIT_BATCH {
                            let Ok(next) = queue.try_recv() else { break };
                            batch.push(next);
                        }
                    };
                    while let Ok(first) = queue.recv() {
                        batch.push(first);
                        take_waiting(&mut batch);
                        split_batch(&mut batch, &options, &encoder, &topics);
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Queues a page for the pool. A panic while splitting a page is its failure
    /// ([`split_guarded`]); should a thread end anyway, the senders of its pages are dropped:
    /// their receivers learn that the pages were not split (and the worker stops).
    pub fn start(&self, message: InMessage, done: oneshot::Sender<SplitOutcome>) {
        let _ = self.jobs.send((message, Instant::now(), done));
    }
}

fn split_batch(batch: &mut Vec<SplitJob>, options: &ParseOptions, encoder: &Encoder, topics: &Topics) {
    let mut outcomes = Vec::with_capacity(batch.len());
    for (message, queued_at, done) in batch.drain(..) {
        let started = Instant::now();
        let span = SpanId::random();
        let outcome = split_guarded(|| split_message(&message, options, encoder, topics, span));
        let done_at = Instant::now();
        let times = SplitTimes {
            queued: started.saturating_duration_since(queued_at),
            took: done_at.duration_since(started),
            done: done_at,
        };
        outcomes.push((done, (message, outcome, times)));
    }
    for (done, outcome) in outcomes {
        let _ = done.send(outcome);
    }
}

/// The code of a page that panicked while being split.
pub const SPLIT_PANICKED: &str = FailureCode::SplitPanicked.as_str();

/// Pages in a row that panic while being split before the worker stops.
pub const SPLIT_PANIC_LIMIT: usize = 20;

/// Pages that panicked while being split, one after another in consumption order. One such page
/// is a parser bug some odd page runs into: it is dead-lettered and the worker goes on.
/// [`SPLIT_PANIC_LIMIT`] in a row is a bug that hits every page: rather than dead-letter the
/// whole backlog, the worker stops (the page is not dead-lettered, its offset is held).
#[derive(Debug, Default)]
pub(super) struct PanicStreak(std::sync::atomic::AtomicUsize);

impl PanicStreak {
    /// Counts a page's outcome; an error when it makes [`SPLIT_PANIC_LIMIT`] in a row.
    pub fn observe(&self, outcome: &Result<Split, Failure>) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        match outcome {
            Err(failure) if failure.code == FailureCode::SplitPanicked => {
                let streak = self.0.fetch_add(1, Relaxed) + 1;
                if streak >= SPLIT_PANIC_LIMIT {
                    anyhow::bail!(
                        "splitting panicked on {streak} pages in a row (a bug that hits every page); the last: {}",
                        failure.message
                    );
                }
                Ok(())
            }
            _ => {
                self.0.store(0, Relaxed);
                Ok(())
            }
        }
    }
}

/// Runs `split`, turning a panic (a parser bug some page runs into) into a failure with code
/// `split_panicked`: the page is dead-lettered with the panic's message and the thread goes on
/// with the next page. Left to stop the worker, the same page would stop it again after every
/// restart.
pub(super) fn split_guarded(split: impl FnOnce() -> Result<Split, Failure>) -> Result<Split, Failure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(split)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|reason| (*reason).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        Err(Failure {
            stage: Stage::Parse,
            code: FailureCode::SplitPanicked,
            message: format!("splitting the page panicked: {reason}"),
            url: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::records::tests::{message, topics, PAGE};
    use super::*;
    use crate::encode::Framing;

    #[test]
    fn the_split_pool_answers_every_page() {
        let splitter = Splitter::spawn(
            2,
            Arc::new(Encoder::new(Framing::SingleObject)),
            Arc::new(ParseOptions::default()),
            topics(),
        )
        .unwrap();
        let mut not_a_page = message(PAGE, 2);
        not_a_page.payload = Some(b"{\"url\": 1}".to_vec());
        let mut answers = Vec::new();
        for message in [message(PAGE, 0), not_a_page, message(PAGE, 5)] {
            let (done, answer) = oneshot::channel();
            splitter.start(message, done);
            answers.push(answer);
        }
        let outcomes: Vec<SplitOutcome> = answers
            .into_iter()
            .map(|answer| answer.blocking_recv().unwrap())
            .collect();
        assert_eq!(
            outcomes
                .iter()
                .map(|(message, _, _)| message.offset)
                .collect::<Vec<_>>(),
            [0, 2, 5]
        );
        let first = outcomes[0].1.as_ref().unwrap();
        assert_eq!((first.quotes, first.articles, first.records.len()), (34, 1, 35));
        assert_eq!(outcomes[1].1.as_ref().unwrap_err().code, "invalid_envelope");
        assert_eq!(outcomes[2].1.as_ref().unwrap().quotes, 34);
    }

    #[test]
    fn twenty_pages_in_a_row_that_panic_stop_the_worker() {
        let panicked = || split_guarded(|| panic!("boom"));
        let other_failure = || {
            Err(Failure {
                stage: Stage::Parse,
                code: FailureCode::Parse("empty_body"),
                message: "page body is empty".to_owned(),
                url: None,
            })
        };
        let streak = PanicStreak::default();
        for _ in 0..SPLIT_PANIC_LIMIT - 1 {
            streak.observe(&panicked()).unwrap();
        }
        // Any other outcome ends the streak.
        streak.observe(&other_failure()).unwrap();
        for _ in 0..SPLIT_PANIC_LIMIT - 1 {
            streak.observe(&panicked()).unwrap();
        }
        let error = streak.observe(&panicked()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "splitting panicked on 20 pages in a row (a bug that hits every page); the last: \
             splitting the page panicked: boom"
        );
    }

    #[test]
    fn a_panic_while_splitting_is_the_page_s_failure() {
        let failure = split_guarded(|| panic!("index 7 out of range")).unwrap_err();
        assert_eq!(
            failure,
            Failure {
                stage: Stage::Parse,
                code: FailureCode::SplitPanicked,
                message: "splitting the page panicked: index 7 out of range".to_owned(),
                url: None,
            }
        );
        let symbol = "PSO";
        let failure = split_guarded(|| panic!("no quote for {symbol}")).unwrap_err();
        assert_eq!(failure.message, "splitting the page panicked: no quote for PSO");
        let encoder = Encoder::new(Framing::SingleObject);
        let split = split_guarded(|| {
            split_message(
                &message(PAGE, 3),
                &ParseOptions::default(),
                &encoder,
                &topics(),
                SpanId::random(),
            )
        });
        assert_eq!(split.unwrap().quotes, 34);
    }
}
