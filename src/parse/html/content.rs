//! Content scoring: which element holds the article, and which of its blocks are the body.
//!
//! Every block gets a value: its letters outside links, weighted by the kind of block (a
//! paragraph counts fully, a list item or a heading less), minus the letters of its links, and
//! negative when it sits in boilerplate (navigation, share bars, related lists, comments …). An
//! element's score is the sum over the blocks of its subtree, and the article is the element
//! with the highest score: the smallest subtree that holds the paragraphs, since every block of
//! navigation around them costs. Blocks whose text the page's JSON-LD `articleBody` also holds
//! count three times, which keeps teasers and sidebars with long paragraphs from winning.
//!
//! The body is then the blocks of that element, in order, less those inside boilerplate
//! elements within it, headlines, and blocks that are mostly links or known widget words.

use super::boilerplate::Marks;
use super::walk::{Block, BlockKind, ElementInfo, Walker, NO_ELEMENT};
use crate::parse::text::{self, Kind};

/// Share of a block's letters in links above which it is navigation, not text.
const MAX_LINK_DENSITY: f32 = 0.5;

/// What a letter of link text costs in a block that is mostly text.
const LINK_COST: f32 = 0.5;

/// List items and table rows at least this long (letters) weigh as much as text.
const LONG_BLOCK: u32 = 80;

/// Blocks shorter than this (letters) weigh less: labels, buttons, datelines.
const SHORT_BLOCK: u32 = 25;

/// How much a letter of a block weighs in its element's score, by block kind.
fn kind_weight(kind: BlockKind) -> f32 {
    match kind {
        BlockKind::Paragraph | BlockKind::Quote => 1.0,
        BlockKind::Pre => 0.8,
        BlockKind::Text => 0.7,
        BlockKind::Item | BlockKind::Row => 0.4,
        BlockKind::Heading => 0.3,
        BlockKind::Title | BlockKind::Caption => 0.0,
    }
}

/// What is known of the page's layout when judging marks.
pub(crate) struct Layout {
    /// Letters of plain text per element subtree ([`text_sums`]).
    texts: Vec<f32>,
    /// Whether the element or one inside it is an article container ([`Marks::ARTICLE`]).
    holds_article: Vec<bool>,
    /// Whether the page has an article container at all.
    any_article: bool,
}

impl Layout {
    fn new(w: &Walker) -> Self {
        let mut holds_article: Vec<bool> = w.elements.iter().map(|e| e.marks.any(Marks::ARTICLE)).collect();
        for i in (0..w.elements.len()).rev() {
            let parent = w.elements[i].parent;
            if holds_article[i] && parent != NO_ELEMENT {
                holds_article[parent as usize] = true;
            }
        }
        Layout {
            texts: text_sums(w),
            any_article: holds_article.first().copied().unwrap_or(false),
            holds_article,
        }
    }

    /// Whether element `i`'s marks take it out of the text of element `of` around it. Marks on
    /// an element that holds an article container, or (on pages without one) half of the text
    /// or more, name a layout (`header-style-2`, `has-sidebar`), not a box; a comment section's
    /// and a hidden element's always count (pages hide structured copies of the article).
    fn is_boilerplate(&self, w: &Walker, i: usize, of: usize) -> bool {
        let marks = w.elements[i].marks;
        if !marks.any(Marks::BOILERPLATE) {
            return false;
        }
        if marks.any(Marks::COMMENTS.with(Marks::HIDDEN)) {
            return true;
        }
        if self.any_article {
            !self.holds_article[i]
        } else {
            self.texts[i] < 0.5 * self.texts[of]
        }
    }

    /// For each element, whether it or an ancestor is boilerplate, judged against the page.
    fn flags(&self, w: &Walker) -> Vec<bool> {
        let mut flags = vec![false; w.elements.len()];
        for (i, e) in w.elements.iter().enumerate() {
            let inherited = e.parent != NO_ELEMENT && flags[e.parent as usize];
            flags[i] = inherited || self.is_boilerplate(w, i, 0);
        }
        flags
    }
}

