//! One pass over the parsed document, iterative (never recursive), in document order.
//!
//! The walk cuts the visible text into blocks at block-element boundaries and records, for each
//! element, where it sits (its parent, the end of its subtree in document order) and what its
//! tag and words mark it as (see [`boilerplate`](super::boilerplate)). Each block knows the
//! element it sits in, so content scoring can add it up per element. The `<head>`'s meta tags,
//! JSON-LD scripts, canonical link and the document language are collected on the way.

use scraper::node::Element;
use scraper::{Html, Node};

use std::collections::HashMap;

use super::boilerplate::{self, Described, Marks, NameAttrs};
use crate::parse::dates;

/// No element (the parent of the root).
pub(crate) const NO_ELEMENT: u32 = u32::MAX;

/// What kind of block a piece of text sits in, from its innermost block element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// `<p>`.
    Paragraph,
    /// `<h1>`.
    Title,
    /// `<h2>` … `<h6>`.
    Heading,
    /// `<li>`, `<dt>`, `<dd>`.
    Item,
    /// A table row, cells joined by spaces.
    Row,
    /// `<blockquote>`.
    Quote,
    /// `<pre>`.
    Pre,
    /// `<figcaption>`, `<caption>`.
    Caption,
    /// Text directly in another block element (`<div>`, `<section>`, `<td>` …).
    Text,
}

/// Where the walk currently is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    /// Inside `script`, `style` and the like: no text at all.
    pub skip: bool,
    /// Inside `<head>`.
    pub head: bool,
    /// Inside the `<title>` element.
    pub title: bool,
    /// Inside navigation, ads, footers, sidebars, share bars.
    pub excluded: bool,
    /// Inside a comment widget.
    pub comments: bool,
    /// Inside a related-articles box.
    pub related: bool,
    /// Inside the article (`<article>`, `itemprop=articleBody`, `<main>`).
    pub article: bool,
    /// Inside a byline element.
    pub byline: bool,
    /// Inside a section or category label.
    pub section: bool,
    /// The kind of the innermost block element.
    pub kind: BlockKind,
    /// The innermost element (an index into [`Walker::elements`]).
    pub element: u32,
}

/// One element of the document, in document order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ElementInfo {
    /// The parent element, or [`NO_ELEMENT`].
    pub parent: u32,
    /// One past the last element of its subtree: the subtree is `index..end`.
    pub end: u32,
    /// What its tag and words mark it as.
    pub marks: Marks,
}

/// A run of text between block boundaries.
#[derive(Debug)]
pub(crate) struct Block {
    /// The text, whitespace collapsed.
    pub text: String,
    /// The same text with a space at every inline element boundary (`<span>AGL</span><span>1`).
    pub spaced: String,
    /// Where the walk was when the block ended.
    pub state: State,
    /// All of the text is the text of one link.
    pub single_link: bool,
    /// For a line that is a short label and one link (`Related: <a>…</a>`, `SEE MORE: <a>…</a>`),
    /// the length in bytes of the label; else 0.
    pub label_len: usize,
    /// Letters and digits in the block, and how many of them sit in links.
    pub chars: u32,
    pub link_chars: u32,
    /// Taken by a quote, the title, the byline or the body.
    pub used: bool,
}

/// Name/content pairs of the `<meta>` tags, keys lowercased.
pub(crate) type MetaTags = Vec<(String, String)>;

/// What the walk found.
pub(crate) struct Walker {
    pub state: State,
    stack: Vec<State>,
    pub elements: Vec<ElementInfo>,
    pub blocks: Vec<Block>,
    line: String,
    spaced: String,
    link_chars: u32,
    links_in_line: usize,
    /// Where in `line` its first link starts.
    link_at: usize,
    anchor: Option<String>,
    pub related_links: Vec<String>,
    pub byline_text: Option<String>,
    byline_open: bool,
    pub section_text: Option<String>,
    section_open: bool,
    /// Text of the `<title>` element.
    pub page_title: String,
    /// The first `<time datetime>` outside sidebars, comments and related boxes.
    pub time_published: Option<chrono::DateTime<chrono::Utc>>,
    pub meta: MetaTags,
    /// Texts of `<script type="application/ld+json">`.
    pub json_ld: Vec<String>,
    /// `<link rel="canonical">`.
    pub canonical: Option<String>,
    /// `<html lang>`.
    pub lang: Option<String>,
    words: Vec<String>,
    /// Descriptions by [`Walker::describe_key`].
    described: HashMap<u64, Described>,
    key: Vec<u8>,
}

