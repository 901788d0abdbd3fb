//! The `pagesplit` command line, run as a user runs it: `split` of files, directories and WARC
//! archives (JSON lines and Avro container files), `replay` → worker → `tail` against the real
//! broker and registry, failure messages and exit codes, help, completions, and the progress
//! display on a terminal and off it.
//!
//! Needs the local stack (`PAGESPLIT_TEST_BOOTSTRAP`, `PAGESPLIT_TEST_REGISTRY`), a Python with
//! fastavro (`PAGESPLIT_TEST_PYTHON`) and `script` from util-linux for a pseudo-terminal;
//! `make test` provides them all. Without them the tests fail: they never pass silently.
#![cfg(feature = "broker-tests")]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pagesplit::config::EncodingFormat;
use rust_decimal::Decimal;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

const TEXT_URL: &str = "https://www.brecorder.com/news/40336151/putin-assad";
const TEXT_FETCHED_AT: &str = "2024-12-08T10:15:00Z";
const HTML_URL: &str = "https://www.brecorder.com/news/40289114/cement-despatches";
const HTML_FETCHED_AT: &str = "2024-03-28T07:30:05Z";

/// Quotes of the HTML fixture, as tests/parse_pages.rs knows them.
const HTML_QUOTES: [[&str; 6]; 6] = [
    ["AGL", "STOCK", "37.94", "-0.54", "-1.4", "DOWN"],
    ["AIRLINK", "STOCK", "193.91", "-9.11", "-4.49", "DOWN"],
    ["BOP", "STOCK", "5.44", "0.00", "0", "UNCHANGED"],
    ["FFBL", "STOCK", "82.30", "1.20", "1.48", "UP"],
    ["BR100", "INDEX", "7454", "45.5", "0.61", "UP"],
    ["KSE100", "INDEX", "106275", "-4795.3", "-4.32", "DOWN"],
];

// ---------------------------------------------------------------------------------------------
// Running the binary

fn pagesplit() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pagesplit"));
    command.env_remove("PAGESPLIT_CONFIG").stdin(Stdio::null());
    command
}

