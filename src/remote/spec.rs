//! The campaign's remote-host sections: `hosts:` (which machine runs which node) and `ssh:`
//! (how to log in to them). Parsed by the campaign loader; checked here, field by field.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;

/// One machine of the cluster: the node it runs and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// The node this host runs: `n1` .. `nN`.
    pub name: String,
    /// An IPv4 or IPv6 address, or a DNS name.
    pub address: String,
}

/// OpenSSH's `StrictHostKeyChecking`, the three values that make sense unattended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrictHostKeyChecking {
    /// Only hosts whose key is already in the known-hosts file.
    #[default]
    Yes,
    /// Unknown hosts are added on first contact; a changed key is refused.
    AcceptNew,
    /// Any key is accepted (test rigs only).
    No,
}

impl StrictHostKeyChecking {
    /// The value `ssh -o StrictHostKeyChecking=` takes.
    pub fn ssh_value(self) -> &'static str {
        match self {
            StrictHostKeyChecking::Yes => "yes",
            StrictHostKeyChecking::AcceptNew => "accept-new",
            StrictHostKeyChecking::No => "no",
        }
    }
}

/// How to log in to the hosts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    #[serde(default = "default_user")]
    pub user: String,
    /// The private key (`~/` is the controller's home, expanded when it is used); absent:
    /// OpenSSH's default keys.
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub strict_host_key_checking: StrictHostKeyChecking,
    /// The known-hosts file (`~/` expanded when used); absent: `~/.ssh/known_hosts`.
    #[serde(default)]
    pub known_hosts: Option<String>,
    /// The directory on every host under which a run makes its own
    /// (`<dir>/splitbrain-<run>/`); an absolute path. Absent: `/tmp`.
    #[serde(default)]
    pub dir: Option<String>,
    /// Clock faults change the hosts' own clocks (`date -s`, put back at the heal) instead
    /// of a libfaketime offset per node: for programs libfaketime cannot skew. Off unless
    /// asked: it changes the whole machine's clock.
    #[serde(default)]
    pub set_clock: bool,
}

impl SshSpec {
    /// The directory a run's own goes under on every host ([`SshSpec::dir`], else `/tmp`).
    pub fn run_parent(&self) -> &str {
        self.dir.as_deref().unwrap_or(super::hosts::REMOTE_ROOT)
    }
}

fn default_user() -> String {
    "root".to_owned()
}

fn default_port() -> u16 {
    22
}

impl Default for SshSpec {
    fn default() -> Self {
        SshSpec {
            user: default_user(),
            identity: None,
            dir: None,
            port: default_port(),
            strict_host_key_checking: StrictHostKeyChecking::default(),
            known_hosts: None,
            set_clock: false,
        }
    }
}

/// A problem with the `hosts:` or `ssh:` section: the field, the value at fault (to find
/// its place in the file) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// `hosts.name`, `hosts.address`, `ssh.user`, ...
    pub field: &'static str,
    /// The key as written in the file and the offending value (`None`: the section as a
    /// whole), to locate it.
    pub key: &'static str,
    pub value: Option<String>,
    /// Which occurrence of `key: value` is at fault (0: the first): a duplicate is the
    /// second one.
    pub occurrence: usize,
    pub message: String,
}

