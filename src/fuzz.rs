//! Fuzzing every decoder of peer input, on stable Rust.
//!
//! A node reads bytes it did not write from five places: QUIC stream frames
//! ([`FrameDecoder`]), the requests and responses in them, context tokens
//! from clients, gossiped cluster states (and the copy kept in the store),
//! Merkle pages of anti-entropy, and its own objects read back from disk.
//! Each is a [`Target`]: a corpus of valid encodings built from real values
//! of every message kind, and a decoder driven exactly as the node drives
//! it (decode, then the first thing the node does with the value: build a
//! ring from a gossiped state, a Merkle tree from leaves, merge an object).
//!
//! [`fuzz`] runs a seeded mutation fuzzer over one target: each input is a
//! corpus entry mutated one to four times (bit flips, interesting bytes,
//! inserted, deleted, duplicated or spliced ranges, truncation, a huge
//! varint where a length was) or plain random bytes, so most inputs are
//! nearly valid and reach deep into the decoders. A panic is caught and
//! counted with the first input that caused it, which replays with the
//! same seed. `examples/fuzz_decoders.rs` and `scripts/fuzz` run millions;
//! a short slice runs in `cargo test`.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::core::clock::{decode_token, encode_token, Object, ReplicaId, VersionVector};
use crate::core::explain::{Explanation, TargetOutcome, TargetReport};
use crate::core::key::ObjectKey;
use crate::core::membership::{ClusterState, EntryProof, MemberStatus};
use crate::core::merkle::{MerkleTree, NodeId, LEAVES};
use crate::core::message::{
    ErrorKind, NodeReport, PartitionRoot, PutRequest, RepairReport, Request, Response,
};
use crate::core::ring::Ring;
use crate::core::tombstone::Holding;
use crate::net::wire::{encode_frame, FrameDecoder};

