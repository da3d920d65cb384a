//! The versioned cluster state nodes gossip (paper §4.8): members, their
//! addresses and status, and the partition owners.
//!
//! Every member's entry carries a version that only its changer increases;
//! the owner table carries its own version. Two states merge entry by entry,
//! the higher version winning (ties broken by comparing the entries, so that
//! merge is commutative, associative and idempotent: every node ends with
//! the same state whatever order gossip arrives in). A node gossips with
//! one random peer per round; [`rounds_to_converge`] measures in simulation
//! how many rounds a change needs to reach every node.
//!
//! Membership changes (DESIGN.md §2, "membership change") go through the
//! owner table in three steps, each a new version of it:
//!
//! 1. *proposed*: [`ClusterState::proposal`] turns the first joining or
//!    leaving member into a target table ([`crate::core::ring_plan`]'s plan,
//!    the one `dynamo ring plan` shows) kept in [`OwnerTable::next`] while
//!    the current owners keep serving. Any node may propose; the proposal is
//!    a function of the state, so two nodes proposing at once propose the
//!    same table.
//! 2. *transferring*: every member that the target makes a replica of a
//!    partition it does not replicate now ([`incoming`]) pulls that
//!    partition from its current replicas, then raises its
//!    [`MemberEntry::ready_for`] to the table's version.
//! 3. *installed*: once every such member is ready ([`ClusterState::ready_to_install`]),
//!    the target becomes the owners ([`ClusterState::install`]). Nodes that
//!    then hold data of partitions they no longer replicate push it to the
//!    replicas and drop it (the node driver's handover).
//!
//! A joining member turns itself up once it owns partitions; a leaving one
//! marks itself left once it owns none and holds nothing. A member lost for
//! good is marked *removed* by another node (`dynamo leave --force`):
//! removals are proposed before anything else, all removed owners in one
//! table, pulled from the surviving replicas; a pending change whose target
//! gives partitions to a removed member is abandoned
//! ([`ClusterState::must_abort`]); once a removed member owns nothing, any
//! node marks it left ([`ClusterState::removals_done`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::core::ring::{PartitionId, Ring, RingError};
use crate::core::ring_plan::{plan_add, plan_remove};

/// Where a member is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Known, receiving its partitions.
    Joining,
    /// Serving its partitions.
    Up,
    /// Handing its partitions away.
    Leaving,
    /// Gone; kept so that the departure spreads and is not undone.
    Left,
    /// Dead for good and being removed by the others (`dynamo leave
    /// --force`): its partitions move to the others, pulled from the
    /// surviving replicas; then any node marks it left.
    Removed,
}

/// One member as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberEntry {
    /// Increased by whoever changes this entry.
    pub version: u64,
    /// Where it listens (`host:port`).
    pub addr: String,
    /// Its status.
    pub status: MemberStatus,
    /// The owner-table version whose incoming partitions this member has
    /// pulled (0: none).
    pub ready_for: u64,
    /// Who made this version of the entry, and their signature over it
    /// ([`MemberEntry::signed_bytes`]): gossip relays entries, and a node
    /// takes one in only when its maker may make it (see
    /// [`ClusterState::admit_entry`]). `None` for the manifest's first
    /// entries, which every node builds for itself.
    pub proof: Option<EntryProof>,
}

/// A node's signature on a member entry it made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryProof {
    /// The node that made the entry: the member itself, or the node that
    /// marked it removed or left.
    pub signer: String,
    /// The signer's node certificate (DER), issued by the cluster CA.
    pub cert: Vec<u8>,
    /// The signature over [`MemberEntry::signed_bytes`].
    pub signature: Vec<u8>,
}

/// Who vouches for member entries: a node signs the entries it changes, and
/// checks the signatures on those it hears before [`admissible`] judges
/// them. The running node signs with its certificate (the cluster CA's);
/// the simulator uses [`Unsigned`], which records the signer only.
pub trait EntryAuthority: std::fmt::Debug + Send {
    /// Signs `name`'s entry in `state` as node `me`.
    fn sign(&self, me: &str, state: &mut ClusterState, name: &str);
    /// Checks the proof on `name`'s entry.
    fn verify(&self, name: &str, entry: &MemberEntry) -> Result<(), String>;
}

/// The simulator's authority: a proof names its signer and proves nothing
/// (there is no one to forge it); every rule on who may make which entry
/// ([`ClusterState::admit_entry`]) still holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsigned;

impl EntryAuthority for Unsigned {
    fn sign(&self, me: &str, state: &mut ClusterState, name: &str) {
        if let Some(entry) = state.members.get_mut(name) {
            entry.proof = Some(EntryProof {
                signer: me.to_string(),
                cert: Vec::new(),
                signature: Vec::new(),
            });
        }
    }

    fn verify(&self, name: &str, entry: &MemberEntry) -> Result<(), String> {
        match entry.proof {
            Some(_) => Ok(()),
            None => Err(format!(
                "version {} of {name}'s entry is signed by nobody",
                entry.version
            )),
        }
    }
}

/// What of a gossiped state `theirs` a node with state `ours` takes in, and
/// why it refused the rest. A node speaks only for itself: each newer member
/// entry must carry a proof the authority accepts and be one its signer may
/// make ([`ClusterState::admit_entry`]); a newer owner table must be a step
/// of the membership protocol ([`ClusterState::admit_owners`], judged after
/// the entries). Entries another node marked left are judged last, against
/// the new owners. `reachable` is the node's view of its peers.
pub fn admissible(
    ours: &ClusterState,
    theirs: &ClusterState,
    n: usize,
    authority: &dyn EntryAuthority,
    reachable: impl Fn(&str) -> bool,
) -> (ClusterState, Vec<String>) {
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
        if let Err(why) = authority.verify(name, entry) {
            refused.push(why);
            continue;
        }
        if entry.status == MemberStatus::Left && entry.signer() != Some(name.as_str()) {
            deferred.push((name, entry));
            continue;
        }
        match working.admit_entry(name, entry, &reachable) {
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
                    owners: Some(table.clone()),
                    ..ClusterState::default()
                });
                admitted.owners = Some(table.clone());
            }
            Err(why) => refused.push(why),
        }
    }
    for (name, entry) in deferred {
        match working.admit_entry(name, entry, &reachable) {
            Ok(()) => {
                admitted.members.insert(name.clone(), entry.clone());
            }
            Err(why) => refused.push(why),
        }
    }
    // Bucket settings come from operators through any member: taken when
    // a member set them and they keep 1 <= R, W <= N.
    for (bucket, props) in &theirs.buckets {
        let valid = props.r >= 1 && props.w >= 1 && props.r <= props.n && props.w <= props.n;
        if !ours.members.contains_key(&props.by) && !theirs.members.contains_key(&props.by) {
            refused.push(format!(
                "bucket {bucket}'s settings name {} as their setter, not a member",
                props.by
            ));
        } else if !valid {
            refused.push(format!("bucket {bucket}'s settings break 1 <= R, W <= N"));
        } else {
            admitted.buckets.insert(bucket.clone(), props.clone());
        }
    }
    (admitted, refused)
}

