//! Tombstone collection: when a deleted key may be forgotten for good
//! (DESIGN.md §1 "Deletes are real"; the paper leaves this open).
//!
//! A delete is a put of a tombstone (a sibling with no value) with the
//! deleter's context, so it causally supersedes the values it saw and
//! replicates, hands off and read-repairs like any write. Kept forever,
//! tombstones pile up; dropped too early, the deleted value comes back: a
//! replica, hint or message still carrying the old value would meet no
//! tombstone to lose against, and read repair, handoff or anti-entropy
//! would spread the old value again (resurrection).
//!
//! # The rule
//!
//! A key whose object holds only tombstones (`T`) is dropped when
//!
//! 1. `T` has stayed unchanged at the collecting node for the grace period
//!    (`tombstone_grace_ms`, one hour by default), and
//! 2. EVERY member of the cluster answers a check, each saying that its
//!    object for the key is exactly `T` or that it has none, AND that it
//!    holds no hint for the key (home replicas, and fallbacks too: a
//!    fallback that coordinated a put keeps its own object, and hints live
//!    on any node), and
//! 3. a second check, at least `settle` (twice the request timeout, or the
//!    grace period if that is longer) after the first one passed, passes
//!    again.
//!
//! Then every member drops the key with a compare: "drop it if your object
//! is still exactly `T` and you hold no hint for it", applied inside the
//! storage writer's read-modify-write, so a write that arrived meanwhile is
//! never dropped.
//!
//! # Why nothing resurrects
//!
//! The old value `V` can only come back from somewhere it still exists: an
//! object table, a hint table, or a message in flight. At the first passing
//! check every member held `T` or nothing and no hints, so no object or
//! hint anywhere held `V` without `T` (an object holding `T` cannot hold a
//! sibling `T` supersedes: merge drops it). From then on no node can make a
//! new message carrying `V` — it has nothing to make it from. Messages made
//! before are either requests whose caller waits at most the request
//! timeout, or background replications and anti-entropy exchanges bounded
//! by it or paced well within the grace period; `settle` outlives them, and
//! any of them that landed merged into `T` (which supersedes `V`), so the
//! second check still sees exactly `T`. A member
//! that did not answer blocks collection (it might hold `V`); a member
//! that is behind (its object is older than `T`) gets `T` sent to it and
//! the key waits for the next round. What this cannot prevent: a node
//! restored from a backup older than the collection, or a member that
//! joins with old data it got elsewhere — the same limit as Cassandra's
//! `gc_grace_seconds`; restore old disks only after wiping them.
//!
//! This module holds the pure parts: what a member answers
//! ([`holding`]), what the collector concludes ([`decide`]) and the
//! per-key timers ([`Tracker`]). The node's background task (in
//! `crate::node`) scans its store, asks its peers and applies the drops.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::core::clock::Object;

/// Default grace period before a tombstone may be collected: one hour.
pub const TOMBSTONE_GRACE_MS_DEFAULT: u64 = 3_600_000;
/// Most keys one check or drop request names.
pub const TOMBSTONE_BATCH_MAX: usize = 256;
/// Most tombstones one node tracks at a time; more wait for a later sweep.
pub const TOMBSTONES_TRACKED_MAX: usize = 100_000;

/// Whether an object holds only tombstones (and at least one): a deleted
/// key that collection may remove.
pub fn is_collectable(object: &Object) -> bool {
    !object.siblings().is_empty() && object.is_deleted()
}

/// What one member holds for a key, compared with the collector's
/// tombstone `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Holding {
    /// Its object is exactly `T`, and it holds no hint for the key.
    Same,
    /// It has no object and no hint for the key.
    Absent,
    /// Its object is older than `T` (merging `T` in gives `T`): send it `T`.
    Behind,
    /// It holds something `T` does not include (a newer or concurrent
    /// write): the key is alive again, or about to be.
    Differs,
    /// It holds a hint for the key: wait for the handoff.
    HintsPending,
}

