//! One run of a campaign: deploy, drive clients (and the nemesis), recover, read, check.
//!
//! ```text
//! campaign ─▶ results dir ─▶ deployment (network + nodes, ready)
//!          ─▶ client slots on the client runtime ──▶ recorder ──▶ history.jsonl
//!          ─▶ main phase until duration / max_ops / Ctrl-C
//!          ─▶ heal, recovery wait, final reads ─▶ shutdown ─▶ checkers ─▶ summary
//! ```
//!
//! Every exit path — normal end, error, cancellation, panic — drops the deployment, which
//! kills the nodes and removes the network. The history is on disk line by line throughout.

use crate::analysis::{RunFacts, RunResults};
use crate::campaign::{Campaign, WorkloadKind};
use crate::cluster::{Deployment, NodeEnv};
use crate::recorder::{Entry, Recorder};
use crate::report::Checked;
use crate::results::files;
use crate::system::{Client, Function, Outcome, Request, System};
use crate::topology::RunId;
use crate::workload::{Generator, PlannedOp, SlotRng};
use anyhow::Context;
use rand::{Rng, SeedableRng};
use splitbrain_checkers::{EventType, History, Process, Value, Verdict};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Settings of one run beyond the campaign file.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `results/` by default; the run goes to `<root>/<campaign>/<timestamp>-<run id>/`.
    pub results_root: PathBuf,
    /// Overrides the campaign's seed.
    pub seed: Option<u64>,
    /// Overrides the campaign's main-phase duration.
    pub duration: Option<Duration>,
    /// The command line, recorded with the run.
    pub argv: Vec<String>,
    /// Client runtime threads.
    pub client_threads: usize,
    /// Progress on stderr during the main phase.
    pub progress: crate::report::progress::ProgressStyle,
    /// Cancelled by a second signal: abandons the check of an already interrupted run
    /// (the first signal ends the main phase; the history so far is still checked).
    pub abandon_check: CancellationToken,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            results_root: PathBuf::from("results"),
            seed: None,
            duration: None,
            argv: std::env::args().collect(),
            client_threads: 2,
            progress: crate::report::progress::ProgressStyle::Off,
            abandon_check: CancellationToken::new(),
        }
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunReport {
    pub dir: PathBuf,
    pub verdict: Verdict,
    /// The table printed at the end (also in `summary.txt`).
    pub summary: String,
    /// Cancelled by a signal before the verdict was reached (what `results.json` says).
    pub interrupted: bool,
    pub operations: u64,
    /// Client operations per second during the main phase.
    pub rate: f64,
    /// The results document, as written to `results.json`.
    pub results: RunResults,
}

/// Counters shared by the client slots.
#[derive(Default)]
struct Counters {
    issued: AtomicU64,
}

struct SlotContext {
    deployment: Arc<Deployment>,
    generator: Generator,
    recorder: Recorder,
    counters: Counters,
    seed: u64,
    concurrency: usize,
    timeout: Duration,
    interval: Option<Duration>,
    deadline: Instant,
    max_ops: u64,
    cancel: CancellationToken,
}

