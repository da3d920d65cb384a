//! Mistakes people make: each is refused with one clear sentence and the
//! exit code CLI.md names (2 for a wrong command line, 1 for other errors,
//! 5 when the cluster cannot be reached), never a panic; and the cluster
//! keeps serving what it held before.

use rand::{Rng, SeedableRng};

use crate::support::{dynamo_in, Cluster};

/// A cluster of 3 nodes holding `kept` = `"still here"`.
fn cluster_with_a_key() -> Cluster {
    let cluster = Cluster::start(3);
    cluster.put("kept", "still here", &[]);
    cluster
}

/// The cluster answers and the key written first is intact.
#[track_caller]
fn still_serving(cluster: &Cluster) {
    for node in &cluster.names {
        cluster.expect_value("kept", b"still here", &["--node", node]);
    }
    cluster.put("after", "the mistake", &[]);
    cluster.expect_value("after", b"the mistake", &[]);
}

#[track_caller]
fn refused(cluster: &Cluster, args: &[&str], code: i32, words: &[&str]) {
    let run = cluster.run(args);
    let message = run.expect_clean_error(code).to_lowercase();
    assert!(
        words.iter().any(|w| message.contains(&w.to_lowercase())),
        "`{}`: expected the error to mention one of {words:?}, got: {message}",
        run.line
    );
}

#[test]
fn keys_over_1024_bytes_and_empty_keys_are_refused() {
    let cluster = cluster_with_a_key();
    let long = "k".repeat(1025);
    refused(&cluster, &["put", &long, "v"], 2, &["1024"]);
    refused(&cluster, &["get", &long], 2, &["1024"]);
    refused(&cluster, &["delete", &long], 2, &["1024"]);
    refused(&cluster, &["put", "", "v"], 2, &["empty"]);
    refused(&cluster, &["get", ""], 2, &["empty"]);
    // One wording and one exit code per mistake, whichever command.
    for bad in [long.as_str(), ""] {
        let sentences: Vec<String> = [
            &["get", bad][..],
            &["put", bad, "v"],
            &["delete", bad],
            &["ring", "--key", bad],
        ]
        .iter()
        .map(|args| cluster.run(args).expect_clean_error(2).to_string())
        .collect();
        assert!(
            sentences.iter().all(|s| s == &sentences[0]),
            "one sentence per mistake, got {sentences:?}"
        );
    }
    // 1024 bytes is still a key.
    let longest = "k".repeat(1024);
    cluster.put(&longest, "fits", &[]);
    cluster.expect_value(&longest, b"fits", &[]);
    refused(
        &cluster,
        &["get", "k", "--bucket", "no spaces"],
        2,
        &["bucket"],
    );
    still_serving(&cluster);
}

#[test]
fn values_over_the_limit_are_refused() {
    let cluster = cluster_with_a_key();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut value = vec![0u8; 1024 * 1024 + 1];
    rng.fill(&mut value[..]);
    let over = cluster.scratch("over.bin");
    std::fs::write(&over, &value).expect("write the value");
    let path = over.to_str().expect("a UTF-8 temp path");
    refused(&cluster, &["put", "big", "--file", path], 2, &["1048576"]);
    let stdin = cluster.run_with_stdin(&["put", "big"], &value);
    stdin.expect_clean_error(2);
    cluster.run(&["get", "big"]).expect_code(3);

    // Exactly the limit is accepted, byte for byte.
    value.pop();
    let limit = cluster.scratch("limit.bin");
    std::fs::write(&limit, &value).expect("write the value");
    let path = limit.to_str().expect("a UTF-8 temp path");
    cluster.run(&["put", "big", "--file", path]).ok();
    cluster.expect_value("big", &value, &["--node", "n3"]);

    refused(
        &cluster,
        &["put", "x", "--file", "/nonexistent/value"],
        1,
        &["/nonexistent/value"],
    );
    still_serving(&cluster);
}

