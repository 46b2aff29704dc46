//! `splitbrain run` on remote hosts: the clusterkv raft and etcd campaigns on three "remote
//! machines" (`sshd`s in namespaces of their own, `common::ssh_hosts`), nodes started over
//! SSH, partitions (nftables on the hosts), pauses and kills (signals) shown in effect,
//! the same verdict as the local path, and nothing left on the hosts — after a clean end
//! and after a SIGKILLed controller and `splitbrain cleanup --run ID`.
//!
//! The controller runs where a controller of real machines would: on the hosts' network,
//! which here is the topology's switch namespace (`ip netns exec`). Needs root, OpenSSH,
//! etcd and the clusterkv binary.

mod common;

use common::have_root;
use common::ssh_hosts::{have_sshd, HostSetup, SshHosts};
use splitbrain::remote::SshTransport;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SPLITBRAIN: &str = env!("CARGO_BIN_EXE_splitbrain");
const STATE_DIR_ENV: &str = splitbrain::cleanup::STATE_DIR_ENV;

fn ready(test: &str) -> bool {
    if !(have_root(test) && have_sshd(test)) {
        return false;
    }
    let clusterkv = splitbrain::system::clusterkv::locate_binary();
    if !clusterkv.is_file() {
        common::skip(
            test,
            common::Need::Clusterkv,
            format!("clusterkv binary not built ({})", clusterkv.display()),
        );
        return false;
    }
    true
}

/// `splitbrain ARGS` on the hosts' network, its run records in `state`.
fn splitbrain_command(hosts: &SshHosts, state: &Path, args: &[&str]) -> Command {
    let mut command =
        splitbrain::netns::command(hosts.switch_netns(), SPLITBRAIN).expect("switch namespace");
    command
        .args(args)
        .env(STATE_DIR_ENV, state)
        .env(
            "SPLITBRAIN_CLUSTERKV",
            splitbrain::system::clusterkv::locate_binary(),
        )
        .stdin(Stdio::null());
    command
}

/// `splitbrain run FILE --results RESULTS` in the switch namespace, its state in `state`;
/// its output piped (to be read) or discarded.
fn spawn_run(
    hosts: &SshHosts,
    file: &Path,
    state: &Path,
    results: &Path,
    piped: bool,
) -> std::process::Child {
    let output = || if piped { Stdio::piped() } else { Stdio::null() };
    splitbrain_command(
        hosts,
        state,
        &[
            "run",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
    )
    .stdout(output())
    .stderr(output())
    .spawn()
    .unwrap()
}

fn campaign(hosts: &SshHosts, name: &str, system: &str, duration: &str, nemesis: &str) -> String {
    format!(
        "name: {name}\nsystem: {system}\nnodes: 3\n\
         workload: {{kind: kv, concurrency: 4, rate: 100, duration: {duration}, timeout: 500ms, recovery: 2s}}\n\
         nemesis:\n  timeline:\n{nemesis}{}",
        hosts.campaign_sections()
    )
}

/// What is left of any run on the hosts: run directories, partition tables, disk layer
/// mounts (in the host's own mount namespace), processes working in a run directory (one
/// line each; empty when nothing). The test hosts share
/// this machine's processes, so a host's processes are those in its network namespace.
fn leftovers(hosts: &SshHosts) -> Vec<String> {
    let list = hosts.hosts().to_vec();
    let options = hosts.options();
    let control = hosts.dir().join("check");
    std::fs::create_dir_all(&control).unwrap();
    hosts.on_network(move || {
        let transport = SshTransport::connect(&list, options, &control).expect("connect");
        let mut found = Vec::new();
        for host in &list {
            let out = transport
                .run_ok(
                    &host.name,
                    &[
                        "sh",
                        "-c",
                        "ls -d /tmp/splitbrain-* /tmp/sb-root/splitbrain-* 2>/dev/null; \
                         nft list tables 2>/dev/null | grep splitbrain_; \
                         grep -E '^splitbrain-disk /tmp/(sb-root/)?splitbrain-' /proc/mounts; \
                         iptables -w -S 2>/dev/null | grep -- splitbrain-; \
                         tc qdisc show 2>/dev/null | grep -E ' 5b00: | netem '; \
                         me=$(readlink /proc/self/ns/net); \
                         for p in /proc/[0-9]*; do case $(readlink $p/cwd 2>/dev/null) in /tmp/splitbrain-*|/tmp/sb-root/splitbrain-*) \
                         [ \"$(readlink $p/ns/net 2>/dev/null)\" = \"$me\" ] && echo process ${p#/proc/};; esac; done; true",
                    ],
                    Duration::from_secs(20),
                )
                .expect("listing what is left");
            found.extend(
                out.stdout_text()
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("{}: {l}", host.name)),
            );
        }
        found
    })
}

/// Whether every host can add a netem qdisc (in a throwaway network namespace, as `doctor`
/// tries it).
fn hosts_have_netem(hosts: &SshHosts) -> bool {
    let list = hosts.hosts().to_vec();
    let options = hosts.options();
    let control = hosts.dir().join("netem");
    std::fs::create_dir_all(&control).unwrap();
    hosts.on_network(move || {
        let transport = SshTransport::connect(&list, options, &control).expect("connect");
        list.iter().all(|host| {
            transport
                .run(
                    &host.name,
                    &[
                        "unshare",
                        "--net",
                        "sh",
                        "-c",
                        "ip link set lo up && tc qdisc add dev lo root netem delay 1ms",
                    ],
                    Duration::from_secs(20),
                )
                .is_ok_and(|out| out.status.success())
        })
    })
}

