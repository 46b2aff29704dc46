//! The `command` system: argv templating without a shell, the JSON-lines client protocol
//! against a real etcd node through the example client, and a client program that dies
//! or hangs.

mod common;

use common::{skip, Need};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use splitbrain::system::command::{CommandClient, CommandSpec, CommandSystem};
use splitbrain::system::etcd::{EtcdClient, EtcdClientOptions, EtcdPorts, EtcdSystem};
use splitbrain::system::{ClusterSpec, Function, NodeSpec, Outcome, Request, System};
use splitbrain_checkers::Value;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXAMPLE_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/clients/etcd_gateway_client.py"
);

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn node(ip: Ipv4Addr, data_dir: PathBuf) -> NodeSpec {
    NodeSpec {
        name: "n1".to_owned(),
        id: 1,
        ip,
        data_dir,
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

fn spec(yaml: &str) -> CommandSpec {
    serde_yaml::from_str(yaml).expect("command spec")
}

#[test]
fn templated_arguments_reach_the_program_intact_without_a_shell() {
    let system = CommandSystem::new(spec(
        r#"
node:
  program: printf
  args: ["%s\n", "--name={node}", "hello world; echo injected", "$HOME", "{peers}", "`id`"]
  port: 9000
  readiness: { tcp_port: 9000 }
client: { program: "true" }
"#,
    ))
    .unwrap();
    let n1 = node(Ipv4Addr::new(10, 1, 0, 2), PathBuf::from("/tmp/n1"));
    let cluster = ClusterSpec {
        nodes: vec![n1.clone()],
    };
    let launch = system.launch(&n1, &cluster).unwrap();
    let output = Command::new(&launch.program)
        .args(&launch.args)
        .envs(launch.env)
        .output()
        .expect("run printf");
    let lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        vec![
            "--name=n1",
            "hello world; echo injected",
            "$HOME",
            "n1=10.1.0.2:9000",
            "`id`",
        ]
    );
}

/// A one-member etcd on loopback, killed on drop.
struct EtcdNode {
    system: EtcdSystem,
    node: NodeSpec,
    child: Child,
    _dir: tempfile::TempDir,
}

impl EtcdNode {
    async fn start() -> EtcdNode {
        let dir = tempfile::tempdir().unwrap();
        let listeners: Vec<TcpListener> = (0..2)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports = EtcdPorts {
            client: listeners[0].local_addr().unwrap().port(),
            peer: listeners[1].local_addr().unwrap().port(),
        };
        drop(listeners);
        let system = EtcdSystem {
            cluster_token: format!("command-test-{}", std::process::id()),
            ..EtcdSystem::default()
        }
        .with_node_ports("n1", ports);
        let node = node(Ipv4Addr::LOCALHOST, dir.path().join("n1"));
        let cluster = ClusterSpec {
            nodes: vec![node.clone()],
        };
        let launch = system.launch(&node, &cluster).unwrap();
        let log = std::fs::File::create(dir.path().join("n1.log")).unwrap();
        let child = Command::new(&launch.program)
            .args(&launch.args)
            .envs(launch.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start etcd");
        let etcd = EtcdNode {
            system,
            node,
            child,
            _dir: dir,
        };
        let start = Instant::now();
        while !etcd
            .system
            .healthy(&etcd.node, Duration::from_millis(500))
            .await
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "etcd not healthy in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        etcd
    }
}

impl Drop for EtcdNode {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_client_round_trips_against_etcd() {
    let test = "example_client_round_trips_against_etcd";
    if !runs("etcd", "--version") {
        skip(
            test,
            Need::Etcd,
            "needs `etcd` (apt-get install etcd-server)",
        );
        return;
    }
    if !runs("python3", "--version") {
        skip(
            test,
            Need::Python3,
            "needs `python3` (apt-get install python3)",
        );
        return;
    }
    let etcd = EtcdNode::start().await;
    let port = etcd.system.client_addr(&etcd.node).port();
    let system = CommandSystem::new(spec(&format!(
        r#"
node:
  program: etcd
  port: {port}
  readiness: {{ tcp_port: {port} }}
client:
  program: python3
  args: ["{EXAMPLE_CLIENT}", "{{ip}}", "{{port}}"]
"#
    )))
    .unwrap();
    let cluster = ClusterSpec {
        nodes: vec![etcd.node.clone()],
    };
    let mut client = system.client(&etcd.node, &cluster).unwrap();
    let t = 3_000;
    let list = |items: &[i64]| Value::List(items.iter().map(|i| Value::Int(*i)).collect());

    let steps: Vec<(Request, Outcome)> = vec![
        (
            request(Function::Read, "k", Value::Nil, t),
            Outcome::Ok(Value::Nil),
        ),
        (
            request(Function::Cas, "k", list(&[1, 2]), t),
            Outcome::Fail("compare-failed".into()),
        ),
        (
            request(
                Function::Cas,
                "k",
                Value::List(vec![Value::Nil, Value::Int(1)]),
                t,
            ),
            Outcome::Ok(Value::List(vec![Value::Nil, Value::Int(1)])),
        ),
        (
            request(Function::Write, "k", Value::Int(7), t),
            Outcome::Ok(Value::Int(7)),
        ),
        (
            request(Function::Cas, "k", list(&[7, 8]), t),
            Outcome::Ok(list(&[7, 8])),
        ),
        (
            request(Function::Read, "k", Value::Nil, t),
            Outcome::Ok(Value::Int(8)),
        ),
        (
            request(Function::Add, "s", Value::Int(3), t),
            Outcome::Ok(Value::Int(3)),
        ),
        (
            request(Function::Add, "s", Value::Int(2), t),
            Outcome::Ok(Value::Int(2)),
        ),
        (
            request(Function::ReadSet, "s", Value::Nil, t),
            Outcome::Ok(list(&[2, 3])),
        ),
    ];
    for (req, expected) in steps {
        let got = client.invoke(&req).await;
        assert_eq!(got, expected, "{req:?}");
    }

    // The example client and the built-in client share the key layout.
    let mut builtin = EtcdClient::new(
        etcd.system.client_addr(&etcd.node),
        EtcdClientOptions::default(),
    );
    assert_eq!(
        builtin
            .perform(&request(Function::Read, "k", Value::Nil, t))
            .await,
        Outcome::Ok(Value::Int(8))
    );
    assert_eq!(
        builtin
            .perform(&request(Function::ReadSet, "s", Value::Nil, t))
            .await,
        Outcome::Ok(list(&[2, 3]))
    );

    // A frozen member: the example client reports its own timeout, as info for a write
    // and fail for a read, before the harness's grace runs out.
    let group = Pid::from_raw(etcd.child.id() as i32);
    killpg(group, Signal::SIGSTOP).unwrap();
    let write = client
        .invoke(&request(Function::Write, "k", Value::Int(9), 300))
        .await;
    let read = client
        .invoke(&request(Function::Read, "k", Value::Nil, 300))
        .await;
    killpg(group, Signal::SIGCONT).unwrap();
    assert!(
        matches!(write, Outcome::Info(ref e) if e == "timed out"),
        "{write:?}"
    );
    assert!(
        matches!(read, Outcome::Fail(ref e) if e == "timed out"),
        "{read:?}"
    );
}

/// A client program that answers `ok` to everything, except that it dies on key "die"
/// and hangs on key "hang".
fn scripted_client() -> CommandClient {
    let script = r#"
while read -r line; do
  case "$line" in
    *'"key":"die"'*) echo "dying on purpose" >&2; exit 3 ;;
    *'"key":"hang"'*) sleep 30 ;;
  esac
  echo '{"type":"ok","value":5}'
done
"#;
    CommandClient::new(
        splitbrain::system::LaunchSpec {
            program: PathBuf::from("sh"),
            args: vec!["-c".to_owned(), script.to_owned()],
            env: Vec::new(),
        },
        Duration::from_millis(100),
    )
}

#[tokio::test]
async fn dead_or_hung_client_program_is_indeterminate_and_restarted() {
    let mut client = scripted_client();
    assert_eq!(
        client
            .perform(&request(Function::Read, "a", Value::Nil, 1_000))
            .await,
        Outcome::Ok(Value::Int(5))
    );

    let died = client
        .perform(&request(Function::Write, "die", Value::Int(1), 1_000))
        .await;
    match &died {
        Outcome::Info(e) => assert!(
            e.contains("exited") && e.contains("dying on purpose"),
            "{e}"
        ),
        other => panic!("a write whose program died must be info, got {other:?}"),
    }
    // Restarted for the next operation.
    assert_eq!(
        client
            .perform(&request(Function::Write, "a", Value::Int(1), 1_000))
            .await,
        Outcome::Ok(Value::Int(1))
    );
    // A read that dies has no effect: fail.
    assert!(matches!(
        client
            .perform(&request(Function::Read, "die", Value::Nil, 1_000))
            .await,
        Outcome::Fail(_)
    ));

    let started = Instant::now();
    let hung = client
        .perform(&request(Function::Cas, "hang", Value::Nil, 200))
        .await;
    assert!(
        matches!(hung, Outcome::Info(ref e) if e.contains("did not answer")),
        "{hung:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up after {:?}",
        started.elapsed()
    );
    let hung_read = client
        .perform(&request(Function::Read, "hang", Value::Nil, 200))
        .await;
    assert!(matches!(hung_read, Outcome::Fail(_)), "{hung_read:?}");
    assert_eq!(
        client
            .perform(&request(Function::Read, "a", Value::Nil, 1_000))
            .await,
        Outcome::Ok(Value::Int(5))
    );
}

#[tokio::test]
async fn missing_client_program_fails_without_effect() {
    let mut client = CommandClient::new(
        splitbrain::system::LaunchSpec {
            program: PathBuf::from("/nonexistent/splitbrain-client"),
            args: Vec::new(),
            env: Vec::new(),
        },
        Duration::from_millis(100),
    );
    let write = client
        .perform(&request(Function::Write, "a", Value::Int(1), 500))
        .await;
    assert!(
        matches!(write, Outcome::Fail(ref e) if e.contains("cannot start")),
        "{write:?}"
    );
}

/// Runs `splitbrain run` on a campaign with this `command` system and returns its exit code,
/// its stderr and whether the run got as far as making a run directory.
fn run_campaign(system: &str) -> (Option<i32>, String, bool) {
    run_campaign_with(system, "")
}

/// As [`run_campaign`], with `extra` top-level campaign lines.
fn run_campaign_with(system: &str, extra: &str) -> (Option<i32>, String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        format!("name: cmd\nsystem:\n  command:\n{system}nodes: 1\nworkload: {{kind: register, duration: 1s}}\n{extra}"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .arg("run")
        .arg(&campaign)
        .arg("--results")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let started = dir.path().join("results").exists();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started,
    )
}

#[test]
fn an_unknown_placeholder_is_a_campaign_error_at_load_with_line_and_column() {
    let (code, stderr, started) = run_campaign(
        "    node: {program: /bin/sh, args: [-c, 'exec sleep 100', '{hostname}'], port: 7000, \
         readiness: {tcp_port: 7000}}\n    client: {program: /bin/cat}\n",
    );
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("{hostname}"), "{stderr}");
    assert!(stderr.contains("line 4 column"), "{stderr}");
    assert!(!started, "nothing starts for a campaign with a mistake");
}

