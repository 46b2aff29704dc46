//! Supervision of one node process: start it inside its network namespace, in its own
//! session and cgroup; wait until it is ready; stop, kill, restart, pause and resume it; and
//! notice when it dies by itself.
//!
//! Control goes through cgroup v2 where it is usable (`cgroup.freeze` for pause,
//! `cgroup.kill` for kill — it reaches frozen tasks and grandchildren too), otherwise through
//! signals to the node's process group (SIGSTOP/SIGCONT, SIGKILL). `PR_SET_PDEATHSIG` is not
//! used: it fires when the spawning *thread* exits, and async runtimes retire idle threads.
//!
//! Every process exit is seen by a watcher thread that reaps the child. An exit the harness
//! did not ask for is an *unexpected death*: it is counted, and reported as a
//! [`NodeEvent`] carrying the tail of the node's logs.
//!
//! The API is blocking (operations take microseconds to milliseconds; readiness waits take
//! longer). From async code call it through `spawn_blocking`.

use crate::cgroup::{Cgroup, CgroupError};
use crate::netns::{self, NetnsError};
use crate::system::{LaunchSpec, Readiness};
use crate::topology::Topology;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many lines of each log an exit report carries.
pub const LOG_TAIL_LINES: usize = 20;
/// How long `kill` waits for the watcher to reap the process.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything needed to run one node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `n1`, ...
    pub name: String,
    /// The node's network namespace.
    pub netns: String,
    /// Where readiness TCP probes connect from (the switch namespace, like clients).
    pub probe_netns: String,
    /// The node's cgroup (created on start), or `None` to control it by signals only.
    pub cgroup: Option<PathBuf>,
    /// The node's working directory; kept across restarts.
    pub data_dir: PathBuf,
    /// Holds `stdout.log` and `stderr.log` (appended to across restarts).
    pub log_dir: PathBuf,
    pub launch: LaunchSpec,
    pub readiness: Readiness,
}

impl NodeConfig {
    /// The usual configuration for node `name` of `topology`: cgroup
    /// `<cgroup2>/splitbrain/<run>/<name>` where cgroup v2 with freeze and kill is usable,
    /// signals otherwise.
    pub fn for_topology(
        topology: &Topology,
        name: &str,
        launch: LaunchSpec,
        readiness: Readiness,
        data_dir: PathBuf,
        log_dir: PathBuf,
    ) -> Option<Self> {
        let node = topology.node(name)?;
        Some(NodeConfig {
            name: name.to_owned(),
            netns: node.netns.clone(),
            probe_netns: topology.switch_netns().to_owned(),
            cgroup: usable_cgroup_path(topology.run().as_str(), name),
            data_dir,
            log_dir,
            launch,
            readiness,
        })
    }
}

/// `<cgroup2>/splitbrain/<run>/<node>` if cgroup v2 with `cgroup.freeze` and `cgroup.kill`
/// can be used here, else `None`.
pub fn usable_cgroup_path(run: &str, node: &str) -> Option<PathBuf> {
    let root = crate::cgroup::harness_root().ok()?;
    let parent = Cgroup::create(&root).ok()?;
    // The root of the hierarchy has no freeze/kill files, but any child has; check on a
    // child we own.
    if !parent.supports_freeze_and_kill() {
        return None;
    }
    Some(root.join(run).join(node))
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    // The io error is in the message, not a `source`: said once in `{:#}`.
    #[error("node {node}: {what}: {error}")]
    Io {
        node: String,
        what: String,
        error: io::Error,
    },
    /// The node's program is not on this machine (exit 69, like a missing etcd).
    #[error("node {node}: program {program} not found")]
    ProgramNotFound { node: String, program: String },
    #[error("node {node}: {source}")]
    Netns { node: String, source: NetnsError },
    #[error("node {node}: {source}")]
    Cgroup { node: String, source: CgroupError },
    #[error("node {node}: signal {signal}: {source}")]
    Signal {
        node: String,
        signal: Signal,
        source: nix::Error,
    },
    #[error("node {node} not ready after {waited:?}: {last_error}")]
    NotReady {
        node: String,
        waited: Duration,
        last_error: String,
    },
    #[error("node {node} exited before it was ready: {report}")]
    DiedBeforeReady {
        node: String,
        report: Box<ExitReport>,
    },
    #[error("node {node} is not running")]
    NotRunning { node: String },
    #[error("node {node}: not {what} within {timeout:?}")]
    NotSettled {
        node: String,
        what: &'static str,
        timeout: Duration,
    },
    #[error("node {node}: process {pid} was not reaped within {timeout:?}")]
    NotReaped {
        node: String,
        pid: i32,
        timeout: Duration,
    },
}

