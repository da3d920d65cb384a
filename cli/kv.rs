//! The data commands: `put`, `get`, `delete` and `resolve`. They find the
//! cluster through its home (manifest and client certificate only, so a copy
//! of those four files on another machine is enough), talk to it with
//! [`dynamo::client::Client`], and follow CLI.md's output and exit codes:
//! `get` prints the exact bytes of a single version, exit 3 when the key is
//! missing, exit 4 with every sibling and its clock on stderr when there are
//! several.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use dynamo::client::{Client, ClientError, GetOptions, GetReply, PutOptions};
use dynamo::config::ClusterManifest;
use dynamo::core::clock::Sibling;
use dynamo::core::explain::TargetOutcome;
use dynamo::home::Home;
use dynamo::report::{shown_siblings as shown_of, sibling_json, GetJson, SiblingJson};
use serde::Serialize;

use crate::args::{DeleteArgs, GetArgs, PutArgs, ResolveArgs};
use crate::devcluster::bound_udp_ports;
use crate::{exit, output};

/// A client of the cluster whose home this is.
pub fn connect(home: &Home) -> anyhow::Result<Client> {
    if !home.manifest().exists() {
        return Err(exit::no_cluster(home.root()));
    }
    let manifest = home.load_manifest()?;
    let down = local_nodes_down(&manifest);
    check_running(home, &manifest, &down)?;
    let creds = home.client_credentials()?;
    let client = Client::new(manifest, creds)?;
    // Known dead from here: tried last, so a crashed node costs nothing.
    for name in &down {
        client.mark_down(name);
    }
    Ok(client)
}

/// The nodes that listen on this machine and whose UDP port nothing has
/// bound: certainly not running (one read of `/proc/net/udp`).
fn local_nodes_down(manifest: &ClusterManifest) -> Vec<String> {
    let Some(bound) = bound_udp_ports() else {
        return Vec::new();
    };
    manifest
        .nodes
        .iter()
        .filter(|n| n.addr.ip().is_loopback() && !bound.contains(&n.addr.port()))
        .map(|n| n.name.clone())
        .collect()
}

/// Fails at once (exit 5) when every node of the cluster listens on this
/// machine and none has its port bound: the cluster is not running, and
/// asking each node in turn would only wait out handshakes that never come.
fn check_running(home: &Home, manifest: &ClusterManifest, down: &[String]) -> anyhow::Result<()> {
    if !manifest.nodes.is_empty() && down.len() == manifest.nodes.len() {
        return Err(exit::not_running(home.root()));
    }
    Ok(())
}

/// The error of a request sent with `--node`: when that one node does not
/// answer, say so, rather than that no node of the cluster answers (the
/// client asked no other).
fn through_node(err: ClientError, node: Option<&str>) -> anyhow::Error {
    match (err, node) {
        (ClientError::NotRunning { detail }, Some(node)) => exit::unavailable(format!(
            "node {node} does not answer ({detail}); see `dynamo status`, or leave out --node \
             to let another node coordinate"
        )),
        (err, _) => err.into(),
    }
}

/// Checks `-R` / `-W`: at least 1 and at most the replicas a key can have,
/// one per node (a bucket's N is at most the cluster's size; the node
/// checks the bucket's own N).
fn quorum(value: Option<usize>, what: &str, nodes: usize) -> anyhow::Result<Option<u8>> {
    let max = nodes.min(usize::from(u8::MAX));
    match value {
        None => Ok(None),
        Some(v) if (1..=max).contains(&v) => Ok(u8::try_from(v).ok()),
        Some(v) => Err(exit::usage(format!(
            "{what} {v} is out of range: a key has at most {nodes} replicas (one per node), so \
             {what} must be 1 to {max}"
        ))),
    }
}

/// `dynamo put KEY [VALUE] [--context T] [--file P]`: prints the new context.
pub async fn put(home: &Home, args: &PutArgs) -> anyhow::Result<ExitCode> {
    let value = match (&args.value, &args.file) {
        (Some(v), _) => v.clone().into_bytes(),
        (None, Some(path)) => std::fs::read(path)
            .with_context(|| format!("cannot read the value from {}", path.display()))?,
        (None, None) => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read the value from standard input")?;
            buf
        }
    };
    let client = connect(home)?;
    let options = PutOptions {
        node: args.node.clone(),
        w: quorum(args.write_quorum, "-W", client.manifest().nodes.len())?,
    };
    let token = client
        .put(
            &args.key.bucket,
            args.key.key.as_bytes(),
            value,
            args.context.as_deref(),
            &options,
        )
        .await
        .map_err(|e| through_node(e, args.node.as_deref()))?;
    output::print(token)?;
    Ok(ExitCode::SUCCESS)
}

