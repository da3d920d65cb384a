//! The store's Merkle leaves (paper §4.7), kept in the same write
//! transaction as every object write, and the ring-order index that lets
//! one leaf's keys be read with a range scan.
//!
//! Tables:
//! - `merkle_leaves`: `(slot, leaf)` → the leaf's 32-byte hash
//!   ([`crate::core::merkle`]: XOR of its entries' hashes), where the slot
//!   is `partition | tree << 16` ([`tree_slot`]: one tree per partition and
//!   [`TreeId`], the key's bucket's replica count; the default tree's slot
//!   is the partition itself, so a file from before buckets had their own N
//!   needs no rewrite). Only non-empty leaves are stored, so an empty
//!   partition costs nothing.
//! - `positions`: `ring position (8 bytes BE) ‖ storage key` → the key's
//!   tree (empty for the default tree, else its one byte). Object
//!   keys sort by bucket and key, not by ring position; this index sorts them
//!   by position, so a leaf (a contiguous range of positions) is one range
//!   scan. It costs one extra insert when a key appears and one remove when
//!   it goes; rewriting an existing key reads it (to XOR the old version out
//!   of the tree it is filed in) and writes it only when the tree changes.
//!
//! A key's ring position is the first 8 bytes (big-endian) of BLAKE3 of its
//! storage key; for the node's keys that is exactly
//! [`ObjectKey::ring_position`](crate::core::key::ObjectKey::ring_position),
//! because the storage key is `len(bucket) ‖ bucket ‖ key`.
//!
//! **Version digest**: BLAKE3 of the object's stored bytes (its postcard
//! encoding). That is canonical for the node's objects: siblings are sorted
//! by dot and clocks are ordered maps, so two replicas holding the same
//! sibling set and context store the same bytes.
//!
//! Every object write in the writer thread XORs the old entry hash out of
//! its leaf and the new one in (one point read and one write of the leaf
//! table); no scan ever runs on a write. Trees are built from the leaf table
//! when asked for (1 024 rows, 1 023 hashes). On open, a store whose leaf
//! table was made for another partition count, or never made (a store from
//! before this table existed), rebuilds both tables once with a scan of the
//! objects, and says so in a log line. Such a file predates buckets with
//! their own N, so the rebuild puts every key in the default tree.

// These helpers return redb's own (large) error; the callers turn it into a
// `StorageError` naming the file, as the rest of the module does.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::time::Instant;

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use super::{as_slices, OBJECTS, STATE};
use crate::core::merkle::{self, Digest, TreeId, DEFAULT_TREE, EMPTY, LEAF_BITS, LEAVES};

/// Merkle leaves: (partition, leaf) → 32-byte hash; empty leaves are absent.
pub(crate) const MERKLE: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("merkle_leaves");
/// Ring-order index: position (8 bytes BE) ‖ storage key → empty.
pub(crate) const POSITIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("positions");
/// The partition count the leaf table was built for (in the state table).
const MERKLE_PARTITIONS_KEY: &str = "merkle_partitions";
/// Most partitions a layout accepts (DESIGN.md: up to 4096).
pub const PARTITIONS_MAX: u32 = 4096;

/// How keys map to partitions and leaves: the ring's partition count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerkleLayout {
    partitions: u32,
}

impl MerkleLayout {
    /// A layout for `partitions` partitions (a power of two, 1 to
    /// [`PARTITIONS_MAX`]); `None` otherwise.
    pub fn new(partitions: u32) -> Option<Self> {
        (partitions.is_power_of_two() && partitions <= PARTITIONS_MAX)
            .then_some(Self { partitions })
    }

    /// The partition count.
    pub fn partitions(self) -> u32 {
        self.partitions
    }

    fn partition_bits(self) -> u32 {
        self.partitions.trailing_zeros()
    }

