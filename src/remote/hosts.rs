//! A run's remote hosts: node processes started, signalled and stopped over SSH, partition
//! tables, reachability probes, logs fetched back — and the ownership record of each.
//!
//! Every command goes through the host's persistent shell ([`RemoteShells`]), so an action
//! costs one round trip on an open connection. Before anything is made on a host it is
//! recorded in the run's ownership record ([`crate::cleanup`], one [`RemoteRecord`] per
//! line), so `splitbrain cleanup --run ID` can remove it from each host after a controller
//! that was killed ([`CLEANUP_STEP`]) — and only what this run made: a process by its pid
//! *and* start time, a directory only below the run's own root, a table by its run name.
//!
//! Nothing here knows systems or faults: it takes a program and its arguments, addresses,
//! tables. `crate::cluster` builds nodes from a system; the nemesis puts faults in force.

use super::quote;
use super::shell::RemoteShells;
use super::spec::{HostSpec, SshSpec};
use super::ssh::{SshError, SshOptions, SshTransport};
use crate::cleanup::{CleanupReport, CleanupStep, Resource, RunId, RunRecord};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a run's directories go on each host unless `ssh.dir` says otherwise:
/// `<REMOTE_ROOT>/splitbrain-<run>/<node>/`.
pub const REMOTE_ROOT: &str = "/tmp";

/// How long one remote command may take (starting a node, a rule table, a probe).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a stopped node has after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The run's directory on every host, under `parent` ([`SshSpec::run_parent`]).
pub fn run_root(parent: &str, run: &RunId) -> String {
    format!(
        "{}/splitbrain-{}",
        parent.trim_end_matches('/'),
        run.as_str()
    )
}

/// The nftables table (family `inet`) of a run's partitions on every host.
pub fn nft_table(run: &RunId) -> String {
    format!("splitbrain_{}", run.as_str())
}

/// The nftables table (family `inet`) of a run's packet loss on every host.
pub fn loss_table(run: &RunId) -> String {
    format!("splitbrain_{}_loss", run.as_str())
}

/// The handle of a run's root qdisc (`prio`) on a host's interface toward its peers; the
/// netem qdisc below it is [`NETEM_HANDLE`]. Only a root qdisc with this handle is ever
/// deleted.
pub const QDISC_HANDLE: &str = "5b00:";

/// The handle of the netem qdisc under [`QDISC_HANDLE`] (on its fourth band).
pub const NETEM_HANDLE: &str = "5b04:";

/// One thing a run made on a remote host, as the run's ownership record holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RemoteRecord {
    /// How the hosts were reached (written first: cleanup connects the same way).
    Ssh { hosts: Vec<HostSpec>, ssh: SshSpec },
    /// A directory of the run on `host` (below [`run_root`]).
    Dir { host: String, path: String },
    /// A node process on `host`: pid and start time (field 22 of `/proc/PID/stat`), so a
    /// reused pid is never signalled.
    Process {
        host: String,
        pid: u32,
        start_time: u64,
    },
    /// A nftables table of the run on `host` (partitions: [`nft_table`]; loss: [`loss_table`]).
    NftTable { host: String, table: String },
    /// An iptables chain of the run on `host`, and the jumps to it from `INPUT`/`OUTPUT`
    /// (a host without `nft`: [`super::iptables::partition_chain`], [`super::iptables::loss_chain`]).
    IptablesChain { host: String, chain: String },
    /// The run's root qdisc ([`QDISC_HANDLE`]) on interface `dev` of `host` (packet faults).
    Qdisc { host: String, dev: String },
    /// A disk layer's mount point on `host`, below the run's directory ([`super::disk`]).
    Mount { host: String, path: String },
    /// The run's cgroup on `host` ([`super::cgroup::run_cgroup`]), the nodes' cgroups below it.
    Cgroup { host: String, path: String },
    /// `host`'s own clock shifted by `offset_ms` (`ssh.set_clock`), written before it is
    /// shifted; the host keeps the net offset in [`super::clock::offset_file`].
    ClockOffset { host: String, offset_ms: i64 },
}

impl RemoteRecord {
    fn resource(&self) -> Resource {
        Resource::Remote(serde_json::to_string(self).expect("a record is plain data"))
    }
}

/// A remote process of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteProcess {
    pub pid: u32,
    pub start_time: u64,
}

/// A process's state letter as `/proc/PID/stat` shows it (`R`, `S`, `T`, …), or gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessState {
    Running(char),
    Gone,
}

impl ProcessState {
    pub fn describe(&self) -> String {
        match self {
            ProcessState::Running('T') => "state T (stopped)".into(),
            ProcessState::Running(c) => format!("state {c}"),
            ProcessState::Gone => "gone".into(),
        }
    }
}

/// Whether a probe got through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Reachable,
    Blocked(String),
}

impl Reach {
    pub fn describe(&self) -> String {
        match self {
            Reach::Reachable => "reachable".into(),
            Reach::Blocked(why) => format!("blocked ({why})"),
        }
    }
}

/// How a host filters packets for the run's partitions and loss: `nft` where the host has
/// it, else iptables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firewall {
    Nftables,
    Iptables,
}

impl Firewall {
    pub fn name(self) -> &'static str {
        match self {
            Firewall::Nftables => "nftables",
            Firewall::Iptables => "iptables",
        }
    }

    /// The name of its counters in evidence (`nft counter`, `iptables counter`).
    pub fn counter(self) -> &'static str {
        match self {
            Firewall::Nftables => "nft counter",
            Firewall::Iptables => "iptables counter",
        }
    }
}

/// What a host offers the run, asked once per host when the run connects (one command).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The SSH user is root there (else privileged commands go through `sudo -n`).
    pub root: bool,
    /// `nft` when on `PATH`, else `iptables` when on it.
    pub firewall: Option<Firewall>,
    /// Where cgroup2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid
    /// system), from the host's `/proc/self/mountinfo`.
    pub cgroup2: Option<String>,
}

/// The command that prints a host's [`HostFacts`], one per line.
const FACTS_SCRIPT: &str = "id -u; PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; \
    if command -v nft >/dev/null 2>&1; then echo firewall nftables; elif command -v iptables >/dev/null 2>&1; then echo firewall iptables; fi; \
    m=$(awk '$0 ~ / - cgroup2 / {print $5; exit}' /proc/self/mountinfo 2>/dev/null); \
    if [ -n \"$m\" ] && [ -e \"$m/cgroup.procs\" ]; then echo cgroup2 $m; fi; true";

/// [`HostFacts`] from the output of [`FACTS_SCRIPT`].
fn parse_facts(out: &str) -> HostFacts {
    let mut lines = out.lines();
    let mut facts = HostFacts {
        root: lines.next().map(str::trim) == Some("0"),
        ..HostFacts::default()
    };
    for line in lines {
        match line.trim().split_once(' ') {
            Some(("firewall", "nftables")) => facts.firewall = Some(Firewall::Nftables),
            Some(("firewall", "iptables")) => facts.firewall = Some(Firewall::Iptables),
            Some(("cgroup2", path)) if path.starts_with('/') => {
                facts.cgroup2 = Some(path.trim().to_owned())
            }
            _ => {}
        }
    }
    facts
}

/// What a pause, resume or kill did to a node: how, the process's state read back, and
/// what its cgroup said (supervision by cgroup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAction {
    /// `SIGSTOP`, `cgroup.freeze`, …
    pub how: &'static str,
    pub state: ProcessState,
    pub cgroup: Option<super::cgroup::CgroupReading>,
}

