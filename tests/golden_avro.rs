//! Golden bytes of the wire format, pinned: one quote and one article, in both framings.
//!
//! The expected bytes were derived independently of pagesplit's encoder: each datum is spelled
//! out below from the Avro specification's binary encoding rules (zigzag varint longs,
//! length-prefixed strings and bytes, enum and union indexes, blocked arrays, decimals as the
//! two's-complement big-endian bytes of the unscaled value), and the same bytes were produced
//! once by a second Avro implementation (fastavro 1.13.1, `schemaless_writer`) before being
//! pinned here as hex. The schemas' Parsing Canonical Forms and CRC-64-AVRO fingerprints were
//! likewise taken from fastavro (`to_parsing_canonical_form`, `fingerprint(.., "CRC-64-AVRO")`)
//! and are recomputed below from schemas/*.avsc with the specification's transformation and
//! fingerprint algorithm.
//!
//! A change to any of these bytes breaks every consumer of the topics: it needs a new schema
//! version, not a new golden value.

mod common;

use apache_avro::reader::single_object::GenericSingleObjectReader;
use apache_avro::types::Value;
use chrono::{DateTime, TimeZone, Utc};
use common::field;
use pagesplit::encode::{
    article_value, decimal_from_avro, decode_single_object, quote_value, read_datum, single_object_header, unframe,
    Encoder, EventType, Framed, Framing, Schemas, ARTICLE_SCHEMA_JSON, QUOTE_SCHEMA_JSON,
};
use pagesplit::model::{event_id, Article, Direction, Quote, QuoteKind};
use rust_decimal::Decimal;

const URL: &str = "https://www.brecorder.com/news/40336151/putin-assad";

/// 2024-12-08T10:15:00Z.
const FETCHED_AT_MS: i64 = 1_733_652_900_000;
/// 2024-12-08T09:30:00Z.
const PUBLISHED_AT_MS: i64 = 1_733_650_200_000;

/// UUID v8 of the XXH3-128 hash of "URL\nFETCHED_AT_MS\nKSE100", computed with Python's
/// `xxhash.xxh3_128_digest` and `uuid.UUID` (version and variant bits set).
const KSE100_EVENT_ID: &str = "e114efde-a77d-85a1-be92-03b0a26ec398";
/// The same for the key `article`.
const ARTICLE_EVENT_ID: &str = "513b2654-cb3f-816e-8758-bfb4a72fc2d8";

const PARAGRAPH: &str = "MOSCOW: Russia\u{2019}s president met Assad.";
const RELATED: &str = "Iran, Saudi Arabia to restore ties in China-brokered deal";

/// The quote datum (no framing).
const QUOTE_DATUM_HEX: &str = concat!(
    "48",                                                                       // event_id: 36 bytes
    "65313134656664652d613737642d383561312d626539322d303362306132366563333938", // "e114efde-…"
    "0c",                                                                       // symbol: 6 bytes
    "4b5345313030",                                                             // "KSE100"
    "02",                                                                       // kind: index 1 = INDEX
    "1000000018be7bcec0",                                                       // price: 8 bytes, 106275000000
    "10fffffffee22d8760",                                                       // change: 8 bytes, -4795300000
    "10ffffffffffbe1500",                                                       // change_pct: 8 bytes, -4320000
    "02",                                                                       // direction: index 1 = DOWN
    "66",                                                                       // url: 51 bytes
    "68747470733a2f2f7777772e627265636f726465722e636f6d2f6e6577732f34303333363135312f707574696e2d6173736164",
    "c0a29fdcf464", // fetched_at: 1733652900000
);

