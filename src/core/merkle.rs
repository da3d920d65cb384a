//! Merkle trees over one partition's keys, and the walk that finds where two
//! replicas differ (paper §4.7, anti-entropy).
//!
//! **Shape** (fixed; part of the wire contract): one binary tree per
//! partition, replica and [`TreeId`] with [`LEAVES`] = 1024 leaves, so [`DEPTH`] = 10
//! levels below the root. A key falls in the leaf given by the [`LEAF_BITS`]
//! bits of its ring position that follow the partition bits, so a leaf is a
//! contiguous key range of the partition.
//!
//! **Hashes**: BLAKE3, 32 bytes. An entry's hash is
//! `BLAKE3(len(key) as u32 BE ‖ key ‖ version digest)`, where the version
//! digest is a hash of the stored object (siblings and context), supplied by
//! the caller. A leaf's hash is the XOR of its entries' hashes, so a write
//! updates it in place with two XORs (the old entry out, the new one in):
//! no scan on any change, and the leaf table can be kept in the same
//! transaction as the object. An inner node is `BLAKE3(left ‖ right)`, except
//! that a node whose children are both zero is zero, so empty subtrees cost
//! nothing to compare.
//!
//! **Diff**: [`DiffWalk`] compares two trees level by level without either
//! side holding the other's tree: it asks for the hashes of the children of
//! nodes that differ and descends only there. Repairing one differing key
//! in a partition exchanges `2 × DEPTH + 1` hashes whatever the number of keys.

use std::collections::BTreeSet;

/// Bits of the ring position below the partition bits that pick the leaf.
pub const LEAF_BITS: u32 = 10;
/// Leaves per tree.
pub const LEAVES: usize = 1 << LEAF_BITS;
/// Levels below the root.
pub const DEPTH: u32 = LEAF_BITS;

/// Which of a partition's trees a key is in. A replica keeps one tree per
/// replica count its keys have, so that any two replicas of a key compare
/// the same key set: [`DEFAULT_TREE`] holds the keys of buckets with the
/// cluster's N, tree `n` those of buckets whose own N is `n`, held by the
/// first `n` nodes of the partition's preference list only.
pub type TreeId = u8;

/// The tree of the keys of buckets with the cluster's N (and of every store
/// written before buckets had their own N).
pub const DEFAULT_TREE: TreeId = 0;

/// A 32-byte hash.
pub type Digest = [u8; 32];

/// The all-zero hash of an empty leaf or subtree.
pub const EMPTY: Digest = [0; 32];

/// A node of the tree: its level (0 = root, [`DEPTH`] = leaves) and its
/// index within that level.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NodeId {
    /// 0 for the root, [`DEPTH`] for leaves.
    pub level: u32,
    /// `0..2^level`.
    pub index: u32,
}

impl NodeId {
    /// The root.
    pub const ROOT: NodeId = NodeId { level: 0, index: 0 };

    fn children(self) -> [NodeId; 2] {
        let level = self.level + 1;
        [
            NodeId {
                level,
                index: 2 * self.index,
            },
            NodeId {
                level,
                index: 2 * self.index + 1,
            },
        ]
    }

    /// Whether this is a leaf.
    pub fn is_leaf(self) -> bool {
        self.level == DEPTH
    }
}

/// The leaf of a key at ring `position` in a ring of `partitions` partitions
/// (a power of two).
pub fn leaf_of(position: u64, partitions: u32) -> usize {
    let partition_bits = partitions.trailing_zeros();
    let below = position.checked_shl(partition_bits).unwrap_or(0);
    (below >> (64 - LEAF_BITS)) as usize
}

/// The hash one stored entry contributes to its leaf.
pub fn entry_hash(key: &[u8], version: &Digest) -> Digest {
    let mut h = blake3::Hasher::new();
    h.update(&(key.len() as u32).to_be_bytes());
    h.update(key);
    h.update(version);
    *h.finalize().as_bytes()
}

fn xor_into(acc: &mut Digest, d: &Digest) {
    for (a, b) in acc.iter_mut().zip(d) {
        *a ^= b;
    }
}

fn inner_hash(left: &Digest, right: &Digest) -> Digest {
    if left == &EMPTY && right == &EMPTY {
        return EMPTY;
    }
    let mut h = blake3::Hasher::new();
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

/// One partition's tree on one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// `levels[l]` holds the `2^l` hashes of level `l`; `levels[DEPTH]` the leaves.
    levels: Vec<Vec<Digest>>,
}

