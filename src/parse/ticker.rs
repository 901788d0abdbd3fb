//! The grammar of one line of a market ticker strip.
//!
//! ```text
//! line      = symbol ws price ws words ws [arrow ws] change ws "(" percent "%" ")"
//! symbol    = (upper | digit) { upper | digit } { ("-" | ".") (upper | digit) { upper | digit } }
//! price     = number                       ; unsigned, "7,454" or "0.97"
//! words     = "Increased By" | "Decreased By" | "No Change"
//! arrow     = "▲" | "▼" | "▴" | "▾"
//! change    = [sign] number
//! percent   = [sign] number
//! number    = digits ["." digits]          ; digits may carry thousands separators: 1-3 digits, then ",ddd" groups
//! ```
//!
//! The whole line must match; leading and trailing whitespace is ignored. The scanner is
//! hand-written, allocates nothing and rejects non-ticker lines after a few bytes.

use rust_decimal::Decimal;

use crate::model::{Direction, QuoteKind};

use super::ParseOptions;

/// Most integer digits a ticker number may have (the event schema is `decimal(18, 6)`).
pub const MAX_INTEGER_DIGITS: usize = 12;
/// Most fractional digits a ticker number may have (the event schema is `decimal(18, 6)`).
pub const MAX_FRACTION_DIGITS: usize = 6;
/// Longest symbol accepted, in bytes.
pub const MAX_SYMBOL_LEN: usize = 20;

/// One ticker line, read by [`parse_ticker_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickerLine<'a> {
    /// The symbol as printed (`AGL`, `KSE100`), borrowed from the line.
    pub symbol: &'a str,
    /// Index when the symbol is one of the configured index symbols or the line has no arrow.
    pub kind: QuoteKind,
    /// Last price or index level, exact, thousands separators removed, printed scale kept.
    pub price: Decimal,
    /// Absolute change, signed as printed.
    pub change: Decimal,
    /// Change in percent, signed as printed (`-4.32` for `(-4.32%)`).
    pub change_pct: Decimal,
    /// Direction taken from the words (`Increased By`, `Decreased By`, `No Change`).
    pub direction: Direction,
    /// Whether the line printed an arrow (`▲`/`▼`) before the change.
    pub has_arrow: bool,
}

/// Reads one ticker line such as `AGL 37.94 Decreased By ▼ -0.54 (-1.4%)`.
///
/// Returns `None` unless the whole line (surrounding whitespace aside) follows the ticker
/// grammar and every number fits `decimal(18, 6)`. Never panics, runs in time linear in the
/// line and allocates nothing.
pub fn parse_ticker_line<'a>(line: &'a str, options: &ParseOptions) -> Option<TickerLine<'a>> {
    let b = line.as_bytes();
    let mut s = Scanner { text: line, b, pos: 0 };
    s.skip_ws();
    let symbol = s.symbol()?;
    s.require_ws()?;
    let price = s.number(false)?;
    s.require_ws()?;
    let direction = s.words()?;
    s.require_ws()?;
    let has_arrow = s.arrow();
    if has_arrow {
        s.skip_ws();
    }
    let change = s.number(true)?;
    s.skip_ws();
    s.expect(b'(')?;
    s.skip_ws();
    let change_pct = s.number(true)?;
    s.skip_ws();
    s.expect(b'%')?;
    s.skip_ws();
    s.expect(b')')?;
    s.skip_ws();
    if s.pos != b.len() {
        return None;
    }
    let kind = if !has_arrow || options.index_symbols.iter().any(|x| x == symbol) {
        QuoteKind::Index
    } else {
        QuoteKind::Stock
    };
    Some(TickerLine {
        symbol,
        kind,
        price,
        change,
        change_pct,
        direction,
        has_arrow,
    })
}

