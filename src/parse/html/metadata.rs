//! The article's metadata from the page's machine-readable parts, most trusted first: JSON-LD
//! (`NewsArticle` and its kin), Open Graph, other `<meta>` tags. The visible page (`<time>`,
//! the byline) fills what they leave open; that is done by the caller.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::walk::{collapse, MetaTags};
use crate::parse::dates;

/// Longest JSON-LD text read, in bytes (a page's structured data is small).
const MAX_JSON_LD_BYTES: usize = 512 * 1024;

/// Metadata found in the page's structured data and meta tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub title: Option<String>,
    pub authors: Vec<String>,
    pub published: Option<DateTime<Utc>>,
    pub modified: Option<DateTime<Utc>>,
    pub section: Option<String>,
    pub language: Option<String>,
    pub canonical_url: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    /// The JSON-LD `articleBody`, whitespace collapsed: a hint of where the body is.
    pub article_body: Option<String>,
}

/// JSON-LD types that describe an article.
fn is_article_type(t: &str) -> bool {
    matches!(
        t,
        "NewsArticle"
            | "Article"
            | "BlogPosting"
            | "ReportageNewsArticle"
            | "AnalysisNewsArticle"
            | "OpinionNewsArticle"
            | "BackgroundNewsArticle"
            | "ReviewNewsArticle"
            | "LiveBlogPosting"
            | "Report"
            | "ScholarlyArticle"
            | "TechArticle"
            | "SocialMediaPosting"
    )
}

/// Whether a JSON-LD object's `@type` (a string or a list) names an article type.
fn has_article_type(obj: &Value) -> bool {
    match obj.get("@type") {
        Some(Value::String(t)) => is_article_type(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(is_article_type),
        _ => false,
    }
}

/// The first article object in a JSON-LD document (top level, a list, or an `@graph`).
fn find_article(doc: &Value, depth: usize) -> Option<&Value> {
    if depth > 4 {
        return None;
    }
    match doc {
        Value::Array(items) => items.iter().find_map(|v| find_article(v, depth + 1)),
        Value::Object(map) => {
            if has_article_type(doc) {
                return Some(doc);
            }
            map.get("@graph")
                .or_else(|| map.get("mainEntity"))
                .and_then(|g| find_article(g, depth + 1))
        }
        _ => None,
    }
}

/// A text value: a string, or the `name` / `url` / `@id` of an object, or the first of a list.
fn text_of<'v>(v: &'v Value, keys: &[&str]) -> Option<&'v str> {
    match v {
        Value::String(s) => Some(s.as_str()).filter(|s| !s.trim().is_empty()),
        Value::Array(items) => items.iter().find_map(|i| text_of(i, keys)),
        Value::Object(map) => keys.iter().find_map(|k| map.get(*k).and_then(|x| text_of(x, keys))),
        _ => None,
    }
}

/// Author names of a JSON-LD `author` value (a name, a person, or a list of either).
fn author_names(v: &Value) -> Vec<String> {
    let list: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut names: Vec<String> = Vec::new();
    for item in list {
        if let Some(name) = text_of(item, &["name"]).map(collapse) {
            if is_plausible_name(&name) && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// A name rather than a link or a sentence.
fn is_plausible_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with("http") && s.split_whitespace().count() <= 8
}

/// Reads the article object of the page's JSON-LD scripts into `meta`.
fn from_json_ld(scripts: &[String], meta: &mut Metadata) {
    for script in scripts.iter().filter(|s| s.len() <= MAX_JSON_LD_BYTES) {
        let Ok(doc) = serde_json::from_str::<Value>(script.trim().trim_end_matches(';')) else {
            continue;
        };
        let Some(article) = find_article(&doc, 0) else {
            continue;
        };
        let text = |key: &str| {
            article
                .get(key)
                .and_then(|v| text_of(v, &["name", "url", "@id"]))
                .map(collapse)
        };
        meta.title = text("headline").or_else(|| text("name"));
        meta.authors = article.get("author").map(author_names).unwrap_or_default();
        meta.published = text("datePublished").as_deref().and_then(dates::parse_iso);
        meta.modified = text("dateModified").as_deref().and_then(dates::parse_iso);
        meta.section = text("articleSection");
        meta.language = text("inLanguage");
        meta.canonical_url = text("url")
            .or_else(|| text("mainEntityOfPage"))
            .filter(|u| u.starts_with("http"));
        meta.description = text("description");
        meta.image_url = article
            .get("image")
            .and_then(|v| text_of(v, &["url", "contentUrl", "@id"]))
            .map(collapse);
        meta.article_body = text("articleBody").filter(|b| b.len() >= 200);
        return;
    }
}

/// The content of the first meta tag with one of these keys.
fn meta_value<'m>(tags: &'m MetaTags, keys: &[&str]) -> Option<&'m str> {
    keys.iter()
        .find_map(|k| tags.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()))
}

