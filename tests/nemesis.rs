//! The nemesis against real namespaces and processes: partitions cut and heal (both
//! backends), packet loss, pauses and kills through the runner with their history records,
//! undo on drop, clock skew seen by a clusterkv node, and the partition timing measurement.
//! Needs root; skips otherwise.

mod common;

use common::{have_nft, have_root};
use splitbrain::cluster::{Cluster, Deployment};
use splitbrain::nemesis::net::{self, NetBackend, Reach};
use splitbrain::nemesis::netlink::RouteWorkers;
use splitbrain::nemesis::partition::{self, Grudge, Shape};
use splitbrain::nemesis::schedule::{self, NemesisSpec};
use splitbrain::nemesis::{clock, packet, roles, Nemesis, NemesisContext};
use splitbrain::node::{Node, NodeConfig};
use splitbrain::recorder::Recorder;
use splitbrain::system::{Client, ClusterSpec, LaunchSpec, NodeSpec, Readiness, System};
use splitbrain::topology::{NodeNet, RunId, Topology};
use splitbrain_checkers::{EventType, History, Process, Value};
use std::io::Read;
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTEN_PORT: u16 = 7000;

/// A listener on `node`'s address inside its namespace, accepting until `stop` (at most
/// 60 s), so connects across the network can be tested.
fn listen_in(node: &NodeNet, stop: Arc<AtomicBool>) {
    let addr = SocketAddr::V4(SocketAddrV4::new(node.ip, LISTEN_PORT));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    splitbrain::netns::spawn_in(&node.netns, move || {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.read(&mut [0u8; 1]);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    })
    .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
}

/// Whether `from` can open a TCP connection to `to`'s listener (within 300 ms).
fn connects(from: &NodeNet, to: &NodeNet) -> bool {
    let addr = SocketAddr::V4(SocketAddrV4::new(to.ip, LISTEN_PORT));
    splitbrain::netns::spawn_in(&from.netns, move || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
    })
    .unwrap()
    .join()
    .unwrap()
}

fn node_names(t: &Topology) -> Vec<String> {
    t.nodes().iter().map(|n| n.name.clone()).collect()
}

fn cut_and_heal(backend: NetBackend, netlink: bool) {
    let topology = Topology::create(RunId::random(), 3).unwrap();
    let namespaces: Vec<String> = topology.nodes().iter().map(|n| n.netns.clone()).collect();
    let routes = netlink.then(|| RouteWorkers::start(&namespaces).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    for n in topology.nodes() {
        listen_in(n, stop.clone());
    }
    let [n1, n2, n3] = [0, 1, 2].map(|i| &topology.nodes()[i]);
    assert!(
        connects(n2, n1) && connects(n1, n3),
        "all connected before the cut"
    );

    // n1 alone against n2 and n3.
    let grudge = partition::isolate_node(&node_names(&topology), "n1");
    let cut = net::apply(backend, topology.nodes(), &grudge, routes.as_ref()).unwrap();
    assert!(!connects(n2, n1), "n2 -> n1 is cut");
    assert!(!connects(n1, n3), "n1 -> n3 is cut");
    assert!(
        connects(n2, n3) && connects(n3, n2),
        "within a side all work"
    );
    let probe = net::probe(n2, n1, Duration::from_millis(200)).unwrap();
    assert!(probe.is_blocked(), "{probe:?}");
    assert_eq!(
        net::probe(n2, n3, Duration::from_millis(200)).unwrap(),
        Reach::Reachable
    );

    net::heal(&cut, routes.as_ref()).unwrap();
    assert!(
        connects(n2, n1) && connects(n1, n2) && connects(n1, n3),
        "all work after heal"
    );
    // Healing twice is harmless.
    net::heal(&cut, routes.as_ref()).unwrap();
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn blackhole_partition_cuts_and_heals() {
    if !have_root("blackhole_partition_cuts_and_heals") {
        return;
    }
    cut_and_heal(NetBackend::Blackhole, false);
}

#[test]
fn blackhole_partition_through_netlink_cuts_and_heals() {
    if !have_root("blackhole_partition_through_netlink_cuts_and_heals") {
        return;
    }
    cut_and_heal(NetBackend::Blackhole, true);
}

#[test]
fn nftables_partition_cuts_and_heals() {
    if !have_root("nftables_partition_cuts_and_heals")
        || !have_nft("nftables_partition_cuts_and_heals")
    {
        return;
    }
    cut_and_heal(NetBackend::Nftables, false);
}

#[test]
fn total_loss_drops_everything_and_heals() {
    if !have_root("total_loss_drops_everything_and_heals")
        || !have_nft("total_loss_drops_everything_and_heals")
    {
        return;
    }
    let topology = Topology::create(RunId::random(), 2).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    for n in topology.nodes() {
        listen_in(n, stop.clone());
    }
    let (n1, n2) = (&topology.nodes()[0], &topology.nodes()[1]);
    packet::apply_loss(std::slice::from_ref(&n1.netns), 100).unwrap();
    assert!(
        !connects(n2, n1) && !connects(n1, n2),
        "100% loss at n1 cuts it both ways"
    );
    packet::heal_loss(std::slice::from_ref(&n1.netns)).unwrap();
    assert!(connects(n2, n1) && connects(n1, n2));
    stop.store(true, Ordering::Relaxed);
}

/// A system whose nodes are `sleep` processes: enough for process and network faults.
struct SleepSystem;

struct NoClient;

impl Client for NoClient {
    fn invoke<'a>(
        &'a mut self,
        _: &'a splitbrain::system::Request,
    ) -> splitbrain::system::BoxFuture<'a, splitbrain::system::Outcome> {
        Box::pin(async { splitbrain::system::Outcome::Fail("no client".into()) })
    }
}