/// Why a run did not reach a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A fault this machine cannot do, or a bad schedule: refused before anything started.
    #[error(transparent)]
    Refused(#[from] crate::nemesis::NemesisError),
    /// The system under test is not on this machine.
    #[error("the system under test is not available: {0}")]
    Unavailable(String),
    /// The run directory cannot be created.
    #[error(transparent)]
    ResultsDir(#[from] crate::results::ResultsDirError),
    /// Anything else, after the run started.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl RunError {
    pub fn kind(&self) -> crate::exit::FailureKind {
        match self {
            RunError::Refused(e) => e.kind(),
            RunError::Unavailable(_) => crate::exit::FailureKind::Unavailable,
            RunError::ResultsDir(e) => e.kind(),
            RunError::Internal(_) => crate::exit::FailureKind::Internal,
        }
    }

    /// Sorts an error from inside a run: an unusable run directory (73 or 77), a node program
    /// that is not on this machine (69, found only at start when a placeholder names it) or
    /// that exits before it is ready (69, with its stderr), a cluster that misses a startup
    /// deadline (69), a remote host that cannot be reached or lacks what the run needs
    /// (69); anything else is internal.
    fn classify(e: anyhow::Error) -> RunError {
        let e = match e.downcast::<crate::results::ResultsDirError>() {
            Ok(dir) => return RunError::ResultsDir(dir),
            Err(e) => e,
        };
        let remote = e
            .chain()
            .any(|c| c.is::<crate::remote::RemoteError>() || c.is::<crate::remote::SshError>());
        if remote {
            return RunError::Unavailable(format!("{e:#}"));
        }
        // A node program that exits before it is ready (a bad flag, a missing library) will
        // do so again: the system is unavailable as configured, not the harness broken.
        let missing = e.chain().find_map(|c| match c.downcast_ref() {
            Some(
                missing @ (crate::node::NodeError::ProgramNotFound { .. }
                | crate::node::NodeError::DiedBeforeReady { .. }),
            ) => Some(missing.to_string()),
            _ => None,
        });
        // A cluster that did not get ready or serve in time (startup deadlines) is
        // unavailable as configured, too.
        let missing = missing.or_else(|| {
            let late = e.chain().any(|c| {
                matches!(
                    c.downcast_ref(),
                    Some(crate::node::NodeError::NotReady { .. })
                ) || c.is::<NotServing>()
            });
            late.then(|| format!("{e:#}"))
        });
        match missing {
            Some(missing) => RunError::Unavailable(missing),
            None => RunError::Internal(e),
        }
    }
}

impl From<RunError> for crate::exit::Failure {
    fn from(e: RunError) -> crate::exit::Failure {
        match e {
            RunError::Internal(e) => e.into(),
            other => crate::exit::Failure::new(other.kind(), other),
        }
    }
}

/// Runs `campaign` to the end (or until `cancel`), then checks it.
pub fn run(
    campaign: &Campaign,
    opts: &RunOptions,
    cancel: CancellationToken,
) -> Result<RunReport, RunError> {
    let start = Instant::now();
    // On remote hosts: only the faults that have a remote implementation.
    let hosts_set_clock =
        !campaign.hosts.is_empty() && campaign.ssh.as_ref().is_some_and(|s| s.set_clock);
    if !campaign.hosts.is_empty() {
        crate::nemesis::faults::remote::check_kinds(&campaign.nemesis.kinds())?;
    }
    let mut campaign = campaign.clone();
    if let Some(d) = opts.duration {
        campaign.workload.duration = d;
    }
    let seed = opts
        .seed
        .or(campaign.seed)
        .unwrap_or_else(|| rand::thread_rng().gen());
    campaign.seed = Some(seed);
    // Before anything starts: a fault this machine cannot do fails here, named, and so
    // does a system whose binary is missing.
    // The one system of the run, built here and handed to whatever needs it.
    let system: Option<Arc<dyn System>> = match campaign.system.needs_cluster() {
        true => Some(crate::system::system_for(&campaign.system)?.into()),
        false => None,
    };
    crate::nemesis::validate_for(
        &campaign.nemesis,
        system.as_deref(),
        campaign.nodes,
        hosts_set_clock,
    )?;
    // On remote hosts the layer runs there: checked on each host when the run starts.
    if campaign.hosts.is_empty() {
        campaign.check_disk_host().map_err(RunError::Unavailable)?;
    }
    let system = match system {
        // On remote hosts the program runs there: this machine need not have it.
        Some(system) if !campaign.hosts.is_empty() => {
            let version = system.version().unwrap_or_else(|_| {
                format!("{} (version not known on the controller)", system.name())
            });
            Some(RunSystem { system, version })
        }
        Some(system) => {
            let version = system
                .version()
                .map_err(|e| RunError::Unavailable(format!("{}: {e:#}", campaign.system.name())))?;
            Some(RunSystem { system, version })
        }
        None => None,
    };
    run_validated(campaign, system, seed, opts, cancel, start).map_err(RunError::classify)
}

/// The system under test of a run with real nodes, and its version (checked available).
struct RunSystem {
    system: Arc<dyn System>,
    version: String,
}

/// Deploys `campaign` on `system` (`None`: the in-memory store), its nodes' directories
/// under `run_dir`. Nodes of a campaign with clock faults start with libfaketime preloaded
/// (clock faults then move a node's clock by rewriting its offset file); those of a campaign
/// with disk faults (or `disk: {layer: true}`) get the lazy disk layer as their data
/// directories.
pub fn deploy(
    campaign: &Campaign,
    system: Option<Arc<dyn System>>,
    run: &RunId,
    run_dir: &Path,
    events: Option<crate::node::EventSender>,
) -> anyhow::Result<Deployment> {
    let Some(system) = system else {
        return Ok(Deployment::in_memory());
    };
    if !campaign.hosts.is_empty() {
        let default_ssh = crate::remote::SshSpec::default();
        let mut needs = Vec::new();
        let kinds = campaign.nemesis.kinds();
        let firewall = crate::remote::hosts::FIREWALL_PROGRAMS;
        if kinds.iter().any(|k| k.name() == "partition") {
            needs.push((firewall, "partition faults"));
        }
        if kinds.iter().any(|k| k.name() == "loss") {
            needs.push((firewall, "loss faults"));
        }
        if kinds
            .iter()
            .any(|k| crate::nemesis::faults::remote::NETEM_KINDS.contains(&k.name()))
        {
            needs.push(("tc", "delay, reorder and duplicate faults"));
            needs.push(("bash", "the round trip probes of delay and reorder faults"));
        }
        if needs.iter().any(|(p, _)| *p == firewall) {
            needs.push(("bash", "the probes of partition and loss faults"));
            needs.push(("timeout", "the probes of partition and loss faults"));
        }
        // Clock faults: libfaketime of each host preloaded, its offset file in the node's
        // directory there (the binary was checked skewable when the nemesis was validated).
        let faketime = |hosts: &crate::remote::RemoteHosts, host: &str, dir: &str| {
            let lib = hosts.find_libfaketime(host)?;
            let file = format!("{dir}/{}", crate::nemesis::clock::OFFSET_FILE);
            hosts.write_file(host, &file, "+0")?;
            Ok(crate::nemesis::clock::faketime_env(
                Path::new(&lib),
                Path::new(&file),
            ))
        };
        // With `ssh.set_clock` the hosts' own clocks move instead: no libfaketime.
        let set_clock = campaign.ssh.as_ref().is_some_and(|s| s.set_clock);
        let node_env: Option<crate::cluster::RemoteNodeEnv<'_>> =
            match campaign.nemesis.needs_clock() && !set_clock {
                true => Some(&faketime),
                false => None,
            };
        return Ok(Deployment::Remote(Box::new(
            crate::cluster::RemoteCluster::start(
                system,
                &campaign.hosts,
                campaign.ssh.as_ref().unwrap_or(&default_ssh),
                &needs,
                campaign.disk_layer(),
                node_env,
                run,
                run_dir,
                campaign.startup.ready_timeout,
                events,
            )?,
        )));
    }
    let clock_env = |node_dir: &Path| Ok(crate::nemesis::clock_env(node_dir)?);
    let node_env: Option<NodeEnv<'_>> = match campaign.nemesis.needs_clock() {
        true => Some(&clock_env),
        false => None,
    };
    let disk_layer = campaign.disk_layer();
    Deployment::start(
        system,
        campaign.nodes,
        run,
        run_dir,
        node_env,
        disk_layer,
        events,
        campaign.startup.ready_timeout,
    )
}

