//! The lazy disk layer under nodes on remote hosts.
//!
//! Locally the layer is a FUSE server thread of the harness ([`crate::disk`]). On a host it
//! is the controller's own executable, uploaded into the node's directory there (as a
//! system's binary is) and started as `splitbrain disk-layer serve` before the node: a
//! process of its own (`setsid`, never in the node's process group, so a paused node does
//! not freeze its file system), serving the node's data directory (`<node dir>/data`) over
//! `<node dir>/disk/backing`. Faults reach it as typed requests
//! ([`crate::disk::control`]) through `splitbrain disk-layer ctl` on the host's persistent
//! shell; their replies are the layer's own account, the same as locally.
//!
//! Recorded in the run's ownership record: the mount (before it is made) and the layer's
//! process (pid and start time), so `cleanup --run` kills it and lazily unmounts what it
//! left ([`cleanup_lines`]). Nothing is installed: the executable goes with the run's
//! directory.

use super::hosts::{ProcessState, RemoteError, RemoteHosts, RemoteProcess, RemoteRecord};
use super::quote;
use crate::cleanup::{Resource, RunId};
use crate::disk::control::{parse_reply, Reply, Request};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// How long one request to a layer may take (a drop of a large cache included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a started layer has to mount and open its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a layer has after SIGTERM (it writes back what it holds, then unmounts).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One node's layer on its host.
pub struct RemoteDiskLayer {
    pub node: String,
    pub host: String,
    /// The node's directory on its host.
    pub dir: String,
    /// The uploaded executable on the host.
    binary: String,
    process: Mutex<Option<RemoteProcess>>,
}

impl RemoteDiskLayer {
    /// The mount point: the node's data directory.
    pub fn mount(&self) -> String {
        format!("{}/data", self.dir)
    }

    fn socket(&self) -> String {
        format!("{}/disk.sock", self.dir)
    }

    fn log(&self) -> String {
        format!("{}/disk.log", self.dir)
    }

    pub fn process(&self) -> Option<RemoteProcess> {
        *self.process.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `request` to the layer (`disk-layer ctl` on the host) and reads its reply;
    /// a layer that answers with an error is an error naming the host.
    pub fn ask(&self, hosts: &RemoteHosts, request: &Request) -> Result<Reply, RemoteError> {
        let line = ctl_line(&self.binary, &self.socket(), request)?;
        let out = hosts.shells().run_ok(&self.host, &line, REQUEST_TIMEOUT)?;
        let last = out
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        match parse_reply(last) {
            Ok(Reply::Error { message }) => Err(self.error(format!("disk layer: {message}"))),
            Ok(reply) => Ok(reply),
            Err(e) => Err(self.error(format!(
                "disk layer: unexpected answer {:?}: {e}",
                out.trim()
            ))),
        }
    }

    fn error(&self, what: String) -> RemoteError {
        RemoteError::Host {
            host: self.host.clone(),
            what,
        }
    }
}

/// `BIN disk-layer ctl SOCKET 'REQUEST'`, quoted for the remote shell.
pub fn ctl_line(binary: &str, socket: &str, request: &Request) -> Result<String, RemoteError> {
    let json = serde_json::to_string(request).expect("a request is plain data");
    Ok(quote::join(&[binary, "disk-layer", "ctl", socket, &json])?)
}

/// The start of a layer, detached in `dir` (its own session), output to `dir/disk.log`;
/// prints its pid and start time.
fn serve_line(binary: &str, dir: &str) -> Result<String, RemoteError> {
    let mount = format!("{dir}/data");
    let backing = format!("{dir}/disk/backing");
    let parked = format!("{dir}/disk/parked");
    let socket = format!("{dir}/disk.sock");
    let command = quote::join(&[
        "setsid",
        binary,
        "disk-layer",
        "serve",
        "--mount",
        &mount,
        "--backing",
        &backing,
        "--parked",
        &parked,
        "--control",
        &socket,
    ])?;
    let q = quote::quote(dir)?;
    Ok(format!(
        "cd {q} && {{ {command} </dev/null >>{q}/disk.log 2>&1 & }} ; pid=$!; echo $pid $(sed 's/.*) //' /proc/$pid/stat | cut -d' ' -f20)"
    ))
}

/// What a host needs to mount the layer: `/dev/fuse`, and for a user who is not root
/// `fusermount3` (or `fusermount`). Prints one `missing: …` line per lack.
fn fuse_check_line(with_sudo: bool) -> String {
    let mut line =
        "[ -c /dev/fuse ] || echo 'missing: /dev/fuse (the fuse kernel module)'".to_owned();
    if with_sudo {
        line.push_str(
            "; PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; command -v fusermount3 >/dev/null || command -v fusermount >/dev/null || echo 'missing: fusermount3 (Debian fuse3), to mount as a user who is not root'",
        );
    }
    line.push_str("; true");
    line
}

/// Whether the uploaded executable runs on the host (`--version`): a `missing: …` line
/// when it does not.
fn binary_check_line(binary: &str) -> Result<String, RemoteError> {
    let b = quote::quote(binary)?;
    Ok(format!(
        "v=$({b} --version 2>&1) || echo \"missing: the uploaded splitbrain does not run there (same architecture and C library as the controller needed): $v\"; true"
    ))
}

/// The `missing: …` lines of a check's output.
fn missing_of(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("missing: "))
        .map(str::to_owned)
        .collect()
}

