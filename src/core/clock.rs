//! Versions: dotted version vector sets (Almeida, Baquero, Gonçalves,
//! Preguiça, Fonte: "Scalable and Accurate Causality Tracking for Eventually
//! Consistent Stores", 2014), the exact form of the paper's vector clocks.
//!
//! An [`Object`] is a set of *siblings* plus one causal *context*. Every
//! sibling carries a [`Dot`]: the replica that minted it and that replica's
//! counter for this key. The context is a [`VersionVector`] that covers every
//! dot the object has seen, including those of writes it has since dropped
//! because a later write superseded them.
//!
//! - A **put** through replica `r` with the client's context `C` keeps the
//!   siblings `C` has not seen, adds one new sibling with dot
//!   `(r, max(context[r], C[r]) + 1)`, and adds `C` to the context
//!   ([`Object::update`]). Two puts with the same context through the same
//!   coordinator get two different dots and both survive: this is where
//!   per-node vector clocks lose writes and dotted ones do not.
//! - A **merge** of two replicas' objects keeps a sibling if both have it, or
//!   if the other side has not seen its dot ([`Object::merge`]). Merge is
//!   commutative, associative and idempotent (property-tested below), so
//!   replicas converge whatever order they exchange objects in.
//!
//! Entries are per *replica incarnation* ([`ReplicaId`]), never per client.
//! A clock therefore has at most one entry per incarnation of each node that
//! ever coordinated a put of that key: with N = 3 and a stable cluster that is
//! 3 entries, plus one per fallback that coordinated during a failure, plus
//! one per restart that needed a new incarnation (an empty or rebuilt store,
//! or an unclean shutdown). No truncation is needed, so none of Riak's false
//! siblings from pruned clocks.
//!
//! Incarnations exist because a node that lost its disk would otherwise mint
//! counters it has minted before and silently shadow acknowledged writes
//! (Riak's KV679). A new incarnation is a fresh replica id, so its dots can
//! never collide with old ones.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One incarnation of one node: the unit that mints dots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId {
    /// The node's name.
    pub node: String,
    /// Chosen at random when the node starts on an empty, rebuilt or
    /// uncleanly closed store; never reused.
    pub incarnation: u64,
}

impl ReplicaId {
    /// A replica id.
    pub fn new(node: &str, incarnation: u64) -> Self {
        Self {
            node: node.to_string(),
            incarnation,
        }
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{:08x}", self.node, self.incarnation as u32)
    }
}

/// One event: the `counter`-th write of this key minted by `replica`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// Who minted it.
    pub replica: ReplicaId,
    /// That replica's counter for the key.
    pub counter: u64,
}

/// A version vector: for each replica, how many of its events have been seen
/// (events of one replica are seen as a prefix 1..=n).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionVector(BTreeMap<ReplicaId, u64>);

impl VersionVector {
    /// The empty vector: has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events of `replica` seen.
    pub fn get(&self, replica: &ReplicaId) -> u64 {
        self.0.get(replica).copied().unwrap_or(0)
    }

    /// Whether the event `dot` has been seen.
    pub fn covers(&self, dot: &Dot) -> bool {
        dot.counter <= self.get(&dot.replica)
    }

    /// Records that `dot` (and so every earlier event of its replica) was seen.
    pub fn add(&mut self, dot: &Dot) {
        let entry = self.0.entry(dot.replica.clone()).or_insert(0);
        *entry = (*entry).max(dot.counter);
    }

    /// Pointwise maximum, in place.
    pub fn merge(&mut self, other: &VersionVector) {
        for (replica, &counter) in &other.0 {
            let entry = self.0.entry(replica.clone()).or_insert(0);
            *entry = (*entry).max(counter);
        }
    }