/// The value of one block for the score of the elements around it.
fn block_value(block: &Block, in_boilerplate: bool, hint: Hint) -> f32 {
    let letters = block.chars as f32;
    let links = block.link_chars as f32;
    if block.chars == 0 {
        return 0.0;
    }
    if in_boilerplate {
        return -0.5 * letters;
    }
    if links > MAX_LINK_DENSITY * letters {
        return -links;
    }
    let mut good = (letters - links) * kind_weight(block.state.kind);
    if block.chars < SHORT_BLOCK {
        good *= 0.3;
    } else if block.chars >= LONG_BLOCK && matches!(block.state.kind, BlockKind::Item | BlockKind::Row) {
        // A long list item with few links is a point of the text, not a menu entry.
        good *= 2.0;
    }
    match hint {
        // Structured copies of the body are often cut short: what they lack still counts.
        Hint::Absent | Hint::Lacks => good - LINK_COST * links,
        Hint::Holds => 3.0 * good - LINK_COST * links,
    }
}

/// What the page's JSON-LD `articleBody` says about a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    /// No usable `articleBody`, or the block is too short to tell.
    Absent,
    /// The `articleBody` holds the block's text.
    Holds,
    /// The `articleBody` does not hold it.
    Lacks,
}

/// Sums per-block values over each element's subtree.
fn subtree_sums(elements: &[ElementInfo], blocks: &[Block], values: &[f32]) -> Vec<f32> {
    let mut sums = vec![0.0f32; elements.len()];
    for (b, v) in blocks.iter().zip(values) {
        if b.state.element != NO_ELEMENT {
            sums[b.state.element as usize] += v;
        }
    }
    // Children come after their parents in document order: add each to its parent, last first.
    for i in (0..elements.len()).rev() {
        let parent = elements[i].parent;
        if parent != NO_ELEMENT {
            sums[parent as usize] += sums[i];
        }
    }
    sums
}

/// The index of the highest sum; the innermost of equal ones. `None` when no sum is positive.
fn best_element(sums: &[f32]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &s) in sums.iter().enumerate() {
        if s > 0.0 && best.is_none_or(|b| s >= sums[b]) {
            best = Some(i);
        }
    }
    best
}

/// The word trigrams of the page's JSON-LD `articleBody`: a block's text is compared by its
/// words, since the structured copy differs in spaces and punctuation.
pub(crate) struct HintIndex {
    grams: std::collections::HashSet<u64>,
}

/// Hashes of the lowercased word trigrams of `text` (words: runs of letters and digits).
fn word_trigrams(text: &str) -> Vec<u64> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words
        .windows(3)
        .map(|w| xxhash_rust::xxh3::xxh3_64(format!("{} {} {}", w[0], w[1], w[2]).as_bytes()))
        .collect()
}

impl HintIndex {
    /// The index of a hint text.
    pub(crate) fn new(text: &str) -> Self {
        HintIndex {
            grams: word_trigrams(text).into_iter().collect(),
        }
    }

    /// Whether the hint holds most (four fifths) of the words of `text`, at least three
    /// trigrams of them.
    pub(crate) fn covers(&self, text: &str) -> bool {
        let grams = word_trigrams(text);
        let found = grams.iter().filter(|g| self.grams.contains(g)).count();
        grams.len() >= 3 && found * 5 >= grams.len() * 4
    }

    /// What the hint says about a block: most of its trigrams in the hint, or few of them.
    fn judge(&self, block: &Block) -> Hint {
        if block.chars < SHORT_BLOCK || block.state.kind != BlockKind::Paragraph {
            return Hint::Absent;
        }
        let grams = word_trigrams(&block.text);
        if grams.is_empty() {
            return Hint::Absent;
        }
        let found = grams.iter().filter(|g| self.grams.contains(g)).count() as f32 / grams.len() as f32;
        if found >= 0.7 {
            Hint::Holds
        } else if found <= 0.2 {
            Hint::Lacks
        } else {
            Hint::Absent
        }
    }
}

