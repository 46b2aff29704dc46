//! Node supervision: namespace, session and cgroup of a node process; pause, resume, kill,
//! stop, restart; readiness; unexpected deaths; cleanup after a crash. Needs root.

mod common;

use common::{have_root, ns_identity, process_state};
use splitbrain::cgroup::Cgroup;
use splitbrain::cleanup;
use splitbrain::netns;
use splitbrain::node::{Node, NodeConfig, NodeEvent, NodeEventKind};
use splitbrain::system::{LaunchSpec, Readiness};
use splitbrain::topology::{RunId, Topology};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Set in a child started from this test binary: it then acts as a node (see
/// `helper_node_process`).
const HELPER_ENV: &str = "SPLITBRAIN_TEST_NODE_LISTEN";

fn shell(script: &str) -> LaunchSpec {
    LaunchSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![],
    }
}

/// Ready once the node has written `started` to its stdout log (checked inside its namespace).
fn started_marker(log_dir: &Path) -> Readiness {
    Readiness::Command(LaunchSpec {
        program: "/bin/grep".into(),
        args: vec![
            "-q".into(),
            "started".into(),
            log_dir.join("stdout.log").display().to_string(),
        ],
        env: vec![],
    })
}

struct Fixture {
    // Field order: the node goes before the network.
    node: Node,
    events: UnboundedReceiver<NodeEvent>,
    topology: Topology,
    dir: tempfile::TempDir,
}

fn start_node(launch: LaunchSpec, use_cgroup: bool, readiness: Option<Readiness>) -> Fixture {
    let topology = Topology::create(RunId::random(), 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("n1");
    let readiness = readiness.unwrap_or_else(|| started_marker(&log_dir));
    let mut config = NodeConfig::for_topology(
        &topology,
        "n1",
        launch,
        readiness,
        log_dir.join("data"),
        log_dir,
    )
    .unwrap();
    if use_cgroup {
        assert!(
            config.cgroup.is_some(),
            "this machine has cgroup v2 with freeze and kill"
        );
    } else {
        config.cgroup = None;
    }
    let (sender, events) = tokio::sync::mpsc::unbounded_channel();
    let node = Node::start(config, Some(sender)).unwrap();
    Fixture {
        node,
        events,
        topology,
        dir,
    }
}

fn next_exit(events: &mut UnboundedReceiver<NodeEvent>) -> splitbrain::node::ExitReport {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match events.try_recv() {
            Ok(NodeEvent {
                kind: NodeEventKind::Exited(report),
                ..
            }) => return report,
            Ok(_) => {}
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("no exit event: {e}"),
        }
    }
}

fn data_dir(f: &Fixture) -> PathBuf {
    f.node.config().data_dir.clone()
}

#[test]
fn node_runs_in_its_namespace_session_and_cgroup() {
    if !have_root("node_runs_in_its_namespace_session_and_cgroup") {
        return;
    }
    let f = start_node(shell("echo started; exec sleep 1000"), true, None);
    f.node.wait_ready(Duration::from_secs(5)).unwrap();
    let pid = f.node.pid().unwrap();
    let node_ns = &f.topology.node("n1").unwrap().netns;
    assert_eq!(
        ns_identity(Path::new(&format!("/proc/{pid}/ns/net"))),
        ns_identity(&netns::path(node_ns))
    );
    assert_eq!(
        nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(pid)))
            .unwrap()
            .as_raw(),
        pid
    );
    assert_ne!(nix::unistd::getsid(None).unwrap().as_raw(), pid);
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let expected = format!("0::/splitbrain/{}/n1", f.topology.run());
    assert!(cgroup.lines().any(|l| l == expected), "{cgroup}");
    assert_eq!(f.node.cgroup().unwrap().procs().unwrap(), vec![pid]);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        data_dir(&f)
    );
}

