//! Text pages: the page's text, one block per line.
//!
//! Layout of a news page once its text is extracted (every part optional):
//!
//! ```text
//! ticker strip            one quote per line (may be printed twice)
//! header                  logo, navigation, section, widgets, title, teaser bullets
//! byline                  `Recorder Report Published 28 Mar, 2024 11:04am`
//! body                    paragraphs; short standalone lines between them link to other articles
//! footer                  `Copyright …`, `Comments`, `Comments are closed.`, reader comments
//! ```
//!
//! Lines are classified one by one (no DOM, no regular expressions), then the header, body and
//! footer are told apart by position.

use super::dates::{self, Byline};
use super::ticker;
use super::{ArticleParts, ParseOptions, QuoteCollector};
use chrono::{DateTime, Utc};

/// Longest line taken as a headline, in bytes.
pub(crate) const MAX_TITLE_LEN: usize = 300;

/// What a line is, judged from the line alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Figures of a data box (`20,400`, `|Rate`, `▲ 1 (15.87%)`) or their labels.
    Widget,
    /// Logo and navigation bars.
    Nav,
    /// Known boilerplate words (`Advertisement`, `Share`) and cut ticker lines.
    Junk,
    /// Start of the footer: `Comments`, `Comments are closed.`, `Copyright …`.
    Footer,
    /// A bullet point (`• Index hits high …`).
    Bullet,
    /// Anything else: title, byline, paragraph, headline.
    Other,
}

/// One non-blank, non-ticker line of a page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// The line, trimmed.
    pub text: &'a str,
    /// Its kind, from the line alone (refined by context later).
    pub kind: Kind,
    /// Whether a blank line (or a ticker line) precedes it.
    pub gap_before: bool,
}

impl<'a> Entry<'a> {
    /// Classifies a trimmed, non-empty line.
    pub(crate) fn new(text: &'a str, gap_before: bool) -> Self {
        Entry {
            text,
            kind: classify(text),
            gap_before,
        }
    }
}

/// Splits a text page into quotes (pushed to `quotes`) and the parts of its article.
pub(crate) fn parse_text(text: &str, options: &ParseOptions, quotes: &mut QuoteCollector<'_>) -> ArticleParts {
    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(64);
    let mut gap = true;
    let mut last_segment_entry = None;
    let mut segments = text.split('\n').peekable();
    while let Some(raw) = segments.next() {
        let line = raw.trim();
        if line.is_empty() {
            gap = true;
            continue;
        }
        if ticker::may_be_ticker(line) {
            if let Some(t) = ticker::parse_ticker_line(line, options) {
                quotes.push(&t);
                gap = true;
                continue;
            }
        }
        if segments.peek().is_none() {
            last_segment_entry = Some(entries.len());
        }
        entries.push(Entry::new(line, gap));
        gap = false;
    }
    // A page that does not end with a line break may have been cut inside its last line.
    let cut_tail = last_segment_entry.is_some();
    extract_article(&mut entries, cut_tail)
}

/// ASCII case-insensitive `starts_with`.
pub(crate) fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Number of whitespace-separated words, counting no further than `cap`.
fn words(s: &str, cap: usize) -> usize {
    // Words are separated by ASCII whitespace here: cheaper than Unicode-aware splitting.
    let mut n = 0;
    let mut in_word = false;
    for &b in s.as_bytes() {
        let space = b.is_ascii_whitespace();
        if !space && !in_word {
            n += 1;
            if n > cap {
                return cap;
            }
        }
        in_word = !space;
    }
    n
}

fn is_arrow(c: char) -> bool {
    matches!(c, '▲' | '▼' | '▴' | '▾' | '↑' | '↓')
}

/// `20,400`, `9224hr`, `7.53% positivity`, `+1.2%`, `—`: a value of a data box.
fn is_numeric_widget(line: &str) -> bool {
    if !line.chars().any(char::is_alphabetic) {
        return true;
    }
    let mut chars = line.chars();
    let first = chars.next().unwrap_or(' ');
    let starts_numeric = first.is_ascii_digit()
        || (matches!(first, '+' | '-' | '−' | '$' | '£' | '€' | '¥' | '₨')
            && chars.next().is_some_and(|c| c.is_ascii_digit()));
    starts_numeric && words(line, 4) <= 3 && !is_numbered_point(line)
}