/// How a node process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitReport {
    pub node: String,
    pub pid: i32,
    /// Which start of the node this was (1 for the first, +1 per restart).
    pub generation: u64,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The harness asked for it (stop, kill, restart, teardown).
    pub expected: bool,
    /// The last lines of `stdout.log`, then of `stderr.log` (filled for unexpected exits).
    pub stdout_tail: Vec<String>,
    pub stderr_tail: Vec<String>,
}

impl std::fmt::Display for ExitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match (self.code, self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "unknown status".to_owned(),
        };
        write!(
            f,
            "{} (pid {}, start #{}) ended with {how}",
            self.node, self.pid, self.generation
        )?;
        if !self.expected {
            write!(f, " unexpectedly")?;
        }
        for (label, tail) in [("stdout", &self.stdout_tail), ("stderr", &self.stderr_tail)] {
            if !tail.is_empty() {
                write!(f, "\n--- last {} lines of {label} ---", tail.len())?;
                for line in tail {
                    write!(f, "\n{line}")?;
                }
            }
        }
        Ok(())
    }
}

/// Something that happened to a node, for the runner's counts and timeline.
#[derive(Debug, Clone)]
pub struct NodeEvent {
    pub at: Instant,
    pub kind: NodeEventKind,
}

#[derive(Debug, Clone)]
pub enum NodeEventKind {
    Started {
        node: String,
        pid: i32,
        generation: u64,
    },
    Exited(ExitReport),
}

/// Where node events go (the receiver works from async and sync code alike).
pub type EventSender = tokio::sync::mpsc::UnboundedSender<NodeEvent>;

#[derive(Debug, Default)]
struct State {
    pid: Option<i32>,
    generation: u64,
    running: bool,
    paused: bool,
    expecting_exit: bool,
    last_exit: Option<ExitReport>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    unexpected_deaths: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A supervised node. Dropping it kills the node and removes its cgroup.
#[derive(Debug)]
pub struct Node {
    config: NodeConfig,
    cgroup: Option<Cgroup>,
    shared: Arc<Shared>,
    events: Option<EventSender>,
}

impl Node {
    /// Starts the node (does not wait for readiness: see [`Node::wait_ready`]).
    pub fn start(config: NodeConfig, events: Option<EventSender>) -> Result<Self, NodeError> {
        let cgroup = match &config.cgroup {
            Some(path) => {
                // Recorded before it is made, so `cleanup` may remove it after a crash.
                crate::cleanup::record_cgroup(path).map_err(|error| NodeError::Io {
                    node: config.name.clone(),
                    what: format!("recording cgroup {}", path.display()),
                    error,
                })?;
                Some(Cgroup::create(path).map_err(|source| NodeError::Cgroup {
                    node: config.name.clone(),
                    source,
                })?)
            }
            None => None,
        };
        let node = Node {
            config,
            cgroup,
            shared: Arc::default(),
            events,
        };
        node.spawn()?;
        Ok(node)
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The cgroup the node runs in, if cgroup control is used.
    pub fn cgroup(&self) -> Option<&Cgroup> {
        self.cgroup.as_ref()
    }

    /// The pid of the current (or last) process.
    pub fn pid(&self) -> Option<i32> {
        self.shared.lock().pid
    }

    pub fn is_running(&self) -> bool {
        self.shared.lock().running
    }

    pub fn is_paused(&self) -> bool {
        self.shared.lock().paused
    }

    /// How many starts of this node so far.
    pub fn generation(&self) -> u64 {
        self.shared.lock().generation
    }

    /// Exits the harness did not ask for.
    pub fn unexpected_deaths(&self) -> usize {
        self.shared.unexpected_deaths.load(Ordering::SeqCst)
    }

    /// How the last process ended, if one has.
    pub fn last_exit(&self) -> Option<ExitReport> {
        self.shared.lock().last_exit.clone()
    }

    fn err_io(&self, what: impl Into<String>) -> impl FnOnce(io::Error) -> NodeError + '_ {
        let what = what.into();
        move |error| NodeError::Io {
            node: self.config.name.clone(),
            what,
            error,
        }
    }

    fn err_cgroup(&self, source: CgroupError) -> NodeError {
        NodeError::Cgroup {
            node: self.config.name.clone(),
            source,
        }
    }

