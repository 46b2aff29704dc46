//! Removal of everything a run created, found by *name* — never by saved pids, which the
//! kernel reuses.
//!
//! A run's resources all carry its id: namespaces `sb-<id>-*`, cgroups
//! `<cgroup2>/splitbrain/<id>/*`. [`cleanup`] walks the [`STEPS`] in order; each step finds
//! its kind of leftover by name and removes it. A new kind of resource (nftables tables
//! named `splitbrain_*`, libfaketime offset files, ...) is one more line in [`STEPS`].
//!
//! Everything here is idempotent and best effort: a failing step is reported and the next
//! one still runs.

use crate::cgroup;
use crate::netns;
use crate::topology::{RunId, NAME_PREFIX};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// What one cleanup did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// One human-readable line per thing removed.
    pub removed: Vec<String>,
    /// One line per thing that could not be removed.
    pub errors: Vec<String>,
}

impl CleanupReport {
    pub fn is_clean(&self) -> bool {
        self.removed.is_empty() && self.errors.is_empty()
    }
}

/// One kind of leftover: how to find and remove it. `run` narrows it to one run.
pub struct CleanupStep {
    pub name: &'static str,
    pub run: fn(run: Option<&RunId>, report: &mut CleanupReport),
}

/// The steps, in order: stop processes before their namespaces go, so nothing is left
/// running in a namespace that no longer has a name.
pub const STEPS: &[CleanupStep] = &[
    CleanupStep {
        name: "node cgroups",
        run: remove_cgroups,
    },
    CleanupStep {
        name: "processes in run namespaces",
        run: kill_namespace_processes,
    },
    // Partition routes, nftables `splitbrain*` tables: inside run namespaces, so removed
    // before those go (deleting the namespace would drop them too).
    CleanupStep {
        name: "nemesis rules",
        run: crate::nemesis::cleanup_leftovers,
    },
    CleanupStep {
        name: "network namespaces",
        run: delete_namespaces,
    },
    // Resources of later fault kinds are added here, one line each.
];

/// Removes the leftovers of run `run`, or of every run when `None`.
pub fn cleanup(run: Option<&RunId>) -> CleanupReport {
    let mut report = CleanupReport::default();
    for step in STEPS {
        (step.run)(run, &mut report);
    }
    report
}

/// Removes everything of one run. Safe to call from a panic or signal-handling path (it
/// takes no lock the run could hold).
pub fn cleanup_run(run: &RunId) -> CleanupReport {
    cleanup(Some(run))
}

/// Whether namespace `name` belongs to `run` (or to any run: `sb-<id>-<node>`).
pub fn is_run_netns(name: &str, run: Option<&RunId>) -> bool {
    match run {
        Some(run) => name.starts_with(&run.netns_prefix()),
        None => name
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split_once('-'))
            .is_some_and(|(id, node)| RunId::parse(id).is_ok() && !node.is_empty()),
    }
}

fn run_namespaces(run: Option<&RunId>, report: &mut CleanupReport) -> Vec<String> {
    match netns::list() {
        Ok(names) => names.into_iter().filter(|n| is_run_netns(n, run)).collect(),
        Err(e) => {
            report
                .errors
                .push(format!("listing network namespaces: {e}"));
            Vec::new()
        }
    }
}

fn remove_cgroups(run: Option<&RunId>, report: &mut CleanupReport) {
    // No cgroup2 means no cgroup of ours either.
    let Ok(root) = cgroup::harness_root() else {
        return;
    };
    let run_dirs: Vec<_> = match run {
        Some(run) => vec![root.join(run.as_str())],
        None => match std::fs::read_dir(&root) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect(),
            Err(_) => Vec::new(),
        },
    };
    for dir in run_dirs {
        let label = |p: &std::path::Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
        for (cgroup_dir, pid) in processes_below(&dir) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            report.removed.push(format!(
                "process {pid} ({}) in cgroup {}",
                comm.trim(),
                label(&cgroup_dir)
            ));
        }
        match cgroup::remove_tree(&dir) {
            Ok(removed) => report.removed.extend(
                removed
                    .iter()
                    .map(|p| format!("cgroup {}", p.strip_prefix(&root).unwrap_or(p).display())),
            ),
            Err(e) => report.errors.push(e.to_string()),
        }
    }
}

