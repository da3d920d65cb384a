//! Every read of the store, as a plain function of the database: the async
//! API runs them on the reader pool ([`super::readers`]), and the
//! synchronous [`StorageRead`](super::StorageRead) of the node state machine
//! runs them on the caller's thread. One body per read, two ways to call it.

use std::ops::Bound;
use std::path::Path;

use redb::{Database, ReadableTableMetadata};
use serde::de::DeserializeOwned;

use super::merkle::{self, MerkleLayout};
use super::{
    as_slices, decode_value, hint_bounds, leaf_page_of, next_hint_owner, owner_end, HintKey,
    LeafPage, StorageError, HINTS, META, OBJECTS, SCAN_ENTRIES_MAX,
};
use crate::core::merkle::{Digest, TreeId};

fn begin(db: &Database, path: &Path) -> Result<redb::ReadTransaction, StorageError> {
    db.begin_read()
        .map_err(|e| StorageError::from_redb(path, e))
}

/// The value stored under `key`.
pub(super) fn object<V: DeserializeOwned>(
    db: &Database,
    path: &Path,
    key: &[u8],
) -> Result<Option<V>, StorageError> {
    let txn = begin(db, path)?;
    let objects = txn
        .open_table(OBJECTS)
        .map_err(|e| StorageError::from_redb(path, e))?;
    match objects
        .get(key)
        .map_err(|e| StorageError::from_redb(path, e))?
    {
        Some(stored) => decode_value(key, stored.value()).map(Some),
        None => Ok(None),
    }
}

/// The hint stored under `hint`.
pub(super) fn hint<V: DeserializeOwned>(
    db: &Database,
    path: &Path,
    hint: &HintKey,
) -> Result<Option<V>, StorageError> {
    let key = hint.encode();
    let txn = begin(db, path)?;
    let hints = txn
        .open_table(HINTS)
        .map_err(|e| StorageError::from_redb(path, e))?;
    match hints
        .get(key.as_slice())
        .map_err(|e| StorageError::from_redb(path, e))?
    {
        Some(stored) => decode_value(&key, stored.value()).map(Some),
        None => Ok(None),
    }
}

/// Every hint held for `key`, in owner order.
pub(super) fn hints_for_key<V: DeserializeOwned>(
    db: &Database,
    path: &Path,
    key: &[u8],
) -> Result<Vec<(HintKey, V)>, StorageError> {
    let redb_error = |e: redb::StorageError| StorageError::from_redb(path, e);
    let txn = begin(db, path)?;
    let hints = txn
        .open_table(HINTS)
        .map_err(|e| StorageError::from_redb(path, e))?;
    let mut found = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    while let Some(owner) = next_hint_owner(&hints, &from, &redb_error)? {
        let probe = HintKey {
            owner,
            key: key.to_vec(),
        };
        let encoded = probe.encode();
        from = owner_end(&probe.owner);
        if let Some(stored) = hints.get(encoded.as_slice()).map_err(redb_error)? {
            found.push((probe, decode_value(&encoded, stored.value())?));
        }
    }
    Ok(found)
}

/// Up to `limit` hints in (owner, key) order after `after`, only `owner`'s
/// when given.
pub(super) fn hints<V: DeserializeOwned>(
    db: &Database,
    path: &Path,
    owner: Option<&str>,
    after: Option<&HintKey>,
    limit: usize,
) -> Result<Vec<(HintKey, V)>, StorageError> {
    let limit = limit.min(SCAN_ENTRIES_MAX);
    let (start, end) = hint_bounds(owner, after);
    let redb_error = |e: redb::StorageError| StorageError::from_redb(path, e);
    let txn = begin(db, path)?;
    let hints = txn
        .open_table(HINTS)
        .map_err(|e| StorageError::from_redb(path, e))?;
    let (start, end) = (as_slices(&start), as_slices(&end));
    let range = hints.range::<&[u8]>((start, end)).map_err(redb_error)?;
    let mut entries = Vec::new();
    for entry in range.take(limit) {
        let (key, value) = entry.map_err(redb_error)?;
        let raw = key.value();
        let Some(hint) = HintKey::decode(raw) else {
            continue;
        };
        entries.push((hint, decode_value(raw, value.value())?));
    }
    Ok(entries)
}

/// Every owner with hints, in name order, with a count up to `count_max`.
pub(super) fn hint_owners(
    db: &Database,
    path: &Path,
    count_max: u64,
) -> Result<Vec<(String, u64)>, StorageError> {
    let redb_error = |e: redb::StorageError| StorageError::from_redb(path, e);
    let txn = begin(db, path)?;
    let hints = txn
        .open_table(HINTS)
        .map_err(|e| StorageError::from_redb(path, e))?;
    let mut owners = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    while let Some(owner) = next_hint_owner(&hints, &from, &redb_error)? {
        let end = owner_end(&owner);
        let mut count = 0u64;
        for entry in hints
            .range::<&[u8]>((
                Bound::Included(from.as_slice()),
                Bound::Excluded(end.as_slice()),
            ))
            .map_err(redb_error)?
        {
            entry.map_err(redb_error)?;
            count += 1;
            if count >= count_max {
                break;
            }
        }
        owners.push((owner, count));
        from = end;
    }
    Ok(owners)
}