/// What a member with `own` as its object and `hints_pending` hints for the
/// key answers about the collector's tombstone `tombstone`.
pub fn holding(own: Option<&Object>, hints_pending: bool, tombstone: &Object) -> Holding {
    if hints_pending {
        return Holding::HintsPending;
    }
    match own {
        None => Holding::Absent,
        Some(o) if o == tombstone => Holding::Same,
        Some(o) if tombstone.includes(o) => Holding::Behind,
        Some(_) => Holding::Differs,
    }
}

/// What the collector concludes from one round of answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every member holds `T` or nothing, and no hints: the check passed.
    AllHold,
    /// These members are behind: send them `T`, then check again later.
    Repair(Vec<String>),
    /// Not now (a member did not answer, holds hints, or holds newer data).
    NotYet,
}

/// The verdict for a key from every member's answer (`None`: it did not
/// answer). `members` is the whole cluster, the collector included.
pub fn decide(members: &[String], answers: &BTreeMap<String, Option<Holding>>) -> Verdict {
    let mut behind = Vec::new();
    for m in members {
        match answers.get(m).copied().flatten() {
            Some(Holding::Same | Holding::Absent) => {}
            Some(Holding::Behind) => behind.push(m.clone()),
            Some(Holding::Differs | Holding::HintsPending) | None => return Verdict::NotYet,
        }
    }
    if behind.is_empty() {
        Verdict::AllHold
    } else {
        Verdict::Repair(behind)
    }
}

/// What to do with a key after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Drop it on every member now.
    Drop,
    /// The first check passed; check again after `settle`.
    Confirmed,
    /// The check failed; wait and try again.
    Retry,
}

#[derive(Debug, Clone)]
struct Entry {
    object: Object,
    /// When the key may next be checked.
    due: Duration,
    /// When a check first passed, since the object last changed.
    confirmed: Option<Duration>,
    /// Seen in the current sweep.
    seen: bool,
}

/// Per-key timers of the tombstones one node may collect. Time is an
/// argument (`now`, since any fixed start): the tracker has no clock.
#[derive(Debug, Clone)]
pub struct Tracker {
    grace: Duration,
    settle: Duration,
    capacity: usize,
    entries: BTreeMap<Vec<u8>, Entry>,
}

