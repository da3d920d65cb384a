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

/// One node a coordinator sends to: a home replica of the key, or a fallback
/// standing in for one (sloppy quorum, paper §4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node to send to.
    pub node: String,
    /// For a fallback: the home replica it stands in for, named in the hint
    /// it stores.
    pub hint_for: Option<String>,
}

/// Who a coordinator asks first, and who stands by.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaPlan {
    /// One target per home replica that can be served: the home replica
    /// itself when reachable, else the next reachable fallback with a hint.
    pub targets: Vec<Target>,
    /// Fallbacks not used yet, in ring order; a target that fails is
    /// replaced by the first of them.
    pub spares: Vec<String>,
}

impl ReplicaPlan {
    /// The sloppy-quorum plan for a key whose extended preference list is
    /// `extended` (home replicas first, then fallbacks, in ring order):
    /// every one of the first `n` that `reachable` accepts is a target; each
    /// unreachable one is replaced by the next reachable fallback, which gets
    /// a hint naming it. A home replica with no reachable fallback left is
    /// asked itself; the replaced home replicas, then the unreachable
    /// fallbacks, stay at the end of the spares:
    /// the failure detector's view is advice (a peer starved of CPU misses
    /// heartbeats yet still answers), so a put is refused only after every
    /// node that could take it has actually failed.
    pub fn sloppy(extended: &[&str], n: usize, reachable: impl Fn(&str) -> bool) -> Self {
        let n = n.min(extended.len());
        let (home, rest) = extended.split_at(n);
        let mut fallbacks = rest.iter().filter(|f| reachable(f)).map(|f| f.to_string());
        let mut targets = Vec::with_capacity(n);
        for owner in home {
            if reachable(owner) {
                targets.push(Target {
                    node: owner.to_string(),
                    hint_for: None,
                });
            } else if let Some(node) = fallbacks.next() {
                targets.push(Target {
                    node,
                    hint_for: Some(owner.to_string()),
                });
            } else {
                targets.push(Target {
                    node: owner.to_string(),
                    hint_for: None,
                });
            }
        }
        // Then the home replicas a fallback stands in for (doubted, but
        // the ones that hold the key), then the doubted fallbacks.
        let mut spares: Vec<String> = fallbacks.collect();
        spares.extend(
            home.iter()
                .filter(|h| !targets.iter().any(|t| t.node == **h))
                .map(|h| h.to_string()),
        );
        spares.extend(rest.iter().filter(|f| !reachable(f)).map(|f| f.to_string()));
        Self { targets, spares }
    }

    /// A strict plan: exactly these replicas, no fallbacks.
    pub fn strict(replicas: &[&str]) -> Self {
        Self {
            targets: replicas
                .iter()
                .map(|r| Target {
                    node: r.to_string(),
                    hint_for: None,
                })
                .collect(),
            spares: Vec::new(),
        }
    }

    /// How many home replicas the plan can serve at best.
    fn slots(&self, n: usize) -> usize {
        n.max(self.targets.len())
    }
}

/// The targets in flight and the spares that can replace one that fails.
#[derive(Debug, Clone)]
struct Flight {
    pending: Vec<Target>,
    spares: Vec<String>,
    /// Every target asked, in order, with the home replica it served.
    asked: Vec<Target>,
}

impl Flight {
    fn new(plan: &ReplicaPlan) -> Self {
        Self {
            pending: plan.targets.clone(),
            spares: plan.spares.clone(),
            asked: plan.targets.clone(),
        }
    }

    fn outstanding(&self) -> Vec<&str> {
        self.pending.iter().map(|t| t.node.as_str()).collect()
    }

    fn take(&mut self, from: &str) -> Option<Target> {
        let i = self.pending.iter().position(|p| p.node == from)?;
        Some(self.pending.swap_remove(i))
    }