#[test]
fn pause_resume_and_kill_through_the_cgroup() {
    if !have_root("pause_resume_and_kill_through_the_cgroup") {
        return;
    }
    let mut f = start_node(shell("echo started; exec sleep 1000"), true, None);
    f.node.wait_ready(Duration::from_secs(5)).unwrap();
    let pid = f.node.pid().unwrap();
    let cgroup = f.node.cgroup().unwrap().clone();

    f.node.pause().unwrap();
    assert!(cgroup.events().unwrap().frozen);
    assert!(f.node.is_paused());
    // The freezer shows a frozen task as sleeping, not stopped.
    assert_eq!(process_state(pid), Some('S'));
    f.node.resume().unwrap();
    assert!(!cgroup.events().unwrap().frozen);

    // Kill works on a frozen node as well.
    f.node.pause().unwrap();
    f.node.kill().unwrap();
    assert!(!f.node.is_running());
    assert!(!cgroup.events().unwrap().populated);
    assert!(!cgroup.events().unwrap().frozen || cgroup.procs().unwrap().is_empty());
    assert_eq!(process_state(pid), None, "the process is gone and reaped");
    let report = next_exit(&mut f.events);
    assert!(report.expected);
    assert_eq!(report.signal, Some(libc::SIGKILL));
    assert_eq!(f.node.unexpected_deaths(), 0);

    // Tearing down the run removes its cgroups too.
    let run_cgroup = cgroup.path().parent().unwrap().to_owned();
    drop(f);
    assert!(!cgroup.exists());
    assert!(!run_cgroup.exists());
}

#[test]
fn signal_fallback_without_cgroup() {
    if !have_root("signal_fallback_without_cgroup") {
        return;
    }
    let f = start_node(shell("echo started; exec sleep 1000"), false, None);
    f.node.wait_ready(Duration::from_secs(5)).unwrap();
    let pid = f.node.pid().unwrap();
    assert!(f.node.cgroup().is_none());
    f.node.pause().unwrap();
    assert_eq!(process_state(pid), Some('T'), "SIGSTOP shows as stopped");
    f.node.resume().unwrap();
    assert_ne!(process_state(pid), Some('T'));
    f.node.kill().unwrap();
    assert!(!f.node.is_running());
    assert_eq!(process_state(pid), None);
}

#[test]
fn stop_terminates_and_restart_keeps_the_data_directory() {
    if !have_root("stop_terminates_and_restart_keeps_the_data_directory") {
        return;
    }
    // Every start appends a line to a file in the data directory (the working directory).
    let mut f = start_node(
        shell("echo start >> starts; echo started; exec sleep 1000"),
        true,
        None,
    );
    f.node.wait_ready(Duration::from_secs(5)).unwrap();
    let first_pid = f.node.pid().unwrap();

    f.node.restart().unwrap();
    f.node.wait_ready(Duration::from_secs(5)).unwrap();
    assert_ne!(f.node.pid().unwrap(), first_pid);
    assert_eq!(f.node.generation(), 2);
    // Readiness looks at the appended stdout log, which already holds the first start's
    // marker; wait for the second start's own line instead.
    let starts_file = data_dir(&f).join("starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut starts = String::new();
    while std::time::Instant::now() < deadline {
        starts = std::fs::read_to_string(&starts_file).unwrap();
        if starts.lines().count() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        starts.lines().count(),
        2,
        "both starts used the same data directory"
    );

    f.node.stop(Duration::from_secs(5)).unwrap();
    assert!(!f.node.is_running());
    let killed = next_exit(&mut f.events);
    assert_eq!(killed.generation, 1);
    let stopped = next_exit(&mut f.events);
    assert!(stopped.expected);
    assert_eq!(stopped.signal, Some(libc::SIGTERM), "SIGTERM was enough");
    assert_eq!(f.node.unexpected_deaths(), 0);

    f.node.start_again().unwrap();
    assert!(f.node.is_running());
    assert_eq!(f.node.generation(), 3);
}

#[test]
fn an_unexpected_death_is_reported_with_the_log_tail() {
    if !have_root("an_unexpected_death_is_reported_with_the_log_tail") {
        return;
    }
    let script = "for i in $(seq 1 30); do echo line $i; done; echo started; echo 'fatal: disk on fire' >&2; sleep 0.3; exit 3";
    let mut f = start_node(shell(script), true, None);
    f.node.wait_ready(Duration::from_secs(5)).unwrap();
    let report = next_exit(&mut f.events);
    assert!(!report.expected);
    assert_eq!(report.code, Some(3));
    assert_eq!(report.stdout_tail.len(), splitbrain::node::LOG_TAIL_LINES);
    assert_eq!(report.stdout_tail.last().unwrap(), "started");
    assert_eq!(report.stderr_tail, vec!["fatal: disk on fire"]);
    assert!(report.to_string().contains("unexpectedly"));
    assert_eq!(f.node.unexpected_deaths(), 1);
    assert!(!f.node.is_running());
    assert_eq!(f.node.last_exit().unwrap().code, Some(3));
}

#[test]
fn a_node_that_dies_before_ready_fails_readiness_at_once() {
    if !have_root("a_node_that_dies_before_ready_fails_readiness_at_once") {
        return;
    }
    let f = start_node(shell("echo 'bad flag' >&2; exit 2"), true, None);
    let started = std::time::Instant::now();
    let err = f.node.wait_ready(Duration::from_secs(10)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("bad flag"), "{err}");
}

/// Not a test of its own: the body of a node process started from this binary.
#[test]
fn helper_node_process() {
    let Ok(addr) = std::env::var(HELPER_ENV) else {
        return;
    };
    let listener = TcpListener::bind(addr.parse::<SocketAddr>().unwrap()).unwrap();
    println!("listening on {addr}");
    listener.set_nonblocking(true).unwrap();
    // Bounded: a node that nobody kills still goes away.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let _ = listener.accept();
        std::thread::sleep(Duration::from_millis(10));
    }
    std::process::exit(0);
}

