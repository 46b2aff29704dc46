//! The SSH transport: OpenSSH's `ssh` client, one multiplexed master connection per host.
//!
//! [`SshTransport::connect`] opens a master per host (`ControlMaster`, its socket in a
//! directory of the run) and keeps it open for the run; every command after that is a new
//! session on the open connection, with no TCP handshake, key exchange or authentication of
//! its own, which is what makes a fault over SSH take a few milliseconds rather than tens.
//! Dropping the transport closes the masters (`ssh -O exit`).
//!
//! Every call has a timeout and every failure names the host and the command. The
//! controller's ssh configuration files are not read (`-F none`): a campaign says all there
//! is to say about a connection, so a run does not depend on whose account started it.
//!
//! Commands go through the remote login shell, so [`SshTransport::run`] quotes each word
//! ([`super::quote`]): the remote program receives exactly the argv given.

use super::quote::{self, QuoteError};
use super::spec::{expand_home, HostSpec, SshSpec, StrictHostKeyChecking};
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The most a control socket path may hold: `sun_path` is 108 bytes, and `ssh` binds the
/// master's socket first under the path plus a 17-character random suffix.
pub const MAX_CONTROL_PATH: usize = 108 - 1 - 17;

/// `ssh`'s own exit status for a failure of the connection (rather than of the command).
pub const SSH_FAILURE_STATUS: i32 = 255;

/// How to reach the hosts: a campaign's `ssh:` section with its paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    pub user: String,
    pub identity: Option<PathBuf>,
    pub port: u16,
    pub strict_host_key_checking: StrictHostKeyChecking,
    pub known_hosts: Option<PathBuf>,
    /// TCP connect and SSH handshake, per connection attempt.
    pub connect_timeout: Duration,
    /// How long a master stays open with no session on it. A run's commands keep it busy;
    /// a controller that died without closing its masters leaves them this long at most.
    pub control_persist: Duration,
}

impl SshOptions {
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_CONTROL_PERSIST: Duration = Duration::from_secs(300);

    /// The options of a campaign's `ssh:` section (absent: its defaults), `~/` expanded
    /// against the controller's `$HOME` now.
    pub fn from_spec(spec: Option<&SshSpec>) -> Result<SshOptions, SshError> {
        let default = SshSpec::default();
        let spec = spec.unwrap_or(&default);
        let home = std::env::var_os("HOME");
        let expand = |path: &Option<String>| -> Result<Option<PathBuf>, SshError> {
            path.as_deref()
                .map(|p| expand_home(p, home.as_deref()).map_err(SshError::Home))
                .transpose()
        };
        Ok(SshOptions {
            user: spec.user.clone(),
            identity: expand(&spec.identity)?,
            port: spec.port,
            strict_host_key_checking: spec.strict_host_key_checking,
            known_hosts: expand(&spec.known_hosts)?,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            control_persist: Self::DEFAULT_CONTROL_PERSIST,
        })
    }
}

/// A failure of the transport, naming the host and what ran.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("control socket {path} is {len} bytes long: at most {MAX_CONTROL_PATH} fit in a socket address; use a shorter run directory")]
    ControlPathTooLong { path: PathBuf, len: usize },
    #[error("{0}")]
    Home(String),
    #[error("no host named `{0}` in this transport")]
    UnknownHost(String),
    #[error("running {program}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("host {host} ({address}): cannot open the SSH connection: {detail}")]
    Connect {
        host: String,
        address: String,
        detail: String,
    },
    #[error("host {host}: `{command}` did not finish within {}", humantime::format_duration(*.after))]
    Timeout {
        host: String,
        command: String,
        after: Duration,
    },
    #[error("host {host}: `{command}`: the SSH connection failed: {stderr}")]
    Connection {
        host: String,
        command: String,
        stderr: String,
    },
    #[error("host {host}: `{command}` exited with {status}: {stderr}")]
    Failed {
        host: String,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("host {host}: uploading {local} to {remote}: {detail}")]
    Upload {
        host: String,
        local: PathBuf,
        remote: String,
        detail: String,
    },
    #[error("host {host}: {source}")]
    Quote { host: String, source: QuoteError },
}

/// What a remote command did: its exit status as `ssh` relays it, and its output.
#[derive(Debug, Clone)]
pub struct RemoteOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl RemoteOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_owned()
    }
}

/// Open SSH connections to a set of hosts. Dropping it closes them.
#[derive(Debug)]
pub struct SshTransport {
    hosts: Vec<HostSpec>,
    options: SshOptions,
    control_dir: PathBuf,
    closed: bool,
}