/// Cheap pre-check: could this line be a ticker line at all? (An uppercase ASCII letter or a
/// digit first.)
#[inline]
pub(crate) fn may_be_ticker(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t', '\u{a0}']);
    t.as_bytes()
        .first()
        .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Length of the whitespace at the cursor (space, tab, no-break space), or 0.
    #[inline]
    fn ws_len(&self) -> usize {
        match self.b.get(self.pos..) {
            Some([b' ' | b'\t', ..]) => 1,
            Some([0xC2, 0xA0, ..]) => 2,
            _ => 0,
        }
    }

    #[inline]
    fn skip_ws(&mut self) {
        loop {
            let n = self.ws_len();
            if n == 0 {
                return;
            }
            self.pos += n;
        }
    }

    #[inline]
    fn require_ws(&mut self) -> Option<()> {
        if self.ws_len() == 0 {
            return None;
        }
        self.skip_ws();
        Some(())
    }

    #[inline]
    fn expect(&mut self, c: u8) -> Option<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn symbol(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let first = self.peek()?;
        if !(first.is_ascii_uppercase() || first.is_ascii_digit()) {
            return None;
        }
        self.pos += 1;
        while let Some(c) = self.peek() {
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                self.pos += 1;
            } else if (c == b'-' || c == b'.')
                && self
                    .b
                    .get(self.pos + 1)
                    .is_some_and(|n| n.is_ascii_uppercase() || n.is_ascii_digit())
            {
                self.pos += 2;
            } else {
                break;
            }
            if self.pos - start > MAX_SYMBOL_LEN {
                return None;
            }
        }
        // The symbol is ASCII, so this slice is on character boundaries.
        self.text.get(start..self.pos)
    }

    /// `Increased By`, `Decreased By` or `No Change` (ASCII case-insensitive).
    fn words(&mut self) -> Option<Direction> {
        let (direction, second): (Direction, &[u8]) = if self.keyword(b"increased") {
            (Direction::Up, b"by")
        } else if self.keyword(b"decreased") {
            (Direction::Down, b"by")
        } else if self.keyword(b"no") {
            (Direction::Unchanged, b"change")
        } else {
            return None;
        };
        self.require_ws()?;
        if !self.keyword(second) {
            return None;
        }
        Some(direction)
    }

    /// Consumes `word` (ASCII case-insensitive) when it is at the cursor and ends there.
    fn keyword(&mut self, word: &[u8]) -> bool {
        let end = self.pos + word.len();
        match self.b.get(self.pos..end) {
            Some(s) if s.eq_ignore_ascii_case(word) => {
                if self.b.get(end).is_some_and(u8::is_ascii_alphanumeric) {
                    return false;
                }
                self.pos = end;
                true
            }
            _ => false,
        }
    }

    /// `▲` (E2 96 B2), `▼` (E2 96 BC), `▴` (E2 96 B4) or `▾` (E2 96 BE).
    fn arrow(&mut self) -> bool {
        match self.b.get(self.pos..self.pos + 3) {
            Some([0xE2, 0x96, 0xB2 | 0xBC | 0xB4 | 0xBE]) => {
                self.pos += 3;
                true
            }
            _ => false,
        }
    }

    /// A decimal number; with `signed`, an optional leading `-`, `+` or `−` (U+2212).
    fn number(&mut self, signed: bool) -> Option<Decimal> {
        let mut negative = false;
        if signed {
            match self.b.get(self.pos..) {
                Some([b'-', ..]) => {
                    negative = true;
                    self.pos += 1;
                }
                Some([b'+', ..]) => self.pos += 1,
                Some([0xE2, 0x88, 0x92, ..]) => {
                    negative = true;
                    self.pos += 3;
                }
                _ => {}
            }
        }
        let mut mantissa: i64 = 0;
        let mut int_digits = 0usize;
        let mut group_len = 0usize;
        let mut grouped = false;
        loop {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    int_digits += 1;
                    group_len += 1;
                    if int_digits > MAX_INTEGER_DIGITS {
                        return None;
                    }
                    mantissa = mantissa * 10 + i64::from(c - b'0');
                    self.pos += 1;
                }
                Some(b',') if self.b.get(self.pos + 1).is_some_and(u8::is_ascii_digit) => {
                    // Thousands separator: the first group has 1-3 digits, later ones exactly 3.
                    if group_len == 0 || group_len > 3 || (grouped && group_len != 3) {
                        return None;
                    }
                    grouped = true;
                    group_len = 0;
                    self.pos += 1;
                }
                _ => break,
            }
        }
        if int_digits == 0 || (grouped && group_len != 3) {
            return None;
        }
        let mut scale = 0u32;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                scale += 1;
                if scale as usize > MAX_FRACTION_DIGITS {
                    return None;
                }
                mantissa = mantissa * 10 + i64::from(c - b'0');
                self.pos += 1;
            }
            if scale == 0 {
                return None;
            }
        }
        // A number runs into neither letters nor further digits ("12abc", "1.2.3").
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b',')
        {
            return None;
        }
        if negative && mantissa != 0 {
            mantissa = -mantissa;
        }
        Some(Decimal::new(mantissa, scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ParseOptions {
        ParseOptions::default()
    }

    fn parse(line: &str) -> Option<(String, QuoteKind, String, String, String, Direction)> {
        parse_ticker_line(line, &opts()).map(|t| {
            (
                t.symbol.to_string(),
                t.kind,
                t.price.to_string(),
                t.change.to_string(),
                t.change_pct.to_string(),
                t.direction,
            )
        })
    }

    fn q(
        symbol: &str,
        kind: QuoteKind,
        price: &str,
        change: &str,
        pct: &str,
        direction: Direction,
    ) -> Option<(String, QuoteKind, String, String, String, Direction)> {
        Some((
            symbol.to_string(),
            kind,
            price.to_string(),
            change.to_string(),
            pct.to_string(),
            direction,
        ))
    }

    use Direction::*;
    use QuoteKind::*;

    #[test]
    fn stock_down() {
        assert_eq!(
            parse("AGL 37.94 Decreased By ▼ -0.54 (-1.4%)"),
            q("AGL", Stock, "37.94", "-0.54", "-1.4", Down)
        );
    }

    #[test]
    fn stock_up() {
        assert_eq!(
            parse("AVN 76.90 Increased By ▲ 0.55 (0.72%)"),
            q("AVN", Stock, "76.90", "0.55", "0.72", Up)
        );
    }

    #[test]
    fn no_change_with_down_arrow_is_unchanged() {
        assert_eq!(
            parse("BOP 5.44 No Change ▼ 0.00 (0%)"),
            q("BOP", Stock, "5.44", "0.00", "0", Unchanged)
        );
    }

    #[test]
    fn index_without_arrow() {
        assert_eq!(
            parse("BR100 7,454 Increased By 45.5 (0.61%)"),
            q("BR100", Index, "7454", "45.5", "0.61", Up)
        );
    }

    #[test]
    fn index_with_arrow_is_still_index() {
        assert_eq!(
            parse("BR100 4,097 Decreased By ▼ -67.58 (-1.62%)"),
            q("BR100", Index, "4097", "-67.58", "-1.62", Down)
        );
    }

    #[test]
    fn six_digit_index() {
        assert_eq!(
            parse("KSE100 106,275 Decreased By -4795.3 (-4.32%)"),
            q("KSE100", Index, "106275", "-4795.3", "-4.32", Down)
        );
    }

    #[test]
    fn direction_from_words_not_sign() {
        assert_eq!(
            parse("KSE30 24,084 Increased By 1 (0%)"),
            q("KSE30", Index, "24084", "1", "0", Up)
        );
        // Words say down although the change is printed without a sign.
        assert_eq!(
            parse("XYZ 10.00 Decreased By ▲ 0.10 (1%)"),
            q("XYZ", Stock, "10.00", "0.10", "1", Down)
        );
    }

    #[test]
    fn unknown_symbol_without_arrow_is_index() {
        assert_eq!(
            parse("ALLSHR 60,123 Increased By 12.5 (0.02%)"),
            q("ALLSHR", Index, "60123", "12.5", "0.02", Up)
        );
    }

    #[test]
    fn printed_scale_is_kept() {
        assert_eq!(
            parse("CNERGY 5.84 Decreased By ▼ -0.70 (-10.7%)"),
            q("CNERGY", Stock, "5.84", "-0.70", "-10.7", Down)
        );
        assert_eq!(
            parse("FFBL 82.30 Decreased By ▼ -4.13 (-4.78%)"),
            q("FFBL", Stock, "82.30", "-4.13", "-4.78", Down)
        );
    }

    #[test]
    fn percent_shapes() {
        assert_eq!(
            parse("HUMNL 13.60 Decreased By ▼ -0.42 (-3%)"),
            q("HUMNL", Stock, "13.60", "-0.42", "-3", Down)
        );
        assert_eq!(
            parse("BOP 8.73 Decreased By ▼ -0.27 (-1%)"),
            q("BOP", Stock, "8.73", "-0.27", "-1", Down)
        );
    }

    #[test]
    fn price_below_one() {
        assert_eq!(
            parse("SILK 0.97 Increased By ▲ 0.01 (1.04%)"),
            q("SILK", Stock, "0.97", "0.01", "1.04", Up)
        );
    }

    #[test]
    fn custom_index_symbols() {
        let options = ParseOptions {
            index_symbols: vec!["AGL".into()],
            ..ParseOptions::default()
        };
        let t = parse_ticker_line("AGL 37.94 Decreased By ▼ -0.54 (-1.4%)", &options).unwrap();
        assert_eq!(t.kind, Index);
        let t = parse_ticker_line("BR100 4,097 Decreased By ▼ -67.58 (-1.62%)", &options).unwrap();
        assert_eq!(t.kind, Stock);
    }

    #[test]
    fn whitespace_variants() {
        assert_eq!(
            parse("  AGL\u{a0}37.94  Decreased\tBy ▼-0.54(-1.4%)  "),
            q("AGL", Stock, "37.94", "-0.54", "-1.4", Down)
        );
        assert_eq!(
            parse("AGL 37.94 Decreased By ▼ −0.54 (−1.4%)"),
            q("AGL", Stock, "37.94", "-0.54", "-1.4", Down)
        );
        assert_eq!(
            parse("AGL 37.94 increased by ▲ +0.54 ( +1.4 % )"),
            q("AGL", Stock, "37.94", "0.54", "1.4", Up)
        );
    }

    #[test]
    fn symbols_with_separators() {
        assert_eq!(
            parse("PAKRI-R1 1.25 Increased By ▲ 0.05 (4.17%)"),
            q("PAKRI-R1", Stock, "1.25", "0.05", "4.17", Up)
        );
        assert_eq!(parse("-AB 1.25 Increased By ▲ 0.05 (4.17%)"), None);
        assert_eq!(parse("AB- 1.25 Increased By ▲ 0.05 (4.17%)"), None);
        assert_eq!(parse("AB--C 1.25 Increased By ▲ 0.05 (4.17%)"), None);
        assert_eq!(parse("Agl 1.25 Increased By ▲ 0.05 (4.17%)"), None);
        assert_eq!(parse("aGL 1.25 Increased By ▲ 0.05 (4.17%)"), None);
        assert_eq!(
            parse("786 9.10 Increased By ▲ 0.05 (0.55%)"),
            q("786", Stock, "9.10", "0.05", "0.55", Up)
        );
    }

    #[test]
    fn truncated_lines_are_not_quotes() {
        let full = "PIBTL 9.80 Decreased By ▼ -0.10 (-1.01%)";
        assert!(parse(full).is_some());
        for end in 0..full.len() {
            if full.is_char_boundary(end) {
                assert_eq!(parse(&full[..end]), None, "prefix {:?}", &full[..end]);
            }
        }
    }

    #[test]
    fn absurd_numbers_are_rejected() {
        let forty = "1".repeat(40);
        assert_eq!(parse(&format!("AGL {forty} Increased By ▲ 0.5 (1%)")), None);
        assert_eq!(parse("AGL 1e400 Increased By ▲ 0.5 (1%)"), None);
        assert_eq!(parse("AGL 1.5 Increased By ▲ 1e400 (1%)"), None);
        assert_eq!(parse("AGL 1.5 Increased By ▲ 0.5 (1e4%)"), None);
        // 13 integer digits, 7 fractional digits.
        assert_eq!(parse("AGL 1234567890123 Increased By ▲ 0.5 (1%)"), None);
        assert_eq!(parse("AGL 1.1234567 Increased By ▲ 0.5 (1%)"), None);
        // The limits themselves are fine.
        assert_eq!(
            parse("AGL 123,456,789,012.123456 Increased By ▲ 0.000001 (-999999999999.999999%)"),
            q(
                "AGL",
                Stock,
                "123456789012.123456",
                "0.000001",
                "-999999999999.999999",
                Up
            )
        );
    }

    #[test]
    fn malformed_numbers_are_rejected() {
        for line in [
            "AGL 37,94 Decreased By ▼ -0.54 (-1.4%)",
            "AGL 1,2345 Decreased By ▼ -0.54 (-1.4%)",
            "AGL 1234,567 Decreased By ▼ -0.54 (-1.4%)",
            "AGL 37. Decreased By ▼ -0.54 (-1.4%)",
            "AGL .94 Decreased By ▼ -0.54 (-1.4%)",
            "AGL 37.9.4 Decreased By ▼ -0.54 (-1.4%)",
            "AGL -37.94 Decreased By ▼ -0.54 (-1.4%)",
            "AGL 37.94 Decreased By ▼ --0.54 (-1.4%)",
            "AGL 37.94 Decreased By ▼ -0.54 (-1.4)",
            "AGL 37.94 Decreased By ▼ -0.54 -1.4%",
            "AGL 37.94 Decreased By ▼ -0.54 (-1.4%) extra",
            "AGL 37.94 Decreased ▼ -0.54 (-1.4%)",
            "AGL 37.94 Decreasedby ▼ -0.54 (-1.4%)",
            "AGL 37.94 Went Down ▼ -0.54 (-1.4%)",
            "AGL 37.94 Decreased By ▼ ▼ -0.54 (-1.4%)",
            "AGL37.94 Decreased By ▼ -0.54 (-1.4%)",
            "",
            "   ",
        ] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn prose_is_not_a_quote() {
        for line in [
            "KSE100 closed at 8,401.81 points with a net negative change of -217.28 points",
            "The KSE-100 Index Decreased By 217.28 points (-2.5%)",
            "KARACHI: KSE100 106,275 Decreased By -4795.3 (-4.32%)",
            "KSE100 106,275 Decreased By -4795.3 (-4.32%) on Monday.",
        ] {
            assert_eq!(parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn negative_zero_is_plain_zero() {
        assert_eq!(
            parse("BOP 5.44 No Change -0.00 (-0%)"),
            q("BOP", Index, "5.44", "0.00", "0", Unchanged)
        );
    }

    #[test]
    fn pre_check() {
        assert!(may_be_ticker("  AGL 1"));
        assert!(may_be_ticker("786 1"));
        assert!(!may_be_ticker("agl"));
        assert!(!may_be_ticker(""));
    }
}
