//! Removal of what a run made — only what a run of ours *recorded* making, and only once
//! that run's controller is gone.
//!
//! Ownership is proven, not guessed from a name: every run keeps a record under
//! [`state_dir`] (`/run/splitbrain/<run id>/`): `controller` names the process that runs it
//! (pid and start time, so a reused pid does not count), and `resources` lists, one per
//! line, each namespace and cgroup the run makes — written *before* the thing is made, so
//! a crash at any moment leaves nothing unrecorded. A run that ends cleanly removes its
//! record. [`cleanup`] reads the records, leaves alone every run whose controller still
//! lives, and for the others walks the [`steps`] over what the record names, then removes
//! the record. A namespace called `sb-…` that no record names is never touched, whatever
//! its name looks like.
//!
//! Everything here is idempotent and best effort: a failing step is reported and the next
//! one still runs.

use crate::cgroup;
use crate::netns;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rand::Rng;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Prefix of every name (namespaces, cgroups) the harness creates.
pub const NAME_PREFIX: &str = "sb-";

/// A run's short id; it is part of every name the run creates (`sb-<id>-...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    /// A fresh random id of 6 hex characters.
    pub fn random() -> Self {
        RunId(format!(
            "{:06x}",
            rand::thread_rng().gen_range(0..0x100_0000u32)
        ))
    }

    /// Validates an id given by the user. Ids are short and plain because they end up in
    /// interface-adjacent names and in cgroup paths.
    pub fn parse(id: &str) -> Result<Self, InvalidRunId> {
        let ok = (1..=12).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(RunId(id.to_owned()))
        } else {
            Err(InvalidRunId(id.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Prefix shared by all namespaces of this run: `sb-<id>-`.
    pub fn netns_prefix(&self) -> String {
        format!("{NAME_PREFIX}{}-", self.0)
    }

    /// The switch namespace's name.
    pub fn switch_netns(&self) -> String {
        format!("{}sw", self.netns_prefix())
    }

    /// Node `name`'s namespace name (`sb-<id>-n1`).
    pub fn node_netns(&self, node: &str) -> String {
        format!("{}{node}", self.netns_prefix())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A run id that is not one.
#[derive(Debug, thiserror::Error)]
#[error("invalid run id {0:?}: use 1 to 12 characters from [a-z0-9]")]
pub struct InvalidRunId(pub String);

/// Where run records live, unless [`STATE_DIR_ENV`] names another directory.
pub const STATE_DIR: &str = "/run/splitbrain";
/// Environment variable naming another directory for run records (tests, several
/// independent harness installations on one machine).
pub const STATE_DIR_ENV: &str = "SPLITBRAIN_STATE_DIR";
/// The record's file naming the run's controller process.
const CONTROLLER_FILE: &str = "controller";
/// The record's list of resources, one per line.
const RESOURCES_FILE: &str = "resources";

/// The directory holding one record per run.
pub fn state_dir() -> PathBuf {
    std::env::var_os(STATE_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(STATE_DIR))
}

/// A process identified so that a reused pid is not mistaken for it: its pid and its start
/// time (clock ticks after boot, field 22 of `/proc/<pid>/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcessIdentity {
    /// The identity of the live process `pid`, if there is one (a zombie is not live).
    pub fn of(pid: i32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: the fields follow the last `)`.
        let (_, rest) = stat.rsplit_once(") ")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state); the start time is field 22.
        if fields.first() == Some(&"Z") {
            return None;
        }
        let start_time = fields.get(22 - 3)?.parse().ok()?;
        Some(ProcessIdentity { pid, start_time })
    }

    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id() as i32;
        Self::of(pid).unwrap_or(ProcessIdentity { pid, start_time: 0 })
    }

    /// Whether the very process this identity names still runs.
    pub fn is_alive(&self) -> bool {
        Self::of(self.pid) == Some(*self)
    }

    fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let start_time = words.next()?.parse().ok()?;
        words
            .next()
            .is_none()
            .then_some(ProcessIdentity { pid, start_time })
    }
}

