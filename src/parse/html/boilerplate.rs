//! What an element is, judged from its tag and its `class`, `id`, `role` and `itemprop` words:
//! navigation, share bars, newsletter boxes, related-article lists, comment sections, bylines,
//! or a likely article container.
//!
//! Words are the parts of the attribute values split at spaces, `-` and `_` and at lower-to-upper
//! case changes (`articleBody` → `article`, `body`), lowercased.

/// Marks of an element, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Marks(pub u32);

impl Marks {
    /// Navigation, menus, breadcrumbs.
    pub const NAV: Marks = Marks(1);
    /// Sidebars and widgets (`<aside>`).
    pub const ASIDE: Marks = Marks(1 << 1);
    /// Page and article footers.
    pub const FOOTER: Marks = Marks(1 << 2);
    /// Reader comments.
    pub const COMMENTS: Marks = Marks(1 << 3);
    /// Related, recommended and "read more" lists.
    pub const RELATED: Marks = Marks(1 << 4);
    /// Share bars and social buttons.
    pub const SHARE: Marks = Marks(1 << 5);
    /// Advertisements and sponsored boxes.
    pub const AD: Marks = Marks(1 << 6);
    /// Newsletter and subscription boxes.
    pub const NEWSLETTER: Marks = Marks(1 << 7);
    /// Author, byline and date lines.
    pub const BYLINE: Marks = Marks(1 << 8);
    /// Hidden from readers (`hidden`, `display: none`).
    pub const HIDDEN: Marks = Marks(1 << 9);
    /// The page header outside the article (logo, masthead).
    pub const HEADER: Marks = Marks(1 << 10);
    /// Tag lists, section labels, breadcrumbs of topics.
    pub const LABEL: Marks = Marks(1 << 11);
    /// A likely article container (`<article>`, `itemprop=articleBody`, `article-body`).
    pub const CONTENT: Marks = Marks(1 << 12);
    /// Figure captions and photo credits.
    pub const CAPTION: Marks = Marks(1 << 13);
    /// Forms and interactive widgets.
    pub const FORM: Marks = Marks(1 << 14);
    /// An article container by name: `<article>`, `<main>`, `itemprop=articleBody`, or a pair
    /// of words such as `article-body`, `entry-content`, `story-text`.
    pub const ARTICLE: Marks = Marks(1 << 15);

    /// Marks that take an element and everything in it out of the article body.
    pub const BOILERPLATE: Marks = Marks(
        Self::NAV.0
            | Self::ASIDE.0
            | Self::FOOTER.0
            | Self::COMMENTS.0
            | Self::RELATED.0
            | Self::SHARE.0
            | Self::AD.0
            | Self::NEWSLETTER.0
            | Self::BYLINE.0
            | Self::HIDDEN.0
            | Self::HEADER.0
            | Self::LABEL.0
            | Self::CAPTION.0
            | Self::FORM.0,
    );

    /// Marks whose inline elements (`<span class="caption">` in a paragraph) are left out of
    /// the line around them, text and all.
    pub const INLINE_DROPPED: Marks = Marks(Self::CAPTION.0 | Self::HIDDEN.0 | Self::AD.0 | Self::SHARE.0);

    /// Whether any of `other`'s bits are set.
    pub const fn any(self, other: Marks) -> bool {
        self.0 & other.0 != 0
    }

    /// Both sets of bits.
    pub const fn with(self, other: Marks) -> Marks {
        Marks(self.0 | other.0)
    }

    /// These bits less `other`'s.
    pub const fn without(self, other: Marks) -> Marks {
        Marks(self.0 & !other.0)
    }
}