/// One decoder of peer input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A stream of length-prefixed frames holding `(id, Request)`, pushed
    /// to a [`FrameDecoder`] in random pieces.
    Frames,
    /// One request frame's payload, `(id, Request)`, as a node reads it.
    Requests,
    /// One response frame's payload, `(id, Response)`, as a caller reads it.
    Responses,
    /// A context token from a client.
    Tokens,
    /// A gossiped (or stored) cluster state, then its rings and the
    /// membership checks a node runs on it.
    Gossip,
    /// Anti-entropy answers: Merkle hashes, leaf pages and roots, then the
    /// tree built from the leaves.
    MerklePages,
    /// An object as the store reads it back, then merged and shown.
    StoredObjects,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 7] = [
        Target::Frames,
        Target::Requests,
        Target::Responses,
        Target::Tokens,
        Target::Gossip,
        Target::MerklePages,
        Target::StoredObjects,
    ];

    /// Its name, as `scripts/fuzz` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Target::Frames => "frames",
            Target::Requests => "requests",
            Target::Responses => "responses",
            Target::Tokens => "tokens",
            Target::Gossip => "gossip",
            Target::MerklePages => "merkle_pages",
            Target::StoredObjects => "stored_objects",
        }
    }

    /// The target named `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Valid encodings of real values of every kind this decoder reads.
    fn corpus(self) -> Vec<Vec<u8>> {
        let enc = |v: &dyn erased::Encode| v.encode();
        match self {
            Target::Frames => {
                let requests = sample_requests();
                let mut stream = Vec::new();
                let mut out = Vec::new();
                for (i, r) in requests.iter().enumerate() {
                    let mut one = Vec::new();
                    if encode_frame(&(i as u64, r), &mut one).is_ok() {
                        stream.extend_from_slice(&one);
                        out.push(one);
                    }
                }
                out.push(stream);
                out
            }
            Target::Requests => sample_requests()
                .iter()
                .enumerate()
                .map(|(i, r)| enc(&(i as u64, r.clone())))
                .collect(),
            Target::Responses => sample_responses()
                .iter()
                .enumerate()
                .map(|(i, r)| enc(&(i as u64, r.clone())))
                .collect(),
            Target::Tokens => sample_objects()
                .iter()
                .map(|o| encode_token(o.context(), TOKEN_TAG).into_bytes())
                .collect(),
            Target::Gossip => sample_states().iter().map(|s| enc(s)).collect(),
            Target::MerklePages => sample_responses()
                .into_iter()
                .filter(|r| {
                    matches!(
                        r,
                        Response::MerkleHashes(_)
                            | Response::LeafObjects { .. }
                            | Response::MerkleRoots(_)
                    )
                })
                .enumerate()
                .map(|(i, r)| enc(&(i as u64, r)))
                .collect(),
            Target::StoredObjects => sample_objects().iter().map(|o| enc(o)).collect(),
        }
    }

    /// Decodes `input` as the node does and takes the first steps it takes
    /// with the value. Errors are fine; panics are what the fuzzer counts.
    fn decode(self, input: &[u8], fixture: &Fixture, rng: &mut StdRng) -> bool {
        match self {
            Target::Frames => {
                let mut decoder = FrameDecoder::default();
                let mut rest = input;
                let mut ok = false;
                while !rest.is_empty() {
                    let cut = rng.gen_range(1..=rest.len());
                    decoder.push(&rest[..cut]);
                    rest = &rest[cut..];
                    loop {
                        match decoder.next_frame::<(u64, Request)>() {
                            Ok(Some(_)) => ok = true,
                            Ok(None) => break,
                            Err(_) => return ok,
                        }
                    }
                }
                ok
            }
            Target::Requests => match postcard::from_bytes::<(u64, Request)>(input) {
                Ok((_, request)) => {
                    let _ = request.allowed_from(crate::core::message::Role::Node);
                    if let Request::Gossip(state) = request {
                        use_state(&state, fixture);
                    }
                    true
                }
                Err(_) => false,
            },
            Target::Responses | Target::MerklePages => {
                match postcard::from_bytes::<(u64, Response)>(input) {
                    Ok((_, response)) => {
                        use_response(response, fixture);
                        true
                    }
                    Err(_) => false,
                }
            }
            Target::Tokens => {
                let text = String::from_utf8_lossy(input);
                decode_token(&text, TOKEN_TAG).is_ok()
            }
            Target::Gossip => match postcard::from_bytes::<ClusterState>(input) {
                Ok(state) => {
                    use_state(&state, fixture);
                    true
                }
                Err(_) => false,
            },
            Target::StoredObjects => match postcard::from_bytes::<Object>(input) {
                Ok(object) => {
                    use_object(&object, fixture);
                    true
                }
                Err(_) => false,
            },
        }
    }
}

/// The real values decoded ones are merged with and judged against.
struct Fixture {
    object: Object,
    state: ClusterState,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            object: sample_objects().swap_remove(1),
            state: sample_states().swap_remove(0),
        }
    }
}

/// What the node does first with a decoded response.
fn use_response(response: Response, fixture: &Fixture) {
    match response {
        Response::MerkleRoots(roots) => {
            for root in roots {
                if let Some(leaves) = root.leaves {
                    let _ = MerkleTree::from_leaves(leaves).map(|t| t.root());
                }
            }
        }
        Response::Object(o) | Response::Replica(Some(o)) => use_object(&o, fixture),
        Response::LeafObjects { entries, .. } => {
            for (key, object) in entries {
                let _ = key.validate();
                let _ = key.ring_position();
                use_object(&object, fixture);
            }
        }
        Response::Gossip(state) => use_state(&state, fixture),
        Response::Explained(e) => use_object(&e.object, fixture),
        _ => {}
    }
}

/// What the node does first with a decoded object: merge it, show it.
fn use_object(object: &Object, fixture: &Fixture) {
    let merged = fixture.object.merge(object);
    let _ = merged.versions().len();
    let _ = merged.includes(object);
    let _ = object.value_bytes();
    for s in object.siblings() {
        let _ = s.clock().display_map();
    }
}

