//! `pagesplit demo`: publishes the example pages to a local broker, runs the worker until the
//! group has committed them, and prints the events read back from the output topics.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio_util::sync::CancellationToken;

use crate::client::{decode_event, end_offsets, publish_pages, read_records, wait_committed, PageToPublish, Positions};
use crate::config::Config;
use crate::encode::{value_to_json, Schemas};
use crate::input::{collect_inputs, Input};

/// How long the worker may take to commit the pages.
const COMMIT_DEADLINE: Duration = Duration::from_secs(120);
/// How long reading an output topic back may take.
const READ_DEADLINE: Duration = Duration::from_secs(60);

/// Runs the demo with the pages (`.txt`, `.html`) of `pages_dir`, events to `out`.
pub async fn run(mut config: Config, pages_dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    config.topics.create = true;
    let pages = demo_pages(pages_dir)?;
    let bootstrap = config.kafka.bootstrap_servers.clone();
    crate::app::prepare_topics(&config).await?;
    let quotes_from = end_offsets(&bootstrap, &config.topics.quotes)?;
    let articles_from = end_offsets(&bootstrap, &config.topics.articles)?;

    let shutdown = CancellationToken::new();
    let running = crate::app::start(config.clone(), shutdown.clone()).await?;
    let positions = publish_pages(&bootstrap, &config.topics.input, &pages).await?;
    eprintln!("published {} pages to {}", pages.len(), config.topics.input);
    let (group, input) = (config.kafka.group_id.clone(), config.topics.input.clone());
    let waited = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || wait_committed(&bootstrap, &group, &input, &positions, COMMIT_DEADLINE))
            .await?
    };
    shutdown.cancel();
    running.wait().await?;
    waited?;

    let quotes = print_events(&config, &quotes_from, &articles_from, out)?;
    eprintln!(
        "demo: {} pages published and committed; read back {quotes} quotes from {} and articles from {}",
        pages.len(),
        config.topics.quotes,
        config.topics.articles
    );
    Ok(())
}

/// The `.txt` and `.html` files of `pages_dir` (searched as `split` searches directories), as
/// pages of `https://pages.example/`.
fn demo_pages(pages_dir: &Path) -> anyhow::Result<Vec<PageToPublish>> {
    let inputs = collect_inputs(&[pages_dir.to_path_buf()])
        .with_context(|| format!("failed to read the pages in {}", pages_dir.display()))?;
    let now = chrono::Utc::now();
    let mut pages = Vec::new();
    for input in &inputs {
        let Input::File { path, .. } = input else {
            continue;
        };
        let html = path.extension().is_some_and(|e| e == "html");
        if !html && path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let body = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("page");
        pages.push(PageToPublish {
            url: format!("https://pages.example/{name}"),
            fetched_at: now,
            content_type: if html { "text/html" } else { "text/plain" }.to_owned(),
            body,
        });
    }
    if pages.is_empty() {
        bail!("no .txt or .html pages in {}", pages_dir.display());
    }
    Ok(pages)
}

/// Prints the events written to the output topics since `quotes_from` and `articles_from` as
/// JSON lines with their topic and key; returns the number of quotes.
fn print_events(
    config: &Config,
    quotes_from: &Positions,
    articles_from: &Positions,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let bootstrap = &config.kafka.bootstrap_servers;
    let schemas = Schemas::bundled();
    let mut quotes = 0;
    for (topic, from, schema) in [
        (&config.topics.quotes, quotes_from, &schemas.quote),
        (&config.topics.articles, articles_from, &schemas.article),
    ] {
        for record in read_records(bootstrap, topic, from, READ_DEADLINE)? {
            let mut json = value_to_json(&decode_event(&record.value, schema)?);
            if let Some(object) = json.as_object_mut() {
                object.insert("topic".into(), topic.as_str().into());
                object.insert("key".into(), record.key.clone().into());
            }
            if topic == &config.topics.quotes {
                quotes += 1;
            }
            writeln!(out, "{json}")?;
        }
    }
    Ok(quotes)
}
