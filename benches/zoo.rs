//! The bug zoo: how reliably and how fast the nemesis exposes bugs that only faults expose.
//!
//! `cargo bench --bench zoo` (root). Per variant — every seeded bug of
//! `clusterkv_protocol::Bug::ALL` (`raft-stale-local-read`, …), `dynamo`, and the correct
//! `raft` and `caspaxos` as controls — and per mode, it runs `workloads/zoo.yaml` with the
//! variant as its `system` over seeds 1..=N and prints one table: runs found invalid, the
//! median and 90th percentile of the time from the start of the main phase to the first
//! operation the checker could not linearize, the median `ok` operations per run, and the
//! fault starts whose evidence says they took effect. The modes:
//!
//! * `mix` — zoo.yaml as it is: a random nemesis mixing every fault kind this machine can do;
//! * `exposing` — the same, drawing only from the kinds that expose the bug
//!   (`Bug::exposed_by`; for dynamo partitions and clock skew; for a correct control every
//!   kind that exposes one of its architecture's bugs);
//! * `feedback` — the mix chosen by the feedback nemesis (`mode: feedback`), one fault at a
//!   time (the mix runs up to three at once).
//!
//! Each variant runs as its own zoo campaign sets it up (its `system`, timings included);
//! the workload and nemesis are zoo.yaml's.
//!
//! Knobs: `SPLITBRAIN_SEEDS=N` (default 10), `SPLITBRAIN_VARIANTS=raft-lease-clock,dynamo,…`
//! (also `primary-backup`, not in the default set), `SPLITBRAIN_MODES=mix,exposing,feedback`,
//! `SPLITBRAIN_MAIN_PHASE=60` (seconds of main phase per run, at most 60).
//!
//! Each run takes its main phase plus about 10–15 s (start, recovery, final reads, check):
//! with the defaults, 9 variants × 3 modes × 10 seeds × ~75 s ≈ 5.6 hours.

use clusterkv_protocol::Bug;
use splitbrain::campaign::{self, Campaign};
use splitbrain::run::{run, RunOptions};
use splitbrain_checkers::models::ModelSpec;
use splitbrain_checkers::Verdict;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

mod common;
use common::{figures, median, p90, RunFigures};

#[allow(dead_code)]
#[path = "../tests/common/skip.rs"]
mod skip;

/// The longest main phase a run may have.
const MAX_MAIN_PHASE: u64 = 60;

/// One system under test: a seeded bug, or a variant without one.
struct Variant {
    name: String,
    /// The campaign's `system`, as YAML.
    system: String,
    /// The fault kinds that expose it (for a correct control: those of its arch's bugs).
    exposed_by: Vec<&'static str>,
    /// Whether it is correct: any invalid run is a false alarm.
    correct: bool,
    /// dynamo has no atomic cas: a read/write register workload.
    register: bool,
}

fn variants() -> Vec<Variant> {
    let mut all: Vec<Variant> = Bug::ALL
        .iter()
        .map(|bug| Variant {
            name: bug.variant_name().to_owned(),
            system: format!(
                "{{clusterkv: {{arch: {}, bug: {}}}}}",
                bug.arch().name(),
                bug.name()
            ),
            exposed_by: bug.exposed_by().to_vec(),
            correct: false,
            register: false,
        })
        .collect();
    all.push(Variant {
        name: "dynamo".into(),
        system: "{clusterkv: {arch: dynamo, n: 3, r: 2, w: 2}}".into(),
        exposed_by: vec!["partition", "clock"],
        correct: false,
        register: true,
    });
    all.push(Variant {
        name: "primary-backup".into(),
        system: "{clusterkv: {arch: primary-backup, replication: async}}".into(),
        exposed_by: vec!["partition", "pause", "kill"],
        correct: false,
        register: false,
    });
    for arch in ["raft", "caspaxos"] {
        let mut kinds: Vec<&'static str> = Bug::ALL
            .iter()
            .filter(|b| b.arch().name() == arch)
            .flat_map(|b| b.exposed_by().iter().copied())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        all.push(Variant {
            name: arch.into(),
            system: format!("{{clusterkv: {{arch: {arch}}}}}"),
            exposed_by: kinds,
            correct: true,
            register: false,
        });
    }
    all
}

const DEFAULT_VARIANTS: &[&str] = &[
    "raft-stale-local-read",
    "raft-lease-clock",
    "raft-lease-pause",
    "raft-no-fsync",
    "raft-retry-reapply",
    "caspaxos-ack-before-quorum",
    "dynamo",
    "raft",
    "caspaxos",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Mix,
    Exposing,
    Feedback,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Mix => "mix",
            Mode::Exposing => "exposing",
            Mode::Feedback => "feedback",
        }
    }

    fn named(name: &str) -> Mode {
        match name {
            "mix" => Mode::Mix,
            "exposing" => Mode::Exposing,
            "feedback" => Mode::Feedback,
            other => panic!("unknown mode `{other}`: expected mix, exposing or feedback"),
        }
    }
}

