//! `splitbrain run` against a real cluster in namespaces, interrupted: Ctrl-C and SIGTERM
//! leave nothing behind and the history so far is checkable; after a SIGKILL of the
//! controller, `splitbrain cleanup --run ID` removes what it left.
//!
//! Needs root and the `clusterkv` binary (built by `cargo test --workspace`); without them
//! each test prints why it skips.

mod common;

use common::{skip, Need};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SPLITBRAIN: &str = env!("CARGO_BIN_EXE_splitbrain");

fn skip_reason() -> Option<(Need, String)> {
    if !nix::unistd::geteuid().is_root() {
        return Some((
            Need::Root,
            "needs root (network namespaces, cgroups)".into(),
        ));
    }
    let clusterkv = splitbrain::system::clusterkv::locate_binary();
    if !clusterkv.is_file() && which("clusterkv").is_none() {
        return Some((
            Need::Clusterkv,
            format!(
                "clusterkv binary not built ({}); run `cargo test --workspace`",
                clusterkv.display()
            ),
        ));
    }
    None
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Starts a long raft run writing under `results`.
fn start_run(results: &Path) -> Child {
    start_run_recording_in(results, None)
}

/// Starts a long raft run writing under `results`, its run record in `state_dir` (the
/// default one when `None`).
fn start_run_recording_in(results: &Path, state_dir: Option<&Path>) -> Child {
    start_run_with(results, state_dir, Stdio::null())
}

/// Starts a long raft run writing under `results`, its standard error going to `stderr`.
fn start_run_with(results: &Path, state_dir: Option<&Path>, stderr: Stdio) -> Child {
    let campaign = results.join("campaign.yaml");
    std::fs::write(
        &campaign,
        "name: interrupt\nsystem: {clusterkv: {arch: raft}}\nnodes: 3\n\
         workload: {kind: kv, concurrency: 4, rate: 200, duration: 120s, timeout: 500ms}\n",
    )
    .unwrap();
    let mut command = Command::new(SPLITBRAIN);
    command
        .arg("run")
        .arg(&campaign)
        .arg("--results")
        .arg(results)
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some(dir) = state_dir {
        command.env(STATE_DIR_ENV, dir);
    }
    command.spawn().unwrap()
}

const STATE_DIR_ENV: &str = splitbrain::cleanup::STATE_DIR_ENV;

/// Runs `splitbrain cleanup ARGS` with its run records in `state_dir`.
fn cleanup_with(state_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(SPLITBRAIN)
        .arg("cleanup")
        .args(args)
        .env(STATE_DIR_ENV, state_dir)
        .output()
        .unwrap()
}

/// Waits until the run has recorded `lines` history lines; returns its directory.
fn wait_for_history(results: &Path, lines: usize) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dir = std::fs::read_dir(results.join("interrupt"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path());
        if let Some(dir) = dir {
            let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap_or_default();
            if text.lines().count() >= lines {
                return dir;
            }
        }
        assert!(Instant::now() < deadline, "the run recorded no history");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_id(dir: &Path) -> String {
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("environment.json")).unwrap())
            .unwrap();
    env["run_id"].as_str().unwrap().to_owned()
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the controller did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What of run `id` still exists: namespaces, cgroups, processes started for it.
fn leftovers(id: &str, results: &Path) -> Vec<String> {
    let mut left = Vec::new();
    for ns in splitbrain::netns::list().unwrap_or_default() {
        if ns.starts_with(&format!("sb-{id}-")) {
            left.push(format!("namespace {ns}"));
        }
    }
    if let Ok(root) = splitbrain::cgroup::harness_root() {
        if root.join(id).exists() {
            left.push(format!("cgroup {}", root.join(id).display()));
        }
    }
    // Node processes name their data directory, which lies under `results`.
    let marker = results.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&marker) && !cmdline.contains(SPLITBRAIN) {
            left.push(format!(
                "process {}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    left
}

fn assert_history_checkable(dir: &Path) {
    let status = Command::new(SPLITBRAIN)
        .args(["check", "--model", "kv"])
        .arg(dir.join("history.jsonl"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        matches!(status.code(), Some(0..=2)),
        "history not checkable: {status}"
    );
}

fn interrupt_with(test: &str, signal: Signal) {
    interrupt_with_stderr(test, signal, Stdio::null());
}

fn interrupt_with_stderr(test: &str, signal: Signal, stderr: Stdio) {
    if let Some((need, why)) = skip_reason() {
        skip(test, need, why);
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let mut child = start_run_with(results.path(), None, stderr);
    let dir = wait_for_history(results.path(), 40);
    let id = run_id(&dir);
    assert!(
        !leftovers(&id, results.path()).is_empty(),
        "the run is live: its namespaces exist"
    );
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let left = leftovers(&id, results.path());
    assert!(left.is_empty(), "left behind after {signal}: {left:?}");
    assert_eq!(status.code(), Some(130), "exit status after {signal}");
    assert_history_checkable(&dir);
    assert!(
        dir.join("summary.txt").is_file(),
        "interrupted runs are still checked"
    );
}

#[test]
fn ctrl_c_cleans_up_and_keeps_a_checkable_history() {
    interrupt_with(
        "ctrl_c_cleans_up_and_keeps_a_checkable_history",
        Signal::SIGINT,
    );
}

/// A controller whose stderr is gone (its reader closed: the shell that started it killed,
/// a pipe to a pager quit) still stops on Ctrl-C: saying so cannot fail the signal handler.
#[test]
fn ctrl_c_stops_the_run_when_stderr_is_a_closed_pipe() {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    interrupt_with_stderr(
        "ctrl_c_stops_the_run_when_stderr_is_a_closed_pipe",
        Signal::SIGINT,
        Stdio::from(write),
    );
}

#[test]
fn sigterm_cleans_up_and_keeps_a_checkable_history() {
    interrupt_with(
        "sigterm_cleans_up_and_keeps_a_checkable_history",
        Signal::SIGTERM,
    );
}

#[test]
fn after_sigkill_cleanup_removes_everything() {
    if let Some((need, why)) = skip_reason() {
        skip("after_sigkill_cleanup_removes_everything", need, why);
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let mut child = start_run(results.path());
    let dir = wait_for_history(results.path(), 40);
    let id = run_id(&dir);
    child.kill().unwrap();
    child.wait().unwrap();
    // The nodes live in their own sessions and cgroups: they outlive the controller.
    let left = leftovers(&id, results.path());
    assert!(
        left.iter().any(|l| l.starts_with("namespace")),
        "expected the dead controller's cluster to be left: {left:?}"
    );
    let out = Command::new(SPLITBRAIN)
        .args(["cleanup", "--run", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "cleanup failed: {out:?}");
    let left = leftovers(&id, results.path());
    assert!(left.is_empty(), "left behind after cleanup: {left:?}");
    // What was recorded up to the kill is a readable, checkable history.
    assert_history_checkable(&dir);
}

#[test]
fn a_node_that_cannot_start_fails_the_run_and_leaves_nothing() {
    if !nix::unistd::geteuid().is_root() {
        skip(
            "a_node_that_cannot_start_fails_the_run_and_leaves_nothing",
            Need::Root,
            "needs root (network namespaces, cgroups)",
        );
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let campaign = results.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        "name: broken\nsystem:\n  command:\n    node: {program: /bin/false, port: 7000, readiness: {tcp_port: 7000}}\n    \
         client: {program: /bin/cat, args: []}\nnodes: 3\nworkload: {kind: kv, duration: 5s}\n",
    )
    .unwrap();
    let out = Command::new(SPLITBRAIN)
        .arg("run")
        .arg(&campaign)
        .arg("--results")
        .arg(results.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("n1") || stderr.contains("exit"), "{stderr}");
    let dir = std::fs::read_dir(results.path().join("broken"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let id = run_id(&dir);
    let left = leftovers(&id, results.path());
    assert!(
        left.is_empty(),
        "left behind after a failed start: {left:?}"
    );
}

#[test]
fn a_node_that_dies_by_itself_is_reported_with_its_log() {
    if !nix::unistd::geteuid().is_root() {
        skip(
            "a_node_that_dies_by_itself_is_reported_with_its_log",
            Need::Root,
            "needs root (network namespaces, cgroups)",
        );
        return;
    }
    let results = tempfile::tempdir().unwrap();
    // A client that answers every request with ok (reads see nil).
    let client = results.path().join("client.sh");
    std::fs::write(
        &client,
        "while read -r line; do echo '{\"type\":\"ok\",\"value\":null}'; done\n",
    )
    .unwrap();
    let campaign = results.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        format!(
            "name: crash\nsystem:\n  command:\n    node:\n      program: /bin/sh\n      \
             args: ['-c', 'sleep 2; echo about to fail >&2; exit 3']\n      port: 7000\n      \
             readiness: {{command: ['true']}}\n    client: {{program: /bin/sh, args: ['{}']}}\n\
             nodes: 1\nworkload: {{kind: register, concurrency: 1, rate: 20, duration: 4s, \
             recovery: 0s, final_reads: false}}\n",
            client.display()
        ),
    )
    .unwrap();
    let out = Command::new(SPLITBRAIN)
        .arg("run")
        .arg(&campaign)
        .arg("--results")
        .arg(results.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exit code 3 unexpectedly"), "{stderr}");
    assert!(stdout.contains("node crashes: 1"), "{stdout}");
    assert!(
        stdout.contains("about to fail"),
        "the log tail is shown: {stdout}"
    );
}

#[test]
fn a_panic_while_the_cluster_runs_leaves_nothing_behind() {
    if let Some((need, why)) = skip_reason() {
        skip(
            "a_panic_while_the_cluster_runs_leaves_nothing_behind",
            need,
            why,
        );
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let campaign = splitbrain::campaign::parse(
        "name: panic\nsystem: {clusterkv: {arch: raft}}\nnodes: 3\nworkload: {kind: kv}\n",
        Path::new("panic.yaml"),
    )
    .unwrap();
    let run = splitbrain::topology::RunId::random();
    let id = run.as_str().to_owned();
    let dir = results.path().to_owned();
    // What a run holds while its clients work; a panic unwinds through it.
    let outcome = std::panic::catch_unwind(move || {
        let system = splitbrain::system::system_for(&campaign.system).unwrap();
        let deployment =
            splitbrain::run::deploy(&campaign, Some(system.into()), &run, &dir, None).unwrap();
        assert!(!deployment.node_names().is_empty());
        panic!("a bug in the controller");
    });
    assert!(outcome.is_err());
    let left = leftovers(&id, results.path());
    assert!(left.is_empty(), "left behind after a panic: {left:?}");
}

#[test]
fn ctrl_c_during_the_final_check_is_recorded_as_an_interruption() {
    // The in-memory system needs no privileges; 200,000 operations on one register take
    // the checker seconds, long enough to be interrupted in the middle.
    let results = tempfile::tempdir().unwrap();
    let campaign = results.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        "name: slowcheck\nsystem: {in-memory: {}}\n\
         workload: {kind: register, concurrency: 20, duration: 20s, max_ops: 200000, recovery: 0s}\n",
    )
    .unwrap();
    let stderr_path = results.path().join("stderr.txt");
    let mut child = Command::new(SPLITBRAIN)
        .arg("run")
        .arg(&campaign)
        .arg("--results")
        .arg(results.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        if stderr.contains("checking the history") {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended before its check was interrupted ({status}): {stderr}");
        }
        assert!(Instant::now() < deadline, "the run never reached its check");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let dir = std::fs::read_dir(results.path().join("slowcheck"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        doc["interrupted"], true,
        "results.json tells how the run ended"
    );
    assert_eq!(
        doc["verdict"], "unknown",
        "an abandoned search decides nothing"
    );
}

/// A namespace made by hand, with a process in it; removed again when dropped.
struct HandMadeNamespace {
    name: String,
    process: Child,
}

impl HandMadeNamespace {
    fn create(name: &str) -> Self {
        let mut batch = splitbrain::netns::IpBatch::new(None);
        batch.line(format!("netns add {name}"));
        splitbrain::netns::ip_batch(&batch).unwrap();
        let process = splitbrain::netns::command(name, "sleep")
            .unwrap()
            .arg("120")
            .spawn()
            .unwrap();
        HandMadeNamespace {
            name: name.to_owned(),
            process,
        }
    }

    fn is_intact(&mut self) -> bool {
        splitbrain::netns::exists(&self.name) && self.process.try_wait().unwrap().is_none()
    }
}

impl Drop for HandMadeNamespace {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let _ = splitbrain::netns::delete(std::slice::from_ref(&self.name));
    }
}

#[test]
fn look_alike_namespaces_and_their_processes_survive_cleanup() {
    if !common::have_root("look_alike_namespaces_and_their_processes_survive_cleanup") {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    // Names a run of ours could have had (`sb-<id>-<node>`), made by someone else.
    let mut vpn = HandMadeNamespace::create("sb-lab-vpn");
    let mut foo = HandMadeNamespace::create("sb-foo-bar");
    // A namespace file whose name carries a second `ip` command after a line break.
    let injected = "sb-zq7h2-injected";
    let trap =
        Path::new(splitbrain::netns::NETNS_DIR).join(format!("sb-zq7h2-n1\nnetns add {injected}"));
    std::fs::write(&trap, b"").unwrap();

    let mut outputs = Vec::new();
    for args in [
        &[][..],
        &["--run", "lab"],
        &["--run", "foo"],
        &["--run", "zq7h2"],
    ] {
        let out = cleanup_with(state.path(), args);
        assert!(out.status.success(), "cleanup {args:?}: {out:?}");
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let injected_exists = splitbrain::netns::exists(injected);
    let _ = std::fs::remove_file(&trap);
    if injected_exists {
        let _ = splitbrain::netns::delete(&[injected.to_owned()]);
    }
    assert!(
        vpn.is_intact(),
        "sb-lab-vpn or its process was removed: {outputs:?}"
    );
    assert!(
        foo.is_intact(),
        "sb-foo-bar or its process was removed: {outputs:?}"
    );
    assert!(!injected_exists, "cleanup ran a command smuggled in a name");
    assert!(
        outputs.iter().all(|o| o.trim() == "nothing to clean up"),
        "{outputs:?}"
    );
}

#[test]
fn cleanup_leaves_a_live_run_alone_and_removes_it_once_its_controller_is_killed() {
    if let Some((need, why)) = skip_reason() {
        skip(
            "cleanup_leaves_a_live_run_alone_and_removes_it_once_its_controller_is_killed",
            need,
            why,
        );
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut child = start_run_recording_in(results.path(), Some(state.path()));
    let dir = wait_for_history(results.path(), 40);
    let id = run_id(&dir);
    let record = state.path().join(&id);
    let recorded = std::fs::read_to_string(record.join("resources")).unwrap();
    assert!(
        recorded.contains(&format!("netns sb-{id}-n1")) && recorded.contains("cgroup "),
        "the run records what it makes: {recorded}"
    );
    // The controller lives: neither form of cleanup touches the run.
    for args in [vec![], vec!["--run", id.as_str()]] {
        let out = cleanup_with(state.path(), &args);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("left alone: run {id}")),
            "cleanup {args:?}: {stdout}"
        );
        assert!(!stdout.contains("removed"), "cleanup {args:?}: {stdout}");
    }
    let left = leftovers(&id, results.path());
    assert!(
        left.iter().filter(|l| l.starts_with("namespace")).count() == 4
            && left.iter().any(|l| l.starts_with("cgroup"))
            && left.iter().any(|l| l.starts_with("process")),
        "the live run lost something to cleanup: {left:?}"
    );
    assert!(child.try_wait().unwrap().is_none(), "the run still runs");
    // Killed, its controller is gone: now everything it recorded is removed, and the record.
    child.kill().unwrap();
    child.wait().unwrap();
    let out = cleanup_with(state.path(), &[]);
    assert!(out.status.success(), "{out:?}");
    let left = leftovers(&id, results.path());
    assert!(left.is_empty(), "left behind after cleanup: {left:?}");
    assert!(!record.exists(), "the record is removed with what it names");
    assert_history_checkable(&dir);
}

#[test]
fn a_run_that_ends_cleanly_removes_its_record() {
    if !common::have_root("a_run_that_ends_cleanly_removes_its_record") {
        return;
    }
    let run = splitbrain::topology::RunId::random();
    let record = splitbrain::cleanup::state_dir().join(run.as_str());
    let topology = splitbrain::topology::Topology::create(run.clone(), 2).unwrap();
    let text = std::fs::read_to_string(record.join("resources")).unwrap();
    for ns in topology.plan().all_netns() {
        assert!(
            text.contains(&format!("netns {ns}\n")),
            "{ns} recorded: {text}"
        );
    }
    drop(topology);
    assert!(!record.exists(), "record of a cleanly ended run is removed");
}

#[test]
fn result_files_and_directories_get_their_modes_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let tmp = tempfile::tempdir().unwrap();
    let campaign = tmp.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        "name: modes\nsystem: {in-memory: {}}\n\
         workload: {kind: kv, concurrency: 2, duration: 1s, max_ops: 200, recovery: 0s}\n\
         checker: {min_ok_per_key: 1}\n",
    )
    .unwrap();
    let results = tmp.path().join("results");
    let mut command = Command::new(SPLITBRAIN);
    command
        .arg("run")
        .arg(&campaign)
        .arg("--results")
        .arg(&results)
        .arg("--quiet")
        .stdout(Stdio::null());
    // SAFETY: umask is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let status = command.status().unwrap();
    assert!(matches!(status.code(), Some(0..=2)), "{status}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = std::fs::read_dir(results.join("modes"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for d in [results.clone(), results.join("modes"), dir.clone()] {
        assert_eq!(mode(&d), 0o755, "{}", d.display());
    }
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o644, "{}", path.display());
            files += 1;
        }
    }
    assert!(
        files >= 8,
        "campaign, environment, history, report files: {files}"
    );
}

#[test]
fn node_directories_and_logs_get_their_modes_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if let Some((need, why)) = skip_reason() {
        skip(
            "node_directories_and_logs_get_their_modes_whatever_the_umask",
            need,
            &why,
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let campaign = tmp.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        "name: node-modes\nsystem: {clusterkv: {arch: raft}}\nnodes: 1\n\
         workload: {kind: kv, concurrency: 2, duration: 1s, max_ops: 100, recovery: 0s}\n\
         checker: {min_ok_per_key: 1}\n",
    )
    .unwrap();
    let results = tmp.path().join("results");
    let mut command = Command::new(SPLITBRAIN);
    command
        .arg("run")
        .arg(&campaign)
        .arg("--results")
        .arg(&results)
        .arg("--quiet")
        .stdout(Stdio::null());
    // SAFETY: umask is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let status = command.status().unwrap();
    assert!(matches!(status.code(), Some(0..=2)), "{status}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = std::fs::read_dir(results.join("node-modes"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let node = dir.join("nodes").join("n1");
    for d in [dir.join("nodes"), node.clone(), node.join("data")] {
        assert_eq!(mode(&d), 0o755, "{}", d.display());
    }
    for f in [node.join("stdout.log"), node.join("stderr.log")] {
        assert_eq!(mode(&f), 0o644, "{}", f.display());
    }
}

#[test]
fn a_record_with_refused_lines_is_kept_and_cleanup_says_so_as_an_error() {
    if !common::have_root("a_record_with_refused_lines_is_kept_and_cleanup_says_so_as_an_error") {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let run = splitbrain::topology::RunId::random();
    let record = state.path().join(run.as_str());
    std::fs::create_dir_all(&record).unwrap();
    std::fs::write(
        record.join("resources"),
        "netns sb-x y\ncgroup ../../system.slice\n",
    )
    .unwrap();
    let out = cleanup_with(state.path(), &["--run", run.as_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(70), "{stderr}");
    assert!(record.join("resources").exists(), "kept: {stderr}");
    assert!(!stderr.contains("(ignored)"), "{stderr}");
    assert!(stderr.contains("refused line"), "{stderr}");
}
