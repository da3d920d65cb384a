//! The node's local storage: one redb file holding its objects, the hints
//! it keeps for unreachable nodes (sloppy quorum, paper §4.6), the Merkle
//! leaves of every partition kept in the same transaction as each object
//! write (see [`merkle`](self::merkle)) and a small meta table, written with
//! group commit.
//!
//! This module owns redb (DESIGN.md §3: `storage` owns redb; `core` never
//! sees it). [`Store`] is generic over the stored value type, encoded with
//! postcard; keys are opaque bytes that the caller builds from bucket and key.
//! The same code runs on a file ([`Store::open`]) and on redb's in-memory
//! backend ([`Store::open_in_memory`], for tests and the simulator), and one
//! conformance suite runs against both (STYLE.md habit 6).
//!
//! Invariants it keeps:
//! - Every write goes through one writer thread that applies queued updates
//!   in arrival order inside one transaction and commits once (group commit,
//!   see [`group_commit`](self::group_commit)); a caller is answered only
//!   after the commit holding its write, and read-modify-writes of one key
//!   are serialised.
//! - No disk I/O runs on the async executor: reads go to a small pool of
//!   reader threads (see [`readers`](self::readers)).
//! - Every queue is bounded by a named constant below.
//! - A "running" flag is set durably on open and cleared durably by
//!   [`Store::close`], so the next open knows whether the previous run ended
//!   cleanly ([`OpenInfo::clean_shutdown`]). redb itself keeps the file
//!   consistent across crashes; a file it cannot read is reported with its
//!   path, never a panic (DESIGN.md §5).

#[cfg(test)]
mod conformance;
mod error;
mod group_commit;
mod memory;
mod merkle;
mod readers;
mod reads;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Bound;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use self::error::StorageError;
use self::group_commit::{Completion, UpdateJob, WriteCommand, Writer};
pub use self::memory::MemStore;
pub use self::merkle::{MerkleLayout, PARTITIONS_MAX};
use self::readers::{ReadJob, ReadMessage};
use crate::config::StorageConfig;
use crate::core::merkle::{Digest, MerkleTree, TreeId, DEFAULT_TREE, LEAVES};

/// Most commands (updates, meta puts) waiting for the writer thread; callers
/// beyond it wait for room.
pub const WRITE_QUEUE_CAPACITY: usize = 8192;
/// Most commands applied in one write transaction (one group commit).
pub const GROUP_COMMIT_BATCH_MAX: usize = 512;
/// Number of reader threads.
pub const READER_THREADS: usize = 4;
/// Most reads waiting for a reader thread; callers beyond it wait for room.
pub const READ_QUEUE_CAPACITY: usize = 1024;
/// Most entries one [`Store::scan`] returns, whatever limit is asked for.
pub const SCAN_ENTRIES_MAX: usize = 10_000;
/// The layout version of the store's tables, kept in the file.
pub const FORMAT_VERSION: u64 = 2;

/// Objects: caller-encoded key → postcard-encoded value.
const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
/// Hints: intended owner, a NUL byte, then the caller-encoded key →
/// postcard-encoded value. Owner names never contain NUL, so one owner's
/// hints are one contiguous key range.
const HINTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("hints");
/// Small named entries the node keeps (its replica incarnation, ...).
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The store's own bookkeeping: format version and the "running" flag.
const STATE: TableDefinition<&str, u64> = TableDefinition::new("storage_state");
const RUNNING_KEY: &str = "running";
const FORMAT_KEY: &str = "format_version";
/// How an in-memory store names itself in errors.
const IN_MEMORY_LABEL: &str = "<in-memory>";

/// Which table an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableId {
    Objects,
    Hints,
}

/// Where a hint lives: the node it is meant for and the object's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HintKey {
    /// The intended owner (a node name, without NUL bytes).
    pub owner: String,
    /// The caller-encoded object key, as for [`Store::get`].
    pub key: Vec<u8>,
}