/// The article datum (no framing).
const ARTICLE_DATUM_HEX: &str = concat!(
    "48", // event_id: 36 bytes
    "35313362323635342d636233662d383136652d383735382d626662346137326663326438",
    "66", // url: 51 bytes
    "68747470733a2f2f7777772e627265636f726465722e636f6d2f6e6577732f34303333363135312f707574696e2d6173736164",
    "c0a29fdcf464",                                                 // fetched_at
    "02",                                                           // title: union branch 1 (string)
    "3a507574696e207361797320417373616420697320696e204d6f73636f77", // 29 bytes
    "02",                                                           // dateline: union branch 1
    "0c4d4f53434f57",                                               // "MOSCOW"
    "02",                                                           // paragraphs: a block of 1 item
    "4e4d4f53434f573a20527573736961e280997320707265736964656e74206d65742041737361642e", // 39 bytes (’ is 3)
    "00", // end of array
    "02", // related_headlines: a block of 1 item
    "724972616e2c2053617564692041726162696120746f20726573746f7265207469657320696e204368696e612d62726f6b65726564206465616c",
    "00",             // end of array
    "01",             // comments_closed: true
    "020a576f726c64", // section: branch 1, "World"
    "020e52657574657273", // byline: branch 1, "Reuters"
    "0280d7d5d9f464", // published_at: branch 1, 1733650200000
    "020e5265757465727300", // authors: a block of 1 item, "Reuters", end of array
    "00",                   // modified_at: branch 0 (null)
    "0204656e",             // language: branch 1, "en"
    "00",                   // canonical_url: null
    "00",                   // description: null
    "00",                   // image_url: null
);

/// Parsing Canonical Form of schemas/quote.avsc.
const QUOTE_CANONICAL_FORM: &str = r#"{"name":"io.pagesplit.market.v1.Quote","type":"record","fields":[{"name":"event_id","type":"string"},{"name":"symbol","type":"string"},{"name":"kind","type":{"name":"io.pagesplit.market.v1.QuoteKind","type":"enum","symbols":["STOCK","INDEX"]}},{"name":"price","type":"bytes"},{"name":"change","type":"bytes"},{"name":"change_pct","type":"bytes"},{"name":"direction","type":{"name":"io.pagesplit.market.v1.Direction","type":"enum","symbols":["UP","DOWN","UNCHANGED"]}},{"name":"url","type":"string"},{"name":"fetched_at","type":"long"}]}"#;
/// Parsing Canonical Form of schemas/article.avsc.
const ARTICLE_CANONICAL_FORM: &str = r#"{"name":"io.pagesplit.news.v1.Article","type":"record","fields":[{"name":"event_id","type":"string"},{"name":"url","type":"string"},{"name":"fetched_at","type":"long"},{"name":"title","type":["null","string"]},{"name":"dateline","type":["null","string"]},{"name":"paragraphs","type":{"type":"array","items":"string"}},{"name":"related_headlines","type":{"type":"array","items":"string"}},{"name":"comments_closed","type":"boolean"},{"name":"section","type":["null","string"]},{"name":"byline","type":["null","string"]},{"name":"published_at","type":["null","long"]},{"name":"authors","type":{"type":"array","items":"string"}},{"name":"modified_at","type":["null","long"]},{"name":"language","type":["null","string"]},{"name":"canonical_url","type":["null","string"]},{"name":"description","type":["null","string"]},{"name":"image_url","type":["null","string"]}]}"#;

/// CRC-64-AVRO fingerprint of the quote schema's canonical form, little-endian bytes.
const QUOTE_FINGERPRINT_HEX: &str = "51a4c5e1eafac864";
/// CRC-64-AVRO fingerprint of the article schema's canonical form, little-endian bytes.
const ARTICLE_FINGERPRINT_HEX: &str = "6c74b6c9e75c9c87";

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().expect("valid time")
}

fn golden_quote() -> Quote {
    let fetched_at = at(FETCHED_AT_MS);
    assert_eq!(fetched_at, Utc.with_ymd_and_hms(2024, 12, 8, 10, 15, 0).unwrap());
    Quote {
        event_id: event_id(URL, fetched_at, "KSE100"),
        symbol: "KSE100".into(),
        kind: QuoteKind::Index,
        price: "106275".parse().unwrap(),
        change: "-4795.3".parse().unwrap(),
        change_pct: "-4.32".parse().unwrap(),
        direction: Direction::Down,
        url: URL.into(),
        fetched_at,
    }
}