#[test]
fn context_tokens_that_are_garbage_or_of_another_cluster_are_refused() {
    let cluster = cluster_with_a_key();
    let other = Cluster::start_with(1, &["-N", "1", "-R", "1", "-W", "1"]);
    let foreign = other.put("kept", "elsewhere", &[]);
    // A token of this cluster is accepted, to show the refusals are not
    // about the shape of the command.
    let own = cluster.json(&["get", "kept"])["context"]
        .as_str()
        .expect("a context")
        .to_string();

    refused(
        &cluster,
        &["put", "kept", "v", "--context", "garbage!"],
        2,
        &["context"],
    );
    refused(
        &cluster,
        &["put", "kept", "v", "--context", "AAAA"],
        2,
        &["context"],
    );
    refused(
        &cluster,
        &["delete", "kept", "--context", "garbage"],
        2,
        &["context"],
    );
    refused(
        &cluster,
        &["put", "kept", "v", "--context", &foreign],
        2,
        &["another cluster"],
    );
    refused(
        &cluster,
        &["delete", "kept", "--context", &foreign],
        2,
        &["another cluster"],
    );
    // The other way round, too.
    let run = other.run(&["put", "kept", "v", "--context", &own]);
    let message = run.expect_clean_error(2);
    assert!(
        message.contains("another cluster"),
        "expected \"another cluster\", got {message}"
    );

    still_serving(&cluster);
    cluster.put("kept", "still here", &["--context", &own]);
    other.expect_value("kept", b"elsewhere", &[]);
}

#[test]
fn unknown_node_names_and_bad_quorums_are_refused() {
    let cluster = cluster_with_a_key();
    for args in [
        &["get", "kept", "--node", "n9"][..],
        &["put", "kept", "v", "--node", "n9"],
        &["kill", "n9"],
        &["stop", "n9"],
        &["start", "n9"],
        &["logs", "n9"],
        &["merkle", "--node", "n9"],
        &["repair", "--node", "n9"],
        &["ring", "plan", "--remove", "n9"],
        &["leave", "n9"],
    ] {
        let run = cluster.run(args);
        assert_eq!(
            run.expect_clean_error(2),
            "error: no node named n9 in this cluster (nodes: n1, n2, n3)",
            "`{}`: one sentence for an unknown node",
            run.line
        );
    }
    refused(&cluster, &["get", "kept", "-R", "0"], 2, &["-R"]);
    refused(&cluster, &["get", "kept", "-R", "4"], 2, &["-R"]);
    refused(&cluster, &["put", "kept", "v", "-W", "0"], 2, &["-W"]);
    refused(&cluster, &["put", "kept", "v", "-W", "4"], 2, &["-W"]);
    // Clap's own usage errors exit 2 as well.
    cluster.run(&["get"]).expect_code(2);
    cluster.run(&["frobnicate"]).expect_code(2);
    still_serving(&cluster);
}

#[test]
fn commands_against_a_stopped_cluster_say_it_is_not_running() {
    let cluster = cluster_with_a_key();
    cluster.down();
    for args in [
        &["put", "k", "v"][..],
        &["get", "kept"],
        &["get", "kept", "--json"],
        &["delete", "kept"],
        &["resolve", "kept", "--pick", "1"],
        &["status"],
        &["bench", "--duration", "1"],
        &["merkle"],
        &["merkle", "--partition", "0"],
        &["repair"],
    ] {
        refused(
            &cluster,
            args,
            5,
            &[
                "not running",
                "unreachable",
                "no node of the cluster answers",
            ],
        );
    }
    refused(&cluster, &["kill", "n1"], 1, &["not running"]);
    let again = cluster.run(&["down"]);
    again.ok();
    assert!(
        again.text().contains("no node"),
        "expected `down` of a stopped cluster to say no node was running, got {:?}",
        again.text()
    );
    cluster.up_again();
    still_serving(&cluster);
}

#[test]
fn commands_without_a_cluster_say_where_they_looked() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let home = dir.path().join("nothing-here");
    for args in [
        &["get", "k"][..],
        &["put", "k", "v"],
        &["status"],
        &["ring"],
        &["down"],
        &["merkle"],
        &["repair"],
        &["logs", "n1"],
        &["kill", "n1"],
    ] {
        let run = dynamo_in(&home, args, None);
        let message = run.expect_clean_error(1);
        assert_eq!(
            message,
            format!(
                "error: no cluster at {}: start one with `dynamo up`, or point --home / \
                 DYNAMO_HOME at its home",
                home.display()
            ),
            "`{}`: one sentence for a home without a cluster",
            run.line
        );
    }
}

#[test]
fn a_config_file_with_an_unknown_key_names_the_file_line_and_column() {
    let cluster = cluster_with_a_key();
    let config = cluster.home().join("n1").join("node.toml");
    let text = std::fs::read_to_string(&config).expect("node.toml");
    let copy = cluster.scratch("node.toml");
    // A typo of `request_timeout_ms` as the first line.
    std::fs::write(&copy, format!("request_timout_ms = 500\n{text}")).expect("write");
    let run = cluster.run(&["node", "--config", copy.to_str().expect("path")]);
    let message = run.expect_clean_error(1);
    for want in [
        copy.to_str().expect("path"),
        "line 1, column 1",
        "unknown field `request_timout_ms`",
    ] {
        assert!(message.contains(want), "expected {want:?} in: {message}");
    }
    still_serving(&cluster);
}

