//! Supervision of remote nodes by cgroup v2, where the host has it and the SSH user is root:
//! each node runs in a cgroup of the run's own, `<cgroup2>/splitbrain/<run>/<node>` (the
//! layout of the local [`crate::cgroup`]), so a pause freezes (`cgroup.freeze`) and a kill
//! kills (`cgroup.kill`, or every pid in `cgroup.procs` where the kernel lacks it) the
//! node's whole process tree, not just its first pid.
//!
//! The command lines are built here; [`super::hosts::RemoteHosts`] runs them.

use super::quote::{self, QuoteError};
use crate::cleanup::RunId;

/// How a host's nodes are paused, killed and stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervision {
    /// A cgroup per node: `cgroup.freeze`, `cgroup.kill`.
    Cgroup,
    /// Signals to the node's pid: SIGSTOP/SIGCONT, SIGKILL.
    Signals,
}

impl Supervision {
    pub fn describe(self) -> &'static str {
        match self {
            Supervision::Cgroup => "cgroup v2",
            Supervision::Signals => "signals",
        }
    }
}

/// The run's cgroup on a host whose cgroup2 is mounted at `mount`.
pub fn run_cgroup(mount: &str, run: &RunId) -> String {
    format!(
        "{}/{}/{}",
        mount.trim_end_matches('/'),
        crate::cgroup::ROOT_NAME,
        run.as_str()
    )
}

/// Whether `path` is `run`'s cgroup directory (cleanup removes nothing else).
pub fn is_run_cgroup(path: &str, run: &RunId) -> bool {
    path.starts_with('/')
        && !path.split('/').any(|c| c == "..")
        && path.ends_with(&format!("/{}/{}", crate::cgroup::ROOT_NAME, run.as_str()))
}

/// What a cgroup said after an action: `cgroup.events`' `frozen`, how many pids
/// `cgroup.procs` still lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupReading {
    pub frozen: Option<bool>,
    pub procs: Option<usize>,
}

impl CgroupReading {
    /// Read from the `frozen N` and `procs N` lines of an answer.
    pub fn parse(out: &str) -> CgroupReading {
        let mut reading = CgroupReading::default();
        for line in out.lines() {
            match line.trim().split_once(' ') {
                Some(("frozen", n)) => reading.frozen = Some(n.trim() == "1"),
                Some(("procs", n)) => reading.procs = n.trim().parse().ok(),
                _ => {}
            }
        }
        reading
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(frozen) = self.frozen {
            parts.push(format!("cgroup.events frozen {}", u8::from(frozen)));
        }
        match self.procs {
            Some(0) => parts.push("cgroup.procs empty".to_owned()),
            Some(n) => parts.push(format!("cgroup.procs lists {n}")),
            None => {}
        }
        parts.join(", ")
    }
}

/// The words that go before a node's command (after `setsid`): a shell that moves itself
/// into `cgroup`, then becomes the command (same pid, same start time).
pub fn enter_words(cgroup: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        "echo $$ >\"$0/cgroup.procs\" && exec \"$@\"".into(),
        cgroup.to_owned(),
    ]
}

/// Makes the node's cgroup (the run's, recorded by the caller first); fails when the kernel
/// has no `cgroup.freeze` (before 5.2).
pub fn make_script(cgroup: &str) -> Result<String, QuoteError> {
    let q = quote::quote(cgroup)?;
    Ok(format!(
        "mkdir -p {q} && {{ [ -e {q}/cgroup.freeze ] || {{ echo 'no cgroup.freeze in '{q}' (a kernel before 5.2)' >&2; exit 1; }}; }}"
    ))
}

/// Prints `frozen N` from `cgroup.events` of the cgroup in `$cg`.
const FROZEN: &str = "echo frozen $(sed -n 's/^frozen //p' \"$cg/cgroup.events\" 2>/dev/null)";