impl HintKey {
    /// A hint key; `None` when the owner is empty or contains a NUL byte.
    pub fn new(owner: &str, key: Vec<u8>) -> Option<Self> {
        if owner.is_empty() || owner.contains('\0') {
            return None;
        }
        Some(Self {
            owner: owner.to_string(),
            key,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.owner.len() + 1 + self.key.len());
        bytes.extend_from_slice(self.owner.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&self.key);
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let nul = bytes.iter().position(|b| *b == 0)?;
        let owner = std::str::from_utf8(&bytes[..nul]).ok()?.to_string();
        Some(Self {
            owner,
            key: bytes[nul + 1..].to_vec(),
        })
    }
}

/// One write of a [`WriteBatch`]: an object, a hint or a meta entry set to
/// a value (`None` deletes), whatever was there. The node state machine
/// decides every value from what it read; the store only applies them.
#[derive(Debug, Clone, PartialEq)]
pub enum Write<V> {
    /// An object (its Merkle leaf follows in the same transaction).
    Object {
        /// The storage key.
        key: Vec<u8>,
        /// The new object; `None` deletes the key.
        value: Option<V>,
        /// The Merkle tree of the partition the key is in (its bucket's
        /// replica count, [`crate::core::merkle::TreeId`]).
        tree: TreeId,
    },
    /// A hint for another node.
    Hint {
        /// The owner and key.
        hint: HintKey,
        /// The new hint; `None` deletes it.
        value: Option<V>,
    },
    /// Files an existing object's Merkle entry in `tree` (nothing when the
    /// key is absent or already filed there): a node that wrote keys of a
    /// bucket before it learnt the bucket's own N moves them to its tree.
    Refile {
        /// The storage key.
        key: Vec<u8>,
        /// The tree it belongs in.
        tree: TreeId,
    },
    /// A meta entry (durable whatever the configured durability).
    Meta {
        /// The entry's name.
        name: String,
        /// Its value.
        value: Vec<u8>,
    },
}

/// The writes of one step of the node state machine, applied together in
/// one transaction (DESIGN.md §3: one group commit per step).
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBatch<V> {
    /// In order; a later write of the same entry wins.
    pub writes: Vec<Write<V>>,
}

impl<V> Default for WriteBatch<V> {
    fn default() -> Self {
        Self { writes: Vec::new() }
    }
}

impl<V> WriteBatch<V> {
    /// Whether it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// What the node state machine reads from its store, synchronously (DESIGN.md
/// §3: a read of redb's cache takes microseconds, as raft-rs reads its
/// `Storage`). Two implementations, one conformance suite
/// (`storage::conformance`): [`Store`] (redb, on the caller's thread) and
/// [`MemStore`] (the simulator's). Writes are not here: the machine hands
/// back a [`WriteBatch`] and its driver applies it ([`Store::write_batch`],
/// [`MemStore::apply`]).
pub trait StorageRead<V> {
    /// The object under `key`.
    fn object(&self, key: &[u8]) -> Result<Option<V>, StorageError>;
    /// The hint under `hint`.
    fn hint(&self, hint: &HintKey) -> Result<Option<V>, StorageError>;
    /// Every hint held for `key`, in owner order.
    fn hints_of_key(&self, key: &[u8]) -> Result<Vec<(HintKey, V)>, StorageError>;
    /// Up to `limit` hints (at most [`SCAN_ENTRIES_MAX`]) in (owner, key)
    /// order after `after`; only `owner`'s when given.
    fn hint_page(
        &self,
        owner: Option<&str>,
        after: Option<&HintKey>,
        limit: usize,
    ) -> Result<Vec<(HintKey, V)>, StorageError>;
    /// Every owner with hints, in name order, with a count up to `count_max`.
    fn hint_owner_counts(&self, count_max: u64) -> Result<Vec<(String, u64)>, StorageError>;
    /// The number of hints.
    fn hint_total(&self) -> Result<u64, StorageError>;
    /// The number of objects.
    fn object_total(&self) -> Result<u64, StorageError>;
    /// The meta entry `name`.
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Up to `limit` objects (at most [`SCAN_ENTRIES_MAX`]) in key order
    /// after `after`.
    fn object_page(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, V)>, StorageError>;
    /// Up to `limit` object keys (at most [`SCAN_ENTRIES_MAX`]) in order
    /// after `after`, the objects not decoded.
    fn key_page(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<Vec<u8>>, StorageError>;
    /// The 1 024 leaf hashes of one partition's Merkle tree.
    fn leaves(&self, partition: u32, tree: TreeId) -> Result<Vec<Digest>, StorageError>;
    /// One page of the entries of the leaves `first..=last` of a
    /// partition, in ring order, after the storage key `after`, at most
    /// `limit` entries, ending early past `bytes_max` stored bytes.
    fn leaf_page(
        &self,
        partition: u32,
        leaves: (u32, u32),
        after: Option<&[u8]>,
        limit: usize,
        bytes_max: usize,
    ) -> Result<LeafPage<V>, StorageError>;
}

/// What [`Store::open`] found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenInfo {
    /// The file was new, or held no objects and no meta entries.
    pub fresh: bool,
    /// The previous run ended with [`Store::close`] (also true when there was
    /// no previous run). False after a crash or a drop without close: the
    /// node may then have lost its last buffered writes.
    pub clean_shutdown: bool,
    /// `Some(objects scanned)` when the Merkle leaf table had to be rebuilt
    /// on open (missing, or built for another partition count).
    pub merkle_rebuilt: Option<u64>,
}

/// One page of a Merkle leaf's entries ([`Store::leaf_entries`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LeafPage<V> {
    /// Storage key, value and version digest, in ring order.
    pub entries: Vec<(Vec<u8>, V, Digest)>,
    /// Pass as `after` to read the next page; `None` when the leaf is done.
    pub next: Option<Vec<u8>>,
}

/// Counters of the writer thread, to see batching at work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Group commits that held at least one command (empty flushes of the
    /// buffered mode are not counted).
    pub commits: u64,
    /// Writes (updates and meta puts) made by those commits.
    pub writes: u64,
}

/// The shared counters behind [`StoreStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) writes: AtomicU64,
}

/// The node's local store of objects of type `V`, keyed by opaque bytes.
///
/// Cloning gives another handle to the same store. The writer and reader
/// threads stop when [`Store::close`] (or [`Store::shutdown`]) is called, or
/// when the last handle is dropped; dropping the last handle waits for them
/// (at most one group commit), so the file can be reopened at once.
pub struct Store<V> {
    inner: Arc<Inner<V>>,
}

