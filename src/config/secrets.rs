//! Secrets: values that never print, redaction of the typed tree for display (`config check`,
//! the effective configuration logged at start), and credentials sent without TLS.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// What a redacted value shows instead.
const REDACTED: &str = "***";

/// A secret string: never printed by `Debug`, `Display` or serialization.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether a secret was given at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}

/// Whether a raw librdkafka option holds a secret (whatever the case of its key): passwords,
/// client secrets, key passphrases, private keys, OAUTHBEARER configuration.
pub(crate) fn is_secret_option(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    [
        "password",
        "secret",
        "passphrase",
        "private.key",
        "key.pem",
        "oauthbearer.config",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// `url` with the password of its user information replaced by `***`
/// (`http://user:s3cret@host/path` → `http://user:***@host/path`); other URLs unchanged.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_none() || parsed.set_password(Some(REDACTED)).is_err() {
                return url.to_owned();
            }
            parsed.to_string()
        }
        // Not a URL the client could use either; hide everything before an `@` in what could be
        // its authority.
        Err(_) => {
            let start = url.find("://").map_or(0, |scheme| scheme + 3);
            let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |end| start + end);
            match url[start..end].rfind('@') {
                Some(at) => format!("{}{REDACTED}{}", &url[..start], &url[start + at..]),
                None => url.to_owned(),
            }
        }
    }
}

/// Whether `url` carries a user name or password.
pub(super) fn url_has_credentials(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(parsed) => !parsed.username().is_empty() || parsed.password().is_some(),
        Err(_) => redact_url(url) != url,
    }
}

impl Config {
    /// The effective configuration as TOML with every secret redacted, for logs and
    /// `config check`; credentials allowed without TLS are announced in leading comments.
    pub fn redacted_toml(&self) -> String {
        let mut tree = toml::Value::try_from(self).unwrap_or_else(|_| toml::Value::Table(toml::Table::new()));
        redact_tree(&mut tree);
        let mut text: String = self
            .insecure_credentials_warnings()
            .iter()
            .map(|warning| format!("# WARNING: {warning}\n"))
            .collect();
        text.push_str(&toml::to_string_pretty(&tree).unwrap_or_default());
        text
    }

    /// The SASL password: `kafka.sasl_password`, else the content of `kafka.sasl_password_file`.
    pub fn sasl_password(&self) -> Result<Secret, ConfigError> {
        if self.kafka.sasl_password_file.is_empty() {
            return Ok(self.kafka.sasl_password.clone());
        }
        let path = &self.kafka.sasl_password_file;
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::value("kafka.sasl_password_file", format!("cannot read {path}: {error}")))?;
        let password = text.strip_suffix('\n').unwrap_or(&text);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            return Err(ConfigError::value(
                "kafka.sasl_password_file",
                format!("{path} is empty"),
            ));
        }
        Ok(Secret::new(password))
    }

    /// Credentials this configuration sends without TLS because an `allow_insecure_credentials`
    /// key lets it: one sentence each, empty when there are none.
    pub fn insecure_credentials_warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        let kafka = &self.kafka;
        if kafka.allow_insecure_credentials
            && kafka.security_protocol.uses_sasl()
            && !kafka.security_protocol.uses_tls()
        {
            warnings.push(
                "kafka.allow_insecure_credentials: SASL credentials are sent to the brokers without TLS (SASL_PLAINTEXT)",
            );
        }
        let registry = &self.registry;
        let credentials = !registry.username.is_empty() || url_has_credentials(&registry.url);
        if registry.allow_insecure_credentials && credentials && !registry.url.trim().starts_with("https://") {
            warnings.push(
                "registry.allow_insecure_credentials: basic-auth credentials are sent to the schema registry over http:// in clear text",
            );
        }
        warnings
    }

    /// Logs [`Config::insecure_credentials_warnings`] at warn level: at every start.
    pub fn warn_insecure_credentials(&self) {
        for warning in self.insecure_credentials_warnings() {
            tracing::warn!(warning, "credentials sent without TLS");
        }
    }
}

