//! RPC over QUIC: one reused connection per peer, a few long-lived
//! streams per connection, many requests in flight on each.
//!
//! DESIGN.md §4 asks for one long-lived connection per peer, frames checked
//! before allocation, and a malformed frame closing only its stream. This
//! module keeps those promises for any request and response types; it
//! does not know the protocol enum.
//!
//! **On a stream**, the caller writes frames ([`super::wire`]) holding
//! `(request_id, Req)` and the server writes frames holding
//! `(request_id, Resp)`, in whatever order the handlers finish. A
//! connection carries at most [`STREAMS_PER_CONNECTION`] such streams, each
//! opened on first use and kept; calls are spread over them round robin.
//! There is no stream per request and no connection per request.
//!
//! **Caller side** ([`RpcClient`]): one connection per `(address, server
//! name)`, made lazily by one task while concurrent callers wait for its
//! outcome, reused while it lives and replaced once it is closed. Each
//! stream has a writer that batches whatever frames are queued (bounded
//! channel) into one write, and a reader that completes pending calls by
//! id. When a stream or connection dies its pending calls fail with a
//! retryable error, and the next call reconnects. A handshake the peer's
//! TLS rejected (wrong CA, wrong ALPN) is [`TransportError::Refused`], so a
//! CLI can say "certificate refused" instead of "unreachable".
//!
//! **Server side** ([`serve`]): every connection must complete mutual TLS
//! and carry a certificate [`tls::peer_identity`] recognises, or it is
//! closed before a single frame is read. Each request runs in its own task
//! through the [`Handler`], at most [`HANDLERS_IN_FLIGHT_MAX`] per
//! connection; responses go through a bounded channel to the stream's
//! batching writer. A malformed or oversized frame resets that stream and
//! nothing else. Only the shutdown signal (or the endpoint closing) ends
//! the accept loop.
//!
//! Every queue here is bounded and every limit is a named constant
//! (STYLE.md habit 10). No lock is held across network I/O: the per-peer
//! map is a short std mutex, and a connection attempt runs in its own task.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::BufReader;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::tls::{self, Identity};
use super::wire::{encode_frame, read_frame, WireError, FRAME_BYTES_MAX};

/// Long-lived bidirectional streams per connection; calls are spread over
/// them round robin.
pub const STREAMS_PER_CONNECTION: usize = 4;

/// How long making a connection (QUIC + TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a server waits for an incoming handshake to complete.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Calls one [`RpcClient`] may have in flight on one connection; further
/// callers wait (inside their timeout).
pub const CALLS_IN_FLIGHT_MAX: usize = 4096;

/// Requests a server runs at once for one connection; the stream readers
/// stop reading when this many are running.
pub const HANDLERS_IN_FLIGHT_MAX: usize = 1024;

/// Frames queued for one stream's writer, on either side.
pub const STREAM_QUEUE_FRAMES_MAX: usize = 1024;

/// A writer stops adding queued frames to a batch past this many bytes.
pub const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;

/// Read buffer per stream, so that small frames do not cost a stream read
/// each.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Connections one [`serve`] accepts at once; more are refused.
pub const CONNECTIONS_ACCEPTED_MAX: usize = 4096;

/// QUIC application error code: the server is shutting down.
pub const CODE_SHUTDOWN: u32 = 1;
/// QUIC application error code: the peer's certificate names no identity.
pub const CODE_NO_IDENTITY: u32 = 2;
/// QUIC application error code: a stream carried a malformed or oversized
/// frame and was closed.
pub const CODE_BAD_FRAME: u32 = 3;
/// QUIC application error code: the caller side went away.
pub const CODE_CLIENT_GONE: u32 = 4;
/// QUIC stream error code: the caller abandoned a broken stream (its
/// pending calls have failed) and will use a new one.
pub const CODE_STREAM_ABANDONED: u32 = 5;

/// What a caller should do about a failed call; see
/// [`TransportError::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be made in time. Retry, elsewhere or later.
    Unreachable,
    /// The peer's TLS rejected us, or we rejected it. Do not retry.
    Refused,
    /// No answer in time. Retry.
    Timeout,
    /// The connection or stream died with the call in flight. Retry.
    Closed,
    /// The request could not be encoded. Do not retry.
    Wire,
    /// The local endpoint could not be set up. Do not retry.
    Endpoint,
}

/// Why a call or endpoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Connecting failed or timed out.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// The peer.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The peer's TLS rejected our certificate (another CA, expired, not
    /// yet valid) or our protocol version. The message names the peer's
    /// address and the reason its alert gave.
    #[error("{0}")]
    Refused(String),
    /// We rejected the peer's certificate: not signed by our CA, or not
    /// the certificate of the node we asked for.
    #[error("{0}")]
    Untrusted(String),
    /// No response within the caller's timeout.
    #[error("no response within {timeout_ms} ms")]
    Timeout {
        /// The timeout that passed.
        timeout_ms: u64,
    },
    /// The connection or stream closed while the call was in flight.
    #[error("connection to {addr} closed: {reason}")]
    Closed {
        /// The peer.
        addr: SocketAddr,
        /// Why it closed.
        reason: String,
    },
    /// The request could not be framed (e.g. larger than the frame limit).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The local QUIC endpoint could not be made.
    #[error("cannot open a QUIC endpoint on {addr}: {source}")]
    Endpoint {
        /// The address we tried to bind.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
}

impl TransportError {
    /// What kind of failure this is.
    pub fn kind(&self) -> TransportErrorKind {
        match self {
            TransportError::Unreachable { .. } => TransportErrorKind::Unreachable,
            TransportError::Refused(_) | TransportError::Untrusted(_) => {
                TransportErrorKind::Refused
            }
            TransportError::Timeout { .. } => TransportErrorKind::Timeout,
            TransportError::Closed { .. } => TransportErrorKind::Closed,
            TransportError::Wire(_) => TransportErrorKind::Wire,
            TransportError::Endpoint { .. } => TransportErrorKind::Endpoint,
        }
    }

