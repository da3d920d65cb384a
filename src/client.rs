//! The async client: what the `dynamo` binary and library users call to read
//! and write a cluster.
//!
//! A [`Client`] knows the cluster from its manifest (members, addresses, N,
//! R, W, Q), computes the ring itself and routes each request straight to a
//! node of the key's preference list (the paper's client-side routing, §4.5),
//! falling back along the extended list when a node is unreachable. It holds
//! one QUIC connection per node, made on first use and reused by every call.
//! Contexts travel to users as opaque tokens (see
//! [`crate::core::clock::encode_token`]) tagged with the cluster they came
//! from, so a token of another cluster is refused instead of silently
//! dropping causality.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::ClusterManifest;
use crate::core::clock::{decode_token, encode_token, Object, TokenError, VersionVector, WriteId};
use crate::core::explain::Explanation;
use crate::core::key::{KeyError, ObjectKey};
use crate::core::membership::ClusterState;
use crate::core::message::{
    BucketView, ErrorKind, NodeReport, PartitionRoot, PutRequest, RepairReport, Request, Response,
};
use crate::core::ring::Ring;
use crate::net::tls::{self, Credentials};
use crate::net::transport::{self, RpcClient, TransportError};

/// How long one request may take, every node it is tried on included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one node may take to answer one attempt of a request before
/// the next node is tried (a node's own quorum wait is 2 s by default).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2500);
/// How long a first connection to a node may take before a connection to
/// the next node races it (see `Client::race_connect`).
pub const CONNECT_RACE_DELAY: Duration = Duration::from_millis(15);
/// How long one [`Client::repair`] call may take: an exchange pushes each
/// key a replica lacks in its own request, so a partition with many
/// missing keys takes longer than a get or a put.
pub const REPAIR_TIMEOUT: Duration = Duration::from_secs(300);

/// What went wrong, grouped by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request is invalid; fix it, retrying will not help.
    #[error("{0}")]
    InvalidInput(String),
    /// The quorum could not be reached.
    #[error("{message}")]
    Unavailable {
        /// The node's explanation.
        message: String,
        /// Acknowledgements or replies received.
        acks: u8,
        /// How many were needed.
        needed: u8,
    },
    /// No node could be reached at all.
    #[error("no node of the cluster answers ({detail}); is it running? Start it with `dynamo up`")]
    NotRunning {
        /// What the last attempt said.
        detail: String,
    },
    /// A node's TLS refused our client certificate (another CA, expired,
    /// not yet valid); the message says which node and why.
    #[error("the cluster refused this home's client certificate: {0}")]
    Refused(String),
    /// A node presented a certificate this home does not trust: its CA is
    /// not this home's `ca.pem`, or it is not the node the manifest names.
    #[error("the nodes' certificates are not signed by this home's CA (ca.pem), or not for the nodes its cluster.toml names: {0}; is this home's ca.pem from this cluster?")]
    Untrusted(String),
    /// A node refused the request for the identity we presented (a node
    /// certificate sending client requests, say).
    #[error("node {node} refused the request: {message}")]
    Forbidden {
        /// Which node.
        node: String,
        /// Why.
        message: String,
    },
    /// A node name that is not in the manifest.
    #[error("no node named {name} in this cluster (nodes: {known})")]
    UnknownNode {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
    /// A context token that is not ours.
    #[error("{0}")]
    Token(#[from] TokenError),
    /// The node failed.
    #[error("node {node} failed: {message}")]
    Server {
        /// Which node.
        node: String,
        /// What it said.
        message: String,
    },
    /// The TLS set-up failed (bad certificate files).
    #[error("{0}")]
    Tls(String),
}

impl ClientError {
    /// The process exit code for this error (CLI.md): 5 when a quorum or the
    /// cluster could not be reached, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unavailable { .. } | ClientError::NotRunning { .. } => 5,
            _ => 1,
        }
    }
}

impl From<KeyError> for ClientError {
    fn from(e: KeyError) -> Self {
        ClientError::InvalidInput(e.to_string())
    }
}

/// Options of a get.
#[derive(Debug, Clone, Default)]
pub struct GetOptions {
    /// Send the request to this node only.
    pub node: Option<String>,
    /// Replies to wait for (the cluster's R when absent).
    pub r: Option<u8>,
}