impl Default for MerkleTree {
    fn default() -> Self {
        Self::new()
    }
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            levels: (0..=DEPTH).map(|l| vec![EMPTY; 1 << l]).collect(),
        }
    }

    /// A tree from its leaf hashes (as stored); `None` if there are not
    /// exactly [`LEAVES`] of them.
    pub fn from_leaves(leaves: Vec<Digest>) -> Option<Self> {
        if leaves.len() != LEAVES {
            return None;
        }
        let mut tree = Self::new();
        tree.levels[DEPTH as usize] = leaves;
        for level in (0..DEPTH as usize).rev() {
            for i in 0..(1 << level) {
                let below = &tree.levels[level + 1];
                tree.levels[level][i] = inner_hash(&below[2 * i], &below[2 * i + 1]);
            }
        }
        Some(tree)
    }

    /// Replaces an entry in leaf `leaf`: `old` is the entry hash it had (or
    /// `None` for a new key), `new` the one it has now (or `None` when the
    /// key is gone). Updates the path to the root.
    pub fn update(&mut self, leaf: usize, old: Option<&Digest>, new: Option<&Digest>) {
        let leaf = leaf % LEAVES;
        let slot = &mut self.levels[DEPTH as usize][leaf];
        if let Some(old) = old {
            xor_into(slot, old);
        }
        if let Some(new) = new {
            xor_into(slot, new);
        }
        let mut index = leaf;
        for level in (0..DEPTH as usize).rev() {
            index /= 2;
            let below = &self.levels[level + 1];
            let hash = inner_hash(&below[2 * index], &below[2 * index + 1]);
            self.levels[level][index] = hash;
        }
    }

    /// The root hash.
    pub fn root(&self) -> Digest {
        self.levels[0][0]
    }

    /// The hash of one node; [`EMPTY`] for a node outside the tree.
    pub fn hash(&self, node: NodeId) -> Digest {
        self.levels
            .get(node.level as usize)
            .and_then(|l| l.get(node.index as usize))
            .copied()
            .unwrap_or(EMPTY)
    }

    /// Every hash of one level, left to right.
    pub fn level(&self, level: u32) -> &[Digest] {
        self.levels
            .get(level as usize)
            .map_or(&[], |l| l.as_slice())
    }

    /// The leaf hashes, to store.
    pub fn leaves(&self) -> &[Digest] {
        &self.levels[DEPTH as usize]
    }
}

/// Finds the leaves where a local tree and a remote one differ, asking the
/// remote side only for the hashes it needs.
///
/// Start with [`DiffWalk::new`] and send [`DiffWalk::wanted`] to the peer;
/// feed its answer to [`DiffWalk::on_hashes`], which returns the next nodes
/// to ask for (children of differing inner nodes), until it returns none.
/// Then [`DiffWalk::differing_leaves`] lists the leaves whose keys to
/// exchange.
#[derive(Debug, Clone, Default)]
pub struct DiffWalk {
    wanted: Vec<NodeId>,
    differing_leaves: BTreeSet<u32>,
    hashes_received: usize,
}

impl DiffWalk {
    /// A walk that starts at the root.
    pub fn new() -> Self {
        Self {
            wanted: vec![NodeId::ROOT],
            ..Self::default()
        }
    }

    /// The nodes whose remote hashes are needed next.
    pub fn wanted(&self) -> &[NodeId] {
        &self.wanted
    }

    /// Compares the remote hashes of the wanted nodes with `local`; returns
    /// the nodes to ask for next. Hashes of nodes that were not asked for
    /// are ignored.
    pub fn on_hashes(&mut self, local: &MerkleTree, remote: &[(NodeId, Digest)]) -> Vec<NodeId> {
        let asked: BTreeSet<NodeId> = self.wanted.drain(..).collect();
        let mut next = Vec::new();
        for (node, hash) in remote {
            if !asked.contains(node) {
                continue;
            }
            self.hashes_received += 1;
            if local.hash(*node) == *hash {
                continue;
            }
            if node.is_leaf() {
                self.differing_leaves.insert(node.index);
            } else {
                next.extend(node.children());
            }
        }
        self.wanted = next.clone();
        next
    }

    /// Whether the walk is over.
    pub fn done(&self) -> bool {
        self.wanted.is_empty()
    }

    /// Leaves found to differ so far.
    pub fn differing_leaves(&self) -> impl Iterator<Item = usize> + '_ {
        self.differing_leaves.iter().map(|&l| l as usize)
    }

    /// Remote hashes compared so far.
    pub fn hashes_received(&self) -> usize {
        self.hashes_received
    }
}

/// The remote side of a walk: the hashes of the asked nodes (at most
/// `2^(DEPTH+1)` are meaningful; others answer [`EMPTY`]).
pub fn answer(tree: &MerkleTree, wanted: &[NodeId]) -> Vec<(NodeId, Digest)> {
    wanted.iter().map(|&n| (n, tree.hash(n))).collect()
}

/// Most leaves fetched as one run (a sixteenth of a partition: bounds the
/// objects an exchange holds in memory at once).
pub const RUN_LEAVES_MAX: u32 = 64;
/// Most entries of one leaf page.
pub const LEAF_PAGE_ENTRIES: usize = 1000;
/// Stored bytes after which a leaf page ends (objects are at most 6 MiB and
/// a frame 8 MiB, so a page just under this plus one big object still fits).
pub const LEAF_PAGE_BYTES: usize = 512 * 1024;