/// The run proper, once nothing refused it.
fn run_validated(
    campaign: Campaign,
    system: Option<RunSystem>,
    seed: u64,
    opts: &RunOptions,
    cancel: CancellationToken,
    start: Instant,
) -> anyhow::Result<RunReport> {
    let run_id = RunId::random();
    // Absolute, whatever `--results` is: the directory's paths are handed to nodes (data
    // directories, libfaketime's offset file), and nodes run in their own directories.
    let results_root = std::path::absolute(&opts.results_root)
        .with_context(|| format!("resolving {}", opts.results_root.display()))?;
    let dir = crate::results::create_run_dir(&results_root, &campaign.name, run_id.as_str())?;
    crate::results::write_json(&dir.join(files::CAMPAIGN), &campaign)?;
    let env = crate::results::Environment::capture(
        campaign.system.name(),
        system.as_ref().map(|s| s.version.clone()),
        seed,
        run_id.as_str(),
        &opts.argv,
    );
    crate::results::write_json(&dir.join(files::ENVIRONMENT), &env)?;

    let recorder = Recorder::create(&dir.join(files::HISTORY), start)
        .with_context(|| format!("creating {}", dir.join(files::HISTORY).display()))?;
    // On an early return (an error), whatever was recorded still reaches the file.
    let _flush = FinishOnDrop(&recorder);
    let (node_events, crashes) = watch_node_events();
    let deployment = Arc::new(deploy(
        &campaign,
        system.map(|s| s.system),
        &run_id,
        &dir,
        Some(node_events),
    )?);
    let client_rt = deployment.client_runtime(opts.client_threads)?;
    // A node can accept connections before its cluster serves (no leader yet): wait until
    // every node answers a read, so the main phase measures the system, not its start-up.
    client_rt.block_on(wait_serving_within(
        deployment.clone(),
        campaign.workload.timeout,
        campaign.startup.first_read_timeout,
        &cancel,
    ))?;

    let w = &campaign.workload;
    let main_started = Instant::now();
    let progress = crate::report::progress::Progress::start(
        dir.join(files::HISTORY),
        opts.progress,
        w.duration,
    );
    let ctx = Arc::new(SlotContext {
        deployment: deployment.clone(),
        generator: Generator::new(w),
        recorder: recorder.clone(),
        counters: Counters::default(),
        seed,
        concurrency: w.concurrency,
        timeout: w.timeout,
        interval: w
            .rate
            .map(|r| Duration::from_secs_f64(w.concurrency as f64 / r)),
        deadline: main_started + w.duration,
        max_ops: w.max_ops.unwrap_or(u64::MAX),
        cancel: cancel.clone(),
    });

    // The nemesis runs beside the clients; dropping it (error, panic) undoes every fault.
    let nemesis = crate::nemesis::start_for_run(
        &campaign.nemesis,
        &deployment,
        &recorder,
        seed,
        main_started,
        w.duration,
    )?;

    // Main phase: every slot until the deadline, the op cap, or cancellation.
    let slots: Vec<_> = (0..w.concurrency)
        .map(|slot| client_rt.spawn(slot_main(ctx.clone(), slot)))
        .collect();
    let mut processes: Vec<u64> = Vec::with_capacity(slots.len());
    for handle in slots {
        processes.push(
            client_rt
                .block_on(handle)
                .context("client slot panicked")??,
        );
    }
    let main_elapsed = main_started.elapsed();
    progress.stop();
    let main_ops = ctx.counters.issued.load(Ordering::Relaxed).min(ctx.max_ops);
    let interrupted = cancel.is_cancelled();
    // Heal everything and wait for it before the recovery phase.
    if let Some(nemesis) = nemesis {
        let report = nemesis.stop();
        for e in &report.undo_errors {
            crate::stderr_line!("splitbrain: warning: nemesis: {e}");
        }
        if !report.undo_errors.is_empty() {
            heal_everything(&deployment, &run_id);
        }
        crate::results::write_json(&dir.join(files::NEMESIS), &report)?;
    }

    // Recovery and final reads (skipped when interrupted: get out fast and clean).
    if !interrupted && w.final_reads {
        sleep_or_cancel(&client_rt, w.recovery, &cancel);
        let keys = ctx.generator.keys_touched();
        let handles: Vec<_> = (0..w.concurrency.min(keys.len()))
            .map(|slot| {
                let mine: Vec<i64> = keys
                    .iter()
                    .copied()
                    .skip(slot)
                    .step_by(w.concurrency)
                    .collect();
                client_rt.spawn(final_reads(ctx.clone(), slot, processes[slot], mine))
            })
            .collect();
        for h in handles {
            client_rt.block_on(h).context("final read panicked")??;
        }
    }
    drop(client_rt);
    drop(ctx);
    let node_names = deployment.node_names();
    // A teardown problem is reported, but does not cost the verdict: the history is
    // complete, and dropping the deployment removes whatever shutdown left.
    match Arc::into_inner(deployment) {
        Some(deployment) => {
            if let Err(e) = deployment.shutdown() {
                crate::stderr_line!("splitbrain: warning: stopping the cluster: {e:#}");
            }
        }
        None => {
            crate::stderr_line!("splitbrain: warning: the cluster was still in use at shutdown")
        }
    }
    let history = Arc::new(recorder.finish().context("writing the history")?);
    let node_deaths = crashes.join().unwrap_or_default();

    // A signal at any point up to the verdict interrupts the run, and the results say so:
    // one during recovery or shutdown is seen here, one during the check ends the check.
    if opts.progress != crate::report::progress::ProgressStyle::Off {
        crate::stderr_line!(
            "splitbrain: checking the history ({} events)",
            history.events.len()
        );
    }
    let facts_for = |interrupted| RunFacts {
        campaign: &campaign,
        seed,
        run_id: run_id.as_str(),
        nodes: node_names.clone(),
        main_elapsed,
        interrupted,
        node_deaths: node_deaths.clone(),
    };
    let interrupted_before_check = cancel.is_cancelled();
    // Interrupted already: the history so far is checked until a second signal.
    let abandon = if interrupted_before_check {
        &opts.abandon_check
    } else {
        &cancel
    };
    let (checked, interrupted) = match check_unless_cancelled(
        &campaign,
        facts_for(interrupted_before_check),
        &history,
        abandon,
    ) {
        Some(checked) => (checked?, interrupted_before_check),
        None => {
            // Interrupted during the check: the search is abandoned and the verdict is
            // whatever a check with no time left can say (`unknown` where it had to search).
            let mut hurried = campaign.clone();
            hurried.checker.time_limit = Duration::ZERO;
            let facts = RunFacts {
                campaign: &hurried,
                ..facts_for(true)
            };
            (crate::report::check_and_summarise(&history, &facts)?, true)
        }
    };
    let facts = facts_for(interrupted);
    // summary.txt, results.json, history.edn, junit.xml, report.html.
    crate::report::write_run_results(&dir, &history, &facts, &checked)?;
    crate::results::set_report_modes(&dir)?;
    crate::results::point_latest(&results_root, &dir);
    Ok(RunReport {
        dir,
        verdict: checked.verdict,
        summary: checked.table,
        results: checked.results,
        interrupted,
        operations: main_ops,
        rate: main_ops as f64 / main_elapsed.as_secs_f64().max(1e-9),
    })
}