/// One thing a run makes, as its record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A named network namespace (`/run/netns/<name>`).
    Netns(String),
    /// A cgroup, as a path below the harness' cgroup root whose first component is the
    /// run id (`<run>` or `<run>/<node>`).
    Cgroup(String),
    /// A disk layer's FUSE mount (an absolute path: a node's data directory).
    Mount(PathBuf),
    /// Something made on a remote host (a directory, a process, a rule table), as one
    /// line of the remote module's own typed record (`crate::remote::record`). This
    /// module stores it and hands it to the remote cleanup step, which parses and checks
    /// it; nothing here acts on it.
    Remote(String),
}

impl Resource {
    fn to_line(&self) -> String {
        match self {
            Resource::Netns(name) => format!("netns {name}"),
            Resource::Cgroup(path) => format!("cgroup {path}"),
            Resource::Mount(path) => format!("mount {}", path.display()),
            Resource::Remote(line) => format!("remote {line}"),
        }
    }

    /// Parses one record line; every name is validated, so nothing a record says can reach
    /// a command line or a path outside what a run may own.
    fn parse(line: &str, run: &RunId) -> Result<Self, String> {
        match line.split_once(' ') {
            Some(("netns", name)) if netns::is_valid_name(name) => {
                Ok(Resource::Netns(name.to_owned()))
            }
            Some(("cgroup", path)) => {
                let mut parts = path.split('/');
                let first_is_run = parts.next() == Some(run.as_str());
                if first_is_run && parts.all(netns::is_valid_name) {
                    Ok(Resource::Cgroup(path.to_owned()))
                } else {
                    Err(format!("cgroup {path:?} is not below the run's own cgroup"))
                }
            }
            Some(("mount", path))
                if path.starts_with('/')
                    && !Path::new(path)
                        .components()
                        .any(|c| matches!(c, std::path::Component::ParentDir)) =>
            {
                Ok(Resource::Mount(PathBuf::from(path)))
            }
            Some(("remote", rest)) if !rest.is_empty() => Ok(Resource::Remote(rest.to_owned())),
            _ => Err(format!("unreadable line {line:?}")),
        }
    }

    /// Whether it still exists.
    fn exists(&self) -> bool {
        match self {
            Resource::Netns(name) => netns::exists(name),
            Resource::Cgroup(path) => cgroup::harness_root()
                .is_ok_and(|root| cgroup::Cgroup::at(root.join(path)).exists()),
            Resource::Mount(path) => crate::disk::is_our_mount(path),
            // Not visible from here: the remote step reports what it could not remove.
            Resource::Remote(_) => false,
        }
    }
}

/// What a run recorded: its controller and everything it made.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run: RunId,
    /// `None` when the run died before naming its controller (it then made nothing).
    pub controller: Option<ProcessIdentity>,
    pub resources: Vec<Resource>,
    /// Lines of the record that could not be used (reported, never acted on).
    pub unreadable: Vec<String>,
}

impl RunRecord {
    fn dir_of(run: &RunId) -> PathBuf {
        state_dir().join(run.as_str())
    }

    /// The record of `run`, if there is one.
    pub fn load(run: &RunId) -> io::Result<Option<RunRecord>> {
        Self::load_in(&state_dir(), run)
    }

