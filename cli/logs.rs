//! `dynamo logs NODE [-f]`: a node's log; with `-f`, keeps printing what
//! the node appends until Ctrl-C (a log that shrinks was rotated or
//! truncated and is read again from its start).

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use dynamo::home::Home;

use crate::args::LogsArgs;
use crate::devcluster::DevCluster;
use crate::exit;

/// How often `-f` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);
/// Bytes read and printed at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// `dynamo logs`.
pub async fn logs(home: &Home, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let cluster = DevCluster::open(home)?;
    cluster.check_node(&args.node)?;
    let path = home.node_log(&args.node);
    if !path.exists() && !args.follow {
        return Err(exit::error(format!(
            "node {} has no log yet: it has never run",
            args.node
        )));
    }
    let mut offset = match args.lines {
        Some(lines) => offset_of_last_lines(&path, lines)?,
        None => 0,
    };
    offset = copy_from(&path, offset)?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
        }
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0;
        }
        if len > offset {
            offset = copy_from(&path, offset)?;
        }
    }
}

/// Copies the file from `offset` to its end onto stdout; returns the new offset.
fn copy_from(path: &std::path::Path, offset: u64) -> anyhow::Result<u64> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    file.seek(SeekFrom::Start(offset))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut position = offset;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        position += n as u64;
    }
    out.flush()?;
    Ok(position)
}

/// The byte offset where the last `lines` lines of the file begin.
fn offset_of_last_lines(path: &std::path::Path, lines: usize) -> anyhow::Result<u64> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(start_of_last_lines(&bytes, lines) as u64)
}

fn start_of_last_lines(bytes: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return bytes.len();
    }
    // Ignore the final newline, then find the `lines`-th newline from the end.
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(lines - 1)
        .map_or(0, |(i, _)| i + 1)
}

#[cfg(test)]
mod tests {
    use super::start_of_last_lines;

    #[test]
    fn last_lines() {
        let text = b"a\nb\nc\n";
        assert_eq!(&text[start_of_last_lines(text, 1)..], b"c\n");
        assert_eq!(&text[start_of_last_lines(text, 2)..], b"b\nc\n");
        assert_eq!(&text[start_of_last_lines(text, 9)..], b"a\nb\nc\n");
        assert_eq!(&text[start_of_last_lines(text, 0)..], b"");
        assert_eq!(&b"x"[start_of_last_lines(b"x", 1)..], b"x");
    }
}
