//! The nemesis: faults through the operating system, scheduled, verified, recorded, undone.
//!
//! * [`spec`] — the campaign's `nemesis:` section ([`NemesisSpec`]).
//! * [`faults`] — one file per fault kind, each planning, applying, proving and undoing
//!   itself; [`faults::REGISTRY`] lists them.
//! * [`schedule`] — when each fault starts and how long it holds, from the spec and the seed.
//! * [`feedback`] — the feedback mode's chooser: the next fault from what the run shows.
//! * [`runner`] — executes a schedule on a live cluster, records, undoes on every path.
//! * [`context`] — what faults see of the run: the cluster, the history, who leads.
//! * [`record`] — what a fault writes into the history ([`record::FaultRecord`]).
//! * [`roles`] — who leads, asked of every node (each system says how to ask one).
//! * The effectful pieces, one per mechanism: [`partition`] (shapes as pure data) and
//!   [`net`] (the one module that turns a grudge into kernel state — blackhole routes or
//!   nftables drops — and back; reachability probes), [`netlink`], [`process`] (kill /
//!   start again, pause / resume), [`clock`] (libfaketime offsets; refusal of binaries it
//!   cannot skew), [`packet`] (loss, delay, reorder, duplication) and [`nfqueue`] (the
//!   packet holder).
//!
//! The nemesis takes its own spec and the cluster: [`validate`] runs before anything
//! starts (a campaign asking for a fault this machine cannot do is refused, naming the
//! missing piece), [`start_for_run`] plans and starts the schedule on the deployed cluster.

pub mod clock;
pub mod context;
pub mod faults;
pub mod feedback;
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
pub mod spec;

pub use context::NemesisContext;
pub use faults::{FaultKind, PlanError};
pub use net::NetBackend;
pub use partition::{Grudge, Shape};
pub use runner::{Nemesis, NemesisReport};
pub use schedule::Schedule;
pub use spec::{NemesisSpec, TargetSpec};

