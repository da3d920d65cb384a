//! Get and put coordination as pure state machines (paper §4.5).
//!
//! A coordinator is created with the replicas to ask and the quorum to reach;
//! it returns the messages to send as values ([`Outbound`]), is fed each reply
//! or failure as it arrives, and says when it has an answer. It never waits,
//! sends or reads a clock: the node driver and the simulator do that, and
//! feed it what happened. Decisions are values (raft-rs's `VoteResult`):
//! [`Quorum`] is `Pending`, `Reached` or `Failed`.
//!
//! - [`PutCoordinator`]: the coordinator has already minted the new version
//!   and written it locally (that counts as the first acknowledgement); it
//!   sends the object to the other replicas and answers after `W` acks.
//! - [`GetCoordinator`]: asks `N` replicas (itself included), answers with the
//!   merge of the first `R` replies, and keeps listening so that read repair
//!   can send the merged object to replicas that answered with less.

use std::collections::BTreeMap;

use crate::core::clock::Object;
use crate::core::key::ObjectKey;
use crate::core::message::Request;

/// Where a quorum stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// Not enough answers yet, and it can still be reached.
    Pending,
    /// Enough successes.
    Reached,
    /// So many failures that it can no longer be reached.
    Failed,
}

/// Counts successes and failures among `total` replicas towards `needed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    needed: usize,
    total: usize,
    successes: usize,
    failures: usize,
}

impl Tally {
    /// A tally needing `needed` of `total`.
    pub fn new(needed: usize, total: usize) -> Self {
        Self {
            needed,
            total,
            successes: 0,
            failures: 0,
        }
    }

    /// Records a success.
    pub fn success(&mut self) -> Quorum {
        self.successes += 1;
        self.state()
    }

    /// Records a failure.
    pub fn failure(&mut self) -> Quorum {
        self.failures += 1;
        self.state()
    }

    /// Successes so far.
    pub fn successes(&self) -> usize {
        self.successes
    }

    /// The quorum needed.
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// Where the quorum stands.
    pub fn state(&self) -> Quorum {
        if self.successes >= self.needed {
            Quorum::Reached
        } else if self.total.saturating_sub(self.failures) < self.needed {
            Quorum::Failed
        } else {
            Quorum::Pending
        }
    }
}

/// A message the coordinator wants sent to a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The replica's node name.
    pub to: String,
    /// What to send.
    pub request: Request,
}

/// A put's replication to the preference list, after the local write.
#[derive(Debug, Clone)]
pub struct PutCoordinator {
    tally: Tally,
    pending: Vec<String>,
    decided: bool,
}

impl PutCoordinator {
    /// Starts replicating `object` (already stored locally by `me`) to the
    /// other members of `replicas`; answers after `w` acknowledgements.
    pub fn start(
        key: &ObjectKey,
        object: &Object,
        replicas: &[&str],
        me: &str,
        w: usize,
    ) -> (Self, Vec<Outbound>) {
        let others: Vec<String> = replicas
            .iter()
            .filter(|&&r| r != me)
            .map(|r| r.to_string())
            .collect();
        let total = others.len() + 1;
        let mut tally = Tally::new(w.clamp(1, total), total);
        tally.success();
        let outbound = others
            .iter()
            .map(|to| Outbound {
                to: to.clone(),
                request: Request::Replicate {
                    key: key.clone(),
                    object: object.clone(),
                },
            })
            .collect();
        (
            Self {
                tally,
                pending: others,
                decided: false,
            },
            outbound,
        )
    }

    /// A replica acknowledged.
    pub fn on_ack(&mut self, from: &str) -> Quorum {
        if self.take(from) {
            self.tally.success();
        }
        self.tally.state()
    }

    /// A replica failed or is unreachable.
    pub fn on_failure(&mut self, from: &str) -> Quorum {
        if self.take(from) {
            self.tally.failure();
        }
        self.tally.state()
    }

