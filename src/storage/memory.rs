//! The in-memory store: the same tables and the same semantics as the redb
//! [`Store`](super::Store), in ordered maps, for the simulator and tests.
//!
//! Values are kept as their postcard bytes, exactly as redb keeps them, so
//! version digests, Merkle leaves and decoding errors are the store's own:
//! a leaf is the XOR of `entry_hash(key, BLAKE3(bytes))` over its keys, and
//! a position index (ring position ‖ key) makes a leaf one range. Nothing
//! here is durable; the simulator models crashes itself by not applying a
//! batch. [`super::conformance`] runs one suite against this and redb.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::Bound;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::merkle::{leaf_bounds, position_key, tree_slot, version_digest, xor, MerkleLayout};
use super::{
    decode_value, encode_value, hint_bounds, leaf_page_of, HintKey, LeafPage, StorageError,
    StorageRead, Write, WriteBatch, SCAN_ENTRIES_MAX,
};
use crate::core::merkle::{self, Digest, TreeId, EMPTY, LEAVES};

/// An in-memory store of values of type `V`.
#[derive(Debug, Clone)]
pub struct MemStore<V> {
    layout: MerkleLayout,
    objects: BTreeMap<Vec<u8>, Vec<u8>>,
    hints: BTreeMap<Vec<u8>, Vec<u8>>,
    meta: BTreeMap<String, Vec<u8>>,
    /// (tree slot, leaf) → hash; empty leaves are absent.
    leaves: BTreeMap<(u32, u32), Digest>,
    /// Ring position ‖ storage key → the key's tree, for leaf ranges.
    positions: BTreeMap<Vec<u8>, TreeId>,
    _values: PhantomData<fn() -> V>,
}

