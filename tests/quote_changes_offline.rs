//! Quote change detection without a broker: `pagesplit split` of the example page repeated, then
//! once with one quote moved, writes and counts only the quotes that changed with
//! `quotes.emit = "changed"`, and every quote with `"all"`.

mod common;

use common::pages::repeated_pages;

#[test]
fn offline_split_with_emit_changed_writes_and_counts_only_changed_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages.jsonl");
    let lines: Vec<String> = repeated_pages()
        .iter()
        .map(|page| {
            let envelope =
                pagesplit::envelope::encode_envelope(&page.url, page.fetched_at, &page.content_type, &page.body);
            String::from_utf8(envelope).unwrap()
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let split = |emit: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_pagesplit"))
            .args(["split", path.to_str().unwrap(), "--set", &format!("quotes.emit={emit}")])
            .env_remove("PAGESPLIT_CONFIG")
            .output()
            .expect("pagesplit split runs");
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let quotes: Vec<serde_json::Value> = stdout
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|event| event["type"] == "quote")
            .collect();
        (quotes, String::from_utf8(output.stderr).unwrap())
    };
    let (all, summary) = split("all");
    assert_eq!(all.len(), 34 * 6);
    assert!(
        summary.contains("pages=6 quotes=204 articles=6 errors=0 in "),
        "{summary}"
    );
    let (changed, summary) = split("changed");
    assert!(
        summary.contains("pages=6 quotes=35 articles=6 errors=0 unchanged_quotes=169 in "),
        "{summary}"
    );
    assert_eq!(changed.len(), 35);
    assert_eq!(changed[34]["symbol"], "AGL");
    assert_eq!(changed[34]["price"], "38.10");
}
