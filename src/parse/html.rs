//! HTML pages, parsed with `scraper` (html5ever).
//!
//! The document is walked once, iteratively (never recursively), and cut into text blocks at
//! block-element boundaries. Each block remembers where it sat: inside the article, inside
//! navigation, ads, comment widgets or related-article boxes, inside a byline. Ticker lines come
//! from any visible block outside comment widgets; the article from the rest.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use encoding_rs::Encoding;
use scraper::node::Element;
use scraper::{Html, Node};

use super::dates;
use super::text::{self, Entry, Kind};
use super::ticker;
use super::{ArticleParts, ParseOptions, QuoteCollector};

/// Whether the markup nests elements deeper than `limit`, judged by a linear scan that follows
/// the parser's rules closely enough: void elements and elements whose end tag may be left out
/// do not nest, an end tag closes every element opened after its start tag, the contents of
/// comments, scripts and styles are skipped, and `<x/>` closes itself only in SVG and MathML
/// (an HTML parser ignores the slash: `<div/>` stays open).
pub(crate) fn nesting_depth_exceeds(html: &str, limit: usize) -> bool {
    let b = html.as_bytes();
    // Names of the open elements (hashed), and how many open elements fall in each hash bucket,
    // so that an end tag without a matching start tag costs O(1).
    let mut stack: Vec<u64> = Vec::new();
    let mut buckets = [0u32; 256];
    // Open `svg` and `math` elements: inside them, `<x/>` closes itself.
    let foreign_roots = [hash_name(b"svg"), hash_name(b"math")];
    let mut foreign = 0usize;
    let mut pos = 0;
    while let Some(off) = memchr::memchr(b'<', &b[pos..]) {
        let lt = pos + off;
        pos = lt + 1;
        match b.get(pos) {
            Some(b'!') => {
                pos = if b[pos..].starts_with(b"!--") {
                    memchr::memmem::find(&b[pos + 3..], b"-->").map_or(b.len(), |i| pos + 3 + i + 3)
                } else {
                    memchr::memchr(b'>', &b[pos..]).map_or(b.len(), |i| pos + i + 1)
                };
            }
            Some(b'?') => {
                pos = memchr::memchr(b'>', &b[pos..]).map_or(b.len(), |i| pos + i + 1);
            }
            Some(b'/') => {
                let (name, end) = tag_name(b, pos + 1);
                if name.is_empty() {
                    continue;
                }
                pos = end;
                let h = hash_name(name);
                if ignored_for_depth(name) || buckets[(h & 0xff) as usize] == 0 {
                    continue;
                }
                if let Some(i) = stack.iter().rposition(|&x| x == h) {
                    for x in stack.drain(i..) {
                        buckets[(x & 0xff) as usize] -= 1;
                        if foreign_roots.contains(&x) {
                            foreign -= 1;
                        }
                    }
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let (name, end) = tag_name(b, pos);
                let close = find_tag_end(b, end);
                let self_closing = close > 0 && b.get(close - 1) == Some(&b'/');
                pos = (close + 1).min(b.len());
                if let Some(raw_end) = raw_text_end(b, name, pos) {
                    pos = raw_end;
                    continue;
                }
                let h = hash_name(name);
                let foreign_root = foreign_roots.contains(&h);
                if (self_closing && (foreign > 0 || foreign_root)) || ignored_for_depth(name) {
                    continue;
                }
                if foreign_root {
                    foreign += 1;
                }
                stack.push(h);
                buckets[(h & 0xff) as usize] += 1;
                if stack.len() > limit {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The tag name starting at `from` (callers compare names case-insensitively).
fn tag_name(b: &[u8], from: usize) -> (&[u8], usize) {
    let mut end = from;
    while end < b.len() && !matches!(b[end], b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'/' | b'>') {
        end += 1;
    }
    (&b[from..end], end)
}

/// Index of the `>` ending a start tag, skipping quoted attribute values.
fn find_tag_end(b: &[u8], mut i: usize) -> usize {
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => return i,
            None => {}
        }
        i += 1;
    }
    b.len()
}

fn hash_name(name: &[u8]) -> u64 {
    // FNV-1a over the ASCII-lowercased name.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in name {
        h ^= u64::from(c.to_ascii_lowercase());
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn name_is(name: &[u8], list: &[&str]) -> bool {
    list.iter().any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
}

/// Void elements and elements whose end tag may be omitted: they never nest deeply.
fn ignored_for_depth(name: &[u8]) -> bool {
    name_is(
        name,
        &[
            "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
            "wbr", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "tbody", "thead", "tfoot",
            "colgroup", "caption", "rb", "rt", "rtc", "rp", "html", "head", "body", "frame", "keygen", "basefont",
            "bgsound", "image",
        ],
    )
}

/// For elements whose content is not markup (`script`, `style`, …), the position just past
/// their end tag.
fn raw_text_end(b: &[u8], name: &[u8], from: usize) -> Option<usize> {
    const RAW: [&str; 8] = [
        "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
    ];
    let n = RAW.iter().find(|n| name.eq_ignore_ascii_case(n.as_bytes()))?;
    let mut i = from;
    while let Some(off) = memchr::memmem::find(&b[i..], b"</") {
        let at = i + off + 2;
        if b.len() >= at + n.len() && b[at..at + n.len()].eq_ignore_ascii_case(n.as_bytes()) {
            return Some(at + n.len());
        }
        i = at;
    }
    Some(b.len())
}

/// The encoding named by a `<meta charset>` or `<meta http-equiv="content-type">` near the
/// start of the markup.
pub(crate) fn sniff_meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let head = &body[..body.len().min(4096)];
    let mut pos = 0;
    while let Some(off) = memchr::memchr(b'<', &head[pos..]) {
        let lt = pos + off;
        pos = lt + 1;
        if head.len() < lt + 5 || !head[lt + 1..lt + 5].eq_ignore_ascii_case(b"meta") {
            continue;
        }
        let end = memchr::memchr(b'>', &head[lt..]).map_or(head.len(), |i| lt + i);
        let tag = &head[lt..end];
        let Some(at) = find_ignore_case(tag, b"charset") else {
            continue;
        };
        let mut i = at + "charset".len();
        while i < tag.len() && tag[i].is_ascii_whitespace() {
            i += 1;
        }
        if tag.get(i) != Some(&b'=') {
            continue;
        }
        i += 1;
        while i < tag.len() && (tag[i].is_ascii_whitespace() || tag[i] == b'"' || tag[i] == b'\'') {
            i += 1;
        }
        let start = i;
        while i < tag.len() && !matches!(tag[i], b'"' | b'\'' | b';' | b' ' | b'/' | b'>') {
            i += 1;
        }
        if let Some(enc) = Encoding::for_label(&tag[start..i]) {
            return Some(enc);
        }
    }
    None
}

fn find_ignore_case(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

/// What kind of block a piece of text sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockTag {
    Paragraph,
    Title,
    Heading,
    Other,
}

/// Where the walk currently is.
#[derive(Debug, Clone, Copy)]
struct State {
    /// Inside `script`, `style` and the like: no text at all.
    skip: bool,
    /// Inside `<head>`.
    head: bool,
    /// Inside the `<title>` element.
    title: bool,
    /// Inside navigation, ads, footers, sidebars, share bars: not article text.
    excluded: bool,
    /// Inside a comment widget.
    comments: bool,
    /// Inside a related-articles box.
    related: bool,
    /// Inside the article (`<article>`, `itemprop=articleBody`, `<main>`).
    article: bool,
    /// Inside a byline element.
    byline: bool,
    /// Inside a section or category label.
    section: bool,
    /// The innermost block element.
    tag: BlockTag,
}

/// A run of text between block boundaries.
#[derive(Debug)]
struct Block {
    text: String,
    /// The same text with a space at every inline element boundary (`<span>AGL</span><span>1`).
    spaced: String,
    state: State,
    /// All of the text is the text of one link.
    single_link: bool,
    used: bool,
}

#[derive(Default)]
struct Meta {
    og_title: Option<String>,
    page_title: String,
    published: Option<DateTime<Utc>>,
    time_published: Option<DateTime<Utc>>,
    section: Option<String>,
    author: Option<String>,
}

struct Walker {
    state: State,
    stack: Vec<State>,
    blocks: Vec<Block>,
    line: String,
    spaced: String,
    /// Characters of the current line that sit inside links, and links in it.
    link_chars: usize,
    links_in_line: usize,
    anchor: Option<String>,
    related_links: Vec<String>,
    byline_text: Option<String>,
    byline_open: bool,
    section_text: Option<String>,
    section_open: bool,
    meta: Meta,
}

fn is_block(name: &str) -> bool {
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
    )
}

/// Words of an element's `class` and `id` (split at spaces, `-` and `_`), lowercased.
fn marker_words(el: &Element) -> Vec<String> {
    let mut words = Vec::new();
    for attr in ["class", "id", "role", "itemprop", "rel", "data-role"] {
        if let Some(v) = el.attr(attr) {
            for w in v.split(|c: char| c.is_whitespace() || c == '-' || c == '_') {
                if !w.is_empty() && w.len() <= 40 {
                    words.push(w.to_ascii_lowercase());
                }
            }
        }
    }
    words
}

fn has_any(words: &[String], list: &[&str]) -> bool {
    words.iter().any(|w| list.contains(&w.as_str()))
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
                tag: BlockTag::Other,
            },
            stack: Vec::new(),
            blocks: Vec::new(),
            line: String::new(),
            spaced: String::new(),
            link_chars: 0,
            links_in_line: 0,
            anchor: None,
            related_links: Vec::new(),
            byline_text: None,
            byline_open: false,
            section_text: None,
            section_open: false,
            meta: Meta::default(),
        }
    }

    /// Ends the current line of text as a block.
    fn flush(&mut self) {
        let text = self.line.trim();
        if !text.is_empty() {
            // A line that is one link: the link holds every letter and digit of it (punctuation
            // such as a trailing `»` may sit outside).
            let total = text.chars().filter(|c| c.is_alphanumeric()).count();
            let single_link = self.links_in_line == 1 && total > 0 && self.link_chars >= total;
            let spaced = collapse(&self.spaced);
            self.blocks.push(Block {
                text: text.to_string(),
                spaced,
                state: self.state,
                single_link,
                used: false,
            });
        }
        self.line.clear();
        self.spaced.clear();
        self.link_chars = 0;
        self.links_in_line = 0;
    }

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
        match name {
            "script" | "style" | "noscript" | "template" | "svg" | "math" | "iframe" | "object" | "canvas"
            | "select" | "textarea" | "video" | "audio" | "button" | "input" => {
                self.state.skip = true;
                return false;
            }
            "head" => self.state.head = true,
            "title" if self.state.head => self.state.title = true,
            "meta" => self.meta_tag(el),
            "br" => {
                self.flush();
                return true;
            }
            "time"
                if self.meta.time_published.is_none()
                    && !self.state.comments
                    && !self.state.excluded
                    && !self.state.related =>
            {
                if let Some(d) = el.attr("datetime").and_then(dates::parse_iso) {
                    self.meta.time_published = Some(d);
                }
            }
            "a" => {
                self.anchor = Some(String::new());
                self.links_in_line += 1;
            }
            "td" | "th" => {
                self.line.push(' ');
                self.spaced.push(' ');
            }
            _ => {}
        }
        let block = is_block(name);
        if block {
            self.flush();
        } else {
            self.spaced.push(' ');
        }
        match name {
            "p" => self.state.tag = BlockTag::Paragraph,
            "h1" => self.state.tag = BlockTag::Title,
            "h2" | "h3" | "h4" | "h5" | "h6" => self.state.tag = BlockTag::Heading,
            _ if block => self.state.tag = BlockTag::Other,
            _ => {}
        }
        if matches!(name, "article" | "main") || el.attr("itemprop") == Some("articleBody") {
            self.state.article = true;
        }
        let words = marker_words(el);
        if has_any(&words, &["comment", "comments", "disqus", "respond", "discussion"]) {
            self.state.comments = true;
            self.state.excluded = true;
        }
        if has_any(&words, &["related", "also", "readmore", "more"]) && !self.state.comments {
            self.state.related = true;
            self.state.excluded = true;
        } else if matches!(name, "nav" | "aside" | "footer" | "form" | "menu")
            || (name == "header" && !self.state.article)
            || has_any(
                &words,
                &[
                    "ad",
                    "ads",
                    "advert",
                    "advertisement",
                    "adsbygoogle",
                    "banner",
                    "sponsored",
                    "sponsor",
                    "promo",
                    "share",
                    "sharing",
                    "social",
                    "newsletter",
                    "subscribe",
                    "popular",
                    "trending",
                    "sidebar",
                    "widget",
                    "ticker",
                    "cookie",
                    "breadcrumb",
                    "breadcrumbs",
                    "footer",
                    "nav",
                    "navbar",
                    "navigation",
                    "menu",
                    "complementary",
                    "outbrain",
                    "taboola",
                    "logo",
                    "masthead",
                ],
            )
        {
            self.state.excluded = true;
        }
        // Labels are small elements: a page container (`<article class="post category-markets">`,
        // `<body class="author-jane">`) is not one, and neither is anything in a sidebar.
        let label_candidate = !matches!(name, "article" | "main" | "body" | "html")
            && !self.state.comments
            && !self.state.excluded
            && !self.state.related;
        if has_any(&words, &["author", "byline", "reporter"]) && label_candidate {
            self.state.byline = true;
            if self.byline_text.is_none() {
                self.byline_text = Some(String::new());
                self.byline_open = true;
            }
        }
        if has_any(&words, &["section", "category", "kicker", "eyebrow"])
            && label_candidate
            && self.section_text.is_none()
        {
            self.state.section = true;
            self.section_text = Some(String::new());
            self.section_open = true;
        }
        true
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
                self.meta.page_title.push_str(t);
            }
            return;
        }
        push_collapsed(&mut self.line, t);
        push_collapsed(&mut self.spaced, t);
        if let Some(a) = self.anchor.as_mut() {
            push_collapsed(a, t);
            self.link_chars += t.chars().filter(|c| c.is_alphanumeric()).count();
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
            .unwrap_or("")
            .to_ascii_lowercase();
        let Some(content) = el.attr("content").map(str::trim).filter(|c| !c.is_empty()) else {
            return;
        };
        match key.as_str() {
            "og:title" | "twitter:title" if self.meta.og_title.is_none() => {
                self.meta.og_title = Some(collapse(content));
            }
            "article:published_time"
            | "datepublished"
            | "pubdate"
            | "publishdate"
            | "publish-date"
            | "date"
            | "dc.date.issued"
                if self.meta.published.is_none() =>
            {
                self.meta.published = dates::parse_iso(content);
            }
            "article:section" if self.meta.section.is_none() => {
                self.meta.section = Some(collapse(content));
            }
            "author" | "article:author" | "byl" | "dc.creator"
                if self.meta.author.is_none() && !content.starts_with("http") =>
            {
                self.meta.author = Some(collapse(content));
            }
            _ => {}
        }
    }
}