impl MemberEntry {
    /// What a proof signs: the member's name and every field but the proof.
    pub fn signed_bytes(&self, name: &str) -> Vec<u8> {
        let fields = (
            "dynamo member entry",
            name,
            self.version,
            &self.addr,
            self.status,
            self.ready_for,
        );
        postcard::to_allocvec(&fields).unwrap_or_default()
    }

    /// The node that signed this version, if any.
    pub fn signer(&self) -> Option<&str> {
        self.proof.as_ref().map(|p| p.signer.as_str())
    }

    /// The status as `dynamo status` shows it.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            MemberStatus::Joining => "joining",
            MemberStatus::Up => "up",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Removed => "removed",
        }
    }
}

/// The partition owners, versioned as one value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OwnerTable {
    /// Increased with every ownership change.
    pub version: u64,
    /// `owners[p]` owns partition `p`.
    pub owners: Vec<String>,
    /// The target of a membership change in progress, if any.
    pub next: Option<Vec<String>>,
}

/// A bucket's own N, R and W, as an operator last set them
/// (`dynamo bucket set`, `PUT /buckets/{b}/props`). A bucket with no entry
/// has the cluster's. Versions order the settings: the higher `version`
/// wins, then the setter's name, so every node ends with the same one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BucketProps {
    /// One more than the version it replaced.
    pub version: u64,
    /// The node that took the setting from the operator.
    pub by: String,
    /// Replicas per key.
    pub n: u8,
    /// Replies a get waits for.
    pub r: u8,
    /// Acknowledgements a put waits for.
    pub w: u8,
}

/// What one node believes about the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClusterState {
    /// Every member ever known, by name.
    pub members: BTreeMap<String, MemberEntry>,
    /// Who owns which partition.
    pub owners: Option<OwnerTable>,
    /// Buckets with their own N, R and W, by name.
    pub buckets: BTreeMap<String, BucketProps>,
}

impl ClusterState {
    /// Merges `other` into `self`; returns whether anything changed.
    pub fn merge(&mut self, other: &ClusterState) -> bool {
        let mut changed = false;
        for (name, theirs) in &other.members {
            match self.members.get(name) {
                Some(ours) if newer_or_equal(ours, theirs) => {}
                _ => {
                    self.members.insert(name.clone(), theirs.clone());
                    changed = true;
                }
            }
        }
        match (&self.owners, &other.owners) {
            (_, None) => {}
            (Some(ours), Some(theirs)) if (ours.version, ours) >= (theirs.version, theirs) => {}
            (_, Some(theirs)) => {
                self.owners = Some(theirs.clone());
                changed = true;
            }
        }
        for (name, theirs) in &other.buckets {
            if self.buckets.get(name).is_none_or(|ours| ours < theirs) {
                self.buckets.insert(name.clone(), theirs.clone());
                changed = true;
            }
        }
        changed
    }

    /// The state of a cluster starting with `members` (name, address),
    /// all up, and these owners.
    pub fn bootstrap(members: &[(String, String)], owners: Vec<String>) -> Self {
        let mut state = ClusterState::default();
        for (name, addr) in members {
            state.set_member(name, addr, MemberStatus::Up);
        }
        state.owners = Some(OwnerTable {
            version: 1,
            owners,
            next: None,
        });
        state
    }

    /// Sets a member's address and status, with a version above any seen.
    pub fn set_member(&mut self, name: &str, addr: &str, status: MemberStatus) {
        let ready_for = self.members.get(name).map_or(0, |e| e.ready_for);
        self.update_member(name, addr, status, ready_for);
    }

    /// Sets a known member's status, keeping its address (nothing for a
    /// stranger).
    pub fn set_status(&mut self, name: &str, status: MemberStatus) {
        if let Some(e) = self.members.get(name).cloned() {
            self.update_member(name, &e.addr, status, e.ready_for);
        }
    }

    /// Records that `name` holds the incoming partitions of table `version`.
    pub fn set_ready(&mut self, name: &str, version: u64) {
        if let Some(e) = self.members.get(name).cloned() {
            self.update_member(name, &e.addr, e.status, version);
        }
    }

    fn update_member(&mut self, name: &str, addr: &str, status: MemberStatus, ready_for: u64) {
        let version = self.members.get(name).map_or(1, |e| e.version + 1);
        self.members.insert(
            name.to_string(),
            MemberEntry {
                version,
                addr: addr.to_string(),
                status,
                ready_for,
                proof: None,
            },
        );
    }

    /// Replaces the owner table, with a version above the current one.
    pub fn set_owners(&mut self, owners: Vec<String>) {
        let version = self.owners.as_ref().map_or(1, |t| t.version + 1);
        self.owners = Some(OwnerTable {
            version,
            owners,
            next: None,
        });
    }

    /// The owner table's version (0 before there is one).
    pub fn owners_version(&self) -> u64 {
        self.owners.as_ref().map_or(0, |t| t.version)
    }

    /// The member's status, if it is known.
    pub fn status_of(&self, name: &str) -> Option<MemberStatus> {
        self.members.get(name).map(|e| e.status)
    }

    /// The ring in force: the current owners over every member not gone
    /// (a joining member is a fallback before it owns anything).
    pub fn ring(&self) -> Result<Ring, RingError> {
        let table = self.owners.as_ref().ok_or(RingError::BadOwners)?;
        Ring::from_owners(&self.ring_members(&table.owners), &table.owners)
    }

