//! Checks run on the raw markup before it is parsed: the nesting depth guard and the `<meta>`
//! charset sniffer.

use encoding_rs::Encoding;

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
}
