//! `dynamo ring`: partitions, their ranges, owners and preference lists,
//! computed from the cluster manifest exactly as the nodes compute them; with
//! `--key`, where one key lives; `ring plan` shows what a membership change
//! would do before it is done (issue 4 item 6): the partitions that move,
//! ownership after, the paper's load-balance measure before and after, and
//! an estimate of the bytes to move.

use std::process::ExitCode;

use dynamo::core::key::ObjectKey;
use dynamo::home::Home;
use dynamo::report::ring_json;
use serde::Serialize;

use crate::args::{RingArgs, RingCommand};
use crate::{exit, output};

#[derive(Serialize)]
struct KeyJson {
    key: String,
    bucket: String,
    position: String,
    partition: u32,
    preference_list: Vec<String>,
}

/// `dynamo ring [--key KEY]`.
pub async fn ring(home: &Home, args: &RingArgs) -> anyhow::Result<ExitCode> {
    let bucket = args.bucket.as_str();
    if !home.manifest().exists() {
        return Err(exit::no_cluster(home.root()));
    }
    let manifest = home.load_manifest()?;
    let ring = manifest.ring()?;
    let n = manifest.replicas;
    if let Some(RingCommand::Plan(plan)) = &args.command {
        return crate::ring_plan::plan(home, &ring, n, plan).await;
    }
    if let Some(key) = &args.key {
        let object_key =
            ObjectKey::new(bucket, key.as_bytes()).map_err(|e| exit::usage(e.to_string()))?;
        // A bucket with its own N: asked of the running cluster.
        let n = match bucket == dynamo::config::DEFAULT_BUCKET {
            true => n,
            false => crate::kv::connect(home)?
                .bucket(bucket)
                .await
                .map_or(n, |b| usize::from(b.n)),
        };
        let position = object_key.ring_position();
        let partition = ring.partition_of(position);
        let doc = KeyJson {
            key: key.clone(),
            bucket: bucket.to_string(),
            position: format!("{position:#018x}"),
            partition,
            preference_list: ring
                .preference_list(partition, n)
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        if args.json {
            output::print_json(&doc)?;
        } else {
            output::print(format!(
                "key {:?} (bucket {}) hashes to {} in partition {}; replicas: {}",
                doc.key,
                doc.bucket,
                doc.position,
                doc.partition,
                doc.preference_list.join(", ")
            ))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let doc = ring_json(&ring, n);
    if args.json {
        output::print_json(&doc)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = output::table(["partition", "start", "end", "owner", "preference list"]);
    for p in &doc.ring {
        table.add_row(vec![
            p.partition.to_string(),
            p.start.clone(),
            p.end.clone(),
            p.owner.clone(),
            p.preference_list.join(", "),
        ]);
    }
    output::print_table(&table)?;
    let summary: Vec<String> = doc
        .nodes
        .iter()
        .map(|(name, n)| format!("{name}: {}", n.partitions))
        .collect();
    output::print(format!(
        "Q = {} partitions, N = {}; partitions per node: {}",
        doc.partitions,
        doc.replicas,
        summary.join(", ")
    ))?;
    Ok(ExitCode::SUCCESS)
}
