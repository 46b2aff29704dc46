//! Figures of the runtime: network set-up, cluster start, and the runner's rate.
//!
//! `cargo bench --bench runner` (root: namespaces; etcd parts need Debian's `etcd-server`).
//! Figures that compare two things measure both in this one process, alternating, so a
//! noisy shared machine affects both alike:
//!
//! * time to create and destroy a 3- and a 5-node topology (median of 10);
//! * time from nothing to a 3-node etcd cluster that serves a read on every node;
//! * the runner's rate against the in-process store with the history written to disk
//!   (target ≥ 100,000 operations per second);
//! * against etcd and clusterkv raft: the runner's rate beside a raw client loop's rate —
//!   the same clients, concurrency and operation mix, without generator bookkeeping or
//!   recording (target: runner ≥ 0.9 × raw) — each without and with the lazy disk layer
//!   under the nodes (`disk: {layer: true}`), alternating.

use splitbrain::campaign::{self, Campaign};
use splitbrain::run::{run, RunOptions};
use splitbrain::system::{Outcome, Request, System};
use splitbrain::topology::{RunId, Topology};
use splitbrain::workload::{Generator, SlotRng};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const CONCURRENCY: usize = 10;
const ETCD_SECONDS: u64 = 5;
const ETCD_ROUNDS: u64 = 5;

/// The median (of an odd count; the upper middle of an even one).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn campaign(yaml: &str) -> Campaign {
    campaign::parse(yaml, Path::new("bench.yaml")).expect("bench campaign")
}

fn topology_figures() {
    for nodes in [3, 5] {
        let mut create = Vec::new();
        let mut destroy = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let mut topo = Topology::create(RunId::random(), nodes).expect("create topology");
            create.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            topo.destroy().expect("destroy topology");
            destroy.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "topology {nodes} nodes: create {:.1} ms, destroy {:.1} ms (median of 10)",
            median(create),
            median(destroy)
        );
    }
}

