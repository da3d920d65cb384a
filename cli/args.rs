//! The one clap definition of the command line: `--help`, parsing and the
//! shell completions in `completions/` all come from here. The contract is
//! `CLI.md`; names, flags and short forms follow it exactly.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

const HOME_HELP: &str = "The cluster home made by `dynamo up` [default: \
$XDG_DATA_HOME/dynamo/cluster, else ~/.local/share/dynamo/cluster]";

/// An always-writeable, leaderless replicated key-value store after Amazon's Dynamo.
///
/// Start a local cluster with `dynamo up`, then `dynamo put KEY VALUE` and
/// `dynamo get KEY`. Every command finds the cluster through its home
/// folder (--home or DYNAMO_HOME).
#[derive(Debug, Parser)]
#[command(
    name = "dynamo",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[arg(long, global = true, env = "DYNAMO_HOME", value_name = "DIR", help = HOME_HELP, hide_env_values = true)]
    pub home: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the cluster home if absent, start the nodes, wait until all serve
    #[command(display_order = 1)]
    Up(UpArgs),
    /// Stop every node gracefully
    Down(DownArgs),
    /// Show every node: address, state, partitions, keys, pending hints
    Status(StatusArgs),
    /// Crash a node (SIGKILL)
    Kill(NodeName),
    /// Stop a node gracefully
    Stop(NodeName),
    /// Start a stopped node again with its data
    Start(NodeName),
    /// Add a node to the dev cluster and give it its share of partitions
    AddNode(AddNodeArgs),
    /// Move a node's partitions away, then stop it
    Leave(LeaveArgs),
    /// Split the network: nodes in different groups cannot reach each other
    Partition(PartitionArgs),
    /// Undo `dynamo partition`
    Heal,
    /// Run one node in the foreground
    Node(NodeArgs),
    /// Show a node's log
    Logs(LogsArgs),
    /// Write a value
    Put(PutArgs),
    /// Read a value (its exact bytes on stdout)
    Get(GetArgs),
    /// Delete a key (writes a tombstone)
    Delete(DeleteArgs),
    /// Collapse a key's siblings into one value
    Resolve(ResolveArgs),
    /// Show the ring: partitions, ranges, owners, preference lists
    Ring(RingArgs),
    /// Show or set buckets' own N, R and W
    Bucket(BucketArgs),
    /// List a bucket's live keys, in a stable order
    Keys(KeysArgs),
    /// Show Merkle roots per partition per replica
    Merkle(MerkleArgs),
    /// Run anti-entropy now, until every replica set agrees
    Repair(RepairArgs),
    /// Load the running cluster and report throughput and latency
    Bench(BenchArgs),
    /// Run a seeded simulated cluster in one process with faults
    Sim(SimArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

/// `--durability` of `dynamo up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// fsync every group commit before acknowledging its writes
    Immediate,
    /// fsync every flush interval; a crash may lose this replica's last interval
    Buffered,
}

impl From<DurabilityArg> for dynamo::config::Durability {
    fn from(arg: DurabilityArg) -> Self {
        match arg {
            DurabilityArg::Immediate => Self::Immediate,
            DurabilityArg::Buffered => Self::Buffered,
        }
    }
}

/// Arguments of `dynamo up`. Settings left out keep an existing cluster's
/// values, or take the defaults shown for a new one.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of nodes [default: 5]
    #[arg(short = 'n', long, value_name = "COUNT")]
    pub nodes: Option<usize>,
    /// N: replicas per key [default: 3]
    #[arg(short = 'N', long, value_name = "N")]
    pub replicas: Option<usize>,
    /// R: replies a read waits for [default: 2]
    #[arg(short = 'R', long, value_name = "R")]
    pub read_quorum: Option<usize>,
    /// W: acknowledgements a write waits for [default: 2]
    #[arg(short = 'W', long, value_name = "W")]
    pub write_quorum: Option<usize>,
    /// Q: partitions of the ring, a power of two [default: 64]
    #[arg(short = 'Q', long, value_name = "Q")]
    pub partitions: Option<u32>,
    /// First node's UDP port, the next ones follow; 0 picks free ports [default: 7101]
    #[arg(short = 'p', long, value_name = "PORT")]
    pub base_port: Option<u16>,
    /// How nodes commit writes: `immediate` fsyncs each group commit before
    /// acknowledging it; `buffered` fsyncs every flush interval [default: immediate]
    #[arg(long, value_enum, value_name = "MODE")]
    pub durability: Option<DurabilityArg>,
    /// Milliseconds a deleted key's tombstone stays before it is collected
    /// (once every node holds it); kept for later starts [default: 3600000]
    #[arg(long, value_name = "MS")]
    pub tombstone_grace_ms: Option<u64>,
    /// Name of a new cluster [default: dynamo-dev]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Return once the cluster serves, leaving it running
    #[arg(short, long)]
    pub detach: bool,
    /// Print one JSON document instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also delete the cluster home and all its data
    #[arg(long)]
    pub purge: bool,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON document instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NodeName {
    /// The node's name, as in `dynamo status`
    #[arg(value_name = "NODE")]
    pub node: String,
}