/// Elements whose text is never shown.
fn is_skipped(name: &str) -> bool {
    matches!(
        name,
        "script"
            | "style"
            | "noscript"
            | "template"
            | "svg"
            | "math"
            | "iframe"
            | "object"
            | "canvas"
            | "select"
            | "textarea"
            | "video"
            | "audio"
            | "button"
            | "input"
    )
}

/// Whether the element starts a new block of text.
pub(crate) fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "dd"
            | "details"
            | "dialog"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "li"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "tbody"
            | "thead"
            | "tfoot"
            | "tr"
            | "ul"
            | "html"
            | "caption"
            | "center"
    )
}

/// The block kind a block element gives its text.
fn block_kind(name: &str) -> BlockKind {
    match name {
        "p" => BlockKind::Paragraph,
        "h1" => BlockKind::Title,
        "h2" | "h3" | "h4" | "h5" | "h6" => BlockKind::Heading,
        "li" | "dt" | "dd" => BlockKind::Item,
        "tr" => BlockKind::Row,
        "blockquote" => BlockKind::Quote,
        "pre" => BlockKind::Pre,
        "figcaption" | "caption" => BlockKind::Caption,
        _ => BlockKind::Text,
    }
}

impl Walker {
    fn new() -> Self {
        Walker {
            state: State {
                skip: false,
                head: false,
                title: false,
                excluded: false,
                comments: false,
                related: false,
                article: false,
                byline: false,
                section: false,
                kind: BlockKind::Text,
                element: NO_ELEMENT,
            },
            stack: Vec::new(),
            elements: Vec::new(),
            blocks: Vec::new(),
            line: String::new(),
            spaced: String::new(),
            link_chars: 0,
            links_in_line: 0,
            link_at: 0,
            anchor: None,
            related_links: Vec::new(),
            byline_text: None,
            byline_open: false,
            section_text: None,
            section_open: false,
            page_title: String::new(),
            time_published: None,
            meta: Vec::new(),
            json_ld: Vec::new(),
            canonical: None,
            lang: None,
            words: Vec::new(),
            described: HashMap::new(),
            key: Vec::new(),
        }
    }

    /// Ends the current line of text as a block.
    fn flush(&mut self) {
        let text = self.line.trim();
        if !text.is_empty() {
            // A line that is one link: the link holds every letter and digit of it (punctuation
            // such as a trailing `»` may sit outside).
            let total = text.chars().filter(|c| c.is_alphanumeric()).count() as u32;
            let single_link = self.links_in_line == 1 && total > 0 && self.link_chars >= total;
            let label_len = self.link_label_len(total);
            let spaced = collapse(&self.spaced);
            self.blocks.push(Block {
                text: text.to_string(),
                spaced,
                state: self.state,
                single_link,
                label_len,
                chars: total,
                link_chars: self.link_chars.min(total),
                used: false,
            });
        }
        self.line.clear();
        self.spaced.clear();
        self.link_chars = 0;
        self.links_in_line = 0;
    }

    /// The length of the label before the line's only link when the line is a pointer label
    /// of at most three words ending in a colon ([`is_pointer_label`]) followed by that link;
    /// else 0.
    fn link_label_len(&self, total: u32) -> usize {
        if self.links_in_line != 1 {
            return 0;
        }
        let label = self.line[..self.link_at].trim_start();
        let trimmed = label.trim_end();
        let letters = trimmed.chars().filter(|c| c.is_alphanumeric()).count() as u32;
        let is_label = (trimmed.ends_with(':') || trimmed.ends_with('：'))
            && letters > 0
            && trimmed.split_whitespace().count() <= 3
            && letters + self.link_chars >= total
            && is_pointer_label(trimmed);
        if is_label {
            label.len()
        } else {
            0
        }
    }

    /// Enters a node; returns whether to walk its children.
    fn open(&mut self, node: &Node) -> bool {
        let el = match node {
            Node::Element(el) => el,
            Node::Text(t) => {
                self.text(t);
                return false;
            }
            Node::Document | Node::Fragment => return true,
            _ => return false,
        };
        self.stack.push(self.state);
        if self.state.skip {
            return false;
        }
        let name = el.name();
        if is_skipped(name) {
            self.state.skip = true;
            return false;
        }
        let block = is_block(name);
        let described = self.element_marks(name, el);
        if !block && described.marks.any(Marks::INLINE_DROPPED) {
            // A caption or credit, a hidden note or a share count inside a line of text.
            self.state.skip = true;
            return false;
        }
        if !self.special_element(name, el) {
            return true;
        }
        if block {
            self.flush();
            self.state.kind = block_kind(name);
        } else {
            self.spaced.push(' ');
        }
        self.elements.push(ElementInfo {
            parent: self.state.element,
            end: 0,
            marks: described.marks,
        });
        self.state.element = (self.elements.len() - 1) as u32;
        self.update_state(name, described);
        true
    }

