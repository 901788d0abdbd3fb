//! A small client of the Confluent Schema Registry API (Confluent, Apicurio `/apis/ccompat/v7`,
//! Karapace): register, look up and check schemas under TopicNameStrategy subjects.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::config::RegistryConfig;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached.
    #[error("schema registry at {url} is unreachable: {reason}")]
    Unreachable {
        /// The registry URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The registry answered with an error.
    #[error("schema registry at {url} answered {status} for {what}: {message}")]
    Status {
        /// The registry URL.
        url: String,
        /// What was asked.
        what: String,
        /// HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
    /// The CA certificates to trust cannot be used.
    #[error("cannot use the CA certificates in {path}: {reason}")]
    Certificates {
        /// The PEM file (`registry.ca_location` or `SSL_CERT_FILE`).
        path: String,
        /// Why.
        reason: String,
    },
    /// A schema is not registered under its subject.
    #[error("schema for subject `{subject}` is not registered at {url} (set registry.auto_register = true or run `pagesplit schemas register`)")]
    NotRegistered {
        /// The registry URL.
        url: String,
        /// The subject.
        subject: String,
    },
}

impl RegistryError {
    /// Whether retrying may help (the registry is down or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            RegistryError::NotRegistered { .. } | RegistryError::Certificates { .. } => false,
        }
    }
}

/// The subject of a topic's values under TopicNameStrategy.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// A registry client.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    /// The URL requests go to (may carry a user and password).
    base: String,
    /// The URL as messages show it: a password in it replaced by `***`.
    shown: String,
    username: String,
    password: crate::config::Secret,
}

#[derive(Deserialize)]
struct IdResponse {
    id: u32,
}

/// A schema fetched by its id.
#[derive(Debug, Deserialize)]
pub struct SchemaById {
    /// The schema text.
    pub schema: String,
    /// `AVRO`, `JSON` or `PROTOBUF`; absent means Avro.
    #[serde(default, rename = "schemaType")]
    pub schema_type: Option<String>,
}

#[derive(Deserialize)]
struct CompatibilityResponse {
    is_compatible: bool,
    #[serde(default)]
    messages: Vec<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    message: String,
}

/// The CA certificates of a PEM file, for trusting a private CA; the reason when the file cannot
/// be read or holds no certificate.
pub fn load_ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
        format!(
            "{} is not a PEM certificate bundle: {}",
            path.display(),
            error_chain(&error)
        )
    })?;
    if certificates.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certificates)
}

/// The PEM file of extra CA certificates: `registry.ca_location`, else `SSL_CERT_FILE` (given as
/// `ssl_cert_file`), else none.
pub fn ca_file(config: &RegistryConfig, ssl_cert_file: Option<&str>) -> Option<PathBuf> {
    [Some(config.ca_location.as_str()), ssl_cert_file]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|path| !path.is_empty())
        .map(PathBuf::from)
}

/// An error and its causes, `: `-separated (reqwest's own text says only "error sending
/// request"; the cause says which certificate or connection failed). Without the URL.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Why a request failed, without its URL (which may carry credentials).
fn request_error(error: reqwest::Error) -> String {
    error_chain(&error.without_url())
}

