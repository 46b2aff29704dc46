//! Packet faults inside node namespaces.
//!
//! Loss: an nftables table `splitbrain_loss` in each target node's namespace drops each
//! packet into or out of the node with probability P (`numgen random mod 100 <= P-1`), cluster
//! traffic only (the cluster subnet).
//!
//! Delay, reorder and duplication ("shaping") have two backends, chosen once per process:
//! * **netem** where the kernel has `sch_netem`: one `tc qdisc replace dev eth0 root netem …`
//!   per target namespace (all egress of the node is shaped, client replies included).
//! * **netfilter** otherwise: delay and reorder send the node's outgoing packets to its peers
//!   (the other nodes' addresses) to an NFQUEUE (`queue num N bypass`), where a [`Holder`]
//!   thread keeps each
//!   packet for a while before accepting it. The queue rule lives in nft table
//!   `ip splitbrain_delay` / `ip splitbrain_reorder` where the kernel has `nft_queue`, else in
//!   an iptables chain `SPLITBRAIN_DELAY` / `SPLITBRAIN_REORDER` of table `mangle` (the xtables
//!   NFQUEUE target with `--queue-bypass`). Duplication copies P% of them with nft `dup to
//!   ip daddr` in table `ip splitbrain_dup` (an `ip` table: nft refuses `dup` in `inet`).
//!
//! Undo of the netfilter backend deletes the table first (new packets stop being queued),
//! then stops the holders, which release every packet they hold. [`AppliedShaping`] does the
//! same when dropped, so nothing stays queued on any path.

use super::net::{delete_table_script, nft_parallel, NetError, PROBE_PORT};
use super::nfqueue::{HoldPolicy, Holder, HolderError, HolderStats};
use crate::capability::{self, Capability, QueueTool};
use crate::netns::{self, NetnsError};
use crate::topology::{NODE_IFACE, PREFIX_LEN, SUBNET};
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The nftables table of loss rules.
pub const LOSS_TABLE: &str = "splitbrain_loss";

/// The nft script that makes namespace traffic lossy.
pub fn loss_script(percent: u8) -> Vec<String> {
    // numgen yields 0..=99; `<= P-1` drops P of them (nft refuses `< 100` as out of range).
    let below = percent.clamp(1, 100) - 1;
    let subnet = format!("{SUBNET}/{PREFIX_LEN}");
    vec![
        format!("add table inet {LOSS_TABLE}"),
        format!("add chain inet {LOSS_TABLE} input {{ type filter hook input priority -5; policy accept; }}"),
        format!("add chain inet {LOSS_TABLE} output {{ type filter hook output priority -5; policy accept; }}"),
        format!("add rule inet {LOSS_TABLE} input ip saddr {subnet} numgen random mod 100 <= {below} counter drop"),
        format!("add rule inet {LOSS_TABLE} output ip daddr {subnet} numgen random mod 100 <= {below} counter drop"),
    ]
}

/// Datagrams sent through a loss rule to show it drops: at 1% (the least loss there is),
/// none dropped of 2000 happens about 2 times in a billion.
pub const LOSS_PROBE_DATAGRAMS: usize = 2000;

