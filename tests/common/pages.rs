//! Pages to publish: small pages of our own words, and the masked example page repeated with one
//! quote moved.

use chrono::{TimeZone as _, Utc};
use pagesplit::demo::PageToPublish;

/// The masked example page (34 quotes and an article), under tests/fixtures/.
pub const EXAMPLE_FIXTURE: &str = "pages/brecorder-putin-assad.masked.txt";
/// The example page's URL.
pub const EXAMPLE_URL: &str = "https://www.brecorder.com/news/40336151/putin-assad";

/// Small pages: a 3-line ticker strip and a short article of our own words.
pub fn small_pages(prefix: &str, count: usize) -> Vec<PageToPublish> {
    (0..count)
        .map(|n| PageToPublish {
            url: format!("https://www.brecorder.com/{prefix}/{n}"),
            fetched_at: Utc::now(),
            content_type: "text/plain".to_owned(),
            body: format!(
                "AGL {}.{:02} Increased By ▲ 0.55 (0.72%)\nBOP 5.44 No Change ▼ 0.00 (0%)\nKSE100 106,275 Decreased By -4795.3 (-4.32%)\n\n\
                 KARACHI: Page number {n} of the fault test describes a quiet trading session.\n\n\
                 Brokers said volumes were thin ahead of the holiday.\n\nComments\n\nComments are closed.",
                30 + n % 50,
                n % 100
            ),
        })
        .collect()
}

/// Copies of the unchanged example page in [`repeated_pages`], before the one whose AGL line
/// moved.
pub const REPEATS: u32 = 5;
/// AGL's line on the example page.
pub const AGL_LINE: &str = "AGL 37.94 Decreased By ▼ -0.54 (-1.4%)";
/// AGL's line on the last of the [`repeated_pages`].
pub const AGL_MOVED: &str = "AGL 38.10 Decreased By ▼ -0.38 (-0.99%)";

/// When the `minute`-th of the [`repeated_pages`] was fetched.
pub fn fetched_at(minute: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 12, 8, 10, minute, 0).unwrap()
}

/// The example page `REPEATS` times, fetched a minute apart, then once with AGL moved. One URL,
/// so one key and one input partition: the worker sees them in this order.
pub fn repeated_pages() -> Vec<PageToPublish> {
    let body = super::fixture(EXAMPLE_FIXTURE);
    let moved = body.replacen(AGL_LINE, AGL_MOVED, 1);
    assert_ne!(moved, body, "the fixture has the AGL line");
    (0..=REPEATS)
        .map(|minute| PageToPublish {
            url: EXAMPLE_URL.to_owned(),
            fetched_at: fetched_at(minute),
            content_type: "text/plain".to_owned(),
            body: if minute < REPEATS { body.clone() } else { moved.clone() },
        })
        .collect()
}
