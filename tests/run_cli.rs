//! `run`'s and `report`'s command line: what is a usage error (64), what is missing (66),
//! what cannot be created (73). No privileges needed: an in-memory campaign.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MEM_KV: &str = "name: mem-cli\nsystem: {in-memory: {}}\nworkload: {kind: kv, concurrency: 2, \
     group_size: 2, ops_per_key: 10, duration: 1s, max_ops: 50, recovery: 0s}\nchecker: {min_ok_per_key: 1}\n";

fn splitbrain(args: &[&str], extra: &[&Path]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_splitbrain"));
    command.args(args).args(extra);
    command.output().unwrap()
}

fn write_campaign(dir: &Path) -> PathBuf {
    let path = dir.join("mem-cli.yaml");
    std::fs::write(&path, MEM_KV).unwrap();
    path
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_absurd_time_limit_is_a_usage_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_campaign(dir.path());
    for limit in ["500000000000y", "99999999", "8d"] {
        let out = splitbrain(
            &["run", "--time-limit", limit, "--results"],
            &[dir.path(), &file],
        );
        assert_eq!(out.status.code(), Some(64), "{limit}: {}", text(&out));
        assert!(
            text(&out).contains("out of range"),
            "{limit}: {}",
            text(&out)
        );
    }
}

#[test]
fn a_test_count_of_zero_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_campaign(dir.path());
    let out = splitbrain(
        &["run", "--test-count", "0", "--results"],
        &[dir.path(), &file],
    );
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
}

#[test]
fn a_results_directory_that_cannot_be_created_is_73() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_campaign(dir.path());
    // A file where the results directory should be.
    let out = splitbrain(&["run", "--results"], &[&file, &file]);
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
    assert!(
        text(&out).contains("cannot create the run directory"),
        "{}",
        text(&out)
    );
    let out = splitbrain(&["run", "--results", "/proc/nope"], &[&file]);
    assert_eq!(out.status.code(), Some(73), "{}", text(&out));
}

#[test]
fn a_results_directory_without_permission_is_77() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let file = write_campaign(dir.path());
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_splitbrain"));
    command
        .arg("run")
        .arg(&file)
        .arg("--results")
        .arg(locked.join("results"));
    if nix::unistd::geteuid().is_root() {
        // Root ignores modes: run as nobody, which may read the campaign but not write.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        command.uid(65534).gid(65534);
    }
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(77), "{}", text(&out));
}

#[test]
fn a_missing_campaign_file_or_results_directory_is_missing_input_66() {
    let dir = tempfile::tempdir().unwrap();
    let out = splitbrain(&["run"], &[&dir.path().join("missing.yaml")]);
    assert_eq!(out.status.code(), Some(66), "{}", text(&out));
    let out = splitbrain(&["report"], &[&dir.path().join("missing")]);
    assert_eq!(out.status.code(), Some(66), "{}", text(&out));
}

#[test]
fn a_second_signal_abandons_the_check_promptly_and_the_run_is_unknown() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("busy.yaml");
    std::fs::write(
        &campaign,
        "name: busy\nsystem: {in-memory: {}}\n\
         workload: {kind: cas-register, concurrency: 20, duration: 20s, max_ops: 10000000}\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    let mut child = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .arg("run")
        .arg(&campaign)
        .arg("--results")
        .arg(&results)
        .arg("--quiet")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    std::thread::sleep(Duration::from_secs(3));
    kill(pid, Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let second = Instant::now();
    let still_running = child.try_wait().unwrap().is_none();
    kill(pid, Signal::SIGINT).unwrap();
    let deadline = second + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still checking 60 s after the second signal"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = second.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    println!(
        "exit {:?} after the second signal (still running then: {still_running})",
        took
    );
    // Checking the history fully takes minutes in a debug build; what is left after the
    // second signal (the summary, results.json, history.edn, report.html) takes seconds.
    assert!(
        !still_running || took < Duration::from_secs(30),
        "{took:?} after the second signal: {stderr}"
    );
    let run = std::fs::read_dir(results.join("busy"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(doc["interrupted"], true);
    assert_eq!(doc["verdict"], "unknown", "{stderr}");
    assert_eq!(doc["cause"], "interrupted");
}

/// `splitbrain run … | head -1`, or a log shipper that went away: the run's output has no
/// reader, yet its exit code is still the verdict's (printing must not panic, 101), for
/// standard output and standard error alike.
#[test]
fn closed_output_pipes_leave_the_exit_code_to_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = write_campaign(dir.path());
    let closed = || {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        std::process::Stdio::from(write)
    };
    for (name, stdout_closed) in [("stdout", true), ("stderr", false)] {
        let (stdout, stderr) = if stdout_closed {
            (closed(), std::process::Stdio::null())
        } else {
            (std::process::Stdio::null(), closed())
        };
        let status = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
            .arg("run")
            .arg(&campaign)
            .arg("--results")
            .arg(dir.path().join("results"))
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0), "{name} closed: {status}");
    }
}