    /// Whether trying again (this peer later, or another replica) may
    /// succeed: true for unreachable, timed out and closed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            TransportErrorKind::Unreachable
                | TransportErrorKind::Timeout
                | TransportErrorKind::Closed
        )
    }
}

/// Which side of a TLS handshake said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The peer refused us (its alert closed the connection).
    ByPeer,
    /// We refused the peer's certificate.
    ByUs,
}

/// Why a connection ended, in a form every pending call can get a copy of.
#[derive(Debug, Clone)]
struct Failure {
    refused: Option<Refusal>,
    reason: String,
}

/// What a TLS alert (RFC 8446 §6) says, in words.
fn alert_text(alert: u64) -> String {
    match alert {
        42 => "the certificate is bad".into(),
        43 => "the certificate is not usable for this purpose".into(),
        44 => "the certificate is revoked".into(),
        45 => "the certificate has expired or is not valid yet".into(),
        46 => "the certificate is not acceptable".into(),
        48 => "the certificate is not signed by the cluster's CA".into(),
        116 => "no certificate was presented".into(),
        120 => "it speaks another dynamo protocol version".into(),
        other => format!("TLS alert {other}"),
    }
}

/// Our verifier's reason for refusing a peer's certificate, in words.
fn untrusted_text(reason: &str) -> String {
    let words = reason.to_lowercase().replace(' ', "");
    let why = if words.contains("unknownissuer") || words.contains("unknownca") {
        "it is not signed by our CA"
    } else if words.contains("notvalidforname") {
        "it is not the certificate of the node we asked for"
    } else if words.contains("expired") || words.contains("notvalidyet") {
        "it has expired or is not valid yet"
    } else {
        "it does not verify"
    };
    format!("{why} ({reason})")
}

impl Failure {
    fn of(err: &quinn::ConnectionError) -> Self {
        // QUIC carries TLS alerts as transport errors 0x100..=0x1ff: in a
        // close from the peer, it refused us; in our own error, we refused
        // it (the reason then holds rustls's words).
        let alert = |code: u64| (0x100..0x200).contains(&code).then(|| code - 0x100);
        let (refused, reason) = match err {
            quinn::ConnectionError::ConnectionClosed(c) => match alert(u64::from(c.error_code)) {
                Some(a) => (Some(Refusal::ByPeer), alert_text(a)),
                None => (None, err.to_string()),
            },
            quinn::ConnectionError::TransportError(e) => match alert(u64::from(e.code)) {
                Some(a) if e.reason.is_empty() => (Some(Refusal::ByUs), alert_text(a)),
                Some(_) => (Some(Refusal::ByUs), untrusted_text(&e.reason)),
                None => (None, err.to_string()),
            },
            _ => (None, err.to_string()),
        };
        Self { refused, reason }
    }

    fn plain(reason: impl Into<String>) -> Self {
        Self {
            refused: None,
            reason: reason.into(),
        }
    }

    /// The error for a caller: `connecting` tells whether the connection
    /// never became usable (unreachable) or died under the call (closed).
    fn to_error(&self, addr: SocketAddr, connecting: bool) -> TransportError {
        let reason = self.reason.clone();
        match self.refused {
            Some(Refusal::ByPeer) => TransportError::Refused(format!(
                "{addr} refused our certificate in the TLS handshake: {reason}"
            )),
            Some(Refusal::ByUs) => TransportError::Untrusted(format!(
                "the certificate {addr} presented was refused: {reason}"
            )),
            None if connecting => TransportError::Unreachable { addr, reason },
            None => TransportError::Closed { addr, reason },
        }
    }
}

/// The UDP datagrams an endpoint's connections sent and received, for the
/// cost a node reports (`dynamo bench`'s datagrams per operation). Every
/// connection the endpoint makes or accepts is registered; closed ones are
/// folded into running totals when the counts are read.
#[derive(Debug, Default)]
pub struct Traffic {
    live: Mutex<Vec<quinn::Connection>>,
    /// What connections that closed sent and received.
    closed: Mutex<TrafficTotals>,
}

/// UDP datagrams and bytes sent and received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficTotals {
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

impl TrafficTotals {
    fn add(&mut self, stats: &quinn::ConnectionStats) {
        self.datagrams_sent += stats.udp_tx.datagrams;
        self.datagrams_received += stats.udp_rx.datagrams;
        self.bytes_sent += stats.udp_tx.bytes;
        self.bytes_received += stats.udp_rx.bytes;
    }
}

impl Traffic {
    /// Counts this connection's datagrams from now on.
    pub fn register(&self, conn: &quinn::Connection) {
        let mut live = lock(&self.live);
        if live.len() >= CONNECTIONS_ACCEPTED_MAX {
            self.fold_closed(&mut live);
        }
        live.push(conn.clone());
    }

    /// Datagrams sent and received by every connection registered so far.
    pub fn datagrams(&self) -> (u64, u64) {
        let totals = self.totals();
        (totals.datagrams_sent, totals.datagrams_received)
    }

    /// Datagrams and bytes of every connection registered so far.
    pub fn totals(&self) -> TrafficTotals {
        let mut live = lock(&self.live);
        self.fold_closed(&mut live);
        let mut totals = *lock(&self.closed);
        for conn in live.iter() {
            totals.add(&conn.stats());
        }
        totals
    }

    fn fold_closed(&self, live: &mut Vec<quinn::Connection>) {
        live.retain(|conn| {
            if conn.close_reason().is_none() {
                return true;
            }
            lock(&self.closed).add(&conn.stats());
            false
        });
    }
}

