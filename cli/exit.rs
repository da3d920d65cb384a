//! Exit codes (CLI.md): `0` ok · `1` error · `2` usage · `3` key not found ·
//! `4` conflict · `5` unavailable. Commands fail with an [`anyhow::Error`];
//! [`code_of`] finds the code in its chain: a [`Failure`] carries one
//! explicitly, a [`ClientError`] knows its own (except that input the
//! cluster refuses as invalid, like a key over the size limit, a damaged
//! or foreign context token or an unknown node name, is a usage error:
//! the command line is wrong; so are cluster settings `up` cannot make),
//! anything else is `1`.

use std::fmt;

use dynamo::client::ClientError;
use dynamo::home::HomeError;

/// Any other error.
pub const ERROR: u8 = 1;
/// The command line is wrong.
pub const USAGE: u8 = 2;
/// The key does not exist.
pub const NOT_FOUND: u8 = 3;
/// The key has several siblings and the command prints one value.
pub const CONFLICT: u8 = 4;
/// The quorum (or the cluster) could not be reached.
pub const UNAVAILABLE: u8 = 5;

/// An error that says which exit code it ends the program with.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// An error with this exit code and message.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// An error already reported where its reader will look (a node's log):
/// the program exits 1 without printing it again.
#[derive(Debug)]
pub struct Reported;

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("reported in the log")
    }
}

impl std::error::Error for Reported {}

/// Fails with exit code 1.
pub fn error(message: impl Into<String>) -> anyhow::Error {
    Failure::new(ERROR, message).into()
}

/// Fails with exit code 2.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure::new(USAGE, message).into()
}

/// Fails with exit code 5.
pub fn unavailable(message: impl Into<String>) -> anyhow::Error {
    Failure::new(UNAVAILABLE, message).into()
}

/// The one sentence for a home that holds no cluster (exit 1).
pub fn no_cluster(root: &std::path::Path) -> anyhow::Error {
    HomeError::NotFound(root.to_path_buf()).into()
}

/// The one sentence for a node name the cluster does not have (exit 2).
pub fn no_node(name: &str, known: &[String]) -> anyhow::Error {
    ClientError::UnknownNode {
        name: name.to_string(),
        known: known.join(", "),
    }
    .into()
}

/// The one sentence for a cluster whose nodes are all down (exit 5).
pub fn not_running(root: &std::path::Path) -> anyhow::Error {
    unavailable(format!(
        "the cluster at {} is not running; start it with `dynamo up`",
        root.display()
    ))
}

/// The exit code an error ends the program with: the first cause in its
/// chain that names one, else 1.
pub fn code_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.code;
        }
        if let Some(HomeError::InvalidSpec(_)) = cause.downcast_ref::<HomeError>() {
            return USAGE;
        }
        if let Some(client) = cause.downcast_ref::<ClientError>() {
            return match client {
                ClientError::InvalidInput(_)
                | ClientError::Token(_)
                | ClientError::UnknownNode { .. } => USAGE,
                other => other.exit_code(),
            };
        }
    }
    ERROR
}

/// Whether the error is only standard output having been closed (`dynamo
/// ring | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The one sentence printed for an error: its causes joined by ": ", each
/// said once (a cause already quoted by the message above it is skipped).
pub fn sentence(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_code_comes_from_the_chain() {
        let err = Err::<(), _>(unavailable("only 1 of 2 acks"))
            .context("put failed")
            .unwrap_err();
        assert_eq!(code_of(&err), UNAVAILABLE);
        assert_eq!(sentence(&err), "put failed: only 1 of 2 acks");
        assert_eq!(code_of(&anyhow::anyhow!("plain")), ERROR);
    }

    #[test]
    fn refused_input_is_a_usage_error() {
        let bad_key = anyhow::Error::new(ClientError::InvalidInput("the key is empty".into()));
        assert_eq!(code_of(&bad_key), USAGE);
        let unknown = ClientError::UnknownNode {
            name: "n9".into(),
            known: "n1".into(),
        };
        assert_eq!(code_of(&anyhow::Error::new(unknown)), USAGE);
        let stopped = ClientError::NotRunning {
            detail: "nobody".into(),
        };
        assert_eq!(code_of(&anyhow::Error::new(stopped)), UNAVAILABLE);
        let refused = anyhow::Error::new(ClientError::Refused("UnknownIssuer".into()));
        assert_eq!(code_of(&refused), ERROR);
        let spec = anyhow::Error::new(HomeError::InvalidSpec("N = 4 > 3 nodes".into()))
            .context("cannot create a cluster at /h");
        assert_eq!(code_of(&spec), USAGE);
    }

    #[test]
    fn causes_are_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let err = anyhow::Error::new(io).context("cannot read x: gone");
        assert_eq!(sentence(&err), "cannot read x: gone");
    }

    #[test]
    fn broken_pipe_is_recognised() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let err = anyhow::Error::new(io).context("writing the table");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