#[test]
fn a_missing_command_program_is_unavailable_like_a_missing_etcd() {
    if !common::have_root("a_missing_command_program_is_unavailable_like_a_missing_etcd") {
        return;
    }
    let (code, stderr, started) = run_campaign(
        "    node: {program: /nonexistent/mykv, port: 7000, readiness: {tcp_port: 7000}}\n    \
         client: {program: /bin/cat}\n",
    );
    assert_eq!(code, Some(69), "{stderr}");
    assert!(stderr.contains("/nonexistent/mykv"), "{stderr}");
    assert!(!started, "nothing starts when a program is missing");
    let (code, stderr, _) = run_campaign(
        "    node: {program: /bin/sh, port: 7000, readiness: {tcp_port: 7000}}\n    \
         client: {program: no-such-client-program}\n",
    );
    assert_eq!(code, Some(69), "{stderr}");
    assert!(stderr.contains("no-such-client-program"), "{stderr}");
}

#[test]
fn a_missing_program_named_through_a_placeholder_is_unavailable_said_once() {
    if !common::have_root("a_missing_program_named_through_a_placeholder_is_unavailable_said_once")
    {
        return;
    }
    let (code, stderr, _) = run_campaign(
        "    node: {program: \"{data_dir}/mykv\", port: 7000, readiness: {tcp_port: 7000}}\n    \
         client: {program: /bin/cat}\n",
    );
    assert_eq!(code, Some(69), "{stderr}");
    assert!(stderr.contains("mykv not found"), "{stderr}");
    assert!(stderr.matches("os error 2").count() <= 1, "{stderr}");
}