/// How many packets the loss rules of `netns` dropped (their nft counters).
pub fn loss_dropped(netns: &str) -> Result<u64, PacketError> {
    let out = netns::run(netns, "nft", &["list", "table", "inet", LOSS_TABLE])?;
    if !out.status.success() {
        return Err(PacketError::Probe {
            netns: netns.to_owned(),
            what: "loss counter",
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(sum_counters(&String::from_utf8_lossy(&out.stdout)))
}

/// Evidence that loss is in force: from each `(namespace, peer)`, [`LOSS_PROBE_DATAGRAMS`]
/// datagrams to the peer, then the namespace's drop counter. In effect when every
/// namespace dropped some.
pub fn loss_evidence(probes: &[(String, Ipv4Addr)]) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut effective = !probes.is_empty();
    for (netns, peer) in probes {
        let dropped =
            send_udp_burst(netns, *peer, LOSS_PROBE_DATAGRAMS).and_then(|()| loss_dropped(netns));
        match dropped {
            Ok(n) => {
                effective &= n > 0;
                lines.push(format!(
                    "{netns}: {n} packets dropped (nft counter, after {LOSS_PROBE_DATAGRAMS} probe datagrams)"
                ));
            }
            Err(e) => {
                effective = false;
                lines.push(format!("{netns}: could not read the loss counter: {e}"));
            }
        }
    }
    (lines, effective)
}

/// Makes traffic of `namespaces` lossy; returns how long it took.
pub fn apply_loss(namespaces: &[String], percent: u8) -> Result<Duration, NetError> {
    let started = Instant::now();
    let jobs: Vec<(String, Vec<String>)> = namespaces
        .iter()
        .map(|ns| (ns.clone(), loss_script(percent)))
        .collect();
    if let Err(e) = nft_parallel(&jobs) {
        let _ = heal_loss(namespaces);
        return Err(e);
    }
    Ok(started.elapsed())
}

/// Removes the loss table from `namespaces` (missing tables and namespaces are fine).
pub fn heal_loss(namespaces: &[String]) -> Result<Duration, NetError> {
    let started = Instant::now();
    let jobs: Vec<(String, Vec<String>)> = namespaces
        .iter()
        .filter(|ns| crate::netns::exists(ns))
        .map(|ns| (ns.clone(), delete_table_script(LOSS_TABLE)))
        .collect();
    nft_parallel(&jobs)?;
    Ok(started.elapsed())
}

/// The table of delay rules (family `ip`, in each target namespace).
pub const DELAY_TABLE: &str = "splitbrain_delay";
/// The table of reorder rules.
pub const REORDER_TABLE: &str = "splitbrain_reorder";
/// The table of duplication rules.
pub const DUP_TABLE: &str = "splitbrain_dup";
/// Queue numbers (queues are per namespace; two numbers so that a delay and a reorder may
/// overlap on one node).
pub const DELAY_QUEUE: u16 = 7300;
pub const REORDER_QUEUE: u16 = 7301;
/// The iptables chains (table `mangle`) of the queue rules where nft cannot queue.
pub const DELAY_CHAIN: &str = "SPLITBRAIN_DELAY";
pub const REORDER_CHAIN: &str = "SPLITBRAIN_REORDER";

/// A delay, reorder or duplication fault with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Shaping {
    Delay { mean: Duration, jitter: Duration },
    Reorder { max_delay: Duration },
    Duplicate { percent: u8 },
}

impl Shaping {
    pub fn name(&self) -> &'static str {
        match self {
            Shaping::Delay { .. } => "delay",
            Shaping::Reorder { .. } => "reorder",
            Shaping::Duplicate { .. } => "duplicate",
        }
    }

    /// The nftables table of the netfilter backend.
    pub fn table(&self) -> &'static str {
        match self {
            Shaping::Delay { .. } => DELAY_TABLE,
            Shaping::Reorder { .. } => REORDER_TABLE,
            Shaping::Duplicate { .. } => DUP_TABLE,
        }
    }

    /// The parameters, for records.
    pub fn describe(&self) -> String {
        match self {
            Shaping::Delay { mean, jitter } => {
                format!("{}ms ± {}ms", mean.as_millis(), jitter.as_millis())
            }
            Shaping::Reorder { max_delay } => {
                format!("each packet 0..{}ms", max_delay.as_millis())
            }
            Shaping::Duplicate { percent } => format!("{percent}%"),
        }
    }

    /// The iptables chain of the queue rules (delay and reorder).
    pub fn chain(&self) -> Option<&'static str> {
        match self {
            Shaping::Delay { .. } => Some(DELAY_CHAIN),
            Shaping::Reorder { .. } => Some(REORDER_CHAIN),
            Shaping::Duplicate { .. } => None,
        }
    }

    fn hold_policy(&self) -> Option<(u16, HoldPolicy)> {
        match *self {
            Shaping::Delay { mean, jitter } => {
                Some((DELAY_QUEUE, HoldPolicy::Delay { mean, jitter }))
            }
            Shaping::Reorder { max_delay } => {
                Some((REORDER_QUEUE, HoldPolicy::Reorder { max_delay }))
            }
            Shaping::Duplicate { .. } => None,
        }
    }
}