impl SshTransport {
    /// Opens one master connection per host, in parallel, with its control socket in
    /// `control_dir` (which must exist; keep its path short). Fails, naming the host, when
    /// one cannot be opened; the masters that did open are closed again.
    pub fn connect(
        hosts: &[HostSpec],
        options: SshOptions,
        control_dir: &Path,
    ) -> Result<SshTransport, SshError> {
        let transport = SshTransport {
            hosts: hosts.to_vec(),
            options,
            control_dir: control_dir.to_owned(),
            closed: false,
        };
        for host in hosts {
            transport.control_path(host)?;
        }
        let results: Vec<Result<(), SshError>> = std::thread::scope(|scope| {
            let opening: Vec<_> = transport
                .hosts
                .iter()
                .map(|host| scope.spawn(|| transport.open_master(host)))
                .collect();
            opening
                .into_iter()
                .map(|handle| handle.join().expect("opening a master does not panic"))
                .collect()
        });
        // On an error the transport is dropped, which closes whatever did open.
        results.into_iter().collect::<Result<(), SshError>>()?;
        Ok(transport)
    }

    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    pub fn options(&self) -> &SshOptions {
        &self.options
    }

    fn host(&self, name: &str) -> Result<&HostSpec, SshError> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| SshError::UnknownHost(name.to_owned()))
    }

    /// Where host `host`'s master listens.
    pub fn control_path(&self, host: &HostSpec) -> Result<PathBuf, SshError> {
        let path = self.control_dir.join(format!("{}.ssh", host.name));
        let len = path.as_os_str().len();
        if len > MAX_CONTROL_PATH {
            return Err(SshError::ControlPathTooLong { path, len });
        }
        Ok(path)
    }

    /// The options every `ssh` invocation for `host` shares (not the destination).
    fn common_options(&self, host: &HostSpec) -> Result<Vec<OsString>, SshError> {
        let o = &self.options;
        let mut args: Vec<OsString> = Vec::new();
        let mut opt = |value: String| {
            args.push("-o".into());
            args.push(value.into());
        };
        opt("BatchMode=yes".into());
        opt(format!(
            "ConnectTimeout={}",
            o.connect_timeout.as_secs().max(1)
        ));
        opt("ServerAliveInterval=5".into());
        opt("ServerAliveCountMax=3".into());
        opt(format!("Port={}", o.port));
        opt(format!("User={}", o.user));
        opt(format!(
            "StrictHostKeyChecking={}",
            o.strict_host_key_checking.ssh_value()
        ));
        opt("LogLevel=ERROR".into());
        if let Some(known_hosts) = &o.known_hosts {
            args.push("-o".into());
            let mut value = OsString::from("UserKnownHostsFile=");
            value.push(known_hosts);
            args.push(value);
        }
        if let Some(identity) = &o.identity {
            args.push("-o".into());
            args.push("IdentitiesOnly=yes".into());
            args.push("-i".into());
            args.push(identity.into());
        }
        args.push("-o".into());
        let mut control = OsString::from("ControlPath=");
        control.push(self.control_path(host)?);
        args.push(control);
        Ok(args)
    }

    /// `ssh` with the shared options and `-F none`.
    fn ssh_command(&self, host: &HostSpec) -> Result<Command, SshError> {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "none"]).args(self.common_options(host)?);
        Ok(cmd)
    }

    fn open_master(&self, host: &HostSpec) -> Result<(), SshError> {
        let log_path = self.control_dir.join(format!("{}.ssh.log", host.name));
        let log = File::create(&log_path).map_err(|source| SshError::Io {
            what: format!("creating {}", log_path.display()),
            source,
        })?;
        let mut cmd = self.ssh_command(host)?;
        cmd.args([
            "-o",
            "ControlMaster=yes",
            "-o",
            &format!(
                "ControlPersist={}s",
                self.options.control_persist.as_secs().max(1)
            ),
            // No session: the master only carries the sessions of later commands.
            "-N",
            // Into the background once authenticated; the master keeps no pipe of ours
            // open (its log goes to a file), so waiting for this process cannot hang.
            "-f",
            "--",
            &host.address,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        let child = cmd.spawn().map_err(|source| SshError::Spawn {
            program: "ssh".into(),
            source,
        })?;
        let limit = self.options.connect_timeout + Duration::from_secs(5);
        let failed = |detail: String| SshError::Connect {
            host: host.name.clone(),
            address: host.address.clone(),
            detail,
        };
        let status = match wait_with_timeout(child, limit, false) {
            Ok(finished) => finished.status,
            Err(WaitError::TimedOut) => {
                return Err(failed(format!(
                    "no answer within {}",
                    humantime::format_duration(limit)
                )))
            }
            Err(WaitError::Io(e)) => return Err(failed(e.to_string())),
        };
        if !status.success() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(failed(format!("ssh exited with {status}: {}", log.trim())));
        }
        self.check(&host.name)
            .map(drop)
            .map_err(|e| failed(e.to_string()))
    }

    /// Whether `host`'s master is running: its pid as `ssh -O check` reports it.
    pub fn check(&self, host: &str) -> Result<u32, SshError> {
        let host = self.host(host)?;
        let mut cmd = self.ssh_command(host)?;
        cmd.args(["-O", "check", "--", &host.address]);
        let output = run_with_timeout(
            cmd,
            self.options.connect_timeout,
            &host.name,
            "ssh -O check",
        )?;
        let text = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(SshError::Connection {
                host: host.name.clone(),
                command: "ssh -O check".into(),
                stderr: text.trim().to_owned(),
            });
        }
        // "Master running (pid=1234)"
        text.split("pid=")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|pid| pid.trim().parse().ok())
            .ok_or_else(|| SshError::Connection {
                host: host.name.clone(),
                command: "ssh -O check".into(),
                stderr: format!("unexpected answer {:?}", text.trim()),
            })
    }

    /// Runs `argv` on `host` over its master and returns what it did, whatever its exit
    /// status; `Err` when it cannot run: a connection failure (ssh's status 255), a word
    /// that cannot be passed, or no end within `timeout` (the local client is then killed;
    /// the remote command may go on).
    pub fn run(
        &self,
        host: &str,
        argv: &[&str],
        timeout: Duration,
    ) -> Result<RemoteOutput, SshError> {
        self.run_with_input(host, argv, None, timeout)
    }

    /// [`SshTransport::run`], and a non-zero exit status is an error too.
    pub fn run_ok(
        &self,
        host: &str,
        argv: &[&str],
        timeout: Duration,
    ) -> Result<RemoteOutput, SshError> {
        let output = self.run(host, argv, timeout)?;
        if !output.success() {
            return Err(SshError::Failed {
                host: host.to_owned(),
                command: argv.join(" "),
                status: describe(output.status),
                stderr: output.stderr_text(),
            });
        }
        Ok(output)
    }

    /// [`SshTransport::run`] with `input` (a local file) as the command's standard input.
    pub fn run_with_input(
        &self,
        host: &str,
        argv: &[&str],
        input: Option<File>,
        timeout: Duration,
    ) -> Result<RemoteOutput, SshError> {
        let spec = self.host(host)?;
        let line = quote::join(argv).map_err(|source| SshError::Quote {
            host: host.to_owned(),
            source,
        })?;
        let mut cmd = self.ssh_command(spec)?;
        // A session on the open master; should it be gone, a connection of its own rather
        // than a new master that would outlive this call.
        cmd.args(["-o", "ControlMaster=no", "-T", "--", &spec.address, &line]);
        cmd.stdin(match input {
            Some(file) => Stdio::from(file),
            None => Stdio::null(),
        });
        let command = argv.join(" ");
        let output = run_with_timeout(cmd, timeout, host, &command)?;
        if output.status.code() == Some(SSH_FAILURE_STATUS) {
            return Err(SshError::Connection {
                host: host.to_owned(),
                command,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(RemoteOutput {
            status: output.status,
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    /// Copies the local file `local` to `remote` on `host` with `scp` over the host's
    /// master (SFTP protocol), file mode kept.
    pub fn upload(
        &self,
        host: &str,
        local: &Path,
        remote: &str,
        timeout: Duration,
    ) -> Result<(), SshError> {
        let spec = self.host(host)?;
        let failed = |detail: String| SshError::Upload {
            host: host.to_owned(),
            local: local.to_owned(),
            remote: remote.to_owned(),
            detail,
        };
        if remote.is_empty() || remote.contains(['\0', '\n', '\r']) {
            return Err(failed(
                "expected a remote path without NUL or line breaks".into(),
            ));
        }
        let mut cmd = Command::new("scp");
        cmd.args(["-F", "none", "-q", "-p", "-s"])
            .args(self.common_options(spec)?)
            .args(["-o", "ControlMaster=no", "--"])
            .arg(local);
        let address = if spec.address.contains(':') {
            format!("[{}]", spec.address)
        } else {
            spec.address.clone()
        };
        cmd.arg(format!("{address}:{remote}"));
        cmd.stdin(Stdio::null());
        let command = format!("scp {} {remote}", local.display());
        let output = run_with_timeout(cmd, timeout, host, &command)?;
        if !output.status.success() {
            return Err(failed(format!(
                "scp exited with {}: {}",
                describe(output.status),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    /// An `ssh` command that opens one session on `host`'s master running `line` through
    /// the remote login shell, its pipes left to the caller (a persistent shell,
    /// [`super::shell::RemoteShell`]).
    pub fn session_command(&self, host: &str, line: &str) -> Result<Command, SshError> {
        let spec = self.host(host)?;
        let mut cmd = self.ssh_command(spec)?;
        cmd.args(["-o", "ControlMaster=no", "-T", "--", &spec.address, line]);
        Ok(cmd)
    }

    /// Closes every master (`ssh -O exit`). Idempotent; the first error is returned after
    /// all were tried.
    pub fn close(&mut self) -> Result<(), SshError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let mut first_error = None;
        for host in &self.hosts {
            let Ok(path) = self.control_path(host) else {
                continue;
            };
            if !path.exists() {
                continue;
            }
            let result = self.ssh_command(host).and_then(|mut cmd| {
                cmd.args(["-O", "exit", "--", &host.address]);
                run_with_timeout(cmd, self.options.connect_timeout, &host.name, "ssh -O exit")
            });
            match result {
                Ok(output) if output.status.success() => {}
                Ok(output) => {
                    first_error.get_or_insert(SshError::Connection {
                        host: host.name.clone(),
                        command: "ssh -O exit".into(),
                        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                    });
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            crate::stderr_line!("splitbrain: warning: closing SSH connections: {e}");
        }
    }
}

/// An exit status in words: `status 3` or `signal 9`.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

enum WaitError {
    TimedOut,
    Io(io::Error),
}

#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Spawns `cmd` with its output captured and waits at most `timeout` for it.
fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
    host: &str,
    command: &str,
) -> Result<Finished, SshError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .map_err(|source| SshError::Spawn { program, source })?;
    match wait_with_timeout(child, timeout, true) {
        Ok(finished) => Ok(finished),
        Err(WaitError::TimedOut) => Err(SshError::Timeout {
            host: host.to_owned(),
            command: command.to_owned(),
            after: timeout,
        }),
        Err(WaitError::Io(source)) => Err(SshError::Io {
            what: format!("host {host}: waiting for `{command}`"),
            source,
        }),
    }
}

/// Waits for `child` at most `timeout`, reading its piped output meanwhile (`capture`);
/// past the timeout it is killed and reaped. The child stays ours until reaped, so the kill
/// cannot reach another process.
fn wait_with_timeout(
    mut child: Child,
    timeout: Duration,
    capture: bool,
) -> Result<Finished, WaitError> {
    fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let (stdout, stderr) = if capture {
        (
            Some(reader(child.stdout.take())),
            Some(reader(child.stderr.take())),
        )
    } else {
        (None, None)
    };
    let deadline = Instant::now() + timeout;
    // Short sleeps first: most commands over an open master end within a few milliseconds.
    let mut pause = Duration::from_micros(100);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(WaitError::Io(e)),
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(WaitError::TimedOut);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(5));
    };
    let join = |handle: Option<std::thread::JoinHandle<Vec<u8>>>| {
        handle
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    };
    Ok(Finished {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(dir: &Path) -> SshTransport {
        SshTransport {
            hosts: vec![HostSpec {
                name: "n1".into(),
                address: "192.0.2.1".into(),
            }],
            options: SshOptions::from_spec(None).unwrap(),
            control_dir: dir.to_owned(),
            closed: true,
        }
    }

    #[test]
    fn a_control_path_too_long_for_a_socket_is_refused_before_any_connection() {
        let long = PathBuf::from(format!("/{}", "d".repeat(100)));
        let err = SshTransport::connect(
            &transport(&long).hosts,
            SshOptions::from_spec(None).unwrap(),
            &long,
        )
        .unwrap_err();
        assert!(matches!(err, SshError::ControlPathTooLong { .. }), "{err}");
    }

    #[test]
    fn options_name_everything_and_read_no_config_file() {
        let t = transport(Path::new("/run/sb"));
        let cmd = t.ssh_command(&t.hosts[0]).unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(&args[..2], ["-F", "none"]);
        for expected in [
            "BatchMode=yes",
            "Port=22",
            "User=root",
            "StrictHostKeyChecking=yes",
            "ControlPath=/run/sb/n1.ssh",
            "ConnectTimeout=10",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected}: {args:?}");
        }
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_and_named() {
        let mut cmd = Command::new("sleep");
        cmd.arg("5");
        let started = Instant::now();
        let err = run_with_timeout(cmd, Duration::from_millis(100), "n1", "sleep 5").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        let text = err.to_string();
        assert!(text.contains("n1") && text.contains("sleep 5"), "{text}");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let done = run_with_timeout(cmd, Duration::from_secs(5), "n1", "sh").unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(done.stderr, b"err\n");
    }

    #[test]
    fn tilde_paths_are_expanded_from_home() {
        let spec = SshSpec {
            identity: Some("~/.ssh/id_ed25519".into()),
            ..SshSpec::default()
        };
        let options = SshOptions::from_spec(Some(&spec)).unwrap();
        let home = std::env::var_os("HOME").unwrap();
        assert_eq!(
            options.identity.unwrap(),
            PathBuf::from(home).join(".ssh/id_ed25519")
        );
    }
}
