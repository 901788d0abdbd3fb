//! The worker's stop: the first fatal error, and the token that stops every stage.

use std::sync::{Arc, Mutex};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// Stops every stage, on a fatal error anywhere or once draining is over. The first fatal error
/// is kept (it is the cause; those after it are usually its consequences) and returned by
/// `Pipeline::run`.
#[derive(Clone, Default)]
pub(super) struct Fatal {
    stop: CancellationToken,
    first: Arc<Mutex<Option<anyhow::Error>>>,
}

/// A stage stopped early (a fatal error or the end of draining).
#[derive(Debug)]
pub(super) struct Stopped;

impl Fatal {
    /// Records a fatal error (unless one came first) and stops the worker.
    pub fn fail(&self, error: anyhow::Error) -> Stopped {
        tracing::error!(error = %format!("{error:#}"), "stopping");
        let mut first = self.first.lock().expect("fatal lock");
        if first.is_none() {
            *first = Some(error);
        }
        drop(first);
        self.stop.cancel();
        Stopped
    }

    /// Stops the worker without an error (draining is over).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Whether the worker is stopping.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Resolves once the worker is stopping.
    pub fn stopped(&self) -> WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// Sleeps for `duration`, or less when the worker stops meanwhile.
    pub async fn sleep(&self, duration: std::time::Duration) -> Result<(), Stopped> {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.stop.cancelled() => Err(Stopped),
        }
    }

    /// The first fatal error, if any.
    pub fn take(&self) -> Option<anyhow::Error> {
        self.first.lock().expect("fatal lock").take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_fatal_error_is_the_one_returned() {
        let fatal = Fatal::default();
        assert!(!fatal.is_stopped());
        let _ = fatal.fail(anyhow::anyhow!("the cause"));
        let _ = fatal.fail(anyhow::anyhow!("a consequence"));
        assert!(fatal.is_stopped());
        assert_eq!(fatal.take().unwrap().to_string(), "the cause");
        assert!(fatal.take().is_none());
    }
}
