//! Page-level tests of `pagesplit::parse` through its public API, against the fixture pages in
//! `tests/fixtures/pages` (text) and `tests/fixtures/html` (HTML).

use std::path::{Path, PathBuf};

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
        q.symbol.to_string(),
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
            ["symbol", "kind", "price", "change", "change_pct", "direction"].map(|k| q[k].as_str().unwrap().to_string())
        })
        .collect()
}

fn assert_quote_identity(page: &RawPage, parsed: &ParsedPage) {
    for q in &parsed.quotes {
        assert_eq!(&*q.url, page.url.as_str());
        assert_eq!(q.fetched_at, page.fetched_at);
        assert_eq!(q.event_id, event_id(&page.url, page.fetched_at, &q.symbol));
    }
    assert_eq!(parsed.article.url, page.url);
    assert_eq!(parsed.article.fetched_at, page.fetched_at);
    assert_eq!(parsed.article.event_id, event_id(&page.url, page.fetched_at, "article"));
}

// ---------------------------------------------------------------------------------------------
// The example page
// ---------------------------------------------------------------------------------------------

#[test]
fn example_page_quotes_and_article() {
    let dir = fixtures().join("pages");
    let body = std::fs::read(dir.join("brecorder-putin-assad.masked.txt")).unwrap();
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("brecorder-putin-assad.masked.expected.json")).unwrap())
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
        let page = raw_page(expected["url"].as_str().unwrap(), ContentType::Text, None, body);
        let parsed = parse(&page);
        let rows: Vec<[String; 6]> = parsed.quotes.iter().map(quote_row).collect();
        assert_eq!(rows, expected_rows(&expected), "{name}");
        assert_eq!(!rows.is_empty(), expected["has_ticker"].as_bool().unwrap(), "{name}");
        assert_quote_identity(&page, &parsed);
        // No ticker line and no number-only widget line ever becomes article text.
        for p in parsed
            .article
            .paragraphs
            .iter()
            .chain(&parsed.article.related_headlines)
            .chain(&parsed.article.title)
        {
            assert!(
                !p.contains("Increased By") && !p.contains("Decreased By"),
                "{name}: {p}"
            );
        }
        assert!(!parsed.article.paragraphs.is_empty(), "{name}: no body");
    }
}

// ---------------------------------------------------------------------------------------------
// Text pages written for these tests (own prose, real layouts)
// ---------------------------------------------------------------------------------------------

#[test]
fn text_page_with_full_header_widgets_and_comments() {
    let body = "\
AGL 37.94 Decreased By ▼ -0.54 (-1.4%)
BOP 5.44 No Change ▼ 0.00 (0%)
BR100 4,097 Decreased By ▼ -67.58 (-1.62%)
KSE30 24,084 Increased By 1 (0%)
Business Recorder Logo
Jul 05, 2022 PRINT EDITION ► BR MARKETS ► Dollar to PKR ►
Pakistan

Coronavirus
VERY HIGH
Pakistan Deaths
20,400
7.53% positivity

Wheat stocks adequate, ministry says

BR Web Desk Published 05 Jul, 2022 04:45pm

ISLAMABAD: The food ministry said on Tuesday that wheat stocks were enough to last until the next harvest, closing at 8,401.81 points with a net negative change of -217.28 points would not matter.

Officials said imports of 2.2 million tonnes had already arrived.

Flour mills seek higher quota

Provinces were asked to release stocks to mills every week.

Copyright Business Recorder, 2022

Comments

Comments are closed.

Kamran Shah Jul 05, 2022 06:10pm
Prices in the market tell another story.
";
    let page = text_page(body.as_bytes());
    let parsed = parse(&page);
    let rows: Vec<[String; 6]> = parsed.quotes.iter().map(quote_row).collect();
    assert_eq!(
        rows,
        [
            ["AGL", "STOCK", "37.94", "-0.54", "-1.4", "DOWN"],
            ["BOP", "STOCK", "5.44", "0.00", "0", "UNCHANGED"],
            ["BR100", "INDEX", "4097", "-67.58", "-1.62", "DOWN"],
            ["KSE30", "INDEX", "24084", "1", "0", "UP"],
        ]
        .map(|r| r.map(String::from))
    );
    let a = &parsed.article;
    assert_eq!(a.title.as_deref(), Some("Wheat stocks adequate, ministry says"));
    assert_eq!(a.section.as_deref(), Some("Pakistan"));
    assert_eq!(a.byline.as_deref(), Some("BR Web Desk"));
    assert_eq!(a.published_at, Some(utc("2022-07-05T11:45:00Z")));
    assert_eq!(a.dateline.as_deref(), Some("ISLAMABAD"));
    assert_eq!(a.paragraphs.len(), 3);
    assert!(a.paragraphs[0].starts_with("ISLAMABAD: The food ministry"));
    assert_eq!(
        a.paragraphs[2],
        "Provinces were asked to release stocks to mills every week."
    );
    assert_eq!(a.related_headlines, ["Flour mills seek higher quota"]);
    assert!(a.comments_closed);
    // Logo, nav, 5 widget lines, copyright, 2 comment lines, 2 reader-comment lines.
    assert_eq!(parsed.boilerplate_lines_dropped, 12);
}