/// What a run leaves inside its namespaces, for `splitbrain cleanup` to remove (while the
/// namespaces still exist) from the namespaces of a crashed run: the nemesis's partition
/// routes, nftables tables and qdiscs. A module that leaves a new kind of state there adds
/// one step here (and records the state before making it).
pub const CLEANUP_INSIDE_NAMESPACES: &[crate::cleanup::CleanupStep] = &[
    crate::cleanup::CleanupStep {
        name: "nemesis rules",
        run: |record, report| {
            let namespaces = crate::cleanup::run_namespaces_present(Some(&record.run));
            report
                .errors
                .extend(crate::nemesis::heal_leftovers(&namespaces));
        },
    },
    // Processes, partition tables and directories on the remote hosts of a run.
    crate::remote::hosts::CLEANUP_STEP,
];

/// The blanket heal after an undo failed: every partition route and table of the run's
/// namespaces removed, every node thawed, so recovery and final reads see a healthy
/// cluster.
fn heal_everything(deployment: &Deployment, run_id: &RunId) {
    let mut report = crate::cleanup::CleanupReport::default();
    let namespaces = crate::cleanup::run_namespaces_present(Some(run_id));
    report
        .errors
        .extend(crate::nemesis::heal_leftovers(&namespaces));
    if let Deployment::Cluster(cluster) = deployment {
        for node in cluster.nodes.iter().filter(|n| n.is_paused()) {
            if let Err(e) = node.resume() {
                report.errors.push(format!("resuming {}: {e}", node.name()));
            }
        }
    }
    if let Deployment::Remote(cluster) = deployment {
        if let Err(e) = cluster.hosts.heal_all() {
            report
                .errors
                .push(format!("removing the partition tables: {e}"));
        }
        for node in cluster.nodes.iter().filter(|n| n.is_paused()) {
            if let Err(e) = node.resume(&cluster.hosts) {
                report.errors.push(format!("resuming {}: {e}", node.name));
            }
        }
        report
            .errors
            .extend(cluster.disks.clear_all_faults(&cluster.hosts));
    }
    for e in &report.errors {
        crate::stderr_line!("splitbrain: warning: healing the cluster: {e}");
    }
}

