//! The thin driver (DESIGN.md §3): a running node as one task around the
//! protocol's state machine, [`crate::core::node::Node`], over the redb
//! store. It is the same type the simulator drives; this module only
//! carries its inputs in and its effects out.
//!
//! - **One task owns the machine.** Requests from peers and clients, the
//!   answers of peers, storage completions and timer expiries arrive on one
//!   bounded channel; each is one step, and the task runs every step's
//!   [`Ready`]: replies, requests to peers, timers, counters.
//! - **The edge** ([`Edge`], the transport's handler) checks who is
//!   calling (certificate role, the address a node is known at, the
//!   partition in force) and validates client input before anything
//!   reaches the machine; `dynamo partition`/`heal` are answered there.
//! - **Peers**: one link task per peer sends the machine's requests on the
//!   peer's one reused connection, pipelined; a failure or a refusal is fed
//!   back as the request's timeout, so the machine gives up on it at once.
//! - **Storage**: the machine reads redb synchronously
//!   ([`StorageRead`]); its writes go to the committer task, which joins
//!   every batch waiting while a commit runs into the next one (group
//!   commit) and reports them durable in order ([`Node::persisted`]).
//!
//! It replaced a driver of its own (tasks per request, the protocol
//! spread over them) that the simulator could not run.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::config::{ClusterManifest, NodeConfig};
use crate::core::clock::{Object, ReplicaId};
use crate::core::faults::PartitionFilter;
use crate::core::membership::{ClusterState, MemberStatus};
use crate::core::merkle::{MerkleTree, TreeId};
use crate::core::message::{
    BucketView, ErrorKind, NodeReport, PartitionRoot, PutRequest, Request, Response, Role,
};
use crate::core::node::{
    Addr, Node as Machine, Params, PathCounts, Payload, Ready, ReqId, Shared, Timer,
};
use crate::net::tls::{self, Identity};
use crate::net::transport::{self, Handler, Peer, RpcClient, TransportErrorKind};
use crate::storage::{StorageRead, Store, Write, WriteBatch};

use super::metrics::{Metrics, Snapshot};
use super::{http_api, listing, membership, open, process_cpu_micros, NodeError, Opened};

/// Tombstone sweeps start every quarter of the grace period, within these.
const SWEEP_INTERVAL_MIN: Duration = Duration::from_millis(250);
const SWEEP_INTERVAL_MAX: Duration = Duration::from_secs(30);
/// A node's first background Merkle exchange waits this long after it
/// starts (one a second after that).
const ANTI_ENTROPY_FIRST: Duration = Duration::from_secs(60);
/// Most hints counted per owner when looking for orphans.
const ORPHAN_COUNT_MAX: u64 = 1_000_000;
/// How long setting a bucket's properties waits for every member to use
/// them.
const SPREAD_WAIT: Duration = Duration::from_secs(5);
/// Inputs waiting for the machine's task.
const INPUTS_MAX: usize = 4096;
/// Requests waiting to go to one peer.
const PEER_QUEUE_MAX: usize = 4096;
/// Batches waiting for the committer.
const COMMITS_MAX: usize = 1024;
/// Inputs the task takes in one go before it hands out what they produced.
const STEPS_PER_TURN: usize = 64;
/// How long a get waits for its first R targets before asking the rest.
const READ_SLOW: Duration = Duration::from_millis(20);
/// A replica request's share of the request timeout, in percent, and its
/// floor (see the default driver).
const REPLICA_TIMEOUT_PERCENT: u32 = 40;
const REPLICA_TIMEOUT_MIN: Duration = Duration::from_millis(200);

/// Something for the machine's task.
enum Input {
    /// A request that passed the edge; `from` is the node that sent it, or
    /// `None` for the client.
    Request {
        from: Option<String>,
        request: Request,
        reply: oneshot::Sender<Response>,
    },
    /// A peer answered one of the machine's requests.
    Answer {
        peer: String,
        id: ReqId,
        response: Response,
    },
    /// One of the machine's requests failed (unreachable, refused, timed
    /// out).
    Failed { id: ReqId },
    /// A scrape of `/metrics` wants the machine's counts.
    Metrics(oneshot::Sender<Snapshot>),
}

/// What the edge and the links share with the machine's task.
struct Directory {
    /// Where every live member listens.
    addrs: RwLock<BTreeMap<String, SocketAddr>>,
    /// The partition in force (`dynamo partition`).
    filter: RwLock<PartitionFilter>,
    /// The machine's view as of its last change (buckets, ring), for what
    /// the edge answers itself.
    view: RwLock<Option<Arc<Shared>>>,
}

impl Directory {
    fn addr_of(&self, name: &str) -> Option<SocketAddr> {
        read(&self.addrs).get(name).copied()
    }

    fn allows(&self, me: &str, peer: &str) -> bool {
        read(&self.filter).allows(me, peer)
    }

