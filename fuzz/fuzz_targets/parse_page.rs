//! Fuzzes `pagesplit::parse::parse_page` (text and HTML pages, all charset paths) and
//! `parse_ticker_line`.
//!
//! Input: first byte = selector (bit 0: HTML instead of text; bits 1-4: charset, see
//! `pagesplit_fuzz::CHARSETS`), the rest = page body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pagesplit_fuzz::{check_page, check_ticker_line, options, page_from_input};

fuzz_target!(|data: &[u8]| {
    let Some(page) = page_from_input(data) else {
        return;
    };
    let options = options();
    check_page(&page, &options);
    // Short bodies are also read directly as ticker lines, line by line.
    if page.body.len() <= 1024 {
        if let Ok(text) = std::str::from_utf8(&page.body) {
            for line in text.split('\n') {
                check_ticker_line(line, &options);
            }
        }
    }
});