    fn load_in(root: &Path, run: &RunId) -> io::Result<Option<RunRecord>> {
        let dir = root.join(run.as_str());
        if !dir.is_dir() {
            return Ok(None);
        }
        let controller = match std::fs::read_to_string(dir.join(CONTROLLER_FILE)) {
            Ok(text) => ProcessIdentity::parse(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let text = match std::fs::read_to_string(dir.join(RESOURCES_FILE)) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut record = RunRecord {
            run: run.clone(),
            controller,
            resources: Vec::new(),
            unreadable: Vec::new(),
        };
        for line in text.lines().filter(|l| !l.is_empty()) {
            match Resource::parse(line, run) {
                Ok(r) if !record.resources.contains(&r) => record.resources.push(r),
                Ok(_) => {}
                Err(e) => record.unreadable.push(e),
            }
        }
        Ok(Some(record))
    }

    /// Every record (directories not named like a run id are not ours and are skipped).
    pub fn list() -> io::Result<Vec<RunRecord>> {
        let entries = match std::fs::read_dir(state_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut records = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(run) = entry
                .file_name()
                .to_str()
                .and_then(|n| RunId::parse(n).ok())
            else {
                continue;
            };
            if let Some(record) = Self::load(&run)? {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.run.as_str().cmp(b.run.as_str()));
        Ok(records)
    }

    /// Whether the run's controller is gone (or is this very process, cleaning up after
    /// itself): only then may its resources be removed.
    pub fn may_be_removed(&self) -> bool {
        match self.controller {
            None => true,
            Some(c) => c == ProcessIdentity::current() || !c.is_alive(),
        }
    }

    /// The namespaces the run made.
    pub fn namespaces(&self) -> Vec<String> {
        self.resources
            .iter()
            .filter_map(|r| match r {
                Resource::Netns(name) => Some(name.clone()),
                Resource::Cgroup(_) | Resource::Mount(_) | Resource::Remote(_) => None,
            })
            .collect()
    }

    /// The cgroups the run made, outermost first.
    fn cgroups(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .resources
            .iter()
            .filter_map(|r| match r {
                Resource::Cgroup(path) => Some(path.clone()),
                Resource::Netns(_) | Resource::Mount(_) | Resource::Remote(_) => None,
            })
            .collect();
        paths.sort_by_key(|p| p.matches('/').count());
        paths
    }

    fn names_netns(&self, name: &str) -> bool {
        self.resources
            .iter()
            .any(|r| matches!(r, Resource::Netns(n) if n == name))
    }
}

/// Serialises record writes within this process (one run's topology and nodes may record
/// from several threads).
static RECORD_LOCK: Mutex<()> = Mutex::new(());

/// Records that `run` is about to make `resources`: call it *before* making them. The first
/// call of a run creates its record with this process as the controller; a record of the
/// same run id held by another process is an error (nothing may be made then).
pub fn record(run: &RunId, resources: &[Resource]) -> io::Result<()> {
    record_in(&state_dir(), run, resources)
}

fn record_in(root: &Path, run: &RunId, resources: &[Resource]) -> io::Result<()> {
    let _lock = RECORD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(root)?;
    let dir = root.join(run.as_str());
    let me = ProcessIdentity::current();
    match std::fs::DirBuilder::new().mode(0o755).create(&dir) {
        Ok(()) => {
            // The controller is named before any resource line can exist.
            write_file(
                &dir.join(CONTROLLER_FILE),
                format!("{} {}\n", me.pid, me.start_time).as_bytes(),
            )?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(dir.join(CONTROLLER_FILE)).unwrap_or_default();
            if ProcessIdentity::parse(&text) != Some(me) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} belongs to another controller ({}): a leftover of a crashed run? \
                         try `splitbrain cleanup --run {run}`",
                        dir.display(),
                        text.trim()
                    ),
                ));
            }
        }
        Err(e) => return Err(e),
    }
    let mut lines = String::new();
    for resource in resources {
        lines.push_str(&resource.to_line());
        lines.push('\n');
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(dir.join(RESOURCES_FILE))?;
    file.write_all(lines.as_bytes())?;
    file.sync_data()
}

/// Records a cgroup before it is made, if it lies below a run's cgroup
/// (`<cgroup2>/splitbrain/<run>/...`): the run's own directory and this one. Cgroups
/// elsewhere belong to no run and are not recorded.
pub fn record_cgroup(path: &Path) -> io::Result<()> {
    let Ok(root) = cgroup::harness_root() else {
        return Ok(());
    };
    let Ok(relative) = path.strip_prefix(&root) else {
        return Ok(());
    };
    let Some(relative) = relative.to_str() else {
        return Ok(());
    };
    let Some(run) = relative
        .split('/')
        .next()
        .and_then(|first| RunId::parse(first).ok())
    else {
        return Ok(());
    };
    let mut resources = vec![Resource::Cgroup(run.as_str().to_owned())];
    if relative != run.as_str() {
        resources.push(Resource::Cgroup(relative.to_owned()));
    }
    record(&run, &resources)
}

