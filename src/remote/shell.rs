//! One long-lived remote shell per host, over the host's SSH master.
//!
//! A session per command costs a round trip, a process on each side and a shell start-up
//! (13 to 80 ms on a loaded machine); a fault must be in force within 50 ms of its
//! scheduled time. So each host gets one `ssh HOST 'exec sh'` session, opened once: a
//! command is one write to its standard input and one read of its standard output, where
//! the command's output (stdout and stderr together) is followed by a line holding a marker
//! of this shell (random, so no output can forge it) and the command's exit status.
//!
//! Each command runs in a subshell with `/dev/null` as its input, so it can neither end the
//! shell nor read the commands after it. A command that overruns its timeout costs the
//! shell: its `ssh` client is killed, and the next command opens a new one.

use super::ssh::{SshError, SshTransport};
use rand::Rng;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a command did in a remote shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOutput {
    /// The command's exit status.
    pub status: i32,
    /// Its standard output and standard error, interleaved.
    pub output: String,
}

impl ShellOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// A live `ssh … 'exec sh'` and what it has said so far.
struct Live {
    child: Child,
    stdin: ChildStdin,
    chunks: Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Live {
    fn end(mut self) {
        drop(self.stdin);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One persistent shell per host of a transport.
pub struct RemoteShells {
    transport: SshTransport,
    /// `\n<marker> ` precedes each exit status.
    marker: String,
    shells: BTreeMap<String, Mutex<Option<Live>>>,
}

impl std::fmt::Debug for RemoteShells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteShells")
            .field("hosts", &self.shells.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RemoteShells {
    /// Shells over `transport`'s masters, opened on first use.
    pub fn new(transport: SshTransport) -> RemoteShells {
        let shells = transport
            .hosts()
            .iter()
            .map(|h| (h.name.clone(), Mutex::new(None)))
            .collect();
        RemoteShells {
            transport,
            marker: format!("__splitbrain_{:016x}", rand::thread_rng().gen::<u64>()),
            shells,
        }
    }

    pub fn transport(&self) -> &SshTransport {
        &self.transport
    }

    /// Opens every host's shell now (so the first fault does not pay for it).
    pub fn open_all(&self, timeout: Duration) -> Result<(), SshError> {
        for host in self.shells.keys() {
            self.run(host, "true", timeout)?;
        }
        Ok(())
    }

    fn open(&self, host: &str) -> Result<Live, SshError> {
        let mut cmd = self.transport.session_command(host, "exec sh")?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|source| SshError::Spawn {
            program: "ssh".into(),
            source,
        })?;
        let mut stdin = child.stdin.take().expect("piped");
        // The administration tools (nft, tc) live in the sbin directories, which a
        // non-login PATH may lack.
        stdin
            .write_all(b"export PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\n")
            .map_err(|source| SshError::Io {
                what: format!("host {host}: starting the shell"),
                source,
            })?;
        let mut stdout = child.stdout.take().expect("piped");
        let (tx, chunks) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("shell-{host}"))
            .spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stdout.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
            .map_err(|source| SshError::Io {
                what: format!("host {host}: starting the shell reader"),
                source,
            })?;
        Ok(Live {
            child,
            stdin,
            chunks,
            pending: Vec::new(),
        })
    }

    /// Runs the shell command line `line` (quote its words with [`super::quote`]) on
    /// `host`, within `timeout`; its exit status and output, whatever the status.
    pub fn run(&self, host: &str, line: &str, timeout: Duration) -> Result<ShellOutput, SshError> {
        let slot = self
            .shells
            .get(host)
            .ok_or_else(|| SshError::UnknownHost(host.to_owned()))?;
        let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        let live = match guard.as_mut() {
            Some(live) => live,
            None => guard.insert(self.open(host)?),
        };
        let script = format!(
            "( {line}\n) </dev/null 2>&1; printf '\\n{} %d\\n' \"$?\"\n",
            self.marker
        );
        let broken = |detail: String| SshError::Connection {
            host: host.to_owned(),
            command: line.to_owned(),
            stderr: detail,
        };
        if let Err(e) = live
            .stdin
            .write_all(script.as_bytes())
            .and_then(|()| live.stdin.flush())
        {
            if let Some(live) = guard.take() {
                live.end();
            }
            return Err(broken(format!("the remote shell is gone: {e}")));
        }
        let deadline = Instant::now() + timeout;
        let needle = format!("\n{} ", self.marker);
        loop {
            if let Some(at) = find(&live.pending, needle.as_bytes()) {
                let rest = &live.pending[at + needle.len()..];
                if let Some(end) = rest.iter().position(|&b| b == b'\n') {
                    let status = String::from_utf8_lossy(&rest[..end])
                        .trim()
                        .parse()
                        .unwrap_or(-1);
                    let output = String::from_utf8_lossy(&live.pending[..at]).into_owned();
                    live.pending.drain(..at + needle.len() + end + 1);
                    return Ok(ShellOutput { status, output });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match live.chunks.recv_timeout(left) {
                Ok(chunk) => live.pending.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(live) = guard.take() {
                        live.end();
                    }
                    return Err(SshError::Timeout {
                        host: host.to_owned(),
                        command: line.to_owned(),
                        after: timeout,
                    });
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if let Some(live) = guard.take() {
                        live.end();
                    }
                    return Err(broken("the remote shell ended".into()));
                }
            }
        }
    }

    /// [`RemoteShells::run`], and a non-zero exit status is an error naming host, command
    /// and output.
    pub fn run_ok(&self, host: &str, line: &str, timeout: Duration) -> Result<String, SshError> {
        let out = self.run(host, line, timeout)?;
        if !out.success() {
            return Err(SshError::Failed {
                host: host.to_owned(),
                command: line.to_owned(),
                status: format!("status {}", out.status),
                stderr: out.output.trim().to_owned(),
            });
        }
        Ok(out.output)
    }

    /// Ends every shell (the masters stay until the transport is dropped).
    pub fn close(&self) {
        for slot in self.shells.values() {
            let mut guard = slot.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(live) = guard.take() {
                live.end();
            }
        }
    }
}

impl Drop for RemoteShells {
    fn drop(&mut self) {
        self.close();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_wherever_it_lies() {
        assert_eq!(find(b"abc\n__m 0\n", b"\n__m "), Some(3));
        assert_eq!(find(b"\n__m 0\n", b"\n__m "), Some(0));
        assert_eq!(find(b"abc", b"\n__m "), None);
    }
}
