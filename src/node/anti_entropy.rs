//! Merkle anti-entropy (paper §4.7): one exchange compares this replica's
//! tree of a partition with a peer's, descends only where they differ
//! ([`DiffWalk`]), fetches the objects of the differing leaves, merges them
//! here (clock merge through the store's read-modify-write, never an
//! overwrite) and pushes to the peer what it lacks (`Replicate`).
//!
//! The exchange is written against [`Peer`], so the same code runs over
//! QUIC in the node and between two stores in one process (tests, the
//! repair measurement). Every message it sends and every answer it gets is
//! counted in encoded (postcard) bytes, the size of the frame body on the
//! wire, so the figures are the same either way.
//!
//! Rate limits (named constants below): a node runs one exchange at a time
//! ([`EXCHANGES_IN_FLIGHT`]), pauses [`PARTITION_PAUSE`] between partitions
//! and starts a background round every [`ROUND_INTERVAL`].

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::core::clock::Object;
use crate::core::key::ObjectKey;
use crate::core::merkle::{leaf_runs, DiffWalk, Digest, NodeId, LEAVES};
pub use crate::core::merkle::{LEAF_PAGE_BYTES, LEAF_PAGE_ENTRIES, RUN_LEAVES_MAX};
use crate::core::message::{Request, Response, MERKLE_NODES_MAX, REPLICATE_BATCH_MAX};
use crate::storage::{StorageError, Store};

/// Exchanges one node runs at once (background and `dynamo repair` share it).
pub const EXCHANGES_IN_FLIGHT: usize = 1;
/// Pause between two partitions of a background round.
pub const PARTITION_PAUSE: Duration = Duration::from_millis(200);
/// Time between the starts of two background rounds (the first one waits
/// this long after the node starts).
pub const ROUND_INTERVAL: Duration = Duration::from_secs(60);

/// The other side of an exchange.
pub trait Peer: Sync {
    /// Its name.
    fn name(&self) -> &str;
    /// Sends one request, answers its response (or why it failed).
    fn call(&self, request: Request) -> impl Future<Output = Result<Response, String>> + Send;
}

/// What one exchange did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    /// Leaves found to differ.
    pub differing_leaves: usize,
    /// Keys merged here that changed this replica.
    pub repaired_here: u64,
    /// Keys pushed to the peer because it lacked (part of) them.
    pub pushed: u64,
    /// Hashes asked for plus hashes received.
    pub hashes: u64,
    /// Round trips of the tree walk.
    pub walk_round_trips: u32,
    /// Encoded bytes of the requests sent.
    pub bytes_sent: u64,
    /// Encoded bytes of the answers received.
    pub bytes_received: u64,
}

fn encoded_len<T: Serialize>(msg: &T) -> u64 {
    postcard::to_allocvec(msg).map_or(0, |bytes| bytes.len() as u64)
}

/// Sends `request` to `peer`, counting bytes both ways.
async fn counted<P: Peer>(
    peer: &P,
    request: Request,
    report: &mut Exchange,
) -> Result<Response, String> {
    report.bytes_sent += encoded_len(&request);
    let response = peer.call(request).await?;
    report.bytes_received += encoded_len(&response);
    if let Response::Error(e) = &response {
        return Err(format!("{}: {}", peer.name(), e.message));
    }
    Ok(response)
}

/// Why an exchange stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The peer failed or answered something unexpected.
    #[error("{0}")]
    Peer(String),
    /// The local store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Which way an exchange moves objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both replicas end with the merge of both (anti-entropy, pulls).
    Both,
    /// Only the peer gains what it lacks; nothing is merged here (a node
    /// handing over a partition it no longer replicates).
    PushOnly,
}

/// One exchange of `partition` between `store` (this replica) and `peer`.
pub async fn exchange<P: Peer>(
    store: &Store<Object>,
    partition: u32,
    peer: &P,
) -> Result<Exchange, ExchangeError> {
    exchange_one_way(store, partition, peer, Direction::Both).await
}

