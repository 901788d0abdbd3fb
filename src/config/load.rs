//! Loading and layering: defaults → TOML file → `PAGESPLIT_*` environment → flags.
//!
//! Errors name the key and never show its value: a misspelt `PAGESPLIT_KAFKA__SASL_PASWORD` must
//! not print the password it holds.

use std::path::Path;

use super::{Config, ConfigError};

/// Prefix of environment variables that override configuration keys:
/// `PAGESPLIT_<SECTION>__<KEY>`, for example `PAGESPLIT_KAFKA__BOOTSTRAP_SERVERS`.
pub const ENV_PREFIX: &str = "PAGESPLIT_";

/// Environment variables with the prefix that are not configuration keys.
const ENV_NOT_KEYS: &[&str] = &["PAGESPLIT_CONFIG", "PAGESPLIT_LOG"];

impl Config {
    /// Parses a TOML document (no environment overrides) and validates it.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| ConfigError::Invalid(syntax_error(text, &error)))?;
        Self::from_table(table)
    }

    /// Loads the layers: the optional file, then `PAGESPLIT_*` variables from `env`, then
    /// `overrides` (dotted `key=value` pairs from flags), and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => read_file(path)?,
            None => toml::Table::new(),
        };
        let defaults =
            toml::Table::try_from(Config::default()).map_err(|error| ConfigError::Invalid(error.to_string()))?;
        let mut env_pairs: Vec<(String, String)> = env
            .into_iter()
            // Keys are always `SECTION__KEY`; other PAGESPLIT_* variables are not configuration.
            .filter(|(name, _)| {
                name.starts_with(ENV_PREFIX) && name.contains("__") && !ENV_NOT_KEYS.contains(&name.as_str())
            })
            .collect();
        env_pairs.sort();
        for (name, value) in env_pairs {
            let key = name[ENV_PREFIX.len()..].to_ascii_lowercase().replace("__", ".");
            set_dotted(&mut table, &defaults, &key, &value, &name)?;
        }
        for (key, value) in overrides {
            set_dotted(&mut table, &defaults, key, value, key)?;
        }
        Self::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        // Rendering and re-parsing the merged tree gives serde's errors a position, from which
        // the offending key is named.
        let text = toml::to_string(&table).map_err(|error| ConfigError::Invalid(without_values(error.to_string())))?;
        let config: Config = toml::from_str(&text).map_err(|error| ConfigError::Invalid(field_error(&text, &error)))?;
        config.validate()?;
        Ok(config)
    }
}

/// The TOML file at `path`, parsed.
fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|error| ConfigError::Invalid(format!("{}: {}", path.display(), syntax_error(&text, &error))))
}

/// A TOML syntax error as "line L, column C: what", without the source line it quotes (which
/// may hold a secret).
fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let message = without_values(error.message().trim().replace('\n', ", "));
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// A deserialization error of the merged tree, rendered as `text`: "`section.key`: what",
/// without the value.
fn field_error(text: &str, error: &toml::de::Error) -> String {
    let message = without_values(error.message().trim().replace('\n', ", "));
    match error.span().and_then(|span| key_at(text, span.start)) {
        Some(key) => format!("`{key}`: {message}"),
        None => message,
    }
}

/// The dotted key whose line holds byte `offset` of `text`, a table rendered by
/// `toml::to_string` (one `key = value` per line under `[section]` headers).
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |newline| newline + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let header = |line: &str| {
        line.trim()
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .map(str::to_owned)
    };
    if let Some(section) = header(line) {
        return Some(section);
    }
    let key = line.split_once(" = ").map(|(key, _)| key.trim().to_owned())?;
    let section = text[..line_start].lines().rev().find_map(header);
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key,
    })
}

/// `message` without the value it quotes: serde says "invalid type: string \"hunter2\",
/// expected ..." or "unknown variant `x`, expected ..."; what is expected stays, the value goes.
/// An unknown field's message names only the key, and stays whole.
fn without_values(message: String) -> String {
    if message.starts_with("unknown field") {
        return message;
    }
    let (found, expected) = match message.split_once(", expected ") {
        Some((found, expected)) => (found, Some(expected)),
        None => (message.as_str(), None),
    };
    let mut kept = String::with_capacity(found.len());
    let mut quote: Option<char> = None;
    for c in found.chars() {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '`' || c == '"' || c == '\'' => quote = Some(c),
            None => kept.push(c),
        }
    }
    let kept = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    match expected {
        Some(expected) => format!("{kept}, expected {expected}"),
        None => kept,
    }
}

/// Sets `key` (dotted) in `table` from a string, typed like the default value at that key.
fn set_dotted(
    table: &mut toml::Table,
    defaults: &toml::Table,
    key: &str,
    raw: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, sections) = parts.split_last().expect("split yields at least one part");
    let mut target = table;
    let mut default = Some(defaults);
    for section in sections {
        default = default.and_then(|d| d.get(*section)).and_then(|v| v.as_table());
        let entry = target
            .entry((*section).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        target = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError::value(key, format!("`{section}` is not a section (from {origin})")))?;
    }
    // Keep the value a string where the key is a string (a group id of `123` stays text);
    // read numbers, booleans and arrays where the key holds one of those.
    let value = match default.and_then(|d| d.get(*last)) {
        Some(toml::Value::String(_)) | None => toml::Value::String(raw.to_owned()),
        Some(_) => parse_scalar(raw),
    };
    target.insert((*last).to_owned(), value);
    Ok(())
}

