//! The oracle and the invariants. The oracle is omniscient bookkeeping no
//! node has: every dot any coordinator minted (with its value and the
//! client's context), and every put a client saw acknowledged. After the
//! liveness phase the final state of every home replica is judged against it.
//!
//! **No deleted key resurrects**, precisely: let an acknowledged delete have
//! minted the tombstone dot `D` with the client's context `C` (what the
//! client had seen when it deleted). Contexts only grow, a merge drops every
//! sibling the other side's context covers, and a put drops every sibling
//! its context covers; so any object whose context covers `D` descends from
//! the delete and can hold no sibling that `C` covers. Two checks follow:
//! every get's answer whose context covers `D` must show no sibling `C`
//! covers (a stale replica that never saw the delete may still show the old
//! value: that is a stale read, not a resurrection), and at the end, when
//! no-lost-write demands that every home replica covers `D`, no home replica
//! may hold such a sibling at all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::core::clock::{Dot, Object, Sibling, VersionVector};
use crate::core::key::ObjectKey;

/// An invariant of Dynamo that the simulator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// Every acknowledged put is still a sibling with its value, or was
    /// superseded by a put whose context saw it.
    NoLostWrite,
    /// After the liveness phase every home replica of a key holds the same
    /// object and no hints are left.
    Convergence,
    /// Every sibling was minted by a client put, with that value.
    NoPhantom,
    /// No value an acknowledged delete's context covered shows again in an
    /// object that saw the delete, nor at the end anywhere.
    NoResurrection,
    /// No user write shows twice among an object's versions (a put retried
    /// on another coordinator is one write, whatever was stored).
    NoDuplicateWrite,
    /// Every owner-table step the cluster takes is one a node hearing it
    /// by gossip takes in (`ClusterState::admit_owners`).
    AdmittedStep,
    /// After convergence, every Merkle tree of every partition has one root
    /// across the replicas that keep it (keys filed in their bucket's tree).
    TreesAgree,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::NoLostWrite => "no-lost-write",
            Invariant::Convergence => "convergence",
            Invariant::NoPhantom => "no-phantom",
            Invariant::NoResurrection => "no-resurrection",
            Invariant::NoDuplicateWrite => "no-duplicate-write",
            Invariant::AdmittedStep => "admitted-step",
            Invariant::TreesAgree => "trees-agree",
        })
    }
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// The key, as shown to people.
    pub key: String,
    /// What was found.
    pub detail: String,
}

/// A put a client saw acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedPut {
    /// The key.
    pub key: ObjectKey,
    /// Its dot.
    pub dot: Dot,
    /// Its value (`None`: a delete).
    pub value: Option<Vec<u8>>,
}

/// A delete a client saw acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedDelete {
    /// The key.
    pub key: ObjectKey,
    /// The tombstone's dot.
    pub dot: Dot,
    /// The context the client deleted with: every version it had seen.
    pub context: VersionVector,
}

/// Everything that was written, as only the simulator can know it.
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    /// Each minted dot's latest value, per key (dots count per key; a dot
    /// lost to a crash before it was synced may be minted again: it was
    /// never seen by anyone).
    pub minted: BTreeMap<(ObjectKey, Dot), Option<Vec<u8>>>,
    /// Per key, the union of the contexts clients wrote with.
    pub seen: BTreeMap<ObjectKey, VersionVector>,
    /// Acknowledged puts.
    pub acked: Vec<AckedPut>,
    /// Every sibling (key, dot, value) a client's get returned.
    pub observed: BTreeSet<(ObjectKey, Dot, Option<Vec<u8>>)>,
    /// Each minted dot's client context (the latest mint of the dot).
    pub contexts: BTreeMap<(ObjectKey, Dot), VersionVector>,
    /// Acknowledged deletes.
    pub deletes: Vec<AckedDelete>,
    /// Per key, the union of the contexts of the tombstones collected: every
    /// version they superseded is legitimately gone, and none may show again.
    pub collected: BTreeMap<ObjectKey, VersionVector>,
}

impl Oracle {
    /// Records a mint.
    pub fn mint(
        &mut self,
        key: &ObjectKey,
        dot: &Dot,
        value: &Option<Vec<u8>>,
        seen: &VersionVector,
    ) {
        self.minted
            .insert((key.clone(), dot.clone()), value.clone());
        self.contexts
            .insert((key.clone(), dot.clone()), seen.clone());
        self.seen.entry(key.clone()).or_default().merge(seen);
    }

    /// Records a tombstone collection: `tombstone` (deletes only) was held by
    /// every member and dropped.
    pub fn collect(&mut self, key: &ObjectKey, tombstone: &Object) {
        self.collected
            .entry(key.clone())
            .or_default()
            .merge(tombstone.context());
    }

    fn collected_covers(&self, key: &ObjectKey, dot: &Dot) -> bool {
        self.collected.get(key).is_some_and(|c| c.covers(dot))
    }

