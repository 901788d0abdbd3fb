//! Exponential back-off: each wait twice the one before, capped.

use std::time::Duration;

/// The waits between attempts at something that failed transiently: `initial`, then twice the
/// wait before, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `initial` (at most `max`).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            next: initial.min(max),
            max,
        }
    }

    /// The wait before the next attempt; the one after it is twice as long (capped).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let waits: Vec<u64> = (0..5).map(|_| backoff.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        let mut capped = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(capped.next_wait(), Duration::from_secs(1));
    }
}
