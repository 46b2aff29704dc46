//! Delay, reorder and duplication through netfilter (NFQUEUE holder threads, nft `dup`) on
//! real namespaces: the connect round trip rises by the delay and comes back after undo;
//! a TCP stream goes through reordering and duplication intact, also when the fault is
//! undone mid-stream; undo (and drop) leaves no tables and no held packets. Needs root and
//! nft; skips otherwise.

mod common;

use common::{have_nft, have_root};
use splitbrain::nemesis::packet::{
    self, AppliedShaping, Shaping, ShapingBackend, ShapingTarget, DELAY_TABLE, DUP_TABLE,
    REORDER_TABLE,
};
use splitbrain::topology::{NodeNet, RunId, Topology};
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const STREAM_PORT: u16 = 7100;
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn runnable(test: &str) -> bool {
    have_root(test) && have_nft(test)
}

/// Shapes `from`'s traffic to `to`.
fn target(from: &NodeNet, to: &NodeNet) -> Vec<ShapingTarget> {
    vec![ShapingTarget {
        netns: from.netns.clone(),
        peers: vec![to.ip],
    }]
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn rtt(from: &NodeNet, to: &NodeNet) -> Duration {
    median(packet::connect_rtts(&from.netns, to.ip, 5, PROBE_TIMEOUT).unwrap())
}

/// The namespace's whole ruleset, lower-cased: queue rules live in nft table
/// `splitbrain_delay` or in iptables chain `SPLITBRAIN_DELAY` (shown by nft too).
fn tables(node: &NodeNet) -> String {
    let out = splitbrain::netns::run(&node.netns, "nft", &["list", "ruleset"]).unwrap();
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

/// A deterministic payload whose corruption, loss, duplication or reordering inside the
/// stream would show in a byte comparison.
fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect()
}

/// A receiver in `node`'s namespace: accepts one connection and reads it to the end (at
/// most 30 s).
fn receive_in(node: &NodeNet) -> JoinHandle<Vec<u8>> {
    let addr = SocketAddr::V4(SocketAddrV4::new(node.ip, STREAM_PORT));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = splitbrain::netns::spawn_in(&node.netns, move || {
        let listener = TcpListener::bind(addr).unwrap();
        ready_tx.send(()).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        received
    })
    .unwrap();
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    handle
}

/// Sends `data` from `from`'s namespace to `to`'s receiver in chunks, pausing `pace` between
/// them, so that a fault can change while the stream runs.
fn send_from(from: &NodeNet, to: &NodeNet, data: Vec<u8>, pace: Duration) -> JoinHandle<()> {
    let addr = SocketAddr::V4(SocketAddrV4::new(to.ip, STREAM_PORT));
    splitbrain::netns::spawn_in(&from.netns, move || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        for chunk in data.chunks(16 * 1024) {
            stream.write_all(chunk).unwrap();
            std::thread::sleep(pace);
        }
        stream.shutdown(std::net::Shutdown::Write).unwrap();
    })
    .unwrap()
}

fn apply(shaping: Shaping, from: &NodeNet, to: &NodeNet) -> AppliedShaping {
    packet::apply_shaping(shaping, target(from, to), ShapingBackend::Netfilter, 7).unwrap()
}

#[test]
fn delay_raises_the_connect_round_trip_and_undo_restores_it() {
    if !runnable("delay_raises_the_connect_round_trip_and_undo_restores_it") {
        return;
    }
    let topology = Topology::create(RunId::random(), 2).unwrap();
    let (n1, n2) = (&topology.nodes()[0], &topology.nodes()[1]);
    let before = rtt(n1, n2);
    assert!(before < Duration::from_millis(5), "baseline {before:?}");

    let applied = apply(
        Shaping::Delay {
            mean: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
        },
        n1,
        n2,
    );
    assert_eq!(applied.queues(), vec![format!("{}: queue 7300", n1.netns)]);
    assert!(tables(n1).contains(DELAY_TABLE));
    let during = rtt(n1, n2);
    println!("delay 50ms ± 10ms: connect round trip {before:?} before, {during:?} during");
    assert!(
        during >= Duration::from_millis(40) && during <= Duration::from_millis(75),
        "during {during:?}"
    );
    let healed = packet::heal_shaping(applied).unwrap();
    let after = rtt(n1, n2);
    println!("after undo: {after:?}");
    assert!(after < Duration::from_millis(5), "after {after:?}");
    assert!(!tables(n1).contains(DELAY_TABLE));
    let (ns, stats) = &healed.holders[0];
    assert_eq!(ns, &n1.netns);
    assert!(stats.received >= 5, "{stats:?}");
    assert_eq!(
        stats.released, stats.received,
        "nothing left held: {stats:?}"
    );
    assert_eq!(stats.overtaken, 0, "delay keeps the order: {stats:?}");
    let mean = stats.mean_hold();
    assert!(
        mean >= Duration::from_millis(38) && mean <= Duration::from_millis(65),
        "mean hold {mean:?}"
    );
}

