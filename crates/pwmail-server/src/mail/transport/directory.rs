//! Each message becomes `<mail-dir>/<message-id>.eml`.

use std::path::PathBuf;

use async_trait::async_trait;

use super::{Composer, SendError, Transport};
use crate::dkim::Signed;
use crate::mail::Letter;

/// Written to a temporary name, synced, then renamed, so a reader never sees
/// half a file; the name comes from the stable Message-ID, so a retry after a
/// crash overwrites instead of duplicating.
pub struct DirectoryTransport {
    dir: PathBuf,
    composer: Composer,
}

impl DirectoryTransport {
    pub fn new(dir: PathBuf, composer: Composer) -> std::io::Result<Self> {
        crate::files::create_private_dir(&dir)?;
        Ok(DirectoryTransport { dir, composer })
    }
}

#[async_trait]
impl Transport for DirectoryTransport {
    async fn send(&self, letter: &Letter<'_>) -> Result<String, SendError> {
        let bytes = self
            .composer
            .compose(letter, Signed::Whole)
            .map_err(|e| SendError::permanent(e.to_string()))?
            .bytes;
        let stem: String = letter
            .message_id
            .chars()
            .take_while(|c| *c != '@')
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let final_path = self.dir.join(format!("{stem}.eml"));
        let tmp_path = self.dir.join(format!(".{stem}.eml.tmp"));
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
            crate::files::write_private(&tmp_path, &bytes)?;
            std::fs::rename(&tmp_path, &final_path)?;
            Ok(final_path)
        })
        .await
        .map_err(|e| SendError::transient(e.to_string()))?
        .map_err(|e| SendError::transient(e.to_string()))?;
        Ok(format!("written to {}", written.display()))
    }

    async fn check(&self) -> Result<String, SendError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let probe = dir.join(".pwmail-check.tmp");
            crate::files::write_private(&probe, b"")?;
            std::fs::remove_file(&probe)
        })
        .await
        .map_err(|e| SendError::transient(e.to_string()))?
        .map_err(|e| SendError::transient(format!("{}: {e}", self.dir.display())))?;
        Ok(format!("{} is writable", self.dir.display()))
    }

    fn kind(&self) -> &'static str {
        "files"
    }

    fn describe(&self) -> String {
        format!(".eml files in {}", self.dir.display())
    }
}