    /// Records what a get returned: a put can only be superseded legitimately
    /// after some client saw it.
    pub fn observe(&mut self, key: &ObjectKey, object: &Object) {
        for s in object.siblings() {
            self.observed
                .insert((key.clone(), s.dot.clone(), s.value.clone()));
        }
    }

    /// Records an acknowledgement.
    pub fn ack(&mut self, key: &ObjectKey, dot: &Dot, value: Option<Vec<u8>>) {
        if value.is_none() {
            let context = self
                .contexts
                .get(&(key.clone(), dot.clone()))
                .cloned()
                .unwrap_or_default();
            self.deletes.push(AckedDelete {
                key: key.clone(),
                dot: dot.clone(),
                context,
            });
        }
        self.acked.push(AckedPut {
            key: key.clone(),
            dot: dot.clone(),
            value,
        });
    }

    /// Judges an object a get returned against the deletes acknowledged so
    /// far: one that saw a delete must not show what the delete covered.
    pub fn check_get(&self, key: &ObjectKey, object: &Object) -> Option<Violation> {
        if let Some(v) = duplicate_write(key, object, "a get answered with") {
            return Some(v);
        }
        if let Some(s) = object
            .siblings()
            .iter()
            .find(|s| s.value.is_some() && self.collected_covers(key, &s.dot))
        {
            return Some(Violation {
                invariant: Invariant::NoResurrection,
                key: key.display_key(),
                detail: format!(
                    "a get answered with {} ({}), superseded by a tombstone that was collected",
                    dot_text(&s.dot),
                    value_text(&s.value)
                ),
            });
        }
        self.deletes
            .iter()
            .filter(|d| d.key == *key && object.context().covers(&d.dot))
            .find_map(|d| {
                resurrected(d, object).map(|s| Violation {
                    invariant: Invariant::NoResurrection,
                    key: key.display_key(),
                    detail: format!(
                        "a get answered with {} ({}) next to the acknowledged delete {} that had covered it",
                        dot_text(&s.dot),
                        value_text(&s.value),
                        dot_text(&d.dot)
                    ),
                })
            })
    }

    /// Judges the final objects: `replicas[key]` lists each home replica's
    /// name and object. Hints left over are reported by the caller.
    pub fn check(&self, replicas: &BTreeMap<ObjectKey, Vec<(String, Object)>>) -> Vec<Violation> {
        let mut violations = Vec::new();
        let empty = Vec::new();
        for put in &self.acked {
            let holders = replicas.get(&put.key).unwrap_or(&empty);
            for (node, object) in holders {
                let sibling = object.siblings().iter().find(|s| s.dot == put.dot);
                let problem = match sibling {
                    Some(s) if s.value != put.value => Some(format!(
                        "acknowledged put {} ({}) is shadowed at {node} by another value with the same dot",
                        dot_text(&put.dot),
                        value_text(&put.value)
                    )),
                    Some(_) => None,
                    // A delete whose tombstone was collected is gone, as
                    // it should be.
                    None if put.value.is_none() && self.collected_covers(&put.key, &put.dot) => {
                        None
                    }
                    None if !object.context().covers(&put.dot)
                        && !self.collected_covers(&put.key, &put.dot) =>
                    {
                        Some(format!(
                            "acknowledged put {} ({}) is missing at {node}",
                            dot_text(&put.dot),
                            value_text(&put.value)
                        ))
                    }
                    None if !self
                        .seen
                        .get(&put.key)
                        .is_some_and(|seen| seen.covers(&put.dot))
                        || !self.observed.contains(&(
                            put.key.clone(),
                            put.dot.clone(),
                            put.value.clone(),
                        )) =>
                    {
                        Some(format!(
                            "acknowledged put {} ({}) vanished at {node}, superseded though no client ever read it",
                            dot_text(&put.dot),
                            value_text(&put.value)
                        ))
                    }
                    None => None,
                };
                if let Some(detail) = problem {
                    violations.push(Violation {
                        invariant: Invariant::NoLostWrite,
                        key: put.key.display_key(),
                        detail,
                    });
                    break;
                }
            }
        }
        for delete in &self.deletes {
            let holders = replicas.get(&delete.key).unwrap_or(&empty);
            for (node, object) in holders {
                if let Some(s) = resurrected(delete, object) {
                    violations.push(Violation {
                        invariant: Invariant::NoResurrection,
                        key: delete.key.display_key(),
                        detail: format!(
                            "{node} holds {} ({}) at the end, though the acknowledged delete {} had covered it",
                            dot_text(&s.dot),
                            value_text(&s.value),
                            dot_text(&delete.dot)
                        ),
                    });
                    break;
                }
            }
        }
        for (key, holders) in replicas {
            if let Some(v) = holders
                .iter()
                .find_map(|(node, o)| duplicate_write(key, o, &format!("{node} holds")))
            {
                violations.push(v);
            }
            let distinct: BTreeSet<String> =
                holders.iter().map(|(_, o)| format!("{o:?}")).collect();
            if distinct.len() > 1 {
                let summary: Vec<String> = holders
                    .iter()
                    .map(|(n, o)| {
                        let values: Vec<String> = o
                            .siblings()
                            .iter()
                            .map(|s| format!("{}={}", dot_text(&s.dot), value_text(&s.value)))
                            .collect();
                        format!("{n}: [{}] ctx {}", values.join(", "), o.context())
                    })
                    .collect();
                violations.push(Violation {
                    invariant: Invariant::Convergence,
                    key: key.display_key(),
                    detail: format!("replicas differ after healing: {}", summary.join("; ")),
                });
            }
            for (node, object) in holders {
                for s in object.siblings() {
                    match self.minted.get(&(key.clone(), s.dot.clone())) {
                        Some(v) if *v == s.value => {}
                        _ => violations.push(Violation {
                            invariant: Invariant::NoPhantom,
                            key: key.display_key(),
                            detail: format!(
                                "{node} holds sibling {} ({}) that no client put wrote",
                                dot_text(&s.dot),
                                value_text(&s.value)
                            ),
                        }),
                    }
                }
            }
        }
        violations.sort_by_key(|v| v.invariant);
        violations
    }
}

