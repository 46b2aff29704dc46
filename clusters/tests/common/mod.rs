//! Real clusters of `clusterkv` processes on loopback, for the integration tests.
//!
//! [`Cluster`] kills every process it started when dropped, panics included.

#![allow(dead_code)]

/// The workspace's one skip helper.
#[path = "../../../tests/common/skip.rs"]
pub mod skip;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_clusterkv");

/// Ports for a test cluster: below the kernel's ephemeral range (32768 and up), so no
/// outgoing connection and no `bind(0)` elsewhere can take them between this check and the
/// node's own bind; handed out once per process by a counter, so parallel tests of one
/// binary never share a port; the base moves with the process id, so test binaries run
/// one after another do not reuse each other's ports while old sockets linger.
pub fn free_ports(count: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU16, Ordering};
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = (std::process::id() % 24) as u16 * 500;
    let mut ports = Vec::with_capacity(count);
    while ports.len() < count {
        let offset = (base + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let port = LOW + offset;
        // Still check: another program may be using it.
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    ports
}

pub struct Cluster {
    pub arch: String,
    pub addrs: Vec<SocketAddr>,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub children: Vec<Option<Child>>,
    pub data: tempfile::TempDir,
}

impl Cluster {
    /// Starts `size` nodes of `arch` and waits until each accepts connections.
    pub fn start(arch: &str, size: usize, extra_args: &[&str]) -> Cluster {
        Self::start_with_env(arch, size, extra_args, &[])
    }

    pub fn start_with_env(
        arch: &str,
        size: usize,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Cluster {
        let addrs = free_ports(size)
            .into_iter()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .collect();
        let mut cluster = Cluster {
            arch: arch.to_string(),
            addrs,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            children: (0..size).map(|_| None).collect(),
            data: tempfile::tempdir().expect("temp dir"),
        };
        for id in 1..=size {
            cluster.start_node(id);
        }
        for id in 1..=size {
            cluster.wait_ready(id);
        }
        cluster
    }

    pub fn data_dir(&self, id: usize) -> PathBuf {
        self.data.path().join(format!("n{id}"))
    }

    pub fn log_path(&self, id: usize) -> PathBuf {
        self.data.path().join(format!("n{id}.log"))
    }

    /// Starts (or restarts) node `id` on its data directory.
    pub fn start_node(&mut self, id: usize) {
        let peers = self
            .addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("n{}={addr}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("log file");
        let child = Command::new(BINARY)
            .args(["--arch", &self.arch, "--id", &id.to_string()])
            .args(["--listen", &self.addrs[id - 1].to_string()])
            .args(["--peers", &peers])
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .args(&self.extra_args)
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn clusterkv");
        self.children[id - 1] = Some(child);
    }

    pub fn wait_ready(&self, id: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&self.addrs[id - 1], Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("n{id} did not start listening:\n{}", self.log(id));
    }

    pub fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.children[id - 1].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self, id: usize) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    pub fn client(&self, id: usize) -> Client {
        Client::connect(self.addrs[id - 1])
    }

    /// Polls `status` on the live nodes until `accept` holds for one of them.
    /// The status of every node that runs (`None` where it does not answer), by id.
    pub fn statuses(&self) -> Vec<(usize, Option<Value>)> {
        (1..=self.addrs.len())
            .filter(|id| self.children[id - 1].is_some())
            .map(|id| {
                let status = Client::try_connect(self.addrs[id - 1])
                    .and_then(|mut client| client.try_call(&json!({"op": "status"})))
                    .ok();
                (id, status)
            })
            .collect()
    }

    pub fn wait_for_status(
        &self,
        within: Duration,
        accept: impl Fn(usize, &Value) -> bool,
    ) -> Option<(usize, Value)> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            for id in 1..=self.addrs.len() {
                if self.children[id - 1].is_none() {
                    continue;
                }
                if let Ok(mut client) = Client::try_connect(self.addrs[id - 1]) {
                    if let Ok(status) = client.try_call(&json!({"op": "status"})) {
                        if accept(id, &status) {
                            return Some((id, status));
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 1..=self.children.len() {
            self.kill(id);
        }
        if std::thread::panicking() {
            for id in 1..=self.children.len() {
                eprintln!("---- log of n{id} ----\n{}", self.log(id));
            }
        }
    }
}

/// A blocking JSON-lines client.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Self::try_connect(addr).expect("connect to node")
    }

    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    pub fn try_call(&mut self, request: &Value) -> std::io::Result<Value> {
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        self.writer.write_all(&line)?;
        let mut reply = String::new();
        if self.reader.read_line(&mut reply)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(serde_json::from_str(&reply).expect("a JSON reply"))
    }

    pub fn call(&mut self, request: Value) -> Value {
        self.try_call(&request).expect("a reply")
    }

    pub fn read(&mut self, key: &str) -> Value {
        self.call(json!({"op": "read", "key": key}))
    }

    pub fn write(&mut self, key: &str, value: i64) -> Value {
        self.call(json!({"op": "write", "key": key, "value": value}))
    }

    pub fn cas(&mut self, key: &str, from: Value, to: i64) -> Value {
        self.call(json!({"op": "cas", "key": key, "from": from, "to": to}))
    }

    pub fn add(&mut self, key: &str, element: i64) -> Value {
        self.call(json!({"op": "add", "key": key, "element": element}))
    }

    pub fn read_set(&mut self, key: &str) -> Value {
        self.call(json!({"op": "read_set", "key": key}))
    }
}

/// Retries `op` (a read-only or idempotent request) until it answers ok, within `within`.
pub fn until_ok(within: Duration, mut op: impl FnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + within;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Some(reply) = op() {
            if reply["ok"] == json!(true) {
                return reply;
            }
            last = reply;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no ok answer within {within:?}; last: {last}");
}

/// Exercises every operation through every node of a healthy cluster.
pub fn exercise_all_operations(cluster: &Cluster) {
    let size = cluster.addrs.len();
    let mut clients: Vec<Client> = (1..=size).map(|id| cluster.client(id)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let key = format!("register-{i}");
        assert_eq!(client.read(&key), json!({"ok": true, "value": null}));
        assert_eq!(client.write(&key, 10), json!({"ok": true, "value": 10}));
        assert_eq!(client.read(&key)["value"], json!(10));
        let refused = client.cas(&key, json!(11), 12);
        assert_eq!(refused["ok"], json!(false), "{refused}");
        assert_eq!(refused["error"], json!("compare-failed"));
        assert_eq!(refused["definite"], json!(true));
        assert_eq!(
            client.cas(&key, json!(10), 11),
            json!({"ok": true, "value": 11})
        );
        assert_eq!(client.read(&key)["value"], json!(11));
    }
    // Every node sees what every other node wrote.
    for (reader, client) in clients.iter_mut().enumerate() {
        for writer in 0..size {
            let value = client.read(&format!("register-{writer}"));
            assert_eq!(
                value["value"],
                json!(11),
                "n{} reading register-{writer}",
                reader + 1
            );
        }
    }
    // A set built through every node.
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.add("set", i as i64)["ok"], json!(true));
        assert_eq!(client.add("set", i as i64)["ok"], json!(true));
    }
    for client in clients.iter_mut() {
        let reply = client.read_set("set");
        let mut elements: Vec<i64> = reply["value"]
            .as_array()
            .unwrap_or_else(|| panic!("a set: {reply}"))
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        elements.sort();
        assert_eq!(elements, (0..size as i64).collect::<Vec<_>>());
    }
    assert_eq!(
        clients[0].read_set("empty-set"),
        json!({"ok": true, "value": []})
    );
    let status = clients[0].call(json!({"op": "status"}));
    assert_eq!(status["ok"], json!(true));
    assert_eq!(status["node"], json!("n1"));
    assert!(status["time_ms"].as_u64().unwrap() > 1_600_000_000_000);
}