#[test]
fn text_page_without_ticker_has_article_and_no_quotes() {
    let body = "Markets Print 2025-09-26\n\nIndex ends week higher\n\nRecorder Report Published 26 Sep, 2025 06:23am\n\nKARACHI: Shares ended the week higher as banks gained.\n";
    let parsed = parse(&text_page(body.as_bytes()));
    assert!(parsed.quotes.is_empty());
    let a = &parsed.article;
    assert_eq!(a.section.as_deref(), Some("Markets"));
    assert_eq!(a.title.as_deref(), Some("Index ends week higher"));
    assert_eq!(a.byline.as_deref(), Some("Recorder Report"));
    assert_eq!(a.published_at, Some(utc("2025-09-26T01:23:00Z")));
    assert_eq!(a.paragraphs, ["KARACHI: Shares ended the week higher as banks gained."]);
}

#[test]
fn real_page_articles() {
    let pages = real_pages();
    let get = |name: &str| {
        let (_, body, _) = pages.iter().find(|(n, _, _)| n == name).unwrap();
        parse(&text_page(body))
    };
    let p = get("brecorder-025.txt");
    assert_eq!(p.article.section.as_deref(), Some("Markets"));
    assert_eq!(
        p.article.title.as_deref(),
        Some("Intra-day trading: KSE-100 jumps on MSCI additions")
    );
    assert_eq!(p.article.byline.as_deref(), Some("BR Web Desk"));
    assert_eq!(p.article.published_at, Some(utc("2023-08-11T05:37:00Z")));
    assert_eq!(p.article.paragraphs.len(), 2);

    let p = get("brecorder-039.txt");
    assert_eq!(
        p.article.title.as_deref(),
        Some("PSX regains footings: BRIndex100 stays bullish")
    );
    assert_eq!(p.article.byline.as_deref(), Some("Recorder Report"));
    assert_eq!(p.article.published_at, Some(utc("2021-05-25T19:00:00Z")));
    assert_eq!(p.article.dateline.as_deref(), Some("KARACHI"));
    assert_eq!(p.article.paragraphs.len(), 1);
    assert!(!p.article.paragraphs.iter().any(|x| x.contains("20,400")));
    assert_eq!(p.boilerplate_lines_dropped, 18);

    let p = get("brecorder-044.txt");
    assert_eq!(p.article.section.as_deref(), Some("Business & Finance"));
    assert_eq!(p.article.byline.as_deref(), Some("Reuters"));
    assert_eq!(p.article.published_at, Some(utc("2024-05-23T06:13:00Z")));
    assert_eq!(p.article.dateline.as_deref(), Some("SINGAPORE"));
    // The page was cut inside its third paragraph.
    assert_eq!(p.article.paragraphs.len(), 3);
    assert_eq!(
        p.article.paragraphs[2],
        "Singapore markets were closed for a holiday on Wedn"
    );

    let p = get("brecorder-048.txt");
    assert_eq!(p.quotes.len(), 1);
    assert_eq!(p.article.section.as_deref(), Some("Business & Finance"));
    assert_eq!(p.article.title.as_deref(), Some("Bank holiday on 28th"));
    assert_eq!(p.article.published_at, Some(utc("2025-05-24T01:21:00Z")));

    let p = get("brecorder-015.txt");
    // The same paragraph printed twice, then a market-data table.
    assert_eq!(p.article.paragraphs.len(), 1);
    assert!(p.article.related_headlines.is_empty());
    assert!(p.quotes.is_empty());

    let p = get("other-043.txt");
    assert_eq!(p.article.byline.as_deref(), Some("F.P. Report"));
    assert_eq!(p.article.dateline.as_deref(), Some("ISLAMABAD"));
    assert_eq!(p.article.paragraphs.len(), 6);

    let p = get("other-020.txt");
    assert_eq!(p.article.dateline.as_deref(), Some("KARACHI"));
    assert_eq!(p.article.title, None);
}

