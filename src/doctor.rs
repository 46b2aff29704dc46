//! `doctor`'s report: the probes of [`crate::capability`] as a table.

use crate::capability::{Probe, Status};
use tabled::settings::peaker::PriorityMax;
use tabled::settings::{Style, Width};
use tabled::{Table, Tabled};

/// The widest the table gets, in columns: long cells wrap at word boundaries, the widest
/// column first, so the report reads on an 80–100 column terminal.
pub const TABLE_WIDTH: usize = 96;

#[derive(Tabled)]
struct Row {
    capability: &'static str,
    status: &'static str,
    detail: String,
    #[tabled(rename = "without it")]
    disables: &'static str,
}

/// The probes as a table: capability, status (ok/missing), detail, what its absence
/// disables; at most [`TABLE_WIDTH`] columns wide.
pub fn render(probes: &[Probe]) -> String {
    let rows = probes.iter().map(|p| Row {
        capability: p.capability.name(),
        status: match p.status {
            Status::Ok => "ok",
            Status::Missing => "missing",
        },
        detail: p.detail.clone(),
        disables: p.capability.disables(),
    });
    Table::new(rows)
        .with(Style::sharp())
        .with(
            Width::wrap(TABLE_WIDTH)
                .keep_words(true)
                .priority(PriorityMax),
        )
        .to_string()
}

/// Whether the default path (partitions, pauses, kills) can run.
pub fn default_path_ready(probes: &[Probe]) -> bool {
    probes
        .iter()
        .filter(|p| p.capability.essential())
        .all(Probe::is_ok)
}

/// One thing `doctor --hosts` checks on each remote host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostItem {
    /// An SSH connection opens (key, host key, network).
    Ssh,
    /// Root, or passwordless `sudo`.
    Privileges,
    /// `nft` or `iptables`: partitions.
    Firewall,
    /// `tc` and the netem qdisc: packet faults.
    Netem,
    /// `/dev/fuse`, and `fusermount` for a user who is not root: disk faults.
    Fuse,
    /// The unified cgroup hierarchy: pauses and kills by cgroup.
    CgroupV2,
    /// `date`, and the right to set the clock: clock faults.
    Clock,
    /// The system under test's program.
    SystemProgram,
}

impl HostItem {
    pub const ALL: [HostItem; 8] = [
        HostItem::Ssh,
        HostItem::Privileges,
        HostItem::Firewall,
        HostItem::Netem,
        HostItem::Fuse,
        HostItem::CgroupV2,
        HostItem::Clock,
        HostItem::SystemProgram,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HostItem::Ssh => "ssh",
            HostItem::Privileges => "root or sudo",
            HostItem::Firewall => "nft / iptables",
            HostItem::Netem => "tc netem",
            HostItem::Fuse => "fuse",
            HostItem::CgroupV2 => "cgroup v2",
            HostItem::Clock => "clock setting",
            HostItem::SystemProgram => "system program",
        }
    }

    /// Whether a host without it cannot run nodes with the default faults (partitions,
    /// pauses, kills) at all.
    pub fn essential(self) -> bool {
        matches!(
            self,
            HostItem::Ssh | HostItem::Privileges | HostItem::Firewall | HostItem::SystemProgram
        )
    }

    /// What a host without it cannot do.
    pub fn disables(self) -> &'static str {
        match self {
            HostItem::Ssh => "everything on this host",
            HostItem::Privileges => "faults, node supervision",
            HostItem::Firewall => "partitions",
            HostItem::Netem => "delay, loss, duplication",
            HostItem::Fuse => "disk faults",
            HostItem::CgroupV2 => "cgroup pauses and kills (signals remain)",
            HostItem::Clock => "clock skew of the host's own clock (ssh.set_clock)",
            HostItem::SystemProgram => "the system's nodes",
        }
    }
}

/// One check of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProbe {
    pub host: String,
    pub item: HostItem,
    pub ok: bool,
    pub detail: String,
}