/// How shaping gets into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShapingBackend {
    /// tc netem on the node's interface.
    Netem,
    /// NFQUEUE + a holder thread (delay, reorder), nft `dup` (duplicate).
    Netfilter,
}

impl ShapingBackend {
    pub fn name(self) -> &'static str {
        match self {
            ShapingBackend::Netem => "netem",
            ShapingBackend::Netfilter => "netfilter",
        }
    }
}

/// The backend of this process: netem where the kernel has it (probed once: netem is the
/// simpler mechanism), else netfilter.
pub fn shaping_backend() -> ShapingBackend {
    static BACKEND: OnceLock<ShapingBackend> = OnceLock::new();
    *BACKEND.get_or_init(|| {
        if capability::probe(Capability::TcNetem).is_ok() {
            ShapingBackend::Netem
        } else {
            ShapingBackend::Netfilter
        }
    })
}

/// Which tool queues packets here (probed once per process).
pub fn queue_tool() -> Result<QueueTool, String> {
    static TOOL: OnceLock<Result<QueueTool, String>> = OnceLock::new();
    TOOL.get_or_init(capability::queue_tool).clone()
}

#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("no way to queue packets here: {0}")]
    NoQueue(String),
    #[error("iptables-restore in {netns}: {message}")]
    Iptables { netns: String, message: String },
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Holder(#[from] HolderError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("{what} in {netns}: {message}")]
    Probe {
        netns: String,
        what: &'static str,
        message: String,
    },
}

/// A node namespace and the addresses of its peers: the traffic that is shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapingTarget {
    pub netns: String,
    pub peers: Vec<Ipv4Addr>,
}

fn address_set(peers: &[Ipv4Addr]) -> String {
    let list: Vec<String> = peers.iter().map(Ipv4Addr::to_string).collect();
    format!("{{ {} }}", list.join(", "))
}

fn output_chain(table: &str) -> [String; 2] {
    [
        format!("add table ip {table}"),
        format!(
            "add chain ip {table} output {{ type filter hook output priority -5; policy accept; }}"
        ),
    ]
}

/// The nft script that sends a node's packets to `peers` through NFQUEUE `queue`. `bypass`:
/// without a bound holder the packets pass instead of being dropped.
pub fn queue_script(table: &str, queue: u16, peers: &[Ipv4Addr]) -> Vec<String> {
    let mut script = output_chain(table).to_vec();
    if !peers.is_empty() {
        script.push(format!(
            "add rule ip {table} output ip daddr {} counter queue num {queue} bypass",
            address_set(peers)
        ));
    }
    script
}

/// The `iptables-restore --noflush` input that sends a node's packets to `peers` through
/// NFQUEUE `queue` from chain `chain` of table `mangle`.
pub fn iptables_queue_script(chain: &str, queue: u16, peers: &[Ipv4Addr]) -> Vec<String> {
    let mut script = vec![
        "*mangle".to_owned(),
        format!(":{chain} - [0:0]"),
        format!("-A OUTPUT -j {chain}"),
    ];
    for peer in peers {
        script.push(format!(
            "-A {chain} -d {peer}/32 -j NFQUEUE --queue-num {queue} --queue-bypass"
        ));
    }
    script.push("COMMIT".to_owned());
    script
}

/// Runs one `iptables-restore --noflush` per namespace, in parallel; every job runs, the
/// first failure is returned.
fn iptables_parallel(jobs: &[(String, Vec<String>)]) -> Result<(), PacketError> {
    let failures = netns::feed_parallel("iptables-restore", &["-w", "--noflush"], jobs)?;
    match failures.into_iter().next() {
        Some((netns, message)) => Err(PacketError::Iptables { netns, message }),
        None => Ok(()),
    }
}