struct Inner<V> {
    db: Arc<Database>,
    /// The file, or [`IN_MEMORY_LABEL`]; named in errors.
    path: PathBuf,
    /// `None` only while dropping.
    writes: Option<mpsc::Sender<WriteCommand<V>>>,
    /// `None` only while dropping.
    reads: Option<mpsc::Sender<ReadMessage>>,
    threads: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    layout: MerkleLayout,
    _values: PhantomData<fn() -> V>,
}

impl<V> Clone for Store<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V> fmt::Debug for Store<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<V> Store<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Opens (or creates) the store in the redb file at `path`, creating its
    /// folder if missing, and durably marks it as running.
    ///
    /// A file that is not a readable redb database gives
    /// [`StorageError::Corrupted`], [`StorageError::Unreadable`] or
    /// [`StorageError::Incompatible`], each naming the file. This call does
    /// blocking disk I/O (and redb may repair the file after a crash); call it
    /// before serving, or from a blocking context.
    pub fn open(path: &Path, config: &StorageConfig) -> Result<(Self, OpenInfo), StorageError> {
        Self::open_with_partitions(path, config, 1)
    }

    /// [`Store::open`] for a ring of `partitions` partitions, which places
    /// keys in Merkle trees (see [`merkle`](self::merkle)); a store last
    /// opened with another count rebuilds its leaf table once.
    pub fn open_with_partitions(
        path: &Path,
        config: &StorageConfig,
        partitions: u32,
    ) -> Result<(Self, OpenInfo), StorageError> {
        let layout = layout_of(path, partitions)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StorageError::Unreadable {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        // redb 2 asserts (panics) on some damaged files, e.g. one shorter
        // than its header says; report those like any other corruption.
        let opened = contain_panic(|| Database::builder().create(path)).map_err(|panic| {
            StorageError::Corrupted {
                path: path.to_path_buf(),
                message: format!("redb rejected the file: {}", panic_message(panic.as_ref())),
            }
        })?;
        let db = opened.map_err(|err| StorageError::from_redb_open(path, err))?;
        Self::start(db, path.to_path_buf(), config, layout)
    }

    /// Opens an empty store in memory (redb's `InMemoryBackend`), for tests
    /// and the simulator. Commits are "durable" at once; nothing outlives the
    /// last handle.
    pub fn open_in_memory() -> Result<Self, StorageError> {
        Self::open_in_memory_with_partitions(1)
    }

    /// [`Store::open_in_memory`] for a ring of `partitions` partitions.
    pub fn open_in_memory_with_partitions(partitions: u32) -> Result<Self, StorageError> {
        let path = PathBuf::from(IN_MEMORY_LABEL);
        let layout = layout_of(&path, partitions)?;
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|err| StorageError::from_redb_open(&path, err))?;
        let (store, _) = Self::start(db, path, &StorageConfig::default(), layout)?;
        Ok(store)
    }

    /// Checks the file's layout, marks it running, starts the threads.
    fn start(
        db: Database,
        path: PathBuf,
        config: &StorageConfig,
        layout: MerkleLayout,
    ) -> Result<(Self, OpenInfo), StorageError> {
        let info = mark_running(&db, &path, layout)?;
        let db = Arc::new(db);
        let counters = Arc::new(Counters::default());
        let internal = |what: &str, err: std::io::Error| StorageError::Internal {
            path: path.clone(),
            message: format!("cannot start the {what}: {err}"),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|err| internal("writer's timer", err))?;
        let (writes, commands) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        let writer = Writer {
            db: Arc::clone(&db),
            path: path.clone(),
            durability: config.durability,
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            counters: Arc::clone(&counters),
            commands,
            layout,
        };
        let writer_thread = std::thread::Builder::new()
            .name("dynamo-store-writer".into())
            .spawn(move || writer.run(runtime))
            .map_err(|err| internal("writer thread", err))?;
        let (reads, mut threads) =
            match readers::spawn_readers(Arc::clone(&db), READER_THREADS, READ_QUEUE_CAPACITY) {
                Ok(pool) => pool,
                Err(err) => {
                    drop(writes);
                    let _ = writer_thread.join();
                    return Err(internal("reader threads", err));
                }
            };
        threads.push(writer_thread);
        tracing::debug!(
            path = %path.display(),
            fresh = info.fresh,
            clean_shutdown = info.clean_shutdown,
            "storage opened"
        );
        let inner = Inner {
            db,
            path,
            writes: Some(writes),
            reads: Some(reads),
            threads,
            counters,
            layout,
            _values: PhantomData,
        };
        Ok((
            Self {
                inner: Arc::new(inner),
            },
            info,
        ))
    }

    /// The value stored under `key`, read in its own read transaction on a
    /// reader thread. A stored value that does not decode gives
    /// [`StorageError::Decode`] (the store keeps serving).
    pub async fn get(&self, key: &[u8]) -> Result<Option<V>, StorageError> {
        let (key, path) = (key.to_vec(), self.inner.path.clone());
        self.read(move |db| reads::object(db, &path, &key)).await
    }

    /// Read-modify-write of one key, with group commit.
    ///
    /// `f` runs on the writer thread inside the write transaction and gets
    /// the current value as that transaction sees it, so it includes every
    /// earlier update of the same key, even one in the same batch. It returns
    /// the new value (`None` deletes the key) and a result, which is returned
    /// once the commit holding the write is done (durable with
    /// [`Immediate`](crate::config::Durability::Immediate), visible with
    /// [`Buffered`](crate::config::Durability::Buffered)).
    /// Updates of one key apply in the order their calls reached the queue.
    ///
    /// `f` must be quick and must not panic: a panic stops the writer thread,
    /// and every later write then fails with [`StorageError::Closed`].
    pub async fn update<R, F>(&self, key: Vec<u8>, f: F) -> Result<R, StorageError>
    where
        F: FnOnce(Option<V>) -> (Option<V>, R) + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(AnswerAfterCommit { f, reply });
        self.send_write(WriteCommand::Update {
            table: TableId::Objects,
            key,
            job,
        })
        .await?;
        answer.await.unwrap_or(Err(StorageError::Closed))
    }

    /// Read-modify-write of one hint, through the same group-commit writer
    /// as objects (so a hint is as durable as an object written alongside).
    /// `f` gets the current hint and returns the new one (`None` deletes).
    pub async fn update_hint<R, F>(&self, hint: &HintKey, f: F) -> Result<R, StorageError>
    where
        F: FnOnce(Option<V>) -> (Option<V>, R) + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(AnswerAfterCommit { f, reply });
        self.send_write(WriteCommand::Update {
            table: TableId::Hints,
            key: hint.encode(),
            job,
        })
        .await?;
        answer.await.unwrap_or(Err(StorageError::Closed))
    }

    /// Stores `value` as a hint for `hint.owner`, combined with the hint
    /// already there by `merge(old, new)`.
    pub async fn merge_hint(
        &self,
        hint: &HintKey,
        value: V,
        merge: impl FnOnce(V, V) -> V + Send + 'static,
    ) -> Result<(), StorageError> {
        self.update_hint(hint, move |current| {
            let next = match current {
                Some(old) => merge(old, value),
                None => value,
            };
            (Some(next), ())
        })
        .await
    }

    /// Deletes a hint only if it still equals `expected` (what the caller
    /// read before handing it off), so a hint that grew meanwhile is kept.
    /// Returns whether it was deleted.
    pub async fn delete_hint_if_unchanged(
        &self,
        hint: &HintKey,
        expected: V,
    ) -> Result<bool, StorageError>
    where
        V: PartialEq,
    {
        self.update_hint(hint, move |current| match current {
            Some(c) if c == expected => (None, true),
            other => (other, false),
        })
        .await
    }

    /// The hint stored under `hint`.
    pub async fn get_hint(&self, hint: &HintKey) -> Result<Option<V>, StorageError> {
        let (hint, path) = (hint.clone(), self.inner.path.clone());
        self.read(move |db| reads::hint(db, &path, &hint)).await
    }

    /// Every hint held for `key`, whoever it is meant for, in owner order
    /// (one point lookup per owner that has hints).
    pub async fn hints_for_key(&self, key: &[u8]) -> Result<Vec<(HintKey, V)>, StorageError> {
        let (key, path) = (key.to_vec(), self.inner.path.clone());
        self.read(move |db| reads::hints_for_key(db, &path, &key))
            .await
    }

    /// Up to `limit` hints (at most [`SCAN_ENTRIES_MAX`]) in (owner, key)
    /// order, starting after `after`; only `owner`'s when given. To page,
    /// pass the last hint key returned.
    pub async fn hints(
        &self,
        owner: Option<&str>,
        after: Option<&HintKey>,
        limit: usize,
    ) -> Result<Vec<(HintKey, V)>, StorageError> {
        let path = self.inner.path.clone();
        let owner = owner.map(str::to_string);
        let after = after.cloned();
        self.read(move |db| reads::hints(db, &path, owner.as_deref(), after.as_ref(), limit))
            .await
    }

    /// Every owner that has at least one hint, in name order, with a count
    /// of its hints up to `count_max` (one range probe per owner, then a
    /// bounded count).
    pub async fn hint_owners(&self, count_max: u64) -> Result<Vec<(String, u64)>, StorageError> {
        let path = self.inner.path.clone();
        self.read(move |db| reads::hint_owners(db, &path, count_max))
            .await
    }

    /// The number of hints held, for every owner.
    pub async fn hint_count(&self) -> Result<u64, StorageError> {
        let path = self.inner.path.clone();
        self.read(move |db| reads::hint_count(db, &path)).await
    }

    /// Like [`Store::update`], but returns `f`'s result as soon as `f` has
    /// run inside the transaction, before the commit, together with a
    /// [`PendingCommit`] that resolves when the commit holding the write is
    /// done (or failed). The node uses it to start replicating while its own
    /// commit is in flight. The write is not yet durable, nor visible to
    /// [`Store::get`], when the result arrives.
    pub async fn update_early<R, F>(
        &self,
        key: Vec<u8>,
        f: F,
    ) -> Result<(R, PendingCommit), StorageError>
    where
        F: FnOnce(Option<V>) -> (Option<V>, R) + Send + 'static,
        R: Send + 'static,
    {
        let (applied, applied_answer) = oneshot::channel();
        let (committed, committed_answer) = oneshot::channel();
        let job = Box::new(AnswerEarly {
            f,
            applied,
            committed,
        });
        self.send_write(WriteCommand::Update {
            table: TableId::Objects,
            key,
            job,
        })
        .await?;
        let pending = PendingCommit {
            answer: committed_answer,
        };
        match applied_answer.await {
            Ok(result) => Ok((result, pending)),
            // `f` did not run: the commit channel says why.
            Err(_) => match pending.await {
                Err(err) => Err(err),
                Ok(()) => Err(StorageError::Closed),
            },
        }
    }

    /// The meta entry `name`. This is a small blocking read on the calling
    /// thread (meta entries are read at startup).
    pub fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        reads::meta(&self.inner.db, &self.inner.path, name)
    }

    /// Sets the meta entry `name`, through the writer thread, in a durable
    /// commit whatever the configured durability.
    pub async fn meta_put(&self, name: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let (done, answer) = oneshot::channel();
        self.send_write(WriteCommand::MetaPut {
            name: name.to_owned(),
            value,
            done,
        })
        .await?;
        answer.await.unwrap_or(Err(StorageError::Closed))
    }

    /// The number of objects stored.
    pub async fn len(&self) -> Result<u64, StorageError> {
        let path = self.inner.path.clone();
        self.read(move |db| reads::object_count(db, &path)).await
    }

    /// True when no object is stored.
    pub async fn is_empty(&self) -> Result<bool, StorageError> {
        Ok(self.len().await? == 0)
    }

    /// Up to `limit` objects (at most [`SCAN_ENTRIES_MAX`]) in key order,
    /// starting after the key `after` (from the first key when `None`), all
    /// from one read transaction. To page, pass the last key returned. A
    /// value that does not decode ends the scan with [`StorageError::Decode`]
    /// naming its key; scanning can go on after that key.
    pub async fn scan(
        &self,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, V)>, StorageError> {
        let path = self.inner.path.clone();
        self.read(move |db| reads::scan(db, &path, after.as_deref(), limit))
            .await
    }

    /// The Merkle layout (partition count) this store keeps trees for.
    pub fn layout(&self) -> MerkleLayout {
        self.inner.layout
    }

    /// The 1 024 leaf hashes of one partition's default Merkle tree (what
    /// [`Store::update`]'s writes are filed in), as committed (one range
    /// read of the leaf table).
    pub async fn merkle_leaves(&self, partition: u32) -> Result<Vec<Digest>, StorageError> {
        let path = self.inner.path.clone();
        self.read(move |db| reads::leaves(db, &path, partition, DEFAULT_TREE))
            .await
    }

    /// One partition's default Merkle tree, built from its stored leaves.
    pub async fn merkle_tree(&self, partition: u32) -> Result<MerkleTree, StorageError> {
        let leaves = self.merkle_leaves(partition).await?;
        MerkleTree::from_leaves(leaves).ok_or_else(|| StorageError::Internal {
            path: self.inner.path.clone(),
            message: format!("partition {partition} does not have {LEAVES} leaves"),
        })
    }

    /// Up to `limit` entries (at most [`SCAN_ENTRIES_MAX`]) of one Merkle
    /// leaf in ring order, after the storage key `after` (from a previous
    /// page), stopping early once `bytes_max` stored bytes are read. A range
    /// scan of the position index plus one point read per key: the cost is
    /// the leaf's keys, never the store's.
    pub async fn leaf_entries(
        &self,
        partition: u32,
        leaf: u32,
        after: Option<Vec<u8>>,
        limit: usize,
        bytes_max: usize,
    ) -> Result<LeafPage<V>, StorageError> {
        self.leaf_run_entries(partition, (leaf, leaf), after, limit, bytes_max)
            .await
    }

    /// [`Store::leaf_entries`] over the run of leaves `first..=last` (one
    /// contiguous stretch of the ring).
    pub async fn leaf_run_entries(
        &self,
        partition: u32,
        leaves: (u32, u32),
        after: Option<Vec<u8>>,
        limit: usize,
        bytes_max: usize,
    ) -> Result<LeafPage<V>, StorageError> {
        let path = self.inner.path.clone();
        let layout = self.inner.layout;
        self.read(move |db| {
            reads::leaf_run(
                db,
                &path,
                layout,
                partition,
                leaves,
                after.as_deref(),
                limit,
                bytes_max,
            )
        })
        .await
    }

    /// Shuts the store down for every handle: new writes are refused, the
    /// queued ones are applied, the "running" flag is cleared in a durable
    /// commit, and the writer and reader threads stop. Later calls on any
    /// handle fail with [`StorageError::Closed`]. The file is released when
    /// the last handle is dropped.
    pub async fn shutdown(&self) -> Result<(), StorageError> {
        let (done, answer) = oneshot::channel();
        self.send_write(WriteCommand::Shutdown { done }).await?;
        let result = answer.await.unwrap_or(Err(StorageError::Closed));
        if let Some(reads) = &self.inner.reads {
            for _ in 0..READER_THREADS {
                if reads.send(ReadMessage::Stop).await.is_err() {
                    break;
                }
            }
        }
        result
    }

    /// [`Store::shutdown`], then drops this handle (releasing the file and
    /// joining the threads if it was the last one).
    pub async fn close(self) -> Result<(), StorageError> {
        let result = self.shutdown().await;
        drop(self);
        result
    }

    async fn send_write(&self, command: WriteCommand<V>) -> Result<(), StorageError> {
        let writes = self.inner.writes.as_ref().ok_or(StorageError::Closed)?;
        writes.send(command).await.map_err(|_| StorageError::Closed)
    }

    /// Runs `read` on a reader thread and waits for its answer.
    async fn read<T, F>(&self, read: F) -> Result<T, StorageError>
    where
        F: FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
        T: Send + 'static,
    {
        let reads = self.inner.reads.as_ref().ok_or(StorageError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let path = self.inner.path.clone();
        let job: ReadJob = Box::new(move |db| {
            // A panic inside redb (a damaged page) must neither kill the
            // reader thread nor look like a shutdown to the caller.
            let result = contain_panic(AssertUnwindSafe(|| read(db))).unwrap_or_else(|panic| {
                Err(StorageError::Internal {
                    path,
                    message: format!("read failed: {}", panic_message(panic.as_ref())),
                })
            });
            let _ = reply.send(result);
        });
        reads
            .send(ReadMessage::Job(job))
            .await
            .map_err(|_| StorageError::Closed)?;
        answer.await.unwrap_or(Err(StorageError::Closed))
    }
}

