//! Pure (but for the change filters' memory): which of a split page's records are sent, and
//! which of its quotes are copied to the latest-quote topic.

use crate::quote_filter::{ChangeFilters, QuoteValue};
use crate::sink::OutRecord;

#[cfg(doc)]
use super::records::latest_copy;

/// Which of a page's records to send, which quotes to copy to the latest-quote topic, and how
/// many quotes were left out of each topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// One flag per record: send it.
    pub send: Vec<bool>,
    /// The quotes (indices among the records) whose copy goes to the latest-quote topic.
    pub latest: Vec<usize>,
    /// Quotes left out of the quote topic.
    pub unchanged_quotes: usize,
    /// Copies left out of the latest-quote topic.
    pub unchanged_latest: usize,
}

/// Pure (but for the filters' memory): which of a page's records to send, and with
/// `with_latest`, which of its quotes to copy to the latest-quote topic (see [`latest_copy`]).
/// A quote record (the first `quote_values.len()`) whose value equals the last one published to
/// the quote topic for its symbol is left out when that filter is on (`quotes.emit =
/// "changed"`); its copy is left out when its value equals the last one published to the
/// latest-quote topic (that topic's filter), or when its page, fetched at `fetched_ms` (Unix
/// ms), is older than the page of that last one. Every other record is sent, and without a
/// latest-quote filter every quote is copied. The copies are made only for the quotes chosen:
/// with quotes that seldom change, few.
pub fn select_changed_quotes(
    records: &[OutRecord],
    quote_values: &[QuoteValue],
    filters: &mut ChangeFilters,
    with_latest: bool,
    fetched_ms: i64,
) -> Selected {
    let quotes = quote_values.len().min(records.len());
    let mut selected = Selected {
        send: vec![true; records.len()],
        latest: Vec::new(),
        unchanged_quotes: 0,
        unchanged_latest: 0,
    };
    for (index, record) in records[..quotes].iter().enumerate() {
        let symbol = record.key.as_deref().and_then(|key| std::str::from_utf8(key).ok());
        let value = quote_values[index];
        let quote_admitted = match (filters.quotes.as_mut(), symbol) {
            (Some(filter), Some(symbol)) => filter.admit(symbol, value),
            _ => true,
        };
        if !quote_admitted {
            selected.send[index] = false;
            selected.unchanged_quotes += 1;
        }
        if with_latest {
            let latest_admitted = match (filters.latest.as_mut(), symbol) {
                (Some(filter), Some(symbol)) => filter.admit_newer(symbol, value, fetched_ms),
                _ => true,
            };
            if latest_admitted {
                selected.latest.push(index);
            } else {
                selected.unchanged_latest += 1;
            }
        }
    }
    selected
}