/// Checks the `hosts:` and `ssh:` sections against a cluster of `nodes` nodes named
/// `n1..nN`: one host per node, each name once, addresses that parse and differ, a user
/// name and paths that `ssh` cannot mistake for options.
pub fn validate(
    hosts: &[HostSpec],
    ssh: Option<&SshSpec>,
    nodes: usize,
) -> Result<(), SpecProblem> {
    let problem = |field, key, value: Option<&str>, occurrence, message: String| SpecProblem {
        field,
        key,
        value: value.map(str::to_owned),
        occurrence,
        message,
    };
    if hosts.is_empty() {
        if ssh.is_some() {
            return Err(problem(
                "ssh",
                "ssh",
                None,
                0,
                "applies to remote hosts: expected a `hosts:` list beside it".into(),
            ));
        }
        return Ok(());
    }
    if hosts.len() != nodes {
        return Err(problem(
            "hosts",
            "hosts",
            None,
            0,
            format!(
                "{} hosts for {nodes} nodes: expected one host per node (n1..n{nodes})",
                hosts.len()
            ),
        ));
    }
    for (i, host) in hosts.iter().enumerate() {
        let valid_name = host
            .name
            .strip_prefix('n')
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| (1..=nodes).contains(&n) && format!("n{n}") == host.name);
        if !valid_name {
            return Err(problem(
                "hosts.name",
                "name",
                Some(&host.name),
                0,
                format!("`{}`: expected a node name, n1 to n{nodes}", host.name),
            ));
        }
        if hosts[..i].iter().any(|h| h.name == host.name) {
            return Err(problem(
                "hosts.name",
                "name",
                Some(&host.name),
                1,
                format!("`{}` is named twice: expected each node once", host.name),
            ));
        }
        if let Err(message) = check_address(&host.address) {
            return Err(problem(
                "hosts.address",
                "address",
                Some(&host.address),
                0,
                format!("`{}`: {message}", host.address),
            ));
        }
        if hosts[..i]
            .iter()
            .any(|h| same_address(&h.address, &host.address))
        {
            return Err(problem(
                "hosts.address",
                "address",
                Some(&host.address),
                1,
                format!(
                    "`{}` is given twice: expected one machine per node",
                    host.address
                ),
            ));
        }
    }
    let Some(ssh) = ssh else { return Ok(()) };
    if !is_valid_user(&ssh.user) {
        return Err(problem(
            "ssh.user",
            "user",
            Some(&ssh.user),
            0,
            format!(
                "`{}`: expected a user name (a letter or `_`, then letters, digits, `_`, `-`, `.`; at most 32)",
                ssh.user
            ),
        ));
    }
    if ssh.port == 0 {
        return Err(problem(
            "ssh.port",
            "port",
            Some("0"),
            0,
            "0: expected a TCP port, 1 to 65535".into(),
        ));
    }
    for (field, key, path) in [
        ("ssh.identity", "identity", &ssh.identity),
        ("ssh.known_hosts", "known_hosts", &ssh.known_hosts),
    ] {
        if let Some(path) = path {
            if let Err(message) = check_path(path) {
                return Err(problem(
                    field,
                    key,
                    Some(path),
                    0,
                    format!("`{path}`: {message}"),
                ));
            }
        }
    }
    if let Some(dir) = &ssh.dir {
        if let Err(message) = check_run_parent(dir) {
            return Err(problem(
                "ssh.dir",
                "dir",
                Some(dir),
                0,
                format!("`{dir}`: {message}"),
            ));
        }
    }
    Ok(())
}

/// A directory for runs on the hosts: absolute, no `.` or `..` component, no NUL or line
/// break (the run's own directory below it is the only thing removed).
fn check_run_parent(dir: &str) -> Result<(), String> {
    if !dir.starts_with('/') {
        return Err("expected an absolute path on the hosts (starting with `/`)".into());
    }
    if dir.contains(['\0', '\n', '\r']) {
        return Err("a path cannot hold a NUL byte or a line break".into());
    }
    if dir.split('/').any(|part| part == "." || part == "..") {
        return Err("expected a path without `.` or `..` components".into());
    }
    Ok(())
}

/// An IP address, or a DNS name (labels of letters, digits and `-`, not starting or ending
/// with `-`): nothing `ssh` could read as an option or a `user@` prefix.
fn check_address(address: &str) -> Result<(), String> {
    if address.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = address.strip_suffix('.').unwrap_or(address);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let looks_numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if name.is_empty() || name.len() > 253 || looks_numeric || !name.split('.').all(label_ok) {
        return Err("expected an IPv4 or IPv6 address or a DNS name".into());
    }
    Ok(())
}

fn same_address(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a
            .trim_end_matches('.')
            .eq_ignore_ascii_case(b.trim_end_matches('.')),
    }
}

/// A POSIX user name as `useradd` accepts it by default (and never an option).
fn is_valid_user(user: &str) -> bool {
    let mut bytes = user.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && user.len() <= 32 && bytes.all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// A path `ssh -i`/`UserKnownHostsFile` can take: not empty, no NUL or line break, not an
/// option, `~` only as `~/...` (the controller's home).
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("expected a file path".into());
    }
    if path.contains(['\0', '\n', '\r']) {
        return Err("a path cannot hold a NUL byte or a line break".into());
    }
    if path.starts_with('-') {
        return Err("expected a file path, not an option".into());
    }
    if path.starts_with('~') && path != "~" && !path.starts_with("~/") {
        return Err("`~user/` is not expanded: expected `~/...` or a full path".into());
    }
    Ok(())
}