// ---------------------------------------------------------------------------------------------
// HTML pages
// ---------------------------------------------------------------------------------------------

#[test]
fn html_article_page() {
    let page = html_page("brecorder-article.html", Some("utf-8"));
    let parsed = parse(&page);
    let rows: Vec<[String; 6]> = parsed.quotes.iter().map(quote_row).collect();
    assert_eq!(
        rows,
        [
            ["AGL", "STOCK", "37.94", "-0.54", "-1.4", "DOWN"],
            ["AIRLINK", "STOCK", "193.91", "-9.11", "-4.49", "DOWN"],
            ["BOP", "STOCK", "5.44", "0.00", "0", "UNCHANGED"],
            ["FFBL", "STOCK", "82.30", "1.20", "1.48", "UP"],
            ["BR100", "INDEX", "7454", "45.5", "0.61", "UP"],
            ["KSE100", "INDEX", "106275", "-4795.3", "-4.32", "DOWN"],
        ]
        .map(|r| r.map(String::from))
    );
    assert_quote_identity(&page, &parsed);
    let a = &parsed.article;
    assert_eq!(a.title.as_deref(), Some("Cement despatches climb on northern demand"));
    assert_eq!(a.section.as_deref(), Some("Markets"));
    assert_eq!(a.byline.as_deref(), Some("Recorder Report"));
    assert_eq!(a.published_at, Some(utc("2024-03-28T06:04:00Z")));
    assert_eq!(a.dateline.as_deref(), Some("KARACHI"));
    assert_eq!(
        a.paragraphs,
        [
            "KARACHI: Cement makers shipped more bags in March than a year earlier, as builders in the north restarted projects paused over the winter, an industry group said on Thursday.",
            "Northern plants sent 3.1 million tonnes to local buyers, up 12.4 percent, while southern plants saw flat demand & weaker exports.",
            "Dealers said the price of a 50-kilogram bag held at Rs1,250 in Lahore.",
            "“Demand usually picks up once the weather turns,” a Lahore dealer said.",
        ]
    );
    assert_eq!(
        a.related_headlines,
        [
            "Coal prices ease for third week",
            "Cement sales dip in February",
            "Builders seek tax relief",
        ]
    );
    assert!(a.comments_closed);
    assert!(!parsed.replaced_invalid_bytes);
    // Header (logo, 4 menu items, edition bar), ad (2), caption, share bar, copyright,
    // "Read more", comments widget (5), sidebar (4), footer (2).
    assert_eq!(parsed.boilerplate_lines_dropped, 23);
}

#[test]
fn html_news_article_with_structured_data() {
    let parsed = parse(&html_page("news-article-jsonld.html", None));
    assert!(parsed.quotes.is_empty());
    let a = &parsed.article;
    // JSON-LD first, then Open Graph and meta tags, then the visible page.
    assert_eq!(
        a.title.as_deref(),
        Some("Harbour city opens its first tidal power plant")
    );
    assert_eq!(a.authors, ["Mara Quint", "Tobias Rell"]);
    assert_eq!(a.published_at, Some(utc("2025-03-14T07:15:00Z")));
    assert_eq!(a.modified_at, Some(utc("2025-03-14T16:40:00Z")));
    assert_eq!(a.section.as_deref(), Some("Energy"));
    assert_eq!(a.language.as_deref(), Some("en-US"));
    assert_eq!(
        a.canonical_url.as_deref(),
        Some("https://ledger.example/energy/2025/03/tidal-plant-opens")
    );
    assert_eq!(
        a.description.as_deref(),
        Some("Turbines under the harbour mouth will power 40,000 homes.")
    );
    assert_eq!(
        a.image_url.as_deref(),
        Some("https://ledger.example/img/tidal-lead.jpg")
    );
    // One paragraph per block: the subheading, each list item, the quote and each table row
    // are their own; the caption, ad, newsletter box, hidden text, tags, related stories,
    // comments, sidebar and footer are left out.
    assert_eq!(
        a.paragraphs,
        [
            "The harbour city switched on its first tidal power plant on Friday, sending electricity from twelve underwater turbines to the regional grid.",
            "Engineers said the turbines, anchored beneath the harbour mouth, will produce enough power for about 40,000 homes once all of them run at full speed.",
            "How the turbines work",
            "Each turbine turns with the incoming and the outgoing tide, so the plant produces power four times a day at predictable hours.",
            "Twelve turbines, each 20 metres across",
            "Four tides a day, each known years ahead",
            "A cable of 6 kilometres to the shore station",
            "“The tide never forgets to come back,” said the plant’s chief engineer, Ilse Varga.",
            "Year Output (GWh)",
            "2025 95",
            "2026 140",
            "Critics have questioned the cost of the project, which ran two years late and a third over budget, but the council said the price of the power was fixed for twenty years.",
        ]
    );
    assert_eq!(
        a.related_headlines,
        [
            "Read more: Offshore wind farm doubles in size",
            "Solar roofs spread across the old town",
            "Grid operator plans new storage site",
        ]
    );
}

