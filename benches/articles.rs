//! Criterion benchmark of the article extractor on HTML pages.
//!
//! Without arguments it splits the project's own fixture pages. With `PAGESPLIT_ARTICLES_DIR`
//! set to a directory of `KEY.html` / `KEY.html.gz` pages (directly or under `html/`), it
//! splits every page of that set, one after the other, as one iteration: the throughput line
//! then reads in pages per second (elements) on one core.
//!
//! Run with `cargo bench --bench articles` (see also `bench/articles.sh`, which scores the set).

use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pagesplit::model::{ContentType, RawPage};
use pagesplit::parse::{parse_page, ParseOptions};

const FIXTURES: [&str; 3] = [
    include_str!("../tests/fixtures/html/news-article-jsonld.html"),
    include_str!("../tests/fixtures/html/brecorder-article.html"),
    include_str!("../tests/fixtures/html/generic-news.html"),
];

fn page(body: Vec<u8>) -> RawPage {
    RawPage {
        url: "https://news.example/article".to_owned(),
        fetched_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        content_type: ContentType::Html,
        charset: None,
        body,
    }
}

/// The pages of a benchmark set directory.
fn load_set(dir: &Path) -> Vec<RawPage> {
    let dir = if dir.join("html").is_dir() {
        dir.join("html")
    } else {
        dir.to_path_buf()
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("PAGESPLIT_ARTICLES_DIR is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    let mut pages = Vec::new();
    for path in paths {
        let name = path.to_string_lossy().to_string();
        let mut body = Vec::new();
        if name.ends_with(".html.gz") {
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_end(&mut body)
                .unwrap();
        } else if name.ends_with(".html") {
            body = std::fs::read(&path).unwrap();
        } else {
            continue;
        }
        pages.push(page(body));
    }
    pages
}

fn articles(c: &mut Criterion) {
    let options = ParseOptions {
        max_page_bytes: 16 * 1024 * 1024,
        ..ParseOptions::default()
    };
    let (name, pages) = match std::env::var_os("PAGESPLIT_ARTICLES_DIR") {
        Some(dir) => ("article_set", load_set(Path::new(&dir))),
        None => (
            "fixture_pages",
            FIXTURES.iter().map(|f| page(f.as_bytes().to_vec())).collect(),
        ),
    };
    assert!(!pages.is_empty(), "no pages to split");
    let mut group = c.benchmark_group("articles");
    group.sample_size(10);
    group.throughput(Throughput::Elements(pages.len() as u64));
    group.bench_function(name, |b| {
        b.iter(|| {
            pages
                .iter()
                .map(|p| parse_page(black_box(p), &options).map_or(0, |p| p.article.paragraphs.len()))
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, articles);
criterion_main!(benches);