    /// The ring position of a storage key.
    pub fn position(key: &[u8]) -> u64 {
        let digest = blake3::hash(key);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.as_bytes()[..8]);
        u64::from_be_bytes(first)
    }

    /// The partition and leaf of a ring position.
    pub fn locate(self, position: u64) -> (u32, u32) {
        let bits = self.partition_bits();
        let partition = if bits == 0 {
            0
        } else {
            (position >> (64 - bits)) as u32
        };
        (partition, merkle::leaf_of(position, self.partitions) as u32)
    }

    /// The first and last ring position of one leaf of one partition.
    pub fn leaf_range(self, partition: u32, leaf: u32) -> (u64, u64) {
        let below = 64 - self.partition_bits() - LEAF_BITS;
        let partition_start = u64::from(partition)
            .checked_shl(64 - self.partition_bits())
            .unwrap_or(0);
        let start = partition_start | (u64::from(leaf) << below);
        (start, start | ((1u64 << below) - 1))
    }
}

/// The leaf table's slot of one partition's tree.
pub(crate) fn tree_slot(partition: u32, tree: TreeId) -> u32 {
    partition | u32::from(tree) << 16
}

/// The version digest of stored object bytes.
pub(crate) fn version_digest(bytes: &[u8]) -> Digest {
    *blake3::hash(bytes).as_bytes()
}

/// The range of position-index keys of the leaves `first..=last` of a
/// partition, after the storage key `after` (from a previous page). Shared
/// by the redb and in-memory stores.
pub(crate) fn leaf_bounds(
    layout: MerkleLayout,
    partition: u32,
    (first_leaf, last_leaf): (u32, u32),
    after: Option<&[u8]>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let (first, _) = layout.leaf_range(partition, first_leaf);
    let (_, last) = layout.leaf_range(partition, last_leaf.max(first_leaf));
    let start = match after {
        Some(key) => Bound::Excluded(position_key(MerkleLayout::position(key), key)),
        None => Bound::Included(first.to_be_bytes().to_vec()),
    };
    // Every position key of the leaves sorts before `last + 1` (or is the
    // end of the ring).
    let end = match last.checked_add(1) {
        Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
        None => Bound::Unbounded,
    };
    (start, end)
}

/// A position-index key: ring position (8 bytes BE) ‖ storage key.
pub(crate) fn position_key(position: u64, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + key.len());
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// The Merkle tables open inside one write transaction.
pub(crate) struct MerkleTables<'txn> {
    pub(crate) layout: MerkleLayout,
    pub(crate) leaves: Table<'txn, (u32, u32), &'static [u8]>,
    pub(crate) positions: Table<'txn, &'static [u8], &'static [u8]>,
}

impl<'txn> MerkleTables<'txn> {
    /// Opens both tables in `txn`.
    pub(crate) fn open(
        txn: &'txn WriteTransaction,
        layout: MerkleLayout,
    ) -> Result<Self, redb::Error> {
        Ok(Self {
            layout,
            leaves: txn.open_table(MERKLE)?,
            positions: txn.open_table(POSITIONS)?,
        })
    }