/// Removes the record of `run` once nothing it names exists any more (after a clean end).
/// Returns whether the record is gone.
pub fn forget_if_done(run: &RunId) -> bool {
    let _lock = RECORD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    match RunRecord::load(run) {
        Ok(None) => true,
        Ok(Some(record)) if record.resources.iter().all(|r| !r.exists()) => {
            std::fs::remove_dir_all(RunRecord::dir_of(run)).is_ok()
        }
        _ => false,
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// What one cleanup did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// One human-readable line per thing removed.
    pub removed: Vec<String>,
    /// One line per thing that could not be removed.
    pub errors: Vec<String>,
    /// One line per run left alone because its controller still runs.
    pub left_alone: Vec<String>,
}

impl CleanupReport {
    pub fn is_clean(&self) -> bool {
        self.removed.is_empty() && self.errors.is_empty()
    }
}

/// One kind of leftover: how to remove what a record names of it.
pub struct CleanupStep {
    pub name: &'static str,
    pub run: fn(record: &RunRecord, report: &mut CleanupReport),
}

/// The steps before those of other modules, in order: stop processes before their
/// namespaces go, so nothing is left running in a namespace that no longer has a name.
const BEFORE_NAMESPACE_STEPS: &[CleanupStep] = &[
    CleanupStep {
        name: "node cgroups",
        run: remove_cgroups,
    },
    CleanupStep {
        name: "processes in run namespaces",
        run: kill_namespace_processes,
    },
    // After the nodes are gone, so nothing holds the mounts busy (detached all the same).
    CleanupStep {
        name: "disk layer mounts",
        run: unmount_disks,
    },
];

/// The last step: the namespaces themselves (which drops whatever is still inside them).
const NAMESPACE_STEP: CleanupStep = CleanupStep {
    name: "network namespaces",
    run: delete_namespaces,
};

/// Every step for a record: this module's own around `inside_namespaces`, the steps of the
/// modules that put state inside a run's namespaces (they run while those still exist).
pub fn steps(inside_namespaces: &[CleanupStep]) -> Vec<&CleanupStep> {
    BEFORE_NAMESPACE_STEPS
        .iter()
        .chain(inside_namespaces)
        .chain(std::iter::once(&NAMESPACE_STEP))
        .collect()
}

/// Lazily unmounts the disk layers the run recorded, if they are still our mounts.
fn unmount_disks(record: &RunRecord, report: &mut CleanupReport) {
    for resource in &record.resources {
        let Resource::Mount(path) = resource else {
            continue;
        };
        match crate::disk::detach_if_ours(path) {
            Ok(true) => report.removed.push(format!(
                "run {}: disk layer mount {}",
                record.run,
                path.display()
            )),
            Ok(false) => {}
            Err(e) => report.errors.push(format!(
                "run {}: unmounting the disk layer {}: {e}",
                record.run,
                path.display()
            )),
        }
    }
}

/// Removes what run `run` (or every run, when `None`) recorded, for each run whose
/// controller is gone; runs still in progress are left alone and listed as such. The
/// modules that leave state inside a run's namespaces hand their steps in
/// (`inside_namespaces`): this module calls them and never imports them.
pub fn cleanup(run: Option<&RunId>, inside_namespaces: &[CleanupStep]) -> CleanupReport {
    let mut report = CleanupReport::default();
    let records = match run {
        Some(run) => RunRecord::load(run).map(|r| r.into_iter().collect()),
        None => RunRecord::list(),
    };
    let records: Vec<RunRecord> = match records {
        Ok(records) => records,
        Err(e) => {
            report.errors.push(format!(
                "reading the run records in {}: {e}",
                state_dir().display()
            ));
            return report;
        }
    };
    for record in records {
        if !record.may_be_removed() {
            let c = record.controller.expect("a live controller");
            report.left_alone.push(format!(
                "run {}: its controller (pid {}) is still running",
                record.run, c.pid
            ));
            continue;
        }
        for line in &record.unreadable {
            report.errors.push(format!(
                "record of run {}: refused line: {line}",
                record.run
            ));
        }
        for step in steps(inside_namespaces) {
            (step.run)(&record, &mut report);
        }
        if !record.unreadable.is_empty() {
            // What a refused line names is unknown: the record stays for a person to look at.
            report.errors.push(format!(
                "run {}: kept its record in {}: it has lines cleanup refused",
                record.run,
                RunRecord::dir_of(&record.run).display()
            ));
        } else if !forget_if_done(&record.run) {
            report.errors.push(format!(
                "run {}: kept its record in {}: some of what it names still exists",
                record.run,
                RunRecord::dir_of(&record.run).display()
            ));
        }
    }
    report
}

/// Removes the cgroups, processes and namespaces of one run (the calling process may be
/// its controller). Safe to call from a panic path: the only lock it takes is the record
/// lock, held for a few file operations at a time (and usable again after a panic).
pub fn cleanup_run(run: &RunId) -> CleanupReport {
    cleanup(Some(run), &[])
}

/// The namespaces of `run` (or of any run, when `None`) that exist now.
pub fn run_namespaces_present(run: Option<&RunId>) -> Vec<String> {
    crate::netns::list()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| is_run_netns(n, run))
        .collect()
}

