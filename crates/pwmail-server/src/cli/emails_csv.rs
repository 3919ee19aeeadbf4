//! The `email` column (and, for `user import`, the optional `name` and
//! `locale` columns)
//! of a CSV file: what `user import` and `send --from-csv` read.

use std::path::Path;

use anyhow::Context as _;

/// One row: an address and, when the file has a `name` column, a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub email: String,
    pub name: Option<String>,
    /// The `locale` column's value (`user import`).
    pub locale: Option<String>,
    /// The row's line in the file (1 is the header), for messages.
    pub line: u64,
}

/// The rows of a CSV file with a header row and an `email` column (header
/// names match case-insensitively); rows without an address are skipped.
pub fn read(path: &Path) -> anyhow::Result<Vec<Row>> {
    read_watching(path, |_| {})
}

/// The longest line a file of addresses and names may have: a longer one
/// is not such a file (`/dev/zero`, a binary), and is refused before it
/// fills memory.
pub const MAX_LINE: usize = 64 * 1024;

/// As [`read`], streaming the file (only the rows are kept) and handing
/// every byte read to `seen` (`send` digests the input for its run id).
pub fn read_watching(path: &Path, seen: impl FnMut(&[u8])) -> anyhow::Result<Vec<Row>> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let watched = Watched {
        inner: std::io::BufReader::new(file),
        seen,
        line: 0,
    };
    parse(watched, path)
}

/// A reader that shows every byte to `seen` and refuses a line longer than
/// [`MAX_LINE`].
struct Watched<R, F> {
    inner: R,
    seen: F,
    /// Bytes since the last newline.
    line: usize,
}

impl<R: std::io::Read, F: FnMut(&[u8])> std::io::Read for Watched<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = &buf[..n];
        self.line = match memchr::memrchr(b'\n', read) {
            Some(last) => n - last - 1,
            None => self.line + n,
        };
        if self.line > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "a line longer than {} KiB: not a CSV file of addresses",
                    MAX_LINE / 1024
                ),
            ));
        }
        (self.seen)(read);
        Ok(n)
    }
}

fn parse(input: impl std::io::Read, path: &Path) -> anyhow::Result<Vec<Row>> {
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader
        .headers()
        .with_context(|| format!("reading {}", path.display()))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let email_column =
        column("email").with_context(|| format!("{} has no `email` column", path.display()))?;
    let name_column = column("name");
    let locale_column = column("locale");
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
                locale: field(locale_column),
                line: record.position().map_or(0, |p| p.line()),
            });
        }
    }
    Ok(rows)
}