/// Appends `t` to `out`, collapsing whitespace runs (including no-break spaces) to one space.
fn push_collapsed(out: &mut String, t: &str) {
    for (i, word) in t.split(char::is_whitespace).enumerate() {
        if i > 0 && !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
}

fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Walks the document without recursion, in document order.
fn walk(doc: &Html) -> Walker {
    let mut w = Walker::new();
    let root = doc.tree.root();
    let mut node = root;
    'outer: loop {
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

/// Splits an HTML page into quotes (pushed to `quotes`) and the parts of its article.
pub(crate) fn parse_html(html: &str, options: &ParseOptions, quotes: &mut QuoteCollector<'_>) -> ArticleParts {
    let doc = Html::parse_document(html);
    let mut w = walk(&doc);
    drop(doc);
    let mut parts = ArticleParts::default();

    // Ticker lines, from any visible block outside comment widgets.
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

    // Comments closed?
    parts.comments_closed = w
        .blocks
        .iter()
        .any(|b| b.text.len() < 80 && text::starts_with_ignore_case(&b.text, "comments are closed"));

    // Title: the article's h1, og:title, any h1, the page title.
    let h1 = |article_only: bool| {
        w.blocks.iter().position(|b| {
            b.state.tag == BlockTag::Title
                && !b.used
                && b.text.len() <= text::MAX_TITLE_LEN
                && !b.state.comments
                && (if article_only {
                    b.state.article
                } else {
                    !b.state.excluded
                })
        })
    };
    if let Some(i) = h1(true).or_else(|| if w.meta.og_title.is_some() { None } else { h1(false) }) {
        parts.title = Some(w.blocks[i].text.clone());
        w.blocks[i].used = true;
    } else if let Some(t) = w.meta.og_title.take().filter(|t| t.len() <= text::MAX_TITLE_LEN) {
        parts.title = Some(t);
        if let Some(i) = h1(false) {
            if w.blocks[i].text == *parts.title.as_ref().unwrap_or(&String::new()) {
                w.blocks[i].used = true;
            }
        }
    } else {
        let t = collapse(&w.meta.page_title);
        let t = strip_site_name(&t);
        if !t.is_empty() && t.len() <= text::MAX_TITLE_LEN {
            parts.title = Some(t.to_string());
        }
    }

    // Byline and publication time.
    let mut byline_date = None;
    if let Some(raw) = w.byline_text.as_deref().map(collapse).filter(|s| !s.is_empty()) {
        if let Some(b) = dates::parse_dated_byline(&raw) {
            parts.byline = b.author;
            byline_date = b.published;
        } else {
            let name = raw
                .split(" Published")
                .next()
                .unwrap_or(&raw)
                .split(" Updated")
                .next()
                .unwrap_or(&raw)
                .trim();
            let name = name.strip_prefix("By ").unwrap_or(name).trim();
            if !name.is_empty() && name.split_whitespace().count() <= 8 {
                parts.byline = Some(name.to_string());
            }
        }
        // The byline's own blocks are not paragraphs; a marker on a large element (an author box
        // around the text) gave no byline, and its blocks stay.
        if (parts.byline.is_some() || byline_date.is_some()) && raw.split_whitespace().count() <= 40 {
            for b in w.blocks.iter_mut().filter(|b| b.state.byline && !b.used) {
                if raw.contains(collapse(&b.text).as_str()) {
                    b.used = true;
                }
            }
        }
    }
    if parts.byline.is_none() {
        parts.byline = w.meta.author.take();
    }
    parts.published_at = w.meta.published.or(w.meta.time_published).or(byline_date);

    // Section.
    parts.section = w.meta.section.take().or_else(|| {
        w.section_text
            .as_deref()
            .map(collapse)
            .filter(|s| !s.is_empty() && s.split_whitespace().count() <= 4)
    });
    if let Some(section) = &parts.section {
        // Only the label itself: whatever else sat inside a marked element stays.
        for b in w.blocks.iter_mut().filter(|b| b.state.section && !b.used) {
            if collapse(&b.text).eq_ignore_ascii_case(section) {
                b.used = true;
            }
        }
    }

    // Body paragraphs: <p> blocks of the article (of the whole page when it has no article).
    let has_article_paragraphs = w
        .blocks
        .iter()
        .any(|b| b.state.article && b.state.tag == BlockTag::Paragraph && !b.state.excluded && !b.used);
    let mut related: Vec<String> = Vec::new();
    for b in w.blocks.iter_mut() {
        let s = b.state;
        if b.used || s.tag != BlockTag::Paragraph || s.excluded || s.comments || (has_article_paragraphs && !s.article)
        {
            continue;
        }
        match text::Entry::new(&b.text, true).kind {
            Kind::Other | Kind::Bullet => {}
            Kind::Footer => continue,
            Kind::Widget | Kind::Nav | Kind::Junk => continue,
        }
        if parts.byline.is_none() && parts.paragraphs.is_empty() {
            if let Some(by) = dates::parse_dated_byline(&b.text) {
                parts.byline = by.author;
                parts.published_at = parts.published_at.or(by.published);
                b.used = true;
                continue;
            }
        }
        b.used = true;
        if b.single_link && b.text.split_whitespace().count() >= 3 {
            related.push(b.text.clone());
        } else if parts.paragraphs.last() != Some(&b.text) {
            parts.paragraphs.push(b.text.clone());
        }
    }

    // Pages without <p> paragraphs: read their visible blocks as lines of text.
    if parts.paragraphs.is_empty() {
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
    }

    // Related headlines: links of related-article boxes, and paragraphs that are one link.
    related.append(&mut w.related_links);
    let mut seen: HashSet<String> = HashSet::new();
    for r in related {
        if r.split_whitespace().count() >= 2 && !text::is_junk(&r) && seen.insert(r.clone()) {
            parts.related_headlines.push(r);
        }
    }
    for b in w.blocks.iter_mut() {
        if b.state.related && seen.contains(&b.text) {
            b.used = true;
        }
    }

    parts.dateline = parts
        .paragraphs
        .first()
        .and_then(|p| text::dateline(p))
        .map(str::to_string);
    parts.dropped = w.blocks.iter().filter(|b| !b.used).count();
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scan() {
        let deep = "<div>".repeat(1000);
        assert!(nesting_depth_exceeds(&deep, 512));
        let balanced = "<div><span>x</span></div>".repeat(10_000);
        assert!(!nesting_depth_exceeds(&balanced, 512));
        // End tags close what was opened after their start tag.
        let sloppy = "<div><span><b>x</div>".repeat(10_000);
        assert!(!nesting_depth_exceeds(&sloppy, 512));
        let lists = "<ul><li>a<li>b<p>c<p>d<br><img src=x></ul>".repeat(1000);
        assert!(!nesting_depth_exceeds(&lists, 512));
        let script = format!("<script>{}</script>", "<div>".repeat(1000));
        assert!(!nesting_depth_exceeds(&script, 512));
        let comment = format!("<!--{}-->", "<div>".repeat(1000));
        assert!(!nesting_depth_exceeds(&comment, 512));
        let attrs = "<div title='>'></div>".repeat(1000);
        assert!(!nesting_depth_exceeds(&attrs, 512));
        let stray = "</section>".repeat(100_000);
        assert!(!nesting_depth_exceeds(&stray, 512));
        // An HTML parser ignores the slash of `<div/>`: each stays open.
        let slashed = "<div/>".repeat(1000);
        assert!(nesting_depth_exceeds(&slashed, 512));
        let unquoted = "<div class=x/>".repeat(1000);
        assert!(nesting_depth_exceeds(&unquoted, 512));
        // In SVG and MathML it closes the element.
        let icons = format!("<svg>{}</svg>", "<path d='M0 0'/>".repeat(1000)).repeat(3);
        assert!(!nesting_depth_exceeds(&icons, 512));
        let formulas = format!("<math>{}</math><p>after", "<mi/>".repeat(1000));
        assert!(!nesting_depth_exceeds(&formulas, 512));
        let empty_icons = "<svg/>".repeat(1000);
        assert!(!nesting_depth_exceeds(&empty_icons, 512));
    }

    #[test]
    fn meta_charset() {
        assert_eq!(
            sniff_meta_charset(b"<html><head><meta charset=\"windows-1252\">"),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert_eq!(
            sniff_meta_charset(b"<head><META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=ISO-8859-1\">"),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert_eq!(sniff_meta_charset(b"<meta name=x content=y>"), None);
        assert_eq!(sniff_meta_charset(b"<meta charset=bogus>"), None);
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
