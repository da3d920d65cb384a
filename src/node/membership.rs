//! Membership in the running node: the cluster state it gossips, the ring
//! it routes with, and its part in joins and leaves (the steps are in
//! [`crate::core::membership`]; this module carries them out over QUIC).
//!
//! - **View**: the node's [`ClusterState`] with the rings and addresses it
//!   implies, swapped as a whole behind an `Arc` whenever gossip changes it,
//!   and kept in the store's meta table so a restarted node does not need
//!   the manifest again.
//! - **Gossip**: every [`GOSSIP_INTERVAL`] the node exchanges states with
//!   one random live peer (push-pull); a change made here is also pushed to
//!   every live peer at once, so a change reaches a small cluster in one
//!   round trip and a large one in O(log n) rounds.
//! - **Join**: a node that is not in its manifest and has no stored state
//!   asks its seeds for the state before it serves, adds itself as
//!   joining, and from then on follows the state like everyone else.
//! - **Changes** ([`NodeInner::membership`] task): propose the change the
//!   state calls for, pull this node's incoming partitions from their
//!   current replicas (an anti-entropy exchange run by the receiver, so the
//!   old owners keep serving reads and writes), say ready, install the
//!   target once everyone is ready, then **hand over**: data of partitions
//!   this node no longer replicates is pushed to their replicas and then
//!   dropped key by key, only where unchanged since it was pushed (a write
//!   that still reaches this node through a peer with an older ring is
//!   handed over on the next pass, never lost). Dropping renews the
//!   replica incarnation first (a dropped key's counter is forgotten).
//! - **Removal** (`dynamo leave --force`): a live node marks a member lost
//!   for good as removed; the steps above then abandon a change towards it,
//!   move its partitions away (pulled from the survivors) and mark it left.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::{ClusterManifest, MemberEntry as ManifestMember};
use crate::core::clock::Object;
use crate::core::membership::{
    incoming, newer_or_equal, ClusterState, EntryProof, MemberEntry, MemberStatus,
};
use crate::core::message::{ErrorKind, Request, Response};
use crate::core::ring::{PartitionId, Ring};
use crate::net::tls::{self, Credentials};
use crate::storage::StorageError;

use super::{anti_entropy, NodeError, NodeInner, RemotePeer};

/// Time between two gossip rounds.
pub const GOSSIP_INTERVAL: Duration = Duration::from_secs(1);
/// How often the membership task looks for work when nothing wakes it.
const MEMBERSHIP_TICK: Duration = Duration::from_millis(500);
/// How often partitions this node does not replicate are checked for data
/// to hand over when nothing changed.
const HANDOVER_SCAN_INTERVAL: Duration = Duration::from_secs(5);
/// How long a joining node keeps asking its seeds before it gives up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The meta-table entry holding the cluster state.
pub(super) const STATE_META: &str = "cluster_state";

/// What a node believes about the cluster, and the rings it implies.
#[derive(Debug)]
pub(super) struct View {
    /// The gossiped state.
    pub state: ClusterState,
    /// The ring in force.
    pub ring: Ring,
    /// The ring a change in progress leads to.
    pub next: Option<Ring>,
    /// Where every member not gone listens.
    pub addrs: BTreeMap<String, SocketAddr>,
}

impl View {
    pub fn new(state: ClusterState) -> Result<View, String> {
        let ring = state
            .ring()
            .map_err(|e| format!("bad cluster state: {e}"))?;
        let next = match state.next_ring() {
            Some(r) => Some(r.map_err(|e| format!("bad cluster state: {e}"))?),
            None => None,
        };
        let addrs = state
            .live_members()
            .filter_map(|(name, e)| Some((name.clone(), e.addr.parse().ok()?)))
            .collect();
        Ok(View {
            state,
            ring,
            next,
            addrs,
        })
    }

    /// The live members other than `me`.
    pub fn peers<'a>(&'a self, me: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.addrs.keys().filter(move |n| n.as_str() != me)
    }

    /// This member's status.
    pub fn status_of(&self, me: &str) -> MemberStatus {
        self.state.status_of(me).unwrap_or(MemberStatus::Joining)
    }
}