    /// The ring a change in progress leads to.
    pub fn next_ring(&self) -> Option<Result<Ring, RingError>> {
        let next = self.owners.as_ref()?.next.as_ref()?;
        Some(Ring::from_owners(&self.ring_members(next), next))
    }

    fn ring_members(&self, owners: &[String]) -> Vec<String> {
        let mut names: Vec<String> = self.live_members().map(|(n, _)| n.clone()).collect();
        for owner in owners {
            if !names.contains(owner) {
                names.push(owner.clone());
            }
        }
        names
    }

    /// The change to propose now, if none is in progress: the target owner
    /// table without every removed member that still owns partitions; else
    /// for the first joining member that owns nothing; else for the first
    /// leaving member that still owns partitions.
    pub fn proposal(&self, n: usize) -> Option<Vec<String>> {
        self.proposals(n).into_iter().next()
    }

    /// The member that proposes and installs changes, as `me` sees it: the
    /// first member, by name, that is up and that `me` can reach (`me`
    /// itself included). One claimant keeps two members from proposing at
    /// once from different knowledge, which would fork the owner table
    /// (readiness is per version, not per target); a claimant that cannot
    /// be reached hands the role to the next.
    pub fn claimant<'a>(&'a self, me: &str, reachable: impl Fn(&str) -> bool) -> Option<&'a str> {
        self.members
            .iter()
            .find(|(name, e)| e.status == MemberStatus::Up && (*name == me || reachable(name)))
            .map(|(name, _)| name.as_str())
    }

    /// Every change a member could propose now, in the order
    /// [`ClusterState::proposal`] prefers them: removing every removed (or
    /// left) member that owns partitions, adding a joining (or up) member
    /// that owns nothing, removing a leaving member that owns partitions.
    /// The parenthesised cases arise only when two branches of the owner
    /// table met (see [`ClusterState::admit_owners`]). A member
    /// that has not heard of a removal or a join yet proposes one of the
    /// later ones, so a node judging a proposal it hears by gossip accepts
    /// any of them (`admit_owners`).
    pub fn proposals(&self, n: usize) -> Vec<Vec<String>> {
        let Some(table) = self.owners.as_ref() else {
            return Vec::new();
        };
        if table.next.is_some() {
            return Vec::new();
        }
        let mut owner_names: Vec<String> = table.owners.clone();
        owner_names.sort();
        owner_names.dedup();
        let Ok(current) = Ring::from_owners(&owner_names, &table.owners) else {
            return Vec::new();
        };
        let owns = |name: &str| table.owners.iter().any(|o| o == name);
        let with_status = |status: MemberStatus| {
            self.members
                .iter()
                .filter(move |(_, e)| e.status == status)
                .map(|(name, _)| name.as_str())
        };
        let mut targets = Vec::new();
        // Removed members first, all at once: any other plan made over
        // owners that include them would give them partitions and be
        // abandoned again. A member that left and still owns partitions
        // (a table from another branch named it after it was marked left)
        // is gone as well.
        let removed: Vec<&str> = with_status(MemberStatus::Removed)
            .chain(with_status(MemberStatus::Left))
            .filter(|name| owns(name))
            .collect();
        if !removed.is_empty() {
            let mut ring = Some(current.clone());
            for name in removed {
                ring = ring.and_then(|r| plan_remove(&r, name, n).ok().map(|p| p.after));
            }
            targets.extend(ring.map(|r| r.owner_table()));
        }
        // A joining member that owns nothing yet; or one up that owns
        // nothing, which a table from another branch took its partitions
        // from after it had marked itself up.
        let unowned_up = with_status(MemberStatus::Up);
        for name in with_status(MemberStatus::Joining)
            .chain(unowned_up)
            .filter(|name| !owns(name))
        {
            targets.extend(
                plan_add(&current, name, n)
                    .ok()
                    .map(|p| p.after.owner_table()),
            );
        }
        for name in with_status(MemberStatus::Leaving).filter(|name| owns(name)) {
            targets.extend(
                plan_remove(&current, name, n)
                    .ok()
                    .map(|p| p.after.owner_table()),
            );
        }
        targets
    }

    /// Starts a change towards `target` (a new table version).
    pub fn propose(&mut self, target: Vec<String>) {
        if let Some(table) = &self.owners {
            self.owners = Some(OwnerTable {
                version: table.version + 1,
                owners: table.owners.clone(),
                next: Some(target),
            });
        }
    }

    /// Whether every member that the change in progress gives partitions
    /// it does not replicate now has pulled them.
    pub fn ready_to_install(&self, n: usize) -> bool {
        let Some(table) = &self.owners else {
            return false;
        };
        if table.next.is_none() {
            return false;
        }
        let (Ok(current), Some(Ok(next))) = (self.ring(), self.next_ring()) else {
            return false;
        };
        let ns = self.replica_counts(n, current.members().len());
        self.live_members().all(|(name, e)| {
            e.ready_for >= table.version || incoming_for(&current, &next, &ns, name).is_empty()
        })
    }

    /// The replica counts keys have: `n` (the cluster's) and every
    /// bucket's own, each at most `members` (the ring's); sorted, each once.
    pub fn replica_counts(&self, n: usize, members: usize) -> Vec<usize> {
        let members = members.max(1);
        let mut ns: Vec<usize> = std::iter::once(n)
            .chain(self.buckets.values().map(|b| usize::from(b.n)))
            .map(|v| v.min(members))
            .collect();
        ns.sort_unstable();
        ns.dedup();
        ns
    }

    /// Whether the change in progress must be abandoned: its target gives
    /// partitions to a member that is being removed or gone (a joining
    /// node that died for good before it was installed).
    pub fn must_abort(&self) -> bool {
        let Some(next) = self.owners.as_ref().and_then(|t| t.next.as_ref()) else {
            return false;
        };
        next.iter().any(|owner| {
            matches!(
                self.status_of(owner),
                Some(MemberStatus::Removed | MemberStatus::Left)
            )
        })
    }

    /// Abandons the change in progress: the current owners stay (a new
    /// table version without a target).
    pub fn abort(&mut self) {
        if let Some(table) = &self.owners {
            self.owners = Some(OwnerTable {
                version: table.version + 1,
                owners: table.owners.clone(),
                next: None,
            });
        }
    }

    /// Removed members that own nothing and no change is in progress: any
    /// node may now mark them left.
    pub fn removals_done(&self) -> Vec<String> {
        let Some(table) = &self.owners else {
            return Vec::new();
        };
        if table.next.is_some() {
            return Vec::new();
        }
        self.members
            .iter()
            .filter(|(name, e)| {
                e.status == MemberStatus::Removed && !table.owners.iter().any(|o| o == *name)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Makes the change in progress the owners (a new table version).
    pub fn install(&mut self) {
        if let Some(table) = &self.owners {
            if let Some(next) = &table.next {
                self.owners = Some(OwnerTable {
                    version: table.version + 1,
                    owners: next.clone(),
                    next: None,
                });
            }
        }
    }
    /// Whether a member entry heard by gossip may be taken in. Gossip relays
    /// entries, so the sender of an entry is the node that signed it (the
    /// caller has checked the signature against the cluster CA), and a node
    /// speaks only for itself: an entry signed by its own member is taken
    /// in; another node may only mark a member *removed* (`dynamo leave
    /// --force` of a node lost for good, which must not answer here
    /// either) or *left* (the removal done; taken as the removal by a node
    /// that missed it). `reachable` is this node's view (failure detector
    /// and partition).
    pub fn admit_entry(
        &self,
        name: &str,
        theirs: &MemberEntry,
        reachable: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        let Some(signer) = theirs.signer() else {
            return Err(format!(
                "version {} of {name}'s entry is signed by nobody",
                theirs.version
            ));
        };
        if signer == name {
            return Ok(());
        }
        let refuse = |why: &str| Err(format!("{signer} may not mark {name} {why}"));
        match theirs.status {
            MemberStatus::Removed if reachable(name) => refuse("removed: it answers here"),
            MemberStatus::Removed => Ok(()),
            MemberStatus::Left if reachable(name) => refuse("left: it answers here"),
            // Marked left by another, it was removed first; a node that
            // missed the removal may still give it partitions, and takes
            // this as the removal (a change towards it is abandoned, its
            // partitions move as a removed member's). Refusing would leave
            // this node on its own branch for good.
            MemberStatus::Left => Ok(()),
            _ => refuse(&format!(
                "{}: a node speaks only for itself",
                theirs.status_name()
            )),
        }
    }

    /// Whether an owner table heard by gossip may replace ours. A table one
    /// version ahead that installs our change in progress is taken only
    /// once [`ClusterState::ready_to_install`] holds here (its member
    /// entries already taken in): installing before every member pulled
    /// would make data unreachable. Any other newer table (a step this node
    /// missed, or a step on another branch, when two members each deemed
    /// themselves the claimant and proposed at once) cannot be replayed, so
    /// it must look like one the protocol makes: every owner a member (one
    /// that left is removed next), every owner's share within one partition
    /// of every other's (ring plans keep that), not everything to one
    /// member while others are up, and a target in progress equal to a
    /// proposal from its owners. The greatest table wins everywhere, so
    /// branches end. A table that is not newer is no change and passes.
    pub fn admit_owners(&self, theirs: &OwnerTable, n: usize) -> Result<(), String> {
        let ours = self.owners.as_ref();
        if ours.is_some_and(|o| (o.version, o) >= (theirs.version, theirs)) {
            return Ok(());
        }
        if let Some(o) = ours {
            if theirs.owners.len() != o.owners.len()
                || theirs
                    .next
                    .as_ref()
                    .is_some_and(|t| t.len() != o.owners.len())
            {
                return Err(format!(
                    "owner table version {} has another number of partitions",
                    theirs.version
                ));
            }
        }
        for owner in theirs.owners.iter().chain(theirs.next.iter().flatten()) {
            // A member that left may still be named by a table made on
            // another branch before it left; the protocol removes it next.
            if self.status_of(owner).is_none() {
                return Err(format!("owner table names {owner}, who is not a member"));
            }
        }
        if let Some(o) = ours.filter(|o| theirs.version == o.version + 1) {
            let installs_ours = o.next.as_ref() == Some(&theirs.owners) && theirs.next.is_none();
            if installs_ours && !self.ready_to_install(n) {
                return Err(format!(
                    "owner table version {} installs the change in progress before every \
                     member pulled its partitions",
                    theirs.version
                ));
            }
            let proposed = o.next.is_none()
                && theirs.owners == o.owners
                && theirs
                    .next
                    .as_ref()
                    .is_some_and(|t| self.proposals(n).contains(t));
            let aborted = o.next.is_some()
                && theirs.owners == o.owners
                && theirs.next.is_none()
                && self.must_abort();
            if proposed || installs_ours || aborted {
                return Ok(());
            }
        }
        // Not the step this node would take next: a step it missed, or one
        // on another branch (two members proposed at once, each deeming
        // itself the claimant); the greatest table wins everywhere.
        if !balanced(&theirs.owners) || !theirs.next.as_deref().is_none_or(balanced) {
            return Err(format!(
                "owner table version {} is not balanced as ring plans make it",
                theirs.version
            ));
        }
        // Ring plans give every member that is up a share; a table that
        // gives everything to one member while others are up is a forgery.
        // (A stricter count would refuse real tables: while members leave,
        // are lost and join at once, a plan may have fewer than N owners.)
        let up = self
            .members
            .values()
            .filter(|e| e.status == MemberStatus::Up)
            .count();
        let distinct = |owners: &[String]| owners.iter().collect::<BTreeSet<_>>().len();
        let enough = up.min(2);
        if distinct(&theirs.owners) < enough
            || theirs.next.as_deref().is_some_and(|t| distinct(t) < enough)
        {
            return Err(format!(
                "owner table version {} gives every partition to fewer than {enough} members",
                theirs.version
            ));
        }
        if let Some(target) = &theirs.next {
            let mut base = self.clone();
            base.owners = Some(OwnerTable {
                version: theirs.version.saturating_sub(1),
                owners: theirs.owners.clone(),
                next: None,
            });
            if !base.proposals(n).contains(target) {
                return Err(format!(
                    "owner table version {} moves towards a target the membership \
                     protocol does not propose",
                    theirs.version
                ));
            }
        }
        Ok(())
    }

    /// Members that are not gone, by name.
    pub fn live_members(&self) -> impl Iterator<Item = (&String, &MemberEntry)> {
        self.members
            .iter()
            .filter(|(_, e)| e.status != MemberStatus::Left)
    }

    /// A short digest to compare states cheaply before exchanging them.
    pub fn digest(&self) -> [u8; 32] {
        let bytes = postcard::to_allocvec(self).unwrap_or_default();
        *blake3::hash(&bytes).as_bytes()
    }
}

/// The partitions `member` replicates under `next` but not under `current`
/// (what it must pull before `next` is installed).
pub fn incoming(current: &Ring, next: &Ring, n: usize, member: &str) -> Vec<PartitionId> {
    incoming_for(current, next, &[n], member)
}

/// [`incoming`] for keys of several replica counts (the cluster's N and
/// each bucket's own): a partition is incoming when the member gains it
/// for any of them.
pub fn incoming_for(current: &Ring, next: &Ring, ns: &[usize], member: &str) -> Vec<PartitionId> {
    (0..next.partitions())
        .filter(|&p| {
            ns.iter().any(|&n| {
                next.preference_list(p, n).contains(&member)
                    && !current.preference_list(p, n).contains(&member)
            })
        })
        .collect()
}

/// Whether every owner of `owners` owns within one partition as many as
/// every other (what ring plans and the first ring make).
fn balanced(owners: &[String]) -> bool {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for owner in owners {
        *counts.entry(owner.as_str()).or_default() += 1;
    }
    let (min, max) = (counts.values().min(), counts.values().max());
    matches!((min, max), (Some(a), Some(b)) if b - a <= 1)
}

/// Whether `theirs` would not change `ours` in a merge.
pub fn newer_or_equal(ours: &MemberEntry, theirs: &MemberEntry) -> bool {
    (ours.version, ours) >= (theirs.version, theirs)
}

/// A small deterministic generator for the gossip simulation (xorshift64*).
#[derive(Debug, Clone)]
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

/// Simulates push-pull gossip in a cluster of `nodes` in which one node
/// learns of a change: each round every node exchanges states with one peer
/// chosen at random. Returns the rounds until every node knows the change.
pub fn rounds_to_converge(nodes: usize, seed: u64) -> u32 {
    if nodes <= 1 {
        return 0;
    }
    let mut rng = Xorshift(seed | 1);
    let mut informed = vec![false; nodes];
    informed[0] = true;
    let mut count = 1;
    let mut rounds = 0;
    while count < nodes {
        rounds += 1;
        let before = informed.clone();
        for node in 0..nodes {
            let mut peer = rng.below(nodes - 1);
            if peer >= node {
                peer += 1;
            }
            if before[node] || before[peer] {
                for n in [node, peer] {
                    if !informed[n] {
                        informed[n] = true;
                        count += 1;
                    }
                }
            }
        }
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state(
        entries: &[(&str, u64, MemberStatus)],
        owners: Option<(u64, &[&str])>,
    ) -> ClusterState {
        ClusterState {
            members: entries
                .iter()
                .map(|(n, v, s)| {
                    (
                        n.to_string(),
                        MemberEntry {
                            version: *v,
                            addr: format!("127.0.0.1:{v}"),
                            status: *s,
                            ready_for: 0,
                            proof: None,
                        },
                    )
                })
                .collect(),
            owners: owners.map(|(version, o)| OwnerTable {
                version,
                owners: o.iter().map(|s| s.to_string()).collect(),
                next: None,
            }),
            buckets: BTreeMap::new(),
        }
    }

    #[test]
    fn higher_versions_win_and_merge_reports_change() {
        let mut a = state(
            &[
                ("n1", 1, MemberStatus::Up),
                ("n2", 3, MemberStatus::Leaving),
            ],
            Some((1, &["n1", "n2"])),
        );
        let b = state(
            &[
                ("n1", 2, MemberStatus::Leaving),
                ("n2", 2, MemberStatus::Up),
                ("n3", 1, MemberStatus::Joining),
            ],
            Some((2, &["n1", "n1"])),
        );
        assert!(a.merge(&b));
        assert_eq!(a.members["n1"].status, MemberStatus::Leaving);
        assert_eq!(
            a.members["n2"].status,
            MemberStatus::Leaving,
            "n2 version 3 stays"
        );
        assert_eq!(a.members["n3"].status, MemberStatus::Joining);
        assert_eq!(a.owners.as_ref().map(|t| t.version), Some(2));
        assert!(!a.clone().merge(&b), "merging again changes nothing");
    }

    #[test]
    fn gossip_reaches_everyone_in_logarithmic_rounds() {
        for (nodes, max) in [(5, 8), (50, 12), (500, 16), (5000, 20)] {
            let rounds: Vec<u32> = (1..=5)
                .map(|seed| rounds_to_converge(nodes, seed))
                .collect();
            assert!(
                rounds.iter().all(|&r| r <= max),
                "{nodes} nodes took {rounds:?} rounds"
            );
        }
    }

    fn five_nodes() -> ClusterState {
        let members: Vec<(String, String)> = (1..=5)
            .map(|i| (format!("n{i}"), format!("127.0.0.1:{i}")))
            .collect();
        let names: Vec<String> = members.iter().map(|(n, _)| n.clone()).collect();
        let ring = Ring::new(&names, 64).expect("ring");
        ClusterState::bootstrap(&members, ring.owner_table())
    }

    /// Runs the change in progress to its end: every member with incoming
    /// partitions reports ready, then the target is installed.
    fn complete(state: &mut ClusterState, n: usize) {
        let version = state.owners_version();
        let current = state.ring().expect("ring");
        let next = state.next_ring().expect("a change").expect("ring");
        let names: Vec<String> = state.live_members().map(|(m, _)| m.clone()).collect();
        for name in names {
            if !incoming(&current, &next, n, &name).is_empty() {
                assert!(!state.ready_to_install(n), "{name} has not pulled yet");
                state.set_ready(&name, version);
            }
        }
        assert!(state.ready_to_install(n));
        state.install();
    }

    #[test]
    fn a_join_is_proposed_transferred_and_installed_as_ring_plan_says() {
        let mut state = five_nodes();
        assert_eq!(state.proposal(3), None, "nothing to change");
        state.set_member("n6", "127.0.0.1:6", MemberStatus::Joining);
        let ring = state.ring().expect("ring");
        assert_eq!(ring.owned_by("n6"), 0, "a joining member owns nothing yet");
        assert!(ring.members().contains(&"n6".to_string()));
        let target = state.proposal(3).expect("a proposal");
        let old: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let plan = plan_add(&Ring::new(&old, 64).expect("ring"), "n6", 3).expect("plan");
        assert_eq!(
            target,
            plan.after.owner_table(),
            "the proposal is exactly `ring plan --add`"
        );
        state.propose(target.clone());
        assert_eq!(state.proposal(3), None, "one change at a time");
        assert!(!state.ready_to_install(3));
        let next = state.next_ring().expect("change").expect("ring");
        assert!(!incoming(&ring, &next, 3, "n6").is_empty());
        complete(&mut state, 3);
        let after = state.ring().expect("ring");
        assert_eq!(after.owned_by("n6"), 10);
        assert!(state.owners.as_ref().is_some_and(|t| t.next.is_none()));
    }

    #[test]
    fn a_leave_moves_every_partition_away() {
        let mut state = five_nodes();
        state.set_member("n3", "127.0.0.1:3", MemberStatus::Leaving);
        let target = state.proposal(3).expect("a proposal");
        assert!(!target.iter().any(|o| o == "n3"));
        state.propose(target);
        complete(&mut state, 3);
        let ring = state.ring().expect("ring");
        assert_eq!(ring.owned_by("n3"), 0);
        assert_eq!(
            state.proposal(3),
            None,
            "n3 owns nothing: nothing more to do"
        );
        state.set_member("n3", "127.0.0.1:3", MemberStatus::Left);
        assert!(!state
            .ring()
            .expect("ring")
            .members()
            .contains(&"n3".to_string()));
    }

    #[test]
    fn a_dead_member_is_removed_by_the_others() {
        let mut state = five_nodes();
        state.set_member("n2", "127.0.0.1:2", MemberStatus::Removed);
        assert!(state.removals_done().is_empty(), "n2 still owns partitions");
        let target = state.proposal(3).expect("a proposal");
        assert!(!target.iter().any(|o| o == "n2"));
        state.propose(target);
        assert!(!state.must_abort());
        complete(&mut state, 3);
        assert_eq!(state.removals_done(), vec!["n2".to_string()]);
        state.set_member("n2", "127.0.0.1:2", MemberStatus::Left);
        assert!(state.removals_done().is_empty());
        assert!(!state
            .ring()
            .expect("ring")
            .members()
            .contains(&"n2".to_string()));
    }

    #[test]
    fn a_join_whose_node_is_removed_is_abandoned() {
        let mut state = five_nodes();
        state.set_member("n6", "127.0.0.1:6", MemberStatus::Joining);
        let before = state.ring().expect("ring");
        state.propose(state.proposal(3).expect("a proposal"));
        assert!(!state.must_abort());
        state.set_member("n6", "127.0.0.1:6", MemberStatus::Removed);
        assert!(state.must_abort());
        let version = state.owners_version();
        state.abort();
        assert_eq!(state.owners_version(), version + 1);
        assert!(!state.must_abort());
        let after = state.ring().expect("ring");
        for p in 0..64 {
            assert_eq!(
                after.owner(p),
                before.owner(p),
                "partition {p} kept its owner"
            );
        }
        assert_eq!(
            state.proposal(3),
            None,
            "a removed joiner is not proposed again"
        );
        assert_eq!(state.removals_done(), vec!["n6".to_string()]);
    }

    /// Runs the node's order of steps (abort, mark removals done, propose,
    /// complete the change) until nothing is left to do; the steps taken.
    fn settle(state: &mut ClusterState, n: usize) -> usize {
        for step in 0..100 {
            let before = state.clone();
            settle_step(state, n);
            // Every step any node takes is one every other node takes in.
            if state.owners != before.owners {
                let mut judge = state.clone();
                judge.owners = before.owners.clone();
                let table = state.owners.clone().expect("owners");
                assert_eq!(judge.admit_owners(&table, n), Ok(()), "step {step}");
            }
            if *state == before {
                return step;
            }
        }
        panic!("membership does not settle: {state:?}");
    }

    /// One step of [`settle`]; changes nothing when nothing is left to do.
    fn settle_step(state: &mut ClusterState, n: usize) {
        {
            if state.must_abort() {
                state.abort();
            } else if let Some(gone) = state.removals_done().first() {
                let addr = state.members[gone].addr.clone();
                state.set_member(gone, &addr, MemberStatus::Left);
            } else if let Some(target) = state.proposal(n) {
                state.propose(target);
            } else if state.next_ring().is_some() {
                complete(state, n);
            }
        }
    }

    #[test]
    fn members_removed_during_a_join_and_a_leave_settle() {
        let mut state = five_nodes();
        state.set_member("n6", "127.0.0.1:6", MemberStatus::Joining);
        state.propose(state.proposal(3).expect("the join"));
        // While the join is pending: two owners die for good, one leaves.
        state.set_member("n4", "127.0.0.1:4", MemberStatus::Removed);
        state.set_member("n2", "127.0.0.1:2", MemberStatus::Removed);
        state.set_member("n1", "127.0.0.1:1", MemberStatus::Leaving);
        settle(&mut state, 3);
        let ring = state.ring().expect("ring");
        for gone in ["n1", "n2", "n4"] {
            assert_eq!(ring.owned_by(gone), 0, "{gone}");
        }
        assert_eq!(state.status_of("n2"), Some(MemberStatus::Left));
        assert_eq!(state.status_of("n4"), Some(MemberStatus::Left));
        for stays in ["n3", "n5", "n6"] {
            assert!(
                (21..=22).contains(&ring.owned_by(stays)),
                "{stays}: {}",
                ring.owned_by(stays)
            );
        }
    }

    /// `name`'s entry in `state`, marked as made by `signer` (the node
    /// driver checks real signatures; the rules only read the signer).
    fn made_by(state: &ClusterState, name: &str, signer: &str) -> MemberEntry {
        let mut entry = state.members[name].clone();
        entry.proof = Some(EntryProof {
            signer: signer.to_string(),
            cert: Vec::new(),
            signature: Vec::new(),
        });
        entry
    }

    #[test]
    fn admissible_takes_what_its_signers_may_say_and_names_the_rest() {
        let ours = five_nodes();
        let mut theirs = ours.clone();
        // n2 leaves by its own word; n3 is marked leaving by n4 (no node
        // speaks for another); n5's newer entry is signed by nobody.
        theirs.set_member("n2", "127.0.0.1:2", MemberStatus::Leaving);
        Unsigned.sign("n2", &mut theirs, "n2");
        theirs.set_member("n3", "127.0.0.1:3", MemberStatus::Leaving);
        Unsigned.sign("n4", &mut theirs, "n3");
        theirs.set_member("n5", "127.0.0.1:5", MemberStatus::Leaving);
        let (admitted, refused) = admissible(&ours, &theirs, 3, &Unsigned, |_| true);
        assert_eq!(
            admitted.members.keys().collect::<Vec<_>>(),
            ["n2"],
            "{refused:?}"
        );
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(refused.iter().any(|r| r.contains("n4 may not mark n3")));
        assert!(refused
            .iter()
            .any(|r| r.contains("n5's entry is signed by nobody")));
        // Merged, the state changes only by what was admitted.
        let mut merged = ours.clone();
        assert!(merged.merge(&admitted));
        assert_eq!(merged.status_of("n2"), Some(MemberStatus::Leaving));
        assert_eq!(merged.status_of("n3"), Some(MemberStatus::Up));
        assert_eq!(merged.status_of("n5"), Some(MemberStatus::Up));
    }

    #[test]
    fn a_node_speaks_only_for_itself() {
        let ours = five_nodes();
        let mut theirs = ours.clone();
        theirs.set_member("n2", "127.0.0.1:2", MemberStatus::Leaving);
        theirs.set_member("n9", "127.0.0.1:9", MemberStatus::Joining);
        let all_reachable = |_: &str| true;
        // Its own entry, from itself: taken in, whoever relays it.
        let own = made_by(&theirs, "n2", "n2");
        assert_eq!(ours.admit_entry("n2", &own, all_reachable), Ok(()));
        // The same change signed by another node, or by nobody: refused.
        let forged = made_by(&theirs, "n2", "n3");
        assert!(ours.admit_entry("n2", &forged, all_reachable).is_err());
        assert!(ours
            .admit_entry("n2", &theirs.members["n2"], all_reachable)
            .is_err());
        // A node with n2's certificate cannot bring in a member n9.
        let impostor = made_by(&theirs, "n9", "n2");
        let why = ours.admit_entry("n9", &impostor, all_reachable);
        assert!(
            why.as_ref()
                .is_err_and(|w| w.contains("speaks only for itself")),
            "{why:?}"
        );
        // Another node may mark a member removed only when it does not
        // answer here either, and left only once it owns nothing.
        theirs.set_member("n4", "127.0.0.1:4", MemberStatus::Removed);
        let removal = made_by(&theirs, "n4", "n1");
        assert!(ours.admit_entry("n4", &removal, all_reachable).is_err());
        assert_eq!(ours.admit_entry("n4", &removal, |p| p != "n4"), Ok(()));
        theirs.set_member("n4", "127.0.0.1:4", MemberStatus::Left);
        let gone = made_by(&theirs, "n4", "n1");
        assert!(
            ours.admit_entry("n4", &gone, all_reachable).is_err(),
            "n4 answers here: nobody may mark it left"
        );
        assert_eq!(
            ours.admit_entry("n4", &gone, |p| p != "n4"),
            Ok(()),
            "unreachable and marked left by another, n4 was removed (a removal this node missed)"
        );
        // Taken in, the protocol moves n4's partitions away as for a removal.
        let mut missed = ours.clone();
        missed.members.insert("n4".into(), gone.clone());
        settle(&mut missed, 3);
        assert_eq!(missed.ring().map(|r| r.owned_by("n4")), Ok(0));
        let mut without_n4 = ours.clone();
        without_n4.set_member("n4", "127.0.0.1:4", MemberStatus::Removed);
        settle(&mut without_n4, 3);
        let mut relisted = without_n4.clone();
        relisted.set_member("n4", "127.0.0.1:4", MemberStatus::Removed);
        assert_eq!(
            relisted.admit_entry("n4", &gone, |p| p != "n4"),
            Ok(()),
            "owning nothing, it may be marked left by anyone"
        );
    }

    #[test]
    fn a_proposal_made_without_knowing_an_earlier_join_is_admitted() {
        let n = 3;
        // The proposer has heard of n7's join only; the judge of n6's too,
        // so its own first choice would be n6.
        let mut proposer = five_nodes();
        proposer.set_member("n7", "127.0.0.1:7", MemberStatus::Joining);
        let mut judge = proposer.clone();
        judge.set_member("n6", "127.0.0.1:6", MemberStatus::Joining);
        let before = proposer.clone();
        let target = proposer.proposal(n).expect("a proposal");
        assert_ne!(judge.proposal(n).as_ref(), Some(&target));
        assert!(judge.proposals(n).contains(&target));
        proposer.propose(target);
        judge.owners = before.owners;
        let table = proposer.owners.clone().expect("owners");
        assert_eq!(judge.admit_owners(&table, n), Ok(()));
    }

    #[test]
    fn every_step_of_a_change_is_admitted_and_forgeries_are_not() {
        let n = 3;
        let mut state = five_nodes();
        state.set_member("n6", "127.0.0.1:6", MemberStatus::Joining);
        // Each step, as another node took it, is admitted by a node that
        // has the same member entries and the table before the step.
        let mut steps = 0;
        loop {
            let before = state.clone();
            if let Some(target) = state.proposal(n) {
                state.propose(target);
            } else if state.next_ring().is_some() {
                let version = state.owners_version();
                let (current, next) = (
                    state.ring().expect("ring"),
                    state.next_ring().expect("next").expect("ring"),
                );
                // Installing before everyone pulled is not a step.
                let mut early = state.clone();
                early.install();
                let early_table = early.owners.clone().expect("owners");
                assert!(state.admit_owners(&early_table, n).is_err());
                let names: Vec<String> = state.live_members().map(|(m, _)| m.clone()).collect();
                for name in names {
                    if !incoming(&current, &next, n, &name).is_empty() {
                        state.set_ready(&name, version);
                    }
                }
                state.install();
            } else {
                break;
            }
            steps += 1;
            let mut judge = state.clone();
            judge.owners = before.owners.clone();
            let table = state.owners.clone().expect("owners");
            assert_eq!(judge.admit_owners(&table, n), Ok(()), "step {steps}");
        }
        assert_eq!(steps, 2, "a join is proposed, then installed");
        // A table several steps ahead is judged by its shape.
        let mut behind = state.clone();
        behind.owners = five_nodes().owners;
        let table = state.owners.clone().expect("owners");
        assert_eq!(behind.admit_owners(&table, n), Ok(()));
        // Forgeries: everything to one node, a stranger as owner, and a
        // proposal the protocol would not make.
        let mut greedy = table.clone();
        greedy.version += 1;
        greedy.owners = vec!["n6".to_string(); table.owners.len()];
        assert!(state.admit_owners(&greedy, n).is_err());
        let mut stranger = table.clone();
        stranger.version += 5;
        stranger.owners[0] = "n9".into();
        assert!(state.admit_owners(&stranger, n).is_err());
        let mut bogus = table.clone();
        bogus.version += 1;
        let mut target = table.owners.clone();
        target.swap(0, 1);
        bogus.next = Some(target);
        assert!(state.admit_owners(&bogus, n).is_err());
        // Not newer: nothing to judge.
        assert_eq!(state.admit_owners(&table, n), Ok(()));
    }

    #[test]
    fn concurrent_proposals_are_the_same_table() {
        let mut a = five_nodes();
        a.set_member("n6", "127.0.0.1:6", MemberStatus::Joining);
        let mut b = a.clone();
        let target = a.proposal(3).expect("proposal");
        a.propose(target.clone());
        b.propose(b.proposal(3).expect("proposal"));
        assert_eq!(a, b);
        assert!(!a.merge(&b));
    }

    /// Two members that each deemed themselves the claimant proposed at
    /// once from different knowledge: a join on one side, a leave on the
    /// other. Each side takes the other's newer table (the greatest wins),
    /// and the protocol goes on from there to a table with the joiner in
    /// and the leaver out.
    #[test]
    fn branches_of_the_owner_table_meet_and_the_protocol_goes_on() {
        let n = 3;
        let mut join_side = five_nodes();
        join_side.set_member("n6", "127.0.0.1:6", MemberStatus::Joining);
        let mut leave_side = five_nodes();
        leave_side.set_member("n1", "127.0.0.1:1", MemberStatus::Leaving);
        join_side.propose(join_side.proposal(n).expect("the join"));
        complete(&mut join_side, n);
        leave_side.propose(leave_side.proposal(n).expect("the leave"));
        // Each hears the other: the entries merge, then the tables are judged.
        let mut entries = join_side.clone();
        entries.merge(&leave_side);
        let mut judge = entries.clone();
        judge.owners = leave_side.owners.clone();
        let theirs = join_side.owners.clone().expect("owners");
        assert_eq!(
            judge.admit_owners(&theirs, n),
            Ok(()),
            "a newer branch is taken in"
        );
        // Its own partitions given away by the other branch, the joiner marked
        // itself up: proposals still add it back.
        let mut state = entries;
        state.owners = Some(theirs);
        state.set_member("n6", "127.0.0.1:6", MemberStatus::Up);
        let mut lost_joiner = state.clone();
        let owners = leave_side.owners.clone().expect("owners");
        lost_joiner.owners = Some(OwnerTable {
            version: owners.version + 5,
            owners: owners.owners,
            next: None,
        });
        assert!(lost_joiner
            .proposals(n)
            .iter()
            .any(|t| t.iter().any(|o| o == "n6")));
        for _ in 0..4 {
            let Some(target) = state.proposal(n) else {
                break;
            };
            state.propose(target);
            complete(&mut state, n);
        }
        let ring = state.ring().expect("ring");
        assert!(ring.owned_by("n6") > 0 && ring.owned_by("n1") == 0);
    }

    fn arb_state() -> impl Strategy<Value = ClusterState> {
        let entry = (
            1u64..4,
            prop_oneof![
                Just(MemberStatus::Up),
                Just(MemberStatus::Leaving),
                Just(MemberStatus::Left)
            ],
        );
        (
            proptest::collection::btree_map(
                prop_oneof![Just("n1"), Just("n2"), Just("n3")],
                entry,
                0..3,
            ),
            proptest::option::of((
                1u64..3,
                proptest::collection::vec(prop_oneof![Just("n1"), Just("n2")], 2),
            )),
            proptest::collection::btree_map(
                prop_oneof![Just("carts"), Just("logs")],
                (1u64..3, prop_oneof![Just("n1"), Just("n2")], 1u8..4),
                0..2,
            ),
        )
            .prop_map(|(m, o, b)| ClusterState {
                members: m
                    .into_iter()
                    .map(|(n, (v, s))| {
                        (
                            n.to_string(),
                            MemberEntry {
                                version: v,
                                addr: format!("a{}", v % 2),
                                status: s,
                                ready_for: v / 2,
                                proof: None,
                            },
                        )
                    })
                    .collect(),
                owners: o.map(|(version, owners)| OwnerTable {
                    version,
                    owners: owners.into_iter().map(String::from).collect(),
                    next: (version % 2 == 0).then(|| vec!["n2".to_string(), "n1".to_string()]),
                }),
                buckets: b
                    .into_iter()
                    .map(|(name, (version, by, n))| {
                        let props = BucketProps {
                            version,
                            by: by.to_string(),
                            n,
                            r: 1,
                            w: n,
                        };
                        (name.to_string(), props)
                    })
                    .collect(),
            })
    }

    fn merged(a: &ClusterState, b: &ClusterState) -> ClusterState {
        let mut m = a.clone();
        m.merge(b);
        m
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_idempotent(a in arb_state(), b in arb_state(), c in arb_state()) {
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
            prop_assert_eq!(merged(&a, &a), a.clone());
        }
    }
}