/// What the node does first with a gossiped state: its rings, the change
/// it calls for, and the admission checks against a real state.
fn use_state(state: &ClusterState, fixture: &Fixture) {
    let _ = state.ring().map(|r| r.fingerprint());
    let _ = state.next_ring();
    let _ = state.proposal(3);
    let _ = state.ready_to_install(3);
    let _ = state.must_abort();
    let _ = state.removals_done();
    let _ = state.digest();
    let base = &fixture.state;
    for (name, entry) in &state.members {
        let _ = base.admit_entry(name, entry, |_| false);
        let _ = entry.signed_bytes(name);
    }
    if let Some(table) = &state.owners {
        let _ = base.admit_owners(table, 3);
    }
    let mut merged = base.clone();
    merged.merge(state);
}

/// The cluster tag sample tokens carry.
const TOKEN_TAG: u32 = 0x00c0_ffee;

fn key(k: &str) -> ObjectKey {
    ObjectKey {
        bucket: "default".into(),
        key: k.as_bytes().to_vec(),
    }
}

fn sample_objects() -> Vec<Object> {
    let a = ReplicaId::new("n1", 0x1234_5678_9abc_def0);
    let b = ReplicaId::new("n2", 7);
    let (one, _) = Object::new().update(&VersionVector::new(), Some(b"milk".to_vec()), &a);
    let (two, _) = one.update(&VersionVector::new(), Some(vec![0xff; 40]), &b);
    let (three, _) = two.update_once(one.context(), None, &a, 99);
    vec![one, two, three, Object::new()]
}

fn sample_states() -> Vec<ClusterState> {
    let names: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let members: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), format!("127.0.0.1:{}", 7101 + i)))
        .collect();
    let owners = Ring::new(&names, 64)
        .map(|r| r.owner_table())
        .unwrap_or_default();
    let base = ClusterState::bootstrap(&members, owners);
    let mut joining = base.clone();
    joining.set_member("n6", "127.0.0.1:7106", MemberStatus::Joining);
    if let Some(entry) = joining.members.get_mut("n6") {
        entry.proof = Some(EntryProof {
            signer: "n6".into(),
            cert: vec![0x30; 300],
            signature: vec![0x30; 70],
        });
    }
    let mut changing = joining.clone();
    if let Some(target) = changing.proposal(3) {
        changing.propose(target);
    }
    vec![base, joining, changing]
}

fn sample_requests() -> Vec<Request> {
    let objects = sample_objects();
    let o = objects[1].clone();
    let k = key("cart");
    vec![
        Request::Get {
            key: k.clone(),
            r: Some(2),
            last_resort: false,
        },
        Request::Put(PutRequest {
            key: k.clone(),
            context: objects[0].context().clone(),
            value: Some(b"milk,eggs".to_vec()),
            w: None,
            write_id: Some(42),
            last_resort: true,
        }),
        Request::Coordinate(PutRequest {
            key: k.clone(),
            context: VersionVector::new(),
            value: None,
            w: Some(3),
            write_id: None,
            last_resort: false,
        }),
        Request::Replicate {
            key: k.clone(),
            object: o.clone(),
            hint_for: Some("n3".into()),
        },
        Request::ReplicateMany {
            entries: vec![(k.clone(), o.clone()), (key("other"), objects[2].clone())],
        },
        Request::Read { key: k.clone() },
        Request::Ping,
        Request::Status,
        Request::Explain {
            key: k.clone(),
            r: None,
            last_resort: false,
        },
        Request::Partition {
            groups: vec![vec!["n1".into(), "n2".into()], vec!["n3".into()]],
        },
        Request::Heal,
        Request::TombstoneCheck {
            entries: vec![(k.clone(), objects[2].clone())],
        },
        Request::TombstoneDrop {
            entries: vec![(k.clone(), objects[2].clone())],
        },
        Request::MerkleHashes {
            partition: 5,
            tree: 4,
            nodes: vec![
                NodeId::ROOT,
                NodeId {
                    level: 10,
                    index: 1023,
                },
            ],
        },
        Request::LeafObjects {
            partition: 5,
            leaf: 3,
            last_leaf: 66,
            after: Some(b"default\0cart".to_vec()),
        },
        Request::MerkleRoots { partition: Some(5) },
        Request::Repair {
            partitions: vec![1, 2, 3],
        },
        Request::Gossip(Box::new(sample_states()[2].clone())),
        Request::Leave,
        Request::Remove { node: "n4".into() },
    ]
}