/// Consecutive leaves grouped into runs of at most [`RUN_LEAVES_MAX`], so
/// that one request fetches many neighbouring leaves (a replica that lacks
/// a whole partition differs in every leaf).
pub fn leaf_runs(leaves: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &leaf in leaves {
        match runs.last_mut() {
            Some((first, last)) if *last + 1 == leaf && leaf - *first < RUN_LEAVES_MAX => {
                *last = leaf
            }
            _ => runs.push((leaf, leaf)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_leaves_make_runs_of_bounded_length() {
        assert_eq!(leaf_runs(&[]), vec![]);
        assert_eq!(
            leaf_runs(&[3, 4, 5, 9, 11, 12]),
            vec![(3, 5), (9, 9), (11, 12)]
        );
        let all: Vec<u32> = (0..1024).collect();
        let runs = leaf_runs(&all);
        assert_eq!(runs.len(), 16);
        assert_eq!(runs[0], (0, 63));
        assert_eq!(runs[15], (960, 1023));
    }
    use proptest::prelude::*;

    fn version(v: u64) -> Digest {
        *blake3::hash(&v.to_be_bytes()).as_bytes()
    }

    fn key(i: u64) -> Vec<u8> {
        format!("key-{i}").into_bytes()
    }

    fn position(i: u64) -> u64 {
        u64::from_be_bytes(
            blake3::hash(&key(i)).as_bytes()[..8]
                .try_into()
                .unwrap_or([0; 8]),
        )
    }

    /// A tree over keys `0..n` of partition 0 of a 1-partition ring, key i at version v(i).
    fn tree(n: u64, v: impl Fn(u64) -> u64) -> MerkleTree {
        let mut t = MerkleTree::new();
        for i in 0..n {
            t.update(
                leaf_of(position(i), 1),
                None,
                Some(&entry_hash(&key(i), &version(v(i)))),
            );
        }
        t
    }

    fn walk(a: &MerkleTree, b: &MerkleTree) -> DiffWalk {
        let mut w = DiffWalk::new();
        while !w.done() {
            let remote = answer(b, w.wanted());
            w.on_hashes(a, &remote);
        }
        w
    }

    #[test]
    fn leaf_takes_the_bits_after_the_partition_bits() {
        assert_eq!(leaf_of(0, 64), 0);
        assert_eq!(leaf_of(u64::MAX, 64), LEAVES - 1);
        // Partition bits are ignored: the top 6 bits of 64 partitions.
        assert_eq!(leaf_of(0xfc00_0000_0000_0000, 64), 0);
        assert_eq!(leaf_of(0x0200_0000_0000_0000, 64), LEAVES / 2);
        assert_eq!(leaf_of(0x8000_0000_0000_0000, 1), LEAVES / 2);
    }

    #[test]
    fn empty_trees_agree_and_an_update_then_undo_restores_the_root() {
        let mut t = MerkleTree::new();
        assert_eq!(t.root(), EMPTY);
        let e = entry_hash(b"k", &version(1));
        t.update(7, None, Some(&e));
        assert_ne!(t.root(), EMPTY);
        t.update(7, Some(&e), None);
        assert_eq!(t, MerkleTree::new());
    }

    #[test]
    fn rebuilding_from_leaves_gives_the_same_tree() {
        let t = tree(500, |i| i);
        assert_eq!(MerkleTree::from_leaves(t.leaves().to_vec()), Some(t));
        assert_eq!(MerkleTree::from_leaves(vec![EMPTY; 3]), None);
    }

    #[test]
    fn one_differing_key_among_100_000_costs_hashes_in_proportion_to_depth() {
        let a = tree(100_000, |i| i);
        let b = tree(100_000, |i| if i == 4242 { 0 } else { i });
        let w = walk(&a, &b);
        let leaves: Vec<usize> = w.differing_leaves().collect();
        assert_eq!(leaves, vec![leaf_of(position(4242), 1)]);
        assert_eq!(
            w.hashes_received(),
            2 * DEPTH as usize + 1,
            "root plus two per level"
        );
    }

    #[test]
    fn identical_trees_cost_one_hash() {
        let a = tree(1000, |i| i);
        let w = walk(&a, &a.clone());
        assert_eq!(w.hashes_received(), 1);
        assert_eq!(w.differing_leaves().count(), 0);
    }

    proptest! {
        /// The walk finds exactly the leaves whose hashes differ, whatever
        /// the two key sets.
        #[test]
        fn walk_finds_exactly_the_differing_leaves(
            a in proptest::collection::btree_map(0u64..3000, 0u64..3, 0..200),
            b in proptest::collection::btree_map(0u64..3000, 0u64..3, 0..200),
        ) {
            let build = |m: &std::collections::BTreeMap<u64, u64>| {
                let mut t = MerkleTree::new();
                for (k, v) in m {
                    t.update(leaf_of(position(*k), 1), None, Some(&entry_hash(&key(*k), &version(*v))));
                }
                t
            };
            let (ta, tb) = (build(&a), build(&b));
            let want: Vec<usize> = (0..LEAVES).filter(|&l| ta.leaves()[l] != tb.leaves()[l]).collect();
            let w = walk(&ta, &tb);
            prop_assert_eq!(w.differing_leaves().collect::<Vec<_>>(), want);
            prop_assert_eq!(ta.root() == tb.root(), a == b || ta.leaves() == tb.leaves());
        }
    }
}
