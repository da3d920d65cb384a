//! How commands print: tables for people (boxed and coloured on a
//! terminal, plain aligned columns when piped), one JSON document with
//! `--json`. Everything goes through [`print`] / [`print_json`], which
//! return the write error instead of panicking, so a closed pipe ends the
//! program quietly (see `exit::is_broken_pipe`).

use std::io::{IsTerminal, Write};

use comfy_table::{presets, Cell, Color, ContentArrangement, Table};

/// Whether standard output is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Whether standard error is a terminal.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Whether to colour standard output: a terminal, and `NO_COLOR` unset.
pub fn colour() -> bool {
    stdout_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes text to standard output.
pub fn print(text: impl std::fmt::Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// Writes one JSON document to standard output.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    print(text)?;
    Ok(())
}

/// A table with these column headers, styled for where stdout goes.
pub fn table<const N: usize>(headers: [&str; N]) -> Table {
    let mut table = Table::new();
    if stdout_is_terminal() {
        table
            .load_preset(presets::UTF8_FULL_CONDENSED)
            .apply_modifier(comfy_table::modifiers::UTF8_ROUND_CORNERS)
            .set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        table.load_preset(presets::NOTHING);
    }
    if colour() {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_header(headers);
    if !stdout_is_terminal() {
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
    }
    table
}

/// Prints a table made by [`table`], without trailing blanks when piped.
pub fn print_table(table: &Table) -> std::io::Result<()> {
    print(table.trim_fmt())
}

/// A node state, green when up, red when down, yellow otherwise.
pub fn state_cell(state: &str) -> Cell {
    let colour = match state {
        "up" | "running" => Color::Green,
        "down" | "stopped" => Color::Red,
        _ => Color::Yellow,
    };
    Cell::new(state).fg(colour)
}

/// A message for people on standard error, only when it is a terminal.
pub fn note(text: impl std::fmt::Display) {
    if stderr_is_terminal() {
        eprintln!("{text}");
    }
}