/// Word roots (matched at the start of a word) and the mark they give. Strong marks hold even
/// on elements that also look like content; weak ones do not.
const STRONG: &[(&str, Marks)] = &[
    ("comment", Marks::COMMENTS),
    ("disqus", Marks::COMMENTS),
    ("respond", Marks::COMMENTS),
    ("discussion", Marks::COMMENTS),
    ("related", Marks::RELATED),
    ("recommend", Marks::RELATED),
    ("readmore", Marks::RELATED),
    ("outbrain", Marks::RELATED),
    ("taboola", Marks::RELATED),
    ("trending", Marks::RELATED),
    ("popular", Marks::RELATED),
    ("share", Marks::SHARE),
    ("sharing", Marks::SHARE),
    ("social", Marks::SHARE),
    ("newsletter", Marks::NEWSLETTER),
    ("subscribe", Marks::NEWSLETTER),
    ("subscription", Marks::NEWSLETTER),
    ("signup", Marks::NEWSLETTER),
    ("paywall", Marks::NEWSLETTER),
    ("advert", Marks::AD),
    ("adsbygoogle", Marks::AD),
    ("adslot", Marks::AD),
    ("adunit", Marks::AD),
    ("adwrap", Marks::AD),
    ("sponsor", Marks::AD),
    ("promo", Marks::AD),
    ("dfp", Marks::AD),
    ("gpt", Marks::AD),
    ("breadcrumb", Marks::NAV),
    ("navbar", Marks::NAV),
    ("navigation", Marks::NAV),
    ("cookie", Marks::NAV),
    ("consent", Marks::NAV),
    ("byline", Marks::BYLINE),
    ("dateline", Marks::BYLINE),
    ("timestamp", Marks::BYLINE),
    ("author", Marks::BYLINE),
    ("caption", Marks::CAPTION),
    ("credit", Marks::CAPTION),
    ("modal", Marks::FORM),
    ("popup", Marks::FORM),
];

/// Whole words (matched exactly) and their marks.
const STRONG_WORDS: &[(&str, Marks)] = &[
    ("ad", Marks::AD),
    ("ads", Marks::AD),
    ("nav", Marks::NAV),
    ("more", Marks::RELATED),
    ("also", Marks::RELATED),
    ("tags", Marks::LABEL),
    ("tag", Marks::LABEL),
    ("topics", Marks::LABEL),
    ("keywords", Marks::LABEL),
    ("print", Marks::SHARE),
    ("toolbar", Marks::SHARE),
    ("tools", Marks::SHARE),
];

/// Word roots of boxes that sometimes wrap the article too (a sidebar layout, a "widget" that
/// holds the text): they count only on elements without content words.
const WEAK: &[(&str, Marks)] = &[
    ("sidebar", Marks::ASIDE),
    ("widget", Marks::ASIDE),
    ("aside", Marks::ASIDE),
    ("rail", Marks::ASIDE),
    ("footer", Marks::FOOTER),
    ("menu", Marks::NAV),
    ("masthead", Marks::HEADER),
    ("header", Marks::HEADER),
    ("logo", Marks::HEADER),
    ("banner", Marks::AD),
    ("category", Marks::LABEL),
    ("meta", Marks::BYLINE),
    ("date", Marks::BYLINE),
];

/// Words of likely article containers.
const CONTENT_WORDS: &[&str] = &[
    "article",
    "articlebody",
    "content",
    "entry",
    "post",
    "story",
    "body",
    "main",
    "text",
    "blog",
    "news",
];

/// First and second words of article container names (`article-body`, `entry-content`).
const ARTICLE_FIRST: &[&str] = &["article", "entry", "post", "story", "single", "news", "blog", "main"];
const ARTICLE_SECOND: &[&str] = &["body", "content", "text", "entry", "copy", "article"];

/// Whether consecutive words name an article container.
fn names_article(words: &[String]) -> bool {
    words
        .windows(2)
        .any(|p| ARTICLE_FIRST.contains(&p[0].as_str()) && ARTICLE_SECOND.contains(&p[1].as_str()))
        || words.iter().any(|w| {
            matches!(
                w.as_str(),
                "articlebody" | "articletext" | "storybody" | "entrycontent" | "postcontent"
            )
        })
}

