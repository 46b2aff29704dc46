//! The nemesis: faults through the operating system, scheduled, verified, recorded, undone.
//!
//! * [`partition`] — partition shapes as pure data (who must not hear whom).
//! * [`net`] — the one module that turns a grudge into kernel state (blackhole routes or
//!   nftables drops) and back; also reachability probes.
//! * [`process`] — kill / start again, pause / resume of nodes.
//! * [`clock`] — libfaketime offsets per node; refusal of binaries it cannot skew.
//! * [`packet`] — packet loss, delay, reorder, duplication; [`nfqueue`] — the packet holder.
//! * [`roles`] — who leads, per system.
//! * [`record`] — what a fault writes into the history ([`record::FaultRecord`]) and its
//!   events' names.
//! * [`schedule`] — the campaign's `nemesis:` section and the schedule computed from it.
//! * [`runner`] — executes a schedule on a live cluster, records, undoes on every path.
//!
//! [`validate`] runs before anything starts: a campaign asking for a fault this machine
//! cannot do is refused, naming the missing piece.

pub mod clock;
pub mod net;
pub mod netlink;
pub mod nfqueue;
pub mod packet;
pub mod partition;
pub mod process;
pub mod record;
pub mod roles;
pub mod runner;
pub mod schedule;

pub use net::NetBackend;
pub use partition::{Grudge, Shape};
pub use runner::{Nemesis, NemesisContext, NemesisReport};
pub use schedule::{FaultKind, NemesisSpec, Schedule, TargetSpec};

use crate::campaign::{Campaign, SystemSpec};
use crate::capability::{self, Capability};
use crate::cleanup::CleanupReport;
use crate::cluster::Deployment;
use crate::system::{ClusterSpec, NodeSpec};
use crate::topology::{self, RunId};