impl<V> Store<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Applies one batch of writes in one transaction, through the writer
    /// thread (group commit with whatever else is queued); answers after the
    /// commit, durable when the store is `immediate` or the batch sets a meta
    /// entry.
    pub async fn write_batch(&self, batch: WriteBatch<V>) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.send_write(WriteCommand::Batch {
            writes: batch.writes,
            done,
        })
        .await?;
        answer.await.unwrap_or(Err(StorageError::Closed))
    }

    /// Runs `read` on this thread, a panic inside redb turned into an error.
    fn read_now<T>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let db = &self.inner.db;
        contain_panic(AssertUnwindSafe(|| read(db))).unwrap_or_else(|panic| {
            Err(StorageError::Internal {
                path: self.inner.path.clone(),
                message: format!("read failed: {}", panic_message(panic.as_ref())),
            })
        })
    }
}

impl<V> StorageRead<V> for Store<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn object(&self, key: &[u8]) -> Result<Option<V>, StorageError> {
        self.read_now(|db| reads::object(db, &self.inner.path, key))
    }

    fn hint(&self, hint: &HintKey) -> Result<Option<V>, StorageError> {
        self.read_now(|db| reads::hint(db, &self.inner.path, hint))
    }

    fn hints_of_key(&self, key: &[u8]) -> Result<Vec<(HintKey, V)>, StorageError> {
        self.read_now(|db| reads::hints_for_key(db, &self.inner.path, key))
    }

    fn hint_page(
        &self,
        owner: Option<&str>,
        after: Option<&HintKey>,
        limit: usize,
    ) -> Result<Vec<(HintKey, V)>, StorageError> {
        self.read_now(|db| reads::hints(db, &self.inner.path, owner, after, limit))
    }

    fn hint_owner_counts(&self, count_max: u64) -> Result<Vec<(String, u64)>, StorageError> {
        self.read_now(|db| reads::hint_owners(db, &self.inner.path, count_max))
    }

    fn hint_total(&self) -> Result<u64, StorageError> {
        self.read_now(|db| reads::hint_count(db, &self.inner.path))
    }

    fn object_total(&self) -> Result<u64, StorageError> {
        self.read_now(|db| reads::object_count(db, &self.inner.path))
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.read_now(|db| reads::meta(db, &self.inner.path, name))
    }

    fn object_page(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, V)>, StorageError> {
        self.read_now(|db| reads::scan(db, &self.inner.path, after, limit))
    }

    fn key_page(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<Vec<u8>>, StorageError> {
        self.read_now(|db| reads::key_scan(db, &self.inner.path, after, limit))
    }

    fn leaves(&self, partition: u32, tree: TreeId) -> Result<Vec<Digest>, StorageError> {
        self.read_now(|db| reads::leaves(db, &self.inner.path, partition, tree))
    }

    fn leaf_page(
        &self,
        partition: u32,
        leaves: (u32, u32),
        after: Option<&[u8]>,
        limit: usize,
        bytes_max: usize,
    ) -> Result<LeafPage<V>, StorageError> {
        let layout = self.inner.layout;
        self.read_now(|db| {
            reads::leaf_run(
                db,
                &self.inner.path,
                layout,
                partition,
                leaves,
                after,
                limit,
                bytes_max,
            )
        })
    }
}

