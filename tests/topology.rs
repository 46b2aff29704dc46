//! The cluster network: namespaces up and down, reachability between nodes, isolation from
//! the controller's namespace, cleanup after a crash. Needs root; skips otherwise.

mod common;

use common::{echo_once, have_root, ns_identity, ping_pong};
use splitbrain::cleanup;
use splitbrain::netns;
use splitbrain::topology::{RunId, Topology, SWITCH_IP};
use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

fn read_sysctl_in(ns: &str, key_path: &'static str) -> String {
    netns::spawn_in(ns, move || std::fs::read_to_string(key_path).unwrap())
        .unwrap()
        .join()
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn topology_up_and_down_leaves_nothing() {
    if !have_root("topology_up_and_down_leaves_nothing") {
        return;
    }
    let mut topology = Topology::create(RunId::random(), 3).unwrap();
    let names = topology.plan().all_netns();
    assert_eq!(names.len(), 4);
    for ns in &names {
        assert!(netns::exists(ns), "{ns} should exist");
        // IPv6 is off everywhere, so a partition cannot be bypassed over v6.
        assert_eq!(
            read_sysctl_in(ns, "/proc/sys/net/ipv6/conf/all/disable_ipv6"),
            "1"
        );
    }
    let n2 = topology.node("n2").unwrap();
    let addrs = netns::run(
        &n2.netns,
        "ip",
        &["-o", "-4", "addr", "show", "dev", "eth0"],
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&addrs.stdout).contains("10.73.0.12/24"));
    assert_eq!(
        read_sysctl_in(&n2.netns, "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"),
        "1"
    );
    let bridge = netns::run(
        topology.switch_netns(),
        "ip",
        &["-o", "link", "show", "master", "br0"],
    )
    .unwrap();
    let ports = String::from_utf8_lossy(&bridge.stdout);
    assert_eq!(
        ports.lines().count(),
        3,
        "three veths on the bridge: {ports}"
    );

    topology.destroy().unwrap();
    for ns in &names {
        assert!(!netns::exists(ns), "{ns} should be gone");
    }
    // Idempotent.
    topology.destroy().unwrap();
}

#[test]
fn dropping_the_topology_tears_it_down() {
    if !have_root("dropping_the_topology_tears_it_down") {
        return;
    }
    let topology = Topology::create(RunId::random(), 2).unwrap();
    let names = topology.plan().all_netns();
    drop(topology);
    assert!(names.iter().all(|ns| !netns::exists(ns)));
}

#[test]
fn a_second_topology_with_the_same_id_is_refused() {
    if !have_root("a_second_topology_with_the_same_id_is_refused") {
        return;
    }
    let run = RunId::random();
    let _first = Topology::create(run.clone(), 1).unwrap();
    let err = Topology::create(run, 1).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn nodes_reach_each_other_and_clients_reach_nodes() {
    if !have_root("nodes_reach_each_other_and_clients_reach_nodes") {
        return;
    }
    let topology = Topology::create(RunId::random(), 3).unwrap();
    let n1 = topology.node("n1").unwrap().clone();
    let n3 = topology.node("n3").unwrap().clone();
    let addr = SocketAddr::from((n1.ip, 7001));

    // One listener in n1 for both checks: binding port 7001 a second time right after the
    // first echo can fail with AddrInUse while the first connection is still closing.
    let listener = netns::spawn_in(&n1.netns, move || TcpListener::bind(addr))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();

    // Node to node: a connector in n3.
    let first = listener.try_clone().unwrap();
    let server = std::thread::spawn(move || echo_once(first));
    let echoed = netns::spawn_in(&n3.netns, move || ping_pong(addr, b"n3->n1"))
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(echoed.unwrap(), b"n3->n1");
    server.join().unwrap().unwrap();

    // Client runtime (switch namespace) to node, through tokio.
    let server = std::thread::spawn(move || echo_once(listener));
    let runtime = topology.client_runtime(2).unwrap();
    let reply = runtime
        .block_on(runtime.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            let local = stream.local_addr()?;
            stream.write_all(b"client").await?;
            let mut buf = [0u8; 6];
            stream.read_exact(&mut buf).await?;
            Ok::<_, io::Error>((local, buf))
        }))
        .unwrap()
        .unwrap();
    assert_eq!(&reply.1, b"client");
    // Client traffic comes from the bridge, never from the controller's namespace.
    assert_eq!(reply.0.ip(), std::net::IpAddr::V4(SWITCH_IP));
    server.join().unwrap().unwrap();
}