/// Runs the checkers on a thread of their own and waits for them, or for `cancel`: `None`
/// when cancelled first (the search is left to end by its time limit, unobserved).
fn check_unless_cancelled(
    campaign: &Campaign,
    facts: RunFacts<'_>,
    history: &Arc<History>,
    cancel: &CancellationToken,
) -> Option<anyhow::Result<Checked>> {
    let interrupted = facts.interrupted;
    let (tx, rx) = std::sync::mpsc::channel();
    let campaign = campaign.clone();
    let history = Arc::clone(history);
    let (seed, run_id, nodes, main_elapsed, node_deaths) = (
        facts.seed,
        facts.run_id.to_owned(),
        facts.nodes,
        facts.main_elapsed,
        facts.node_deaths,
    );
    let spawned = std::thread::Builder::new()
        .name("check".into())
        .spawn(move || {
            let facts = RunFacts {
                campaign: &campaign,
                seed,
                run_id: &run_id,
                nodes,
                main_elapsed,
                interrupted,
                node_deaths,
            };
            let _ = tx.send(crate::report::check_and_summarise(&history, &facts));
        });
    if let Err(e) = spawned {
        return Some(Err(e.into()));
    }
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(checked) => return Some(checked),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                return None
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Some(Err(anyhow::anyhow!("the checker panicked")))
            }
        }
    }
}

