//! Logs on stderr: text (coloured only on a terminal, unless `NO_COLOR` is set) or JSON.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Starts logging at `log.level` in `log.format`. With `quiet_kafka`, librdkafka's own log
/// lines are left out unless `log.level` names them.
pub fn init(config: &Config, quiet_kafka: bool) {
    let mut level = config.log.level.clone();
    if quiet_kafka && !level.contains("rdkafka") {
        level.push_str(",librdkafka=off,rdkafka=off");
    }
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).init(),
        LogFormat::Text => builder
            .with_ansi(colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .init(),
    }
}

/// Whether text logs are coloured: only on a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>). Files, pipes, CI logs and
/// `kubectl logs` get no escape codes.
fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".as_ref())));
        assert!(!colour(true, Some("1".as_ref())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("1".as_ref())));
    }
}
