//! `pagesplit config check`: the effective configuration, secrets redacted. An invalid
//! configuration never gets here: loading it fails with exit code 2.

use std::io::Write as _;

use crate::config::Config;

/// Prints the effective configuration as TOML.
pub fn check(config: &Config) -> anyhow::Result<()> {
    std::io::stdout().write_all(config.redacted_toml().as_bytes())?;
    Ok(())
}