/// Removes chain `chain` and its jump from table `mangle` in `namespaces`, where present.
fn remove_queue_chains(namespaces: &[&String], chains: &[&str]) -> Result<(), PacketError> {
    let mut jobs = Vec::new();
    for ns in namespaces {
        let Ok(out) = netns::run(ns, "iptables-save", &["-t", "mangle"]) else {
            // No mangle table (or no iptables): nothing of ours can be there.
            continue;
        };
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut script = vec!["*mangle".to_owned()];
        for chain in chains {
            if listing.contains(&format!("-A OUTPUT -j {chain}")) {
                script.push(format!("-D OUTPUT -j {chain}"));
            }
            if listing.contains(&format!(":{chain} ")) {
                script.push(format!("-F {chain}"));
                script.push(format!("-X {chain}"));
            }
        }
        if script.len() > 1 {
            script.push("COMMIT".to_owned());
            jobs.push(((*ns).clone(), script));
        }
    }
    iptables_parallel(&jobs)
}

/// The nft script that duplicates `percent`% of a node's packets to `peers` (the copy goes
/// to the packet's own destination).
pub fn dup_script(percent: u8, peers: &[Ipv4Addr]) -> Vec<String> {
    let below = percent.clamp(1, 100) - 1;
    let mut script = output_chain(DUP_TABLE).to_vec();
    if !peers.is_empty() {
        script.push(format!(
            "add rule ip {DUP_TABLE} output ip daddr {} numgen random mod 100 <= {below} counter dup to ip daddr",
            address_set(peers)
        ));
    }
    script
}

/// The `tc` arguments that put `shaping` on the node interface with netem.
pub fn netem_args(shaping: &Shaping) -> Vec<String> {
    let mut args: Vec<String> = ["qdisc", "replace", "dev", NODE_IFACE, "root", "netem"]
        .map(str::to_owned)
        .to_vec();
    let us = |d: Duration| format!("{}us", d.as_micros());
    match *shaping {
        Shaping::Delay { mean, jitter } => {
            args.extend(["delay".into(), us(mean)]);
            if !jitter.is_zero() {
                args.push(us(jitter));
            }
        }
        // netem's default jitter distribution is uniform and its queue is ordered by send
        // time, so `delay m/2 m/2` holds each packet 0..m and reorders.
        Shaping::Reorder { max_delay } => {
            args.extend(["delay".into(), us(max_delay / 2), us(max_delay / 2)]);
        }
        Shaping::Duplicate { percent } => {
            args.extend(["duplicate".into(), format!("{percent}%")]);
        }
    }
    args
}

fn delete_ip_table_script(table: &str) -> Vec<String> {
    vec![
        format!("add table ip {table}"),
        format!("delete table ip {table}"),
    ]
}

/// One shaping fault in force: its rules (or qdiscs) and holder threads. Dropping it
/// removes the rules and then releases every held packet.
pub struct AppliedShaping {
    pub shaping: Shaping,
    pub backend: ShapingBackend,
    pub targets: Vec<ShapingTarget>,
    /// Per namespace, what was applied there (an nft script or a tc command line).
    pub changes: Vec<(String, Vec<String>)>,
    /// How the queue rules went in (delay and reorder of the netfilter backend).
    pub queue_tool: Option<QueueTool>,
    holders: Vec<Holder>,
    healed: bool,
}

impl AppliedShaping {
    /// `netns: queue N` for each holder.
    pub fn queues(&self) -> Vec<String> {
        self.holders
            .iter()
            .map(|h| format!("{}: queue {}", h.netns(), h.queue()))
            .collect()
    }

