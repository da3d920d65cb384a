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

pub mod anti_entropy;
mod membership;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tracing::{debug, info, warn};

use crate::config::{ClusterManifest, ConfigError, NodeConfig};
use crate::core::clock::{Object, ReplicaId};
use crate::core::coordinator::{GetCoordinator, Outbound, PutCoordinator, Quorum, ReplicaPlan};
use crate::core::detector::{Detector, DetectorConfig};
use crate::core::explain::{Explanation, TargetOutcome, TargetReport};
use crate::core::faults::PartitionFilter;
use crate::core::handoff::{
    RateLimiter, HANDOFF_BATCH, HANDOFF_HINTS_PER_SECOND, HANDOFF_IDLE_INTERVAL,
    HANDOFF_IN_FLIGHT_MAX,
};
use crate::core::key::ObjectKey;
use crate::core::membership::MemberStatus;
use crate::core::message::{
    ErrorKind, ErrorReply, NodeReport, PartitionRoot, PutRequest, RepairReport, Request, Response,
    Role, MERKLE_NODES_MAX, REPLICATE_BATCH_MAX,
};
use crate::core::node::FULL_READ_EVERY;
use crate::core::node::INCARNATION_META;
use crate::net::tls::{self, Credentials, Identity};
use crate::net::transport::{self, Handler, Peer, RpcClient, TransportErrorKind};
use crate::storage::{HintKey, StorageError, StorageRead, Store};

mod tombstones;

/// Largest total of sibling values one object may hold; a put that would
/// exceed it is refused until someone resolves the siblings.
pub const OBJECT_VALUE_BYTES_MAX: usize = 6 * 1024 * 1024;

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
    background: Vec<tokio::task::JoinHandle<()>>,
}

struct NodeInner {
    name: String,
    /// The replica id minting dots here; renewed after a handover drops
    /// keys (see [`NodeInner::renew_incarnation`]).
    replica: RwLock<ReplicaId>,
    /// Cluster-wide settings (N, R, W, Q, limits); membership comes from `view`.
    manifest: ClusterManifest,
    /// The cluster state and the rings it implies (see [`membership`]).
    view: RwLock<Arc<membership::View>>,
    /// Serializes changes to `view` (merge, store, swap).
    adopting: tokio::sync::Mutex<()>,
    /// Wakes the membership task (the state changed).
    membership_wake: Notify,
    /// This node's pulls for the change in progress.
    incoming: Mutex<membership::Incoming>,
    /// Partitions held here but not replicated, as of the last handover scan.
    handover_partitions: AtomicU32,
    /// The owner-table version of the last completed handover scan.
    handover_scanned: AtomicU64,
    store: Store<Object>,
    rpc: RpcClient<Request, Response>,
    /// This node's certificate and key: it signs the member entries it
    /// makes, and checks the signatures on those it hears.
    creds: Credentials,
    timeout: Duration,
    /// When the node started; the detector's `now` is time since then.
    started: Instant,
    /// This node's view of its peers (never held across an await).
    detector: Mutex<Detector>,
    /// The partition in force (`dynamo partition`).
    filter: RwLock<PartitionFilter>,
    /// Wakes the handoff task (a peer came back, a partition healed).
    handoff_wake: Notify,
    read_repairs: AtomicU64,
    /// Gets coordinated (every [`FULL_READ_EVERY`]th asks every target).
    gets_started: AtomicU64,
    hints_delivered: AtomicU64,
    orphan_hints: AtomicU64,
    /// Anti-entropy exchanges in flight (background and `repair` share it).
    exchanges: tokio::sync::Semaphore,
    /// Keys anti-entropy repaired here or pushed to peers since the start.
    keys_repaired: AtomicU64,
    /// How long a tombstone stays unchanged before it is collected.
    tombstone_grace: Duration,
    /// Tombstone-only objects as of the last collection sweep.
    tombstones: AtomicU64,
    /// Tombstones dropped here since the start.
    tombstones_collected: AtomicU64,
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
        let creds = Credentials::load(&config.tls.ca_cert, &config.tls.cert, &config.tls.key)
            .map_err(|e| NodeError::Tls(e.to_string()))?;
        check_own_certificate(&creds, &config)?;