/// zoo.yaml with the variant's system (and workload) and the mode's nemesis, validated by
/// the campaign loader like any file.
fn campaign_for(zoo: &Path, variant: &Variant, mode: Mode) -> Campaign {
    let text = std::fs::read_to_string(zoo).unwrap();
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let map = doc.as_mapping_mut().unwrap();
    map.insert(
        "name".into(),
        format!("zoo-{}-{}", variant.name, mode.name()).into(),
    );
    map.insert("system".into(), variant_system(variant));
    if variant.register {
        map["workload"]
            .as_mapping_mut()
            .unwrap()
            .insert("kind".into(), "register".into());
    }
    let nemesis = map["nemesis"].as_mapping_mut().unwrap();
    match mode {
        Mode::Mix => {}
        Mode::Exposing => {
            let kinds: Vec<serde_yaml::Value> =
                variant.exposed_by.iter().map(|k| (*k).into()).collect();
            nemesis.insert("faults".into(), kinds.into());
        }
        Mode::Feedback => {
            // The feedback mode chooses one fault at a time.
            nemesis.insert("mode".into(), "feedback".into());
            nemesis.insert("concurrency".into(), 1.into());
        }
    }
    let text = serde_yaml::to_string(&doc).unwrap();
    campaign::parse(&text, zoo).unwrap_or_else(|e| panic!("{}: {e}", variant.name))
}

/// The variant's `system` as its own zoo campaign (`workloads/zoo/<variant>.yaml`) sets it
/// up, timings included (retry-reapply's heartbeat), or the bare variant without one.
fn variant_system(variant: &Variant) -> serde_yaml::Value {
    let own = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workloads/zoo")
        .join(format!("{}.yaml", variant.name));
    let bare: serde_yaml::Value = serde_yaml::from_str(&variant.system).unwrap();
    let Ok(text) = std::fs::read_to_string(&own) else {
        return bare;
    };
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let system = doc["system"].clone();
    assert_eq!(
        system["clusterkv"]["bug"],
        bare["clusterkv"]["bug"],
        "{} sets up another variant",
        own.display()
    );
    system
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        skip::skip(
            "zoo",
            skip::Need::Root,
            "needs root (network namespaces, cgroups)",
        );
        return;
    }
    let seeds: u64 = env("SPLITBRAIN_SEEDS").map_or(10, |s| s.parse().expect("SPLITBRAIN_SEEDS"));
    let main_phase: u64 = env("SPLITBRAIN_MAIN_PHASE")
        .map_or(MAX_MAIN_PHASE, |s| {
            s.parse().expect("SPLITBRAIN_MAIN_PHASE")
        })
        .clamp(1, MAX_MAIN_PHASE);
    let wanted: Vec<String> = env("SPLITBRAIN_VARIANTS").map_or_else(
        || DEFAULT_VARIANTS.iter().map(|s| s.to_string()).collect(),
        |s| s.split(',').map(str::to_owned).collect(),
    );
    let modes: Vec<Mode> = env("SPLITBRAIN_MODES")
        .unwrap_or_else(|| "mix,exposing,feedback".into())
        .split(',')
        .map(Mode::named)
        .collect();
    let all = variants();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let zoo = root.join("workloads").join("zoo.yaml");
    let results = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let mut rows = Vec::new();
    for name in &wanted {
        let variant = all
            .iter()
            .find(|v| &v.name == name)
            .unwrap_or_else(|| panic!("unknown variant `{name}`"));
        for &mode in &modes {
            let c = campaign_for(&zoo, variant, mode);
            let model = ModelSpec::new(c.model());
            let mut runs: Vec<RunFigures> = Vec::new();
            for seed in 1..=seeds {
                let opts = RunOptions {
                    results_root: results.path().to_owned(),
                    seed: Some(seed),
                    duration: Some(Duration::from_secs(main_phase)),
                    ..RunOptions::default()
                };
                let report = run(&c, &opts, CancellationToken::new())
                    .unwrap_or_else(|e| panic!("{name} {} seed {seed}: {e:#}", mode.name()));
                let history = splitbrain::run::load_history(&report.dir).unwrap();
                let f = figures(&history, &model, c.workload.ops_per_key);
                println!(
                    "{name} {} seed {seed}: run verdict {}, linearizability {}, first anomaly {}, ok {}, faults effective {}/{}",
                    mode.name(),
                    report.verdict,
                    f.verdict,
                    f.first_anomaly_s.map_or("-".into(), |s| format!("{s:.1}s")),
                    f.ok,
                    f.effective,
                    f.faults,
                );
                runs.push(f);
                let _ = std::fs::remove_dir_all(&report.dir);
            }
            rows.push(row(variant, mode, seeds, &runs));
        }
    }
    println!(
        "\nbug zoo: {seeds} seeds, {main_phase} s main phase, {:.0} min in all",
        began.elapsed().as_secs_f64() / 60.0
    );
    println!("| variant | mode | invalid | median time to first anomaly | p90 | median ok ops | faults in effect |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!("{r}");
    }
}

fn row(variant: &Variant, mode: Mode, seeds: u64, runs: &[RunFigures]) -> String {
    let invalid = runs
        .iter()
        .filter(|r| r.verdict == Verdict::Invalid)
        .count();
    let times: Vec<f64> = runs.iter().filter_map(|r| r.first_anomaly_s).collect();
    let seconds = |s: Option<f64>| s.map_or("-".into(), |s| format!("{s:.1} s"));
    let ok = median(runs.iter().map(|r| r.ok as f64).collect()).unwrap_or(0.0);
    let faults: usize = runs.iter().map(|r| r.faults).sum();
    let effective: usize = runs.iter().map(|r| r.effective).sum();
    let name = if variant.correct {
        format!("{} (correct)", variant.name)
    } else {
        variant.name.clone()
    };
    format!(
        "| {name} | {} | {invalid}/{seeds} | {} | {} | {ok:.0} | {effective}/{faults} |",
        mode.name(),
        seconds(median(times.clone())),
        seconds(p90(times)),
    )
}