/// `3. Practice mindfulness`, `2) Take stock`: a numbered point of a list or a heading, its
/// number followed by words.
fn is_numbered_point(line: &str) -> bool {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &line[digits..];
    digits > 0
        && digits <= 3
        && (rest.starts_with(". ") || rest.starts_with(") "))
        && rest[2..].trim_start().chars().next().is_some_and(char::is_alphabetic)
}

fn is_logo(line: &str) -> bool {
    line.eq_ignore_ascii_case("logo") || ((line.ends_with(" Logo") || line.ends_with(" logo")) && words(line, 6) <= 5)
}

fn is_footer(line: &str) -> bool {
    line.eq_ignore_ascii_case("comments")
        || starts_with_ignore_case(line, "comments are closed")
        || ((starts_with_ignore_case(line, "copyright ")
            || line.starts_with('©')
            || starts_with_ignore_case(line, "all rights reserved"))
            && words(line, 16) <= 15)
}

fn is_bullet(line: &str) -> bool {
    line.starts_with(['•', '·', '▪', '●', '◦', '■']) || line.starts_with("* ") || line.starts_with("- ")
}

/// Lines that are boilerplate wherever they appear.
pub(crate) fn is_junk(line: &str) -> bool {
    const JUNK: [&str; 43] = [
        "advertisement",
        "advertisements",
        "advert",
        // The same label in other languages.
        "anzeige",
        "werbung",
        "publicité",
        "publicidad",
        "publicidade",
        "pubblicità",
        "reklama",
        "iklan",
        "sponsored",
        "ad",
        "ads",
        "share",
        "share this",
        "share this article",
        "tweet",
        "facebook",
        "twitter",
        "whatsapp",
        "linkedin",
        "email",
        "print",
        "read more",
        "related",
        "related news",
        "related articles",
        "also read",
        "most read",
        "most popular",
        "latest",
        "latest news",
        "trending",
        "top stories",
        "follow us",
        "subscribe",
        "home",
        "menu",
        "search",
        "sign in",
        "login",
        "1000 characters",
    ];
    line.len() <= 20
        && JUNK
            .iter()
            .any(|j| line.eq_ignore_ascii_case(j) || line.to_lowercase() == *j)
}

/// The start of a ticker line cut short (`PIBTL 9.80 Decreased By ▼ -0.1`, `KSE100 106,275`).
fn is_ticker_fragment(line: &str) -> bool {
    if !ticker::may_be_ticker(line) {
        return false;
    }
    let mut tokens = line.split_whitespace();
    let symbol = tokens.next().unwrap_or("");
    if !symbol
        .bytes()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
    {
        return false;
    }
    if !tokens
        .next()
        .is_some_and(|t| t.as_bytes().first().is_some_and(u8::is_ascii_digit))
    {
        return false;
    }
    let rest = tokens.count();
    rest <= 1 || line.contains("Increased") || line.contains("Decreased") || line.contains("No Change")
}

fn classify(line: &str) -> Kind {
    let first = line.chars().next().unwrap_or(' ');
    if first == '|' || is_arrow(first) || is_numeric_widget(line) {
        Kind::Widget
    } else if line.len() <= 300 && (line.contains('►') || line.contains("PRINT EDITION") || is_logo(line)) {
        Kind::Nav
    } else if is_footer(line) {
        Kind::Footer
    } else if is_bullet(line) {
        Kind::Bullet
    } else if is_junk(line) || is_ticker_fragment(line) {
        Kind::Junk
    } else {
        Kind::Other
    }
}

/// Ends like a sentence: `.`, `!`, `?`, `…`, `:` or `;`, possibly followed by closing quotes or
/// brackets (`…said “no.”`), or followed by a bracketed credit (`… Rs.1,270. (APP)`).
fn ends_sentence(line: &str) -> bool {
    const CLOSERS: [char; 9] = ['"', '”', '’', '\'', ')', ']', '»', '*', '_'];
    let core = line.trim_end_matches(CLOSERS);
    if core.ends_with(['.', '!', '?', '…', ':', ';']) {
        return true;
    }
    // A trailing credit in brackets after a finished sentence: `… closed higher. (APP)`.
    if let Some(open) = line.strip_suffix(')').and_then(|l| l.rfind('(')) {
        let before = line[..open].trim_end();
        return before.trim_end_matches(CLOSERS).ends_with(['.', '!', '?', '…']);
    }
    false
}

