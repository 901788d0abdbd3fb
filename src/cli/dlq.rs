//! `pagesplit dlq replay`: re-publishes dead-lettered pages to the raw topic and says what it did.

use super::args::DlqReplayArgs;
use crate::config::Config;
use crate::dlq::ReplayFilter;

/// Replays the dead letters `args` select to `--to` (default: `topics.input`).
pub async fn replay(config: &Config, args: DlqReplayArgs) -> anyhow::Result<()> {
    let to = args.to.unwrap_or_else(|| config.topics.input.clone());
    let filter = ReplayFilter {
        codes: args.codes,
        stage: args.stage,
    };
    let summary = crate::dlq::replay(config, &to, &filter).await?;
    println!(
        "replayed {} of {} dead letters from {} to {to}",
        summary.replayed, summary.read, config.topics.dead_letter
    );
    if summary.omitted > 0 {
        println!(
            "{} selected dead letter(s) hold no value (pagesplit.value.omitted): not replayed; \
             their pages are at the source offsets logged above",
            summary.omitted
        );
    }
    Ok(())
}