#[test]
fn a_missing_etcd_binary_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        "name: etcd-missing\nsystem: {etcd: {binary: /nonexistent/etcd}}\nnodes: 1\n\
         workload: {kind: register, duration: 1s}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .arg("run")
        .arg(&campaign)
        .arg("--results")
        .arg(dir.path().join("results"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("/nonexistent/etcd"), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}

const ROLE_COMMAND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/clients/etcd_role.py");

/// A three-member etcd cluster run as a `command` system (etcd wants `http://` in its peer
/// list, hence the shell), clients through the example gateway client, `role:` as given.
fn etcd_command_campaign(role: &str, nemesis: &str) -> String {
    format!(
        r#"name: etcd-command
system:
  command:
    name: etcd-cmd
    node:
      program: sh
      args:
        - -c
        - >-
          exec etcd --name {{node}} --data-dir {{data_dir}}
          --listen-peer-urls http://{{ip}}:2380 --initial-advertise-peer-urls http://{{ip}}:2380
          --listen-client-urls http://{{ip}}:2379 --advertise-client-urls http://{{ip}}:2379
          --initial-cluster "$(echo {{peers}} | sed 's#=#=http://#g')"
          --initial-cluster-state new --initial-cluster-token etcd-command
          --logger zap --log-outputs stderr
      port: 2379
      peer_port: 2380
      readiness: {{tcp_port: 2379}}
{role}    client:
      program: python3
      args: ["{EXAMPLE_CLIENT}", "{{ip}}", "{{port}}"]
nodes: 3
workload: {{kind: register, concurrency: 3, rate: 50, duration: 12s, timeout: 5s, recovery: 3s}}
startup: {{first_read_timeout: 60s}}
{nemesis}"#
    )
}

/// The run directory a finished `splitbrain run` names on stdout.
fn run_dir_of(stdout: &[u8]) -> PathBuf {
    let stdout = String::from_utf8_lossy(stdout);
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .unwrap_or_else(|| panic!("no results directory in: {stdout}"));
    PathBuf::from(dir.trim())
}

/// The nemesis `info` events of a JSON-lines history whose `f` is `f`.
fn nemesis_infos(history: &str, f: &str) -> Vec<serde_json::Value> {
    history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["process"] == "nemesis" && e["type"] == "info" && e["f"] == f)
        .collect()
}