fn sample_responses() -> Vec<Response> {
    let objects = sample_objects();
    let o = objects[1].clone();
    let report = NodeReport {
        name: "n1".into(),
        http: Some("127.0.0.1:7101".into()),
        ring_fingerprint: 9,
        partitions: 13,
        keys: 1000,
        hints: 2,
        incarnation: 77,
        unreachable: vec!["n3".into()],
        orphan_hints: 0,
        read_repairs: 5,
        hints_delivered: 6,
        partition: vec![vec!["n1".into()], vec!["n2".into()]],
        tombstones: 1,
        tombstones_collected: 2,
        member: "up".into(),
        owners_version: 3,
        incoming_total: 4,
        incoming_done: 1,
        handover_partitions: 0,
        cpu_micros: 1_000_000,
        datagrams_sent: 10,
        datagrams_received: 12,
    };
    let mut repaired = BTreeMap::new();
    repaired.insert("n1".to_string(), 3u64);
    vec![
        Response::Object(o.clone()),
        Response::Written {
            context: o.context().clone(),
        },
        Response::Status(Box::new(report)),
        Response::Replicated,
        Response::Replica(Some(o.clone())),
        Response::Replica(None),
        Response::Pong,
        Response::Done,
        Response::Explained(Box::new(Explanation {
            coordinator: "n1".into(),
            partition: 5,
            preference_list: vec!["n1".into(), "n2".into(), "n3".into()],
            unreachable: vec!["n2".into()],
            needed: 2,
            quorum_reached: true,
            targets: vec![TargetReport {
                node: "n4".into(),
                hint_for: Some("n2".into()),
                outcome: TargetOutcome::Answered { found: true },
                micros: Some(120),
            }],
            hints_held_for: vec!["n2".into()],
            read_repair: true,
            repaired: vec![("n3".into(), true)],
            object: o.clone(),
        })),
        Response::Error(crate::core::message::ErrorReply {
            kind: ErrorKind::CannotReach,
            message: "n3 can reach only 1 of the cluster's nodes".into(),
            acks: 1,
            needed: 2,
        }),
        Response::Holdings(vec![Holding::Same, Holding::Absent, Holding::Differs]),
        Response::Dropped(3),
        Response::MerkleHashes(vec![(NodeId::ROOT, [7; 32]), (NodeId::ROOT, [0; 32])]),
        Response::LeafObjects {
            entries: vec![(key("cart"), o.clone()), (key("x"), objects[2].clone())],
            next: Some(b"default\0x".to_vec()),
        },
        Response::MerkleRoots(vec![PartitionRoot {
            tree: 0,
            partition: 5,
            replicas: vec!["n1".into(), "n2".into()],
            root: [1; 32],
            leaves: Some(vec![[2; 32]; LEAVES]),
        }]),
        Response::Repaired(RepairReport {
            partitions_checked: 3,
            exchanges: 6,
            repaired,
            hashes: 100,
            bytes_sent: 1000,
            bytes_received: 2000,
            skipped: vec!["n2".into()],
        }),
        Response::Gossip(Box::new(sample_states()[1].clone())),
    ]
}