/// `dynamo delete KEY [--context T]`: a tombstone over what the context saw;
/// without a context, over what a read sees now.
pub async fn delete(home: &Home, args: &DeleteArgs) -> anyhow::Result<ExitCode> {
    let client = connect(home)?;
    let key = args.key.key.as_bytes();
    let context = match &args.context {
        Some(token) => token.clone(),
        None => {
            let read = client
                .get(&args.key.bucket, key, &GetOptions::default())
                .await?;
            if read.is_missing() {
                return Err(exit::Failure::new(
                    exit::NOT_FOUND,
                    format!("key {:?} not found", args.key.key),
                )
                .into());
            }
            read.context_token
        }
    };
    let token = client
        .delete(
            &args.key.bucket,
            key,
            Some(&context),
            &PutOptions::default(),
        )
        .await?;
    output::print(token)?;
    Ok(ExitCode::SUCCESS)
}

/// One sibling in `get --json` (CLI.md), with its dot and causal past added.
/// The siblings a person sees of a read (see [`shown_of`]).
pub fn shown_siblings(reply: &GetReply) -> Vec<&Sibling> {
    shown_of(&reply.object)
}

/// A value for a table cell: text when UTF-8 (shortened), else its size.
pub fn preview(s: &Sibling, width: usize) -> String {
    match &s.value {
        None => "(deleted)".to_string(),
        Some(v) => match std::str::from_utf8(v) {
            Ok(text) if text.chars().count() > width => {
                format!("{}…", text.chars().take(width).collect::<String>())
            }
            Ok(text) => text.to_string(),
            Err(_) => format!("<{} bytes of binary>", v.len()),
        },
    }
}

/// `dynamo get KEY`.
pub async fn get(home: &Home, args: &GetArgs) -> anyhow::Result<ExitCode> {
    let client = connect(home)?;
    let options = GetOptions {
        node: args.node.clone(),
        r: quorum(args.read_quorum, "-R", client.manifest().nodes.len())?,
    };
    if args.explain {
        return explain(&client, args, &options).await;
    }
    let reply = client
        .get(&args.key.bucket, args.key.key.as_bytes(), &options)
        .await
        .map_err(|e| through_node(e, args.node.as_deref()))?;
    let shown = shown_siblings(&reply);
    if args.json {
        let doc = GetJson {
            bucket: args.key.bucket.clone(),
            key: args.key.key.clone(),
            context: reply.context_token.clone(),
            siblings: shown.iter().map(|s| sibling_json(s)).collect(),
        };
        output::print_json(&doc)?;
        return Ok(ExitCode::from(if shown.is_empty() {
            exit::NOT_FOUND
        } else {
            0
        }));
    }
    match shown.as_slice() {
        [] => Err(
            exit::Failure::new(exit::NOT_FOUND, format!("key {:?} not found", args.key.key)).into(),
        ),
        [one] => {
            let mut out = std::io::stdout().lock();
            out.write_all(one.value.as_deref().unwrap_or_default())?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        many => {
            let mut err = std::io::stderr().lock();
            writeln!(err, "key {:?} has {} siblings:", args.key.key, many.len())?;
            for (i, s) in many.iter().enumerate() {
                writeln!(
                    err,
                    "  #{}  {}  clock {}  (dot {}:{}, written after seeing {})",
                    i + 1,
                    preview(s, 60),
                    s.clock(),
                    s.dot.replica.node,
                    s.dot.counter,
                    s.past
                )?;
            }
            writeln!(
                err,
                "resolve them with `dynamo resolve {} --pick N` or `--value V` (or interactively)",
                shell_word(&args.key.key)
            )?;
            Ok(ExitCode::from(exit::CONFLICT))
        }
    }
}

/// `dynamo get KEY --explain --json`.
#[derive(Serialize)]
struct ExplainJson<'a> {
    bucket: &'a str,
    key: &'a str,
    context: String,
    coordinator: &'a str,
    partition: u32,
    preference_list: &'a [String],
    unreachable: &'a [String],
    read_quorum: u8,
    quorum_reached: bool,
    asked: Vec<AskedJson<'a>>,
    hints_held_for: &'a [String],
    read_repair: bool,
    repaired: Vec<RepairedJson<'a>>,
    siblings: Vec<SiblingJson>,
}