/// A paragraph of prose rather than a headline or a label.
fn is_prose(line: &str) -> bool {
    let n = words(line, 16);
    n >= 16 || (n >= 4 && ends_sentence(line)) || (n >= 6 && dateline(line).is_some())
}

/// Could be a site section (`Markets`, `Business & Finance`) rather than a headline.
fn section_like(line: &str) -> bool {
    line.len() <= 30
        && words(line, 4) <= 3
        && !line.contains(':')
        && !line.chars().any(|c| c.is_ascii_digit())
        && !ends_sentence(line)
}

/// `Markets Print 2025-09-26`: the section and the print date.
fn section_print(line: &str) -> Option<(&str, DateTime<Utc>)> {
    let idx = line.find(" Print ")?;
    let section = line[..idx].trim();
    let rest = line[idx + " Print ".len()..].trim();
    if section.is_empty() || !section_like(section) || rest.contains(' ') {
        return None;
    }
    let tokens = [rest];
    let found = dates::find_date(&tokens)?;
    Some((section, dates::pkt_to_utc(found.date, None)?))
}

/// Strips `Read more:` and similar from a line that links to another article.
fn related_prefix(line: &str) -> Option<&str> {
    for prefix in ["read more", "also read", "related", "see also", "read also"] {
        if starts_with_ignore_case(line, prefix) {
            let rest = line[prefix.len()..].trim_start();
            let rest = rest.strip_prefix([':', '-', '–', '—', '|'])?.trim();
            if !rest.is_empty() {
                return Some(rest);
            }
        }
    }
    None
}

/// The place a story was filed from: `MOSCOW` in `MOSCOW: …`, `KARACHI` in `KARACHI – …`.
pub(crate) fn dateline(paragraph: &str) -> Option<&str> {
    let head_end = paragraph.char_indices().nth(48).map_or(paragraph.len(), |(i, _)| i);
    let head = &paragraph[..head_end];
    let colon = head.find(':');
    let dash = [" – ", " — ", " - "].iter().filter_map(|d| head.find(d)).min();
    let end = match (colon, dash) {
        (Some(c), Some(d)) => c.min(d),
        (Some(c), None) => c,
        (None, Some(d)) => d,
        (None, None) => return None,
    };
    let mut place = head[..end].trim();
    // `KARACHI (Reuters):`
    if place.ends_with(')') {
        if let Some(open) = place.rfind('(') {
            place = place[..open].trim_end();
        }
    }
    if is_place(place) {
        return Some(place);
    }
    // `KARACHI, Jan 5:`
    let (first, rest) = place.split_once(',')?;
    let first = first.trim();
    (is_place(first) && rest.chars().any(|c| c.is_ascii_digit())).then_some(first)
}

/// An upper-case place name (`MOSCOW`, `NEW YORK`, `RAWALPINDI/ISLAMABAD`).
fn is_place(place: &str) -> bool {
    let letters = place.chars().filter(|c| c.is_alphabetic()).count();
    letters >= 2
        && place.len() <= 40
        && place
            .chars()
            .all(|c| (c.is_alphabetic() && !c.is_lowercase()) || matches!(c, ' ' | '.' | '-' | '/' | '\''))
}