    /// Replaces a failed target with the next spare, which stands in for the
    /// same home replica.
    fn replace(&mut self, failed: Target) -> Option<Target> {
        if self.spares.is_empty() {
            return None;
        }
        let node = self.spares.remove(0);
        let target = Target {
            node,
            hint_for: Some(failed.hint_for.unwrap_or(failed.node)),
        };
        self.pending.push(target.clone());
        self.asked.push(target.clone());
        Some(target)
    }
}

/// A put's replication after the coordinator's local write: sends the new
/// object to the other targets (fallbacks with a hint), answers after `W`
/// acknowledgements from any of them (sloppy quorum), and sends to a spare
/// in place of a target that fails.
#[derive(Debug, Clone)]
pub struct PutCoordinator {
    key: ObjectKey,
    object: Object,
    tally: Tally,
    flight: Flight,
    decided: bool,
}

impl PutCoordinator {
    /// Starts replicating `object`, already stored locally by `me`, to the
    /// plan's other targets; answers after `w` acknowledgements. The local
    /// write counts as the first one when `me` is a target.
    pub fn start(
        key: &ObjectKey,
        object: &Object,
        plan: &ReplicaPlan,
        n: usize,
        me: &str,
        w: usize,
    ) -> (Self, Vec<Outbound>) {
        let slots = plan.slots(n).max(1);
        let mut tally = Tally::new(w.clamp(1, slots), slots);
        let mut plan = plan.clone();
        plan.spares.retain(|s| s != me);
        let local = plan
            .targets
            .iter()
            .position(|t| t.node == me)
            .map(|i| plan.targets.remove(i));
        if local.is_some() {
            tally.success();
        }
        // Home replicas that no target serves count as failed from the start.
        for _ in plan.targets.len() + usize::from(local.is_some())..slots {
            tally.failure();
        }
        let mut flight = Flight::new(&plan);
        if let Some(local) = local {
            flight.asked.insert(0, local);
        }
        let this = Self {
            key: key.clone(),
            object: object.clone(),
            tally,
            flight,
            decided: false,
        };
        let outbound = plan.targets.iter().map(|t| this.replicate(t)).collect();
        (this, outbound)
    }

    fn replicate(&self, target: &Target) -> Outbound {
        Outbound {
            to: target.node.clone(),
            request: Request::Replicate {
                key: self.key.clone(),
                object: self.object.clone(),
                hint_for: target.hint_for.clone(),
            },
        }
    }

    /// A target acknowledged.
    pub fn on_ack(&mut self, from: &str) -> Quorum {
        if self.flight.take(from).is_some() {
            self.tally.success();
        }
        self.tally.state()
    }

    /// A target failed or is unreachable: the next spare takes its place
    /// (the message to send is returned), or, with none left, it counts as
    /// a failure.
    pub fn on_failure(&mut self, from: &str) -> Option<Outbound> {
        let failed = self.flight.take(from)?;
        match self.flight.replace(failed) {
            Some(target) => Some(self.replicate(&target)),
            None => {
                self.tally.failure();
                None
            }
        }
    }

    /// The first time the quorum is decided, returns it; `None` before and after.
    pub fn decision(&mut self) -> Option<Quorum> {
        decide(&self.tally, &mut self.decided)
    }

    /// Where the quorum stands.
    pub fn state(&self) -> Quorum {
        self.tally.state()
    }

    /// Acknowledgements so far (the local write included).
    pub fn acks(&self) -> usize {
        self.tally.successes()
    }

    /// W.
    pub fn needed(&self) -> usize {
        self.tally.needed()
    }

    /// Targets that have not answered yet.
    pub fn outstanding(&self) -> Vec<&str> {
        self.flight.outstanding()
    }

    /// Every target asked so far, fallbacks with the replica they stood in for.
    pub fn asked(&self) -> &[Target] {
        &self.flight.asked
    }
}

fn decide(tally: &Tally, decided: &mut bool) -> Option<Quorum> {
    match tally.state() {
        Quorum::Pending => None,
        _ if *decided => None,
        state => {
            *decided = true;
            Some(state)
        }
    }
}

