//! `pagesplit run`: the worker, until a signal stops it.

use crate::config::Config;

/// Logs the effective configuration and runs the worker until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    tracing::info!(config = %config.redacted_toml(), "effective configuration");
    crate::app::run(config, crate::shutdown::signal_token()).await
}