/// A failure on a remote host.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("host {host}: {what}")]
    Host { host: String, what: String },
    #[error("recording {what} in the run's ownership record: {source}")]
    Record {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Quote(#[from] quote::QuoteError),
}

/// The run's connections to its hosts and what it made there.
pub struct RemoteHosts {
    run: RunId,
    /// Before `control`: the masters close before their sockets' directory goes.
    shells: RemoteShells,
    hosts: Vec<HostSpec>,
    /// The run's directory on every host ([`run_root`]).
    root: String,
    /// The hosts where the SSH user is not root: privileged commands go through `sudo -n`.
    with_sudo: std::collections::BTreeSet<String>,
    /// What each host offers (firewall, cgroup2), by host name.
    facts: std::collections::BTreeMap<String, HostFacts>,
    /// Clock faults change the hosts' own clocks (`ssh.set_clock`).
    set_clock: bool,
    /// The hosts whose clock this run shifted.
    clocks_shifted: Mutex<std::collections::BTreeSet<String>>,
    /// The (host, table or interface) pairs in the record already (each recorded once per run).
    tables_recorded: Mutex<std::collections::BTreeSet<(String, String)>>,
    control: ControlDir,
}

impl RemoteHosts {
    /// Records how the hosts are reached, opens a master and a shell per host (control
    /// sockets in `/tmp/sb-ssh-<run>/`).
    pub fn connect(
        run: &RunId,
        hosts: &[HostSpec],
        ssh: &SshSpec,
    ) -> Result<RemoteHosts, RemoteError> {
        let options = SshOptions::from_spec(Some(ssh))?;
        // Recorded with the controller's paths resolved, so cleanup connects the same way
        // whoever's home it runs with.
        let resolved = SshSpec {
            identity: options.identity.as_ref().map(|p| p.display().to_string()),
            known_hosts: options
                .known_hosts
                .as_ref()
                .map(|p| p.display().to_string()),
            ..ssh.clone()
        };
        record(
            run,
            &RemoteRecord::Ssh {
                hosts: hosts.to_vec(),
                ssh: resolved,
            },
        )?;
        let control = ControlDir::create(&format!("sb-ssh-{}", run.as_str())).map_err(|e| {
            RemoteError::Host {
                host: "controller".into(),
                what: format!("creating a control socket directory: {e}"),
            }
        })?;
        let opened = SshTransport::connect(hosts, options, control.path()).and_then(|t| {
            let shells = RemoteShells::new(t);
            shells.open_all(COMMAND_TIMEOUT).map(|()| shells)
        });
        let opened = opened.and_then(|shells| {
            let facts = host_facts(&shells, hosts)?;
            Ok((shells, facts))
        });
        let (shells, facts) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                // Nothing was made on a host: the record names only how to reach them.
                crate::cleanup::forget_if_done(run);
                return Err(e.into());
            }
        };
        Ok(RemoteHosts {
            run: run.clone(),
            shells,
            hosts: hosts.to_vec(),
            root: run_root(ssh.run_parent(), run),
            with_sudo: facts
                .iter()
                .filter(|(_, f)| !f.root)
                .map(|(h, _)| h.clone())
                .collect(),
            facts,
            set_clock: ssh.set_clock,
            clocks_shifted: Mutex::default(),
            tables_recorded: Mutex::default(),
            control,
        })
    }

    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    pub fn run(&self) -> &RunId {
        &self.run
    }

    /// Where the hosts' control sockets are.
    pub fn control_dir(&self) -> &Path {
        self.control.path()
    }

    pub fn shells(&self) -> &RemoteShells {
        &self.shells
    }

    fn sh(&self, host: &str, line: &str) -> Result<String, RemoteError> {
        Ok(self
            .shells
            .run_ok(host, &self.privileged(host, line), COMMAND_TIMEOUT)?)
    }

    /// `line` for `host`: as it is for root; for another user, with `nft`, `tc` and
    /// `unshare` run through `sudo -n` ([`sudo_prelude`]).
    fn privileged(&self, host: &str, line: &str) -> String {
        format!("{}{line}", sudo_prelude(self.with_sudo.contains(host)))
    }

    /// Whether privileged commands on `host` go through `sudo -n` (the SSH user is not root).
    pub fn uses_sudo(&self, host: &str) -> bool {
        self.with_sudo.contains(host)
    }

    /// What `host` offers, as asked when the run connected.
    pub fn facts(&self, host: &str) -> HostFacts {
        self.facts.get(host).cloned().unwrap_or_default()
    }

    /// Whether clock faults change the hosts' own clocks (`ssh.set_clock`).
    pub fn sets_clock(&self) -> bool {
        self.set_clock
    }

    /// Records that `host`'s clock is about to be shifted by `offset_ms` (so cleanup puts it
    /// back) and returns the quoted path of the net offset the host keeps.
    fn clock_about_to_shift(&self, host: &str, offset_ms: i64) -> Result<String, RemoteError> {
        record(
            &self.run,
            &RemoteRecord::ClockOffset {
                host: host.to_owned(),
                offset_ms,
            },
        )?;
        self.clocks_shifted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(host.to_owned());
        Ok(quote::quote(&super::clock::offset_file(&self.root))?)
    }

    /// Shifts `host`'s own clock by `offset_ms` (recorded first; the net offset kept on the
    /// host, [`super::clock::offset_file`]).
    pub fn shift_clock(&self, host: &str, offset_ms: i64) -> Result<(), RemoteError> {
        let file = self.clock_about_to_shift(host, offset_ms)?;
        self.sh(
            host,
            &super::clock::shift_script(&file, &offset_ms.to_string()),
        )?;
        Ok(())
    }

    /// `host`'s clock minus the controller's, in milliseconds (read with `date`, taken at
    /// the midpoint of the round trip).
    pub fn clock_skew_ms(&self, host: &str) -> Result<i64, RemoteError> {
        let before = std::time::SystemTime::now();
        let out = self.sh(host, super::clock::READ_SCRIPT)?;
        let after = std::time::SystemTime::now();
        let ns: i128 = out.trim().parse().map_err(|_| RemoteError::Host {
            host: host.to_owned(),
            what: format!("reading the clock: unexpected answer {out:?}"),
        })?;
        Ok(super::clock::skew_ms(ns, before, after))
    }

    /// Puts back the clocks of the hosts this run shifted (the net offset each keeps).
    fn put_clocks_back(&self) -> Result<(), RemoteError> {
        let shifted: Vec<String> = self
            .clocks_shifted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        let file = quote::quote(&super::clock::offset_file(&self.root))?;
        let mut first = None;
        for host in shifted {
            if let Err(e) = self.sh(&host, &super::clock::undo_script(&file)) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// How `host`'s nodes are supervised: by cgroup where cgroup2 is mounted and the SSH
    /// user is root, else by signals.
    pub fn supervision(&self, host: &str) -> super::cgroup::Supervision {
        let facts = self.facts(host);
        match (facts.root, facts.cgroup2) {
            (true, Some(_)) => super::cgroup::Supervision::Cgroup,
            _ => super::cgroup::Supervision::Signals,
        }
    }

    /// The run's cgroup on `host`, when its nodes are supervised by cgroup.
    fn run_cgroup(&self, host: &str) -> Option<String> {
        let facts = self.facts(host);
        match (facts.root, facts.cgroup2) {
            (true, Some(mount)) => Some(super::cgroup::run_cgroup(&mount, &self.run)),
            _ => None,
        }
    }

    /// Node `node`'s cgroup on `host`, when its nodes are supervised by cgroup.
    pub fn node_cgroup(&self, host: &str, node: &str) -> Option<String> {
        self.run_cgroup(host).map(|run| format!("{run}/{node}"))
    }

    /// The firewall of `host`, or an error naming it when it has neither `nft` nor iptables.
    pub fn firewall(&self, host: &str) -> Result<Firewall, RemoteError> {
        self.facts(host).firewall.ok_or_else(|| RemoteError::Host {
            host: host.to_owned(),
            what: "neither `nft` nor `iptables` is on the host's PATH".into(),
        })
    }

    /// The firewalls of `hosts` as a fault's backend says it (`nftables on the hosts`, or
    /// per host when they differ).
    pub fn firewall_backend<'a>(&self, hosts: impl IntoIterator<Item = &'a str>) -> String {
        let named: Vec<(&str, &str)> = hosts
            .into_iter()
            .map(|h| (h, self.facts(h).firewall.map_or("none", Firewall::name)))
            .collect();
        match named.first() {
            Some((_, first)) if named.iter().all(|(_, f)| f == first) => {
                format!("{first} on the hosts")
            }
            _ => named
                .iter()
                .map(|(h, f)| format!("{f} on {h}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// Node `node`'s directory on `host`, made (and recorded first).
    pub fn make_node_dir(&self, host: &str, node: &str) -> Result<String, RemoteError> {
        let path = format!("{}/{node}", self.root);
        record(
            &self.run,
            &RemoteRecord::Dir {
                host: host.to_owned(),
                path: self.root.clone(),
            },
        )?;
        self.sh(
            host,
            &format!("mkdir -p {}", quote::quote(&format!("{path}/data"))?),
        )?;
        Ok(path)
    }

    /// The program to run on `host`: a bare name must be on the host's `PATH` (with the
    /// `sbin` directories); a path is uploaded from this machine into `node_dir/bin/`.
    pub fn install_program(
        &self,
        host: &str,
        program: &Path,
        node_dir: &str,
    ) -> Result<String, RemoteError> {
        let text = program.display().to_string();
        if !text.contains('/') {
            let line = format!(
                "PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin command -v {}",
                quote::quote(&text)?
            );
            let found = self.shells.run(host, &line, COMMAND_TIMEOUT)?;
            if !found.success() || found.output.trim().is_empty() {
                return Err(RemoteError::Host {
                    host: host.to_owned(),
                    what: format!("the program `{text}` is not on the host's PATH: install it there, or name a local file to upload"),
                });
            }
            return Ok(found.output.trim().to_owned());
        }
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "program".into());
        let bin = format!("{node_dir}/bin");
        self.sh(host, &format!("mkdir -p {}", quote::quote(&bin)?))?;
        let remote = format!("{bin}/{name}");
        self.shells
            .transport()
            .upload(host, program, &remote, Duration::from_secs(120))?;
        Ok(remote)
    }

    /// Starts `program args` on `host` detached (`setsid`, no terminal), in `node_dir/data`,
    /// its output appended to `node_dir/node.log`, its pid in `node_dir/pid`; recorded.
    ///
    /// With `cgroup`, the node goes into that cgroup (made first, the run's cgroup recorded
    /// before) before it runs the program.
    pub fn start(
        &self,
        host: &str,
        node_dir: &str,
        cgroup: Option<&str>,
        program: &str,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<RemoteProcess, RemoteError> {
        let mut words: Vec<String> = vec!["setsid".into()];
        if let Some(cgroup) = cgroup {
            let run_cgroup = self.run_cgroup(host).unwrap_or_default();
            self.record_once(
                host,
                "cgroup",
                RemoteRecord::Cgroup {
                    host: host.to_owned(),
                    path: run_cgroup,
                },
            )?;
            self.sh(host, &super::cgroup::make_script(cgroup)?)?;
            words.extend(super::cgroup::enter_words(cgroup));
        }
        words.push("env".into());
        words.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        words.push(program.to_owned());
        words.extend(args.iter().cloned());
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let command = quote::join(&refs)?;
        let dir = quote::quote(node_dir)?;
        // A background job of a non-interactive shell is no process-group leader, so
        // `setsid` makes its session without forking: `$!` is the node's pid.
        let line = format!(
            "cd {dir}/data && {{ {command} </dev/null >>{dir}/node.log 2>&1 & }} ; pid=$!; echo $pid >{dir}/pid; echo $pid $(sed 's/.*) //' /proc/$pid/stat | cut -d' ' -f20)"
        );
        let out = self.sh(host, &line)?;
        let mut words = out.split_whitespace();
        let parsed = (|| {
            Some(RemoteProcess {
                pid: words.next()?.parse().ok()?,
                start_time: words.next()?.parse().ok()?,
            })
        })();
        let process = parsed.ok_or_else(|| RemoteError::Host {
            host: host.to_owned(),
            what: format!("starting {program}: unexpected answer {out:?}"),
        })?;
        record(
            &self.run,
            &RemoteRecord::Process {
                host: host.to_owned(),
                pid: process.pid,
                start_time: process.start_time,
            },
        )?;
        Ok(process)
    }

    /// Starts, detached in `node_dir` on `host`, a shell loop that flips the offset file
    /// `file` between `high` (first) and `+0` every `period` (a clock strobe), written
    /// atomically as [`RemoteHosts::write_file`] does; recorded like a node process (and,
    /// working in the run's directory, removed by cleanup with it).
    pub fn start_strobe(
        &self,
        host: &str,
        node_dir: &str,
        file: &str,
        high: &str,
        period: Duration,
    ) -> Result<RemoteProcess, RemoteError> {
        let inner = strobe_script(file, high, period)?;
        self.start_loop(host, node_dir, &inner, "a clock strobe")
    }

    /// Starts a strobe of `host`'s own clock (`ssh.set_clock`): a loop of ours, shifting the
    /// clock by `offset_ms` and back every `period` (each shift added to the net offset the
    /// host keeps, as [`Self::shift_clock`] does), recorded like a node process. On SIGTERM
    /// it ends after its next shift back, so the net offset it leaves is what it found.
    /// Needs root on the host (the loop runs `date -s` itself, without `sudo`).
    pub fn start_clock_strobe(
        &self,
        host: &str,
        offset_ms: i64,
        period: Duration,
    ) -> Result<RemoteProcess, RemoteError> {
        if !self.facts(host).root {
            return Err(RemoteError::Host {
                host: host.to_owned(),
                what: "a strobe of the host's own clock needs the SSH user to be root there"
                    .to_owned(),
            });
        }
        let file = self.clock_about_to_shift(host, offset_ms)?;
        let inner = super::clock::strobe_script(&file, offset_ms, period);
        self.start_loop(host, &self.root, &inner, "a strobe of the host's clock")
    }

    /// Puts back whatever net offset the run left on `host`'s clock (the file it keeps).
    pub fn put_back_clock(&self, host: &str) -> Result<(), RemoteError> {
        let file = quote::quote(&super::clock::offset_file(&self.root))?;
        self.sh(host, &super::clock::undo_script(&file))?;
        Ok(())
    }

    /// Starts `inner` (a shell loop of ours) detached in `dir` on `host`, recorded like a
    /// node process (pid and start time).
    fn start_loop(
        &self,
        host: &str,
        dir: &str,
        inner: &str,
        what: &str,
    ) -> Result<RemoteProcess, RemoteError> {
        let dir = quote::quote(dir)?;
        let line = format!(
            "cd {dir} && {{ setsid sh -c {} </dev/null >/dev/null 2>&1 & }} ; pid=$!; echo $pid $(sed 's/.*) //' /proc/$pid/stat | cut -d' ' -f20)",
            quote::quote(inner)?
        );
        let out = self.sh(host, &line)?;
        let mut words = out.split_whitespace();
        let process = (|| {
            Some(RemoteProcess {
                pid: words.next()?.parse().ok()?,
                start_time: words.next()?.parse().ok()?,
            })
        })()
        .ok_or_else(|| RemoteError::Host {
            host: host.to_owned(),
            what: format!("starting {what}: unexpected answer {out:?}"),
        })?;
        record(
            &self.run,
            &RemoteRecord::Process {
                host: host.to_owned(),
                pid: process.pid,
                start_time: process.start_time,
            },
        )?;
        Ok(process)
    }

    /// The process's state now.
    pub fn state(&self, host: &str, process: RemoteProcess) -> Result<ProcessState, RemoteError> {
        let out = self.sh(host, &state_script(process))?;
        Ok(parse_state(&out))
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`, `TERM`) and reads the state back.
    pub fn signal(
        &self,
        host: &str,
        process: RemoteProcess,
        signal: &str,
    ) -> Result<ProcessState, RemoteError> {
        // A signal is delivered asynchronously: a stop shows as `T` a moment later.
        let until = match signal {
            "STOP" => "= T",
            "CONT" => "!= T",
            _ => "= gone",
        };
        let signal = quote::quote(signal)?;
        let state = state_script(process);
        let line = format!(
            "if [ \"$({state})\" != gone ]; then kill -{signal} {pid}; fi; \
             i=0; while [ $i -lt 200 ] && ! [ \"$({state})\" {until} ] && [ \"$({state})\" != gone ]; do sleep 0.005; i=$((i+1)); done; {state}",
            pid = process.pid,
        );
        Ok(parse_state(&self.sh(host, &line)?))
    }

    /// Stops the process: SIGTERM, SIGKILL after `grace`; waits until it is gone.
    pub fn stop(
        &self,
        host: &str,
        process: RemoteProcess,
        grace: Duration,
    ) -> Result<ProcessState, RemoteError> {
        Ok(parse_state(&self.sh(host, &stop_script(process, grace))?))
    }

    /// Freezes (`freeze`) or thaws node cgroup `cgroup` and reads the process's state back.
    pub fn freeze(
        &self,
        host: &str,
        cgroup: &str,
        process: RemoteProcess,
        freeze: bool,
    ) -> Result<NodeAction, RemoteError> {
        let state = state_script(process);
        let line = match freeze {
            true => super::cgroup::freeze_script(cgroup, &state)?,
            false => super::cgroup::thaw_script(cgroup, &state)?,
        };
        let out = self.sh(host, &line)?;
        Ok(NodeAction {
            how: if freeze {
                "cgroup.freeze 1"
            } else {
                "cgroup.freeze 0"
            },
            state: parse_state(&out),
            cgroup: Some(super::cgroup::CgroupReading::parse(&out)),
        })
    }

    /// Kills every process of node cgroup `cgroup` and waits until it is empty.
    pub fn kill_cgroup(
        &self,
        host: &str,
        cgroup: &str,
        process: RemoteProcess,
    ) -> Result<NodeAction, RemoteError> {
        let out = self.sh(
            host,
            &super::cgroup::kill_script(cgroup, &state_script(process))?,
        )?;
        Ok(NodeAction {
            how: "cgroup.kill",
            state: parse_state(&out),
            cgroup: Some(super::cgroup::CgroupReading::parse(&out)),
        })
    }

    /// Stops a node in cgroup `cgroup`: SIGTERM, after `grace` the whole cgroup killed, its
    /// directory removed.
    pub fn stop_cgroup(
        &self,
        host: &str,
        cgroup: &str,
        process: RemoteProcess,
        grace: Duration,
    ) -> Result<ProcessState, RemoteError> {
        let tenths = (grace.as_millis() / 100) as u64;
        let line = super::cgroup::stop_script(cgroup, process.pid, tenths, &state_script(process))?;
        Ok(parse_state(&self.sh(host, &line)?))
    }

    /// Kills the process (SIGKILL) and waits until it is gone.
    pub fn kill(&self, host: &str, process: RemoteProcess) -> Result<ProcessState, RemoteError> {
        Ok(parse_state(
            &self.sh(host, &stop_script(process, Duration::ZERO))?,
        ))
    }

    /// Puts the run's partition table in force on `host`: input from `drop_from` dropped
    /// (and counted). Recorded before it is made.
    pub fn partition(&self, host: &str, drop_from: &[String]) -> Result<String, RemoteError> {
        if self.firewall(host)? == Firewall::Iptables {
            check_addresses(host, "partition", drop_from)?;
            let chain = super::iptables::partition_chain(&self.run);
            self.record_chain(host, &chain)?;
            let (line, rules) = super::iptables::partition_script(&chain, drop_from);
            self.sh(host, &line)?;
            return Ok(rules);
        }
        let table = nft_table(&self.run);
        self.record_once(
            host,
            &table,
            RemoteRecord::NftTable {
                host: host.to_owned(),
                table: table.clone(),
            },
        )?;
        check_addresses(host, "partition", drop_from)?;
        let rule = format!("ip saddr {{ {} }} counter drop", drop_from.join(", "));
        let line = format!(
            "nft -f - <<'SPLITBRAIN_NFT'\ntable inet {table} {{\n chain input {{ type filter hook input priority -10; policy accept; {rule}; }}\n}}\nSPLITBRAIN_NFT"
        );
        self.sh(host, &line)?;
        Ok(format!("table inet {table}: {rule}"))
    }

    /// Removes the run's partition table from `host` (nothing to do when it is not there).
    pub fn heal(&self, host: &str) -> Result<(), RemoteError> {
        match self.facts(host).firewall {
            // Nothing can have been made there.
            None => return Ok(()),
            Some(Firewall::Iptables) => {
                let chain = super::iptables::partition_chain(&self.run);
                self.sh(host, &super::iptables::remove_script(&chain))?;
                return Ok(());
            }
            Some(Firewall::Nftables) => {}
        }
        let table = nft_table(&self.run);
        self.sh(
            host,
            // One `nft` when the table is there; a second only to tell "not there" from a failure.
            &format!("nft delete table inet {table} 2>/dev/null || ! nft list table inet {table} >/dev/null 2>&1"),
        )?;
        Ok(())
    }

    /// Records the run's iptables chain `chain` on `host` (once).
    fn record_chain(&self, host: &str, chain: &str) -> Result<(), RemoteError> {
        self.record_once(
            host,
            chain,
            RemoteRecord::IptablesChain {
                host: host.to_owned(),
                chain: chain.to_owned(),
            },
        )
    }

    /// Records `what` unless this run recorded it (`host`, `key`) before.
    fn record_once(&self, host: &str, key: &str, what: RemoteRecord) -> Result<(), RemoteError> {
        let mut recorded = self
            .tables_recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let key = (host.to_owned(), key.to_owned());
        if !recorded.contains(&key) {
            record(&self.run, &what)?;
            recorded.insert(key);
        }
        Ok(())
    }

    /// Makes `percent`% of the packets between `host` and `peers` (both ways) dropped, and
    /// counted, by the run's loss table. Recorded before it is made.
    pub fn apply_loss(
        &self,
        host: &str,
        peers: &[String],
        percent: u8,
    ) -> Result<String, RemoteError> {
        check_addresses(host, "loss", peers)?;
        if self.firewall(host)? == Firewall::Iptables {
            let chain = super::iptables::loss_chain(&self.run);
            self.record_chain(host, &chain)?;
            let (line, rules) = super::iptables::loss_script(&chain, peers, percent);
            self.sh(host, &line)?;
            return Ok(rules);
        }
        let table = loss_table(&self.run);
        self.record_once(
            host,
            &table,
            RemoteRecord::NftTable {
                host: host.to_owned(),
                table: table.clone(),
            },
        )?;
        let (script, rules) = loss_script(&table, peers, percent);
        self.sh(
            host,
            &format!("nft -f - <<'SPLITBRAIN_NFT'\n{script}\nSPLITBRAIN_NFT"),
        )?;
        Ok(format!("table inet {table}: {rules}"))
    }

    /// How many packets the run's loss table on `host` dropped (its counters).
    pub fn loss_dropped(&self, host: &str) -> Result<u64, RemoteError> {
        if self.firewall(host)? == Firewall::Iptables {
            let chain = super::iptables::loss_chain(&self.run);
            let out = self.sh(host, &super::iptables::counters_script(&chain))?;
            return Ok(super::iptables::sum_dropped(&out));
        }
        let out = self.sh(
            host,
            &format!("nft list table inet {}", loss_table(&self.run)),
        )?;
        Ok(sum_counters(&out))
    }

    /// Removes the run's loss table from `host` (nothing to do when it is not there).
    pub fn heal_loss(&self, host: &str) -> Result<(), RemoteError> {
        match self.facts(host).firewall {
            None => return Ok(()),
            Some(Firewall::Iptables) => {
                let chain = super::iptables::loss_chain(&self.run);
                self.sh(host, &super::iptables::remove_script(&chain))?;
                return Ok(());
            }
            Some(Firewall::Nftables) => {}
        }
        let table = loss_table(&self.run);
        self.sh(
            host,
            &format!("nft delete table inet {table} 2>/dev/null || ! nft list table inet {table} >/dev/null 2>&1"),
        )?;
        Ok(())
    }

    /// Sends `count` small UDP datagrams from `host` to `to`'s port `port` (bash's
    /// `/dev/udp`; nobody need listen), to give a loss rule packets to match.
    pub fn send_udp_burst(
        &self,
        host: &str,
        to: &str,
        port: u16,
        count: usize,
    ) -> Result<(), RemoteError> {
        check_addresses(host, "probe", &[to.to_owned()])?;
        self.sh(
            host,
            &format!(
                "timeout 10 bash -c 'exec 3<>/dev/udp/{to}/{port} && for i in $(seq {count}); do echo splitbrain-probe >&3 2>/dev/null; done; true'"
            ),
        )?;
        Ok(())
    }

    /// The interface of `host` its packets to `peer` leave by (`ip route get`).
    pub fn interface_toward(&self, host: &str, peer: &str) -> Result<String, RemoteError> {
        check_addresses(host, "route", &[peer.to_owned()])?;
        let out = self.sh(
            host,
            &format!("PATH=$PATH:/usr/sbin:/sbin ip -o route get {peer}"),
        )?;
        parse_route_dev(&out).ok_or_else(|| RemoteError::Host {
            host: host.to_owned(),
            what: format!("no interface toward {peer} in {:?}", out.trim()),
        })
    }

    /// Puts netem (`netem` its arguments, `delay 50ms` say) on what `host` sends to `peers`:
    /// the run's `prio` root qdisc on the interface toward them, netem on its fourth band
    /// and a filter per peer sending it there. Recorded before it is made; a root qdisc
    /// that is not the default is never replaced (the command fails).
    pub fn apply_netem(
        &self,
        host: &str,
        peers: &[String],
        netem: &[String],
    ) -> Result<String, RemoteError> {
        let Some(first) = peers.first() else {
            return Err(RemoteError::Host {
                host: host.to_owned(),
                what: "netem: no peers".into(),
            });
        };
        check_addresses(host, "netem", peers)?;
        let dev = self.interface_toward(host, first)?;
        self.record_once(
            host,
            &format!("qdisc {dev}"),
            RemoteRecord::Qdisc {
                host: host.to_owned(),
                dev: dev.clone(),
            },
        )?;
        let (line, rules) = netem_script(&dev, peers, netem)?;
        self.sh(host, &line)?;
        Ok(rules)
    }

    /// The run's qdiscs on `host` as `tc -s qdisc show` lists them (counters included).
    pub fn qdisc_stats(&self, host: &str, dev: &str) -> Result<String, RemoteError> {
        let dev = quote::quote(dev)?;
        self.sh(
            host,
            &format!("PATH=$PATH:/usr/sbin:/sbin tc -s qdisc show dev {dev}"),
        )
    }

    /// Removes the run's root qdisc from `dev` of `host` (nothing when it is not there).
    pub fn heal_netem(&self, host: &str, dev: &str) -> Result<(), RemoteError> {
        self.sh(host, &remove_qdisc_script(dev)?)?;
        Ok(())
    }

    /// Connect round trips from `host` to `to`:`port` (`count` in a row, in one `bash`,
    /// timed with `EPOCHREALTIME`): a refused connect comes back after one round trip.
    pub fn connect_rtts(
        &self,
        host: &str,
        to: &str,
        port: u16,
        count: usize,
        limit: Duration,
    ) -> Result<Vec<Duration>, RemoteError> {
        check_addresses(host, "probe", &[to.to_owned()])?;
        let line = format!(
            "timeout {:.3} bash -c 'for i in $(seq {count}); do s=$EPOCHREALTIME; : 2>/dev/null 3<>/dev/tcp/{to}/{port}; e=$EPOCHREALTIME; echo \"$s $e\"; done'; true",
            limit.as_secs_f64()
        );
        let out = self.sh(host, &line)?;
        Ok(parse_rtts(&out))
    }

    /// libfaketime's library on `host`: the path `ldconfig -p` gives, else the Debian path.
    pub fn find_libfaketime(&self, host: &str) -> Result<String, RemoteError> {
        let line = "p=$(ldconfig -p 2>/dev/null | grep 'libfaketime.so' | head -n 1 | sed 's/.*=> //'); \
                    if [ -z \"$p\" ]; then for c in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do [ -e \"$c\" ] && p=$c && break; done; fi; \
                    [ -n \"$p\" ] && echo \"$p\"";
        let out = self.shells.run(host, line, COMMAND_TIMEOUT)?;
        match out.output.trim() {
            path if out.success() && !path.is_empty() => Ok(path.to_owned()),
            _ => Err(RemoteError::Host {
                host: host.to_owned(),
                what: "libfaketime is not installed (clock faults need it: apt-get install libfaketime)".into(),
            }),
        }
    }

    /// Replaces `path` on `host` with `text` and a line break, atomically (write, rename).
    pub fn write_file(&self, host: &str, path: &str, text: &str) -> Result<(), RemoteError> {
        let file = quote::quote(path)?;
        let tmp = quote::quote(&format!("{path}.tmp"))?;
        let text = quote::quote(text)?;
        self.sh(
            host,
            &format!("printf '%s\\n' {text} >{tmp} && mv {tmp} {file}"),
        )?;
        Ok(())
    }

    /// Removes the run's partition and loss tables and its root qdiscs from every host, and
    /// puts back the clocks it shifted.
    pub fn heal_all(&self) -> Result<(), RemoteError> {
        let clocks = self.put_clocks_back();
        let made: Vec<(String, String)> = self
            .tables_recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        let loss = loss_table(&self.run);
        let mut first = None;
        for host in &self.hosts {
            if let Err(e) = self.heal(&host.name) {
                first.get_or_insert(e);
            }
            for (h, key) in made.iter().filter(|(h, _)| *h == host.name) {
                let result = match key.strip_prefix("qdisc ") {
                    Some(dev) => self.heal_netem(h, dev),
                    None if *key == loss || *key == super::iptables::loss_chain(&self.run) => {
                        self.heal_loss(h)
                    }
                    None => Ok(()),
                };
                if let Err(e) = result {
                    first.get_or_insert(e);
                }
            }
        }
        if let Err(e) = clocks {
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }

    /// Checks that `program` is on every host's `PATH` (with the `sbin` directories): the
    /// hosts that lack it, by name. `a|b` asks for either ([`FIREWALL_PROGRAMS`]).
    pub fn hosts_without(&self, program: &str) -> Result<Vec<String>, RemoteError> {
        let alternatives: Vec<String> = program
            .split('|')
            .map(|p| Ok(format!("command -v {}", quote::quote(p)?)))
            .collect::<Result<_, RemoteError>>()?;
        let line = format!(
            "PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; {}",
            alternatives.join(" || ")
        );
        let mut missing = Vec::new();
        for host in &self.hosts {
            if !self
                .shells
                .run(&host.name, &line, COMMAND_TIMEOUT)?
                .success()
            {
                missing.push(host.name.clone());
            }
        }
        Ok(missing)
    }

    /// The hosts where a netem qdisc cannot be added (tried in a throwaway network namespace,
    /// as `doctor` does), each with why.
    pub fn hosts_without_netem(&self) -> Result<Vec<String>, RemoteError> {
        let line = "PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; unshare --net sh -c 'ip link set lo up && tc qdisc add dev lo root netem delay 1ms' 2>&1 | head -n 1";
        let mut missing = Vec::new();
        for host in &self.hosts {
            let out = self.shells.run(
                &host.name,
                &self.privileged(&host.name, line),
                COMMAND_TIMEOUT,
            )?;
            if !out.success() || !out.output.trim().is_empty() {
                missing.push(format!("{} ({})", host.name, out.output.trim()));
            }
        }
        Ok(missing)
    }

    /// Whether a TCP connection from `host` to `target` opens within `timeout`.
    pub fn probe(
        &self,
        host: &str,
        target: SocketAddr,
        timeout: Duration,
    ) -> Result<Reach, RemoteError> {
        let line = probe_script(target, timeout);
        let out = self.shells.run(host, &line, COMMAND_TIMEOUT)?;
        Ok(match out.status {
            0 => Reach::Reachable,
            124 => Reach::Blocked(format!("no answer within {}ms", timeout.as_millis())),
            _ => Reach::Blocked(out.output.trim().to_owned()),
        })
    }

    /// Copies `remote` from `host` into the local file `local` (the output of `cat`).
    pub fn fetch(&self, host: &str, remote: &str, local: &Path) -> Result<(), RemoteError> {
        let out =
            self.shells
                .transport()
                .run_ok(host, &["cat", remote], Duration::from_secs(60))?;
        std::fs::write(local, &out.stdout).map_err(|e| RemoteError::Host {
            host: host.to_owned(),
            what: format!("writing {}: {e}", local.display()),
        })
    }

    /// Removes the run's directory from every host, and its cgroup where it made one.
    pub fn remove_run_dirs(&self) -> Result<(), RemoteError> {
        let root = quote::quote(&self.root)?;
        let made_cgroups: Vec<String> = self
            .tables_recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, key)| key == "cgroup")
            .map(|(h, _)| h.clone())
            .collect();
        for host in &self.hosts {
            if made_cgroups.contains(&host.name) {
                if let Some(cgroup) = self.run_cgroup(&host.name) {
                    self.sh(&host.name, &super::cgroup::remove_run_script(&cgroup)?)?;
                }
            }
            self.sh(&host.name, &format!("rm -rf {root}"))?;
        }
        Ok(())
    }
}

/// Prints the process's state letter, or `gone` (no such pid, a zombie, or another
/// process that reuses the pid).
fn state_script(process: RemoteProcess) -> String {
    let pid = process.pid;
    format!(
        "s=$(sed 's/.*) //' /proc/{pid}/stat 2>/dev/null); set -- $s; if [ -n \"$s\" ] && [ \"$1\" != Z ] && [ \"${{20}}\" = {} ]; then echo $1; else echo gone; fi",
        process.start_time
    )
}

fn stop_script(process: RemoteProcess, grace: Duration) -> String {
    let state = state_script(process);
    let pid = process.pid;
    let tenths = (grace.as_millis() / 100) as u64;
    format!(
        "i=0; if [ \"$({state})\" != gone ]; then kill -CONT {pid} 2>/dev/null; if [ {tenths} -gt 0 ]; then kill -TERM {pid}; fi; \
         while [ $i -lt {tenths} ] && [ \"$({state})\" != gone ]; do sleep 0.1; i=$((i+1)); done; \
         if [ \"$({state})\" != gone ]; then kill -KILL {pid}; fi; \
         i=0; while [ $i -lt 100 ] && [ \"$({state})\" != gone ]; do sleep 0.05; i=$((i+1)); done; fi; {state}"
    )
}

/// A TCP connect from the host: bash's `/dev/tcp` under `timeout` (status 124 when it ran out).
fn probe_script(target: SocketAddr, timeout: Duration) -> String {
    format!(
        "timeout {:.3} bash -c 'exec 3<>/dev/tcp/{}/{}' 2>&1",
        timeout.as_secs_f64(),
        target.ip(),
        target.port()
    )
}

/// What partitions and loss need on a host: either program ([`RemoteHosts::hosts_without`]).
pub const FIREWALL_PROGRAMS: &str = "nft|iptables";

/// The commands that need root on a host: nftables, iptables, tc, `unshare` (the netem
/// check) and `date` (setting the host's clock).
pub const PRIVILEGED_COMMANDS: &[&str] = &["nft", "iptables", "tc", "unshare", "date"];

/// What goes before a command line on a host where the SSH user is not root: shell
/// functions that run each of [`PRIVILEGED_COMMANDS`] through `sudo -n` (never a password
/// prompt: a missing sudo rule is an error, as `doctor` reports it). Empty for root.
pub fn sudo_prelude(with_sudo: bool) -> String {
    if !with_sudo {
        return String::new();
    }
    PRIVILEGED_COMMANDS
        .iter()
        .map(|c| format!("{c}() {{ sudo -n {c} \"$@\"; }}; "))
        .collect()
}

/// What each of `hosts` offers (one command per host, all hosts at once).
fn host_facts(
    shells: &RemoteShells,
    hosts: &[HostSpec],
) -> Result<std::collections::BTreeMap<String, HostFacts>, SshError> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|host| {
                scope.spawn(move || {
                    let out = shells.run_ok(&host.name, FACTS_SCRIPT, COMMAND_TIMEOUT)?;
                    Ok((host.name.clone(), parse_facts(&out)))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("asking a host does not panic"))
            .collect()
    })
}

/// The shell loop of a clock strobe: `high` written first (by the caller), then `+0`,
/// `high`, … every `period`.
fn strobe_script(file: &str, high: &str, period: Duration) -> Result<String, RemoteError> {
    let file_q = quote::quote(file)?;
    let tmp_q = quote::quote(&format!("{file}.tmp"))?;
    let high_q = quote::quote(high)?;
    Ok(format!(
        "high=1; while :; do sleep {:.3}; if [ $high = 1 ]; then high=0; s=+0; else high=1; s={high_q}; fi; printf '%s\\n' \"$s\" >{tmp_q} && mv {tmp_q} {file_q}; done",
        period.as_secs_f64()
    ))
}

/// Refuses anything but IP addresses where a command line takes one.
fn check_addresses(host: &str, what: &str, addresses: &[String]) -> Result<(), RemoteError> {
    match addresses
        .iter()
        .find(|a| a.parse::<std::net::IpAddr>().is_err())
    {
        Some(address) => Err(RemoteError::Host {
            host: host.to_owned(),
            what: format!("{what}: {address:?} is not an IP address"),
        }),
        None => Ok(()),
    }
}

/// The nft script of a run's loss table (dropping `percent`% of the packets from and to
/// `peers`, counted), and its rules in one line for the record.
fn loss_script(table: &str, peers: &[String], percent: u8) -> (String, String) {
    // numgen yields 0..=99; `<= P-1` drops P of them (as the local loss rules).
    let below = percent.clamp(1, 100) - 1;
    let set = peers.join(", ");
    let input = format!("ip saddr {{ {set} }} numgen random mod 100 <= {below} counter drop");
    let output = format!("ip daddr {{ {set} }} numgen random mod 100 <= {below} counter drop");
    (
        format!(
            "table inet {table} {{\n chain input {{ type filter hook input priority -5; policy accept; {input}; }}\n chain output {{ type filter hook output priority -5; policy accept; {output}; }}\n}}"
        ),
        format!("input: {input}; output: {output}"),
    )
}

/// The sum of the packet counters in an `nft list` listing.
fn sum_counters(listing: &str) -> u64 {
    listing
        .split("counter packets ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The `dev` of an `ip -o route get` answer.
fn parse_route_dev(out: &str) -> Option<String> {
    let mut words = out.split_whitespace();
    while let Some(word) = words.next() {
        if word == "dev" {
            return words.next().map(str::to_owned);
        }
    }
    None
}

/// The shell line that puts the run's prio qdisc, netem and one filter per peer on `dev`
/// (taking the prio qdisc out again when a later step fails), and the rules for the record.
fn netem_script(
    dev: &str,
    peers: &[String],
    netem: &[String],
) -> Result<(String, String), RemoteError> {
    let q = quote::quote(dev)?;
    let netem: Vec<String> = netem
        .iter()
        .map(|a| quote::quote(a))
        .collect::<Result<_, _>>()?;
    let netem = netem.join(" ");
    let mut steps = vec![format!(
        "tc qdisc add dev {q} parent {QDISC_HANDLE}4 handle {NETEM_HANDLE} netem {netem}"
    )];
    steps.extend(peers.iter().map(|p| {
        format!("tc filter add dev {q} parent {QDISC_HANDLE} protocol ip prio 1 u32 match ip dst {p}/32 flowid {QDISC_HANDLE}4")
    }));
    let line = format!(
        "PATH=$PATH:/usr/sbin:/sbin; tc qdisc add dev {q} root handle {QDISC_HANDLE} prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1 || exit 1; \
         {{ {}; }} || {{ tc qdisc del dev {q} root handle {QDISC_HANDLE}; exit 1; }}",
        steps.join(" && ")
    );
    let rules = format!(
        "{dev}: prio {QDISC_HANDLE}, netem {netem} for {}",
        peers.join(", ")
    );
    Ok((line, rules))
}

/// Deletes the root qdisc of `dev` when it is the run's ([`QDISC_HANDLE`]), and says `removed`.
fn remove_qdisc_script(dev: &str) -> Result<String, RemoteError> {
    let q = quote::quote(dev)?;
    Ok(format!(
        "PATH=$PATH:/usr/sbin:/sbin; if tc qdisc show dev {q} 2>/dev/null | grep -q '^qdisc prio {QDISC_HANDLE} root'; then tc qdisc del dev {q} root && echo removed; fi"
    ))
}

/// Round trips from lines of two `EPOCHREALTIME` readings (`start end`, seconds).
fn parse_rtts(out: &str) -> Vec<Duration> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let start: f64 = w.next()?.replace(',', ".").parse().ok()?;
            let end: f64 = w.next()?.replace(',', ".").parse().ok()?;
            Some(Duration::from_secs_f64((end - start).max(0.0)))
        })
        .collect()
}

fn parse_state(out: &str) -> ProcessState {
    match out.split_whitespace().last() {
        Some("gone") | None => ProcessState::Gone,
        Some(s) => ProcessState::Running(s.chars().next().unwrap_or('?')),
    }
}

fn record(run: &RunId, record: &RemoteRecord) -> Result<(), RemoteError> {
    crate::cleanup::record(run, &[record.resource()]).map_err(|source| RemoteError::Record {
        what: format!("{record:?}"),
        source,
    })
}

/// A private directory under `/tmp` for control sockets (short: a socket path holds at most
/// [`super::ssh::MAX_CONTROL_PATH`] bytes), removed when dropped.
pub struct ControlDir(PathBuf);

impl ControlDir {
    pub fn create(name: &str) -> std::io::Result<ControlDir> {
        use std::os::unix::fs::DirBuilderExt;
        let path = Path::new("/tmp").join(name);
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(ControlDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One node on a remote host: what starts it, and the process it runs now.
pub struct RemoteNode {
    pub name: String,
    pub host: String,
    /// The node's directory on its host.
    pub dir: String,
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the controller checks that the node is ready (a TCP connect).
    pub ready_at: SocketAddr,
    process: Mutex<Option<RemoteProcess>>,
    paused: AtomicBool,
    /// The harness asked the current process to end (a kill fault, the stop at the end):
    /// its death is no news. Also set once an unexpected death has been reported.
    expecting_exit: AtomicBool,
    /// Which start of the node the current process is (1 for the first).
    generation: std::sync::atomic::AtomicU64,
}

impl RemoteNode {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        host: String,
        dir: String,
        program: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        ready_at: SocketAddr,
    ) -> RemoteNode {
        RemoteNode {
            name,
            host,
            dir,
            program,
            args,
            env,
            ready_at,
            process: Mutex::new(None),
            paused: AtomicBool::new(false),
            expecting_exit: AtomicBool::new(false),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Which start of the node the current process is (1 for the first).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Whether the current process died without the harness asking: checked over the
    /// host's shell (one command); `Some(pid)` once per death (later calls say `None`).
    pub fn died_unexpectedly(&self, hosts: &RemoteHosts) -> Result<Option<u32>, RemoteError> {
        let Some(process) = self.process() else {
            return Ok(None);
        };
        if self.expecting_exit.load(Ordering::SeqCst) {
            return Ok(None);
        }
        if hosts.state(&self.host, process)? != ProcessState::Gone {
            return Ok(None);
        }
        // A kill or stop sets the flag before its signal: if it did meanwhile, the death
        // was asked for. Otherwise the flag now says "reported".
        let news = self
            .expecting_exit
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            && self.process() == Some(process);
        Ok(news.then_some(process.pid))
    }

    /// The last `lines` lines of the node's log on its host.
    pub fn log_tail(&self, hosts: &RemoteHosts, lines: usize) -> Vec<String> {
        let Ok(dir) = quote::quote(&self.dir) else {
            return Vec::new();
        };
        hosts
            .shells()
            .run(
                &self.host,
                &format!("tail -n {lines} {dir}/node.log"),
                COMMAND_TIMEOUT,
            )
            .map(|o| o.output.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    pub fn process(&self) -> Option<RemoteProcess> {
        *self.process.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Starts the node (again).
    pub fn start(&self, hosts: &RemoteHosts) -> Result<RemoteProcess, RemoteError> {
        let cgroup = hosts.node_cgroup(&self.host, &self.name);
        let process = hosts.start(
            &self.host,
            &self.dir,
            cgroup.as_deref(),
            &self.program,
            &self.args,
            &self.env,
        )?;
        *self.process.lock().unwrap_or_else(|e| e.into_inner()) = Some(process);
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.expecting_exit.store(false, Ordering::SeqCst);
        Ok(process)
    }

    /// Waits until the node accepts TCP connections at [`RemoteNode::ready_at`] (from the
    /// controller), failing early when its process is gone (with its log's tail).
    pub fn wait_ready(
        &self,
        hosts: &RemoteHosts,
        limit: Duration,
    ) -> Result<Duration, RemoteError> {
        let started = Instant::now();
        let mut checks = 0u32;
        loop {
            if std::net::TcpStream::connect_timeout(&self.ready_at, Duration::from_millis(200))
                .is_ok()
            {
                return Ok(started.elapsed());
            }
            checks += 1;
            if checks % 10 == 0 {
                if let Some(process) = self.process() {
                    if hosts.state(&self.host, process)? == ProcessState::Gone {
                        let tail = hosts
                            .shells()
                            .run(
                                &self.host,
                                &format!("tail -n 20 {}/node.log", quote::quote(&self.dir)?),
                                COMMAND_TIMEOUT,
                            )
                            .map(|o| o.output)
                            .unwrap_or_default();
                        return Err(RemoteError::Host {
                            host: self.host.clone(),
                            what: format!(
                                "node {} exited before it was ready: {}",
                                self.name,
                                tail.trim()
                            ),
                        });
                    }
                }
            }
            if started.elapsed() > limit {
                return Err(RemoteError::Host {
                    host: self.host.clone(),
                    what: format!(
                        "node {} did not accept connections at {} within {}",
                        self.name,
                        self.ready_at,
                        humantime::format_duration(limit)
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Freezes the node's cgroup (supervision by cgroup), else SIGSTOP; the state read back.
    pub fn pause(&self, hosts: &RemoteHosts) -> Result<NodeAction, RemoteError> {
        let process = self.require_process()?;
        let action = match hosts.node_cgroup(&self.host, &self.name) {
            Some(cgroup) => hosts.freeze(&self.host, &cgroup, process, true)?,
            None => NodeAction {
                how: "SIGSTOP",
                state: hosts.signal(&self.host, process, "STOP")?,
                cgroup: None,
            },
        };
        self.paused.store(true, Ordering::SeqCst);
        Ok(action)
    }

    /// Thaws the node's cgroup, else SIGCONT; the state read back.
    pub fn resume(&self, hosts: &RemoteHosts) -> Result<NodeAction, RemoteError> {
        let process = self.require_process()?;
        let action = match hosts.node_cgroup(&self.host, &self.name) {
            Some(cgroup) => hosts.freeze(&self.host, &cgroup, process, false)?,
            None => NodeAction {
                how: "SIGCONT",
                state: hosts.signal(&self.host, process, "CONT")?,
                cgroup: None,
            },
        };
        self.paused.store(false, Ordering::SeqCst);
        Ok(action)
    }

    /// Kills the node's whole cgroup, else SIGKILL to its pid; waited for.
    pub fn kill(&self, hosts: &RemoteHosts) -> Result<NodeAction, RemoteError> {
        let process = self.require_process()?;
        self.expecting_exit.store(true, Ordering::SeqCst);
        match hosts.node_cgroup(&self.host, &self.name) {
            Some(cgroup) => hosts.kill_cgroup(&self.host, &cgroup, process),
            None => Ok(NodeAction {
                how: "SIGKILL",
                state: hosts.kill(&self.host, process)?,
                cgroup: None,
            }),
        }
    }

    /// SIGTERM, then after [`STOP_GRACE`] SIGKILL (the whole cgroup, removed, with
    /// supervision by cgroup); nothing to do when it never started.
    pub fn stop(&self, hosts: &RemoteHosts) -> Result<(), RemoteError> {
        if let Some(process) = self.process() {
            self.expecting_exit.store(true, Ordering::SeqCst);
            match hosts.node_cgroup(&self.host, &self.name) {
                Some(cgroup) => hosts.stop_cgroup(&self.host, &cgroup, process, STOP_GRACE)?,
                None => hosts.stop(&self.host, process, STOP_GRACE)?,
            };
            self.paused.store(false, Ordering::SeqCst);
        }
        Ok(())
    }

    fn require_process(&self) -> Result<RemoteProcess, RemoteError> {
        self.process().ok_or_else(|| RemoteError::Host {
            host: self.host.clone(),
            what: format!("node {} has no process", self.name),
        })
    }

    /// Copies the node's log into `local_dir/node.log`.
    pub fn fetch_log(&self, hosts: &RemoteHosts, local_dir: &Path) -> Result<PathBuf, RemoteError> {
        std::fs::create_dir_all(local_dir).map_err(|e| RemoteError::Host {
            host: self.host.clone(),
            what: format!("creating {}: {e}", local_dir.display()),
        })?;
        let local = local_dir.join("node.log");
        hosts.fetch(&self.host, &format!("{}/node.log", self.dir), &local)?;
        Ok(local)
    }
}

/// The cleanup step for remote hosts: for each run record with remote lines, connects to
/// its hosts as the run did and removes, on each, the run's processes (by pid and start
/// time, and any process whose working directory lies in the run's directory), its
/// partition table and its directory.
pub const CLEANUP_STEP: CleanupStep = CleanupStep {
    name: "remote hosts",
    run: cleanup_remote,
};

fn cleanup_remote(record: &RunRecord, report: &mut CleanupReport) {
    let mut ssh = None;
    let mut records = Vec::new();
    for resource in &record.resources {
        let Resource::Remote(line) = resource else {
            continue;
        };
        match serde_json::from_str::<RemoteRecord>(line) {
            Ok(RemoteRecord::Ssh { hosts, ssh: spec }) => ssh = Some((hosts, spec)),
            Ok(other) => records.push(other),
            Err(e) => report.errors.push(format!(
                "run {}: unreadable remote record {line:?}: {e}",
                record.run
            )),
        }
    }
    let Some((hosts, spec)) = ssh else {
        if !records.is_empty() {
            report.errors.push(format!(
                "run {}: remote resources without the record of how to reach their hosts",
                record.run
            ));
        }
        return;
    };
    let control =
        match ControlDir::create(&format!("sb-cleanup-{}-{}", record.run, std::process::id())) {
            Ok(dir) => dir,
            Err(e) => {
                report
                    .errors
                    .push(format!("run {}: a control directory: {e}", record.run));
                return;
            }
        };
    let options = match SshOptions::from_spec(Some(&spec)) {
        Ok(o) => o,
        Err(e) => {
            report.errors.push(format!("run {}: {e}", record.run));
            return;
        }
    };
    let transport = match SshTransport::connect(&hosts, options, control.path()) {
        Ok(t) => t,
        Err(e) => {
            report
                .errors
                .push(format!("run {}: reaching its hosts: {e}", record.run));
            return;
        }
    };
    let shells = RemoteShells::new(transport);
    // The dead controller's own control sockets (its masters exit when idle).
    let local = Path::new("/tmp").join(format!("sb-ssh-{}", record.run));
    if local.is_dir() {
        match std::fs::remove_dir_all(&local) {
            Ok(()) => report
                .removed
                .push(format!("run {}: {}", record.run, local.display())),
            Err(e) => report.errors.push(format!(
                "run {}: removing {}: {e}",
                record.run,
                local.display()
            )),
        }
    }
    let root = run_root(spec.run_parent(), &record.run);
    let facts = match host_facts(&shells, &hosts) {
        Ok(f) => f,
        Err(e) => {
            report
                .errors
                .push(format!("run {}: reaching its hosts: {e}", record.run));
            return;
        }
    };
    let table = nft_table(&record.run);
    for host in &hosts {
        let mut lines = Vec::new();
        for r in &records {
            match r {
                RemoteRecord::Process {
                    host: h,
                    pid,
                    start_time,
                } if *h == host.name => {
                    let process = RemoteProcess {
                        pid: *pid,
                        start_time: *start_time,
                    };
                    lines.push((
                        format!("process {pid}"),
                        format!(
                            "if [ \"$({})\" != gone ]; then {}; echo removed; fi",
                            state_script(process),
                            stop_script(process, Duration::ZERO)
                        ),
                    ));
                }
                _ => {}
            }
        }
        // Processes of the run's directory that were started after the last record line
        // (a restart the controller died in the middle of).
        let quoted_root = quote::quote(&root).expect("no NUL");
        lines.push((
            format!("processes in {root}"),
            format!(
                "found=; for p in /proc/[0-9]*; do case $(readlink $p/cwd 2>/dev/null) in {quoted_root}/*) kill -KILL ${{p#/proc/}} 2>/dev/null && found=1;; esac; done; [ -z \"$found\" ] || echo removed"
            ),
        ));
        // The host's clock, when the run shifted it: the net offset the host keeps undone.
        if records
            .iter()
            .any(|r| matches!(r, RemoteRecord::ClockOffset { host: h, .. } if *h == host.name))
        {
            let file = quote::quote(&super::clock::offset_file(&root)).expect("no NUL");
            lines.push((
                "the clock offset".to_owned(),
                super::clock::undo_script(&file),
            ));
        }
        // The run's cgroup (what is left in its node cgroups killed first).
        for r in &records {
            if let RemoteRecord::Cgroup { host: h, path } = r {
                if *h != host.name {
                    continue;
                }
                match super::cgroup::is_run_cgroup(path, &record.run) {
                    true => match super::cgroup::remove_run_script(path) {
                        Ok(line) => lines.push((format!("cgroup {path}"), line)),
                        Err(e) => report
                            .errors
                            .push(format!("run {}: host {}: {e}", record.run, host.name)),
                    },
                    false => report.errors.push(format!(
                        "run {}: host {}: {path:?} is not the run's cgroup: left alone",
                        record.run, host.name
                    )),
                }
            }
        }
        // Only the run's own tables (partitions, loss) and root qdiscs.
        for t in [table.clone(), loss_table(&record.run)] {
            let recorded_table = records
                .iter()
                .any(|r| matches!(r, RemoteRecord::NftTable { host: h, table: rt } if *h == host.name && *rt == t));
            if recorded_table {
                lines.push((
                    format!("nftables table {t}"),
                    format!("if nft list table inet {t} >/dev/null 2>&1; then nft delete table inet {t} && echo removed; fi"),
                ));
            }
        }
        for r in &records {
            if let RemoteRecord::IptablesChain { host: h, chain } = r {
                if *h != host.name {
                    continue;
                }
                if super::iptables::is_run_chain(&record.run, chain) {
                    lines.push((
                        format!("iptables chain {chain}"),
                        super::iptables::remove_script(chain),
                    ));
                } else {
                    report.errors.push(format!(
                        "run {}: host {}: {chain:?} is not a chain of the run: left alone",
                        record.run, host.name
                    ));
                }
            }
        }
        for r in &records {
            if let RemoteRecord::Qdisc { host: h, dev } = r {
                if *h == host.name {
                    match remove_qdisc_script(dev) {
                        Ok(line) => lines.push((format!("qdisc {QDISC_HANDLE} on {dev}"), line)),
                        Err(e) => report
                            .errors
                            .push(format!("run {}: host {}: {e}", record.run, host.name)),
                    }
                }
            }
        }
        // Disk layers' mounts (their processes are gone by now), before their directory.
        let recorded_mount = records
            .iter()
            .any(|r| matches!(r, RemoteRecord::Mount { host: h, .. } if *h == host.name));
        if recorded_mount {
            match super::disk::cleanup_lines(&root) {
                Ok(more) => lines.extend(more),
                Err(e) => report
                    .errors
                    .push(format!("run {}: host {}: {e}", record.run, host.name)),
            }
        }
        let recorded_dir = records.iter().any(
            |r| matches!(r, RemoteRecord::Dir { host: h, path } if *h == host.name && *path == root),
        );
        if recorded_dir {
            lines.push((
                format!("directory {root}"),
                format!("if [ -e {quoted_root} ]; then rm -rf {quoted_root} && echo removed; fi"),
            ));
        }
        let root = facts.get(&host.name).is_some_and(|f| f.root);
        let prelude = sudo_prelude(!root);
        for (what, line) in lines {
            match shells.run_ok(&host.name, &format!("{prelude}{line}"), COMMAND_TIMEOUT) {
                Ok(out) if out.contains("removed") => report
                    .removed
                    .push(format!("run {}: host {}: {what}", record.run, host.name)),
                Ok(_) => {}
                Err(e) => report.errors.push(format!(
                    "run {}: host {}: removing {what}: {e}",
                    record.run, host.name
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netem_goes_under_a_prio_qdisc_of_ours_and_only_ours_is_removed() {
        let peers = vec!["10.0.0.2".to_owned(), "10.0.0.3".to_owned()];
        let (line, rules) =
            netem_script("eth0", &peers, &["delay".into(), "60000us".into()]).unwrap();
        assert!(
            line.contains("tc qdisc add dev eth0 root handle 5b00: prio bands 4"),
            "{line}"
        );
        assert!(
            line.contains("parent 5b00:4 handle 5b04: netem delay 60000us"),
            "{line}"
        );
        for peer in &peers {
            assert!(
                line.contains(&format!("match ip dst {peer}/32 flowid 5b00:4")),
                "{line}"
            );
        }
        // A root qdisc that is not the default is never replaced: `add`, never `replace`.
        assert!(!line.contains("replace"), "{line}");
        assert!(
            rules.contains("netem delay 60000us for 10.0.0.2, 10.0.0.3"),
            "{rules}"
        );
        let remove = remove_qdisc_script("eth0").unwrap();
        assert!(
            remove.contains("grep -q '^qdisc prio 5b00: root'"),
            "{remove}"
        );
    }

    #[test]
    fn loss_rules_drop_a_share_of_peer_traffic_both_ways_and_count() {
        let (script, _) = loss_script("splitbrain_r1_loss", &["10.0.0.2".to_owned()], 30);
        assert!(script.contains("ip saddr { 10.0.0.2 } numgen random mod 100 <= 29 counter drop"));
        assert!(script.contains("ip daddr { 10.0.0.2 } numgen random mod 100 <= 29 counter drop"));
        let listing = "table inet t {\n chain input {\n ip saddr 10.0.0.2 numgen random mod 100 <= 29 counter packets 12 bytes 400 drop\n }\n chain output {\n counter packets 3 bytes 9 drop\n }\n}";
        assert_eq!(sum_counters(listing), 15);
    }

    #[test]
    fn routes_and_round_trips_are_parsed() {
        assert_eq!(
            parse_route_dev("10.0.0.2 dev eth0 src 10.0.0.1 uid 0 \\    cache").as_deref(),
            Some("eth0")
        );
        assert_eq!(parse_route_dev("unreachable"), None);
        let rtts =
            parse_rtts("1700000000.000100 1700000000.060100\n1700000000,5 1700000000,5005\n");
        assert_eq!(rtts.len(), 2);
        assert!((rtts[0].as_secs_f64() - 0.060).abs() < 1e-4, "{rtts:?}");
        assert!((rtts[1].as_secs_f64() - 0.0005).abs() < 1e-4, "{rtts:?}");
        assert!(check_addresses("n1", "probe", &["10.0.0.1; reboot".to_owned()]).is_err());
    }

    #[test]
    fn a_strobe_loop_flips_its_file_between_the_offset_and_zero() {
        let dir = std::env::temp_dir().join(format!("sb-strobe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("offset");
        std::fs::write(&file, "+5.000\n").unwrap();
        let script =
            strobe_script(file.to_str().unwrap(), "+5.000", Duration::from_millis(40)).unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", &script])
            .spawn()
            .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        let until = Instant::now() + Duration::from_secs(3);
        while seen.len() < 2 && Instant::now() < until {
            if let Ok(text) = std::fs::read_to_string(&file) {
                seen.insert(text);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let expected: std::collections::BTreeSet<String> =
            ["+0\n".to_owned(), "+5.000\n".to_owned()].into();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_non_root_user_runs_the_privileged_commands_through_sudo_n() {
        assert_eq!(sudo_prelude(false), "");
        // A `sudo` of the test's that prints what it was asked to run.
        let dir = std::env::temp_dir().join(format!("sb-sudo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sudo = dir.join("sudo");
        std::fs::write(&sudo, "#!/bin/sh\necho \"sudo $*\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let line = format!(
            "{}nft delete table inet t; tc qdisc show dev 'eth 0'; unshare --net true; echo plain",
            sudo_prelude(true)
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "sudo -n nft delete table inet t\nsudo -n tc qdisc show dev eth 0\nsudo -n unshare --net true\nplain\n"
        );
    }

    #[test]
    fn host_facts_are_read_from_one_answer() {
        assert_eq!(
            parse_facts("0\nfirewall iptables\ncgroup2 /sys/fs/cgroup/unified\n"),
            HostFacts {
                root: true,
                firewall: Some(Firewall::Iptables),
                cgroup2: Some("/sys/fs/cgroup/unified".into()),
            }
        );
        assert_eq!(
            parse_facts("1000\n"),
            HostFacts {
                root: false,
                firewall: None,
                cgroup2: None
            }
        );
        // The script itself, here: this machine's answer parses (root or not).
        let out = std::process::Command::new("sh")
            .args(["-c", FACTS_SCRIPT])
            .output()
            .unwrap();
        let facts = parse_facts(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(facts.root, nix::unistd::Uid::effective().is_root());
    }

    #[test]
    fn records_round_trip_as_one_line() {
        let record = RemoteRecord::Process {
            host: "n1".into(),
            pid: 42,
            start_time: 7,
        };
        let Resource::Remote(line) = record.resource() else {
            panic!("a remote resource")
        };
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<RemoteRecord>(&line).unwrap(), record);
    }

    #[test]
    fn state_scripts_read_the_proc_stat_of_this_process() {
        let me = crate::cleanup::ProcessIdentity::current();
        let process = RemoteProcess {
            pid: me.pid as u32,
            start_time: me.start_time,
        };
        let out = std::process::Command::new("sh")
            .args(["-c", &state_script(process)])
            .output()
            .unwrap();
        let state = parse_state(&String::from_utf8_lossy(&out.stdout));
        assert!(matches!(state, ProcessState::Running(_)), "{state:?}");
        // Another start time: a reused pid, not ours.
        let stranger = RemoteProcess {
            start_time: me.start_time + 1,
            ..process
        };
        let out = std::process::Command::new("sh")
            .args(["-c", &state_script(stranger)])
            .output()
            .unwrap();
        assert_eq!(
            parse_state(&String::from_utf8_lossy(&out.stdout)),
            ProcessState::Gone
        );
    }
}