/// Every (cgroup, pid) at or below `dir`, to report what a cgroup kill takes down.
fn processes_below(dir: &std::path::Path) -> Vec<(std::path::PathBuf, i32)> {
    let mut found: Vec<_> = cgroup::Cgroup::at(dir)
        .procs()
        .unwrap_or_default()
        .into_iter()
        .map(|pid| (dir.to_owned(), pid))
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.extend(processes_below(&entry.path()));
            }
        }
    }
    found
}

fn kill_namespace_processes(run: Option<&RunId>, report: &mut CleanupReport) {
    let me = std::process::id() as i32;
    for ns in run_namespaces(run, report) {
        let pids = match netns::pids(&ns) {
            Ok(pids) => pids.into_iter().filter(|&p| p != me).collect::<Vec<_>>(),
            Err(e) => {
                report
                    .errors
                    .push(format!("processes of namespace {ns}: {e}"));
                continue;
            }
        };
        for &pid in &pids {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) => report
                    .removed
                    .push(format!("process {pid} ({}) in {ns}", comm.trim())),
                Err(nix::Error::ESRCH) => {}
                Err(e) => report
                    .errors
                    .push(format!("killing process {pid} in {ns}: {e}")),
            }
        }
        wait_until_gone(&ns, Duration::from_secs(2), report);
    }
}

fn wait_until_gone(ns: &str, timeout: Duration, report: &mut CleanupReport) {
    let deadline = Instant::now() + timeout;
    let me = std::process::id() as i32;
    loop {
        // Zombies keep their namespace link until reaped by their parent; they hold nothing
        // that deleting the namespace's name would disturb, so only live ones count.
        let alive: Vec<i32> = netns::pids(ns)
            .unwrap_or_default()
            .into_iter()
            .filter(|&p| p != me && !is_zombie(p))
            .collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            report
                .errors
                .push(format!("processes {alive:?} in {ns} survived SIGKILL"));
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true)
}

fn delete_namespaces(run: Option<&RunId>, report: &mut CleanupReport) {
    let names = run_namespaces(run, report);
    if names.is_empty() {
        return;
    }
    if let Err(e) = netns::delete(&names) {
        report.errors.push(e.to_string());
    }
    for name in names {
        if netns::exists(&name) {
            report
                .errors
                .push(format!("network namespace {name} could not be deleted"));
        } else {
            report.removed.push(format!("network namespace {name}"));
        }
    }
}

/// Tears down everything of one run when dropped (after the run's own guards, which do the
/// orderly part). Keep it alive for the whole run, created before anything else.
#[derive(Debug)]
pub struct RunGuard {
    run: RunId,
    armed: bool,
}

impl RunGuard {
    pub fn new(run: RunId) -> Self {
        RunGuard { run, armed: true }
    }

    pub fn run(&self) -> &RunId {
        &self.run
    }

    /// Cleans up now and returns what was found.
    pub fn finish(mut self) -> CleanupReport {
        self.armed = false;
        cleanup_run(&self.run)
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if self.armed {
            let report = cleanup_run(&self.run);
            for line in &report.errors {
                eprintln!("splitbrain: warning: cleanup of run {}: {line}", self.run);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_matched_by_run() {
        let run = RunId::parse("abc123").unwrap();
        assert!(is_run_netns("sb-abc123-n1", Some(&run)));
        assert!(is_run_netns("sb-abc123-sw", Some(&run)));
        assert!(!is_run_netns("sb-abc1234-n1", Some(&run)));
        assert!(!is_run_netns("sb-other-n1", Some(&run)));
        assert!(is_run_netns("sb-other-n1", None));
        assert!(!is_run_netns("sb-", None));
        assert!(!is_run_netns("sb-abc-", None));
        assert!(!is_run_netns("docker-ns", None));
        assert!(!is_run_netns("sb-Upper-n1", None));
    }
}