#[test]
fn a_role_command_points_isolate_leader_at_the_node_that_really_leads() {
    let test = "a_role_command_points_isolate_leader_at_the_node_that_really_leads";
    if !common::have_root(test) {
        return;
    }
    if !runs("etcd", "--version") {
        skip(
            test,
            Need::Etcd,
            "needs `etcd` (apt-get install etcd-server)",
        );
        return;
    }
    if !runs("python3", "--version") {
        skip(
            test,
            Need::Python3,
            "needs `python3` (apt-get install python3)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("campaign.yaml");
    std::fs::write(
        &campaign,
        etcd_command_campaign(
            &format!(
                "      role: [python3, \"{ROLE_COMMAND}\", \"{{ip}}\", \"{{port}}\"]\n      \
                 role_timeout_ms: 10000\n"
            ),
            "nemesis: {timeline: [{at: 3s, fault: partition, shape: isolate-leader, for: 6s}]}\n",
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_splitbrain"))
        .args(["run", "--seed", "1", "--results"])
        .arg(dir.path().join("results"))
        .arg(&campaign)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A verdict, whichever (few `ok` operations on a loaded machine make it `unknown`):
    // what is tested here is where the partition went.
    assert!(matches!(out.status.code(), Some(0..=2)), "{text}");
    let run = run_dir_of(&out.stdout);
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let starts = nemesis_infos(&history, "start-partition");
    assert_eq!(starts.len(), 1, "{history}");
    let record = &starts[0]["value"];
    let note = record["note"].as_str().unwrap_or_default();
    let isolated = note
        .strip_prefix("isolated ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no isolated node in {record}"));
    assert!(
        note.ends_with("leader per etcd-cmd status"),
        "the role command was not used: {record}"
    );
    // Every node answered its role command before the fault, one of them as the leader.
    let roles: Vec<&str> = record["roles_before"]
        .as_array()
        .unwrap_or_else(|| panic!("no roles in {record}"))
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(roles.len(), 3, "{record}");
    assert!(
        roles
            .iter()
            .any(|r| r.starts_with(&format!("{isolated}: leader (term"))),
        "{record}"
    );
    assert_eq!(
        roles.iter().filter(|r| r.contains(": leader")).count(),
        1,
        "{record}"
    );
    // etcd's own log agrees: the isolated node was elected leader in the term it reported
    // (raft elects at most one leader per term).
    let term = roles
        .iter()
        .find_map(|r| r.strip_prefix(&format!("{isolated}: leader (term ")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no term for {isolated} in {record}"));
    let log = std::fs::read_to_string(run.join("nodes").join(isolated).join("stderr.log"))
        .unwrap_or_default();
    assert!(
        log.contains(&format!("became leader at term {term}")),
        "{isolated}'s log has no election at term {term}:\n{log}"
    );
}

#[test]
fn a_node_that_exits_at_once_stops_the_run_at_once_naming_it_with_its_stderr() {
    if !common::have_root(
        "a_node_that_exits_at_once_stops_the_run_at_once_naming_it_with_its_stderr",
    ) {
        return;
    }
    let started = Instant::now();
    let (code, stderr, _) = run_campaign(
        "    node: {program: /bin/sh, args: [-c, 'echo \"mykv: unknown flag --bogus\" >&2; exit 2'], \
         port: 7000, readiness: {tcp_port: 7000}}\n    client: {program: /bin/cat}\n",
    );
    let took = started.elapsed();
    assert_eq!(code, Some(69), "{stderr}");
    assert!(
        stderr.contains("node n1 exited before it was ready"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown flag --bogus"), "{stderr}");
    // The default readiness deadline is 30 s: this must not wait for it.
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
}

#[test]
fn the_startup_deadlines_are_campaign_options() {
    if !common::have_root("the_startup_deadlines_are_campaign_options") {
        return;
    }
    // Never ready: the readiness command always fails.
    let started = Instant::now();
    let (code, stderr, _) = run_campaign_with(
        "    node: {program: /bin/sleep, args: ['100'], port: 7000, readiness: {command: [/bin/false]}}\n    \
         client: {program: /bin/cat}\n",
        "startup: {ready_timeout: 2s}\n",
    );
    let took = started.elapsed();
    assert_eq!(code, Some(69), "{stderr}");
    assert!(stderr.contains("startup.ready_timeout (2s)"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
    // Ready, but the client never answers a read (`cat` echoes the request back).
    let started = Instant::now();
    let (code, stderr, _) = run_campaign_with(
        "    node: {program: /bin/sleep, args: ['100'], port: 7000, readiness: {command: [/bin/true]}}\n    \
         client: {program: /bin/cat}\n",
        "startup: {first_read_timeout: 2s}\n",
    );
    let took = started.elapsed();
    assert_eq!(code, Some(69), "{stderr}");
    assert!(
        stderr.contains("node n1 did not serve a read within 2s (startup.first_read_timeout)"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
}

#[test]
fn startup_deadlines_out_of_bounds_are_refused_at_load() {
    for (bad, says) in [
        ("{ready_timeout: 0s}", "expected 1s to 1h, found 0s"),
        ("{first_read_timeout: 2h}", "expected 1s to 1h, found 2h"),
        (
            "{ready: 5s}",
            "expected `ready_timeout` or `first_read_timeout`",
        ),
    ] {
        let (code, stderr, started) = run_campaign_with(
            "    node: {program: /bin/sleep, port: 7000, readiness: {tcp_port: 7000}}\n    \
             client: {program: /bin/cat}\n",
            &format!("startup: {bad}\n"),
        );
        assert_eq!(code, Some(64), "{bad}: {stderr}");
        assert!(stderr.contains(says), "{bad}: {stderr}");
        assert!(stderr.contains("line 8"), "{bad}: {stderr}");
        assert!(!started, "{bad}");
    }
}

#[test]
fn a_client_read_readiness_asks_the_client_program_until_it_answers_ok() {
    use splitbrain::system::command::ClientReadProbe;
    let dir = tempfile::tempdir().unwrap();
    let synced = dir.path().join("synced");
    let seen = dir.path().join("requests");
    // Answers `fail` until the file `synced` exists, like a replica before its first sync.
    let script = format!(
        r#"read -r line; echo "$line" >> '{seen}'
if [ -e '{synced}' ]; then echo '{{"type":"ok","value":null}}'
else echo '{{"type":"fail","error":"replica not synced"}}'; fi"#,
        seen = seen.display(),
        synced = synced.display()
    );
    let probe = ClientReadProbe {
        client: splitbrain::system::LaunchSpec {
            program: PathBuf::from("sh"),
            args: vec!["-c".to_owned(), script],
            env: Vec::new(),
        },
        key: Value::Int(0),
    };
    let err = probe.attempt(None, Duration::from_secs(5)).unwrap_err();
    assert!(err.contains("replica not synced"), "{err}");
    std::fs::write(&synced, "").unwrap();
    probe.attempt(None, Duration::from_secs(5)).unwrap();
    let requests = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(requests.lines().count(), 2, "{requests}");
    let first: serde_json::Value = serde_json::from_str(requests.lines().next().unwrap()).unwrap();
    assert_eq!(first["f"], "read");
    assert_eq!(first["key"], 0);
    assert!(first["value"].is_null());
    // A program that never answers is not ready, within the budget.
    let silent = ClientReadProbe {
        client: splitbrain::system::LaunchSpec {
            program: PathBuf::from("sleep"),
            args: vec!["30".to_owned()],
            env: Vec::new(),
        },
        key: Value::Int(0),
    };
    let started = Instant::now();
    let err = silent
        .attempt(None, Duration::from_millis(300))
        .unwrap_err();
    assert!(err.contains("did not answer within 1000 ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_client_read_readiness_is_one_of_three_ways() {
    let base = "node: {program: p, port: 1, readiness: READY}\nclient: {program: c}\n";
    let parsed = spec(&base.replace("READY", "{client_read: 0}"));
    assert_eq!(
        parsed.node.readiness,
        splitbrain::system::command::ReadinessCommand::ClientRead(Value::Int(0))
    );
    for bad in ["{client_read: 0, tcp_port: 1}", "{client_read: null}", "{}"] {
        let err = serde_yaml::from_str::<CommandSpec>(&base.replace("READY", bad))
            .map(drop)
            .unwrap_err();
        assert!(err.to_string().contains("client_read"), "{bad}: {err}");
    }
}

#[test]
fn a_node_whose_client_read_never_succeeds_is_not_ready_with_the_clients_error() {
    if !common::have_root(
        "a_node_whose_client_read_never_succeeds_is_not_ready_with_the_clients_error",
    ) {
        return;
    }
    let started = Instant::now();
    let (code, stderr, _) = run_campaign_with(
        "    node: {program: /bin/sleep, args: ['100'], port: 7000, readiness: {client_read: 0}}\n    \
         client: {program: /bin/sh, args: [-c, 'read -r l; echo \"{{\\\"type\\\":\\\"fail\\\",\\\"error\\\":\\\"replica not synced\\\"}}\"']}\n",
        "startup: {ready_timeout: 2s}\n",
    );
    let took = started.elapsed();
    assert_eq!(code, Some(69), "{stderr}");
    assert!(stderr.contains("replica not synced"), "{stderr}");
    assert!(stderr.contains("startup.ready_timeout (2s)"), "{stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");
}