    fn take(&mut self, from: &str) -> bool {
        match self.pending.iter().position(|p| p == from) {
            Some(i) => {
                self.pending.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// The first time the quorum is decided, returns it; `None` before and after.
    pub fn decision(&mut self) -> Option<Quorum> {
        match self.tally.state() {
            Quorum::Pending => None,
            _ if self.decided => None,
            state => {
                self.decided = true;
                Some(state)
            }
        }
    }

    /// Acknowledgements so far (the local write included).
    pub fn acks(&self) -> usize {
        self.tally.successes()
    }

    /// W.
    pub fn needed(&self) -> usize {
        self.tally.needed()
    }

    /// Replicas that have not answered yet.
    pub fn outstanding(&self) -> &[String] {
        &self.pending
    }
}

/// A get: reads from the preference list, answers with the merge of R replies.
#[derive(Debug, Clone)]
pub struct GetCoordinator {
    tally: Tally,
    replies: BTreeMap<String, Option<Object>>,
    pending: Vec<String>,
    decided: bool,
}

impl GetCoordinator {
    /// Starts a read of `key` from every member of `replicas` (the local one
    /// included: the driver answers that one from its own store).
    pub fn start(key: &ObjectKey, replicas: &[&str], r: usize) -> (Self, Vec<Outbound>) {
        let total = replicas.len();
        let outbound = replicas
            .iter()
            .map(|to| Outbound {
                to: to.to_string(),
                request: Request::Read { key: key.clone() },
            })
            .collect();
        (
            Self {
                tally: Tally::new(r.clamp(1, total.max(1)), total),
                replies: BTreeMap::new(),
                pending: replicas.iter().map(|r| r.to_string()).collect(),
                decided: false,
            },
            outbound,
        )
    }

    /// A replica answered with its object (`None`: it has none).
    pub fn on_reply(&mut self, from: &str, object: Option<Object>) -> Quorum {
        if self.take(from) {
            self.replies.insert(from.to_string(), object);
            self.tally.success();
        }
        self.tally.state()
    }

    /// A replica failed or is unreachable.
    pub fn on_failure(&mut self, from: &str) -> Quorum {
        if self.take(from) {
            self.tally.failure();
        }
        self.tally.state()
    }

    fn take(&mut self, from: &str) -> bool {
        match self.pending.iter().position(|p| p == from) {
            Some(i) => {
                self.pending.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// The first time the quorum is decided, returns it; `None` before and after.
    pub fn decision(&mut self) -> Option<Quorum> {
        match self.tally.state() {
            Quorum::Pending => None,
            _ if self.decided => None,
            state => {
                self.decided = true;
                Some(state)
            }
        }
    }

    /// The merge of every reply so far.
    pub fn merged(&self) -> Object {
        self.replies
            .values()
            .flatten()
            .fold(Object::new(), |acc, o| acc.merge(o))
    }

    /// Replies so far.
    pub fn replies(&self) -> &BTreeMap<String, Option<Object>> {
        &self.replies
    }

    /// R.
    pub fn needed(&self) -> usize {
        self.tally.needed()
    }

    /// Replicas that have not answered yet.
    pub fn outstanding(&self) -> &[String] {
        &self.pending
    }

    /// Replicas that answered with less than the merge, and what to send them
    /// (read repair).
    pub fn stale_replicas(&self) -> Vec<(String, Object)> {
        let merged = self.merged();
        self.replies
            .iter()
            .filter(|(_, o)| match o {
                Some(o) => !o.includes(&merged),
                None => !merged.siblings().is_empty(),
            })
            .map(|(n, _)| (n.clone(), merged.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clock::{ReplicaId, VersionVector};

    fn key() -> ObjectKey {
        ObjectKey::new("default", b"k").unwrap()
    }

    fn obj(node: &str, v: &[u8]) -> Object {
        Object::new()
            .update(&VersionVector::new(), Some(v.to_vec()), &ReplicaId::new(node, 1))
            .0
    }

    #[test]
    fn tally_table() {
        // (needed, total, successes, failures) -> state
        let table = [
            (2, 3, 0, 0, Quorum::Pending),
            (2, 3, 2, 0, Quorum::Reached),
            (2, 3, 1, 1, Quorum::Pending),
            (2, 3, 0, 2, Quorum::Failed),
            (3, 3, 2, 1, Quorum::Failed),
            (1, 1, 1, 0, Quorum::Reached),
        ];
        for (needed, total, s, f, want) in table {
            let mut t = Tally::new(needed, total);
            for _ in 0..s {
                t.success();
            }
            for _ in 0..f {
                t.failure();
            }
            assert_eq!(t.state(), want, "{needed} of {total}, {s} ok {f} failed");
        }
    }

    #[test]
    fn put_counts_the_local_write_and_decides_once() {
        let o = obj("n1", b"v");
        let (mut c, out) = PutCoordinator::start(&key(), &o, &["n1", "n2", "n3"], "n1", 2);
        let targets: Vec<_> = out.iter().map(|m| m.to.as_str()).collect();
        assert_eq!(targets, vec!["n2", "n3"]);
        assert_eq!(c.decision(), None);
        c.on_ack("n2");
        assert_eq!(c.decision(), Some(Quorum::Reached));
        c.on_ack("n3");
        assert_eq!(c.decision(), None, "decided only once");
        assert_eq!(c.acks(), 3);
    }

    #[test]
    fn put_fails_when_w_is_out_of_reach_and_ignores_strangers() {
        let o = obj("n1", b"v");
        let (mut c, _) = PutCoordinator::start(&key(), &o, &["n1", "n2", "n3"], "n1", 3);
        c.on_ack("n9");
        c.on_ack("n2");
        c.on_ack("n2");
        assert_eq!(c.decision(), None);
        c.on_failure("n3");
        assert_eq!(c.decision(), Some(Quorum::Failed));
        assert_eq!(c.acks(), 2);
    }

    #[test]
    fn get_merges_replies_and_finds_stale_replicas() {
        let (mut g, out) = GetCoordinator::start(&key(), &["n1", "n2", "n3"], 2);
        assert_eq!(out.len(), 3);
        let a = obj("n1", b"a");
        g.on_reply("n1", Some(a.clone()));
        assert_eq!(g.decision(), None);
        g.on_reply("n2", None);
        assert_eq!(g.decision(), Some(Quorum::Reached));
        assert_eq!(g.merged(), a);
        let b = obj("n3", b"b");
        g.on_reply("n3", Some(b.clone()));
        let stale: Vec<String> = g.stale_replicas().into_iter().map(|(n, _)| n).collect();
        assert_eq!(stale, vec!["n1", "n2", "n3"]);
        assert_eq!(g.merged().siblings().len(), 2);
    }

    #[test]
    fn get_fails_when_r_is_out_of_reach() {
        let (mut g, _) = GetCoordinator::start(&key(), &["n1", "n2", "n3"], 2);
        g.on_failure("n1");
        assert_eq!(g.decision(), None);
        g.on_failure("n2");
        assert_eq!(g.decision(), Some(Quorum::Failed));
    }
}