/// Postcard encoding behind a trait object, so one helper encodes values
/// of different types.
mod erased {
    pub trait Encode {
        fn encode(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Encode for T {
        fn encode(&self) -> Vec<u8> {
            postcard::to_allocvec(self).unwrap_or_default()
        }
    }
}

/// One mutation of `input` (corpus entries may be spliced in).
fn mutate(input: &mut Vec<u8>, corpus: &[Vec<u8>], rng: &mut StdRng) {
    const INTERESTING: [u8; 8] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x40, 0x20];
    if input.is_empty() {
        input.push(rng.gen());
        return;
    }
    let len = input.len();
    match rng.gen_range(0..9) {
        0 => {
            let i = rng.gen_range(0..len);
            input[i] ^= 1 << rng.gen_range(0..8);
        }
        1 => {
            let i = rng.gen_range(0..len);
            input[i] = INTERESTING[rng.gen_range(0..INTERESTING.len())];
        }
        2 => {
            let i = rng.gen_range(0..=len);
            let n = rng.gen_range(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            input.splice(i..i, bytes);
        }
        3 => {
            let i = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - i).min(64));
            input.drain(i..i + n);
        }
        4 => {
            let i = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - i).min(64));
            let copy = input[i..i + n].to_vec();
            let at = rng.gen_range(0..=input.len());
            input.splice(at..at, copy);
        }
        5 => input.truncate(rng.gen_range(0..len)),
        6 => {
            let other = &corpus[rng.gen_range(0..corpus.len())];
            if !other.is_empty() {
                let from = rng.gen_range(0..other.len());
                let n = rng.gen_range(1..=(other.len() - from));
                let at = rng.gen_range(0..=input.len());
                input.splice(at..at, other[from..from + n].iter().copied());
            }
        }
        7 => {
            // A huge varint (a length or count a peer could claim).
            let i = rng.gen_range(0..len);
            let varint = [0xff, 0xff, 0xff, 0xff, 0x0f];
            input.splice(i..(i + 1).min(len), varint);
        }
        _ => {
            let i = rng.gen_range(0..len);
            let j = rng.gen_range(0..len);
            input.swap(i, j);
        }
    }
}

/// `count` mutated request streams (from the [`Target::Frames`] corpus)
/// whose first frame a node cannot decode, generated from `seed`: for
/// sending to a live node, which must close each one's stream and nothing
/// else. Inputs that decode to a request are left out, so none is carried
/// out (a fuzzed `Leave` would be obeyed).
pub fn malformed_frames(count: usize, seed: u64) -> Vec<Vec<u8>> {
    let corpus = Target::Frames.corpus();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let mut input = corpus[rng.gen_range(0..corpus.len())].clone();
        for _ in 0..rng.gen_range(1..=4) {
            mutate(&mut input, &corpus, &mut rng);
        }
        let mut decoder = FrameDecoder::default();
        decoder.push(&input);
        if decoder.next_frame::<(u64, Request)>().is_err() {
            out.push(input);
        }
    }
    out
}

/// What one fuzzing run of one target found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The target.
    pub target: Target,
    /// The seed the run's generator started from.
    pub seed: u64,
    /// Inputs decoded.
    pub inputs: u64,
    /// Inputs that decoded to a value (the rest were refused with an error).
    pub decoded: u64,
    /// Inputs whose decoding panicked.
    pub panics: u64,
    /// The first input that panicked, hex, and what the panic said.
    pub first_panic: Option<(String, String)>,
    /// The longest input tried, in bytes.
    pub longest_input: usize,
}

/// Runs `inputs` inputs through `target`'s decoder, generated from `seed`.
/// Panics are caught (the process's panic hook is silenced for the run)
/// and counted.
pub fn fuzz(target: Target, inputs: u64, seed: u64) -> Report {
    let fixture = Fixture::new();
    let seed_of_target = seed ^ (target as u64).wrapping_mul(0x9e37_79b9);
    let mut report = fuzz_with(&target.corpus(), inputs, seed_of_target, |input, rng| {
        target.decode(input, &fixture, rng)
    });
    report.target = target;
    report.seed = seed;
    report
}