/// Fills what JSON-LD left open from Open Graph and other meta tags.
fn from_meta_tags(tags: &MetaTags, meta: &mut Metadata) {
    let get = |keys: &[&str]| meta_value(tags, keys).map(collapse);
    let date = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| meta_value(tags, &[k]).and_then(dates::parse_iso))
    };
    meta.title = meta
        .title
        .take()
        .or_else(|| get(&["og:title", "twitter:title", "dc.title"]));
    if meta.authors.is_empty() {
        let author = get(&[
            "article:author",
            "author",
            "byl",
            "dc.creator",
            "parsely-author",
            "sailthru.author",
        ]);
        meta.authors = author.filter(|a| is_plausible_name(a)).into_iter().collect();
    }
    meta.published = meta.published.or_else(|| {
        date(&[
            "article:published_time",
            "datepublished",
            "pubdate",
            "publishdate",
            "publish-date",
            "parsely-pub-date",
            "sailthru.date",
            "dc.date.issued",
            "dc.date",
            "date",
        ])
    });
    meta.modified = meta.modified.or_else(|| {
        date(&[
            "article:modified_time",
            "og:updated_time",
            "datemodified",
            "last-modified",
        ])
    });
    meta.section = meta
        .section
        .take()
        .or_else(|| get(&["article:section", "parsely-section", "section"]));
    meta.language = meta
        .language
        .take()
        .or_else(|| get(&["og:locale", "content-language", "language", "dc.language"]));
    meta.canonical_url = meta.canonical_url.take().or_else(|| get(&["og:url"]));
    meta.description = meta
        .description
        .take()
        .or_else(|| get(&["og:description", "description", "twitter:description", "dc.description"]));
    meta.image_url = meta
        .image_url
        .take()
        .or_else(|| get(&["og:image", "og:image:url", "twitter:image", "twitter:image:src"]));
}

/// The page's metadata from JSON-LD, then meta tags; `canonical` (`<link rel=canonical>`)
/// comes before `og:url`, and `lang` (`<html lang>`) after every declared language.
pub(crate) fn read(scripts: &[String], tags: &MetaTags, canonical: Option<&str>, lang: Option<&str>) -> Metadata {
    let mut meta = Metadata::default();
    from_json_ld(scripts, &mut meta);
    if meta.canonical_url.is_none() {
        meta.canonical_url = canonical.filter(|c| c.starts_with("http")).map(str::to_string);
    }
    from_meta_tags(tags, &mut meta);
    meta.language = meta
        .language
        .take()
        .or_else(|| lang.map(collapse))
        .filter(|l| !l.is_empty());
    meta.language = meta.language.map(|l| l.replace('_', "-"));
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> MetaTags {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn json_ld_news_article_in_a_graph() {
        let ld = r#"{"@context":"https://schema.org","@graph":[{"@type":"WebSite","name":"Site"},
            {"@type":["NewsArticle"],"headline":" Rates  held ","author":[{"@type":"Person","name":"Ann Lee"},{"name":"Bo Chen"}],
             "datePublished":"2024-05-02T09:30:00+02:00","dateModified":"2024-05-02T11:00:00Z","articleSection":["Economy"],
             "inLanguage":"de_DE","url":"https://news.test/rates","description":"The bank waited.",
             "image":{"@type":"ImageObject","url":"https://news.test/a.jpg"}}]}"#;
        let m = read(&[ld.to_string()], &tags(&[("og:title", "Other")]), None, Some("en"));
        assert_eq!(m.title.as_deref(), Some("Rates held"));
        assert_eq!(m.authors, ["Ann Lee", "Bo Chen"]);
        assert_eq!(m.published, Some(utc("2024-05-02T07:30:00Z")));
        assert_eq!(m.modified, Some(utc("2024-05-02T11:00:00Z")));
        assert_eq!(m.section.as_deref(), Some("Economy"));
        assert_eq!(m.language.as_deref(), Some("de-DE"));
        assert_eq!(m.canonical_url.as_deref(), Some("https://news.test/rates"));
        assert_eq!(m.description.as_deref(), Some("The bank waited."));
        assert_eq!(m.image_url.as_deref(), Some("https://news.test/a.jpg"));
        assert_eq!(m.article_body, None);
    }

    #[test]
    fn meta_tags_fill_what_json_ld_leaves_open() {
        let m = read(
            &[
                "not json".to_string(),
                r#"{"@type":"Organization","name":"X"}"#.to_string(),
            ],
            &tags(&[
                ("og:title", "Open title"),
                ("author", "Jo Park"),
                ("article:published_time", "2023-01-02T03:04:05Z"),
                ("article:modified_time", "2023-01-03T00:00:00Z"),
                ("article:section", "Sport"),
                ("og:url", "https://og.test/x"),
                ("description", "Plain description"),
                ("og:image", "https://og.test/i.png"),
            ]),
            Some("https://canonical.test/x"),
            Some("fr"),
        );
        assert_eq!(m.title.as_deref(), Some("Open title"));
        assert_eq!(m.authors, ["Jo Park"]);
        assert_eq!(m.published, Some(utc("2023-01-02T03:04:05Z")));
        assert_eq!(m.modified, Some(utc("2023-01-03T00:00:00Z")));
        assert_eq!(m.section.as_deref(), Some("Sport"));
        assert_eq!(m.language.as_deref(), Some("fr"));
        assert_eq!(m.canonical_url.as_deref(), Some("https://canonical.test/x"));
        assert_eq!(m.description.as_deref(), Some("Plain description"));
        assert_eq!(m.image_url.as_deref(), Some("https://og.test/i.png"));
    }

    #[test]
    fn author_links_are_not_names() {
        let m = read(
            &[],
            &tags(&[("article:author", "https://facebook.test/someone")]),
            None,
            None,
        );
        assert!(m.authors.is_empty());
        assert_eq!(m, Metadata::default());
    }
}