/// `path` with a leading `~/` replaced by `home` (the controller's `$HOME`).
pub fn expand_home(path: &str, home: Option<&std::ffi::OsStr>) -> Result<PathBuf, String> {
    match path
        .strip_prefix("~/")
        .or(if path == "~" { Some("") } else { None })
    {
        Some(rest) => match home.filter(|h| !h.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(rest)),
            None => Err(format!("{path}: `~` needs $HOME, which is not set")),
        },
        None => Ok(PathBuf::from(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, address: &str) -> HostSpec {
        HostSpec {
            name: name.into(),
            address: address.into(),
        }
    }

    fn three() -> Vec<HostSpec> {
        vec![
            host("n1", "10.1.0.11"),
            host("n2", "db2.example.org"),
            host("n3", "fd00::13"),
        ]
    }

    #[test]
    fn a_host_per_node_with_good_addresses_passes() {
        assert_eq!(validate(&three(), None, 3), Ok(()));
        assert_eq!(validate(&three(), Some(&SshSpec::default()), 3), Ok(()));
        assert_eq!(validate(&[], None, 3), Ok(()));
    }

    #[test]
    fn hosts_must_match_the_nodes() {
        let p = validate(&three(), None, 5).unwrap_err();
        assert_eq!(p.field, "hosts");
        assert!(p.message.contains("3 hosts for 5 nodes"), "{}", p.message);
        for bad in ["n4", "n0", "n01", "node1", "N1", ""] {
            let mut hosts = three();
            hosts[2].name = bad.into();
            let p = validate(&hosts, None, 3).unwrap_err();
            assert_eq!(
                (p.field, p.value.as_deref()),
                ("hosts.name", Some(bad)),
                "{bad}"
            );
        }
        let mut hosts = three();
        hosts[2].name = "n1".into();
        let p = validate(&hosts, None, 3).unwrap_err();
        assert_eq!((p.field, p.occurrence), ("hosts.name", 1));
        assert!(p.message.contains("named twice"), "{}", p.message);
    }

    #[test]
    fn addresses_must_parse_and_differ() {
        for bad in [
            "",
            "-oProxyCommand=x",
            "root@10.0.0.1",
            "10.0.0.300",
            "a b",
            "host-.example",
            "10.0.0.1:22",
            "1.2.3",
        ] {
            let mut hosts = three();
            hosts[0].address = bad.into();
            let p = validate(&hosts, None, 3).unwrap_err();
            assert_eq!(p.field, "hosts.address", "{bad}");
        }
        let mut hosts = three();
        hosts[2].address = "10.1.0.11".into();
        let p = validate(&hosts, None, 3).unwrap_err();
        assert_eq!((p.field, p.occurrence), ("hosts.address", 1));
        hosts[2].address = "DB2.example.org.".into();
        hosts[1].address = "db2.example.org".into();
        assert_eq!(
            validate(&hosts, None, 3).unwrap_err().field,
            "hosts.address"
        );
    }

    #[test]
    fn ssh_fields_are_checked() {
        let with = |f: &dyn Fn(&mut SshSpec)| {
            let mut ssh = SshSpec::default();
            f(&mut ssh);
            validate(&three(), Some(&ssh), 3).map_err(|p| p.field)
        };
        assert_eq!(with(&|s| s.user = "-oops".into()), Err("ssh.user"));
        assert_eq!(with(&|s| s.user = "".into()), Err("ssh.user"));
        assert_eq!(with(&|s| s.user = "deploy-bot".into()), Ok(()));
        assert_eq!(with(&|s| s.port = 0), Err("ssh.port"));
        assert_eq!(with(&|s| s.identity = Some("".into())), Err("ssh.identity"));
        assert_eq!(
            with(&|s| s.identity = Some("~bob/k".into())),
            Err("ssh.identity")
        );
        assert_eq!(
            with(&|s| s.identity = Some("~/.ssh/id_ed25519".into())),
            Ok(())
        );
        assert_eq!(
            with(&|s| s.known_hosts = Some("-F".into())),
            Err("ssh.known_hosts")
        );
        assert_eq!(with(&|s| s.dir = Some("var/sb".into())), Err("ssh.dir"));
        assert_eq!(with(&|s| s.dir = Some("~/sb".into())), Err("ssh.dir"));
        assert_eq!(
            with(&|s| s.dir = Some("/var/../etc".into())),
            Err("ssh.dir")
        );
        assert_eq!(with(&|s| s.dir = Some("/var/lib/sb".into())), Ok(()));
        assert_eq!(SshSpec::default().run_parent(), "/tmp");
        // `ssh:` alone, without hosts, is a mistake rather than something ignored.
        let p = validate(&[], Some(&SshSpec::default()), 3).unwrap_err();
        assert_eq!(p.field, "ssh");
    }

    #[test]
    fn home_is_expanded_only_for_a_leading_tilde_slash() {
        let home = std::ffi::OsStr::new("/home/ops");
        assert_eq!(
            expand_home("~/.ssh/id_ed25519", Some(home)).unwrap(),
            PathBuf::from("/home/ops/.ssh/id_ed25519")
        );
        assert_eq!(
            expand_home("/etc/k", None).unwrap(),
            PathBuf::from("/etc/k")
        );
        assert_eq!(
            expand_home("rel/~/k", Some(home)).unwrap(),
            PathBuf::from("rel/~/k")
        );
        assert!(expand_home("~/k", None).is_err());
    }
}