impl<V> MemStore<V>
where
    V: Serialize + DeserializeOwned,
{
    /// An empty store keeping Merkle trees for `partitions` partitions (a
    /// power of two up to [`super::PARTITIONS_MAX`]).
    pub fn new(partitions: u32) -> Result<Self, StorageError> {
        let layout = MerkleLayout::new(partitions).ok_or_else(|| StorageError::Internal {
            path: PathBuf::from(super::IN_MEMORY_LABEL),
            message: format!("{partitions} partitions is not a power of two up to 4096"),
        })?;
        Ok(Self {
            layout,
            objects: BTreeMap::new(),
            hints: BTreeMap::new(),
            meta: BTreeMap::new(),
            leaves: BTreeMap::new(),
            positions: BTreeMap::new(),
            _values: PhantomData,
        })
    }

    /// Applies every write of `batch`, in order. A value that does not
    /// encode fails the batch before anything is applied.
    pub fn apply(&mut self, batch: &WriteBatch<V>) -> Result<(), StorageError> {
        let mut encoded = Vec::with_capacity(batch.writes.len());
        for write in &batch.writes {
            encoded.push(match write {
                Write::Object { value: Some(v), .. } | Write::Hint { value: Some(v), .. } => {
                    Some(encode_value(v)?)
                }
                _ => None,
            });
        }
        for (write, bytes) in batch.writes.iter().zip(encoded) {
            match write {
                Write::Object { key, tree, .. } => self.set_object(key, *tree, bytes),
                Write::Hint { hint, .. } => {
                    let key = hint.encode();
                    match bytes {
                        Some(b) => self.hints.insert(key, b),
                        None => self.hints.remove(&key),
                    };
                }
                Write::Meta { name, value } => {
                    self.meta.insert(name.clone(), value.clone());
                }
                Write::Refile { key, tree } => self.refile(key, *tree),
            }
        }
        Ok(())
    }

    fn set_object(&mut self, key: &[u8], tree: TreeId, bytes: Option<Vec<u8>>) {
        let old = self.objects.get(key).map(|b| version_digest(b));
        let new = bytes.as_deref().map(version_digest);
        match bytes {
            Some(b) => self.objects.insert(key.to_vec(), b),
            None => self.objects.remove(key),
        };
        if old == new {
            return;
        }
        // As the redb store: the old version leaves the tree the index
        // files the key in, the new one joins `tree`.
        let position = MerkleLayout::position(key);
        let (partition, leaf) = self.layout.locate(position);
        let indexed = position_key(position, key);
        let old_tree = self.positions.get(&indexed).copied().unwrap_or(tree);
        for (version, in_tree) in [(old, old_tree), (new, tree)] {
            if let Some(version) = version {
                let entry = merkle::entry_hash(key, &version);
                self.xor_leaf((tree_slot(partition, in_tree), leaf), &entry);
            }
        }
        match new {
            Some(_) => {
                self.positions.insert(indexed, tree);
            }
            None => {
                self.positions.remove(&indexed);
            }
        }
    }

    fn refile(&mut self, key: &[u8], tree: TreeId) {
        let Some(version) = self.objects.get(key).map(|b| version_digest(b)) else {
            return;
        };
        let position = MerkleLayout::position(key);
        let (partition, leaf) = self.layout.locate(position);
        let Some(filed) = self.positions.get_mut(&position_key(position, key)) else {
            return;
        };
        if *filed == tree {
            return;
        }
        let from = std::mem::replace(filed, tree);
        let entry = merkle::entry_hash(key, &version);
        for in_tree in [from, tree] {
            self.xor_leaf((tree_slot(partition, in_tree), leaf), &entry);
        }
    }

    /// XORs one entry's hash into (or out of) one leaf.
    fn xor_leaf(&mut self, slot: (u32, u32), entry: &Digest) {
        let mut hash = self.leaves.get(&slot).copied().unwrap_or(EMPTY);
        xor(&mut hash, entry);
        if hash == EMPTY {
            self.leaves.remove(&slot);
        } else {
            self.leaves.insert(slot, hash);
        }
    }

    fn decode_hints(
        &self,
        range: impl Iterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<(HintKey, V)>, StorageError> {
        let mut out = Vec::new();
        for (raw, value) in range {
            if let Some(hint) = HintKey::decode(&raw) {
                out.push((hint, decode_value(&raw, &value)?));
            }
        }
        Ok(out)
    }
}

impl<V> StorageRead<V> for MemStore<V>
where
    V: Serialize + DeserializeOwned,
{
    fn object(&self, key: &[u8]) -> Result<Option<V>, StorageError> {
        self.objects
            .get(key)
            .map(|b| decode_value(key, b))
            .transpose()
    }

    fn hint(&self, hint: &HintKey) -> Result<Option<V>, StorageError> {
        let key = hint.encode();
        self.hints
            .get(&key)
            .map(|b| decode_value(&key, b))
            .transpose()
    }

    fn hints_of_key(&self, key: &[u8]) -> Result<Vec<(HintKey, V)>, StorageError> {
        let found = self
            .hints
            .iter()
            .filter(|(raw, _)| HintKey::decode(raw).is_some_and(|h| h.key == key))
            .map(|(k, v)| (k.clone(), v.clone()));
        self.decode_hints(found)
    }

    fn hint_page(
        &self,
        owner: Option<&str>,
        after: Option<&HintKey>,
        limit: usize,
    ) -> Result<Vec<(HintKey, V)>, StorageError> {
        let limit = limit.min(SCAN_ENTRIES_MAX);
        let (start, end) = hint_bounds(owner, after);
        let page = self
            .hints
            .range::<Vec<u8>, _>((start, end))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()));
        self.decode_hints(page)
    }

    fn hint_owner_counts(&self, count_max: u64) -> Result<Vec<(String, u64)>, StorageError> {
        let mut owners: Vec<(String, u64)> = Vec::new();
        for raw in self.hints.keys() {
            let Some(hint) = HintKey::decode(raw) else {
                continue;
            };
            match owners.last_mut() {
                Some((owner, count)) if *owner == hint.owner => {
                    *count = (*count + 1).min(count_max);
                }
                _ => owners.push((hint.owner, 1.min(count_max))),
            }
        }
        Ok(owners)
    }

    fn hint_total(&self) -> Result<u64, StorageError> {
        Ok(self.hints.len() as u64)
    }

    fn object_total(&self) -> Result<u64, StorageError> {
        Ok(self.objects.len() as u64)
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.meta.get(name).cloned())
    }

    fn object_page(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, V)>, StorageError> {
        let limit = limit.min(SCAN_ENTRIES_MAX);
        let start = match after {
            Some(after) => Bound::Excluded(after.to_vec()),
            None => Bound::Unbounded,
        };
        self.objects
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(k, v)| Ok((k.clone(), decode_value(k, v)?)))
            .collect()
    }

    fn key_page(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<Vec<u8>>, StorageError> {
        let start = match after {
            Some(after) => Bound::Excluded(after.to_vec()),
            None => Bound::Unbounded,
        };
        Ok(self
            .objects
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit.min(SCAN_ENTRIES_MAX))
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn leaves(&self, partition: u32, tree: TreeId) -> Result<Vec<Digest>, StorageError> {
        let mut leaves = vec![EMPTY; LEAVES];
        let slot = tree_slot(partition, tree);
        for ((_, leaf), hash) in self.leaves.range((slot, 0)..=(slot, LEAVES as u32 - 1)) {
            if let Some(l) = leaves.get_mut(*leaf as usize) {
                *l = *hash;
            }
        }
        Ok(leaves)
    }

    fn leaf_page(
        &self,
        partition: u32,
        leaves: (u32, u32),
        after: Option<&[u8]>,
        limit: usize,
        bytes_max: usize,
    ) -> Result<LeafPage<V>, StorageError> {
        let limit = limit.clamp(1, SCAN_ENTRIES_MAX);
        let (start, end) = leaf_bounds(self.layout, partition, leaves, after);
        // One more than asked, to know whether another page follows.
        let keys = self
            .positions
            .range::<Vec<u8>, _>((start, end))
            .filter_map(|(indexed, _)| indexed.get(8..).map(<[u8]>::to_vec))
            .take(limit + 1);
        leaf_page_of(keys, limit, bytes_max, |key| Ok(self.objects.get(key)))
    }
}