    fn spawn(&self) -> Result<(), NodeError> {
        let cfg = &self.config;
        // Explicit modes (0755, 0644), not whatever the umask leaves.
        crate::results::create_dirs(&cfg.data_dir)
            .map_err(self.err_io("creating the data directory"))?;
        crate::results::create_dirs(&cfg.log_dir)
            .map_err(self.err_io("creating the log directory"))?;
        let open_log = |file: &str| {
            let path = cfg.log_dir.join(file);
            let log = OpenOptions::new().create(true).append(true).open(&path)?;
            crate::results::set_mode(&path, crate::results::FILE_MODE)?;
            Ok::<_, io::Error>(log)
        };
        let stdout = open_log("stdout.log").map_err(self.err_io("opening stdout.log"))?;
        let stderr = open_log("stderr.log").map_err(self.err_io("opening stderr.log"))?;
        let netns_fd = netns::open(&cfg.netns).map_err(|source| NodeError::Netns {
            node: cfg.name.clone(),
            source,
        })?;
        let procs_fd = match &self.cgroup {
            Some(cgroup) => {
                // A node killed while paused left its cgroup frozen: a new process joining
                // it would start frozen.
                let _ = cgroup.thaw();
                Some(cgroup.open_procs().map_err(|e| self.err_cgroup(e))?)
            }
            None => None,
        };

        let mut cmd = Command::new(&cfg.launch.program);
        cmd.args(&cfg.launch.args)
            .envs(cfg.launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&cfg.data_dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // SAFETY: between fork and exec only async-signal-safe calls on descriptors opened
        // beforehand; nothing allocates.
        unsafe {
            cmd.pre_exec(move || {
                // Own session: a terminal's Ctrl-C does not reach the node, and signals to the
                // node's group never reach the controller.
                nix::unistd::setsid().map_err(io::Error::from)?;
                nix::sched::setns(netns_fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                if let Some(fd) = &procs_fd {
                    // "0" means the writing process: the child moves itself into the cgroup
                    // before exec, so everything it ever starts is in there too.
                    nix::unistd::write(fd, b"0").map_err(io::Error::from)?;
                }
                Ok(())
            });
        }

        let mut state = self.shared.lock();
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(NodeError::ProgramNotFound {
                    node: self.config.name.clone(),
                    program: cfg.launch.program.display().to_string(),
                })
            }
            Err(e) => {
                return Err(self
                    .err_io(format!("starting {}", cfg.launch.program.display()))(
                    e
                ))
            }
        };
        let pid = child.id() as i32;
        state.generation += 1;
        state.pid = Some(pid);
        state.running = true;
        state.paused = false;
        state.expecting_exit = false;
        let generation = state.generation;
        drop(state);
        self.send(NodeEventKind::Started {
            node: cfg.name.clone(),
            pid,
            generation,
        });

        let shared = Arc::clone(&self.shared);
        let events = self.events.clone();
        let name = cfg.name.clone();
        let log_dir = cfg.log_dir.clone();
        std::thread::Builder::new()
            .name(format!("watch-{name}"))
            .spawn(move || {
                let status = child.wait();
                watcher_saw_exit(
                    &shared,
                    events.as_ref(),
                    &name,
                    &log_dir,
                    pid,
                    generation,
                    status,
                );
            })
            .map_err(self.err_io("starting the watcher thread"))?;
        Ok(())
    }

    fn send(&self, kind: NodeEventKind) {
        if let Some(events) = &self.events {
            // A dropped receiver means nobody listens any more; that is not our failure.
            let _ = events.send(NodeEvent {
                at: Instant::now(),
                kind,
            });
        }
    }