fn in_memory_rate() {
    let c = campaign(&format!(
        "name: bench-mem\nsystem: {{in-memory: {{}}}}\nworkload: {{kind: kv, concurrency: {CONCURRENCY}, \
         duration: 5s, max_ops: 2000000, recovery: 0s, final_reads: false}}\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut rates = Vec::new();
    for _ in 0..3 {
        let opts = RunOptions {
            results_root: dir.path().to_owned(),
            seed: Some(1),
            ..RunOptions::default()
        };
        let report = run(&c, &opts, CancellationToken::new()).expect("in-memory run");
        let lines = std::fs::read_to_string(report.dir.join("history.jsonl"))
            .unwrap()
            .lines()
            .count() as u64;
        assert!(lines >= report.operations * 2 - 2 * CONCURRENCY as u64);
        rates.push(report.rate);
    }
    println!(
        "runner, in-memory store, history to disk: {:.0} ops/s (median of 3; target >= 100000)",
        median(rates)
    );
}

/// A 3-node kv campaign on `system` (a campaign's `system:` value), on the lazy disk layer
/// with `layer`.
fn system_campaign(system: &str, layer: bool) -> Campaign {
    campaign(&format!(
        "name: bench-sys\nsystem: {system}\nnodes: 3\nworkload: {{kind: kv, concurrency: {CONCURRENCY}, \
         duration: {ETCD_SECONDS}s, recovery: 0s, final_reads: false}}\ndisk: {{layer: {layer}}}\n"
    ))
}

/// The same clients as the runner's, driven in a bare loop: no recorder, no bookkeeping.
fn raw_rate(c: &Campaign, dir: &Path) -> (f64, Duration) {
    let started = Instant::now();
    let system = splitbrain::system::system_for(&c.system).expect("the system");
    let deployment = Arc::new(
        splitbrain::run::deploy(c, Some(system.into()), &RunId::random(), dir, None)
            .expect("start the cluster"),
    );
    let rt = deployment.client_runtime(2).unwrap();
    let cancel = CancellationToken::new();
    rt.block_on(splitbrain::run::wait_serving(
        deployment.clone(),
        c.workload.timeout,
        &cancel,
    ))
    .expect("the cluster serves");
    let ready_in = started.elapsed();
    let generator = Arc::new(Generator::new(&c.workload));
    let deadline = Instant::now() + Duration::from_secs(ETCD_SECONDS);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..CONCURRENCY)
        .map(|slot| {
            let deployment = deployment.clone();
            let generator = generator.clone();
            let timeout = c.workload.timeout;
            rt.spawn(async move {
                let (_, mut client) = deployment.client(slot).unwrap();
                let mut rng = SlotRng::new(1, slot);
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let op = generator.next(slot, &mut rng);
                    let request = Request {
                        f: op.f,
                        key: splitbrain_checkers::Value::Int(op.key),
                        value: op.value,
                        timeout,
                    };
                    if !matches!(client.invoke(&request).await, Outcome::Info(_)) {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| rt.block_on(h).unwrap()).sum();
    let rate = total as f64 / t0.elapsed().as_secs_f64();
    drop(rt);
    Arc::into_inner(deployment).unwrap().shutdown().unwrap();
    (rate, ready_in)
}

/// The runner's rate beside the raw loop's on `system`, without and with the lazy disk
/// layer under the nodes, alternating in each round (four clusters per round).
fn runner_vs_raw(label: &str, system: &str) {
    let dir = tempfile::tempdir().unwrap();
    // [without the layer, with it]
    let mut raw = [Vec::new(), Vec::new()];
    let mut runner = [Vec::new(), Vec::new()];
    let mut ready = Vec::new();
    // Each measurement starts its own cluster, and an fsync-bound rate varies from cluster
    // to cluster: alternate several rounds and compare medians.
    for round in 0..ETCD_ROUNDS {
        for (i, layer) in [false, true].into_iter().enumerate() {
            let c = system_campaign(system, layer);
            let (rate, ready_in) = raw_rate(&c, &dir.path().join(format!("raw{round}-{i}")));
            raw[i].push(rate);
            if !layer {
                ready.push(ready_in.as_secs_f64() * 1e3);
            }
            let opts = RunOptions {
                results_root: dir.path().to_owned(),
                seed: Some(round),
                ..RunOptions::default()
            };
            let report = run(&c, &opts, CancellationToken::new()).expect("runner run");
            runner[i].push(report.rate);
            println!(
                "{label} round {round}{}: raw loop {rate:.0} ops/s, runner {:.0} ops/s ({})",
                if layer { ", on the disk layer" } else { "" },
                report.rate,
                report.verdict
            );
        }
    }
    println!(
        "3-node {label} ready (network + processes + a read served on every node): {:.0} ms (median of {ETCD_ROUNDS})",
        median(ready)
    );
    let medians = |i: usize| (median(runner[i].clone()), median(raw[i].clone()));
    let (runner_plain, raw_plain) = medians(0);
    let (runner_layer, raw_layer) = medians(1);
    println!(
        "{label}, {CONCURRENCY} clients, medians of {ETCD_ROUNDS}: runner {runner_plain:.0} ops/s vs raw loop {raw_plain:.0} ops/s = {:.2} (target >= 0.9); \
         on the disk layer: runner {runner_layer:.0} vs raw loop {raw_layer:.0} = {:.2}; layer vs none: raw loop {:.2}, runner {:.2}",
        runner_plain / raw_plain,
        runner_layer / raw_layer,
        raw_layer / raw_plain,
        runner_layer / runner_plain
    );
}

#[allow(dead_code)]
#[path = "../tests/common/skip.rs"]
mod skip;

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse. The in-memory runs write about a
    // gigabyte of history: they go last, so their writeback does not slow the others.
    if nix::unistd::geteuid().is_root() {
        topology_figures();
        if splitbrain::system::etcd::EtcdSystem::default()
            .version()
            .is_ok()
        {
            runner_vs_raw("etcd", "{etcd: {}}");
        } else {
            skip::skip(
                "runner: etcd figures",
                skip::Need::Etcd,
                "needs etcd (apt-get install etcd-server)",
            );
        }
        if splitbrain::system::clusterkv::locate_binary().is_file() {
            runner_vs_raw("clusterkv raft", "{clusterkv: {arch: raft}}");
        } else {
            skip::skip(
                "runner: clusterkv figures",
                skip::Need::Clusterkv,
                "needs clusterkv beside the bench (cargo build --release --bin clusterkv)",
            );
        }
    } else {
        skip::skip(
            "runner: topology and etcd figures",
            skip::Need::Root,
            "needs root",
        );
    }
    in_memory_rate();
}
