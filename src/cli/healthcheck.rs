//! `pagesplit healthcheck`: whether the running worker's `/healthz` answers (for container
//! health checks).

use std::time::Duration;

use crate::config::Config;

/// How long the worker may take to answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Asks the worker listening at `http.listen` (on this host when it listens on all addresses).
pub async fn check(config: &Config) -> anyhow::Result<()> {
    let mut address = config.http.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let response = reqwest::Client::new()
        .get(format!("http://{address}/healthz"))
        .timeout(TIMEOUT)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "/healthz answered {}",
        response.status()
    );
    Ok(())
}