fn golden_article() -> Article {
    let fetched_at = at(FETCHED_AT_MS);
    Article {
        event_id: event_id(URL, fetched_at, "article"),
        url: URL.to_owned(),
        fetched_at,
        title: Some("Putin says Assad is in Moscow".to_owned()),
        section: Some("World".to_owned()),
        byline: Some("Reuters".to_owned()),
        published_at: Some(at(PUBLISHED_AT_MS)),
        dateline: Some("MOSCOW".to_owned()),
        paragraphs: vec![PARAGRAPH.to_owned()],
        related_headlines: vec![RELATED.to_owned()],
        comments_closed: true,
        authors: vec!["Reuters".to_owned()],
        modified_at: None,
        language: Some("en".to_owned()),
        canonical_url: None,
        description: None,
        image_url: None,
    }
}

// --- The Avro binary encoding, written out from the specification -------------------------

/// `long`/`int`: zigzag, then base-128 varint, low group first.
fn spec_long(value: i64) -> Vec<u8> {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let group = (zigzag & 0x7F) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(group);
            return out;
        }
        out.push(group | 0x80);
    }
}

/// `bytes`: a long length, then the bytes.
fn spec_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = spec_long(bytes.len() as i64);
    out.extend_from_slice(bytes);
    out
}

/// `string`: its UTF-8 bytes as `bytes`.
fn spec_string(text: &str) -> Vec<u8> {
    spec_bytes(text.as_bytes())
}

/// `decimal` on `bytes`: the unscaled value as two's-complement big-endian bytes, written at
/// the 8 bytes that precision 18 needs (any length is valid Avro; resolving readers such as
/// apache-avro's require the full size).
fn spec_decimal(text: &str, scale: u32) -> Vec<u8> {
    let mut value: Decimal = text.parse().unwrap();
    value.rescale(scale);
    assert_eq!(value.scale(), scale);
    let unscaled = value.mantissa();
    let full = (unscaled as i64).to_be_bytes();
    spec_bytes(&full)
}

/// A union value: the branch index as a long, then the value.
fn spec_union(index: i64, value: Vec<u8>) -> Vec<u8> {
    let mut out = spec_long(index);
    out.extend(value);
    out
}

/// An array of strings: one block with its count, then the zero-count end block.
fn spec_string_array(items: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    if !items.is_empty() {
        out.extend(spec_long(items.len() as i64));
        for item in items {
            out.extend(spec_string(item));
        }
    }
    out.push(0);
    out
}

fn spec_quote_datum() -> Vec<u8> {
    [
        spec_string(KSE100_EVENT_ID),
        spec_string("KSE100"),
        spec_long(1), // enum QuoteKind: STOCK=0, INDEX=1
        spec_decimal("106275", 6),
        spec_decimal("-4795.3", 6),
        spec_decimal("-4.32", 6),
        spec_long(1), // enum Direction: UP=0, DOWN=1, UNCHANGED=2
        spec_string(URL),
        spec_long(FETCHED_AT_MS),
    ]
    .concat()
}

fn spec_article_datum() -> Vec<u8> {
    [
        spec_string(ARTICLE_EVENT_ID),
        spec_string(URL),
        spec_long(FETCHED_AT_MS),
        spec_union(1, spec_string("Putin says Assad is in Moscow")),
        spec_union(1, spec_string("MOSCOW")),
        spec_string_array(&[PARAGRAPH]),
        spec_string_array(&[RELATED]),
        vec![1], // boolean true
        spec_union(1, spec_string("World")),
        spec_union(1, spec_string("Reuters")),
        spec_union(1, spec_long(PUBLISHED_AT_MS)),
        spec_string_array(&["Reuters"]),
        spec_union(0, Vec::new()),
        spec_union(1, spec_string("en")),
        spec_union(0, Vec::new()),
        spec_union(0, Vec::new()),
        spec_union(0, Vec::new()),
    ]
    .concat()
}