#[test]
fn html_meta_tags_stand_in_for_missing_structured_data() {
    let html = r#"<html lang="fr"><head><title>Le port s'agrandit | Journal</title>
        <meta property="og:title" content="Le port s'agrandit">
        <meta name="author" content="Claire Dubois">
        <meta property="article:published_time" content="2024-06-01T10:00:00+02:00">
        <meta name="description" content="Le port ouvre un nouveau quai.">
        <meta property="og:image" content="https://journal.example/quai.jpg">
        <meta property="og:url" content="https://journal.example/port"></head>
        <body><div class="text"><p>Le port de la ville a ouvert un nouveau quai pour les navires de croisière ce samedi.</p>
        <p>Les travaux ont duré trois ans et coûté quarante millions d'euros, selon la mairie.</p></div></body></html>"#;
    let page = raw_page(
        "https://journal.example/p",
        ContentType::Html,
        None,
        html.as_bytes().to_vec(),
    );
    let a = parse(&page).article;
    assert_eq!(a.title.as_deref(), Some("Le port s'agrandit"));
    assert_eq!(a.authors, ["Claire Dubois"]);
    assert_eq!(a.byline.as_deref(), Some("Claire Dubois"));
    assert_eq!(a.published_at, Some(utc("2024-06-01T08:00:00Z")));
    assert_eq!(a.modified_at, None);
    assert_eq!(a.language.as_deref(), Some("fr"));
    assert_eq!(a.canonical_url.as_deref(), Some("https://journal.example/port"));
    assert_eq!(a.description.as_deref(), Some("Le port ouvre un nouveau quai."));
    assert_eq!(a.image_url.as_deref(), Some("https://journal.example/quai.jpg"));
    assert_eq!(a.paragraphs.len(), 2);
}

#[test]
fn html_windows_1252_from_meta_and_from_content_type() {
    for charset in [None, Some("ISO-8859-1"), Some("windows-1252")] {
        let parsed = parse(&html_page("windows-1252.html", charset));
        assert!(!parsed.replaced_invalid_bytes);
        let rows: Vec<[String; 6]> = parsed.quotes.iter().map(quote_row).collect();
        assert_eq!(
            rows,
            [["KEL", "STOCK", "5.22", "-0.39", "-6.95", "DOWN"].map(String::from)]
        );
        let a = &parsed.article;
        assert_eq!(a.title.as_deref(), Some("Café owners face higher costs"));
        assert_eq!(a.dateline.as_deref(), Some("LAHORE"));
        assert_eq!(
            a.paragraphs,
            [
                "LAHORE: Café owners in the old city say the price of milk has risen by a fifth since January – the steepest rise in three years.",
                "“We can’t pass it all on to customers,” said one owner, who runs a small café near the fort.",
            ]
        );
    }
}

#[test]
fn html_invalid_utf8_is_replaced_and_processed() {
    let parsed = parse(&html_page("invalid-utf8.html", Some("utf-8")));
    assert!(parsed.replaced_invalid_bytes);
    let rows: Vec<[String; 6]> = parsed.quotes.iter().map(quote_row).collect();
    assert_eq!(
        rows,
        [["NBP", "STOCK", "59.81", "-6.57", "-9.9", "DOWN"].map(String::from)]
    );
    let a = &parsed.article;
    assert_eq!(a.title.as_deref(), Some("Textile exports rise"));
    assert_eq!(a.dateline.as_deref(), Some("FAISALABAD"));
    assert_eq!(a.paragraphs.len(), 2);
    assert!(a.paragraphs[0].contains("Faisalabad \u{fffd}"));
    assert!(a.paragraphs[0].ends_with("reported fuller order books."));
}

