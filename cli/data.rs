//! Data commands: `put`, `get` (and `get --explain`), `delete`, `resolve`,
//! `bench`. Not implemented yet: each fails with a clear message.

use std::process::ExitCode;

use dynamo::home::Home;

use crate::args::{BenchArgs, DeleteArgs, GetArgs, PutArgs, ResolveArgs};
use crate::exit;

fn not_yet(command: &str) -> anyhow::Result<ExitCode> {
    Err(exit::error(format!("`dynamo {command}` is not implemented yet")))
}

/// `dynamo put`.
pub async fn put(_home: &Home, _args: &PutArgs) -> anyhow::Result<ExitCode> {
    not_yet("put")
}

/// `dynamo get`.
pub async fn get(_home: &Home, _args: &GetArgs) -> anyhow::Result<ExitCode> {
    not_yet("get")
}

/// `dynamo delete`.
pub async fn delete(_home: &Home, _args: &DeleteArgs) -> anyhow::Result<ExitCode> {
    not_yet("delete")
}

/// `dynamo resolve`.
pub async fn resolve(_home: &Home, _args: &ResolveArgs) -> anyhow::Result<ExitCode> {
    not_yet("resolve")
}

/// `dynamo bench`.
pub async fn bench(_home: &Home, _args: &BenchArgs) -> anyhow::Result<ExitCode> {
    not_yet("bench")
}