        let (store, opened) = Store::<Object>::open_with_partitions(
            &config.data_file(),
            &config.storage,
            manifest.partitions,
        )?;
        let stored = store.meta_get(INCARNATION_META)?.and_then(|b| {
            <[u8; 8]>::try_from(b.as_slice())
                .ok()
                .map(u64::from_be_bytes)
        });
        let incarnation = match stored {
            Some(i) if !opened.fresh && opened.clean_shutdown => i,
            previous => {
                let fresh = fresh_incarnation(previous);
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
        let rpc = RpcClient::new(endpoint.clone());
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let stored = store.meta_get(membership::STATE_META)?;
        let has_seeds = !config.seeds.is_empty();
        let state = match membership::initial_state(stored, &manifest, &config.name, has_seeds)? {
            Some(state) => state,
            None => {
                let state = membership::join(
                    &rpc,
                    &creds,
                    &config.name,
                    local_addr,
                    &config.seeds,
                    timeout,
                )
                .await?;
                store
                    .meta_put(membership::STATE_META, membership::encode(&state))
                    .await?;
                state
            }
        };
        // The manifest's entries are nobody's word but the manifest's: ours
        // is signed before we serve, so gossip can carry it to nodes that did
        // not read the manifest (it spreads with the next rounds; pushing it
        // now would wait on peers that are still starting).
        let state = membership::with_own_entry_signed(state, &creds, &config.name);
        store
            .meta_put(membership::STATE_META, membership::encode(&state))
            .await?;
        let view = membership::View::new(state).map_err(NodeError::Membership)?;
        let peers: Vec<String> = view.peers(&config.name).cloned().collect();
        let inner = Arc::new(NodeInner {
            replica: RwLock::new(ReplicaId::new(&config.name, incarnation)),
            name: config.name.clone(),
            manifest,
            view: RwLock::new(Arc::new(view)),
            adopting: tokio::sync::Mutex::new(()),
            membership_wake: Notify::new(),
            incoming: Mutex::new(membership::Incoming::default()),
            handover_partitions: AtomicU32::new(0),
            handover_scanned: AtomicU64::new(0),
            store,
            rpc,
            creds,
            timeout,
            started: Instant::now(),
            detector: Mutex::new(Detector::new(peers, DetectorConfig::default())),
            filter: RwLock::new(PartitionFilter::default()),
            handoff_wake: Notify::new(),
            read_repairs: AtomicU64::new(0),
            gets_started: AtomicU64::new(0),
            hints_delivered: AtomicU64::new(0),
            orphan_hints: AtomicU64::new(0),
            exchanges: tokio::sync::Semaphore::new(anti_entropy::EXCHANGES_IN_FLIGHT),
            keys_repaired: AtomicU64::new(0),
            tombstone_grace: Duration::from_millis(config.tombstone_grace_ms),
            tombstones: AtomicU64::new(0),
            tombstones_collected: AtomicU64::new(0),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(transport::serve(
            endpoint,
            Arc::new(Service(inner.clone())),
            shutdown_rx.clone(),
            inner.rpc.traffic(),
        ));
        let background = vec![
            tokio::spawn(inner.clone().heartbeats(shutdown_rx.clone())),
            tokio::spawn(inner.clone().handoff(shutdown_rx.clone())),
            tokio::spawn(inner.clone().anti_entropy(shutdown_rx.clone())),
            tokio::spawn(inner.clone().collect_tombstones(shutdown_rx.clone())),
            tokio::spawn(inner.clone().gossip(shutdown_rx.clone())),
            tokio::spawn(inner.clone().membership(shutdown_rx)),
        ];
        info!(%local_addr, incarnation = format!("{incarnation:016x}"), "node {} serving", config.name);
        Ok(Self {
            inner,
            local_addr,
            shutdown,
            server,
            background,
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
        for task in self.background {
            let _ = task.await;
        }
        self.inner.store.shutdown().await?;
        info!("node {} stopped cleanly", self.inner.name);
        Ok(())
    }
}

/// The request handler the transport calls: a shared handle on the node.
struct Service(Arc<NodeInner>);

impl Handler<Request, Response> for Service {
    async fn handle(&self, peer: Peer, request: Request) -> Response {
        self.0.handle(peer, request).await
    }
}

impl NodeInner {
    async fn handle(self: &Arc<Self>, peer: Peer, request: Request) -> Response {
        let role = match &peer.identity {
            Identity::Client => Role::Client,
            Identity::Node(name) => {
                if let Err(why) = self.check_source(name, peer.addr, &request) {
                    warn!(peer = name, addr = %peer.addr, "refused a request: {why}");
                    return Response::error(ErrorKind::Forbidden, why);
                }
                if !self.allowed(name) {
                    // A partition: drop node traffic from the other side.
                    return Response::error(
                        ErrorKind::Forbidden,
                        format!("{} is partitioned away from {name}", self.name),
                    );
                }
                Role::Node
            }
        };
        if !request.allowed_from(role) {
            let why = match &peer.identity {
                Identity::Node(name) => format!(
                    "it is a client request and the connection presents node {name}'s \
                     certificate; client requests need the cluster's client certificate"
                ),
                Identity::Client => "it is a request between nodes and the connection presents \
                                     the client certificate"
                    .to_string(),
            };
            warn!(peer = %peer.identity, addr = %peer.addr, "refused a request: {why}");
            return Response::error(ErrorKind::Forbidden, why);
        }
        match request {
            Request::Get {
                key,
                r,
                last_resort,
            } => self.get(key, r, last_resort, false).await,
            Request::Explain {
                key,
                r,
                last_resort,
            } => self.get(key, r, last_resort, true).await,
            Request::Put(put) => self.put(put).await,
            Request::Coordinate(put) => self.coordinate(put).await,
            Request::Status => self.status().await,
            Request::Replicate {
                key,
                object,
                hint_for,
            } => self.replicate(key, object, hint_for).await,
            Request::ReplicateMany { entries } => self.replicate_many(entries).await,
            Request::Read { key } => match self.read_local(&key) {
                Ok(object) => Response::Replica(object),
                Err(e) => storage_failure(e),
            },
            Request::Ping => Response::Pong,
            Request::Partition { groups } => self.set_partition(groups),
            Request::Heal => self.set_partition(Vec::new()),
            Request::TombstoneCheck { entries } => self.tombstone_holdings(&entries).await,
            Request::TombstoneDrop { entries } => self.drop_tombstones(&entries).await,
            Request::MerkleHashes { partition, nodes } => {
                if partition >= self.manifest.partitions || nodes.len() > MERKLE_NODES_MAX {
                    return Response::error(
                        ErrorKind::InvalidInput,
                        format!("no partition {partition}, or more than {MERKLE_NODES_MAX} nodes"),
                    );
                }
                match anti_entropy::answer_hashes(&self.store, partition, &nodes).await {
                    Ok(h) => Response::MerkleHashes(h),
                    Err(e) => storage_failure(e),
                }
            }
            Request::LeafObjects {
                partition,
                leaf,
                last_leaf,
                after,
            } => {
                if partition >= self.manifest.partitions
                    || !anti_entropy::valid_leaf(last_leaf)
                    || leaf > last_leaf
                {
                    return Response::error(
                        ErrorKind::InvalidInput,
                        format!("no leaves {leaf}..={last_leaf} of partition {partition}"),
                    );
                }
                anti_entropy::answer_leaf(&self.store, partition, (leaf, last_leaf), after)
                    .await
                    .unwrap_or_else(storage_failure)
            }
            Request::MerkleRoots { partition } => self.merkle_roots(partition).await,
            Request::Repair { partitions } => self.repair(partitions).await,
            Request::Gossip(state) => {
                let sender = match &peer.identity {
                    Identity::Node(name) => Some(name.as_str()),
                    Identity::Client => None,
                };
                self.on_gossip(*state, sender).await
            }
            Request::Leave => self.on_leave().await,
            Request::Remove { node } => self.on_remove(&node).await,
        }
    }
}

/// A peer reached over QUIC, for an anti-entropy exchange.
struct RemotePeer<'a> {
    node: &'a NodeInner,
    name: String,
}

impl anti_entropy::Peer for RemotePeer<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn call(&self, request: Request) -> Result<Response, String> {
        self.node
            .call_peer(&self.name, request, self.node.timeout)
            .await
    }
}

impl NodeInner {
    /// The home replicas of a partition (its preference list).
    fn home_replicas(&self, partition: u32) -> Vec<String> {
        self.view()
            .ring
            .preference_list(partition, self.manifest.replicas)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The partitions this node is a home replica of.
    fn replicated_partitions(&self) -> Vec<u32> {
        (0..self.manifest.partitions)
            .filter(|&p| self.home_replicas(p).contains(&self.name))
            .collect()
    }

    async fn merkle_roots(&self, partition: Option<u32>) -> Response {
        let partitions = match partition {
            Some(p) if p >= self.manifest.partitions => {
                return Response::error(
                    ErrorKind::InvalidInput,
                    format!(
                        "no partition {p}: the ring has {}",
                        self.manifest.partitions
                    ),
                )
            }
            Some(p) => vec![p],
            None => self.replicated_partitions(),
        };
        let mut out = Vec::with_capacity(partitions.len());
        for p in partitions {
            let tree = match self.store.merkle_tree(p).await {
                Ok(t) => t,
                Err(e) => return storage_failure(e),
            };
            out.push(PartitionRoot {
                partition: p,
                replicas: self.home_replicas(p),
                root: tree.root(),
                leaves: partition.map(|_| tree.leaves().to_vec()),
            });
        }
        Response::MerkleRoots(out)
    }

    /// Anti-entropy now over `partitions` (all this node replicates when
    /// empty), with every reachable other home replica of each.
    async fn repair(&self, partitions: Vec<u32>) -> Response {
        let mine = self.replicated_partitions();
        let partitions: Vec<u32> = if partitions.is_empty() {
            mine
        } else {
            partitions
                .into_iter()
                .filter(|p| mine.contains(p))
                .collect()
        };
        let mut report = RepairReport::default();
        for p in partitions {
            if let Err(e) = self.exchange_partition(p, &mut report).await {
                return Response::error(ErrorKind::Internal, e);
            }
        }
        Response::Repaired(report)
    }

    /// One partition with each other home replica, one exchange at a time.
    async fn exchange_partition(&self, p: u32, report: &mut RepairReport) -> Result<(), String> {
        report.partitions_checked += 1;
        for peer in self.home_replicas(p) {
            if peer == self.name {
                continue;
            }
            if !self.reachable(&peer) {
                if !report.skipped.contains(&peer) {
                    report.skipped.push(peer);
                }
                continue;
            }
            let Ok(_permit) = self.exchanges.acquire().await else {
                return Err("shutting down".into());
            };
            let remote = RemotePeer {
                node: self,
                name: peer.clone(),
            };
            match anti_entropy::exchange(&self.store, p, &remote).await {
                Ok(e) => {
                    report.exchanges += 1;
                    report.hashes += e.hashes;
                    report.bytes_sent += e.bytes_sent;
                    report.bytes_received += e.bytes_received;
                    *report.repaired.entry(self.name.clone()).or_default() += e.repaired_here;
                    *report.repaired.entry(peer.clone()).or_default() += e.pushed;
                    let changed = e.repaired_here + e.pushed;
                    self.keys_repaired
                        .fetch_add(changed, AtomicOrdering::Relaxed);
                    if changed > 0 {
                        info!(
                            partition = p,
                            peer,
                            repaired_here = e.repaired_here,
                            pushed = e.pushed,
                            hashes = e.hashes,
                            bytes_sent = e.bytes_sent,
                            bytes_received = e.bytes_received,
                            "anti-entropy repaired keys"
                        );
                    }
                }
                Err(anti_entropy::ExchangeError::Peer(e)) => {
                    debug!(partition = p, peer, "anti-entropy exchange failed: {e}");
                    if !report.skipped.contains(&peer) {
                        report.skipped.push(peer);
                    }
                }
                Err(anti_entropy::ExchangeError::Storage(e)) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    /// The background anti-entropy task: every [`anti_entropy::ROUND_INTERVAL`]
    /// a round over the partitions this node replicates, pausing
    /// [`anti_entropy::PARTITION_PAUSE`] between partitions.
    async fn anti_entropy(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(anti_entropy::ROUND_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
            let mut report = RepairReport::default();
            for p in self.replicated_partitions() {
                if *shutdown.borrow() {
                    return;
                }
                if let Err(e) = self.exchange_partition(p, &mut report).await {
                    warn!(partition = p, "anti-entropy: {e}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(anti_entropy::PARTITION_PAUSE) => {}
                    _ = shutdown.changed() => return,
                }
            }
            debug!(
                partitions = report.partitions_checked,
                exchanges = report.exchanges,
                hashes = report.hashes,
                bytes_sent = report.bytes_sent,
                "anti-entropy round done"
            );
        }
    }
}

/// What one replica said to a coordinator.
enum ReplicaAnswer {
    Ok(Option<Object>),
    Failed,
}

/// How long a get's coordinator keeps listening after it answered, for the
/// remaining replicas' replies that read repair needs.
pub const READ_REPAIR_WAIT: Duration = Duration::from_millis(200);

/// How long a get waits for its first R targets before asking the others.
pub const READ_SLOW: Duration = Duration::from_millis(20);
/// A replica's share of the request timeout, in percent.
const REPLICA_TIMEOUT_PERCENT: u32 = 40;
/// The shortest time a replica is given.
const REPLICA_TIMEOUT_MIN: Duration = Duration::from_millis(200);
/// How often the heartbeat task asks the detector whom to probe.
const DETECTOR_TICK: Duration = Duration::from_millis(100);
/// Most hints counted per owner when looking for orphans.
const ORPHAN_COUNT_MAX: u64 = 1_000_000;

impl NodeInner {
    /// How long one replica may take: well under the coordinator's own
    /// deadline, so a target that hangs (a crashed node's dead connection)
    /// is replaced by a spare in time.
    fn replica_timeout(&self) -> Duration {
        (self.timeout * REPLICA_TIMEOUT_PERCENT / 100).max(REPLICA_TIMEOUT_MIN)
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// A node's requests must come from the address the cluster knows it
    /// at: a node certificate used from anywhere else (copied to a process
    /// that calls itself another node, say) is refused at its first
    /// message. A member whose gossip moves it to the address it calls
    /// from is let through (the entry's signature is checked when the
    /// state is merged), and so is a node nobody knows yet that gossips
    /// (a joiner).
    fn check_source(&self, name: &str, from: SocketAddr, request: &Request) -> Result<(), String> {
        let same = |a: SocketAddr| {
            a.ip().to_canonical() == from.ip().to_canonical() && a.port() == from.port()
        };
        let view = self.view();
        let known = view.addrs.get(name).copied();
        if known.is_some_and(same) {
            return Ok(());
        }
        if let Request::Gossip(state) = request {
            let claimed = state.members.get(name).and_then(|e| e.addr.parse().ok());
            if known.is_none() || claimed.is_some_and(same) {
                return Ok(());
            }
        }
        Err(match known {
            Some(at) => format!(
                "a connection with {name}'s certificate comes from {from}, but {name} is at {at}"
            ),
            None => format!(
                "{name} is not a member of this cluster (as {} knows it)",
                self.name
            ),
        })
    }

    /// Whether node traffic with `peer` is allowed by the partition filter.
    fn allowed(&self, peer: &str) -> bool {
        self.filter
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .allows(&self.name, peer)
    }

    /// Whether requests should be routed to `peer` now.
    fn reachable(&self, peer: &str) -> bool {
        peer == self.name
            || (self.allowed(peer)
                && self
                    .detector
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_reachable(peer))
    }

    fn unreachable_peers(&self) -> Vec<String> {
        let mut down = self
            .detector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unreachable();
        for peer in self.view().addrs.keys() {
            if peer != &self.name && !self.allowed(peer) && !down.contains(peer) {
                down.push(peer.clone());
            }
        }
        down.sort();
        down
    }

    fn note(&self, peer: &str, ok: bool) {
        let now = self.now();
        let mut detector = self
            .detector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let was = detector.is_reachable(peer);
        if ok {
            detector.on_success(peer, now);
        } else {
            detector.on_failure(peer, now);
        }
        let is = detector.is_reachable(peer);
        drop(detector);
        if was != is {
            if is {
                info!(peer, "peer reachable again");
                self.handoff_wake.notify_one();
            } else {
                warn!(peer, "peer unreachable");
            }
        }
    }

    /// One request to a peer, through the partition filter; the outcome
    /// feeds the failure detector. `Err` means the peer could not be
    /// reached (or is cut off by a partition).
    async fn call_peer(
        &self,
        to: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, String> {
        let Some(&addr) = self.view().addrs.get(to) else {
            return Err(format!("{to} is not a member"));
        };
        if !self.allowed(to) {
            self.note(to, false);
            return Err(format!("{to} is on the other side of a partition"));
        }
        match self
            .rpc
            .call(addr, &tls::server_name(to), request, timeout)
            .await
        {
            Ok(Response::Error(e)) if e.kind == ErrorKind::Forbidden => {
                // It refuses us (a partition on its side).
                self.note(to, false);
                Err(e.message)
            }
            Ok(resp) => {
                self.note(to, true);
                Ok(resp)
            }
            Err(e) => {
                if e.kind() == TransportErrorKind::Timeout {
                    // Maybe a crashed peer's dead connection: reconnect next time.
                    self.rpc.forget(addr, &tls::server_name(to));
                }
                self.note(to, false);
                Err(e.to_string())
            }
        }
    }

    /// The sloppy-quorum plan for a key ([`ReplicaPlan::sloppy`]): the
    /// detector's view and the partition filter route around peers, and the
    /// plan itself keeps doubted peers as a last resort.
    fn plan(&self, key: &ObjectKey) -> (u32, Vec<String>, ReplicaPlan) {
        let view = self.view();
        let p = view.ring.partition_of(key.ring_position());
        let extended = view.ring.extended_list(p);
        let plan = ReplicaPlan::sloppy(&extended, self.manifest.replicas, |n| self.reachable(n));
        let ext = extended.iter().map(|s| s.to_string()).collect();
        (p, ext, plan)
    }

    fn replicas_of(&self, key: &ObjectKey) -> Vec<String> {
        let view = self.view();
        let p = view.ring.partition_of(key.ring_position());
        view.ring
            .preference_list(p, self.manifest.replicas)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    // The error is the answer itself, sent at once; boxing it buys nothing.
    #[allow(clippy::result_large_err)]
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

    /// The coordinator's check before it stores or asks anything: the
    /// failure detector and the partition filter must count at least
    /// `needed` reachable nodes of the key's extended preference list (this
    /// node included); otherwise the request is refused as
    /// [`ErrorKind::CannotReach`], so the client tries another node at once.
    /// The detector is advice: a client with no node left to try sends the
    /// request as a last resort, which skips this check.
    #[allow(clippy::result_large_err)]
    fn check_reach(&self, key: &ObjectKey, needed: usize, quorum: &str) -> Result<(), Response> {
        let view = self.view();
        let extended = view
            .ring
            .extended_list(view.ring.partition_of(key.ring_position()));
        let needed = needed.clamp(1, self.manifest.replicas.min(extended.len()).max(1));
        let reachable: Vec<&str> = extended
            .iter()
            .copied()
            .filter(|n| self.reachable(n))
            .collect();
        if reachable.len() >= needed {
            return Ok(());
        }
        Err(Response::Error(ErrorReply {
            kind: ErrorKind::CannotReach,
            message: format!(
                "{} can reach only {} of the cluster's nodes ({}) and {quorum} = {needed}; \
                 nothing was stored",
                self.name,
                reachable.len(),
                reachable.join(", ")
            ),
            acks: reachable.len().min(255) as u8,
            needed: needed.min(255) as u8,
        }))
    }

    /// Sends one message on its own task; the answer arrives on `tx`, whose
    /// capacity covers every message of the coordination (each node is
    /// asked at most once).
    /// Feeds one target's answer to a put coordinator; a failed target's
    /// replacement, if the coordinator names one, is sent at once.
    fn on_put_answer(
        self: &Arc<Self>,
        coordinator: &mut PutCoordinator,
        from: &str,
        answer: ReplicaAnswer,
        tx: &mpsc::Sender<(String, ReplicaAnswer)>,
    ) {
        match answer {
            ReplicaAnswer::Ok(_) => {
                coordinator.on_ack(from);
            }
            ReplicaAnswer::Failed => {
                if let Some(next) = coordinator.on_failure(from) {
                    self.dispatch_one(next, tx);
                }
            }
        }
    }

    fn dispatch_one(self: &Arc<Self>, out: Outbound, tx: &mpsc::Sender<(String, ReplicaAnswer)>) {
        let node = self.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let Outbound { to, request } = out;
            let answer = node.send(&to, request).await;
            let _ = tx.send((to, answer)).await;
        });
    }

    /// This node's replica of `key`: its object merged with every hint it
    /// holds for the key (what a fallback answers a read with).
    ///
    /// Read on the calling task, not the reader pool: a key's object and
    /// hints are a few pages redb's cache holds, read in microseconds, and
    /// the two hops to the pool and back cost more than the read.
    fn read_local(&self, key: &ObjectKey) -> Result<Option<Object>, StorageError> {
        let storage_key = key.storage_key();
        let object = StorageRead::object(&self.store, &storage_key)?;
        let hints = StorageRead::hints_of_key(&self.store, &storage_key)?;
        Ok(hints.into_iter().fold(object, |acc, (_, h)| {
            Some(match acc {
                Some(o) => o.merge(&h),
                None => h,
            })
        }))
    }

    async fn send(&self, to: &str, request: Request) -> ReplicaAnswer {
        if to == self.name {
            return match request {
                Request::Read { key } => match self.read_local(&key) {
                    Ok(o) => ReplicaAnswer::Ok(o),
                    Err(e) => {
                        warn!("local read: {e}");
                        ReplicaAnswer::Failed
                    }
                },
                Request::Replicate {
                    key,
                    object,
                    hint_for,
                } => match self.replicate(key, object, hint_for).await {
                    Response::Replicated => ReplicaAnswer::Ok(None),
                    _ => ReplicaAnswer::Failed,
                },
                _ => ReplicaAnswer::Failed,
            };
        }
        match self.call_peer(to, request, self.replica_timeout()).await {
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

    /// A client get (or explain): runs the coordination on its own task,
    /// which outlives the answer for read repair.
    async fn get(
        self: &Arc<Self>,
        key: ObjectKey,
        r: Option<u8>,
        last_resort: bool,
        explain: bool,
    ) -> Response {
        if let Err(e) = key.validate() {
            return Response::error(ErrorKind::InvalidInput, e.to_string());
        }
        if !last_resort {
            let needed = r.map_or(self.manifest.read_quorum, usize::from);
            if let Err(refusal) = self.check_reach(&key, needed, "R") {
                return refusal;
            }
        }
        let (answer_tx, answer_rx) = oneshot::channel();
        let node = self.clone();
        tokio::spawn(async move { node.coordinate_get(key, r, explain, answer_tx).await });
        answer_rx.await.unwrap_or_else(|_| {
            Response::error(ErrorKind::Internal, "the get's coordinator stopped")
        })
    }

    async fn coordinate_get(
        self: Arc<Self>,
        key: ObjectKey,
        r: Option<u8>,
        explain: bool,
        answer: oneshot::Sender<Response>,
    ) {
        let started = Instant::now();
        let r = r.map_or(self.manifest.read_quorum, usize::from);
        let (partition, extended, plan) = self.plan(&key);
        let unreachable = if explain {
            self.unreachable_peers()
        } else {
            Vec::new()
        };
        let n = self.manifest.replicas;
        // R first (itself and R-1 others), the rest when an answer fails or
        // is slow; every target for explain and for a sample of reads, so
        // read repair still compares every replica of some.
        let sampled = self.gets_started.fetch_add(1, AtomicOrdering::Relaxed)
            % u64::from(FULL_READ_EVERY)
            == 0;
        let (mut coordinator, outbound) = if explain || sampled {
            GetCoordinator::start(&key, &plan, n, r)
        } else {
            GetCoordinator::start_quorum(&key, &plan, n, r, &self.name)
        };
        let (tx, mut answers) = mpsc::channel(extended.len().max(1));
        for out in outbound {
            self.dispatch_one(out, &tx);
        }
        let slow = tokio::time::sleep(READ_SLOW);
        tokio::pin!(slow);
        let mut widened = false;
        let mut timings: BTreeMap<String, (u64, bool)> = BTreeMap::new();
        let mut answer = Some(answer);
        let mut reached = false;
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let repair_wait = tokio::time::sleep(self.timeout);
        tokio::pin!(repair_wait);
        loop {
            if reached && coordinator.outstanding().is_empty() {
                break;
            }
            tokio::select! {
                got = answers.recv() => {
                    let Some((from, got)) = got else { break };
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    match got {
                        ReplicaAnswer::Ok(o) => {
                            timings.insert(from.clone(), (micros, o.is_some()));
                            coordinator.on_reply(&from, o);
                        }
                        ReplicaAnswer::Failed => {
                            timings.entry(from.clone()).or_insert((micros, false));
                            timings.insert(format!("!{from}"), (micros, false));
                            if let Some(next) = coordinator.on_failure(&from) {
                                self.dispatch_one(next, &tx);
                            }
                        }
                    }
                    for next in coordinator.more() {
                        self.dispatch_one(next, &tx);
                    }
                    match coordinator.decision() {
                        Some(Quorum::Reached) => {
                            reached = true;
                            if !explain {
                                if let Some(a) = answer.take() {
                                    let _ = a.send(Response::Object(coordinator.merged()));
                                }
                            }
                            let wait = READ_REPAIR_WAIT.min(self.timeout.saturating_sub(started.elapsed()));
                            repair_wait.as_mut().reset(tokio::time::Instant::now() + wait);
                        }
                        Some(_) => break,
                        None => {}
                    }
                }
                _ = &mut repair_wait, if reached => break,
                _ = &mut slow, if !reached && !widened => {
                    widened = true;
                    for next in coordinator.widen() {
                        self.dispatch_one(next, &tx);
                    }
                }
                _ = &mut deadline => break,
            }
        }
        // Read repair: home replicas behind the merge get it.
        let mut repaired = Vec::new();
        let stale = if reached {
            coordinator.stale_replicas()
        } else {
            Vec::new()
        };
        if !stale.is_empty() {
            self.read_repairs
                .fetch_add(stale.len() as u64, AtomicOrdering::Relaxed);
            let (rtx, mut racks) = mpsc::channel(stale.len());
            for (to, object) in stale {
                debug!(peer = %to, "read repair");
                self.dispatch_one(
                    Outbound {
                        to,
                        request: Request::Replicate {
                            key: key.clone(),
                            object,
                            hint_for: None,
                        },
                    },
                    &rtx,
                );
            }
            drop(rtx);
            if explain {
                while let Some((to, ack)) = racks.recv().await {
                    repaired.push((to, matches!(ack, ReplicaAnswer::Ok(_))));
                }
                repaired.sort();
            }
        }
        let Some(answer) = answer else { return };
        if !reached {
            let (message, counted) = read_shortfall(&coordinator, &extended, n);
            let _ = answer.send(unavailable(message, counted, coordinator.needed()));
            return;
        }
        let hints_held_for = match self.store.hints_for_key(&key.storage_key()).await {
            Ok(h) => h.into_iter().map(|(k, _)| k.owner).collect(),
            Err(e) => {
                warn!("reading hints: {e}");
                Vec::new()
            }
        };
        let targets = coordinator
            .asked()
            .iter()
            .map(|t| {
                let failed = timings.get(&format!("!{}", t.node));
                let outcome = if coordinator.replies().contains_key(&t.node) {
                    TargetOutcome::Answered {
                        found: timings.get(&t.node).is_some_and(|(_, f)| *f),
                    }
                } else if failed.is_some() {
                    TargetOutcome::Failed
                } else {
                    TargetOutcome::Pending
                };
                TargetReport {
                    node: t.node.clone(),
                    hint_for: t.hint_for.clone(),
                    micros: timings.get(&t.node).map(|(m, _)| *m),
                    outcome,
                }
            })
            .collect();
        let explanation = Explanation {
            coordinator: self.name.clone(),
            partition,
            preference_list: extended.into_iter().take(self.manifest.replicas).collect(),
            unreachable,
            needed: coordinator.needed().min(255) as u8,
            quorum_reached: reached,
            targets,
            hints_held_for,
            read_repair: !repaired.is_empty(),
            repaired,
            object: coordinator.merged(),
        };
        let _ = answer.send(Response::Explained(Box::new(explanation)));
    }

    /// A client put: coordinate it here if we are a home replica, else
    /// forward it to the first reachable home replica; when none answers,
    /// coordinate it here as a fallback (sloppy quorum).
    async fn put(self: &Arc<Self>, put: PutRequest) -> Response {
        if let Err(resp) = self.check_put(&put) {
            return resp;
        }
        let replicas = self.replicas_of(&put.key);
        if replicas.iter().any(|r| r == &self.name) {
            return self.coordinate(put).await;
        }
        if !put.last_resort {
            let needed = put.w.map_or(self.manifest.write_quorum, usize::from);
            if let Err(refusal) = self.check_reach(&put.key, needed, "W") {
                return refusal;
            }
        }
        // A forward that fails or times out may have been stored by that
        // replica; the next one mints a copy under the same write id, which
        // readers see as one write (`Object::versions`).
        for to in replicas.iter().filter(|r| self.reachable(r)) {
            match self
                .call_peer(to, Request::Coordinate(put.clone()), self.timeout)
                .await
            {
                Ok(Response::Error(e)) if e.kind == ErrorKind::CannotReach => {
                    tracing::debug!(peer = %to, "forward refused: {}", e.message)
                }
                Ok(resp) => return resp,
                Err(e) => tracing::debug!(peer = %to, "forward failed: {e}"),
            }
        }
        info!(
            "no home replica of the key is reachable ({}); coordinating as a fallback",
            replicas.join(", ")
        );
        self.coordinate(put).await
    }

    /// Mints the new version in the local store, then replicates it to the
    /// sloppy-quorum plan. The mint always goes to this node's objects
    /// table, even at a fallback, so the node's counter for the key is never
    /// forgotten (a forgotten counter would mint a dot twice); at a fallback
    /// the object is also kept as a hint for the home replica it stands in
    /// for, and handed off from there.
    async fn coordinate(self: &Arc<Self>, put: PutRequest) -> Response {
        if let Err(resp) = self.check_put(&put) {
            return resp;
        }
        let PutRequest {
            key,
            context,
            value,
            w,
            write_id,
            last_resort,
        } = put;
        let w = w.map_or(self.manifest.write_quorum, usize::from);
        if !last_resort {
            // Refuse before minting: nothing is stored, so the client may
            // try another node without risk.
            if let Err(refusal) = self.check_reach(&key, w, "W") {
                return refusal;
            }
        }
        let replica = self.replica();
        let minted = self
            .store
            .update(key.storage_key(), move |current: Option<Object>| {
                let current = current.unwrap_or_default();
                let next = match write_id {
                    Some(id) => match current.update_once(&context, value, &replica, id) {
                        // An earlier attempt of this put is here already:
                        // replicate what holds it, mint nothing.
                        (held, None) => return (Some(current), Ok(held)),
                        (next, Some(_)) => next,
                    },
                    None => current.update(&context, value, &replica).0,
                };
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
        let (_, extended, plan) = self.plan(&key);
        if let Some(owner) = plan
            .targets
            .iter()
            .find(|t| t.node == self.name)
            .and_then(|t| t.hint_for.clone())
        {
            if let Response::Error(e) = self
                .replicate(key.clone(), object.clone(), Some(owner))
                .await
            {
                return Response::Error(e);
            }
        }
        let (mut coordinator, outbound) =
            PutCoordinator::start(&key, &object, &plan, self.manifest.replicas, &self.name, w);
        let context = object.context().clone();
        let (tx, mut answers) = mpsc::channel(extended.len().max(1));
        for out in outbound {
            self.dispatch_one(out, &tx);
        }
        match coordinator.decision() {
            Some(Quorum::Reached) => {
                self.finish_put_in_background(coordinator, tx, answers);
                return Response::Written { context };
            }
            Some(_) => {
                return unavailable(
                    format!(
                        "write quorum not reached: only {} of W = {} replicas can be reached",
                        coordinator.acks() + coordinator.outstanding().len(),
                        coordinator.needed()
                    ),
                    coordinator.acks(),
                    coordinator.needed(),
                )
            }
            None => {}
        }
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                answer = answers.recv() => {
                    let Some((from, answer)) = answer else { break };
                    self.on_put_answer(&mut coordinator, &from, answer, &tx);
                    match coordinator.decision() {
                        Some(Quorum::Reached) => {
                            self.finish_put_in_background(coordinator, tx, answers);
                            return Response::Written { context };
                        }
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

    /// After a put answered: keeps replacing targets that fail with spares
    /// (so every home replica gets the write or a hint for it), until every
    /// target answered or the request timeout passed.
    fn finish_put_in_background(
        self: &Arc<Self>,
        mut coordinator: PutCoordinator,
        tx: mpsc::Sender<(String, ReplicaAnswer)>,
        mut answers: mpsc::Receiver<(String, ReplicaAnswer)>,
    ) {
        if coordinator.outstanding().is_empty() {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::sleep(node.timeout);
            tokio::pin!(deadline);
            while !coordinator.outstanding().is_empty() {
                tokio::select! {
                    answer = answers.recv() => {
                        let Some((from, answer)) = answer else { break };
                        node.on_put_answer(&mut coordinator, &from, answer, &tx);
                    }
                    _ = &mut deadline => break,
                }
            }
        });
    }

    /// Merges `object` into this node's replica, or, with `hint_for` naming
    /// another node, into the hint kept for that node.
    /// [`Request::ReplicateMany`]: every entry merged at once (they share
    /// group commits); `Replicated` only if all were stored.
    async fn replicate_many(self: &Arc<Self>, entries: Vec<(ObjectKey, Object)>) -> Response {
        if entries.len() > REPLICATE_BATCH_MAX {
            return Response::error(
                ErrorKind::InvalidInput,
                format!("more than {REPLICATE_BATCH_MAX} objects in one batch"),
            );
        }
        let mut merges = tokio::task::JoinSet::new();
        for (key, object) in entries {
            let node = self.clone();
            merges.spawn(async move { node.replicate(key, object, None).await });
        }
        let mut answer = Response::Replicated;
        while let Some(done) = merges.join_next().await {
            match done {
                Ok(Response::Replicated) => {}
                Ok(failed) => answer = failed,
                Err(e) => answer = Response::error(ErrorKind::Internal, e.to_string()),
            }
        }
        answer
    }

    async fn replicate(
        &self,
        key: ObjectKey,
        object: Object,
        hint_for: Option<String>,
    ) -> Response {
        if let Err(e) = key.validate() {
            return Response::error(ErrorKind::InvalidInput, e.to_string());
        }
        if let Some(owner) = hint_for.filter(|o| o != &self.name) {
            let Some(hint) = HintKey::new(&owner, key.storage_key()) else {
                return Response::error(
                    ErrorKind::InvalidInput,
                    format!("{owner:?} is not a valid node name for a hint"),
                );
            };
            return match self
                .store
                .merge_hint(&hint, object, |old: Object, new| old.merge(&new))
                .await
            {
                Ok(()) => Response::Replicated,
                Err(e) => storage_failure(e),
            };
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
        let hints = match self.store.hint_count().await {
            Ok(n) => n,
            Err(e) => return storage_failure(e),
        };
        let view = self.view();
        let (incoming_total, incoming_done) = self.incoming_progress();
        let (datagrams_sent, datagrams_received) = self.rpc.traffic().datagrams();
        Response::Status(Box::new(NodeReport {
            name: self.name.clone(),
            ring_fingerprint: view.ring.fingerprint(),
            partitions: view.ring.owned_by(&self.name) as u32,
            keys,
            hints,
            incarnation: self.replica().incarnation,
            unreachable: self.unreachable_peers(),
            orphan_hints: self.orphan_hints.load(AtomicOrdering::Relaxed),
            read_repairs: self.read_repairs.load(AtomicOrdering::Relaxed),
            hints_delivered: self.hints_delivered.load(AtomicOrdering::Relaxed),
            partition: self
                .filter
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .groups()
                .to_vec(),
            tombstones: self.tombstones.load(AtomicOrdering::Relaxed),
            tombstones_collected: self.tombstones_collected.load(AtomicOrdering::Relaxed),
            member: view
                .state
                .members
                .get(&self.name)
                .map_or("joining", |e| e.status_name())
                .to_string(),
            owners_version: view.state.owners_version(),
            incoming_total,
            incoming_done,
            handover_partitions: self.handover_partitions.load(AtomicOrdering::Relaxed),
            cpu_micros: process_cpu_micros(),
            datagrams_sent,
            datagrams_received,
        }))
    }

    fn set_partition(&self, groups: Vec<Vec<String>>) -> Response {
        let members: Vec<String> = self.view().addrs.keys().cloned().collect();
        if let Err(e) = PartitionFilter::check(&groups, &members) {
            return Response::error(ErrorKind::InvalidInput, e);
        }
        if groups.is_empty() {
            info!("partition healed");
        } else {
            warn!(?groups, "network partitioned on request");
        }
        *self
            .filter
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = PartitionFilter::new(groups);
        self.handoff_wake.notify_one();
        Response::Done
    }

    /// The failure detector's heartbeats: every [`DETECTOR_TICK`] asks the
    /// detector whom to probe and pings them, each on its own task (at most
    /// one in flight per peer).
    async fn heartbeats(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(DETECTOR_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let now = self.now();
            let (due, timeout) = {
                let mut detector = self
                    .detector
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                (detector.tick(now), detector.config().probe_timeout)
            };
            for peer in due {
                let node = self.clone();
                tokio::spawn(async move {
                    let _ = node.call_peer(&peer, Request::Ping, timeout).await;
                });
            }
        }
    }

    /// Hinted handoff: hands hints to their owners when the detector says
    /// they are reachable, paced by a token bucket and a cap on hints in
    /// flight, and deletes each hint once its owner acknowledged it (only if
    /// it did not change meanwhile).
    async fn handoff(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut limiter = RateLimiter::new(HANDOFF_HINTS_PER_SECOND, HANDOFF_IN_FLIGHT_MAX as u32);
        let mut logged_orphans: Vec<String> = Vec::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HANDOFF_IDLE_INTERVAL) => {}
                _ = self.handoff_wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let mut owners = match self.store.hint_owners(1).await {
                Ok(o) => o,
                Err(e) => {
                    warn!("handoff: listing hints: {e}");
                    continue;
                }
            };
            let view = self.view();
            if owners.iter().any(|(o, _)| !view.addrs.contains_key(o)) {
                // Count orphans exactly only when there are some.
                match self.store.hint_owners(ORPHAN_COUNT_MAX).await {
                    Ok(o) => owners = o,
                    Err(e) => warn!("handoff: counting hints: {e}"),
                }
            }
            let mut orphans = 0;
            for (owner, count) in owners {
                if view.state.status_of(&owner) == Some(MemberStatus::Left) {
                    // Its partitions have new replicas: take the hints in
                    // as objects here; the handover moves them on.
                    self.take_in_hints(&owner).await;
                    continue;
                }
                if !view.addrs.contains_key(&owner) {
                    orphans += count;
                    if !logged_orphans.contains(&owner) {
                        warn!(
                            owner,
                            count, "keeping hints for a node that is not a member of the cluster"
                        );
                        logged_orphans.push(owner);
                    }
                    continue;
                }
                if owner != self.name && !self.reachable(&owner) {
                    continue;
                }
                if self
                    .deliver_hints(&owner, &mut limiter, &mut shutdown)
                    .await
                {
                    return;
                }
            }
            self.orphan_hints.store(orphans, AtomicOrdering::Relaxed);
        }
    }

    /// Delivers `owner`'s hints until they are all gone or the owner stops
    /// answering. Returns true when shutting down.
    async fn deliver_hints(
        self: &Arc<Self>,
        owner: &str,
        limiter: &mut RateLimiter,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut after: Option<HintKey> = None;
        let mut failed = false;
        while !failed {
            let batch = match self
                .store
                .hints(Some(owner), after.as_ref(), HANDOFF_BATCH)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    warn!("handoff: reading hints for {owner}: {e}");
                    return false;
                }
            };
            let Some((last, _)) = batch.last() else {
                return false;
            };
            after = Some(last.clone());
            let mut flight = tokio::task::JoinSet::new();
            for (hint, object) in batch {
                if *shutdown.borrow() {
                    return true;
                }
                while flight.len() >= HANDOFF_IN_FLIGHT_MAX {
                    if let Some(Ok(false)) = flight.join_next().await {
                        failed = true;
                    }
                }
                if failed || (owner != self.name && !self.reachable(owner)) {
                    failed = true;
                    break;
                }
                loop {
                    let wait = limiter.wait(self.now());
                    if wait.is_zero() && limiter.try_take(self.now()) {
                        break;
                    }
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
                let node = self.clone();
                flight.spawn(async move { node.hand_off(hint, object).await });
            }
            while let Some(done) = flight.join_next().await {
                if let Ok(false) = done {
                    failed = true;
                }
            }
        }
        false
    }

    /// Merges the hints held for `owner`, a member that left, into this
    /// node's objects and deletes them (each only if unchanged).
    async fn take_in_hints(&self, owner: &str) {
        let mut after: Option<HintKey> = None;
        loop {
            let batch = match self
                .store
                .hints(Some(owner), after.as_ref(), HANDOFF_BATCH)
                .await
            {
                Ok(b) if !b.is_empty() => b,
                Ok(_) => return,
                Err(e) => {
                    warn!("handoff: reading hints for {owner}: {e}");
                    return;
                }
            };
            let count = batch.len();
            after = batch.last().map(|(h, _)| h.clone());
            for (hint, object) in batch {
                let Some(key) = ObjectKey::from_storage_key(&hint.key) else {
                    continue;
                };
                if !matches!(
                    self.replicate(key, object.clone(), None).await,
                    Response::Replicated
                ) {
                    return;
                }
                if let Err(e) = self.store.delete_hint_if_unchanged(&hint, object).await {
                    warn!("handoff: deleting a hint taken in: {e}");
                    return;
                }
            }
            info!(owner, hints = count, "took in hints for a node that left");
        }
    }

    /// Hands one hint to its owner; true when the owner took it.
    async fn hand_off(&self, hint: HintKey, object: Object) -> bool {
        let Some(key) = ObjectKey::from_storage_key(&hint.key) else {
            warn!(owner = %hint.owner, "handoff: a hint has an undecodable key; keeping it");
            return true;
        };
        let request = Request::Replicate {
            key: key.clone(),
            object: object.clone(),
            hint_for: None,
        };
        let delivered = if hint.owner == self.name {
            matches!(
                self.replicate(key, object.clone(), None).await,
                Response::Replicated
            )
        } else {
            matches!(
                self.call_peer(&hint.owner, request, self.timeout).await,
                Ok(Response::Replicated)
            )
        };
        if !delivered {
            return false;
        }
        match self.store.delete_hint_if_unchanged(&hint, object).await {
            Ok(deleted) => {
                if deleted {
                    self.hints_delivered.fetch_add(1, AtomicOrdering::Relaxed);
                }
                true
            }
            Err(e) => {
                warn!("handoff: deleting a delivered hint: {e}");
                false
            }
        }
    }
}

/// One name, one certificate: a node runs only under the name its
/// certificate carries, with a certificate of its own CA valid now. A node
/// configured as `n9` with `n2`'s certificate would otherwise join as `n9`
/// while every peer takes its messages for `n2`'s.
fn check_own_certificate(creds: &Credentials, config: &NodeConfig) -> Result<(), NodeError> {
    let cert = config.tls.cert.display();
    match creds.own_identity() {
        Ok(Identity::Node(name)) if name == config.name => Ok(()),
        Ok(Identity::Node(name)) => Err(NodeError::Tls(format!(
            "the certificate {cert} is node {name}'s, but this node is configured as {}: \
             a node runs only under the name in its certificate (issue one for {} from the \
             cluster CA, or set name = \"{name}\")",
            config.name, config.name
        ))),
        Ok(Identity::Client) => Err(NodeError::Tls(format!(
            "the certificate {cert} is the cluster's client certificate, not node {}'s",
            config.name
        ))),
        Err(e) => Err(NodeError::Tls(format!(
            "the certificate {cert} cannot serve as node {}: {e}",
            config.name
        ))),
    }
}

/// The CPU time (user + system) this process has used, microseconds; 0
/// where the OS does not say.
fn process_cpu_micros() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return 0;
    };
    let micros = |t: nix::sys::time::TimeVal| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_usec()).unwrap_or(0)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// A random incarnation, never 0 and never `previous`.
fn fresh_incarnation(previous: Option<u64>) -> u64 {
    loop {
        let candidate: u64 = rand::random();
        if candidate != 0 && Some(candidate) != previous {
            return candidate;
        }
    }
}

impl NodeInner {
    /// The replica id that mints dots here now.
    fn replica(&self) -> ReplicaId {
        self.replica
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Draws a new incarnation (stored first, then used). A node that
    /// dropped a key forgot its counter for it, while other replicas still
    /// hold dots it minted; minting under the old incarnation could repeat
    /// one of them (KV679). Under a new one it cannot.
    async fn renew_incarnation(&self) -> Result<(), StorageError> {
        let current = self.replica();
        let fresh = fresh_incarnation(Some(current.incarnation));
        self.store
            .meta_put(INCARNATION_META, fresh.to_be_bytes().to_vec())
            .await?;
        info!("new replica incarnation {fresh:016x} (it is about to drop keys)");
        *self
            .replica
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ReplicaId::new(&self.name, fresh);
        Ok(())
    }
}

fn storage_failure(e: StorageError) -> Response {
    warn!("storage: {e}");
    Response::error(ErrorKind::Internal, format!("storage error: {e}"))
}

/// Why a get fell short of R, in one sentence, and how many answers counted.
/// A fallback that holds nothing for the key answered but does not count
/// (see [`GetCoordinator::on_reply`]); saying "1 of 3 answered, R = 1"
/// would read like a contradiction.
fn read_shortfall(coordinator: &GetCoordinator, extended: &[String], n: usize) -> (String, usize) {
    let mut counted = 0;
    let mut empty_fallbacks = Vec::new();
    for target in coordinator.asked() {
        match coordinator.replies().get(&target.node) {
            Some(None) if target.hint_for.is_some() => empty_fallbacks.push(target.node.as_str()),
            Some(_) => counted += 1,
            None => {}
        }
    }
    let home: Vec<&str> = extended.iter().take(n).map(String::as_str).collect();
    let silent: Vec<&str> = home
        .iter()
        .copied()
        .filter(|h| !coordinator.replies().contains_key(*h))
        .collect();
    let mut message = format!(
        "read quorum not reached: {counted} of R = {} replicas answered",
        coordinator.needed()
    );
    if !empty_fallbacks.is_empty() {
        message.push_str(&format!(
            "; {} answered as a fallback holding nothing for the key, which does not count",
            empty_fallbacks.join(", ")
        ));
    }
    if !silent.is_empty() {
        message.push_str(&format!(
            "; no answer from the key's replicas {}",
            silent.join(", ")
        ));
    }
    (message, counted)
}

fn unavailable(message: String, acks: usize, needed: usize) -> Response {
    Response::Error(ErrorReply {
        kind: ErrorKind::Unavailable,
        message,
        acks: acks.min(255) as u8,
        needed: needed.min(255) as u8,
    })
}