/// Options of a put or delete.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Send the request to this node only.
    pub node: Option<String>,
    /// Acknowledgements to wait for (the cluster's W when absent).
    pub w: Option<u8>,
}

/// What a get returns.
#[derive(Debug, Clone)]
pub struct GetReply {
    /// The key read.
    pub key: ObjectKey,
    /// The merged object: every causally maximal sibling and the context.
    pub object: Object,
    /// The context as a token, to pass to the next put.
    pub context_token: String,
}

impl GetReply {
    /// Whether the key has no live value (never written or deleted).
    pub fn is_missing(&self) -> bool {
        self.object.is_deleted()
    }
}

/// One node's status as `dynamo status` shows it: its own report and the
/// address this client reached it at.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// Its address.
    pub addr: SocketAddr,
    /// What it says of itself.
    #[serde(flatten)]
    pub report: NodeReport,
}

/// A call that failed, and whether the node may have received it.
struct Failed {
    error: ClientError,
    maybe_delivered: bool,
}

/// What kind of request [`Client::call_routed`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routed {
    /// A get: any failure may be retried elsewhere.
    Read,
    /// A put or delete: retried with the same write id.
    Write,
}

/// How the attempts of one routed request fell short, for the error the
/// caller gets when no node served it.
#[derive(Debug, Default)]
struct Shortfall {
    /// The first node that refused to coordinate (it reached too few replicas).
    refused_by: Option<String>,
    /// The most telling answer so far: a quorum not reached beats a
    /// refusal, which beats silence.
    answer: Option<(ErrorKind, String, u8, u8)>,
    /// What the last node that could not be reached said.
    silence: Option<String>,
    /// Whether an attempt of a write may have stored it.
    maybe_stored: bool,
}

impl Shortfall {
    fn note_answer(&mut self, node: &str, e: crate::core::message::ErrorReply, what: Routed) {
        if e.kind == ErrorKind::CannotReach {
            self.refused_by.get_or_insert_with(|| node.to_string());
        } else if what == Routed::Write {
            self.maybe_stored = true;
        }
        let better = match &self.answer {
            None => true,
            Some((kind, ..)) => *kind == ErrorKind::CannotReach,
        };
        if better {
            self.answer = Some((e.kind, e.message, e.acks, e.needed));
        }
    }

    fn note_silence(&mut self, detail: String, maybe_stored: bool) {
        self.silence = Some(detail);
        self.maybe_stored |= maybe_stored;
    }

    fn into_error(self) -> ClientError {
        let stored = if self.maybe_stored {
            "; the write may have been stored on some replicas (it spreads from there, and a \
             retry with its context replaces it)"
        } else {
            ""
        };
        match (self.answer, self.silence) {
            (Some((_, message, acks, needed)), _) => ClientError::Unavailable {
                message: format!("{message}{stored}"),
                acks,
                needed,
            },
            (None, Some(detail)) => ClientError::NotRunning {
                detail: format!("{detail}{stored}"),
            },
            (None, None) => ClientError::NotRunning {
                detail: format!(
                    "no node answered within {} s{stored}",
                    REQUEST_TIMEOUT.as_secs()
                ),
            },
        }
    }
}

/// The time left for one attempt of a routed request: at most
/// [`ATTEMPT_TIMEOUT`], and nothing once the request's deadline passed.
fn attempt_budget(deadline: Instant) -> Option<Duration> {
    let left = deadline.checked_duration_since(Instant::now())?;
    (left > Duration::from_millis(10)).then(|| left.min(ATTEMPT_TIMEOUT))
}

/// A connection to a cluster.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    manifest: ClusterManifest,
    ring: Ring,
    addrs: BTreeMap<String, SocketAddr>,
    rpc: RpcClient<Request, Response>,
    cluster_tag: u32,
    rotation: AtomicUsize,
    /// Nodes that failed a call recently, and until when they are tried
    /// last: a crashed node then costs one connect timeout, not one per
    /// request.
    suspects: Mutex<BTreeMap<String, Suspect>>,
}

/// A node that failed calls: until when it goes last, and how many calls
/// in a row it failed.
#[derive(Debug, Clone, Copy)]
struct Suspect {
    until: Instant,
    strikes: u32,
}

/// How long a node that failed a call is tried after the others; doubled
/// with each further failure in a row, up to [`SUSPECT_FOR_MAX`].
pub const SUSPECT_FOR: Duration = Duration::from_secs(2);
/// The longest a failing node is tried last before it is tried first again.
pub const SUSPECT_FOR_MAX: Duration = Duration::from_secs(30);