impl<V> Store<V> {
    /// How many group commits and writes the writer has made.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            commits: self.inner.counters.commits.load(Ordering::Relaxed),
            writes: self.inner.counters.writes.load(Ordering::Relaxed),
        }
    }

    /// The file this store lives in (`<in-memory>` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Reads through the store's database directly (test helper, used to
    /// compare the reader pool with `spawn_blocking`).
    #[cfg(test)]
    pub(crate) fn database(&self) -> Arc<Database> {
        Arc::clone(&self.inner.db)
    }
}

impl<V> Drop for Inner<V> {
    fn drop(&mut self) {
        // Closing the channels stops the threads; joining them releases the
        // file before the last handle is gone. The writer may be finishing one
        // group commit. Never join the current thread (a caller's closure
        // holding the last handle is dropped on the writer thread).
        self.writes = None;
        self.reads = None;
        let current = std::thread::current().id();
        for thread in self.threads.drain(..) {
            if thread.thread().id() == current {
                continue;
            }
            let name = thread.thread().name().map(str::to_owned);
            if thread.join().is_err() {
                tracing::error!(
                    path = %self.path.display(),
                    thread = name.as_deref().unwrap_or("?"),
                    "storage thread panicked"
                );
            }
        }
    }
}

/// Resolves when the commit holding an [`Store::update_early`] write is done.
#[derive(Debug)]
#[must_use = "the write is not known to be committed until this resolves"]
pub struct PendingCommit {
    answer: oneshot::Receiver<Result<(), StorageError>>,
}