/// Marks the labels of data boxes: a short line directly followed (no blank line between) by
/// a widget line is a widget line too.
fn propagate_widgets(entries: &mut [Entry<'_>]) {
    for i in (0..entries.len().saturating_sub(1)).rev() {
        let next = entries[i + 1];
        if next.kind == Kind::Widget
            && !next.gap_before
            && matches!(entries[i].kind, Kind::Other | Kind::Bullet)
            && words(entries[i].text, 9) <= 8
            && !ends_sentence(entries[i].text)
        {
            entries[i].kind = Kind::Widget;
        }
    }
}

/// Turns classified lines into the parts of an article. `cut_tail`: the last entry may have
/// been cut short (the page did not end with a line break).
pub(crate) fn extract_article(entries: &mut [Entry<'_>], cut_tail: bool) -> ArticleParts {
    propagate_widgets(entries);
    let mut parts = ArticleParts::default();
    let header = read_header(entries, &mut parts);
    title_and_section(entries, &header, &mut parts);
    let body_end = read_body(entries, header.body_start, cut_tail, &mut parts);
    read_footer(&entries[body_end..], &mut parts);
    parts.dateline = parts.paragraphs.first().and_then(|p| dateline(p)).map(str::to_string);
    parts
}

/// What the lines before the body say: title candidates, a print section, a byline.
struct Header<'a> {
    /// Positions of the lines that may be the title or the section.
    candidates: Vec<usize>,
    /// A print edition's section and date (`Markets | Print 2022-07-05`).
    print_section: Option<(&'a str, DateTime<Utc>)>,
    byline: Option<Byline>,
    /// A date standing alone in the header.
    bare_date: Option<DateTime<Utc>>,
    /// Where the body starts.
    body_start: usize,
}

/// Header: everything before the byline or the first paragraph.
fn read_header<'a>(entries: &[Entry<'a>], parts: &mut ArticleParts) -> Header<'a> {
    let n = entries.len();
    let mut header = Header {
        candidates: Vec::new(),
        print_section: None,
        byline: None,
        bare_date: None,
        body_start: n,
    };
    let mut i = 0;
    while i < n {
        let e = entries[i];
        match e.kind {
            Kind::Widget | Kind::Nav | Kind::Junk | Kind::Bullet => {
                parts.dropped += 1;
                i += 1;
                continue;
            }
            Kind::Footer => {
                header.body_start = i;
                break;
            }
            Kind::Other => {}
        }
        if let Some(sp) = section_print(e.text) {
            header.print_section = Some(sp);
            i += 1;
            continue;
        }
        if let Some(b) = dates::parse_dated_byline(e.text) {
            if b.author.is_none() && !has_date_keyword(e.text) {
                // A bare date in the header (`Jul 05, 2022`): keep it, the byline may follow.
                header.bare_date = header.bare_date.or(b.published);
                parts.dropped += 1;
                i += 1;
                continue;
            }
            header.byline = Some(b);
            header.body_start = i + 1;
            break;
        }
        if dates::is_name_byline(e.text) && !dated_byline_ahead(&entries[i + 1..]) {
            header.byline = Some(Byline {
                author: Some(e.text.to_string()),
                published: None,
            });
            header.body_start = i + 1;
            break;
        }
        if is_prose(e.text) {
            start_body_at_prose(entries, i, &mut header, parts);
            break;
        }
        header.candidates.push(i);
        i += 1;
    }
    header
}