/// Whether namespace `name` belongs to `run` (or to any run, when `None`): whether a run
/// record names it. A name alone proves nothing.
pub fn is_run_netns(name: &str, run: Option<&RunId>) -> bool {
    match run {
        Some(run) => RunRecord::load(run)
            .ok()
            .flatten()
            .is_some_and(|r| r.names_netns(name)),
        None => RunRecord::list()
            .unwrap_or_default()
            .iter()
            .any(|r| r.names_netns(name)),
    }
}

fn remove_cgroups(record: &RunRecord, report: &mut CleanupReport) {
    // No cgroup2 means no cgroup of ours either.
    let Ok(root) = cgroup::harness_root() else {
        return;
    };
    let mut done: Vec<PathBuf> = Vec::new();
    for relative in record.cgroups() {
        let dir = root.join(&relative);
        // Below a tree already removed.
        if done.iter().any(|d| dir.starts_with(d)) {
            continue;
        }
        done.push(dir.clone());
        let label = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
        for (cgroup_dir, pid) in processes_below(&dir) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            report.removed.push(format!(
                "process {pid} ({}) in cgroup {}",
                comm.trim(),
                label(&cgroup_dir)
            ));
        }
        match cgroup::remove_tree(&dir) {
            Ok(removed) => report
                .removed
                .extend(removed.iter().map(|p| format!("cgroup {}", label(p)))),
            Err(e) => report.errors.push(e.to_string()),
        }
    }
}

