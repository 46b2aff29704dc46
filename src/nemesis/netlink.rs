//! Blackhole routes through netlink, for partitions that go in on time.
//!
//! Starting an `ip` process per namespace costs 5–10 ms on an idle machine and up to 100 ms
//! on a loaded one: too slow for a partition that must be in force within 20 ms of its
//! scheduled time. Here each node namespace gets one thread, started with the nemesis, that
//! entered the namespace once and holds an rtnetlink socket there (a netlink socket belongs
//! to the namespace of the thread that opened it). Applying a cut sends each thread its
//! routes; all threads work in parallel, each with a few `sendto`s and the kernel's acks.

use crate::netns;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Add or remove routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Add,
    Delete,
}

struct Job {
    change: Change,
    destinations: Vec<Ipv4Addr>,
    reply: mpsc::Sender<Result<(), String>>,
}

struct Worker {
    jobs: mpsc::Sender<Job>,
    thread: Option<JoinHandle<()>>,
}

/// One route-socket thread per namespace.
pub struct RouteWorkers {
    workers: HashMap<String, Worker>,
}

impl RouteWorkers {
    /// Starts a thread in each of `namespaces` and waits until each holds its socket.
    pub fn start(namespaces: &[String]) -> Result<RouteWorkers, String> {
        let mut workers = HashMap::new();
        for ns in namespaces {
            let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
            let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
            let name = ns.clone();
            let thread = std::thread::Builder::new()
                .name(format!("routes-{ns}"))
                .spawn(move || {
                    let socket = netns::enter(&name)
                        .map_err(|e| e.to_string())
                        .and_then(|()| open_socket().map_err(|e| format!("netlink socket: {e}")));
                    let socket = match socket {
                        Ok(s) => {
                            let _ = ready_tx.send(Ok(()));
                            s
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let mut sequence = 0u32;
                    while let Ok(job) = jobs_rx.recv() {
                        let result = apply(&socket, &mut sequence, job.change, &job.destinations);
                        let _ = job.reply.send(result);
                    }
                })
                .map_err(|e| format!("starting a route thread for {ns}: {e}"))?;
            ready_rx
                .recv()
                .map_err(|_| format!("route thread for {ns} died"))?
                .map_err(|e| format!("{ns}: {e}"))?;
            workers.insert(
                ns.clone(),
                Worker {
                    jobs: jobs_tx,
                    thread: Some(thread),
                },
            );
        }
        Ok(RouteWorkers { workers })
    }

    /// Adds or removes blackhole routes: per namespace, the destinations it must (no longer)
    /// drop. All namespaces in parallel; the first error is returned after all finished.
    /// Deleting a route that is gone, or adding one that exists, is not an error.
    pub fn apply(&self, change: Change, jobs: &[(String, Vec<Ipv4Addr>)]) -> Result<(), String> {
        let mut replies = Vec::with_capacity(jobs.len());
        for (ns, destinations) in jobs {
            let worker = self
                .workers
                .get(ns)
                .ok_or_else(|| format!("no route thread for namespace {ns}"))?;
            let (tx, rx) = mpsc::channel();
            worker
                .jobs
                .send(Job {
                    change,
                    destinations: destinations.clone(),
                    reply: tx,
                })
                .map_err(|_| format!("route thread for {ns} is gone"))?;
            replies.push((ns, rx));
        }
        let mut first_error = None;
        for (ns, rx) in replies {
            let result = rx
                .recv()
                .unwrap_or_else(|_| Err("route thread died".to_owned()));
            if let Err(e) = result {
                first_error.get_or_insert(format!("{ns}: {e}"));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for RouteWorkers {
    fn drop(&mut self) {
        for (_, mut worker) in self.workers.drain() {
            drop(worker.jobs);
            if let Some(t) = worker.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn open_socket() -> std::io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// The message `ip route add|del blackhole <dst>/32` sends.
fn route_message(change: Change, dst: Ipv4Addr, sequence: u32) -> Vec<u8> {
    let mut header = RouteHeader {
        address_family: AddressFamily::Inet,
        destination_prefix_length: 32,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Boot,
        scope: RouteScope::Universe,
        kind: RouteType::BlackHole,
        ..RouteHeader::default()
    };
    let (inner, flags) = match change {
        Change::Add => (
            RouteNetlinkMessage::NewRoute as fn(RouteMessage) -> RouteNetlinkMessage,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ),
        Change::Delete => {
            // As `ip route del`: scope "nowhere" matches the route whatever its scope.
            header.scope = RouteScope::NoWhere;
            (
                RouteNetlinkMessage::DelRoute as fn(RouteMessage) -> RouteNetlinkMessage,
                NLM_F_REQUEST | NLM_F_ACK,
            )
        }
    };
    let mut route = RouteMessage::default();
    route.header = header;
    route.attributes = vec![RouteAttribute::Destination(RouteAddress::Inet(dst))];
    let mut nl_header = NetlinkHeader::default();
    nl_header.flags = flags;
    nl_header.sequence_number = sequence;
    let mut message = NetlinkMessage::new(nl_header, NetlinkPayload::InnerMessage(inner(route)));
    message.finalize();
    let mut buf = vec![0u8; message.buffer_len()];
    message.serialize(&mut buf);
    buf
}

/// Sends every route change, then reads one ack per change.
fn apply(
    socket: &Socket,
    sequence: &mut u32,
    change: Change,
    destinations: &[Ipv4Addr],
) -> Result<(), String> {
    let first = *sequence;
    for dst in destinations {
        *sequence = sequence.wrapping_add(1);
        let msg = route_message(change, *dst, *sequence);
        socket
            .send(&msg, 0)
            .map_err(|e| format!("sending route {dst}: {e}"))?;
    }
    let mut pending = destinations.len();
    let mut error = None;
    let mut buf = vec![0u8; 16 * 1024];
    while pending > 0 {
        let n = socket
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| format!("reading netlink acks: {e}"))?;
        let mut offset = 0;
        while offset < n {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..n])
                .map_err(|e| format!("bad netlink reply: {e}"))?;
            let len = msg.header.length as usize;
            let seq = msg.header.sequence_number;
            if let NetlinkPayload::Error(e) = msg.payload {
                if seq.wrapping_sub(first) as usize <= destinations.len() {
                    pending -= 1;
                    let code = e.code.map_or(0, |c| -c.get());
                    // EEXIST on add, ESRCH on delete: already as wanted.
                    let fine = code == 0
                        || (change == Change::Add && code == nix::libc::EEXIST)
                        || (change == Change::Delete && code == nix::libc::ESRCH);
                    if !fine {
                        error.get_or_insert(format!(
                            "route {:?} failed: {}",
                            change,
                            std::io::Error::from_raw_os_error(code)
                        ));
                    }
                }
            }
            if len == 0 {
                break;
            }
            offset += (len + 3) & !3;
        }
    }
    error.map_or(Ok(()), Err)
}