/// [`exchange`], moving objects only the way `direction` says.
pub async fn exchange_one_way<P: Peer>(
    store: &Store<Object>,
    partition: u32,
    peer: &P,
    direction: Direction,
) -> Result<Exchange, ExchangeError> {
    let mut report = Exchange::default();
    let local = store.merkle_tree(partition).await?;
    let mut walk = DiffWalk::new();
    while !walk.done() {
        let mut asked = walk.wanted().to_vec();
        asked.truncate(MERKLE_NODES_MAX);
        report.hashes += asked.len() as u64;
        report.walk_round_trips += 1;
        let request = Request::MerkleHashes {
            partition,
            nodes: asked,
        };
        let remote = match counted(peer, request, &mut report).await {
            Ok(Response::MerkleHashes(h)) => h,
            Ok(other) => return Err(ExchangeError::Peer(unexpected(peer, &other))),
            Err(e) => return Err(ExchangeError::Peer(e)),
        };
        report.hashes += remote.len() as u64;
        walk.on_hashes(&local, &remote);
    }
    let leaves: Vec<u32> = walk.differing_leaves().map(|l| l as u32).collect();
    report.differing_leaves = leaves.len();
    for run in leaf_runs(&leaves) {
        let theirs = remote_leaf(peer, partition, run, &mut report).await?;
        let ours = local_run(store, partition, run).await?;
        // Theirs into ours: merge (all of the leaf at once, so the merges
        // share group commits), count a change.
        let mut merges = tokio::task::JoinSet::new();
        for (key, object) in &theirs {
            if direction == Direction::PushOnly || ours.get(key).is_some_and(|o| o.includes(object))
            {
                continue;
            }
            let (store, object, key) = (store.clone(), object.clone(), key.storage_key());
            merges.spawn(async move {
                store
                    .update(key, move |current: Option<Object>| {
                        let merged = match &current {
                            Some(c) => c.merge(&object),
                            None => object,
                        };
                        let changed = current.as_ref() != Some(&merged);
                        (Some(merged), changed)
                    })
                    .await
            });
        }
        while let Some(done) = merges.join_next().await {
            match done {
                Ok(Ok(true)) => report.repaired_here += 1,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(e) => return Err(ExchangeError::Peer(format!("a merge task failed: {e}"))),
            }
        }
        // Ours to them: whatever they lack, in batches.
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        let mut lacking = ours
            .into_iter()
            .filter(|(key, object)| !theirs.get(key).is_some_and(|t| t.includes(object)))
            .peekable();
        while let Some((key, object)) = lacking.next() {
            batch_bytes += object.value_bytes() + key.storage_key().len();
            batch.push((key, object));
            let full = batch.len() >= REPLICATE_BATCH_MAX || batch_bytes >= LEAF_PAGE_BYTES;
            if full || lacking.peek().is_none() {
                push(peer, std::mem::take(&mut batch), &mut report).await?;
                batch_bytes = 0;
            }
        }
    }
    Ok(report)
}

/// Sends the peer one batch of objects it lacks.
async fn push<P: Peer>(
    peer: &P,
    entries: Vec<(ObjectKey, Object)>,
    report: &mut Exchange,
) -> Result<(), ExchangeError> {
    let count = entries.len() as u64;
    match counted(peer, Request::ReplicateMany { entries }, report).await {
        Ok(Response::Replicated) => {
            report.pushed += count;
            Ok(())
        }
        Ok(other) => Err(ExchangeError::Peer(unexpected(peer, &other))),
        Err(e) => Err(ExchangeError::Peer(e)),
    }
}

fn unexpected<P: Peer>(peer: &P, response: &Response) -> String {
    format!("{} answered {response:?}", peer.name())
}

async fn remote_leaf<P: Peer>(
    peer: &P,
    partition: u32,
    (leaf, last_leaf): (u32, u32),
    report: &mut Exchange,
) -> Result<BTreeMap<ObjectKey, Object>, ExchangeError> {
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let request = Request::LeafObjects {
            partition,
            leaf,
            last_leaf,
            after,
        };
        match counted(peer, request, report).await {
            Ok(Response::LeafObjects { entries, next }) => {
                out.extend(entries);
                match next {
                    Some(n) => after = Some(n),
                    None => return Ok(out),
                }
            }
            Ok(other) => return Err(ExchangeError::Peer(unexpected(peer, &other))),
            Err(e) => return Err(ExchangeError::Peer(e)),
        }
    }
}

/// Every object this store holds in one leaf of a partition.
pub async fn local_leaf(
    store: &Store<Object>,
    partition: u32,
    leaf: u32,
) -> Result<BTreeMap<ObjectKey, Object>, StorageError> {
    local_run(store, partition, (leaf, leaf)).await
}

