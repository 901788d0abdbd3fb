//! Splits every HTML page of a directory, single-threaded, and writes each page's article body
//! (its paragraphs joined by newlines) as JSON, `{KEY: body}` with KEY the file name less
//! `.html` / `.html.gz`, for an article-extraction scorer. Prints pages/s and MB/s on one core.
//!
//! `cargo run --release --example article_bench -- DIR [OUT.json] [--rounds N]` (DIR, or
//! `DIR/html` when it exists, holds the pages). Used by `bench/articles.sh`.
//!
//! Pages per second are counted on the time the thread spent on a CPU (Linux's
//! `/proc/thread-self/schedstat`), so other work on a shared machine does not lower them; the
//! wall-clock rate is printed next to it. Allocation goes through mimalloc, as in the service.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{TimeZone, Utc};
use pagesplit::model::{ContentType, RawPage};
use pagesplit::parse::{parse_page, ParseOptions};

/// The pages of `dir` as (key, bytes), sorted by key.
fn load(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let dir = if dir.join("html").is_dir() {
        dir.join("html")
    } else {
        dir.to_path_buf()
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    let mut pages = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let (key, gz) = if let Some(k) = name.strip_suffix(".html.gz") {
            (k.to_string(), true)
        } else if let Some(k) = name.strip_suffix(".html") {
            (k.to_string(), false)
        } else {
            continue;
        };
        let mut body = Vec::new();
        if gz {
            flate2::read::GzDecoder::new(std::fs::File::open(&path)?).read_to_end(&mut body)?;
        } else {
            body = std::fs::read(&path)?;
        }
        pages.push((key, body));
    }
    Ok(pages)
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Seconds this thread has spent on a CPU, when the system says (Linux).
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn raw_page(key: &str, body: &[u8]) -> RawPage {
    RawPage {
        url: format!("file:///{key}.html"),
        fetched_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        content_type: ContentType::Html,
        charset: None,
        body: body.to_vec(),
    }
}

/// The body of one page as the scorer reads it: paragraphs joined by newlines.
fn body(key: &str, html: &[u8], options: &ParseOptions) -> String {
    parse_page(&raw_page(key, html), options)
        .map(|p| p.article.paragraphs.join("\n"))
        .unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: article_bench DIR [OUT.json] [--rounds N]");
        std::process::exit(2);
    };
    let out = args.get(1).filter(|a| !a.starts_with("--"));
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let pages = load(Path::new(dir)).expect("pages directory readable");
    let options = ParseOptions {
        max_page_bytes: 16 * 1024 * 1024,
        ..ParseOptions::default()
    };
    let bodies: serde_json::Map<String, serde_json::Value> = pages
        .iter()
        .map(|(k, html)| (k.clone(), body(k, html, &options).into()))
        .collect();
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_string_pretty(&bodies).unwrap()).expect("predictions written");
    }
    let bytes: usize = pages.iter().map(|(_, b)| b.len()).sum();
    let (mut best_cpu, mut best_wall) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        let (cpu, wall) = (thread_cpu_seconds(), Instant::now());
        for (k, html) in &pages {
            std::hint::black_box(parse_page(&raw_page(k, html), &options).ok());
        }
        let wall = wall.elapsed().as_secs_f64();
        best_wall = best_wall.min(wall);
        best_cpu = best_cpu.min(match (cpu, thread_cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => wall,
        });
    }
    let empty = bodies
        .values()
        .filter(|b| b.as_str().is_some_and(|s| s.trim().is_empty()))
        .count();
    println!(
        "pages={} empty={} pages_per_s={:.0} mb_per_s={:.1} wall_pages_per_s={:.0} (one core, CPU time, best of {} rounds)",
        pages.len(),
        empty,
        pages.len() as f64 / best_cpu,
        bytes as f64 / best_cpu / 1e6,
        pages.len() as f64 / best_wall,
        rounds.max(1)
    );
}
