//! HTML pages.
use super::{ArticleParts, ParseOptions, QuoteCollector};

pub(crate) fn nesting_depth_exceeds(_html: &str, _limit: usize) -> bool {
    false
}

pub(crate) fn sniff_meta_charset(_body: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    None
}

pub(crate) fn parse_html(_html: &str, _options: &ParseOptions, _quotes: &mut QuoteCollector<'_>) -> ArticleParts {
    ArticleParts::default()
}