/// The state a node starts from: the stored one when it has one; else
/// `None` when it has seeds (it must join through them); else the
/// manifest's members, all up, when the manifest names this node.
pub(super) fn initial_state(
    stored: Option<Vec<u8>>,
    manifest: &ClusterManifest,
    me: &str,
    has_seeds: bool,
) -> Result<Option<ClusterState>, NodeError> {
    if let Some(bytes) = stored {
        match postcard::from_bytes::<ClusterState>(&bytes) {
            Ok(state) if state.members.contains_key(me) && state.owners.is_some() => {
                return Ok(Some(state))
            }
            Ok(_) => {}
            Err(e) => warn!("the stored cluster state is unreadable ({e}); starting over"),
        }
    }
    if has_seeds {
        return Ok(None);
    }
    if manifest.member(me).is_none() {
        return Err(NodeError::Membership(format!(
            "node {me} is not a member of the cluster manifest and has no seeds to join through"
        )));
    }
    let ring = manifest
        .ring()
        .map_err(|e| NodeError::Membership(format!("bad cluster manifest: {e}")))?;
    let members: Vec<(String, String)> = manifest
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.addr.to_string()))
        .collect();
    Ok(Some(ClusterState::bootstrap(&members, ring.owner_table())))
}

/// Joins through the seeds: sends them a state naming this node as joining
/// until one answers with a cluster state that has owners.
pub(super) async fn join(
    rpc: &crate::net::transport::RpcClient<Request, Response>,
    creds: &Credentials,
    me: &str,
    listen: SocketAddr,
    seeds: &[ManifestMember],
    timeout: Duration,
) -> Result<ClusterState, NodeError> {
    let mut mine = ClusterState::default();
    mine.set_member(me, &listen.to_string(), MemberStatus::Joining);
    sign_entry(creds, me, &mut mine, me);
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    let mut last_error = String::new();
    loop {
        for seed in seeds {
            let request = Request::Gossip(Box::new(mine.clone()));
            match rpc
                .call(seed.addr, &tls::server_name(&seed.name), request, timeout)
                .await
            {
                Ok(Response::Gossip(theirs)) => {
                    let mut state = *theirs;
                    state.merge(&mine);
                    if state.status_of(me) != Some(MemberStatus::Joining) {
                        // The cluster remembers an earlier life of this
                        // name (it left): join again with a newer entry.
                        state.set_member(me, &listen.to_string(), MemberStatus::Joining);
                        sign_entry(creds, me, &mut state, me);
                        mine = state;
                        continue;
                    }
                    if state.owners.is_some() {
                        info!(seed = seed.name, "joined the cluster through a seed");
                        return Ok(state);
                    }
                }
                Ok(other) => last_error = format!("{} answered {other:?}", seed.name),
                Err(e) => last_error = format!("{}: {e}", seed.name),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(NodeError::Membership(format!(
                "no seed let node {me} join within {} s (last: {last_error})",
                JOIN_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Signs `name`'s entry in `state` as `me` (see [`EntryProof`]). A node
/// whose key cannot sign leaves the entry unsigned, and peers will not take
/// it in: said in the log.
fn sign_entry(creds: &Credentials, me: &str, state: &mut ClusterState, name: &str) {
    let Some(entry) = state.members.get_mut(name) else {
        return;
    };
    entry.proof = None;
    match creds.sign(&entry.signed_bytes(name)) {
        Ok(signature) => {
            entry.proof = Some(EntryProof {
                signer: me.to_string(),
                cert: creds.cert_der().to_vec(),
                signature,
            })
        }
        Err(e) => warn!(member = name, "cannot sign a member entry: {e}"),
    }
}

/// `state` with this node's own entry signed by it: re-issued one version
/// up when it is not signed by `me` yet (the manifest's first entries are
/// nobody's word), as it is.
pub(super) fn with_own_entry_signed(
    mut state: ClusterState,
    creds: &Credentials,
    me: &str,
) -> ClusterState {
    let Some(entry) = state.members.get(me) else {
        return state;
    };
    if entry.signer() != Some(me) {
        let (addr, status) = (entry.addr.clone(), entry.status);
        state.set_member(me, &addr, status);
        sign_entry(creds, me, &mut state, me);
    }
    state
}

/// The encoded state for the meta table.
pub(super) fn encode(state: &ClusterState) -> Vec<u8> {
    postcard::to_allocvec(state).unwrap_or_default()
}

/// Progress of this node's pulls for one change.
#[derive(Debug, Default)]
pub(super) struct Incoming {
    /// The owner-table version the pulls are for.
    pub version: u64,
    /// The partitions to pull.
    pub total: u32,
    /// Those pulled.
    pub done: BTreeSet<PartitionId>,
}

impl NodeInner {
    /// The current view (cheap: an `Arc`).
    pub(super) fn view(&self) -> Arc<View> {
        self.view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Merges what may be taken in of `theirs`, heard from node `sender`,
    /// into this node's state (see [`NodeInner::admissible`]); when that
    /// changes it, the new view is installed and stored. Returns whether it
    /// changed.
    pub(super) async fn adopt(&self, theirs: &ClusterState, sender: &str) -> bool {
        let _one_at_a_time = self.adopting.lock().await;
        let mut state = self.view().state.clone();
        let admitted = self.admissible(&state, theirs, sender);
        if !state.merge(&admitted) {
            return false;
        }
        self.install_view(state).await
    }

    /// What of a gossiped state this node takes in. A node speaks only for
    /// itself: each newer member entry must carry a signature of the
    /// cluster CA's node that made it ([`Credentials::verify_signed`]) and
    /// be one that node may make ([`ClusterState::admit_entry`]); a newer
    /// owner table must be a step of the membership protocol
    /// ([`ClusterState::admit_owners`], judged after the entries). Entries
    /// another node marked left are judged last, against the new owners.
    /// What is refused is left out and logged, naming the sender.
    fn admissible(&self, ours: &ClusterState, theirs: &ClusterState, sender: &str) -> ClusterState {
        let n = self.manifest.replicas;
        let mut working = ours.clone();
        let mut admitted = ClusterState::default();
        let mut refused: Vec<String> = Vec::new();
        let mut deferred = Vec::new();
        for (name, entry) in &theirs.members {
            if ours
                .members
                .get(name)
                .is_some_and(|o| newer_or_equal(o, entry))
            {
                continue;
            }
            if let Err(why) = self.verify_entry(name, entry) {
                refused.push(why);
                continue;
            }
            if entry.status == MemberStatus::Left && entry.signer() != Some(name.as_str()) {
                deferred.push((name, entry));
                continue;
            }
            match working.admit_entry(name, entry, |peer| self.reachable(peer)) {
                Ok(()) => {
                    working.members.insert(name.clone(), entry.clone());
                    admitted.members.insert(name.clone(), entry.clone());
                }
                Err(why) => refused.push(why),
            }
        }
        if let Some(table) = &theirs.owners {
            match working.admit_owners(table, n) {
                Ok(()) => {
                    working.merge(&ClusterState {
                        members: BTreeMap::new(),
                        owners: Some(table.clone()),
                    });
                    admitted.owners = Some(table.clone());
                }
                Err(why) => refused.push(why),
            }
        }
        for (name, entry) in deferred {
            match working.admit_entry(name, entry, |peer| self.reachable(peer)) {
                Ok(()) => {
                    admitted.members.insert(name.clone(), entry.clone());
                }
                Err(why) => refused.push(why),
            }
        }
        if !refused.is_empty() {
            warn!(
                sender,
                "refused part of a gossiped cluster state: {}",
                refused.join("; ")
            );
        }
        admitted
    }

    /// Checks the signature on a gossiped member entry.
    fn verify_entry(&self, name: &str, entry: &MemberEntry) -> Result<(), String> {
        let Some(proof) = &entry.proof else {
            return Err(format!(
                "version {} of {name}'s entry is signed by nobody",
                entry.version
            ));
        };
        self.creds
            .verify_signed(
                &proof.signer,
                &proof.cert,
                &entry.signed_bytes(name),
                &proof.signature,
            )
            .map_err(|e| {
                format!(
                    "version {} of {name}'s entry, signed as {}: {e}",
                    entry.version, proof.signer
                )
            })
    }

    /// Applies a change made here (`change` edits a copy of the state),
    /// signs every member entry it changed as this node's, then pushes the
    /// new state to every live peer.
    pub(super) async fn change(self: &Arc<Self>, change: impl FnOnce(&mut ClusterState)) {
        let changed = {
            let _one_at_a_time = self.adopting.lock().await;
            let before = self.view();
            let mut state = before.state.clone();
            change(&mut state);
            let made: Vec<String> = state
                .members
                .iter()
                .filter(|(name, e)| before.state.members.get(*name) != Some(*e))
                .map(|(name, _)| name.clone())
                .collect();
            for name in made {
                sign_entry(&self.creds, &self.name, &mut state, &name);
            }
            state != before.state && self.install_view(state).await
        };
        if changed {
            self.push_state();
        }
    }

    async fn install_view(&self, state: ClusterState) -> bool {
        let view = match View::new(state) {
            Ok(v) => v,
            Err(e) => {
                warn!("ignoring a cluster state: {e}");
                return false;
            }
        };
        if let Err(e) = self.store.meta_put(STATE_META, encode(&view.state)).await {
            warn!("cannot store the cluster state: {e}");
        }
        let peers: Vec<String> = view.peers(&self.name).cloned().collect();
        self.detector
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .set_peers(peers, self.now());
        debug!(
            owners_version = view.state.owners_version(),
            members = view.addrs.len(),
            changing = view.next.is_some(),
            "cluster state changed"
        );
        *self
            .view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(view);
        self.membership_wake.notify_one();
        true
    }

    /// Sends this node's state to every live peer, each on its own task.
    fn push_state(self: &Arc<Self>) {
        let view = self.view();
        for peer in view.peers(&self.name) {
            let node = self.clone();
            let (peer, state) = (peer.clone(), view.state.clone());
            tokio::spawn(async move { node.gossip_with(&peer, state).await });
        }
    }

    async fn gossip_with(&self, peer: &str, state: ClusterState) {
        let request = Request::Gossip(Box::new(state));
        if let Ok(Response::Gossip(theirs)) = self.call_peer(peer, request, self.timeout).await {
            self.adopt(&theirs, peer).await;
        }
    }

    /// Answers a peer's gossip: merge what may be taken in of its state,
    /// answer ours. A client's state is not merged (clients read the state,
    /// they do not change it): `sender` is the node's name, `None` for a
    /// client.
    pub(super) async fn on_gossip(&self, theirs: ClusterState, sender: Option<&str>) -> Response {
        if let Some(sender) = sender {
            self.adopt(&theirs, sender).await;
        }
        Response::Gossip(Box::new(self.view().state.clone()))
    }

    /// Refuses a departure that would leave fewer than N members.
    fn check_departure(&self, view: &View, name: &str) -> Result<(), Response> {
        let staying = view
            .state
            .live_members()
            .filter(|(_, e)| e.status == MemberStatus::Up || e.status == MemberStatus::Joining)
            .count();
        if staying <= self.manifest.replicas {
            let n = self.manifest.replicas;
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

    /// `dynamo leave --force NODE`, sent to a live node: `node` is down for
    /// good; mark it removed so the others take its partitions over.
    pub(super) async fn on_remove(self: &Arc<Self>, node: &str) -> Response {
        let view = self.view();
        let Some(entry) = view.state.members.get(node).cloned() else {
            return Response::error(ErrorKind::InvalidInput, format!("{node} is not a member"));
        };
        if node == self.name {
            return Response::error(
                ErrorKind::InvalidInput,
                format!("{node} is running: it leaves with `dynamo leave {node}`"),
            );
        }
        match entry.status {
            MemberStatus::Removed | MemberStatus::Left => return Response::Done,
            MemberStatus::Leaving => {}
            MemberStatus::Up | MemberStatus::Joining => {
                if let Err(refusal) = self.check_departure(&view, node) {
                    return refusal;
                }
            }
        }
        warn!(node, "removing a member that is down for good, on request");
        self.change(|s| s.set_member(node, &entry.addr, MemberStatus::Removed))
            .await;
        Response::Done
    }

    /// `dynamo leave`: this node starts leaving.
    pub(super) async fn on_leave(self: &Arc<Self>) -> Response {
        let view = self.view();
        match view.status_of(&self.name) {
            MemberStatus::Leaving | MemberStatus::Left | MemberStatus::Removed => {
                return Response::Done
            }
            _ => {
                if let Err(refusal) = self.check_departure(&view, &self.name) {
                    return refusal;
                }
            }
        }
        let addr = self.local_addr_string(&view);
        let name = self.name.clone();
        info!("leaving the cluster on request");
        self.change(|s| s.set_member(&name, &addr, MemberStatus::Leaving))
            .await;
        Response::Done
    }

    fn local_addr_string(&self, view: &View) -> String {
        view.state
            .members
            .get(&self.name)
            .map(|e| e.addr.clone())
            .unwrap_or_default()
    }

    /// The gossip task: one push-pull exchange with a random live peer per
    /// [`GOSSIP_INTERVAL`].
    pub(super) async fn gossip(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(GOSSIP_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
            let view = self.view();
            let peers: Vec<&String> = view.peers(&self.name).collect();
            if peers.is_empty() {
                continue;
            }
            let peer = peers[rand::random::<usize>() % peers.len()].clone();
            self.gossip_with(&peer, view.state.clone()).await;
        }
    }

    /// The membership task: carries out this node's part of joins and
    /// leaves (see the module docs), woken by every state change and every
    /// [`MEMBERSHIP_TICK`].
    pub(super) async fn membership(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut last_scan = tokio::time::Instant::now();
        let mut scanned_version = u64::MAX;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(MEMBERSHIP_TICK) => {}
                _ = self.membership_wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            self.membership_step().await;
            let version = self.view().state.owners_version();
            if version != scanned_version || last_scan.elapsed() >= HANDOVER_SCAN_INTERVAL {
                if let Err(e) = self.hand_over(&mut shutdown).await {
                    warn!("handover: {e}");
                }
                scanned_version = version;
                last_scan = tokio::time::Instant::now();
            }
        }
    }

    async fn membership_step(self: &Arc<Self>) {
        let n = self.manifest.replicas;
        let view = self.view();
        let version = view.state.owners_version();
        let me = self.name.clone();
        if view.state.must_abort() {
            warn!(
                owners_version = version + 1,
                "abandoning a change towards a removed member"
            );
            self.change(|s| {
                if s.owners_version() == version {
                    s.abort()
                }
            })
            .await;
            return;
        }
        for gone in view.state.removals_done() {
            info!(
                node = gone,
                "a removed member owns nothing any more: it has left"
            );
            self.change(|s| {
                if let Some(addr) = s.members.get(&gone).map(|e| e.addr.clone()) {
                    if s.status_of(&gone) == Some(MemberStatus::Removed) {
                        s.set_member(&gone, &addr, MemberStatus::Left)
                    }
                }
            })
            .await;
        }
        // Only the claimant proposes and installs (`ClusterState::claimant`).
        let claimant = view.state.claimant(&me, |p| self.reachable(p)) == Some(me.as_str());
        if let Some(target) = view.state.proposal(n).filter(|_| claimant) {
            info!(
                owners_version = version + 1,
                "proposing a membership change"
            );
            self.change(|s| {
                if s.owners_version() == version {
                    s.propose(target)
                }
            })
            .await;
            return;
        }
        if let Some(next) = &view.next {
            let ready_for = view.state.members.get(&me).map_or(0, |e| e.ready_for);
            if ready_for < version {
                let wanted = incoming(&view.ring, next, n, &me);
                if !wanted.is_empty() {
                    if self.pull(&view, version, &wanted).await {
                        info!(
                            owners_version = version,
                            partitions = wanted.len(),
                            "pulled every incoming partition"
                        );
                        self.change(|s| s.set_ready(&me, version)).await;
                    }
                    return;
                }
            }
            if claimant && view.state.ready_to_install(n) {
                info!(owners_version = version + 1, "installing the new owners");
                self.change(|s| {
                    if s.owners_version() == version {
                        s.install()
                    }
                })
                .await;
            }
            return;
        }
        let addr = self.local_addr_string(&view);
        match view.status_of(&me) {
            MemberStatus::Joining if view.ring.owned_by(&me) > 0 => {
                info!("joined: serving {} partitions", view.ring.owned_by(&me));
                self.change(|s| s.set_member(&me, &addr, MemberStatus::Up))
                    .await;
            }
            MemberStatus::Leaving if view.ring.owned_by(&me) == 0 => {
                let holding = self.handover_partitions.load(AtomicOrdering::Relaxed);
                // Owning nothing, it is in no preference list; it still
                // must have handed over its data and its hints.
                let hints = self.store.hint_count().await.unwrap_or(u64::MAX);
                if holding == 0 && hints == 0 && self.handed_over_once() {
                    info!("left the cluster: every partition handed over");
                    self.change(|s| s.set_member(&me, &addr, MemberStatus::Left))
                        .await;
                }
            }
            _ => {}
        }
    }

    /// Whether a handover scan ran since the last owner-table change.
    fn handed_over_once(&self) -> bool {
        self.handover_scanned.load(AtomicOrdering::Relaxed) == self.view().state.owners_version()
    }

    /// Pulls `wanted` partitions from their current replicas for the change
    /// at `version`; true when all are in.
    async fn pull(&self, view: &View, version: u64, wanted: &[PartitionId]) -> bool {
        let todo: Vec<PartitionId> = {
            let mut progress = self
                .incoming
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if progress.version != version {
                *progress = Incoming {
                    version,
                    total: wanted.len() as u32,
                    done: BTreeSet::new(),
                };
            }
            wanted
                .iter()
                .copied()
                .filter(|p| !progress.done.contains(p))
                .collect()
        };
        let n = self.manifest.replicas;
        let mut complete = true;
        for p in todo {
            let sources: Vec<String> = view
                .ring
                .preference_list(p, n)
                .into_iter()
                .filter(|s| *s != self.name && self.reachable(s))
                .map(str::to_owned)
                .collect();
            let mut pulled = false;
            for source in sources {
                let Ok(_permit) = self.exchanges.acquire().await else {
                    return false;
                };
                let remote = RemotePeer {
                    node: self,
                    name: source.clone(),
                };
                match anti_entropy::exchange(&self.store, p, &remote).await {
                    Ok(e) => {
                        pulled = true;
                        debug!(
                            partition = p,
                            source,
                            keys = e.repaired_here,
                            "pulled a partition"
                        );
                    }
                    Err(e) => debug!(partition = p, source, "pull failed: {e}"),
                }
            }
            if pulled {
                self.incoming
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .done
                    .insert(p);
            } else {
                complete = false;
            }
        }
        complete
    }

    /// Pushes the data of every partition this node holds but no longer
    /// replicates (and will not under a change in progress) to its
    /// replicas, then drops what is unchanged since it was pushed.
    async fn hand_over(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), StorageError> {
        let view = self.view();
        let n = self.manifest.replicas;
        let mut holding = 0;
        for p in 0..view.ring.partitions() {
            if *shutdown.borrow() {
                return Ok(());
            }
            let replicas: Vec<String> = view
                .ring
                .preference_list(p, n)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let keeps = replicas.contains(&self.name)
                || view
                    .next
                    .as_ref()
                    .is_some_and(|r| r.preference_list(p, n).contains(&self.name.as_str()));
            if keeps {
                continue;
            }
            let leaves = self.store.merkle_leaves(p).await?;
            let held: Vec<u32> = (0..leaves.len() as u32)
                .filter(|&l| leaves[l as usize] != [0u8; 32])
                .collect();
            if held.is_empty() {
                continue;
            }
            holding += 1;
            self.handover_partitions
                .store(holding, AtomicOrdering::Relaxed);
            // What is here now; everything pushed below includes it.
            let mut snapshot = Vec::new();
            for &leaf in &held {
                snapshot.extend(anti_entropy::local_leaf(&self.store, p, leaf).await?);
            }
            let mut pushed_to = 0;
            for replica in &replicas {
                if !self.reachable(replica) {
                    continue;
                }
                let Ok(_permit) = self.exchanges.acquire().await else {
                    return Ok(());
                };
                let remote = RemotePeer {
                    node: self,
                    name: replica.clone(),
                };
                match anti_entropy::exchange_one_way(
                    &self.store,
                    p,
                    &remote,
                    anti_entropy::Direction::PushOnly,
                )
                .await
                {
                    Ok(e) => {
                        pushed_to += 1;
                        if e.pushed > 0 {
                            info!(partition = p, replica, keys = e.pushed, "handed keys over");
                        }
                    }
                    Err(e) => debug!(partition = p, replica, "handover failed: {e}"),
                }
            }
            if pushed_to < replicas.len().min(self.manifest.write_quorum.max(1)) || pushed_to == 0 {
                continue;
            }
            // A new incarnation first: no dot minted from here on can
            // repeat one minted for a key dropped below.
            self.renew_incarnation().await?;
            let mut dropped = 0u64;
            let mut drops = tokio::task::JoinSet::new();
            for (key, object) in snapshot {
                let store = self.store.clone();
                drops.spawn(async move {
                    store
                        .update(key.storage_key(), move |current: Option<Object>| {
                            if current.as_ref() == Some(&object) {
                                (None, true)
                            } else {
                                (current, false)
                            }
                        })
                        .await
                });
            }
            while let Some(done) = drops.join_next().await {
                if let Ok(Ok(true)) = done {
                    dropped += 1;
                }
            }

            info!(
                partition = p,
                keys = dropped,
                "handed a partition over and dropped it here"
            );
            holding -= 1;
            self.handover_partitions
                .store(holding, AtomicOrdering::Relaxed);
        }
        self.handover_partitions
            .store(holding, AtomicOrdering::Relaxed);
        self.handover_scanned
            .store(view.state.owners_version(), AtomicOrdering::Relaxed);
        Ok(())
    }

    /// Pull progress for `status`: (total, done) for the change in progress.
    pub(super) fn incoming_progress(&self) -> (u32, u32) {
        let view = self.view();
        let progress = self
            .incoming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &view.next {
            Some(_) if progress.version == view.state.owners_version() => {
                (progress.total, progress.done.len() as u32)
            }
            _ => (0, 0),
        }
    }
}