    /// Whether this vector has seen everything `other` has.
    pub fn descends(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|(r, &c)| self.get(r) >= c)
    }

    /// The entries, ordered by replica.
    pub fn entries(&self) -> impl Iterator<Item = (&ReplicaId, u64)> {
        self.0.iter().map(|(r, &c)| (r, c))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The vector shown to people as a vector clock: node name → counter.
    /// A node with several incarnations in the vector is shown as
    /// `name#incarnation` so the entries stay distinct.
    pub fn display_map(&self) -> BTreeMap<String, u64> {
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for r in self.0.keys() {
            *per_node.entry(r.node.as_str()).or_insert(0) += 1;
        }
        self.0
            .iter()
            .map(|(r, &c)| {
                let name = if per_node.get(r.node.as_str()).copied().unwrap_or(0) > 1 {
                    r.to_string()
                } else {
                    r.node.clone()
                };
                (name, c)
            })
            .collect()
    }
}

impl fmt::Display for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, (name, c)) in self.display_map().iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{name}: {c}")?;
        }
        write!(f, "}}")
    }
}

/// The id a client gives one user write (random, per put). A put retried on
/// another coordinator after a failure that may have stored it carries the
/// same id, so the copies two coordinators minted are known to be one write
/// ([`Object::versions`]).
pub type WriteId = u64;

/// One concurrent version of a key's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling {
    /// The write that made it.
    pub dot: Dot,
    /// What that write's client had seen: the sibling's causal past. Kept to
    /// show people why siblings are concurrent.
    pub past: VersionVector,
    /// The value; `None` is a tombstone (a delete).
    pub value: Option<Vec<u8>>,
    /// The client's id of the write, when it gave one.
    pub write: Option<WriteId>,
}

impl Sibling {
    /// The sibling's vector clock as people know it: its past plus its dot.
    pub fn clock(&self) -> VersionVector {
        let mut clock = self.past.clone();
        clock.add(&self.dot);
        clock
    }

    /// Whether this sibling is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// A key's state at one replica: concurrent siblings and the causal context.
///
/// Invariant: the context covers every sibling's dot, and siblings are sorted
/// by dot with no two sharing one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    context: VersionVector,
    siblings: Vec<Sibling>,
}

impl Object {
    /// The object of a key never written.
    pub fn new() -> Self {
        Self::default()
    }

    /// The causal context: every event this object has seen.
    pub fn context(&self) -> &VersionVector {
        &self.context
    }

    /// The siblings, tombstones included, sorted by dot.
    pub fn siblings(&self) -> &[Sibling] {
        &self.siblings
    }

    /// Siblings that are not tombstones.
    pub fn live_siblings(&self) -> impl Iterator<Item = &Sibling> {
        self.siblings.iter().filter(|s| !s.is_tombstone())
    }

    /// Whether no live value remains (never written, or deleted).
    pub fn is_deleted(&self) -> bool {
        self.live_siblings().next().is_none()
    }

    /// A put through `replica` with the client's `seen` context: drops the
    /// siblings `seen` covers, adds the new one, and returns the new object
    /// with the dot it minted. `value: None` writes a tombstone.
    pub fn update(
        &self,
        seen: &VersionVector,
        value: Option<Vec<u8>>,
        replica: &ReplicaId,
    ) -> (Object, Dot) {
        self.mint(seen, value, replica, None)
    }

    /// A put of the user write `write`: like [`Object::update`], except that
    /// when this object already holds a sibling of that write (an earlier
    /// attempt of the same put reached this replica) nothing is minted and
    /// the object is returned as it is, with `None`. A retried put is then
    /// stored once wherever its first attempt arrived; where it did not, the
    /// second copy is collapsed into the first by [`Object::versions`].
    pub fn update_once(
        &self,
        seen: &VersionVector,
        value: Option<Vec<u8>>,
        replica: &ReplicaId,
        write: WriteId,
    ) -> (Object, Option<Dot>) {
        if self.siblings.iter().any(|s| s.write == Some(write)) {
            return (self.clone(), None);
        }
        let (next, dot) = self.mint(seen, value, replica, Some(write));
        (next, Some(dot))
    }

