//! `--config FILE`: a TOML file of settings, applied as `PWMAIL_*` defaults.
//!
//! Each key is a flag's name with `_` for `-` (`smtp_url`, `link_ttl_secs`).
//! A key becomes the flag's environment variable unless that variable is
//! already set, so the order is: flag > environment > file > built-in default.
//! Unknown keys are errors, so a typo does not silently do nothing.

use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    // The cause in the message, not also a `source`: `{:#}` says it once.
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} is not valid TOML: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: unknown setting {key:?} (known: {known})")]
    Unknown {
        path: String,
        key: String,
        known: String,
    },
    #[error("{path}: setting {key:?} must be a string, number or boolean")]
    Type { path: String, key: String },
}

/// Every `PWMAIL_*` variable some flag reads.
fn known_variables() -> BTreeSet<String> {
    fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(env) = arg.get_env() {
                out.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&Cli::command(), &mut out);
    out
}

/// An example settings file: every key, its help and its default, each
/// commented out (`packaging/pwmail.toml` is this text; a test keeps the
/// two equal).
pub fn example() -> String {
    use std::collections::BTreeMap;
    fn walk(cmd: &clap::Command, out: &mut BTreeMap<String, (String, Option<String>)>) {
        for arg in cmd.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let var = env.to_string_lossy().into_owned();
            if var == "PWMAIL_CONFIG" || out.contains_key(&var) {
                continue;
            }
            let help = arg
                .get_long_help()
                .or_else(|| arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            let default = arg
                .get_default_values()
                .first()
                .map(|v| v.to_string_lossy().into_owned())
                .or_else(|| {
                    matches!(arg.get_action(), clap::ArgAction::SetTrue).then(|| "false".into())
                });
            out.insert(var, (help, default));
        }
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut vars = BTreeMap::new();
    walk(&Cli::command(), &mut vars);
    let mut text = String::from(
        "# pwmail settings: `pwmail --config pwmail.toml serve` (or PWMAIL_CONFIG).\n\
         # Each key is a flag's name with `_` for `-`; flags and PWMAIL_* variables win\n\
         # over this file. Every key is listed with its default, commented out:\n\
         # uncomment what you change. A key set to \"\" is not set (no default).\n\
         # Generated from the flags' definitions.\n",
    );
    for (var, (help, default)) in vars {
        let key = var.trim_start_matches("PWMAIL_").to_ascii_lowercase();
        text.push('\n');
        for line in help.lines() {
            text.push_str(format!("# {line}").trim_end());
            text.push('\n');
        }
        if default.is_none() {
            text.push_str("# (no default)\n");
        }
        // Every line stays TOML when uncommented; a blank value is unset.
        match default {
            Some(value) => text.push_str(&format!("# {key} = {}\n", toml_value(&value))),
            None => text.push_str(&format!("# {key} = \"\"\n")),
        }
    }
    text
}

/// A default as TOML: numbers and booleans bare, everything else quoted.
fn toml_value(value: &str) -> String {
    if value.parse::<i64>().is_ok() || value == "true" || value == "false" {
        value.to_string()
    } else {
        toml::Value::String(value.to_string()).to_string()
    }
}

/// The settings of `path` as (variable, value) pairs.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, SettingsError> {
    let shown = path.display().to_string();
    let text = crate::files::read_small_text(path).map_err(|error| SettingsError::Read {
        path: shown.clone(),
        error,
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SettingsError::Parse {
            path: shown.clone(),
            message: e.to_string(),
        })?;
    let known = known_variables();
    let mut out = Vec::new();
    for (key, value) in table {
        let var = format!("PWMAIL_{}", key.to_ascii_uppercase().replace('-', "_"));
        if !known.contains(&var) || var == "PWMAIL_CONFIG" {
            let known = known
                .iter()
                .filter(|v| *v != "PWMAIL_CONFIG")
                .map(|v| v.trim_start_matches("PWMAIL_").to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(SettingsError::Unknown {
                path: shown,
                key,
                known,
            });
        }
        let value = match value {
            // Blank: not set, as if the line were commented out.
            toml::Value::String(s) if s.trim().is_empty() => continue,
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => return Err(SettingsError::Type { path: shown, key }),
        };
        out.push((var, value));
    }
    Ok(out)
}

/// What the `--config` file set: its path and the keys whose values were
/// used (a variable already set wins over the file), so an error about a
/// value names the file and key it came from.
#[derive(Debug, Default)]
pub struct Applied {
    pub path: std::path::PathBuf,
    pub keys: Vec<String>,
}

impl Applied {
    /// `message` prefixed with the file and key when it is about a flag
    /// whose value came from the file (messages about a value start with
    /// its flag, `--smtp-url: …`, or name it, `for '--link-ttl-secs …'`).
    pub fn locate(&self, message: &str) -> Option<String> {
        self.keys.iter().find_map(|key| {
            let flag = format!("--{}", key.replace('_', "-"));
            let named = message.starts_with(&format!("{flag}:"))
                || message.starts_with(&format!("{flag} "))
                || message.contains(&format!("'{flag} "))
                || message.contains(&format!("'{flag}'"));
            named.then(|| format!("{}: {key}: {message}", self.path.display()))
        })
    }
}

/// Applies the `--config` file, if any, as `PWMAIL_*` defaults: a variable
/// already set wins. Runs before the arguments are parsed and before any
/// other thread exists.
pub fn apply(args: &[std::ffi::OsString]) -> Result<Applied, SettingsError> {
    let Some(path) = config_path(args) else {
        return Ok(Applied::default());
    };
    let mut applied = Applied {
        path: path.clone(),
        keys: Vec::new(),
    };
    for (var, value) in read(&path)? {
        if std::env::var_os(&var).is_none() {
            applied
                .keys
                .push(var.trim_start_matches("PWMAIL_").to_ascii_lowercase());
            // SAFETY: called from `main` before the runtime or any other
            // thread starts.
            unsafe { std::env::set_var(var, value) };
        }
    }
    Ok(applied)
}

/// The `--config` path from the raw arguments or `PWMAIL_CONFIG`.
pub fn config_path(args: &[std::ffi::OsString]) -> Option<std::path::PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().map(Into::into);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(path.into());
        }
    }
    std::env::var_os("PWMAIL_CONFIG").map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keys_to_variables_and_refuses_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pwmail.toml");
        std::fs::write(&file, "smtp_url = \"smtps://relay.example.com\"\nlink_ttl_secs = 3600\nsmtp_allow_insecure = true\n").unwrap();
        let mut got = read(&file).unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("PWMAIL_LINK_TTL_SECS".to_string(), "3600".to_string()),
                ("PWMAIL_SMTP_ALLOW_INSECURE".to_string(), "true".to_string()),
                (
                    "PWMAIL_SMTP_URL".to_string(),
                    "smtps://relay.example.com".to_string()
                ),
            ]
        );
        std::fs::write(&file, "smtp_uri = \"x\"\n").unwrap();
        let err = read(&file).unwrap_err().to_string();
        assert!(
            err.contains("unknown setting \"smtp_uri\"") && err.contains("smtp_url"),
            "{err}"
        );
    }

    #[test]
    fn finds_the_flag() {
        let args: Vec<std::ffi::OsString> = ["pwmail", "serve", "--config", "a.toml"]
            .map(Into::into)
            .into();
        assert_eq!(config_path(&args), Some("a.toml".into()));
        let args: Vec<std::ffi::OsString> = ["pwmail", "--config=b.toml", "serve"]
            .map(Into::into)
            .into();
        assert_eq!(config_path(&args), Some("b.toml".into()));
    }

    #[test]
    fn the_packaged_example_lists_every_key_and_each_is_accepted() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../packaging/pwmail.toml");
        let example = example();
        if std::env::var_os("PWMAIL_BLESS").is_some() {
            std::fs::write(path, &example).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == example,
            "packaging/pwmail.toml is stale: run `PWMAIL_BLESS=1 cargo test -p pwmail-server \
             the_packaged_example` and commit it"
        );
        // Uncommented, every key reads back as a known setting.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("all.toml");
        let uncommented: String = example
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&file, &uncommented).unwrap();
        // Every line is TOML as it stands, and names a known setting.
        let table: toml::Table = uncommented.parse().expect("every line is TOML");
        let known = known_variables();
        assert_eq!(
            table.len(),
            known.len() - 1,
            "every key but config:\n{uncommented}"
        );
        // Blank values ("no default") are not set; the others read back.
        let read = read(&file).unwrap();
        let blank = table.values().filter(|v| v.as_str() == Some("")).count();
        assert_eq!(read.len(), table.len() - blank);
        for (var, _) in &read {
            assert!(known.contains(var), "{var}");
        }
    }
}