/// Reads a flag or environment value as a TOML value (number, bool, array), else a string.
fn parse_scalar(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::load(None, env(&[]), &[]).unwrap();
        assert_eq!(config.kafka.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(config.topics.quotes, "market.quotes.v1");
        assert_eq!(config.http.listen.port(), 9808);
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[kafka]\ngroup_id = \"from-file\"\nbootstrap_servers = \"file:9092\"\n[pipeline]\nmax_in_flight_pages = 7\n").unwrap();
        let config = Config::load(
            Some(&path),
            env(&[
                ("PAGESPLIT_KAFKA__BOOTSTRAP_SERVERS", "env:9092"),
                ("PAGESPLIT_PIPELINE__MAX_IN_FLIGHT_PAGES", "9"),
                ("PAGESPLIT_KAFKA__GROUP_ID", "123"),
                ("OTHER", "x"),
            ]),
            &[("kafka.bootstrap_servers".into(), "flag:9092".into())],
        )
        .unwrap();
        assert_eq!(config.kafka.bootstrap_servers, "flag:9092");
        // A numeric-looking value for a string key stays a string.
        assert_eq!(config.kafka.group_id, "123");
        assert_eq!(config.pipeline.max_in_flight_pages, 9);
    }

    #[test]
    fn unknown_key_is_named() {
        let error = Config::from_toml_str("[kafka]\nbootstrap_server = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("bootstrap_server"), "{error}");
        let error = Config::load(None, env(&[("PAGESPLIT_HTTP__LISTN", "1")]), &[]).unwrap_err();
        assert!(error.to_string().contains("listn"), "{error}");
    }

    #[test]
    fn bad_value_is_named() {
        let error = Config::load(None, env(&[("PAGESPLIT_HTTP__LISTEN", "nowhere")]), &[]).unwrap_err();
        assert!(error.to_string().contains("listen"), "{error}");
        let error = Config::from_toml_str("[pipeline]\ndrain_timeout_ms = 60000\n").unwrap_err();
        assert!(error.to_string().contains("pipeline.drain_timeout_ms"), "{error}");
        let error = Config::from_toml_str("[encoding]\nformat = \"xml\"\n").unwrap_err();
        assert!(error.to_string().contains("format"), "{error}");
        let error = Config::from_toml_str("[parse]\nmax_page_bytes = 16777217\n").unwrap_err();
        assert!(error.to_string().contains("parse.max_page_bytes"), "{error}");
        let config = Config::from_toml_str("[parse]\nmax_page_bytes = 16777216\n").unwrap();
        assert_eq!(config.producer_config().get("message.max.bytes"), Some("17825792"));
    }

    #[test]
    fn emit_changed_and_the_latest_topic_come_from_every_layer() {
        let config = Config::load(
            None,
            vec![("PAGESPLIT_QUOTES__EMIT".to_owned(), "changed".to_owned())],
            &[
                ("quotes.max_symbols".to_owned(), "500".to_owned()),
                ("topics.quotes_latest".to_owned(), String::new()),
            ],
        )
        .unwrap();
        assert!(config.quotes.changed_only());
        assert_eq!(config.quotes.max_symbols, 500);
        assert_eq!(config.topics.quotes_latest(), None, "empty turns it off");
        let config = Config::from_toml_str("[topics]\nquotes_latest = \"prices.latest\"\n").unwrap();
        assert_eq!(config.topics.quotes_latest(), Some("prices.latest"));
    }

    #[test]
    fn a_misspelt_key_is_named_without_its_value() {
        let error = Config::load(None, env(&[("PAGESPLIT_KAFKA__SASL_PASWORD", "hunter2-typo")]), &[]).unwrap_err();
        let error = error.to_string();
        assert!(
            error.starts_with("invalid configuration: `kafka.sasl_pasword`: unknown field `sasl_pasword`"),
            "{error}"
        );
        assert!(!error.contains("hunter2-typo"), "{error}");
        let error = Config::load(None, env(&[]), &[("registry.pasword".into(), "hunter2-flag".into())]).unwrap_err();
        assert!(error.to_string().contains("`registry.pasword`") && !error.to_string().contains("hunter2-flag"));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_without_the_value() {
        for (text, key, value) in [
            ("[registry]\npassword = 918273645\n", "`registry.password`", "918273645"),
            (
                "[kafka]\nsasl_password = [\"pw-in-a-list\"]\n",
                "`kafka.sasl_password`",
                "pw-in-a-list",
            ),
            (
                "[encoding]\nformat = \"xml-s3cret\"\n",
                "`encoding.format`",
                "xml-s3cret",
            ),
            (
                "[kafka.options]\n\"sasl.password\" = 5551234\n",
                "`kafka.options.\"sasl.password\"`",
                "5551234",
            ),
        ] {
            let error = Config::from_toml_str(text).unwrap_err().to_string();
            assert!(error.starts_with(&format!("invalid configuration: {key}: ")), "{error}");
            assert!(!error.contains(value), "{error}");
        }
        let error = Config::from_toml_str("[encoding]\nformat = \"xml\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid configuration: `encoding.format`: unknown variant, expected `confluent` or `single-object`"
        );
        let error = Config::load(None, env(&[("PAGESPLIT_QUOTES__MAX_SYMBOLS", "-1")]), &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid configuration: `quotes.max_symbols`: invalid value: integer, expected usize"
        );
    }

    #[test]
    fn a_syntax_error_names_the_line_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[kafka]\ngroup_id = \"g\"\nsasl_password = \"hunter2-unterminated\n",
        )
        .unwrap();
        let error = Config::load(Some(&path), env(&[]), &[]).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("invalid configuration: {}: line 3, column ", path.display())),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
        let error = Config::from_toml_str("[kafka]\nsasl_password = hunter2-bare\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("invalid configuration: line 2, column 17: "),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
    }
}