/// Splits attribute values into lowercased words (at spaces, `-`, `_` and camelCase humps).
pub(crate) fn words(values: &[&str], out: &mut Vec<String>) {
    out.clear();
    for value in values {
        for part in value.split(|c: char| c.is_whitespace() || c == '-' || c == '_' || c == ':') {
            if part.is_empty() || part.len() > 40 {
                continue;
            }
            let mut word = String::new();
            let mut prev_lower = false;
            for c in part.chars() {
                if c.is_uppercase() && prev_lower && !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                prev_lower = c.is_lowercase() || c.is_ascii_digit();
                word.extend(c.to_lowercase());
            }
            if !word.is_empty() {
                out.push(word);
            }
        }
    }
}

/// The marks of an element from its tag name, its words, and whether it sits in an article.
pub(crate) fn classify(tag: &str, words: &[String], in_article: bool) -> Marks {
    let mut marks = tag_marks(tag, in_article);
    let content = words.iter().any(|w| CONTENT_WORDS.contains(&w.as_str()));
    for w in words {
        for (root, mark) in STRONG {
            if w.starts_with(root) {
                marks = marks.with(*mark);
            }
        }
        for (word, mark) in STRONG_WORDS {
            if w == word {
                marks = marks.with(*mark);
            }
        }
        if !content {
            for (root, mark) in WEAK {
                if w.starts_with(root) {
                    marks = marks.with(*mark);
                }
            }
        }
    }
    // An embedded post (`social-media-embed`, `embed-twitter`) is part of the text, not a
    // share bar.
    if words.iter().any(|w| w.starts_with("embed")) {
        marks = marks.without(Marks::SHARE);
    }
    if names_article(words) {
        marks = marks.with(Marks::ARTICLE).with(Marks::CONTENT);
    }
    if content && !marks.any(Marks::BOILERPLATE) {
        marks = marks.with(Marks::CONTENT);
    }
    // A container named after its article (`article-header`, `post-author`) keeps its other marks.
    marks
}

/// Marks given by the tag name alone.
fn tag_marks(tag: &str, in_article: bool) -> Marks {
    match tag {
        "nav" | "menu" => Marks::NAV,
        "aside" => Marks::ASIDE,
        "footer" => Marks::FOOTER,
        "header" if !in_article => Marks::HEADER,
        "form" | "button" | "select" | "dialog" => Marks::FORM,
        "figcaption" => Marks::CAPTION,
        "article" | "main" => Marks::CONTENT.with(Marks::ARTICLE),
        _ => Marks::default(),
    }
}

/// The attributes an element's words come from, `""` when absent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NameAttrs<'a> {
    pub class: &'a str,
    pub id: &'a str,
    pub role: &'a str,
    pub itemprop: &'a str,
    pub data_role: &'a str,
}

impl NameAttrs<'_> {
    /// The values, in a fixed order.
    pub(crate) fn values(&self) -> [&str; 5] {
        [self.class, self.id, self.role, self.itemprop, self.data_role]
    }
}

/// What an element's tag and words say about it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Described {
    /// Its marks ([`classify`]), hiding classes and `itemprop=articleBody` included.
    pub marks: Marks,
    /// A word names the article body (`articleBody`): what is inside is the article.
    pub article_body: bool,
    /// A word names an author or byline label.
    pub byline: bool,
    /// A word names a section or category label.
    pub section: bool,
}

/// Describes an element from its tag, its attributes' words and whether it sits in an article;
/// `scratch` holds the words.
pub(crate) fn describe(tag: &str, attrs: &NameAttrs<'_>, in_article: bool, scratch: &mut Vec<String>) -> Described {
    let values = attrs.values();
    words(&values, scratch);
    let mut marks = classify(tag, scratch, in_article);
    if class_hides(attrs.class) {
        marks = marks.with(Marks::HIDDEN);
    }
    if attrs.itemprop == "articleBody" {
        marks = marks.with(Marks::CONTENT).with(Marks::ARTICLE);
    }
    let has = |list: &[&str]| scratch.iter().any(|w| list.contains(&w.as_str()));
    Described {
        marks,
        article_body: has(&["articlebody"]),
        byline: has(&["author", "byline", "reporter"]),
        section: has(&["section", "category", "kicker", "eyebrow"]),
    }
}

