//! Dates and bylines as news pages print them.
//!
//! Pakistani pages print local time (PKT, UTC+5, no daylight saving); every local date is
//! converted to UTC, and a date without a time means midnight PKT.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// Offset of Pakistan Standard Time from UTC, in seconds.
const PKT_OFFSET_SECS: i32 = 5 * 3600;

/// A byline: who wrote the article and when it was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Byline {
    /// The author or agency, as printed (without a leading `By`).
    pub author: Option<String>,
    /// The publication time, in UTC.
    pub published: Option<DateTime<Utc>>,
}

/// The UTC instant of a local Pakistan date and time (midnight when no time is given).
pub(crate) fn pkt_to_utc(date: NaiveDate, time: Option<NaiveTime>) -> Option<DateTime<Utc>> {
    let local = NaiveDateTime::new(date, time.unwrap_or(NaiveTime::MIN));
    let pkt = FixedOffset::east_opt(PKT_OFFSET_SECS)?;
    pkt.from_local_datetime(&local).single().map(|d| d.with_timezone(&Utc))
}

/// Parses a machine-readable timestamp (`<time datetime>`, `article:published_time`):
/// RFC 3339 with an offset, a local date-time (taken as PKT), or a bare date (midnight PKT).
pub(crate) fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    // `Z` for UTC, and offsets without minutes (`+05`), which chrono's `%z` does not take.
    let zoned = match s.strip_suffix(['Z', 'z']) {
        Some(local) => format!("{local}+00:00"),
        None => s.to_owned(),
    };
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%dT%H:%M%#z",
        "%Y-%m-%d %H:%M%#z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(&zoned, fmt) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return pkt_to_utc(d.date(), Some(d.time()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return pkt_to_utc(d, None);
    }
    if s.len() > 10 && s.as_bytes()[10] == b'T' {
        // An ISO timestamp none of the shapes above took: not its date alone at midnight.
        return None;
    }
    // Printed shapes as a last resort (`28 Mar, 2024 11:04am`).
    let tokens: Vec<&str> = s.split_whitespace().collect();
    let found = find_date(&tokens)?;
    if found.end != tokens.len() {
        return None;
    }
    pkt_to_utc(found.date, found.time)
}

/// A date (and maybe a time) found among whitespace-separated tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FoundDate {
    pub date: NaiveDate,
    pub time: Option<NaiveTime>,
    /// Index of the first token of the date.
    pub start: usize,
    /// Index just past the last token of the date and time.
    pub end: usize,
}