#[test]
fn reorder_keeps_a_stream_intact_even_when_undone_mid_stream() {
    if !runnable("reorder_keeps_a_stream_intact_even_when_undone_mid_stream") {
        return;
    }
    let topology = Topology::create(RunId::random(), 2).unwrap();
    let (n1, n2) = (&topology.nodes()[0], &topology.nodes()[1]);
    let applied = apply(
        Shaping::Reorder {
            max_delay: Duration::from_millis(20),
        },
        n1,
        n2,
    );
    let data = payload(512 * 1024);
    let receiver = receive_in(n2);
    let started = Instant::now();
    let sender = send_from(n1, n2, data.clone(), Duration::from_millis(10));
    // Undo while the stream still runs: held packets are released, none is lost.
    std::thread::sleep(Duration::from_millis(150));
    let healed = packet::heal_shaping(applied).unwrap();
    sender.join().unwrap();
    let received = receiver.join().unwrap();
    println!(
        "reorder 0..20ms: {} bytes in {:?}, holder {:?}",
        received.len(),
        started.elapsed(),
        healed.holders[0].1
    );
    assert_eq!(received.len(), data.len());
    assert!(received == data, "the stream arrives intact and in order");
    let stats = &healed.holders[0].1;
    assert!(stats.received > 10, "{stats:?}");
    assert_eq!(stats.released, stats.received, "{stats:?}");
    assert!(
        stats.overtaken > 0,
        "later packets overtook earlier ones: {stats:?}"
    );
    assert!(!tables(n1).contains(REORDER_TABLE));
}

#[test]
fn duplication_counts_copies_and_the_stream_stays_intact() {
    if !runnable("duplication_counts_copies_and_the_stream_stays_intact") {
        return;
    }
    let topology = Topology::create(RunId::random(), 2).unwrap();
    let (n1, n2) = (&topology.nodes()[0], &topology.nodes()[1]);
    let applied = apply(Shaping::Duplicate { percent: 50 }, n1, n2);
    let data = payload(256 * 1024);
    let receiver = receive_in(n2);
    let sender = send_from(n1, n2, data.clone(), Duration::ZERO);
    sender.join().unwrap();
    let received = receiver.join().unwrap();
    assert!(
        received == data,
        "the stream arrives intact despite duplicates"
    );
    let copies = packet::table_packets(&n1.netns, DUP_TABLE).unwrap();
    println!("duplicate 50%: {copies} packets copied");
    assert!(copies > 0);
    packet::heal_shaping(applied).unwrap();
    assert!(!tables(n1).contains(DUP_TABLE));
}

#[test]
fn dropping_an_applied_fault_removes_rules_and_releases_packets() {
    if !runnable("dropping_an_applied_fault_removes_rules_and_releases_packets") {
        return;
    }
    let topology = Topology::create(RunId::random(), 2).unwrap();
    let (n1, n2) = (&topology.nodes()[0], &topology.nodes()[1]);
    let applied = apply(
        Shaping::Delay {
            mean: Duration::from_millis(300),
            jitter: Duration::ZERO,
        },
        n1,
        n2,
    );
    // A connect whose SYN is held when the guard drops: released, so it is refused quickly
    // instead of waiting for a retransmission a second later.
    let probe = {
        let (netns, ip) = (n1.netns.clone(), n2.ip);
        std::thread::spawn(move || packet::connect_rtts(&netns, ip, 1, PROBE_TIMEOUT).unwrap())
    };
    std::thread::sleep(Duration::from_millis(50));
    drop(applied);
    let held_probe = probe.join().unwrap()[0];
    assert!(
        held_probe < Duration::from_millis(250),
        "the held SYN was released at drop: {held_probe:?}"
    );
    assert!(!tables(n1).contains(DELAY_TABLE));
    assert!(rtt(n1, n2) < Duration::from_millis(5));
}

#[test]
fn cleanup_removes_every_shaping_table() {
    if !runnable("cleanup_removes_every_shaping_table") {
        return;
    }
    let topology = Topology::create(RunId::random(), 2).unwrap();
    let (n1, n2) = (&topology.nodes()[0], &topology.nodes()[1]);
    let dup = apply(Shaping::Duplicate { percent: 10 }, n1, n2);
    // As after a crash: the rules stay, nothing undoes them but cleanup.
    std::mem::forget(dup);
    assert!(tables(n1).contains(DUP_TABLE));
    packet::heal_shaping_namespaces(std::slice::from_ref(&n1.netns)).unwrap();
    assert!(!tables(n1).contains(DUP_TABLE));
}

#[test]
fn loss_shows_dropped_packets_in_its_counter_and_heal_removes_it() {
    if !runnable("loss_shows_dropped_packets_in_its_counter_and_heal_removes_it") {
        return;
    }
    let topology = Topology::create(RunId::random(), 2).unwrap();
    let (n1, n2) = (&topology.nodes()[0], &topology.nodes()[1]);
    // Without the fault there is no counter to read: no evidence of loss.
    let (_, before) = packet::loss_evidence(&[(n1.netns.clone(), n2.ip)]);
    assert!(!before, "no loss rules, no evidence of loss");
    packet::apply_loss(std::slice::from_ref(&n1.netns), 1).unwrap();
    let (evidence, effective) = packet::loss_evidence(&[(n1.netns.clone(), n2.ip)]);
    println!("loss 1%: {evidence:?}");
    assert!(effective, "{evidence:?}");
    let dropped = packet::loss_dropped(&n1.netns).unwrap();
    assert!(dropped > 0 && dropped < packet::LOSS_PROBE_DATAGRAMS as u64 / 2);
    packet::heal_loss(std::slice::from_ref(&n1.netns)).unwrap();
    assert!(!tables(n1).contains(packet::LOSS_TABLE));
}