/// Locks a std mutex; a panic elsewhere while holding it does not make the
/// map unusable (every critical section here leaves it consistent).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes a QUIC endpoint bound to `bind`. A node passes its server
/// configuration and is both server and caller; a CLI passes `None` and
/// binds [`unspecified_bind`] of the peer's address. `client` becomes the
/// endpoint's default for outgoing connections. Must run inside a tokio
/// runtime.
pub fn endpoint(
    bind: SocketAddr,
    server: Option<quinn::ServerConfig>,
    client: quinn::ClientConfig,
) -> Result<quinn::Endpoint, TransportError> {
    let made = match server {
        Some(server) => quinn::Endpoint::server(server, bind),
        None => quinn::Endpoint::client(bind),
    };
    let mut endpoint = made.map_err(|source| TransportError::Endpoint { addr: bind, source })?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// The any-port, any-interface address of `peer`'s family (`0.0.0.0:0` or
/// `[::]:0`), for a client-only endpoint.
pub fn unspecified_bind(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

// ---------------------------------------------------------------------------
// Caller side
// ---------------------------------------------------------------------------

type Reply<Resp> = oneshot::Sender<Result<Resp, TransportError>>;
type PendingCalls<Resp> = Arc<Mutex<HashMap<u64, Reply<Resp>>>>;

/// One framed request on its way to a stream writer.
struct Outgoing<Resp> {
    id: u64,
    frame: Vec<u8>,
    reply: Reply<Resp>,
}

/// A live connection to one peer and the queues of its streams.
struct PeerConn<Resp> {
    addr: SocketAddr,
    conn: quinn::Connection,
    streams: Vec<mpsc::Sender<Outgoing<Resp>>>,
    next_stream: AtomicUsize,
    in_flight: Semaphore,
}

impl<Resp: DeserializeOwned + Send + 'static> PeerConn<Resp> {
    fn start(addr: SocketAddr, conn: quinn::Connection) -> Self {
        let streams = (0..STREAMS_PER_CONNECTION)
            .map(|_| {
                let (tx, rx) = mpsc::channel(STREAM_QUEUE_FRAMES_MAX);
                tokio::spawn(run_client_stream(addr, conn.clone(), rx));
                tx
            })
            .collect();
        Self {
            addr,
            conn,
            streams,
            next_stream: AtomicUsize::new(0),
            in_flight: Semaphore::new(CALLS_IN_FLIGHT_MAX),
        }
    }

    fn is_alive(&self) -> bool {
        self.conn.close_reason().is_none()
    }

    /// The error for a call that lost its stream.
    fn lost(&self) -> TransportError {
        match self.conn.close_reason() {
            Some(err) => Failure::of(&err).to_error(self.addr, false),
            None => Failure::plain("stream closed").to_error(self.addr, false),
        }
    }

    async fn call(&self, id: u64, frame: Vec<u8>) -> Result<Resp, TransportError> {
        let _permit = self.in_flight.acquire().await.map_err(|_| self.lost())?;
        let (reply, answer) = oneshot::channel();
        let pick = self.next_stream.fetch_add(1, Ordering::Relaxed) % self.streams.len();
        self.streams[pick]
            .send(Outgoing { id, frame, reply })
            .await
            .map_err(|_| self.lost())?;
        answer.await.map_err(|_| self.lost())?
    }
}

/// The per-peer slot: a connection being made (callers wait on the
/// outcome) or one made.
enum Slot<Resp> {
    Connecting(watch::Receiver<Option<Result<Arc<PeerConn<Resp>>, Failure>>>),
    Ready(Arc<PeerConn<Resp>>),
}

type PeerKey = (SocketAddr, String);

struct ClientShared<Resp> {
    endpoint: quinn::Endpoint,
    traffic: Arc<Traffic>,
    peers: Mutex<HashMap<PeerKey, Slot<Resp>>>,
    next_request_id: AtomicU64,
    connections_opened: AtomicU64,
}

impl<Resp> Drop for ClientShared<Resp> {
    fn drop(&mut self) {
        for slot in lock(&self.peers).values() {
            if let Slot::Ready(peer) = slot {
                peer.conn
                    .close(quinn::VarInt::from_u32(CODE_CLIENT_GONE), b"client gone");
            }
        }
    }
}

/// Calls peers over QUIC: one reused connection per peer, pipelined
/// requests on a few long-lived streams.
///
/// Cheap to clone (an `Arc` inside) and safe to use from many tasks at
/// once. Dropping the last clone closes its connections.
pub struct RpcClient<Req, Resp> {
    shared: Arc<ClientShared<Resp>>,
    _req: PhantomData<fn(Req)>,
}

impl<Req, Resp> Clone for RpcClient<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            _req: PhantomData,
        }
    }
}

