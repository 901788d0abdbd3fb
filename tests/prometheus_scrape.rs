//! A real Prometheus server scrapes a worker running against the real broker, with the scrape
//! configuration and alert rules from `deploy/prometheus/`; its HTTP API must report exactly the
//! pages consumed and quotes produced.
#![cfg(feature = "broker-tests")]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use pagesplit::config::EncodingFormat;
use pagesplit::demo::{publish_pages, PageToPublish};
use tokio_util::sync::CancellationToken;

/// Stops the Prometheus child process however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_binary() -> String {
    let candidates = [
        std::env::var("PAGESPLIT_TEST_PROMETHEUS").unwrap_or_default(),
        "prometheus".to_owned(),
    ];
    for candidate in candidates.iter().filter(|c| !c.is_empty()) {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return candidate.clone();
        }
    }
    panic!(
        "the `prometheus` server is not installed (Debian package `prometheus`; `make test` and .ci/run install it)"
    );
}

/// One sample of an instant query, or `None` while Prometheus has no such series yet.
async fn query(client: &reqwest::Client, prometheus: &str, expr: &str) -> Option<f64> {
    let response = client
        .get(format!("http://{prometheus}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    let result = body["data"]["result"].as_array()?;
    result.first()?["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_exact_page_and_quote_counts() {
    let binary = prometheus_binary();
    let config = common::test_config("prom", EncodingFormat::SingleObject);
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone())
        .await
        .expect("worker starts");
    let worker = running.http_addr.expect("http enabled");

    // The deploy scrape configuration and rules, pointed at this worker.
    let dir = tempfile::tempdir().unwrap();
    let deploy = format!("{}/deploy/prometheus", env!("CARGO_MANIFEST_DIR"));
    let scrape = std::fs::read_to_string(format!("{deploy}/prometheus.yml")).unwrap();
    assert!(scrape.contains("127.0.0.1:9808 # pagesplit target"));
    let scrape = scrape.replace(
        "127.0.0.1:9808 # pagesplit target",
        &format!("{worker} # pagesplit target"),
    );
    std::fs::write(dir.path().join("prometheus.yml"), scrape).unwrap();
    std::fs::copy(format!("{deploy}/rules.yml"), dir.path().join("rules.yml")).unwrap();
    let prometheus = format!("127.0.0.1:{}", common::free_port());
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={prometheus}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let _prometheus = KillOnDrop(child);

    // Three pages of 34 quotes each, and one message that is not a page.
    let body = common::fixture(common::pages::EXAMPLE_FIXTURE);
    let pages: Vec<PageToPublish> = (0..3)
        .map(|n| PageToPublish {
            url: format!("https://www.brecorder.com/news/{n}"),
            fetched_at: Utc::now(),
            content_type: "text/plain".to_owned(),
            body: body.clone(),
        })
        .collect();
    let mut positions = publish_pages(&bootstrap, &config.topics.input, &pages).await.unwrap();
    let poison = PageToPublish {
        url: "u".into(),
        fetched_at: Utc::now(),
        content_type: "image/png".into(),
        body: String::new(),
    };
    common::merge_positions(
        &mut positions,
        publish_pages(&bootstrap, &config.topics.input, &[poison])
            .await
            .unwrap(),
    );
    common::wait_for_commit(&config, &positions, Duration::from_secs(60)).await;

    // Prometheus scrapes every 5 s (deploy config): poll its API until it has seen everything.
    let client = reqwest::Client::new();
    let pages_expr = format!(
        "sum(pagesplit_pages_consumed_total{{topic=\"{}\"}})",
        config.topics.input
    );
    let quotes_expr = format!(
        "sum(pagesplit_events_produced_total{{topic=\"{}\",type=\"quote\"}})",
        config.topics.quotes
    );
    let dead_expr = "sum(pagesplit_pages_dead_lettered_total{stage=\"decode\",code=\"unsupported_content_type\"})";
    // A scrape may catch the worker between counting a page and producing its quotes: wait
    // until all three reach their totals, then check that none went past.
    let (pages_seen, quotes_seen, dead_seen) = common::wait_until(
        "Prometheus to scrape every page, quote and dead letter",
        Duration::from_secs(60),
        async || {
            let seen = (
                query(&client, &prometheus, &pages_expr).await,
                query(&client, &prometheus, &quotes_expr).await,
                query(&client, &prometheus, dead_expr).await,
            );
            let reached = |value: Option<f64>, total: f64| value.is_some_and(|value| value >= total);
            (reached(seen.0, 4.0) && reached(seen.1, 102.0) && reached(seen.2, 1.0)).then_some(seen)
        },
    )
    .await;
    assert_eq!(pages_seen, Some(4.0), "pages consumed as scraped");
    assert_eq!(quotes_seen, Some(102.0), "quotes produced as scraped");
    assert_eq!(dead_seen, Some(1.0), "dead letters as scraped");
    assert_eq!(query(&client, &prometheus, "up{job=\"pagesplit\"}").await, Some(1.0));
    // The alert rules loaded and none fires for a healthy worker.
    let rules: serde_json::Value = client
        .get(format!("http://{prometheus}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let groups = rules["data"]["groups"].as_array().expect("rule groups");
    assert!(!groups.is_empty(), "deploy/prometheus/rules.yml loaded");
    let alerts: serde_json::Value = client
        .get(format!("http://{prometheus}/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let firing: Vec<&serde_json::Value> = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .collect();
    assert!(firing.is_empty(), "no alert fires: {firing:?}");

    shutdown.cancel();
    running.wait().await.unwrap();
    common::delete_topics(&config).await;
}
