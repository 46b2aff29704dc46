//! Remote hosts: nodes on other machines, driven over SSH.
//!
//! * [`spec`] — the campaign's `hosts:` and `ssh:` sections and their validation.
//! * [`quote`] — POSIX shell quoting of argument vectors (the remote side of SSH runs a
//!   command line through the login shell).
//! * [`ssh`] — the transport: OpenSSH's `ssh` client with one multiplexed master
//!   connection per host, commands with a timeout each, file upload over the same master.
//!
//! No agent is installed on the hosts: everything runs through `ssh`, `scp` and the
//! host's own tools.

pub mod quote;
pub mod spec;
pub mod ssh;

pub use spec::{HostSpec, SshSpec, StrictHostKeyChecking};
pub use ssh::{RemoteOutput, SshError, SshOptions, SshTransport};