#[derive(Debug, Args)]
pub struct LeaveArgs {
    /// The node's name, as in `dynamo status`
    #[arg(value_name = "NODE")]
    pub node: String,
    /// The node is down for good: the others take its partitions from the
    /// surviving replicas (its folder is kept)
    #[arg(long)]
    pub force: bool,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AddNodeArgs {
    /// The new node's name [default: the next free nN]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("split").required(true).args(["groups", "isolate"])))]
pub struct PartitionArgs {
    /// Comma-separated node names, one group per argument (at least two)
    #[arg(value_name = "GROUP", num_args = 2.., value_delimiter = None)]
    pub groups: Vec<String>,
    /// Cut one node off from all the others
    #[arg(long, value_name = "NODE", conflicts_with = "groups")]
    pub isolate: Option<String>,
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's node.toml
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The node's name
    #[arg(value_name = "NODE")]
    pub node: String,
    /// Keep printing new lines until Ctrl-C
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last LINES lines
    #[arg(short = 'n', long, value_name = "LINES")]
    pub lines: Option<usize>,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The key
    #[arg(value_name = "KEY")]
    pub key: String,
    /// The bucket the key lives in
    #[arg(long, value_name = "B", default_value = dynamo::config::DEFAULT_BUCKET)]
    pub bucket: String,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// The value; else --file, else standard input
    #[arg(value_name = "VALUE", conflicts_with = "file")]
    pub value: Option<String>,
    /// The context token from the read this write is based on
    #[arg(long, value_name = "TOKEN")]
    pub context: Option<String>,
    /// Read the value from this file
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Send the write to this node as coordinator
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// W: acknowledgements to wait for [default: the cluster's W]
    #[arg(short = 'W', long, value_name = "N")]
    pub write_quorum: Option<usize>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Send the read to this node as coordinator
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// R: replies to wait for [default: the cluster's R]
    #[arg(short = 'R', long, value_name = "N")]
    pub read_quorum: Option<usize>,
    /// Show how the answer came about: replicas, fallbacks, hints, repair
    #[arg(long)]
    pub explain: bool,
    /// Print one JSON document with every sibling and the context
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// The context token from the read this delete is based on
    #[arg(long, value_name = "TOKEN")]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Keep sibling N (1-based, in the order shown) without asking
    #[arg(long, value_name = "N", conflicts_with = "value")]
    pub pick: Option<usize>,
    /// Write this value without asking
    #[arg(long, value_name = "V")]
    pub value: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RingArgs {
    #[command(subcommand)]
    pub command: Option<RingCommand>,
    /// Show where this key lives
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// The bucket of --key (its N gives the preference list)
    #[arg(long, value_name = "B", default_value = dynamo::config::DEFAULT_BUCKET, requires = "key")]
    pub bucket: String,
    /// Print one JSON document instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RingCommand {
    /// What a membership change would do, before doing it
    Plan(RingPlanArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).args(["add", "remove"])))]
pub struct RingPlanArgs {
    /// Plan adding this many nodes
    #[arg(long, value_name = "K")]
    pub add: Option<usize>,
    /// Plan removing this node
    #[arg(long, value_name = "NODE")]
    pub remove: Option<String>,
    /// Print one JSON document instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MerkleArgs {
    #[command(subcommand)]
    pub command: Option<MerkleCommand>,
    /// Only this replica
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Show this partition's whole tree
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
    /// Print one JSON document instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MerkleCommand {
    /// The key ranges and keys where two replicas differ
    Diff(MerkleDiffArgs),
}

#[derive(Debug, Args)]
pub struct MerkleDiffArgs {
    /// The first replica
    #[arg(value_name = "NODE")]
    pub left: String,
    /// The second replica
    #[arg(value_name = "NODE")]
    pub right: String,
    /// Only this partition
    #[arg(long, value_name = "P")]
    pub partition: Option<u32>,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Repair only the replica sets this node belongs to
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How long to run, in seconds
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub duration: f64,
    /// Requests in flight at once
    #[arg(long, value_name = "C", default_value_t = 64)]
    pub concurrency: usize,
    /// Bytes per value written
    #[arg(long, value_name = "B", default_value_t = 100)]
    pub value_size: usize,
    /// Distinct keys used
    #[arg(long, value_name = "K", default_value_t = 10_000)]
    pub keys: u64,
    /// Share of operations that are reads, from 0 to 1
    #[arg(long, value_name = "F", default_value_t = 0.5)]
    pub read_ratio: f64,
    /// Print one JSON document instead of a table
    #[arg(long)]
    pub json: bool,
    /// Send the requests over the HTTPS API (one connection per task)
    #[arg(long)]
    pub http: bool,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// The seed; the same seed (and the same other flags) replays the same
    /// run exactly [default: random]
    #[arg(long, value_name = "S", conflicts_with = "seeds")]
    pub seed: Option<u64>,
    /// Run every seed of a range, A..B (B excluded), in this process; stop at
    /// the first failing seed and print the command that replays it
    #[arg(long, value_name = "A..B")]
    pub seeds: Option<String>,
    /// Nodes in the simulated cluster
    #[arg(long, value_name = "COUNT", default_value_t = 5)]
    pub nodes: usize,
    /// Client operations to run (per seed)
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub ops: u64,
    /// Comma-separated faults to inject [default: drawn from the seed]
    #[arg(
        long,
        value_name = "LIST",
        long_help = "Comma-separated faults to inject; their rates are drawn from the seed.\n\
                     loss: node-to-node messages dropped\n\
                     dup: messages delivered twice\n\
                     reorder: widely varying delays, so messages overtake each other\n\
                     partition: nodes cut into two groups, or links cut one way (clients reach every node)\n\
                     crash: a node crashes, losing what it had not synced, and restarts\n\
                     wipe: a node loses its whole store and restarts with a new incarnation (at most W-1 per run)\n\
                     all: every kind; none: a fault-free run.\n\
                     [default: each kind on or off, drawn from the seed]"
    )]
    pub faults: Option<String>,
    /// N: replicas per key
    #[arg(short = 'N', long, value_name = "N", default_value_t = 3)]
    pub replicas: usize,
    /// R: replies a read waits for
    #[arg(short = 'R', long, value_name = "R", default_value_t = 2)]
    pub read_quorum: usize,
    /// W: acknowledgements a write waits for
    #[arg(short = 'W', long, value_name = "W", default_value_t = 2)]
    pub write_quorum: usize,
    /// Print one JSON document instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the script for
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn short_forms_follow_the_contract() {
        let cli = Cli::try_parse_from(["dynamo", "up", "-N", "3", "-R", "1", "-W", "3"]).unwrap();
        let Command::Up(up) = cli.command else {
            panic!("not up")
        };
        assert_eq!(
            (up.replicas, up.read_quorum, up.write_quorum),
            (Some(3), Some(1), Some(3))
        );
        let cli = Cli::try_parse_from(["dynamo", "get", "k", "-R", "3"]).unwrap();
        assert!(matches!(cli.command, Command::Get(g) if g.read_quorum == Some(3)));
        let cli = Cli::try_parse_from(["dynamo", "put", "k", "v", "-W", "1"]).unwrap();
        assert!(matches!(cli.command, Command::Put(p) if p.write_quorum == Some(1)));
    }

    #[test]
    fn partition_needs_two_groups_or_isolate() {
        assert!(Cli::try_parse_from(["dynamo", "partition", "n1,n2", "n3"]).is_ok());
        assert!(Cli::try_parse_from(["dynamo", "partition", "--isolate", "n1"]).is_ok());
        assert!(Cli::try_parse_from(["dynamo", "partition", "n1"]).is_err());
        assert!(Cli::try_parse_from(["dynamo", "partition"]).is_err());
    }

    #[test]
    fn subcommands_of_ring_and_merkle() {
        assert!(Cli::try_parse_from(["dynamo", "ring", "plan", "--add", "1", "--json"]).is_ok());
        assert!(Cli::try_parse_from(["dynamo", "ring", "plan"]).is_err());
        assert!(Cli::try_parse_from(["dynamo", "ring", "--key", "k", "--json"]).is_ok());
        assert!(Cli::try_parse_from(["dynamo", "merkle", "diff", "n1", "n2"]).is_ok());
        assert!(Cli::try_parse_from(["dynamo", "merkle", "--partition", "3"]).is_ok());
    }
}