/// Prints `procs N`, the pids in `cgroup.procs` of the cgroup in `$cg`.
const PROCS: &str = "echo procs $(cat \"$cg/cgroup.procs\" 2>/dev/null | wc -l)";

/// Kills every process of the cgroup in `$cg` (`cgroup.kill`, else each pid of
/// `cgroup.procs`, again until none is left) and waits until it is empty (5 s at most).
const KILL_ALL: &str = "if [ -e \"$cg/cgroup.kill\" ]; then echo 1 >\"$cg/cgroup.kill\"; fi; \
    i=0; while [ $i -lt 100 ] && [ -n \"$(cat \"$cg/cgroup.procs\" 2>/dev/null)\" ]; do \
    [ -e \"$cg/cgroup.kill\" ] || for p in $(cat \"$cg/cgroup.procs\" 2>/dev/null); do kill -KILL $p 2>/dev/null; done; \
    sleep 0.05; i=$((i+1)); done";

fn with_cgroup(cgroup: &str, body: &str) -> Result<String, QuoteError> {
    Ok(format!("cg={}; {body}", quote::quote(cgroup)?))
}

/// Freezes the cgroup, waits until `cgroup.events` says `frozen 1` (2 s at most), prints
/// it, then `state` (a line printing the node's process state).
pub fn freeze_script(cgroup: &str, state: &str) -> Result<String, QuoteError> {
    with_cgroup(
        cgroup,
        &format!(
            "echo 1 >\"$cg/cgroup.freeze\" && i=0; while [ $i -lt 400 ] && ! grep -qx 'frozen 1' \"$cg/cgroup.events\"; do sleep 0.005; i=$((i+1)); done; {FROZEN}; {state}"
        ),
    )
}

/// Thaws the cgroup and waits until `frozen 0`; prints it and the state.
pub fn thaw_script(cgroup: &str, state: &str) -> Result<String, QuoteError> {
    with_cgroup(
        cgroup,
        &format!(
            "echo 0 >\"$cg/cgroup.freeze\" && i=0; while [ $i -lt 400 ] && ! grep -qx 'frozen 0' \"$cg/cgroup.events\"; do sleep 0.005; i=$((i+1)); done; {FROZEN}; {state}"
        ),
    )
}

/// Kills the whole cgroup and waits until it is empty; prints `procs N` and the state.
pub fn kill_script(cgroup: &str, state: &str) -> Result<String, QuoteError> {
    with_cgroup(cgroup, &format!("{KILL_ALL}; {PROCS}; {state}"))
}

/// Stops the node: thawed, SIGTERM to `pid` when `tenths` > 0 and it waited up to `tenths`
/// tenths of a second for `state` to say `gone`, then the whole cgroup killed and its
/// directory removed; prints `procs N` and the state.
pub fn stop_script(cgroup: &str, pid: u32, tenths: u64, state: &str) -> Result<String, QuoteError> {
    with_cgroup(
        cgroup,
        &format!(
            "[ -e \"$cg/cgroup.freeze\" ] && echo 0 >\"$cg/cgroup.freeze\"; \
             if [ {tenths} -gt 0 ] && [ \"$({state})\" != gone ]; then kill -TERM {pid} 2>/dev/null; \
             i=0; while [ $i -lt {tenths} ] && [ \"$({state})\" != gone ]; do sleep 0.1; i=$((i+1)); done; fi; \
             {KILL_ALL}; {PROCS}; rmdir \"$cg\" 2>/dev/null; {state}"
        ),
    )
}