impl Tracker {
    /// A tracker with this grace period and settle time, tracking at most
    /// `capacity` keys.
    pub fn new(grace: Duration, settle: Duration, capacity: usize) -> Self {
        Self {
            grace,
            settle,
            capacity,
            entries: BTreeMap::new(),
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Starts a sweep over the store: keys not observed before
    /// [`Tracker::end_sweep`] are forgotten.
    pub fn begin_sweep(&mut self) {
        for e in self.entries.values_mut() {
            e.seen = false;
        }
    }

    /// Forgets keys the sweep did not see (dropped, or written again).
    pub fn end_sweep(&mut self) {
        self.entries.retain(|_, e| e.seen);
    }

    /// The store holds `object` for `key` at `now`. A tombstone must stay
    /// unchanged for the grace period plus `extra` before this node checks
    /// it (`extra` is zero at the key's first replica, more elsewhere, so
    /// one node usually does the work).
    /// Objects with a live value are not tracked.
    pub fn observe(&mut self, key: &[u8], object: &Object, now: Duration, extra: Duration) {
        if !is_collectable(object) {
            self.entries.remove(key);
            return;
        }
        if let Some(e) = self.entries.get_mut(key) {
            e.seen = true;
            if &e.object != object {
                e.object = object.clone();
                e.due = now + self.grace + extra;
                e.confirmed = None;
            }
            return;
        }
        if self.entries.len() >= self.capacity {
            return;
        }
        self.entries.insert(
            key.to_vec(),
            Entry {
                object: object.clone(),
                due: now + self.grace + extra,
                confirmed: None,
                seen: true,
            },
        );
    }

    /// Keys due for a check at `now`, with the tombstone to check, at most
    /// `limit`, in key order.
    pub fn due(&self, now: Duration, limit: usize) -> Vec<(Vec<u8>, Object)> {
        self.entries
            .iter()
            .filter(|(_, e)| e.due <= now)
            .take(limit)
            .map(|(k, e)| (k.clone(), e.object.clone()))
            .collect()
    }

    /// Records a check of `key` at `now` with this verdict, and says what to do.
    pub fn on_check(&mut self, key: &[u8], verdict: &Verdict, now: Duration) -> Action {
        let Some(e) = self.entries.get_mut(key) else {
            return Action::Retry;
        };
        match (verdict, e.confirmed) {
            (Verdict::AllHold, Some(first)) if now >= first + self.settle => {
                self.entries.remove(key);
                Action::Drop
            }
            (Verdict::AllHold, Some(_)) => Action::Confirmed,
            (Verdict::AllHold, None) => {
                e.confirmed = Some(now);
                e.due = now + self.settle;
                Action::Confirmed
            }
            _ => {
                e.confirmed = None;
                e.due = now + self.settle;
                Action::Retry
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clock::{ReplicaId, VersionVector};

    fn r(name: &str) -> ReplicaId {
        ReplicaId::new(name, 1)
    }

    /// A value written, then deleted with its context: (value, tombstone).
    fn written_then_deleted() -> (Object, Object) {
        let (v, _) = Object::new().update(&VersionVector::new(), Some(b"v".to_vec()), &r("n1"));
        let (t, _) = v.update(v.context(), None, &r("n1"));
        (v, t)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_objects_holding_nothing_but_tombstones_are_collectable() {
        let (v, t) = written_then_deleted();
        assert!(!is_collectable(&Object::new()));
        assert!(!is_collectable(&v));
        assert!(is_collectable(&t));
        // A concurrent write beside the tombstone keeps the key alive.
        let (both, _) = t.update(&VersionVector::new(), Some(b"w".to_vec()), &r("n2"));
        assert!(!is_collectable(&both));
    }

    #[test]
    fn members_answer_by_comparing_with_the_tombstone() {
        let (v, t) = written_then_deleted();
        assert_eq!(holding(Some(&t), false, &t), Holding::Same);
        assert_eq!(holding(None, false, &t), Holding::Absent);
        assert_eq!(holding(Some(&v), false, &t), Holding::Behind);
        assert_eq!(holding(Some(&t), true, &t), Holding::HintsPending);
        assert_eq!(holding(None, true, &t), Holding::HintsPending);
        let (newer, _) = t.update(t.context(), Some(b"again".to_vec()), &r("n2"));
        assert_eq!(holding(Some(&newer), false, &t), Holding::Differs);
        let (concurrent, _) = v.update(v.context(), Some(b"c".to_vec()), &r("n3"));
        assert_eq!(holding(Some(&concurrent), false, &t), Holding::Differs);
    }

    #[test]
    fn every_member_must_answer_same_or_absent() {
        let members = names(&["n1", "n2", "n3"]);
        let answers = |list: [Option<Holding>; 3]| -> BTreeMap<String, Option<Holding>> {
            members.iter().cloned().zip(list).collect()
        };
        use Holding::*;
        assert_eq!(
            decide(&members, &answers([Some(Same), Some(Same), Some(Absent)])),
            Verdict::AllHold
        );
        assert_eq!(
            decide(&members, &answers([Some(Same), None, Some(Same)])),
            Verdict::NotYet,
            "a member that did not answer might hold the old value"
        );
        assert_eq!(
            decide(
                &members,
                &answers([Some(Same), Some(HintsPending), Some(Same)])
            ),
            Verdict::NotYet
        );
        assert_eq!(
            decide(
                &members,
                &answers([Some(Same), Some(Differs), Some(Behind)])
            ),
            Verdict::NotYet
        );
        assert_eq!(
            decide(&members, &answers([Some(Behind), Some(Same), Some(Behind)])),
            Verdict::Repair(names(&["n1", "n3"]))
        );
        // Answers from non-members do not count; missing members do.
        let mut partial = answers([Some(Same), Some(Same), Some(Same)]);
        partial.remove("n3");
        partial.insert("n9".into(), Some(Same));
        assert_eq!(decide(&members, &partial), Verdict::NotYet);
    }

    #[test]
    fn a_tombstone_is_dropped_only_after_grace_and_two_passing_checks_settle_apart() {
        let (v, t) = written_then_deleted();
        let grace = Duration::from_secs(10);
        let settle = Duration::from_secs(4);
        let ms = Duration::from_millis;
        let mut tracker = Tracker::new(grace, settle, 10);
        tracker.begin_sweep();
        tracker.observe(b"live", &v, ms(0), Duration::ZERO);
        tracker.observe(b"k", &t, ms(0), Duration::ZERO);
        tracker.end_sweep();
        assert_eq!(tracker.len(), 1, "only the tombstone is tracked");
        assert!(
            tracker.due(ms(9_999), 10).is_empty(),
            "not before the grace period"
        );
        assert_eq!(
            tracker.due(ms(10_000), 10),
            vec![(b"k".to_vec(), t.clone())]
        );

        // The first passing check only confirms.
        assert_eq!(
            tracker.on_check(b"k", &Verdict::AllHold, ms(10_000)),
            Action::Confirmed
        );
        assert!(tracker.due(ms(13_999), 10).is_empty());
        // A failure in between starts over.
        assert_eq!(
            tracker.on_check(b"k", &Verdict::NotYet, ms(14_000)),
            Action::Retry
        );
        assert_eq!(
            tracker.on_check(b"k", &Verdict::AllHold, ms(18_000)),
            Action::Confirmed
        );
        assert_eq!(
            tracker.on_check(b"k", &Verdict::AllHold, ms(21_000)),
            Action::Confirmed,
            "not yet settled"
        );
        assert_eq!(
            tracker.on_check(b"k", &Verdict::AllHold, ms(22_000)),
            Action::Drop
        );
        assert!(tracker.is_empty());
    }

    #[test]
    fn a_changed_object_restarts_the_grace_period_and_a_revived_key_is_forgotten() {
        let (_, t) = written_then_deleted();
        let grace = Duration::from_secs(10);
        let mut tracker = Tracker::new(grace, Duration::from_secs(1), 10);
        let s = Duration::from_secs;
        tracker.observe(b"k", &t, s(0), Duration::ZERO);
        // A second, concurrent delete changes the object: the clock restarts.
        let (t2, _) = t.update(&VersionVector::new(), None, &r("n2"));
        assert!(is_collectable(&t2));
        tracker.observe(b"k", &t2, s(5), Duration::ZERO);
        assert!(tracker.due(s(14), 10).is_empty());
        assert_eq!(tracker.due(s(15), 10).len(), 1);
        // Written again: no longer tracked.
        let (alive, _) = t2.update(t2.context(), Some(b"x".to_vec()), &r("n1"));
        tracker.observe(b"k", &alive, s(16), Duration::ZERO);
        assert!(tracker.is_empty());
        // A key gone from the store is forgotten at the end of a sweep.
        tracker.observe(b"gone", &t, s(17), Duration::ZERO);
        tracker.begin_sweep();
        tracker.end_sweep();
        assert!(tracker.is_empty());
        // Extra delay for nodes that are not the first replica.
        tracker.observe(b"k2", &t, s(0), s(10));
        assert!(tracker.due(s(19), 10).is_empty());
        assert_eq!(tracker.due(s(20), 10).len(), 1);
    }

    #[test]
    fn the_tracker_is_bounded() {
        let (_, t) = written_then_deleted();
        let mut tracker = Tracker::new(Duration::ZERO, Duration::ZERO, 2);
        for k in [b"a", b"b", b"c"] {
            tracker.observe(k, &t, Duration::ZERO, Duration::ZERO);
        }
        assert_eq!(tracker.len(), 2);
    }
}