/// An error naming each host (host, what it lacks) that cannot run the layer.
fn refuse_if_missing(missing: &[(String, String)]) -> Result<(), RemoteError> {
    if missing.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = missing.iter().map(|(h, _)| h.clone()).collect();
    names.dedup();
    let what: Vec<String> = missing.iter().map(|(h, m)| format!("{h}: {m}")).collect();
    Err(RemoteError::Host {
        host: names.join(", "),
        what: format!(
            "the disk layer (disk faults) cannot run there: {}",
            what.join("; ")
        ),
    })
}

/// The layers of a remote cluster's nodes.
#[derive(Default)]
pub struct RemoteDisks {
    layers: Vec<RemoteDiskLayer>,
}

impl RemoteDisks {
    pub fn get(&self, node: &str) -> Option<&RemoteDiskLayer> {
        self.layers.iter().find(|l| l.node == node)
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Before any node starts: checks that every host (`nodes`: node and host) can mount
    /// the layer, then uploads this executable into each node's directory on its host and
    /// checks that it runs there. A host that cannot is an error naming it and what is
    /// missing (every host checked at each step).
    pub fn install(
        hosts: &RemoteHosts,
        nodes: &[(String, String)],
    ) -> Result<RemoteDisks, RemoteError> {
        let exe = std::env::current_exe().map_err(|e| RemoteError::Host {
            host: "controller".into(),
            what: format!("finding this executable to upload for the disk layer: {e}"),
        })?;
        // What each host has first (cheap), then the upload and whether it runs there.
        let mut missing = Vec::new();
        for (_, host) in nodes {
            let out = hosts.shells().run_ok(
                host,
                &fuse_check_line(hosts.uses_sudo(host)),
                super::hosts::COMMAND_TIMEOUT,
            )?;
            missing.extend(missing_of(&out).into_iter().map(|m| (host.clone(), m)));
        }
        refuse_if_missing(&missing)?;
        let mut layers = Vec::new();
        for (node, host) in nodes {
            let dir = hosts.make_node_dir(host, node)?;
            let binary = hosts.install_program(host, &exe, &dir)?;
            let out = hosts.shells().run_ok(
                host,
                &binary_check_line(&binary)?,
                super::hosts::COMMAND_TIMEOUT,
            )?;
            missing.extend(missing_of(&out).into_iter().map(|m| (host.clone(), m)));
            layers.push(RemoteDiskLayer {
                node: node.clone(),
                host: host.clone(),
                dir,
                binary,
                process: Mutex::new(None),
            });
        }
        refuse_if_missing(&missing)?;
        Ok(RemoteDisks { layers })
    }

    /// Starts `node`'s layer (the mount recorded first, the process right after it starts)
    /// and waits until it answers on its control socket.
    pub fn start(&self, hosts: &RemoteHosts, node: &str) -> Result<(), RemoteError> {
        let Some(layer) = self.get(node) else {
            return Ok(());
        };
        record(
            hosts.run(),
            &RemoteRecord::Mount {
                host: layer.host.clone(),
                path: layer.mount(),
            },
        )?;
        let out = hosts.shells().run_ok(
            &layer.host,
            &serve_line(&layer.binary, &layer.dir)?,
            super::hosts::COMMAND_TIMEOUT,
        )?;
        let mut words = out.split_whitespace();
        let process = (|| {
            Some(RemoteProcess {
                pid: words.next()?.parse().ok()?,
                start_time: words.next()?.parse().ok()?,
            })
        })()
        .ok_or_else(|| {
            layer.error(format!(
                "starting the disk layer: unexpected answer {out:?}"
            ))
        })?;
        record(
            hosts.run(),
            &RemoteRecord::Process {
                host: layer.host.clone(),
                pid: process.pid,
                start_time: process.start_time,
            },
        )?;
        *layer.process.lock().unwrap_or_else(|e| e.into_inner()) = Some(process);
        let socket = quote::quote(&layer.socket())?;
        let log = quote::quote(&layer.log())?;
        let tries = START_TIMEOUT.as_millis() / 50;
        let wait = format!(
            "i=0; while [ ! -S {socket} ] && [ $i -lt {tries} ] && kill -0 {pid} 2>/dev/null; do sleep 0.05; i=$((i+1)); done; \
             if [ -S {socket} ]; then echo ready; else tail -n 20 {log}; exit 1; fi",
            pid = process.pid
        );
        hosts
            .shells()
            .run_ok(&layer.host, &wait, START_TIMEOUT + Duration::from_secs(5))
            .map_err(|e| layer.error(format!("the disk layer of {node} did not start: {e}")))?;
        layer.ask(hosts, &Request::Status {})?;
        Ok(())
    }

    /// Takes every layer's faults out of force (the blanket heal after an undo failed):
    /// what failed, one line each.
    pub fn clear_all_faults(&self, hosts: &RemoteHosts) -> Vec<String> {
        self.layers
            .iter()
            .filter(|l| l.process().is_some())
            .filter_map(|l| {
                l.ask(hosts, &Request::ClearFaults {})
                    .err()
                    .map(|e| format!("clearing the disk faults of {}: {e}", l.node))
            })
            .collect()
    }

    /// Stops every layer (SIGTERM: it writes back what it holds and unmounts; SIGKILL after
    /// a grace) and fetches its log into `local_dir/<node>/disk.log` when given. The nodes
    /// must be stopped first. The first error; every layer is stopped.
    pub fn stop_all(
        &self,
        hosts: &RemoteHosts,
        local_dir: Option<&Path>,
    ) -> Result<(), RemoteError> {
        let mut first = None;
        for layer in &self.layers {
            let Some(process) = layer
                .process
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            else {
                continue;
            };
            match hosts.stop(&layer.host, process, STOP_GRACE) {
                Ok(ProcessState::Gone) => {}
                Ok(state) => {
                    first.get_or_insert(layer.error(format!(
                        "the disk layer of {} (pid {}) is still there: {}",
                        layer.node,
                        process.pid,
                        state.describe()
                    )));
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
            // A layer that could not unmount (killed) leaves its mount: detached here.
            let unmount = unmount_line(&layer.dir);
            if let Err(e) = unmount.and_then(|line| {
                Ok(hosts
                    .shells()
                    .run_ok(&layer.host, &line, super::hosts::COMMAND_TIMEOUT)?)
            }) {
                first.get_or_insert(e);
            }
            if let Some(local) = local_dir {
                let local = local.join(&layer.node);
                let fetched = std::fs::create_dir_all(&local)
                    .map_err(|e| layer.error(format!("creating {}: {e}", local.display())))
                    .and_then(|()| hosts.fetch(&layer.host, &layer.log(), &local.join("disk.log")));
                if let Err(e) = fetched {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Lazily unmounts every mount of the layer (fs name [`crate::disk::FS_NAME`], type
/// `fuse.*`) below `root` on the host, as `/proc/self/mountinfo` lists them there (in the
/// mount namespace of the host's shells); says `removed` for each. No other mount is touched.
pub fn unmount_line(root: &str) -> Result<String, RemoteError> {
    let r = quote::quote(&mountinfo_escape(root.trim_end_matches('/')))?;
    let fs = crate::disk::FS_NAME;
    // mountinfo: field 5 the mount point; after the `-` field, the type and the source.
    Ok(format!(
        "PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; r={r}; \
         for m in $(awk '{{ for (i = 7; i <= NF; i++) if ($i == \"-\") break; if ($(i+2) == \"{fs}\" && $(i+1) ~ /^fuse/) print $5 }}' /proc/self/mountinfo); do \
         case $m in \"$r\"/*) {{ umount -l \"$m\" 2>/dev/null || fusermount3 -u -z \"$m\" 2>/dev/null || fusermount -u -z \"$m\"; }} && echo removed;; esac; done; true"
    ))
}

/// A path as `/proc/self/mountinfo` writes it (space, tab, newline, backslash in octal).
fn mountinfo_escape(path: &str) -> String {
    path.chars()
        .map(|c| match c {
            ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// The cleanup lines (what, shell line) for the layers of a run whose directory on the host
/// is `root`: after its processes are killed, before the directory goes.
pub fn cleanup_lines(root: &str) -> Result<Vec<(String, String)>, RemoteError> {
    Ok(vec![(
        format!("disk layer mounts in {root}"),
        unmount_line(root)?,
    )])
}

fn record(run: &RunId, record: &RemoteRecord) -> Result<(), RemoteError> {
    let line = serde_json::to_string(record).expect("a record is plain data");
    crate::cleanup::record(run, &[Resource::Remote(line)]).map_err(|source| RemoteError::Record {
        what: format!("{record:?}"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_to_the_hosts_layer_quoted_as_one_argument() {
        let line = ctl_line(
            "/tmp/splitbrain-r1/n1/bin/splitbrain",
            "/tmp/splitbrain-r1/n1/disk.sock",
            &Request::TearUnsynced { block: 4096 },
        )
        .unwrap();
        assert_eq!(
            line,
            r#"/tmp/splitbrain-r1/n1/bin/splitbrain disk-layer ctl /tmp/splitbrain-r1/n1/disk.sock '{"request":"tear-unsynced","block":4096}'"#
        );
        let serve = serve_line("/r/n1/bin/splitbrain", "/r/n1").unwrap();
        assert!(serve.starts_with("cd /r/n1 && { setsid /r/n1/bin/splitbrain disk-layer serve --mount /r/n1/data --backing /r/n1/disk/backing --parked /r/n1/disk/parked --control /r/n1/disk.sock </dev/null >>/r/n1/disk.log 2>&1 & }"), "{serve}");
    }

    #[test]
    fn a_host_that_lacks_something_is_told_by_missing_lines() {
        assert_eq!(
            missing_of("splitbrain 0.1\nmissing: /dev/fuse (the fuse kernel module)\n"),
            vec!["/dev/fuse (the fuse kernel module)".to_owned()]
        );
        assert!(missing_of("").is_empty());
        assert!(fuse_check_line(true).contains("fusermount3"));
        assert!(!fuse_check_line(false).contains("fusermount3"));
        assert!(binary_check_line("/r/n1/bin/splitbrain")
            .unwrap()
            .starts_with("v=$(/r/n1/bin/splitbrain --version 2>&1) || echo \"missing: "));
        let err = refuse_if_missing(&[
            ("n2".into(), "/dev/fuse (the fuse kernel module)".into()),
            ("n3".into(), "/dev/fuse (the fuse kernel module)".into()),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "host n2, n3: the disk layer (disk faults) cannot run there: \
             n2: /dev/fuse (the fuse kernel module); n3: /dev/fuse (the fuse kernel module)"
        );
        refuse_if_missing(&[]).unwrap();
    }
}
