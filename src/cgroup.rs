//! cgroup v2: one cgroup per node, for pausing (`cgroup.freeze`) and killing
//! (`cgroup.kill`) everything a node started, and for finding leftovers by name.
//!
//! Layout: `<cgroup2 mount>/splitbrain/<run id>/<node>`. The mount point is read from
//! `/proc/self/mountinfo` (hybrid systems mount cgroup2 at `/sys/fs/cgroup/unified`). No
//! controller is enabled, so the "no internal processes" rule never gets in the way.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Directory under the cgroup2 root that holds all runs.
pub const ROOT_NAME: &str = "splitbrain";

/// How long freeze, thaw and kill may take before they count as failed.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 filesystem is mounted (see /proc/self/mountinfo)")]
    NotMounted,
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("cgroup {path}: {what} not reached within {timeout:?}")]
    Timeout {
        path: PathBuf,
        what: &'static str,
        timeout: Duration,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where cgroup2 is mounted, from `/proc/self/mountinfo`.
pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io_error(Path::new("/proc/self/mountinfo")))?;
    find_cgroup2_mount(&mountinfo).ok_or(CgroupError::NotMounted)
}

/// Parses mountinfo text: `id parent maj:min root mountpoint opts [optional...] - fstype src
/// superopts`. Mount points escape space, tab, newline and backslash as octal.
pub fn find_cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        before
            .split_whitespace()
            .nth(4)
            .map(|p| PathBuf::from(unescape_octal(p)))
    })
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let code =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(code);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `<cgroup2>/splitbrain`: the parent of every run's cgroups.
pub fn harness_root() -> Result<PathBuf, CgroupError> {
    Ok(cgroup2_mount()?.join(ROOT_NAME))
}

/// The state flags from `cgroup.events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events {
    /// Some process lives in this cgroup or below.
    pub populated: bool,
    /// Every process in it is frozen.
    pub frozen: bool,
}

/// One cgroup v2 directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// A handle on an existing directory (nothing is checked).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Cgroup { path: path.into() }
    }

    /// Creates the cgroup (and missing parents). An existing one is reused.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, CgroupError> {
        let path = path.into();
        std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        Ok(Cgroup { path })
    }

    /// The cgroup of node `node` of run `run`, created if needed.
    pub fn for_node(run: &str, node: &str) -> Result<Self, CgroupError> {
        Self::create(harness_root()?.join(run).join(node))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.join("cgroup.procs").exists()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn write(&self, name: &str, value: &str) -> Result<(), CgroupError> {
        let path = self.file(name);
        std::fs::write(&path, value).map_err(io_error(&path))
    }

    /// Opens `cgroup.procs` for writing, so a child can move itself in (write `0`) between
    /// fork and exec without touching the filesystem by name.
    pub fn open_procs(&self) -> Result<OwnedFd, CgroupError> {
        let path = self.file("cgroup.procs");
        OpenOptions::new()
            .write(true)
            .open(&path)
            .map(OwnedFd::from)
            .map_err(io_error(&path))
    }

    /// Pids of the processes directly in this cgroup.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let path = self.file("cgroup.procs");
        let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    pub fn events(&self) -> Result<Events, CgroupError> {
        let path = self.file("cgroup.events");
        let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
        let mut events = Events::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("populated", v)) => events.populated = v.trim() == "1",
                Some(("frozen", v)) => events.frozen = v.trim() == "1",
                _ => {}
            }
        }
        Ok(events)
    }

    /// Whether this kernel offers `cgroup.freeze` and `cgroup.kill` here.
    pub fn supports_freeze_and_kill(&self) -> bool {
        self.file("cgroup.freeze").exists() && self.file("cgroup.kill").exists()
    }

    /// Freezes every process and waits until `cgroup.events` says `frozen 1`.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.write("cgroup.freeze", "1")?;
        self.wait_for("frozen", |e| e.frozen)
    }

    /// Thaws and waits until `cgroup.events` says `frozen 0`.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.write("cgroup.freeze", "0")?;
        self.wait_for("thawed", |e| !e.frozen)
    }

    /// SIGKILLs every process in the cgroup and below (frozen ones too) and waits until it is
    /// empty.
    pub fn kill(&self) -> Result<(), CgroupError> {
        self.write("cgroup.kill", "1")?;
        self.wait_for("empty", |e| !e.populated)
    }

    /// Polls `cgroup.events` until `done` holds; the states settle within microseconds to
    /// milliseconds, so a short sleep beats the machinery of inotify.
    pub fn wait_for(
        &self,
        what: &'static str,
        done: impl Fn(&Events) -> bool,
    ) -> Result<(), CgroupError> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let mut pause = Duration::from_micros(100);
        loop {
            if done(&self.events()?) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(CgroupError::Timeout {
                    path: self.path.clone(),
                    what,
                    timeout: SETTLE_TIMEOUT,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// Removes the (empty) cgroup directory; a missing one is fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        match std::fs::remove_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CgroupError::Io {
                path: self.path.clone(),
                source: e,
            }),
        }
    }
}

/// Thaws and kills everything under `path`, then removes the directories bottom-up. Returns
/// the cgroups removed. Used for teardown and for leftovers of crashed runs.
pub fn remove_tree(path: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let top = Cgroup::at(path);
    if !top.exists() {
        return Ok(Vec::new());
    }
    // A frozen cgroup is killed as well, but thawing first makes the kill's exit handling
    // run at once and never leaves anything paused if the kill fails.
    if top.supports_freeze_and_kill() {
        top.thaw()?;
        top.kill()?;
    }
    let mut removed = Vec::new();
    remove_dirs_bottom_up(path, &mut removed)?;
    Ok(removed)
}

fn remove_dirs_bottom_up(path: &Path, removed: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    for entry in std::fs::read_dir(path).map_err(io_error(path))? {
        let entry = entry.map_err(io_error(path))?;
        if entry.file_type().map_err(io_error(path))?.is_dir() {
            remove_dirs_bottom_up(&entry.path(), removed)?;
        }
    }
    Cgroup::at(path).remove()?;
    removed.push(path.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_in_hybrid_mountinfo() {
        let text = "\
30 23 0:26 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu
39 30 0:35 / /sys/fs/cgroup/unified rw,relatime shared:18 - cgroup2 cgroup2 rw
";
        assert_eq!(
            find_cgroup2_mount(text),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            find_cgroup2_mount("31 30 0:27 / /x rw - cgroup cgroup rw\n"),
            None
        );
        let escaped = "39 30 0:35 / /mnt/with\\040space rw - cgroup2 none rw\n";
        assert_eq!(
            find_cgroup2_mount(escaped),
            Some(PathBuf::from("/mnt/with space"))
        );
    }
}
