//! Criterion benchmarks of the pure hot path: splitting a page and encoding its events.
//!
//! Speed claims are ratios measured side by side in one run: the `naive_line_scanner` entry is
//! a deliberately simple split of the same page, as a yardstick for the machine.
//!
//! Run with `cargo bench --bench split`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pagesplit::encode::{Encoder, Framing};
use pagesplit::model::{event_id, ContentType, Direction, Quote, QuoteKind, RawPage};
use pagesplit::parse::{parse_page, ParseOptions};

const EXAMPLE: &str = include_str!("../tests/fixtures/pages/brecorder-putin-assad.masked.txt");
const HTML: &str = include_str!("../tests/fixtures/html/brecorder-article.html");

fn page(body: &str, content_type: ContentType) -> RawPage {
    RawPage {
        url: "https://www.brecorder.com/news/40336151/putin-assad".to_owned(),
        fetched_at: Utc.with_ymd_and_hms(2024, 12, 8, 10, 15, 0).unwrap(),
        content_type,
        charset: None,
        body: body.as_bytes().to_vec(),
    }
}

/// A deliberately naive line scanner building the same events (split on whitespace, parse the
/// numbers, one event id per quote): the floor any real parser should beat.
fn naive_split(page: &RawPage) -> (Vec<Quote>, Vec<String>) {
    use std::str::FromStr;
    let text = String::from_utf8_lossy(&page.body);
    let mut quotes: Vec<Quote> = Vec::new();
    let mut paragraphs = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        let dec = |s: &str| rust_decimal::Decimal::from_str(&s.replace(',', "")).ok();
        if t.len() >= 6 && (t[2] == "Increased" || t[2] == "Decreased" || t[2] == "No") {
            let arrow = t.len() == 7;
            let (c, p) = if arrow { (t[5], t[6]) } else { (t[4], t[5]) };
            if let (Some(price), Some(change), Some(pct)) = (dec(t[1]), dec(c), dec(p.trim_matches(['(', ')', '%']))) {
                if quotes.iter().any(|q| q.symbol == t[0]) {
                    continue;
                }
                quotes.push(Quote {
                    event_id: event_id(&page.url, page.fetched_at, t[0]),
                    symbol: t[0].into(),
                    kind: if arrow { QuoteKind::Stock } else { QuoteKind::Index },
                    price,
                    change,
                    change_pct: pct,
                    direction: Direction::Up,
                    url: page.url.as_str().into(),
                    fetched_at: page.fetched_at,
                });
                continue;
            }
        }
        if line.len() > 60 {
            paragraphs.push(line.to_string());
        }
    }
    (quotes, paragraphs)
}

fn split_text(c: &mut Criterion) {
    let options = ParseOptions::default();
    let text = page(EXAMPLE, ContentType::Text);
    assert_eq!(parse_page(&text, &options).unwrap().quotes.len(), 34);
    assert_eq!(naive_split(&text).0.len(), 34);
    let mut group = c.benchmark_group("example_page");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pagesplit_parse", |b| {
        b.iter(|| parse_page(black_box(&text), &options).unwrap())
    });
    group.bench_function("naive_line_scanner", |b| b.iter(|| naive_split(black_box(&text))));
    let encoder = Encoder::new(Framing::SingleObject);
    group.bench_function("pagesplit_parse_and_encode_35_events", |b| {
        b.iter(|| {
            let parsed = parse_page(black_box(&text), &options).unwrap();
            let mut bytes = 0;
            for quote in &parsed.quotes {
                bytes += encoder.encode_quote(quote).unwrap().len();
            }
            bytes + encoder.encode_article(&parsed.article).unwrap().len()
        })
    });
    group.finish();
}

fn split_html(c: &mut Criterion) {
    let options = ParseOptions::default();
    let html = page(HTML, ContentType::Html);
    assert!(!parse_page(&html, &options).unwrap().quotes.is_empty());
    let mut group = c.benchmark_group("html_page");
    group.throughput(Throughput::Bytes(HTML.len() as u64));
    group.bench_function("pagesplit_parse", |b| {
        b.iter(|| parse_page(black_box(&html), &options).unwrap())
    });
    // A long page: the article repeated, as large pages of real sites are.
    let long_body = HTML.replace(
        "</article>",
        &"<p>KARACHI: Shares rose on Monday as investors returned to cement and energy stocks after the budget.</p>"
            .repeat(200)
            .to_string(),
    ) + "</article>";
    let long = page(&long_body, ContentType::Html);
    group.throughput(Throughput::Bytes(long_body.len() as u64));
    group.bench_function("pagesplit_parse_long", |b| {
        b.iter(|| parse_page(black_box(&long), &options).unwrap())
    });
    group.finish();
}

/// Hostile pages at the size limit: time must stay linear in the input.
fn hostile(c: &mut Criterion) {
    let options = ParseOptions::default();
    let limit = options.max_page_bytes;
    let cases = [
        ("nesting_just_under_the_limit", {
            let chunk = format!("{}x{}", "<div>".repeat(511), "</div>".repeat(511));
            chunk.repeat(limit / chunk.len())
        }),
        ("100k_nested_divs", "<div>".repeat(100_000)),
        (
            "4MiB_of_paragraphs",
            "<p>KARACHI: Shares rose on Monday.</p>".repeat(limit / 40),
        ),
        ("4MiB_text_node", "a".repeat(limit)),
    ];
    let mut group = c.benchmark_group("hostile_html");
    group.sample_size(10);
    for (name, body) in cases {
        let hostile = page(&body, ContentType::Html);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_page(black_box(&hostile), &options).map(|p| p.quotes.len()))
        });
    }
    let line = "A".repeat(10 * 1024 * 1024 - 1);
    let long_line = RawPage {
        body: line.into_bytes(),
        ..page("", ContentType::Text)
    };
    let options_10mb = ParseOptions {
        max_page_bytes: 16 * 1024 * 1024,
        ..ParseOptions::default()
    };
    group.throughput(Throughput::Bytes(long_line.body.len() as u64));
    group.bench_function("10MB_single_text_line", |b| {
        b.iter(|| parse_page(black_box(&long_line), &options_10mb).map(|p| p.quotes.len()))
    });
    group.finish();
}

criterion_group!(benches, split_text, split_html, hostile);
criterion_main!(benches);
