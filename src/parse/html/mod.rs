//! HTML pages, parsed with `scraper` (html5ever).
//!
//! - [`guards`]: checks on the raw markup before parsing (nesting depth, `<meta>` charset).
//! - [`walk`]: one iterative pass that cuts the document into text blocks and records each
//!   element's place and marks.
//! - [`boilerplate`]: what an element's tag and class/id words mark it as.
//! - [`content`]: which element holds the article and which of its blocks are the body.
//! - [`metadata`]: JSON-LD, Open Graph and meta tags.
//! - [`widgets`]: ticker quotes from the page's blocks.
//!
//! This module puts them together: title, byline, times, section, body paragraphs, related
//! headlines.

mod boilerplate;
mod content;
mod guards;
mod metadata;
mod walk;
mod widgets;

use std::collections::HashSet;

use scraper::Html;

pub(crate) use guards::{nesting_depth_exceeds, sniff_meta_charset};

use super::dates;
use super::text::{self, Entry};
use super::{ArticleParts, ParseOptions, QuoteCollector};
use metadata::Metadata;
use walk::{collapse, BlockKind, Walker};

/// `Site name | Headline` or `Headline - Site name`: the headline.
fn strip_site_name(title: &str) -> &str {
    for sep in [" | ", " - ", " – ", " — "] {
        if let Some(i) = title.rfind(sep) {
            let (head, tail) = (&title[..i], &title[i + sep.len()..]);
            if tail.split_whitespace().count() <= 4 && !head.trim().is_empty() {
                return head.trim();
            }
        }
    }
    title.trim()
}

/// The first unused `<h1>` block: in the article, or anywhere outside boilerplate.
fn first_h1(w: &Walker, article_only: bool) -> Option<usize> {
    w.blocks.iter().position(|b| {
        b.state.kind == BlockKind::Title
            && !b.used
            && b.text.len() <= text::MAX_TITLE_LEN
            && !b.state.comments
            && (if article_only {
                b.state.article
            } else {
                !b.state.excluded
            })
    })
}

/// The headline: the JSON-LD headline, the article's `<h1>`, `og:title`, any `<h1>`, the page
/// title less the site name. The `<h1>` that shows it is taken out of the body.
fn choose_title(w: &mut Walker, meta: &mut Metadata) -> Option<String> {
    let short = |t: &String| !t.is_empty() && t.len() <= text::MAX_TITLE_LEN;
    let structured = meta.title.take().filter(short);
    let h1 = first_h1(w, true).or_else(|| first_h1(w, false));
    let title = match (structured, h1) {
        (Some(t), _) => Some(t),
        (None, Some(i)) => Some(w.blocks[i].text.clone()),
        (None, None) => Some(strip_site_name(&collapse(&w.page_title)).to_string()).filter(short),
    };
    if let (Some(t), Some(i)) = (&title, h1) {
        if w.blocks[i].text == *t || first_h1(w, true) == Some(i) {
            w.blocks[i].used = true;
        }
    }
    title
}

/// The visible byline's author and date, its blocks taken out of the body.
fn visible_byline(w: &mut Walker, parts: &mut ArticleParts) -> Option<chrono::DateTime<chrono::Utc>> {
    let raw = w.byline_text.as_deref().map(collapse).filter(|s| !s.is_empty())?;
    let mut date = None;
    if let Some(b) = dates::parse_dated_byline(&raw) {
        parts.byline = b.author;
        date = b.published;
    } else {
        let name = raw.split(" Published").next().unwrap_or(&raw);
        let name = name.split(" Updated").next().unwrap_or(name).trim();
        let name = name.strip_prefix("By ").unwrap_or(name).trim();
        if !name.is_empty() && name.split_whitespace().count() <= 8 {
            parts.byline = Some(name.to_string());
        }
    }
    // The byline's own blocks are not paragraphs; a marker on a large element (an author box
    // around the text) gave no byline, and its blocks stay.
    if (parts.byline.is_some() || date.is_some()) && raw.split_whitespace().count() <= 40 {
        for b in w.blocks.iter_mut().filter(|b| b.state.byline && !b.used) {
            if raw.contains(collapse(&b.text).as_str()) {
                b.used = true;
            }
        }
    }
    date
}

/// The section: structured data first, then a visible label (taken out of the body).
fn choose_section(w: &mut Walker, meta: &mut Metadata) -> Option<String> {
    let section = meta.section.take().or_else(|| {
        w.section_text
            .as_deref()
            .map(collapse)
            .filter(|s| !s.is_empty() && s.split_whitespace().count() <= 4)
    })?;
    // Only the label itself: whatever else sat inside a marked element stays.
    for b in w.blocks.iter_mut().filter(|b| b.state.section && !b.used) {
        if collapse(&b.text).eq_ignore_ascii_case(&section) {
            b.used = true;
        }
    }
    Some(section)
}