/// Redacts the rendered tree in place: secret raw options and the password in `registry.url`.
/// ([`Secret`] fields render as `***` already.)
fn redact_tree(tree: &mut toml::Value) {
    if let Some(kafka) = tree.get_mut("kafka").and_then(toml::Value::as_table_mut) {
        for section in ["options", "consumer_options", "producer_options"] {
            let Some(options) = kafka.get_mut(section).and_then(toml::Value::as_table_mut) else {
                continue;
            };
            for (key, value) in options.iter_mut() {
                if is_secret_option(key) {
                    *value = toml::Value::String(REDACTED.to_owned());
                }
            }
        }
    }
    if let Some(url) = tree.get_mut("registry").and_then(|registry| registry.get_mut("url")) {
        if let Some(text) = url.as_str() {
            *url = toml::Value::String(redact_url(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "from-a-file\n").unwrap();
        let text = format!(
            "[kafka]\nsecurity_protocol = \"SASL_SSL\"\nsasl_username = \"u\"\nsasl_password_file = \"{}\"\n",
            path.display()
        );
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!(config.producer_config().get("sasl.password"), Some("from-a-file"));
        assert!(!config.redacted_toml().contains("from-a-file"));
        std::fs::remove_file(&path).unwrap();
        let error = Config::from_toml_str(&text).unwrap_err();
        assert!(error.to_string().contains("kafka.sasl_password_file"), "{error}");
    }

    #[test]
    fn redaction_covers_every_secret_raw_option_whatever_its_case_or_content() {
        // Built without validation, which refuses these options: the display is redacted anyway.
        let mut config = Config::default();
        for (key, value) in [
            ("ssl.key.password", "pw-one"),
            ("SASL.PASSWORD", "pw-two"),
            ("sasl.oauthbearer.config", "principal=pw-three"),
            ("sasl.oauthbearer.assertion.private.key.passphrase", "pw-four"),
            ("sasl.oauthbearer.client.secret", "pw-five"),
            ("Ssl.Keystore.Password", "pw-six\u{1b}[31m\nseven\t\"eight"),
        ] {
            config.kafka.options.insert(key.to_owned(), value.to_owned());
        }
        config
            .kafka
            .producer_options
            .insert("ssl.key.pem".to_owned(), "-----BEGIN pw-nine".to_owned());
        config
            .kafka
            .consumer_options
            .insert("client.id".to_owned(), "reader-1".to_owned());
        let shown = config.redacted_toml();
        for secret in ["pw-", "seven", "eight", "principal"] {
            assert!(!shown.contains(secret), "{secret} in:\n{shown}");
        }
        assert!(shown.contains("\"SASL.PASSWORD\" = \"***\""), "{shown}");
        assert!(shown.contains("\"client.id\" = \"reader-1\""), "{shown}");
        assert!(shown.parse::<toml::Table>().is_ok(), "still TOML:\n{shown}");
    }

    #[test]
    fn a_password_in_a_url_is_redacted() {
        assert_eq!(
            redact_url("http://user:s3cret@registry:8081/apis/ccompat/v7"),
            "http://user:***@registry:8081/apis/ccompat/v7"
        );
        assert_eq!(redact_url("https://u:p%40ss@host/"), "https://u:***@host/");
        for unchanged in [
            "http://127.0.0.1:8081/apis/ccompat/v7",
            "https://user@host/path",
            "not a url",
        ] {
            assert_eq!(redact_url(unchanged), unchanged);
        }
        // Not parseable (a port that is no number): everything before the `@` goes.
        let shown = redact_url("http://user:s3cret@host:port/x");
        assert_eq!(shown, "http://***@host:port/x");
        assert!(url_has_credentials("http://user:s3cret@host:port/x"));
        assert!(url_has_credentials("https://user@host/") && !url_has_credentials("https://host/"));
    }

    #[test]
    fn the_registry_url_is_shown_without_its_password() {
        let config =
            Config::from_toml_str("[registry]\nurl = \"https://user:s3cret@registry.example/apis/ccompat/v7\"\n")
                .unwrap();
        let shown = config.redacted_toml();
        assert!(
            shown.contains("url = \"https://user:***@registry.example/apis/ccompat/v7\""),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(
            config.registry.url,
            "https://user:s3cret@registry.example/apis/ccompat/v7"
        );
    }

    #[test]
    fn credentials_allowed_without_tls_are_announced() {
        assert!(Config::default().insecure_credentials_warnings().is_empty());
        assert!(!Config::default().redacted_toml().contains("WARNING"));
        let config = Config::from_toml_str(
            "[kafka]\nsecurity_protocol = \"SASL_PLAINTEXT\"\nsasl_mechanism = \"PLAIN\"\nsasl_username = \"u\"\n\
             sasl_password = \"p\"\nallow_insecure_credentials = true\n\
             [registry]\nurl = \"http://registry:8080/apis\"\nusername = \"u\"\npassword = \"p\"\nallow_insecure_credentials = true\n",
        )
        .unwrap();
        let warnings = config.insecure_credentials_warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("kafka.allow_insecure_credentials"));
        assert!(warnings[1].starts_with("registry.allow_insecure_credentials"));
        let shown = config.redacted_toml();
        assert!(
            shown.starts_with("# WARNING: kafka.allow_insecure_credentials"),
            "{shown}"
        );
        // Allowed, but with TLS there is nothing to warn about.
        let config = Config::from_toml_str(
            "[registry]\nurl = \"https://registry/apis\"\nusername = \"u\"\npassword = \"p\"\nallow_insecure_credentials = true\n",
        )
        .unwrap();
        assert!(config.insecure_credentials_warnings().is_empty());
    }
}
