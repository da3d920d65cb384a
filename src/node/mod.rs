//! The node driver: a running `dynamo node`. It owns the QUIC endpoint, the
//! store and the tasks, and executes what the pure core decides
//! (DESIGN.md §3).
//!
//! Every request arrives through [`crate::net::transport::serve`] already
//! authenticated: the certificate says whether the sender is the cluster's
//! client or one of its nodes, and [`Request::allowed_from`] decides what
//! each may ask. A client put is forwarded to the first reachable node of the
//! key's preference list, which mints the new version in the same
//! read-modify-write that stores it (so two puts through one coordinator get
//! distinct dots) and replicates it with a
//! [`PutCoordinator`](crate::core::coordinator::PutCoordinator). A client
//! get asks the preference list through a
//! [`GetCoordinator`](crate::core::coordinator::GetCoordinator). Replies to
//! a coordinator arrive on a bounded channel from one task per replica;
//! after the quorum answers, the remaining replications still complete.
//!
//! On start the node opens its store and picks its replica incarnation: it
//! keeps the stored one only if the store is not new and its last run shut
//! down cleanly; otherwise it draws a new random one, so no dot it minted
//! before can be minted again (KV679). On SIGTERM or SIGINT it stops
//! accepting, flushes the store and marks it cleanly closed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::{ClusterManifest, ConfigError, NodeConfig};
use crate::core::clock::{Object, ReplicaId};
use crate::core::coordinator::{GetCoordinator, Outbound, PutCoordinator, Quorum, ReplicaPlan};
use crate::core::key::ObjectKey;
use crate::core::message::{
    ErrorKind, ErrorReply, NodeReport, PutRequest, Request, Response, Role,
};
use crate::core::ring::Ring;
use crate::net::tls::{self, Credentials, Identity};
use crate::net::transport::{self, Handler, RpcClient};
use crate::storage::{StorageError, Store};

/// Largest total of sibling values one object may hold; a put that would
/// exceed it is refused until someone resolves the siblings.
pub const OBJECT_VALUE_BYTES_MAX: usize = 6 * 1024 * 1024;

const INCARNATION_META: &str = "incarnation";

/// Why a node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A configuration file is missing or wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node is not in the manifest, or the manifest does not make a ring.
    #[error("{0}")]
    Membership(String),
    /// The certificates could not be loaded.
    #[error("{0}")]
    Tls(String),
    /// The data file is corrupted or unreadable.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The endpoint could not be opened (address in use, say).
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        message: String,
    },
}

/// A running node; [`Node::shutdown`] stops it.
pub struct Node {
    inner: Arc<NodeInner>,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

struct NodeInner {
    name: String,
    replica: ReplicaId,
    manifest: ClusterManifest,
    ring: Ring,
    addrs: BTreeMap<String, SocketAddr>,
    store: Store<Object>,
    rpc: RpcClient<Request, Response>,
    timeout: Duration,
}

/// Runs a node until SIGTERM or SIGINT, then shuts it down cleanly.
pub async fn run(config: NodeConfig) -> Result<(), NodeError> {
    let node = Node::start(config).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| NodeError::Membership(format!("cannot install a signal handler: {e}")))?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
    }
    node.shutdown().await
}

impl Node {
    /// Opens the store, binds the endpoint and starts serving.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        let manifest = ClusterManifest::load(&config.cluster)?;
        if manifest.member(&config.name).is_none() {
            return Err(NodeError::Membership(format!(
                "node {} is not a member of the cluster in {}",
                config.name,
                config.cluster.display()
            )));
        }
        let members: Vec<String> = manifest.nodes.iter().map(|n| n.name.clone()).collect();
        let ring = Ring::new(&members, manifest.partitions)
            .map_err(|e| NodeError::Membership(e.to_string()))?;
        let creds = Credentials::load(&config.tls.ca_cert, &config.tls.cert, &config.tls.key)
            .map_err(|e| NodeError::Tls(e.to_string()))?;

