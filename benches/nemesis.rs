//! How soon a scheduled partition is in force, on a 5-node cluster network.
//!
//! `cargo bench --bench nemesis` (root). The nemesis runs a random schedule of 100
//! partitions of every shape (60 ms apart) twice per backend path, alternating: blackhole
//! routes through the netlink threads (what runs use) and through one `ip -batch` per
//! namespace (the fallback). It prints, per path, the distribution of the time from a
//! partition's scheduled start to the moment its routes are in (target: within 20 ms), and
//! of the time to heal.
//!
//! Then the SSH path: three "remote hosts" (`sshd`s in namespaces of their own, as in
//! `tests/remote_run.rs`; needs OpenSSH), and [`SSH_PARTITIONS`] partitions isolating one
//! host, scheduled [`SSH_SPACING`] apart, each put in force on every host over the run's
//! persistent shells: the time from its scheduled start until the last host's table is in
//! (target: within 50 ms), and the time to heal. `cargo bench --bench nemesis -- ssh`
//! runs only the SSH path; `-- local` only the local ones.

use splitbrain::cluster::{Cluster, Deployment};
use splitbrain::nemesis::netlink::RouteWorkers;
use splitbrain::nemesis::schedule::{self, FaultKind, NemesisSpec};
use splitbrain::nemesis::{Nemesis, NemesisContext, NetBackend, Shape};
use splitbrain::recorder::Recorder;
use splitbrain::system::etcd::EtcdSystem;
use splitbrain::system::ClusterSpec;
use splitbrain::topology::{RunId, Topology};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTITIONS: u64 = 100;

/// A cluster network with no processes: partitions only need the namespaces.
fn network(nodes: usize) -> Arc<Deployment> {
    Arc::new(Deployment::Cluster(Cluster {
        // Never started: the nemesis only cuts the network here.
        system: Arc::new(EtcdSystem::default()),
        spec: ClusterSpec { nodes: Vec::new() },
        nodes: Vec::new(),
        disks: Default::default(),
        topology: Topology::create(RunId::random(), nodes).expect("create topology"),
        network_ready_in: Duration::ZERO,
        nodes_ready_in: Duration::ZERO,
    }))
}

fn percentiles(mut v: Vec<i64>) -> String {
    v.sort_unstable();
    let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    )
}

fn run(netlink: bool, seed: u64) -> (Vec<i64>, Vec<i64>) {
    let deployment = network(5);
    let Deployment::Cluster(cluster) = &*deployment else {
        unreachable!()
    };
    let names: Vec<String> = cluster
        .topology
        .nodes()
        .iter()
        .map(|n| n.name.clone())
        .collect();
    let namespaces: Vec<String> = cluster
        .topology
        .nodes()
        .iter()
        .map(|n| n.netns.clone())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::create(&dir.path().join("history.jsonl"), Instant::now()).unwrap();
    let spec = NemesisSpec {
        faults: vec![FaultKind::named("partition").expect("a registered kind")],
        interval: Duration::from_millis(60),
        hold: Some(Duration::from_millis(60)),
        shapes: Shape::ALL
            .into_iter()
            .filter(|s| *s != Shape::IsolateLeader)
            .collect(),
        ..NemesisSpec::default()
    };
    let length = Duration::from_millis(120 * PARTITIONS + 60);
    let plan = schedule::plan(&spec, &names, seed, length).unwrap();
    let ctx = NemesisContext {
        deployment: deployment.clone(),
        recorder: recorder.clone(),
        backend: NetBackend::Blackhole,
        routes: netlink.then(|| RouteWorkers::start(&namespaces).expect("netlink threads")),
    };
    let nemesis = Nemesis::start(ctx, plan, Instant::now()).unwrap();
    std::thread::sleep(length + Duration::from_millis(200));
    let report = nemesis.stop();
    recorder.finish().unwrap();
    let lateness = report.faults.iter().map(|f| f.lateness_us).collect();
    let heal = report.faults.iter().filter_map(|f| f.undo_us).collect();
    (lateness, heal)
}