    /// Handles elements with a meaning of their own (`<head>`, `<meta>`, `<br>`, `<time>`, links);
    /// returns false when the element is done with (its children are still walked).
    fn special_element(&mut self, name: &str, el: &Element) -> bool {
        match name {
            "html" => self.lang = el.attr("lang").map(str::to_string),
            "head" => self.state.head = true,
            "title" if self.state.head => self.state.title = true,
            "meta" => self.meta_tag(el),
            "link" if self.canonical.is_none() => {
                let rel = el.attr("rel").unwrap_or("");
                if rel.split_whitespace().any(|r| r.eq_ignore_ascii_case("canonical")) {
                    self.canonical = el.attr("href").map(|h| h.trim().to_string());
                }
            }
            "br" => {
                self.flush();
                return false;
            }
            "time"
                if self.time_published.is_none()
                    && !self.state.comments
                    && !self.state.excluded
                    && !self.state.related =>
            {
                self.time_published = el.attr("datetime").and_then(dates::parse_iso);
            }
            "a" => {
                self.anchor = Some(String::new());
                self.links_in_line += 1;
                if self.links_in_line == 1 {
                    self.link_at = self.line.len();
                }
            }
            "td" | "th" => {
                self.line.push(' ');
                self.spaced.push(' ');
            }
            _ => {}
        }
        true
    }

    /// What the element's tag and words say about it, remembered per page for each tag and
    /// set of attribute values (menus and lists repeat the same classes many times).
    fn element_marks(&mut self, name: &str, el: &Element) -> Described {
        let mut attrs = NameAttrs::default();
        let mut hidden = false;
        for (key, value) in el.attrs() {
            match key {
                "class" => attrs.class = value,
                "id" => attrs.id = value,
                "role" => attrs.role = value,
                "itemprop" => attrs.itemprop = value,
                "data-role" => attrs.data_role = value,
                "hidden" => hidden = true,
                "style" => hidden |= boilerplate::style_hides(value),
                _ => {}
            }
        }
        let key = self.describe_key(name, &attrs);
        let in_article = self.state.article;
        let words = &mut self.words;
        let mut described = *self
            .described
            .entry(key)
            .or_insert_with(|| boilerplate::describe(name, &attrs, in_article, words));
        if hidden {
            described.marks = described.marks.with(Marks::HIDDEN);
        }
        described
    }

    /// A hash of what [`boilerplate::describe`] reads.
    fn describe_key(&mut self, name: &str, attrs: &NameAttrs<'_>) -> u64 {
        let key = &mut self.key;
        key.clear();
        key.push(u8::from(self.state.article));
        key.extend_from_slice(name.as_bytes());
        for v in attrs.values() {
            key.push(0);
            key.extend_from_slice(v.as_bytes());
        }
        xxhash_rust::xxh3::xxh3_64(key)
    }

    /// Updates the inherited state on entering an element with these marks.
    fn update_state(&mut self, name: &str, described: Described) {
        let marks = described.marks;
        if matches!(name, "article" | "main") || described.article_body {
            self.state.article = true;
        }
        if marks.any(Marks::COMMENTS) {
            self.state.comments = true;
            self.state.excluded = true;
        }
        if marks.any(Marks::RELATED) && !self.state.comments {
            self.state.related = true;
            self.state.excluded = true;
        } else if marks.any(
            Marks::BOILERPLATE
                .without(Marks::BYLINE)
                .without(Marks::LABEL)
                .without(Marks::HIDDEN),
        ) {
            self.state.excluded = true;
        }
        // Labels are small elements: a page container (`<article class="post category-markets">`,
        // `<body class="author-jane">`) is not one, and neither is anything in a sidebar.
        let label_candidate = !matches!(name, "article" | "main" | "body" | "html")
            && !self.state.comments
            && !self.state.excluded
            && !self.state.related;
        if described.byline && label_candidate {
            self.state.byline = true;
            if self.byline_text.is_none() {
                self.byline_text = Some(String::new());
                self.byline_open = true;
            }
        }
        if described.section && label_candidate && self.section_text.is_none() {
            self.state.section = true;
            self.section_text = Some(String::new());
            self.section_open = true;
        }
    }

