//! Pure: quote change detection (`quotes.emit = "changed"`).
//!
//! Every page of a site repeats the same ticker strip, so consecutive pages carry mostly the same
//! quotes. [`QuoteFilter`] remembers, per symbol, the last quote value this worker handed to the
//! producer and says whether a new quote differs from it (price, change, change %, direction).
//! Numbers compare as decimals: `82.30` equals `82.3`.
//!
//! Memory is bounded: at most `max_symbols` symbols are tracked. When the table is full and a new
//! symbol arrives, the half of the symbols seen least recently is forgotten (amortised O(1) per
//! quote); a forgotten symbol's next quote is published. The state lives in memory only: after a
//! restart every symbol's first quote is published again.
//!
//! The filter only ever errs towards publishing: a symbol that is unknown, forgotten or evicted
//! is published. For transactions, [`QuoteFilter::begin`] starts a journal of the changes that
//! [`QuoteFilter::rollback`] undoes (the transaction was aborted: its quotes were never
//! published) and [`QuoteFilter::commit`] keeps.
//!
//! A worker has up to two filters ([`ChangeFilters`]), each remembering what it published to its
//! own topic: the quote topic's (`quotes.emit = "changed"`) and the latest-quote topic's (always,
//! when that topic is on: a compacted topic of current quotes needs a record only when a
//! symbol's quote changes). The latest-quote topic's filter also leaves out a quote whose page
//! was fetched before the page of the quote it last published for the symbol
//! ([`QuoteFilter::admit_newer`]): partitions are consumed side by side, and an older page
//! consumed later must not replace a newer current quote.

use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::model::{Direction, Quote};

/// What is compared between two quotes of one symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteValue {
    /// Last price or index level.
    pub price: Decimal,
    /// Absolute change.
    pub change: Decimal,
    /// Change in percent.
    pub change_pct: Decimal,
    /// Direction as the ticker's words say it.
    pub direction: Direction,
}