use crate::capability;
use crate::cluster::Deployment;
use crate::system::System;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    Plan(#[from] PlanError),
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

/// Checks, before anything starts, that the faults `spec` asks for can be done here to
/// `nodes` nodes of `system` (`None`: the in-memory store, which has no processes or
/// network to fault): the schedule plans, and every kind finds what it needs.
pub fn validate(
    spec: &NemesisSpec,
    system: Option<&dyn System>,
    nodes: usize,
) -> Result<(), NemesisError> {
    validate_for(spec, system, nodes, false)
}

/// [`validate`]; with `hosts_set_clock` (remote hosts whose own clocks clock faults change,
/// `ssh.set_clock`), clock faults need neither libfaketime nor a binary it can skew.
pub fn validate_for(
    spec: &NemesisSpec,
    system: Option<&dyn System>,
    nodes: usize,
    hosts_set_clock: bool,
) -> Result<(), NemesisError> {
    if !spec.is_active() {
        return Ok(());
    }
    let kinds = spec.kinds();
    let Some(system) = system else {
        return Err(NemesisError::Unavailable {
            fault: kinds[0].name(),
            missing: "a cluster of processes",
            detail: "the in-memory system has no processes or network to fault".into(),
        });
    };
    spec.validate(nodes)?;
    for kind in kinds {
        // The hosts' own clocks are changed: no libfaketime, any binary.
        if hosts_set_clock && kind.needs_clock() {
            continue;
        }
        kind.check_host(spec, system, nodes)?;
    }
    Ok(())
}

/// Plans `spec`'s schedule (from `seed`, over a main phase of `duration`) and starts
/// executing it against `deployment`, times counted from `origin` (the start of the main
/// phase). `None` when the spec has no faults.
pub fn start_for_run(
    spec: &NemesisSpec,
    deployment: &Arc<Deployment>,
    recorder: &crate::recorder::Recorder,
    seed: u64,
    origin: Instant,
    duration: Duration,
) -> Result<Option<Nemesis>, NemesisError> {
    if !spec.is_active() {
        return Ok(None);
    }
    let nodes = deployment.node_names();
    let plan = match spec.mode {
        spec::NemesisMode::Random => {
            runner::Plan::Schedule(schedule::plan(spec, &nodes, seed, duration)?)
        }
        spec::NemesisMode::Feedback => runner::Plan::Feedback(Box::new(runner::FeedbackPlan {
            chooser: feedback::FeedbackChooser::new(spec, nodes.len(), seed)?,
            spec: spec.clone(),
            nodes,
            duration,
        })),
    };
    let ctx = NemesisContext {
        deployment: deployment.clone(),
        recorder: recorder.clone(),
        backend: spec.backend,
        routes: route_workers(spec, deployment),
    };
    Ok(Some(Nemesis::start(ctx, plan, origin)?))
}

/// Netlink threads for blackhole partitions; without them (a kernel or sandbox that refuses
/// them) partitions fall back to `ip -batch`, slower but equivalent.
fn route_workers(spec: &NemesisSpec, deployment: &Deployment) -> Option<netlink::RouteWorkers> {
    let Deployment::Cluster(cluster) = deployment else {
        return None;
    };
    if spec.backend != NetBackend::Blackhole {
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
            crate::stderr_line!("splitbrain: warning: netlink route threads unavailable ({e}); partitions use ip -batch");
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

/// Removes nemesis state (partition routes and rules, loss, delay, reorder and duplication
/// rules, netem qdiscs) from `namespaces` — those of a crashed run that are still there,
/// before they are deleted, or of a run whose undo failed. Routes and tables live only
/// inside run namespaces, so deleting those removes them too; this makes the removal
/// explicit and reported. Offset files live in the run's results. Returns one line per
/// failure.
pub fn heal_leftovers(namespaces: &[String]) -> Vec<String> {
    let mut errors = Vec::new();
    if namespaces.is_empty() {
        return errors;
    }
    if let Err(e) = net::heal_namespaces(NetBackend::Blackhole, namespaces) {
        errors.push(format!("removing partition routes: {e}"));
    }
    if capability::program_version("nft", &["--version"]).is_ok() {
        if let Err(e) = net::heal_namespaces(NetBackend::Nftables, namespaces) {
            errors.push(format!("removing nftables partition tables: {e}"));
        }
        if let Err(e) = packet::heal_loss(namespaces) {
            errors.push(format!("removing nftables loss tables: {e}"));
        }
    }
    if let Err(e) = packet::heal_shaping_namespaces(namespaces) {
        errors.push(format!("removing delay/reorder/duplicate rules: {e}"));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::FailureKind;
    use crate::system::etcd::EtcdSystem;

    fn spec(yaml: &str) -> NemesisSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn faults_against_the_in_memory_store_are_refused_naming_what_is_missing() {
        let err = validate(&spec("faults: [pause]"), None, 3).unwrap_err();
        assert_eq!(err.kind(), FailureKind::Unavailable);
        assert!(
            err.to_string()
                .contains("`pause` faults need a cluster of processes"),
            "{err}"
        );
        // No faults: nothing to refuse, whatever the system.
        validate(&NemesisSpec::default(), None, 3).unwrap();
    }

    #[test]
    fn a_schedule_that_does_not_fit_the_cluster_is_a_usage_error() {
        let etcd = EtcdSystem::default();
        let err = validate(
            &spec("timeline: [{at: 1s, fault: kill, target: n7, for: 1s}]"),
            Some(&etcd),
            3,
        )
        .unwrap_err();
        assert_eq!(err.kind(), FailureKind::Usage);
        assert!(err.to_string().contains("n7"), "{err}");
        // Blackhole partitions need nothing this machine might lack.
        validate(&spec("faults: [partition]"), Some(&etcd), 3).unwrap();
    }
}
