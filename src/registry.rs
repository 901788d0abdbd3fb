//! A small client of the Confluent Schema Registry API (Confluent, Apicurio `/apis/ccompat/v7`,
//! Karapace): register, look up and check schemas under TopicNameStrategy subjects.

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
            RegistryError::NotRegistered { .. } => false,
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
    base: String,
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

impl RegistryClient {
    /// A client for the configured registry.
    pub fn new(config: &RegistryConfig) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build()
            .map_err(|error| RegistryError::Unreachable {
                url: config.url.clone(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            username: config.username.clone(),
            password: config.password.clone(),
        })
    }

    /// The registry URL (never carries credentials).
    pub fn url(&self) -> &str {
        &self.base
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
            url: self.base.clone(),
            // reqwest errors name the URL but never credentials.
            reason: error.without_url().to_string(),
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|error| RegistryError::Unreachable {
            url: self.base.clone(),
            reason: error.without_url().to_string(),
        })?;
        Ok((status, text))
    }

    fn status_error(&self, what: &str, status: u16, text: &str) -> RegistryError {
        let message = serde_json::from_str::<ErrorResponse>(text)
            .map(|error| error.message)
            .unwrap_or_else(|_| text.chars().take(300).collect());
        RegistryError::Status {
            url: self.base.clone(),
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
                url: self.base.clone(),
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