/// The element holding the article, found by scoring. With `ignore_marks`, boilerplate marks
/// are not counted (for pages whose every container carries one).
fn article_root(w: &Walker, hint: Option<&HintIndex>, layout: &Layout, ignore_marks: bool) -> Option<usize> {
    let flags = layout.flags(w);
    let values: Vec<f32> = w
        .blocks
        .iter()
        .map(|b| {
            let e = b.state.element;
            let boiler = !ignore_marks && e != NO_ELEMENT && flags[e as usize];
            block_value(b, boiler, hint.map_or(Hint::Absent, |h| h.judge(b)))
        })
        .collect();
    let sums = subtree_sums(&w.elements, &w.blocks, &values);
    let root = container_of(w, best_element(&sums)?);
    Some(narrow_to_article(w, &sums, root))
}

/// A paragraph, heading or list item that won alone stands for the element around it: the
/// body is a container of blocks, and its neighbours (a paragraph that is mostly a link) are
/// judged one by one.
fn container_of(w: &Walker, best: usize) -> usize {
    let is_text_block = w
        .blocks
        .iter()
        .any(|b| b.state.element as usize == best && b.state.kind != BlockKind::Text);
    let parent = w.elements[best].parent;
    if is_text_block && parent != NO_ELEMENT {
        parent as usize
    } else {
        best
    }
}

/// Share of the best element's score an article container inside it must hold to be taken
/// instead: the rest (teasers of other stories, promotions under the text) is left out.
const ARTICLE_SHARE: f32 = 0.6;

/// The best-scoring article container inside `root` ([`Marks::ARTICLE`]) when it holds most of
/// the root's score, else `root`.
fn narrow_to_article(w: &Walker, sums: &[f32], root: usize) -> usize {
    let end = w.elements[root].end as usize;
    let best = (root + 1..end)
        .filter(|&i| w.elements[i].marks.any(Marks::ARTICLE))
        .max_by(|&a, &b| sums[a].total_cmp(&sums[b]));
    match best {
        Some(i) if sums[i] >= ARTICLE_SHARE * sums[root] => i,
        _ => root,
    }
}

/// Letters of plain text (outside links, in text-like blocks) per element subtree.
fn text_sums(w: &Walker) -> Vec<f32> {
    let values: Vec<f32> = w
        .blocks
        .iter()
        .map(|b| {
            let plain = b.chars.saturating_sub(b.link_chars) as f32;
            plain * kind_weight(b.state.kind).min(1.0).ceil()
        })
        .collect();
    subtree_sums(&w.elements, &w.blocks, &values)
}

/// Whether a boilerplate element between the block and the root takes the block out. Marks on
/// elements that hold half of the root's text or more are not believed: they name a layout
/// (`has-sidebar`, `post-author-box`), not a box.
fn removed_by_marks(w: &Walker, block: &Block, root: usize, layout: &Layout) -> bool {
    let mut e = block.state.element;
    while e != NO_ELEMENT && e as usize > root {
        let info = &w.elements[e as usize];
        if layout.is_boilerplate(w, e as usize, root) {
            return true;
        }
        e = info.parent;
    }
    false
}

/// Whether a block of the article's element reads as body text.
fn is_body_block(block: &Block) -> bool {
    if block.used || matches!(block.state.kind, BlockKind::Title | BlockKind::Caption) {
        return false;
    }
    if block.chars == 0 {
        return is_rule_line(block);
    }
    // A paragraph that opens with a link and goes on in words stays (`<a>Shares rose</a>,
    // Reuters`); a paragraph that is one link is a related headline, decided by the caller.
    let paragraph_with_words =
        block.state.kind == BlockKind::Paragraph && (block.single_link || block.link_chars < block.chars);
    if block.link_chars as f32 > MAX_LINK_DENSITY * block.chars as f32 && !paragraph_with_words {
        return false;
    }
    // Table rows are figures by nature: only words mark them as widgets.
    block.state.kind == BlockKind::Row
        || !matches!(
            text::Entry::new(&block.text, true).kind,
            Kind::Widget | Kind::Nav | Kind::Junk | Kind::Footer
        )
}

/// A paragraph that is a rule typed as underscores (`___`), which wire copy puts between its
/// sections: part of the text as written.
fn is_rule_line(block: &Block) -> bool {
    block.state.kind == BlockKind::Paragraph && block.text.len() >= 3 && block.text.bytes().all(|b| b == b'_')
}