/// The nemesis's completed faults of `f` in a run's history, as JSON lines.
fn fault_records(dir: &Path, f: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["process"] == "nemesis" && e["type"] == "info" && e["f"] == f)
        .collect()
}

fn run_dir(results: &Path) -> PathBuf {
    let campaign_dir = std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && !p.ends_with("latest"))
        .expect("a campaign directory");
    std::fs::read_dir(&campaign_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir() && p.file_name().unwrap() != "latest")
        .expect("a run directory")
}

/// The run id of a run directory (`<stamp>-<run id>`).
fn run_id_of(run: &Path) -> String {
    let name = run.file_name().unwrap().to_string_lossy().into_owned();
    name.rsplit('-').next().unwrap().to_owned()
}

/// Whether run `id`'s cgroup is still there (the test hosts share this machine's cgroup2).
fn cgroup_left(id: &str) -> bool {
    splitbrain::cgroup::harness_root().is_ok_and(|root| root.join(id).exists())
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs a campaign on the hosts and checks verdict, faults, logs and what is left.
/// `clock`: a clock bump too by libfaketime (not for etcd, a Go program it cannot skew);
/// otherwise a clock bump of a host's own clock (`ssh.set_clock`: the hosts must have the
/// stand-in `date`, [`HostSetup::stand_in_date`]).
fn run_on_hosts(hosts: &SshHosts, name: &str, system: &str, clock: bool) -> Vec<i64> {
    let mut nemesis = "  - {at: 1s, fault: partition, shape: isolate-leader, for: 2s}\n\
                   \x20 - {at: 3500ms, fault: partition, shape: halves, for: 1500ms}\n\
                   \x20 - {at: 5500ms, fault: pause, target: one, for: 1500ms}\n\
                   \x20 - {at: 7500ms, fault: kill, target: one, for: 1500ms}\n"
        .to_owned();
    // n2's clock: by libfaketime, or the host's own (`set_clock`, through the stand-in).
    nemesis.push_str("  - {at: 9100ms, fault: clock-bump, target: n2, offset: +30s, for: 700ms}\n");
    let host_clock = !clock;
    if host_clock {
        // n3's own clock strobed (Jepsen's strobe) beside n2's bump.
        nemesis
            .push_str("  - {at: 10s, fault: clock-strobe, target: n3, offset: +20s, for: 700ms}\n");
    }
    // Packet faults on the hosts (the raft run only: the CI time of one run covers them):
    // loss by the run's nft table, and by netem where the hosts' kernel has it.
    let packet = clock;
    let netem = packet && hosts_have_netem(hosts);
    if packet {
        nemesis.push_str(
            "  - {at: 10s, fault: loss, target: n1, percent: 30, for: 900ms}\n\
             \x20 - {at: 10s, fault: clock-strobe, target: n3, offset: +20s, for: 900ms}\n",
        );
    }
    if netem {
        nemesis.push_str(
            "  - {at: 11s, fault: delay, target: n2, delay: 60ms, jitter: 5ms, for: 900ms}\n\
             \x20 - {at: 12s, fault: reorder, target: n3, max_delay: 60ms, for: 900ms}\n\
             \x20 - {at: 13s, fault: duplicate, target: n1, percent: 20, for: 900ms}\n",
        );
    }
    let duration = match (packet, netem) {
        (_, true) => "14s",
        (true, false) | (false, _) => "11s",
    };
    let dir = hosts.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    let mut yaml = campaign(hosts, name, system, duration, &nemesis);
    if host_clock {
        yaml.push_str("  set_clock: true\n");
    }
    std::fs::write(&file, yaml).unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let started = Instant::now();
    let output = splitbrain_command(
        hosts,
        &state,
        &[
            "run",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--seed",
            "7",
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    println!("{name}: run took {:?}\n{stdout}", started.elapsed());
    let run = run_dir(&results);
    for f in [
        "start-partition",
        "stop-partition",
        "pause",
        "resume",
        "kill",
        "start",
        "clock-bump",
        "clock-reset",
        "clock-strobe",
        "start-loss",
        "stop-loss",
        "start-delay",
        "stop-delay",
        "start-reorder",
        "stop-reorder",
        "start-duplicate",
        "stop-duplicate",
    ] {
        for record in fault_records(&run, f) {
            println!("{name}: {f}: {}", record["value"]);
        }
    }
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let verdict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(verdict["verdict"], "valid", "{verdict:#}");

    for (f, count) in [("start-partition", 2), ("pause", 1), ("kill", 1)] {
        let records = fault_records(&run, f);
        assert_eq!(records.len(), count, "{f}: {records:#?}");
        for record in &records {
            let value = &record["value"];
            assert_eq!(value["effective"], true, "{f} not in effect: {value:#}");
        }
    }
    let partitions = fault_records(&run, "start-partition");
    let evidence = partitions[0]["value"]["evidence"].to_string();
    assert!(evidence.contains(": blocked"), "{evidence}");
    // The test hosts have this machine's cgroup2 and log in as root: nodes supervised by
    // cgroup, paused by its freezer, killed whole.
    let by_cgroup = splitbrain::cgroup::cgroup2_mount().is_ok();
    let pause = &fault_records(&run, "pause")[0]["value"];
    let kill = &fault_records(&run, "kill")[0]["value"];
    if by_cgroup {
        assert_eq!(pause["backend"], "cgroup v2 on the hosts", "{pause:#}");
        assert!(
            pause["evidence"]
                .to_string()
                .contains("cgroup.freeze 1, cgroup.events frozen 1"),
            "{pause:#}"
        );
        let kill = kill["evidence"].to_string();
        assert!(
            kill.contains("cgroup.kill, cgroup.procs empty") && kill.contains("gone"),
            "{kill}"
        );
    } else {
        assert!(pause["evidence"].to_string().contains("state T (stopped)"));
        assert!(kill["evidence"].to_string().contains("SIGKILL"));
    }
    assert!(!cgroup_left(&run_id_of(&run)), "the run's cgroup is left");
    let restarted = fault_records(&run, "start")[0]["value"]["evidence"].to_string();
    assert!(restarted.contains("started again"), "{restarted}");
    // n2's clock 30 s ahead of the controller's: as n2 reports it (libfaketime), or as
    // n2's host reads it back (its own clock).
    let bumps = fault_records(&run, "clock-bump");
    assert_eq!(bumps.len(), 1, "{bumps:#?}");
    assert_eq!(bumps[0]["value"]["effective"], true, "{:#}", bumps[0]);
    if host_clock {
        let bump = &bumps[0]["value"];
        assert_eq!(
            bump["backend"], "the hosts' own clocks (date -s)",
            "{bump:#}"
        );
        let skew: i64 = bump["observed"][0]
            .as_str()
            .and_then(|o| o.strip_prefix("n2: "))
            .and_then(|rest| rest.split("ms").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{bump:#}"));
        assert!((skew - 30_000).abs() < 1_000, "{bump:#}");
        // Shifted by +30 s, then back by -30 s: the stand-in's offset back near zero.
        let (asked, offset_ms) = hosts.stand_in_clock("n2");
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(
            asked.iter().all(|a| a.starts_with("date -s @")),
            "{asked:?}"
        );
        assert!(
            offset_ms.abs() < 1_000,
            "n2's clock left {offset_ms} ms off"
        );
        assert_eq!(hosts.stand_in_clock("n1"), (Vec::new(), 0), "n1");
        // n3's clock strobed: seen 20 s ahead while in force, shifted up and back by its
        // loop (each pair a `date -s` up and one back), and left where it was.
        let strobes = fault_records(&run, "clock-strobe");
        assert_eq!(strobes.len(), 1, "{strobes:#?}");
        let strobe = &strobes[0]["value"];
        assert_eq!(strobe["effective"], true, "{strobe:#}");
        assert_eq!(
            strobe["backend"], "the hosts' own clocks (date -s)",
            "{strobe:#}"
        );
        assert!(
            strobe["observed"].to_string().contains("n3: +"),
            "{strobe:#}"
        );
        let (asked, offset_ms) = hosts.stand_in_clock("n3");
        assert!(asked.len() >= 2 && asked.len() % 2 == 0, "{asked:?}");
        assert!(
            offset_ms.abs() < 1_000,
            "n3's clock left {offset_ms} ms off"
        );
    }

    if packet {
        let kinds: &[&str] = match netem {
            true => &[
                "start-loss",
                "start-delay",
                "start-reorder",
                "start-duplicate",
            ],
            false => &["start-loss"],
        };
        for f in kinds {
            let records = fault_records(&run, f);
            assert_eq!(records.len(), 1, "{f}: {records:#?}");
            let value = &records[0]["value"];
            assert_eq!(value["effective"], true, "{f} not in effect: {value:#}");
        }
        let loss = fault_records(&run, "start-loss")[0]["value"]["evidence"].to_string();
        assert!(loss.contains("packets dropped (nft counter"), "{loss}");
        if netem {
            let delay = fault_records(&run, "start-delay")[0]["value"]["evidence"].to_string();
            assert!(delay.contains("connect round trip n2->"), "{delay}");
            let duplicate =
                fault_records(&run, "start-duplicate")[0]["value"]["evidence"].to_string();
            assert!(duplicate.contains("duplicate 20%"), "{duplicate}");
        }
        // n3's clock seen 20 s ahead at least once while its strobe flips it; back at the
        // reset, and the loop gone from the host (the leftovers below).
        let strobes = fault_records(&run, "clock-strobe");
        assert_eq!(strobes.len(), 1, "{strobes:#?}");
        assert_eq!(strobes[0]["value"]["effective"], true, "{:#}", strobes[0]);
        let healed = fault_records(&run, "stop-loss")[0]["value"]["evidence"].to_string();
        assert!(healed.contains("dropped while in force"), "{healed}");
    }

    // Every node's log came back from its host.
    for node in ["n1", "n2", "n3"] {
        let log = run.join("nodes").join(node).join("node.log");
        assert!(log.is_file(), "{} missing", log.display());
    }
    // A clean end leaves nothing on the hosts, and no run record.
    assert_eq!(leftovers(hosts), Vec::<String>::new());
    let records: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(records.is_empty(), "run records left: {records:?}");

    let nemesis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("nemesis.json")).unwrap()).unwrap();
    nemesis["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "partition")
        .map(|f| f["lateness_us"].as_i64().unwrap())
        .collect()
}

#[test]
fn raft_and_etcd_campaigns_run_on_remote_hosts_with_faults_in_effect() {
    let test = "raft_and_etcd_campaigns_run_on_remote_hosts_with_faults_in_effect";
    if !ready(test) {
        return;
    }
    // A stand-in `date` on the hosts: the etcd run changes the hosts' own clocks (etcd is Go:
    // libfaketime cannot skew it), and this machine's clock must never move.
    let setup = HostSetup {
        stand_in_date: true,
        ..HostSetup::default()
    };
    let hosts =
        SshHosts::start_with(3, setup).unwrap_or_else(|e| panic!("starting the ssh hosts: {e}"));
    let mut lateness = run_on_hosts(&hosts, "remote-raft", "{clusterkv: {arch: raft}}", true);
    lateness.extend(run_on_hosts(&hosts, "remote-etcd", "{etcd: {}}", false));

    // A controller SIGKILLed while n3's host clock is 30 s ahead: `cleanup --run` puts it
    // back from what the host keeps (the shift was recorded before it was made).
    let (asked_before, _) = hosts.stand_in_clock("n3");
    let dir = hosts.dir().join("clock-killed");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    let yaml = campaign(
        &hosts,
        "clock-killed",
        "{etcd: {}}",
        "60s",
        "  - {at: 500ms, fault: clock-bump, target: n3, offset: +30s, for: 50s}\n",
    ) + "  set_clock: true\n";
    std::fs::write(&file, yaml).unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let mut child = spawn_run(&hosts, &file, &state, &results, false);
    let run = wait_recorded(&state, "clock-offset", 1, &mut child);
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let (_, offset_ms) = hosts.stand_in_clock("n3");
    assert!((offset_ms - 30_000).abs() < 1_000, "n3 at {offset_ms} ms");
    let output = splitbrain_command(&hosts, &state, &["cleanup", "--run", &run])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("host n3: the clock offset"), "{stdout}");
    let (asked, offset_ms) = hosts.stand_in_clock("n3");
    // Shifted up by the run, back by the cleanup.
    assert_eq!(asked.len(), asked_before.len() + 2, "{asked:?}");
    assert!(
        offset_ms.abs() < 1_000,
        "n3's clock left {offset_ms} ms off"
    );
    assert_eq!(leftovers(&hosts), Vec::<String>::new());
    lateness.sort();
    println!(
        "partition scheduled -> in force on 3 hosts over SSH (n={}): p50 {} us, p99 {} us, max {} us",
        lateness.len(),
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        lateness.last().unwrap()
    );
}

/// Hosts without `nft` and without cgroup2: partitions and loss through the run's own
/// iptables chains, pauses and kills by signal, all in effect and nothing left; a killed
/// controller's chains are removed by `cleanup --run`. Hosts with neither nft nor iptables
/// are refused naming them (a unit of `RemoteHosts::hosts_without`).
#[test]
fn hosts_without_nft_or_cgroup2_use_iptables_and_signals() {
    let test = "hosts_without_nft_or_cgroup2_use_iptables_and_signals";
    if !ready(test) {
        return;
    }
    let setup = HostSetup {
        without_nft: true,
        without_cgroup2: true,
        ..HostSetup::default()
    };
    let hosts =
        SshHosts::start_with(3, setup).unwrap_or_else(|e| panic!("starting the ssh hosts: {e}"));
    let dir = hosts.dir().join("iptables");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        campaign(
            &hosts,
            "remote-iptables",
            "{clusterkv: {arch: raft}}",
            "7s",
            "  - {at: 1s, fault: partition, shape: halves, for: 1500ms}\n\
             \x20 - {at: 3s, fault: loss, target: n1, percent: 30, for: 900ms}\n\
             \x20 - {at: 4500ms, fault: pause, target: n2, for: 800ms}\n\
             \x20 - {at: 5500ms, fault: kill, target: n3, for: 800ms}\n",
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let output = splitbrain_command(
        &hosts,
        &state,
        &[
            "run",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--seed",
            "7",
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let run = run_dir(&results);
    for f in [
        "start-partition",
        "stop-partition",
        "start-loss",
        "stop-loss",
        "pause",
        "resume",
        "kill",
        "start",
    ] {
        for record in fault_records(&run, f) {
            println!("{test}: {f}: {}", record["value"]);
        }
    }
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for (f, backend) in [
        ("start-partition", "iptables on the hosts"),
        ("start-loss", "iptables on the hosts"),
        ("pause", "signals on the hosts"),
        ("kill", "signals on the hosts"),
    ] {
        let records = fault_records(&run, f);
        assert_eq!(records.len(), 1, "{f}: {records:#?}");
        let value = &records[0]["value"];
        assert_eq!(value["effective"], true, "{f} not in effect: {value:#}");
        assert_eq!(value["backend"], backend, "{f}: {value:#}");
    }
    let partition = fault_records(&run, "start-partition")[0]["value"].to_string();
    assert!(
        partition.contains("chain splitbrain-") && partition.contains(": blocked"),
        "{partition}"
    );
    let loss = fault_records(&run, "start-loss")[0]["value"]["evidence"].to_string();
    assert!(loss.contains("packets dropped (iptables counter"), "{loss}");
    let healed = fault_records(&run, "stop-loss")[0]["value"]["evidence"].to_string();
    assert!(
        healed.contains("dropped while in force (iptables counter)"),
        "{healed}"
    );
    let pause = fault_records(&run, "pause")[0]["value"]["evidence"].to_string();
    assert!(
        pause.contains("SIGSTOP") && pause.contains("state T (stopped)"),
        "{pause}"
    );
    let kill = fault_records(&run, "kill")[0]["value"]["evidence"].to_string();
    assert!(kill.contains("SIGKILL") && kill.contains("gone"), "{kill}");
    assert_eq!(leftovers(&hosts), Vec::<String>::new());
    assert!(!cgroup_left(&run_id_of(&run)), "no cgroup without cgroup2");

    // SIGKILLed during a partition: the chain stays until `cleanup --run`.
    let file = dir.join("killed.yaml");
    std::fs::write(
        &file,
        campaign(
            &hosts,
            "remote-iptables-killed",
            "{clusterkv: {arch: raft}}",
            "60s",
            "  - {at: 500ms, fault: partition, shape: halves, for: 50s}\n",
        ),
    )
    .unwrap();
    let state = dir.join("killed-state");
    let mut child = spawn_run(&hosts, &file, &state, &results, false);
    wait_recorded(&state, "process", 3, &mut child);
    let id = wait_recorded(&state, "iptables-chain", 1, &mut child);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let left = leftovers(&hosts);
    assert!(
        left.iter().any(|l| l.contains("-N splitbrain-")),
        "a killed controller leaves its chain: {left:?}"
    );
    let output = splitbrain_command(&hosts, &state, &["cleanup", "--run", &id])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("iptables chain splitbrain-"), "{stdout}");
    assert_eq!(leftovers(&hosts), Vec::<String>::new(), "{stdout}");
}

/// A delay fault on hosts whose kernel has no netem is refused at start (69, naming each
/// host), leaving nothing on them; where they have it, it is put in force (the raft run
/// above shows its evidence).
#[test]
fn a_netem_fault_on_hosts_without_netem_is_refused_naming_them() {
    let test = "a_netem_fault_on_hosts_without_netem_is_refused_naming_them";
    if !ready(test) {
        return;
    }
    let hosts = SshHosts::start(3).unwrap_or_else(|e| panic!("starting the ssh hosts: {e}"));
    if hosts_have_netem(&hosts) {
        println!("{test}: the hosts have netem; the raft run covers delay, reorder, duplicate");
        return;
    }
    let dir = hosts.dir().join("netem");
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        campaign(
            &hosts,
            "remote-netem",
            "{clusterkv: {arch: raft}}",
            "3s",
            "  - {at: 1s, fault: delay, target: n1, for: 1s}\n",
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let output = splitbrain_command(
        &hosts,
        &state,
        &[
            "run",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    for host in ["n1", "n2", "n3"] {
        assert!(stderr.contains(host), "{host}: {stderr}");
    }
    assert!(stderr.contains("a netem qdisc cannot be added"), "{stderr}");
    assert_eq!(leftovers(&hosts), Vec::<String>::new());
    let records: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(records.is_empty(), "run records left: {records:?}");
}

/// A node that dies on its host without the harness asking is reported like a local one:
/// a line on stderr naming node, pid and start, the tail of its log, and the death in the
/// results' `node_deaths`.
#[test]
fn a_remote_node_that_dies_during_the_run_is_reported() {
    let test = "a_remote_node_that_dies_during_the_run_is_reported";
    if !ready(test) {
        return;
    }
    let hosts = SshHosts::start(3).unwrap_or_else(|e| panic!("starting the ssh hosts: {e}"));
    let dir = hosts.dir().join("death");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    // The run's directories under a root of the campaign's (`ssh.dir`), not `/tmp`.
    let yaml = campaign(
        &hosts,
        "remote-death",
        "{clusterkv: {arch: raft}}",
        "6s",
        "  - {at: 5s, fault: pause, target: n1, for: 300ms}\n",
    ) + "  dir: /tmp/sb-root\n";
    std::fs::write(&file, yaml).unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let child = spawn_run(&hosts, &file, &state, &results, true);
    // Once n3 is up (its pid file there) and the main phase has begun, SIGKILL it behind
    // the harness's back.
    let list = hosts.hosts().to_vec();
    let options = hosts.options();
    let control = hosts.dir().join("death-ssh");
    std::fs::create_dir_all(&control).unwrap();
    let killed = hosts.on_network(move || {
        let transport = SshTransport::connect(&list, options, &control).expect("connect");
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            let out = transport
                .run(
                    "n3",
                    &[
                        "sh",
                        "-c",
                        "cat /tmp/sb-root/splitbrain-*/n3/pid 2>/dev/null",
                    ],
                    Duration::from_secs(10),
                )
                .expect("reading the pid file");
            let pid = out.stdout_text().trim().to_owned();
            if !pid.is_empty() {
                std::thread::sleep(Duration::from_secs(3));
                transport
                    .run_ok("n3", &["kill", "-KILL", &pid], Duration::from_secs(10))
                    .expect("killing n3");
                return pid;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("n3 never started");
    });
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{stderr}");
    let reported = format!("n3 (pid {killed}, start #1) ended with unknown status unexpectedly");
    assert!(stderr.contains(&reported), "{reported}: {stderr}");
    assert!(
        stderr.contains("lines of stdout"),
        "the log's tail: {stderr}"
    );
    let run = run_dir(&results);
    let verdict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let deaths = verdict["node_deaths"].to_string();
    assert!(deaths.contains(&reported), "{verdict:#}");
    assert_eq!(leftovers(&hosts), Vec::<String>::new());
}

/// `compare` on a campaign with hosts runs each system on the hosts (one run per system
/// and fault kind) and measures each: a row per system, every cell a run, nothing left.
#[test]
fn compare_runs_each_system_on_the_remote_hosts() {
    let test = "compare_runs_each_system_on_the_remote_hosts";
    if !ready(test) {
        return;
    }
    let hosts = SshHosts::start(3).unwrap_or_else(|e| panic!("starting the ssh hosts: {e}"));
    let dir = hosts.dir().join("compare");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        campaign(
            &hosts,
            "remote-compare",
            "{clusterkv: {arch: raft}}",
            "3s",
            "  - {at: 1s, fault: pause, target: one, for: 500ms}\n",
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let output = splitbrain_command(
        &hosts,
        &state,
        &[
            "compare",
            file.to_str().unwrap(),
            "--systems",
            "raft,etcd",
            "--results",
            results.to_str().unwrap(),
            "--json",
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("compare's JSON rows");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for row in rows {
        let text = row.to_string();
        assert!(
            !text.contains("refused") && !text.contains("\"error\""),
            "a cell not run: {text}"
        );
    }
    // Each cell ran on the hosts: its nodes' logs came back from them.
    let logs: Vec<_> = walk(&results)
        .into_iter()
        .filter(|p| p.ends_with("nodes/n1/node.log"))
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}\n{stderr}");
    assert_eq!(leftovers(&hosts), Vec::<String>::new());
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Waits until `state`'s only run record names `lines` remote resources of `kind`.
fn wait_recorded(state: &Path, kind: &str, lines: usize, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its resources were recorded"
        );
        if let Some(run) = std::fs::read_dir(state).ok().and_then(|mut d| d.next()) {
            let run = run.unwrap().path();
            let text = std::fs::read_to_string(run.join("resources")).unwrap_or_default();
            if text
                .lines()
                .filter(|l| l.contains(&format!("\"kind\":\"{kind}\"")))
                .count()
                >= lines
            {
                return run.file_name().unwrap().to_string_lossy().into_owned();
            }
        }
        assert!(Instant::now() < deadline, "nothing recorded in 60s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_interrupted_remote_run_leaves_nothing_and_a_killed_one_is_cleaned_up() {
    let test = "an_interrupted_remote_run_leaves_nothing_and_a_killed_one_is_cleaned_up";
    if !ready(test) {
        return;
    }
    let hosts = SshHosts::start(3).unwrap_or_else(|e| panic!("starting the ssh hosts: {e}"));

    // SIGINT during a partition: the run heals, stops its nodes, fetches their logs and
    // removes its directories on the way out.
    let dir = hosts.dir().join("interrupted");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        campaign(
            &hosts,
            "interrupted",
            "{clusterkv: {arch: raft}}",
            "60s",
            "  - {at: 500ms, fault: partition, shape: halves, for: 50s}\n",
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let mut child = spawn_run(&hosts, &file, &state, &results, false);
    wait_recorded(&state, "nft-table", 1, &mut child);
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    assert_eq!(leftovers(&hosts), Vec::<String>::new());
    let run = run_dir(&results);
    assert!(run.join("nodes/n1/node.log").is_file());
    let records: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(records.is_empty(), "run records left: {records:?}");

    // SIGKILL: everything stays on the hosts until `cleanup --run`.
    let dir = hosts.dir().join("killed");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        campaign(
            &hosts,
            "killed",
            "{clusterkv: {arch: raft}}",
            "60s",
            "  - {at: 500ms, fault: partition, shape: halves, for: 50s}\n",
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let mut child = spawn_run(&hosts, &file, &state, &results, false);
    // Nodes on every host, and a partition table on one at least: then the controller dies.
    wait_recorded(&state, "process", 3, &mut child);
    let run = wait_recorded(&state, "nft-table", 1, &mut child);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let left = leftovers(&hosts);
    assert!(
        left.iter().any(|l| l.contains("process"))
            && left.iter().any(|l| l.contains("splitbrain_"))
            && left.iter().any(|l| l.contains("/tmp/splitbrain-")),
        "a killed controller leaves its nodes, table and directories: {left:?}"
    );

    let by_cgroup = splitbrain::cgroup::cgroup2_mount().is_ok();
    assert_eq!(cgroup_left(&run), by_cgroup, "the nodes' cgroups stay too");
    let output = splitbrain_command(&hosts, &state, &["cleanup", "--run", &run])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("host n1"), "{stdout}");
    assert_eq!(leftovers(&hosts), Vec::<String>::new(), "{stdout}");
    assert!(!cgroup_left(&run), "{stdout}");
    assert!(!state.join(&run).exists(), "the run record is gone");
    // A second cleanup finds nothing.
    let output = splitbrain_command(&hosts, &state, &["cleanup", "--run", &run])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
}

/// The SSH path's speed: a partition on three hosts (each receiving host's table at once,
/// over its persistent shell) from the moment it is due until the last host has it, and
/// the heal. Prints p50/p99/max; checks that the cut is real (a probe from a host).
#[test]
fn a_partition_over_ssh_goes_in_with_one_round_trip_per_host() {
    let test = "a_partition_over_ssh_goes_in_with_one_round_trip_per_host";
    if !(have_root(test) && have_sshd(test)) {
        return;
    }
    let hosts = SshHosts::start(3).unwrap_or_else(|e| panic!("starting the ssh hosts: {e}"));
    let list = hosts.hosts().to_vec();
    let ssh = hosts.ssh_spec().clone();
    let (apply, heal) = hosts.on_network(move || {
        // The run's record goes where every record of this machine goes, and is forgotten
        // at the end (the state directory is not changed for the other tests of the file).
        let run = splitbrain::cleanup::RunId::random();
        let remote = splitbrain::remote::RemoteHosts::connect(&run, &list, &ssh).expect("connect");
        let address = |name: &str| {
            list.iter()
                .find(|h| h.name == name)
                .unwrap()
                .address
                .clone()
        };
        // n1 cut from n2 and n3, both ways.
        let grudge = [
            ("n1", vec![address("n2"), address("n3")]),
            ("n2", vec![address("n1")]),
            ("n3", vec![address("n1")]),
        ];
        let (mut apply, mut heal) = (Vec::new(), Vec::new());
        for round in 0..30 {
            let due = Instant::now();
            std::thread::scope(|scope| {
                for (host, from) in &grudge {
                    let remote = &remote;
                    scope.spawn(move || remote.partition(host, from).expect("partition"));
                }
            });
            apply.push(due.elapsed().as_micros() as i64);
            if round == 0 {
                let target: std::net::SocketAddr =
                    format!("{}:2222", address("n1")).parse().unwrap();
                let reach = remote
                    .probe("n2", target, Duration::from_millis(300))
                    .unwrap();
                assert!(
                    matches!(reach, splitbrain::remote::hosts::Reach::Blocked(_)),
                    "n2 -> n1 across the cut: {reach:?}"
                );
            }
            let due = Instant::now();
            std::thread::scope(|scope| {
                for (host, _) in &grudge {
                    let remote = &remote;
                    scope.spawn(move || remote.heal(host).expect("heal"));
                }
            });
            heal.push(due.elapsed().as_micros() as i64);
        }
        let target: std::net::SocketAddr = format!("{}:2222", address("n1")).parse().unwrap();
        assert_eq!(
            remote.probe("n2", target, Duration::from_secs(2)).unwrap(),
            splitbrain::remote::hosts::Reach::Reachable
        );
        remote.remove_run_dirs().unwrap();
        drop(remote);
        assert!(
            splitbrain::cleanup::forget_if_done(&run),
            "the run's record is gone"
        );
        (apply, heal)
    });
    for (what, mut figures) in [("partition in force", apply), ("healed", heal)] {
        figures.sort();
        println!(
            "{what} on 3 hosts over SSH (n={}): p50 {} us, p99 {} us, max {} us",
            figures.len(),
            percentile(&figures, 0.5),
            percentile(&figures, 0.99),
            figures.last().unwrap()
        );
    }
    assert_eq!(leftovers(&hosts), Vec::<String>::new());
}

/// Runs the shell line `line` on `host` (as root, in the host's own mount namespace).
fn run_on(hosts: &SshHosts, host: &'static str, line: &'static str) {
    let list = hosts.hosts().to_vec();
    let options = hosts.options();
    let control = hosts.dir().join(format!("{host}-ssh"));
    std::fs::create_dir_all(&control).unwrap();
    hosts.on_network(move || {
        let transport = SshTransport::connect(&list, options, &control).expect("connect");
        transport
            .run_ok(host, &["sh", "-c", line], Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    })
}

/// Disk faults on the hosts: each node's data directory is a disk layer on its host (this
/// executable, uploaded with the run, FUSE over the host's own tmpfs), `disk-lose-unsynced`
/// kills a node and drops what it had not synced (the layer's own count as evidence), and
/// `disk-fsync-error` is read back from another's layer, `disk-corrupt` kills the third and
/// its layer truncates its raft log (the file, sizes and checksums as evidence, as locally)
/// before it starts again (a verdict is reached: truncating a synced raft log may lose
/// acknowledged writes),
/// the layers' logs come back, and nothing is left on the hosts (no mount, no process, no
/// directory). A SIGKILLed controller leaves layers and mounts until `cleanup --run`. A
/// host without `/dev/fuse` is refused before anything starts.
#[test]
fn disk_faults_run_on_remote_hosts_through_a_layer_on_each() {
    let test = "disk_faults_run_on_remote_hosts_through_a_layer_on_each";
    if !ready(test) {
        return;
    }
    let hosts = SshHosts::start(3).unwrap_or_else(|e| panic!("starting the ssh hosts: {e}"));

    // A host without /dev/fuse (hidden in that host's own mount namespace by a plain file
    // bound over it): 69 naming the host and what it lacks, before any node starts, and
    // nothing left on the hosts.
    run_on(
        &hosts,
        "n2",
        "touch /tmp/no-fuse && mount --bind /tmp/no-fuse /dev/fuse && ! [ -c /dev/fuse ]",
    );
    let dir = hosts.dir().join("nofuse");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        campaign(
            &hosts,
            "remote-nofuse",
            "{clusterkv: {arch: raft}}",
            "3s",
            "  - {at: 1s, fault: disk-slow, target: n1, for: 1s}\n",
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let output = splitbrain_command(
        &hosts,
        &state,
        &[
            "run",
            file.to_str().unwrap(),
            "--results",
            dir.join("results").to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    run_on(
        &hosts,
        "n2",
        "umount /dev/fuse && rm /tmp/no-fuse && [ -c /dev/fuse ]",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(69), "{stderr}");
    let refusal = stderr
        .lines()
        .find(|l| l.contains("/dev/fuse"))
        .unwrap_or_else(|| panic!("no refusal naming /dev/fuse: {stderr}"));
    assert!(refusal.contains("host n2: "), "{refusal}");
    assert!(refusal.contains("n2: /dev/fuse"), "{refusal}");
    assert!(
        !refusal.contains("n1") && !refusal.contains("n3"),
        "{refusal}"
    );
    assert_eq!(leftovers(&hosts), Vec::<String>::new());
    let records: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(records.is_empty(), "run records left: {records:?}");

    let dir = hosts.dir().join("disk");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        campaign(
            &hosts,
            "remote-disk",
            "{clusterkv: {arch: raft}}",
            "6s",
            "  - {at: 1s, fault: disk-lose-unsynced, target: n2, for: 1s}\n\
             \x20 - {at: 2500ms, fault: disk-fsync-error, target: n3, for: 1s}\n\
             \x20 - {at: 4s, fault: disk-corrupt, target: n1, for: 1s}\n\
             \x20 corrupt: {styles: [truncate], files: raft-log.jsonl}\n",
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let started = Instant::now();
    let output = splitbrain_command(
        &hosts,
        &state,
        &[
            "run",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--seed",
            "7",
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    println!("remote-disk: run took {:?}\n{stdout}", started.elapsed());
    let run = run_dir(&results);
    for f in ["disk-fault", "disk-heal"] {
        for record in fault_records(&run, f) {
            println!("remote-disk: {f}: {}", record["value"]);
        }
    }
    // A verdict either way: truncating a raft log that was synced takes back entries the
    // node had acknowledged, which raft's safety assumes never happens, so a history with
    // lost acknowledged writes is a finding about the system, not a failure of the run.
    let verdict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    match output.status.code() {
        Some(0) => assert_eq!(verdict["verdict"], "valid", "{verdict:#}"),
        Some(1) => assert_eq!(verdict["verdict"], "invalid", "{verdict:#}"),
        other => panic!("exit {other:?}\n{stdout}\n{stderr}"),
    }
    let faults = fault_records(&run, "disk-fault");
    assert_eq!(faults.len(), 3, "{faults:#?}");
    for fault in &faults {
        assert_eq!(
            fault["value"]["effective"], true,
            "not in effect: {fault:#}"
        );
    }
    let lost = faults[0]["value"]["evidence"].to_string();
    assert!(
        lost.contains("n2: pid")
            && (lost.contains("SIGKILL") || lost.contains("cgroup.kill"))
            && lost.contains("gone"),
        "{lost}"
    );
    assert!(
        lost.contains("n2: dropped ") && lost.contains(" unsynced bytes of "),
        "{lost}"
    );
    let fsync = faults[1]["value"]["evidence"].to_string();
    assert!(fsync.contains("n3: syncs fail with EIO"), "{fsync}");
    // The corruption: n1 killed, then its layer cut its raft log, worded as locally.
    let corrupt = faults[2]["value"]["evidence"].to_string();
    assert!(
        corrupt.contains("n1: pid")
            && (corrupt.contains("SIGKILL") || corrupt.contains("cgroup.kill"))
            && corrupt.contains("gone"),
        "{corrupt}"
    );
    assert!(
        corrupt.contains("n1: raft-log.jsonl: truncate from ")
            && corrupt.contains(" bytes; fnv1a64 0x"),
        "{corrupt}"
    );
    let heals = fault_records(&run, "disk-heal");
    let healed = heals
        .iter()
        .map(|h| h["value"]["evidence"].to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(healed.contains("n2: started again as pid"), "{healed}");
    assert!(healed.contains("n3: healed; "), "{healed}");
    assert!(healed.contains("n1: started again as pid"), "{healed}");
    for node in ["n1", "n2", "n3"] {
        let log = run.join("nodes").join(node).join("disk.log");
        let text =
            std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        assert!(text.contains("mounted over"), "{node}: {text}");
        assert!(text.contains("unmounting"), "{node}: {text}");
    }
    assert_eq!(leftovers(&hosts), Vec::<String>::new());
    let records: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(records.is_empty(), "run records left: {records:?}");

    // SIGKILL with the layers mounted (a slow disk on n1 meanwhile): layers, mounts, nodes
    // and directories stay until `cleanup --run`, which removes them all.
    let dir = hosts.dir().join("disk-killed");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("campaign.yaml");
    std::fs::write(
        &file,
        campaign(
            &hosts,
            "disk-killed",
            "{clusterkv: {arch: raft}}",
            "60s",
            "  - {at: 500ms, fault: disk-slow, target: n1, delay: 20ms, for: 50s}\n",
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let results = dir.join("results");
    let mut child = spawn_run(&hosts, &file, &state, &results, false);
    // Three layers and three nodes: then the controller dies.
    wait_recorded(&state, "mount", 3, &mut child);
    let run = wait_recorded(&state, "process", 6, &mut child);
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let left = leftovers(&hosts);
    for host in ["n1", "n2", "n3"] {
        assert!(
            left.iter()
                .any(|l| l.starts_with(&format!("{host}: splitbrain-disk /tmp/splitbrain-"))),
            "{host}: a killed controller leaves its layer mounted: {left:?}"
        );
    }
    let output = splitbrain_command(&hosts, &state, &["cleanup", "--run", &run])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("disk layer mounts in"), "{stdout}");
    assert_eq!(leftovers(&hosts), Vec::<String>::new(), "{stdout}");
    assert!(!state.join(&run).exists(), "the run record is gone");
}