    fn view(&self) -> Option<Arc<Shared>> {
        read(&self.view).clone()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a node driven by the state machine until SIGTERM or SIGINT.
pub async fn run(config: NodeConfig) -> Result<(), NodeError> {
    let opened = open(&config).await?;
    let Opened {
        manifest,
        creds,
        store,
        incarnation,
        endpoint,
        local_addr,
        rpc,
        timeout,
        state,
        https,
    } = opened;
    let directory = Arc::new(Directory {
        addrs: RwLock::new(addresses(&state)),
        filter: RwLock::new(PartitionFilter::default()),
        view: RwLock::new(None),
    });
    let metrics = Arc::new(Metrics::default());
    let http = https
        .as_ref()
        .and_then(|(l, _)| l.local_addr().ok())
        .map(|a| a.to_string());
    let (inputs_tx, inputs) = mpsc::channel(INPUTS_MAX);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let edge = Arc::new(Edge {
        name: config.name.clone(),
        inputs: inputs_tx.clone(),
        directory: directory.clone(),
        value_bytes_max: manifest.value_bytes_max,
        timeout,
        store: store.clone(),
        rpc: rpc.clone(),
        metrics: metrics.clone(),
    });
    let https_server = https.map(|(listener, tls)| {
        info!(addr = ?listener.local_addr().ok(), "serving the HTTPS API");
        let api = Arc::new(http_api::Api::new(
            edge.clone(),
            crate::client::cluster_tag(&manifest),
        ));
        tokio::spawn(crate::http::serve(listener, tls, api, shutdown_rx.clone()))
    });
    let server = tokio::spawn(transport::serve(
        endpoint,
        edge,
        shutdown_rx.clone(),
        rpc.traffic(),
    ));
    let (commits, commits_rx) = mpsc::channel(COMMITS_MAX);
    let (durable_tx, durable) = watch::channel(0);
    let committer = tokio::spawn(commit(store.clone(), commits_rx, durable_tx));

    let replica_timeout = (timeout * REPLICA_TIMEOUT_PERCENT / 100).max(REPLICA_TIMEOUT_MIN);
    let params = params(&manifest, &config, timeout, replica_timeout);
    let names: Vec<String> = state.members.keys().cloned().collect();
    let index = names
        .iter()
        .position(|n| *n == config.name)
        .ok_or_else(|| {
            NodeError::Membership(format!("{} is not in its own cluster state", config.name))
        })?;
    let shared = Shared::new(state, names, params)
        .map_err(|e| NodeError::Membership(format!("bad cluster state: {e}")))?;
    *write(&directory.view) = Some(Arc::new(shared.clone()));
    let replica = ReplicaId::new(&config.name, incarnation);
    let mut machine = Machine::new(
        index,
        &config.name,
        replica,
        store.clone(),
        shared,
        rand::random(),
    );
    machine.set_authority(Box::new(membership::CertAuthority(creds)));
    info!(%local_addr, incarnation = format!("{incarnation:016x}"),
        "node {} serving (state-machine driver)", config.name);
    let mut driver = Driver {
        machine,
        started: Instant::now(),
        rpc,
        directory,
        inputs: inputs_tx,
        commits,
        links: HashMap::new(),
        timers: BTreeMap::new(),
        timer_seq: 0,
        next_id: 0,
        clients: HashMap::new(),
        incoming: HashMap::new(),
        next_local: 0,
        counts: PathCounts::default(),
        replica_timeout,
        http,
    };
    let mut task = tokio::spawn(async move { driver.run(inputs, durable, shutdown_rx).await });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| NodeError::Membership(format!("cannot install a signal handler: {e}")))?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
        _ = &mut task => warn!("the machine's task ended"),
    }
    let _ = shutdown.send(true);
    let _ = server.await;
    if let Some(https) = https_server {
        let _ = https.await;
    }
    // The machine's task drops its sender: the committer drains and ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), committer).await;
    store.shutdown().await?;
    info!("node {} stopped cleanly", config.name);
    Ok(())
}

/// The machine's settings for this cluster and node.
fn params(
    manifest: &ClusterManifest,
    config: &NodeConfig,
    timeout: Duration,
    replica_timeout: Duration,
) -> Params {
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let grace = Duration::from_millis(config.tombstone_grace_ms);
    let sweep = (grace / 4).clamp(SWEEP_INTERVAL_MIN, SWEEP_INTERVAL_MAX);
    Params {
        n: manifest.replicas,
        r: manifest.read_quorum,
        w: manifest.write_quorum,
        request_timeout_us: us(replica_timeout),
        put_deadline_us: us(timeout),
        forward_timeout_us: us(timeout),
        probe_us: us(crate::core::detector::PROBE_INTERVAL),
        // The detector's own timeout (1 s), not a replica's: a heartbeat
        // that waits for a first handshake on a loaded machine must not
        // make a live peer a suspect.
        probe_timeout_us: us(crate::core::detector::PROBE_TIMEOUT),
        // At most 1 280 hints a second.
        handoff_us: us(Duration::from_millis(100)),
        handoff_batch: 128,
        handover_batch: 1024,
        anti_entropy_us: us(Duration::from_secs(1)),
        anti_entropy_first_us: Some(us(ANTI_ENTROPY_FIRST)),
        membership_us: us(Duration::from_millis(500)),
        tombstone_sweep_us: us(sweep),
        gossip_us: us(membership::GOSSIP_INTERVAL),
        tombstone_grace_us: us(grace),
        read_slow_us: us(READ_SLOW),
        bug: None,
    }
}

/// Where every live member of `state` listens.
fn addresses(state: &ClusterState) -> BTreeMap<String, SocketAddr> {
    state
        .live_members()
        .filter_map(|(name, e)| Some((name.clone(), e.addr.parse().ok()?)))
        .collect()
}

/// The transport's handler: checks who calls and what, then hands the
/// request to the machine's task and waits for its answer. Bucket
/// settings and key listing it answers itself, from the machine's last
/// view and the store. The HTTPS API calls it as the client.
pub(super) struct Edge {
    name: String,
    inputs: mpsc::Sender<Input>,
    directory: Arc<Directory>,
    value_bytes_max: usize,
    timeout: Duration,
    store: Store<Object>,
    rpc: RpcClient<Request, Response>,
    metrics: Arc<Metrics>,
}

impl Handler<Request, Response> for Edge {
    async fn handle(&self, peer: Peer, request: Request) -> Response {
        if peer.identity == Identity::Client {
            return self.client(request).await;
        }
        self.checked(peer, request).await
    }
}

