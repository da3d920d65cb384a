//! `dynamo completions SHELL`: the completion script for a shell, made from
//! the one clap definition. The files in `completions/` are this command's
//! output, kept current by `scripts/completions` and checked by
//! `tests/completions.rs`.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};

/// `dynamo completions`.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "dynamo", &mut script);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
