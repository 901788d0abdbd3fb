//! Pure encoding: events → Avro datums → framed record values (no I/O).
//!
//! Two framings: the Confluent Schema Registry wire format (magic byte `0`, 4-byte big-endian
//! schema id, datum) and Avro single-object encoding (`C3 01`, 8-byte little-endian CRC-64-AVRO
//! fingerprint of the schema, datum), which needs no registry.

pub mod datum;
pub mod fingerprint;
mod values;

use std::sync::LazyLock;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::Schema;

use crate::model::{Article, Quote};

pub use values::{article_value, decimal_from_avro, quote_value, value_to_json};

/// The bundled schema of quote events (`schemas/quote.avsc`).
pub const QUOTE_SCHEMA_JSON: &str = include_str!("../../schemas/quote.avsc");
/// The bundled schema of article events (`schemas/article.avsc`).
pub const ARTICLE_SCHEMA_JSON: &str = include_str!("../../schemas/article.avsc");

/// Scale of every decimal in the quote schema.
pub const DECIMAL_SCALE: u32 = 6;
/// Precision of every decimal in the quote schema.
pub const DECIMAL_PRECISION: u32 = 18;

/// The parsed bundled schemas; immutable for the life of the process.
pub struct Schemas {
    /// Quote events.
    pub quote: Schema,
    /// Article events.
    pub article: Schema,
}

static BUNDLED: LazyLock<Schemas> = LazyLock::new(|| Schemas {
    quote: Schema::parse_str(QUOTE_SCHEMA_JSON).expect("schemas/quote.avsc is valid Avro"),
    article: Schema::parse_str(ARTICLE_SCHEMA_JSON).expect("schemas/article.avsc is valid Avro"),
});

impl Schemas {
    /// The schemas compiled into the binary.
    pub fn bundled() -> &'static Schemas {
        &BUNDLED
    }
}

/// Which kind of event a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A ticker quote.
    Quote,
    /// An article.
    Article,
}

impl EventType {
    /// Label used in metrics and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Quote => "quote",
            EventType::Article => "article",
        }
    }
}

/// How datums are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Confluent wire format with the registry ids of both schemas.
    Confluent {
        /// Registry id of the quote schema.
        quote_schema_id: u32,
        /// Registry id of the article schema.
        article_schema_id: u32,
    },
    /// Avro single-object encoding.
    SingleObject,
}

/// Why an event could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A decimal does not fit the schema's precision and scale.
    #[error("{field} = {value} does not fit decimal({DECIMAL_PRECISION},{DECIMAL_SCALE})")]
    DecimalOutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// The Avro library refused the datum.
    #[error("avro encoding failed: {0}")]
    Avro(String),
}

impl EncodeError {
    /// Stable code for metrics and dead-letter headers.
    pub fn code(&self) -> &'static str {
        match self {
            EncodeError::DecimalOutOfRange { .. } => "decimal_out_of_range",
            EncodeError::Avro(_) => "avro_encode_failed",
        }
    }
}

/// Encodes events with the bundled schemas and a framing. Cheap to share between threads.
pub struct Encoder {
    quote_header: Vec<u8>,
    article_header: Vec<u8>,
}

impl Encoder {
    /// An encoder for the given framing.
    pub fn new(framing: Framing) -> Self {
        let (quote_header, article_header) = match framing {
            Framing::Confluent {
                quote_schema_id,
                article_schema_id,
            } => (confluent_header(quote_schema_id), confluent_header(article_schema_id)),
            Framing::SingleObject => (
                single_object_header(QUOTE_SCHEMA_JSON),
                single_object_header(ARTICLE_SCHEMA_JSON),
            ),
        };
        Self {
            quote_header,
            article_header,
        }
    }

    /// The framed record value of a quote.
    pub fn encode_quote(&self, quote: &Quote) -> Result<Vec<u8>, EncodeError> {
        let mut buffer = Vec::with_capacity(self.quote_header.len() + 96 + quote.url.len());
        buffer.extend_from_slice(&self.quote_header);
        datum::write_quote(&mut buffer, quote)?;
        Ok(buffer)
    }

    /// The framed record value of an article.
    pub fn encode_article(&self, article: &Article) -> Result<Vec<u8>, EncodeError> {
        let size: usize = article.paragraphs.iter().map(|p| p.len() + 2).sum::<usize>() + 256;
        let mut buffer = Vec::with_capacity(self.article_header.len() + size);
        buffer.extend_from_slice(&self.article_header);
        datum::write_article(&mut buffer, article);
        Ok(buffer)
    }
}

/// Magic byte 0 and the big-endian schema id.
pub fn confluent_header(schema_id: u32) -> Vec<u8> {
    let mut header = vec![0u8];
    header.extend_from_slice(&schema_id.to_be_bytes());
    header
}

/// `C3 01` and the CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, little-endian.
pub fn single_object_header(schema_json: &str) -> Vec<u8> {
    let mut header = vec![0xC3, 0x01];
    header.extend_from_slice(&fingerprint::schema_fingerprint(schema_json).to_le_bytes());
    header
}

/// A framed record value split into its framing and datum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed<'a> {
    /// Confluent wire format.
    Confluent {
        /// Registry schema id.
        schema_id: u32,
        /// The Avro datum.
        datum: &'a [u8],
    },
    /// Single-object encoding.
    SingleObject {
        /// The 8 fingerprint bytes as written.
        fingerprint: [u8; 8],
        /// The Avro datum.
        datum: &'a [u8],
    },
}

/// Splits a record value into framing and datum; `None` when it is neither framing.
pub fn unframe(bytes: &[u8]) -> Option<Framed<'_>> {
    match bytes {
        [0, a, b, c, d, datum @ ..] => Some(Framed::Confluent {
            schema_id: u32::from_be_bytes([*a, *b, *c, *d]),
            datum,
        }),
        [0xC3, 0x01, rest @ ..] if rest.len() >= 8 => Some(Framed::SingleObject {
            fingerprint: rest[..8].try_into().expect("8 bytes"),
            datum: &rest[8..],
        }),
        _ => None,
    }
}

/// Decodes a single-object-framed record with the bundled schema whose fingerprint it carries.
pub fn decode_single_object(bytes: &[u8]) -> Option<(EventType, Value)> {
    let Some(Framed::SingleObject { fingerprint, mut datum }) = unframe(bytes) else {
        return None;
    };
    let schemas = Schemas::bundled();
    for (event_type, schema, json) in [
        (EventType::Quote, &schemas.quote, QUOTE_SCHEMA_JSON),
        (EventType::Article, &schemas.article, ARTICLE_SCHEMA_JSON),
    ] {
        if fingerprint::schema_fingerprint(json).to_le_bytes() == fingerprint {
            return read_datum(schema, &mut datum).ok().map(|value| (event_type, value));
        }
    }
    None
}

/// Decodes one Avro datum written with `schema`.
pub fn read_datum(schema: &Schema, datum: &mut &[u8]) -> Result<Value, apache_avro::Error> {
    GenericDatumReader::builder(schema).build()?.read_value(datum)
}