    fn close(&mut self, node: &Node) {
        let Node::Element(el) = node else {
            return;
        };
        let Some(prev) = self.stack.pop() else {
            return;
        };
        if !self.state.skip {
            let name = el.name();
            if name == "a" {
                if let Some(a) = self.anchor.take() {
                    let a = collapse(&a);
                    if self.state.related && !a.is_empty() {
                        self.related_links.push(a);
                    }
                }
            }
            if is_block(name) {
                self.flush();
            } else {
                self.spaced.push(' ');
            }
            if self.state.byline && !prev.byline {
                self.byline_open = false;
            }
            if self.state.section && !prev.section {
                self.section_open = false;
            }
            if self.state.element != prev.element {
                let end = self.elements.len() as u32;
                self.elements[self.state.element as usize].end = end;
            }
        }
        self.state = prev;
    }

    fn text(&mut self, t: &str) {
        let s = self.state;
        if s.skip {
            return;
        }
        if s.head {
            if s.title {
                self.page_title.push_str(t);
            }
            return;
        }
        push_collapsed(&mut self.line, t);
        push_collapsed(&mut self.spaced, t);
        if let Some(a) = self.anchor.as_mut() {
            push_collapsed(a, t);
            self.link_chars += t.chars().filter(|c| c.is_alphanumeric()).count() as u32;
        }
        if self.byline_open && s.byline {
            if let Some(b) = self.byline_text.as_mut() {
                b.push(' ');
                b.push_str(t);
            }
        }
        if self.section_open && s.section {
            if let Some(b) = self.section_text.as_mut() {
                b.push(' ');
                b.push_str(t);
            }
        }
    }

    fn meta_tag(&mut self, el: &Element) {
        let key = el
            .attr("property")
            .or_else(|| el.attr("name"))
            .or_else(|| el.attr("itemprop"))
            .or_else(|| el.attr("http-equiv"))
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if let Some(content) = el.attr("content").map(str::trim).filter(|c| !c.is_empty()) {
            if !key.is_empty() && self.meta.len() < 512 {
                self.meta.push((key, content.to_string()));
            }
        }
    }
}

/// Words of labels that point elsewhere (`Related:`, `See more:`, `Lesen Sie auch:`, `Filed
/// under:`), as opposed to a label of the text itself (`Pro tip:`).
fn is_pointer_label(label: &str) -> bool {
    const POINTERS: [&str; 21] = [
        "related",
        "more",
        "also",
        "see",
        "read",
        "watch",
        "listen",
        "previously",
        "recommended",
        "filed",
        "tags",
        "tagged",
        "posted",
        "categories",
        "auch",
        "aussi",
        "también",
        "também",
        "juga",
        "anche",
        "ook",
    ];
    label.split(|c: char| !c.is_alphanumeric()).any(|w| {
        POINTERS
            .iter()
            .any(|p| w.eq_ignore_ascii_case(p) || w.to_lowercase() == *p)
    })
}