impl QuoteValue {
    /// The compared part of a quote.
    pub fn of(quote: &Quote) -> Self {
        Self {
            price: quote.price,
            change: quote.change,
            change_pct: quote.change_pct,
            direction: quote.direction,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    value: QuoteValue,
    /// When the page of the published value was fetched (Unix ms; `i64::MIN` when not compared).
    observed: i64,
    /// Logical time of the last quote of the symbol, for eviction.
    seen: u64,
}

/// A symbol's last published value and the fetch time of its page, as a journal keeps it.
type Published = (QuoteValue, i64);

/// Per-symbol last published quote values, bounded; see the module documentation.
#[derive(Debug)]
pub struct QuoteFilter {
    max_symbols: usize,
    entries: HashMap<Box<str>, Entry>,
    clock: u64,
    /// While a transaction is open: each change, with the symbol's value before it.
    journal: Option<Vec<(Box<str>, Option<Published>)>>,
    evicted: u64,
}

impl QuoteFilter {
    /// A filter tracking at most `max_symbols` symbols (at least 1).
    pub fn new(max_symbols: usize) -> Self {
        Self {
            max_symbols: max_symbols.max(1),
            entries: HashMap::new(),
            clock: 0,
            journal: None,
            evicted: 0,
        }
    }

    /// Whether the quote `value` of `symbol` is to be published: `true` when the symbol is not
    /// tracked or its last published value differs, and the value is then recorded as published;
    /// `false` when it equals the last published value.
    pub fn admit(&mut self, symbol: &str, value: QuoteValue) -> bool {
        self.admit_observed(symbol, value, None)
    }

    /// As [`admit`](Self::admit), and `false` as well for a quote observed (its page fetched,
    /// Unix ms) before the one last published: for a topic of current quotes, where an older
    /// page consumed later (partitions are consumed side by side) must not replace a newer quote.
    pub fn admit_newer(&mut self, symbol: &str, value: QuoteValue, observed_ms: i64) -> bool {
        self.admit_observed(symbol, value, Some(observed_ms))
    }

    fn admit_observed(&mut self, symbol: &str, value: QuoteValue, observed: Option<i64>) -> bool {
        self.clock += 1;
        if let Some(entry) = self.entries.get_mut(symbol) {
            entry.seen = self.clock;
            if entry.value == value {
                // The published quote still held when this page was fetched.
                entry.observed = entry.observed.max(observed.unwrap_or(i64::MIN));
                return false;
            }
            if observed.is_some_and(|observed| observed < entry.observed) {
                return false;
            }
            let before = (entry.value, entry.observed);
            entry.value = value;
            entry.observed = observed.unwrap_or(i64::MIN);
            if let Some(journal) = &mut self.journal {
                journal.push((symbol.into(), Some(before)));
            }
            return true;
        }
        if self.entries.len() >= self.max_symbols {
            self.evict_least_recently_seen_half();
        }
        if let Some(journal) = &mut self.journal {
            journal.push((symbol.into(), None));
        }
        self.entries.insert(
            symbol.into(),
            Entry {
                value,
                observed: observed.unwrap_or(i64::MIN),
                seen: self.clock,
            },
        );
        true
    }

    /// Forgets a symbol: its next quote is published whatever its value (its last one was not
    /// delivered after all).
    pub fn forget(&mut self, symbol: &str) {
        if let Some(entry) = self.entries.remove(symbol) {
            if let Some(journal) = &mut self.journal {
                journal.push((symbol.into(), Some((entry.value, entry.observed))));
            }
        }
    }

    /// Starts journaling changes (a transaction opened). A journal already open is kept.
    pub fn begin(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// Keeps the changes since [`begin`](Self::begin) (the transaction committed).
    pub fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes the changes since [`begin`](Self::begin) (the transaction was aborted), newest
    /// first. Symbols evicted meanwhile stay forgotten.
    pub fn rollback(&mut self) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        for (symbol, before) in journal.into_iter().rev() {
            match before {
                Some((value, observed)) => {
                    let seen = self.entries.get(&symbol).map_or(self.clock, |entry| entry.seen);
                    self.entries.insert(symbol, Entry { value, observed, seen });
                }
                None => {
                    self.entries.remove(&symbol);
                }
            }
        }
    }

    /// Symbols tracked now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no symbol is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Symbols evicted so far because the table was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Drops the half (rounded up) of the entries whose last quote is the oldest. Every entry has
    /// a distinct `seen`, so exactly that many go.
    fn evict_least_recently_seen_half(&mut self) {
        let mut seen: Vec<u64> = self.entries.values().map(|entry| entry.seen).collect();
        if seen.is_empty() {
            return;
        }
        let drop = seen.len().div_ceil(2);
        let (_, cutoff, _) = seen.select_nth_unstable(drop - 1);
        let cutoff = *cutoff;
        self.entries.retain(|_, entry| entry.seen > cutoff);
        self.evicted += drop as u64;
    }
}

/// The change filters of a worker, kept together (one lock, one journal per transaction).
#[derive(Debug, Default)]
pub struct ChangeFilters {
    /// What was published to the quote topic, with `quotes.emit = "changed"`.
    pub quotes: Option<QuoteFilter>,
    /// What was published to the latest-quote topic, when it is on.
    pub latest: Option<QuoteFilter>,
}

impl ChangeFilters {
    /// Whether neither filter is on.
    pub fn is_off(&self) -> bool {
        self.quotes.is_none() && self.latest.is_none()
    }

    fn each(&mut self) -> impl Iterator<Item = &mut QuoteFilter> {
        self.quotes.iter_mut().chain(self.latest.iter_mut())
    }

    /// [`QuoteFilter::begin`] on each.
    pub fn begin(&mut self) {
        self.each().for_each(QuoteFilter::begin);
    }

    /// [`QuoteFilter::commit`] on each.
    pub fn commit(&mut self) {
        self.each().for_each(QuoteFilter::commit);
    }

    /// [`QuoteFilter::rollback`] on each.
    pub fn rollback(&mut self) {
        self.each().for_each(QuoteFilter::rollback);
    }

    /// [`QuoteFilter::forget`] on each: the symbol's next quotes go to both topics.
    pub fn forget(&mut self, symbol: &str) {
        self.each().for_each(|filter| filter.forget(symbol));
    }

    /// Symbols tracked, both filters together.
    pub fn tracked(&self) -> usize {
        self.quotes.iter().chain(&self.latest).map(QuoteFilter::len).sum()
    }

    /// Symbols evicted so far, both filters together.
    pub fn evicted(&self) -> u64 {
        self.quotes.iter().chain(&self.latest).map(QuoteFilter::evicted).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn value(price: &str, change: &str, change_pct: &str, direction: Direction) -> QuoteValue {
        QuoteValue {
            price: Decimal::from_str(price).unwrap(),
            change: Decimal::from_str(change).unwrap(),
            change_pct: Decimal::from_str(change_pct).unwrap(),
            direction,
        }
    }

    fn agl(price: &str) -> QuoteValue {
        value(price, "-0.54", "-1.4", Direction::Down)
    }

    #[test]
    fn the_first_quote_of_a_symbol_is_published_and_an_identical_one_is_not() {
        let mut filter = QuoteFilter::new(10);
        assert!(filter.admit("AGL", agl("37.94")));
        assert!(!filter.admit("AGL", agl("37.94")));
        assert!(!filter.admit("AGL", agl("37.940")), "decimals compare by value");
        assert!(filter.admit("KSE100", agl("37.94")), "symbols are tracked separately");
        assert_eq!(filter.len(), 2);
    }

    #[test]
    fn a_changed_price_change_percent_or_direction_is_published() {
        let mut filter = QuoteFilter::new(10);
        assert!(filter.admit("AGL", agl("37.94")));
        assert!(filter.admit("AGL", agl("38.00")));
        assert!(!filter.admit("AGL", agl("38.00")));
        assert!(filter.admit("AGL", value("38.00", "-0.60", "-1.4", Direction::Down)));
        assert!(filter.admit("AGL", value("38.00", "-0.60", "-1.5", Direction::Down)));
        // The same numbers, but the words now say "No Change".
        assert!(filter.admit("AGL", value("38.00", "-0.60", "-1.5", Direction::Unchanged)));
        assert!(!filter.admit("AGL", value("38.00", "-0.60", "-1.5", Direction::Unchanged)));
        // Back to an earlier value: it differs from the last one published.
        assert!(filter.admit("AGL", agl("37.94")));
    }

    #[test]
    fn a_quote_of_a_page_fetched_before_the_last_published_one_is_left_out() {
        let mut filter = QuoteFilter::new(10);
        assert!(filter.admit_newer("AGL", agl("37.94"), 2_000));
        assert!(
            !filter.admit_newer("AGL", agl("37.50"), 1_999),
            "older page, other value"
        );
        assert!(
            filter.admit_newer("AGL", agl("37.50"), 2_000),
            "same fetch time, other value"
        );
        assert!(
            !filter.admit_newer("AGL", agl("37.50"), 3_000),
            "newer page, same value"
        );
        assert!(
            !filter.admit_newer("AGL", agl("37.94"), 2_500),
            "37.50 still held on the page fetched at 3,000"
        );
        assert!(filter.admit_newer("AGL", agl("37.94"), 3_000));
        assert!(
            filter.admit_newer("KSE100", agl("37.94"), 1),
            "symbols are tracked separately"
        );
    }

    #[test]
    fn an_aborted_transaction_restores_the_fetch_time_of_the_last_published_quote() {
        let mut filter = QuoteFilter::new(10);
        assert!(filter.admit_newer("AGL", agl("37.94"), 1_000));
        filter.begin();
        assert!(filter.admit_newer("AGL", agl("38.10"), 5_000));
        filter.rollback();
        assert!(
            filter.admit_newer("AGL", agl("38.10"), 2_000),
            "5,000 was never published"
        );
        filter.begin();
        filter.forget("AGL");
        filter.rollback();
        assert!(
            !filter.admit_newer("AGL", agl("39.00"), 1_500),
            "the forgotten entry (2,000) is back"
        );
    }

    #[test]
    fn no_change_quotes_repeat_only_once() {
        let mut filter = QuoteFilter::new(10);
        let flat = value("27.19", "0", "0", Direction::Unchanged);
        assert!(filter.admit("PAEL", flat));
        assert!(!filter.admit("PAEL", flat));
        assert!(!filter.admit("PAEL", value("27.19", "0.00", "0.00", Direction::Unchanged)));
    }

    #[test]
    fn a_forgotten_symbol_is_published_again() {
        let mut filter = QuoteFilter::new(10);
        assert!(filter.admit("AGL", agl("37.94")));
        filter.forget("AGL");
        assert!(filter.admit("AGL", agl("37.94")));
        filter.forget("NONE");
        assert_eq!(filter.len(), 1);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_seen_half() {
        let mut filter = QuoteFilter::new(4);
        for symbol in ["A", "B", "C", "D"] {
            assert!(filter.admit(symbol, agl("1")));
        }
        // A and C are seen again: B and D are now the least recently seen.
        assert!(!filter.admit("A", agl("1")));
        assert!(!filter.admit("C", agl("1")));
        assert!(filter.admit("E", agl("1")), "a new symbol in a full table");
        assert_eq!(filter.len(), 3, "B and D evicted, E added");
        assert_eq!(filter.evicted(), 2);
        assert!(!filter.admit("A", agl("1")), "kept");
        assert!(!filter.admit("C", agl("1")), "kept");
        assert!(!filter.admit("E", agl("1")), "kept");
        assert!(filter.admit("B", agl("1")), "evicted: published again");
        assert_eq!(filter.len(), 4);
        // The table never holds more than the bound.
        for n in 0..100 {
            filter.admit(&format!("S{n}"), agl("1"));
            assert!(filter.len() <= 4);
        }
        let mut one = QuoteFilter::new(1);
        assert!(one.admit("A", agl("1")));
        assert!(one.admit("B", agl("1")));
        assert!(one.admit("A", agl("1")));
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn an_aborted_transaction_is_undone_and_a_committed_one_kept() {
        let mut filter = QuoteFilter::new(10);
        assert!(filter.admit("AGL", agl("37.94")));
        filter.begin();
        assert!(filter.admit("AGL", agl("38.00")));
        assert!(filter.admit("KSE100", agl("1")));
        assert!(!filter.admit("AGL", agl("38.00")));
        assert!(filter.admit("AGL", agl("38.50")));
        filter.rollback();
        // As before the transaction: AGL at 37.94, KSE100 unknown.
        assert!(!filter.admit("AGL", agl("37.94")));
        assert_eq!(filter.len(), 1);
        filter.begin();
        assert!(filter.admit("AGL", agl("38.00")));
        filter.forget("AGL");
        assert!(filter.admit("KSE100", agl("1")));
        filter.commit();
        filter.rollback();
        assert!(
            filter.admit("AGL", agl("38.00")),
            "forgotten in the committed transaction"
        );
        assert!(!filter.admit("KSE100", agl("1")));
    }

    #[test]
    fn both_filters_remember_apart_and_follow_the_transactions_together() {
        let mut filters = ChangeFilters {
            quotes: None,
            latest: Some(QuoteFilter::new(10)),
        };
        assert!(!filters.is_off());
        assert!(filters.latest.as_mut().unwrap().admit("AGL", agl("37.94")));
        filters.quotes = Some(QuoteFilter::new(10));
        filters.begin();
        assert!(filters.quotes.as_mut().unwrap().admit("AGL", agl("37.94")));
        assert!(filters.latest.as_mut().unwrap().admit("AGL", agl("38.00")));
        assert_eq!(filters.tracked(), 2);
        filters.rollback();
        // The aborted transaction published nothing: the quote filter knows nothing, the latest
        // filter its value from before.
        assert_eq!(filters.quotes.as_ref().unwrap().len(), 0);
        assert!(!filters.latest.as_mut().unwrap().admit("AGL", agl("37.94")));
        filters.begin();
        assert!(filters.quotes.as_mut().unwrap().admit("KSE100", agl("1")));
        filters.commit();
        filters.forget("AGL");
        filters.forget("KSE100");
        assert_eq!(filters.tracked(), 0);
        assert!(ChangeFilters::default().is_off());
    }

    #[test]
    fn a_rollback_after_forget_restores_the_published_value() {
        let mut filter = QuoteFilter::new(10);
        assert!(filter.admit("AGL", agl("37.94")));
        filter.begin();
        filter.forget("AGL");
        filter.rollback();
        assert!(!filter.admit("AGL", agl("37.94")));
    }
}
