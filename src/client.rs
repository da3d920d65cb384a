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
use crate::core::clock::{decode_token, encode_token, Object, TokenError, VersionVector};
use crate::core::explain::Explanation;
use crate::core::key::{KeyError, ObjectKey};
use crate::core::membership::ClusterState;
use crate::core::message::{
    ErrorKind, NodeReport, PartitionRoot, PutRequest, RepairReport, Request, Response,
};
use crate::core::ring::Ring;
use crate::net::tls::{self, Credentials};
use crate::net::transport::{self, RpcClient, TransportError};

/// How long one request may take before the client gives up on that node.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// The node refused our certificate (or we refused its).
    #[error("the cluster refused the client certificate (is this home's client.pem from this cluster's CA?): {0}")]
    Refused(String),
    /// A node name that is not in the manifest.
    #[error("no node named {name:?} in this cluster (nodes: {known})")]
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

    /// A call to `name` succeeded: it is trusted again.
    fn trust(&self, name: &str) {
        let mut suspects = self.suspects();
        if !suspects.is_empty() {
            suspects.remove(name);
        }
    }

    /// Sends `request` to the first node of `order` that answers. A
    /// request that may have reached a node before its call failed (a
    /// timeout, a connection lost in flight) is tried on the next node only
    /// if it is `idempotent`: a put sent twice would become two siblings.
    async fn call_any(
        &self,
        order: &[String],
        request: Request,
        idempotent: bool,
    ) -> Result<(String, Response), ClientError> {
        let mut last = String::from("no nodes");
        for name in order {
            match self.call_once(name, request.clone(), REQUEST_TIMEOUT).await {
                Ok(resp) => return Ok((name.clone(), resp)),
                Err(Failed {
                    error,
                    maybe_delivered,
                }) => {
                    let ClientError::NotRunning { detail } = error else {
                        return Err(error);
                    };
                    if maybe_delivered && !idempotent {
                        return Err(ClientError::NotRunning {
                            detail: format!("{detail}; the write may or may not have been applied"),
                        });
                    }
                    last = detail;
                }
            }
        }
        Err(ClientError::NotRunning { detail: last })
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
                error: ClientError::Refused(e.to_string()),
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
                ErrorKind::InvalidInput => ClientError::InvalidInput(e.message),
                ErrorKind::Unavailable => ClientError::Unavailable {
                    message: e.message,
                    acks: e.acks,
                    needed: e.needed,
                },
                ErrorKind::Forbidden => ClientError::Refused(e.message),
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

    /// Reads a key: every causally maximal sibling and the context.
    pub async fn get(
        &self,
        bucket: &str,
        key: &[u8],
        options: &GetOptions,
    ) -> Result<GetReply, ClientError> {
        let key = ObjectKey::new(bucket, key)?;
        let order = self.route(&key, &options.node, true)?;
        let request = Request::Get {
            key: key.clone(),
            r: options.r,
        };
        let (node, resp) = self.call_any(&order, request, true).await?;
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
        let request = Request::Put(PutRequest {
            key,
            context,
            value,
            w: options.w,
        });
        let (node, resp) = self.call_any(&order, request, false).await?;
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

    /// Reads a key and explains how the answer came about.
    pub async fn explain(
        &self,
        bucket: &str,
        key: &[u8],
        options: &GetOptions,
    ) -> Result<(String, Explanation), ClientError> {
        let key = ObjectKey::new(bucket, key)?;
        let order = self.route(&key, &options.node, true)?;
        let request = Request::Explain { key, r: options.r };
        let (node, resp) = self.call_any(&order, request, true).await?;
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