    /// Waits until the node passes its readiness check, at most `timeout`. Returns how long
    /// it took. Fails at once if the node exits meanwhile.
    pub fn wait_ready(&self, timeout: Duration) -> Result<Duration, NodeError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let generation = self.generation();
        let mut pause = Duration::from_millis(5);
        let mut last_error;
        loop {
            {
                let state = self.shared.lock();
                if !state.running || state.generation != generation {
                    return Err(match state.last_exit.clone() {
                        Some(report) => NodeError::DiedBeforeReady {
                            node: self.config.name.clone(),
                            report: Box::new(report),
                        },
                        None => NodeError::NotRunning {
                            node: self.config.name.clone(),
                        },
                    });
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.probe_ready(remaining.max(Duration::from_millis(10))) {
                Ok(()) => return Ok(started.elapsed()),
                Err(e) => last_error = e,
            }
            if Instant::now() + pause >= deadline {
                return Err(NodeError::NotReady {
                    node: self.config.name.clone(),
                    waited: started.elapsed(),
                    last_error,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// One readiness attempt; the error says why it is not ready.
    fn probe_ready(&self, budget: Duration) -> Result<(), String> {
        match &self.config.readiness {
            Readiness::TcpPort(addr) => tcp_probe(&self.config.probe_netns, *addr, budget),
            Readiness::Command(spec) => command_probe(&self.config.netns, spec, budget),
            Readiness::ClientRead(probe) => probe.attempt(Some(&self.config.probe_netns), budget),
        }
    }

    /// Freezes the node. With cgroups, verified through `cgroup.events` (`frozen 1`).
    pub fn pause(&self) -> Result<(), NodeError> {
        let mut state = self.shared.lock();
        if !state.running {
            return Err(NodeError::NotRunning {
                node: self.config.name.clone(),
            });
        }
        let paused = match &self.cgroup {
            Some(cgroup) => cgroup.freeze().map_err(|e| {
                // Never leave a half-done freeze behind: the caller will not resume a
                // node whose pause failed.
                let _ = cgroup.thaw();
                self.err_cgroup(e)
            }),
            None => self.signal_group(&state, Signal::SIGSTOP).and_then(|()| {
                // Signals arrive asynchronously; report paused only once it is.
                self.wait_process_state(&state, "stopped", |s| s == 'T')
                    .inspect_err(|_| {
                        let _ = self.signal_group(&state, Signal::SIGCONT);
                    })
            }),
        };
        paused?;
        state.paused = true;
        Ok(())
    }

    /// Thaws the node (`frozen 0`), or SIGCONT without cgroups.
    pub fn resume(&self) -> Result<(), NodeError> {
        let mut state = self.shared.lock();
        match &self.cgroup {
            Some(cgroup) => cgroup.thaw().map_err(|e| self.err_cgroup(e))?,
            None if state.running => {
                self.signal_group(&state, Signal::SIGCONT)?;
                self.wait_process_state(&state, "continued", |s| s != 'T')?;
            }
            None => {}
        }
        state.paused = false;
        Ok(())
    }

    /// Kills the node at once (frozen or not) and waits until it is gone and reaped. A node
    /// that is not running is left alone.
    pub fn kill(&self) -> Result<(), NodeError> {
        let pid = {
            let mut state = self.shared.lock();
            if !state.running {
                return Ok(());
            }
            state.expecting_exit = true;
            match &self.cgroup {
                Some(cgroup) => cgroup.kill().map_err(|e| self.err_cgroup(e))?,
                // SIGKILL works on stopped processes too.
                None => self.signal_group(&state, Signal::SIGKILL)?,
            }
            state.paused = false;
            state.pid.unwrap_or_default()
        };
        self.wait_reaped(pid, REAP_TIMEOUT)
    }

    /// Asks the node to stop (SIGTERM to its process group), waits up to `grace`, then kills
    /// what is left.
    pub fn stop(&self, grace: Duration) -> Result<(), NodeError> {
        let pid = {
            let mut state = self.shared.lock();
            if !state.running {
                return Ok(());
            }
            state.expecting_exit = true;
            // A frozen process cannot handle SIGTERM.
            if state.paused {
                match &self.cgroup {
                    Some(cgroup) => cgroup.thaw().map_err(|e| self.err_cgroup(e))?,
                    None => self.signal_group(&state, Signal::SIGCONT)?,
                }
                state.paused = false;
            }
            self.signal_group(&state, Signal::SIGTERM)?;
            state.pid.unwrap_or_default()
        };
        if self.wait_reaped(pid, grace).is_ok() {
            // The main process is gone; anything it left behind in the cgroup goes too.
            if let Some(cgroup) = &self.cgroup {
                cgroup.kill().map_err(|e| self.err_cgroup(e))?;
            }
            return Ok(());
        }
        self.kill()
    }

    /// Kills the node if it runs, then starts it again on the same data directory.
    pub fn restart(&self) -> Result<(), NodeError> {
        self.kill()?;
        self.spawn()
    }

    /// Starts the node again after a kill or stop; a running node is left as it is.
    pub fn start_again(&self) -> Result<(), NodeError> {
        if self.is_running() {
            return Ok(());
        }
        self.spawn()
    }

    fn wait_reaped(&self, pid: i32, timeout: Duration) -> Result<(), NodeError> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while state.running && state.pid == Some(pid) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(NodeError::NotReaped {
                    node: self.config.name.clone(),
                    pid,
                    timeout,
                });
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, remaining)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        Ok(())
    }

    /// Signals the node's process group (its pgid is its pid: it leads its own session).
    /// Called with the state locked and `running` true, so the pid has not been reaped yet
    /// except in the instant between the watcher's wait and its lock.
    fn signal_group(&self, state: &State, signal: Signal) -> Result<(), NodeError> {
        let pid = state.pid.ok_or_else(|| NodeError::NotRunning {
            node: self.config.name.clone(),
        })?;
        match killpg(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
            Err(source) => Err(NodeError::Signal {
                node: self.config.name.clone(),
                signal,
                source,
            }),
        }
    }

    /// Polls the main process' state in `/proc` (the signal fallback's only evidence).
    fn wait_process_state(
        &self,
        state: &State,
        what: &'static str,
        done: impl Fn(char) -> bool,
    ) -> Result<(), NodeError> {
        let Some(pid) = state.pid else { return Ok(()) };
        let deadline = Instant::now() + REAP_TIMEOUT;
        loop {
            match process_state(pid) {
                // Gone: the watcher reports the exit; nothing left to wait for.
                None => return Ok(()),
                Some(s) if done(s) => return Ok(()),
                Some(_) if Instant::now() >= deadline => {
                    return Err(NodeError::NotSettled {
                        node: self.config.name.clone(),
                        what,
                        timeout: REAP_TIMEOUT,
                    })
                }
                Some(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
    }

    /// Kills the node and removes its cgroup. Called by drop; call it to see errors.
    pub fn shutdown(&mut self) -> Result<(), NodeError> {
        self.kill()?;
        if let Some(cgroup) = &self.cgroup {
            cgroup.remove().map_err(|e| self.err_cgroup(e))?;
        }
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            crate::stderr_line!(
                "splitbrain: warning: shutting down node {}: {e}",
                self.config.name
            );
        }
    }
}

fn watcher_saw_exit(
    shared: &Shared,
    events: Option<&EventSender>,
    name: &str,
    log_dir: &Path,
    pid: i32,
    generation: u64,
    status: io::Result<ExitStatus>,
) {
    let (code, signal) = match &status {
        Ok(status) => (status.code(), status.signal()),
        Err(_) => (None, None),
    };
    let mut state = shared.lock();
    let expected = state.expecting_exit && state.generation == generation;
    let (stdout_tail, stderr_tail) = if expected {
        (Vec::new(), Vec::new())
    } else {
        (
            tail_lines(&log_dir.join("stdout.log"), LOG_TAIL_LINES),
            tail_lines(&log_dir.join("stderr.log"), LOG_TAIL_LINES),
        )
    };
    let report = ExitReport {
        node: name.to_owned(),
        pid,
        generation,
        code,
        signal,
        expected,
        stdout_tail,
        stderr_tail,
    };
    if state.generation == generation {
        state.running = false;
        state.paused = false;
        state.last_exit = Some(report.clone());
    }
    if !expected {
        shared.unexpected_deaths.fetch_add(1, Ordering::SeqCst);
    }
    drop(state);
    shared.changed.notify_all();
    if let Some(events) = events {
        let _ = events.send(NodeEvent {
            at: Instant::now(),
            kind: NodeEventKind::Exited(report),
        });
    }
}

/// The one-letter state of a process (`R`, `S`, `T`, `Z`, ...), `None` once it is gone.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// The last `count` lines of a file (reading at most its last 64 KiB).
pub fn tail_lines(path: &Path, count: usize) -> Vec<String> {
    const WINDOW: u64 = 64 * 1024;
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(WINDOW);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    // A window that starts mid-file starts mid-line: drop that partial first line.
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(count);
    lines[skip..].iter().map(|l| l.to_string()).collect()
}

/// One TCP connect to `addr` from a thread inside `from_netns`.
fn tcp_probe(from_netns: &str, addr: SocketAddr, budget: Duration) -> Result<(), String> {
    let timeout = budget.min(Duration::from_secs(1));
    let handle = netns::spawn_in(from_netns, move || {
        TcpStream::connect_timeout(&addr, timeout)
    })
    .map_err(|e| e.to_string())?;
    match handle.join() {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(e)) => Err(format!("connect to {addr}: {e}")),
        Err(_) => Err(format!("the probe thread for {addr} panicked")),
    }
}

/// One run of the readiness command inside the node's namespace, killed after `budget`.
fn command_probe(netns_name: &str, spec: &LaunchSpec, budget: Duration) -> Result<(), String> {
    let mut cmd = netns::command(netns_name, &spec.program).map_err(|e| e.to_string())?;
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}: {e}", spec.program.display()))?;
    let deadline = Instant::now() + budget.min(Duration::from_secs(5));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{} {status}", spec.program.display())),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} timed out", spec.program.display()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = tail_lines(&path, 3);
        assert_eq!(tail, vec!["line 48", "line 49", "line 50"]);
        assert!(tail_lines(&dir.path().join("missing"), 3).is_empty());
    }
}
