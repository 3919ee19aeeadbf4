//! `cargo xtask vendor-check [--bless]`: `vendor/dropshot` is the published
//! dropshot 0.18.0 plus exactly the changes `vendor/dropshot/PATCHES.diff`
//! holds (the hunks `PATCHES.md` explains), and nothing else.
//!
//! The published crate is fetched in a scratch project of its own (the
//! workspace's `[patch]` keeps cargo from fetching it there), the two trees
//! are compared file by file, and the unified diff must equal the committed
//! one. `--bless` writes it after a deliberate change to the copy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

const VERSION: &str = "0.18.0";

/// What the copy leaves out of the published crate on purpose, and its own
/// notes: never compared.
const NOT_COMPARED: &[&str] = &[
    ".cargo_vcs_info.json",
    "Cargo.lock",
    "Cargo.toml.orig",
    "large-service-dep-graph.mmd",
    "PATCHES.md",
    "PATCHES.diff",
];
/// Directories of the published crate the copy leaves out (tests, examples).
const NOT_COMPARED_DIRS: &[&str] = &["tests", "examples"];

pub fn run(root: &Path, bless: bool) -> Result<()> {
    let published = fetch_published(root)?;
    let vendored = root.join("vendor/dropshot");
    let diff = tree_diff(&published, &vendored)?;
    let committed_path = vendored.join("PATCHES.diff");
    if bless {
        std::fs::write(&committed_path, &diff)?;
        eprintln!("vendor-check: wrote {}", committed_path.display());
        return Ok(());
    }
    let committed = std::fs::read_to_string(&committed_path)
        .with_context(|| format!("reading {}", committed_path.display()))?;
    if committed != diff {
        let changes = similar::TextDiff::from_lines(&committed, &diff)
            .unified_diff()
            .context_radius(2)
            .header(
                "PATCHES.diff (committed)",
                "PATCHES.diff (vendor/dropshot now)",
            )
            .to_string();
        bail!(
            "vendor/dropshot differs from dropshot {VERSION} by more or less than \
             vendor/dropshot/PATCHES.diff; what changed:\n{changes}\n\
             if the change is meant, explain it in PATCHES.md and run \
             `cargo xtask vendor-check --bless`"
        );
    }
    eprintln!(
        "vendor-check: vendor/dropshot is dropshot {VERSION} plus PATCHES.diff ({} lines)",
        diff.lines().count()
    );
    Ok(())
}

/// The published crate's source directory, fetched through a scratch
/// project outside the workspace.
fn fetch_published(root: &Path) -> Result<PathBuf> {
    let scratch = root.join("target/vendor-check");
    std::fs::create_dir_all(scratch.join("src"))?;
    std::fs::write(
        scratch.join("Cargo.toml"),
        format!(
            "[package]\nname = \"vendor-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\ndropshot = \"={VERSION}\"\n\n\
             # Its own workspace: not a member of pwmail's.\n[workspace]\n"
        ),
    )?;
    std::fs::write(scratch.join("src/lib.rs"), "")?;
    let out = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(scratch.join("Cargo.toml"))
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "fetching dropshot {VERSION}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "dropshot" && p["version"] == VERSION)
        .and_then(|p| p["manifest_path"].as_str())
        .context("dropshot is not in the scratch project's metadata")?;
    Ok(Path::new(manifest)
        .parent()
        .context("a manifest's directory")?
        .to_path_buf())
}

/// Every compared file under `dir`, relative, sorted.
fn files(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(at) = dirs.pop() {
        for entry in std::fs::read_dir(&at).with_context(|| format!("reading {}", at.display()))? {
            let path = entry?.path();
            let relative = path.strip_prefix(dir)?.to_path_buf();
            let name = relative.to_string_lossy();
            if path.is_dir() {
                if !NOT_COMPARED_DIRS.contains(&name.as_ref()) {
                    dirs.push(path);
                }
            } else if !NOT_COMPARED.contains(&name.as_ref()) {
                found.insert(relative);
            }
        }
    }
    Ok(found)
}

/// The unified diff from `published` to `vendored`, file by file in path
/// order; a file only one side has is diffed against nothing.
fn tree_diff(published: &Path, vendored: &Path) -> Result<String> {
    let all: BTreeSet<PathBuf> = files(published)?
        .union(&files(vendored)?)
        .cloned()
        .collect();
    let read = |dir: &Path, file: &Path| -> Result<String> {
        let path = dir.join(file);
        if !path.exists() {
            return Ok(String::new());
        }
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let mut out = String::new();
    for file in all {
        let (old, new) = (read(published, &file)?, read(vendored, &file)?);
        if old == new {
            continue;
        }
        let name = file.display();
        out.push_str(
            &similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(3)
                .header(
                    &format!("dropshot-{VERSION}/{name}"),
                    &format!("vendor/dropshot/{name}"),
                )
                .to_string(),
        );
    }
    Ok(out)
}
