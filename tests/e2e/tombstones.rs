//! Tombstone collection (issue 4 item 7): 500 deleted keys are collected
//! after the grace period on every node, but not while a node that missed
//! the deletes is down; once it is back and the hints are handed off, the
//! tombstones go, `status` shows 0 keys and 0 tombstones, and no deleted
//! value comes back through handoff or read repair.

use std::sync::Arc;
use std::time::Duration;

use dynamo::client::{Client, GetOptions, PutOptions};
use dynamo::home::Home;
use serde_json::Value;

use crate::faults::status_rows;
use crate::support::{poll, Cluster};

const KEYS: usize = 500;
/// Writes in flight at once.
const CONCURRENCY: usize = 32;
/// How long collection may take once it can happen.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(120);

fn key(i: usize) -> String {
    format!("gc-{i}")
}

fn counts(rows: &[Value], field: &str) -> Vec<(String, Option<u64>)> {
    rows.iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("?").to_string(),
                r[field].as_u64(),
            )
        })
        .collect()
}

/// Runs `work(i)` for every key, `CONCURRENCY` at a time.
async fn for_every_key<F, Fut>(client: &Arc<Client>, work: F) -> Vec<String>
where
    F: Fn(Arc<Client>, usize) -> Fut,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    let mut out = vec![String::new(); KEYS];
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..KEYS {
        if tasks.len() >= CONCURRENCY {
            let (j, s) = tasks
                .join_next()
                .await
                .expect("a task")
                .expect("the task finished");
            out[j] = s;
        }
        let fut = work(client.clone(), i);
        tasks.spawn(async move { (i, fut.await) });
    }
    while let Some(done) = tasks.join_next().await {
        let (j, s) = done.expect("the task finished");
        out[j] = s;
    }
    out
}

#[test]
fn deleted_keys_are_collected_everywhere_and_never_resurrect() {
    let cluster = Cluster::start_with(5, &["--tombstone-grace-ms", "1000"]);
    let home = Home::at(cluster.home());
    let manifest = home.load_manifest().expect("the manifest");
    let creds = home.client_credentials().expect("the client credentials");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let client = {
        let _entered = runtime.enter();
        Arc::new(Client::new(manifest, creds).expect("a client"))
    };

    let tokens = runtime.block_on(for_every_key(&client, |c, i| async move {
        c.put(
            "default",
            key(i).as_bytes(),
            format!("value {i}").into_bytes(),
            None,
            &PutOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("put {}: {e}", key(i)))
    }));

    // n3 holds the values and misses the deletes.
    cluster.run(&["kill", "n3"]).ok();
    let tokens = Arc::new(tokens);
    let t = tokens.clone();
    runtime.block_on(for_every_key(&client, move |c, i| {
        let token = t[i].clone();
        async move {
            // Through the nodes that run (the client would try n3 first
            // for some keys, and a put that timed out is not resent).
            let options = PutOptions {
                node: Some(["n1", "n2", "n4", "n5"][i % 4].to_string()),
                w: None,
            };
            c.delete("default", key(i).as_bytes(), Some(&token), &options)
                .await
                .unwrap_or_else(|e| panic!("delete {}: {e}", key(i)))
        }
    }));

    // Well past grace and settle: nothing may be collected while n3, which
    // still holds the values, cannot answer.
    std::thread::sleep(Duration::from_secs(8));
    let rows = status_rows(&cluster).expect("status");
    let tombstones: u64 = rows.iter().filter_map(|r| r["tombstones"].as_u64()).sum();
    assert!(
        tombstones >= KEYS as u64,
        "expected the tombstones kept while n3 is down: {:?}",
        counts(&rows, "tombstones")
    );

    cluster.run(&["start", "n3"]).ok();
    poll(COLLECT_TIMEOUT, "tombstones and keys to reach 0", || {
        let rows = status_rows(&cluster)?;
        let up = rows.iter().filter(|r| r["state"] == "up").count();
        let keys = counts(&rows, "keys");
        let tombstones = counts(&rows, "tombstones");
        let hints = counts(&rows, "hints");
        let zero = |v: &[(String, Option<u64>)]| v.iter().all(|(_, c)| *c == Some(0));
        if up == 5 && zero(&keys) && zero(&tombstones) && zero(&hints) {
            Ok(())
        } else {
            Err(format!(
                "{up} up; keys {keys:?}; tombstones {tombstones:?}; hints {hints:?}"
            ))
        }
    });

    // Every key is gone for good: reads (and their read repair) find nothing.
    for _ in 0..2 {
        let found = runtime.block_on(for_every_key(&client, |c, i| async move {
            let reply = c
                .get("default", key(i).as_bytes(), &GetOptions::default())
                .await
                .unwrap_or_else(|e| panic!("get {}: {e}", key(i)));
            if reply.object.siblings().is_empty() {
                String::new()
            } else {
                format!("{}: {:?}", key(i), reply.object)
            }
        }));
        let back: Vec<&String> = found.iter().filter(|s| !s.is_empty()).collect();
        assert!(back.is_empty(), "expected no key to come back: {back:?}");
        std::thread::sleep(Duration::from_secs(1));
    }
    for i in (0..KEYS).step_by(100) {
        cluster.run(&["get", &key(i)]).expect_code(3);
    }
    let rows = status_rows(&cluster).expect("status");
    assert!(
        counts(&rows, "keys").iter().all(|(_, c)| *c == Some(0)),
        "expected no key after the reads: {:?}",
        counts(&rows, "keys")
    );
    assert!(
        rows.iter()
            .filter_map(|r| r["tombstones_collected"].as_u64())
            .sum::<u64>()
            >= KEYS as u64,
        "expected the collections counted: {:?}",
        counts(&rows, "tombstones_collected")
    );
}