/// Runs a command to its end, failing the test if it takes longer than `deadline`.
fn run(command: &mut Command, deadline: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let collect = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{command:?} did not finish within {deadline:?}; stderr so far: {}",
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_lines(stdout: &[u8]) -> Vec<Json> {
    text(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}")))
        .collect()
}

/// The `--set` flags that point the binary at the test broker and registry.
fn stack_flags() -> Vec<String> {
    vec![
        "--set".to_owned(),
        format!("kafka.bootstrap_servers={}", common::bootstrap()),
        "--set".to_owned(),
        format!("registry.url={}", common::registry_url()),
    ]
}

/// Runs a shell command line in a pseudo-terminal (`script` from util-linux); returns what the
/// terminal showed and the exit code.
fn in_terminal(command_line: &str, deadline: Duration) -> (String, i32) {
    let output = run(
        Command::new("script").args(["-qec", command_line, "/dev/null"]),
        deadline,
    );
    (text(&output.stdout), output.status.code().unwrap_or(-1))
}

fn script_available() {
    let found = Command::new("script").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "`script` from util-linux is needed for the terminal tests (apt-get install bsdutils)"
    );
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------------
// A WARC file made from the example pages

fn warc_record(warc_type: &str, target_uri: Option<&str>, date: &str, content_type: &str, block: &[u8]) -> Vec<u8> {
    static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut record = format!(
        "WARC/1.1\r\nWARC-Type: {warc_type}\r\nWARC-Record-ID: <urn:uuid:00000000-0000-4000-8000-{id:012}>\r\n\
         WARC-Date: {date}\r\n"
    );
    if let Some(uri) = target_uri {
        record.push_str(&format!("WARC-Target-URI: {uri}\r\n"));
    }
    record.push_str(&format!(
        "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        block.len()
    ));
    let mut record = record.into_bytes();
    record.extend_from_slice(block);
    record.extend_from_slice(b"\r\n\r\n");
    record
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// `Transfer-Encoding: chunked` of `body` in chunks of `size`.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

const HTTP_RESPONSE: &str = "application/http; msgtype=response";

/// The records of a crawl of the two example pages, as a crawler writes them: an info record,
/// requests, the text page as is, the HTML page chunked and gzip-compressed, a redirect, an
/// image and a metadata record.
fn crawl_records() -> Vec<Vec<u8>> {
    let text_page = common::fixture("pages/brecorder-putin-assad.masked.txt");
    let html_page = common::fixture("html/brecorder-article.html");
    let mut text_response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        text_page.len()
    )
    .into_bytes();
    text_response.extend_from_slice(text_page.as_bytes());
    let mut html_response = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\
        Transfer-Encoding: chunked\r\nContent-Encoding: gzip\r\nServer: test\r\n\r\n"
        .to_vec();
    html_response.extend_from_slice(&chunked(&gzip(html_page.as_bytes()), 700));
    vec![
        warc_record(
            "warcinfo",
            None,
            "2024-12-08T10:00:00Z",
            "application/warc-fields",
            b"software: test-crawler/1.0\r\nformat: WARC File Format 1.1\r\n",
        ),
        warc_record(
            "request",
            Some(TEXT_URL),
            TEXT_FETCHED_AT,
            "application/http; msgtype=request",
            b"GET /news/40336151/putin-assad HTTP/1.1\r\nHost: www.brecorder.com\r\n\r\n",
        ),
        warc_record(
            "response",
            Some(TEXT_URL),
            TEXT_FETCHED_AT,
            HTTP_RESPONSE,
            &text_response,
        ),
        warc_record(
            "response",
            Some("https://www.brecorder.com/news/old"),
            TEXT_FETCHED_AT,
            HTTP_RESPONSE,
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: /news/new\r\nContent-Length: 0\r\n\r\n",
        ),
        warc_record(
            "response",
            Some(HTML_URL),
            HTML_FETCHED_AT,
            HTTP_RESPONSE,
            &html_response,
        ),
        warc_record(
            "response",
            Some("https://www.brecorder.com/logo.png"),
            HTML_FETCHED_AT,
            HTTP_RESPONSE,
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 8\r\n\r\n\x89PNG\r\n\x1a\n",
        ),
        warc_record(
            "metadata",
            Some(HTML_URL),
            HTML_FETCHED_AT,
            "application/warc-fields",
            b"outlinks: https://www.brecorder.com/\r\n",
        ),
    ]
}

/// A record whose WARC-Date is not a date: unreadable.
fn broken_record() -> Vec<u8> {
    warc_record(
        "response",
        Some("https://www.brecorder.com/news/broken"),
        "last tuesday",
        HTTP_RESPONSE,
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nKSE100 1 Increased By 1 (1%)\n",
    )
}

/// Writes records as `.warc` (plain) or `.warc.gz` (one gzip member per record).
fn write_warc(path: &Path, records: &[Vec<u8>]) {
    let gzipped = path.to_string_lossy().ends_with(".gz");
    let bytes: Vec<u8> = records
        .iter()
        .flat_map(|record| if gzipped { gzip(record) } else { record.clone() })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

/// The quotes split from the crawl, in order: the text page's (tests/fixtures/…expected.json),
/// then the HTML page's.
fn expected_quotes() -> Vec<(String, [String; 6])> {
    let expected: Json =
        serde_json::from_str(&common::fixture("pages/brecorder-putin-assad.masked.expected.json")).unwrap();
    let mut rows: Vec<(String, [String; 6])> = expected["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let field = |name: &str| q[name].as_str().unwrap().to_owned();
            (
                TEXT_URL.to_owned(),
                [
                    field("symbol"),
                    field("kind"),
                    field("price"),
                    field("change"),
                    field("change_pct"),
                    field("direction"),
                ],
            )
        })
        .collect();
    rows.extend(
        HTML_QUOTES
            .iter()
            .map(|row| (HTML_URL.to_owned(), row.map(str::to_owned))),
    );
    rows
}

fn quote_row(event: &Json) -> (String, [String; 6]) {
    let field = |name: &str| {
        event[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {event}"))
            .to_owned()
    };
    (
        field("url"),
        [
            field("symbol"),
            field("kind"),
            field("price"),
            field("change"),
            field("change_pct"),
            field("direction"),
        ],
    )
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------------
// split

#[test]
fn split_of_a_warc_gives_exactly_the_pages_quotes_and_articles() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["crawl.warc", "crawl.warc.gz"] {
        let warc = dir.path().join(name);
        write_warc(&warc, &crawl_records());
        let output = run(pagesplit().arg("split").arg(&warc), Duration::from_secs(60));
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        let events = json_lines(&output.stdout);
        let (quotes, articles): (Vec<&Json>, Vec<&Json>) = events.iter().partition(|e| e["type"] == "quote");
        assert_eq!(
            quotes.iter().map(|q| quote_row(q)).collect::<Vec<_>>(),
            expected_quotes(),
            "{name}"
        );
        for quote in &quotes {
            // Field names and order are the Avro schema's; decimals are strings as printed.
            let keys: Vec<&str> = quote.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "type",
                    "event_id",
                    "symbol",
                    "kind",
                    "price",
                    "change",
                    "change_pct",
                    "direction",
                    "url",
                    "fetched_at"
                ]
            );
            let url = quote["url"].as_str().unwrap();
            let fetched_at = time(if url == TEXT_URL {
                TEXT_FETCHED_AT
            } else {
                HTML_FETCHED_AT
            });
            assert_eq!(time(quote["fetched_at"].as_str().unwrap()), fetched_at);
            assert_eq!(
                quote["event_id"],
                pagesplit::model::event_id(url, fetched_at, quote["symbol"].as_str().unwrap()).to_string()
            );
        }
        assert_eq!(articles.len(), 2);
        assert_eq!(articles[0]["url"], TEXT_URL);
        assert_eq!(articles[0]["dateline"], "MOSCOW");
        assert_eq!(articles[0]["paragraphs"].as_array().unwrap().len(), 13);
        assert_eq!(articles[1]["url"], HTML_URL);
        assert_eq!(articles[1]["title"], "Cement despatches climb on northern demand");
        assert_eq!(articles[1]["byline"], "Recorder Report");
        assert_eq!(articles[1]["related_headlines"][0], "Coal prices ease for third week");
        let summary = stderr.lines().last().unwrap();
        assert!(
            summary.starts_with(
                "pages=2 quotes=40 articles=2 errors=0 skipped=5 http_status_not_2xx=1 not_a_response=3 not_text_or_html=1 in "
            ),
            "{name}: {summary}"
        );
    }
}

