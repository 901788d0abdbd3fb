//! Security of the offline commands, run as a user runs them: `split` keeps control characters
//! from pages off the terminal, reads no more of a compressed input than its limit, and does not
//! write through symbolic links or over existing files unless told to.

use std::io::Write as _;
use std::process::{Command, Output};

fn split(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pagesplit"))
        .arg("split")
        .args(args)
        .env_remove("PAGESPLIT_CONFIG")
        .output()
        .expect("pagesplit split runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn control_characters_of_a_page_url_are_escaped_on_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages.jsonl");
    let envelope = pagesplit::envelope::encode_envelope(
        "https://example.com/\u{1b}[2J\u{1b}]0;owned\u{7}\nerror: forged",
        "2024-12-08T10:15:00Z".parse().unwrap(),
        "text/plain",
        &"AGL 37.94 Decreased By -0.54 (-1.4%)\n".repeat(10),
    );
    std::fs::write(&path, envelope).unwrap();
    // A page over parse.max_page_bytes fails, and the failure names its URL.
    let output = split(&[path.to_str().unwrap(), "--set", "parse.max_page_bytes=100"]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("page_too_large: https://example.com/\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\nerror: forged: "),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}') && !stderr.contains('\u{7}'), "{stderr:?}");
    assert!(!stderr.contains("\nerror: forged"), "{stderr}");
}

#[test]
fn a_gzip_bomb_is_refused_at_four_times_the_page_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.txt.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..64 {
        gz.write_all(&[b'a'; 1 << 20]).unwrap();
    }
    let bomb = gz.finish().unwrap();
    std::fs::write(&path, &bomb).unwrap();
    let output = split(&[path.to_str().unwrap(), "--set", "parse.max_page_bytes=65536"]);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: input_too_large: larger than 262144 bytes (4 × parse.max_page_bytes) and not JSON lines: not read",
            path.display()
        )),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn split_out_does_not_write_through_a_symbolic_link_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let page = format!(
        "{}/tests/fixtures/pages/brecorder-putin-assad.masked.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let target = dir.path().join("precious");
    std::fs::write(&target, "keep me").unwrap();
    let out = dir.path().join("events");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&target, out.join("quotes.avro")).unwrap();
    let out_arg = out.to_str().unwrap();
    let refused = split(&[&page, "--out", out_arg]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&format!(
            "{}/quotes.avro already exists or is a symbolic link; it is not replaced unless asked to (--force replaces it)",
            out.display()
        )),
        "{}",
        stderr(&refused)
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    let forced = split(&[&page, "--out", out_arg, "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert!(std::fs::symlink_metadata(out.join("quotes.avro")).unwrap().is_file());
}