/// A get: reads from the plan's targets (fallbacks answer with the hints
/// they hold), answers with the merge of the first R replies, asks a spare
/// in place of a target that fails, and keeps listening so that read repair
/// can send the merged object to home replicas that answered with less.
#[derive(Debug, Clone)]
pub struct GetCoordinator {
    key: ObjectKey,
    tally: Tally,
    replies: BTreeMap<String, Option<Object>>,
    flight: Flight,
    /// Targets not asked yet: a quorum read asks R first and the others
    /// only when an answer fails, tells nothing, or is slow.
    held: Vec<Target>,
    decided: bool,
}

impl GetCoordinator {
    /// Starts a read of `key` from every target of `plan` (the local one
    /// included: the driver answers that one from its own store).
    pub fn start(key: &ObjectKey, plan: &ReplicaPlan, n: usize, r: usize) -> (Self, Vec<Outbound>) {
        Self::begin(key, plan, n, r, None)
    }

    /// Starts a read of `key` from R targets of `plan` only: `first` (the
    /// coordinator itself, answered from its own store) if it is one, then
    /// home replicas before fallbacks. The others are held: the driver calls
    /// [`Self::more`] after every answer, which asks one in place of a target
    /// that failed or told nothing, and [`Self::widen`] when an answer is
    /// slow. R of N still answer, so R + W > N keeps its promise; read repair
    /// sees only the targets asked.
    pub fn start_quorum(
        key: &ObjectKey,
        plan: &ReplicaPlan,
        n: usize,
        r: usize,
        first: &str,
    ) -> (Self, Vec<Outbound>) {
        Self::begin(key, plan, n, r, Some(first))
    }

    fn begin(
        key: &ObjectKey,
        plan: &ReplicaPlan,
        n: usize,
        r: usize,
        quorum_first: Option<&str>,
    ) -> (Self, Vec<Outbound>) {
        let total = plan.slots(n).max(1);
        let needed = r.clamp(1, total.max(1));
        let mut tally = Tally::new(needed, total);
        for _ in plan.targets.len()..total {
            tally.failure();
        }
        let mut held = Vec::new();
        let mut flight = Flight::new(plan);
        if let Some(first) = quorum_first {
            // The local target, then home replicas, then fallbacks.
            let mut order = plan.targets.clone();
            order.sort_by_key(|t| (t.node != first, t.hint_for.is_some()));
            held = order.split_off(needed.min(order.len()));
            flight.pending = order.clone();
            flight.asked = order;
        }
        let outbound = flight
            .pending
            .iter()
            .map(|t| Outbound {
                to: t.node.clone(),
                request: Request::Read { key: key.clone() },
            })
            .collect();
        (
            Self {
                key: key.clone(),
                tally,
                replies: BTreeMap::new(),
                flight,
                held,
                decided: false,
            },
            outbound,
        )
    }

    /// Held targets to ask now: enough that the answers still possible can
    /// make R (a target failed, or a fallback had nothing for the key).
    pub fn more(&mut self) -> Vec<Outbound> {
        let mut out = Vec::new();
        while !self.held.is_empty()
            && self.tally.successes() + self.flight.pending.len() < self.tally.needed()
        {
            out.push(self.ask_held());
        }
        out
    }

    /// Every held target, asked now (an answer is slow).
    pub fn widen(&mut self) -> Vec<Outbound> {
        let mut out = Vec::new();
        while !self.held.is_empty() {
            out.push(self.ask_held());
        }
        out
    }

    fn ask_held(&mut self) -> Outbound {
        let target = self.held.remove(0);
        self.flight.pending.push(target.clone());
        self.flight.asked.push(target.clone());
        Outbound {
            to: target.node,
            request: Request::Read {
                key: self.key.clone(),
            },
        }
    }