#[test]
fn unreadable_warc_records_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let warc = dir.path().join("broken.warc.gz");
    let mut records = crawl_records();
    records.insert(3, broken_record());
    write_warc(&warc, &records);
    let output = run(pagesplit().arg("split").arg(&warc), Duration::from_secs(60));
    let stderr = text(&output.stderr);
    // Every readable page is split; the broken record is reported, counted and makes the exit 1.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(json_lines(&output.stdout).len(), 42, "{stderr}");
    assert!(
        stderr.contains(
            "broken.warc.gz: warc_unreadable_record: unreadable WARC record: record 4: malformed WARC header warc-date"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("pages=3 quotes=40 articles=2 errors=1 warc_unreadable_record=1 skipped=5"),
        "{stderr}"
    );
}

#[test]
fn split_takes_files_directories_envelopes_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    std::fs::create_dir_all(pages.join("nested")).unwrap();
    std::fs::write(
        pages.join("a.txt"),
        common::fixture("pages/brecorder-putin-assad.masked.txt"),
    )
    .unwrap();
    std::fs::write(
        pages.join("nested/b.html"),
        common::fixture("html/brecorder-article.html"),
    )
    .unwrap();
    std::fs::write(pages.join("README.md"), "# not a page\n").unwrap();
    let envelope = |url: &str, body: &str| {
        String::from_utf8(pagesplit::envelope::encode_envelope(
            url,
            time(TEXT_FETCHED_AT),
            "text/plain",
            body,
        ))
        .unwrap()
    };
    std::fs::write(
        pages.join("nested/c.jsonl"),
        format!(
            "{}\n{}\n",
            envelope(
                "https://x.example/1",
                "KSE100 106,275.10 Increased By ▲ 5.5 (0.01%)\nKARACHI: Shares rose."
            ),
            envelope(
                "https://x.example/2",
                "BR30 34,972 Decreased By ▼ -1.1 (-0.1%)\nLAHORE: Shares fell."
            ),
        ),
    )
    .unwrap();
    write_warc(&pages.join("nested/crawl.warc"), &crawl_records());
    let output = run(
        pagesplit()
            .arg("split")
            .arg(&pages)
            .args(["--fetched-at", TEXT_FETCHED_AT]),
        Duration::from_secs(60),
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("pages=6 quotes=82 articles=6 errors=0"), "{stderr}");
    let events = json_lines(&output.stdout);
    let kse = events
        .iter()
        .find(|e| e["url"] == "https://x.example/1" && e["type"] == "quote")
        .unwrap();
    assert_eq!(kse["price"], "106275.10");

    let mut child = pagesplit()
        .arg("split")
        .args(["--url", "https://stdin.example/p", "--fetched-at", TEXT_FETCHED_AT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(common::fixture("pages/brecorder-putin-assad.masked.txt").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let events = json_lines(&output.stdout);
    assert_eq!(events.len(), 35);
    assert_eq!(events[0]["url"], "https://stdin.example/p");
}

#[test]
fn split_into_a_closed_pipe_stops_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let body = common::fixture("pages/brecorder-putin-assad.masked.txt");
    for n in 0..100 {
        std::fs::write(dir.path().join(format!("page-{n:03}.txt")), &body).unwrap();
    }
    let mut child = pagesplit()
        .arg("split")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with(r#"{"type":"quote""#), "{first}");
    // The reader is gone (like `| head -1`): no error, exit 0.
    let status = wait_with_deadline(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn split_out_writes_avro_container_files_that_avro_readers_read() {
    let python = std::env::var("PAGESPLIT_TEST_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "PAGESPLIT_TEST_PYTHON is not set: run `make test`, which creates the Python venv \
                 (.local/venv, from tests/python/requirements.txt, with fastavro) and points \
                 PAGESPLIT_TEST_PYTHON at it"
            )
        });
    let dir = tempfile::tempdir().unwrap();
    let warc = dir.path().join("crawl.warc.gz");
    write_warc(&warc, &crawl_records());
    let out = dir.path().join("events");
    let output = run(
        pagesplit().arg("split").arg(&warc).arg("--out").arg(&out),
        Duration::from_secs(60),
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout with --out");
    assert!(stderr.contains("wrote 40 quotes to"), "{stderr}");
    let json = run(pagesplit().arg("split").arg(&warc), Duration::from_secs(60));
    let json_events = json_lines(&json.stdout);

    // apache-avro's Reader: the writer schema is the bundled one, the values are the events.
    let schemas = pagesplit::encode::Schemas::bundled();
    for (file, schema, kind) in [
        ("quotes.avro", &schemas.quote, "quote"),
        ("articles.avro", &schemas.article, "article"),
    ] {
        let reader = apache_avro::Reader::new(std::fs::File::open(out.join(file)).unwrap()).unwrap();
        assert_eq!(reader.writer_schema(), schema, "{file}");
        let read: Vec<Json> = reader
            .map(|value| pagesplit::encode::value_to_json(&value.unwrap()))
            .collect();
        let expected: Vec<&Json> = json_events.iter().filter(|e| e["type"] == kind).collect();
        assert_eq!(read.len(), expected.len(), "{file}");
        for (got, want) in read.iter().zip(expected) {
            assert_same_event(got, want);
        }
    }

    // fastavro, with no code of ours: decimals come back as decimal.Decimal, times as datetime.
    let script = r#"
import json, sys, fastavro
for name in sys.argv[1:]:
    with open(name, "rb") as f:
        reader = fastavro.reader(f)
        for record in reader:
            print(json.dumps({k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if type(v).__name__ == "Decimal" else v) for k, v in record.items()}))
"#;
    let output = run(
        Command::new(&python)
            .arg("-c")
            .arg(script)
            .arg(out.join("quotes.avro"))
            .arg(out.join("articles.avro")),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "fastavro: {}", text(&output.stderr));
    let read = json_lines(&output.stdout);
    assert_eq!(read.len(), json_events.len());
    let mut expected: Vec<&Json> = json_events.iter().filter(|e| e["type"] == "quote").collect();
    expected.extend(json_events.iter().filter(|e| e["type"] == "article"));
    for (got, want) in read.iter().zip(expected) {
        assert_same_event(got, want);
    }
}

/// The same event, up to how decimals (`82.30` / `82.3` / `82.300000`) and times are spelled.
fn assert_same_event(got: &Json, want: &Json) {
    let want = want.as_object().unwrap();
    for (key, want_value) in want.iter().filter(|(key, _)| *key != "type") {
        let got_value = &got[key];
        match key.as_str() {
            "price" | "change" | "change_pct" => assert_eq!(
                Decimal::from_str(got_value.as_str().unwrap()).unwrap(),
                Decimal::from_str(want_value.as_str().unwrap()).unwrap(),
                "{key} of {got}"
            ),
            "fetched_at" | "published_at" if !want_value.is_null() => assert_eq!(
                time(got_value.as_str().unwrap()),
                time(want_value.as_str().unwrap()),
                "{key} of {got}"
            ),
            _ => assert_eq!(got_value, want_value, "{key} of {got}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// replay → run → tail

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_then_run_then_tail_shows_what_split_shows() {
    script_available();
    let config = common::test_config("cli-roundtrip", EncodingFormat::Confluent);
    let dir = tempfile::tempdir().unwrap();
    let warc = dir.path().join("crawl.warc.gz");
    write_warc(&warc, &crawl_records());
    let split = run(pagesplit().arg("split").arg(&warc), Duration::from_secs(60));
    assert!(split.status.success(), "{}", text(&split.stderr));
    let split_events = json_lines(&split.stdout);

    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone())
        .await
        .expect("worker starts");

    // Follow the quotes topic from its end before anything is published; it must print what
    // comes and stop on Ctrl-C.
    let mut follower = pagesplit()
        .args(["tail", "--topic", &config.topics.quotes])
        .args(stack_flags())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let follower_lines = lines_of(follower.stdout.take().unwrap());
    let follower_errors = lines_of(follower.stderr.take().unwrap());
    let ready = receive_until(&follower_errors, Duration::from_secs(30), |line| {
        line.contains("from its end")
    });
    assert!(ready.is_some(), "tail never said it was reading");

    // Replay in a pseudo-terminal: the progress bar shows, the counts are printed at the end.
    let mut replay = vec![
        env!("CARGO_BIN_EXE_pagesplit").to_owned(),
        "replay".to_owned(),
        warc.display().to_string(),
        "--topic".to_owned(),
        config.topics.input.clone(),
        "--rate".to_owned(),
        "5".to_owned(),
    ];
    replay.extend(stack_flags());
    let line = replay.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
    let (terminal, code) = in_terminal(&line, Duration::from_secs(60));
    assert_eq!(code, 0, "{terminal}");
    assert!(
        terminal.contains("replay ["),
        "no progress bar on the terminal: {terminal:?}"
    );
    assert!(terminal.contains("ETA"), "{terminal:?}");
    assert!(
        terminal.contains(&format!(
            "replay to `{}` at {}: pages=2 sent=2 acknowledged=2 failed=0 errors=0 skipped=5",
            config.topics.input,
            common::bootstrap()
        )),
        "{terminal:?}"
    );

    // The binary's tail from the beginning: the same quotes and articles as split printed.
    for (topic, kind, count) in [
        (&config.topics.quotes, "quote", 40),
        (&config.topics.articles, "article", 2),
    ] {
        let output = run(
            pagesplit()
                .args(["tail", "--topic", topic, "--from-beginning", "--metadata", "-n"])
                .arg(count.to_string())
                .args(stack_flags()),
            Duration::from_secs(120),
        );
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("{count} events printed, 0 records not decodable")),
            "{stderr}"
        );
        let tailed = json_lines(&output.stdout);
        let expected: BTreeMap<String, &Json> = split_events
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| (e["event_id"].as_str().unwrap().to_owned(), e))
            .collect();
        assert_eq!(tailed.len(), expected.len());
        for event in &tailed {
            assert_eq!(event["type"], kind);
            assert_eq!(event["topic"], topic.as_str());
            let want = expected
                .get(event["event_id"].as_str().unwrap())
                .unwrap_or_else(|| panic!("unexpected event {event}"));
            assert_same_event(event, want);
            let key = if kind == "quote" {
                &event["symbol"]
            } else {
                &event["url"]
            };
            assert_eq!(&event["key"], key);
        }
    }

    // The follower saw the 40 quotes as they came; Ctrl-C ends it with exit 0.
    let mut followed = Vec::new();
    while followed.len() < 40 {
        match receive_until(&follower_lines, Duration::from_secs(30), |_| true) {
            Some(line) => followed.push(serde_json::from_str::<Json>(&line).unwrap()),
            None => panic!("the follower printed {} of 40 quotes", followed.len()),
        }
    }
    assert!(followed.iter().all(|e| e["type"] == "quote"));
    let interrupted = Command::new("kill")
        .args(["-INT", &follower.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = wait_with_deadline(&mut follower, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));
    let last = receive_until(&follower_errors, Duration::from_secs(10), |line| {
        line.contains("events printed")
    });
    assert!(last.is_some_and(|line| line.contains("40 events printed")));

    shutdown.cancel();
    running.wait().await.expect("worker stops cleanly");
    common::delete_topics(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tail_decodes_single_object_events_without_the_registry() {
    let config = common::test_config("cli-single-object", EncodingFormat::SingleObject);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.txt");
    std::fs::write(&page, common::fixture("pages/brecorder-putin-assad.masked.txt")).unwrap();
    let shutdown = CancellationToken::new();
    let running = pagesplit::app::start(config.clone(), shutdown.clone())
        .await
        .expect("worker starts");
    let replay = run(
        pagesplit()
            .arg("replay")
            .arg(&page)
            .args([
                "--topic",
                &config.topics.input,
                "--url",
                TEXT_URL,
                "--fetched-at",
                TEXT_FETCHED_AT,
            ])
            .args(["--set", &format!("kafka.bootstrap_servers={}", common::bootstrap())]),
        Duration::from_secs(60),
    );
    let stderr = text(&replay.stderr);
    assert!(replay.status.success(), "{stderr}");
    // Not a terminal: no bar, no terminal control characters.
    assert!(!stderr.contains('\u{1b}') && !stderr.contains('\r'), "{stderr:?}");
    assert!(stderr.contains("pages=1 sent=1 acknowledged=1"), "{stderr}");

    let output = run(
        pagesplit()
            .args([
                "tail",
                "--topic",
                &config.topics.articles,
                "--from-beginning",
                "--metadata",
                "-n",
                "1",
            ])
            // No registry is reachable here: single-object events do not need one.
            .args(["--set", &format!("kafka.bootstrap_servers={}", common::bootstrap())])
            .args(["--set", "registry.url=http://127.0.0.1:9/none"]),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let events = json_lines(&output.stdout);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "article");
    assert_eq!(events[0]["url"], TEXT_URL);
    assert_eq!(events[0]["dateline"], "MOSCOW");
    // The article names the raw page it came from (its key is the URL).
    let headers = &events[0]["headers"];
    assert_eq!(headers["pagesplit.source.topic"], config.topics.input.as_str());
    let input = pagesplit::demo::end_offsets(&common::bootstrap(), &config.topics.input).unwrap();
    let (partition, _) = input.iter().find(|(_, end)| **end == 1).expect("the page's partition");
    assert_eq!(headers["pagesplit.source.partition"], partition.to_string());
    assert_eq!(headers["pagesplit.source.offset"], "0");
    assert_eq!(headers["pagesplit.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(headers.get("pagesplit.source.url"), None);
    assert_eq!(
        events[0]["event_id"],
        pagesplit::model::event_id(TEXT_URL, time(TEXT_FETCHED_AT), "article").to_string()
    );

    shutdown.cancel();
    running.wait().await.expect("worker stops cleanly");
    common::delete_topics(&config).await;
}

/// Lines of a pipe, as they come.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The first line that `wanted` accepts, within `deadline`.
fn receive_until(
    lines: &std::sync::mpsc::Receiver<String>,
    deadline: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Option<String> {
    let until = Instant::now() + deadline;
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return Some(line),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

fn wait_with_deadline(child: &mut std::process::Child, deadline: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Failures, exit codes, help, completions, progress

#[test]
fn failures_have_clear_messages_and_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.txt");
    std::fs::write(&page, common::fixture("pages/brecorder-putin-assad.masked.txt")).unwrap();

    // A missing input is a usage error: 2.
    for command in ["split", "replay"] {
        let output = run(
            pagesplit().arg(command).arg(dir.path().join("missing.warc")),
            Duration::from_secs(30),
        );
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(
            text(&output.stderr).contains(&format!(
                "input `{}` does not exist",
                dir.path().join("missing.warc").display()
            )),
            "{}",
            text(&output.stderr)
        );
    }
    // Bad flags and bad configuration: 2.
    assert_eq!(
        run(pagesplit().args(["replay", "--rate", "0"]), Duration::from_secs(30))
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(
            pagesplit().args(["tail", "--set", "kafka.nonsense=1"]),
            Duration::from_secs(30)
        )
        .status
        .code(),
        Some(2)
    );

    // An unreachable broker: 1, after --timeout, naming the bootstrap servers.
    for command in [vec!["replay", page.to_str().unwrap()], vec!["tail"]] {
        let started = Instant::now();
        let output = run(
            pagesplit()
                .args(&command)
                .args(["--timeout", "2", "--set", "kafka.bootstrap_servers=127.0.0.1:1"]),
            Duration::from_secs(30),
        );
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(
            stderr.contains("cannot reach Kafka at 127.0.0.1:1 within 2 s"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "only the error: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{command:?} took {:?}",
            started.elapsed()
        );
    }

    // An unknown topic: 1, naming it.
    let topic = common::unique("cli.no-such-topic");
    for command in [vec!["replay", page.to_str().unwrap()], vec!["tail"]] {
        let output = run(
            pagesplit().args(&command).args([
                "--topic",
                &topic,
                "--set",
                &format!("kafka.bootstrap_servers={}", common::bootstrap()),
            ]),
            Duration::from_secs(60),
        );
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(
            stderr.contains(&format!("topic `{topic}` does not exist at {}", common::bootstrap())),
            "{stderr}"
        );
    }
}

#[test]
fn every_command_has_help_with_an_example_and_completions_generate() {
    for command in [
        vec![],
        vec!["run"],
        vec!["split"],
        vec!["replay"],
        vec!["tail"],
        vec!["demo"],
        vec!["config", "check"],
        vec!["schemas", "print"],
        vec!["schemas", "check"],
        vec!["dlq", "replay"],
        vec!["healthcheck"],
        vec!["completions"],
    ] {
        let output = run(pagesplit().args(&command).arg("--help"), Duration::from_secs(30));
        let help = text(&output.stdout);
        assert!(output.status.success(), "{command:?}");
        assert!(
            help.contains("Example"),
            "`pagesplit {}` --help has no example:\n{help}",
            command.join(" ")
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let output = run(pagesplit().args(["completions", shell]), Duration::from_secs(30));
        assert!(output.status.success(), "{shell}");
        let script = text(&output.stdout);
        for word in ["pagesplit", "split", "replay", "tail", "from-beginning"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bash = dir.path().join("pagesplit.bash");
    std::fs::write(
        &bash,
        run(pagesplit().args(["completions", "bash"]), Duration::from_secs(30)).stdout,
    )
    .unwrap();
    let syntax = run(Command::new("bash").arg("-n").arg(&bash), Duration::from_secs(30));
    assert!(syntax.status.success(), "{}", text(&syntax.stderr));
    assert_eq!(
        run(pagesplit().args(["completions", "tcsh"]), Duration::from_secs(30))
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn progress_is_a_bar_on_a_terminal_and_log_lines_elsewhere() {
    script_available();
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("pages");
    std::fs::create_dir(&pages).unwrap();
    let body = common::fixture("pages/brecorder-putin-assad.masked.txt");
    for n in 0..200 {
        std::fs::write(pages.join(format!("page-{n:03}.txt")), &body).unwrap();
    }
    let events = dir.path().join("events.jsonl");

    // On a terminal: a bar on stderr (stdout goes to a file).
    let line = format!(
        "{} split {} > {}",
        shell_quote(env!("CARGO_BIN_EXE_pagesplit")),
        shell_quote(&pages.display().to_string()),
        shell_quote(&events.display().to_string())
    );
    let (terminal, code) = in_terminal(&line, Duration::from_secs(120));
    assert_eq!(code, 0, "{terminal}");
    assert!(terminal.contains("split ["), "no bar: {terminal:?}");
    assert!(terminal.contains("ETA"), "{terminal:?}");
    assert!(
        terminal.contains("pages=200 quotes=6800 articles=200 errors=0"),
        "{terminal:?}"
    );
    assert_eq!(std::fs::read_to_string(&events).unwrap().lines().count(), 7000);

    // Not a terminal: no bar, no control characters; log lines at the interval asked for.
    let output = run(
        pagesplit()
            .arg("split")
            .arg(&pages)
            .args(["--progress-interval", "0.001"]),
        Duration::from_secs(120),
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains('\u{1b}') && !stderr.contains('\r'), "{stderr:?}");
    assert!(!stderr.contains("split ["), "{stderr}");
    let logged: Vec<&str> = stderr.lines().filter(|line| line.starts_with("split: ")).collect();
    assert!(!logged.is_empty(), "no progress lines: {stderr}");
    assert!(
        logged
            .iter()
            .all(|line| line.contains(" pages, ") && line.contains("/s, ") && line.contains("% done")),
        "{logged:?}"
    );

    // And none by default for a run this short.
    let output = run(pagesplit().arg("split").arg(&pages), Duration::from_secs(120));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("pages=200 "), "{stderr}");
}

#[test]
fn logs_are_coloured_only_on_a_terminal_without_no_color() {
    script_available();
    // The worker logs its configuration, then fails at once: the registry does not answer and
    // may not be waited for.
    let arguments = [
        "run",
        "--set",
        "registry.url=http://127.0.0.1:9",
        "--set",
        "registry.startup_timeout_ms=1",
        "--set",
        "kafka.bootstrap_servers=127.0.0.1:1",
    ];
    let logged = |output: &str| output.contains("effective configuration");

    // Piped (CI, files, `kubectl logs`): no escape codes.
    let output = run(
        pagesplit().args(arguments).env_remove("NO_COLOR"),
        Duration::from_secs(60),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(logged(&stderr), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");

    // JSON logs are JSON, one object a line.
    let output = run(
        pagesplit().args(arguments).args(["--set", "log.format=json"]),
        Duration::from_secs(60),
    );
    let first = text(&output.stderr).lines().next().unwrap_or_default().to_owned();
    let line: Json = serde_json::from_str(&first).unwrap_or_else(|e| panic!("not JSON: {first}: {e}"));
    assert_eq!(line["message"], "effective configuration", "{first}");

    // On a terminal: coloured, unless NO_COLOR is set.
    let command_line = std::iter::once(env!("CARGO_BIN_EXE_pagesplit"))
        .chain(arguments)
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let (terminal, _) = in_terminal(&format!("env -u NO_COLOR {command_line}"), Duration::from_secs(60));
    assert!(logged(&terminal) && terminal.contains('\u{1b}'), "{terminal:?}");
    let (terminal, _) = in_terminal(&format!("env NO_COLOR=1 {command_line}"), Duration::from_secs(60));
    assert!(logged(&terminal), "{terminal:?}");
    assert!(!terminal.contains('\u{1b}'), "{terminal:?}");
}