impl<Req, Resp> std::fmt::Debug for RpcClient<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("local_addr", &self.shared.endpoint.local_addr().ok())
            .field(
                "connections_opened",
                &self.shared.connections_opened.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl<Req, Resp> RpcClient<Req, Resp>
where
    Req: Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    /// A client that connects through `endpoint`, whose default client
    /// configuration (see [`endpoint`]) carries our credentials.
    pub fn new(endpoint: quinn::Endpoint) -> Self {
        Self {
            shared: Arc::new(ClientShared {
                endpoint,
                traffic: Arc::default(),
                peers: Mutex::new(HashMap::new()),
                next_request_id: AtomicU64::new(0),
                connections_opened: AtomicU64::new(0),
            }),
            _req: PhantomData,
        }
    }

    /// The datagram counts of this client's connections (a node also
    /// registers the connections it accepts here, see [`serve`]).
    pub fn traffic(&self) -> Arc<Traffic> {
        self.shared.traffic.clone()
    }

    /// How many connections this client has established so far (for
    /// tests and metrics: with a healthy peer it stays at one per peer).
    pub fn connections_opened(&self) -> u64 {
        self.shared.connections_opened.load(Ordering::Relaxed)
    }

    /// Sends `req` to the node at `addr`, whose certificate must be valid
    /// for `server_name` (see [`tls::server_name`]), and waits at most
    /// `timeout` for the response, connecting first if needed.
    ///
    /// Connections are kept per `(addr, server_name)`.
    pub async fn call(
        &self,
        addr: SocketAddr,
        server_name: &str,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, TransportError> {
        let id = self.shared.next_request_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::new();
        encode_frame(&(id, &req), &mut frame)?;
        drop(req);
        let attempt = async {
            let peer = self.connection(addr, server_name).await?;
            peer.call(id, frame).await
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout {
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Whether a live connection to the peer is cached (no handshake needed
    /// for the next call).
    pub fn is_connected(&self, addr: SocketAddr, server_name: &str) -> bool {
        let key: PeerKey = (addr, server_name.to_string());
        matches!(lock(&self.shared.peers).get(&key), Some(Slot::Ready(peer)) if peer.is_alive())
    }

    /// Connects to the peer now (or waits for the attempt in progress), so
    /// that a later call finds the connection made; true once connected.
    /// Giving up on the future does not abandon the attempt.
    pub async fn connect(&self, addr: SocketAddr, server_name: &str) -> bool {
        self.connection(addr, server_name).await.is_ok()
    }

    /// Forgets the cached connection to a peer, so the next call connects
    /// afresh; calls in flight on it go on. For a caller that suspects the
    /// connection is dead without knowing it (the peer crashed and
    /// restarted: no close ever arrives, only the idle timeout would end it).
    pub fn forget(&self, addr: SocketAddr, server_name: &str) {
        let key: PeerKey = (addr, server_name.to_string());
        let mut peers = lock(&self.shared.peers);
        if matches!(peers.get(&key), Some(Slot::Ready(_))) {
            peers.remove(&key);
        }
    }

    /// The live connection to the peer, made if there is none. Concurrent
    /// callers share one attempt, which runs in its own task so that a
    /// caller giving up does not abandon the others.
    async fn connection(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<Arc<PeerConn<Resp>>, TransportError> {
        let key: PeerKey = (addr, server_name.to_string());
        let mut outcome = {
            let mut peers = lock(&self.shared.peers);
            match peers.get(&key) {
                Some(Slot::Ready(peer)) if peer.is_alive() => return Ok(peer.clone()),
                Some(Slot::Connecting(outcome)) => outcome.clone(),
                _ => {
                    let (tx, rx) = watch::channel(None);
                    peers.insert(key.clone(), Slot::Connecting(rx.clone()));
                    tokio::spawn(connect(self.shared.clone(), key, tx));
                    rx
                }
            }
        };
        let done =
            outcome
                .wait_for(Option::is_some)
                .await
                .map_err(|_| TransportError::Unreachable {
                    addr,
                    reason: "connection attempt abandoned".into(),
                })?;
        match &*done {
            Some(Ok(peer)) => Ok(peer.clone()),
            Some(Err(failure)) => Err(failure.to_error(addr, true)),
            None => Err(TransportError::Unreachable {
                addr,
                reason: "connection attempt abandoned".into(),
            }),
        }
    }
}

/// Makes one connection and publishes the outcome to the waiting callers
/// and the peer map.
async fn connect<Resp: DeserializeOwned + Send + 'static>(
    shared: Arc<ClientShared<Resp>>,
    key: PeerKey,
    outcome: watch::Sender<Option<Result<Arc<PeerConn<Resp>>, Failure>>>,
) {
    let (addr, server_name) = (key.0, key.1.as_str());
    let attempt = async {
        let connecting = shared
            .endpoint
            .connect(addr, server_name)
            .map_err(|e| Failure::plain(e.to_string()))?;
        connecting.await.map_err(|e| Failure::of(&e))
    };
    let result = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(conn)) => Ok(Arc::new(PeerConn::start(addr, conn))),
        Ok(Err(failure)) => Err(failure),
        Err(_) => Err(Failure::plain(format!(
            "no handshake within {} ms",
            CONNECT_TIMEOUT.as_millis()
        ))),
    };
    {
        let mut peers = lock(&shared.peers);
        match &result {
            Ok(peer) => {
                shared.connections_opened.fetch_add(1, Ordering::Relaxed);
                shared.traffic.register(&peer.conn);
                debug!(%addr, server_name, "connected");
                peers.insert(key.clone(), Slot::Ready(peer.clone()));
            }
            Err(failure) => {
                debug!(%addr, server_name, reason = %failure.reason, "connect failed");
                peers.remove(&key);
            }
        }
    }
    // Nobody waiting is fine.
    let _ = outcome.send(Some(result));
}

/// Drives one of a connection's stream slots: opens a stream when the
/// first request arrives, writes batches, and when the stream dies fails
/// its pending calls and opens a new one for the next request. Ends when
/// the connection closes (failing everything queued) or its `PeerConn` is
/// dropped.
async fn run_client_stream<Resp: DeserializeOwned + Send + 'static>(
    addr: SocketAddr,
    conn: quinn::Connection,
    mut queue: mpsc::Receiver<Outgoing<Resp>>,
) {
    let mut carried: Option<Outgoing<Resp>> = None;
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match queue.recv().await {
                Some(first) => first,
                None => return,
            },
        };
        let (mut send, recv) = match conn.open_bi().await {
            Ok(pair) => pair,
            Err(err) => {
                let failure = Failure::of(&err);
                let _ = first.reply.send(Err(failure.to_error(addr, false)));
                fail_queue(&mut queue, &failure, addr);
                return;
            }
        };
        let pending: PendingCalls<Resp> = Arc::new(Mutex::new(HashMap::new()));
        let mut reader = tokio::spawn(client_reader(recv, pending.clone()));
        let mut registry = Registry::new(pending.clone());
        let mut batch = Vec::new();
        let mut next = Some(first);
        let ended: Failure = loop {
            let item = match next.take() {
                Some(item) => item,
                None => tokio::select! {
                    biased;
                    read_end = &mut reader => {
                        break Failure::plain(read_end.unwrap_or_else(|e| format!("reader task: {e}")));
                    }
                    item = queue.recv() => match item {
                        Some(item) => item,
                        None => {
                            // PeerConn dropped: nobody can call any more.
                            let _ = send.finish();
                            return;
                        }
                    },
                },
            };
            batch.clear();
            batch.extend_from_slice(&item.frame);
            registry.register(item);
            while batch.len() < WRITE_BATCH_BYTES_MAX {
                match queue.try_recv() {
                    Ok(item) => {
                        batch.extend_from_slice(&item.frame);
                        registry.register(item);
                    }
                    Err(_) => break,
                }
            }
            if let Err(err) = send.write_all(&batch).await {
                break Failure::plain(format!("stream write failed: {err}"));
            }
        };
        reader.abort();
        let _ = send.reset(quinn::VarInt::from_u32(CODE_STREAM_ABANDONED));
        let failure = match conn.close_reason() {
            Some(err) => Failure::of(&err),
            None => ended,
        };
        let orphans: Vec<_> = lock(&pending).drain().map(|(_, reply)| reply).collect();
        for reply in orphans {
            let _ = reply.send(Err(failure.to_error(addr, false)));
        }
        if conn.close_reason().is_some() {
            fail_queue(&mut queue, &failure, addr);
            return;
        }
        debug!(%addr, reason = %failure.reason, "stream ended; a new one opens on the next call");
        // Wait for the next request before opening the next stream.
        match queue.recv().await {
            Some(item) => carried = Some(item),
            None => return,
        }
    }
}