/// Every (cgroup, pid) at or below `dir`, to report what a cgroup kill takes down.
fn processes_below(dir: &Path) -> Vec<(PathBuf, i32)> {
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

fn existing_namespaces(record: &RunRecord) -> Vec<String> {
    record
        .namespaces()
        .into_iter()
        .filter(|ns| netns::exists(ns))
        .collect()
}

fn kill_namespace_processes(record: &RunRecord, report: &mut CleanupReport) {
    let me = std::process::id() as i32;
    for ns in existing_namespaces(record) {
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

fn delete_namespaces(record: &RunRecord, report: &mut CleanupReport) {
    let names = existing_namespaces(record);
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
                crate::stderr_line!("splitbrain: warning: cleanup of run {}: {line}", self.run);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_modules_steps_run_after_the_processes_and_mounts_and_before_the_namespaces() {
        let inside = [CleanupStep {
            name: "rules inside",
            run: |_, _| {},
        }];
        let names: Vec<&str> = steps(&inside).iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "node cgroups",
                "processes in run namespaces",
                "disk layer mounts",
                "rules inside",
                "network namespaces"
            ]
        );
        assert_eq!(steps(&[]).len(), 4);
    }

    #[test]
    fn records_name_their_controller_and_what_was_made() {
        let root = tempfile::tempdir().unwrap();
        let run = RunId::parse("abc123").unwrap();
        assert!(RunRecord::load_in(root.path(), &run).unwrap().is_none());
        record_in(
            root.path(),
            &run,
            &[
                Resource::Netns("sb-abc123-sw".into()),
                Resource::Netns("sb-abc123-n1".into()),
            ],
        )
        .unwrap();
        record_in(root.path(), &run, &[Resource::Cgroup("abc123/n1".into())]).unwrap();
        let record = RunRecord::load_in(root.path(), &run).unwrap().unwrap();
        assert_eq!(record.controller, Some(ProcessIdentity::current()));
        assert_eq!(record.namespaces(), vec!["sb-abc123-sw", "sb-abc123-n1"]);
        assert_eq!(record.cgroups(), vec!["abc123/n1"]);
        assert!(record.names_netns("sb-abc123-n1"));
        // A look-alike is not named, whatever it looks like.
        assert!(!record.names_netns("sb-abc123-n2"));
        assert!(!record.names_netns("sb-abc123-vpn"));
        // This process controls it: it may clean up after itself.
        assert!(record.may_be_removed());
        let mode = |p: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&root.path().join("abc123")), 0o755);
        assert_eq!(
            mode(&root.path().join("abc123").join(RESOURCES_FILE)),
            0o644
        );
    }

    #[test]
    fn a_record_of_another_live_controller_is_refused_and_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let run = RunId::parse("def456").unwrap();
        let dir = root.path().join("def456");
        std::fs::create_dir_all(&dir).unwrap();
        // pid 1 runs, and is not us.
        let init = ProcessIdentity::of(1).unwrap();
        std::fs::write(
            dir.join(CONTROLLER_FILE),
            format!("{} {}\n", init.pid, init.start_time),
        )
        .unwrap();
        let err =
            record_in(root.path(), &run, &[Resource::Netns("sb-def456-n1".into())]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let record = RunRecord::load_in(root.path(), &run).unwrap().unwrap();
        assert!(record.resources.is_empty(), "nothing was recorded");
        assert!(!record.may_be_removed(), "its controller lives");
    }

    #[test]
    fn a_reused_pid_is_not_the_controller() {
        let me = ProcessIdentity::current();
        assert!(me.is_alive());
        let earlier = ProcessIdentity {
            pid: me.pid,
            start_time: me.start_time.wrapping_sub(1),
        };
        assert!(
            !earlier.is_alive(),
            "same pid, other start time: another process"
        );
        let record = RunRecord {
            run: RunId::parse("abc").unwrap(),
            controller: Some(earlier),
            resources: Vec::new(),
            unreadable: Vec::new(),
        };
        assert!(record.may_be_removed());
        // A process that exited (reaped) is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let identity = ProcessIdentity::of(pid);
        child.wait().unwrap();
        if let Some(identity) = identity {
            assert!(!identity.is_alive());
        }
    }

    #[test]
    fn record_lines_are_validated_before_anything_uses_them() {
        let run = RunId::parse("abc123").unwrap();
        assert_eq!(
            Resource::parse("netns sb-abc123-n1", &run),
            Ok(Resource::Netns("sb-abc123-n1".into()))
        );
        for bad in [
            "netns sb-x\nnetns add evil",
            "netns ../../etc",
            "netns ..",
            "netns a b",
            "netns ",
            "cgroup other/n1",
            "cgroup abc123/../../x",
            "cgroup abc123/a b",
            "process 12",
        ] {
            assert!(Resource::parse(bad, &run).is_err(), "{bad:?}");
        }
        // An embedded newline in a file cannot forge a line either: it is two lines, and
        // the second is refused or names nothing of another run.
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("abc123");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(RESOURCES_FILE),
            "netns sb-abc123-n1\ncgroup zzz/evil\nnetns x;rm\n",
        )
        .unwrap();
        let record = RunRecord::load_in(root.path(), &run).unwrap().unwrap();
        assert_eq!(record.namespaces(), vec!["sb-abc123-n1"]);
        assert_eq!(record.unreadable.len(), 2, "{:?}", record.unreadable);
        assert_eq!(record.controller, None);
    }

    #[test]
    fn remote_lines_are_kept_for_the_remote_step_and_named_nowhere_else() {
        let run = RunId::parse("abc123").unwrap();
        let root = tempfile::tempdir().unwrap();
        let line = r#"{"kind":"dir","host":"n1","path":"/tmp/splitbrain-abc123"}"#;
        record_in(
            root.path(),
            &run,
            &[
                Resource::Netns("sb-abc123-n1".into()),
                Resource::Remote(line.into()),
            ],
        )
        .unwrap();
        let record = RunRecord::load_in(root.path(), &run).unwrap().unwrap();
        assert!(record.unreadable.is_empty(), "{:?}", record.unreadable);
        assert!(record.resources.contains(&Resource::Remote(line.into())));
        assert_eq!(record.namespaces(), vec!["sb-abc123-n1"]);
        assert!(record.cgroups().is_empty());
        // Nothing on this machine to find: only the remote step can tell.
        assert!(!Resource::Remote(line.into()).exists());
        assert!(Resource::parse("remote ", &run).is_err());
    }
}
