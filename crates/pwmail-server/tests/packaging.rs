//! The packaged service, emulated (this machine's PID 1 is not systemd):
//! the files installed exactly as `packaging/pwmail.service`'s header says
//! (under a temporary root), then the unit's `ExecStart` run as a fresh
//! unprivileged uid with its `Environment=` lines, its `UMask=`, its state
//! directory, and `$CREDENTIALS_DIRECTORY` filled as its `LoadCredential=`
//! lines say. `systemd-analyze verify` (in `.ci/run`) checks the unit's
//! syntax; this checks that what it describes starts and serves.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::KillOnDrop;

/// The uid and gid the unit's `DynamicUser=yes` stands for here (as root;
/// otherwise this process's own).
fn service_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        (61_234, 61_234)
    } else {
        unsafe { (libc::geteuid(), libc::getegid()) }
    }
}

/// `[Service]`'s `key=value` lines, in order (comments skipped).
fn service_lines(unit: &str) -> Vec<(String, String)> {
    let section = unit
        .split("[Service]")
        .nth(1)
        .expect("a [Service] section")
        .split("\n[")
        .next()
        .unwrap();
    section
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The header's `install …` commands, with the system's directories moved
/// under `root` (and the binary `cargo install` would have put in
/// /usr/local/bin put there).
fn install(unit: &str, root: &Path) {
    let workspace = pwmail_testkit::workspace();
    let bin = root.join("usr/local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_pwmail"), bin.join("pwmail")).unwrap();
    let commands: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("#   install "))
        .collect();
    assert!(commands.len() >= 2, "the header's install commands");
    for command in commands {
        let command = format!("install {command}")
            .replace(" /etc/", &format!(" {}/etc/", root.display()))
            .replace(" /usr/local/", &format!(" {}/usr/local/", root.display()));
        let done = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(&workspace)
            .status()
            .unwrap();
        assert!(done.success(), "{command}");
    }
}

#[test]
fn the_packaged_unit_starts_as_its_dynamic_user_with_its_config_as_a_credential() {
    let unit =
        std::fs::read_to_string(pwmail_testkit::workspace().join("packaging/pwmail.service"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A fresh uid must reach the binary and its state directory.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    install(&unit, root);
    let config = root.join("etc/pwmail/pwmail.toml");
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600,
        "the config stays root's"
    );
    let (uid, gid) = service_ids();
    let moved = |path: &str| -> PathBuf { root.join(path.trim_start_matches('/')) };

    let lines = service_lines(&unit);
    let value = |key: &str| {
        lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {key}="))
    };
    // StateDirectory=pwmail: /var/lib/pwmail, the service user's, its mode.
    let state = moved("/var/lib").join(value("StateDirectory"));
    std::fs::create_dir_all(&state).unwrap();
    let mode = u32::from_str_radix(&value("StateDirectoryMode"), 8).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(&state, Some(uid), Some(gid)).unwrap();
    // LoadCredential=NAME:PATH: a copy readable by the service user alone.
    let credentials = moved("/run/credentials/pwmail.service");
    std::fs::create_dir_all(&credentials).unwrap();
    let mut loaded = 0;
    for (_, spec) in lines.iter().filter(|(k, _)| k == "LoadCredential") {
        let (name, path) = spec.split_once(':').expect("NAME:PATH");
        let copy = credentials.join(name);
        std::fs::copy(moved(path), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o400)).unwrap();
        std::os::unix::fs::chown(&copy, Some(uid), Some(gid)).unwrap();
        loaded += 1;
    }
    assert!(loaded >= 1, "the config comes as a credential");
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o500)).unwrap();
    std::os::unix::fs::chown(&credentials, Some(uid), Some(gid)).unwrap();
    let expand = |text: &str| {
        text.replace("%d", &credentials.display().to_string())
            .replace("/etc/", &format!("{}/", moved("/etc").display()))
            .replace(
                "/usr/local/bin/",
                &format!("{}/", moved("/usr/local/bin").display()),
            )
            .replace("/var/lib/", &format!("{}/", moved("/var/lib").display()))
    };
    let environment: Vec<(String, String)> = lines
        .iter()
        .filter(|(k, _)| k == "Environment")
        .map(|(_, v)| {
            let (k, v) = v.split_once('=').unwrap();
            (k.to_string(), expand(v))
        })
        .collect();
    let umask = u32::from_str_radix(&value("UMask"), 8).unwrap();
    let run_as = |args: &[String], extra: &[(&str, &str)]| {
        let mut command = Command::new(&args[0]);
        command
            .args(&args[1..])
            .current_dir(expand(&value("WorkingDirectory")))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("CREDENTIALS_DIRECTORY", &credentials)
            .envs(environment.iter().map(|(k, v)| (k, v)))
            .envs(extra.iter().copied())
            .uid(uid)
            .gid(gid)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: umask is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                libc::umask(umask as libc::mode_t);
                Ok(())
            });
        }
        command
    };

    let exec: Vec<String> = expand(&value("ExecStart"))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // The packaged config's port may be taken here: the system picks one.
    let mut serve = KillOnDrop(
        run_as(&exec, &[("PWMAIL_LISTEN", "127.0.0.1:0")])
            .spawn()
            .expect("ExecStart runs"),
    );
    let mut stdout = BufReader::new(serve.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    let mut stderr = BufReader::new(serve.stderr.take().unwrap());
    if !banner.contains("Created bootstrap admin admin@pwmail.localhost") {
        let mut said = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
        panic!("ExecStart did not start: {banner}{said}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("pwmail serving") {
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
    }
    assert!(log.contains("pwmail serving"), "{log}");

    // The database is the service user's and private.
    let db = state.join("pwmail.db");
    let meta = std::fs::metadata(&db).expect("the database in the state directory");
    assert_eq!((meta.uid(), meta.mode() & 0o077), (uid, 0), "{db:?}");

    // pwmail-admin's command: the same user, data and config.
    let admin = std::fs::read_to_string(root.join("usr/local/bin/pwmail-admin")).unwrap();
    for property in [
        "DynamicUser=yes",
        &format!("StateDirectory={}", value("StateDirectory")),
        &format!("LoadCredential={}", value("LoadCredential")),
        "PWMAIL_DATA_DIR=/var/lib/pwmail",
        "--config \"$CREDENTIALS_DIRECTORY/pwmail.toml\"",
    ] {
        assert!(admin.contains(property), "pwmail-admin lacks {property}");
    }
    let list = vec![
        exec[0].clone(),
        "--config".into(),
        credentials.join("pwmail.toml").display().to_string(),
        "user".into(),
        "list".into(),
    ];
    let listed = run_as(&list, &[]).output().unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("admin@pwmail.localhost"),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
}
