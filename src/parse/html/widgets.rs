//! Ticker quotes from HTML widgets: any visible block outside comment sections whose text (or
//! its text with a space at every inline element boundary) is a ticker line.

use super::walk::Walker;
use crate::parse::ticker;
use crate::parse::{ParseOptions, QuoteCollector};

/// Pushes the quote of every ticker block to `quotes` and marks the block used.
pub(crate) fn read_quotes(w: &mut Walker, options: &ParseOptions, quotes: &mut QuoteCollector<'_>) {
    for b in w.blocks.iter_mut() {
        if b.state.comments || !ticker::may_be_ticker(&b.text) {
            continue;
        }
        let line =
            ticker::parse_ticker_line(&b.text, options).or_else(|| ticker::parse_ticker_line(&b.spaced, options));
        if let Some(t) = line {
            quotes.push(&t);
            b.used = true;
        }
    }
}