    /// Records that `key`'s stored bytes went from the version `old` to
    /// `new` (`None`: absent), the new one in `tree`: the old entry hash
    /// XORed out of the leaf of the tree the index says it is in, the new
    /// one into its leaf of `tree`, and the position index updated when the
    /// key appears, goes or changes tree. Taking the old tree from the index
    /// keeps every tree the XOR of exactly the entries filed in it, even
    /// when a key is rewritten into another tree.
    pub(crate) fn note(
        &mut self,
        key: &[u8],
        tree: TreeId,
        old: Option<&Digest>,
        new: Option<&Digest>,
    ) -> Result<(), redb::Error> {
        if old == new {
            return Ok(());
        }
        let position = MerkleLayout::position(key);
        let (partition, leaf) = self.layout.locate(position);
        let indexed = position_key(position, key);
        let old_tree = match old {
            Some(_) => match self.positions.get(indexed.as_slice())? {
                Some(value) => tree_of_index(value.value()),
                None => DEFAULT_TREE,
            },
            None => tree,
        };
        if let Some(version) = old {
            self.xor_entry((tree_slot(partition, old_tree), leaf), key, version)?;
        }
        if let Some(version) = new {
            self.xor_entry((tree_slot(partition, tree), leaf), key, version)?;
        }
        match (old, new) {
            (_, Some(_)) if old.is_none() || old_tree != tree => {
                self.positions
                    .insert(indexed.as_slice(), index_value(tree).as_slice())?;
            }
            (Some(_), None) => {
                self.positions.remove(indexed.as_slice())?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Moves the entry of `key` (stored with version digest `version`) to
    /// `tree` when the index files it in another one; whether it moved.
    pub(crate) fn refile(
        &mut self,
        key: &[u8],
        tree: TreeId,
        version: &Digest,
    ) -> Result<bool, redb::Error> {
        let position = MerkleLayout::position(key);
        let (partition, leaf) = self.layout.locate(position);
        let indexed = position_key(position, key);
        let filed = match self.positions.get(indexed.as_slice())? {
            Some(value) => tree_of_index(value.value()),
            None => return Ok(false),
        };
        if filed == tree {
            return Ok(false);
        }
        self.xor_entry((tree_slot(partition, filed), leaf), key, version)?;
        self.xor_entry((tree_slot(partition, tree), leaf), key, version)?;
        self.positions
            .insert(indexed.as_slice(), index_value(tree).as_slice())?;
        Ok(true)
    }

    /// XORs one entry's hash into (or out of) one leaf.
    fn xor_entry(
        &mut self,
        slot: (u32, u32),
        key: &[u8],
        version: &Digest,
    ) -> Result<(), redb::Error> {
        let mut leaf = match self.leaves.get(slot)? {
            Some(stored) => digest_of(stored.value()),
            None => EMPTY,
        };
        xor(&mut leaf, &merkle::entry_hash(key, version));
        if leaf == EMPTY {
            self.leaves.remove(slot)?;
        } else {
            self.leaves.insert(slot, leaf.as_slice())?;
        }
        Ok(())
    }
}

/// XORs `entry` into `leaf`.
pub(crate) fn xor(leaf: &mut Digest, entry: &Digest) {
    for (a, b) in leaf.iter_mut().zip(entry.iter()) {
        *a ^= b;
    }
}

/// The position index's value for a key in `tree`: nothing for the default
/// tree (as every file from before trees has), else the tree's one byte.
pub(crate) fn index_value(tree: TreeId) -> Vec<u8> {
    if tree == DEFAULT_TREE {
        Vec::new()
    } else {
        vec![tree]
    }
}

/// The tree a position index value names.
pub(crate) fn tree_of_index(value: &[u8]) -> TreeId {
    value.first().copied().unwrap_or(DEFAULT_TREE)
}

/// A stored leaf hash; a row of the wrong length reads as empty (it cannot
/// be written by this code).
fn digest_of(bytes: &[u8]) -> Digest {
    <Digest>::try_from(bytes).unwrap_or(EMPTY)
}

/// Rebuilds the leaf table and the position index from the objects when
/// they were built for another layout or never built. Runs inside the open
/// transaction; returns the number of objects scanned when it rebuilt (a new,
/// empty file just gets empty tables: `None`).
pub(crate) fn ensure_built(
    txn: &WriteTransaction,
    layout: MerkleLayout,
    path: &Path,
) -> Result<Option<u64>, redb::Error> {
    let built_for = {
        let state = txn.open_table(STATE)?;
        let value = state.get(MERKLE_PARTITIONS_KEY)?.map(|v| v.value());
        value
    };
    if built_for == Some(u64::from(layout.partitions)) {
        // Still make sure the tables exist (a fresh file has none).
        txn.open_table(MERKLE)?;
        txn.open_table(POSITIONS)?;
        return Ok(None);
    }
    let started = Instant::now();
    txn.delete_table(MERKLE).map_err(redb::Error::from)?;
    txn.delete_table(POSITIONS).map_err(redb::Error::from)?;
    let mut leaves: HashMap<(u32, u32), Digest> = HashMap::new();
    let mut scanned = 0u64;
    {
        let objects = txn.open_table(OBJECTS)?;
        let mut positions = txn.open_table(POSITIONS)?;
        for entry in objects.iter()? {
            let (key, value) = entry?;
            let key = key.value();
            let position = MerkleLayout::position(key);
            let entry = merkle::entry_hash(key, &version_digest(value.value()));
            let (partition, leaf) = layout.locate(position);
            let leaf = leaves
                .entry((tree_slot(partition, DEFAULT_TREE), leaf))
                .or_insert(EMPTY);
            xor(leaf, &entry);
            positions.insert(position_key(position, key).as_slice(), [].as_slice())?;
            scanned += 1;
        }
    }
    {
        let mut table = txn.open_table(MERKLE)?;
        for (slot, leaf) in leaves {
            if leaf != EMPTY {
                table.insert(slot, leaf.as_slice())?;
            }
        }
    }
    txn.open_table(STATE)?
        .insert(MERKLE_PARTITIONS_KEY, u64::from(layout.partitions))?;
    let rebuilt = scanned > 0 || built_for.is_some();
    if rebuilt {
        tracing::info!(
            path = %path.display(),
            objects = scanned,
            partitions = layout.partitions,
            previous_partitions = ?built_for,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "merkle leaf table missing or built for another partition count: rebuilt once from the objects"
        );
    }
    Ok(rebuilt.then_some(scanned))
}

/// The 1 024 leaf hashes of one partition's tree, from a read transaction.
pub(crate) fn read_leaves(
    txn: &redb::ReadTransaction,
    partition: u32,
    tree: TreeId,
) -> Result<Vec<Digest>, redb::Error> {
    let slot = tree_slot(partition, tree);
    let mut leaves = vec![EMPTY; LEAVES];
    let table = match txn.open_table(MERKLE) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(leaves),
        Err(e) => return Err(e.into()),
    };
    for entry in table.range((slot, 0)..=(slot, LEAVES as u32 - 1))? {
        let (slot, hash) = entry?;
        let (_, leaf) = slot.value();
        if let Some(l) = leaves.get_mut(leaf as usize) {
            *l = digest_of(hash.value());
        }
    }
    Ok(leaves)
}

/// The storage keys of one leaf, in ring order, after `after` (a key from a
/// previous page), at most `limit`.
pub(crate) fn leaf_keys(
    txn: &redb::ReadTransaction,
    layout: MerkleLayout,
    partition: u32,
    (first_leaf, last_leaf): (u32, u32),
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Vec<u8>>, redb::Error> {
    let (start, end) = leaf_bounds(layout, partition, (first_leaf, last_leaf), after);
    let table = txn.open_table(POSITIONS)?;
    let (start_ref, end_ref) = (as_slices(&start), as_slices(&end));
    let mut keys = Vec::new();
    for entry in table.range::<&[u8]>((start_ref, end_ref))? {
        if keys.len() >= limit {
            break;
        }
        let (k, _) = entry?;
        if let Some(key) = k.value().get(8..) {
            keys.push(key.to_vec());
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_ranges_tile_the_ring_and_locate_agrees() {
        for partitions in [1u32, 2, 64, 4096] {
            let layout = MerkleLayout::new(partitions).expect("layout");
            for position in [0u64, 1, u64::MAX, 0x1234_5678_9abc_def0, 1 << 63] {
                let (p, l) = layout.locate(position);
                let (first, last) = layout.leaf_range(p, l);
                assert!(
                    first <= position && position <= last,
                    "{partitions} {position:x}"
                );
            }
            let (_, last) = layout.leaf_range(partitions - 1, LEAVES as u32 - 1);
            assert_eq!(last, u64::MAX);
            assert_eq!(layout.leaf_range(0, 0).0, 0);
        }
        assert_eq!(MerkleLayout::new(3), None);
        assert_eq!(MerkleLayout::new(8192), None);
    }

    #[test]
    fn position_is_the_ring_position_of_the_object_key() {
        let key = crate::core::key::ObjectKey::new("default", b"hello").expect("key");
        assert_eq!(
            MerkleLayout::position(&key.storage_key()),
            key.ring_position()
        );
    }
}