/// The fuzzing loop over any decoder: inputs from `corpus` (mutated) or
/// random, each passed to `decode` with a generator for its own choices.
fn fuzz_with(
    corpus: &[Vec<u8>],
    inputs: u64,
    seed: u64,
    decode: impl Fn(&[u8], &mut StdRng) -> bool,
) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut report = Report {
        target: Target::Frames,
        seed,
        inputs: 0,
        decoded: 0,
        panics: 0,
        first_panic: None,
        longest_input: 0,
    };
    for _ in 0..inputs {
        let input = if rng.gen_range(0..10) == 0 || corpus.is_empty() {
            let n = rng.gen_range(0..256);
            (0..n).map(|_| rng.gen()).collect()
        } else {
            let mut input = corpus[rng.gen_range(0..corpus.len())].clone();
            for _ in 0..rng.gen_range(1..=4) {
                mutate(&mut input, corpus, &mut rng);
            }
            input
        };
        report.inputs += 1;
        report.longest_input = report.longest_input.max(input.len());
        let mut decode_rng = StdRng::seed_from_u64(rng.gen());
        let decoded =
            std::panic::catch_unwind(AssertUnwindSafe(|| decode(&input, &mut decode_rng)));
        match decoded {
            Ok(true) => report.decoded += 1,
            Ok(false) => {}
            Err(panic) => {
                report.panics += 1;
                if report.first_panic.is_none() {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                    report.first_panic = Some((hex, message));
                }
            }
        }
    }
    std::panic::set_hook(previous);
    report
}

/// The process's peak resident memory so far, in KiB (`VmHWM` of
/// `/proc/self/status`); `None` where that cannot be read.
pub fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_corpus_entry_decodes() {
        for target in Target::ALL {
            let corpus = target.corpus();
            assert!(!corpus.is_empty(), "{target:?}");
            let (fixture, mut rng) = (Fixture::new(), StdRng::seed_from_u64(1));
            for (i, input) in corpus.iter().enumerate() {
                assert!(
                    target.decode(input, &fixture, &mut rng),
                    "{target:?} entry {i}"
                );
            }
        }
    }

    /// The slice CI runs: every target, a few thousand inputs each, no
    /// panic (`scripts/fuzz` runs millions).
    #[test]
    fn a_short_slice_of_every_target_never_panics() {
        for target in Target::ALL {
            let report = fuzz(target, 3_000, 7);
            assert_eq!(report.panics, 0, "{report:?}");
            assert!(report.decoded > 0, "{target:?}: nothing decoded");
        }
    }

    #[test]
    fn a_planted_decoder_bug_is_found_and_caught() {
        // A decoder that panics on a put asking for W = 0, one byte away
        // from the corpus's puts: the fuzzer must reach it, and the run
        // must survive it.
        let corpus = Target::Requests.corpus();
        let report = fuzz_with(&corpus, 100_000, 5, |input, _| {
            match postcard::from_bytes::<(u64, Request)>(input) {
                Ok((_, Request::Put(put) | Request::Coordinate(put))) if put.w == Some(0) => {
                    panic!("planted: W = 0")
                }
                Ok(_) => true,
                Err(_) => false,
            }
        });
        assert!(report.panics > 0, "{report:?}");
        let (_, message) = report.first_panic.expect("the first panic is kept");
        assert_eq!(message, "planted: W = 0");
    }

    #[test]
    fn mutations_replay_from_their_seed() {
        let a = fuzz(Target::Gossip, 500, 11);
        let b = fuzz(Target::Gossip, 500, 11);
        assert_eq!((a.decoded, a.longest_input), (b.decoded, b.longest_input));
    }
}