/// Fails everything queued for a dead connection and refuses more.
fn fail_queue<Resp>(
    queue: &mut mpsc::Receiver<Outgoing<Resp>>,
    failure: &Failure,
    addr: SocketAddr,
) {
    queue.close();
    while let Ok(item) = queue.try_recv() {
        let _ = item.reply.send(Err(failure.to_error(addr, false)));
    }
}

/// The pending calls of one stream, pruned of callers that gave up.
struct Registry<Resp> {
    pending: PendingCalls<Resp>,
    prune_at: usize,
}

impl<Resp> Registry<Resp> {
    const PRUNE_AT_MIN: usize = 1024;

    fn new(pending: PendingCalls<Resp>) -> Self {
        Self {
            pending,
            prune_at: Self::PRUNE_AT_MIN,
        }
    }

    /// Records the call before its frame is written, so the answer cannot
    /// arrive first.
    fn register(&mut self, item: Outgoing<Resp>) {
        let mut pending = lock(&self.pending);
        if pending.len() >= self.prune_at {
            // Callers that timed out dropped their receivers.
            pending.retain(|_, reply| !reply.is_closed());
            self.prune_at = (2 * pending.len()).max(Self::PRUNE_AT_MIN);
        }
        pending.insert(item.id, item.reply);
    }
}

/// Reads responses and completes their calls; returns why it stopped.
async fn client_reader<Resp: DeserializeOwned>(
    recv: quinn::RecvStream,
    pending: PendingCalls<Resp>,
) -> String {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, recv);
    let mut buf = Vec::new();
    loop {
        match read_frame::<(u64, Resp), _>(&mut reader, &mut buf, FRAME_BYTES_MAX).await {
            Ok(Some((id, resp))) => {
                let reply = lock(&pending).remove(&id);
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(resp));
                }
            }
            Ok(None) => return "peer finished the stream".into(),
            Err(WireError::Io(err)) => return format!("stream read failed: {err}"),
            Err(err) => {
                warn!(error = %err, "bad response frame; closing the stream");
                let _ = reader
                    .get_mut()
                    .stop(quinn::VarInt::from_u32(CODE_BAD_FRAME));
                return format!("bad response frame: {err}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

/// Who sent a request: the identity its certificate proved in the
/// handshake, and the address the connection comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The verified identity.
    pub identity: Identity,
    /// The remote address of the connection.
    pub addr: SocketAddr,
}

/// Answers requests. One call per request, concurrently; `peer` is the
/// verified identity of the caller and where it connects from, for the
/// handler to authorise (e.g. admin calls only from [`Identity::Client`]).
///
/// A handler that panics loses that one response; the caller times out.
pub trait Handler<Req, Resp>: Send + Sync + 'static {
    /// Computes the response to `req` from `peer`.
    fn handle(&self, peer: Peer, req: Req) -> impl Future<Output = Resp> + Send;
}

/// Resolves when the shutdown signal is set (or its sender is gone, which
/// means the owner is gone too).
async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Serves RPCs on `endpoint` until `shutdown` becomes `true`.
///
/// Each connection is accepted only after mutual TLS and a recognised
/// [`Identity`]; at most [`CONNECTIONS_ACCEPTED_MAX`] are served at once.
/// Errors of single connections and streams are logged and never end the
/// loop; only shutdown or the endpoint being closed do. On shutdown the
/// endpoint stops accepting, every connection is closed with
/// [`CODE_SHUTDOWN`], and `serve` returns when their tasks have ended.
pub async fn serve<Req, Resp, H>(
    endpoint: quinn::Endpoint,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
    traffic: Arc<Traffic>,
) where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    H: Handler<Req, Resp>,
{
    let admission = Arc::new(Semaphore::new(CONNECTIONS_ACCEPTED_MAX));
    let mut connections = JoinSet::new();
    loop {
        let incoming = tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else {
            warn!("endpoint closed; no more connections will be accepted");
            break;
        };
        let Ok(permit) = admission.clone().try_acquire_owned() else {
            warn!(remote = %incoming.remote_address(), "connection limit reached; refusing");
            incoming.refuse();
            continue;
        };
        connections.spawn(serve_connection::<Req, Resp, H>(
            incoming,
            handler.clone(),
            shutdown.clone(),
            permit,
            traffic.clone(),
        ));
        while connections.try_join_next().is_some() {}
    }
    endpoint.set_server_config(None);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection<Req, Resp, H>(
    incoming: quinn::Incoming,
    handler: Arc<H>,
    mut shutdown: watch::Receiver<bool>,
    _admitted: tokio::sync::OwnedSemaphorePermit,
    traffic: Arc<Traffic>,
) where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    H: Handler<Req, Resp>,
{
    let remote = incoming.remote_address();
    let handshake = async { incoming.accept()?.await };
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => {
            // A certificate refused (another CA, expired, not yet valid) or
            // a protocol version we do not speak is said once, here; a
            // caller that gave up on its handshake is not news.
            if Failure::of(&err).refused.is_some() {
                warn!(%remote, error = %err, "refused a connection in the handshake");
            } else {
                debug!(%remote, error = %err, "handshake failed");
            }
            return;
        }
        Err(_) => {
            debug!(%remote, "handshake timed out");
            return;
        }
    };
    let Some(identity) = tls::peer_identity(&conn) else {
        warn!(%remote, "certificate names no dynamo identity; closing");
        conn.close(quinn::VarInt::from_u32(CODE_NO_IDENTITY), b"no identity");
        return;
    };
    let peer = Peer {
        identity,
        addr: remote,
    };
    traffic.register(&conn);
    debug!(%remote, peer = %peer.identity, "connection accepted");
    let handlers = Arc::new(Semaphore::new(HANDLERS_IN_FLIGHT_MAX));
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown_signalled(&mut shutdown) => {
                conn.close(quinn::VarInt::from_u32(CODE_SHUTDOWN), b"shutdown");
                break;
            }
            accepted = conn.accept_bi() => match accepted {
                Ok((send, recv)) => {
                    streams.spawn(serve_stream::<Req, Resp, H>(
                        send,
                        recv,
                        peer.clone(),
                        handler.clone(),
                        handlers.clone(),
                    ));
                }
                Err(err) => {
                    debug!(%remote, peer = %peer.identity, error = %err, "connection ended");
                    break;
                }
            },
        }
        while streams.try_join_next().is_some() {}
    }
}