impl System for SleepSystem {
    fn name(&self) -> &str {
        "sleep"
    }
    fn version(&self) -> anyhow::Result<String> {
        Ok("sleep".into())
    }
    fn launch(&self, _: &NodeSpec, _: &ClusterSpec) -> anyhow::Result<LaunchSpec> {
        Ok(LaunchSpec {
            program: "sleep".into(),
            args: vec!["120".into()],
            env: Vec::new(),
        })
    }
    fn readiness(&self, _: &NodeSpec) -> Readiness {
        Readiness::Command(LaunchSpec {
            program: "true".into(),
            args: Vec::new(),
            env: Vec::new(),
        })
    }
    fn client(&self, _: &NodeSpec, _: &ClusterSpec) -> anyhow::Result<Box<dyn Client>> {
        Ok(Box::new(NoClient))
    }
    fn role_query(
        &self,
        _cluster: &splitbrain::system::ClusterSpec,
    ) -> Option<Arc<dyn splitbrain::system::RoleQuery>> {
        None
    }
}

/// A cluster of `sleep` nodes with its directories under `dir`.
fn sleep_cluster(count: usize, dir: &Path) -> Arc<Deployment> {
    let topology = Topology::create(RunId::random(), count).unwrap();
    let system: Arc<dyn System> = Arc::new(SleepSystem);
    let spec = ClusterSpec {
        nodes: topology
            .nodes()
            .iter()
            .map(|n| NodeSpec {
                name: n.name.clone(),
                id: n.id,
                ip: n.ip,
                data_dir: dir.join(&n.name),
            })
            .collect(),
    };
    let nodes = spec
        .nodes
        .iter()
        .map(|n| {
            let config = NodeConfig::for_topology(
                &topology,
                &n.name,
                system.launch(n, &spec).unwrap(),
                system.readiness(n),
                n.data_dir.clone(),
                dir.join(&n.name),
            )
            .unwrap();
            let node = Node::start(config, None).unwrap();
            node.wait_ready(Duration::from_secs(10)).unwrap();
            node
        })
        .collect();
    Arc::new(Deployment::Cluster(Cluster {
        system,
        spec,
        nodes,
        disks: Default::default(),
        topology,
        network_ready_in: Duration::ZERO,
        nodes_ready_in: Duration::ZERO,
    }))
}