/// Why a campaign's faults cannot run here.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    #[error("nemesis: `{fault}` faults need {missing}, which is not available here: {detail}")]
    Unavailable {
        fault: &'static str,
        missing: &'static str,
        detail: String,
    },
    #[error("nemesis: {0}")]
    Clock(#[from] clock::ClockError),
    #[error("nemesis: {0}")]
    Plan(#[from] schedule::PlanError),
    #[error("nemesis: {0}")]
    Runner(#[from] runner::RunnerError),
}

impl NemesisError {
    /// Unavailable for what this machine lacks, usage for a bad schedule.
    pub fn kind(&self) -> crate::exit::FailureKind {
        match self {
            NemesisError::Plan(_) => crate::exit::FailureKind::Usage,
            _ => crate::exit::FailureKind::Unavailable,
        }
    }
}

fn need(fault: FaultKind, capability: Capability) -> Result<(), NemesisError> {
    let probe = capability::probe(capability);
    if probe.is_ok() {
        Ok(())
    } else {
        Err(NemesisError::Unavailable {
            fault: fault.name(),
            missing: capability.name(),
            detail: probe.detail,
        })
    }
}

/// Delay, reorder and duplication need netem, or else the netfilter pieces of their
/// fallback: an NFQUEUE rule (nft's `queue` or iptables' NFQUEUE target) for delay and
/// reorder, nft `dup` for duplication.
fn need_shaping(kind: FaultKind) -> Result<(), NemesisError> {
    // Also settles (once per process) which backend the faults will use, so that the
    // probes are not paid when the first fault goes in.
    if packet::shaping_backend() == packet::ShapingBackend::Netem {
        return Ok(());
    }
    let netem = capability::probe(Capability::TcNetem);
    let (fallback, missing) = match kind {
        FaultKind::Duplicate => (
            Capability::NftDup,
            "tc netem or nft `dup` (install nftables)",
        ),
        _ => (
            Capability::Nfqueue,
            "tc netem or an NFQUEUE rule (nft with nft_queue, or iptables: apt-get install iptables)",
        ),
    };
    let probe = capability::probe(fallback);
    if probe.is_ok() && (kind == FaultKind::Duplicate || packet::queue_tool().is_ok()) {
        return Ok(());
    }
    Err(NemesisError::Unavailable {
        fault: kind.name(),
        missing,
        detail: format!(
            "netem: {}; {}: {}",
            netem.detail,
            fallback.name(),
            probe.detail
        ),
    })
}

/// Checks that every fault the campaign asks for can be done here, before anything starts.
pub fn validate(campaign: &Campaign) -> Result<(), NemesisError> {
    let spec = &campaign.nemesis;
    if !spec.is_active() {
        return Ok(());
    }
    if let SystemSpec::InMemory(_) = campaign.system {
        return Err(NemesisError::Unavailable {
            fault: spec.kinds()[0].name(),
            missing: "a cluster of processes",
            detail: "the in-memory system has no processes or network to fault".into(),
        });
    }
    let kinds = spec.kinds();
    for kind in [FaultKind::Delay, FaultKind::Reorder, FaultKind::Duplicate] {
        if kinds.contains(&kind) {
            need_shaping(kind)?;
        }
    }
    spec.validate(campaign.nodes)?;
    let partitions = kinds.contains(&FaultKind::Partition);
    if partitions && spec.backend == NetBackend::Nftables {
        need(FaultKind::Partition, Capability::Nftables)?;
    }
    if kinds.contains(&FaultKind::Loss) {
        need(FaultKind::Loss, Capability::Nftables)?;
    }
    if spec.needs_clock() {
        let fault = kinds
            .iter()
            .copied()
            .find(|k| k.is_clock())
            .unwrap_or(FaultKind::Clock);
        need(fault, Capability::Libfaketime)?;
        check_clock_binaries(campaign, fault)?;
    }
    Ok(())
}

/// Every node's binary must be one libfaketime can skew.
fn check_clock_binaries(campaign: &Campaign, fault: FaultKind) -> Result<(), NemesisError> {
    let system =
        crate::cluster::system_for(&campaign.system).map_err(|e| NemesisError::Unavailable {
            fault: fault.name(),
            missing: "the system's node binary",
            detail: format!("{e:#}"),
        })?;
    let cluster = ClusterSpec {
        nodes: (1..=campaign.nodes)
            .map(|i| NodeSpec {
                name: topology::node_name(i),
                id: i,
                ip: topology::node_ip(i),
                data_dir: std::env::temp_dir()
                    .join("splitbrain-validate")
                    .join(topology::node_name(i)),
            })
            .collect(),
    };
    for node in &cluster.nodes {
        let launch = system
            .launch(node, &cluster)
            .map_err(|e| NemesisError::Unavailable {
                fault: fault.name(),
                missing: "the system's node command line",
                detail: format!("{e:#}"),
            })?;
        clock::check_binary(&node.name, &launch.program)?;
    }
    Ok(())
}

/// Plans the campaign's schedule (from `seed`) and starts executing it against
/// `deployment`, times counted from `origin` (the start of the main phase). `None` when
/// the campaign has no faults.
pub fn start_for_run(
    campaign: &Campaign,
    deployment: &std::sync::Arc<crate::cluster::Deployment>,
    recorder: &crate::recorder::Recorder,
    seed: u64,
    origin: std::time::Instant,
) -> Result<Option<Nemesis>, NemesisError> {
    if !campaign.nemesis.is_active() {
        return Ok(None);
    }
    let nodes = deployment.node_names();
    let schedule = schedule::plan(&campaign.nemesis, &nodes, seed, campaign.workload.duration)?;
    let ctx = NemesisContext {
        deployment: deployment.clone(),
        recorder: recorder.clone(),
        backend: campaign.nemesis.backend,
        roles: runner::role_query_for(&campaign.system),
        routes: route_workers(campaign, deployment),
    };
    Ok(Some(Nemesis::start(ctx, schedule, origin)?))
}

/// Netlink threads for blackhole partitions; without them (a kernel or sandbox that refuses
/// them) partitions fall back to `ip -batch`, slower but equivalent.
fn route_workers(campaign: &Campaign, deployment: &Deployment) -> Option<netlink::RouteWorkers> {
    let Deployment::Cluster(cluster) = deployment else {
        return None;
    };
    let partitions = campaign.nemesis.backend == NetBackend::Blackhole;
    if !partitions {
        return None;
    }
    let namespaces: Vec<String> = cluster
        .topology
        .nodes()
        .iter()
        .map(|n| n.netns.clone())
        .collect();
    match netlink::RouteWorkers::start(&namespaces) {
        Ok(w) => Some(w),
        Err(e) => {
            eprintln!("splitbrain: warning: netlink route threads unavailable ({e}); partitions use ip -batch");
            None
        }
    }
}

/// The environment that makes a node's clock skewable, with its offset file (created with
/// `+0`) in `node_dir`.
pub fn clock_env(node_dir: &std::path::Path) -> Result<Vec<(String, String)>, NemesisError> {
    let lib = capability::find_libfaketime().map_err(|detail| NemesisError::Unavailable {
        fault: "clock",
        missing: "libfaketime",
        detail,
    })?;
    // Absolute: the node runs in its own data directory, where a relative path would name
    // a file that does not exist, and libfaketime would silently not skew anything.
    let node_dir = std::path::absolute(node_dir).map_err(|source| clock::ClockError::Write {
        path: node_dir.to_owned(),
        source,
    })?;
    let file = node_dir.join(clock::OFFSET_FILE);
    clock::write_offset(&file, 0)?;
    Ok(clock::faketime_env(std::path::Path::new(lib), &file))
}

/// Cleanup step: removes nemesis state (partition routes and rules, loss, delay, reorder and
/// duplication rules, netem qdiscs) from the
/// namespaces of a crashed run that are still there, before they are deleted. Routes and
/// tables live only inside run namespaces, so deleting those removes them too; this step
/// makes the removal explicit and reported. Offset files live in the run's results.
pub fn cleanup_leftovers(run: Option<&RunId>, report: &mut CleanupReport) {
    let namespaces: Vec<String> = match crate::netns::list() {
        Ok(names) => names
            .into_iter()
            .filter(|n| crate::cleanup::is_run_netns(n, run))
            .collect(),
        Err(_) => return,
    };
    if namespaces.is_empty() {
        return;
    }
    if let Err(e) = net::heal_namespaces(NetBackend::Blackhole, &namespaces) {
        report
            .errors
            .push(format!("removing partition routes: {e}"));
    }
    if capability::program_version("nft", &["--version"]).is_ok() {
        if let Err(e) = net::heal_namespaces(NetBackend::Nftables, &namespaces) {
            report
                .errors
                .push(format!("removing nftables partition tables: {e}"));
        }
        if let Err(e) = packet::heal_loss(&namespaces) {
            report
                .errors
                .push(format!("removing nftables loss tables: {e}"));
        }
    }
    if let Err(e) = packet::heal_shaping_namespaces(&namespaces) {
        report
            .errors
            .push(format!("removing delay/reorder/duplicate rules: {e}"));
    }
}
