//! Remote hosts for tests: network namespaces on the project's own bridge
//! ([`splitbrain::topology`]), each running its own `sshd`, reached over the namespaces'
//! network exactly as a controller reaches real machines.
//!
//! Each host gets:
//! * its own network namespace (`sb-<run>-nI`, address `10.73.0.(10+I)`), made by
//!   [`Topology::create`] like a local run's; the controller side is the switch namespace,
//!   where every `ssh` of the test runs ([`SshHosts::on_network`]);
//! * its own mount namespace, private from the machine's, with a fresh tmpfs on `/run` (so
//!   `sshd`'s privilege-separation directory `/run/sshd` is the host's own and nothing is
//!   created in the machine's `/run`) and on `/tmp` (files uploaded to a host stay on it),
//!   and no `/root/.bashrc` (bash reads it for every command over SSH; the machine's may
//!   be slow);
//! * its own host key (generated per test), `sshd_config` (port [`SSHD_PORT`], its pid file,
//!   no PAM, root by key only) and log, under a directory of the test in the build
//!   directory. One client key per test is the only authorized key.
//!
//! Dropping an [`SshHosts`] kills exactly the `sshd` processes it started (by pid), then
//! what is left inside its namespaces (those `sshd`s' sessions and what ran in them, and any
//! `ssh` master of the test), then deletes the namespaces. Nothing is started through the
//! machine's service manager.

use splitbrain::remote::{HostSpec, SshOptions, SshSpec, StrictHostKeyChecking};
use splitbrain::topology::{RunId, Topology};
use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The port every test host's `sshd` listens on (not 22, so the port option is exercised).
pub const SSHD_PORT: u16 = 2222;
/// Where Debian's `openssh-server` puts the daemon.
pub const SSHD: &str = "/usr/sbin/sshd";

/// True when `sshd` and the client tools are installed; otherwise skips the test.
pub fn have_sshd(test: &str) -> bool {
    let missing: Vec<&str> = [SSHD, "ssh", "scp", "ssh-keygen"]
        .into_iter()
        .filter(|program| {
            Command::new(program)
                .arg("-V")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    super::skip(
        test,
        super::Need::Sshd,
        format!(
            "{} not installed (Debian openssh-server, openssh-client)",
            missing.join(", ")
        ),
    );
    false
}

/// How the test hosts differ from this machine, in their private mount namespaces.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostSetup {
    /// `nft` hidden (an empty, non-executable file bound over it): `command -v nft` fails,
    /// so partitions and loss go through iptables.
    pub without_nft: bool,
    /// cgroup2 unmounted: nodes are supervised by signals.
    pub without_cgroup2: bool,
    /// A stand-in `date` bound over the real one ([`STAND_IN_DATE`]): setting the clock
    /// records the offset in the host's own `/run` and later readings are shifted by it.
    /// This machine's clock is never changed.
    pub stand_in_date: bool,
}

/// Where a host's stand-in `date` keeps the offset it was asked to set (nanoseconds), in
/// the host's own `/run`.
pub const STAND_IN_CLOCK_OFFSET: &str = "/run/splitbrain-test-clock";
/// Where it logs each `date -s` it was asked (one line each).
pub const STAND_IN_CLOCK_LOG: &str = "/run/splitbrain-test-clock.log";

/// The stand-in `date` (`REAL` is a copy of the real one): `-s @S.N` records the offset
/// from the real clock, `+%s%N` reads the real clock plus the offset, anything else is the
/// real `date`; `--splitbrain-stand-in` says that it is the stand-in.
const STAND_IN_DATE: &str = r#"#!/bin/sh
real=REAL
off=$(cat /run/splitbrain-test-clock 2>/dev/null); off=${off:-0}
case "$1" in
  --splitbrain-stand-in) echo stand-in ;;
  -s)
    t=${2#@}; s=${t%.*}; f=${t#*.}; [ "$f" = "$t" ] && f=0
    f=$(printf '%-9.9s' "$f" | tr ' ' 0)
    target=$((s * 1000000000 + 1$f - 1000000000))
    now=$($real +%s%N)
    echo $((target - now)) > /run/splitbrain-test-clock
    echo "date $*" >> /run/splitbrain-test-clock.log ;;
  +%s%N) now=$($real +%s%N); echo $((now + off)) ;;
  *) exec $real "$@" ;;
esac
"#;

/// Several "remote machines", each an `sshd` in namespaces of its own.
pub struct SshHosts {
    topology: Option<Topology>,
    dir: tempfile::TempDir,
    sshds: Vec<(String, Child)>,
    hosts: Vec<HostSpec>,
    ssh: SshSpec,
}

