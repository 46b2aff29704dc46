//! The one way a test or benchmark skips: [`skip`] prints `skipped: <test>: <reason>`
//! where `cargo test` shows it, or fails when the environment requires what is missing.
//!
//! Shared by every test and benchmark crate of the workspace (included with `#[path]`), so
//! it uses the standard library only.
//!
//! `cargo test` captures what tests print with `println!`/`eprintln!` and shows it only for
//! failing tests; the line is therefore written straight to the process's standard error,
//! which the capture does not cover, so it appears in the test output next to the test's
//! `ok`. `SPLITBRAIN_REQUIRE` (`all`, or a comma-separated list of [`Need`] names such as
//! `root,etcd,conformance`) turns the skip of anything it names into a failure: CI sets it
//! for everything it installs, so CI cannot pass by skipping.

use std::fmt;
use std::io::Write;

/// The environment variable listing what must not be skipped.
pub const REQUIRE_VARIABLE: &str = "SPLITBRAIN_REQUIRE";

/// Something a test needs that a machine may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Root: network namespaces, cgroups, routes.
    Root,
    /// The `etcd` binary (Debian `etcd-server`).
    Etcd,
    /// The `nft` binary (nftables).
    Nftables,
    /// libfaketime's preload library.
    Libfaketime,
    /// A Chromium to render the HTML report headless.
    Chromium,
    /// `python3`, for the example external client.
    Python3,
    /// Python's `edn_format` package, an EDN parser that is not ours.
    EdnFormat,
    /// Porcupine's published corpus (`../shared/conformance/porcupine` or
    /// `SPLITBRAIN_CONFORMANCE`).
    Conformance,
    /// The `clusterkv` binary, built by `cargo build --workspace`.
    Clusterkv,
    /// A host whose own addresses leave the nodes' subnet free.
    FreeSubnet,
    /// PostgreSQL 15's server programs and its `postgres` user (Debian `postgresql`).
    Postgres,
    /// FUSE (`/dev/fuse`, root to mount): the disk layer.
    Fuse,
    /// ZooKeeper's jar and a `java` (Debian `zookeeper`).
    Zookeeper,
    /// `redis-server`, `redis-sentinel` and `redis-cli` (Debian `redis-server`, `redis-sentinel`).
    Redis,
    /// OpenSSH's `sshd` and client tools (Debian `openssh-server`): the remote-host tests.
    Sshd,
}

impl Need {
    pub const ALL: [Need; 15] = [
        Need::Root,
        Need::Etcd,
        Need::Nftables,
        Need::Libfaketime,
        Need::Chromium,
        Need::Python3,
        Need::EdnFormat,
        Need::Conformance,
        Need::Clusterkv,
        Need::FreeSubnet,
        Need::Postgres,
        Need::Fuse,
        Need::Zookeeper,
        Need::Redis,
        Need::Sshd,
    ];

    /// The name used in `SPLITBRAIN_REQUIRE`.
    pub fn name(self) -> &'static str {
        match self {
            Need::Root => "root",
            Need::Etcd => "etcd",
            Need::Nftables => "nft",
            Need::Libfaketime => "libfaketime",
            Need::Chromium => "chromium",
            Need::Python3 => "python3",
            Need::EdnFormat => "edn_format",
            Need::Conformance => "conformance",
            Need::Clusterkv => "clusterkv",
            Need::FreeSubnet => "free-subnet",
            Need::Postgres => "postgres",
            Need::Fuse => "fuse",
            Need::Zookeeper => "zookeeper",
            Need::Redis => "redis",
            Need::Sshd => "sshd",
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `SPLITBRAIN_REQUIRE` asks for: `all`, or a list of names. An unknown name is an
/// error, so a typo cannot quietly allow a skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Required {
    All,
    Only(Vec<Need>),
}

impl Required {
    /// Parses the variable's value; empty means nothing is required.
    pub fn parse(value: &str) -> Result<Required, String> {
        let mut needs = Vec::new();
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "all" {
                return Ok(Required::All);
            }
            match Need::ALL.iter().find(|need| need.name() == name) {
                Some(need) => needs.push(*need),
                None => {
                    let valid: Vec<&str> = Need::ALL.iter().map(|n| n.name()).collect();
                    return Err(format!(
                        "{REQUIRE_VARIABLE}: unknown name `{name}`; expected `all` or some of: {}",
                        valid.join(", ")
                    ));
                }
            }
        }
        Ok(Required::Only(needs))
    }

    /// From the environment; unset means nothing is required.
    pub fn from_env() -> Required {
        match std::env::var(REQUIRE_VARIABLE) {
            Ok(value) => Required::parse(&value).unwrap_or_else(|e| panic!("{e}")),
            Err(std::env::VarError::NotPresent) => Required::Only(Vec::new()),
            Err(e) => panic!("{REQUIRE_VARIABLE}: {e}"),
        }
    }

    pub fn includes(&self, need: Need) -> bool {
        match self {
            Required::All => true,
            Required::Only(needs) => needs.contains(&need),
        }
    }
}

/// The line every skip prints.
pub fn skip_line(test: &str, reason: &str) -> String {
    format!("skipped: {test}: {reason}")
}

/// Skips `test` for lack of `need`: prints [`skip_line`] where `cargo test` shows it, or
/// panics when `SPLITBRAIN_REQUIRE` requires `need`. The caller returns right after.
pub fn skip(test: &str, need: Need, reason: impl fmt::Display) {
    skip_as(test, need, &reason.to_string(), &Required::from_env());
}

/// [`skip`] against an explicit requirement (for testing the rule itself).
pub fn skip_as(test: &str, need: Need, reason: &str, required: &Required) {
    let line = skip_line(test, reason);
    if required.includes(need) {
        panic!("{line}; but {REQUIRE_VARIABLE} requires `{need}`, so this is a failure");
    }
    // Straight to the file descriptor: not captured by the test harness.
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}