/// A TCP connect with SO_DONTROUTE: only directly attached networks are tried, so from the
/// controller's namespace no packet can leave towards a gateway. Connect gives up after 2 s.
fn connect_without_routing(addr: SocketAddrV4) -> io::Result<()> {
    // SAFETY: plain socket calls on a descriptor owned by `fd`; the structs are initialised.
    unsafe {
        let raw = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let one: libc::c_int = 1;
        let timeout = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        let set = |opt, value: *const libc::c_void, len| {
            libc::setsockopt(raw, libc::SOL_SOCKET, opt, value, len)
        };
        if set(libc::SO_DONTROUTE, (&one as *const libc::c_int).cast(), 4) != 0
            || set(
                libc::SO_SNDTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let sockaddr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let result = libc::connect(
            raw,
            (&sockaddr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        let outcome = if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
        drop(fd);
        outcome
    }
}

#[test]
fn the_host_namespace_cannot_reach_the_nodes() {
    if !have_root("the_host_namespace_cannot_reach_the_nodes") {
        return;
    }
    let host_addrs = std::process::Command::new("ip")
        .args(["-o", "-4", "addr"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&host_addrs.stdout).contains(" 10.73.0.") {
        common::skip(
            "the_host_namespace_cannot_reach_the_nodes",
            common::Need::FreeSubnet,
            "this host itself uses 10.73.0.0/24",
        );
        return;
    }
    let topology = Topology::create(RunId::random(), 2).unwrap();
    let n1 = topology.node("n1").unwrap().clone();
    let addr = SocketAddrV4::new(n1.ip, 7002);
    let listener = netns::spawn_in(&n1.netns, move || TcpListener::bind(addr))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    listener.set_nonblocking(true).unwrap();

    // Control: the same kind of connect from the switch namespace succeeds, so the check
    // below fails for the right reason.
    let from_switch = netns::spawn_in(topology.switch_netns(), move || {
        connect_without_routing(addr)
    })
    .unwrap()
    .join()
    .unwrap();
    from_switch.expect("the switch namespace reaches n1 directly");

    let from_host = connect_without_routing(addr);
    let err = from_host.expect_err("the controller's namespace must not reach a node");
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH)
        ),
        "unexpected error: {err}"
    );
    // Nothing of the cluster appears in the controller's namespace.
    let host_ns = ns_identity(Path::new("/proc/self/ns/net"));
    for ns in topology.plan().all_netns() {
        assert_ne!(ns_identity(&netns::path(&ns)), host_ns);
    }
}

#[test]
fn cleanup_removes_a_crashed_runs_network() {
    if !have_root("cleanup_removes_a_crashed_runs_network") {
        return;
    }
    let run = RunId::random();
    let topology = Topology::create(run.clone(), 3).unwrap();
    let names = topology.plan().all_netns();
    // A process living in a node namespace, as a crashed run would leave behind.
    let mut stray = netns::command(&names[1], "/bin/sleep").unwrap();
    let mut stray = stray.arg("30").spawn().unwrap();
    std::mem::forget(topology);

    let report = cleanup::cleanup_run(&run);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    for ns in &names {
        assert!(!netns::exists(ns), "{ns} should be gone");
        assert!(
            report
                .removed
                .iter()
                .any(|line| line.ends_with(ns.as_str())),
            "{:?}",
            report.removed
        );
    }
    assert!(report
        .removed
        .iter()
        .any(|line| line.starts_with(&format!("process {}", stray.id()))));
    let status = stray.wait().unwrap();
    assert!(!status.success(), "the stray process was killed");

    // Idempotent: nothing left the second time.
    assert!(cleanup::cleanup_run(&run).is_clean());
}