    /// A target answered with its object (`None`: it has none). A fallback
    /// that has nothing for the key does not count towards R: it stands in
    /// for a home replica but knows nothing of the key's writes, so counting
    /// it would let a coordinator that wrongly suspects the home replicas
    /// answer "not found" for a key they hold.
    pub fn on_reply(&mut self, from: &str, object: Option<Object>) -> Quorum {
        if let Some(target) = self.flight.take(from) {
            let informed = object.is_some() || target.hint_for.is_none();
            self.replies.insert(from.to_string(), object);
            if informed {
                self.tally.success();
            } else {
                self.tally.failure();
            }
        }
        self.tally.state()
    }

    /// A target failed or is unreachable: the next spare is asked in its
    /// place (the message is returned), or it counts as a failure.
    pub fn on_failure(&mut self, from: &str) -> Option<Outbound> {
        let failed = self.flight.take(from)?;
        match self.flight.replace(failed) {
            Some(target) => Some(Outbound {
                to: target.node,
                request: Request::Read {
                    key: self.key.clone(),
                },
            }),
            None => {
                self.tally.failure();
                None
            }
        }
    }

    /// The first time the quorum is decided, returns it; `None` before and after.
    pub fn decision(&mut self) -> Option<Quorum> {
        decide(&self.tally, &mut self.decided)
    }