/// A sibling of `object` that `delete`'s context covered.
/// The violation when one user write shows twice among `object`'s
/// versions. Every client write has a value of its own (`c3-17`), so two
/// live versions with one value are two copies of one write that
/// [`Object::versions`] failed to collapse.
fn duplicate_write(key: &ObjectKey, object: &Object, context: &str) -> Option<Violation> {
    let versions = object.versions();
    versions.iter().enumerate().find_map(|(i, s)| {
        let twin = versions[..i]
            .iter()
            .find(|o| s.value.is_some() && o.value == s.value)?;
        Some(Violation {
            invariant: Invariant::NoDuplicateWrite,
            key: key.display_key(),
            detail: format!(
                "{context} {} twice: as {} and as {}",
                value_text(&s.value),
                dot_text(&twin.dot),
                dot_text(&s.dot)
            ),
        })
    })
}

fn resurrected<'a>(delete: &AckedDelete, object: &'a Object) -> Option<&'a Sibling> {
    object
        .siblings()
        .iter()
        .find(|s| delete.context.covers(&s.dot))
}

fn dot_text(dot: &Dot) -> String {
    format!("{}:{}", dot.replica, dot.counter)
}

fn value_text(value: &Option<Vec<u8>>) -> String {
    match value {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => "tombstone".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clock::ReplicaId;

    fn key() -> ObjectKey {
        ObjectKey::new("sim", b"k").expect("valid key")
    }

    /// A value written, read, then deleted with the read's context; the
    /// oracle saw the delete acknowledged. Returns (value's object, deleted
    /// object, oracle).
    fn deleted() -> (Object, Object, Oracle) {
        let a = ReplicaId::new("n1", 1);
        let k = key();
        let mut oracle = Oracle::default();
        let (written, dot) = Object::new().update(&VersionVector::new(), Some(b"v".to_vec()), &a);
        oracle.mint(&k, &dot, &Some(b"v".to_vec()), &VersionVector::new());
        oracle.ack(&k, &dot, Some(b"v".to_vec()));
        oracle.observe(&k, &written);
        let context = written.context().clone();
        let (gone, tombstone) = written.update(&context, None, &a);
        oracle.mint(&k, &tombstone, &None, &context);
        oracle.ack(&k, &tombstone, None);
        (written, gone, oracle)
    }

    #[test]
    fn a_stale_read_is_not_a_resurrection_but_a_value_next_to_the_delete_is() {
        let (written, gone, oracle) = deleted();
        let k = key();
        assert_eq!(
            oracle.check_get(&k, &written),
            None,
            "stale: never saw the delete"
        );
        assert_eq!(oracle.check_get(&k, &gone), None);
        assert_eq!(
            oracle.check_get(&k, &gone.merge(&written)),
            None,
            "merge drops it"
        );
        // An object that saw the delete yet shows the value: what a merge
        // that keeps covered siblings would make.
        let a = ReplicaId::new("n1", 1);
        let (both, _) = written.update(&VersionVector::new(), None, &a);
        let v = oracle.check_get(&k, &both).expect("a resurrection");
        assert_eq!(v.invariant, Invariant::NoResurrection);
    }

    #[test]
    fn at_the_end_a_value_the_delete_covered_is_a_resurrection_anywhere() {
        let (written, gone, oracle) = deleted();
        let k = key();
        let mut replicas = BTreeMap::new();
        replicas.insert(
            k.clone(),
            vec![("n1".to_string(), gone.clone()), ("n2".to_string(), gone)],
        );
        assert!(oracle.check(&replicas).is_empty());
        replicas.insert(
            k,
            vec![
                ("n1".to_string(), written.clone()),
                ("n2".to_string(), written),
            ],
        );
        let found: Vec<Invariant> = oracle
            .check(&replicas)
            .iter()
            .map(|v| v.invariant)
            .collect();
        assert!(found.contains(&Invariant::NoResurrection), "{found:?}");
        assert!(found.contains(&Invariant::NoLostWrite), "{found:?}");
    }
}
