//! Progress of long-running commands on stderr: a bar with rate and ETA when stderr is a
//! terminal, plain periodic log lines otherwise (logs, CI), nothing when asked for nothing.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the position of a progress counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Bytes of input read; the item count is reported beside it.
    Bytes,
    /// The items themselves (pages, events).
    Items,
}

/// A progress display shared by the threads of one command. Cheap to clone.
#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    label: String,
    unit: &'static str,
    measure: Measure,
    total: Option<u64>,
    position: AtomicU64,
    items: AtomicU64,
    detail: Mutex<String>,
    started: Instant,
    bar: Option<ProgressBar>,
    stdout_on_terminal: bool,
    log_every: Option<Duration>,
    last_update: Mutex<Instant>,
}

impl Progress {
    /// A progress display: a bar when stderr is a terminal, else a log line every `log_every`
    /// (none when zero). `total` is the final position, when known.
    pub fn new(label: &str, unit: &'static str, measure: Measure, total: Option<u64>, log_every: Duration) -> Self {
        let on_terminal = std::io::stderr().is_terminal();
        let bar = on_terminal.then(|| new_bar(label, total, &format!("0 {unit}")));
        let log_every = (!on_terminal && !log_every.is_zero()).then_some(log_every);
        Self::build(label, unit, measure, total, bar, log_every)
    }

    /// A display that shows nothing.
    pub fn hidden() -> Self {
        Self::build("", "", Measure::Items, None, None, None)
    }

    fn build(
        label: &str,
        unit: &'static str,
        measure: Measure,
        total: Option<u64>,
        bar: Option<ProgressBar>,
        log_every: Option<Duration>,
    ) -> Self {
        let started = Instant::now();
        let stdout_on_terminal = bar.is_some() && std::io::stdout().is_terminal();
        Self {
            inner: Arc::new(Inner {
                label: label.to_owned(),
                unit,
                measure,
                total,
                position: AtomicU64::new(0),
                items: AtomicU64::new(0),
                detail: Mutex::new(String::new()),
                started,
                bar,
                stdout_on_terminal,
                log_every,
                last_update: Mutex::new(started.checked_sub(BAR_UPDATE_EVERY).unwrap_or(started)),
            }),
        }
    }

    /// Sets the position (bytes read, or items when the measure is items).
    pub fn set_position(&self, position: u64) {
        self.inner.position.store(position, Ordering::Relaxed);
        self.refresh();
    }

    /// Adds items done (pages, events); with [`Measure::Items`] this is also the position.
    pub fn add_items(&self, delta: u64) {
        self.inner.items.fetch_add(delta, Ordering::Relaxed);
        if self.inner.measure == Measure::Items {
            self.inner.position.fetch_add(delta, Ordering::Relaxed);
        }
        self.refresh();
    }

    /// Sets the text shown after the counts, e.g. `sent 10, acknowledged 8`.
    pub fn set_detail(&self, detail: String) {
        *self.inner.detail.lock().expect("progress lock") = detail;
        self.refresh();
    }

    /// Prints a line on stderr without tearing the bar, its control characters escaped
    /// ([`terminal_safe`](super::terminal_safe)): lines name pages by their URLs.
    pub fn println(&self, line: &str) {
        let line = super::terminal_safe(line);
        match &self.inner.bar {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Runs `write` (which prints to stdout) so that it does not tear the bar when stdout is the
    /// same terminal.
    pub fn around_stdout<T>(&self, write: impl FnOnce() -> T) -> T {
        match &self.inner.bar {
            Some(bar) if self.inner.stdout_on_terminal => bar.suspend(write),
            _ => write(),
        }
    }

    /// Removes the bar (the command then prints its summary).
    pub fn finish(&self) {
        if let Some(bar) = &self.inner.bar {
            bar.finish_and_clear();
        }
    }

    fn refresh(&self) {
        let inner = &*self.inner;
        // Bars redraw at most 20 times a second anyway; log lines come every `log_every`.
        let every = match (&inner.bar, inner.log_every) {
            (Some(_), _) => BAR_UPDATE_EVERY,
            (None, Some(every)) => every,
            (None, None) => return,
        };
        {
            let mut last = inner.last_update.lock().expect("progress lock");
            if last.elapsed() < every {
                return;
            }
            *last = Instant::now();
        }
        let position = inner.position.load(Ordering::Relaxed);
        let items = inner.items.load(Ordering::Relaxed);
        let elapsed = inner.started.elapsed();
        let rate = items as f64 / elapsed.as_secs_f64().max(1e-3);
        let mut counts = format!("{items} {}, {rate:.0}/s", inner.unit);
        if inner.measure == Measure::Bytes && inner.total.is_none() {
            counts.push_str(&format!(", {} read", HumanBytes(position)));
        }
        let detail = inner.detail.lock().expect("progress lock");
        if !detail.is_empty() {
            counts.push_str(", ");
            counts.push_str(&detail);
        }
        drop(detail);
        if let Some(bar) = &inner.bar {
            bar.set_position(position);
            bar.set_message(counts);
            return;
        }
        let mut line = format!("{}: {counts}", inner.label);
        if let Some(total) = inner.total.filter(|total| *total > 0) {
            let done = position.min(total) as f64 / total as f64;
            line.push_str(&format!(", {:.0}% done", done * 100.0));
            if done > 0.0 {
                let left = elapsed.as_secs_f64() * (1.0 - done) / done;
                line.push_str(&format!(", ETA {}", eta_text(Duration::from_secs_f64(left))));
            }
        }
        eprintln!("{line}");
    }
}

/// Offline splitting draws its progress here: bytes read as the position, pages as the items,
/// failures as lines that do not tear the bar.
impl crate::split::SplitProgress for Progress {
    fn bytes_read(&self, bytes: u64) {
        self.set_position(bytes);
    }

    fn page_done(&self) {
        self.add_items(1);
    }

    fn failed(&self, line: &str) {
        self.println(line);
    }
}

/// How often a bar's position and message are updated.
const BAR_UPDATE_EVERY: Duration = Duration::from_millis(50);

fn new_bar(label: &str, total: Option<u64>, message: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix} [{wide_bar}] {percent:>3}% {msg}, ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
            .with_style(ProgressStyle::with_template("{prefix} {spinner} {msg} {elapsed}").expect("valid template")),
    };
    bar.set_prefix(label.to_owned());
    bar.set_message(message.to_owned());
    // Drawn at once, so that even a short run shows what it does.
    bar.tick();
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn eta_text(left: Duration) -> String {
    let seconds = left.as_secs();
    if seconds >= 3600 {
        format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60)
    } else if seconds >= 60 {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_reads_well() {
        assert_eq!(eta_text(Duration::from_secs(5)), "5s");
        assert_eq!(eta_text(Duration::from_secs(125)), "2m05s");
        assert_eq!(eta_text(Duration::from_secs(7260)), "2h01m");
    }

    #[test]
    fn hidden_progress_accepts_updates() {
        let progress = Progress::hidden();
        progress.add_items(3);
        progress.set_position(10);
        progress.set_detail("x".to_owned());
        assert_eq!(progress.around_stdout(|| 7), 7);
        progress.finish();
    }
}