/// The script run on each host: one `key=value` line per fact. `sbin` directories are added
/// to `PATH`, where a non-root login may lack them.
const HOST_PROBE_SCRIPT: &str = r#"PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
for p in nft iptables tc fusermount3 fusermount date unshare; do printf '%s=%s\n' "$p" "$(command -v "$p")"; done
printf 'program=%s\n' "$(command -v "$1")"
printf 'uid=%s\n' "$(id -u)"
if [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then echo sudo=yes; else echo sudo=no; fi
if [ -c /dev/fuse ]; then echo fuse_device=yes; else echo fuse_device=no; fi
m=$(awk '$0 ~ / - cgroup2 / {print $5; exit}' /proc/self/mountinfo 2>/dev/null)
if [ -n "$m" ] && [ -e "$m/cgroup.procs" ]; then echo "cgroup2=$m"; else echo cgroup2=no; fi
printf 'clock=%s\n' "$(date +%s.%N)"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v tc >/dev/null; then
  if err=$(unshare --net sh -c 'ip link set lo up && tc qdisc add dev lo root netem delay 1ms' 2>&1); then echo netem=yes; else printf 'netem=no: %s\n' "$(echo "$err" | head -n 1)"; fi
fi
"#;

/// The facts [`HOST_PROBE_SCRIPT`] printed, as `key=value` pairs (later lines win).
pub fn parse_host_facts(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The checks of one host from its facts; `program` is the system's program (`None`: not
/// checked for this system), `clock_offset` the host's clock minus the controller's.
pub fn judge_host(
    host: &str,
    facts: &std::collections::BTreeMap<String, String>,
    program: Option<&str>,
    clock_offset: Option<f64>,
) -> Vec<HostProbe> {
    let fact = |key: &str| facts.get(key).map(String::as_str).unwrap_or_default();
    let root = fact("uid") == "0";
    let sudo = fact("sudo") == "yes";
    let privileged = root || sudo;
    let probe = |item, ok, detail: String| HostProbe {
        host: host.to_owned(),
        item,
        ok,
        detail,
    };
    let mut probes = vec![probe(HostItem::Ssh, true, "connected".into())];
    probes.push(probe(
        HostItem::Privileges,
        privileged,
        if root {
            "root".into()
        } else if sudo {
            format!("uid {}, passwordless sudo", fact("uid"))
        } else {
            format!(
                "uid {}, and `sudo -n` asks for a password or is missing",
                fact("uid")
            )
        },
    ));
    let firewalls: Vec<&str> = ["nft", "iptables"]
        .into_iter()
        .filter(|p| !fact(p).is_empty())
        .collect();
    probes.push(probe(
        HostItem::Firewall,
        !firewalls.is_empty(),
        if firewalls.is_empty() {
            "neither nft nor iptables found".into()
        } else {
            format!("{} (partitions use {})", firewalls.join(", "), firewalls[0])
        },
    ));
    let netem = fact("netem");
    probes.push(probe(
        HostItem::Netem,
        netem == "yes",
        match (fact("tc").is_empty(), netem) {
            (true, _) => "tc not found (Debian iproute2)".into(),
            (false, "yes") => "netem qdisc added in a throwaway namespace".into(),
            (false, "") => "not tried: needs root and unshare".into(),
            (false, failed) => failed.trim_start_matches("no: ").to_owned(),
        },
    ));
    let fusermount = [fact("fusermount3"), fact("fusermount")]
        .into_iter()
        .find(|p| !p.is_empty());
    let fuse_device = fact("fuse_device") == "yes";
    // The disk layer (this executable, uploaded by the run) mounts directly as root; a
    // user who is not root mounts through the setuid fusermount.
    probes.push(probe(
        HostItem::Fuse,
        fuse_device && (root || fusermount.is_some()),
        match (fuse_device, root, fusermount) {
            (false, _, _) => "no /dev/fuse".into(),
            (true, true, _) => "/dev/fuse (root mounts the disk layer directly)".into(),
            (true, false, Some(path)) => format!("/dev/fuse, {path}"),
            (true, false, None) => {
                "fusermount not found (Debian fuse3), needed to mount as a user who is not root"
                    .into()
            }
        },
    ));
    // Where the run looks for it too: the cgroup2 mount (`/sys/fs/cgroup`, or
    // `/sys/fs/cgroup/unified` on a hybrid system); used when the SSH user is root.
    let cgroup2 = fact("cgroup2");
    let mounted = cgroup2.starts_with('/');
    probes.push(probe(
        HostItem::CgroupV2,
        mounted && root,
        match (mounted, root) {
            (true, true) => format!("{cgroup2}: nodes in cgroups (freeze, kill)"),
            (true, false) => {
                format!("{cgroup2}, but the SSH user is not root: pauses and kills by signal")
            }
            (false, _) => "no cgroup2 mounted: pauses and kills by signal".into(),
        },
    ));
    let offset = clock_offset
        .map(|o| format!("; clock {:+.0} ms from this machine's", o * 1000.0))
        .unwrap_or_default();
    probes.push(probe(
        HostItem::Clock,
        !fact("date").is_empty() && privileged,
        match (fact("date").is_empty(), privileged) {
            (true, _) => "date not found".into(),
            (false, false) => format!("setting the clock needs root{offset}"),
            (false, true) => format!("{} (used with ssh.set_clock){offset}", fact("date")),
        },
    ));
    probes.push(match program {
        Some(name) => {
            let path = fact("program");
            probe(
                HostItem::SystemProgram,
                !path.is_empty(),
                if path.is_empty() {
                    format!("`{name}` not found on PATH")
                } else {
                    path.to_owned()
                },
            )
        }
        None => probe(
            HostItem::SystemProgram,
            true,
            "not checked for this system".into(),
        ),
    });
    probes
}

/// Checks every host over SSH, in parallel: one connection each (so one unreachable host
/// does not hide the others), control sockets in `control_dir`.
pub fn probe_hosts(
    hosts: &[crate::remote::HostSpec],
    options: &crate::remote::SshOptions,
    control_dir: &std::path::Path,
    program: Option<&str>,
) -> Vec<HostProbe> {
    use crate::remote::SshTransport;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let probe_one = |host: &crate::remote::HostSpec| -> Vec<HostProbe> {
        let unreachable = |detail: String| {
            let mut probes = vec![HostProbe {
                host: host.name.clone(),
                item: HostItem::Ssh,
                ok: false,
                detail,
            }];
            probes.extend(HostItem::ALL[1..].iter().map(|item| HostProbe {
                host: host.name.clone(),
                item: *item,
                ok: false,
                detail: "not checked: no connection".into(),
            }));
            probes
        };
        let transport =
            match SshTransport::connect(std::slice::from_ref(host), options.clone(), control_dir) {
                Ok(t) => t,
                Err(e) => return unreachable(e.to_string()),
            };
        let now = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        };
        let before = now();
        let argv = [
            "sh",
            "-c",
            HOST_PROBE_SCRIPT,
            "sh",
            program.unwrap_or("true"),
        ];
        let output = match transport.run_ok(&host.name, &argv, Duration::from_secs(30)) {
            Ok(output) => output,
            Err(e) => return unreachable(e.to_string()),
        };
        let midpoint = (before + now()) / 2.0;
        let facts = parse_host_facts(&output.stdout_text());
        let offset = facts
            .get("clock")
            .and_then(|c| c.parse::<f64>().ok())
            .map(|clock| clock - midpoint);
        judge_host(&host.name, &facts, program, offset)
    };
    std::thread::scope(|scope| {
        let running: Vec<_> = hosts
            .iter()
            .map(|host| scope.spawn(move || probe_one(host)))
            .collect();
        running
            .into_iter()
            .flat_map(|r| r.join().expect("a host probe does not panic"))
            .collect()
    })
}

#[derive(Tabled)]
struct HostRow {
    host: String,
    check: &'static str,
    status: &'static str,
    detail: String,
    #[tabled(rename = "without it")]
    disables: &'static str,
}

/// The host checks as a table, host by host; at most [`TABLE_WIDTH`] columns wide.
pub fn render_hosts(probes: &[HostProbe]) -> String {
    let rows = probes.iter().map(|p| HostRow {
        host: p.host.clone(),
        check: p.item.name(),
        status: match (p.ok, p.item.essential()) {
            (true, _) => "ok",
            (false, true) => "MISSING",
            (false, false) => "missing",
        },
        detail: p.detail.clone(),
        disables: p.item.disables(),
    });
    Table::new(rows)
        .with(Style::sharp())
        .with(
            Width::wrap(TABLE_WIDTH)
                .keep_words(true)
                .priority(PriorityMax),
        )
        .to_string()
}

/// The essential checks that failed, as `host: check` (empty: every host is usable).
pub fn hosts_missing(probes: &[HostProbe]) -> Vec<String> {
    probes
        .iter()
        .filter(|p| p.item.essential() && !p.ok)
        .map(|p| format!("{}: {}", p.host, p.item.name()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Capability;

    fn probe(capability: Capability, status: Status, detail: &str) -> Probe {
        Probe {
            capability,
            status,
            detail: detail.to_string(),
        }
    }

    #[test]
    fn the_table_fits_in_a_hundred_columns_and_keeps_every_word() {
        let long_detail = "libfaketime.so.1 not found in /usr/lib/x86_64-linux-gnu/faketime, \
            /usr/lib/faketime, /usr/local/lib/faketime or on the ldconfig cache; install the \
            Debian package libfaketime to enable clock faults";
        let probes: Vec<Probe> = Capability::ALL
            .iter()
            .enumerate()
            .map(|(i, capability)| {
                if i % 2 == 0 {
                    probe(*capability, Status::Missing, long_detail)
                } else {
                    probe(*capability, Status::Ok, "ok")
                }
            })
            .collect();
        let table = render(&probes);
        for line in table.lines() {
            let width = line.chars().count();
            assert!(width <= TABLE_WIDTH, "{width} columns: {line}\n{table}");
        }
        // Wrapping keeps the words (those that fit in a column): each is still there.
        let text: String = table.replace(['│', '\n'], " ");
        for word in long_detail.split_whitespace().filter(|w| w.len() <= 20) {
            assert!(text.contains(word), "`{word}` lost:\n{table}");
        }
        for capability in Capability::ALL {
            let first_word = capability.name().split_whitespace().next().unwrap();
            assert!(text.contains(first_word), "{first_word}:\n{table}");
        }
    }

    fn facts(text: &str) -> std::collections::BTreeMap<String, String> {
        parse_host_facts(text)
    }

    #[test]
    fn a_root_host_with_the_tools_is_usable() {
        let f = facts(
            "nft=/usr/sbin/nft\niptables=\ntc=/usr/sbin/tc\nfusermount3=/usr/bin/fusermount3\n\
             fusermount=\ndate=/usr/bin/date\nunshare=/usr/bin/unshare\nprogram=/usr/bin/etcd\n\
             uid=0\nsudo=no\nfuse_device=yes\ncgroup2=/sys/fs/cgroup\nclock=1700000000.5\nnetem=yes\n",
        );
        let probes = judge_host("n1", &f, Some("etcd"), Some(0.004));
        assert_eq!(probes.len(), HostItem::ALL.len());
        assert!(probes.iter().all(|p| p.ok), "{probes:?}");
        assert!(hosts_missing(&probes).is_empty());
        let firewall = probes
            .iter()
            .find(|p| p.item == HostItem::Firewall)
            .unwrap();
        assert_eq!(firewall.detail, "nft (partitions use nft)");
        let clock = probes.iter().find(|p| p.item == HostItem::Clock).unwrap();
        assert!(clock.detail.contains("+4 ms"), "{}", clock.detail);
        let cgroup = probes
            .iter()
            .find(|p| p.item == HostItem::CgroupV2)
            .unwrap();
        assert_eq!(
            cgroup.detail,
            "/sys/fs/cgroup: nodes in cgroups (freeze, kill)"
        );
        let table = render_hosts(&probes);
        assert!(
            table.contains("n1") && table.contains("/usr/bin/etcd"),
            "{table}"
        );
    }

    #[test]
    fn missing_essentials_are_named_by_host_and_check() {
        let f = facts(
            "nft=\niptables=\ntc=\ndate=/bin/date\nprogram=\nuid=1000\nsudo=no\n\
             fuse_device=no\ncgroup2=no\n",
        );
        let probes = judge_host("n2", &f, Some("clusterkv"), None);
        assert_eq!(
            hosts_missing(&probes),
            [
                "n2: root or sudo",
                "n2: nft / iptables",
                "n2: system program"
            ]
        );
        let program = probes
            .iter()
            .find(|p| p.item == HostItem::SystemProgram)
            .unwrap();
        assert!(
            program.detail.contains("`clusterkv` not found"),
            "{}",
            program.detail
        );
        // Optional features missing do not make the host unusable, but are shown.
        let netem = probes.iter().find(|p| p.item == HostItem::Netem).unwrap();
        assert!(!netem.ok && netem.detail.contains("tc not found"));
        let fuse = probes.iter().find(|p| p.item == HostItem::Fuse).unwrap();
        assert!(!fuse.ok && fuse.detail == "no /dev/fuse", "{fuse:?}");
        // As root, /dev/fuse is enough: the layer mounts directly; another user needs
        // fusermount.
        let fuse_of = |text: &str| {
            judge_host("n4", &facts(text), None, None)
                .into_iter()
                .find(|p| p.item == HostItem::Fuse)
                .unwrap()
        };
        assert!(fuse_of("uid=0\nfuse_device=yes\nfusermount3=\nfusermount=\n").ok);
        let user = fuse_of("uid=1000\nsudo=yes\nfuse_device=yes\nfusermount3=\nfusermount=\n");
        assert!(
            !user.ok && user.detail.contains("fusermount not found"),
            "{user:?}"
        );
        assert!(
            fuse_of("uid=1000\nsudo=yes\nfuse_device=yes\nfusermount3=/usr/bin/fusermount3\n").ok
        );
        let sudo_only = facts("uid=1000\nsudo=yes\niptables=/sbin/iptables\nprogram=/x\n");
        let probes = judge_host("n3", &sudo_only, Some("x"), None);
        assert!(hosts_missing(&probes).is_empty(), "{probes:?}");
    }
}
