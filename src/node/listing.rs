//! Key listing (`dynamo keys`, `GET /buckets/{b}/keys`): one page of a
//! bucket's live keys across the cluster, in storage order (the key's
//! bytes), from one replica per partition.
//!
//! - **A node's page** ([`local_page`]): a range scan of the bucket's
//!   storage keys after a cursor, on the store's reader threads, keeping
//!   the keys of the asked partitions; tombstone-only keys are left out. It
//!   stops at the page's limit or after [`EXAMINED_MAX`] keys, and says how
//!   far it got (`scanned_to`), so nothing is loaded whole.
//! - **The cluster's page** ([`cluster_page`]): every partition is given to
//!   one of its home replicas (this node first when it is one); each node
//!   asked answers for its partitions. A node that fails gives its
//!   partitions to the next replica; a partition no replica answers for
//!   fails the page. The page is every answered key up to the smallest
//!   `scanned_to`, so none is skipped or repeated across pages.
//!
//! Listing is read-only and outside the protocol's state machine: it
//! coordinates nothing the machine decides, like `dynamo status`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures_util::future::join_all;

use crate::core::clock::Object;
use crate::core::key::ObjectKey;
use crate::core::message::{ErrorKind, Request, Response, KEYS_PAGE_MAX};
use crate::core::node::Shared;
use crate::storage::{MerkleLayout, Store};

/// Keys a node looks at for one page before it answers with what it has.
pub const EXAMINED_MAX: usize = 20_000;
/// Objects read from the store per scan.
const SCAN_PAGE: usize = 1_000;

/// A node's page: keys, and how far the scan got (`None`: the bucket's end).
pub type Page = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// Up to `limit` keys of `bucket` after `after` that this node holds in
/// `partitions` (all when `None`), tombstone-only ones too with `deleted`.
pub async fn local_page(
    store: &Store<Object>,
    bucket: &str,
    after: Option<Vec<u8>>,
    limit: u32,
    partitions: Option<Vec<u32>>,
    deleted: bool,
) -> Result<Page, String> {
    let limit = limit.clamp(1, KEYS_PAGE_MAX) as usize;
    let prefix = ObjectKey {
        bucket: bucket.to_string(),
        key: Vec::new(),
    }
    .storage_key();
    let wanted: Option<HashSet<u32>> = partitions.map(|p| p.into_iter().collect());
    let layout = store.layout();
    let mut cursor = prefix.clone();
    cursor.extend(after.unwrap_or_default());
    let mut keys = Vec::new();
    let mut examined = 0;
    loop {
        let page = store
            .scan(Some(cursor.clone()), SCAN_PAGE)
            .await
            .map_err(|e| e.to_string())?;
        let full = page.len() == SCAN_PAGE;
        for (raw, object) in page {
            let Some(key) = raw.strip_prefix(prefix.as_slice()) else {
                return Ok((keys, None));
            };
            examined += 1;
            let (partition, _) = layout.locate(MerkleLayout::position(&raw));
            let in_scope = wanted.as_ref().is_none_or(|w| w.contains(&partition));
            if in_scope && (deleted || !object.is_deleted()) {
                keys.push(key.to_vec());
                if keys.len() == limit {
                    return Ok((keys, Some(key.to_vec())));
                }
            }
            cursor = raw;
        }
        if !full {
            return Ok((keys, None));
        }
        if examined >= EXAMINED_MAX {
            return Ok((keys, Some(cursor[prefix.len()..].to_vec())));
        }
    }
}

/// Asks one node for its page of the given partitions.
pub trait PageSource {
    /// That node's page, or why it did not answer.
    fn page(
        &self,
        node: &str,
        request: Request,
    ) -> impl std::future::Future<Output = Result<Page, String>> + Send;
}

/// One page of the bucket's live keys across the cluster (see the module
/// comment); `me` is this node, `allowed` says which peers it may reach.
pub async fn cluster_page(
    view: &Shared,
    me: &str,
    source: &impl PageSource,
    allowed: impl Fn(&str) -> bool,
    bucket: &str,
    after: Option<Vec<u8>>,
    limit: u32,
) -> Response {
    let limit = limit.clamp(1, KEYS_PAGE_MAX);
    let n = view.quorums(bucket).0;
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut why: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<u32> = (0..view.ring.partitions()).collect();
    let mut pages: Vec<Page> = Vec::new();
    while !pending.is_empty() {
        let mut plan: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for p in pending.drain(..) {
            let list = view.ring.preference_list(p, n);
            let usable = |x: &&str| !failed.contains(*x) && (*x == me || allowed(x));
            let pick = list
                .iter()
                .find(|x| **x == me && usable(x))
                .or_else(|| list.iter().find(|x| usable(x)));
            let Some(pick) = pick else {
                let said: Vec<String> = list
                    .iter()
                    .map(|x| match why.get(*x) {
                        Some(w) => format!("{x} ({w})"),
                        None => format!("{x} (cut off)"),
                    })
                    .collect();
                return Response::error(
                    ErrorKind::Unavailable,
                    format!(
                        "cannot list bucket {bucket}: no replica of partition {p} answers: {}",
                        said.join(", ")
                    ),
                );
            };
            plan.entry(pick.to_string()).or_default().push(p);
        }
        let asks = plan.into_iter().map(|(node, partitions)| {
            let request = Request::KeyPage {
                bucket: bucket.to_string(),
                after: after.clone(),
                limit,
                partitions: Some(partitions.clone()),
                deleted: false,
            };
            async move {
                let answer = source.page(&node, request).await;
                (node, partitions, answer)
            }
        });
        for (node, partitions, answer) in join_all(asks).await {
            match answer {
                Ok(page) => pages.push(page),
                Err(e) => {
                    why.insert(node.clone(), e);
                    failed.insert(node);
                    pending.extend(partitions);
                }
            }
        }
    }
    let (keys, next) = merge_pages(pages, limit as usize);
    Response::Keys { keys, next }
}