/// Every object this store holds in the leaves `first..=last` of a partition.
async fn local_run(
    store: &Store<Object>,
    partition: u32,
    leaves: (u32, u32),
) -> Result<BTreeMap<ObjectKey, Object>, StorageError> {
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store
            .leaf_run_entries(partition, leaves, after, LEAF_PAGE_ENTRIES, LEAF_PAGE_BYTES)
            .await?;
        for (key, object, _) in page.entries {
            if let Some(key) = ObjectKey::from_storage_key(&key) {
                out.insert(key, object);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Answers a peer's [`Request::MerkleHashes`].
pub async fn answer_hashes(
    store: &Store<Object>,
    partition: u32,
    nodes: &[NodeId],
) -> Result<Vec<(NodeId, Digest)>, StorageError> {
    let tree = store.merkle_tree(partition).await?;
    Ok(crate::core::merkle::answer(&tree, nodes))
}

/// Answers a [`Request::LeafObjects`]: one page of the run of leaves.
pub async fn answer_leaf(
    store: &Store<Object>,
    partition: u32,
    leaves: (u32, u32),
    after: Option<Vec<u8>>,
) -> Result<Response, StorageError> {
    let page = store
        .leaf_run_entries(partition, leaves, after, LEAF_PAGE_ENTRIES, LEAF_PAGE_BYTES)
        .await?;
    let entries = page
        .entries
        .into_iter()
        .filter_map(|(k, o, _)| ObjectKey::from_storage_key(&k).map(|k| (k, o)))
        .collect();
    Ok(Response::LeafObjects {
        entries,
        next: page.next,
    })
}

/// Whether a leaf index is inside the tree.
pub fn valid_leaf(leaf: u32) -> bool {
    (leaf as usize) < LEAVES
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::clock::{ReplicaId, VersionVector};
    use crate::core::merkle::DEPTH;

    /// The other replica as a store in this process, answering as a node would.
    struct LocalPeer {
        store: Store<Object>,
    }

    impl Peer for LocalPeer {
        fn name(&self) -> &str {
            "peer"
        }

        async fn call(&self, request: Request) -> Result<Response, String> {
            let store = &self.store;
            let result = match request {
                Request::MerkleHashes { partition, nodes } => {
                    answer_hashes(store, partition, &nodes)
                        .await
                        .map(Response::MerkleHashes)
                }
                Request::LeafObjects {
                    partition,
                    leaf,
                    last_leaf,
                    after,
                } => answer_leaf(store, partition, (leaf, last_leaf), after).await,
                Request::ReplicateMany { entries } => {
                    let mut result = Ok(Response::Replicated);
                    for (key, object) in entries {
                        if let Err(e) = store
                            .update(key.storage_key(), move |c: Option<Object>| {
                                (Some(c.map_or(object.clone(), |c| c.merge(&object))), ())
                            })
                            .await
                        {
                            result = Err(e);
                        }
                    }
                    result
                }
                other => return Err(format!("unexpected {other:?}")),
            };
            result.map_err(|e| e.to_string())
        }
    }

    fn key(i: u64) -> ObjectKey {
        ObjectKey::new("default", format!("key-{i}").as_bytes()).expect("key")
    }

    fn object(i: u64, replica: &ReplicaId) -> Object {
        Object::new()
            .update(
                &VersionVector::new(),
                Some(format!("v{i}").into_bytes()),
                replica,
            )
            .0
    }

    /// Writes keys `0..n` to both stores in batches (group commit).
    async fn fill(stores: &[&Store<Object>], n: u64, replica: &ReplicaId) {
        let mut batch = Vec::new();
        for i in 0..n {
            for store in stores {
                let (store, o) = ((*store).clone(), object(i, replica));
                batch.push(tokio::spawn(async move {
                    store
                        .update(key(i).storage_key(), move |_| (Some(o), ()))
                        .await
                }));
            }
            if batch.len() >= 2048 {
                for b in batch.drain(..) {
                    b.await.expect("join").expect("write");
                }
            }
        }
        for b in batch {
            b.await.expect("join").expect("write");
        }
    }

    /// Repairs every partition of `a` against `b` and returns the summed report.
    async fn repair_all(a: &Store<Object>, b: &LocalPeer) -> Exchange {
        let mut total = Exchange::default();
        for p in 0..a.layout().partitions() {
            let e = exchange(a, p, b).await.expect("exchange");
            total.differing_leaves += e.differing_leaves;
            total.repaired_here += e.repaired_here;
            total.pushed += e.pushed;
            total.hashes += e.hashes;
            total.walk_round_trips += e.walk_round_trips;
            total.bytes_sent += e.bytes_sent;
            total.bytes_received += e.bytes_received;
        }
        total
    }

    async fn roots(s: &Store<Object>) -> Vec<Digest> {
        let mut out = Vec::new();
        for p in 0..s.layout().partitions() {
            out.push(s.merkle_tree(p).await.expect("tree").root());
        }
        out
    }

    /// Two stores of `total` keys where `differ` keys are missing from `b`
    /// (and one more key exists only in `b`), repaired both ways.
    async fn diverged_pair(total: u64, differ: u64) -> (Store<Object>, LocalPeer) {
        let replica = ReplicaId::new("n1", 1);
        let a = Store::open_in_memory_with_partitions(64).expect("a");
        let b = Store::open_in_memory_with_partitions(64).expect("b");
        fill(&[&a, &b], total - differ, &replica).await;
        // The last `differ` keys only on a.
        let mut batch = Vec::new();
        for i in total - differ..total {
            let (s, o) = (a.clone(), object(i, &replica));
            batch.push(tokio::spawn(async move {
                s.update(key(i).storage_key(), move |_| (Some(o), ())).await
            }));
        }
        for t in batch {
            t.await.expect("join").expect("write");
        }
        (a, LocalPeer { store: b })
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn one_differing_key_among_100_000_costs_hashes_in_proportion_to_depth() {
        let (a, b) = diverged_pair(100_000, 1).await;
        assert_ne!(roots(&a).await, roots(&b.store).await);
        let total = repair_all(&a, &b).await;
        // 63 partitions agree at the root (one hash asked, one received);
        // the differing one walks root plus two per level, asked and received.
        let walk = 2 * (2 * DEPTH as u64 + 1);
        assert_eq!(total.hashes, 63 * 2 + walk, "{total:?}");
        assert_eq!(total.differing_leaves, 1);
        assert_eq!(total.pushed, 1);
        assert_eq!(total.repaired_here, 0);
        assert_eq!(roots(&a).await, roots(&b.store).await);
        // Bytes: the walk and one leaf of ~1.5 keys, not 100 000 keys.
        assert!(
            total.bytes_sent + total.bytes_received < 64 * 1024,
            "{total:?}"
        );
        println!(
            "1 differing key of 100 000: {} hashes, {} bytes sent, {} bytes received",
            total.hashes, total.bytes_sent, total.bytes_received
        );
        // A second pass finds nothing to do.
        let again = repair_all(&a, &b).await;
        assert_eq!(
            (again.pushed, again.repaired_here, again.hashes),
            (0, 0, 128)
        );
    }

    #[tokio::test]
    async fn an_exchange_merges_both_ways_and_keeps_siblings() {
        let (r1, r2) = (ReplicaId::new("n1", 1), ReplicaId::new("n2", 1));
        let a = Store::open_in_memory_with_partitions(4).expect("a");
        let b = LocalPeer {
            store: Store::open_in_memory_with_partitions(4).expect("b"),
        };
        // Concurrent writes of one key on each side, and one key per side only.
        let k = key(1);
        let (oa, ob) = (object(1, &r1), object(2, &r2));
        a.update(k.storage_key(), move |_| (Some(oa), ()))
            .await
            .expect("a");
        b.store
            .update(k.storage_key(), move |_| (Some(ob), ()))
            .await
            .expect("b");
        let (oa, ob) = (object(3, &r1), object(4, &r2));
        a.update(key(3).storage_key(), move |_| (Some(oa), ()))
            .await
            .expect("a");
        b.store
            .update(key(4).storage_key(), move |_| (Some(ob), ()))
            .await
            .expect("b");
        let p = crate::storage::MerkleLayout::new(4)
            .expect("layout")
            .locate(k.ring_position())
            .0;
        let _ = exchange(&a, p, &b).await.expect("exchange");
        let total = repair_all(&a, &b).await;
        assert_eq!(roots(&a).await, roots(&b.store).await, "{total:?}");
        let merged = a.get(&k.storage_key()).await.expect("get").expect("k");
        assert_eq!(
            merged.siblings().len(),
            2,
            "concurrent writes stay siblings"
        );
    }

    /// `cargo test --release --lib repair_figures -- --ignored --nocapture`:
    /// time and bytes to repair 1, 100 and 10 000 differing keys of 100 000
    /// between two stores (64 partitions, in-memory redb, no network).
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "measurement; run by hand"]
    async fn repair_figures() {
        for differ in [1u64, 100, 10_000] {
            let (a, b) = diverged_pair(100_000, differ).await;
            let started = std::time::Instant::now();
            let total = repair_all(&a, &b).await;
            let elapsed = started.elapsed();
            assert_eq!(roots(&a).await, roots(&b.store).await);
            assert_eq!(total.pushed, differ);
            println!(
                "{differ:>6} differing of 100 000: {:>8.1} ms, {} hashes, {} walk round trips, {} leaves, {} bytes sent, {} bytes received",
                elapsed.as_secs_f64() * 1000.0,
                total.hashes,
                total.walk_round_trips,
                total.differing_leaves,
                total.bytes_sent,
                total.bytes_received
            );
        }
    }
}
