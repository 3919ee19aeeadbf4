//! The `email` column of a CSV file: what `user import` and `send
//! --from-csv` read.

use std::path::Path;

use anyhow::Context as _;

/// The `email` column of a CSV file with a header row.
pub fn read(path: &Path) -> anyhow::Result<Vec<String>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let column = reader
        .headers()?
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("email"))
        .with_context(|| format!("{} has no `email` column", path.display()))?;
    let mut emails = Vec::new();
    for record in reader.records() {
        let record = record?;
        if let Some(email) = record.get(column).map(str::trim).filter(|e| !e.is_empty()) {
            emails.push(email.to_string());
        }
    }
    Ok(emails)
}
