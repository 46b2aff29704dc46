//! Probes for what this machine offers: privileges, kernel features, helper programs.
//!
//! Each probe tries the real thing where that is cheap and harmless — inside a throwaway
//! network namespace or cgroup, never in the controller's own network — so "ok" means "it
//! worked just now", not "a file exists". `run` calls [`probe_all`] (or single probes)
//! to validate a campaign before it starts anything; `doctor` prints the same data.

use crate::cgroup::{self, Cgroup};
use crate::netns::{self, IpBatch};
use rand::Rng;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Everything the harness may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    Root,
    NetworkNamespaces,
    VethBridge,
    Cgroup2,
    CgroupFreeze,
    CgroupKill,
    Nftables,
    Iptables,
    Nfqueue,
    NftDup,
    Libfaketime,
    TcNetem,
    TimeNamespaces,
    Etcd,
    Fuse,
}

impl Capability {
    pub const ALL: [Capability; 15] = [
        Capability::Root,
        Capability::NetworkNamespaces,
        Capability::VethBridge,
        Capability::Cgroup2,
        Capability::CgroupFreeze,
        Capability::CgroupKill,
        Capability::Nftables,
        Capability::Iptables,
        Capability::Nfqueue,
        Capability::NftDup,
        Capability::Libfaketime,
        Capability::TcNetem,
        Capability::TimeNamespaces,
        Capability::Etcd,
        Capability::Fuse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Capability::Root => "root privileges",
            Capability::NetworkNamespaces => "network namespaces",
            Capability::VethBridge => "veth + bridge",
            Capability::Cgroup2 => "cgroup v2",
            Capability::CgroupFreeze => "cgroup.freeze",
            Capability::CgroupKill => "cgroup.kill",
            Capability::Nftables => "nft",
            Capability::Iptables => "iptables",
            Capability::Nfqueue => "NFQUEUE target",
            Capability::NftDup => "nft dup",
            Capability::Libfaketime => "libfaketime",
            Capability::TcNetem => "tc netem",
            Capability::TimeNamespaces => "time namespaces",
            Capability::Etcd => "etcd binary",
            Capability::Fuse => "FUSE",
        }
    }

    /// What cannot be done without it.
    pub fn disables(self) -> &'static str {
        match self {
            Capability::Root => {
                "every `run` (namespaces and cgroups need CAP_SYS_ADMIN, CAP_NET_ADMIN)"
            }
            Capability::NetworkNamespaces => "every `run`",
            Capability::VethBridge => "every `run` (the cluster network)",
            Capability::Cgroup2 => "cgroup pause/kill (falls back to signals to the process group)",
            Capability::CgroupFreeze => "pause via freezer (falls back to SIGSTOP/SIGCONT)",
            Capability::CgroupKill => {
                "kill of a node's whole cgroup (falls back to SIGKILL of the group)"
            }
            Capability::Nftables => "nftables partitions, packet loss via nft",
            Capability::Iptables => "delay and reorder on kernels whose nftables cannot queue (the NFQUEUE rule goes through iptables)",
            Capability::Nfqueue => "delay/reorder without netem (NFQUEUE + holder thread)",
            Capability::NftDup => "duplicate without netem",
            Capability::Libfaketime => "clock faults",
            Capability::TcNetem => "delay/reorder/duplicate via netem (NFQUEUE is the fallback)",
            Capability::TimeNamespaces => "nothing yet (a future monotonic-clock fault would use them)",
            Capability::Etcd => "the etcd system",
            Capability::Fuse => "disk faults (the lazy disk layer under each node)",
        }
    }

    /// Needed by the default path (partitions by blackhole routes, pauses, kills).
    pub fn essential(self) -> bool {
        matches!(
            self,
            Capability::Root | Capability::NetworkNamespaces | Capability::VethBridge
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Missing,
}

/// The result of probing one capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub capability: Capability,
    pub status: Status,
    /// A version, a path, or why it is missing.
    pub detail: String,
}

impl Probe {
    fn ok(capability: Capability, detail: impl Into<String>) -> Self {
        Probe {
            capability,
            status: Status::Ok,
            detail: detail.into(),
        }
    }

