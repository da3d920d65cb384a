//! `dynamo bucket list|show|set` and `dynamo keys`: buckets' own N, R and W
//! (kept in the gossiped cluster state, so every node agrees; the node that
//! takes a change answers once the members use it), and a bucket's live
//! keys page by page (CLI.md). Any running node answers.

use std::io::Write;
use std::process::ExitCode;

use dynamo::client::ClientError;
use dynamo::core::message::{BucketView, KEYS_PAGE_MAX};
use dynamo::home::Home;
use serde::Serialize;

use crate::args::{BucketArgs, BucketCommand, KeysArgs};
use crate::kv::connect;
use crate::{exit, output};

/// Keys asked for per page.
const KEYS_PAGE: u32 = 1000;

#[derive(Serialize)]
struct BucketsJson<'a> {
    buckets: &'a [BucketView],
}

/// `dynamo bucket ...`.
pub async fn bucket(home: &Home, args: &BucketArgs) -> anyhow::Result<ExitCode> {
    let client = connect(home)?;
    let usage = |e: ClientError| match e {
        ClientError::InvalidInput(m) => exit::usage(m),
        other => other.into(),
    };
    match &args.command {
        BucketCommand::List(a) => {
            let list = client.buckets().await?;
            if a.json {
                output::print_json(&BucketsJson { buckets: &list })?;
            } else {
                let mut table = output::table(["bucket", "N", "R", "W"]);
                for b in &list {
                    table.add_row(vec![
                        b.name.clone(),
                        b.n.to_string(),
                        b.r.to_string(),
                        b.w.to_string(),
                    ]);
                }
                output::print_table(&table)?;
            }
        }
        BucketCommand::Show(a) => {
            let b = client.bucket(&a.bucket).await.map_err(usage)?;
            show(&b, a.json)?;
        }
        BucketCommand::Set(a) => {
            if a.n.is_none() && a.r.is_none() && a.w.is_none() {
                return Err(exit::usage("give at least one of -N, -R and -W"));
            }
            let b = client
                .set_bucket(&a.bucket, a.n, a.r, a.w)
                .await
                .map_err(usage)?;
            show(&b, a.json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(b: &BucketView, json: bool) -> anyhow::Result<()> {
    if json {
        output::print_json(b)?;
    } else {
        output::print(format!("{}: N = {}, R = {}, W = {}", b.name, b.n, b.r, b.w))?;
    }
    Ok(())
}

/// `dynamo keys [--bucket B] [--limit N] [--json]`: every live key, one per
/// line as its page arrives (or one JSON document, streamed).
pub async fn keys(home: &Home, args: &KeysArgs) -> anyhow::Result<ExitCode> {
    let client = connect(home)?;
    let mut left = args.limit.unwrap_or(u64::MAX);
    let mut after = None;
    let mut out = std::io::stdout().lock();
    let mut count = 0u64;
    if args.json {
        write!(
            out,
            "{{\"bucket\":{},\"keys\":[",
            serde_json::to_string(&args.bucket)?
        )?;
    }
    while left > 0 {
        let page = u32::try_from(left.min(u64::from(KEYS_PAGE))).unwrap_or(KEYS_PAGE);
        let (keys, next) = client
            .keys_page(&args.bucket, after.take(), page.min(KEYS_PAGE_MAX))
            .await
            .map_err(|e| match e {
                ClientError::InvalidInput(m) => exit::usage(m),
                other => other.into(),
            })?;
        for key in keys {
            let text = String::from_utf8_lossy(&key);
            if args.json {
                let sep = if count == 0 { "" } else { "," };
                write!(out, "{sep}{}", serde_json::to_string(&text)?)?;
            } else {
                writeln!(out, "{text}")?;
            }
            count += 1;
            left -= 1;
        }
        out.flush()?;
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if args.json {
        writeln!(out, "],\"count\":{count}}}")?;
    }
    Ok(ExitCode::SUCCESS)
}
