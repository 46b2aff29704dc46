//! Remote hosts: nodes on other machines, driven over SSH.
//!
//! * [`spec`] — the campaign's `hosts:` and `ssh:` sections and their validation.
//! * [`quote`] — POSIX shell quoting of argument vectors (the remote side of SSH runs a
//!   command line through the login shell).
//! * [`ssh`] — the transport: OpenSSH's `ssh` client with one multiplexed master
//!   connection per host, commands with a timeout each, file upload over the same master.
//! * [`shell`] — one persistent shell per host over its master: a command is one write and
//!   one read.
//! * [`hosts`] — a run's hosts: node processes started detached, signalled, stopped;
//!   partition tables; probes from the hosts; logs fetched back; every remote resource in
//!   the run's ownership record, and the cleanup step that removes them.
//! * [`disk`] — the lazy disk layer under remote nodes: this executable uploaded with the
//!   run and started as a process of its own per node, driven by typed requests.
//! * [`cgroup`] — nodes supervised by cgroup v2 where the host has it and we are root.
//! * [`clock`] — the hosts' own clocks shifted and put back (`ssh.set_clock`).
//! * [`iptables`] — partitions and loss through chains of the run's own, on hosts without
//!   `nft`.
//!
//! No agent is installed on the hosts: everything runs through `ssh`, `scp` and the
//! host's own tools.

pub mod cgroup;
pub mod clock;
pub mod disk;
pub mod hosts;
pub mod iptables;
pub mod quote;
pub mod shell;
pub mod spec;
pub mod ssh;

pub use hosts::{RemoteError, RemoteHosts, RemoteNode};
pub use spec::{HostSpec, SshSpec, StrictHostKeyChecking};
pub use ssh::{RemoteOutput, SshError, SshOptions, SshTransport};