#[derive(Debug, Args)]
pub struct BucketArgs {
    #[command(subcommand)]
    pub command: BucketCommand,
}

#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// The default bucket and every bucket with settings of its own
    List(JsonArg),
    /// One bucket's N, R and W (the cluster's when it has none of its own)
    Show(BucketName),
    /// Give a bucket its own N, R or W (N only while it holds no keys)
    Set(BucketSetArgs),
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print one JSON document instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BucketName {
    /// The bucket
    #[arg(value_name = "B")]
    pub bucket: String,
    /// Print one JSON document instead of a line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BucketSetArgs {
    /// The bucket
    #[arg(value_name = "B")]
    pub bucket: String,
    /// N: replicas per key
    #[arg(short = 'N', long = "replicas", value_name = "N")]
    pub n: Option<u8>,
    /// R: replies a get waits for
    #[arg(short = 'R', long = "read-quorum", value_name = "N")]
    pub r: Option<u8>,
    /// W: acknowledgements a put waits for
    #[arg(short = 'W', long = "write-quorum", value_name = "N")]
    pub w: Option<u8>,
    /// Print one JSON document instead of a line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The bucket
    #[arg(long, value_name = "B", default_value = dynamo::config::DEFAULT_BUCKET)]
    pub bucket: String,
    /// Stop after this many keys
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Print one JSON document (streamed) instead of one key per line
    #[arg(long)]
    pub json: bool,
}