    fn missing(capability: Capability, detail: impl Into<String>) -> Self {
        Probe {
            capability,
            status: Status::Missing,
            detail: detail.into(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

/// Why `run` cannot start: the process lacks the privileges for namespaces and cgroups.
#[derive(Debug, thiserror::Error)]
#[error("run needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create network namespaces and cgroups{detail}")]
pub struct PrivilegeError {
    detail: String,
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// The effective capability set of this process, from `/proc/self/status`.
fn effective_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The first thing `run` calls: an error (exit 77) unless the process has CAP_SYS_ADMIN and
/// CAP_NET_ADMIN.
pub fn require_root() -> Result<(), PrivilegeError> {
    let caps = effective_capabilities().unwrap_or(0);
    let has = |bit: u32| caps & (1 << bit) != 0;
    let lacking: Vec<&str> = [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|&(bit, _)| !has(bit))
    .map(|(_, name)| name)
    .collect();
    if lacking.is_empty() {
        Ok(())
    } else {
        Err(PrivilegeError {
            detail: format!(" (lacking {})", lacking.join(", ")),
        })
    }
}

/// Probes everything, in [`Capability::ALL`] order.
pub fn probe_all() -> Vec<Probe> {
    let scratch = ScratchNetns::create();
    Capability::ALL
        .iter()
        .map(|&c| probe_with(c, &scratch))
        .collect()
}

/// Probes one capability.
pub fn probe(capability: Capability) -> Probe {
    let scratch = ScratchNetns::create();
    probe_with(capability, &scratch)
}

fn probe_with(capability: Capability, scratch: &Result<ScratchNetns, String>) -> Probe {
    use Capability as C;
    let result = match capability {
        C::Root => require_root()
            .map(|()| "CAP_SYS_ADMIN, CAP_NET_ADMIN".to_owned())
            .map_err(|e| e.to_string()),
        C::NetworkNamespaces => scratch
            .as_ref()
            .map(|s| format!("created and deleted {}", s.name))
            .map_err(Clone::clone),
        C::VethBridge => with_scratch(scratch, probe_veth_bridge),
        C::Cgroup2 => cgroup::cgroup2_mount()
            .map(|p| format!("mounted at {}", p.display()))
            .map_err(|e| e.to_string()),
        C::CgroupFreeze => probe_cgroup(true),
        C::CgroupKill => probe_cgroup(false),
        C::Nftables => program_version("nft", &["--version"]),
        C::Iptables => program_version("iptables", &["--version"]),
        C::Nfqueue => with_scratch(scratch, probe_nfqueue),
        C::NftDup => with_scratch(scratch, probe_nft_dup),
        C::Libfaketime => find_libfaketime().map(|p| p.to_owned()),
        C::TcNetem => with_scratch(scratch, probe_netem),
        C::TimeNamespaces => probe_time_namespace(),
        C::Etcd => program_version("etcd", &["--version"]),
        C::Fuse => probe_fuse(),
    };
    match result {
        Ok(detail) => Probe::ok(capability, detail),
        Err(detail) => Probe::missing(capability, detail),
    }
}

/// Mounts a scratch disk layer over a scratch directory, writes through it, and unmounts;
/// once per process (probes are serialised: the answer does not change while it runs).
fn probe_fuse() -> Result<String, String> {
    static ANSWER: std::sync::Mutex<Option<Result<String, String>>> = std::sync::Mutex::new(None);
    let mut answer = ANSWER.lock().unwrap_or_else(|e| e.into_inner());
    answer
        .get_or_insert_with(|| probe_fuse_once(Path::new("/dev/fuse")))
        .clone()
}

fn probe_fuse_once(device: &Path) -> Result<String, String> {
    if !device.exists() {
        return Err(format!(
            "{} is missing (no FUSE in this kernel or container)",
            device.display()
        ));
    }
    require_root().map_err(|e| format!("mounting needs root: {e}"))?;
    let scratch = std::env::temp_dir().join(format!(
        "splitbrain-fuse-probe-{}-{}",
        std::process::id(),
        rand::thread_rng().gen::<u32>()
    ));
    let result = (|| {
        let mut layer = crate::disk::DiskLayer::mount(
            &scratch.join("mnt"),
            &scratch.join("backing"),
            &scratch.join("parked"),
            1 << 20,
        )
        .map_err(|e| format!("mounting a scratch layer: {e}"))?;
        let written = std::fs::write(scratch.join("mnt/probe"), b"probe")
            .map_err(|e| format!("writing through a scratch layer: {e}"));
        layer
            .unmount()
            .map_err(|e| format!("unmounting a scratch layer: {e}"))?;
        written.map(|()| "mounted, wrote and unmounted a scratch layer".to_owned())
    })();
    if !crate::disk::is_our_mount(&scratch.join("mnt")) {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    result
}

fn with_scratch(
    scratch: &Result<ScratchNetns, String>,
    probe: fn(&str) -> Result<String, String>,
) -> Result<String, String> {
    match scratch {
        Ok(s) => probe(&s.name),
        Err(e) => Err(format!("no throwaway namespace to probe in: {e}")),
    }
}

/// A namespace for probes, named like a run's (`sb-probe<hex>-x`) so that `cleanup` finds it
/// if the probe process dies; deleted on drop.
struct ScratchNetns {
    name: String,
}

impl ScratchNetns {
    fn create() -> Result<Self, String> {
        let name = format!(
            "sb-probe{:06x}-x",
            rand::thread_rng().gen_range(0..0x100_0000u32)
        );
        let mut batch = IpBatch::new(None);
        batch.line(format!("netns add {name}"));
        netns::ip_batch(&batch).map_err(|e| e.to_string())?;
        Ok(ScratchNetns { name })
    }
}

impl Drop for ScratchNetns {
    fn drop(&mut self) {
        if let Err(e) = netns::delete(std::slice::from_ref(&self.name)) {
            crate::stderr_line!(
                "splitbrain: warning: deleting probe namespace {}: {e}",
                self.name
            );
        }
    }
}

fn probe_veth_bridge(ns: &str) -> Result<String, String> {
    let mut batch = IpBatch::new(None);
    batch.line(format!("link add br0 netns {ns} type bridge"));
    batch.line(format!(
        "link add v0 netns {ns} type veth peer name v1 netns {ns}"
    ));
    netns::ip_batch(&batch).map_err(|e| e.to_string())?;
    Ok("created in a throwaway namespace".into())
}

fn probe_netem(ns: &str) -> Result<String, String> {
    netns::run(
        ns,
        "tc",
        &["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
    )
    .map(|_| "netem qdisc added in a throwaway namespace".into())
    .map_err(|e| e.to_string())
}

/// Which tool puts an NFQUEUE rule into a namespace here: nft's own `queue` statement needs
/// the kernel's `nft_queue`; iptables' NFQUEUE target works through xtables (or nft_compat)
/// on kernels without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueTool {
    Nft,
    Iptables,
}

/// Probes, in a throwaway namespace, which tool can queue packets here.
pub fn queue_tool() -> Result<QueueTool, String> {
    let scratch = ScratchNetns::create()?;
    queue_tool_in(&scratch.name)
}

fn queue_tool_in(ns: &str) -> Result<QueueTool, String> {
    let mut failures = Vec::new();
    if program_version("nft", &["--version"]).is_ok() {
        let script = "add table inet sbprobe\n\
                      add chain inet sbprobe out { type filter hook output priority 0; }\n\
                      add rule inet sbprobe out meta l4proto udp queue num 0 bypass\n";
        let mut cmd = netns::command(ns, "nft").map_err(|e| e.to_string())?;
        match run_with_stdin(cmd.args(["-f", "-"]), script) {
            Ok(()) => return Ok(QueueTool::Nft),
            Err(e) => failures.push(format!("nft queue: {e}")),
        }
    } else {
        failures.push("nft: not installed".into());
    }
    if program_version("iptables", &["--version"]).is_ok() {
        let args = [
            "-w",
            "-t",
            "mangle",
            "-A",
            "OUTPUT",
            "-p",
            "udp",
            "-j",
            "NFQUEUE",
            "--queue-num",
            "0",
            "--queue-bypass",
        ];
        match netns::run(ns, "iptables", &args) {
            Ok(_) => return Ok(QueueTool::Iptables),
            Err(e) => failures.push(format!("iptables NFQUEUE: {e}")),
        }
    } else {
        failures.push("iptables: not installed (apt-get install iptables)".into());
    }
    Err(failures.join("; "))
}

fn probe_nfqueue(ns: &str) -> Result<String, String> {
    queue_tool_in(ns).map(|tool| match tool {
        QueueTool::Nft => "nft queue rule accepted in a throwaway namespace".into(),
        QueueTool::Iptables => "iptables NFQUEUE rule accepted in a throwaway namespace".into(),
    })
}

fn probe_nft_dup(ns: &str) -> Result<String, String> {
    program_version("nft", &["--version"])?;
    let script = "add table ip sbprobe\n\
                  add chain ip sbprobe out { type filter hook output priority 0; }\n\
                  add rule ip sbprobe out ip daddr 127.0.0.2 dup to ip daddr\n";
    let mut cmd = netns::command(ns, "nft").map_err(|e| e.to_string())?;
    run_with_stdin(cmd.args(["-f", "-"]), script)
        .map(|()| "nft dup rule accepted in a throwaway namespace".into())
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// Freeze (or kill) on an empty throwaway cgroup under `splitbrain/`.
fn probe_cgroup(freeze: bool) -> Result<String, String> {
    let root = cgroup::harness_root().map_err(|e| e.to_string())?;
    let name = format!(
        "probe{:06x}",
        rand::thread_rng().gen_range(0..0x100_0000u32)
    );
    let cg = Cgroup::create(root.join(name)).map_err(|e| e.to_string())?;
    let result = if freeze {
        cg.freeze()
            .and_then(|()| cg.thaw())
            .map(|()| "froze and thawed a throwaway cgroup".to_owned())
    } else {
        cg.kill().map(|()| "killed a throwaway cgroup".to_owned())
    };
    let removed = cg.remove();
    let detail = result.map_err(|e| e.to_string())?;
    removed.map_err(|e| e.to_string())?;
    Ok(detail)
}

/// The first line of `program args`' output, or why it could not run.
pub fn program_version(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !output.status.success() {
        return Err(format!("{program} {}: {}", args.join(" "), output.status));
    }
    let text = if output.stdout.is_empty() {
        &output.stderr
    } else {
        &output.stdout
    };
    Ok(String::from_utf8_lossy(text)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// Debian's place for libfaketime.
pub const LIBFAKETIME_PATH: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Where libfaketime is, from its usual path or `ldconfig -p`.
pub fn find_libfaketime() -> Result<&'static str, String> {
    if Path::new(LIBFAKETIME_PATH).exists() {
        return Ok(LIBFAKETIME_PATH);
    }
    let output = Command::new("ldconfig")
        .arg("-p")
        .output()
        .map_err(|e| format!("ldconfig: {e}"))?;
    let listing = String::from_utf8_lossy(&output.stdout);
    let found = listing
        .lines()
        .filter(|l| l.contains("libfaketime.so"))
        .find_map(|l| l.split("=>").nth(1).map(|p| p.trim().to_owned()));
    match found {
        // Leaked once per process: the path is needed for the whole run.
        Some(path) => Ok(Box::leak(path.into_boxed_str())),
        None => Err("not installed (apt-get install libfaketime)".into()),
    }
}

/// Whether a child can be put in a new time namespace (CLONE_NEWTIME, Linux 5.6+).
fn probe_time_namespace() -> Result<String, String> {
    const CLONE_NEWTIME: i32 = 0x80;
    if !Path::new("/proc/self/ns/time").exists() {
        return Err("the kernel has no time namespaces".into());
    }
    let mut cmd = Command::new("/bin/true");
    // SAFETY: unshare is async-signal-safe and nothing allocates.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(CLONE_NEWTIME))
                .map_err(std::io::Error::from)
        });
    }
    match cmd.status() {
        Ok(status) if status.success() => Ok("a child entered a new time namespace".into()),
        Ok(status) => Err(format!("/bin/true in a time namespace: {status}")),
        Err(e) => Err(format!("unshare(CLONE_NEWTIME): {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_has_text() {
        for c in Capability::ALL {
            assert!(!c.name().is_empty());
            assert!(!c.disables().is_empty());
        }
        assert!(Capability::Root.essential());
        assert!(!Capability::Etcd.essential());
    }

    /// Without the FUSE device the probe says so (the disk faults' refusal is tested
    /// with them, in `nemesis::faults::disk`).
    #[test]
    fn a_missing_fuse_device_is_named_and_refuses_disk_faults() {
        let err = probe_fuse_once(Path::new("/dev/splitbrain-no-such-fuse")).unwrap_err();
        assert!(
            err.contains("/dev/splitbrain-no-such-fuse is missing"),
            "{err}"
        );
    }

    #[test]
    fn missing_programs_are_reported() {
        let err = program_version("splitbrain-no-such-program", &["--version"]).unwrap_err();
        assert!(err.contains("splitbrain-no-such-program"));
    }
}
