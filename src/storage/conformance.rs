//! One conformance suite for every [`StorageRead`] implementation
//! (DESIGN.md §3): the redb [`Store`] on a file and on redb's in-memory
//! backend, and the [`MemStore`] the simulator uses. Each check runs the
//! same writes through each store and expects the same reads, and the same
//! Merkle leaves, from all of them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{HintKey, MemStore, StorageRead, Store, Write, WriteBatch};
use crate::config::StorageConfig;

type V = String;

/// A store under test: reads through [`StorageRead`], writes by batch.
trait Subject {
    fn reader(&self) -> &dyn StorageRead<V>;
    fn write(&mut self, batch: WriteBatch<V>);
    fn name(&self) -> &'static str;
}

impl Subject for MemStore<V> {
    fn reader(&self) -> &dyn StorageRead<V> {
        self
    }
    fn write(&mut self, batch: WriteBatch<V>) {
        self.apply(&batch).expect("apply");
    }
    fn name(&self) -> &'static str {
        "memory"
    }
}

/// A redb store with the runtime its writer's answers arrive on.
struct Redb {
    store: Store<V>,
    runtime: tokio::runtime::Runtime,
    label: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl Redb {
    fn in_memory(partitions: u32) -> Redb {
        Redb {
            store: Store::open_in_memory_with_partitions(partitions).expect("open"),
            runtime: runtime(),
            label: "redb in memory",
            _dir: None,
        }
    }

    fn file(partitions: u32) -> Redb {
        let dir = tempfile::tempdir().expect("dir");
        let (store, _) = Store::open_with_partitions(
            &dir.path().join("data.redb"),
            &StorageConfig::default(),
            partitions,
        )
        .expect("open");
        Redb {
            store,
            runtime: runtime(),
            label: "redb file",
            _dir: Some(dir),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

impl Subject for Redb {
    fn reader(&self) -> &dyn StorageRead<V> {
        &self.store
    }
    fn write(&mut self, batch: WriteBatch<V>) {
        self.runtime
            .block_on(self.store.write_batch(batch))
            .expect("write batch");
    }
    fn name(&self) -> &'static str {
        self.label
    }
}

const PARTITIONS: u32 = 4;

fn subjects() -> Vec<Box<dyn Subject>> {
    vec![
        Box::new(MemStore::<V>::new(PARTITIONS).expect("mem")),
        Box::new(Redb::in_memory(PARTITIONS)),
        Box::new(Redb::file(PARTITIONS)),
    ]
}

fn object(key: &str, value: Option<&str>) -> Write<V> {
    in_tree(key, value, crate::core::merkle::DEFAULT_TREE)
}

fn in_tree(key: &str, value: Option<&str>, tree: crate::core::merkle::TreeId) -> Write<V> {
    Write::Object {
        key: key.as_bytes().to_vec(),
        value: value.map(str::to_string),
        tree,
    }
}

fn hint(owner: &str, key: &str, value: Option<&str>) -> Write<V> {
    Write::Hint {
        hint: HintKey::new(owner, key.as_bytes().to_vec()).expect("hint key"),
        value: value.map(str::to_string),
    }
}

fn batch(writes: Vec<Write<V>>) -> WriteBatch<V> {
    WriteBatch { writes }
}

#[test]
fn objects_are_set_overwritten_deleted_and_paged_in_key_order() {
    for mut s in subjects() {
        s.write(batch(vec![
            object("b", Some("1")),
            object("a", Some("2")),
            object("c", Some("3")),
            // A later write of the same entry in one batch wins.
            object("b", Some("4")),
        ]));
        s.write(batch(vec![object("c", None)]));
        let name = s.name();
        assert_eq!(
            s.reader().object(b"b").expect("read"),
            Some("4".into()),
            "{name}"
        );
        assert_eq!(s.reader().object(b"c").expect("read"), None, "{name}");
        assert_eq!(s.reader().object_total().expect("count"), 2, "{name}");
        let all = s.reader().object_page(None, 10).expect("page");
        let keys: Vec<&[u8]> = all.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, vec![&b"a"[..], &b"b"[..]], "{name}");
        let rest = s.reader().object_page(Some(b"a"), 10).expect("page");
        assert_eq!(rest, vec![(b"b".to_vec(), "4".to_string())], "{name}");
        assert!(
            s.reader().object_page(None, 0).expect("page").is_empty(),
            "{name}"
        );
        assert_eq!(
            s.reader().key_page(None, 10).expect("keys"),
            vec![b"a".to_vec(), b"b".to_vec()],
            "{name}"
        );
        assert_eq!(
            s.reader().key_page(Some(b"a"), 1).expect("keys"),
            vec![b"b".to_vec()],
            "{name}"
        );
    }
}

#[test]
fn hints_are_listed_by_owner_and_key_and_counted() {
    for mut s in subjects() {
        s.write(batch(vec![
            hint("n2", "x", Some("x2")),
            hint("n1", "y", Some("y1")),
            hint("n1", "x", Some("x1")),
            hint("n3", "z", Some("z3")),
            hint("n10", "x", Some("x10")),
        ]));
        let name = s.name();
        let of_x: Vec<String> = s
            .reader()
            .hints_of_key(b"x")
            .expect("read")
            .into_iter()
            .map(|(h, v)| format!("{}={v}", h.owner))
            .collect();
        assert_eq!(of_x, vec!["n1=x1", "n10=x10", "n2=x2"], "{name}");
        let n1: Vec<Vec<u8>> = s
            .reader()
            .hint_page(Some("n1"), None, 10)
            .expect("page")
            .into_iter()
            .map(|(h, _)| h.key)
            .collect();
        assert_eq!(
            n1,
            vec![b"x".to_vec(), b"y".to_vec()],
            "{name} n1 only, not n10"
        );
        let first = s.reader().hint_page(None, None, 2).expect("page");
        let after = first.last().map(|(h, _)| h.clone());
        let second = s
            .reader()
            .hint_page(None, after.as_ref(), 10)
            .expect("page");
        assert_eq!(first.len() + second.len(), 5, "{name}");
        assert_eq!(
            s.reader().hint_owner_counts(1).expect("owners"),
            vec![
                ("n1".into(), 1),
                ("n10".into(), 1),
                ("n2".into(), 1),
                ("n3".into(), 1)
            ],
            "{name}: counts capped at 1"
        );
        assert_eq!(
            s.reader().hint_owner_counts(10).expect("owners")[0],
            ("n1".into(), 2)
        );
        s.write(batch(vec![hint("n1", "x", None)]));
        assert_eq!(s.reader().hint_total().expect("count"), 4, "{name}");
        let gone = HintKey::new("n1", b"x".to_vec()).expect("hint key");
        assert_eq!(s.reader().hint(&gone).expect("read"), None, "{name}");
    }
}

#[test]
fn meta_entries_round_trip() {
    for mut s in subjects() {
        s.write(batch(vec![Write::Meta {
            name: "incarnation".into(),
            value: vec![1, 2, 3],
        }]));
        assert_eq!(
            s.reader().meta("incarnation").expect("read"),
            Some(vec![1, 2, 3]),
            "{}",
            s.name()
        );
        assert_eq!(s.reader().meta("nothing").expect("read"), None);
    }
}

/// Trees a write may be filed in, in the random test.
const TREES: [crate::core::merkle::TreeId; 3] = [0, 2, 5];

/// Random writes, deletes and re-filings through every store, each in a
/// random tree (so some keys move from tree to tree), give every store the same
/// objects, the same leaf pages, and in every tree exactly the leaves of
/// the keys last written to it.
#[test]
fn every_store_keeps_the_same_merkle_leaves_and_leaf_pages() {
    use crate::core::merkle::{entry_hash, leaf_of, EMPTY, LEAVES};
    let mut stores = subjects();
    let mut rng = StdRng::seed_from_u64(8);
    // The model: each live key's value and tree.
    let mut model: std::collections::BTreeMap<String, (String, u8)> = Default::default();
    for _ in 0..30 {
        let writes: Vec<Write<V>> = (0..rng.gen_range(1..20))
            .map(|_| {
                let key = format!("k{}", rng.gen_range(0..200));
                let tree = TREES[rng.gen_range(0..TREES.len())];
                if rng.gen_bool(0.2) {
                    // Moves a live key's entry; nothing for an absent one.
                    if let Some((_, filed)) = model.get_mut(&key) {
                        *filed = tree;
                    }
                    return Write::Refile {
                        key: key.into_bytes(),
                        tree,
                    };
                }
                let value = rng.gen_bool(0.8).then(|| format!("v{}", rng.gen::<u16>()));
                match &value {
                    Some(v) => model.insert(key.clone(), (v.clone(), tree)),
                    None => model.remove(&key),
                };
                in_tree(&key, value.as_deref(), tree)
            })
            .collect();
        for s in &mut stores {
            s.write(batch(writes.clone()));
        }
    }
    // What each tree's leaves must be: the XOR of the entries filed in it.
    let mut expected = std::collections::BTreeMap::new();
    for (key, (value, tree)) in &model {
        let position = crate::storage::MerkleLayout::position(key.as_bytes());
        let layout = crate::storage::MerkleLayout::new(PARTITIONS).expect("layout");
        let (partition, _) = layout.locate(position);
        let leaves = expected
            .entry((partition, *tree))
            .or_insert_with(|| vec![EMPTY; LEAVES]);
        let bytes = postcard::to_allocvec(value).expect("encode");
        let entry = entry_hash(key.as_bytes(), blake3::hash(&bytes).as_bytes());
        super::merkle::xor(&mut leaves[leaf_of(position, PARTITIONS)], &entry);
    }
    assert!(
        TREES
            .iter()
            .all(|t| (0..PARTITIONS).any(|p| expected.contains_key(&(p, *t)))),
        "every tree holds keys, so the leaves compared are not all empty"
    );
    for s in &stores {
        let name = s.name();
        for p in 0..PARTITIONS {
            for tree in TREES {
                let want = expected
                    .get(&(p, tree))
                    .cloned()
                    .unwrap_or_else(|| vec![EMPTY; LEAVES]);
                assert_eq!(
                    s.reader().leaves(p, tree).expect("leaves"),
                    want,
                    "{name} partition {p} tree {tree}"
                );
            }
        }
    }
    let reference = &stores[0];
    for s in &stores[1..] {
        let name = s.name();
        assert_eq!(
            s.reader().object_page(None, 1000).expect("page"),
            reference.reader().object_page(None, 1000).expect("page"),
            "{name}"
        );
    }
    // Paging through a run of leaves in small pages visits every key of it
    // once, in ring order, the same in every store.
    for s in &stores {
        let mut seen = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = s
                .reader()
                .leaf_page(1, (0, 1023), after.as_deref(), 3, usize::MAX)
                .expect("page");
            seen.extend(page.entries.iter().map(|(k, _, _)| k.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let reference_keys: Vec<Vec<u8>> = reference
            .reader()
            .leaf_page(1, (0, 1023), None, 10_000, usize::MAX)
            .expect("page")
            .entries
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        assert_eq!(seen, reference_keys, "{}", s.name());
        assert!(!seen.is_empty(), "partition 1 holds keys");
        // One byte of budget still returns one entry per page.
        let tight = s
            .reader()
            .leaf_page(1, (0, 1023), None, 100, 1)
            .expect("page");
        assert_eq!(tight.entries.len(), 1, "{}", s.name());
        assert!(tight.next.is_some(), "{}", s.name());
    }
}
