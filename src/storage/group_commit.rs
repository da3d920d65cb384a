//! The writer thread: group commit of every change to the store.
//!
//! All writes (object updates, meta puts, the close marker) go through one
//! bounded channel ([`super::WRITE_QUEUE_CAPACITY`]) to one dedicated thread.
//! The thread takes whatever is queued, up to [`super::GROUP_COMMIT_BATCH_MAX`]
//! commands, applies them in arrival order inside ONE redb write transaction,
//! commits once, and only then completes each caller. So many concurrent
//! writers share one fsync (DESIGN.md §5, "group commit batches concurrent
//! writers"), and read-modify-writes of one key are serialised: each update's
//! function sees the value left by the update before it, even inside the same
//! batch, because it reads through the open write transaction.
//!
//! Durability: with [`Durability::Immediate`] every group commit is fsynced
//! before anyone is acknowledged. With [`Durability::Buffered`] group commits
//! use redb's `Durability::None` (visible at once, not yet on disk) and the
//! thread makes a durable commit no later than `flush_interval_ms` after the
//! first non-durable one: either the next batch is committed durably, or, when
//! the queue is idle, an empty durable commit is made (redb then persists all
//! earlier non-durable commits). Meta puts and the close marker always commit
//! durably. One failed commit fails every caller of that batch with the same
//! (fatal) error; a value that cannot be decoded or encoded fails only its own
//! caller.
//!
//! The thread stops when every sender is gone (all handles dropped: a
//! simulated crash, the "running" flag stays set) or after a
//! [`WriteCommand::Shutdown`]: it then refuses new commands, applies those
//! already queued, clears the "running" flag in a durable commit and answers
//! every shutdown request.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, ReadableTable, Table};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::error::StorageError;
use super::merkle::{version_digest, MerkleLayout, MerkleTables};
use super::{
    decode_value, encode_value, Counters, TableId, Write, HINTS, META, OBJECTS, RUNNING_KEY, STATE,
};
use crate::config::Durability;
use crate::core::merkle::{TreeId, DEFAULT_TREE};

/// What to tell one caller once its batch's commit succeeded or failed.
pub(crate) type Completion = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

/// One caller's read-modify-write, with the value type known and the
/// function and result types erased.
pub(crate) trait UpdateJob<V>: Send {
    /// Runs the caller's function on the current value; returns the value to
    /// store (`None` deletes the key) and how to answer after the commit.
    fn apply(self: Box<Self>, current: Option<V>) -> (Option<V>, Completion);
    /// Answers the caller with an error without running its function.
    fn fail(self: Box<Self>, err: StorageError);
}

/// A command for the writer thread.
pub(crate) enum WriteCommand<V> {
    /// Read-modify-write one entry of the objects or hints table.
    Update {
        /// Which table.
        table: TableId,
        /// The entry's key.
        key: Vec<u8>,
        /// The caller's function and reply channel.
        job: Box<dyn UpdateJob<V>>,
    },
    /// Set one entry of the meta table, durably.
    MetaPut {
        /// The entry's name.
        name: String,
        /// Its new value.
        value: Vec<u8>,
        /// Answered after the durable commit.
        done: oneshot::Sender<Result<(), StorageError>>,
    },
    /// Set (or delete) several objects, hints and meta entries, all in one
    /// transaction: what one step of the node state machine wrote.
    Batch {
        /// The writes, in order.
        writes: Vec<Write<V>>,
        /// Answered after the commit holding them (durable when the batch
        /// sets a meta entry or the store is `immediate`).
        done: oneshot::Sender<Result<(), StorageError>>,
    },
    /// Apply what is queued, mark the store cleanly shut down, stop.
    Shutdown {
        /// Answered after the final durable commit.
        done: oneshot::Sender<Result<(), StorageError>>,
    },
}

/// The state of the writer thread.
pub(crate) struct Writer<V> {
    pub(crate) db: Arc<Database>,
    pub(crate) path: PathBuf,
    pub(crate) durability: Durability,
    pub(crate) flush_interval: Duration,
    pub(crate) counters: Arc<Counters>,
    pub(crate) commands: mpsc::Receiver<WriteCommand<V>>,
    /// Where object writes land in the Merkle trees.
    pub(crate) layout: MerkleLayout,
}