#[test]
fn html_generic_page_without_ticker() {
    let parsed = parse(&html_page("generic-news.html", None));
    assert!(parsed.quotes.is_empty());
    let a = &parsed.article;
    assert_eq!(a.title.as_deref(), Some("Farmers expect a larger wheat harvest"));
    assert_eq!(a.dateline.as_deref(), Some("MULTAN"));
    assert_eq!(a.paragraphs.len(), 3);
    assert!(a.paragraphs[1].starts_with("Officials estimate output at 28 million tonnes"));
    assert_eq!(a.byline, None);
    assert_eq!(a.published_at, None);
}

#[test]
fn html_page_of_divs_falls_back_to_lines() {
    let html = "<html><head><title>Budget talks resume</title></head><body>\
        <div class=\"menu\">Home</div>\
        <div class=\"story\"><div>ISLAMABAD: Talks on the budget resumed on Monday with the lenders.</div>\
        <div>Both sides said progress had been made on revenue measures.</div></div></body></html>";
    let page = raw_page(
        "https://example.test/b",
        ContentType::Html,
        None,
        html.as_bytes().to_vec(),
    );
    let parsed = parse(&page);
    assert!(parsed.quotes.is_empty());
    assert_eq!(parsed.article.title.as_deref(), Some("Budget talks resume"));
    assert_eq!(parsed.article.dateline.as_deref(), Some("ISLAMABAD"));
    assert_eq!(parsed.article.paragraphs.len(), 2);
}

