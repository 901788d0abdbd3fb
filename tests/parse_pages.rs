//! Page-level tests of `pagesplit::parse` through its public API, against the fixture pages in
//! `tests/fixtures/pages` (text) and `tests/fixtures/html` (HTML).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use pagesplit::model::*;
use pagesplit::parse::{parse_page, parse_ticker_line, ParseError, ParseOptions};
use proptest::prelude::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fetched_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 21, 8, 30, 0).unwrap()
}

fn raw_page(url: &str, content_type: ContentType, charset: Option<&str>, body: Vec<u8>) -> RawPage {
    RawPage {
        url: url.to_string(),
        fetched_at: fetched_at(),
        content_type,
        charset: charset.map(str::to_string),
        body,
    }
}

fn text_page(body: &[u8]) -> RawPage {
    raw_page(
        "https://www.brecorder.com/news/40000001/test",
        ContentType::Text,
        None,
        body.to_vec(),
    )
}

fn html_page(name: &str, charset: Option<&str>) -> RawPage {
    let body = std::fs::read(fixtures().join("html").join(name)).unwrap();
    raw_page(
        &format!("https://www.brecorder.com/news/{name}"),
        ContentType::Html,
        charset,
        body,
    )
}

fn parse(page: &RawPage) -> ParsedPage {
    parse_page(page, &ParseOptions::default()).expect("page parses")
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn kind_str(k: QuoteKind) -> &'static str {
    match k {
        QuoteKind::Stock => "STOCK",
        QuoteKind::Index => "INDEX",
    }
}

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Up => "UP",
        Direction::Down => "DOWN",
        Direction::Unchanged => "UNCHANGED",
    }
}

/// A quote as the expected-json files write it.
fn quote_row(q: &Quote) -> [String; 6] {
    [
        q.symbol.clone(),
        kind_str(q.kind).to_string(),
        q.price.to_string(),
        q.change.to_string(),
        q.change_pct.to_string(),
        direction_str(q.direction).to_string(),
    ]
}

fn expected_rows(expected: &Value) -> Vec<[String; 6]> {
    expected["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            ["symbol", "kind", "price", "change", "change_pct", "direction"]
                .map(|k| q[k].as_str().unwrap().to_string())
        })
        .collect()
}

fn assert_quote_identity(page: &RawPage, parsed: &ParsedPage) {
    for q in &parsed.quotes {
        assert_eq!(q.url, page.url);
        assert_eq!(q.fetched_at, page.fetched_at);
        assert_eq!(q.event_id, event_id(&page.url, page.fetched_at, &q.symbol));
    }
    assert_eq!(parsed.article.url, page.url);
    assert_eq!(parsed.article.fetched_at, page.fetched_at);
    assert_eq!(
        parsed.article.event_id,
        event_id(&page.url, page.fetched_at, "article")
    );
}

// ---------------------------------------------------------------------------------------------
// The example page
// ---------------------------------------------------------------------------------------------