impl Future for PendingCommit {
    type Output = Result<(), StorageError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.answer)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(StorageError::Closed)))
    }
}

/// [`Store::update`]: the result waits for the commit.
struct AnswerAfterCommit<F, R> {
    f: F,
    reply: oneshot::Sender<Result<R, StorageError>>,
}

impl<V, F, R> UpdateJob<V> for AnswerAfterCommit<F, R>
where
    F: FnOnce(Option<V>) -> (Option<V>, R) + Send + 'static,
    R: Send + 'static,
{
    fn apply(self: Box<Self>, current: Option<V>) -> (Option<V>, Completion) {
        let Self { f, reply } = *self;
        let (new_value, result) = f(current);
        let complete: Completion = Box::new(move |committed| {
            let _ = reply.send(committed.map(|()| result));
        });
        (new_value, complete)
    }

    fn fail(self: Box<Self>, err: StorageError) {
        let _ = self.reply.send(Err(err));
    }
}

/// [`Store::update_early`]: the result goes out before the commit.
struct AnswerEarly<F, R> {
    f: F,
    applied: oneshot::Sender<R>,
    committed: oneshot::Sender<Result<(), StorageError>>,
}

impl<V, F, R> UpdateJob<V> for AnswerEarly<F, R>
where
    F: FnOnce(Option<V>) -> (Option<V>, R) + Send + 'static,
    R: Send + 'static,
{
    fn apply(self: Box<Self>, current: Option<V>) -> (Option<V>, Completion) {
        let Self {
            f,
            applied,
            committed,
        } = *self;
        let (new_value, result) = f(current);
        let _ = applied.send(result);
        let complete: Completion = Box::new(move |outcome| {
            let _ = committed.send(outcome);
        });
        (new_value, complete)
    }

    fn fail(self: Box<Self>, err: StorageError) {
        let _ = self.committed.send(Err(err));
    }
}

