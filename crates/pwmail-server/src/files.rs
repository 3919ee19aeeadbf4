//! Files that hold secrets: the database (queued emails carry live links)
//! and the `.eml` files. Directories are created 0700 and files 0600, and
//! `serve` warns about existing ones that others can read.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// The largest file an operator names that pwmail reads whole (a
/// certificate, a key, a settings file, a template, a secret).
pub const READ_MAX_BYTES: u64 = 1024 * 1024;

/// The bytes of `path`, refused when it holds more than [`READ_MAX_BYTES`]:
/// a wrong path (`/dev/zero`, a disk image) must not fill the memory.
pub fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(READ_MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > READ_MAX_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB: not the file meant",
                READ_MAX_BYTES >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// [`read_small`] as UTF-8 text.
pub fn read_small_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_small(path)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Creates `dir` (and missing parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes a new file readable by its owner only, synced to disk.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The ones of `paths` that exist and that group or others may read.
pub fn exposed<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<(&'a Path, u32)> {
    paths
        .into_iter()
        .filter_map(|p| {
            let mode = std::fs::metadata(p).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some((p, mode))
        })
        .collect()
}

/// Logs a warning for each of `paths` that group or others may read, with
/// what it holds.
pub fn warn_if_exposed(paths: &[(std::path::PathBuf, &str)]) {
    for (path, holds) in paths {
        for (path, mode) in exposed([path.as_path()]) {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "readable by other users, but it {holds}; run `chmod go-rwx` on it"
            );
        }
    }
}

/// From here on, files and directories this process creates are its
/// owner's alone (SQLite's `-wal`/`-shm`, `.eml` files, the data dir).
pub fn private_umask() {
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_created_private_and_exposure_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        create_private_dir(&data).unwrap();
        let file = data.join("x.eml");
        write_private(&file, b"link").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert!(exposed([data.as_path(), file.as_path()]).is_empty());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(exposed([file.as_path()]), vec![(file.as_path(), 0o644)]);
    }
}

/// An exclusive lock on a SQLite database, held by the one `serve` or
/// `dispatch` process using it (the OS drops it when the process ends).
#[derive(Debug)]
pub struct ServerLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another pwmail server (PID {pid}) is using {db}; a SQLite database serves one \
         process. For several replicas use PostgreSQL (README: \"Several replicas on PostgreSQL\")"
    )]
    Held { pid: String, db: String },
    // The cause in the message, not also a `source`: `{:#}` says it once.
    #[error("locking {path}: {error}")]
    Io { path: String, error: std::io::Error },
}

/// Takes the lock of the SQLite file `db` (`<db>.lock` beside it, holding
/// the PID of its owner), or says which process holds it.
pub fn lock_server(db: &Path) -> Result<ServerLock, LockError> {
    use std::io::{Read as _, Seek as _};
    use std::os::fd::AsRawFd as _;
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let io = |error| LockError::Io {
        path: path.display().to_string(),
        error,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::WouldBlock {
            return Err(io(err));
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let pid = match pid.trim() {
            "" => "unknown".to_string(),
            pid => pid.to_string(),
        };
        return Err(LockError::Held {
            pid,
            db: db.display().to_string(),
        });
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(ServerLock { _file: file })
}
