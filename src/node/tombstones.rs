//! Tombstone collection in the running node: the background task that
//! forgets deleted keys once that is safe, and the two requests it sends
//! its peers. The rule and the argument that nothing resurrects are in
//! [`crate::core::tombstone`]; this file only executes them.
//!
//! Every sweep interval (a quarter of the grace period, between
//! [`SWEEP_INTERVAL_MIN`] and [`SWEEP_INTERVAL_MAX`]) the task scans the
//! store page by page, counts the objects holding only tombstones (what
//! `dynamo status` reports) and feeds them to a [`Tracker`]. Tombstones that
//! stayed unchanged for the grace period (one more grace period where this
//! node is not the key's first replica, so one node usually does the work)
//! are checked with every member of the cluster in batches
//! ([`Request::TombstoneCheck`]); members that are behind get the tombstone
//! sent to them; keys that pass two checks `settle` apart (twice the request
//! timeout, or the grace period if longer) are dropped on every member ([`Request::TombstoneDrop`]), each
//! drop a compare inside the storage writer: only if the object is still
//! exactly that tombstone, so a newer write is never lost.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{storage_failure, NodeInner};
use crate::core::clock::Object;
use crate::core::key::ObjectKey;
use crate::core::message::{ErrorKind, Request, Response};
use crate::core::tombstone::{
    decide, holding, is_collectable, Action, Holding, Tracker, Verdict, TOMBSTONES_TRACKED_MAX,
    TOMBSTONE_BATCH_MAX,
};
use crate::storage::StorageError;

/// Shortest time between two sweeps.
pub const SWEEP_INTERVAL_MIN: Duration = Duration::from_millis(250);
/// Longest time between two sweeps.
pub const SWEEP_INTERVAL_MAX: Duration = Duration::from_secs(30);
/// Objects read per page of a sweep.
const SWEEP_PAGE: usize = 1000;
/// Most check rounds one sweep runs (each of up to [`TOMBSTONE_BATCH_MAX`] keys).
const CHECK_ROUNDS_PER_SWEEP_MAX: usize = 64;

