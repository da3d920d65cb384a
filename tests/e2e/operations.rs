//! Operator commands: `bench` (its report's shape, never its speed) and
//! `logs`.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{poll, Cluster};

/// A short bench over 200 keys.
const BENCH: [&str; 7] = [
    "bench",
    "--duration",
    "1",
    "--keys",
    "200",
    "--concurrency",
    "8",
];

#[test]
fn bench_reports_the_cli_md_shape_without_errors() {
    let cluster = Cluster::start(5);
    let doc = cluster.json(&BENCH);
    for field in ["duration_s", "ops_per_sec"] {
        assert!(
            doc[field].as_f64().is_some(),
            "expected a number {field:?} in {doc}"
        );
    }
    assert_eq!(
        doc["concurrency"], 8,
        "expected the concurrency asked for: {doc}"
    );
    assert!(
        doc["ops_per_sec"].as_f64().is_some_and(|v| v > 0.0),
        "expected ops_per_sec above 0: {doc}"
    );
    assert_eq!(doc["errors"], 0, "expected no errors: {doc}");
    assert!(
        doc["siblings"].as_u64().is_some(),
        "expected a siblings count: {doc}"
    );
    let mut total = 0;
    for op in ["get", "put"] {
        let count = doc[op]["count"].as_u64();
        assert!(count.is_some(), "expected {op}.count in {doc}");
        total += count.unwrap_or(0);
        for q in ["p50_ms", "p95_ms", "p99_ms", "p999_ms"] {
            assert!(
                doc[op][q].as_f64().is_some_and(|v| v >= 0.0),
                "expected {op}.{q} in {doc}"
            );
        }
    }
    assert!(total > 0, "expected some operations counted: {doc}");
    // The bench's keys are in the cluster afterwards.
    let keys: u64 = cluster.json(&["status"])["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["keys"].as_u64())
        .sum();
    assert!(
        keys >= 400,
        "expected the 200 bench keys on at least W = 2 replicas, got {keys}"
    );
    // What the operations cost, from the nodes' own counters: some CPU
    // and at least the client's request and the coordinator's answer.
    assert!(
        doc["node_cpu_us_per_op"].as_f64().is_some_and(|v| v > 0.0),
        "expected node_cpu_us_per_op above 0: {doc}"
    );
    assert!(
        doc["datagrams_per_op"].as_f64().is_some_and(|v| v >= 1.0),
        "expected at least one datagram per operation: {doc}"
    );
    // A second run reuses the same keys: nothing piles up.
    cluster.json(&BENCH);
    let again: u64 = cluster.json(&["status"])["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["keys"].as_u64())
        .sum();
    assert!(
        again <= 200 * 3,
        "expected the second run to write the same 200 keys (at most N = 3 copies each), got {again}"
    );
    let usage = cluster.run(&["bench", "--duration", "0"]);
    usage.expect_clean_error(2);
}

#[test]
fn logs_show_the_node_log() {
    let cluster = Cluster::start(3);
    let logs = cluster.run(&["logs", "n1"]);
    logs.ok();
    assert!(
        logs.text().contains("node n1 serving"),
        "expected \"node n1 serving\" in n1's log, got:\n{}",
        logs.text()
    );
    assert!(
        !logs.text().contains("node n2 serving"),
        "expected only n1's log"
    );
    let last = cluster.run(&["logs", "n2", "-n", "1"]);
    last.ok();
    assert_eq!(
        last.text().lines().count(),
        1,
        "expected one line with -n 1, got {:?}",
        last.text()
    );

    // -f follows the log until Ctrl-C: it shows the node stopping.
    let followed = cluster.scratch("follow.out");
    let mut follow = cluster
        .command(&["logs", "n3", "-f"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&followed).expect("a file for -f"))
        .stderr(Stdio::null())
        .spawn()
        .expect("run `dynamo logs n3 -f`");
    let read = || std::fs::read_to_string(&followed).unwrap_or_default();
    poll(
        Duration::from_secs(10),
        "`logs -f` printing the log so far",
        || {
            if read().contains("node n3 serving") {
                Ok(())
            } else {
                Err(read())
            }
        },
    );
    cluster.run(&["stop", "n3"]).ok();
    poll(
        Duration::from_secs(10),
        "`logs -f` printing n3 stopping",
        || {
            if read().contains("stopped") {
                Ok(())
            } else {
                Err(read())
            }
        },
    );
    let pid = Pid::from_raw(i32::try_from(follow.id()).expect("a pid"));
    kill(pid, Signal::SIGINT).expect("send Ctrl-C to `logs -f`");
    let status = poll(
        Duration::from_secs(10),
        "`logs -f` ending on Ctrl-C",
        || match follow.try_wait() {
            Ok(Some(status)) => Ok(status),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(
        status.success(),
        "expected `logs -f` to exit 0 on Ctrl-C, got {status}"
    );

    // The log lives on after the node stops, and says it stopped.
    let stopped = cluster.run(&["logs", "n3"]);
    stopped.ok();
    assert!(
        stopped.text().contains("node n3 serving") && stopped.text().contains("stopped"),
        "expected n3's log to show it serving and then stopped, got:\n{}",
        stopped.text()
    );
}