/// The keys of every page up to the least far scan, sorted, each once, at
/// most `limit`; and where the next page starts (`None`: no more).
fn merge_pages(pages: Vec<Page>, limit: usize) -> Page {
    let bound = pages.iter().filter_map(|(_, s)| s.clone()).min();
    let mut keys: Vec<Vec<u8>> = pages
        .into_iter()
        .flat_map(|(keys, _)| keys)
        .filter(|k| bound.as_ref().is_none_or(|b| k <= b))
        .collect();
    keys.sort();
    keys.dedup();
    if keys.len() >= limit {
        keys.truncate(limit);
        let next = keys.last().cloned();
        return (keys, next);
    }
    (keys, bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn a_page_stops_at_the_least_far_scan() {
        // One node scanned to "m" (more after it), the other to its end.
        let pages = vec![
            (vec![k("a"), k("m")], Some(k("m"))),
            (vec![k("b"), k("n"), k("z")], None),
        ];
        let (keys, next) = merge_pages(pages, 10);
        assert_eq!(keys, vec![k("a"), k("b"), k("m")]);
        assert_eq!(next, Some(k("m")));
    }

    #[test]
    fn a_full_page_names_its_last_key_and_repeats_none() {
        let pages = vec![
            (vec![k("a"), k("c")], None),
            (vec![k("a"), k("b"), k("d")], None),
        ];
        let (keys, next) = merge_pages(pages, 3);
        assert_eq!(keys, vec![k("a"), k("b"), k("c")]);
        assert_eq!(next, Some(k("c")));
        let (keys, next) = merge_pages(vec![(vec![k("d")], None)], 3);
        assert_eq!((keys, next), (vec![k("d")], None));
    }

    #[tokio::test]
    async fn a_node_page_skips_tombstones_other_buckets_and_other_partitions() {
        use crate::core::clock::ReplicaId;
        use crate::storage::{Write, WriteBatch};
        let store: Store<Object> = Store::open_in_memory().expect("store");
        let replica = ReplicaId::new("n1", 1);
        let mut batch = WriteBatch::default();
        let put = |bucket: &str, key: &str, value: Option<&[u8]>| {
            let (object, _) =
                Object::new().update(&Default::default(), value.map(<[u8]>::to_vec), &replica);
            Write::Object {
                key: ObjectKey::new(bucket, key.as_bytes())
                    .expect("key")
                    .storage_key(),
                value: Some(object),
                tree: crate::core::merkle::DEFAULT_TREE,
            }
        };
        for i in 0..50 {
            batch.writes.push(put("b", &format!("k{i:02}"), Some(b"v")));
        }
        batch.writes.push(put("b", "gone", None));
        batch.writes.push(put("other", "k00", Some(b"v")));
        store.write_batch(batch).await.expect("write");
        let (all, end) = local_page(&store, "b", None, 100, None, false)
            .await
            .expect("page");
        assert_eq!(all.len(), 50);
        assert_eq!(end, None);
        let (with_deleted, _) = local_page(&store, "b", None, 100, None, true)
            .await
            .expect("page");
        assert_eq!(with_deleted.len(), 51);
        let (first, cursor) = local_page(&store, "b", None, 20, None, false)
            .await
            .expect("page");
        assert_eq!(first.len(), 20);
        let (rest, _) = local_page(&store, "b", cursor, 100, None, false)
            .await
            .expect("page");
        assert_eq!(first.len() + rest.len(), 50);
        assert!(first.last() < rest.first());
        let layout = store.layout();
        let p0 = |key: &Vec<u8>| {
            let raw = ObjectKey::new("b", key).expect("key").storage_key();
            layout.locate(MerkleLayout::position(&raw)).0
        };
        let some = p0(&all[0]);
        let (only, _) = local_page(&store, "b", None, 100, Some(vec![some]), false)
            .await
            .expect("page");
        assert!(!only.is_empty());
        assert!(only.iter().all(|k| p0(k) == some));
    }
}