#[test]
fn example_page_quotes_and_article() {
    let dir = fixtures().join("pages");
    let body = std::fs::read(dir.join("brecorder-putin-assad.masked.txt")).unwrap();
    let expected: Value = serde_json::from_slice(
        &std::fs::read(dir.join("brecorder-putin-assad.masked.expected.json")).unwrap(),
    )
    .unwrap();
    let page = text_page(&body);
    let parsed = parse(&page);

    let rows: Vec<[String; 6]> = parsed.quotes.iter().map(quote_row).collect();
    assert_eq!(rows.len(), 34);
    assert_eq!(rows, expected_rows(&expected));
    // Spot checks written out, independent of the json file.
    let row = |s: &str| rows.iter().find(|r| r[0] == s).unwrap().clone();
    assert_eq!(row("AGL"), ["AGL", "STOCK", "37.94", "-0.54", "-1.4", "DOWN"]);
    assert_eq!(row("CNERGY"), ["CNERGY", "STOCK", "5.84", "-0.70", "-10.7", "DOWN"]);
    assert_eq!(row("FFBL"), ["FFBL", "STOCK", "82.30", "-4.13", "-4.78", "DOWN"]);
    assert_eq!(row("HUMNL"), ["HUMNL", "STOCK", "13.60", "-0.42", "-3", "DOWN"]);
    assert_eq!(row("BR100"), ["BR100", "INDEX", "11349", "-541.2", "-4.55", "DOWN"]);
    assert_eq!(row("KSE100"), ["KSE100", "INDEX", "106275", "-4795.3", "-4.32", "DOWN"]);
    assert_eq!(row("KSE30"), ["KSE30", "INDEX", "33353", "-1555.7", "-4.46", "DOWN"]);
    assert_eq!(rows[0][0], "AGL");
    assert_eq!(rows[33][0], "KSE30");
    assert_quote_identity(&page, &parsed);

    let a = &parsed.article;
    let ea = &expected["article"];
    assert_eq!(a.dateline.as_deref(), Some("MOSCOW"));
    assert_eq!(a.title, None);
    assert_eq!(a.section, None);
    assert_eq!(a.byline, None);
    assert_eq!(a.published_at, None);
    assert_eq!(a.paragraphs.len(), 13);
    assert_eq!(a.paragraphs.len() as u64, ea["body_paragraph_count"].as_u64().unwrap());
    assert!(a.paragraphs[0].starts_with("MOSCOW: Xxxxxxx Xxxxxxxxx Xxxx"));
    assert_eq!(
        a.paragraphs.last().unwrap(),
        "Xxxxx xxxx xxxxxxx Xxxxxx xx Xxxxxxxxx 2021 xxxx xx xxxx xxx Xxxxx."
    );
    assert_eq!(
        a.related_headlines,
        ["Iran, Saudi Arabia to restore ties in China-brokered deal"]
    );
    for not_body in ea["not_in_body"].as_array().unwrap() {
        let s = not_body.as_str().unwrap();
        assert!(!a.paragraphs.iter().any(|p| p == s), "{s:?} is in the body");
    }
    assert!(a.comments_closed);
    // "Comments" and "Comments are closed."
    assert_eq!(parsed.boilerplate_lines_dropped, 2);
    assert!(!parsed.replaced_invalid_bytes);
}

// ---------------------------------------------------------------------------------------------
// Real pages
// ---------------------------------------------------------------------------------------------

fn real_pages() -> Vec<(String, Vec<u8>, Value)> {
    let dir = fixtures().join("pages/real");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let body = std::fs::read(dir.join(&n)).unwrap();
            let json = dir.join(n.replace(".txt", ".expected.json"));
            let expected: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
            (n, body, expected)
        })
        .collect()
}

#[test]
fn real_pages_yield_exactly_the_expected_quotes() {
    let pages = real_pages();
    assert!(pages.len() >= 18, "fixtures missing");
    for (name, body, expected) in pages {
        let page = raw_page(
            expected["url"].as_str().unwrap(),
            ContentType::Text,
            None,
            body,
        );
        let parsed = parse(&page);
        let rows: Vec<[String; 6]> = parsed.quotes.iter().map(quote_row).collect();
        assert_eq!(rows, expected_rows(&expected), "{name}");
        assert_eq!(
            !rows.is_empty(),
            expected["has_ticker"].as_bool().unwrap(),
            "{name}"
        );
        assert_quote_identity(&page, &parsed);
        // No ticker line and no number-only widget line ever becomes article text.
        for p in parsed
            .article
            .paragraphs
            .iter()
            .chain(&parsed.article.related_headlines)
            .chain(&parsed.article.title)
        {
            assert!(!p.contains("Increased By") && !p.contains("Decreased By"), "{name}: {p}");
        }
        assert!(!parsed.article.paragraphs.is_empty(), "{name}: no body");
    }
}

#[test]
fn real_pages_dump() {
    if std::env::var_os("PAGESPLIT_DUMP").is_none() {
        return;
    }
    for (name, body, _) in real_pages() {
        let parsed = parse(&text_page(&body));
        let a = &parsed.article;
        println!("== {name}: {} quotes, dropped {}", parsed.quotes.len(), parsed.boilerplate_lines_dropped);
        println!("  title={:?}\n  section={:?} byline={:?} published={:?} dateline={:?} closed={}", a.title, a.section, a.byline, a.published_at, a.dateline, a.comments_closed);
        for p in &a.paragraphs {
            println!("  P: {}", p.chars().take(90).collect::<String>());
        }
        for r in &a.related_headlines {
            println!("  R: {r}");
        }
    }
}