#[allow(dead_code)]
#[path = "../tests/common/skip.rs"]
mod skip;

// `ssh_hosts` reaches the skip helpers as `super::skip`, `super::Need`.
#[allow(dead_code)]
#[path = "../tests/common/ssh_hosts.rs"]
mod ssh_hosts;
#[allow(unused_imports)]
use skip::{skip, Need};

/// How many partitions the SSH path puts in force.
const SSH_PARTITIONS: u32 = 100;
/// How far apart the SSH path's partitions are scheduled.
const SSH_SPACING: Duration = Duration::from_millis(150);

/// The SSH path: (lateness, heal) in microseconds, or why it was skipped.
fn ssh_path() -> Option<(Vec<i64>, Vec<i64>)> {
    if !ssh_hosts::have_sshd("nemesis (ssh path)") {
        return None;
    }
    let hosts =
        ssh_hosts::SshHosts::start(3).unwrap_or_else(|e| panic!("starting the ssh hosts: {e}"));
    let list = hosts.hosts().to_vec();
    let ssh = hosts.ssh_spec().clone();
    Some(hosts.on_network(move || {
        let run = splitbrain::cleanup::RunId::random();
        let remote = splitbrain::remote::RemoteHosts::connect(&run, &list, &ssh).expect("connect");
        let address = |name: &str| {
            list.iter()
                .find(|h| h.name == name)
                .expect("a host")
                .address
                .clone()
        };
        // One host cut from the others, both ways (the shape of `isolate-leader`).
        let grudge = [
            ("n1", vec![address("n2"), address("n3")]),
            ("n2", vec![address("n1")]),
            ("n3", vec![address("n1")]),
        ];
        let (mut late, mut heal) = (Vec::new(), Vec::new());
        let start = Instant::now() + SSH_SPACING;
        for i in 0..SSH_PARTITIONS {
            let due = start + SSH_SPACING * i;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            std::thread::scope(|scope| {
                for (host, from) in &grudge {
                    let remote = &remote;
                    scope.spawn(move || remote.partition(host, from).expect("partition"));
                }
            });
            late.push(Instant::now().duration_since(due).as_micros() as i64);
            let healing = Instant::now();
            std::thread::scope(|scope| {
                for (host, _) in &grudge {
                    let remote = &remote;
                    scope.spawn(move || remote.heal(host).expect("heal"));
                }
            });
            heal.push(healing.elapsed().as_micros() as i64);
        }
        remote
            .remove_run_dirs()
            .expect("removing the run's directories");
        drop(remote);
        splitbrain::cleanup::forget_if_done(&run);
        (late, heal)
    }))
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        skip::skip(
            "nemesis",
            skip::Need::Root,
            "needs root (network namespaces)",
        );
        return;
    }
    let only = std::env::args()
        .skip(1)
        .find(|a| a == "ssh" || a == "local");
    if only.as_deref() != Some("local") {
        match ssh_path() {
            Some((late, heal)) => println!(
                "ssh, 3 hosts: {} partitions in force on every host after their scheduled time: {}; heal: {}",
                late.len(),
                percentiles(late),
                percentiles(heal)
            ),
            None => println!("ssh path skipped (OpenSSH not installed)"),
        }
    }
    if only.as_deref() == Some("ssh") {
        return;
    }
    let mut results = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for round in 0..2 {
        for (i, netlink) in [true, false].into_iter().enumerate() {
            let (late, heal) = run(netlink, round + 1);
            results[i].0.extend(late);
            results[i].1.extend(heal);
        }
    }
    for (i, name) in ["netlink threads", "ip -batch per namespace"]
        .iter()
        .enumerate()
    {
        let (late, heal) = results[i].clone();
        println!(
            "{name}: {} partitions on 5 nodes in force after their scheduled time: {}; heal: {}",
            late.len(),
            percentiles(late),
            percentiles(heal)
        );
    }
}
