//! The HTTPS API (`HTTP.md`): every node serves the store over HTTP/1.1 and
//! HTTP/2 with mutual TLS, so curl, Python or any language can use it
//! without a Rust client.
//!
//! This module owns the listener, TLS, HTTP framing and its limits; what a
//! route does is in [`routes`], which turns each request into the same
//! [`Request`](crate::core::message::Request) a QUIC client sends and hands
//! it to a [`Backend`]: the node's edge, so an HTTP request is checked and
//! coordinated exactly like a QUIC one (same quorums, sloppy quorum,
//! siblings, read repair). [`client`] is a small HTTPS client for tests,
//! `dynamo bench --http` and tools.
//!
//! Limits, each a named constant with its own clear answer: connections
//! served at once ([`CONNECTIONS_MAX`]; more are closed at once), the TLS
//! handshake ([`HANDSHAKE_TIMEOUT`]), request headers ([`HEADER_BYTES_MAX`]:
//! `431`), the body (the cluster's value limit: `413`), and the time one
//! request may take ([`REQUEST_TIMEOUT`]: `503`).

pub mod client;
pub mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::core::message::{Request, Response};
use crate::report::{RingJson, StatusJson};

/// Connections served at once; one more is closed as soon as it is accepted.
pub const CONNECTIONS_MAX: usize = 1024;
/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of request headers (HTTP/1.1 buffer, HTTP/2 header list).
pub const HEADER_BYTES_MAX: usize = 16 * 1024;
/// How long one request may take, body included; then `503`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent HTTP/2 streams per connection.
pub const H2_STREAMS_MAX: u32 = 256;
/// How long open connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the API needs of a node.
pub trait Backend: Send + Sync + 'static {
    /// Carries a client request as the node's QUIC edge does.
    fn call(&self, request: Request) -> impl Future<Output = Response> + Send;
    /// The cluster as this node sees it (`dynamo status --json`).
    fn status(&self) -> impl Future<Output = StatusJson> + Send;
    /// The ring this node routes with (`dynamo ring --json`).
    fn ring(&self) -> Option<RingJson>;
    /// The node's metrics in Prometheus text format.
    fn metrics(&self) -> impl Future<Output = String> + Send;
    /// Records one API request for the metrics: its operation and outcome
    /// (`ok`, `not_found`, `siblings`, `bad_request`, `unavailable`,
    /// `error`). Its client request, if any, is counted by the node like a
    /// QUIC one, with its latency and siblings.
    fn observe(&self, op: &'static str, outcome: &'static str);
    /// The tag this cluster's context tokens carry.
    fn cluster_tag(&self) -> u32;
    /// The largest value the cluster takes, in bytes.
    fn value_bytes_max(&self) -> usize;
}

/// Serves the API on `listener` until `shutdown` becomes true; then stops
/// accepting and gives open connections [`SHUTDOWN_GRACE`] to finish.
pub async fn serve<B: Backend>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    backend: Arc<B>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let admission = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors, say: wait a moment rather than spin.
                warn!("https accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = admission.clone().try_acquire_owned() else {
            warn!(%remote, "https connection limit ({CONNECTIONS_MAX}) reached; closing");
            continue;
        };
        let (acceptor, backend) = (acceptor.clone(), backend.clone());
        connections.spawn(async move {
            serve_connection(stream, remote, acceptor, backend).await;
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        connections.abort_all();
    }
}

async fn serve_connection<B: Backend>(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    backend: Arc<B>,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            // No certificate, another CA's, or a node's: said once, here.
            warn!(%remote, "refused an https connection in the handshake: {e}");
            return;
        }
        Err(_) => {
            debug!(%remote, "https handshake timed out");
            return;
        }
    };
    let service = service_fn(move |request| {
        let backend = backend.clone();
        async move { Ok::<_, std::convert::Infallible>(routes::handle(&*backend, request).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(HEADER_BYTES_MAX);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(HEADER_BYTES_MAX as u32)
        .max_concurrent_streams(H2_STREAMS_MAX);
    if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
        debug!(%remote, "https connection ended: {e}");
    }
}