#[test]
fn tcp_readiness_is_checked_from_the_cluster_network() {
    if !have_root("tcp_readiness_is_checked_from_the_cluster_network") {
        return;
    }
    let addr = SocketAddr::from((splitbrain::topology::node_ip(1), 7100));
    let launch = LaunchSpec {
        program: std::env::current_exe().unwrap(),
        args: vec![
            "helper_node_process".into(),
            "--exact".into(),
            "--nocapture".into(),
        ],
        env: vec![(HELPER_ENV.into(), addr.to_string())],
    };
    let f = start_node(launch, true, Some(Readiness::TcpPort(addr)));
    let waited = f.node.wait_ready(Duration::from_secs(10)).unwrap();
    assert!(waited < Duration::from_secs(10));

    // A port nobody listens on is not ready, and the wait ends at its deadline.
    let g = start_node(
        shell("exec sleep 1000"),
        true,
        Some(Readiness::TcpPort(SocketAddr::from((
            splitbrain::topology::node_ip(1),
            7101,
        )))),
    );
    let started = std::time::Instant::now();
    let err = g.node.wait_ready(Duration::from_millis(300)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains("not ready"), "{err}");
}

#[test]
fn cleanup_after_a_crashed_run_leaves_nothing() {
    if !have_root("cleanup_after_a_crashed_run_leaves_nothing") {
        return;
    }
    let f = start_node(shell("echo started; exec sleep 1000"), true, None);
    f.node.wait_ready(Duration::from_secs(5)).unwrap();
    f.node.pause().unwrap();
    let run = f.topology.run().clone();
    let pid = f.node.pid().unwrap();
    let cgroup_path = f.node.cgroup().unwrap().path().to_owned();
    let run_cgroup = cgroup_path.parent().unwrap().to_owned();
    let namespaces = f.topology.plan().all_netns();
    // Simulate a crash: no destructor runs.
    let Fixture {
        node,
        topology,
        dir,
        events,
    } = f;
    std::mem::forget(node);
    std::mem::forget(topology);

    let report = cleanup::cleanup_run(&run);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        report
            .removed
            .iter()
            .any(|l| l.contains(&format!("{run}/n1"))),
        "{:?}",
        report.removed
    );
    assert!(!Cgroup::at(&cgroup_path).exists());
    assert!(!run_cgroup.exists());
    assert!(namespaces.iter().all(|ns| !netns::exists(ns)));
    // The frozen process was killed (the forgotten watcher reaps it).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while process_state(pid).is_some() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(process_state(pid), None);
    assert!(cleanup::cleanup_run(&run).is_clean());
    drop((dir, events));
}
