//! The oracle and the invariants. The oracle is omniscient bookkeeping no
//! node has: every dot any coordinator minted (with its value and the
//! client's context), and every put a client saw acknowledged. After the
//! liveness phase the final state of every home replica is judged against it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::core::clock::{Dot, Object, VersionVector};
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
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invariant::NoLostWrite => "no-lost-write",
            Invariant::Convergence => "convergence",
            Invariant::NoPhantom => "no-phantom",
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
        self.seen.entry(key.clone()).or_default().merge(seen);
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
        self.acked.push(AckedPut {
            key: key.clone(),
            dot: dot.clone(),
            value,
        });
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
                    None if !object.context().covers(&put.dot) => Some(format!(
                        "acknowledged put {} ({}) is missing at {node}",
                        dot_text(&put.dot),
                        value_text(&put.value)
                    )),
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
        for (key, holders) in replicas {
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

fn dot_text(dot: &Dot) -> String {
    format!("{}:{}", dot.replica, dot.counter)
}

fn value_text(value: &Option<Vec<u8>>) -> String {
    match value {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => "tombstone".into(),
    }
}
