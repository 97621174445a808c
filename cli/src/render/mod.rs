//! Terminal output: tables (comfy-table), colours (only on a terminal, and
//! never with `NO_COLOR`, as decided by anstream), progress bars, and the
//! renderers of each command's human output.
//!
//! Renderers return strings; commands print them. Colours are ANSI codes
//! that anstream strips when colour is off; tables style their cells
//! through comfy-table so column widths stay right either way.

pub mod analysis;
pub mod show;
pub mod tasks;
pub mod timeline;

use anstyle::{AnsiColor, Style};
use comfy_table::{Cell, Color, ContentArrangement, Table};
use map_model::conflicts::Conflict;

use crate::commands::log::LogEntry;
use crate::plans::PlanSummary;

/// Whether stdout gets colours (a terminal, `NO_COLOR` unset, ...).
pub fn colors() -> bool {
    anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
}

/// A style, or no style when colours are off.
pub fn style(s: Style) -> Style {
    if colors() { s } else { Style::new() }
}

/// Bold text.
pub fn bold(text: &str) -> String {
    let s = style(Style::new().bold());
    format!("{s}{text}{s:#}")
}

/// Coloured text.
pub fn paint(text: &str, color: AnsiColor) -> String {
    let s = style(Style::new().fg_color(Some(color.into())));
    format!("{s}{text}{s:#}")
}

/// Dim text.
pub fn dim(text: &str) -> String {
    let s = style(Style::new().dimmed());
    format!("{s}{text}{s:#}")
}

/// A table with map's look: no borders, header row, styled only when
/// colours are on, wrapped to the terminal width only on a terminal.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    if colors() {
        t.enforce_styling();
        t.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.force_no_tty();
    }
    t.set_header(
        header
            .iter()
            .map(|h| Cell::new(h).add_attribute(comfy_table::Attribute::Bold)),
    );
    t
}

/// A cell with a foreground colour.
pub fn cell(text: impl ToString, color: Option<Color>) -> Cell {
    let c = Cell::new(text);
    match color {
        Some(col) => c.fg(col),
        None => c,
    }
}

/// Render a table with trailing spaces removed from each line.
pub fn finish(t: &Table) -> String {
    t.lines()
        .map(|l| l.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Length of the shortest prefix that tells all `ids` apart (at least 4).
pub fn prefix_len<'a>(ids: impl Iterator<Item = &'a str> + Clone) -> usize {
    let mut len = 4;
    while len < 12 {
        let mut seen = std::collections::HashSet::new();
        if ids
            .clone()
            .all(|id| seen.insert(id.get(..len).unwrap_or(id)))
        {
            return len;
        }
        len += 1;
    }
    len
}

/// The first `len` characters of an id.
pub fn short(id: &str, len: usize) -> &str {
    id.get(..len).unwrap_or(id)
}

/// `map plans`.
pub fn plans_table(plans: &[PlanSummary]) -> String {
    let mut t = table(&["", "ID", "TITLE", "UPDATED"]);
    for p in plans {
        t.add_row(vec![
            cell(if p.current { "*" } else { "" }, Some(Color::Green)),
            cell(&p.id, Some(Color::Yellow)),
            Cell::new(&p.title),
            Cell::new(crate::commands::log::rfc3339(p.updated_at_ms)),
        ]);
    }
    finish(&t)
}

/// `map log`.
pub fn log(entries: &[LogEntry]) -> String {
    let mut out = Vec::new();
    for e in entries {
        let when = e.time.replace('T', " ").trim_end_matches('Z').to_string();
        out.push(format!(
            "{}  {}  {}  {}",
            paint(&e.hash[..8.min(e.hash.len())], AnsiColor::Yellow),
            dim(&when),
            bold(e.author.as_deref().unwrap_or("(unknown)")),
            e.message.as_deref().unwrap_or("(no message)")
        ));
    }
    out.join("\n")
}

/// `map conflicts`.
pub fn conflicts(conflicts: &[Conflict]) -> String {
    let mut out = Vec::new();
    for c in conflicts {
        match c {
            Conflict::Field(f) => {
                out.push(format!(
                    "{} {} '{}' ({}): field {}",
                    paint("conflict:", AnsiColor::Red),
                    f.kind,
                    f.title,
                    f.id,
                    bold(&f.field)
                ));
                for v in &f.values {
                    let who = v.author.as_deref().or(v.actor.as_deref()).unwrap_or("?");
                    let mark = if v.winner { "shown" } else { "other" };
                    out.push(format!("  {mark}: {:?}  by {who}", v.value));
                }
            }
            Conflict::DependencyCycle { cycle, titles } => {
                out.push(format!(
                    "{} dependency cycle: {}",
                    paint("conflict:", AnsiColor::Red),
                    titles.join(" -> ")
                ));
                out.push(format!(
                    "  ignored: {} depends on {} (remove one with `map dep rm`)",
                    cycle.from, cycle.to
                ));
            }
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let ids = ["abcdefghijkl", "abcdzzzzzzzz", "qqqqqqqqqqqq"];
        assert_eq!(prefix_len(ids.iter().copied()), 5);
        assert_eq!(prefix_len(["abcdefghijkl"].iter().copied()), 4);
    }
}