impl SshHosts {
    /// Starts `count` hosts, `n1..nN`, and waits until each `sshd` accepts connections.
    pub fn start(count: usize) -> Result<SshHosts, String> {
        Self::start_with(count, HostSetup::default())
    }

    /// [`SshHosts::start`], the hosts set up as `setup` says.
    pub fn start_with(count: usize, setup: HostSetup) -> Result<SshHosts, String> {
        let dir = tempfile::Builder::new()
            .prefix("ssh")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .map_err(|e| format!("test directory: {e}"))?;
        let topology = Topology::create(RunId::random(), count).map_err(|e| e.to_string())?;
        let client_key = dir.path().join("client_key");
        keygen(&client_key)?;
        std::fs::copy(
            client_key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .map_err(|e| format!("authorized_keys: {e}"))?;
        let mut fixture = SshHosts {
            hosts: Vec::new(),
            ssh: SshSpec {
                user: "root".into(),
                identity: Some(client_key.display().to_string()),
                port: SSHD_PORT,
                strict_host_key_checking: StrictHostKeyChecking::Yes,
                known_hosts: Some(dir.path().join("known_hosts").display().to_string()),
                dir: None,
                set_clock: false,
            },
            topology: Some(topology),
            dir,
            sshds: Vec::new(),
        };
        let mounts = Mounts::prepare(setup, fixture.dir.path())?;
        let mut known_hosts = String::new();
        let nodes = fixture.topology.as_ref().expect("set").nodes().to_vec();
        for node in &nodes {
            let host_dir = fixture.dir.path().join(&node.name);
            std::fs::create_dir(&host_dir).map_err(|e| format!("{}: {e}", host_dir.display()))?;
            let host_key = host_dir.join("host_key");
            keygen(&host_key)?;
            let public = std::fs::read_to_string(host_key.with_extension("pub"))
                .map_err(|e| format!("host key: {e}"))?;
            let mut fields = public.split_whitespace();
            let (kind, key) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            known_hosts.push_str(&format!("[{}]:{SSHD_PORT} {kind} {key}\n", node.ip));
            let config = host_dir.join("sshd_config");
            std::fs::write(
                &config,
                sshd_config(&node.ip.to_string(), &host_dir, fixture.dir.path()),
            )
            .map_err(|e| format!("{}: {e}", config.display()))?;
            let child = start_sshd(
                &node.netns,
                &config,
                &host_dir.join("sshd.log"),
                mounts.clone(),
            )?;
            fixture.sshds.push((node.name.clone(), child));
            fixture.hosts.push(HostSpec {
                name: node.name.clone(),
                address: node.ip.to_string(),
            });
        }
        std::fs::write(fixture.dir.path().join("known_hosts"), known_hosts)
            .map_err(|e| format!("known_hosts: {e}"))?;
        fixture.wait_until_listening(Duration::from_secs(10))?;
        if setup.stand_in_date {
            // Never on to a test that could set this machine's clock.
            fixture.check_stand_in_date()?;
        }
        Ok(fixture)
    }

    /// Every host's `date` is the stand-in.
    fn check_stand_in_date(&self) -> Result<(), String> {
        let list = self.hosts.clone();
        let options = self.options();
        let control = self.dir.path().join("date-check");
        std::fs::create_dir_all(&control).map_err(|e| e.to_string())?;
        self.on_network(move || {
            let transport = splitbrain::remote::SshTransport::connect(&list, options, &control)
                .map_err(|e| e.to_string())?;
            for host in &list {
                let out = transport
                    .run(
                        &host.name,
                        &["date", "--splitbrain-stand-in"],
                        Duration::from_secs(20),
                    )
                    .map_err(|e| e.to_string())?;
                if out.stdout_text().trim() != "stand-in" {
                    return Err(format!("{}: `date` is not the stand-in", host.name));
                }
            }
            Ok(())
        })
    }

    /// What host `name`'s stand-in `date` was asked (its log) and the offset it keeps, in
    /// milliseconds.
    pub fn stand_in_clock(&self, name: &str) -> (Vec<String>, i64) {
        let list = self.hosts.clone();
        let options = self.options();
        let control = self.dir.path().join(format!("clock-{name}"));
        std::fs::create_dir_all(&control).unwrap();
        let name = name.to_owned();
        self.on_network(move || {
            let transport = splitbrain::remote::SshTransport::connect(&list, options, &control)
                .expect("connect");
            let out = transport
                .run_ok(
                    &name,
                    &[
                        "sh",
                        "-c",
                        &format!(
                            "cat {STAND_IN_CLOCK_LOG} 2>/dev/null; echo offset $(cat {STAND_IN_CLOCK_OFFSET} 2>/dev/null || echo 0)"
                        ),
                    ],
                    Duration::from_secs(20),
                )
                .expect("reading the stand-in clock");
            let text = out.stdout_text();
            let mut log = Vec::new();
            let mut offset_ns = 0i64;
            for line in text.lines() {
                match line.strip_prefix("offset ") {
                    Some(n) => offset_ns = n.trim().parse().unwrap_or(0),
                    None => log.push(line.to_owned()),
                }
            }
            (log, offset_ns / 1_000_000)
        })
    }

    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    /// The `ssh:` section that logs in to these hosts.
    pub fn ssh_spec(&self) -> &SshSpec {
        &self.ssh
    }

    /// The transport options for these hosts.
    pub fn options(&self) -> SshOptions {
        SshOptions::from_spec(Some(&self.ssh)).expect("absolute paths")
    }

    /// The test's directory (keys, configurations, logs); short enough for control sockets.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh client key that no host accepts.
    pub fn stranger_key(&self) -> Result<PathBuf, String> {
        let key = self.dir.path().join("stranger_key");
        keygen(&key)?;
        Ok(key)
    }

    /// The controller's side of the network: where the test's `ssh` runs.
    pub fn switch_netns(&self) -> &str {
        self.topology.as_ref().expect("live").switch_netns()
    }

    /// Host `name`'s network namespace.
    pub fn host_netns(&self, name: &str) -> &str {
        &self
            .topology
            .as_ref()
            .expect("live")
            .node(name)
            .expect("a host of the fixture")
            .netns
    }

    /// The pids of the `sshd`s this fixture started.
    pub fn sshd_pids(&self) -> Vec<u32> {
        self.sshds.iter().map(|(_, child)| child.id()).collect()
    }

    /// Runs `work` on a thread inside the controller's side of the network: every process
    /// it starts (`ssh`, `scp`) is there too.
    pub fn on_network<R: Send + 'static>(&self, work: impl FnOnce() -> R + Send + 'static) -> R {
        splitbrain::netns::spawn_in(self.switch_netns(), work)
            .expect("the switch namespace exists")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// The `hosts:` and `ssh:` sections of a campaign for these hosts.
    pub fn campaign_sections(&self) -> String {
        let mut yaml = String::from("hosts:\n");
        for host in &self.hosts {
            yaml.push_str(&format!(
                "  - {{name: {}, address: {}}}\n",
                host.name, host.address
            ));
        }
        yaml.push_str(&format!(
            "ssh:\n  user: root\n  identity: {}\n  port: {SSHD_PORT}\n  strict_host_key_checking: yes\n  known_hosts: {}\n",
            self.ssh.identity.as_deref().unwrap_or_default(),
            self.ssh.known_hosts.as_deref().unwrap_or_default()
        ));
        yaml
    }

    /// Waits until every `sshd` accepts TCP connections from the controller's side.
    fn wait_until_listening(&mut self, limit: Duration) -> Result<(), String> {
        let addresses: Vec<std::net::SocketAddr> = self
            .hosts
            .iter()
            .map(|h| {
                format!("{}:{SSHD_PORT}", h.address)
                    .parse()
                    .expect("ip:port")
            })
            .collect();
        let deadline = Instant::now() + limit;
        let mut pending = addresses.clone();
        while !pending.is_empty() {
            for (name, child) in &mut self.sshds {
                if let Ok(Some(status)) = child.try_wait() {
                    let log =
                        std::fs::read_to_string(self.dir.path().join(&**name).join("sshd.log"))
                            .unwrap_or_default();
                    return Err(format!("sshd of {name} exited with {status}: {log}"));
                }
            }
            let waiting = pending.clone();
            pending = self.on_network(move || {
                waiting
                    .into_iter()
                    .filter(|addr| {
                        std::net::TcpStream::connect_timeout(addr, Duration::from_millis(200))
                            .is_err()
                    })
                    .collect()
            });
            if Instant::now() > deadline {
                return Err(format!("sshd not listening after {limit:?} on {pending:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for SshHosts {
    fn drop(&mut self) {
        // The daemons this fixture started, by pid: politely, then for sure.
        for (_, child) in &mut self.sshds {
            // SAFETY: a plain kill(2) of our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for (name, child) in &mut self.sshds {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            let _ = name;
        }
        // What is left in the fixture's namespaces is the daemons' sessions, what ran in
        // them and the test's ssh masters: all of it started by this fixture.
        if let Some(topology) = &self.topology {
            for ns in topology.plan().all_netns() {
                for pid in splitbrain::netns::pids(&ns).unwrap_or_default() {
                    // SAFETY: kill(2) of a process inside a namespace this fixture made.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        if let Some(mut topology) = self.topology.take() {
            if let Err(e) = topology.destroy() {
                eprintln!("ssh hosts: tearing down the network: {e}");
            }
        }
    }
}

/// An ed25519 key pair at `path` and `path.pub`, without a passphrase.
fn keygen(path: &Path) -> Result<(), String> {
    let output = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "splitbrain-test",
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ssh-keygen: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "ssh-keygen {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// One host's `sshd_config`: its address and port, key, pid file; root by key only.
fn sshd_config(address: &str, host_dir: &Path, test_dir: &Path) -> String {
    format!(
        "\
ListenAddress {address}
Port {SSHD_PORT}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {authorized_keys}
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
# The test directory lives in the build directory, whose modes sshd does not vouch for.
StrictModes no
# One multiplexed connection carries many sessions at once.
MaxSessions 64
MaxStartups 64
PrintMotd no
UseDNS no
Subsystem sftp internal-sftp
LogLevel INFO
",
        host_key = host_dir.join("host_key").display(),
        pid_file = host_dir.join("sshd.pid").display(),
        authorized_keys = test_dir.join("authorized_keys").display(),
    )
}

/// What is bound over or unmounted in each host's mount namespace ([`HostSetup`]), as C
/// strings made before the fork.
#[derive(Clone, Default)]
struct Mounts {
    /// (file bound, target) pairs.
    binds: Vec<(std::ffi::CString, std::ffi::CString)>,
    unmount: Vec<std::ffi::CString>,
}

impl Mounts {
    fn prepare(setup: HostSetup, dir: &Path) -> Result<Mounts, String> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|e| e.to_string());
        let mut mounts = Mounts::default();
        if setup.without_nft {
            let hidden = dir.join("hidden-program");
            std::fs::write(&hidden, "").map_err(|e| format!("{}: {e}", hidden.display()))?;
            let mut targets: Vec<PathBuf> = [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .iter()
            .filter_map(|d| std::fs::canonicalize(Path::new(d).join("nft")).ok())
            .collect();
            targets.sort();
            targets.dedup();
            if targets.is_empty() {
                return Err("no nft to hide".into());
            }
            for target in targets {
                mounts.binds.push((c(&hidden)?, c(&target)?));
            }
        }
        if setup.without_cgroup2 {
            let mount = splitbrain::cgroup::cgroup2_mount().map_err(|e| e.to_string())?;
            mounts.unmount.push(c(&mount)?);
        }
        if setup.stand_in_date {
            let real = std::fs::canonicalize("/usr/bin/date")
                .or_else(|_| std::fs::canonicalize("/bin/date"))
                .map_err(|e| format!("date: {e}"))?;
            let copy = dir.join("real-date");
            std::fs::copy(&real, &copy).map_err(|e| format!("{}: {e}", copy.display()))?;
            let stand_in = dir.join("stand-in-date");
            std::fs::write(
                &stand_in,
                STAND_IN_DATE.replace("REAL", &copy.display().to_string()),
            )
            .map_err(|e| format!("{}: {e}", stand_in.display()))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            mounts.binds.push((c(&stand_in)?, c(&real)?));
        }
        Ok(mounts)
    }
}

/// Starts `sshd -D` in network namespace `netns` and a new private mount namespace with its
/// own `/run` (holding `/run/sshd`) and `/tmp`, and `mounts` made there.
fn start_sshd(netns: &str, config: &Path, log: &Path, mounts: Mounts) -> Result<Child, String> {
    let log = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = splitbrain::netns::command(netns, SSHD).map_err(|e| e.to_string())?;
    cmd.args(["-D", "-e", "-f"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: only async-signal-safe calls (unshare, mount, mkdir) on static strings.
    unsafe {
        cmd.pre_exec(move || {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            // Private first: nothing mounted below may reach the machine's mount table.
            check(libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for target in [c"/run", c"/tmp"] {
                check(libc::mount(
                    c"tmpfs".as_ptr(),
                    target.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=1777,size=1g".as_ptr().cast(),
                ))?;
            }
            check(libc::mkdir(c"/run/sshd".as_ptr(), 0o755))?;
            check(libc::chmod(c"/run".as_ptr(), 0o755))?;
            // The host's root has no shell start-up file: Debian's bash reads ~/.bashrc for
            // every command sshd runs, and this machine's may take seconds (see
            // docs/remote-hosts.md). No file there, nothing to hide.
            let hidden = libc::mount(
                c"/dev/null".as_ptr(),
                c"/root/.bashrc".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            );
            if hidden == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
                return Err(io::Error::last_os_error());
            }
            for (source, target) in &mounts.binds {
                check(libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ))?;
            }
            for target in &mounts.unmount {
                check(libc::umount2(target.as_ptr(), libc::MNT_DETACH))?;
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| format!("{SSHD} in {netns}: {e}"))
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
