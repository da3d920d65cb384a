//! The storage conformance suite: every behaviour test runs against both the
//! file backend and the in-memory backend (STYLE.md habit 6); file-only
//! behaviour (clean shutdown, corruption) follows, then an ignored benchmark.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use super::*;
use crate::config::{Durability, StorageConfig};

/// A value shaped a little like the node's versioned objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Versioned {
    counter: u64,
    body: Vec<u8>,
}

fn item(counter: u64) -> Versioned {
    Versioned {
        counter,
        body: counter.to_be_bytes().to_vec(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    File,
    Memory,
}

const BACKENDS: [Backend; 2] = [Backend::File, Backend::Memory];

/// A store on `backend`; the temp dir (file backend) lives as long as it.
fn open_store<V>(backend: Backend) -> (Store<V>, Option<TempDir>)
where
    V: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    match backend {
        Backend::File => {
            let dir = tempfile::tempdir().expect("temp dir");
            let (store, info) = Store::open(
                &dir.path().join("data/node.redb"),
                &StorageConfig::default(),
            )
            .expect("open store");
            assert!(info.fresh);
            assert!(info.clean_shutdown);
            (store, Some(dir))
        }
        Backend::Memory => (Store::open_in_memory().expect("open in memory"), None),
    }
}

fn set(value: Versioned) -> impl FnOnce(Option<Versioned>) -> (Option<Versioned>, ()) + Send {
    move |_| (Some(value), ())
}

#[tokio::test]
async fn get_update_delete() {
    for backend in BACKENDS {
        let (store, _dir) = open_store::<Versioned>(backend);
        assert_eq!(store.get(b"a").await.unwrap(), None, "{backend:?}");
        store.update(b"a".to_vec(), set(item(1))).await.unwrap();
        assert_eq!(store.get(b"a").await.unwrap(), Some(item(1)), "{backend:?}");

        let previous = store
            .update(b"a".to_vec(), |current| (Some(item(2)), current))
            .await
            .unwrap();
        assert_eq!(previous, Some(item(1)), "{backend:?}");
        assert_eq!(store.get(b"a").await.unwrap(), Some(item(2)), "{backend:?}");
        assert_eq!(store.len().await.unwrap(), 1, "{backend:?}");

        let deleted = store
            .update(b"a".to_vec(), |current| (None, current.is_some()))
            .await
            .unwrap();
        assert!(deleted, "{backend:?}");
        assert_eq!(store.get(b"a").await.unwrap(), None, "{backend:?}");
        assert!(store.is_empty().await.unwrap(), "{backend:?}");
        // Deleting a missing key is a no-op.
        store.update(b"zz".to_vec(), |_| (None, ())).await.unwrap();
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn update_sees_the_previous_update_of_its_batch() {
    for backend in BACKENDS {
        let (store, _dir) = open_store::<Versioned>(backend);
        // Queue many updates without awaiting, so they share batches; each
        // records what it saw.
        let mut pending = Vec::new();
        for n in 1..=200u64 {
            let store = store.clone();
            pending.push(tokio::spawn(async move {
                store
                    .update(b"k".to_vec(), move |current| {
                        let seen = current.map(|v| v.counter);
                        (Some(item(n)), seen)
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut seen: Vec<Option<u64>> = Vec::new();
        for task in pending {
            seen.push(task.await.unwrap());
        }
        // Every update but the first saw some earlier one's value, and the
        // values seen form one chain: no write was lost in a batch.
        let first_count = seen.iter().filter(|s| s.is_none()).count();
        assert_eq!(first_count, 1, "{backend:?}");
        let mut chain: Vec<u64> = seen.iter().flatten().copied().collect();
        chain.sort_unstable();
        chain.dedup();
        assert_eq!(
            chain.len(),
            199,
            "{backend:?}: each value seen exactly once"
        );
        let stats = store.stats();
        assert!(stats.commits < stats.writes, "{backend:?}: {stats:?}");
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn update_early_answers_before_the_commit() {
    for backend in BACKENDS {
        let (store, _dir) = open_store::<Versioned>(backend);
        let (previous, commit) = store
            .update_early(b"e".to_vec(), |current| (Some(item(7)), current))
            .await
            .unwrap();
        assert_eq!(previous, None);
        commit.await.unwrap();
        assert_eq!(store.get(b"e").await.unwrap(), Some(item(7)), "{backend:?}");
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_of_one_key_are_serialised() {
    for backend in BACKENDS {
        let (store, _dir) = open_store::<u64>(backend);
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .update(b"counter".to_vec(), |current| {
                            let next = current.unwrap_or(0) + 1;
                            (Some(next), next)
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results.sort_unstable();
        assert_eq!(results, (1..=1000).collect::<Vec<u64>>(), "{backend:?}");
        assert_eq!(
            store.get(b"counter").await.unwrap(),
            Some(1000),
            "{backend:?}"
        );
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_group_commits() {
    for backend in BACKENDS {
        let (store, _dir) = open_store::<Versioned>(backend);
        let tasks: Vec<_> = (0..2000u64)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .update(n.to_be_bytes().to_vec(), set(item(n)))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = store.stats();
        assert_eq!(stats.writes, 2000, "{backend:?}");
        assert!(
            stats.commits * 4 <= stats.writes,
            "{backend:?}: group commit should batch, got {stats:?}"
        );
        assert_eq!(store.len().await.unwrap(), 2000, "{backend:?}");
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn meta_round_trip() {
    for backend in BACKENDS {
        let (store, _dir) = open_store::<Versioned>(backend);
        assert_eq!(store.meta_get("incarnation").unwrap(), None, "{backend:?}");
        store
            .meta_put("incarnation", vec![0, 0, 0, 3])
            .await
            .unwrap();
        assert_eq!(
            store.meta_get("incarnation").unwrap(),
            Some(vec![0, 0, 0, 3]),
            "{backend:?}"
        );
        store.meta_put("incarnation", vec![4]).await.unwrap();
        assert_eq!(store.meta_get("incarnation").unwrap(), Some(vec![4]));
        // Meta entries are not objects.
        assert_eq!(store.len().await.unwrap(), 0, "{backend:?}");
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn scan_is_ordered_and_pages() {
    for backend in BACKENDS {
        let (store, _dir) = open_store::<Versioned>(backend);
        // Insert out of order.
        for n in [5u64, 1, 9, 3, 7, 2, 8, 4, 6, 0] {
            store
                .update(vec![b'k', n as u8], set(item(n)))
                .await
                .unwrap();
        }
        let all = store.scan(None, 100).await.unwrap();
        let counters: Vec<u64> = all.iter().map(|(_, v)| v.counter).collect();
        assert_eq!(counters, (0..10).collect::<Vec<_>>(), "{backend:?}");
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));

        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = store.scan(after.clone(), 3).await.unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 3);
            after = page.last().map(|(k, _)| k.clone());
            paged.extend(page);
        }
        assert_eq!(paged, all, "{backend:?}");
        assert!(store.scan(None, 0).await.unwrap().is_empty());
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn undecodable_value_is_a_value_error() {
    for backend in BACKENDS {
        let (store, dir) = open_store::<Vec<u8>>(backend);
        // A string of 0xff bytes is not a valid `Versioned`.
        store
            .update(b"bad".to_vec(), |_| (Some(vec![0xff; 3]), ()))
            .await
            .unwrap();
        drop(store);
        let Some(dir) = dir else { continue };
        let (typed, info) = Store::<Versioned>::open(
            &dir.path().join("data/node.redb"),
            &StorageConfig::default(),
        )
        .unwrap();
        assert!(!info.fresh);
        let err = typed.get(b"bad").await.unwrap_err();
        assert!(matches!(err, StorageError::Decode { .. }), "{err}");
        assert!(!err.is_fatal() && err.is_value_error());
        let err = typed
            .update(b"bad".to_vec(), set(item(1)))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Decode { .. }), "{err}");
        // The store keeps serving.
        typed.update(b"good".to_vec(), set(item(1))).await.unwrap();
        assert_eq!(typed.get(b"good").await.unwrap(), Some(item(1)));
        typed.close().await.unwrap();
    }
}

#[tokio::test]
async fn closed_store_refuses_work() {
    for backend in BACKENDS {
        let (store, _dir) = open_store::<Versioned>(backend);
        let other = store.clone();
        store.close().await.unwrap();
        let err = other.update(b"x".to_vec(), set(item(1))).await.unwrap_err();
        assert!(err.is_closed(), "{err}");
        let err = other.get(b"x").await.unwrap_err();
        assert!(err.is_closed(), "{err}");
    }
}

// ----- file backend only -----

fn reopen(path: &Path) -> (Store<Versioned>, OpenInfo) {
    Store::open(path, &StorageConfig::default()).expect("reopen")
}

#[tokio::test]
async fn clean_shutdown_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let (store, info) = reopen(&path);
    assert!(info.fresh && info.clean_shutdown);
    store.update(b"a".to_vec(), set(item(1))).await.unwrap();
    store.close().await.unwrap();

    let (store, info) = reopen(&path);
    assert!(!info.fresh);
    assert!(info.clean_shutdown);
    assert_eq!(store.get(b"a").await.unwrap(), Some(item(1)));
    // Simulated crash: drop without close.
    store.update(b"b".to_vec(), set(item(2))).await.unwrap();
    drop(store);

    let (store, info) = reopen(&path);
    assert!(!info.clean_shutdown, "a drop without close is not clean");
    assert_eq!(store.get(b"b").await.unwrap(), Some(item(2)));
    store.close().await.unwrap();
    let (_store, info) = reopen(&path);
    assert!(info.clean_shutdown);
}

#[tokio::test]
async fn second_open_of_one_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let (_store, _) = reopen(&path);
    let err = Store::<Versioned>::open(&path, &StorageConfig::default()).unwrap_err();
    assert!(matches!(err, StorageError::AlreadyOpen { .. }), "{err}");
    assert!(err.is_fatal());
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[tokio::test]
async fn buffered_writes_become_durable_within_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let config = StorageConfig {
        durability: Durability::Buffered,
        flush_interval_ms: 50,
    };
    let (store, _) = Store::<Versioned>::open(&path, &config).unwrap();
    store.update(b"a".to_vec(), set(item(1))).await.unwrap();
    // Visible at once...
    assert_eq!(store.get(b"a").await.unwrap(), Some(item(1)));
    // ...but not yet on disk: a copy of the file taken now (what a crash
    // would leave) does not have it.
    let before = dir.path().join("before.redb");
    std::fs::copy(&path, &before).unwrap();
    // After the flush interval the writer has made it durable, with no
    // further write to carry it.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = dir.path().join("after.redb");
    std::fs::copy(&path, &after).unwrap();
    assert_eq!(
        store.stats().commits,
        1,
        "the flush is an extra, empty commit"
    );

    let (crashed_early, info) = reopen(&before);
    assert!(!info.clean_shutdown);
    assert_eq!(crashed_early.get(b"a").await.unwrap(), None);
    let (crashed_late, info) = reopen(&after);
    assert!(!info.clean_shutdown);
    assert_eq!(crashed_late.get(b"a").await.unwrap(), Some(item(1)));
    store.close().await.unwrap();
}

#[tokio::test]
async fn immediate_writes_are_durable_when_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let (store, _) = reopen(&path);
    store.update(b"a".to_vec(), set(item(1))).await.unwrap();
    let copy = dir.path().join("copy.redb");
    std::fs::copy(&path, &copy).unwrap();
    let (crashed, _) = reopen(&copy);
    assert_eq!(crashed.get(b"a").await.unwrap(), Some(item(1)));
    store.close().await.unwrap();
}

/// Asserts the error concerns the file and says so.
fn assert_names_file(err: &StorageError, path: &Path) {
    assert!(err.is_fatal(), "{err}");
    assert_eq!(err.path(), Some(path), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "message should name the file: {err}"
    );
}

#[test]
fn garbage_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, garbage).unwrap();
    let err = Store::<Versioned>::open(&path, &StorageConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::Corrupted { .. } | StorageError::Incompatible { .. }
        ),
        "{err}"
    );
    assert_names_file(&err, &path);
}

#[tokio::test]
async fn truncated_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let (store, _) = reopen(&path);
    let writes: Vec<_> = (0..2000u64)
        .map(|n| {
            let value = Versioned {
                counter: n,
                body: vec![7; 200],
            };
            let store = store.clone();
            tokio::spawn(async move { store.update(n.to_be_bytes().to_vec(), set(value)).await })
        })
        .collect();
    for write in writes {
        write.await.unwrap().unwrap();
    }
    store.close().await.unwrap();
    let full = std::fs::metadata(&path).unwrap().len();
    for keep in [full / 2, 4096, 100] {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(keep).unwrap();
        drop(file);
        match Store::<Versioned>::open(&path, &StorageConfig::default()) {
            Err(err) => {
                eprintln!("truncated to {keep} of {full} bytes: {err}");
                assert_names_file(&err, &path);
            }
            // redb may repair a file cut inside free space; then it must
            // still be consistent enough to read.
            Ok((store, _)) => {
                eprintln!("truncated to {keep} of {full} bytes: opened and repaired");
                let _ = store.scan(None, 10).await;
            }
        }
    }
}

#[test]
fn unreadable_file_is_reported_with_its_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&path).is_ok() {
        // Running as root: permissions do not stop us. A directory in the
        // file's place is unreadable as a database for everyone.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
    }
    let err = Store::<Versioned>::open(&path, &StorageConfig::default()).unwrap_err();
    assert!(matches!(err, StorageError::Unreadable { .. }), "{err}");
    assert_names_file(&err, &path);
}

// ----- benchmark -----

const BENCH_WRITERS: usize = 64;
const BENCH_VALUE_BYTES: usize = 100;
const BENCH_SECONDS: f64 = 3.0;

async fn bench_writes(durability: Durability) -> (f64, StoreStats) {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        durability,
        flush_interval_ms: 100,
    };
    let (store, _) = Store::<Vec<u8>>::open(&dir.path().join("bench.redb"), &config).unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(BENCH_SECONDS);
    let tasks: Vec<_> = (0..BENCH_WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let key = format!("w{writer:02}-{n:08}").into_bytes();
                    store
                        .update(key, |_| (Some(vec![0xab; BENCH_VALUE_BYTES]), ()))
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let stats = store.stats();
    store.close().await.unwrap();
    (rate, stats)
}

async fn bench_reads(store: &Store<Vec<u8>>, keys: u64, pool: bool) -> f64 {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(BENCH_SECONDS);
    let tasks: Vec<_> = (0..BENCH_WRITERS as u64)
        .map(|reader| {
            let store = store.clone();
            let db = store.database();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let key = ((reader * 7919 + n) % keys).to_be_bytes().to_vec();
                    let value = if pool {
                        store.get(&key).await.unwrap()
                    } else {
                        let db = Arc::clone(&db);
                        tokio::task::spawn_blocking(move || {
                            let txn = db.begin_read().unwrap();
                            let table = txn.open_table(OBJECTS).unwrap();
                            let stored = table.get(key.as_slice()).unwrap();
                            stored.map(|s| postcard::from_bytes::<Vec<u8>>(s.value()).unwrap())
                        })
                        .await
                        .unwrap()
                    };
                    assert!(value.is_some());
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// `cargo test --release --lib storage -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark; run in release with --ignored --nocapture"]
async fn bench_group_commit() {
    for durability in [Durability::Immediate, Durability::Buffered] {
        let (rate, stats) = bench_writes(durability).await;
        println!(
            "{durability:?}: {rate:.0} writes/s ({BENCH_WRITERS} writers, {BENCH_VALUE_BYTES}-byte values), \
             {:.1} writes per commit",
            stats.writes as f64 / stats.commits.max(1) as f64
        );
    }
    let store = Store::<Vec<u8>>::open_in_memory().unwrap();
    let keys = 10_000u64;
    for n in 0..keys {
        store
            .update(n.to_be_bytes().to_vec(), |_| {
                (Some(vec![1; BENCH_VALUE_BYTES]), ())
            })
            .await
            .unwrap();
    }
    let pool = bench_reads(&store, keys, true).await;
    let blocking = bench_reads(&store, keys, false).await;
    println!(
        "reads, {BENCH_WRITERS} readers: reader pool {pool:.0}/s, spawn_blocking {blocking:.0}/s"
    );
}

/// Hints: merged on write, listed per owner in pages, found per key across
/// owners, counted, kept apart from objects, and deleted only if unchanged.
#[tokio::test]
async fn hints_merge_list_and_delete_only_if_unchanged() {
    for backend in BACKENDS {
        let (store, _dir) = open_store::<Versioned>(backend);
        let max = |a: Versioned, b: Versioned| if a.counter >= b.counter { a } else { b };
        let h = |owner: &str, key: &[u8]| HintKey::new(owner, key.to_vec()).expect("valid owner");
        assert!(HintKey::new("bad\0name", b"k".to_vec()).is_none());
        assert!(HintKey::new("", b"k".to_vec()).is_none());
        store
            .merge_hint(&h("n2", b"a"), item(1), max)
            .await
            .unwrap();
        store
            .merge_hint(&h("n2", b"a"), item(3), max)
            .await
            .unwrap();
        store
            .merge_hint(&h("n2", b"a"), item(2), max)
            .await
            .unwrap();
        store
            .merge_hint(&h("n2", b"b"), item(5), max)
            .await
            .unwrap();
        store
            .merge_hint(&h("n3", b"a"), item(7), max)
            .await
            .unwrap();
        store
            .merge_hint(&h("n22", b"c"), item(9), max)
            .await
            .unwrap();
        assert_eq!(store.get_hint(&h("n2", b"a")).await.unwrap(), Some(item(3)));
        assert_eq!(store.hint_count().await.unwrap(), 4);
        assert_eq!(store.len().await.unwrap(), 0, "hints are not objects");
        assert_eq!(store.get(b"a").await.unwrap(), None);

        let n2 = store.hints(Some("n2"), None, 1).await.unwrap();
        assert_eq!(n2, vec![(h("n2", b"a"), item(3))]);
        let next = store.hints(Some("n2"), Some(&n2[0].0), 10).await.unwrap();
        assert_eq!(next, vec![(h("n2", b"b"), item(5))], "n22 is another owner");
        assert_eq!(store.hints(None, None, 100).await.unwrap().len(), 4);

        let for_a = store.hints_for_key(b"a").await.unwrap();
        let owners: Vec<&str> = for_a.iter().map(|(k, _)| k.owner.as_str()).collect();
        assert_eq!(owners, vec!["n2", "n3"]);
        let all_owners = store.hint_owners(100).await.unwrap();
        assert_eq!(
            all_owners,
            vec![("n2".into(), 2), ("n22".into(), 1), ("n3".into(), 1)]
        );

        // A hint that grew since it was read is kept.
        store
            .merge_hint(&h("n2", b"b"), item(6), max)
            .await
            .unwrap();
        let deleted = store
            .delete_hint_if_unchanged(&h("n2", b"b"), item(5))
            .await
            .unwrap();
        assert!(!deleted);
        assert!(store
            .delete_hint_if_unchanged(&h("n2", b"b"), item(6))
            .await
            .unwrap());
        assert_eq!(store.get_hint(&h("n2", b"b")).await.unwrap(), None);
        assert_eq!(store.hint_count().await.unwrap(), 3);
    }
}

// ----- Merkle leaves -----

/// The leaves of every partition rebuilt from scratch from the objects (a
/// full scan), to compare with what the writer kept up to date.
async fn leaves_from_scratch<V>(store: &Store<V>) -> Vec<Vec<crate::core::merkle::Digest>>
where
    V: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    use crate::core::merkle::{entry_hash, MerkleTree};
    let layout = store.layout();
    let mut trees = vec![MerkleTree::new(); layout.partitions() as usize];
    let mut after = None;
    loop {
        let page = store.scan(after.clone(), 1000).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (key, value) in &page {
            let bytes = postcard::to_allocvec(value).unwrap();
            let (p, l) = layout.locate(MerkleLayout::position(key));
            let version = *blake3::hash(&bytes).as_bytes();
            trees[p as usize].update(l as usize, None, Some(&entry_hash(key, &version)));
        }
    }
    trees.iter().map(|t| t.leaves().to_vec()).collect()
}

async fn stored_leaves<V>(store: &Store<V>) -> Vec<Vec<crate::core::merkle::Digest>>
where
    V: Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let mut all = Vec::new();
    for p in 0..store.layout().partitions() {
        all.push(store.merkle_leaves(p).await.unwrap());
    }
    all
}

#[tokio::test]
async fn merkle_leaves_match_a_rebuild_after_random_writes_merges_and_deletes() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let store: Store<Versioned> = match backend {
            Backend::File => {
                Store::open_with_partitions(
                    &dir.path().join("m.redb"),
                    &StorageConfig::default(),
                    8,
                )
                .unwrap()
                .0
            }
            Backend::Memory => Store::open_in_memory_with_partitions(8).unwrap(),
        };
        let mut pending = Vec::new();
        for round in 0..3000u64 {
            let key = format!("k{}", rng.gen_range(0..400)).into_bytes();
            let op = rng.gen_range(0..10);
            let s = store.clone();
            // Concurrent updates, so many share one group commit.
            pending.push(tokio::spawn(async move {
                s.update(key, move |current: Option<Versioned>| match (op, current) {
                    (0..=1, _) => (None, ()),
                    // A "merge": keep the larger counter.
                    (2..=4, Some(c)) => (Some(item(c.counter.max(round))), ()),
                    (_, _) => (Some(item(round)), ()),
                })
                .await
                .unwrap()
            }));
            if pending.len() >= 64 {
                for p in pending.drain(..) {
                    p.await.unwrap();
                }
            }
        }
        for p in pending.drain(..) {
            p.await.unwrap();
        }
        let stored = stored_leaves(&store).await;
        assert_eq!(stored, leaves_from_scratch(&store).await, "{backend:?}");
        assert!(stored
            .iter()
            .flatten()
            .any(|l| *l != crate::core::merkle::EMPTY));
        // Every key is listed in exactly its leaf.
        let mut listed = 0;
        for p in 0..8 {
            for l in 0..crate::core::merkle::LEAVES as u32 {
                let page = store
                    .leaf_entries(p, l, None, 10_000, usize::MAX)
                    .await
                    .unwrap();
                assert_eq!(page.next, None);
                for (key, value, _) in &page.entries {
                    assert_eq!(store.layout().locate(MerkleLayout::position(key)), (p, l));
                    assert_eq!(store.get(key).await.unwrap().as_ref(), Some(value));
                }
                listed += page.entries.len() as u64;
            }
        }
        assert_eq!(listed, store.len().await.unwrap());
        // Deleting everything leaves every leaf empty.
        for i in 0..400 {
            store
                .update(format!("k{i}").into_bytes(), |_: Option<Versioned>| {
                    (None, ())
                })
                .await
                .unwrap();
        }
        assert!(stored_leaves(&store)
            .await
            .iter()
            .flatten()
            .all(|l| *l == crate::core::merkle::EMPTY));
    }
}

#[tokio::test]
async fn leaf_entries_pages_through_a_full_leaf() {
    let store: Store<Versioned> = Store::open_in_memory_with_partitions(1).unwrap();
    // 1 partition: 1024 leaves; 5000 keys put several in most leaves.
    for i in 0..5000u64 {
        store
            .update(format!("key-{i}").into_bytes(), set(item(i)))
            .await
            .unwrap();
    }
    let mut total = 0;
    for leaf in 0..crate::core::merkle::LEAVES as u32 {
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let page = store
                .leaf_entries(0, leaf, after, 2, usize::MAX)
                .await
                .unwrap();
            assert!(page.entries.len() <= 2);
            seen.extend(page.entries.iter().map(|(k, _, _)| k.clone()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let unique: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no key twice");
        total += seen.len();
    }
    assert_eq!(total, 5000);
}

#[tokio::test]
async fn a_store_without_a_leaf_table_rebuilds_it_once_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    let (store, _) = Store::<Versioned>::open(&path, &StorageConfig::default()).unwrap();
    for i in 0..300u64 {
        store
            .update(format!("k{i}").into_bytes(), set(item(i)))
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    // Another partition count (as a store from before the table existed):
    // rebuilt once, then kept up to date.
    let (store, info) =
        Store::<Versioned>::open_with_partitions(&path, &StorageConfig::default(), 16).unwrap();
    assert_eq!(info.merkle_rebuilt, Some(300));
    assert_eq!(
        stored_leaves(&store).await,
        leaves_from_scratch(&store).await
    );
    store.close().await.unwrap();
    let (store, info) =
        Store::<Versioned>::open_with_partitions(&path, &StorageConfig::default(), 16).unwrap();
    assert_eq!(info.merkle_rebuilt, None, "no scan on a normal restart");
    assert_eq!(
        stored_leaves(&store).await,
        leaves_from_scratch(&store).await
    );
    store.close().await.unwrap();
}