    fn remove_rules(&self) -> Result<(), PacketError> {
        let namespaces: Vec<&String> = self
            .targets
            .iter()
            .map(|t| &t.netns)
            .filter(|ns| netns::exists(ns))
            .collect();
        match self.backend {
            ShapingBackend::Netfilter => match (self.queue_tool, self.shaping.chain()) {
                (Some(QueueTool::Iptables), Some(chain)) => {
                    remove_queue_chains(&namespaces, &[chain])?;
                }
                _ => {
                    let jobs: Vec<(String, Vec<String>)> = namespaces
                        .iter()
                        .map(|ns| ((*ns).clone(), delete_ip_table_script(self.shaping.table())))
                        .collect();
                    nft_parallel(&jobs)?;
                }
            },
            ShapingBackend::Netem => {
                let results: Vec<Result<(), NetnsError>> = std::thread::scope(|s| {
                    let running: Vec<_> = namespaces
                        .iter()
                        .map(|ns| {
                            s.spawn(move || {
                                netns::run(ns, "tc", &["qdisc", "del", "dev", NODE_IFACE, "root"])
                                    .map(|_| ())
                            })
                        })
                        .collect();
                    running
                        .into_iter()
                        .map(|h| h.join().expect("tc thread does not panic"))
                        .collect()
                });
                results.into_iter().collect::<Result<Vec<()>, _>>()?;
            }
        }
        Ok(())
    }
}

impl Drop for AppliedShaping {
    fn drop(&mut self) {
        if !self.healed {
            if let Err(e) = self.remove_rules() {
                crate::stderr_line!(
                    "splitbrain: warning: removing {} rules: {e}",
                    self.shaping.name()
                );
            }
        }
        // The holders drop after this body: rules first, then the release of held packets.
    }
}

/// What undoing a shaping fault found.
#[derive(Debug, Clone, Default)]
pub struct HealedShaping {
    pub took: Duration,
    /// Per holder namespace, what it did.
    pub holders: Vec<(String, HolderStats)>,
}

/// Puts `shaping` on `targets` with `backend`. For netfilter, holders are bound before the
/// rules go in, so no packet ever waits for a holder that is not there yet. On a failure
/// whatever went in is taken out again.
pub fn apply_shaping(
    shaping: Shaping,
    targets: Vec<ShapingTarget>,
    backend: ShapingBackend,
    seed: u64,
) -> Result<AppliedShaping, PacketError> {
    let mut applied = AppliedShaping {
        shaping,
        backend,
        targets,
        changes: Vec::new(),
        queue_tool: None,
        holders: Vec::new(),
        healed: false,
    };
    match backend {
        ShapingBackend::Netfilter => {
            if let Some((queue, policy)) = shaping.hold_policy() {
                applied.queue_tool = Some(queue_tool().map_err(PacketError::NoQueue)?);
                for (i, target) in applied.targets.iter().enumerate() {
                    let holder = Holder::start(&target.netns, queue, policy, seed ^ i as u64)?;
                    applied.holders.push(holder);
                }
            }
            applied.changes = applied
                .targets
                .iter()
                .map(|t| {
                    let script = match (shaping.hold_policy(), shaping.chain()) {
                        (Some((queue, _)), Some(chain))
                            if applied.queue_tool == Some(QueueTool::Iptables) =>
                        {
                            iptables_queue_script(chain, queue, &t.peers)
                        }
                        (Some((queue, _)), _) => queue_script(shaping.table(), queue, &t.peers),
                        (None, _) => match shaping {
                            Shaping::Duplicate { percent } => dup_script(percent, &t.peers),
                            _ => unreachable!("only duplication has no holder"),
                        },
                    };
                    (t.netns.clone(), script)
                })
                .collect();
            // On failure `applied` drops: rules out, holders stopped.
            if applied.queue_tool == Some(QueueTool::Iptables) {
                iptables_parallel(&applied.changes)?;
            } else {
                nft_parallel(&applied.changes)?;
            }
        }
        ShapingBackend::Netem => {
            let args = netem_args(&shaping);
            applied.changes = applied
                .targets
                .iter()
                .map(|t| (t.netns.clone(), vec![format!("tc {}", args.join(" "))]))
                .collect();
            let results: Vec<Result<(), NetnsError>> = std::thread::scope(|s| {
                let running: Vec<_> = applied
                    .targets
                    .iter()
                    .map(|t| {
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        s.spawn(move || netns::run(&t.netns, "tc", &args).map(|_| ()))
                    })
                    .collect();
                running
                    .into_iter()
                    .map(|h| h.join().expect("tc thread does not panic"))
                    .collect()
            });
            results.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
    }
    Ok(applied)
}

/// Takes `applied` out: rules first, then every holder releases what it holds and stops.
/// Both steps always run; the first error is returned.
pub fn heal_shaping(mut applied: AppliedShaping) -> Result<HealedShaping, PacketError> {
    let started = Instant::now();
    let rules = applied.remove_rules();
    applied.healed = true;
    let mut healed = HealedShaping::default();
    let mut first_error = rules.err();
    for holder in std::mem::take(&mut applied.holders) {
        let netns = holder.netns().to_owned();
        match holder.stop() {
            Ok(stats) => healed.holders.push((netns, stats)),
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
        }
    }
    healed.took = started.elapsed();
    first_error.map_or(Ok(healed), Err)
}

/// Removes every shaping table and netem qdisc from `namespaces` (a crashed run's leftovers;
/// missing state is fine). Holders died with their controller; `bypass` lets packets pass.
pub fn heal_shaping_namespaces(namespaces: &[String]) -> Result<(), PacketError> {
    let existing: Vec<&String> = namespaces.iter().filter(|ns| netns::exists(ns)).collect();
    if capability::program_version("nft", &["--version"]).is_ok() {
        let jobs: Vec<(String, Vec<String>)> = existing
            .iter()
            .map(|ns| {
                let script = [DELAY_TABLE, REORDER_TABLE, DUP_TABLE]
                    .iter()
                    .flat_map(|t| delete_ip_table_script(t))
                    .collect();
                ((*ns).clone(), script)
            })
            .collect();
        nft_parallel(&jobs)?;
    }
    if capability::program_version("iptables", &["--version"]).is_ok() {
        remove_queue_chains(&existing, &[DELAY_CHAIN, REORDER_CHAIN])?;
    }
    for ns in existing {
        // Only netem faults put a root qdisc on a node interface; none there is fine.
        if netns::run(ns, "tc", &["qdisc", "show", "dev", NODE_IFACE])
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("netem"))
        {
            netns::run(ns, "tc", &["qdisc", "del", "dev", NODE_IFACE, "root"])?;
        }
    }
    Ok(())
}

