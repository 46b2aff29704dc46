//! The runner's own overhead on transactions: its rate beside a raw client loop doing the
//! same transactions (the same generator, clients and concurrency, without recording) on
//! the same kind of cluster — PostgreSQL (one node, serializable) and 3-node etcd, Jepsen's
//! list-append. Each round runs the raw loop and the runner once, each on a fresh cluster,
//! with the same seed (so the same transactions per client slot), the one going first
//! alternating from round to round; both count every transaction issued in the main phase
//! (ok, fail or indeterminate), and the medians are compared (target: runner ≥ 0.9 × raw).
//!
//! `cargo bench --bench txn_runner` (root: namespaces; needs Debian's `postgresql` and
//! `etcd-server`; a system that is missing is skipped with the usual line).

use splitbrain::campaign::{self, Campaign};
use splitbrain::run::{run, RunOptions};
use splitbrain::system::{Function, Request, System};
use splitbrain::topology::RunId;
use splitbrain::workload::{Generator, SlotRng};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const CONCURRENCY: usize = 10;
const SECONDS: u64 = 5;
const ROUNDS: u64 = 7;

/// The median (of an odd count; the upper middle of an even one).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn campaign(system: &str, nodes: usize) -> Campaign {
    campaign::parse(
        &format!(
            "name: bench-txn\nsystem: {system}\nnodes: {nodes}\nworkload: {{kind: list-append, \
             concurrency: {CONCURRENCY}, key_count: 10, duration: {SECONDS}s, recovery: 0s, \
             final_reads: false}}\nchecker: {{consistency: serializable}}\n"
        ),
        Path::new("bench.yaml"),
    )
    .expect("bench campaign")
}

/// The runner's clients and generator in a bare loop: no recorder, no bookkeeping.
/// Transactions per second issued (as the runner's rate: whatever the outcome), with the
/// runner's per-slot random streams for `seed`.
fn raw_rate(c: &Campaign, dir: &Path, seed: u64) -> f64 {
    let system = splitbrain::system::system_for(&c.system).expect("the campaign's system");
    let deployment = Arc::new(
        splitbrain::run::deploy(c, Some(system.into()), &RunId::random(), dir, None)
            .expect("start the cluster"),
    );
    let rt = deployment.client_runtime(2).unwrap();
    rt.block_on(splitbrain::run::wait_serving(
        deployment.clone(),
        c.workload.timeout,
        &CancellationToken::new(),
    ))
    .expect("the cluster serves");
    let generator = Arc::new(Generator::new(&c.workload));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..CONCURRENCY)
        .map(|slot| {
            let deployment = deployment.clone();
            let generator = generator.clone();
            let timeout = c.workload.timeout;
            rt.spawn(async move {
                let (_, mut client) = deployment.client(slot).unwrap();
                let mut rng = SlotRng::new(seed, slot);
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let op = generator.next(slot, &mut rng);
                    let request = Request {
                        f: Function::Txn,
                        key: splitbrain_checkers::Value::Nil,
                        value: op.value,
                        timeout,
                    };
                    client.invoke(&request).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| rt.block_on(h).unwrap()).sum();
    let rate = total as f64 / t0.elapsed().as_secs_f64();
    drop(rt);
    Arc::into_inner(deployment).unwrap().shutdown().unwrap();
    rate
}

fn figures(name: &str, c: &Campaign) {
    let dir = tempfile::tempdir().unwrap();
    // PostgreSQL runs as its own user, which must reach the data directories.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mut raw, mut runner) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let raw_dir = dir.path().join(format!("raw{round}"));
        let opts = RunOptions {
            results_root: dir.path().to_owned(),
            seed: Some(round),
            ..RunOptions::default()
        };
        let runner_first = round % 2 == 1;
        let raw_before = (!runner_first).then(|| raw_rate(c, &raw_dir, round));
        let report = run(c, &opts, CancellationToken::new()).expect("run");
        let raw_round = raw_before.unwrap_or_else(|| raw_rate(c, &raw_dir, round));
        raw.push(raw_round);
        runner.push(report.rate);
        println!(
            "{name} round {round} ({} first): raw loop {raw_round:.0} txn/s, runner {:.0} txn/s = {:.2} ({})",
            if runner_first { "runner" } else { "raw loop" },
            report.rate,
            report.rate / raw_round,
            report.verdict
        );
    }
    let (raw_m, runner_m) = (median(raw), median(runner));
    println!(
        "{name}, list-append, {CONCURRENCY} clients, medians of {ROUNDS}: runner {runner_m:.0} txn/s vs raw loop {raw_m:.0} txn/s = {:.2} (target >= 0.9)",
        runner_m / raw_m
    );
}

#[allow(dead_code)]
#[path = "../tests/common/skip.rs"]
mod skip;

fn main() {
    if !nix::unistd::geteuid().is_root() {
        skip::skip("txn_runner", skip::Need::Root, "needs root");
        return;
    }
    let postgres = splitbrain::system::postgres::PostgresSystem::new(Default::default());
    if postgres.version().is_ok() {
        figures(
            "postgres",
            &campaign("{postgres: {isolation: serializable}}", 1),
        );
    } else {
        skip::skip(
            "txn_runner: postgres",
            skip::Need::Postgres,
            "needs PostgreSQL 15 (apt-get install postgresql)",
        );
    }
    if splitbrain::system::etcd::EtcdSystem::default()
        .version()
        .is_ok()
    {
        figures("etcd", &campaign("{etcd: {}}", 3));
    } else {
        skip::skip(
            "txn_runner: etcd",
            skip::Need::Etcd,
            "needs etcd (apt-get install etcd-server)",
        );
    }
}
