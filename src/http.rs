//! The HTTP endpoint: `/metrics`, `/healthz` (alive) and `/readyz` (ready to work). Served by
//! hyper directly (not `axum::serve`, which has no header-read timeout): one request per
//! connection, headers within `http.header_read_timeout_ms`, at most `http.max_connections`
//! connections at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HttpConfig;
use crate::metrics::Metrics;

/// Readiness as the pipeline reports it.
pub struct Health {
    started: AtomicBool,
    draining: AtomicBool,
    in_group: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Health {
    /// `in_group` tells whether the consumer has joined its group (with or without partitions).
    pub fn new(in_group: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self {
            started: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            in_group: Box::new(in_group),
        }
    }

    /// Startup is over: topics checked, schemas resolved, producer connected.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Relaxed);
    }

    /// Shutdown began.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Ready: started, in the group, not draining.
    pub fn is_ready(&self) -> bool {
        self.started.load(Ordering::Relaxed) && !self.draining.load(Ordering::Relaxed) && (self.in_group)()
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The router, for tests and for [`serve`].
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(AppState { metrics, health })
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}

async fn ready_handler(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Binds `config.listen` and serves until `shutdown`, at most `config.max_connections`
/// connections at once, each one request whose headers must arrive within
/// `config.header_read_timeout_ms`. Returns the bound address (port 0 picks one).
pub async fn serve(
    config: &HttpConfig,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| anyhow::anyhow!("failed to listen on http.listen = {listen}: {error}"))?;
    let bound = listener.local_addr()?;
    let server = Server {
        app: router(metrics, health),
        connections: Arc::new(Semaphore::new(config.max_connections)),
        header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
    };
    let task = tokio::spawn(server.run(listener, shutdown));
    tracing::info!(address = %bound, "serving /metrics, /healthz, /readyz");
    Ok((bound, task))
}

/// How often at most a connection refused at the limit is logged.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(10);

/// The accepting loop: hyper's HTTP/1 connections with a header-read timeout, under a limit of
/// connections open at once.
struct Server {
    app: Router,
    connections: Arc<Semaphore>,
    header_read_timeout: Duration,
}

impl Server {
    async fn run(self, listener: tokio::net::TcpListener, shutdown: CancellationToken) {
        let open = TaskTracker::new();
        let mut refused = 0u64;
        let mut refused_logged: Option<Instant> = None;
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %error, "http endpoint cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                // At the limit: closed at once rather than left waiting.
                drop(stream);
                refused += 1;
                if refused_logged.is_none_or(|at| at.elapsed() >= REFUSED_LOG_EVERY) {
                    refused_logged = Some(Instant::now());
                    tracing::warn!(refused, "http endpoint at http.max_connections: connection closed");
                }
                continue;
            };
            open.spawn(self.connection(stream, permit, shutdown.clone()));
        }
        open.close();
        open.wait().await;
    }

    /// Serves one connection: one request, its headers within the timeout.
    fn connection(
        &self,
        stream: tokio::net::TcpStream,
        permit: OwnedSemaphorePermit,
        shutdown: CancellationToken,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(false)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(self.app.clone()));
        async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(error = %error, "http connection ended with an error");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::*;

    const DEADLINE: Duration = Duration::from_secs(10);

    async fn endpoint(max_connections: usize, header_read_timeout_ms: u64) -> (SocketAddr, CancellationToken) {
        let config = HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            enabled: true,
            max_connections,
            header_read_timeout_ms,
        };
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new(|| true));
        let (address, _) = serve(&config, metrics, health, shutdown.clone()).await.unwrap();
        (address, shutdown)
    }

    /// A connection that has sent part of a request's headers.
    async fn half_sent(address: SocketAddr) -> TcpStream {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        stream
    }

    /// Everything the server sends until it closes the connection (failing after the deadline).
    async fn until_closed(stream: &mut TcpStream) -> String {
        let mut received = Vec::new();
        tokio::time::timeout(DEADLINE, stream.read_to_end(&mut received))
            .await
            .expect("the server closes the connection")
            .unwrap_or_default();
        String::from_utf8_lossy(&received).into_owned()
    }

    async fn healthz(address: SocketAddr) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        // A connection closed at once may refuse the request too.
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        until_closed(&mut stream).await
    }

    #[tokio::test]
    async fn connections_over_the_limit_are_closed_at_once() {
        let (address, shutdown) = endpoint(2, 60_000).await;
        let mut held = [half_sent(address).await, half_sent(address).await];
        // Both held connections are accepted before the next one (the backlog is in order).
        let over = healthz(address).await;
        assert_eq!(over, "", "closed without an answer");
        // The held ones are still served once their headers are complete.
        held[0].write_all(b"\r\n").await.unwrap();
        let answer = until_closed(&mut held[0]).await;
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("ok\n"),
            "{answer}"
        );
        // With a slot free again, a new connection is served.
        assert!(healthz(address).await.starts_with("HTTP/1.1 200 OK\r\n"));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn clients_that_do_not_finish_their_headers_are_disconnected() {
        let (address, shutdown) = endpoint(2, 200).await;
        let mut held = [half_sent(address).await, half_sent(address).await];
        for stream in &mut held {
            let answer = until_closed(stream).await;
            assert!(!answer.contains("200 OK"), "{answer}");
        }
        assert!(healthz(address).await.starts_with("HTTP/1.1 200 OK\r\n"));
        shutdown.cancel();
    }
}