        let (store, opened) = Store::<Object>::open(&config.data_file(), &config.storage)?;
        let stored = store.meta_get(INCARNATION_META)?.and_then(|b| {
            <[u8; 8]>::try_from(b.as_slice())
                .ok()
                .map(u64::from_be_bytes)
        });
        let incarnation = match stored {
            Some(i) if !opened.fresh && opened.clean_shutdown => i,
            previous => {
                let fresh = loop {
                    let candidate: u64 = rand::random();
                    if candidate != 0 && Some(candidate) != previous {
                        break candidate;
                    }
                };
                store
                    .meta_put(INCARNATION_META, fresh.to_be_bytes().to_vec())
                    .await?;
                info!(
                    fresh_store = opened.fresh,
                    clean_shutdown = opened.clean_shutdown,
                    "new replica incarnation {fresh:016x}"
                );
                fresh
            }
        };

        let server_config =
            tls::server_config(&creds).map_err(|e| NodeError::Tls(e.to_string()))?;
        let client_config =
            tls::client_config(&creds).map_err(|e| NodeError::Tls(e.to_string()))?;
        let endpoint = transport::endpoint(config.listen, Some(server_config), client_config)
            .map_err(|e| NodeError::Bind {
                addr: config.listen,
                message: e.to_string(),
            })?;
        let local_addr = endpoint.local_addr().map_err(|e| NodeError::Bind {
            addr: config.listen,
            message: e.to_string(),
        })?;
        let addrs = manifest
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.addr))
            .collect();
        let inner = Arc::new(NodeInner {
            replica: ReplicaId::new(&config.name, incarnation),
            name: config.name.clone(),
            manifest,
            ring,
            addrs,
            store,
            rpc: RpcClient::new(endpoint.clone()),
            timeout: Duration::from_millis(config.request_timeout_ms),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(transport::serve(
            endpoint,
            Arc::new(Service(inner.clone())),
            shutdown_rx,
        ));
        info!(%local_addr, incarnation = format!("{incarnation:016x}"), "node {} serving", config.name);
        Ok(Self {
            inner,
            local_addr,
            shutdown,
            server,
        })
    }

    /// The address the endpoint is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving, flushes the store and marks it cleanly closed.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        self.inner.store.shutdown().await?;
        info!("node {} stopped cleanly", self.inner.name);
        Ok(())
    }
}

/// The request handler the transport calls: a shared handle on the node.
struct Service(Arc<NodeInner>);

impl Handler<Request, Response> for Service {
    async fn handle(&self, peer: Identity, request: Request) -> Response {
        self.0.handle(peer, request).await
    }
}

impl NodeInner {
    async fn handle(self: &Arc<Self>, peer: Identity, request: Request) -> Response {
        let role = match peer {
            Identity::Client => Role::Client,
            Identity::Node(_) => Role::Node,
        };
        if !request.allowed_from(role) {
            return Response::error(
                ErrorKind::Forbidden,
                format!("a {role:?} certificate may not send this request"),
            );
        }
        match request {
            Request::Get { key, r } => self.get(key, r).await,
            Request::Put(put) => self.put(put).await,
            Request::Coordinate(put) => self.coordinate(put).await,
            Request::Status => self.status().await,
            Request::Replicate {
                key,
                object,
                hint_for: _,
            } => self.replicate(key, object).await,
            Request::Read { key } => match self.store.get(&key.storage_key()).await {
                Ok(object) => Response::Replica(object),
                Err(e) => storage_failure(e),
            },
        }
    }
}

fn storage_failure(e: StorageError) -> Response {
    warn!("storage: {e}");
    Response::error(ErrorKind::Internal, format!("storage error: {e}"))
}

fn unavailable(message: String, acks: usize, needed: usize) -> Response {
    Response::Error(ErrorReply {
        kind: ErrorKind::Unavailable,
        message,
        acks: acks.min(255) as u8,
        needed: needed.min(255) as u8,
    })
}

/// What one replica said to a coordinator.
enum ReplicaAnswer {
    Ok(Option<Object>),
    Failed,
}

impl NodeInner {
    fn replicas_of(&self, key: &ObjectKey) -> Vec<&str> {
        let p = self.ring.partition_of(key.ring_position());
        self.ring.preference_list(p, self.manifest.replicas)
    }

