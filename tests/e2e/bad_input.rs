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
    ] {
        refused(&cluster, args, 2, &["n9"]);
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
    ] {
        let run = dynamo_in(&home, args, None);
        let message = run.expect_clean_error(1);
        assert!(
            message.contains(home.to_str().unwrap_or("?")) && message.contains("dynamo up"),
            "`{}`: expected the error to name {} and `dynamo up`, got {message}",
            run.line,
            home.display()
        );
    }
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