#[test]
fn a_corrupted_data_file_stops_up_naming_the_file_and_spares_the_others() {
    let cluster = Cluster::start(3);
    let keys: Vec<String> = (0..20).map(|i| format!("key-{i}")).collect();
    for key in &keys {
        cluster.put(key, &format!("value of {key}"), &[]);
    }
    cluster.down();
    let file = cluster.home().join("n2").join("data").join("data.redb");
    let backup = cluster.scratch("n2.redb");
    std::fs::copy(&file, &backup).expect("keep a copy of n2's data file");
    let mut garbage = vec![0u8; 64 * 1024];
    rand::rngs::StdRng::seed_from_u64(2).fill(&mut garbage[..]);
    std::fs::write(&file, &garbage).expect("corrupt n2's data file");

    let up = cluster.run(&["up", "--detach"]);
    let message = up.expect_clean_error(1);
    one_clear_line_in_the_log(&cluster, "n2");
    let path = file.to_str().expect("a UTF-8 temp path");
    for want in ["n2", path, "corrupt", "dynamo logs n2"] {
        assert!(
            message.contains(want),
            "expected `up`'s error to mention {want:?}, got: {message}"
        );
    }
    assert_eq!(
        cluster.running_nodes(),
        [],
        "expected `up` to stop the nodes it started when one failed"
    );
    assert!(
        std::fs::read(&file).is_ok_and(|bytes| bytes == garbage),
        "expected the corrupted file to be left as it was, for a person to look at"
    );

    // The others' data is untouched: with n2's file restored, every key is there.
    std::fs::copy(&backup, &file).expect("restore n2's data file");
    cluster.up_again();
    for key in &keys {
        cluster.expect_value(key, format!("value of {key}").as_bytes(), &["-R", "3"]);
    }
}

/// The node's log says what is wrong with its data file in one line, with
/// no panic trace (redb asserts on some damaged files).
#[track_caller]
fn one_clear_line_in_the_log(cluster: &Cluster, node: &str) {
    let log = std::fs::read_to_string(cluster.home().join(node).join("node.log"))
        .expect("the node's log");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("corrupted")).collect();
    assert_eq!(lines.len(), 1, "one line about the damage, got:\n{log}");
    for trace in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!log.contains(trace), "a panic trace in the log:\n{log}");
    }
}

#[test]
fn a_data_file_damaged_in_place_is_one_line_in_the_log() {
    let cluster = Cluster::start(3);
    for i in 0..50 {
        cluster.put(&format!("key-{i}"), "value", &[]);
    }
    cluster.run(&["stop", "n2"]).ok();
    let file = cluster.home().join("n2").join("data").join("data.redb");
    let mut bytes = std::fs::read(&file).expect("n2's data file");
    // Flip bits across redb's pages past its header: redb 2 asserts on it.
    for i in (4096..bytes.len().min(24 * 1024)).step_by(7) {
        bytes[i] ^= 0x5a;
    }
    std::fs::write(&file, &bytes).expect("damage n2's data file");
    std::fs::write(cluster.home().join("n2").join("node.log"), b"").expect("empty the log");
    let start = cluster.run(&["start", "n2"]);
    let message = start.expect_clean_error(1);
    assert!(message.contains("corrupted"), "{message}");
    one_clear_line_in_the_log(&cluster, "n2");
    cluster.expect_value("key-1", b"value", &[]);
}

#[test]
fn cluster_settings_that_cannot_work_are_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let home = dir.path().join("home");
    for (args, words) in [
        (&["--nodes", "3", "--replicas", "4"][..], "replicas"),
        (&["--nodes", "3", "-R", "4"], "read quorum"),
        (&["--nodes", "3", "-W", "0"], "write quorum"),
        (&["--nodes", "0"], "no nodes"),
        (&["--nodes", "3", "--partitions", "3"], "power of two"),
        (&["--nodes", "3", "--base-port", "65534"], "65535"),
    ] {
        let mut all = vec!["up", "--detach"];
        all.extend_from_slice(args);
        let run = dynamo_in(&home, &all, None);
        let message = run.expect_clean_error(2);
        assert!(
            message.contains(words),
            "`{}`: expected the error to mention {words:?}, got {message}",
            run.line
        );
        assert!(
            !home.exists(),
            "`{}`: expected no home to be made",
            run.line
        );
    }
}
