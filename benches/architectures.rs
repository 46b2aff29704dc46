//! The shipped cluster architectures under their campaigns' random fault schedules, over
//! many seeds: how often splitbrain catches the flawed ones, how soon, and whether the
//! correct ones stay valid with enough evidence.
//!
//! `cargo bench --bench architectures` (root). `SPLITBRAIN_SEEDS=N` (default 10) and
//! `SPLITBRAIN_ARCHS=raft,dynamo` narrow it. Each run is the campaign file in `workloads/`
//! as it is, with seeds 1..=N.
//!
//! Per architecture it prints: runs found invalid, the median time from the start of the
//! main phase to the invocation of the operation the checker could not linearize, runs
//! valid, the fewest `ok` operations on any complete key (a key its group finished), and
//! how many fault starts carried evidence that they took effect.

use splitbrain::campaign;
use splitbrain::run::{run, RunOptions};
use splitbrain_checkers::models::ModelSpec;
use splitbrain_checkers::Verdict;
use std::path::Path;
use tokio_util::sync::CancellationToken;

mod common;
use common::{figures, median};

#[allow(dead_code)]
#[path = "../tests/common/skip.rs"]
mod skip;

fn main() {
    if !nix::unistd::geteuid().is_root() {
        skip::skip(
            "architectures",
            skip::Need::Root,
            "needs root (network namespaces, cgroups)",
        );
        return;
    }
    let seeds: u64 = std::env::var("SPLITBRAIN_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let archs = std::env::var("SPLITBRAIN_ARCHS")
        .unwrap_or_else(|_| "primary-backup,dynamo,raft,caspaxos".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let results = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for arch in archs.split(',') {
        let c = campaign::load(&root.join("workloads").join(format!("{arch}.yaml")))
            .unwrap_or_else(|e| panic!("{e}"));
        let model = ModelSpec::new(c.model());
        let mut runs = Vec::new();
        for seed in 1..=seeds {
            let opts = RunOptions {
                results_root: results.path().to_owned(),
                seed: Some(seed),
                ..RunOptions::default()
            };
            let report = run(&c, &opts, CancellationToken::new())
                .unwrap_or_else(|e| panic!("{arch} seed {seed}: {e:#}"));
            let history = splitbrain::run::load_history(&report.dir).unwrap();
            let f = figures(&history, &model, c.workload.ops_per_key);
            println!(
                "{arch} seed {seed}: run verdict {}, linearizability {}, first anomaly {}, min ok per complete key {}, faults effective {}/{}, availability {:.1}%",
                report.verdict,
                f.verdict,
                f.first_anomaly_s.map_or("-".into(), |s| format!("{s:.1}s")),
                f.min_ok_complete_key,
                f.effective,
                f.faults,
                f.availability * 100.0
            );
            runs.push(f);
            let _ = std::fs::remove_dir_all(&report.dir);
        }
        let invalid = runs
            .iter()
            .filter(|r| r.verdict == Verdict::Invalid)
            .count();
        let valid = runs.iter().filter(|r| r.verdict == Verdict::Valid).count();
        let anomaly = median(runs.iter().filter_map(|r| r.first_anomaly_s).collect());
        let min_ok = runs
            .iter()
            .map(|r| r.min_ok_complete_key)
            .min()
            .unwrap_or(0);
        let faults: usize = runs.iter().map(|r| r.faults).sum();
        let effective: usize = runs.iter().map(|r| r.effective).sum();
        let availability = median(runs.iter().map(|r| r.availability).collect()).unwrap_or(0.0);
        lines.push(format!(
            "| {arch} | {invalid}/{seeds} | {} | {valid}/{seeds} | {min_ok} | {effective}/{faults} | {:.1}% |",
            anomaly.map_or("-".into(), |s| format!("{s:.1} s")),
            availability * 100.0
        ));
    }
    println!("\n| architecture | invalid | median time to first anomaly | valid | fewest ok ops on a complete key | faults in effect | median availability |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for l in lines {
        println!("{l}");
    }
}