    fn check_put(&self, put: &PutRequest) -> Result<(), Response> {
        put.key
            .validate()
            .map_err(|e| Response::error(ErrorKind::InvalidInput, e.to_string()))?;
        if let Some(v) = &put.value {
            if v.len() > self.manifest.value_bytes_max {
                return Err(Response::error(
                    ErrorKind::InvalidInput,
                    format!(
                        "the value is {} bytes; this cluster accepts at most {} bytes",
                        v.len(),
                        self.manifest.value_bytes_max
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Sends each outbound message on its own task; answers arrive on the
    /// returned channel (bounded by the number of messages). A message to
    /// ourselves is answered from the local store.
    fn dispatch(
        self: &Arc<Self>,
        outbound: Vec<Outbound>,
    ) -> mpsc::Receiver<(String, ReplicaAnswer)> {
        let (tx, rx) = mpsc::channel(outbound.len().max(1));
        for Outbound { to, request } in outbound {
            let node = self.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let answer = node.send(&to, request).await;
                let _ = tx.send((to, answer)).await;
            });
        }
        rx
    }

    async fn send(&self, to: &str, request: Request) -> ReplicaAnswer {
        if to == self.name {
            return match request {
                Request::Read { key } => match self.store.get(&key.storage_key()).await {
                    Ok(o) => ReplicaAnswer::Ok(o),
                    Err(e) => {
                        warn!("local read: {e}");
                        ReplicaAnswer::Failed
                    }
                },
                Request::Replicate {
                    key,
                    object,
                    hint_for: _,
                } => match self.replicate(key, object).await {
                    Response::Replicated => ReplicaAnswer::Ok(None),
                    _ => ReplicaAnswer::Failed,
                },
                _ => ReplicaAnswer::Failed,
            };
        }
        let Some(&addr) = self.addrs.get(to) else {
            return ReplicaAnswer::Failed;
        };
        match self
            .rpc
            .call(addr, &tls::server_name(to), request, self.timeout)
            .await
        {
            Ok(Response::Replica(o)) => ReplicaAnswer::Ok(o),
            Ok(Response::Replicated) => ReplicaAnswer::Ok(None),
            Ok(other) => {
                warn!(peer = to, "unexpected answer: {other:?}");
                ReplicaAnswer::Failed
            }
            Err(e) => {
                tracing::debug!(peer = to, "request failed: {e}");
                ReplicaAnswer::Failed
            }
        }
    }

    async fn get(self: &Arc<Self>, key: ObjectKey, r: Option<u8>) -> Response {
        if let Err(e) = key.validate() {
            return Response::error(ErrorKind::InvalidInput, e.to_string());
        }
        let replicas = self.replicas_of(&key);
        let r = r.map_or(self.manifest.read_quorum, usize::from);
        let (mut coordinator, outbound) = GetCoordinator::start(
            &key,
            &ReplicaPlan::strict(&replicas),
            self.manifest.replicas,
            r,
        );
        let mut answers = self.dispatch(outbound);
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                answer = answers.recv() => {
                    let Some((from, answer)) = answer else { break };
                    match answer {
                        ReplicaAnswer::Ok(o) => coordinator.on_reply(&from, o),
                        ReplicaAnswer::Failed => {
                            // A strict plan has no spares to ask instead.
                            let _ = coordinator.on_failure(&from);
                            coordinator.state()
                        }
                    };
                    match coordinator.decision() {
                        Some(Quorum::Reached) => return Response::Object(coordinator.merged()),
                        Some(_) => break,
                        None => {}
                    }
                }
                _ = &mut deadline => break,
            }
        }
        let got = coordinator.replies().len();
        unavailable(
            format!(
                "read quorum not reached: {got} of {} replicas answered, R = {}",
                replicas.len(),
                coordinator.needed()
            ),
            got,
            coordinator.needed(),
        )
    }

    /// A client put: coordinate it here if we are a replica, else forward it
    /// to the first replica that answers.
    async fn put(self: &Arc<Self>, put: PutRequest) -> Response {
        if let Err(resp) = self.check_put(&put) {
            return resp;
        }
        let replicas: Vec<String> = self
            .replicas_of(&put.key)
            .iter()
            .map(|s| s.to_string())
            .collect();
        if replicas.iter().any(|r| r == &self.name) {
            return self.coordinate(put).await;
        }
        for to in &replicas {
            let Some(&addr) = self.addrs.get(to) else {
                continue;
            };
            match self
                .rpc
                .call(
                    addr,
                    &tls::server_name(to),
                    Request::Coordinate(put.clone()),
                    self.timeout,
                )
                .await
            {
                Ok(resp) => return resp,
                Err(e) => tracing::debug!(peer = %to, "forward failed: {e}"),
            }
        }
        unavailable(
            format!(
                "no replica of the key answers (tried {})",
                replicas.join(", ")
            ),
            0,
            put.w.map_or(self.manifest.write_quorum, usize::from),
        )
    }

    /// Mints the new version in the local store, then replicates it.
    async fn coordinate(self: &Arc<Self>, put: PutRequest) -> Response {
        if let Err(resp) = self.check_put(&put) {
            return resp;
        }
        let PutRequest {
            key,
            context,
            value,
            w,
        } = put;
        let replica = self.replica.clone();
        let minted = self
            .store
            .update(key.storage_key(), move |current: Option<Object>| {
                let current = current.unwrap_or_default();
                let (next, _dot) = current.update(&context, value, &replica);
                if next.value_bytes() > OBJECT_VALUE_BYTES_MAX {
                    (Some(current), Err(next.siblings().len()))
                } else {
                    (Some(next.clone()), Ok(next))
                }
            })
            .await;
        let object = match minted {
            Ok(Ok(object)) => object,
            Ok(Err(siblings)) => {
                return Response::error(
                    ErrorKind::InvalidInput,
                    format!(
                        "the key's {siblings} siblings would exceed {OBJECT_VALUE_BYTES_MAX} bytes; resolve them first"
                    ),
                )
            }
            Err(e) => return storage_failure(e),
        };
        let replicas = self.replicas_of(&key);
        let w = w.map_or(self.manifest.write_quorum, usize::from);
        let (mut coordinator, outbound) = PutCoordinator::start(
            &key,
            &object,
            &ReplicaPlan::strict(&replicas),
            self.manifest.replicas,
            &self.name,
            w,
        );
        let context = object.context().clone();
        if coordinator.decision() == Some(Quorum::Reached) {
            drop(self.dispatch(outbound));
            return Response::Written { context };
        }
        let mut answers = self.dispatch(outbound);
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                answer = answers.recv() => {
                    let Some((from, answer)) = answer else { break };
                    match answer {
                        ReplicaAnswer::Ok(_) => coordinator.on_ack(&from),
                        ReplicaAnswer::Failed => {
                            let _ = coordinator.on_failure(&from);
                            coordinator.state()
                        }
                    };
                    match coordinator.decision() {
                        Some(Quorum::Reached) => return Response::Written { context },
                        Some(_) => break,
                        None => {}
                    }
                }
                _ = &mut deadline => break,
            }
        }
        unavailable(
            format!(
                "write quorum not reached: {} of W = {} acknowledged (the write is stored on those replicas and may still spread)",
                coordinator.acks(),
                coordinator.needed()
            ),
            coordinator.acks(),
            coordinator.needed(),
        )
    }

    async fn replicate(&self, key: ObjectKey, object: Object) -> Response {
        if let Err(e) = key.validate() {
            return Response::error(ErrorKind::InvalidInput, e.to_string());
        }
        let result = self
            .store
            .update(key.storage_key(), move |current: Option<Object>| {
                let merged = match current {
                    Some(c) => c.merge(&object),
                    None => object,
                };
                (Some(merged), ())
            })
            .await;
        match result {
            Ok(()) => Response::Replicated,
            Err(e) => storage_failure(e),
        }
    }

    async fn status(&self) -> Response {
        let keys = match self.store.len().await {
            Ok(n) => n,
            Err(e) => return storage_failure(e),
        };
        Response::Status(NodeReport {
            name: self.name.clone(),
            ring_fingerprint: self.ring.fingerprint(),
            partitions: self.ring.owned_by(&self.name) as u32,
            keys,
            hints: 0,
            incarnation: self.replica.incarnation,
        })
    }
}
