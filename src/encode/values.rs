//! Events as Avro values shaped by the bundled schemas.

use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{EncodeError, DECIMAL_SCALE};
use crate::model::{Article, Direction, Quote, QuoteKind};

/// The Avro value of a quote (field order as in `schemas/quote.avsc`).
pub fn quote_value(quote: &Quote) -> Result<Value, EncodeError> {
    let (kind_index, kind) = match quote.kind {
        QuoteKind::Stock => (0, "STOCK"),
        QuoteKind::Index => (1, "INDEX"),
    };
    let (direction_index, direction) = match quote.direction {
        Direction::Up => (0, "UP"),
        Direction::Down => (1, "DOWN"),
        Direction::Unchanged => (2, "UNCHANGED"),
    };
    Ok(Value::Record(vec![
        ("event_id".into(), Value::String(quote.event_id.to_string())),
        ("symbol".into(), Value::String(quote.symbol.to_string())),
        ("kind".into(), Value::Enum(kind_index, kind.into())),
        ("price".into(), decimal_value("price", quote.price)?),
        ("change".into(), decimal_value("change", quote.change)?),
        ("change_pct".into(), decimal_value("change_pct", quote.change_pct)?),
        ("direction".into(), Value::Enum(direction_index, direction.into())),
        ("url".into(), Value::String(quote.url.to_string())),
        ("fetched_at".into(), timestamp(quote.fetched_at)),
    ]))
}

/// The Avro value of an article (field order as in `schemas/article.avsc`).
pub fn article_value(article: &Article) -> Value {
    Value::Record(vec![
        ("event_id".into(), Value::String(article.event_id.to_string())),
        ("url".into(), Value::String(article.url.clone())),
        ("fetched_at".into(), timestamp(article.fetched_at)),
        ("title".into(), optional_string(&article.title)),
        ("dateline".into(), optional_string(&article.dateline)),
        ("paragraphs".into(), string_array(&article.paragraphs)),
        ("related_headlines".into(), string_array(&article.related_headlines)),
        ("comments_closed".into(), Value::Boolean(article.comments_closed)),
        ("section".into(), optional_string(&article.section)),
        ("byline".into(), optional_string(&article.byline)),
        ("published_at".into(), optional_timestamp(article.published_at)),
        ("authors".into(), string_array(&article.authors)),
        ("modified_at".into(), optional_timestamp(article.modified_at)),
        ("language".into(), optional_string(&article.language)),
        ("canonical_url".into(), optional_string(&article.canonical_url)),
        ("description".into(), optional_string(&article.description)),
        ("image_url".into(), optional_string(&article.image_url)),
    ])
}

fn optional_timestamp(at: Option<DateTime<Utc>>) -> Value {
    match at {
        Some(at) => Value::Union(1, Box::new(timestamp(at))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

fn timestamp(at: DateTime<Utc>) -> Value {
    Value::TimestampMillis(at.timestamp_millis())
}

fn optional_string(value: &Option<String>) -> Value {
    match value {
        Some(text) => Value::Union(1, Box::new(Value::String(text.clone()))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

fn string_array(values: &[String]) -> Value {
    Value::Array(values.iter().cloned().map(Value::String).collect())
}

/// A decimal as the schema's fixed-scale two's-complement big-endian bytes (8 bytes, the size
/// precision 18 needs, sign-extended: apache-avro's reader refuses fewer when it resolves against
/// a reader schema; see the README's "Decimal width").
fn decimal_value(field: &'static str, value: Decimal) -> Result<Value, EncodeError> {
    let unscaled = super::datum::unscaled(field, value)?;
    Ok(Value::Decimal(apache_avro::Decimal::from(
        unscaled.to_be_bytes()[..super::datum::DECIMAL_BYTES].to_vec(),
    )))
}

/// Reads an Avro decimal value (as decoded with the quote schema) back into an exact decimal.
pub fn decimal_from_avro(value: &Value) -> Option<Decimal> {
    let Value::Decimal(decimal) = value else {
        return None;
    };
    let bytes: Vec<u8> = decimal.try_into().ok()?;
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xFF } else { 0x00 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(&bytes);
    let unscaled = i128::from_be_bytes(full);
    Decimal::try_from_i128_with_scale(unscaled, DECIMAL_SCALE)
        .ok()
        .map(|d| d.normalize())
}

/// An Avro value decoded with a bundled schema, as JSON (decimals as exact strings, enums as
/// their symbols, timestamps as RFC 3339, unions unwrapped).
pub fn value_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Long(i) => Json::from(*i),
        Value::Float(f) => Json::from(*f),
        Value::Double(f) => Json::from(*f),
        Value::String(s) | Value::Enum(_, s) => Json::String(s.clone()),
        Value::Bytes(b) | Value::Fixed(_, b) => Json::String(b.iter().map(|byte| format!("{byte:02x}")).collect()),
        Value::Decimal(_) => decimal_from_avro(value).map_or(Json::Null, |d| Json::String(d.to_string())),
        Value::TimestampMillis(ms) => DateTime::<Utc>::from_timestamp_millis(*ms).map_or(Json::from(*ms), |at| {
            Json::String(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }),
        Value::Union(_, inner) => value_to_json(inner),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect()),
        Value::Record(fields) => Json::Object(fields.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect()),
        other => Json::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn decimals_round_trip_exactly() {
        for text in [
            "106275",
            "-4795.3",
            "-0.70",
            "0.97",
            "0",
            "-0.000001",
            "999999999999.999999",
        ] {
            let value = Decimal::from_str(text).unwrap();
            let avro = decimal_value("price", value).unwrap();
            let back = decimal_from_avro(&avro).unwrap();
            assert_eq!(back, value, "{text}");
        }
    }

    #[test]
    fn decimal_bytes_are_eight_byte_twos_complement() {
        let Value::Decimal(d) = decimal_value("price", Decimal::from_str("-0.000001").unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(<Vec<u8>>::try_from(&d).unwrap(), vec![0xFF; 8]);
        let Value::Decimal(d) = decimal_value("price", Decimal::from_str("0.000128").unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(<Vec<u8>>::try_from(&d).unwrap(), vec![0, 0, 0, 0, 0, 0, 0, 0x80]);
    }

    #[test]
    fn too_precise_or_too_large_decimals_are_refused() {
        assert_eq!(
            decimal_value("price", Decimal::from_str("1.0000001").unwrap())
                .unwrap_err()
                .code(),
            "decimal_out_of_range"
        );
        assert!(decimal_value("price", Decimal::from_str("1000000000000").unwrap()).is_err());
    }
}
