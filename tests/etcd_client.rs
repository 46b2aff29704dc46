//! The etcd system and its gateway client against a real 3-node etcd cluster on loopback.
//!
//! Skipped (with a message) when no `etcd` binary is installed.

mod common;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use splitbrain::system::etcd::{
    measure_raw_rate, EtcdClient, EtcdClientOptions, EtcdPorts, EtcdSystem, RawLoopLimits,
};
use splitbrain::system::{ClusterSpec, Function, NodeSpec, Outcome, Readiness, Request, System};
use splitbrain_checkers::Value;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn etcd_installed() -> bool {
    Command::new("etcd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Distinct free loopback ports, found by binding port 0 (all held until every one is
/// picked, so none repeats).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A real etcd cluster on loopback; every member is SIGKILLed when it is dropped, also
/// when a test panics.
struct LocalCluster {
    system: EtcdSystem,
    spec: ClusterSpec,
    members: Vec<Child>,
    dir: tempfile::TempDir,
}

impl LocalCluster {
    fn start(size: usize) -> LocalCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = free_ports(size * 2);
        let mut system = EtcdSystem {
            cluster_token: format!("test-{}", std::process::id()),
            ..EtcdSystem::default()
        };
        let mut nodes = Vec::new();
        for id in 1..=size {
            let name = format!("n{id}");
            system = system.with_node_ports(
                &name,
                EtcdPorts {
                    client: ports[2 * (id - 1)],
                    peer: ports[2 * (id - 1) + 1],
                },
            );
            nodes.push(NodeSpec {
                name: name.clone(),
                id,
                ip: Ipv4Addr::LOCALHOST,
                data_dir: dir.path().join(&name),
            });
        }
        let spec = ClusterSpec { nodes };
        let mut cluster = LocalCluster {
            system,
            spec,
            members: Vec::new(),
            dir,
        };
        for node in cluster.spec.nodes.clone() {
            let launch = cluster.system.launch(&node, &cluster.spec).unwrap();
            let log = std::fs::File::create(cluster.log_path(&node.name)).unwrap();
            let child = Command::new(&launch.program)
                .args(&launch.args)
                .envs(launch.env.iter().cloned())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                // Its own group, so the test can stop and kill it without touching itself.
                .process_group(0)
                .spawn()
                .expect("start etcd");
            cluster.members.push(child);
        }
        cluster
    }

    fn log_path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn signal_all(&self, signal: Signal) {
        for member in &self.members {
            killpg(Pid::from_raw(member.id() as i32), signal).expect("signal an etcd member");
        }
    }

    async fn wait_healthy(&self, within: Duration) {
        let start = Instant::now();
        for node in &self.spec.nodes {
            assert_eq!(
                self.system.readiness(node),
                Readiness::TcpPort(self.system.client_addr(node))
            );
            while !self.system.healthy(node, Duration::from_millis(500)).await {
                if start.elapsed() > within {
                    let log =
                        std::fs::read_to_string(self.log_path(&node.name)).unwrap_or_default();
                    let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                    panic!(
                        "{} not healthy within {within:?}; log tail (newest first):\n{tail}",
                        node.name
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    fn client(&self, id: usize, options: EtcdClientOptions) -> EtcdClient {
        EtcdClient::new(self.system.client_addr(&self.spec.nodes[id - 1]), options)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            // SIGKILL also ends a stopped process.
            let _ = killpg(Pid::from_raw(member.id() as i32), Signal::SIGKILL);
            let _ = member.wait();
        }
    }
}

fn request(f: Function, key: &str, value: Value, timeout_ms: u64) -> Request {
    Request {
        f,
        key: Value::Str(key.to_owned()),
        value,
        timeout: Duration::from_millis(timeout_ms),
    }
}

fn cas(expected: Value, new: i64) -> Value {
    Value::List(vec![expected, Value::Int(new)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_cluster_serves_registers_sets_and_reports_timeouts() {
    if !etcd_installed() {
        common::skip(
            "etcd_cluster_serves_registers_sets_and_reports_timeouts",
            common::Need::Etcd,
            "no `etcd` binary (apt-get install etcd-server)",
        );
        return;
    }
    let cluster = LocalCluster::start(3);
    let version = cluster.system.version().unwrap();
    assert!(version.starts_with("etcd 3."), "version: {version}");
    cluster.wait_healthy(Duration::from_secs(30)).await;

    let mut c1 = cluster.client(1, EtcdClientOptions::default());
    let mut c2 = cluster.client(2, EtcdClientOptions::default());
    let t = 2_000;

    // Registers: absent reads nil; a write on one member is read on another.
    let absent = c1
        .perform(&request(Function::Read, "x", Value::Nil, t))
        .await;
    assert_eq!(absent, Outcome::Ok(Value::Nil));
    let cas_on_absent = c1
        .perform(&request(Function::Cas, "x", cas(Value::Int(1), 2), t))
        .await;
    assert_eq!(cas_on_absent, Outcome::Fail("compare-failed".to_owned()));
    let create = c1
        .perform(&request(Function::Cas, "x", cas(Value::Nil, 1), t))
        .await;
    assert_eq!(create, Outcome::Ok(cas(Value::Nil, 1)));
    let create_again = c1
        .perform(&request(Function::Cas, "x", cas(Value::Nil, 5), t))
        .await;
    assert_eq!(create_again, Outcome::Fail("compare-failed".to_owned()));
    assert_eq!(
        c1.perform(&request(Function::Write, "x", Value::Int(3), t))
            .await,
        Outcome::Ok(Value::Int(3))
    );
    assert_eq!(
        c2.perform(&request(Function::Read, "x", Value::Nil, t))
            .await,
        Outcome::Ok(Value::Int(3))
    );
    assert_eq!(
        c2.perform(&request(Function::Cas, "x", cas(Value::Int(3), 4), t))
            .await,
        Outcome::Ok(cas(Value::Int(3), 4))
    );
    assert_eq!(
        c1.perform(&request(Function::Cas, "x", cas(Value::Int(3), 9), t))
            .await,
        Outcome::Fail("compare-failed".to_owned())
    );
    assert_eq!(
        c1.perform(&request(Function::Read, "x", Value::Nil, t))
            .await,
        Outcome::Ok(Value::Int(4))
    );

    // Serializable reads are served locally; once the write has been applied everywhere
    // they see it too.
    let mut serial = cluster.client(
        3,
        EtcdClientOptions {
            serializable_reads: true,
        },
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = serial
            .perform(&request(Function::Read, "x", Value::Nil, t))
            .await;
        if seen == Outcome::Ok(Value::Int(4)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serializable read stuck at {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Sets: one key per element; duplicates collapse; other sets stay apart.
    for element in [5, 1, 3, 1] {
        assert_eq!(
            c1.perform(&request(Function::Add, "s", Value::Int(element), t))
                .await,
            Outcome::Ok(Value::Int(element))
        );
    }
    c2.perform(&request(Function::Add, "s2", Value::Int(7), t))
        .await;
    assert_eq!(
        c2.perform(&request(Function::ReadSet, "s", Value::Nil, t))
            .await,
        Outcome::Ok(Value::List(vec![
            Value::Int(1),
            Value::Int(3),
            Value::Int(5)
        ]))
    );
    assert_eq!(
        c2.perform(&request(Function::ReadSet, "empty", Value::Nil, t))
            .await,
        Outcome::Ok(Value::List(vec![]))
    );

    // The raw loop used to measure harness overhead completes every operation.
    let limits = RawLoopLimits {
        max_ops: 200,
        max_duration: Duration::from_secs(10),
        op_timeout: Duration::from_secs(2),
    };
    let raw = measure_raw_rate(
        cluster.system.client_addr(&cluster.spec.nodes[0]),
        EtcdClientOptions::default(),
        Value::Str("raw".to_owned()),
        limits,
    )
    .await;
    assert_eq!(raw.ops, 200);
    assert_eq!(raw.ok, 200);
    eprintln!(
        "raw loop: {:.0} ok ops/s over {:?}",
        raw.ok_per_sec, raw.elapsed
    );

    // Frozen cluster: the write was sent and never answered (indeterminate); the read
    // has no effect, so it fails.
    cluster.signal_all(Signal::SIGSTOP);
    let frozen = async {
        let started = Instant::now();
        let write = c1
            .perform(&request(Function::Write, "x", Value::Int(10), 300))
            .await;
        let cas_op = c1
            .perform(&request(Function::Cas, "x", cas(Value::Int(4), 11), 300))
            .await;
        let read = c1
            .perform(&request(Function::Read, "x", Value::Nil, 300))
            .await;
        let read_set = c2
            .perform(&request(Function::ReadSet, "s", Value::Nil, 300))
            .await;
        (write, cas_op, read, read_set, started.elapsed())
    }
    .await;
    cluster.signal_all(Signal::SIGCONT);
    let (write, cas_op, read, read_set, elapsed) = frozen;
    assert!(matches!(write, Outcome::Info(_)), "write: {write:?}");
    assert!(matches!(cas_op, Outcome::Info(_)), "cas: {cas_op:?}");
    assert!(matches!(read, Outcome::Fail(_)), "read: {read:?}");
    assert!(
        matches!(read_set, Outcome::Fail(_)),
        "read_set: {read_set:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "timeouts took {elapsed:?}"
    );

    // After resuming, the client reconnects and works again.
    cluster.wait_healthy(Duration::from_secs(30)).await;
    let after = c1
        .perform(&request(Function::Read, "x", Value::Nil, 5_000))
        .await;
    assert!(
        matches!(after, Outcome::Ok(Value::Int(4 | 10 | 11))),
        "read after resume: {after:?}"
    );
}

#[tokio::test]
async fn nothing_listening_is_a_definite_failure() {
    let port = free_ports(1)[0];
    let mut client = EtcdClient::new(
        (Ipv4Addr::LOCALHOST, port).into(),
        EtcdClientOptions::default(),
    );
    let write = client
        .perform(&request(Function::Write, "x", Value::Int(1), 500))
        .await;
    assert!(
        matches!(write, Outcome::Fail(ref e) if e.contains("connect")),
        "{write:?}"
    );
    let read = client
        .perform(&request(Function::Read, "x", Value::Nil, 500))
        .await;
    assert!(matches!(read, Outcome::Fail(_)), "{read:?}");
}