impl RegistryClient {
    /// A client for the configured registry, trusting the CA certificates of
    /// `registry.ca_location` (or `SSL_CERT_FILE`) besides the public web roots.
    pub fn new(config: &RegistryConfig) -> Result<Self, RegistryError> {
        let shown = crate::config::redact_url(config.url.trim_end_matches('/'));
        let mut builder = reqwest::Client::builder().timeout(Duration::from_millis(config.request_timeout_ms));
        let ssl_cert_file = std::env::var("SSL_CERT_FILE").ok();
        if let Some(path) = ca_file(config, ssl_cert_file.as_deref()) {
            let certificates = load_ca_certificates(&path).map_err(|reason| RegistryError::Certificates {
                path: path.display().to_string(),
                reason,
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|error| RegistryError::Unreachable {
            url: shown.clone(),
            reason: request_error(error),
        })?;
        Ok(Self {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            shown,
            username: config.username.clone(),
            password: config.password.clone(),
        })
    }

    /// The registry URL as messages show it (a password in it is shown as `***`).
    pub fn url(&self) -> &str {
        &self.shown
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, String), RegistryError> {
        let mut request = request.header("Accept", "application/vnd.schemaregistry.v1+json, application/json");
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                .json(&body);
        }
        if !self.username.is_empty() {
            request = request.basic_auth(&self.username, Some(self.password.expose()));
        }
        let response = request.send().await.map_err(|error| RegistryError::Unreachable {
            url: self.shown.clone(),
            reason: request_error(error),
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|error| RegistryError::Unreachable {
            url: self.shown.clone(),
            reason: request_error(error),
        })?;
        Ok((status, text))
    }

    fn status_error(&self, what: &str, status: u16, text: &str) -> RegistryError {
        let message = serde_json::from_str::<ErrorResponse>(text)
            .map(|error| error.message)
            .unwrap_or_else(|_| text.chars().take(300).collect());
        RegistryError::Status {
            url: self.shown.clone(),
            what: what.to_owned(),
            status,
            message,
        }
    }

    /// Registers a schema under a subject (idempotent) and returns its id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let what = format!("registering subject `{subject}`");
        let url = format!("{}/subjects/{}/versions", self.base, subject);
        let (status, text) = self
            .call(
                self.http.post(url),
                Some(json!({"schema": schema, "schemaType": "AVRO"})),
            )
            .await?;
        if status == 200 {
            if let Ok(IdResponse { id }) = serde_json::from_str(&text) {
                return Ok(id);
            }
        }
        Err(self.status_error(&what, status, &text))
    }

    /// Looks up the id of a schema already registered under a subject.
    pub async fn lookup(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let what = format!("looking up subject `{subject}`");
        let url = format!("{}/subjects/{}", self.base, subject);
        let (status, text) = self
            .call(
                self.http.post(url),
                Some(json!({"schema": schema, "schemaType": "AVRO"})),
            )
            .await?;
        match status {
            200 => serde_json::from_str::<IdResponse>(&text)
                .map(|response| response.id)
                .map_err(|_| self.status_error(&what, status, &text)),
            404 => Err(RegistryError::NotRegistered {
                url: self.shown.clone(),
                subject: subject.to_owned(),
            }),
            _ => Err(self.status_error(&what, status, &text)),
        }
    }

    /// The schema registered under `id` (`GET /schemas/ids/{id}`), as consumers fetch a writer
    /// schema by the id framed into a record.
    pub async fn schema_by_id(&self, id: u32) -> Result<SchemaById, RegistryError> {
        let what = format!("schema id {id}");
        let url = format!("{}/schemas/ids/{id}", self.base);
        let (status, text) = self.call(self.http.get(url), None).await?;
        match status {
            200 => serde_json::from_str(&text).map_err(|_| self.status_error(&what, status, &text)),
            _ => Err(self.status_error(&what, status, &text)),
        }
    }

    /// Checks a schema against the latest version of a subject under the registry's
    /// compatibility rules. A subject with no versions accepts any schema.
    pub async fn check_compatibility(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<Result<(), Vec<String>>, RegistryError> {
        let what = format!("checking compatibility of subject `{subject}`");
        let url = format!(
            "{}/compatibility/subjects/{}/versions/latest?verbose=true",
            self.base, subject
        );
        let (status, text) = self
            .call(
                self.http.post(url),
                Some(json!({"schema": schema, "schemaType": "AVRO"})),
            )
            .await?;
        match status {
            200 => {
                let response: CompatibilityResponse =
                    serde_json::from_str(&text).map_err(|_| self.status_error(&what, status, &text))?;
                Ok(if response.is_compatible {
                    Ok(())
                } else {
                    Err(response.messages)
                })
            }
            404 => Ok(Ok(())),
            _ => Err(self.status_error(&what, status, &text)),
        }
    }

    /// Sets a subject's compatibility level (e.g. `BACKWARD`).
    pub async fn set_compatibility(&self, subject: &str, level: &str) -> Result<(), RegistryError> {
        let what = format!("setting compatibility of subject `{subject}`");
        let url = format!("{}/config/{}", self.base, subject);
        let (status, text) = self
            .call(self.http.put(url), Some(json!({"compatibility": level})))
            .await?;
        if status == 200 {
            Ok(())
        } else {
            Err(self.status_error(&what, status, &text))
        }
    }

    /// Sets the subject's compatibility level (when given), then registers the schema.
    pub async fn register_with_level(
        &self,
        subject: &str,
        schema: &str,
        level: Option<&str>,
    ) -> Result<u32, RegistryError> {
        if let Some(level) = level {
            self.set_compatibility(subject, level).await?;
        }
        self.register(subject, schema).await
    }

    /// Registers (`auto_register`, setting `level` first) or looks up a schema, retrying
    /// transient failures with back-off until `deadline` has passed.
    pub async fn resolve_with_retry(
        &self,
        subject: &str,
        schema: &str,
        level: Option<&str>,
        auto_register: bool,
        deadline: Duration,
    ) -> Result<u32, RegistryError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(200);
        loop {
            let result = if auto_register {
                self.register_with_level(subject, schema, level).await
            } else {
                self.lookup(subject, schema).await
            };
            match result {
                Err(error) if error.is_transient() && started.elapsed() + backoff < deadline => {
                    tracing::warn!(error = %error, backoff_ms = backoff.as_millis() as u64, "schema registry not ready; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;

    const TEST_CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");

    fn config(url: &str) -> RegistryConfig {
        RegistryConfig {
            url: url.to_owned(),
            ..RegistryConfig::default()
        }
    }

    /// A registry over TLS (certificate for 127.0.0.1 from the test CA) answering every request
    /// with schema id 7.
    async fn tls_registry() -> SocketAddr {
        let certificates: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(include_bytes!("../tests/fixtures/tls/server.pem"))
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("../tests/fixtures/tls/server.key")).unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let body = "{\"id\":7}";
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        address
    }

    #[tokio::test]
    async fn messages_show_the_url_without_its_password() {
        let client = RegistryClient::new(&config("http://user:s3cret@127.0.0.1:9/apis/ccompat/v7/")).unwrap();
        assert_eq!(client.url(), "http://user:***@127.0.0.1:9/apis/ccompat/v7");
        let error = client
            .lookup("pages-value", "\"string\"")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("schema registry at http://user:***@127.0.0.1:9/apis/ccompat/v7 is unreachable: "),
            "{error}"
        );
        assert!(!error.contains("s3cret"), "{error}");
        let error = client
            .resolve_with_retry("pages-value", "\"string\"", None, true, Duration::ZERO)
            .await
            .unwrap_err()
            .to_string();
        assert!(!error.contains("s3cret") && error.contains("user:***@"), "{error}");
    }

    #[tokio::test]
    async fn a_private_ca_is_trusted_through_ca_location_and_tls_failures_say_why() {
        let address = tls_registry().await;
        let url = format!("https://{address}/apis/ccompat/v7");
        let untrusted = RegistryClient::new(&config(&url)).unwrap();
        let error = untrusted
            .lookup("pages-value", "\"string\"")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("invalid peer certificate") && error.contains("UnknownIssuer"),
            "{error}"
        );
        let trusted = RegistryClient::new(&RegistryConfig {
            ca_location: TEST_CA.to_owned(),
            ..config(&url)
        })
        .unwrap();
        assert_eq!(trusted.lookup("pages-value", "\"string\"").await.unwrap(), 7);
    }

    #[test]
    fn ca_location_comes_before_ssl_cert_file() {
        let mut registry = RegistryConfig::default();
        assert_eq!(ca_file(&registry, None), None);
        assert_eq!(ca_file(&registry, Some("")), None);
        assert_eq!(
            ca_file(&registry, Some("/etc/ca.pem")),
            Some(PathBuf::from("/etc/ca.pem"))
        );
        registry.ca_location = "/opt/private-ca.pem".to_owned();
        assert_eq!(
            ca_file(&registry, Some("/etc/ca.pem")),
            Some(PathBuf::from("/opt/private-ca.pem"))
        );
    }

    #[test]
    fn unusable_ca_files_are_refused() {
        assert_eq!(load_ca_certificates(Path::new(TEST_CA)).unwrap().len(), 1);
        let error = load_ca_certificates(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(error.starts_with("cannot read /nonexistent/ca.pem"), "{error}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = load_ca_certificates(&empty).unwrap_err();
        assert!(error.ends_with("holds no PEM certificate"), "{error}");
        let error =
            crate::config::Config::from_toml_str(&format!("[registry]\nca_location = \"{}\"\n", empty.display()))
                .unwrap_err()
                .to_string();
        assert!(error.starts_with("invalid value for `registry.ca_location`"), "{error}");
    }
}