/// The number of hints held.
pub(super) fn hint_count(db: &Database, path: &Path) -> Result<u64, StorageError> {
    let txn = begin(db, path)?;
    let hints = txn
        .open_table(HINTS)
        .map_err(|e| StorageError::from_redb(path, e))?;
    hints.len().map_err(|e| StorageError::from_redb(path, e))
}

/// The number of objects stored.
pub(super) fn object_count(db: &Database, path: &Path) -> Result<u64, StorageError> {
    let txn = begin(db, path)?;
    let objects = txn
        .open_table(OBJECTS)
        .map_err(|e| StorageError::from_redb(path, e))?;
    objects.len().map_err(|e| StorageError::from_redb(path, e))
}

/// The meta entry `name`.
pub(super) fn meta(
    db: &Database,
    path: &Path,
    name: &str,
) -> Result<Option<Vec<u8>>, StorageError> {
    let txn = begin(db, path)?;
    let meta = txn
        .open_table(META)
        .map_err(|e| StorageError::from_redb(path, e))?;
    let value = meta
        .get(name)
        .map_err(|e| StorageError::from_redb(path, e))?;
    Ok(value.map(|stored| stored.value().to_vec()))
}

/// Calls `each` with the key and stored bytes of up to `limit` objects (at
/// most [`SCAN_ENTRIES_MAX`]) in key order after `after`.
fn each_object(
    db: &Database,
    path: &Path,
    after: Option<&[u8]>,
    limit: usize,
    mut each: impl FnMut(&[u8], &[u8]) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let limit = limit.min(SCAN_ENTRIES_MAX);
    let redb_error = |e: redb::StorageError| StorageError::from_redb(path, e);
    let txn = begin(db, path)?;
    let objects = txn
        .open_table(OBJECTS)
        .map_err(|e| StorageError::from_redb(path, e))?;
    let start = match after {
        Some(after) => Bound::Excluded(after),
        None => Bound::Unbounded,
    };
    let range = objects
        .range::<&[u8]>((start, Bound::Unbounded))
        .map_err(redb_error)?;
    for entry in range.take(limit) {
        let (key, value) = entry.map_err(redb_error)?;
        each(key.value(), value.value())?;
    }
    Ok(())
}

/// Up to `limit` objects (at most [`SCAN_ENTRIES_MAX`]) in key order after
/// `after`, decoded.
pub(super) fn scan<V: DeserializeOwned>(
    db: &Database,
    path: &Path,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, V)>, StorageError> {
    let mut entries = Vec::with_capacity(limit.min(1024));
    each_object(db, path, after, limit, |key, value| {
        entries.push((key.to_vec(), decode_value(key, value)?));
        Ok(())
    })?;
    Ok(entries)
}

/// Up to `limit` object keys (at most [`SCAN_ENTRIES_MAX`]) in order after
/// `after`, without decoding the objects.
pub(super) fn key_scan(
    db: &Database,
    path: &Path,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Vec<u8>>, StorageError> {
    let mut keys = Vec::with_capacity(limit.min(1024));
    each_object(db, path, after, limit, |key, _| {
        keys.push(key.to_vec());
        Ok(())
    })?;
    Ok(keys)
}

/// The 1 024 leaf hashes of one partition.
pub(super) fn leaves(
    db: &Database,
    path: &Path,
    partition: u32,
    tree: TreeId,
) -> Result<Vec<Digest>, StorageError> {
    let txn = begin(db, path)?;
    merkle::read_leaves(&txn, partition, tree).map_err(|e| StorageError::from_redb(path, e))
}

/// One page of the entries of the leaves `first..=last` of a partition.
#[allow(clippy::too_many_arguments)]
pub(super) fn leaf_run<V: DeserializeOwned>(
    db: &Database,
    path: &Path,
    layout: MerkleLayout,
    partition: u32,
    leaves: (u32, u32),
    after: Option<&[u8]>,
    limit: usize,
    bytes_max: usize,
) -> Result<LeafPage<V>, StorageError> {
    let limit = limit.clamp(1, SCAN_ENTRIES_MAX);
    let redb_error = |e: redb::Error| StorageError::from_redb(path, e);
    let txn = db.begin_read().map_err(|e| redb_error(e.into()))?;
    // One more than asked, to know whether another page follows.
    let keys =
        merkle::leaf_keys(&txn, layout, partition, leaves, after, limit + 1).map_err(redb_error)?;
    let objects = txn.open_table(OBJECTS).map_err(|e| redb_error(e.into()))?;
    leaf_page_of(keys, limit, bytes_max, |key| {
        let stored = objects.get(key).map_err(|e| redb_error(e.into()))?;
        Ok(stored.map(|guard| guard.value().to_vec()))
    })
}