/// ASCII case-insensitive search of `needle` (lowercase) in `hay`.
fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Whether an inline `style` hides the element.
pub(crate) fn style_hides(style: &str) -> bool {
    if !contains_ignore_case(style, "none") && !contains_ignore_case(style, "hidden") {
        return false;
    }
    let s: String = style
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    s.contains("display:none") || s.contains("visibility:hidden")
}

/// Whether a class list names one of the usual hiding classes as a whole token (`hidden`,
/// `d-none`); a word inside a longer name (`field-label-hidden`) says nothing.
pub(crate) fn class_hides(class: &str) -> bool {
    class.split_whitespace().any(|c| {
        matches!(
            c.to_ascii_lowercase().as_str(),
            "hidden" | "hide" | "d-none" | "is-hidden" | "display-none"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks_of(tag: &str, values: &[&str]) -> Marks {
        let mut w = Vec::new();
        words(values, &mut w);
        classify(tag, &w, false)
    }

    #[test]
    fn words_split_at_separators_and_camel_case() {
        let mut w = Vec::new();
        words(&["share-bar articleBody", "main_col"], &mut w);
        assert_eq!(w, ["share", "bar", "article", "body", "main", "col"]);
    }

    #[test]
    fn boilerplate_boxes_are_marked() {
        assert!(marks_of("div", &["social-share"]).any(Marks::SHARE));
        assert!(marks_of("div", &["newsletter-signup"]).any(Marks::NEWSLETTER));
        assert!(marks_of("section", &["related-stories"]).any(Marks::RELATED));
        assert!(marks_of("div", &["comments"]).any(Marks::COMMENTS));
        assert!(marks_of("nav", &[]).any(Marks::NAV));
        assert!(marks_of("div", &["ad-slot"]).any(Marks::AD));
        assert!(!marks_of("div", &["adapter", "load"]).any(Marks::BOILERPLATE));
        assert!(!marks_of("div", &["social-media-embed"]).any(Marks::BOILERPLATE));
        assert!(marks_of("div", &["social-links"]).any(Marks::SHARE));
    }

    #[test]
    fn weak_words_do_not_mark_content_containers() {
        assert!(marks_of("div", &["sidebar"]).any(Marks::ASIDE));
        assert_eq!(marks_of("div", &["content has-sidebar"]), Marks::CONTENT);
        assert!(marks_of("div", &["article-body"]).any(Marks::ARTICLE));
        assert!(marks_of("div", &["inner entry-content"]).any(Marks::ARTICLE));
        assert!(marks_of("div", &["articleBody"]).any(Marks::ARTICLE));
        assert!(!marks_of("div", &["article-list"]).any(Marks::ARTICLE));
        assert!(marks_of("div", &["story-meta"]).any(Marks::CONTENT));
    }

    #[test]
    fn descriptions_carry_label_words_hiding_classes_and_article_body() {
        let mut scratch = Vec::new();
        let attrs = NameAttrs {
            class: "post-author hidden",
            id: "articlebody",
            itemprop: "articleBody",
            ..NameAttrs::default()
        };
        let d = describe("div", &attrs, false, &mut scratch);
        assert!(d.marks.any(Marks::HIDDEN) && d.marks.any(Marks::ARTICLE) && d.marks.any(Marks::BYLINE));
        assert!(d.article_body && d.byline && !d.section);
        let kicker = NameAttrs {
            id: "story-kicker",
            ..NameAttrs::default()
        };
        let d = describe("span", &kicker, true, &mut scratch);
        assert!(d.section && !d.byline && !d.article_body);
        assert_eq!(d.marks, Marks::CONTENT);
    }

    #[test]
    fn hidden_styles() {
        assert!(style_hides("color: red; display: none"));
        assert!(style_hides("VISIBILITY:hidden"));
        assert!(!style_hides("display: block"));
        assert!(style_hides("Display : NONE"));
        assert!(!style_hides("border: none"));
        assert!(class_hides("rdf-meta hidden"));
        assert!(!class_hides("field-label-hidden"));
    }
}