/// Appends `t` to `out`, collapsing whitespace runs (including no-break spaces) to one space.
pub(crate) fn push_collapsed(out: &mut String, t: &str) {
    for (i, word) in t.split(char::is_whitespace).enumerate() {
        if i > 0 && !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// `s` with whitespace runs collapsed to one space and trimmed.
pub(crate) fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Whether a `<script>` element holds JSON-LD.
fn is_json_ld(node: &Node) -> bool {
    matches!(node, Node::Element(el) if el.name() == "script"
        && el.attr("type").is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ld+json")))
}

/// Walks the document without recursion, in document order.
pub(crate) fn walk(doc: &Html) -> Walker {
    let mut w = Walker::new();
    let root = doc.tree.root();
    let mut node = root;
    'outer: loop {
        if is_json_ld(node.value()) && w.json_ld.len() < 16 {
            let text: String = node
                .children()
                .filter_map(|c| c.value().as_text().map(|t| &**t))
                .collect();
            w.json_ld.push(text);
        }
        let descend = w.open(node.value());
        if descend {
            if let Some(child) = node.first_child() {
                node = child;
                continue;
            }
        }
        loop {
            w.close(node.value());
            if node.id() == root.id() {
                break 'outer;
            }
            if let Some(sibling) = node.next_sibling() {
                node = sibling;
                break;
            }
            match node.parent() {
                Some(parent) => node = parent,
                None => break 'outer,
            }
        }
    }
    w.flush();
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walked(html: &str) -> Walker {
        walk(&Html::parse_document(html))
    }

    #[test]
    fn blocks_know_their_kind_and_element() {
        let w = walked(
            "<html><body><div class=story><h2>Sub</h2><p>One <a href=x>two</a></p><ul><li>Item</li></ul>\
             <table><tr><td>a</td><td>b</td></tr></table></div><nav>Home</nav></body></html>",
        );
        let kinds: Vec<(&str, BlockKind)> = w.blocks.iter().map(|b| (b.text.as_str(), b.state.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("Sub", BlockKind::Heading),
                ("One two", BlockKind::Paragraph),
                ("Item", BlockKind::Item),
                ("a b", BlockKind::Row),
                ("Home", BlockKind::Text),
            ]
        );
        assert_eq!((w.blocks[1].chars, w.blocks[1].link_chars), (6, 3));
        let nav = w.blocks[4].state.element as usize;
        assert!(w.elements[nav].marks.any(Marks::NAV));
        // The story div's subtree holds the paragraph's element but not the nav.
        let p = w.blocks[1].state.element;
        let story = w.elements[p as usize].parent as usize;
        assert!(story < p as usize && p < w.elements[story].end);
        assert!(nav as u32 >= w.elements[story].end);
    }

    #[test]
    fn remembered_descriptions_still_tell_where_the_element_sits() {
        // The same `<header class=top>` is the page header outside the article and part of the
        // article inside it; hidden by style on one element only.
        let w = walked(
            "<body><header class=top>Logo</header><article><header class=top>Headline</header>\
             <p class=x style='display:none'>a</p><p class=x>b</p></article></body>",
        );
        let marks: Vec<Marks> = w
            .blocks
            .iter()
            .map(|b| w.elements[b.state.element as usize].marks)
            .collect();
        assert!(marks[0].any(Marks::HEADER));
        assert!(!marks[1].any(Marks::HEADER));
        assert!(marks[2].any(Marks::HIDDEN));
        assert!(!marks[3].any(Marks::HIDDEN));
    }

    #[test]
    fn inline_captions_hidden_notes_and_share_counts_leave_the_line() {
        let w = walked(
            "<body><p>Shares rose.<span class=caption-source><span class=caption>A trader</span> Getty</span></p>\
             <p>Costs <span class=sr-only hidden>(opens a window)</span>fell <span class=share-count>12</span>today.</p></body>",
        );
        let texts: Vec<&str> = w.blocks.iter().map(|b| b.text.as_str()).collect();
        assert_eq!(texts, ["Shares rose.", "Costs fell today."]);
    }

    #[test]
    fn a_label_and_one_link_is_told_apart_from_a_sentence_with_a_link() {
        let w = walked(
            "<body><p><strong>Related: </strong><a href=/a>Galaxies far away</a></p>\
             <p>See also: <a href=/b>the report</a> and more.</p><p>Read more: <a href=/c>x</a></p>\
             <p>In a long sentence here: <a href=/d>a link</a></p></body>",
        );
        let labels: Vec<(usize, &str)> = w.blocks.iter().map(|b| (b.label_len, b.text.as_str())).collect();
        assert_eq!(labels[0], (9, "Related: Galaxies far away"));
        assert_eq!(labels[1].0, 0);
        assert_eq!(labels[2].0, 11);
        assert_eq!(labels[3].0, 0);
        let w = walked("<body><p><strong>Pro tip:</strong> <a href=/a>Get more ideas here</a>!</p></body>");
        assert_eq!(w.blocks[0].label_len, 0);
    }

    #[test]
    fn head_data_is_collected() {
        let w = walked(
            r#"<html lang="en-GB"><head><title>T</title><meta property="og:title" content=" Hello ">
            <link rel="canonical" href="https://x.test/a"><script type="application/ld+json">{"a":1}</script>
            </head><body><p>x</p></body></html>"#,
        );
        assert_eq!(w.lang.as_deref(), Some("en-GB"));
        assert_eq!(w.meta, [("og:title".to_string(), "Hello".to_string())]);
        assert_eq!(w.canonical.as_deref(), Some("https://x.test/a"));
        assert_eq!(w.json_ld, [r#"{"a":1}"#]);
        assert_eq!(w.page_title, "T");
    }
}