/// The first prose line of the header starts the body, unless it is a teaser with a dated
/// byline within the next three lines: then the body starts after that byline.
fn start_body_at_prose(entries: &[Entry<'_>], i: usize, header: &mut Header<'_>, parts: &mut ArticleParts) {
    let ahead = if is_dateline_paragraph(entries[i].text) {
        None
    } else {
        entries[i + 1..].iter().take(3).position(is_dated_byline_entry)
    };
    match ahead {
        Some(k) => {
            let b = i + 1 + k;
            parts.dropped += b - i;
            header.byline = dates::parse_dated_byline(entries[b].text);
            header.body_start = b + 1;
        }
        None => header.body_start = i,
    }
}

/// Title, section, byline and publication time from the header.
fn title_and_section(entries: &[Entry<'_>], header: &Header<'_>, parts: &mut ArticleParts) {
    let mut candidates = header.candidates.clone();
    candidates.retain(|&c| {
        let fits = entries[c].text.len() <= MAX_TITLE_LEN;
        if !fits {
            parts.dropped += 1;
        }
        fits
    });
    let title_pos = candidates
        .iter()
        .rposition(|&c| !section_like(entries[c].text))
        .or_else(|| candidates.len().checked_sub(1));
    if let Some(tp) = title_pos {
        parts.title = Some(entries[candidates[tp]].text.to_string());
        parts.dropped += candidates.len() - 1;
        if let Some((section, _)) = header.print_section {
            parts.section = Some(section.to_string());
        } else if tp > 0 && section_like(entries[candidates[tp - 1]].text) {
            parts.section = Some(entries[candidates[tp - 1]].text.to_string());
            parts.dropped -= 1;
        }
    } else if let Some((section, _)) = header.print_section {
        parts.section = Some(section.to_string());
    }
    if let Some(b) = &header.byline {
        parts.byline = b.author.clone();
        parts.published_at = b.published;
    }
    if parts.published_at.is_none() {
        parts.published_at = header.print_section.map(|(_, d)| d).or(header.bare_date);
    }
}

/// What a body line is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Para,
    Short,
    Related,
    Drop,
    Footer,
}

/// The roles of the body's lines, up to the footer (not included).
fn body_roles(entries: &[Entry<'_>]) -> Vec<Role> {
    let mut roles: Vec<Role> = Vec::with_capacity(entries.len());
    let mut seen_para = false;
    for e in entries {
        let role = match e.kind {
            Kind::Widget | Kind::Nav | Kind::Junk => Role::Drop,
            Kind::Bullet => Role::Para,
            Kind::Footer => Role::Footer,
            Kind::Other => {
                if related_prefix(e.text).is_some() {
                    Role::Related
                } else if is_prose(e.text) {
                    Role::Para
                } else if seen_para && dates::parse_dated_byline(e.text).is_some() {
                    // A reader comment's signature: the comments have begun.
                    Role::Footer
                } else if words(e.text, 3) >= 3 && e.text.len() <= 200 {
                    Role::Short
                } else {
                    Role::Drop
                }
            }
        };
        if role == Role::Footer {
            break;
        }
        seen_para |= role == Role::Para;
        roles.push(role);
    }
    roles
}

/// Body, up to the footer: paragraphs and related headlines. Returns where the footer starts.
fn read_body(entries: &[Entry<'_>], body_start: usize, cut_tail: bool, parts: &mut ArticleParts) -> usize {
    let n = entries.len();
    let roles = body_roles(&entries[body_start..]);
    let first_para = roles.iter().position(|r| *r == Role::Para);
    let last_para = roles.iter().rposition(|r| *r == Role::Para);
    for (k, role) in roles.iter().enumerate() {
        let text = entries[body_start + k].text;
        let inside = matches!((first_para, last_para), (Some(f), Some(l)) if f <= k && k <= l);
        match role {
            Role::Para if inside => {
                if parts.paragraphs.last().is_some_and(|p| p == text) {
                    parts.dropped += 1;
                } else {
                    parts.paragraphs.push(text.to_string());
                }
            }
            Role::Short if inside => parts.related_headlines.push(text.to_string()),
            Role::Related => parts
                .related_headlines
                .push(related_prefix(text).unwrap_or(text).to_string()),
            Role::Short if cut_tail && body_start + k + 1 == n && last_para.is_none_or(|l| l < k) => {
                // The page was cut inside its last paragraph.
                parts.paragraphs.push(text.to_string());
            }
            _ => parts.dropped += 1,
        }
    }
    body_start + roles.len()
}

/// Footer: copyright, comments heading, reader comments.
fn read_footer(entries: &[Entry<'_>], parts: &mut ArticleParts) {
    for e in entries {
        parts.dropped += 1;
        if starts_with_ignore_case(e.text, "comments are closed") {
            parts.comments_closed = true;
        }
    }
}

/// `Published …` / `Updated …` on the line.
fn has_date_keyword(line: &str) -> bool {
    line.split_whitespace().any(|w| {
        let w = w.trim_end_matches([':', ',']);
        w.eq_ignore_ascii_case("published") || w.eq_ignore_ascii_case("updated")
    })
}

/// A byline with an author or a `Published`/`Updated` date.
fn is_dated_byline_entry(e: &Entry<'_>) -> bool {
    e.kind == Kind::Other
        && dates::parse_dated_byline(e.text).is_some_and(|b| b.author.is_some() || has_date_keyword(e.text))
}

/// Whether one of the next few lines is a dated byline.
fn dated_byline_ahead(rest: &[Entry<'_>]) -> bool {
    rest.iter().take(3).any(is_dated_byline_entry)
}

fn is_dateline_paragraph(line: &str) -> bool {
    dateline(line).is_some() && words(line, 6) >= 6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContentType, RawPage};

    fn parse(text: &str) -> (Vec<String>, ArticleParts) {
        let page = RawPage {
            url: "https://example.test/a".into(),
            fetched_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            content_type: ContentType::Text,
            charset: None,
            body: text.as_bytes().to_vec(),
        };
        let mut quotes = QuoteCollector::new(&page);
        let parts = parse_text(text, &ParseOptions::default(), &mut quotes);
        (quotes.quotes.iter().map(|q| q.symbol.to_string()).collect(), parts)
    }

    #[test]
    fn classify_lines() {
        assert_eq!(classify("20,400"), Kind::Widget);
        assert_eq!(classify("9224hr"), Kind::Widget);
        assert_eq!(classify("7.53% positivity"), Kind::Widget);
        assert_eq!(classify("|Currency"), Kind::Widget);
        assert_eq!(classify("▲ 1 (15.87%)"), Kind::Widget);
        assert_eq!(classify("Brecorder Logo"), Kind::Nav);
        assert_eq!(classify("Business Recorder Logo"), Kind::Nav);
        assert_eq!(
            classify("Jul 05, 2022 PRINT EDITION ► BR MARKETS ► Dollar to PKR ►"),
            Kind::Nav
        );
        assert_eq!(classify("Comments"), Kind::Footer);
        assert_eq!(classify("Comments are closed."), Kind::Footer);
        assert_eq!(classify("Copyright Business Recorder, 2023"), Kind::Footer);
        assert_eq!(classify("• Index hits high of 48,898.82"), Kind::Bullet);
        assert_eq!(classify("PIBTL 9.80 Decreased By ▼ -0.1"), Kind::Junk);
        assert_eq!(classify("KSE100 106,275"), Kind::Junk);
        assert_eq!(classify("Advertisement"), Kind::Junk);
        assert_eq!(classify("Advert"), Kind::Junk);
        assert_eq!(classify("Iklan"), Kind::Junk);
        assert_eq!(classify("PUBLICITÉ"), Kind::Junk);
        assert_eq!(
            classify("KSE100 Nosedives by over 800pts as Schools Close"),
            Kind::Other
        );
        assert_eq!(classify("2021 was a year of recovery for the market."), Kind::Other);
        assert_eq!(classify("3. Practice mindfulness"), Kind::Other);
        assert_eq!(classify("12) Take stock"), Kind::Other);
        assert_eq!(classify("3.5 points"), Kind::Widget);
        assert_eq!(classify("1. 20,400"), Kind::Widget);
    }

    #[test]
    fn datelines() {
        assert_eq!(dateline("MOSCOW: Russia said on Monday"), Some("MOSCOW"));
        assert_eq!(dateline("KARACHI – The index rose"), Some("KARACHI"));
        assert_eq!(dateline("NEW YORK (Reuters): Stocks fell"), Some("NEW YORK"));
        assert_eq!(dateline("KARACHI, Jan 5: Stocks fell"), Some("KARACHI"));
        assert_eq!(dateline("KARACHI, PESHAWAR: Stocks fell"), None);
        assert_eq!(dateline("Intra-day update: KSE-100 gains"), None);
        assert_eq!(dateline("The index rose: a sign of relief"), None);
        assert_eq!(dateline("No separator at all in this sentence"), None);
    }

    #[test]
    fn header_with_logo_nav_section_title_teaser_byline() {
        let text = "AGL 37.94 Decreased By ▼ -0.54 (-1.4%)\n\
Brecorder Logo\n\
Jul 05, 2022 PRINT EDITION ► BR MARKETS ► Dollar to PKR ►\n\
Markets\n\
\n\
Rupee gains ground against the dollar\n\
\n\
  • Currency closes at 205.5 in the inter-bank market\n\
BR Web Desk 05 Jul, 2022\n\
\n\
KARACHI: The rupee rose for a third day on Tuesday as inflows improved.\n\
\n\
Dealers said importers held back on dollar purchases.\n\
\n\
Copyright Business Recorder, 2022\n";
        let (quotes, a) = parse(text);
        assert_eq!(quotes, ["AGL"]);
        assert_eq!(a.title.as_deref(), Some("Rupee gains ground against the dollar"));
        assert_eq!(a.section.as_deref(), Some("Markets"));
        assert_eq!(a.byline.as_deref(), Some("BR Web Desk"));
        assert_eq!(
            a.published_at,
            Some(DateTime::parse_from_rfc3339("2022-07-04T19:00:00Z").unwrap().into())
        );
        assert_eq!(a.dateline.as_deref(), Some("KARACHI"));
        assert_eq!(
            a.paragraphs,
            [
                "KARACHI: The rupee rose for a third day on Tuesday as inflows improved.",
                "Dealers said importers held back on dollar purchases."
            ]
        );
        assert!(a.related_headlines.is_empty());
        assert!(!a.comments_closed);
        // Logo, navigation, teaser, copyright.
        assert_eq!(a.dropped, 4);
    }

    #[test]
    fn bare_header_date_and_report_like_title() {
        let text = "Brecorder Logo\nJul 05, 2022\nMonetary Policy Report\nRecorder Report Published 05 Jul, 2022 09:00am\n\nKARACHI: The central bank kept its policy rate unchanged on Tuesday.\n";
        let (_, a) = parse(text);
        assert_eq!(a.title.as_deref(), Some("Monetary Policy Report"));
        assert_eq!(a.byline.as_deref(), Some("Recorder Report"));
        assert_eq!(
            a.published_at,
            Some(DateTime::parse_from_rfc3339("2022-07-05T04:00:00Z").unwrap().into())
        );
        assert_eq!(a.paragraphs.len(), 1);
        assert_eq!(a.dropped, 2);
    }

    #[test]
    fn single_line_strip_then_published() {
        let text = "KSE100 62,451 Increased By 1,102.5 (1.8%)\nPublished 04 Jan, 2024\n\nKARACHI: Shares rallied on Thursday as investors returned to banks.\n";
        let (quotes, a) = parse(text);
        assert_eq!(quotes, ["KSE100"]);
        assert_eq!(a.byline, None);
        assert_eq!(
            a.published_at,
            Some(DateTime::parse_from_rfc3339("2024-01-03T19:00:00Z").unwrap().into())
        );
        assert_eq!(a.paragraphs.len(), 1);
        assert_eq!(a.title, None);
    }

    #[test]
    fn strip_printed_twice_keeps_first_occurrence() {
        let strip = "AGL 37.94 Decreased By ▼ -0.54 (-1.4%)\nBOP 5.44 No Change ▼ 0.00 (0%)\n";
        let text = format!("{strip}{strip}\nKARACHI: Shares closed lower on Monday after a volatile session.\n");
        let (quotes, a) = parse(&text);
        assert_eq!(quotes, ["AGL", "BOP"]);
        assert_eq!(a.paragraphs.len(), 1);
    }

    #[test]
    fn prose_numbers_are_not_quotes() {
        let text = "KARACHI: The KSE-100 closed at 8,401.81 points with a net negative change of -217.28 points.\nKSE100 closed at 8,401.81 points with a net negative change of -217.28 points.\n";
        let (quotes, a) = parse(text);
        assert!(quotes.is_empty());
        assert_eq!(a.paragraphs.len(), 2);
    }

    #[test]
    fn reader_comments_are_footer() {
        let text = "LAHORE: Cotton prices held steady on Friday in thin trading.\n\n\
Traders expect demand to pick up next week.\n\nComments\n\n1000 characters\n\
Ahmed Raza Jul 05, 2022 11:04am\nPrices will rise soon, mark my words.\n\
Sana Jul 05, 2022 01:10pm\nAgreed.\n";
        let (_, a) = parse(text);
        assert_eq!(a.paragraphs.len(), 2);
        assert!(!a.comments_closed);
        assert_eq!(a.dropped, 6);
    }

    #[test]
    fn comment_signature_without_heading_ends_body() {
        let text = "LAHORE: Cotton prices held steady on Friday in thin trading.\n\n\
Ahmed Raza Jul 05, 2022 11:04am\nPrices will rise soon, mark my words.\n";
        let (_, a) = parse(text);
        assert_eq!(
            a.paragraphs,
            ["LAHORE: Cotton prices held steady on Friday in thin trading."]
        );
    }

    #[test]
    fn cut_last_line_is_a_paragraph_but_trailing_widget_is_not() {
        let (_, a) = parse(
            "KARACHI: The market rose today on strong buying.\n\nSingapore markets were closed for a holiday on Wedn",
        );
        assert_eq!(a.paragraphs.len(), 2);
        let (_, a) =
            parse("KARACHI: The market rose today on strong buying.\n\nSingapore markets were closed for a holiday\n");
        assert_eq!(a.paragraphs.len(), 1);
        assert!(a.related_headlines.is_empty());
        let (_, a) = parse("KARACHI: The market rose today on strong buying.\n|Rate\n|\n281.10\n|");
        assert_eq!(a.paragraphs.len(), 1);
        assert_eq!(a.dropped, 4);
    }

    #[test]
    fn related_links_between_paragraphs() {
        let text = "KARACHI: The market rose today on strong buying.\n\nRead more: Rupee slips against dollar\n\n\
Oil stocks led the gains\n\nBrokers expect the rally to continue this week.\n";
        let (_, a) = parse(text);
        assert_eq!(a.paragraphs.len(), 2);
        assert_eq!(
            a.related_headlines,
            ["Rupee slips against dollar", "Oil stocks led the gains"]
        );
    }
}