    fn mint(
        &self,
        seen: &VersionVector,
        value: Option<Vec<u8>>,
        replica: &ReplicaId,
        write: Option<WriteId>,
    ) -> (Object, Dot) {
        let counter = self.context.get(replica).max(seen.get(replica)) + 1;
        let dot = Dot {
            replica: replica.clone(),
            counter,
        };
        let mut context = self.context.clone();
        context.merge(seen);
        context.add(&dot);
        let mut siblings: Vec<Sibling> = self
            .siblings
            .iter()
            .filter(|s| !seen.covers(&s.dot))
            .cloned()
            .collect();
        siblings.push(Sibling {
            dot: dot.clone(),
            past: seen.clone(),
            value,
            write,
        });
        siblings.sort_by(|a, b| a.dot.cmp(&b.dot));
        (Object { context, siblings }, dot)
    }

    /// Joins two replicas' states of one key. A sibling survives if both sides
    /// hold it, or if the other side has not seen its dot; contexts are merged.
    pub fn merge(&self, other: &Object) -> Object {
        let mut siblings: Vec<Sibling> =
            Vec::with_capacity(self.siblings.len() + other.siblings.len());
        let (mut a, mut b) = (
            self.siblings.iter().peekable(),
            other.siblings.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.dot == y.dot => {
                    siblings.push((*x).clone());
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.dot < y.dot => {
                    if !other.context.covers(&x.dot) {
                        siblings.push((*x).clone());
                    }
                    a.next();
                }
                (Some(_), Some(y)) => {
                    if !self.context.covers(&y.dot) {
                        siblings.push((*y).clone());
                    }
                    b.next();
                }
                (Some(x), None) => {
                    if !other.context.covers(&x.dot) {
                        siblings.push((*x).clone());
                    }
                    a.next();
                }
                (None, Some(y)) => {
                    if !self.context.covers(&y.dot) {
                        siblings.push((*y).clone());
                    }
                    b.next();
                }
                (None, None) => break,
            }
        }
        let mut context = self.context.clone();
        context.merge(&other.context);
        Object { context, siblings }
    }

    /// The versions a person sees: the siblings, with the copies of one user
    /// write collapsed into the first of them (by dot). Two coordinators
    /// that each minted a retried put hold copies with the same write id,
    /// value and causal past under different dots; both dots stay siblings
    /// and in the context (so [`Object::merge`] keeps its laws and a put
    /// with this context supersedes both), but they are one write.
    pub fn versions(&self) -> Vec<&Sibling> {
        let mut out: Vec<&Sibling> = Vec::with_capacity(self.siblings.len());
        for s in &self.siblings {
            let copy = s.write.is_some()
                && out
                    .iter()
                    .any(|o| o.write == s.write && o.value == s.value && o.past == s.past);
            if !copy {
                out.push(s);
            }
        }
        out
    }

    /// Whether `self` already holds everything `other` holds, so merging
    /// `other` in would change nothing.
    pub fn includes(&self, other: &Object) -> bool {
        &self.merge(other) == self
    }

    /// The encoded size of the values, for limits.
    pub fn value_bytes(&self) -> usize {
        self.siblings
            .iter()
            .map(|s| s.value.as_ref().map_or(0, Vec::len))
            .sum()
    }
}

/// Why a context token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64url, or not a context at all.
    #[error("the context token is not a dynamo context (it is damaged or was never one)")]
    Malformed,
    /// Made by another cluster.
    #[error("the context token belongs to another cluster")]
    ForeignCluster,
}

const TOKEN_VERSION: u8 = 1;