/// Reads requests from one stream and runs a handler task for each; a bad
/// frame stops the stream (both directions) and only it.
async fn serve_stream<Req, Resp, H>(
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    peer: Peer,
    handler: Arc<H>,
    handlers: Arc<Semaphore>,
) where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    H: Handler<Req, Resp>,
{
    let stream = send.id();
    let (responses, queue) = mpsc::channel::<Vec<u8>>(STREAM_QUEUE_FRAMES_MAX);
    let (abort, aborted) = oneshot::channel::<()>();
    let writer = tokio::spawn(server_writer(send, queue, aborted));
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, recv);
    let mut buf = Vec::new();
    loop {
        match read_frame::<(u64, Req), _>(&mut reader, &mut buf, FRAME_BYTES_MAX).await {
            Ok(Some((id, req))) => {
                let Ok(permit) = handlers.clone().acquire_owned().await else {
                    break;
                };
                let (handler, peer, responses) = (handler.clone(), peer.clone(), responses.clone());
                tokio::spawn(async move {
                    let resp = handler.handle(peer, req).await;
                    let mut frame = Vec::new();
                    let framed = encode_frame(&(id, &resp), &mut frame);
                    drop(resp);
                    match framed {
                        // The stream may be gone; then so is the caller.
                        Ok(()) => {
                            let _ = responses.send(frame).await;
                        }
                        Err(err) => warn!(id, error = %err, "response cannot be framed; dropped"),
                    }
                    drop(permit);
                });
            }
            Ok(None) => break,
            Err(WireError::Io(err)) => {
                debug!(peer = %peer.identity, %stream, error = %err, "stream read ended");
                break;
            }
            Err(err) => {
                warn!(peer = %peer.identity, %stream, error = %err, "bad request frame; closing the stream");
                let _ = reader
                    .get_mut()
                    .stop(quinn::VarInt::from_u32(CODE_BAD_FRAME));
                let _ = abort.send(());
                return;
            }
        }
    }
    // The writer finishes the stream once every running handler has sent.
    drop(responses);
    let _ = writer.await;
    drop(abort);
}