/// Pure: every record sent, and with `with_latest` every quote copied (no change filter).
pub fn select_everything(records: &[OutRecord], quotes: usize, with_latest: bool) -> Selected {
    Selected {
        send: vec![true; records.len()],
        latest: if with_latest {
            (0..quotes.min(records.len())).collect()
        } else {
            Vec::new()
        },
        unchanged_quotes: 0,
        unchanged_latest: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::records::tests::{split, PAGE};
    use super::super::records::Split;
    use super::*;
    use crate::encode::{Encoder, Framing};
    use crate::quote_filter::QuoteFilter;

    const LATEST: &str = "market.quotes.latest.v1";

    /// The keys of the records sent to `topic`: the flagged records, then the copies.
    fn sent_to(split: &Split, selected: &Selected, topic: &str) -> Vec<String> {
        let key = |record: &OutRecord| String::from_utf8(record.key.clone().unwrap()).unwrap();
        let flagged = split
            .records
            .iter()
            .zip(&selected.send)
            .filter(|(_, send)| **send)
            .map(|(record, _)| (record.topic.to_string(), key(record)));
        let copies = selected
            .latest
            .iter()
            .map(|&quote| (LATEST.to_owned(), key(&split.records[quote])));
        flagged
            .chain(copies)
            .filter(|(to, _)| to == topic)
            .map(|(_, symbol)| symbol)
            .collect()
    }

    /// The records of `split` to send with the latest-quote topic on, by its fetch time.
    fn select(split: &Split, filters: &mut ChangeFilters) -> Selected {
        let fetched_ms = split.fetched_at.timestamp_millis();
        select_changed_quotes(&split.records, &split.quote_values, filters, true, fetched_ms)
    }

    /// Both change filters on, as with `quotes.emit = "changed"`.
    fn both_filters() -> ChangeFilters {
        ChangeFilters {
            quotes: Some(QuoteFilter::new(1000)),
            latest: Some(QuoteFilter::new(1000)),
        }
    }

    #[test]
    fn a_repeated_page_sends_only_its_changed_quotes_to_each_topic() {
        let encoder = Encoder::new(Framing::SingleObject);
        // quotes.emit = "all": only the latest-quote topic is filtered.
        let mut latest_only = ChangeFilters {
            quotes: None,
            latest: Some(QuoteFilter::new(1000)),
        };
        // quotes.emit = "changed": both, each with its own memory.
        let mut both = both_filters();

        let first = split(PAGE, 0, &encoder);
        for filters in [&mut latest_only, &mut both] {
            let selected = select(&first, filters);
            assert_eq!((selected.unchanged_quotes, selected.unchanged_latest), (0, 0));
            assert_eq!(selected.send.iter().filter(|send| **send).count(), 35);
            assert_eq!(selected.latest, (0..34).collect::<Vec<_>>());
        }

        let again = split(PAGE, 1, &encoder);
        let selected = select(&again, &mut latest_only);
        assert_eq!((selected.unchanged_quotes, selected.unchanged_latest), (0, 34));
        assert_eq!(sent_to(&again, &selected, "market.quotes.v1").len(), 34);
        assert_eq!(sent_to(&again, &selected, "news.articles.v1").len(), 1);
        assert!(sent_to(&again, &selected, LATEST).is_empty());
        let selected = select(&again, &mut both);
        assert_eq!((selected.unchanged_quotes, selected.unchanged_latest), (34, 34));
        assert_eq!(sent_to(&again, &selected, "news.articles.v1").len(), 1);
        assert!(sent_to(&again, &selected, "market.quotes.v1").is_empty());
        assert!(sent_to(&again, &selected, LATEST).is_empty(), "only the article");

        let moved = split(&moved_page(), 2, &encoder);
        for filters in [&mut latest_only, &mut both] {
            let selected = select(&moved, filters);
            assert_eq!(sent_to(&moved, &selected, LATEST), ["AGL", "BOP"]);
            assert_eq!(selected.unchanged_latest, 32);
        }
        let selected = select(&moved, &mut both);
        assert_eq!(selected.unchanged_quotes + selected.unchanged_latest, 68, "nothing new");
        assert_eq!((both.tracked(), latest_only.tracked()), (68, 34));

        // A symbol forgotten (its page was dead-lettered) goes to both topics again.
        both.forget("AGL");
        let selected = select(&moved, &mut both);
        assert_eq!(sent_to(&moved, &selected, "market.quotes.v1"), ["AGL"]);
        assert_eq!(sent_to(&moved, &selected, LATEST), ["AGL"]);
    }

    /// AGL moves; BOP's line keeps its numbers but says "No Change" now.
    fn moved_page() -> String {
        let moved = PAGE
            .replacen(
                "AGL 37.94 Decreased By ▼ -0.54 (-1.4%)",
                "AGL 38.10 Decreased By ▼ -0.38 (-0.99%)",
                1,
            )
            .replacen(
                "BOP 9.32 Decreased By ▼ -0.85 (-8.36%)",
                "BOP 9.32 No Change ▼ -0.85 (-8.36%)",
                1,
            );
        assert_ne!(moved, PAGE);
        moved
    }

    #[test]
    fn a_quote_from_a_page_older_than_the_last_published_one_is_not_copied() {
        let encoder = Encoder::new(Framing::SingleObject);
        let mut both = both_filters();
        let first = split(PAGE, 0, &encoder);
        assert_eq!(select(&first, &mut both).latest.len(), 34);
        let moved = split(&moved_page(), 2, &encoder);
        assert_eq!(sent_to(&moved, &select(&moved, &mut both), LATEST), ["AGL", "BOP"]);

        // The first page's numbers again, from a page fetched before the moved one (another
        // partition, consumed later): changes on the quote topic, but not newer than what the
        // latest-quote topic holds.
        let older = split(PAGE, 1, &encoder);
        assert!(older.fetched_at < moved.fetched_at);
        let selected = select(&older, &mut both);
        assert_eq!(sent_to(&older, &selected, "market.quotes.v1"), ["AGL", "BOP"]);
        assert!(sent_to(&older, &selected, LATEST).is_empty());
        assert_eq!(selected.unchanged_latest, 34);
        // A newer page with them is a change there too.
        let newer = split(PAGE, 3, &encoder);
        assert_eq!(sent_to(&newer, &select(&newer, &mut both), LATEST), ["AGL", "BOP"]);
    }

    #[test]
    fn without_quote_values_or_the_latest_topic_nothing_is_copied() {
        let page = split(PAGE, 0, &Encoder::new(Framing::SingleObject));
        let mut filters = ChangeFilters {
            quotes: Some(QuoteFilter::new(1000)),
            latest: Some(QuoteFilter::new(1000)),
        };
        // Without quote values (a dead letter) everything is sent and nothing copied.
        let none = select_changed_quotes(
            &page.records,
            &[],
            &mut filters,
            true,
            page.fetched_at.timestamp_millis(),
        );
        assert!(none.send.iter().all(|send| *send));
        assert!(none.latest.is_empty());
        assert_eq!(filters.tracked(), 0);
        // Without the latest-quote topic nothing is copied, whatever its filter says.
        let without = select_changed_quotes(
            &page.records,
            &page.quote_values,
            &mut filters,
            false,
            page.fetched_at.timestamp_millis(),
        );
        assert!(without.latest.is_empty());
        assert_eq!((without.unchanged_quotes, without.unchanged_latest), (0, 0));
        assert_eq!(without.send.iter().filter(|send| **send).count(), 35);
        // With no filter at all: every record sent, every quote copied.
        let everything = select_everything(&page.records, page.quotes, true);
        assert_eq!((everything.send.len(), everything.latest.len()), (35, 34));
        assert!(select_everything(&page.records, page.quotes, false).latest.is_empty());
    }
}
