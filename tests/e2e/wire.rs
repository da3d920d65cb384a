//! Hostile bytes on the wire, from a client that holds a valid certificate
//! of the cluster: a frame longer than [`FRAME_BYTES_MAX`] and garbage must
//! close that stream with an error, never answer, never allocate on the
//! peer's word and never take the node down (DESIGN.md §4).
//!
//! This speaks QUIC directly with the library's own TLS configuration and
//! frame format, since the `dynamo` binary can only send good frames.

use std::net::SocketAddr;
use std::time::Duration;

use dynamo::config::ClusterManifest;
use dynamo::core::message::{Request, Response};
use dynamo::net::{
    client_config, encode_frame, endpoint, read_frame, server_name, Credentials, FRAME_BYTES_MAX,
};
use rand::{Rng, SeedableRng};

use crate::support::Cluster;

/// How long the node may take to answer or to close a stream.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// What became of a stream after we wrote to it.
#[derive(Debug)]
#[allow(dead_code)] // The fields are read by `Debug`, in failure messages.
enum Outcome {
    /// The node reset (or stopped) the stream with this code.
    Reset(u64),
    /// The node finished the stream, having written these bytes.
    Finished(Vec<u8>),
    /// Reading failed otherwise.
    Failed(String),
    /// Nothing happened within [`ANSWER_TIMEOUT`].
    Silent,
}

/// Opens a stream, writes `bytes` (and finishes our side if `finish`),
/// and reports what the node did with the stream.
async fn send_raw(conn: &quinn::Connection, bytes: &[u8], finish: bool) -> Outcome {
    let (mut send, mut recv) = conn.open_bi().await.expect("open a stream");
    // The node may stop the stream before we are done writing.
    let _ = send.write_all(bytes).await;
    if finish {
        let _ = send.finish();
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, recv.read_to_end(FRAME_BYTES_MAX)).await {
        Err(_) => Outcome::Silent,
        Ok(Ok(answer)) => Outcome::Finished(answer),
        Ok(Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)))) => {
            Outcome::Reset(code.into_inner())
        }
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
    }
}

/// Asserts the node refused the stream: reset, or failed, or finished
/// without a byte of answer; never silent, never answering.
#[track_caller]
fn assert_refused(what: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Reset(_) | Outcome::Failed(_) => {}
        Outcome::Finished(answer) if answer.is_empty() => {}
        other => {
            panic!("{what}: expected the node to close the stream with an error, got {other:?}")
        }
    }
}

/// A well-formed status request on a new stream of `conn` gets the node's report.
async fn assert_answers(conn: &quinn::Connection, node: &str) {
    let (mut send, recv) = conn.open_bi().await.expect("open a stream");
    let mut frame = Vec::new();
    encode_frame(&(41u64, Request::Status), &mut frame).expect("encode a status request");
    send.write_all(&frame).await.expect("send the request");
    let mut reader = tokio::io::BufReader::new(recv);
    let mut buf = Vec::new();
    let answer = tokio::time::timeout(
        ANSWER_TIMEOUT,
        read_frame::<(u64, Response), _>(&mut reader, &mut buf, FRAME_BYTES_MAX),
    )
    .await;
    match answer {
        Ok(Ok(Some((41, Response::Status(report))))) => {
            assert_eq!(report.name, node, "expected {node}'s own report")
        }
        other => {
            panic!("expected {node} to answer a status request with its report, got {other:?}")
        }
    }
    let _ = send.finish();
}

async fn connect(
    creds: &Credentials,
    addr: SocketAddr,
    node: &str,
) -> (quinn::Endpoint, quinn::Connection) {
    let config = client_config(creds).expect("a client TLS configuration");
    let local: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let endpoint = endpoint(local, None, config).expect("a client endpoint");
    let conn = endpoint
        .connect(addr, &server_name(node))
        .expect("start connecting")
        .await
        .unwrap_or_else(|e| panic!("expected to connect to {node} at {addr} with the cluster's client certificate: {e}"));
    (endpoint, conn)
}