/// The blocks of the article body, in page order (indices into `w.blocks`).
pub(crate) fn article_blocks(w: &Walker, hint: Option<&HintIndex>) -> Vec<usize> {
    let layout = Layout::new(w);
    for ignore_marks in [false, true] {
        let Some(root) = article_root(w, hint, &layout, ignore_marks) else {
            continue;
        };
        let end = w.elements[root].end as usize;
        let chosen: Vec<usize> = w
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                let e = b.state.element as usize;
                b.state.element != NO_ELEMENT && (root..end).contains(&e)
            })
            .filter(|(_, b)| is_body_block(b) && (ignore_marks || !removed_by_marks(w, b, root, &layout)))
            .map(|(i, _)| i)
            .collect();
        if !chosen.is_empty() {
            return chosen;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::html::walk::walk;

    fn body(html: &str) -> Vec<String> {
        let w = walk(&scraper::Html::parse_document(html));
        article_blocks(&w, None)
            .into_iter()
            .map(|i| w.blocks[i].text.clone())
            .collect()
    }

    const PARA_A: &str = "The council approved the new budget on Tuesday after a long debate, officials said.";
    const PARA_B: &str = "Spending on schools rises by a tenth, while road repairs get a smaller share than last year.";

    #[test]
    fn the_paragraphs_container_wins_over_navigation_and_sidebars() {
        let html = format!(
            "<body><nav><ul><li><a href=/a>Home</a></li><li><a href=/b>World news</a></li></ul></nav>\
             <div class=main><h1>Budget passes</h1><div class=text><p>{PARA_A}</p><h2>Schools</h2><p>{PARA_B}</p>\
             <div class=share-bar>Share this story on social media now</div></div></div>\
             <div class=sidebar><p>Sign up for our evening briefing, delivered to your inbox daily.</p></div></body>"
        );
        assert_eq!(body(&html), [PARA_A, "Schools", PARA_B]);
    }

    #[test]
    fn lists_and_tables_in_the_body_give_one_paragraph_per_item_and_row() {
        let html = format!(
            "<body><article><p>{PARA_A}</p><ul><li>First point</li><li>Second point</li></ul>\
             <table><tr><th>Name</th><th>Votes</th></tr><tr><td>Yes</td><td>12</td></tr></table><p>{PARA_B}</p></article></body>"
        );
        assert_eq!(
            body(&html),
            [PARA_A, "First point", "Second point", "Name Votes", "Yes 12", PARA_B]
        );
    }

    #[test]
    fn underscore_rules_between_sections_stay_and_other_marks_do_not() {
        let html = format!(
            "<body><article><p>{PARA_A}</p><p>___</p><p>{PARA_B}</p><p>* * *</p><div>___</div></article></body>"
        );
        assert_eq!(body(&html), [PARA_A, "___", PARA_B]);
    }

    #[test]
    fn link_lists_inside_the_article_are_left_out() {
        let html = format!(
            "<body><article><p>{PARA_A}</p><ul><li><a href=/1>Another story about the council budget</a></li>\
             <li><a href=/2>Yet another story about it</a></li></ul><p>{PARA_B}</p></article></body>"
        );
        assert_eq!(body(&html), [PARA_A, PARA_B]);
    }

    #[test]
    fn a_layout_class_on_the_article_container_does_not_remove_it() {
        let html = format!("<body><div class=\"layout sidebar-right\"><div class=widget><p>{PARA_A}</p><p>{PARA_B}</p></div></div></body>");
        assert_eq!(body(&html), [PARA_A, PARA_B]);
    }

    #[test]
    fn the_json_ld_body_is_matched_by_words() {
        let html = format!("<body><p>{PARA_A}</p><p>{PARA_B}</p><p>Short one</p></body>");
        let w = walk(&scraper::Html::parse_document(&html));
        let hint = HintIndex::new(&PARA_A.replace(", ", " , ").to_uppercase());
        let judged: Vec<Hint> = w.blocks.iter().map(|b| hint.judge(b)).collect();
        assert_eq!(judged, [Hint::Holds, Hint::Lacks, Hint::Absent]);
    }
}