/// Finishes the recorder when dropped (a no-op after a regular finish).
struct FinishOnDrop<'a>(&'a Recorder);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.finish();
    }
}

/// A node through which no read succeeded before `startup.first_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error(
    "node {node} did not serve a read within {} (startup.first_read_timeout): {last}",
    humantime::format_duration(*within)
)]
pub struct NotServing {
    pub node: String,
    pub within: Duration,
    /// Why the last read failed.
    pub last: String,
}

/// Waits until a read succeeds through every node (not recorded: the run has not begun),
/// within the default `startup.first_read_timeout`.
pub async fn wait_serving(
    deployment: Arc<Deployment>,
    timeout: Duration,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let within = crate::campaign::StartupSpec::default().first_read_timeout;
    wait_serving_within(deployment, timeout, within, cancel).await
}

/// Waits until a read (each attempt bounded by `timeout`) succeeds through every node,
/// for at most `within`.
pub async fn wait_serving_within(
    deployment: Arc<Deployment>,
    timeout: Duration,
    within: Duration,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let nodes = deployment.node_names().len().max(1);
    let probes: Vec<_> = (0..nodes)
        .map(|i| {
            let deployment = deployment.clone();
            // Spawned: clients must be opened on the client runtime's own threads.
            tokio::spawn(async move {
                let (node, mut client) = deployment.client(i)?;
                let request = Request {
                    f: Function::Read,
                    key: Value::Str("splitbrain-ready".into()),
                    value: Value::Nil,
                    timeout,
                };
                let deadline = Instant::now() + within;
                let mut last = String::new();
                while Instant::now() < deadline {
                    match client.invoke(&request).await {
                        Outcome::Ok(_) => return anyhow::Ok(()),
                        Outcome::Fail(e) | Outcome::Info(e) => last = e,
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(NotServing {
                    node: node.unwrap_or_default(),
                    within,
                    last,
                }
                .into())
            })
        })
        .collect();
    for probe in probes {
        tokio::select! {
            r = probe => r??,
            _ = cancel.cancelled() => return Ok(()),
        }
    }
    Ok(())
}

/// Reports a node that exits without the harness asking (a crash) as it happens, with the
/// tail of its log, and collects those reports for the summary. The thread ends when the
/// deployment, which holds the senders, is gone.
fn watch_node_events() -> (
    crate::node::EventSender,
    std::thread::JoinHandle<Vec<String>>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<crate::node::NodeEvent>();
    let handle = std::thread::spawn(move || {
        let mut crashes = Vec::new();
        while let Some(event) = rx.blocking_recv() {
            if let crate::node::NodeEventKind::Exited(report) = event.kind {
                if !report.expected {
                    crate::stderr_line!("splitbrain: {report}");
                    crashes.push(report.to_string());
                }
            }
        }
        crashes
    });
    (tx, handle)
}

fn sleep_or_cancel(rt: &tokio::runtime::Runtime, d: Duration, cancel: &CancellationToken) {
    rt.block_on(async {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = cancel.cancelled() => {}
        }
    });
}

/// One client slot's main phase. Returns the slot's current process id.
async fn slot_main(ctx: Arc<SlotContext>, slot: usize) -> anyhow::Result<u64> {
    // Opened here, on a client-runtime thread: inside the cluster network.
    let (node, mut client) = ctx.deployment.client(slot)?;
    let mut process = slot as u64;
    let mut rng = SlotRng::new(ctx.seed, slot);
    let mut jitter = rand::rngs::StdRng::from_rng(rand::thread_rng())?;
    let mut next_at = tokio::time::Instant::now();
    if let Some(iv) = ctx.interval {
        // Stagger the slots' first operations over one interval.
        next_at += iv.mul_f64(jitter.gen::<f64>());
    }
    loop {
        if ctx.cancel.is_cancelled() || Instant::now() >= ctx.deadline {
            break;
        }
        if ctx.counters.issued.fetch_add(1, Ordering::Relaxed) >= ctx.max_ops {
            break;
        }
        if let Some(iv) = ctx.interval {
            tokio::select! {
                _ = tokio::time::sleep_until(next_at) => {}
                _ = ctx.cancel.cancelled() => break,
            }
            next_at += iv.mul_f64(0.5 + jitter.gen::<f64>());
        }
        let op = ctx.generator.next(slot, &mut rng);
        let (outcome, abandoned) =
            perform(&ctx, client.as_mut(), process, node.as_deref(), op).await;
        if abandoned {
            // The client may still get the abandoned request's reply: never reuse it.
            client = ctx.deployment.client(slot)?.1;
        }
        if matches!(outcome, Outcome::Info(_)) {
            // Jepsen: a process whose operation is indeterminate never invokes again.
            process += ctx.concurrency as u64;
        }
    }
    Ok(process)
}

/// Reads each of `keys` once (retrying a failed read a few times: reads have no effect).
async fn final_reads(
    ctx: Arc<SlotContext>,
    slot: usize,
    mut process: u64,
    keys: Vec<i64>,
) -> anyhow::Result<()> {
    // Each attempt goes to the next node: one node that did not come back must not cost a
    // key its final read.
    let nodes = ctx.deployment.node_names().len().max(1);
    let mut clients: Vec<Option<NodeClient>> = (0..nodes).map(|_| None).collect();
    for key in keys {
        for attempt in 0..FINAL_READ_ATTEMPTS {
            let target = (slot + attempt) % nodes;
            if clients[target].is_none() {
                clients[target] = Some(ctx.deployment.client(target)?);
            }
            let (node, client) = clients[target].as_mut().expect("opened above");
            let op = ctx.generator.final_read(key);
            let (outcome, abandoned) =
                perform(&ctx, client.as_mut(), process, node.as_deref(), op).await;
            if abandoned {
                clients[target] = None;
            }
            match outcome {
                Outcome::Ok(_) => break,
                Outcome::Info(_) => process += ctx.concurrency as u64,
                Outcome::Fail(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// A client and the name of the node it talks to.
type NodeClient = (Option<String>, Box<dyn Client>);

/// Final reads of one key: attempts, spread over the nodes.
const FINAL_READ_ATTEMPTS: usize = 6;

/// Performs one operation: invocation recorded before the request leaves, completion after
/// the reply arrived. No retries: a write that timed out stays indeterminate. Also says
/// whether the request was abandoned by the backstop (its client must not be reused).
async fn perform(
    ctx: &SlotContext,
    client: &mut dyn Client,
    process: u64,
    node: Option<&str>,
    op: PlannedOp,
) -> (Outcome, bool) {
    let f_name = op.f.name();
    // A transaction names its keys in its micro-operations, not in a key of its own.
    let key = (op.f != Function::Txn).then_some(Value::Int(op.key));
    let request = Request {
        f: op.f,
        key: key.clone().unwrap_or_default(),
        value: op.value,
        timeout: ctx.timeout,
    };
    let entry = |kind, value, error| Entry {
        process: Process::Client(process),
        kind,
        f: f_name.to_owned(),
        key: key.clone(),
        value,
        node: node.map(str::to_owned),
        error,
    };
    ctx.recorder
        .record(entry(EventType::Invoke, request.value.clone(), None));
    // The client enforces the timeout itself; this is a backstop against a client that
    // hangs, with the same meaning (indeterminate for writes, no effect for reads).
    let backstop = ctx.timeout * 2 + Duration::from_secs(1);
    let (outcome, abandoned) = match tokio::time::timeout(backstop, client.invoke(&request)).await {
        Ok(outcome) => (outcome, false),
        Err(_) if matches!(op.f, Function::Read | Function::ReadSet) => {
            (Outcome::Fail("timeout".into()), true)
        }
        Err(_) => (Outcome::Info("timeout".into()), true),
    };
    let completion = match &outcome {
        Outcome::Ok(v) => entry(EventType::Ok, v.clone(), None),
        Outcome::Fail(e) => entry(
            EventType::Fail,
            request.value.clone(),
            Some(Value::Str(e.clone())),
        ),
        Outcome::Info(e) => entry(
            EventType::Info,
            request.value.clone(),
            Some(Value::Str(e.clone())),
        ),
    };
    ctx.recorder.record(completion);
    (outcome, abandoned)
}

/// Whether this workload's history is judged by the set checker.
pub fn is_set_workload(campaign: &Campaign) -> bool {
    campaign.workload.kind == WorkloadKind::Set
}

/// Re-reads a stored run's history (for `check RUN_DIR`).
pub fn load_history(dir: &Path) -> anyhow::Result<History> {
    let out =
        splitbrain_checkers::formats::read_file(&dir.join(files::HISTORY), &Default::default())?;
    Ok(out.history)
}
