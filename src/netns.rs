//! Network namespaces: naming, entering, running commands inside, batched `ip` calls.
//!
//! Namespaces are the named kind that `ip netns` manages: a bind mount of a namespace file at
//! `/run/netns/NAME`, so that they outlive the process that made them and can be found by
//! name after a crash.
//!
//! A network namespace belongs to a *thread*. [`enter`] moves the calling thread, so call it
//! only on a thread you own ([`spawn_in`] makes one); never on a shared async worker. For
//! async code inside a namespace, build a dedicated runtime whose threads all enter it
//! ([`runtime_in`]).
//!
//! Kernel state is changed in batches: one `ip -batch` process per namespace, several
//! namespaces in parallel ([`ip_batches`]), because one process per rule costs milliseconds.

use nix::sched::CloneFlags;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// Errors of namespace operations.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace {name}: {source}")]
    Open { name: String, source: io::Error },
    #[error("entering network namespace {name}: {source}")]
    Enter { name: String, source: nix::Error },
    #[error("running {program}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("{what} failed ({status}): {stderr}")]
    CommandFailed {
        what: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("setting {key} in namespace {name}: {source}")]
    Sysctl {
        name: String,
        key: String,
        source: io::Error,
    },
    #[error("building the runtime for namespace {name}: {source}")]
    Runtime { name: String, source: io::Error },
    #[error("runtime threads of namespace {name} did not enter it")]
    RuntimeNotInNamespace { name: String },
    #[error("{0:?} is not a namespace name of ours: expected 1 to 64 of [A-Za-z0-9_.-], not `.` or `..`")]
    InvalidName(String),
    #[error("`ip -batch` line {0:?} holds a line break: refused")]
    InvalidBatchLine(String),
}

/// Whether `name` is a plain namespace (or path component) name: 1 to 64 of
/// `[A-Za-z0-9_.-]`, not `.` or `..`. Names that go into an `ip -batch` script or a path are
/// checked with it, so a name cannot carry a second command or leave its directory.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The file that names namespace `name`.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Whether a named namespace `name` exists.
pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// Names of all named network namespaces (empty when none was ever made).
pub fn list() -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        if let Some(name) = entry?.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Opens namespace `name`; the descriptor keeps it usable for `setns` even if it is deleted.
pub fn open(name: &str) -> Result<OwnedFd, NetnsError> {
    File::open(path(name))
        .map(OwnedFd::from)
        .map_err(|source| NetnsError::Open {
            name: name.to_owned(),
            source,
        })
}

/// Moves the calling thread into namespace `name`. Only on a thread you own.
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let fd = open(name)?;
    enter_fd(name, &fd)
}

/// Moves the calling thread into the namespace behind `fd` (`name` is for messages).
pub fn enter_fd(name: &str, fd: &impl AsFd) -> Result<(), NetnsError> {
    nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
        name: name.to_owned(),
        source,
    })
}

/// Runs `work` on a new thread inside namespace `name`.
pub fn spawn_in<F, R>(name: &str, work: F) -> Result<std::thread::JoinHandle<R>, NetnsError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    // Open here, so a missing namespace is an error of the caller, not a panic in the thread.
    let fd = open(name)?;
    let owned_name = name.to_owned();
    std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || {
            if let Err(e) = enter_fd(&owned_name, &fd) {
                // The thread is already running; refusing to run `work` in the wrong
                // namespace is the only safe reaction.
                panic!("{e}");
            }
            drop(fd);
            work()
        })
        .map_err(|source| NetnsError::Spawn {
            program: "thread".into(),
            source,
        })
}

/// The identity (device, inode) of a namespace file, to compare namespaces.
pub fn identity(path: &Path) -> io::Result<(u64, u64)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

/// A `Command` whose child enters namespace `name` before `exec` (no `ip netns exec`, no
/// extra process). The namespace is opened now.
pub fn command(name: &str, program: impl AsRef<std::ffi::OsStr>) -> Result<Command, NetnsError> {
    let fd = open(name)?;
    let mut cmd = Command::new(program);
    // SAFETY: setns is async-signal-safe and the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
        });
    }
    Ok(cmd)
}

