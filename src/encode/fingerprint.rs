//! Schema fingerprints as the Avro specification defines them: CRC-64-AVRO of the schema's
//! Parsing Canonical Form. (apache-avro 0.22's own canonical form keeps `precision`, `scale` and
//! logical types, so its fingerprints differ from Java's and fastavro's; single-object headers
//! must carry the specification's value or other implementations cannot resolve the schema.)

use serde_json::Value as Json;

const PRIMITIVES: &[&str] = &["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

/// The Parsing Canonical Form of a schema's JSON: full names, only `name`, `type`, `fields`,
/// `symbols`, `items`, `values`, `size` kept, in that order; primitives in their simple form
/// (`{"type":"long","logicalType":"timestamp-millis"}` is `"long"`); no whitespace.
pub fn parsing_canonical_form(schema: &Json) -> String {
    canonical(schema, None)
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

fn full_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) if !name.contains('.') && !namespace.is_empty() => format!("{namespace}.{name}"),
        _ => name.to_owned(),
    }
}

fn canonical(schema: &Json, namespace: Option<&str>) -> String {
    match schema {
        Json::String(name) if PRIMITIVES.contains(&name.as_str()) => quoted(name),
        Json::String(name) => quoted(&full_name(name, namespace)),
        Json::Array(branches) => {
            let branches: Vec<String> = branches.iter().map(|branch| canonical(branch, namespace)).collect();
            format!("[{}]", branches.join(","))
        }
        Json::Object(object) => match object.get("type").and_then(Json::as_str) {
            Some(primitive) if PRIMITIVES.contains(&primitive) => quoted(primitive),
            Some("array") => format!(
                r#"{{"type":"array","items":{}}}"#,
                canonical(&object["items"], namespace)
            ),
            Some("map") => format!(
                r#"{{"type":"map","values":{}}}"#,
                canonical(&object["values"], namespace)
            ),
            Some(kind @ ("record" | "error" | "enum" | "fixed")) => {
                let name = object.get("name").and_then(Json::as_str).unwrap_or_default();
                let own_namespace = object.get("namespace").and_then(Json::as_str).or(namespace);
                let full = full_name(name, own_namespace);
                let inner_namespace = full.rsplit_once('.').map(|(namespace, _)| namespace);
                let head = format!(r#"{{"name":{},"type":{}"#, quoted(&full), quoted(kind));
                match kind {
                    "enum" => {
                        let symbols: Vec<String> = object["symbols"]
                            .as_array()
                            .map(|symbols| symbols.iter().filter_map(Json::as_str).map(quoted).collect())
                            .unwrap_or_default();
                        format!(r#"{head},"symbols":[{}]}}"#, symbols.join(","))
                    }
                    "fixed" => format!(r#"{head},"size":{}}}"#, object["size"].as_u64().unwrap_or_default()),
                    _ => {
                        let fields: Vec<String> = object["fields"]
                            .as_array()
                            .map(|fields| {
                                fields
                                    .iter()
                                    .map(|field| {
                                        format!(
                                            r#"{{"name":{},"type":{}}}"#,
                                            quoted(field["name"].as_str().unwrap_or_default()),
                                            canonical(&field["type"], inner_namespace)
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        format!(r#"{head},"fields":[{}]}}"#, fields.join(","))
                    }
                }
            }
            _ => canonical(&object["type"], namespace),
        },
        other => other.to_string(),
    }
}

/// The CRC-64-AVRO (Rabin) fingerprint of some bytes, as the specification computes it.
pub fn crc64_avro(data: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let mut table = [0u64; 256];
    for (index, entry) in table.iter_mut().enumerate() {
        let mut fingerprint = index as u64;
        for _ in 0..8 {
            fingerprint = (fingerprint >> 1) ^ (EMPTY & (fingerprint & 1).wrapping_neg());
        }
        *entry = fingerprint;
    }
    data.iter().fold(EMPTY, |fingerprint, byte| {
        (fingerprint >> 8) ^ table[((fingerprint ^ u64::from(*byte)) & 0xff) as usize]
    })
}

/// The fingerprint of a schema given as JSON text.
pub fn schema_fingerprint(schema_json: &str) -> u64 {
    let json: Json = serde_json::from_str(schema_json).expect("schema JSON parses");
    crc64_avro(parsing_canonical_form(&json).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_schema_has_the_published_fingerprint() {
        assert_eq!(crc64_avro(br#""null""#), 7_195_948_357_588_979_594);
    }

    #[test]
    fn logical_types_docs_and_defaults_are_stripped() {
        let schema = serde_json::json!({"type": "record", "name": "R", "namespace": "n", "doc": "d", "fields": [
            {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}, "doc": "x"},
            {"name": "o", "type": ["null", "string"], "default": null},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}}
        ]});
        assert_eq!(
            parsing_canonical_form(&schema),
            r#"{"name":"n.R","type":"record","fields":[{"name":"t","type":"long"},{"name":"o","type":["null","string"]},{"name":"e","type":{"name":"n.E","type":"enum","symbols":["A","B"]}}]}"#
        );
    }
}