/// A causal context handed to clients as an opaque token: the version byte,
/// a 4-byte tag of the cluster it came from, and the postcard-encoded vector,
/// base64url without padding.
pub fn encode_token(context: &VersionVector, cluster_tag: u32) -> String {
    use base64::Engine;
    let mut bytes = vec![TOKEN_VERSION];
    bytes.extend_from_slice(&cluster_tag.to_be_bytes());
    if let Ok(body) = postcard::to_stdvec(context) {
        bytes.extend_from_slice(&body);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a token back, checking that this cluster made it.
pub fn decode_token(token: &str, cluster_tag: u32) -> Result<VersionVector, TokenError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim().as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() < 5 || bytes[0] != TOKEN_VERSION {
        return Err(TokenError::Malformed);
    }
    let tag = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let context: VersionVector =
        postcard::from_bytes(&bytes[5..]).map_err(|_| TokenError::Malformed)?;
    if tag != cluster_tag {
        return Err(TokenError::ForeignCluster);
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(node: &str) -> ReplicaId {
        ReplicaId::new(node, 1)
    }

    fn values(o: &Object) -> Vec<Option<Vec<u8>>> {
        let mut v: Vec<_> = o.siblings().iter().map(|s| s.value.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn put_without_context_adds_a_sibling() {
        let (a, _) = Object::new().update(&VersionVector::new(), Some(b"a".to_vec()), &r("n1"));
        let (b, _) = a.update(&VersionVector::new(), Some(b"b".to_vec()), &r("n1"));
        assert_eq!(values(&b), vec![Some(b"a".to_vec()), Some(b"b".to_vec())]);
    }

    #[test]
    fn put_with_context_replaces_exactly_what_it_saw() {
        let (a, _) = Object::new().update(&VersionVector::new(), Some(b"a".to_vec()), &r("n1"));
        let seen = a.context().clone();
        let (b, _) = a.update(&VersionVector::new(), Some(b"b".to_vec()), &r("n2"));
        // c saw only a: it replaces a, and b (unseen) survives.
        let (c, _) = b.update(&seen, Some(b"c".to_vec()), &r("n1"));
        assert_eq!(values(&c), vec![Some(b"b".to_vec()), Some(b"c".to_vec())]);
        // d saw everything: one sibling left.
        let (d, _) = c.update(&c.context().clone(), Some(b"d".to_vec()), &r("n3"));
        assert_eq!(values(&d), vec![Some(b"d".to_vec())]);
    }

    #[test]
    fn same_context_same_coordinator_gives_two_siblings() {
        let (base, _) = Object::new().update(&VersionVector::new(), Some(b"v0".to_vec()), &r("n1"));
        let ctx = base.context().clone();
        let (one, d1) = base.update(&ctx, Some(b"alpha".to_vec()), &r("n1"));
        let (two, d2) = one.update(&ctx, Some(b"beta".to_vec()), &r("n1"));
        assert_ne!(d1, d2);
        assert_eq!(
            values(&two),
            vec![Some(b"alpha".to_vec()), Some(b"beta".to_vec())]
        );
        // Resolving with the merged context collapses them.
        let (resolved, _) = two.update(two.context(), Some(b"ab".to_vec()), &r("n1"));
        assert_eq!(values(&resolved), vec![Some(b"ab".to_vec())]);
    }

    #[test]
    fn a_new_incarnation_never_reuses_a_dot() {
        // n1 wrote twice, then lost its disk and came back as a new incarnation.
        let old = ReplicaId::new("n1", 7);
        let (a, _) = Object::new().update(&VersionVector::new(), Some(b"a".to_vec()), &old);
        let replica2_copy = a.clone();
        let fresh = ReplicaId::new("n1", 8);
        // The wiped n1 starts from nothing and mints for a new write.
        let (b, dot) = Object::new().update(&VersionVector::new(), Some(b"b".to_vec()), &fresh);
        assert_eq!(dot.counter, 1);
        let merged = replica2_copy.merge(&b);
        assert_eq!(
            values(&merged),
            vec![Some(b"a".to_vec()), Some(b"b".to_vec())]
        );
        // Had it reused its old id, the new write would have been shadowed:
        let (reused, _) = Object::new().update(&VersionVector::new(), Some(b"b".to_vec()), &old);
        assert_eq!(
            a.merge(&reused).siblings().len(),
            1,
            "the collision KV679 is about"
        );
    }

    #[test]
    fn a_retried_write_is_stored_once_where_it_arrived_and_shown_once_elsewhere() {
        let (base, _) = Object::new().update(&VersionVector::new(), Some(b"v0".to_vec()), &r("n1"));
        let ctx = base.context().clone();
        // The first attempt reaches n1; a retry through n1 mints nothing.
        let (first, dot) = base.update_once(&ctx, Some(b"v1".to_vec()), &r("n1"), 7);
        assert!(dot.is_some());
        let (again, none) = first.update_once(&ctx, Some(b"v1".to_vec()), &r("n1"), 7);
        assert_eq!((again.clone(), none), (first.clone(), None));
        // A retry through n2, which had not seen the first attempt, mints a
        // second copy; merged, both dots stay, but it is one version.
        let (second, _) = base.update_once(&ctx, Some(b"v1".to_vec()), &r("n2"), 7);
        let merged = first.merge(&second);
        assert_eq!(merged.siblings().len(), 2);
        assert_eq!(merged.versions().len(), 1);
        assert_eq!(merged.versions()[0].value.as_deref(), Some(&b"v1"[..]));
        // Another write with the same value is another version.
        let (other, _) = base.update_once(&ctx, Some(b"v1".to_vec()), &r("n3"), 8);
        assert_eq!(merged.merge(&other).versions().len(), 2);
        // A put with the merged context supersedes both copies.
        let (resolved, _) = merged.update(merged.context(), Some(b"v2".to_vec()), &r("n1"));
        assert_eq!(values(&resolved), vec![Some(b"v2".to_vec())]);
    }

    #[test]
    fn tokens_round_trip_and_refuse_strangers() {
        let (a, _) = Object::new().update(&VersionVector::new(), Some(b"a".to_vec()), &r("n1"));
        let token = encode_token(a.context(), 42);
        assert_eq!(decode_token(&token, 42), Ok(a.context().clone()));
        assert_eq!(decode_token(&token, 43), Err(TokenError::ForeignCluster));
        assert_eq!(decode_token("garbage!!", 42), Err(TokenError::Malformed));
        assert_eq!(decode_token("", 42), Err(TokenError::Malformed));
        assert_eq!(decode_token("AQAAACr_____", 42), Err(TokenError::Malformed));
    }

    #[test]
    fn display_shows_node_names_and_splits_incarnations() {
        let mut vv = VersionVector::new();
        vv.add(&Dot {
            replica: ReplicaId::new("n1", 1),
            counter: 2,
        });
        vv.add(&Dot {
            replica: ReplicaId::new("n3", 5),
            counter: 1,
        });
        assert_eq!(vv.to_string(), "{n1: 2, n3: 1}");
        vv.add(&Dot {
            replica: ReplicaId::new("n1", 9),
            counter: 1,
        });
        assert_eq!(vv.display_map().len(), 3);
    }

    /// A history of puts at several replicas with random contexts, and the
    /// objects each replica ends with. Used to build arbitrary reachable states.
    #[derive(Debug, Clone)]
    enum Step {
        Put {
            replica: usize,
            seen_from: Option<usize>,
            value: u8,
        },
        Sync {
            from: usize,
            to: usize,
        },
        /// A put retried: the `nth` put written so far minted again at
        /// `replica`, with its context, value and write id.
        Retry {
            nth: usize,
            replica: usize,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..3usize, proptest::option::of(0..3usize), any::<u8>()).prop_map(
                |(replica, seen_from, value)| Step::Put {
                    replica,
                    seen_from,
                    value
                }
            ),
            (0..3usize, 0..3usize).prop_map(|(from, to)| Step::Sync { from, to }),
            (0..40usize, 0..3usize).prop_map(|(nth, replica)| Step::Retry { nth, replica }),
        ]
    }

    /// Runs a history; returns the replicas' objects and every value written
    /// with the context it was written over.
    fn run(steps: &[Step]) -> (Vec<Object>, Vec<(Dot, VersionVector)>) {
        let (replicas, written) = run_writes(steps);
        let written = written.into_iter().map(|w| (w.dot, w.seen)).collect();
        (replicas, written)
    }

    /// One mint of a history: its dot, the context it was written over, and
    /// the user write it belongs to (retries share it).
    #[derive(Debug, Clone)]
    struct Written {
        dot: Dot,
        seen: VersionVector,
        value: Vec<u8>,
        write: WriteId,
    }

    fn run_writes(steps: &[Step]) -> (Vec<Object>, Vec<Written>) {
        let ids: Vec<ReplicaId> = (0..3)
            .map(|i| ReplicaId::new(&format!("n{i}"), 1))
            .collect();
        let mut replicas = vec![Object::new(); 3];
        let mut written: Vec<Written> = Vec::new();
        let mut writes = 0;
        for s in steps {
            let (replica, seen, value, write) = match s {
                Step::Put {
                    replica,
                    seen_from,
                    value,
                } => {
                    let seen = seen_from
                        .map(|f| replicas[f].context().clone())
                        .unwrap_or_default();
                    writes += 1;
                    // Values repeat across writes (u8), write ids do not.
                    (*replica, seen, vec![*value], writes)
                }
                Step::Retry { nth, replica } => {
                    let Some(w) = written.get(*nth).cloned() else {
                        continue;
                    };
                    (*replica, w.seen, w.value, w.write)
                }
                Step::Sync { from, to } => {
                    replicas[*to] = replicas[*to].merge(&replicas[*from]);
                    continue;
                }
            };
            let (next, dot) =
                replicas[replica].update_once(&seen, Some(value.clone()), &ids[replica], write);
            replicas[replica] = next;
            if let Some(dot) = dot {
                written.push(Written {
                    dot,
                    seen,
                    value,
                    write,
                });
            }
        }
        (replicas, written)
    }

    fn histories() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(step(), 0..40)
    }

    proptest! {
        #[test]
        fn merge_is_commutative(h1 in histories(), h2 in histories(), i in 0..3usize, j in 0..3usize) {
            let mut all = h1.clone();
            all.extend(h2);
            let (objs, _) = run(&all);
            prop_assert_eq!(objs[i].merge(&objs[j]), objs[j].merge(&objs[i]));
        }

        #[test]
        fn merge_is_associative(h in histories()) {
            let (o, _) = run(&h);
            prop_assert_eq!(o[0].merge(&o[1]).merge(&o[2]), o[0].merge(&o[1].merge(&o[2])));
        }

        #[test]
        fn merge_is_idempotent(h in histories(), i in 0..3usize) {
            let (o, _) = run(&h);
            prop_assert_eq!(o[i].merge(&o[i]), o[i].clone());
        }

        /// After everyone syncs, the siblings are exactly the writes that no
        /// later write's context saw: none lost, none dominated kept.
        #[test]
        fn no_sibling_lost_no_dominated_sibling_kept(h in histories()) {
            let (o, written) = run(&h);
            let all = o[0].merge(&o[1]).merge(&o[2]);
            let mut expected: Vec<Dot> = written
                .iter()
                .filter(|(dot, _)| !written.iter().any(|(_, seen)| seen.covers(dot)))
                .map(|(dot, _)| dot.clone())
                .collect();
            expected.sort();
            let got: Vec<Dot> = all.siblings().iter().map(|s| s.dot.clone()).collect();
            prop_assert_eq!(got, expected);
            for s in all.siblings() {
                prop_assert!(all.context().covers(&s.dot));
            }
        }

        /// With retried puts: once everyone syncs, the versions are exactly
        /// the user writes with a copy no later write's context saw, each
        /// once, whatever was minted twice.
        #[test]
        fn every_surviving_write_is_one_version(h in histories()) {
            let (o, written) = run_writes(&h);
            let all = o[0].merge(&o[1]).merge(&o[2]);
            let survives = |w: &Written| !written.iter().any(|x| x.seen.covers(&w.dot));
            let mut expected: Vec<WriteId> = written
                .iter()
                .filter(|w| survives(w))
                .map(|w| w.write)
                .collect();
            expected.sort();
            expected.dedup();
            let mut got: Vec<WriteId> = all.versions().iter().filter_map(|s| s.write).collect();
            got.sort();
            prop_assert_eq!(got, expected);
        }
    }
}