    /// Where the quorum stands.
    pub fn state(&self) -> Quorum {
        self.tally.state()
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

    /// Targets that have not answered yet.
    pub fn outstanding(&self) -> Vec<&str> {
        self.flight.outstanding()
    }

    /// Every target asked so far, fallbacks with the replica they stood in for.
    pub fn asked(&self) -> &[Target] {
        &self.flight.asked
    }

    /// Why this get fell short of R, in one sentence, and how many answers
    /// counted; `home` is the key's home replicas. A fallback that holds
    /// nothing for the key answered but does not count (see
    /// [`GetCoordinator::on_reply`]); saying "1 of 3 answered, R = 1" would
    /// read like a contradiction.
    pub fn shortfall(&self, home: &[String]) -> (String, usize) {
        let mut counted = 0;
        let mut empty_fallbacks = Vec::new();
        for target in self.asked() {
            match self.replies.get(&target.node) {
                Some(None) if target.hint_for.is_some() => {
                    empty_fallbacks.push(target.node.as_str())
                }
                Some(_) => counted += 1,
                None => {}
            }
        }
        let silent: Vec<&str> = home
            .iter()
            .map(String::as_str)
            .filter(|h| !self.replies.contains_key(*h))
            .collect();
        let mut message = format!(
            "read quorum not reached: {counted} of R = {} replicas answered",
            self.needed()
        );
        if !empty_fallbacks.is_empty() {
            message.push_str(&format!(
                "; {} answered as a fallback holding nothing for the key, which does not count",
                empty_fallbacks.join(", ")
            ));
        }
        if !silent.is_empty() {
            message.push_str(&format!(
                "; no answer from the key's replicas {}",
                silent.join(", ")
            ));
        }
        (message, counted)
    }

    /// Home replicas that answered with less than the merge, and what to
    /// send them (read repair). Fallbacks are not repaired: their hints go
    /// home by handoff.
    pub fn stale_replicas(&self) -> Vec<(String, Object)> {
        let merged = self.merged();
        let home: Vec<&str> = self
            .flight
            .asked
            .iter()
            .filter(|t| t.hint_for.is_none())
            .map(|t| t.node.as_str())
            .collect();
        self.replies
            .iter()
            .filter(|(n, _)| home.contains(&n.as_str()))
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
            .update(
                &VersionVector::new(),
                Some(v.to_vec()),
                &ReplicaId::new(node, 1),
            )
            .0
    }

    fn strict() -> ReplicaPlan {
        ReplicaPlan::strict(&["n1", "n2", "n3"])
    }

    const RING: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

    #[test]
    fn sloppy_plan_replaces_unreachable_home_replicas_in_ring_order() {
        let all = ReplicaPlan::sloppy(&RING, 3, |_| true);
        assert_eq!(all, {
            let mut p = ReplicaPlan::strict(&["n1", "n2", "n3"]);
            p.spares = vec!["n4".into(), "n5".into()];
            p
        });
        let plan = ReplicaPlan::sloppy(&RING, 3, |n| n != "n2" && n != "n4");
        let got: Vec<(&str, Option<&str>)> = plan
            .targets
            .iter()
            .map(|t| (t.node.as_str(), t.hint_for.as_deref()))
            .collect();
        assert_eq!(got, vec![("n1", None), ("n5", Some("n2")), ("n3", None)]);
        assert_eq!(
            plan.spares,
            vec!["n2".to_string(), "n4".to_string()],
            "the replaced home replica, then the unreachable fallback, are last resorts"
        );
        // With no reachable fallback the home replicas are asked anyway, and
        // unreachable fallbacks wait at the end of the spares.
        let none = ReplicaPlan::sloppy(&RING, 3, |n| n == "n1");
        assert_eq!(none, {
            let mut p = ReplicaPlan::strict(&["n1", "n2", "n3"]);
            p.spares = vec!["n4".into(), "n5".into()];
            p
        });
        let some = ReplicaPlan::sloppy(&RING, 3, |n| n != "n2" && n != "n3" && n != "n4");
        let got: Vec<(&str, Option<&str>)> = some
            .targets
            .iter()
            .map(|t| (t.node.as_str(), t.hint_for.as_deref()))
            .collect();
        assert_eq!(got, vec![("n1", None), ("n5", Some("n2")), ("n3", None)]);
        assert_eq!(some.spares, vec!["n2".to_string(), "n4".to_string()]);
    }

    #[test]
    fn sloppy_put_counts_fallback_acks_and_replaces_failed_targets() {
        let o = obj("n1", b"v");
        let plan = ReplicaPlan::sloppy(&RING, 3, |n| n != "n2");
        let (mut c, out) = PutCoordinator::start(&key(), &o, &plan, 3, "n1", 3);
        let sent: Vec<_> = out.iter().map(|m| m.to.as_str()).collect();
        assert_eq!(sent, vec!["n4", "n3"]);
        assert!(
            matches!(&out[0].request, Request::Replicate { hint_for: Some(h), .. } if h == "n2")
        );
        assert!(matches!(
            &out[1].request,
            Request::Replicate { hint_for: None, .. }
        ));
        // n3 fails in flight: n5 stands in for it with a hint.
        let replacement = c.on_failure("n3").expect("a spare is left");
        assert_eq!(replacement.to, "n5");
        assert!(
            matches!(&replacement.request, Request::Replicate { hint_for: Some(h), .. } if h == "n3")
        );
        c.on_ack("n4");
        assert_eq!(c.decision(), None);
        c.on_ack("n5");
        assert_eq!(c.decision(), Some(Quorum::Reached));
        assert_eq!(c.acks(), 3);
        assert_eq!(c.asked().len(), 4);
    }

    #[test]
    fn put_without_enough_targets_fails_at_once() {
        let o = obj("n1", b"v");
        let plan = ReplicaPlan::sloppy(&["n1"], 3, |_| true);
        let (mut c, out) = PutCoordinator::start(&key(), &o, &plan, 3, "n1", 2);
        assert!(out.is_empty());
        assert_eq!(c.decision(), Some(Quorum::Failed));
    }

    #[test]
    fn sloppy_get_asks_a_spare_when_a_target_fails_and_repairs_only_home_replicas() {
        let plan = ReplicaPlan::sloppy(&RING, 3, |_| true);
        let (mut g, out) = GetCoordinator::start(&key(), &plan, 3, 3);
        assert_eq!(out.len(), 3);
        let next = g.on_failure("n2").expect("n4 is a spare");
        assert_eq!(next.to, "n4");
        let a = obj("n1", b"a");
        g.on_reply("n1", Some(a.clone()));
        g.on_reply("n3", None);
        g.on_reply("n4", Some(a.clone()));
        assert_eq!(g.decision(), Some(Quorum::Reached));
        let stale: Vec<String> = g.stale_replicas().into_iter().map(|(n, _)| n).collect();
        assert_eq!(stale, vec!["n3"], "the fallback n4 is not read-repaired");
    }

    #[test]
    fn a_fallback_that_knows_nothing_of_the_key_does_not_count_towards_r() {
        let plan = ReplicaPlan::sloppy(&RING, 3, |n| n != "n2");
        let (mut g, _) = GetCoordinator::start(&key(), &plan, 3, 2);
        g.on_reply("n4", None);
        assert_eq!(g.decision(), None, "n4 stands in for n2 and has nothing");
        g.on_reply("n1", Some(obj("n1", b"a")));
        assert_eq!(g.decision(), None, "one informed answer of R = 2");
        g.on_reply("n3", None);
        assert_eq!(
            g.decision(),
            Some(Quorum::Reached),
            "a home replica's not-found counts"
        );
        let (mut g, _) = GetCoordinator::start(&key(), &plan, 3, 2);
        g.on_reply("n4", Some(obj("n1", b"a")));
        g.on_reply("n1", None);
        assert_eq!(
            g.decision(),
            Some(Quorum::Reached),
            "a fallback holding a hint counts"
        );
    }

    #[test]
    fn a_quorum_read_asks_itself_and_r_minus_one_others_then_more_when_needed() {
        // n2 is down: n4 stands in for it (a fallback comes last).
        let plan = ReplicaPlan::sloppy(&RING, 3, |n| n != "n2");
        let (mut g, out) = GetCoordinator::start_quorum(&key(), &plan, 3, 2, "n3");
        let asked: Vec<&str> = out.iter().map(|o| o.to.as_str()).collect();
        assert_eq!(
            asked,
            ["n3", "n1"],
            "itself first, home replicas before fallbacks"
        );
        assert!(g.more().is_empty(), "two in flight can make R = 2");
        g.on_reply("n3", Some(obj("n3", b"a")));
        assert!(g.more().is_empty());
        // n1 fails and has no spare left but n5: the spare is asked first.
        let spare = g.on_failure("n1").expect("n5 is a spare");
        assert_eq!(spare.to, "n5");
        assert!(g.more().is_empty(), "the spare may still make R");
        // The spare knows nothing of the key: the held fallback is asked.
        g.on_reply("n5", None);
        let more: Vec<String> = g.more().into_iter().map(|o| o.to).collect();
        assert_eq!(more, ["n4"]);
        assert_eq!(g.decision(), None);
        g.on_reply("n4", Some(obj("n3", b"a")));
        assert_eq!(g.decision(), Some(Quorum::Reached));
        // A slow answer: widen asks every held target at once.
        let plan = ReplicaPlan::sloppy(&RING, 3, |_| true);
        let (mut g, out) = GetCoordinator::start_quorum(&key(), &plan, 3, 2, "n9");
        assert_eq!(out.len(), 2, "a coordinator that is no replica asks R");
        let widened: Vec<String> = g.widen().into_iter().map(|o| o.to).collect();
        assert_eq!(widened, ["n3"]);
        assert!(g.widen().is_empty());
        assert_eq!(g.outstanding().len(), 3);
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
        let (mut c, out) = PutCoordinator::start(&key(), &o, &strict(), 3, "n1", 2);
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
        let (mut c, _) = PutCoordinator::start(&key(), &o, &strict(), 3, "n1", 3);
        c.on_ack("n9");
        c.on_ack("n2");
        c.on_ack("n2");
        assert_eq!(c.decision(), None);
        assert_eq!(c.on_failure("n3"), None, "a strict plan has no spares");
        assert_eq!(c.decision(), Some(Quorum::Failed));
        assert_eq!(c.acks(), 2);
    }

    #[test]
    fn get_merges_replies_and_finds_stale_replicas() {
        let (mut g, out) = GetCoordinator::start(&key(), &strict(), 3, 2);
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
        let (mut g, _) = GetCoordinator::start(&key(), &strict(), 3, 2);
        g.on_failure("n1");
        assert_eq!(g.decision(), None);
        g.on_failure("n2");
        assert_eq!(g.decision(), Some(Quorum::Failed));
    }
}