fn cluster(d: &Deployment) -> &Cluster {
    match d {
        Deployment::Cluster(c) => c,
        Deployment::InMemory(_) | Deployment::Remote(_) => unreachable!(),
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn nemesis_ops(h: &History) -> Vec<(EventType, String, Value)> {
    h.events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
        .map(|e| (e.kind, e.f.clone(), e.value.clone()))
        .collect()
}

fn blackhole_routes(ns: &str) -> String {
    let out = splitbrain::netns::run(ns, "ip", &["route", "show", "type", "blackhole"]).unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn runner_applies_records_and_undoes_a_timeline() {
    if !have_root("runner_applies_records_and_undoes_a_timeline") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deployment = sleep_cluster(3, dir.path());
    let recorder = Recorder::create(&dir.path().join("history.jsonl"), Instant::now()).unwrap();
    let spec: NemesisSpec = serde_yaml::from_str(
        "timeline:
  - {at: 100ms, fault: partition, shape: halves, for: 400ms}
  - {at: 150ms, fault: pause, target: n2, for: 400ms}
  - {at: 200ms, fault: kill, target: n3, for: 400ms}",
    )
    .unwrap();
    let nodes = deployment.node_names();
    let plan = schedule::plan(&spec, &nodes, 1, Duration::from_secs(5)).unwrap();
    let ctx = NemesisContext {
        deployment: deployment.clone(),
        recorder: recorder.clone(),
        backend: NetBackend::Blackhole,
        routes: None,
    };
    let nemesis = Nemesis::start(ctx, plan, Instant::now()).unwrap();
    let c = cluster(&deployment);
    // Mid-way, all three faults are in force.
    std::thread::sleep(Duration::from_millis(350));
    assert!(
        !blackhole_routes(&c.topology.nodes()[0].netns).is_empty(),
        "n1 has its routes"
    );
    assert!(
        c.nodes[1]
            .cgroup()
            .is_none_or(|cg| cg.events().unwrap().frozen),
        "n2 is frozen"
    );
    assert!(!c.nodes[2].is_running(), "n3 is killed");
    std::thread::sleep(Duration::from_millis(600));
    let report = nemesis.stop();
    assert!(report.undo_errors.is_empty(), "{:?}", report.undo_errors);
    assert_eq!(report.faults.len(), 3);
    assert!(
        report
            .faults
            .iter()
            .all(|f| f.error.is_none() && f.undo_us.is_some()),
        "{:?}",
        report.faults
    );
    // Everything undone.
    for n in c.topology.nodes() {
        assert_eq!(
            blackhole_routes(&n.netns),
            "",
            "{} has no routes left",
            n.name
        );
    }
    assert!(c.nodes.iter().all(|n| n.is_running() && !n.is_paused()));
    assert!(!c.nodes[1]
        .cgroup()
        .is_some_and(|cg| cg.events().unwrap().frozen));
    assert_eq!(c.nodes[2].generation(), 2, "n3 was started again");

    let history = recorder.finish().unwrap();
    let ops = nemesis_ops(&history);
    let fs: Vec<(EventType, &str)> = ops.iter().map(|(t, f, _)| (*t, f.as_str())).collect();
    use EventType::{Info, Invoke};
    assert_eq!(
        fs,
        vec![
            (Invoke, "start-partition"),
            (Info, "start-partition"),
            (Invoke, "pause"),
            (Info, "pause"),
            (Invoke, "kill"),
            (Info, "kill"),
            (Invoke, "stop-partition"),
            (Info, "stop-partition"),
            (Invoke, "resume"),
            (Info, "resume"),
            (Invoke, "start"),
            (Info, "start"),
        ]
    );
    let partition = &ops[1].2;
    assert!(field(partition, "took_us")
        .and_then(Value::as_int)
        .is_some());
    assert!(field(partition, "lateness_us")
        .and_then(Value::as_int)
        .is_some());
    let evidence = format!("{}", field(partition, "evidence").unwrap());
    assert!(
        evidence.contains("blocked") && evidence.contains("reachable"),
        "{evidence}"
    );
    let pause = format!("{}", ops[3].2);
    assert!(
        pause.contains("frozen 1") || pause.contains("SIGSTOP"),
        "{pause}"
    );
    let heal = format!("{}", ops[7].2);
    assert!(
        heal.contains("reachable") && !heal.contains("blocked"),
        "{heal}"
    );
}

#[test]
fn dropping_the_nemesis_mid_fault_undoes_everything() {
    if !have_root("dropping_the_nemesis_mid_fault_undoes_everything") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deployment = sleep_cluster(3, dir.path());
    let recorder = Recorder::create(&dir.path().join("history.jsonl"), Instant::now()).unwrap();
    let spec: NemesisSpec = serde_yaml::from_str(
        "timeline:
  - {at: 10ms, fault: partition, shape: isolate-one, for: 60s}
  - {at: 10ms, fault: pause, target: all, for: 60s}",
    )
    .unwrap();
    let plan =
        schedule::plan(&spec, &deployment.node_names(), 3, Duration::from_secs(120)).unwrap();
    let ctx = NemesisContext {
        deployment: deployment.clone(),
        recorder: recorder.clone(),
        backend: NetBackend::Blackhole,
        routes: None,
    };
    let nemesis = Nemesis::start(ctx, plan, Instant::now()).unwrap();
    let c = cluster(&deployment);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.nodes.iter().all(Node::is_paused) {
        assert!(Instant::now() < deadline, "faults never went in");
        std::thread::sleep(Duration::from_millis(5));
    }
    // As on an error or a panic in the runner: the guard goes out of scope.
    drop(nemesis);
    assert!(c.nodes.iter().all(|n| !n.is_paused()));
    for n in c.topology.nodes() {
        assert_eq!(blackhole_routes(&n.netns), "");
    }
    let history = recorder.finish().unwrap();
    let stops = nemesis_ops(&history)
        .iter()
        .filter(|(t, f, _)| *t == EventType::Info && (f == "stop-partition" || f == "resume"))
        .count();
    assert_eq!(stops, 2, "both undos are in the history");
}

/// `target/debug/clusterkv`, next to this test's `deps/` directory.
fn clusterkv_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("clusterkv");
    path.exists().then_some(path)
}

#[test]
fn a_clusterkv_node_reports_the_skewed_clock_and_keeps_serving() {
    let test = "a_clusterkv_node_reports_the_skewed_clock_and_keeps_serving";
    if !have_root(test) {
        return;
    }
    let Some(binary) = clusterkv_binary() else {
        common::skip(
            test,
            common::Need::Clusterkv,
            "clusterkv is not built (cargo build -p splitbrain-clusters)",
        );
        return;
    };
    let Ok(lib) = splitbrain::capability::find_libfaketime() else {
        common::skip(
            test,
            common::Need::Libfaketime,
            "libfaketime is not installed",
        );
        return;
    };
    clock::check_binary("n1", &binary).expect("clusterkv is skewable");
    let dir = tempfile::tempdir().unwrap();
    let topology = Topology::create(RunId::random(), 1).unwrap();
    let n = &topology.nodes()[0];
    let addr = SocketAddr::V4(SocketAddrV4::new(n.ip, LISTEN_PORT));
    let offset_file = dir.path().join(clock::OFFSET_FILE);
    clock::write_offset(&offset_file, 0).unwrap();
    let launch = LaunchSpec {
        program: binary,
        args: vec![
            "--arch".into(),
            "raft".into(),
            "--id".into(),
            "1".into(),
            "--listen".into(),
            addr.to_string(),
            "--peers".into(),
            format!("n1={addr}"),
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
        ],
        env: clock::faketime_env(Path::new(lib), &offset_file),
    };
    let config = NodeConfig::for_topology(
        &topology,
        "n1",
        launch,
        Readiness::TcpPort(addr),
        dir.path().join("data"),
        dir.path().to_owned(),
    )
    .unwrap();
    let node = Node::start(config, None).unwrap();
    node.wait_ready(Duration::from_secs(10)).unwrap();

    let query: Arc<dyn roles::RoleQuery> = Arc::new(splitbrain::system::clusterkv::ClusterKvRoles);
    let skew_ms = || {
        let s = roles::statuses(
            &query,
            topology.switch_netns(),
            &[("n1".into(), addr)],
            Duration::from_secs(2),
        );
        let t = s[0]
            .as_ref()
            .unwrap()
            .time_ms
            .expect("clusterkv reports time_ms") as i64;
        t - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    assert!(skew_ms().abs() < 1000, "no skew before the bump");
    clock::write_offset(&offset_file, 90_000).unwrap();
    let skew = skew_ms();
    assert!(
        (89_000..91_000).contains(&skew),
        "skew after a +90s bump: {skew}ms"
    );
    clock::write_offset(&offset_file, -30_000).unwrap();
    let skew = skew_ms();
    assert!(
        (-31_000..-29_000).contains(&skew),
        "skew after a -30s bump: {skew}ms"
    );
    // Still serving: a write and a read through the client protocol.
    let serve = splitbrain::netns::spawn_in(topology.switch_netns(), move || {
        use std::io::{BufRead, BufReader, Write};
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(
            b"{\"op\":\"write\",\"key\":\"k\",\"value\":7}\n{\"op\":\"read\",\"key\":\"k\"}\n",
        )
        .unwrap();
        let mut lines = BufReader::new(s).lines();
        (
            lines.next().unwrap().unwrap(),
            lines.next().unwrap().unwrap(),
        )
    })
    .unwrap()
    .join()
    .unwrap();
    assert!(serve.0.contains("\"ok\":true"), "{serve:?}");
    assert!(serve.1.contains("\"value\":7"), "{serve:?}");
    clock::write_offset(&offset_file, 0).unwrap();
    assert!(skew_ms().abs() < 1000, "reset");
    assert!(node.is_running() && node.unexpected_deaths() == 0);
}

#[test]
fn grudges_of_every_shape_apply_on_five_nodes() {
    if !have_root("grudges_of_every_shape_apply_on_five_nodes") {
        return;
    }
    let topology = Topology::create(RunId::random(), 5).unwrap();
    let names = node_names(&topology);
    let namespaces: Vec<String> = topology.nodes().iter().map(|n| n.netns.clone()).collect();
    let routes = Some(RouteWorkers::start(&namespaces).unwrap());
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
    for shape in Shape::ALL
        .into_iter()
        .filter(|s| *s != Shape::IsolateLeader)
    {
        let grudge: Grudge = partition::grudge(shape, &names, &mut rng).unwrap();
        let cut = net::apply(
            NetBackend::Blackhole,
            topology.nodes(),
            &grudge,
            routes.as_ref(),
        )
        .unwrap();
        let (s, r) = grudge.a_blocked_pair().unwrap();
        let from = topology.node(&s).unwrap();
        let to = topology.node(&r).unwrap();
        assert!(
            net::probe(from, to, Duration::from_millis(200))
                .unwrap()
                .is_blocked(),
            "{shape:?}"
        );
        net::heal(&cut, routes.as_ref()).unwrap();
        assert_eq!(
            net::probe(from, to, Duration::from_millis(200)).unwrap(),
            Reach::Reachable,
            "{shape:?}"
        );
    }
}

/// The fault records of a stored run's history (`history.jsonl`) for one `f`.
fn completed_faults(dir: &Path, f: &str) -> Vec<Value> {
    let read =
        splitbrain_checkers::formats::read_file(&dir.join("history.jsonl"), &Default::default())
            .unwrap();
    read.history
        .events
        .into_iter()
        .filter(|e| e.process == Process::Nemesis && e.kind == EventType::Info && e.f == f)
        .map(|e| e.value)
        .collect()
}

#[test]
fn a_clock_bump_bites_when_the_results_directory_is_relative() {
    let test = "a_clock_bump_bites_when_the_results_directory_is_relative";
    if !have_root(test) {
        return;
    }
    if clusterkv_binary().is_none() {
        println!("{test}: skipped: clusterkv is not built (cargo build -p splitbrain-clusters)");
        return;
    }
    if splitbrain::capability::find_libfaketime().is_err() {
        println!("{test}: skipped: libfaketime is not installed");
        return;
    }
    // A relative results root, as `--results` defaults to: resolved against the current
    // directory (the package root under cargo test), while each node runs in its own.
    let scratch = tempfile::tempdir_in("target").unwrap();
    let name = scratch.path().file_name().unwrap().to_string_lossy();
    let relative = PathBuf::from("target").join(&*name).join("results");
    assert!(relative.is_relative());
    let campaign = splitbrain::campaign::parse(
        "name: rel-clock\n\
         system: {clusterkv: {arch: raft}}\n\
         nodes: 1\n\
         workload: {kind: kv, concurrency: 2, rate: 50, duration: 3s, recovery: 0s}\n\
         nemesis:\n  timeline:\n  - {at: 500ms, fault: clock-bump, target: n1, offset: +40s, for: 1500ms}\n\
         checker: {min_ok_per_key: 1}\n",
        Path::new("rel-clock.yaml"),
    )
    .unwrap();
    let opts = splitbrain::run::RunOptions {
        results_root: relative.clone(),
        seed: Some(1),
        ..Default::default()
    };
    let report =
        splitbrain::run::run(&campaign, &opts, tokio_util::sync::CancellationToken::new()).unwrap();
    let bumps = completed_faults(&report.dir, "clock-bump");
    assert_eq!(bumps.len(), 1, "{bumps:?}");
    let observed = field(&bumps[0], "observed").cloned();
    let skew: Vec<i64> = match &observed {
        Some(Value::List(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::Str(s) => s
                    .strip_prefix("n1: ")?
                    .strip_suffix("ms")?
                    .trim_start_matches('+')
                    .parse()
                    .ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    assert!(
        skew.iter().any(|s| (39_000..41_000).contains(s)),
        "the node reports the +40s offset: {observed:?}"
    );
    assert_eq!(
        field(&bumps[0], "effective"),
        Some(&Value::Bool(true)),
        "{bumps:?}"
    );
    assert!(report.dir.is_absolute(), "{}", report.dir.display());
}

#[test]
fn isolating_the_leader_records_the_leader_change() {
    let test = "isolating_the_leader_records_the_leader_change";
    if !have_root(test) {
        return;
    }
    if clusterkv_binary().is_none() {
        println!("{test}: skipped: clusterkv is not built (cargo build -p splitbrain-clusters)");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let campaign = splitbrain::campaign::parse(
        "name: leader-change\n\
         system: {clusterkv: {arch: raft}}\n\
         nodes: 3\n\
         workload: {kind: kv, concurrency: 3, rate: 60, duration: 5s, recovery: 1s}\n\
         nemesis:\n  timeline:\n  - {at: 1s, fault: partition, shape: isolate-leader, for: 3s}\n\
         checker: {min_ok_per_key: 1}\n",
        Path::new("leader-change.yaml"),
    )
    .unwrap();
    let opts = splitbrain::run::RunOptions {
        results_root: root.path().to_owned(),
        seed: Some(2),
        ..Default::default()
    };
    let report =
        splitbrain::run::run(&campaign, &opts, tokio_util::sync::CancellationToken::new()).unwrap();
    let starts = completed_faults(&report.dir, "start-partition");
    let stops = completed_faults(&report.dir, "stop-partition");
    let roles = |v: &Value, k: &str| match field(v, k) {
        Some(Value::List(items)) => items.len(),
        _ => 0,
    };
    assert_eq!(roles(&starts[0], "roles_before"), 3, "{starts:?}");
    assert_eq!(roles(&stops[0], "roles_after"), 3, "{stops:?}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.dir.join("results.json")).unwrap())
            .unwrap();
    let evidence = results["faults"][0]["evidence"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        evidence.starts_with("leader: n") && evidence.ends_with("after heal: changed"),
        "{evidence}"
    );
    assert_eq!(results["leader_changes"], 1, "{}", report.summary);
    assert!(
        report.summary.contains("the leader changed across 1"),
        "{}",
        report.summary
    );
}
