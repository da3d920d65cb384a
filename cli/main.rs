//! The `dynamo` command line. `main` is small: parse, run the command, and
//! turn an error into one sentence on stderr and the exit code CLI.md
//! names. One file per command or group of commands.
#![forbid(unsafe_code)]

/// mimalloc: the nodes allocate per request and per message (frames,
/// objects, futures); glibc's malloc took about an eighth of node CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod bench;
mod buckets;
mod completions;
mod devcluster;
mod exit;
mod faults;
mod kv;
mod logs;
mod membership;
mod merkle;
mod node_cmd;
mod output;
mod ring;
mod ring_plan;
mod sim;
mod status;
mod up;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use dynamo::home::Home;

use args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) if exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<exit::Reported>().is_some() => ExitCode::from(exit::ERROR),
        Err(err) => {
            eprintln!("error: {}", exit::sentence(&err));
            ExitCode::from(exit::code_of(&err))
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let home = Home::locate(cli.home);
    match cli.command {
        // `node` builds its own runtime; completions need none.
        Command::Node(args) => node_cmd::run(&args),
        Command::Completions(args) => completions::run(&args),
        Command::Sim(args) => sim::run(&args),
        command => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(dispatch(&home, command)),
    }
}

async fn dispatch(home: &Home, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Up(args) => up::up(home, &args).await,
        Command::Down(args) => up::down(home, &args).await,
        Command::Status(args) => status::status(home, &args).await,
        Command::Kill(args) => faults::kill(home, &args).await,
        Command::Stop(args) => faults::stop(home, &args).await,
        Command::Start(args) => faults::start(home, &args).await,
        Command::Partition(args) => faults::partition(home, &args).await,
        Command::Heal => faults::heal(home).await,
        Command::Logs(args) => logs::logs(home, &args).await,
        Command::AddNode(args) => membership::add_node(home, &args).await,
        Command::Leave(args) => membership::leave(home, &args).await,
        Command::Put(args) => kv::put(home, &args).await,
        Command::Get(args) => kv::get(home, &args).await,
        Command::Delete(args) => kv::delete(home, &args).await,
        Command::Resolve(args) => kv::resolve(home, &args).await,
        Command::Bench(args) => bench::bench(home, &args).await,
        Command::Ring(args) => ring::ring(home, &args).await,
        Command::Bucket(args) => buckets::bucket(home, &args).await,
        Command::Keys(args) => buckets::keys(home, &args).await,
        Command::Merkle(args) => merkle::merkle(home, &args).await,
        Command::Repair(args) => merkle::repair(home, &args).await,
        // Handled by `run` without this runtime.
        Command::Node(_) | Command::Completions(_) | Command::Sim(_) => {
            Err(anyhow::anyhow!("internal error: command dispatched twice"))
        }
    }
}