/// Sets up the tables, checks the format, reads what the previous run left
/// and sets the "running" flag, all in one durable commit.
fn mark_running(
    db: &Database,
    path: &Path,
    layout: MerkleLayout,
) -> Result<OpenInfo, StorageError> {
    let redb_error = |e: redb::Error| StorageError::from_redb(path, e);
    let mut txn = db.begin_write().map_err(|e| redb_error(e.into()))?;
    txn.set_durability(redb::Durability::Immediate);
    let info = {
        let objects = txn.open_table(OBJECTS).map_err(|e| redb_error(e.into()))?;
        let meta = txn.open_table(META).map_err(|e| redb_error(e.into()))?;
        txn.open_table(HINTS).map_err(|e| redb_error(e.into()))?;
        let mut state = txn.open_table(STATE).map_err(|e| redb_error(e.into()))?;
        let format = state
            .get(FORMAT_KEY)
            .map_err(|e| redb_error(e.into()))?
            .map(|stored| stored.value());
        match format {
            Some(FORMAT_VERSION) => {}
            Some(other) => {
                return Err(StorageError::Incompatible {
                    path: path.to_path_buf(),
                    message: format!(
                        "store format {other}, this build reads format {FORMAT_VERSION} \
                         (format 2 gives every sibling its write id); an older dynamo wrote \
                         it: run that build, or start this node on a fresh data folder"
                    ),
                })
            }
            None => {
                state
                    .insert(FORMAT_KEY, FORMAT_VERSION)
                    .map_err(|e| redb_error(e.into()))?;
            }
        }
        let was_running = state
            .get(RUNNING_KEY)
            .map_err(|e| redb_error(e.into()))?
            .is_some_and(|stored| stored.value() != 0);
        state
            .insert(RUNNING_KEY, 1)
            .map_err(|e| redb_error(e.into()))?;
        OpenInfo {
            fresh: objects.is_empty().map_err(|e| redb_error(e.into()))?
                && meta.is_empty().map_err(|e| redb_error(e.into()))?,
            clean_shutdown: !was_running,
            merkle_rebuilt: None,
        }
    };
    let info = OpenInfo {
        merkle_rebuilt: merkle::ensure_built(&txn, layout, path).map_err(redb_error)?,
        ..info
    };
    txn.commit().map_err(|e| redb_error(e.into()))?;
    Ok(info)
}