/// The specification's Parsing Canonical Form of a schema's JSON: full names ([FULLNAMES]),
/// only `name`, `type`, `fields`, `symbols`, `items`, `values`, `size` kept ([STRIP]) in that
/// order ([ORDER]), primitives in their simple form ([PRIMITIVES]: `{"type":"long",
/// "logicalType":"timestamp-millis"}` is `"long"`), no whitespace.
fn spec_canonical_form(schema: &serde_json::Value, namespace: Option<&str>) -> String {
    use serde_json::Value as Json;
    const PRIMITIVES: &[&str] = &["null", "boolean", "int", "long", "float", "double", "bytes", "string"];
    let quoted = |text: &str| serde_json::to_string(text).unwrap();
    let full_name = |name: &str, namespace: Option<&str>| match namespace {
        Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    };
    match schema {
        Json::String(name) if PRIMITIVES.contains(&name.as_str()) => quoted(name),
        Json::String(name) => quoted(&full_name(name, namespace)),
        Json::Array(branches) => {
            let branches: Vec<String> = branches.iter().map(|b| spec_canonical_form(b, namespace)).collect();
            format!("[{}]", branches.join(","))
        }
        Json::Object(object) => {
            let kind = object["type"].as_str();
            match kind {
                Some(primitive) if PRIMITIVES.contains(&primitive) => quoted(primitive),
                Some("array") => format!(
                    r#"{{"type":"array","items":{}}}"#,
                    spec_canonical_form(&object["items"], namespace)
                ),
                Some("map") => format!(
                    r#"{{"type":"map","values":{}}}"#,
                    spec_canonical_form(&object["values"], namespace)
                ),
                Some(named @ ("record" | "error" | "enum" | "fixed")) => {
                    let name = object["name"].as_str().expect("named type has a name");
                    let own_namespace = object.get("namespace").and_then(Json::as_str).or(namespace);
                    let full = full_name(name, own_namespace);
                    let inner = full.rsplit_once('.').map(|(ns, _)| ns);
                    let head = format!(r#"{{"name":{},"type":{}"#, quoted(&full), quoted(named));
                    match named {
                        "enum" => {
                            let symbols: Vec<String> = object["symbols"]
                                .as_array()
                                .expect("enum symbols")
                                .iter()
                                .map(|s| quoted(s.as_str().expect("symbol")))
                                .collect();
                            format!(r#"{head},"symbols":[{}]}}"#, symbols.join(","))
                        }
                        "fixed" => format!(r#"{head},"size":{}}}"#, object["size"].as_u64().expect("size")),
                        _ => {
                            let fields: Vec<String> = object["fields"]
                                .as_array()
                                .expect("record fields")
                                .iter()
                                .map(|f| {
                                    format!(
                                        r#"{{"name":{},"type":{}}}"#,
                                        quoted(f["name"].as_str().expect("field name")),
                                        spec_canonical_form(&f["type"], inner)
                                    )
                                })
                                .collect();
                            format!(r#"{head},"fields":[{}]}}"#, fields.join(","))
                        }
                    }
                }
                _ => spec_canonical_form(&object["type"], namespace),
            }
        }
        other => panic!("not a schema: {other}"),
    }
}

/// CRC-64-AVRO (Rabin) fingerprint, as the specification's "Schema Fingerprints" section
/// computes it.
fn spec_fingerprint(data: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let mut table = [0u64; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut fp = i as u64;
        for _ in 0..8 {
            fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
        }
        *entry = fp;
    }
    let mut fp = EMPTY;
    for byte in data {
        fp = (fp >> 8) ^ table[((fp ^ u64::from(*byte)) & 0xff) as usize];
    }
    fp
}

// --- The tests ----------------------------------------------------------------------------

#[test]
fn the_specification_spelled_out_gives_the_pinned_datums() {
    assert_eq!(to_hex(&spec_quote_datum()), QUOTE_DATUM_HEX);
    assert_eq!(to_hex(&spec_article_datum()), ARTICLE_DATUM_HEX);
    // Spot checks of the rules themselves.
    assert_eq!(spec_long(0), [0x00]);
    assert_eq!(spec_long(-1), [0x01]);
    assert_eq!(spec_long(1), [0x02]);
    assert_eq!(spec_long(-64), [0x7f]);
    assert_eq!(spec_long(64), [0x80, 0x01]);
    assert_eq!(
        spec_decimal("-0.000001", 6),
        [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(spec_decimal("0.000128", 6), [0x10, 0, 0, 0, 0, 0, 0, 0, 0x80]);
}

#[test]
fn event_ids_are_the_pinned_uuid_v8_values() {
    assert_eq!(event_id(URL, at(FETCHED_AT_MS), "KSE100").to_string(), KSE100_EVENT_ID);
    assert_eq!(
        event_id(URL, at(FETCHED_AT_MS), "article").to_string(),
        ARTICLE_EVENT_ID
    );
}

#[test]
fn confluent_framing_is_magic_zero_big_endian_id_and_the_datum() {
    let encoder = Encoder::new(Framing::Confluent {
        quote_schema_id: 7,
        article_schema_id: 8,
    });
    let quote = encoder.encode_quote(&golden_quote()).expect("quote encodes");
    assert_eq!(to_hex(&quote), format!("0000000007{QUOTE_DATUM_HEX}"));
    let article = encoder.encode_article(&golden_article()).expect("article encodes");
    assert_eq!(to_hex(&article), format!("0000000008{ARTICLE_DATUM_HEX}"));

    assert_eq!(
        unframe(&quote),
        Some(Framed::Confluent {
            schema_id: 7,
            datum: &hex(QUOTE_DATUM_HEX)
        })
    );
    assert_eq!(
        unframe(&article),
        Some(Framed::Confluent {
            schema_id: 8,
            datum: &hex(ARTICLE_DATUM_HEX)
        })
    );
    // A schema id above 255 is big-endian.
    let wide = Encoder::new(Framing::Confluent {
        quote_schema_id: 0x0102_0304,
        article_schema_id: 8,
    })
    .encode_quote(&golden_quote())
    .unwrap();
    assert_eq!(wide[..5], [0x00, 0x01, 0x02, 0x03, 0x04]);
}

#[test]
fn single_object_framing_is_c3_01_the_rabin_fingerprint_and_the_datum() {
    let encoder = Encoder::new(Framing::SingleObject);
    let quote = encoder.encode_quote(&golden_quote()).expect("quote encodes");
    assert_eq!(to_hex(&quote), format!("c301{QUOTE_FINGERPRINT_HEX}{QUOTE_DATUM_HEX}"));
    let article = encoder.encode_article(&golden_article()).expect("article encodes");
    assert_eq!(
        to_hex(&article),
        format!("c301{ARTICLE_FINGERPRINT_HEX}{ARTICLE_DATUM_HEX}")
    );
}

#[test]
fn canonical_forms_and_fingerprints_follow_the_specification() {
    for (json, canonical, fingerprint) in [
        (QUOTE_SCHEMA_JSON, QUOTE_CANONICAL_FORM, QUOTE_FINGERPRINT_HEX),
        (ARTICLE_SCHEMA_JSON, ARTICLE_CANONICAL_FORM, ARTICLE_FINGERPRINT_HEX),
    ] {
        let json: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(spec_canonical_form(&json, None), canonical);
        assert_eq!(
            to_hex(&spec_fingerprint(canonical.as_bytes()).to_le_bytes()),
            fingerprint
        );
    }
    // The algorithm against a published value: the fingerprint of the schema "null" is
    // 7195948357588979594 in the Java implementation, written little-endian on the wire.
    assert_eq!(spec_fingerprint(br#""null""#), 7_195_948_357_588_979_594);
    assert_eq!(
        to_hex(&spec_fingerprint(br#""null""#).to_le_bytes()),
        "8a8f25cce724dd63"
    );
}

#[test]
fn the_single_object_header_carries_the_specification_fingerprint() {
    let schemas = Schemas::bundled();
    for (schema, json, fingerprint) in [
        (&schemas.quote, QUOTE_SCHEMA_JSON, QUOTE_FINGERPRINT_HEX),
        (&schemas.article, ARTICLE_SCHEMA_JSON, ARTICLE_FINGERPRINT_HEX),
    ] {
        assert_eq!(
            to_hex(&single_object_header(json)),
            format!("c301{fingerprint}"),
            "the header must hold the CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form \
             (what Java's SchemaNormalization.parsingFingerprint64 and fastavro compute), or other \
             implementations cannot resolve the schema; the canonical form used was {}",
            schema.canonical_form()
        );
    }
}

fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn some(value: Value) -> Value {
    Value::Union(1, Box::new(value))
}

#[test]
fn apache_avro_decodes_the_pinned_bytes_back_to_the_values() {
    let schemas = Schemas::bundled();

    let mut datum: &[u8] = &hex(QUOTE_DATUM_HEX);
    let quote = read_datum(&schemas.quote, &mut datum).expect("quote datum decodes");
    assert!(datum.is_empty(), "the whole datum is read");
    assert_eq!(field(&quote, "event_id"), &string(KSE100_EVENT_ID));
    assert_eq!(field(&quote, "symbol"), &string("KSE100"));
    assert_eq!(field(&quote, "kind"), &Value::Enum(1, "INDEX".to_owned()));
    for (name, want) in [("price", "106275"), ("change", "-4795.3"), ("change_pct", "-4.32")] {
        let got = decimal_from_avro(field(&quote, name)).expect("a decimal");
        assert_eq!(got, want.parse::<Decimal>().unwrap(), "{name}");
        assert_eq!(got.to_string(), want, "{name} as text");
    }
    assert_eq!(field(&quote, "direction"), &Value::Enum(1, "DOWN".to_owned()));
    assert_eq!(field(&quote, "url"), &string(URL));
    assert_eq!(field(&quote, "fetched_at"), &Value::TimestampMillis(FETCHED_AT_MS));
    assert_eq!(quote, quote_value(&golden_quote()).unwrap());

    let mut datum: &[u8] = &hex(ARTICLE_DATUM_HEX);
    let article = read_datum(&schemas.article, &mut datum).expect("article datum decodes");
    assert!(datum.is_empty(), "the whole datum is read");
    assert_eq!(field(&article, "event_id"), &string(ARTICLE_EVENT_ID));
    assert_eq!(field(&article, "url"), &string(URL));
    assert_eq!(field(&article, "fetched_at"), &Value::TimestampMillis(FETCHED_AT_MS));
    assert_eq!(field(&article, "title"), &some(string("Putin says Assad is in Moscow")));
    assert_eq!(field(&article, "dateline"), &some(string("MOSCOW")));
    assert_eq!(field(&article, "paragraphs"), &Value::Array(vec![string(PARAGRAPH)]));
    assert_eq!(
        field(&article, "related_headlines"),
        &Value::Array(vec![string(RELATED)])
    );
    assert_eq!(field(&article, "comments_closed"), &Value::Boolean(true));
    assert_eq!(field(&article, "section"), &some(string("World")));
    assert_eq!(field(&article, "byline"), &some(string("Reuters")));
    assert_eq!(
        field(&article, "published_at"),
        &some(Value::TimestampMillis(PUBLISHED_AT_MS))
    );
    assert_eq!(article, article_value(&golden_article()));
}

#[test]
fn single_object_records_decode_with_pagesplit_and_with_apache_avro() {
    let schemas = Schemas::bundled();
    let quote = hex(&format!("c301{QUOTE_FINGERPRINT_HEX}{QUOTE_DATUM_HEX}"));
    let article = hex(&format!("c301{ARTICLE_FINGERPRINT_HEX}{ARTICLE_DATUM_HEX}"));

    // apache-avro's single-object reader, told the header to expect.
    for (schema, bytes, fingerprint, want) in [
        (
            &schemas.quote,
            &quote,
            QUOTE_FINGERPRINT_HEX,
            quote_value(&golden_quote()).unwrap(),
        ),
        (
            &schemas.article,
            &article,
            ARTICLE_FINGERPRINT_HEX,
            article_value(&golden_article()),
        ),
    ] {
        let reader = GenericSingleObjectReader::builder()
            .schema(schema.clone())
            .header(hex(&format!("c301{fingerprint}")))
            .build()
            .expect("reader");
        let mut slice: &[u8] = bytes;
        assert_eq!(reader.read_value(&mut slice).expect("single object decodes"), want);
        assert!(slice.is_empty());
    }

    let (kind, value) = decode_single_object(&quote).expect("quote recognised by its fingerprint");
    assert_eq!(kind, EventType::Quote);
    assert_eq!(value, quote_value(&golden_quote()).unwrap());
    let (kind, value) = decode_single_object(&article).expect("article recognised by its fingerprint");
    assert_eq!(kind, EventType::Article);
    assert_eq!(value, article_value(&golden_article()));

    // A fingerprint of no bundled schema is not decoded at all.
    let mut unknown = quote;
    unknown[2] ^= 0xff;
    assert!(decode_single_object(&unknown).is_none());
}

/// The pinned quote datum with each decimal at its minimal two's-complement width (what Java's
/// `BigInteger.toByteArray` gives; fastavro writes the same but for negative powers of two).
fn minimal_width_quote_datum() -> Vec<u8> {
    let minimal = |unscaled: i64| -> Vec<u8> {
        let magnitude = if unscaled < 0 { !unscaled } else { unscaled };
        let bits = 64 - magnitude.leading_zeros() as usize + 1;
        spec_bytes(&unscaled.to_be_bytes()[8 - bits.div_ceil(8)..])
    };
    let mut out = Vec::new();
    out.extend(spec_string(KSE100_EVENT_ID));
    out.extend(spec_string("KSE100"));
    out.extend(spec_long(1));
    out.extend(minimal(106_275_000_000));
    out.extend(minimal(-4_795_300_000));
    out.extend(minimal(-4_320_000));
    out.extend(spec_long(1));
    out.extend(spec_string(URL));
    out.extend(spec_long(FETCHED_AT_MS));
    out
}

#[test]
fn decimals_keep_eight_bytes_because_apache_avro_s_resolving_reader_refuses_fewer() {
    let schema = &Schemas::bundled().quote;
    let minimal = minimal_width_quote_datum();
    let pinned = hex(QUOTE_DATUM_HEX);
    // 5 + 5 + 3 bytes of decimals instead of 3 × 8: 11 bytes less, of 131.
    assert_eq!((pinned.len(), minimal.len()), (131, 120));
    // Both are valid Avro: a reader without a reader schema decodes both to the same values.
    assert_eq!(
        read_datum(schema, &mut minimal.as_slice()).unwrap(),
        read_datum(schema, &mut pinned.as_slice()).unwrap()
    );
    // With a reader schema (schema resolution, what a consumer does once a schema evolves),
    // apache-avro checks each decimal's byte count against the precision: 18 digits need 8.
    let resolve = |datum: &[u8]| {
        apache_avro::reader::datum::GenericDatumReader::builder(schema)
            .reader_schema(schema)
            .build()
            .unwrap()
            .read_value(&mut &datum[..])
    };
    assert!(resolve(&pinned).is_ok());
    let refused = resolve(&minimal).expect_err("apache-avro resolves minimal-width decimals now");
    assert!(
        refused
            .to_string()
            .contains("Precision 18 too small to hold decimal values with 5 bytes"),
        "{refused}"
    );
}