/// Connect round trips from inside `netns` to `to`'s probe port, which no node listens on:
/// the refusal comes back after one round trip, so the time shows any delay on the way.
/// `count` connects one after another; a connect that gets no answer within `timeout`
/// counts as `timeout`.
pub fn connect_rtts(
    netns: &str,
    to: Ipv4Addr,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Duration>, PacketError> {
    let addr = SocketAddr::V4(SocketAddrV4::new(to, PROBE_PORT));
    let handle = netns::spawn_in(netns, move || {
        (0..count)
            .map(|_| {
                let started = Instant::now();
                // Refused (reachable) or anything else: only the time matters here.
                let _ = TcpStream::connect_timeout(&addr, timeout);
                started.elapsed().min(timeout)
            })
            .collect::<Vec<Duration>>()
    })?;
    handle.join().map_err(|_| PacketError::Probe {
        netns: netns.to_owned(),
        what: "connect probe",
        message: "probe thread panicked".into(),
    })
}

/// Sends `count` small UDP datagrams from inside `netns` to `to`'s probe port (nobody
/// listens there; the peer answers with ICMP), to give a duplication rule packets to match.
pub fn send_udp_burst(netns: &str, to: Ipv4Addr, count: usize) -> Result<(), PacketError> {
    let addr = SocketAddr::V4(SocketAddrV4::new(to, PROBE_PORT));
    let handle = netns::spawn_in(netns, move || -> std::io::Result<()> {
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        for _ in 0..count {
            // An ICMP error of the previous datagram may surface here; the send still went out.
            let _ = socket.send_to(b"splitbrain-dup-probe", addr);
        }
        Ok(())
    })?;
    let probe_error = |message: String| PacketError::Probe {
        netns: netns.to_owned(),
        what: "udp probe",
        message,
    };
    handle
        .join()
        .map_err(|_| probe_error("probe thread panicked".into()))?
        .map_err(|e| probe_error(e.to_string()))
}

/// The sum of the packet counters of table `ip <table>` in `netns`.
pub fn table_packets(netns: &str, table: &str) -> Result<u64, PacketError> {
    let out = netns::run(netns, "nft", &["list", "table", "ip", table])?;
    Ok(sum_counters(&String::from_utf8_lossy(&out.stdout)))
}

fn sum_counters(listing: &str) -> u64 {
    listing
        .split("counter packets ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_rules_drop_cluster_traffic_only_and_never_reject() {
        let script = loss_script(30).join("\n");
        assert!(
            script.contains("ip saddr 10.73.0.0/24 numgen random mod 100 <= 29 counter drop"),
            "{script}"
        );
        assert!(
            script.contains("ip daddr 10.73.0.0/24 numgen random mod 100 <= 29 counter drop"),
            "{script}"
        );
        assert!(!script.contains("reject"));
    }

    fn peers() -> Vec<Ipv4Addr> {
        vec![Ipv4Addr::new(10, 73, 0, 12), Ipv4Addr::new(10, 73, 0, 13)]
    }

    #[test]
    fn queue_rules_send_only_peer_traffic_and_bypass_without_a_holder() {
        let script = queue_script(DELAY_TABLE, DELAY_QUEUE, &peers()).join("\n");
        assert!(script.contains("hook output"), "{script}");
        assert!(
            script.contains("ip daddr { 10.73.0.12, 10.73.0.13 } counter queue num 7300 bypass"),
            "{script}"
        );
        // No peers: the table exists (undo stays uniform) but queues nothing.
        assert!(!queue_script(DELAY_TABLE, DELAY_QUEUE, &[])
            .join("\n")
            .contains("queue"));
    }

    #[test]
    fn iptables_queue_rules_jump_from_output_and_bypass() {
        let script = iptables_queue_script(REORDER_CHAIN, REORDER_QUEUE, &peers());
        assert_eq!(script.first().unwrap(), "*mangle");
        assert!(script.contains(&"-A OUTPUT -j SPLITBRAIN_REORDER".to_owned()));
        assert!(script.contains(
            &"-A SPLITBRAIN_REORDER -d 10.73.0.13/32 -j NFQUEUE --queue-num 7301 --queue-bypass"
                .to_owned()
        ));
        assert_eq!(script.last().unwrap(), "COMMIT");
    }

    #[test]
    fn dup_rules_copy_a_percentage_to_the_packet_destination() {
        let script = dup_script(25, &peers()).join("\n");
        assert!(
            script.starts_with("add table ip splitbrain_dup"),
            "{script}"
        );
        assert!(
            script.contains("numgen random mod 100 <= 24 counter dup to ip daddr"),
            "{script}"
        );
    }

    #[test]
    fn netem_arguments_follow_the_fault() {
        let delay = netem_args(&Shaping::Delay {
            mean: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
        });
        assert_eq!(
            delay.join(" "),
            "qdisc replace dev eth0 root netem delay 50000us 10000us"
        );
        let reorder = netem_args(&Shaping::Reorder {
            max_delay: Duration::from_millis(30),
        });
        assert!(reorder.join(" ").ends_with("delay 15000us 15000us"));
        let dup = netem_args(&Shaping::Duplicate { percent: 5 });
        assert!(dup.join(" ").ends_with("netem duplicate 5%"));
    }

    #[test]
    fn counters_are_summed_from_the_listing() {
        let listing = "table ip splitbrain_dup {\n\tchain output {\n\t\tip daddr { 10.73.0.12 } numgen random mod 100 <= 9 counter packets 17 bytes 1020 dup to ip daddr\n\t\tcounter packets 3 bytes 9\n\t}\n}\n";
        assert_eq!(sum_counters(listing), 20);
        assert_eq!(sum_counters("table ip t {}"), 0);
    }
}