/// Writes queued response frames in batches; resets the stream when told
/// to abort, finishes it when the queue closes.
async fn server_writer(
    mut send: quinn::SendStream,
    mut queue: mpsc::Receiver<Vec<u8>>,
    mut aborted: oneshot::Receiver<()>,
) {
    let mut batch = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            _ = &mut aborted => {
                let _ = send.reset(quinn::VarInt::from_u32(CODE_BAD_FRAME));
                return;
            }
            first = queue.recv() => first,
        };
        let Some(first) = first else {
            let _ = send.finish();
            return;
        };
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < WRITE_BATCH_BYTES_MAX {
            match queue.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if let Err(err) = send.write_all(&batch).await {
            debug!(error = %err, "response write failed; stream abandoned");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tls::{client_config, server_config, server_name, ClusterCa, Credentials};
    use crate::net::wire::FrameDecoder;
    use std::net::Ipv4Addr;
    use std::time::Instant;

    type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
    type Boxed<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

    const CALL_TIMEOUT: Duration = Duration::from_secs(30);

    /// Answers `"{peer}/{req}"`.
    struct Echo;

    impl Handler<String, String> for Echo {
        async fn handle(&self, peer: Peer, req: String) -> String {
            format!("{}/{req}", peer.identity)
        }
    }

    fn creds(ca: &ClusterCa, identity: &Identity) -> Boxed<Credentials> {
        let issued = ca.issue(identity)?;
        Ok(Credentials::from_pem(
            &ca.cert_pem,
            &issued.cert_pem,
            &issued.key_pem,
        )?)
    }

    fn loopback() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    struct Server {
        addr: SocketAddr,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
        endpoint: quinn::Endpoint,
    }

    impl Server {
        /// Starts node `n1` serving [`Echo`] on `bind`.
        fn start(ca: &ClusterCa, bind: SocketAddr) -> Boxed<Self> {
            let creds = creds(ca, &Identity::Node("n1".into()))?;
            let endpoint = endpoint(bind, Some(server_config(&creds)?), client_config(&creds)?)?;
            let addr = endpoint.local_addr()?;
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(serve(
                endpoint.clone(),
                Arc::new(Echo),
                stop_rx,
                Arc::default(),
            ));
            Ok(Self {
                addr,
                stop,
                task,
                endpoint,
            })
        }

        async fn shutdown(self) -> TestResult {
            self.stop.send(true)?;
            self.task.await?;
            self.endpoint
                .close(quinn::VarInt::from_u32(CODE_SHUTDOWN), b"bye");
            self.endpoint.wait_idle().await;
            Ok(())
        }
    }

    fn client(ca: &ClusterCa, identity: &Identity) -> Boxed<RpcClient<String, String>> {
        let creds = creds(ca, identity)?;
        let endpoint = endpoint(loopback(), None, client_config(&creds)?)?;
        Ok(RpcClient::new(endpoint))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn ten_thousand_pipelined_calls_share_one_connection() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let server = Server::start(&ca, loopback())?;
        let rpc = client(&ca, &Identity::Client)?;
        let name = server_name("n1");
        let mut calls = JoinSet::new();
        for i in 0..10_000u32 {
            let (rpc, name) = (rpc.clone(), name.clone());
            calls.spawn(async move {
                let answer = rpc
                    .call(server.addr, &name, i.to_string(), CALL_TIMEOUT)
                    .await;
                (i, answer)
            });
        }
        let mut answered = 0;
        while let Some(joined) = calls.join_next().await {
            let (i, answer) = joined?;
            assert_eq!(answer?, format!("client/{i}"));
            answered += 1;
        }
        assert_eq!(answered, 10_000);
        assert_eq!(rpc.connections_opened(), 1);
        server.shutdown().await
    }

    #[tokio::test]
    async fn the_handler_sees_the_calling_node() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let server = Server::start(&ca, loopback())?;
        let rpc = client(&ca, &Identity::Node("n3".into()))?;
        let answer = rpc
            .call(server.addr, &server_name("n1"), "hi".into(), CALL_TIMEOUT)
            .await?;
        assert_eq!(answer, "node n3/hi");
        server.shutdown().await
    }

    /// Reads one response frame from a raw stream.
    async fn read_response(recv: &mut quinn::RecvStream) -> Boxed<(u64, String)> {
        let mut decoder = FrameDecoder::default();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(frame) = decoder.next_frame::<(u64, String)>()? {
                return Ok(frame);
            }
            let n = recv.read(&mut chunk).await?.ok_or("stream ended")?;
            decoder.push(&chunk[..n]);
        }
    }

    /// Waits for the server to reset a raw stream; returns the code.
    async fn reset_code(recv: &mut quinn::RecvStream) -> Boxed<u64> {
        let mut chunk = [0u8; 64];
        loop {
            match recv.read(&mut chunk).await {
                Err(quinn::ReadError::Reset(code)) => return Ok(code.into_inner()),
                Ok(Some(_)) => continue,
                other => return Err(format!("expected a reset, got {other:?}").into()),
            }
        }
    }

    #[tokio::test]
    async fn a_bad_frame_closes_only_its_stream() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let server = Server::start(&ca, loopback())?;
        let creds = creds(&ca, &Identity::Client)?;
        let raw = endpoint(loopback(), None, client_config(&creds)?)?;
        let conn = raw.connect(server.addr, &server_name("n1"))?.await?;

        // A good request in flight first, answered after the bad streams.
        let (mut good_send, mut good_recv) = conn.open_bi().await?;
        let mut frame = Vec::new();
        encode_frame(&(7u64, "before".to_string()), &mut frame)?;
        good_send.write_all(&frame).await?;

        // Garbage: a frame whose payload is not a (u64, String).
        let (mut garbage_send, mut garbage_recv) = conn.open_bi().await?;
        garbage_send.write_all(b"\x00\x00\x00\x05hello").await?;
        // An over-limit length prefix.
        let (mut huge_send, mut huge_recv) = conn.open_bi().await?;
        huge_send.write_all(&u32::MAX.to_be_bytes()).await?;

        assert_eq!(
            reset_code(&mut garbage_recv).await?,
            u64::from(CODE_BAD_FRAME)
        );
        assert_eq!(reset_code(&mut huge_recv).await?, u64::from(CODE_BAD_FRAME));
        assert_eq!(
            read_response(&mut good_recv).await?,
            (7, "client/before".to_string())
        );

        // The same stream and the connection keep serving.
        frame.clear();
        encode_frame(&(8u64, "after".to_string()), &mut frame)?;
        good_send.write_all(&frame).await?;
        assert_eq!(
            read_response(&mut good_recv).await?,
            (8, "client/after".to_string())
        );
        assert!(conn.close_reason().is_none());
        server.shutdown().await
    }

    #[tokio::test]
    async fn after_a_server_restart_the_next_call_reconnects() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let server = Server::start(&ca, loopback())?;
        let addr = server.addr;
        let rpc = client(&ca, &Identity::Client)?;
        let name = server_name("n1");
        assert_eq!(
            rpc.call(addr, &name, "one".into(), CALL_TIMEOUT).await?,
            "client/one"
        );
        server.shutdown().await?;

        // While the node is down, calls fail retryably.
        let down = rpc
            .call(addr, &name, "down".into(), Duration::from_secs(3))
            .await;
        let err = down.err().ok_or("a call to a stopped node succeeded")?;
        assert!(err.is_retryable(), "{err}");

        let mut restarted = None;
        for _ in 0..50 {
            match Server::start(&ca, addr) {
                Ok(server) => {
                    restarted = Some(server);
                    break;
                }
                // The old socket may take a moment to be released.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let server = restarted.ok_or("could not rebind the server's port")?;
        let answer = rpc.call(addr, &name, "two".into(), CALL_TIMEOUT).await?;
        assert_eq!(answer, "client/two");
        assert_eq!(rpc.connections_opened(), 2);
        server.shutdown().await
    }

    #[tokio::test]
    async fn a_client_of_another_ca_is_refused() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let other = ClusterCa::generate("other")?;
        let server = Server::start(&ca, loopback())?;
        // Trusts the cluster CA but presents a foreign certificate.
        let foreign = other.issue(&Identity::Client)?;
        let creds = Credentials::from_pem(&ca.cert_pem, &foreign.cert_pem, &foreign.key_pem)?;
        let rpc: RpcClient<String, String> =
            RpcClient::new(endpoint(loopback(), None, client_config(&creds)?)?);
        let err = rpc
            .call(server.addr, &server_name("n1"), "x".into(), CALL_TIMEOUT)
            .await
            .err()
            .ok_or("a foreign certificate was served")?;
        assert_eq!(err.kind(), TransportErrorKind::Refused, "{err}");
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .contains("refused our certificate in the TLS handshake: the certificate is not signed by the cluster's CA"),
            "{err}"
        );

        // And a server of another CA is refused by our client.
        let rpc = client(&other, &Identity::Client)?;
        let err = rpc
            .call(server.addr, &server_name("n1"), "x".into(), CALL_TIMEOUT)
            .await
            .err()
            .ok_or("a foreign server was trusted")?;
        assert_eq!(err.kind(), TransportErrorKind::Refused, "{err}");
        assert!(err.to_string().contains("not signed by our CA"), "{err}");
        server.shutdown().await
    }

    #[tokio::test]
    async fn the_wrong_node_name_is_refused() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let server = Server::start(&ca, loopback())?;
        let rpc = client(&ca, &Identity::Client)?;
        let err = rpc
            .call(server.addr, &server_name("n2"), "x".into(), CALL_TIMEOUT)
            .await
            .err()
            .ok_or("n1 was accepted as n2")?;
        assert_eq!(err.kind(), TransportErrorKind::Refused, "{err}");
        assert!(
            err.to_string()
                .contains("not the certificate of the node we asked for"),
            "{err}"
        );
        server.shutdown().await
    }

    #[tokio::test]
    async fn nobody_listening_is_unreachable() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let rpc = client(&ca, &Identity::Client)?;
        // A bound but silent UDP socket: packets vanish.
        let silent = std::net::UdpSocket::bind(loopback())?;
        let addr = silent.local_addr()?;
        let started = Instant::now();
        let err = rpc
            .call(addr, &server_name("n1"), "x".into(), Duration::from_secs(5))
            .await
            .err()
            .ok_or("a silent socket answered")?;
        assert_eq!(err.kind(), TransportErrorKind::Unreachable, "{err}");
        assert!(err.is_retryable());
        assert!(started.elapsed() < CONNECT_TIMEOUT + Duration::from_millis(500));
        Ok(())
    }

    #[tokio::test]
    async fn a_request_over_the_frame_limit_fails_locally() -> TestResult {
        let ca = ClusterCa::generate("test")?;
        let rpc = client(&ca, &Identity::Client)?;
        let huge = "x".repeat(FRAME_BYTES_MAX + 1);
        let err = rpc
            .call(loopback(), &server_name("n1"), huge, CALL_TIMEOUT)
            .await
            .err()
            .ok_or("an oversized request was sent")?;
        assert_eq!(err.kind(), TransportErrorKind::Wire, "{err}");
        assert!(!err.is_retryable());
        assert_eq!(rpc.connections_opened(), 0);
        Ok(())
    }

    #[tokio::test]
    async fn a_call_times_out_and_the_connection_survives() -> TestResult {
        struct Slow;
        impl Handler<String, String> for Slow {
            async fn handle(&self, _peer: Peer, req: String) -> String {
                if req == "slow" {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                req
            }
        }
        let ca = ClusterCa::generate("test")?;
        let creds_n1 = creds(&ca, &Identity::Node("n1".into()))?;
        let ep = endpoint(
            loopback(),
            Some(server_config(&creds_n1)?),
            client_config(&creds_n1)?,
        )?;
        let addr = ep.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve(ep, Arc::new(Slow), stop_rx, Arc::default()));
        let rpc = client(&ca, &Identity::Client)?;
        let name = server_name("n1");
        let err = rpc
            .call(addr, &name, "slow".into(), Duration::from_millis(200))
            .await
            .err()
            .ok_or("slow call did not time out")?;
        assert_eq!(err.kind(), TransportErrorKind::Timeout);
        assert_eq!(
            rpc.call(addr, &name, "fast".into(), CALL_TIMEOUT).await?,
            "fast"
        );
        assert_eq!(rpc.connections_opened(), 1);
        stop.send(true)?;
        task.await?;
        Ok(())
    }

    /// Rough throughput of one connection:
    /// `cargo test --release --lib net::transport -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "benchmark"]
    async fn throughput_of_one_connection() -> TestResult {
        const CALLERS: usize = 512;
        const CALLS_PER_CALLER: usize = 400;
        let ca = ClusterCa::generate("bench")?;
        let server = Server::start(&ca, loopback())?;
        let rpc = client(&ca, &Identity::Client)?;
        let name = server_name("n1");
        rpc.call(server.addr, &name, "warm".into(), CALL_TIMEOUT)
            .await?;
        let started = Instant::now();
        let mut callers = JoinSet::new();
        for c in 0..CALLERS {
            let (rpc, name, addr) = (rpc.clone(), name.clone(), server.addr);
            callers.spawn(async move {
                for i in 0..CALLS_PER_CALLER {
                    let req = format!("{c}:{i}");
                    let answer = rpc.call(addr, &name, req.clone(), CALL_TIMEOUT).await?;
                    if answer != format!("client/{req}") {
                        return Err::<(), TransportError>(TransportError::Closed {
                            addr,
                            reason: "wrong answer".into(),
                        });
                    }
                }
                Ok(())
            });
        }
        while let Some(joined) = callers.join_next().await {
            joined??;
        }
        let elapsed = started.elapsed();
        let calls = (CALLERS * CALLS_PER_CALLER) as f64;
        println!(
            "{} calls, {} concurrent, one connection: {:.0} calls/s ({:.1} s)",
            calls,
            CALLERS,
            calls / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
        assert_eq!(rpc.connections_opened(), 1);
        server.shutdown().await
    }
}
