//! One simulated machine around one node state machine
//! ([`crate::core::node::Node`]): its in-memory store, the batches the node
//! handed out that are not durable yet, and whether it runs.
//!
//! The host is the simulator's storage driver. A batch becomes durable at a
//! group commit the world schedules a seeded delay after the first batch
//! that waits for one ([`Host::sync`]): every waiting batch is applied to the
//! [`MemStore`] in order and the node is told. A crash drops the waiting
//! batches and everything the node held in memory: the host builds a new
//! machine on the store (a new, empty store when the disk is wiped), as a
//! real node starts again on its redb file.

use std::time::Duration;

use crate::core::clock::{Object, ReplicaId};
use crate::core::node::{Node, Ready, Shared, INCARNATION_META};
use crate::storage::{MemStore, Write, WriteBatch};

/// The simulator's node: a state machine over an in-memory store.
pub type SimNode = Node<MemStore<Object>>;

/// One simulated machine.
#[derive(Debug)]
pub struct Host {
    /// The node.
    pub node: SimNode,
    /// Whether it runs.
    pub up: bool,
    /// Bumped at every crash; timers and syncs of an earlier generation are
    /// void.
    pub generation: u64,
    partitions: u32,
    waiting: Vec<(u64, WriteBatch<Object>)>,
    sync_scheduled: bool,
}

impl Host {
    /// A running machine with an empty store, starting with `view` (the
    /// cluster state it got from its seeds).
    pub fn new(
        index: usize,
        name: &str,
        incarnation: u64,
        seed: u64,
        partitions: u32,
        view: Shared,
    ) -> Self {
        let mut store = empty_store(partitions);
        keep_incarnation(&mut store, incarnation);
        let replica = ReplicaId::new(name, incarnation);
        let node = Node::new(index, name, replica, store, view, seed);
        Self {
            node,
            up: true,
            generation: 0,
            partitions,
            waiting: Vec::new(),
            sync_scheduled: false,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// Takes the batch of a step; true when a group commit must be
    /// scheduled for it.
    pub fn take_batch(&mut self, out: &mut Ready) -> bool {
        let Some(batch) = out.persist.take() else {
            return false;
        };
        self.waiting.push(batch);
        !std::mem::replace(&mut self.sync_scheduled, true)
    }

    /// The group commit: every waiting batch becomes durable, in order.
    pub fn sync(&mut self, now: Duration, out: &mut Ready) {
        self.sync_scheduled = false;
        let mut last = None;
        for (id, batch) in std::mem::take(&mut self.waiting) {
            if let Err(e) = self.node.store_mut().apply(&batch) {
                panic!("the in-memory store refused a batch the node built: {e}");
            }
            last = Some(id);
        }
        if let Some(id) = last {
            self.node.persisted(now, id, out);
        }
    }

    /// Whether batches wait for a group commit.
    pub fn has_unsynced(&self) -> bool {
        !self.waiting.is_empty() || self.node.has_unsynced()
    }

    /// A crash: what was not durable is gone, and so is every coordination
    /// in flight. With `wipe`, the disk is gone too.
    pub fn crash(&mut self, wipe: bool) {
        self.up = false;
        self.generation += 1;
        self.waiting.clear();
        self.sync_scheduled = false;
        self.rebuild(None, 0, wipe);
    }

    /// Starts again after a crash; `incarnation` is set when the store was
    /// wiped (a new replica id).
    pub fn restart(&mut self, incarnation: Option<u64>, seed: u64) {
        self.up = true;
        self.rebuild(incarnation, seed, false);
    }

    /// A new machine on the store (a new, empty one with `wipe`): the node
    /// takes the incarnation the store keeps; `incarnation` is written first
    /// when given. A wiped store keeps none, and the node then goes on with
    /// the one it had (only the planted bug restarts it so). It keeps the
    /// cluster state it had, as the real node reloads the one it stored.
    fn rebuild(&mut self, incarnation: Option<u64>, seed: u64, wipe: bool) {
        let replica = self.node.replica.clone();
        let (index, name) = (self.node.index, self.node.name.clone());
        let Some(view) = self.node.view().cloned() else {
            panic!("a node's view is only taken out during one of its steps");
        };
        let placeholder = Node::new(
            index,
            &name,
            replica.clone(),
            empty_store(self.partitions),
            view.clone(),
            0,
        );
        let old = std::mem::replace(&mut self.node, placeholder);
        let mut store = if wipe {
            empty_store(self.partitions)
        } else {
            old.into_store()
        };
        if let Some(incarnation) = incarnation {
            keep_incarnation(&mut store, incarnation);
        }
        self.node = Node::new(index, &name, replica, store, view, seed);
    }
}

fn keep_incarnation(store: &mut MemStore<Object>, incarnation: u64) {
    let batch = WriteBatch {
        writes: vec![Write::Meta {
            name: INCARNATION_META.to_string(),
            value: incarnation.to_be_bytes().to_vec(),
        }],
    };
    if let Err(e) = store.apply(&batch) {
        panic!("the in-memory store refused a meta entry: {e}");
    }
}

fn empty_store(partitions: u32) -> MemStore<Object> {
    match MemStore::new(partitions) {
        Ok(store) => store,
        Err(e) => panic!("the simulator's ring has a power-of-two partition count: {e}"),
    }
}
