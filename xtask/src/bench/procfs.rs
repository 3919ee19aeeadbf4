//! What the kernel counted for the processes a scenario runs: CPU time (of
//! a process, its threads by name, or the children this process waited
//! for) and peak RSS, from `/proc`.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// The fields after the command name of a `stat` file; index 0 is field 3
/// (state) of proc(5).
fn stat_fields(path: &str) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .collect(),
    )
}

/// user + system CPU seconds of a process (or a thread's stat file).
fn cpu_of(path: &str) -> Option<f64> {
    let f = stat_fields(path)?;
    Some((f.get(11)? + f.get(12)?) as f64 / TICKS)
}

pub fn process_cpu(pid: u32) -> Option<f64> {
    cpu_of(&format!("/proc/{pid}/stat"))
}

/// CPU seconds of the children this process has waited for.
pub fn waited_children_cpu() -> f64 {
    stat_fields("/proc/self/stat")
        .and_then(|f| Some((f.get(13)? + f.get(14)?) as f64 / TICKS))
        .unwrap_or(0.0)
}

/// CPU seconds of every process whose command name is `name` (PostgreSQL's
/// backends come and go, so this sums all of them at one moment; one that
/// exits in between takes its seconds with it).
pub fn named_cpu(name: &str) -> f64 {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    procs
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|p| {
            std::fs::read_to_string(p.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .filter_map(|p| cpu_of(&p.path().join("stat").display().to_string()))
        .sum()
}

/// CPU seconds of a process's threads, summed by thread name.
pub fn threads_cpu(pid: u32) -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let dir = task.path().display().to_string();
        let name = std::fs::read_to_string(format!("{dir}/comm"))
            .map(|n| n.trim().to_string())
            .unwrap_or_default();
        if let Some(cpu) = cpu_of(&format!("{dir}/stat")) {
            *by_name.entry(name).or_insert(0.0) += cpu;
        }
    }
    by_name
}

pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}