/// Removes the run's cgroup on a host: every node cgroup below it killed and removed, then
/// it; says `removed` when it was there. Nothing outside `run_cgroup` is touched.
pub fn remove_run_script(run_cgroup: &str) -> Result<String, QuoteError> {
    let q = quote::quote(run_cgroup)?;
    Ok(format!(
        "if [ -d {q} ]; then for cg in {q}/*/; do [ -e \"$cg/cgroup.procs\" ] || continue; \
         [ -e \"$cg/cgroup.freeze\" ] && echo 0 >\"$cg/cgroup.freeze\"; {KILL_ALL}; rmdir \"$cg\"; done; \
         rmdir {q} && echo removed; fi"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_runs_own_cgroup_is_its_own() {
        let run = RunId::parse("abc123").unwrap();
        let own = run_cgroup("/sys/fs/cgroup/unified/", &run);
        assert_eq!(own, "/sys/fs/cgroup/unified/splitbrain/abc123");
        assert!(is_run_cgroup(&own, &run));
        assert!(!is_run_cgroup("/sys/fs/cgroup/splitbrain", &run));
        assert!(!is_run_cgroup("/sys/fs/cgroup/splitbrain/other", &run));
        assert!(!is_run_cgroup("/x/../splitbrain/abc123", &run));
        assert!(!is_run_cgroup("splitbrain/abc123", &run));
    }

    #[test]
    fn readings_are_parsed_and_described() {
        let r = CgroupReading::parse("frozen 1\nS\n");
        assert_eq!(r.frozen, Some(true));
        assert_eq!(r.describe(), "cgroup.events frozen 1");
        let r = CgroupReading::parse("procs 0\ngone\n");
        assert_eq!(r.describe(), "cgroup.procs empty");
    }

    /// The scripts against this machine's cgroup2 (a cgroup of the test's own, removed):
    /// a process tree entered, frozen, thawed and killed whole.
    #[test]
    fn a_process_tree_in_a_cgroup_is_frozen_and_killed_whole() {
        let Ok(mount) = crate::cgroup::cgroup2_mount() else {
            eprintln!("skipped: no cgroup2");
            return;
        };
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let run = RunId::parse(&format!("t{:05x}", std::process::id() & 0xfffff)).unwrap();
        let run_cg = run_cgroup(&mount.display().to_string(), &run);
        let cg = format!("{run_cg}/n1");
        let sh = |line: &str| {
            let out = std::process::Command::new("sh")
                .args(["-c", line])
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        // Whatever happens below, the test's cgroup and processes go.
        struct Remove(String);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::process::Command::new("sh")
                    .args(["-c", &remove_run_script(&self.0).unwrap()])
                    .output();
            }
        }
        let _remove = Remove(run_cg.clone());
        let (ok, out) = sh(&make_script(&cg).unwrap());
        assert!(ok, "{out}");
        // A parent that forks a child: both in the cgroup.
        let mut words = enter_words(&cg);
        words.extend(["sh".into(), "-c".into(), "sleep 60 & sleep 60".into()]);
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let (ok, out) = sh(&format!(
            "{{ setsid {} </dev/null >/dev/null 2>&1 & }}; sleep 0.3; cat {cg}/cgroup.procs | wc -l",
            quote::join(&refs).unwrap()
        ));
        assert!(ok, "{out}");
        let procs: usize = out.trim().parse().unwrap();
        assert!(procs >= 2, "parent and children in the cgroup: {out}");
        let (_, out) = sh(&freeze_script(&cg, "echo S").unwrap());
        assert_eq!(CgroupReading::parse(&out).frozen, Some(true), "{out}");
        let (_, out) = sh(&thaw_script(&cg, "echo S").unwrap());
        assert_eq!(CgroupReading::parse(&out).frozen, Some(false), "{out}");
        let (_, out) = sh(&freeze_script(&cg, "echo S").unwrap());
        assert_eq!(CgroupReading::parse(&out).frozen, Some(true), "{out}");
        // Killed frozen: every process of the tree.
        let (_, out) = sh(&kill_script(&cg, "echo gone").unwrap());
        assert_eq!(CgroupReading::parse(&out).procs, Some(0), "{out}");
        let (ok, out) = sh(&remove_run_script(&run_cg).unwrap());
        assert!(ok && out.contains("removed"), "{out}");
        assert!(!std::path::Path::new(&run_cg).exists());
    }
}