#[test]
fn html_entities_are_decoded_in_ticker() {
    let html = "<ul><li>KSE100 106,275 Decreased By &#9660; &#8722;4795.3 (&#8722;4.32%)</li>\
                <li>AGL&nbsp;37.94&nbsp;Decreased&nbsp;By&nbsp;&#x25BC;&nbsp;-0.54&nbsp;(-1.4%)</li></ul>";
    let page = raw_page(
        "https://example.test/c",
        ContentType::Html,
        None,
        html.as_bytes().to_vec(),
    );
    let parsed = parse(&page);
    let rows: Vec<[String; 6]> = parsed.quotes.iter().map(quote_row).collect();
    assert_eq!(
        rows,
        [
            ["KSE100", "INDEX", "106275", "-4795.3", "-4.32", "DOWN"],
            ["AGL", "STOCK", "37.94", "-0.54", "-1.4", "DOWN"],
        ]
        .map(|r| r.map(String::from))
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------------

#[test]
fn oversized_and_empty_bodies_are_typed_errors() {
    let options = ParseOptions::default();
    let big = vec![b'a'; options.max_page_bytes + 1];
    let err = parse_page(&text_page(&big), &options).unwrap_err();
    assert_eq!(err.code(), "page_too_large");
    assert!(matches!(err, ParseError::TooLarge { size, limit } if size == big.len() && limit == 4 * 1024 * 1024));

    let err = parse_page(&text_page(b""), &options).unwrap_err();
    assert_eq!(err.code(), "empty_body");
    let empty_html = raw_page("https://example.test/e", ContentType::Html, None, b" \n ".to_vec());
    assert_eq!(parse_page(&empty_html, &options).unwrap_err().code(), "empty_body");

    let no_text = raw_page(
        "https://example.test/e",
        ContentType::Html,
        None,
        b"<html><head><script>var a = 1;</script></head><body></body></html>".to_vec(),
    );
    assert_eq!(parse_page(&no_text, &options).unwrap_err().code(), "no_content");
}

#[test]
fn deeply_nested_html_is_refused() {
    let mut html = String::from("<html><body>");
    html.push_str(&"<div>".repeat(100_000));
    html.push_str("KSE100 106,275 Decreased By -4795.3 (-4.32%)");
    let page = raw_page("https://example.test/d", ContentType::Html, None, html.into_bytes());
    let err = parse_page(&page, &ParseOptions::default()).unwrap_err();
    assert_eq!(err.code(), "html_too_deep");

    // Deep but within the limit, many times over: linear, and parsed.
    let chunk = format!(
        "{}<p>KSE100 106,275 Decreased By -4795.3 (-4.32%)</p>{}",
        "<div>".repeat(500),
        "</div>".repeat(500)
    );
    let html = chunk.repeat(300);
    let page = raw_page("https://example.test/d", ContentType::Html, None, html.into_bytes());
    let parsed = parse(&page);
    assert_eq!(parsed.quotes.len(), 1);
}

#[test]
fn huge_single_line_and_nul_bytes() {
    let options = ParseOptions {
        max_page_bytes: 16 * 1024 * 1024,
        ..ParseOptions::default()
    };
    let mut body = b"AGL 37.94 Decreased By \xe2\x96\xbc -0.54 (-1.4%)\n".to_vec();
    body.extend(std::iter::repeat_n(b"xxxx 1,234.5 ".as_slice(), 800_000).flatten());
    assert!(body.len() > 10_000_000);
    let parsed = parse_page(&text_page(&body), &options).unwrap();
    assert_eq!(parsed.quotes.len(), 1);
    assert_eq!(parsed.article.paragraphs.len(), 1);

    let mut html = b"<p>".to_vec();
    html.extend(std::iter::repeat_n(b'a', 10_000_000));
    let page = raw_page("https://example.test/h", ContentType::Html, None, html);
    let parsed = parse_page(&page, &options).unwrap();
    assert_eq!(parsed.article.paragraphs.len(), 1);

    let with_nul = b"KSE30 24,084 Increased By 1 (0%)\n\0\0\0\nKARACHI: Shares\0 rose on Monday as banks gained.\n";
    let parsed = parse(&text_page(with_nul));
    assert_eq!(parsed.quotes.len(), 1);
    assert_eq!(
        parsed.article.paragraphs,
        ["KARACHI: Shares rose on Monday as banks gained."]
    );
    let html_nul = raw_page(
        "https://example.test/n",
        ContentType::Html,
        None,
        b"<p>KARACHI: Shares\0 rose on Monday as banks gained.</p>\0".to_vec(),
    );
    let parsed = parse(&html_nul);
    assert_eq!(parsed.article.paragraphs.len(), 1);
    assert!(!parsed.article.paragraphs[0].contains('\0'));
}

#[test]
fn many_ticker_lines_and_links_stay_linear() {
    let mut body = String::new();
    for i in 0..50_000 {
        body.push_str(&format!("S{i} 1.00 Increased By ▲ 0.01 (1%)\n"));
    }
    let parsed = parse(&text_page(body.as_bytes()));
    assert_eq!(parsed.quotes.len(), 50_000);
    assert_eq!(parsed.quotes[49_999].symbol, "S49999");

    let mut html = String::from("<p>KARACHI: Shares rose on Monday.</p><div class=\"related\">");
    for i in 0..50_000 {
        html.push_str(&format!("<a href=\"/{i}\">Story number {i}</a>"));
    }
    let page = raw_page("https://example.test/r", ContentType::Html, None, html.into_bytes());
    let parsed = parse(&page);
    assert_eq!(parsed.article.related_headlines.len(), 50_000);
}

#[test]
fn invalid_utf8_text_page_is_replaced() {
    let body = b"AGL 37.94 Decreased By \xe2\x96\xbc -0.54 (-1.4%)\n\xff\xfeKARACHI: Shares rose \xc3 on Monday.\n";
    let parsed = parse(&text_page(body));
    assert!(parsed.replaced_invalid_bytes);
    assert_eq!(parsed.quotes.len(), 1);
    assert_eq!(parsed.article.paragraphs.len(), 1);
    // An arrow cut in half makes the line unreadable, not a panic.
    let body = b"AGL 37.94 Decreased By \xe2\x96 -0.54 (-1.4%)\nKARACHI: Shares rose on Monday.\n";
    let parsed = parse(&text_page(body));
    assert!(parsed.replaced_invalid_bytes);
    assert!(parsed.quotes.is_empty());
}

#[test]
fn absurd_numbers_never_become_quotes() {
    let forty = "9".repeat(40);
    let body = format!(
        "AGL {forty} Decreased By ▼ -0.54 (-1.4%)\nBOP 1e400 Increased By ▲ 0.1 (1%)\n\
         KEL 1.1234567 Increased By ▲ 0.1 (1%)\nKSE100 1,234,567,890,123 Increased By 1 (0%)\n\
         HBL 100.00 Increased By ▲ 0.10 (0.1%)\n"
    );
    let parsed = parse(&text_page(body.as_bytes()));
    let symbols: Vec<&str> = parsed.quotes.iter().map(|q| q.symbol.as_str()).collect();
    assert_eq!(symbols, ["HBL"]);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// A number as the ticker prints it: optional thousands separators, 0-6 decimals.
fn printed_number(int: u64, frac_digits: usize, frac: u64, commas: bool) -> (String, String) {
    let int_str = int.to_string();
    let grouped = if commas {
        let mut out = String::new();
        for (i, c) in int_str.chars().enumerate() {
            if i > 0 && (int_str.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        int_str.clone()
    };
    if frac_digits == 0 {
        return (grouped, int_str);
    }
    let f = format!("{:0width$}", frac % 10u64.pow(frac_digits as u32), width = frac_digits);
    (format!("{grouped}.{f}"), format!("{int_str}.{f}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_ticker_lines_round_trip(
        symbol in "[A-Z][A-Z0-9]{0,9}",
        price in (0u64..999_999_999_999, 0usize..=6, any::<u64>(), any::<bool>()),
        change in (0u64..999_999_999_999, 0usize..=6, any::<u64>(), any::<bool>()),
        pct in (0u64..999_999, 0usize..=6, any::<u64>()),
        word in 0usize..3,
        arrow in 0usize..3,
    ) {
        let (price_printed, price_plain) = printed_number(price.0, price.1, price.2, price.3);
        let (change_printed, change_plain) = printed_number(change.0, change.1, change.2, false);
        let (pct_printed, pct_plain) = printed_number(pct.0, pct.1, pct.2, false);
        let negative = change.3;
        let sign = if negative { "-" } else { "" };
        let words = ["Increased By", "Decreased By", "No Change"][word];
        let arrow_str = ["", "▲ ", "▼ "][arrow];
        let line = format!("{symbol} {price_printed} {words} {arrow_str}{sign}{change_printed} ({sign}{pct_printed}%)");
        let options = ParseOptions::default();
        let t = parse_ticker_line(&line, &options).expect("generated line parses");
        prop_assert_eq!(t.symbol, symbol.as_str());
        prop_assert_eq!(t.price.to_string(), price_plain);
        let is_zero = |s: &str| s.chars().all(|c| c == '0' || c == '.');
        let signed = |plain: &str| if negative && !is_zero(plain) { format!("-{plain}") } else { plain.to_string() };
        prop_assert_eq!(t.change.to_string(), signed(&change_plain));
        prop_assert_eq!(t.change_pct.to_string(), signed(&pct_plain));
        prop_assert_eq!(t.direction, [Direction::Up, Direction::Down, Direction::Unchanged][word]);
        let index = arrow == 0 || options.index_symbols.contains(&symbol);
        prop_assert_eq!(t.kind, if index { QuoteKind::Index } else { QuoteKind::Stock });
        // A line cut anywhere is never a quote.
        for (cut, _) in line.char_indices().skip(1) {
            let head = &line[..cut];
            if !head.ends_with(')') {
                prop_assert!(parse_ticker_line(head, &options).is_none(), "{}", head);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048), html in any::<bool>()) {
        let page = raw_page(
            "https://example.test/p",
            if html { ContentType::Html } else { ContentType::Text },
            None,
            body,
        );
        match parse_page(&page, &ParseOptions::default()) {
            Ok(p) => {
                for q in &p.quotes {
                    prop_assert_eq!(&q.event_id, &event_id(&page.url, page.fetched_at, &q.symbol));
                }
            }
            Err(e) => prop_assert!(["empty_body", "no_content", "html_too_deep"].contains(&e.code())),
        }
    }

    #[test]
    fn arbitrary_lines_among_ticker_text_never_panic(lines in proptest::collection::vec(
        prop_oneof![
            "[A-Z]{1,6} [0-9,.]{1,10} (Increased By|Decreased By|No Change) [▲▼]? ?-?[0-9.]{1,8} \\(-?[0-9.]{1,6}%\\)",
            "\\PC{0,80}",
            Just(String::new()),
        ], 0..40)
    ) {
        let body = lines.join("\n");
        let _ = parse_page(&text_page(body.as_bytes()), &ParseOptions::default());
        for l in &lines {
            let _ = parse_ticker_line(l, &ParseOptions::default());
        }
    }
}