/// What the page's structured data says of its text.
struct Hints {
    /// The JSON-LD `articleBody`.
    body: Option<content::HintIndex>,
    /// The description (JSON-LD, Open Graph or meta).
    description: Option<content::HintIndex>,
}

/// A standfirst above the text: a heading, or a box that holds nothing else (not a paragraph
/// of the text, nor text written straight into the text's container), that repeats the page's
/// description. Pages whose description is their first paragraph keep it.
fn is_standfirst(w: &Walker, i: usize, hints: &Hints) -> bool {
    let b = &w.blocks[i];
    let own_box = || {
        let e = b.state.element as usize;
        let end = w.elements[e].end as usize;
        let inside = |o: &walk::Block| (e..end).contains(&(o.state.element as usize));
        w.blocks.iter().filter(|o| inside(o)).count() == 1
    };
    let shape = match b.state.kind {
        BlockKind::Heading => true,
        BlockKind::Text => b.state.element != walk::NO_ELEMENT && own_box(),
        _ => false,
    };
    shape && hints.description.as_ref().is_some_and(|d| d.covers(&b.text))
}

/// Body paragraphs from the blocks content scoring picked; one-link paragraphs go to `related`.
fn body_paragraphs(w: &mut Walker, hints: &Hints, parts: &mut ArticleParts, related: &mut Vec<String>) {
    for i in content::article_blocks(w, hints.body.as_ref()) {
        let b = &mut w.blocks[i];
        // The headline shown again above the text (`<h2 class="headline">`).
        if parts.paragraphs.is_empty() && parts.title.as_deref() == Some(b.text.as_str()) {
            b.used = true;
            continue;
        }
        if parts.paragraphs.is_empty() && is_standfirst(w, i, hints) {
            w.blocks[i].used = true;
            continue;
        }
        let b = &mut w.blocks[i];
        if parts.byline.is_none() && parts.paragraphs.is_empty() {
            if let Some(by) = dates::parse_dated_byline(&b.text) {
                parts.byline = by.author;
                parts.published_at = parts.published_at.or(by.published);
                b.used = true;
                continue;
            }
        }
        b.used = true;
        let is_paragraph = b.state.kind == BlockKind::Paragraph;
        if b.single_link && is_paragraph && b.text.split_whitespace().count() >= 3 {
            related.push(b.text.clone());
        } else if b.label_len > 0 && is_paragraph {
            // `Related: <a>Headline</a>`: a pointer to another article.
            related.push(b.text[b.label_len..].trim().to_string());
        } else if parts.paragraphs.last() != Some(&b.text) {
            parts.paragraphs.push(b.text.clone());
        }
    }
}

/// Pages where scoring found no body: the JSON-LD body, else the visible blocks read as lines
/// of text, else the description.
fn fallback_paragraphs(w: &mut Walker, meta: &Metadata, parts: &mut ArticleParts, related: &mut Vec<String>) {
    if let Some(body) = &meta.article_body {
        parts.paragraphs = vec![body.clone()];
        return;
    }
    let mut entries: Vec<Entry<'_>> = w
        .blocks
        .iter()
        .filter(|b| !b.used && !b.state.excluded && !b.state.comments)
        .map(|b| Entry::new(&b.text, true))
        .collect();
    let text_parts = text::extract_article(&mut entries, false);
    parts.paragraphs = text_parts.paragraphs;
    related.extend(text_parts.related_headlines);
    if parts.title.is_none() {
        parts.title = text_parts.title;
    }
    let paragraphs: HashSet<&str> = parts.paragraphs.iter().map(String::as_str).collect();
    for b in w.blocks.iter_mut() {
        if paragraphs.contains(b.text.as_str()) {
            b.used = true;
        }
    }
    if parts.paragraphs.is_empty() {
        parts.paragraphs.extend(meta.description.clone());
    }
}

/// Related headlines: links of related-article boxes, and paragraphs that are one link.
fn related_headlines(w: &mut Walker, mut related: Vec<String>) -> Vec<String> {
    related.append(&mut w.related_links);
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for r in related {
        if r.split_whitespace().count() >= 2 && !text::is_junk(&r) && seen.insert(r.clone()) {
            out.push(r);
        }
    }
    for b in w.blocks.iter_mut() {
        if b.state.related && seen.contains(&b.text) {
            b.used = true;
        }
    }
    out
}