/// The Merkle layout for `partitions`, or an error naming the store.
fn layout_of(path: &Path, partitions: u32) -> Result<MerkleLayout, StorageError> {
    MerkleLayout::new(partitions).ok_or_else(|| StorageError::Internal {
        path: path.to_path_buf(),
        message: format!(
            "{partitions} partitions: the partition count must be a power of two up to {PARTITIONS_MAX}"
        ),
    })
}

/// The first hint owner at or after the stored key `from`, if any.
/// Hint keys are owner ‖ 0 ‖ key, so owners can be walked by jumping from
/// one owner to [`owner_end`] of it, one lookup per owner.
fn next_hint_owner<T: ReadableTable<&'static [u8], &'static [u8]>>(
    hints: &T,
    from: &[u8],
    redb_error: &impl Fn(redb::StorageError) -> StorageError,
) -> Result<Option<String>, StorageError> {
    let Some(entry) = hints
        .range::<&[u8]>((Bound::Included(from), Bound::Unbounded))
        .map_err(redb_error)?
        .next()
    else {
        return Ok(None);
    };
    let (stored_key, _) = entry.map_err(redb_error)?;
    Ok(HintKey::decode(stored_key.value()).map(|first| first.owner))
}

/// The range of hint-table keys a hint page reads: after `after`, or from
/// the first of `owner`'s hints (or the first hint), up to the last of
/// `owner`'s (or the end). Shared by the redb and in-memory stores.
pub(crate) fn hint_bounds(
    owner: Option<&str>,
    after: Option<&HintKey>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let start = match (after, owner) {
        (Some(after), _) => Bound::Excluded(after.encode()),
        (None, Some(owner)) => {
            let mut b = owner.as_bytes().to_vec();
            b.push(0);
            Bound::Included(b)
        }
        (None, None) => Bound::Unbounded,
    };
    let end = match owner {
        Some(owner) => Bound::Excluded(owner_end(owner)),
        None => Bound::Unbounded,
    };
    (start, end)
}

/// Builds one leaf page from `keys` in ring order: each looked up with
/// `stored` (its stored bytes, `None` when the key went meanwhile), at most
/// `limit` entries, ending once `bytes_max` stored bytes are in (never
/// before the first entry); `next` is the last key returned when more
/// follow. Shared by the redb and in-memory stores.
pub(crate) fn leaf_page_of<V: DeserializeOwned, B: AsRef<[u8]>>(
    keys: impl IntoIterator<Item = Vec<u8>>,
    limit: usize,
    bytes_max: usize,
    mut stored: impl FnMut(&[u8]) -> Result<Option<B>, StorageError>,
) -> Result<LeafPage<V>, StorageError> {
    let mut entries: Vec<(Vec<u8>, V, Digest)> = Vec::new();
    let mut bytes = 0usize;
    let mut next = None;
    for key in keys {
        if entries.len() >= limit || (bytes >= bytes_max && !entries.is_empty()) {
            next = entries.last().map(|(k, _, _)| k.clone());
            break;
        }
        let Some(raw) = stored(&key)? else {
            continue;
        };
        let raw = raw.as_ref();
        bytes += raw.len();
        let version = merkle::version_digest(raw);
        let value = decode_value(&key, raw)?;
        entries.push((key, value, version));
    }
    Ok(LeafPage { entries, next })
}

/// A bound over owned keys as one over slices, for redb's `range`.
pub(crate) fn as_slices(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(b) => Bound::Included(b.as_slice()),
        Bound::Excluded(b) => Bound::Excluded(b.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The first stored key past every hint of `owner`.
fn owner_end(owner: &str) -> Vec<u8> {
    let mut end = owner.as_bytes().to_vec();
    end.push(1);
    end
}

/// The text of a caught panic.
/// A panic's message on one line (redb's assertions span several).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = if let Some(message) = panic.downcast_ref::<&str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.as_str()
    } else {
        "unknown panic"
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

thread_local! {
    /// Set while this thread runs redb code whose panics become errors.
    static CONTAINING_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into `Err` (redb asserts on some damaged
/// files). While it runs, [`panic_is_contained`] is true on this thread.
fn contain_panic<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> std::thread::Result<T> {
    let was = CONTAINING_PANIC.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(f);
    CONTAINING_PANIC.with(|c| c.set(was));
    result
}

/// Whether a panic happening now on this thread is one the storage turns
/// into an error that says what happened (a damaged file): a process-wide
/// panic hook can then stay silent instead of printing a trace.
pub fn panic_is_contained() -> bool {
    CONTAINING_PANIC.with(|c| c.get())
}

/// Decodes one stored value; failure names the key.
fn decode_value<V: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<V, StorageError> {
    postcard::from_bytes(bytes).map_err(|err| StorageError::Decode {
        key: key.to_vec(),
        message: err.to_string(),
    })
}

/// Encodes one value for storage.
fn encode_value<V: Serialize>(value: &V) -> Result<Vec<u8>, StorageError> {
    postcard::to_allocvec(value).map_err(|err| StorageError::Encode {
        message: err.to_string(),
    })
}
