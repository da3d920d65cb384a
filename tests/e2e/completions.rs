//! The shell completions in `completions/` are what `dynamo completions`
//! prints now: a change to the command line without `scripts/completions`
//! fails here.

use std::path::Path;

use crate::support::dynamo_in;

/// Each shell and the file its completions live in.
const FILES: [(&str, &str); 5] = [
    ("bash", "dynamo.bash"),
    ("zsh", "_dynamo"),
    ("fish", "dynamo.fish"),
    ("elvish", "dynamo.elv"),
    ("powershell", "_dynamo.ps1"),
];

#[test]
fn committed_completions_match_the_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let nowhere = Path::new("/nonexistent-dynamo-home");
    let mut stale = Vec::new();
    for (shell, file) in FILES {
        let run = dynamo_in(nowhere, &["completions", shell], None);
        run.ok();
        assert!(
            run.text().contains("dynamo") && run.text().contains("resolve"),
            "expected `dynamo completions {shell}` to complete dynamo's commands"
        );
        let path = dir.join(file);
        match std::fs::read(&path) {
            Ok(committed) if committed == run.stdout => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(e) => stale.push(format!("{} cannot be read: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "expected completions/ to match `dynamo completions SHELL`; run scripts/completions. {}",
        stale.join("; ")
    );
    dynamo_in(nowhere, &["completions", "tcsh"], None).expect_code(2);
}
