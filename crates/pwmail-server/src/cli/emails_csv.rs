//! The `email` column (and, for `user import`, the optional `name` column)
//! of a CSV file: what `user import` and `send --from-csv` read.

use std::path::Path;

use anyhow::Context as _;

/// One row: an address and, when the file has a `name` column, a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub email: String,
    pub name: Option<String>,
    /// The row's line in the file (1 is the header), for messages.
    pub line: u64,
}

/// The rows of a CSV file with a header row and an `email` column (header
/// names match case-insensitively); rows without an address are skipped.
pub fn read(path: &Path) -> anyhow::Result<Vec<Row>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes, path)
}

/// As [`read`], for a file already in memory (`path` names it in messages).
pub fn parse(bytes: &[u8], path: &Path) -> anyhow::Result<Vec<Row>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let email_column =
        column("email").with_context(|| format!("{} has no `email` column", path.display()))?;
    let name_column = column("name");
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        let field = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        if let Some(email) = field(Some(email_column)) {
            rows.push(Row {
                email,
                name: field(name_column),
                line: record.position().map_or(0, |p| p.line()),
            });
        }
    }
    Ok(rows)
}