/// `node`'s address and the cluster's client credentials.
fn address_and_client(cluster: &Cluster, node: &str) -> (SocketAddr, Credentials) {
    let home = cluster.home();
    let manifest = ClusterManifest::load(&home.join("cluster.toml")).expect("load cluster.toml");
    let addr = manifest
        .member(node)
        .expect("the node in the manifest")
        .addr;
    let creds = Credentials::load(
        &home.join("ca.pem"),
        &home.join("client.pem"),
        &home.join("client.key"),
    )
    .expect("load the client credentials");
    (addr, creds)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn oversized_and_garbage_frames_close_only_their_stream() {
    let cluster = Cluster::start(3);
    cluster.put("survivor", "still served", &[]);
    let (addr, creds) = address_and_client(&cluster, "n1");
    assert!(
        addr.ip().is_loopback(),
        "expected a loopback address, got {addr}"
    );
    runtime().block_on(async {
        let (endpoint, conn) = connect(&creds, addr, "n1").await;
        assert_answers(&conn, "n1").await;

        // A prefix one byte over the limit: refused from the prefix alone,
        // without waiting for (or making room for) the payload.
        let over = u32::try_from(FRAME_BYTES_MAX + 1).expect("the limit fits a prefix");
        let outcome = send_raw(&conn, &over.to_be_bytes(), false).await;
        assert_refused("a length prefix of FRAME_BYTES_MAX + 1", &outcome);
        let outcome = send_raw(&conn, &u32::MAX.to_be_bytes(), false).await;
        assert_refused("a length prefix of u32::MAX", &outcome);

        // A frame of honest length whose payload is garbage.
        let mut frame = 64u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[0xff; 64]);
        let outcome = send_raw(&conn, &frame, false).await;
        assert_refused("a 64-byte frame of 0xff", &outcome);

        // A good request followed by trailing bytes inside its frame.
        let mut good = Vec::new();
        encode_frame(&(1u64, Request::Status), &mut good).expect("encode");
        let len = u32::from_be_bytes([good[0], good[1], good[2], good[3]]) + 3;
        good[..4].copy_from_slice(&len.to_be_bytes());
        good.extend_from_slice(b"xyz");
        let outcome = send_raw(&conn, &good, false).await;
        assert_refused("a frame with trailing bytes", &outcome);

        // Random garbage, and a stream that ends inside a frame.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xbad);
        for round in 0..4 {
            let mut garbage = vec![0u8; 4096];
            rng.fill(&mut garbage[..]);
            let outcome = send_raw(&conn, &garbage, true).await;
            assert_refused(
                &format!("4 KiB of random garbage (round {round})"),
                &outcome,
            );
        }
        let outcome = send_raw(&conn, &[0, 0, 1, 0, 1, 2, 3], true).await;
        assert_refused("a stream ending inside a frame", &outcome);

        // Only those streams closed: the same connection still serves,
        // and so does a new one.
        assert_answers(&conn, "n1").await;
        let (other_endpoint, other) = connect(&creds, addr, "n1").await;
        assert_answers(&other, "n1").await;
        conn.close(0u32.into(), b"done");
        other.close(0u32.into(), b"done");
        endpoint.wait_idle().await;
        other_endpoint.wait_idle().await;
    });

    // And the node still serves the command line.
    cluster.expect_value("survivor", b"still served", &["--node", "n1"]);
    cluster.put("after", "garbage", &["--node", "n1"]);
    cluster.expect_value("after", b"garbage", &["--node", "n1"]);
    let status = cluster.json(&["status"]);
    assert_eq!(
        status["nodes"][0]["state"], "up",
        "expected n1 up: {status}"
    );
}

#[test]
fn fuzzed_frames_close_only_their_stream() {
    let cluster = Cluster::start(3);
    cluster.put("survivor", "still served", &[]);
    let (addr, creds) = address_and_client(&cluster, "n2");
    let inputs = dynamo::fuzz::malformed_frames(200, 0xf00d);
    runtime().block_on(async {
        let (endpoint, conn) = connect(&creds, addr, "n2").await;
        // Many streams at once, as a hostile peer would send them.
        let mut streams = tokio::task::JoinSet::new();
        for (i, input) in inputs.into_iter().enumerate() {
            let conn = conn.clone();
            streams.spawn(async move { (i, send_raw(&conn, &input, true).await) });
        }
        while let Some(done) = streams.join_next().await {
            let (i, outcome) = done.expect("a stream task");
            assert_refused(&format!("fuzzed frame {i}"), &outcome);
        }
        assert_answers(&conn, "n2").await;
        conn.close(0u32.into(), b"done");
        endpoint.wait_idle().await;
    });
    cluster.expect_value("survivor", b"still served", &["--node", "n2"]);
    let status = cluster.json(&["status"]);
    assert!(
        status["nodes"]
            .as_array()
            .is_some_and(|n| n.len() == 3 && n.iter().all(|n| n["state"] == "up")),
        "every node up: {status}"
    );
}