/// Runs `program args` inside namespace `name` and returns its output; a non-zero exit is an
/// error carrying its stderr.
pub fn run(name: &str, program: &str, args: &[&str]) -> Result<std::process::Output, NetnsError> {
    let mut cmd = command(name, program)?;
    cmd.args(args).stdin(Stdio::null());
    let output = cmd.output().map_err(|source| NetnsError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    if !output.status.success() {
        return Err(NetnsError::CommandFailed {
            what: format!("{program} {} in {name}", args.join(" ")),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output)
}

/// One `ip -batch` job: the namespace it runs in (`None`: the namespace of the caller, used
/// only for `netns add/del` and links created straight into named namespaces) and its lines.
#[derive(Debug, Clone, Default)]
pub struct IpBatch {
    pub netns: Option<String>,
    pub lines: Vec<String>,
    /// Keep going after a failing line (`ip -force`); errors are still reported.
    pub force: bool,
}

impl IpBatch {
    pub fn new(netns: Option<&str>) -> Self {
        IpBatch {
            netns: netns.map(str::to_owned),
            lines: Vec::new(),
            force: false,
        }
    }

    /// Appends one line (an `ip` command without the leading `ip`).
    pub fn line(&mut self, line: impl Into<String>) -> &mut Self {
        self.lines.push(line.into());
        self
    }
}

/// Runs one `ip -batch` job.
pub fn ip_batch(batch: &IpBatch) -> Result<(), NetnsError> {
    ip_batches(std::slice::from_ref(batch))
}

/// Runs several `ip -batch` jobs in parallel (one process each) and waits for all of them.
/// Every job runs to its end; the first failure is returned.
pub fn ip_batches(batches: &[IpBatch]) -> Result<(), NetnsError> {
    let mut running = Vec::with_capacity(batches.len());
    let mut first_error = None;
    for batch in batches {
        if batch.lines.is_empty() {
            continue;
        }
        match spawn_ip_batch(batch) {
            Ok(child) => running.push((batch, child)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for (batch, child) in running {
        let result = child
            .wait_with_output()
            .map_err(|source| NetnsError::Spawn {
                program: "ip".into(),
                source,
            })
            .and_then(|output| {
                if output.status.success() {
                    Ok(())
                } else {
                    Err(NetnsError::CommandFailed {
                        what: format!(
                            "ip -batch in {}",
                            batch
                                .netns
                                .as_deref()
                                .unwrap_or("the controller's namespace")
                        ),
                        status: output.status,
                        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                    })
                }
            });
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn spawn_ip_batch(batch: &IpBatch) -> Result<std::process::Child, NetnsError> {
    let spawn_error = |source| NetnsError::Spawn {
        program: "ip".into(),
        source,
    };
    // Entering by setns before exec rather than `ip -n`: `ip -n` also makes a private mount
    // namespace and remounts /sys, which address, link and route commands do not need and
    // which costs milliseconds per call.
    let mut cmd = match &batch.netns {
        Some(ns) => command(ns, "ip")?,
        None => Command::new("ip"),
    };
    if batch.force {
        cmd.arg("-force");
    }
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // One line is one command: a line break inside a line would smuggle in another.
    if let Some(bad) = batch.lines.iter().find(|l| l.contains(['\n', '\r'])) {
        return Err(NetnsError::InvalidBatchLine(bad.clone()));
    }
    let mut child = cmd.spawn().map_err(spawn_error)?;
    let mut script = batch.lines.join("\n");
    script.push('\n');
    let mut stdin = child.stdin.take().expect("stdin was piped");
    // A write error means ip exited early; its status and stderr tell why.
    let _ = stdin.write_all(script.as_bytes());
    drop(stdin);
    Ok(child)
}

/// Writes `value` to the sysctl `key` (dotted, e.g. `net.ipv6.conf.all.disable_ipv6`) inside
/// each of the namespaces, on one short-lived thread. `/proc/sys/net` shows the namespace
/// of the thread that opens it.
pub fn set_sysctl(names: &[String], key: &str, value: &str) -> Result<(), NetnsError> {
    let mut fds = Vec::with_capacity(names.len());
    for name in names {
        fds.push((name.clone(), open(name)?));
    }
    let key = key.to_owned();
    let value = value.to_owned();
    std::thread::spawn(move || -> Result<(), NetnsError> {
        let proc_path = Path::new("/proc/sys").join(key.replace('.', "/"));
        for (name, fd) in &fds {
            enter_fd(name, fd)?;
            std::fs::write(&proc_path, &value).map_err(|source| NetnsError::Sysctl {
                name: name.clone(),
                key: key.clone(),
                source,
            })?;
        }
        Ok(())
    })
    .join()
    .expect("sysctl thread does not panic")
}

/// Pids of all processes whose network namespace is `name` (what `ip netns pids` prints).
pub fn pids(name: &str) -> io::Result<Vec<i32>> {
    let target = identity(&path(name))?;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // Processes come and go while we scan; a vanished one simply is not in the namespace.
        if identity(&entry.path().join("ns/net")).is_ok_and(|id| id == target) {
            found.push(pid);
        }
    }
    Ok(found)
}

/// Deletes named namespaces (one `ip` process). Missing ones are not an error; a name that
/// is not [`is_valid_name`] is, and nothing is deleted then.
pub fn delete(names: &[String]) -> Result<(), NetnsError> {
    if let Some(bad) = names.iter().find(|name| !is_valid_name(name)) {
        return Err(NetnsError::InvalidName(bad.clone()));
    }
    let mut batch = IpBatch::new(None);
    batch.force = true;
    for name in names.iter().filter(|name| exists(name)) {
        batch.line(format!("netns del {name}"));
    }
    ip_batch(&batch)
}

/// A multi-threaded tokio runtime whose every thread (workers and blocking pool) lives in
/// namespace `name`. Sockets made inside tasks spawned on it belong to that namespace.
///
/// The future given to `Runtime::block_on` runs on the *calling* thread, outside the
/// namespace: open connections inside `runtime.spawn(...)` tasks, not in `block_on` directly.
pub fn runtime_in(
    name: &str,
    worker_threads: usize,
) -> Result<tokio::runtime::Runtime, NetnsError> {
    let fd = Arc::new(open(name)?);
    let thread_fd = Arc::clone(&fd);
    let thread_ns = name.to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads.max(1))
        .thread_name(format!("{name}-client"))
        .enable_all()
        .on_thread_start(move || {
            if let Err(e) = enter_fd(&thread_ns, &*thread_fd) {
                // A thread outside the namespace would send client traffic from the wrong
                // place; a loud failure is better than a silently wrong run.
                panic!("{e}");
            }
        })
        .build()
        .map_err(|source| NetnsError::Runtime {
            name: name.to_owned(),
            source,
        })?;
    // Prove it: a task reports the namespace of the thread it ran on.
    let expected = identity(&path(name)).map_err(|source| NetnsError::Open {
        name: name.to_owned(),
        source,
    })?;
    let seen = runtime
        .block_on(runtime.spawn(async { identity(Path::new("/proc/thread-self/ns/net")) }))
        .ok()
        .and_then(Result::ok);
    if seen != Some(expected) {
        return Err(NetnsError::RuntimeNotInNamespace {
            name: name.to_owned(),
        });
    }
    Ok(runtime)
}

/// Runs `program args` once per job, inside the job's namespace, with the job's lines as
/// standard input — all jobs at once. Returns the failures (namespace, what the program
/// said), after every program has finished. For scripted tools such as `nft -f -` and
/// `iptables-restore`, where one process per namespace applies a whole batch.
pub fn feed_parallel(
    program: &str,
    args: &[&str],
    jobs: &[(String, Vec<String>)],
) -> Result<Vec<(String, String)>, NetnsError> {
    let mut running = Vec::with_capacity(jobs.len());
    for (ns, lines) in jobs {
        let child = command(ns, program)?
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map(|mut child| {
                let mut script = lines.join("\n");
                script.push('\n');
                let mut stdin = child.stdin.take().expect("stdin was piped");
                // A write error means the program exited early; its status says why.
                let _ = stdin.write_all(script.as_bytes());
                child
            });
        running.push((ns.clone(), child));
    }
    let mut failures = Vec::new();
    for (ns, child) in running {
        match child.and_then(std::process::Child::wait_with_output) {
            Ok(out) if out.status.success() => {}
            Ok(out) => failures.push((ns, String::from_utf8_lossy(&out.stderr).trim().to_owned())),
            Err(e) => failures.push((ns, format!("cannot run {program}: {e}"))),
        }
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_carry_a_command_or_a_path_are_refused() {
        assert!(is_valid_name("sb-abc123-n1"));
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "sb-x\nnetns add evil",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
        // Refused before any `ip` runs: nothing is created or deleted.
        let err = delete(&["sb-x\nnetns add sb-x-injected".to_owned()]).unwrap_err();
        assert!(matches!(err, NetnsError::InvalidName(_)), "{err}");
        let mut batch = IpBatch::new(None);
        batch.line("netns del a\nnetns add b");
        let err = ip_batch(&batch).unwrap_err();
        assert!(matches!(err, NetnsError::InvalidBatchLine(_)), "{err}");
    }
}