impl NodeInner {
    /// The collection task: sweeps until shutdown.
    pub(super) async fn collect_tombstones(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let grace = self.tombstone_grace;
        // Outlives every request and background exchange begun before a
        // passing check (see `core::tombstone`).
        let settle = (self.timeout * 2).max(grace);
        let interval = (grace / 4).clamp(SWEEP_INTERVAL_MIN, SWEEP_INTERVAL_MAX);
        let mut tracker = Tracker::new(grace, settle, TOMBSTONES_TRACKED_MAX);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.sweep(&mut tracker, &shutdown).await {
                warn!("tombstone collection: {e}");
            }
        }
    }

    /// Whether this node is the first of `key`'s home replicas.
    fn first_replica(&self, key: &ObjectKey) -> bool {
        let view = self.view();
        let p = view.ring.partition_of(key.ring_position());
        view.ring
            .preference_list(p, self.manifest.replicas)
            .first()
            .is_some_and(|first| *first == self.name)
    }

    async fn sweep(
        self: &Arc<Self>,
        tracker: &mut Tracker,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<(), StorageError> {
        tracker.begin_sweep();
        let mut after: Option<Vec<u8>> = None;
        let mut count = 0u64;
        loop {
            let page = self.store.scan(after.take(), SWEEP_PAGE).await?;
            let full = page.len() == SWEEP_PAGE;
            let now = self.now();
            for (key, object) in &page {
                if is_collectable(object) {
                    count += 1;
                }
                let extra = match ObjectKey::from_storage_key(key) {
                    Some(k) if self.first_replica(&k) => Duration::ZERO,
                    _ => self.tombstone_grace,
                };
                tracker.observe(key, object, now, extra);
            }
            match page.last() {
                Some((last, _)) if full => after = Some(last.clone()),
                _ => break,
            }
            if *shutdown.borrow() {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
        tracker.end_sweep();
        self.tombstones.store(count, AtomicOrdering::Relaxed);
        for _ in 0..CHECK_ROUNDS_PER_SWEEP_MAX {
            if *shutdown.borrow() {
                return Ok(());
            }
            let due = tracker.due(self.now(), TOMBSTONE_BATCH_MAX);
            if due.is_empty() {
                break;
            }
            self.check_round(tracker, due).await;
        }
        Ok(())
    }

    /// Checks one batch of due tombstones with every member, repairs members
    /// that are behind, and drops the keys whose second check passed.
    async fn check_round(self: &Arc<Self>, tracker: &mut Tracker, due: Vec<(Vec<u8>, Object)>) {
        let mut entries = Vec::with_capacity(due.len());
        for (raw, object) in due {
            match ObjectKey::from_storage_key(&raw) {
                Some(key) => entries.push((key, object)),
                None => {
                    tracker.on_check(&raw, &Verdict::NotYet, self.now());
                }
            }
        }
        if entries.is_empty() {
            return;
        }
        let members: Vec<String> = self.view().addrs.keys().cloned().collect();
        let mut asks = tokio::task::JoinSet::new();
        for member in &members {
            let node = self.clone();
            let member = member.clone();
            let batch = entries.clone();
            asks.spawn(async move {
                let answer = if member == node.name {
                    node.tombstone_holdings(&batch).await
                } else {
                    let request = Request::TombstoneCheck { entries: batch };
                    node.call_peer(&member, request, node.timeout)
                        .await
                        .unwrap_or_else(|e| Response::error(ErrorKind::Unavailable, e))
                };
                (member, answer)
            });
        }
        let mut holdings: BTreeMap<String, Vec<Holding>> = BTreeMap::new();
        while let Some(joined) = asks.join_next().await {
            let Ok((member, answer)) = joined else {
                continue;
            };
            match answer {
                Response::Holdings(h) if h.len() == entries.len() => {
                    holdings.insert(member, h);
                }
                other => debug!(peer = %member, "tombstone check not answered: {other:?}"),
            }
        }
        let now = self.now();
        let mut to_drop = Vec::new();
        for (i, (key, object)) in entries.iter().enumerate() {
            let answers: BTreeMap<String, Option<Holding>> = members
                .iter()
                .map(|m| (m.clone(), holdings.get(m).map(|h| h[i])))
                .collect();
            let verdict = decide(&members, &answers);
            if let Verdict::Repair(behind) = &verdict {
                for member in behind {
                    let request = Request::Replicate {
                        key: key.clone(),
                        object: object.clone(),
                        hint_for: None,
                    };
                    if member == &self.name {
                        let _ = self.replicate(key.clone(), object.clone(), None).await;
                    } else if let Err(e) = self.call_peer(member, request, self.timeout).await {
                        debug!(peer = %member, "sending a tombstone: {e}");
                    }
                }
            }
            if tracker.on_check(&key.storage_key(), &verdict, now) == Action::Drop {
                to_drop.push((key.clone(), object.clone()));
            }
        }
        if to_drop.is_empty() {
            return;
        }
        // Others first, this node last: a key dropped nowhere stays checkable
        // here; one dropped somewhere is still safe (nobody holds its value).
        for member in members.iter().filter(|m| **m != self.name) {
            let request = Request::TombstoneDrop {
                entries: to_drop.clone(),
            };
            if let Err(e) = self.call_peer(member, request, self.timeout).await {
                debug!(peer = %member, "dropping tombstones: {e}");
            }
        }
        let dropped_here = match self.drop_tombstones(&to_drop).await {
            Response::Dropped(n) => n,
            _ => 0,
        };
        info!(
            keys = to_drop.len(),
            dropped_here, "collected tombstones held by every member"
        );
    }

    /// Answers a [`Request::TombstoneCheck`].
    pub(super) async fn tombstone_holdings(&self, entries: &[(ObjectKey, Object)]) -> Response {
        if entries.len() > TOMBSTONE_BATCH_MAX {
            return Response::error(
                ErrorKind::InvalidInput,
                format!("at most {TOMBSTONE_BATCH_MAX} keys per tombstone check"),
            );
        }
        let mut holdings = Vec::with_capacity(entries.len());
        for (key, tombstone) in entries {
            if let Err(e) = key.validate() {
                return Response::error(ErrorKind::InvalidInput, e.to_string());
            }
            let storage_key = key.storage_key();
            let own = match self.store.get(&storage_key).await {
                Ok(o) => o,
                Err(e) => return storage_failure(e),
            };
            let hints = match self.store.hints_for_key(&storage_key).await {
                Ok(h) => !h.is_empty(),
                Err(e) => return storage_failure(e),
            };
            holdings.push(holding(own.as_ref(), hints, tombstone));
        }
        Response::Holdings(holdings)
    }

    /// Answers a [`Request::TombstoneDrop`]: drops each key whose object is
    /// still exactly the given tombstone and for which no hint is held.
    pub(super) async fn drop_tombstones(&self, entries: &[(ObjectKey, Object)]) -> Response {
        if entries.len() > TOMBSTONE_BATCH_MAX {
            return Response::error(
                ErrorKind::InvalidInput,
                format!("at most {TOMBSTONE_BATCH_MAX} keys per tombstone drop"),
            );
        }
        for (key, _) in entries {
            if let Err(e) = key.validate() {
                return Response::error(ErrorKind::InvalidInput, e.to_string());
            }
        }
        // A new incarnation first: this node forgets its counters for the
        // keys it drops, so a dot it mints later must not repeat one minted
        // before (a client holding a context from before the delete would
        // supersede the new write unseen; the simulator's planted
        // `KeepIncarnationAfterCollection` shows it).
        if entries.iter().any(|(_, t)| is_collectable(t)) {
            if let Err(e) = self.renew_incarnation().await {
                return storage_failure(e);
            }
        }
        let mut dropped = 0u32;
        for (key, tombstone) in entries {
            if !is_collectable(tombstone) {
                continue;
            }
            let storage_key = key.storage_key();
            match self.store.hints_for_key(&storage_key).await {
                Ok(h) if h.is_empty() => {}
                Ok(_) => continue,
                Err(e) => return storage_failure(e),
            }
            let expected = tombstone.clone();
            let result = self
                .store
                .update(storage_key, move |current: Option<Object>| {
                    if current.as_ref() == Some(&expected) {
                        (None, true)
                    } else {
                        (current, false)
                    }
                })
                .await;
            match result {
                Ok(true) => {
                    dropped += 1;
                    debug!("tombstone collected");
                }
                Ok(false) => {}
                Err(e) => return storage_failure(e),
            }
        }
        self.tombstones_collected
            .fetch_add(u64::from(dropped), AtomicOrdering::Relaxed);
        Response::Dropped(dropped)
    }
}