impl<V> Writer<V>
where
    V: Serialize + DeserializeOwned + Send + 'static,
{
    /// Runs the writer until it is shut down or every sender is gone. The
    /// runtime is a current-thread runtime owned by this thread, used only
    /// to wait for commands with a flush deadline.
    pub(crate) fn run(mut self, runtime: tokio::runtime::Runtime) {
        runtime.block_on(self.run_loop());
    }

    async fn run_loop(&mut self) {
        let mut batch: Vec<WriteCommand<V>> = Vec::with_capacity(super::GROUP_COMMIT_BATCH_MAX);
        let mut closers: Vec<oneshot::Sender<Result<(), StorageError>>> = Vec::new();
        // When the oldest commit not yet on disk was made (Buffered only).
        let mut unflushed_since: Option<Instant> = None;
        loop {
            let first = match unflushed_since {
                Some(since) => {
                    let deadline = since + self.flush_interval;
                    match tokio::time::timeout_at(deadline, self.commands.recv()).await {
                        Ok(command) => command,
                        Err(_elapsed) => {
                            if self.flush() {
                                unflushed_since = None;
                            }
                            continue;
                        }
                    }
                }
                None => self.commands.recv().await,
            };
            let Some(first) = first else { break };
            batch.push(first);
            while batch.len() < super::GROUP_COMMIT_BATCH_MAX {
                match self.commands.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            let flush_due =
                unflushed_since.is_some_and(|since| since.elapsed() >= self.flush_interval);
            match self.commit_batch(&mut batch, flush_due, &mut closers) {
                Some(true) => unflushed_since = None,
                Some(false) => {
                    unflushed_since.get_or_insert_with(Instant::now);
                }
                None => {}
            }
            if !closers.is_empty() {
                // Refuse new commands; those already queued are still
                // received (and applied) before `recv` returns `None`.
                self.commands.close();
            }
        }
        if closers.is_empty() {
            // Every handle was dropped without close: keep the "running"
            // flag, but do not lose buffered commits that can be saved.
            if unflushed_since.is_some() {
                self.flush();
            }
            tracing::debug!(path = %self.path.display(), "storage writer stopped without close");
        } else {
            let result = self.mark_closed();
            if let Err(err) = &result {
                tracing::error!(path = %self.path.display(), error = %err, "final storage commit failed");
            }
            for done in closers {
                let _ = done.send(result.as_ref().map(|_| ()).map_err(StorageError::duplicate));
            }
            tracing::debug!(path = %self.path.display(), "storage writer closed cleanly");
        }
    }

    /// Applies one batch in one transaction and answers its callers.
    /// Returns whether the commit was durable, or `None` when it failed.
    fn commit_batch(
        &self,
        batch: &mut Vec<WriteCommand<V>>,
        flush_due: bool,
        closers: &mut Vec<oneshot::Sender<Result<(), StorageError>>>,
    ) -> Option<bool> {
        let durable = flush_due
            || self.durability == Durability::Immediate
            || batch.iter().any(|command| match command {
                WriteCommand::Update { .. } => false,
                WriteCommand::Batch { writes, .. } => {
                    writes.iter().any(|w| matches!(w, Write::Meta { .. }))
                }
                _ => true,
            });
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let mut writes = 0u64;
        let result = self.apply_batch(batch, durable, &mut completions, closers, &mut writes);
        match result {
            Ok(()) => {
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters.writes.fetch_add(writes, Ordering::Relaxed);
                for complete in completions {
                    complete(Ok(()));
                }
                Some(durable)
            }
            Err(err) => {
                tracing::error!(path = %self.path.display(), error = %err, "group commit failed");
                for complete in completions {
                    complete(Err(err.duplicate()));
                }
                None
            }
        }
    }

    /// Runs every command of `batch` (emptying it) inside one write
    /// transaction and commits it. On a storage error the commands not yet
    /// run are failed with it and the transaction is aborted; the callers
    /// already in `completions` are then failed by the caller.
    fn apply_batch(
        &self,
        batch: &mut Vec<WriteCommand<V>>,
        durable: bool,
        completions: &mut Vec<Completion>,
        closers: &mut Vec<oneshot::Sender<Result<(), StorageError>>>,
        writes: &mut u64,
    ) -> Result<(), StorageError> {
        let mut commands = batch.drain(..);
        let outcome = (|| {
            let mut txn = self.db.begin_write().map_err(|e| self.redb_error(e))?;
            txn.set_durability(if durable {
                redb::Durability::Immediate
            } else {
                redb::Durability::None
            });
            {
                let mut objects = txn.open_table(OBJECTS).map_err(|e| self.redb_error(e))?;
                let mut merkle =
                    MerkleTables::open(&txn, self.layout).map_err(|e| self.redb_error(e))?;
                let mut hints: Option<Table<&[u8], &[u8]>> = None;
                let mut meta: Option<Table<&str, &[u8]>> = None;
                for command in commands.by_ref() {
                    match command {
                        WriteCommand::Update { table, key, job } => {
                            let (table, tree) = match table {
                                TableId::Objects => {
                                    (&mut objects, Some((&mut merkle, DEFAULT_TREE)))
                                }
                                TableId::Hints => match &mut hints {
                                    Some(table) => (table, None),
                                    None => (
                                        hints.insert(
                                            txn.open_table(HINTS)
                                                .map_err(|e| self.redb_error(e))?,
                                        ),
                                        None,
                                    ),
                                },
                            };
                            if self.apply_update(table, tree, key, job, completions)? {
                                *writes += 1;
                            }
                        }
                        WriteCommand::MetaPut { name, value, done } => {
                            let table = match &mut meta {
                                Some(table) => table,
                                None => meta
                                    .insert(txn.open_table(META).map_err(|e| self.redb_error(e))?),
                            };
                            completions.push(Box::new(move |result| {
                                let _ = done.send(result);
                            }));
                            table
                                .insert(name.as_str(), value.as_slice())
                                .map_err(|e| self.redb_error(e))?;
                            *writes += 1;
                        }
                        WriteCommand::Batch { writes: ops, done } => {
                            // One slot for the first write that fails alone
                            // (a value that does not encode): the batch's
                            // caller hears it.
                            let failed = Arc::new(std::sync::Mutex::new(None));
                            for op in ops {
                                let (table, tree, key, value) = match op {
                                    Write::Object { key, value, tree } => {
                                        (&mut objects, Some((&mut merkle, tree)), key, value)
                                    }
                                    Write::Hint { hint, value } => {
                                        let table = match &mut hints {
                                            Some(table) => table,
                                            None => hints.insert(
                                                txn.open_table(HINTS)
                                                    .map_err(|e| self.redb_error(e))?,
                                            ),
                                        };
                                        (table, None, hint.encode(), value)
                                    }
                                    Write::Refile { key, tree } => {
                                        let version = objects
                                            .get(key.as_slice())
                                            .map_err(|e| self.redb_error(e))?
                                            .map(|stored| version_digest(stored.value()));
                                        let moved = match version {
                                            Some(version) => merkle
                                                .refile(&key, tree, &version)
                                                .map_err(|e| self.redb_error(e))?,
                                            None => false,
                                        };
                                        *writes += u64::from(moved);
                                        continue;
                                    }
                                    Write::Meta { name, value } => {
                                        let table = match &mut meta {
                                            Some(table) => table,
                                            None => meta.insert(
                                                txn.open_table(META)
                                                    .map_err(|e| self.redb_error(e))?,
                                            ),
                                        };
                                        table
                                            .insert(name.as_str(), value.as_slice())
                                            .map_err(|e| self.redb_error(e))?;
                                        *writes += 1;
                                        continue;
                                    }
                                };
                                let job = Box::new(SetTo {
                                    value,
                                    failed: failed.clone(),
                                });
                                if self.apply_update(table, tree, key, job, completions)? {
                                    *writes += 1;
                                }
                            }
                            completions.push(Box::new(move |result| {
                                let first = failed
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .take();
                                let _ = done.send(match (result, first) {
                                    (Ok(()), Some(err)) => Err(err),
                                    (result, _) => result,
                                });
                            }));
                        }
                        WriteCommand::Shutdown { done } => closers.push(done),
                    }
                }
            }
            txn.commit().map_err(|e| self.redb_error(e))
        })();
        if let Err(err) = &outcome {
            for command in commands {
                fail_command(command, err.duplicate(), closers);
            }
        }
        outcome
    }

    /// Runs one update inside the open transaction. Returns whether a write
    /// was made; a value error fails only this caller and returns `Ok(false)`.
    /// With `merkle` (the objects table), the key's leaf in that tree is updated
    /// in the same transaction: the old version's entry hash XORed out, the
    /// new one's in.
    fn apply_update(
        &self,
        objects: &mut Table<&[u8], &[u8]>,
        merkle: Option<(&mut MerkleTables<'_>, TreeId)>,
        key: Vec<u8>,
        job: Box<dyn UpdateJob<V>>,
        completions: &mut Vec<Completion>,
    ) -> Result<bool, StorageError> {
        let mut old_version = None;
        let current = match objects.get(key.as_slice()) {
            Ok(Some(stored)) => match decode_value::<V>(&key, stored.value()) {
                Ok(value) => {
                    old_version = Some(version_digest(stored.value()));
                    Some(value)
                }
                Err(err) => {
                    job.fail(err);
                    return Ok(false);
                }
            },
            Ok(None) => None,
            Err(err) => {
                let err = self.redb_error(err);
                job.fail(err.duplicate());
                return Err(err);
            }
        };
        let (new_value, complete) = job.apply(current);
        match new_value {
            Some(value) => {
                let bytes = match encode_value(&value) {
                    Ok(bytes) => bytes,
                    Err(err) => {
                        complete(Err(err));
                        return Ok(false);
                    }
                };
                completions.push(complete);
                match objects.insert(key.as_slice(), bytes.as_slice()) {
                    Ok(_) => {
                        if let Some((merkle, tree)) = merkle {
                            let new_version = version_digest(&bytes);
                            merkle
                                .note(&key, tree, old_version.as_ref(), Some(&new_version))
                                .map_err(|e| self.redb_error(e))?;
                        }
                        Ok(true)
                    }
                    Err(redb::StorageError::ValueTooLarge(bytes)) => {
                        // Nothing was written; only this caller fails.
                        if let Some(complete) = completions.pop() {
                            complete(Err(StorageError::ValueTooLarge { bytes }));
                        }
                        Ok(false)
                    }
                    Err(err) => Err(self.redb_error(err)),
                }
            }
            None => {
                completions.push(complete);
                objects
                    .remove(key.as_slice())
                    .map_err(|e| self.redb_error(e))?;
                if let Some((merkle, tree)) = merkle {
                    merkle
                        .note(&key, tree, old_version.as_ref(), None)
                        .map_err(|e| self.redb_error(e))?;
                }
                Ok(true)
            }
        }
    }

    /// Makes every earlier non-durable commit durable with an empty durable
    /// commit. Returns whether it succeeded.
    fn flush(&self) -> bool {
        let result = (|| {
            let mut txn = self.db.begin_write().map_err(|e| self.redb_error(e))?;
            txn.set_durability(redb::Durability::Immediate);
            txn.commit().map_err(|e| self.redb_error(e))
        })();
        match result {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(path = %self.path.display(), error = %err, "storage flush failed");
                false
            }
        }
    }

    /// Clears the "running" flag in a durable commit.
    fn mark_closed(&self) -> Result<(), StorageError> {
        let mut txn = self.db.begin_write().map_err(|e| self.redb_error(e))?;
        txn.set_durability(redb::Durability::Immediate);
        {
            let mut state = txn.open_table(STATE).map_err(|e| self.redb_error(e))?;
            state
                .insert(RUNNING_KEY, 0)
                .map_err(|e| self.redb_error(e))?;
        }
        txn.commit().map_err(|e| self.redb_error(e))
    }

    fn redb_error(&self, err: impl Into<redb::Error>) -> StorageError {
        StorageError::from_redb(&self.path, err)
    }
}

/// A batch's write of one entry: the value given, whatever was there. A
/// failure of this entry alone (the old value does not decode, the new one
/// does not encode) is kept for the batch's caller.
struct SetTo<V> {
    value: Option<V>,
    failed: Arc<std::sync::Mutex<Option<StorageError>>>,
}

impl<V: Send> UpdateJob<V> for SetTo<V> {
    fn apply(self: Box<Self>, _current: Option<V>) -> (Option<V>, Completion) {
        let failed = self.failed;
        let complete: Completion = Box::new(move |result| {
            if let Err(err) = result {
                failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_or_insert(err);
            }
        });
        (self.value, complete)
    }

    fn fail(self: Box<Self>, err: StorageError) {
        self.failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(err);
    }
}

/// Answers one command that will not run.
fn fail_command<V>(
    command: WriteCommand<V>,
    err: StorageError,
    closers: &mut Vec<oneshot::Sender<Result<(), StorageError>>>,
) {
    match command {
        WriteCommand::Update { job, .. } => job.fail(err),
        WriteCommand::MetaPut { done, .. } | WriteCommand::Batch { done, .. } => {
            let _ = done.send(Err(err));
        }
        // Still a close request: it is answered after the final commit.
        WriteCommand::Shutdown { done } => closers.push(done),
    }
}