/// One node a get asked, in `get --explain --json`.
#[derive(Serialize)]
struct AskedJson<'a> {
    node: &'a str,
    /// The home replica a fallback stood in for; null for a home replica.
    fallback_for: Option<&'a str>,
    /// "answered", "not_found" (answered without a version), "failed", "pending".
    answer: &'static str,
    micros: Option<u64>,
}

/// A read-repaired replica in `get --explain --json`.
#[derive(Serialize)]
struct RepairedJson<'a> {
    node: &'a str,
    acknowledged: bool,
}

fn answer_word(outcome: &TargetOutcome) -> &'static str {
    match outcome {
        TargetOutcome::Answered { found: true } => "answered",
        TargetOutcome::Answered { found: false } => "not_found",
        TargetOutcome::Failed => "failed",
        TargetOutcome::Pending => "pending",
    }
}

async fn explain(
    client: &Client,
    args: &GetArgs,
    options: &GetOptions,
) -> anyhow::Result<ExitCode> {
    let (context, e) = client
        .explain(&args.key.bucket, args.key.key.as_bytes(), options)
        .await
        .map_err(|e| through_node(e, args.node.as_deref()))?;
    let siblings: Vec<SiblingJson> = e.object.versions().into_iter().map(sibling_json).collect();
    if args.json {
        let doc = ExplainJson {
            bucket: &args.key.bucket,
            key: &args.key.key,
            context,
            coordinator: &e.coordinator,
            partition: e.partition,
            preference_list: &e.preference_list,
            unreachable: &e.unreachable,
            read_quorum: e.needed,
            quorum_reached: e.quorum_reached,
            asked: e
                .targets
                .iter()
                .map(|t| AskedJson {
                    node: &t.node,
                    fallback_for: t.hint_for.as_deref(),
                    answer: answer_word(&t.outcome),
                    micros: t.micros,
                })
                .collect(),
            hints_held_for: &e.hints_held_for,
            read_repair: e.read_repair,
            repaired: e
                .repaired
                .iter()
                .map(|(node, acknowledged)| RepairedJson {
                    node,
                    acknowledged: *acknowledged,
                })
                .collect(),
            siblings,
        };
        output::print_json(&doc)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut lines = vec![
        format!(
            "key          {:?} in bucket {:?}",
            args.key.key, args.key.bucket
        ),
        format!("coordinator  {}", e.coordinator),
        format!("partition    {}", e.partition),
        format!("preference   {}", e.preference_list.join(", ")),
        format!(
            "quorum       R = {}, {}",
            e.needed,
            if e.quorum_reached {
                "reached"
            } else {
                "not reached"
            }
        ),
    ];
    if !e.unreachable.is_empty() {
        lines.push(format!(
            "unreachable  {} (in {}'s view)",
            e.unreachable.join(", "),
            e.coordinator
        ));
    }
    output::print(lines.join("\n"))?;
    let mut asked = output::table(["asked", "role", "answer", "time"]);
    for t in &e.targets {
        let role = match &t.hint_for {
            Some(owner) => format!("fallback for {owner}"),
            None => "home replica".to_string(),
        };
        let answer = match answer_word(&t.outcome) {
            "not_found" => "answered: no version",
            "pending" => "no answer yet",
            word => word,
        };
        let time = t
            .micros
            .map(|us| format!("{:.3} ms", us as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        asked.add_row(vec![t.node.clone(), role, answer.to_string(), time]);
    }
    output::print_table(&asked)?;
    let hints = if e.hints_held_for.is_empty() {
        "none".to_string()
    } else {
        format!("for {}", e.hints_held_for.join(", "))
    };
    output::print(format!("hints held by {}: {hints}", e.coordinator))?;
    let repair = if e.repaired.is_empty() {
        "not needed".to_string()
    } else {
        e.repaired
            .iter()
            .map(|(n, ok)| format!("{n}{}", if *ok { "" } else { " (failed)" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    output::print(format!("read repair: {repair}"))?;
    if e.object.versions().is_empty() {
        output::print("no version of the key")?;
    } else {
        let mut table = output::table(["#", "value", "dot", "clock"]);
        for (i, s) in e.object.versions().into_iter().enumerate() {
            table.add_row(vec![
                (i + 1).to_string(),
                preview(s, 40),
                format!("{}:{}", s.dot.replica, s.dot.counter),
                s.clock().to_string(),
            ]);
        }
        output::print_table(&table)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn shell_word(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What a person chose in `resolve`.
enum Resolution {
    Keep(usize),
    Value(Vec<u8>),
}

/// `dynamo resolve KEY [--pick N | --value V]`.
pub async fn resolve(home: &Home, args: &ResolveArgs) -> anyhow::Result<ExitCode> {
    let client = connect(home)?;
    let key = args.key.key.as_bytes();
    let reply = client
        .get(&args.key.bucket, key, &GetOptions::default())
        .await?;
    let shown = shown_siblings(&reply);
    if shown.is_empty() {
        return Err(exit::Failure::new(
            exit::NOT_FOUND,
            format!("key {:?} not found", args.key.key),
        )
        .into());
    }
    let choice = if let Some(n) = args.pick {
        if n == 0 || n > shown.len() {
            return Err(exit::usage(format!(
                "--pick {n}: the key has {} sibling(s), pick 1 to {}",
                shown.len(),
                shown.len()
            )));
        }
        Resolution::Keep(n - 1)
    } else if let Some(v) = &args.value {
        Resolution::Value(v.clone().into_bytes())
    } else {
        if shown.len() == 1 {
            eprintln!("key {:?} has one version; nothing to resolve", args.key.key);
            return Ok(ExitCode::SUCCESS);
        }
        if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
            return Err(exit::usage(
                "resolve needs a terminal to ask; without one, use --pick N or --value V",
            ));
        }
        match ask(&args.key.key, &shown)? {
            Some(c) => c,
            None => {
                eprintln!("nothing written");
                return Ok(ExitCode::SUCCESS);
            }
        }
    };
    let value = match choice {
        Resolution::Keep(i) => shown[i].value.clone(),
        Resolution::Value(v) => Some(v),
    };
    let token = match value {
        Some(v) => {
            client
                .put(
                    &args.key.bucket,
                    key,
                    v,
                    Some(&reply.context_token),
                    &PutOptions::default(),
                )
                .await?
        }
        None => {
            client
                .delete(
                    &args.key.bucket,
                    key,
                    Some(&reply.context_token),
                    &PutOptions::default(),
                )
                .await?
        }
    };
    output::note(format!("resolved {} sibling(s) into one", shown.len()));
    output::print(token)?;
    Ok(ExitCode::SUCCESS)
}

/// Shows the siblings side by side and asks what to keep.
fn ask(key: &str, shown: &[&Sibling]) -> anyhow::Result<Option<Resolution>> {
    use comfy_table::{presets, ContentArrangement, Table};
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    let mut header = vec![String::new()];
    header.extend((1..=shown.len()).map(|i| format!("#{i}")));
    table.set_header(header);
    let row = |label: &str, f: &dyn Fn(&Sibling) -> String| {
        let mut cells = vec![label.to_string()];
        cells.extend(shown.iter().map(|s| f(s)));
        cells
    };
    table.add_row(row("value", &|s| preview(s, 200)));
    table.add_row(row("clock", &|s| s.clock().to_string()));
    table.add_row(row("dot", &|s| {
        format!("{}:{}", s.dot.replica.node, s.dot.counter)
    }));
    table.add_row(row("written after", &|s| s.past.to_string()));
    eprintln!(
        "key {key:?} has {} concurrent versions:\n{table}",
        shown.len()
    );
    let mut items: Vec<String> = (1..=shown.len()).map(|i| format!("keep #{i}")).collect();
    items.extend((1..=shown.len()).map(|i| format!("edit #{i} in $EDITOR")));
    items.push("type a new value".into());
    items.push("cancel".into());
    let theme = dialoguer::theme::ColorfulTheme::default();
    let picked = dialoguer::Select::with_theme(&theme)
        .with_prompt("resolve to")
        .items(&items)
        .default(0)
        .interact_opt()?;
    let n = shown.len();
    Ok(match picked {
        None => None,
        Some(i) if i < n => Some(Resolution::Keep(i)),
        Some(i) if i < 2 * n => {
            let start = String::from_utf8_lossy(shown[i - n].value.as_deref().unwrap_or_default())
                .into_owned();
            dialoguer::Editor::new()
                .edit(&start)?
                .map(|text| Resolution::Value(text.into_bytes()))
        }
        Some(i) if i == 2 * n => {
            let text: String = dialoguer::Input::with_theme(&theme)
                .with_prompt("new value")
                .interact_text()?;
            Some(Resolution::Value(text.into_bytes()))
        }
        Some(_) => None,
    })
}