/// Copies the metadata fields that have no visible counterpart.
fn attach_metadata(parts: &mut ArticleParts, meta: Metadata) {
    parts.modified_at = meta.modified;
    parts.language = meta.language;
    parts.canonical_url = meta.canonical_url;
    parts.description = meta.description;
    parts.image_url = meta.image_url;
}

/// Splits an HTML page into quotes (pushed to `quotes`) and the parts of its article.
pub(crate) fn parse_html(html: &str, options: &ParseOptions, quotes: &mut QuoteCollector<'_>) -> ArticleParts {
    let doc = Html::parse_document(html);
    let mut w = walk::walk(&doc);
    drop(doc);
    let mut parts = ArticleParts::default();
    widgets::read_quotes(&mut w, options, quotes);
    parts.comments_closed = w
        .blocks
        .iter()
        .any(|b| b.text.len() < 80 && text::starts_with_ignore_case(&b.text, "comments are closed"));
    let mut meta = metadata::read(&w.json_ld, &w.meta, w.canonical.as_deref(), w.lang.as_deref());
    parts.title = choose_title(&mut w, &mut meta);
    let byline_date = visible_byline(&mut w, &mut parts);
    parts.authors = if meta.authors.is_empty() {
        parts.byline.clone().into_iter().collect()
    } else {
        meta.authors.clone()
    };
    if parts.byline.is_none() && !meta.authors.is_empty() {
        parts.byline = Some(meta.authors.join(", "));
    }
    parts.published_at = meta.published.or(w.time_published).or(byline_date);
    parts.section = choose_section(&mut w, &mut meta);
    let mut related = Vec::new();
    let hints = Hints {
        body: meta.article_body.as_deref().map(content::HintIndex::new),
        description: meta.description.as_deref().map(content::HintIndex::new),
    };
    body_paragraphs(&mut w, &hints, &mut parts, &mut related);
    if parts.paragraphs.is_empty() {
        fallback_paragraphs(&mut w, &meta, &mut parts, &mut related);
    }
    parts.related_headlines = related_headlines(&mut w, related);
    parts.dateline = parts
        .paragraphs
        .first()
        .and_then(|p| text::dateline(p))
        .map(str::to_string);
    parts.dropped = w.blocks.iter().filter(|b| !b.used).count();
    attach_metadata(&mut parts, meta);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContentType, RawPage};

    /// The body paragraphs of an HTML page.
    pub(super) fn paragraphs(html: &str) -> Vec<String> {
        let page = RawPage {
            url: "https://news.example/a".to_string(),
            fetched_at: chrono::DateTime::UNIX_EPOCH,
            content_type: ContentType::Html,
            charset: None,
            body: html.as_bytes().to_vec(),
        };
        let mut quotes = QuoteCollector::new(&page);
        parse_html(html, &ParseOptions::default(), &mut quotes).paragraphs
    }

    const DESCRIPTION: &str = "The council approved a budget that raises school spending by a tenth.";
    const TEXT: &str = "Members voted nine to two on Tuesday evening after a debate of four hours.";

    #[test]
    fn a_standfirst_repeating_the_description_is_not_body() {
        let head = format!("<head><meta name=description content=\"{DESCRIPTION}\"></head>");
        let heading = format!(
            "<html>{head}<body><article><h1>Budget</h1><h3>{DESCRIPTION}</h3><p>{TEXT}</p></article></body></html>"
        );
        assert_eq!(paragraphs(&heading), [TEXT]);
        let own_box = format!("<html>{head}<body><article><div class=quote>{DESCRIPTION}</div><div><p>{TEXT}</p></div></article></body></html>");
        assert_eq!(paragraphs(&own_box), [TEXT]);
        // The description is the first paragraph, or text written into the text's container.
        let first = format!("<html>{head}<body><article><p>{DESCRIPTION}</p><p>{TEXT}</p></article></body></html>");
        assert_eq!(paragraphs(&first), [DESCRIPTION, TEXT]);
        let loose =
            format!("<html>{head}<body><article><div>{DESCRIPTION}<br><p>{TEXT}</p></div></article></body></html>");
        assert_eq!(paragraphs(&loose), [DESCRIPTION, TEXT]);
    }

    #[test]
    fn site_name_is_stripped_from_page_title() {
        assert_eq!(
            strip_site_name("Gold rises again - Business Recorder"),
            "Gold rises again"
        );
        assert_eq!(strip_site_name("Gold rises again"), "Gold rises again");
    }
}