impl Edge {
    /// A client's request (QUIC or HTTPS), counted in the metrics.
    pub(super) async fn client(&self, request: Request) -> Response {
        let started = Instant::now();
        let op = op_name(&request);
        let peer = Peer {
            identity: Identity::Client,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let response = self.checked(peer, request).await;
        let versions = match &response {
            Response::Object(object) => object.versions().len(),
            _ => 0,
        };
        self.metrics.siblings(versions);
        self.metrics
            .request(op, outcome_name(&response, versions), started.elapsed());
        response
    }

    async fn checked(&self, peer: Peer, request: Request) -> Response {
        let (role, from) = match &peer.identity {
            Identity::Client => (Role::Client, None),
            Identity::Node(name) => {
                if let Err(why) = self.check_source(name, peer.addr, &request) {
                    warn!(peer = name, addr = %peer.addr, "refused a request: {why}");
                    return Response::error(ErrorKind::Forbidden, why);
                }
                if !self.directory.allows(&self.name, name) {
                    return Response::error(
                        ErrorKind::Forbidden,
                        format!("{} is partitioned away from {name}", self.name),
                    );
                }
                (Role::Node, Some(name.clone()))
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
        if let Err(refusal) = self.validate(&request) {
            return refusal;
        }
        match request {
            Request::Partition { groups } => self.set_partition(groups),
            Request::Heal => self.set_partition(Vec::new()),
            Request::Buckets => self.buckets(),
            Request::SetBucket { bucket, n, r, w } => self.set_bucket(bucket, n, r, w).await,
            Request::Keys {
                bucket,
                after,
                limit,
            } => self.keys(&bucket, after, limit).await,
            Request::KeyPage {
                bucket,
                after,
                limit,
                partitions,
                deleted,
            } => {
                match listing::local_page(&self.store, &bucket, after, limit, partitions, deleted)
                    .await
                {
                    Ok((keys, scanned_to)) => Response::KeyPage { keys, scanned_to },
                    Err(e) => Response::error(ErrorKind::Internal, format!("storage: {e}")),
                }
            }
            request => self.ask(from, request).await,
        }
    }

    /// The machine's answer to a request of the client's.
    pub(super) async fn ask_machine(&self, request: Request) -> Response {
        self.ask(None, request).await
    }

    /// The machine's counts, for a scrape.
    pub(super) async fn snapshot(&self) -> Option<Snapshot> {
        let (reply, answer) = oneshot::channel();
        self.inputs.send(Input::Metrics(reply)).await.ok()?;
        answer.await.ok()
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn value_bytes_max(&self) -> usize {
        self.value_bytes_max
    }

    pub(super) fn view(&self) -> Option<Arc<Shared>> {
        self.directory.view()
    }

    /// Every live member and where it is.
    pub(super) fn members(&self) -> Vec<(String, SocketAddr)> {
        read(&self.directory.addrs)
            .iter()
            .map(|(n, a)| (n.clone(), *a))
            .collect()
    }

    /// Asks a peer, as this node.
    pub(super) async fn call_peer(&self, peer: &str, request: Request) -> Result<Response, String> {
        if !self.directory.allows(&self.name, peer) {
            return Err(format!("{} is partitioned away from {peer}", self.name));
        }
        let addr = self
            .directory
            .addr_of(peer)
            .ok_or_else(|| format!("{peer} is not a member"))?;
        self.rpc
            .call(addr, &tls::server_name(peer), request, self.timeout)
            .await
            .map_err(|e| e.to_string())
    }

    /// The default bucket's settings and those of every bucket with its own.
    fn buckets(&self) -> Response {
        let Some(view) = self.directory.view() else {
            return Response::error(ErrorKind::Internal, "no cluster state");
        };
        let mut list = vec![view.bucket_view(crate::config::DEFAULT_BUCKET)];
        list.extend(
            view.cluster
                .buckets
                .keys()
                .filter(|b| *b != crate::config::DEFAULT_BUCKET)
                .map(|b| view.bucket_view(b)),
        );
        Response::Buckets(list)
    }

    /// Checks a bucket's new settings, and that a bucket holding keys keeps
    /// its N, then has the machine take them.
    async fn set_bucket(&self, bucket: String, n: u8, r: u8, w: u8) -> Response {
        if let Err(e) = crate::core::key::ObjectKey::new(&bucket, b"-") {
            return Response::error(ErrorKind::InvalidInput, e.to_string());
        }
        let Some(view) = self.directory.view() else {
            return Response::error(ErrorKind::Internal, "no cluster state");
        };
        let members = view.ring.members().len();
        if !(1 <= r && 1 <= w && r <= n && w <= n && usize::from(n) <= members) {
            return Response::error(
                ErrorKind::InvalidInput,
                format!(
                    "N = {n}, R = {r}, W = {w} break 1 <= R, W <= N <= {members} (the cluster's \
                     members)"
                ),
            );
        }
        let (current, _, _) = view.quorums(&bucket);
        if usize::from(n) != current {
            match self.holds_any(&bucket).await {
                Ok(false) => {}
                Ok(true) => {
                    return Response::error(
                        ErrorKind::Conflict,
                        format!(
                        "bucket {bucket} holds keys, so its N stays {current} (each of its keys \
                             has {current} copies); R and W can change"
                    ),
                    )
                }
                Err(why) => {
                    return Response::error(
                        ErrorKind::Unavailable,
                        format!("cannot tell whether bucket {bucket} is empty: {why}"),
                    )
                }
            }
        }
        let wanted = BucketView {
            name: bucket.clone(),
            n,
            r,
            w,
        };
        let request = Request::SetBucket { bucket, n, r, w };
        let answer = self.ask(None, request).await;
        if answer == Response::Done {
            self.wait_spread(&wanted).await;
        }
        answer
    }

    /// Waits, at most [`SPREAD_WAIT`], until every member that answers uses
    /// these settings (gossip carries them), so a write right after the
    /// answer finds them everywhere.
    async fn wait_spread(&self, wanted: &BucketView) {
        let deadline = Instant::now() + SPREAD_WAIT;
        while Instant::now() < deadline {
            let asks = self.members().into_iter().map(|(peer, _)| async move {
                let list = match peer == self.name {
                    true => self.buckets(),
                    false => match self.call_peer(&peer, Request::Buckets).await {
                        Ok(list) => list,
                        // Not answering: nothing to wait for.
                        Err(_) => return true,
                    },
                };
                match list {
                    Response::Buckets(list) => BucketView::of(&list, &wanted.name) == *wanted,
                    _ => true,
                }
            });
            if futures_util::future::join_all(asks)
                .await
                .into_iter()
                .all(|agrees| agrees)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether any member holds an object (a tombstone too) of `bucket`;
    /// an error naming who did not answer.
    async fn holds_any(&self, bucket: &str) -> Result<bool, String> {
        let page = || Request::KeyPage {
            bucket: bucket.to_string(),
            after: None,
            limit: 1,
            partitions: None,
            deleted: true,
        };
        let asks = self.members().into_iter().map(|(peer, _)| async move {
            if peer == self.name {
                let local = listing::local_page(&self.store, bucket, None, 1, None, true).await;
                return (peer, local.map(|(keys, _)| !keys.is_empty()));
            }
            // A peer that does not answer is asked again for a while (a
            // first handshake on a loaded machine can take seconds).
            let deadline = Instant::now() + SPREAD_WAIT;
            loop {
                let answer = match self.call_peer(&peer, page()).await {
                    Ok(Response::KeyPage { keys, .. }) => Ok(!keys.is_empty()),
                    Ok(other) => Err(format!("answered {other:?}")),
                    Err(e) => Err(e),
                };
                if answer.is_ok() || Instant::now() >= deadline {
                    return (peer, answer);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let mut silent = Vec::new();
        for (peer, answer) in futures_util::future::join_all(asks).await {
            match answer {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) => silent.push(format!("{peer} does not answer ({e})")),
            }
        }
        match silent.is_empty() {
            true => Ok(false),
            false => Err(silent.join("; ")),
        }
    }

    /// One page of a bucket's live keys across the cluster.
    async fn keys(&self, bucket: &str, after: Option<Vec<u8>>, limit: u32) -> Response {
        if let Err(e) = crate::core::key::ObjectKey::new(bucket, b"-") {
            return Response::error(ErrorKind::InvalidInput, e.to_string());
        }
        let Some(view) = self.directory.view() else {
            return Response::error(ErrorKind::Internal, "no cluster state");
        };
        let allowed = |peer: &str| self.directory.allows(&self.name, peer);
        listing::cluster_page(&view, &self.name, self, allowed, bucket, after, limit).await
    }

    /// Hands a request to the machine's task and waits for the answer.
    async fn ask(&self, from: Option<String>, request: Request) -> Response {
        let (reply, answer) = oneshot::channel();
        let input = Input::Request {
            from,
            request,
            reply,
        };
        if self.inputs.send(input).await.is_err() {
            return Response::error(ErrorKind::Internal, format!("{} is stopping", self.name));
        }
        // A client request is answered by its coordination's own deadlines;
        // this is the backstop for a machine that never answers.
        match tokio::time::timeout(self.timeout * 4, answer).await {
            Ok(Ok(response)) => response,
            Ok(Err(_)) => {
                Response::error(ErrorKind::Internal, format!("{} is stopping", self.name))
            }
            Err(_) => Response::error(
                ErrorKind::Unavailable,
                format!("{} did not answer in time", self.name),
            ),
        }
    }

    /// Client input the machine must never see: bad keys, oversized values.
    #[allow(clippy::result_large_err)]
    fn validate(&self, request: &Request) -> Result<(), Response> {
        let invalid = |e: String| Response::error(ErrorKind::InvalidInput, e);
        match request {
            Request::Get { key, .. } | Request::Explain { key, .. } => {
                key.validate().map_err(|e| invalid(e.to_string()))
            }
            Request::Put(put) | Request::Coordinate(put) => self.validate_put(put),
            _ => Ok(()),
        }
    }

    #[allow(clippy::result_large_err)]
    fn validate_put(&self, put: &PutRequest) -> Result<(), Response> {
        put.key
            .validate()
            .map_err(|e| Response::error(ErrorKind::InvalidInput, e.to_string()))?;
        if let Some(v) = &put.value {
            if v.len() > self.value_bytes_max {
                return Err(Response::error(
                    ErrorKind::InvalidInput,
                    format!(
                        "the value is {} bytes; this cluster accepts at most {} bytes",
                        v.len(),
                        self.value_bytes_max
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A node's requests must come from the address the cluster knows it
    /// at (see the default driver's `check_source`).
    fn check_source(&self, name: &str, from: SocketAddr, request: &Request) -> Result<(), String> {
        let same = |a: SocketAddr| {
            a.ip().to_canonical() == from.ip().to_canonical() && a.port() == from.port()
        };
        let known = self.directory.addr_of(name);
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

    fn set_partition(&self, groups: Vec<Vec<String>>) -> Response {
        let members: Vec<String> = read(&self.directory.addrs).keys().cloned().collect();
        if let Err(e) = PartitionFilter::check(&groups, &members) {
            return Response::error(ErrorKind::InvalidInput, e);
        }
        if groups.is_empty() {
            info!("partition healed");
        } else {
            warn!(?groups, "network partitioned on request");
        }
        *write(&self.directory.filter) = PartitionFilter::new(groups);
        Response::Done
    }
}

/// Something for the committer.
enum Commit {
    /// A step's batch, reported durable by its id.
    Batch(u64, WriteBatch<Object>),
    /// The cluster state, stored for the next start.
    State(Vec<u8>),
}

/// The committer: every batch waiting while a commit runs goes into the
/// next one; the machine hears each id once it is durable, in order.
async fn commit(
    store: Store<Object>,
    mut commits: mpsc::Receiver<Commit>,
    durable: watch::Sender<u64>,
) {
    while let Some(first) = commits.recv().await {
        let mut batch = WriteBatch::default();
        let mut last = None;
        let mut take = |c: Commit, batch: &mut WriteBatch<Object>| match c {
            Commit::Batch(id, b) => {
                batch.writes.extend(b.writes);
                last = Some(id);
            }
            Commit::State(bytes) => batch.writes.push(Write::Meta {
                name: membership::STATE_META.to_string(),
                value: bytes,
            }),
        };
        take(first, &mut batch);
        while let Ok(more) = commits.try_recv() {
            take(more, &mut batch);
        }
        if let Err(e) = store.write_batch(batch).await {
            // Nothing after this is acknowledged: the machine keeps waiting
            // for a durability that never comes, and its peers route
            // around it.
            warn!("a group commit failed; this node acknowledges no more writes: {e}");
            return;
        }
        if let Some(id) = last {
            // A watch never blocks the committer on the machine (which may
            // be waiting for room in this committer's queue).
            durable.send_replace(id);
        }
    }
}

/// One peer's link: sends the machine's requests on the peer's connection,
/// many in flight, and brings the answers back.
async fn link(
    me: String,
    peer: String,
    rpc: RpcClient<Request, Response>,
    directory: Arc<Directory>,
    mut requests: mpsc::Receiver<(ReqId, Request)>,
    inputs: mpsc::Sender<Input>,
    timeout: Duration,
) {
    let server_name = tls::server_name(&peer);
    let mut calls = FuturesUnordered::new();
    loop {
        tokio::select! {
            next = requests.recv() => {
                let Some((id, request)) = next else { break };
                let addr = directory.addr_of(&peer);
                let allowed = directory.allows(&me, &peer);
                let rpc = rpc.clone();
                let server_name = server_name.clone();
                calls.push(async move {
                    let Some(addr) = addr.filter(|_| allowed) else {
                        return (id, None, Err(None));
                    };
                    let result = rpc.call(addr, &server_name, request, timeout).await;
                    (id, Some(addr), result.map_err(Some))
                });
            }
            Some((id, addr, result)) = calls.next(), if !calls.is_empty() => {
                let input = match result {
                    Ok(Response::Error(e)) if e.kind == ErrorKind::Forbidden => {
                        debug!(peer, "refused: {}", e.message);
                        Input::Failed { id }
                    }
                    Ok(response) => Input::Answer { peer: peer.clone(), id, response },
                    Err(e) => {
                        if let (Some(e), Some(addr)) = (&e, addr) {
                            if e.kind() == TransportErrorKind::Timeout {
                                // Maybe a crashed peer's dead connection.
                                rpc.forget(addr, &server_name);
                            }
                            debug!(peer, "request failed: {e}");
                        }
                        Input::Failed { id }
                    }
                };
                if inputs.send(input).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// The machine's task: the machine and everything waiting on it.
struct Driver {
    /// Where the HTTPS API listens, if it does.
    http: Option<String>,
    machine: Machine<Store<Object>>,
    started: Instant,
    rpc: RpcClient<Request, Response>,
    directory: Arc<Directory>,
    inputs: mpsc::Sender<Input>,
    commits: mpsc::Sender<Commit>,
    links: HashMap<String, mpsc::Sender<(ReqId, Request)>>,
    /// Timers by when they fire (machine time) and a sequence number.
    timers: BTreeMap<(Duration, u64), Timer>,
    timer_seq: u64,
    /// The machine's request ids (it takes the counter each step).
    next_id: u64,
    /// Client requests waiting for the machine's answer, by op id.
    clients: HashMap<u64, oneshot::Sender<Response>>,
    /// Peers' requests waiting for the machine's answer, by the id the
    /// driver gave them.
    incoming: HashMap<u64, oneshot::Sender<Response>>,
    next_local: u64,
    /// The counted paths since the start.
    counts: PathCounts,
    replica_timeout: Duration,
}

impl Driver {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// A fresh effects value for one step, lent the request counter.
    fn ready(&self) -> Ready {
        Ready {
            next_id: self.next_id,
            ..Ready::default()
        }
    }

    /// Runs until shutdown.
    async fn run(
        &mut self,
        mut inputs: mpsc::Receiver<Input>,
        mut durable: watch::Receiver<u64>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut out = self.ready();
        self.machine.boot(self.now(), &mut out);
        self.apply(out).await;
        loop {
            let now = self.now();
            let wait = self
                .timers
                .keys()
                .next()
                .map(|(at, _)| at.saturating_sub(now));
            let sleep = async {
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    self.input(input).await;
                    for _ in 1..STEPS_PER_TURN {
                        let Ok(input) = inputs.try_recv() else { break };
                        self.input(input).await;
                    }
                }
                () = sleep => self.fire_timers().await,
                changed = durable.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let batch = *durable.borrow_and_update();
                    let mut out = self.ready();
                    self.machine.persisted(self.now(), batch, &mut out);
                    self.apply(out).await;
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
            if self.incoming.len() > INPUTS_MAX || self.clients.len() > INPUTS_MAX {
                self.incoming.retain(|_, tx| !tx.is_closed());
                self.clients.retain(|_, tx| !tx.is_closed());
            }
        }
    }

    async fn fire_timers(&mut self) {
        let now = self.now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            let mut out = self.ready();
            self.machine.on_timer(now, timer, &mut out);
            self.apply(out).await;
        }
    }

    async fn input(&mut self, input: Input) {
        let now = self.now();
        let mut out = self.ready();
        match input {
            Input::Answer { peer, id, response } => {
                let Some(j) = self.index_of(&peer) else {
                    return;
                };
                let payload = Payload::Response {
                    id,
                    response,
                    minted: None,
                };
                self.machine
                    .on_message(now, Addr::Node(j), payload, &mut out);
            }
            Input::Failed { id } => self
                .machine
                .on_timer(now, Timer::RequestTimeout(id), &mut out),
            Input::Metrics(reply) => {
                let _ = reply.send(self.snapshot());
                return;
            }
            Input::Request {
                from,
                request,
                reply,
            } => match from {
                None => self.client_request(request, reply, &mut out),
                Some(peer) => self.peer_request(&peer, request, reply, &mut out),
            },
        }
        self.apply(out).await;
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.machine.view().and_then(|v| v.index_of(name))
    }

    fn local_id(&mut self) -> u64 {
        self.next_local += 1;
        self.next_local
    }

    fn client_request(
        &mut self,
        request: Request,
        reply: oneshot::Sender<Response>,
        out: &mut Ready,
    ) {
        let now = self.now();
        let payload = match request {
            Request::Get {
                key,
                r,
                last_resort,
            } => (key, r, false, last_resort),
            Request::Explain {
                key,
                r,
                last_resort,
            } => (key, r, true, last_resort),
            Request::Put(put) => {
                let op = self.local_id();
                self.clients.insert(op, reply);
                let payload = Payload::ClientPut { op, put };
                self.machine.on_message(now, Addr::Client(0), payload, out);
                return;
            }
            Request::Repair { partitions } => {
                let op = self.local_id();
                self.clients.insert(op, reply);
                self.machine.on_repair(now, 0, op, partitions, out);
                return;
            }
            Request::Status => {
                let _ = reply.send(self.status());
                return;
            }
            Request::MerkleRoots { partition } => {
                let _ = reply.send(self.merkle_roots(partition));
                return;
            }
            Request::Gossip(_) => {
                let state = self.machine.view().map(|v| v.cluster.clone());
                let _ = reply.send(Response::Gossip(Box::new(state.unwrap_or_default())));
                return;
            }
            request @ Request::SetBucket { .. } => {
                self.machine.on_operator(now, request, out);
                let _ = reply.send(Response::Done);
                return;
            }
            request @ (Request::Leave | Request::Remove { .. }) => {
                let response = match self.check_departure(&request) {
                    Ok(()) => {
                        self.machine.on_operator(now, request, out);
                        Response::Done
                    }
                    Err(refusal) => refusal,
                };
                let _ = reply.send(response);
                return;
            }
            Request::LeafObjects { .. } => {
                // `merkle diff` reads a page like a peer does.
                self.node_request(self.machine.index, request, reply, out);
                return;
            }
            other => {
                let _ = reply.send(Response::error(
                    ErrorKind::InvalidInput,
                    format!("{other:?} is not served by the state-machine driver yet"),
                ));
                return;
            }
        };
        let (key, r, explain, last_resort) = payload;
        let op = self.local_id();
        self.clients.insert(op, reply);
        let payload = Payload::ClientGet {
            op,
            key,
            r,
            explain,
            last_resort,
        };
        self.machine.on_message(now, Addr::Client(0), payload, out);
    }

    fn peer_request(
        &mut self,
        peer: &str,
        request: Request,
        reply: oneshot::Sender<Response>,
        out: &mut Ready,
    ) {
        if self.index_of(peer).is_none() {
            if let Request::Gossip(state) = &request {
                if state.members.contains_key(peer) {
                    // A joiner: its name gets an index before its state is
                    // merged.
                    self.machine.learn_name(peer);
                }
            }
        }
        let Some(j) = self.index_of(peer) else {
            let _ = reply.send(Response::error(
                ErrorKind::Forbidden,
                format!("{peer} is not a member of this cluster"),
            ));
            return;
        };
        if request == Request::Status {
            // A member asks for `GET /status`.
            let _ = reply.send(self.status());
            return;
        }
        self.node_request(j, request, reply, out);
    }

    /// Hands the machine a request from node `from`; its answer goes to
    /// `reply`.
    fn node_request(
        &mut self,
        from: usize,
        request: Request,
        reply: oneshot::Sender<Response>,
        out: &mut Ready,
    ) {
        let id = self.local_id();
        self.incoming.insert(id, reply);
        let payload = Payload::Request {
            id,
            op: None,
            request,
        };
        self.machine
            .on_message(self.now(), Addr::Node(from), payload, out);
    }

    /// Refuses a departure that would leave fewer than N members, or one
    /// of a member that is not there.
    #[allow(clippy::result_large_err)]
    fn check_departure(&self, request: &Request) -> Result<(), Response> {
        let Some(view) = self.machine.view() else {
            return Err(Response::error(ErrorKind::Internal, "no cluster state"));
        };
        let me = &self.machine.name;
        let name = match request {
            Request::Remove { node } => {
                if node == me {
                    return Err(Response::error(
                        ErrorKind::InvalidInput,
                        format!("{node} is running: it leaves with `dynamo leave {node}`"),
                    ));
                }
                node
            }
            _ => me,
        };
        let Some(status) = view.cluster.status_of(name) else {
            return Err(Response::error(
                ErrorKind::InvalidInput,
                format!("{name} is not a member"),
            ));
        };
        if !matches!(status, MemberStatus::Up | MemberStatus::Joining) {
            return Ok(());
        }
        let staying = view
            .cluster
            .live_members()
            .filter(|(_, e)| e.status == MemberStatus::Up || e.status == MemberStatus::Joining)
            .count();
        let n = view.params.n;
        if staying <= n {
            return Err(Response::error(
                ErrorKind::InvalidInput,
                format!(
                    "{name} cannot leave: N = {n} needs at least {n} nodes and the cluster \
                     would have {}",
                    staying.saturating_sub(1)
                ),
            ));
        }
        Ok(())
    }

    fn status(&self) -> Response {
        let Some(view) = self.machine.view() else {
            return Response::error(ErrorKind::Internal, "no cluster state");
        };
        let store = self.machine.store();
        let (keys, hints) = match (store.object_total(), store.hint_total()) {
            (Ok(k), Ok(h)) => (k, h),
            (Err(e), _) | (_, Err(e)) => {
                return Response::error(ErrorKind::Internal, format!("storage error: {e}"))
            }
        };
        let me = &self.machine.name;
        let mut unreachable = self.machine.unreachable();
        let filter = read(&self.directory.filter).clone();
        for peer in read(&self.directory.addrs).keys() {
            if peer != me && !filter.allows(me, peer) && !unreachable.contains(peer) {
                unreachable.push(peer.clone());
            }
        }
        unreachable.sort();
        let (datagrams_sent, datagrams_received) = self.rpc.traffic().datagrams();
        let (incoming_total, incoming_done, handover_partitions) =
            self.machine.membership_progress();
        // Hints for nodes that are no longer members (moved into this
        // node's own store by the next handoff rounds).
        let live: Vec<&String> = view.cluster.live_members().map(|(n, _)| n).collect();
        let orphan_hints = store
            .hint_owner_counts(ORPHAN_COUNT_MAX)
            .map(|owners| {
                owners
                    .iter()
                    .filter(|(owner, _)| !live.contains(&owner))
                    .map(|(_, count)| count)
                    .sum()
            })
            .unwrap_or(0);
        Response::Status(Box::new(NodeReport {
            name: me.clone(),
            http: self.http.clone(),
            ring_fingerprint: view.ring.fingerprint(),
            partitions: view.ring.owned_by(me) as u32,
            keys,
            hints,
            incarnation: self.machine.replica.incarnation,
            unreachable,
            orphan_hints,
            read_repairs: self.counts.read_repairs,
            hints_delivered: self.counts.hints_delivered,
            partition: filter.groups().to_vec(),
            tombstones: self.machine.tombstones_held(),
            tombstones_collected: self.counts.tombstones_collected,
            member: view
                .cluster
                .members
                .get(me)
                .map_or("joining", |e| e.status_name())
                .to_string(),
            owners_version: view.cluster.owners_version(),
            incoming_total,
            incoming_done,
            handover_partitions,
            cpu_micros: process_cpu_micros(),
            datagrams_sent,
            datagrams_received,
        }))
    }

    /// The machine's counts and the transport's, for `/metrics`.
    fn snapshot(&self) -> Snapshot {
        let store = self.machine.store();
        let traffic = self.rpc.traffic().totals();
        Snapshot {
            keys: store.object_total().unwrap_or(0),
            hints: store.hint_total().unwrap_or(0),
            tombstones: self.machine.tombstones_held(),
            hints_delivered: self.counts.hints_delivered,
            read_repairs: self.counts.read_repairs,
            merkle_exchanges: self.counts.merkle_exchanges,
            keys_repaired: self.counts.keys_repaired,
            tombstones_collected: self.counts.tombstones_collected,
            fallback_puts: self.counts.fallback_puts,
            suspicions: self.counts.suspicions,
            gossip_rounds: self.counts.gossip_rounds,
            datagrams_sent: traffic.datagrams_sent,
            datagrams_received: traffic.datagrams_received,
            bytes_sent: traffic.bytes_sent,
            bytes_received: traffic.bytes_received,
        }
    }

    fn merkle_roots(&self, partition: Option<u32>) -> Response {
        let Some(view) = self.machine.view() else {
            return Response::error(ErrorKind::Internal, "no cluster state");
        };
        let total = view.ring.partitions();
        let me = self.machine.name.as_str();
        // Each tree of a partition with the replicas that keep it.
        let trees = |p: u32| -> Vec<(TreeId, Vec<String>)> {
            view.trees()
                .into_iter()
                .map(|(tree, n)| {
                    let list = view.ring.preference_list(p, n);
                    (tree, list.into_iter().map(str::to_owned).collect())
                })
                .collect()
        };
        let partitions: Vec<u32> = match partition {
            Some(p) if p >= total => {
                return Response::error(
                    ErrorKind::InvalidInput,
                    format!("no partition {p}: the ring has {total}"),
                )
            }
            Some(p) => vec![p],
            None => (0..total).collect(),
        };
        let mut roots = Vec::with_capacity(partitions.len());
        for p in partitions {
            for (tree_id, replicas) in trees(p) {
                // Every tree of the partition asked for; else the ones kept here.
                if partition.is_none() && !replicas.iter().any(|r| r == me) {
                    continue;
                }
                let tree = match self
                    .machine
                    .store()
                    .leaves(p, tree_id)
                    .map(MerkleTree::from_leaves)
                {
                    Ok(Some(tree)) => tree,
                    Ok(None) => {
                        return Response::error(
                            ErrorKind::Internal,
                            format!("partition {p}'s tree"),
                        )
                    }
                    Err(e) => {
                        return Response::error(ErrorKind::Internal, format!("storage error: {e}"))
                    }
                };
                roots.push(PartitionRoot {
                    partition: p,
                    tree: tree_id,
                    replicas,
                    root: tree.root(),
                    leaves: partition.map(|_| tree.leaves().to_vec()),
                });
            }
        }
        Response::MerkleRoots(roots)
    }

    /// Carries out one step's effects.
    async fn apply(&mut self, mut out: Ready) {
        self.next_id = out.next_id;
        if let Some((id, batch)) = out.persist.take() {
            if self.commits.send(Commit::Batch(id, batch)).await.is_err() {
                warn!("the committer stopped; a batch is lost");
            }
        }
        if let Some(e) = self.machine.take_storage_error() {
            warn!("storage: {e}");
        }
        let now = self.now();
        for (delay, timer) in out.timers.drain(..) {
            self.timer_seq += 1;
            let at = now + Duration::from_micros(delay);
            self.timers.insert((at, self.timer_seq), timer);
        }
        for (to, payload) in out.sends.drain(..) {
            self.send(to, payload);
        }
        self.counts.add(&out.counts);
        for step in &out.steps {
            info!(?step, "membership step");
        }
        if !out.gossip_refused.is_empty() {
            warn!(
                "refused part of a gossiped cluster state: {}",
                out.gossip_refused.join("; ")
            );
        }
        for why in &out.refused_tables {
            warn!("took an owner-table step gossip would refuse: {why}");
        }
        if !out.membership.is_empty() {
            info!("this node left the cluster");
        }
        if out.view_changed {
            self.view_changed().await;
        }
    }

    /// The cluster state changed: it is stored, new members get an index,
    /// and the edge learns the addresses and the view.
    async fn view_changed(&mut self) {
        let Some(state) = self.machine.view().map(|v| v.cluster.clone()) else {
            return;
        };
        *write(&self.directory.view) = self.machine.view().map(|v| Arc::new(v.clone()));
        for name in state.members.keys() {
            if self.index_of(name).is_none() {
                self.machine.learn_name(name);
            }
        }
        *write(&self.directory.addrs) = addresses(&state);
        let _ = self
            .commits
            .send(Commit::State(membership::encode(&state)))
            .await;
    }

    fn send(&mut self, to: Addr, payload: Payload) {
        match (to, payload) {
            (Addr::Client(_), Payload::ClientReply { op, outcome }) => {
                if let Some(reply) = self.clients.remove(&op) {
                    let _ = reply.send(outcome.into_response());
                }
            }
            (Addr::Node(_), Payload::Response { id, response, .. }) => {
                if let Some(reply) = self.incoming.remove(&id) {
                    let _ = reply.send(response);
                }
            }
            (Addr::Node(j), Payload::Request { id, request, .. }) => {
                let Some(peer) = self.machine.view().and_then(|v| v.names.get(j)).cloned() else {
                    return;
                };
                let link = self.link(&peer);
                if link.try_send((id, request)).is_err() {
                    // The peer's queue is full: the request fails now.
                    let _ = self.inputs.try_send(Input::Failed { id });
                }
            }
            _ => {}
        }
    }

    fn link(&mut self, peer: &str) -> mpsc::Sender<(ReqId, Request)> {
        if let Some(link) = self.links.get(peer).filter(|l| !l.is_closed()) {
            return link.clone();
        }
        let (tx, rx) = mpsc::channel(PEER_QUEUE_MAX);
        tokio::spawn(link(
            self.machine.name.clone(),
            peer.to_string(),
            self.rpc.clone(),
            self.directory.clone(),
            rx,
            self.inputs.clone(),
            self.replica_timeout,
        ));
        self.links.insert(peer.to_string(), tx.clone());
        tx
    }
}

/// The metrics name of a client request's operation.
fn op_name(request: &Request) -> &'static str {
    match request {
        Request::Get { .. } => "get",
        Request::Explain { .. } => "explain",
        Request::Put(put) if put.value.is_none() => "delete",
        Request::Put(_) => "put",
        Request::Keys { .. } | Request::KeyPage { .. } => "list",
        Request::Status => "status",
        Request::Buckets | Request::SetBucket { .. } => "buckets",
        _ => "admin",
    }
}

/// The metrics outcome of an answer (`versions`: of a get's object).
fn outcome_name(response: &Response, versions: usize) -> &'static str {
    match response {
        Response::Object(o) if o.is_deleted() => "not_found",
        Response::Object(_) if versions > 1 => "siblings",
        Response::Error(e) => match e.kind {
            ErrorKind::InvalidInput | ErrorKind::Conflict => "bad_request",
            ErrorKind::Unavailable | ErrorKind::CannotReach => "unavailable",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Internal => "error",
        },
        _ => "ok",
    }
}

impl listing::PageSource for Edge {
    async fn page(&self, node: &str, request: Request) -> Result<listing::Page, String> {
        if node == self.name {
            let Request::KeyPage {
                bucket,
                after,
                limit,
                partitions,
                deleted,
            } = request
            else {
                return Err("not a page request".into());
            };
            return listing::local_page(&self.store, &bucket, after, limit, partitions, deleted)
                .await;
        }
        match self.call_peer(node, request).await? {
            Response::KeyPage { keys, scanned_to } => Ok((keys, scanned_to)),
            Response::Error(e) => Err(e.message),
            other => Err(format!("unexpected answer {other:?}")),
        }
    }
}