/// A fresh id for one user write: random and never 0.
pub fn new_write_id() -> WriteId {
    loop {
        let id: WriteId = rand::random();
        if id != 0 {
            return id;
        }
    }
}

/// The tag context tokens of this cluster carry.
pub fn cluster_tag(manifest: &ClusterManifest) -> u32 {
    let digest = blake3::hash(manifest.name.as_bytes());
    let b = digest.as_bytes();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Client {
    /// A client of the cluster `manifest` describes, with these credentials.
    /// Must be called inside a tokio runtime; connects lazily.
    pub fn new(manifest: ClusterManifest, creds: Credentials) -> Result<Self, ClientError> {
        let ring = manifest
            .ring()
            .map_err(|e| ClientError::InvalidInput(format!("bad cluster manifest: {e}")))?;
        let client_config =
            tls::client_config(&creds).map_err(|e| ClientError::Tls(e.to_string()))?;
        let bind: SocketAddr = match manifest.nodes.first().map(|n| n.addr) {
            Some(SocketAddr::V6(_)) => "[::]:0"
                .parse()
                .map_err(|_| ClientError::Tls("bind".into()))?,
            _ => "0.0.0.0:0"
                .parse()
                .map_err(|_| ClientError::Tls("bind".into()))?,
        };
        let endpoint = transport::endpoint(bind, None, client_config)
            .map_err(|e| ClientError::Tls(format!("cannot open a QUIC endpoint: {e}")))?;
        let addrs = manifest
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.addr))
            .collect();
        Ok(Self {
            inner: Arc::new(ClientInner {
                cluster_tag: cluster_tag(&manifest),
                manifest,
                ring,
                addrs,
                rpc: RpcClient::new(endpoint),
                rotation: AtomicUsize::new(0),
                suspects: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    /// UDP datagrams this client's connections have sent so far.
    pub fn datagrams_sent(&self) -> u64 {
        self.inner.rpc.traffic().datagrams().0
    }

    /// The cluster's manifest.
    pub fn manifest(&self) -> &ClusterManifest {
        &self.inner.manifest
    }

    /// The ring the client routes with.
    pub fn ring(&self) -> &Ring {
        &self.inner.ring
    }

    /// Encodes a context as this cluster's token.
    pub fn token(&self, context: &VersionVector) -> String {
        encode_token(context, self.inner.cluster_tag)
    }

    /// Decodes a token, refusing tokens of other clusters.
    pub fn context(&self, token: &str) -> Result<VersionVector, ClientError> {
        Ok(decode_token(token, self.inner.cluster_tag)?)
    }

    /// The preference list of a key.
    pub fn preference_list(&self, key: &ObjectKey) -> Vec<String> {
        let p = self.inner.ring.partition_of(key.ring_position());
        self.inner
            .ring
            .preference_list(p, self.inner.manifest.replicas)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn check_node(&self, name: &str) -> Result<(), ClientError> {
        if self.inner.addrs.contains_key(name) {
            Ok(())
        } else {
            Err(ClientError::UnknownNode {
                name: name.to_string(),
                known: self
                    .inner
                    .addrs
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    /// Nodes to try for a key, in order: the chosen one only, or the
    /// preference list (starting at `first`) and then the other members.
    fn route(
        &self,
        key: &ObjectKey,
        node: &Option<String>,
        rotate: bool,
    ) -> Result<Vec<String>, ClientError> {
        if let Some(n) = node {
            self.check_node(n)?;
            return Ok(vec![n.clone()]);
        }
        let p = self.inner.ring.partition_of(key.ring_position());
        let ext = self.inner.ring.extended_list(p);
        let n = self.inner.manifest.replicas.min(ext.len());
        let mut order: Vec<String> = ext.iter().map(|s| s.to_string()).collect();
        if rotate && n > 1 {
            let start = self.inner.rotation.fetch_add(1, Ordering::Relaxed) % n;
            order[..n].rotate_left(start);
        }
        // Recently failed nodes go last, in the same relative order.
        let suspects = self.current_suspects();
        if !suspects.is_empty() {
            order.sort_by_key(|name| suspects.contains(name));
        }
        Ok(order)
    }

    fn suspects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Suspect>> {
        self.inner
            .suspects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn current_suspects(&self) -> Vec<String> {
        let now = Instant::now();
        self.suspects()
            .iter()
            .filter(|(_, s)| s.until > now)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A call to `name` failed: it goes last for a while, longer each time.
    fn suspect(&self, name: &str) {
        let mut suspects = self.suspects();
        let strikes = suspects
            .get(name)
            .map_or(1, |s| s.strikes.saturating_add(1));
        let backoff = SUSPECT_FOR
            .saturating_mul(1 << strikes.saturating_sub(1).min(8))
            .min(SUSPECT_FOR_MAX);
        suspects.insert(
            name.to_string(),
            Suspect {
                until: Instant::now() + backoff,
                strikes,
            },
        );
    }

    /// Tells the client that `name` is known to be down (say, its port on
    /// this machine is not bound): it is tried after the others, as if a
    /// call to it had just failed.
    pub fn mark_down(&self, name: &str) {
        self.suspect(name);
    }

    /// A call to `name` succeeded: it is trusted again.
    fn trust(&self, name: &str) {
        let mut suspects = self.suspects();
        if !suspects.is_empty() {
            suspects.remove(name);
        }
    }

    /// Sends a request built by `make` to the nodes of `order` in turn until
    /// one answers, all within [`REQUEST_TIMEOUT`]: the next node is tried
    /// when one cannot be reached, refuses to coordinate because it cannot
    /// reach a quorum itself ([`ErrorKind::CannotReach`]: nothing stored),
    /// answers that the quorum was not reached, or times out. That is safe
    /// for a put too: every attempt carries the same write id, so copies
    /// stored by two coordinators are one write to readers. When every node
    /// refused, the first that refused is asked once more as a last resort
    /// (`make(true)`): its failure detector is advice, not proof. `pinned`
    /// (a node chosen by the caller) sends only last-resort requests.
    async fn call_routed(
        &self,
        order: &[String],
        make: impl Fn(bool) -> Request,
        what: Routed,
        pinned: bool,
    ) -> Result<(String, Response), ClientError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut order: Vec<String> = order.to_vec();
        let mut outcome = Shortfall::default();
        let mut i = 0;
        while i < order.len() {
            let Some(budget) = attempt_budget(deadline) else {
                break;
            };
            if !pinned {
                self.race_connect(&mut order, i).await;
            }
            let name = order[i].clone();
            i += 1;
            if let Some(done) = self
                .attempt(&name, make(pinned), budget, what, &mut outcome)
                .await
            {
                return done.map(|resp| (name, resp));
            }
        }
        if let (Some(name), Some(budget), false) =
            (outcome.refused_by.clone(), attempt_budget(deadline), pinned)
        {
            if let Some(done) = self
                .attempt(&name, make(true), budget, what, &mut outcome)
                .await
            {
                return done.map(|resp| (name, resp));
            }
        }
        Err(outcome.into_error())
    }

    /// One attempt of a routed request on `name`. `Some` ends the request:
    /// an answer, or an error no other node would change (a refused
    /// certificate, invalid input). `None`: the node could not serve it
    /// (noted in `outcome`), try the next.
    async fn attempt(
        &self,
        name: &str,
        request: Request,
        budget: Duration,
        what: Routed,
        outcome: &mut Shortfall,
    ) -> Option<Result<Response, ClientError>> {
        match self.call_once(name, request, budget).await {
            Ok(Response::Error(e))
                if matches!(e.kind, ErrorKind::CannotReach | ErrorKind::Unavailable) =>
            {
                outcome.note_answer(name, e, what);
                None
            }
            Ok(resp) => Some(Ok(resp)),
            Err(Failed {
                error: ClientError::NotRunning { detail },
                maybe_delivered,
            }) => {
                outcome.note_silence(detail, maybe_delivered && what == Routed::Write);
                None
            }
            Err(Failed { error, .. }) => Some(Err(error)),
        }
    }

    /// Before the attempt on `order[i]`: when there is no connection to it
    /// yet, connects to it and, if that has not succeeded within
    /// [`CONNECT_RACE_DELAY`], to the next node as well; whichever
    /// handshake completes first is asked first (the other connection
    /// attempt goes on and is kept for later). A dead node then costs one
    /// race delay, not a connect timeout. Only connections race, never
    /// requests.
    async fn race_connect(&self, order: &mut [String], i: usize) {
        let Some(next) = order.get(i + 1) else {
            return;
        };
        let (first, second) = (&order[i], next);
        let (Some(&a), Some(&b)) = (self.inner.addrs.get(first), self.inner.addrs.get(second))
        else {
            return;
        };
        let (name_a, name_b) = (tls::server_name(first), tls::server_name(second));
        if self.inner.rpc.is_connected(a, &name_a) {
            return;
        }
        let rpc = &self.inner.rpc;
        let connect_a = rpc.connect(a, &name_a);
        tokio::pin!(connect_a);
        tokio::select! {
            _ = &mut connect_a => return,
            _ = tokio::time::sleep(CONNECT_RACE_DELAY) => {}
        }
        let connect_b = rpc.connect(b, &name_b);
        tokio::pin!(connect_b);
        let second_won = tokio::select! {
            ok = &mut connect_a => !ok && (&mut connect_b).await,
            ok = &mut connect_b => ok,
        };
        if second_won {
            // Slower than the race delay: tried after the others for a while.
            self.suspect(&order[i]);
            order.swap(i, i + 1);
        }
    }

    /// Sends one request to one node.
    async fn call(&self, name: &str, request: Request) -> Result<Response, ClientError> {
        self.call_once(name, request, REQUEST_TIMEOUT)
            .await
            .map_err(|f| f.error)
    }

    async fn call_once(
        &self,
        name: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, Failed> {
        self.check_node(name).map_err(|error| Failed {
            error,
            maybe_delivered: false,
        })?;
        let addr = self.inner.addrs[name];
        match self
            .inner
            .rpc
            .call(addr, &tls::server_name(name), request, timeout)
            .await
        {
            Ok(resp) => {
                self.trust(name);
                Ok(resp)
            }
            Err(TransportError::Refused(e)) => Err(Failed {
                error: ClientError::Refused(format!("node {name} at {e}")),
                maybe_delivered: false,
            }),
            Err(TransportError::Untrusted(e)) => Err(Failed {
                error: ClientError::Untrusted(format!("node {name}: {e}")),
                maybe_delivered: false,
            }),
            Err(e) => {
                self.suspect(name);
                let maybe_delivered = !matches!(e, TransportError::Unreachable { .. });
                Err(Failed {
                    error: ClientError::NotRunning {
                        detail: format!("{name} at {addr}: {e}"),
                    },
                    maybe_delivered,
                })
            }
        }
    }

    fn answer_error(node: &str, resp: Response) -> ClientError {
        match resp {
            Response::Error(e) => match e.kind {
                ErrorKind::InvalidInput | ErrorKind::Conflict => {
                    ClientError::InvalidInput(e.message)
                }
                ErrorKind::Unavailable | ErrorKind::CannotReach => ClientError::Unavailable {
                    message: e.message,
                    acks: e.acks,
                    needed: e.needed,
                },
                ErrorKind::Forbidden => ClientError::Forbidden {
                    node: node.to_string(),
                    message: e.message,
                },
                ErrorKind::Internal => ClientError::Server {
                    node: node.to_string(),
                    message: e.message,
                },
            },
            other => ClientError::Server {
                node: node.to_string(),
                message: format!("unexpected answer {other:?}"),
            },
        }
    }

    /// A read of `key` (a get or an explain, built by `make` from the key,
    /// R and the last-resort flag) routed as [`Client::call_routed`] does.
    async fn read(
        &self,
        key: &ObjectKey,
        options: &GetOptions,
        make: impl Fn(ObjectKey, Option<u8>, bool) -> Request,
    ) -> Result<(String, Response), ClientError> {
        let order = self.route(key, &options.node, true)?;
        let request = |last_resort| make(key.clone(), options.r, last_resort);
        self.call_routed(&order, request, Routed::Read, options.node.is_some())
            .await
    }

    /// Reads a key: every causally maximal sibling and the context.
    pub async fn get(
        &self,
        bucket: &str,
        key: &[u8],
        options: &GetOptions,
    ) -> Result<GetReply, ClientError> {
        let key = ObjectKey::new(bucket, key)?;
        let make = |key, r, last_resort| Request::Get {
            key,
            r,
            last_resort,
        };
        let (node, resp) = self.read(&key, options, make).await?;
        match resp {
            Response::Object(object) => Ok(GetReply {
                context_token: self.token(object.context()),
                key,
                object,
            }),
            other => Err(Self::answer_error(&node, other)),
        }
    }

    /// Writes a value with the context of an earlier get (`None`: a blind
    /// write that adds a sibling). Returns the new context token.
    pub async fn put(
        &self,
        bucket: &str,
        key: &[u8],
        value: Vec<u8>,
        context: Option<&str>,
        options: &PutOptions,
    ) -> Result<String, ClientError> {
        self.write(bucket, key, Some(value), context, options).await
    }

    /// Deletes a key: writes a tombstone over what `context` has seen.
    pub async fn delete(
        &self,
        bucket: &str,
        key: &[u8],
        context: Option<&str>,
        options: &PutOptions,
    ) -> Result<String, ClientError> {
        self.write(bucket, key, None, context, options).await
    }

    async fn write(
        &self,
        bucket: &str,
        key: &[u8],
        value: Option<Vec<u8>>,
        context: Option<&str>,
        options: &PutOptions,
    ) -> Result<String, ClientError> {
        let key = ObjectKey::new(bucket, key)?;
        if let Some(v) = &value {
            let max = self.inner.manifest.value_bytes_max;
            if v.len() > max {
                return Err(ClientError::InvalidInput(format!(
                    "the value is {} bytes; this cluster accepts at most {max} bytes",
                    v.len()
                )));
            }
        }
        let context = match context {
            Some(token) => self.context(token)?,
            None => VersionVector::new(),
        };
        let order = self.route(&key, &options.node, false)?;
        let write_id = new_write_id();
        let make = |last_resort| {
            Request::Put(PutRequest {
                key: key.clone(),
                context: context.clone(),
                value: value.clone(),
                w: options.w,
                write_id: Some(write_id),
                last_resort,
            })
        };
        let (node, resp) = self
            .call_routed(&order, make, Routed::Write, options.node.is_some())
            .await?;
        match resp {
            Response::Written { context } => Ok(self.token(&context)),
            other => Err(Self::answer_error(&node, other)),
        }
    }

    /// The cluster state one node gossips (members, owners, a change in
    /// progress).
    pub async fn cluster_state(&self, node: &str) -> Result<ClusterState, ClientError> {
        let request = Request::Gossip(Box::default());
        match self.call(node, request).await? {
            Response::Gossip(state) => Ok(*state),
            other => Err(Self::answer_error(node, other)),
        }
    }

    /// Asks a node to leave the cluster (it hands its partitions away).
    pub async fn leave(&self, node: &str) -> Result<(), ClientError> {
        match self.call(node, Request::Leave).await? {
            Response::Done => Ok(()),
            other => Err(Self::answer_error(node, other)),
        }
    }

    /// Asks node `via` to remove `node`, a member down for good.
    pub async fn remove(&self, via: &str, node: &str) -> Result<(), ClientError> {
        let request = Request::Remove {
            node: node.to_string(),
        };
        match self.call(via, request).await? {
            Response::Done => Ok(()),
            other => Err(Self::answer_error(via, other)),
        }
    }

    /// One node's status.
    pub async fn status(&self, node: &str) -> Result<NodeStatus, ClientError> {
        let resp = self.call(node, Request::Status).await?;
        match resp {
            Response::Status(report) => Ok(NodeStatus {
                addr: self.inner.addrs[node],
                report: *report,
            }),
            other => Err(Self::answer_error(node, other)),
        }
    }

    /// Sends `request` to the first node that answers, in manifest order
    /// (those that failed lately last); returns who answered and how.
    async fn call_any(&self, request: Request) -> Result<(String, Response), ClientError> {
        let mut names: Vec<String> = self
            .inner
            .manifest
            .nodes
            .iter()
            .map(|m| m.name.clone())
            .collect();
        let suspects = self.current_suspects();
        names.sort_by_key(|n| suspects.contains(n));
        let mut last = None;
        for name in names {
            match self.call(&name, request.clone()).await {
                Ok(response) => return Ok((name, response)),
                Err(e @ (ClientError::Refused(_) | ClientError::Untrusted(_))) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClientError::NotRunning {
            detail: "the cluster has no nodes".into(),
        }))
    }

    /// The default bucket's settings and those of every bucket with its own.
    pub async fn buckets(&self) -> Result<Vec<BucketView>, ClientError> {
        match self.call_any(Request::Buckets).await? {
            (_, Response::Buckets(list)) => Ok(list),
            (node, other) => Err(Self::answer_error(&node, other)),
        }
    }

    /// One bucket's settings (the cluster's when it has none of its own).
    pub async fn bucket(&self, bucket: &str) -> Result<BucketView, ClientError> {
        ObjectKey::new(bucket, b"-")?;
        Ok(BucketView::of(&self.buckets().await?, bucket))
    }

    /// Gives a bucket its own N, R and W (unset ones keep their value).
    pub async fn set_bucket(
        &self,
        bucket: &str,
        n: Option<u8>,
        r: Option<u8>,
        w: Option<u8>,
    ) -> Result<BucketView, ClientError> {
        let current = self.bucket(bucket).await?;
        let request = Request::SetBucket {
            bucket: bucket.to_string(),
            n: n.unwrap_or(current.n),
            r: r.unwrap_or(current.r),
            w: w.unwrap_or(current.w),
        };
        match self.call_any(request).await? {
            (_, Response::Done) => self.bucket(bucket).await,
            (node, other) => Err(Self::answer_error(&node, other)),
        }
    }

    /// One page of a bucket's live keys, after `after`; the keys and where
    /// the next page starts (`None`: no more).
    pub async fn keys_page(
        &self,
        bucket: &str,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> Result<(Vec<Vec<u8>>, Option<Vec<u8>>), ClientError> {
        ObjectKey::new(bucket, b"-")?;
        let request = Request::Keys {
            bucket: bucket.to_string(),
            after,
            limit,
        };
        match self.call_any(request).await? {
            (_, Response::Keys { keys, next }) => Ok((keys, next)),
            (node, other) => Err(Self::answer_error(&node, other)),
        }
    }

    /// Reads a key and explains how the answer came about.
    pub async fn explain(
        &self,
        bucket: &str,
        key: &[u8],
        options: &GetOptions,
    ) -> Result<(String, Explanation), ClientError> {
        let key = ObjectKey::new(bucket, key)?;
        let make = |key, r, last_resort| Request::Explain {
            key,
            r,
            last_resort,
        };
        let (node, resp) = self.read(&key, options, make).await?;
        match resp {
            Response::Explained(explanation) => {
                Ok((self.token(explanation.object.context()), *explanation))
            }
            other => Err(Self::answer_error(&node, other)),
        }
    }

    /// Tells one node to cut the network into `groups` (fault injection);
    /// an empty list heals it.
    pub async fn partition(&self, node: &str, groups: Vec<Vec<String>>) -> Result<(), ClientError> {
        let request = if groups.is_empty() {
            Request::Heal
        } else {
            Request::Partition { groups }
        };
        match self.call(node, request).await? {
            Response::Done => Ok(()),
            other => Err(Self::answer_error(node, other)),
        }
    }
    /// One node's Merkle roots of the partitions it is a home replica of;
    /// with `partition`, only that partition, with its leaves.
    pub async fn merkle_roots(
        &self,
        node: &str,
        partition: Option<u32>,
    ) -> Result<Vec<PartitionRoot>, ClientError> {
        match self.call(node, Request::MerkleRoots { partition }).await? {
            Response::MerkleRoots(roots) => Ok(roots),
            other => Err(Self::answer_error(node, other)),
        }
    }

    /// Every object one node holds in one Merkle leaf of a partition.
    pub async fn leaf_objects(
        &self,
        node: &str,
        partition: u32,
        leaf: u32,
    ) -> Result<Vec<(ObjectKey, Object)>, ClientError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let request = Request::LeafObjects {
                partition,
                leaf,
                last_leaf: leaf,
                after,
            };
            match self.call(node, request).await? {
                Response::LeafObjects { entries, next } => {
                    out.extend(entries);
                    match next {
                        Some(n) => after = Some(n),
                        None => return Ok(out),
                    }
                }
                other => return Err(Self::answer_error(node, other)),
            }
        }
    }

    /// Makes one node run anti-entropy now over `partitions` (all it
    /// replicates when empty) and report what it did.
    pub async fn repair(
        &self,
        node: &str,
        partitions: Vec<u32>,
    ) -> Result<RepairReport, ClientError> {
        let answer = self
            .call_once(node, Request::Repair { partitions }, REPAIR_TIMEOUT)
            .await
            .map_err(|f| f.error)?;
        match answer {
            Response::Repaired(report) => Ok(report),
            other => Err(Self::answer_error(node, other)),
        }
    }
}