fn month(token: &str) -> Option<u32> {
    let t = token.trim_end_matches([',', '.']);
    if t.len() < 3 || t.len() > 9 {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    for (i, m) in MONTHS.iter().enumerate() {
        if m.eq_ignore_ascii_case(t)
            || (t.len() == 3 && m[..3].eq_ignore_ascii_case(t))
            || (i == 8 && t.eq_ignore_ascii_case("sept"))
        {
            return Some(i as u32 + 1);
        }
    }
    None
}

fn small_number(token: &str, max_len: usize) -> Option<u32> {
    let t = token.trim_end_matches([',', '.']);
    let t = t
        .strip_suffix("st")
        .or_else(|| t.strip_suffix("nd"))
        .or_else(|| t.strip_suffix("rd"))
        .or_else(|| t.strip_suffix("th"))
        .unwrap_or(t);
    if t.is_empty() || t.len() > max_len || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

fn year(token: &str) -> Option<i32> {
    let t = token.trim_end_matches([',', '.']);
    if t.len() != 4 || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let y: i32 = t.parse().ok()?;
    (1900..=2200).contains(&y).then_some(y)
}

/// `2025-09-26` (optionally followed by `T…`, which is ignored here).
fn iso_date(token: &str) -> Option<NaiveDate> {
    let t = token.trim_end_matches([',', '.']);
    let t = t.get(..10)?;
    NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()
}

/// `11:04am`, `11:04 AM`, `05:02pm`, `17:02`, `17:02:30`; returns the time and tokens used.
fn time_at(tokens: &[&str]) -> Option<(NaiveTime, usize)> {
    let first = tokens.first()?.trim_end_matches([',', '.']);
    let lower = first.to_ascii_lowercase();
    let (clock, mut meridiem, mut used) = if let Some(c) = lower.strip_suffix("am") {
        (c.to_string(), Some(false), 1)
    } else if let Some(c) = lower.strip_suffix("pm") {
        (c.to_string(), Some(true), 1)
    } else {
        (lower.clone(), None, 1)
    };
    if meridiem.is_none() {
        if let Some(next) = tokens.get(1) {
            let n = next.trim_end_matches([',', '.']).to_ascii_lowercase();
            if n == "am" || n == "a.m" {
                meridiem = Some(false);
                used = 2;
            } else if n == "pm" || n == "p.m" {
                meridiem = Some(true);
                used = 2;
            }
        }
    }
    let mut parts = clock.split(':');
    let h: u32 = parts.next()?.parse().ok()?;
    let m_str = parts.next()?;
    if m_str.len() != 2 {
        return None;
    }
    let m: u32 = m_str.parse().ok()?;
    let s: u32 = match parts.next() {
        Some(x) if x.len() == 2 => x.parse().ok()?,
        Some(_) => return None,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    let h = match meridiem {
        Some(pm) => {
            if !(1..=12).contains(&h) {
                return None;
            }
            (h % 12) + if pm { 12 } else { 0 }
        }
        None => h,
    };
    Some((NaiveTime::from_hms_opt(h, m, s)?, used))
}

/// The first printed date among `tokens`: `05 Jul, 2022`, `26 May 2021`, `December 13, 2023`,
/// `Aug 11, 2023`, `2025-09-26`, each optionally followed by a time.
pub(crate) fn find_date(tokens: &[&str]) -> Option<FoundDate> {
    for i in 0..tokens.len() {
        let mut hit: Option<(NaiveDate, usize)> = None;
        if let Some(d) = iso_date(tokens[i]) {
            hit = Some((d, i + 1));
        } else if let (Some(day), Some(m), Some(y)) = (
            small_number(tokens[i], 2),
            tokens.get(i + 1).and_then(|t| month(t)),
            tokens.get(i + 2).and_then(|t| year(t)),
        ) {
            if let Some(d) = NaiveDate::from_ymd_opt(y, m, day) {
                hit = Some((d, i + 3));
            }
        } else if let (Some(m), Some(day), Some(y)) = (
            month(tokens[i]),
            tokens.get(i + 1).and_then(|t| small_number(t, 2)),
            tokens.get(i + 2).and_then(|t| year(t)),
        ) {
            if let Some(d) = NaiveDate::from_ymd_opt(y, m, day) {
                hit = Some((d, i + 3));
            }
        }
        if let Some((date, end)) = hit {
            let (time, end) = match time_at(&tokens[end..]) {
                Some((t, used)) => (Some(t), end + used),
                None => (None, end),
            };
            return Some(FoundDate {
                date,
                time,
                start: i,
                end,
            });
        }
    }
    None
}

fn is_keyword(token: &str, word: &str) -> bool {
    token.trim_end_matches([':', ',']).eq_ignore_ascii_case(word)
}

/// Words that may join the capitalised words of an author's name.
fn is_name_joiner(token: &str) -> bool {
    matches!(
        token.to_ascii_lowercase().as_str(),
        "&" | "and" | "of" | "the" | "de" | "bin" | "ul" | "al" | "/" | "|" | "-" | "–" | "•"
    )
}

fn clean_author(tokens: &[&str]) -> Option<String> {
    let mut tokens = tokens;
    if tokens.first().is_some_and(|t| t.eq_ignore_ascii_case("by")) {
        tokens = &tokens[1..];
    }
    while let Some(last) = tokens.last() {
        if matches!(*last, "|" | "-" | "–" | "—" | "•" | "·" | ",") {
            tokens = &tokens[..tokens.len() - 1];
        } else {
            break;
        }
    }
    if tokens.is_empty() {
        return None;
    }
    let joined = tokens.join(" ");
    let trimmed = joined.trim_end_matches([',', '|', '-', '•']).trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Whether `tokens` can be an author's name: a few capitalised words.
fn plausible_author(tokens: &[&str]) -> bool {
    let tokens = match tokens.first() {
        Some(t) if t.eq_ignore_ascii_case("by") => &tokens[1..],
        _ => tokens,
    };
    if tokens.len() > 7 {
        return false;
    }
    tokens.iter().all(|t| {
        is_name_joiner(t)
            || (t.chars().next().is_some_and(char::is_uppercase)
                && (!t.ends_with(['.', ':', ';', '!', '?']) || (t.len() <= 5 && t.ends_with('.'))))
    })
}

/// Reads a byline that carries a date: `BR Web Desk 05 Jul, 2022`,
/// `Recorder Report Published 28 Mar, 2024 11:04am`,
/// `Reuters Published December 13, 2023 Updated December 13, 2023 05:02pm`,
/// `Updated 23 Nov 2020`, `Published 04 Jan, 2024`.
pub(crate) fn parse_dated_byline(line: &str) -> Option<Byline> {
    if line.len() > 200 || !line.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let tokens: Vec<&str> = line.split_whitespace().collect();
    if tokens.len() > 20 {
        return None;
    }
    let published = tokens.iter().position(|t| is_keyword(t, "published"));
    let updated = tokens.iter().position(|t| is_keyword(t, "updated"));
    let (author_end, date_from, date_to) = match (published, updated) {
        (Some(p), Some(u)) if u > p => (p, p + 1, u),
        (Some(p), _) => (p, p + 1, tokens.len()),
        (None, Some(u)) => {
            // "Last updated" belongs to the keyword, not to the author.
            let a = if u > 0 && tokens[u - 1].eq_ignore_ascii_case("last") {
                u - 1
            } else {
                u
            };
            (a, u + 1, tokens.len())
        }
        (None, None) => {
            let found = find_date(&tokens)?;
            (found.start, found.start, tokens.len())
        }
    };
    let window = &tokens[date_from..date_to];
    let found = find_date(window)?;
    // Nothing but the date may follow the keyword, and nothing but another dated part after it.
    if found.start != 0 {
        return None;
    }
    let after = date_from + found.end;
    if after < tokens.len() && !(is_keyword(tokens[after], "updated") || is_keyword(tokens[after], "published")) {
        return None;
    }
    let author_tokens = &tokens[..author_end];
    if !plausible_author(author_tokens) {
        return None;
    }
    Some(Byline {
        author: clean_author(author_tokens),
        published: pkt_to_utc(found.date, found.time),
    })
}

/// Agencies and desks that sign articles without a date (`Reuters`, `RECORDER REPORT`).
pub(crate) fn is_name_byline(line: &str) -> bool {
    if line.len() > 60 {
        return false;
    }
    let tokens: Vec<&str> = line.split_whitespace().collect();
    if tokens.is_empty() || tokens.len() > 5 || !plausible_author(&tokens) {
        return false;
    }
    let lower = line.to_ascii_lowercase();
    const AGENCIES: [&str; 16] = [
        "reuters",
        "afp",
        "ap",
        "app",
        "app/afp",
        "afp/reuters",
        "reuters/afp",
        "bloomberg",
        "ppi",
        "inp",
        "nni",
        "xinhua",
        "agencies",
        "online",
        "news agencies",
        "monitoring report",
    ];
    if AGENCIES.contains(&lower.as_str()) {
        return true;
    }
    const SUFFIXES: [&str; 7] = [
        "report",
        "reporter",
        "desk",
        "correspondent",
        "bureau",
        "staff",
        "news service",
    ];
    if SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        return true;
    }
    // "By Firstname Lastname".
    tokens.len() >= 2 && tokens.len() <= 5 && tokens[0] == "By"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn bylines() {
        let b = parse_dated_byline("BR Web Desk 05 Jul, 2022").unwrap();
        assert_eq!(b.author.as_deref(), Some("BR Web Desk"));
        assert_eq!(b.published, Some(utc("2022-07-04T19:00:00Z")));

        let b = parse_dated_byline("Recorder Report Published 28 Mar, 2024 11:04am").unwrap();
        assert_eq!(b.author.as_deref(), Some("Recorder Report"));
        assert_eq!(b.published, Some(utc("2024-03-28T06:04:00Z")));

        let b = parse_dated_byline("Reuters Published December 13, 2023 Updated December 13, 2023 05:02pm").unwrap();
        assert_eq!(b.author.as_deref(), Some("Reuters"));
        assert_eq!(b.published, Some(utc("2023-12-12T19:00:00Z")));

        let b = parse_dated_byline("Updated 23 Nov 2020").unwrap();
        assert_eq!(b.author, None);
        assert_eq!(b.published, Some(utc("2020-11-22T19:00:00Z")));

        let b = parse_dated_byline("Published 04 Jan, 2024").unwrap();
        assert_eq!(b.author, None);
        assert_eq!(b.published, Some(utc("2024-01-03T19:00:00Z")));

        let b = parse_dated_byline("Recorder Report 26 May 2021").unwrap();
        assert_eq!(b.author.as_deref(), Some("Recorder Report"));

        let b = parse_dated_byline("By Ahmed Khan Published 05 Jul, 2022 12:30 PM").unwrap();
        assert_eq!(b.author.as_deref(), Some("Ahmed Khan"));
        assert_eq!(b.published, Some(utc("2022-07-05T07:30:00Z")));
    }

    #[test]
    fn not_bylines() {
        for line in [
            "Prices fell sharply on 05 Jul, 2022 after the budget.",
            "The index closed at 45,000 on December 13, 2023 amid selling",
            "Aug 11, 2023 PRINT EDITION ► BR MARKETS ► Dollar to PKR ►",
            "Gold prices fall for 5th consecutive session in Pakistan",
            "",
        ] {
            assert_eq!(parse_dated_byline(line), None, "{line:?}");
        }
    }

    #[test]
    fn name_bylines() {
        assert!(is_name_byline("RECORDER REPORT"));
        assert!(is_name_byline("F.P. Report"));
        assert!(is_name_byline("Reuters"));
        assert!(is_name_byline("Our Staff Reporter"));
        assert!(!is_name_byline("Markets"));
        assert!(!is_name_byline(
            "Iran, Saudi Arabia to restore ties in China-brokered deal"
        ));
    }

    #[test]
    fn iso() {
        assert_eq!(
            parse_iso("2023-12-13T17:02:00+05:00"),
            Some(utc("2023-12-13T12:02:00Z"))
        );
        assert_eq!(parse_iso("2023-12-13T12:02:00Z"), Some(utc("2023-12-13T12:02:00Z")));
        assert_eq!(parse_iso("2023-12-13T17:02:00"), Some(utc("2023-12-13T12:02:00Z")));
        assert_eq!(parse_iso("2023-12-13"), Some(utc("2023-12-12T19:00:00Z")));
        assert_eq!(parse_iso("28 Mar, 2024 11:04am"), Some(utc("2024-03-28T06:04:00Z")));
        assert_eq!(parse_iso("2024-03-28T11:04Z"), Some(utc("2024-03-28T11:04:00Z")));
        assert_eq!(parse_iso("2024-03-28T11:04:00+05"), Some(utc("2024-03-28T06:04:00Z")));
        assert_eq!(parse_iso("2024-03-28T11:04+0500"), Some(utc("2024-03-28T06:04:00Z")));
        assert_eq!(
            parse_iso("2024-03-28 11:04:30.250+05:00"),
            Some(utc("2024-03-28T06:04:30.250Z"))
        );
        assert_eq!(
            parse_iso("2024-03-28T11:04:00.5z"),
            Some(utc("2024-03-28T11:04:00.500Z"))
        );
        assert_eq!(parse_iso("2024-03-28T25:04Z"), None, "not the date alone");
        assert_eq!(parse_iso("yesterday"), None);
        assert_eq!(parse_iso(""), None);
    }

    #[test]
    fn dates_in_tokens() {
        let t: Vec<&str> = "Markets Print 2025-09-26".split_whitespace().collect();
        let f = find_date(&t).unwrap();
        assert_eq!((f.start, f.end), (2, 3));
        assert_eq!(f.date, NaiveDate::from_ymd_opt(2025, 9, 26).unwrap());
        let t: Vec<&str> = "on 31 Feb, 2024".split_whitespace().collect();
        assert_eq!(find_date(&t), None);
        let t: Vec<&str> = "Sept 4, 2023 11:36am".split_whitespace().collect();
        let f = find_date(&t).unwrap();
        assert_eq!(f.time, NaiveTime::from_hms_opt(11, 36, 0));
    }
}
