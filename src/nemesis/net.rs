//! The one place where a grudge becomes kernel state, and where it is removed again.
//!
//! Two backends:
//! * **blackhole routes on the senders** (always available, needs only iproute2): a sender
//!   gets `blackhole <peer>/32` for every peer that must not hear it. New connects fail at
//!   once, established connections stall silently, and traffic resumes by retransmission
//!   after heal.
//! * **nftables drops on the receivers** (where `nft` is installed; Jepsen's way): each
//!   receiver gets a table `inet splitbrain` dropping the senders it holds a grudge against.
//!
//! Both use DROP semantics, never REJECT: a partition looks like silence, not like a
//! refusal. IPv6 is disabled in every namespace by the topology, so v4 rules suffice.
//! Changes go as one job per namespace, all namespaces in parallel.

use super::netlink::{Change, RouteWorkers};
use super::partition::Grudge;
use crate::netns::{self, IpBatch, NetnsError};
use crate::topology::NodeNet;
use serde::{Deserialize, Serialize};
use std::io;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

/// The nftables table every partition rule lives in (one per node namespace).
pub const NFT_TABLE: &str = "splitbrain";

/// How partitions are put into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetBackend {
    /// Blackhole routes on the senders (needs nothing beyond iproute2).
    #[default]
    Blackhole,
    /// nftables drop rules on the receivers (needs `nft`).
    Nftables,
}

impl NetBackend {
    pub fn name(self) -> &'static str {
        match self {
            NetBackend::Blackhole => "blackhole",
            NetBackend::Nftables => "nftables",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("partition names node {0}, which is not in the cluster")]
    UnknownNode(String),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("nft in {netns}: {message}")]
    Nft { netns: String, message: String },
}

/// What one partition put into the kernel: enough to describe it and to undo it.
#[derive(Debug, Clone)]
pub struct AppliedCut {
    pub backend: NetBackend,
    pub grudge: Grudge,
    /// Per namespace, the lines applied there (ip batch lines or the nft script).
    pub changes: Vec<(String, Vec<String>)>,
    /// Blackhole routes per sender namespace (to remove exactly these on heal).
    pub routes: Option<Vec<(String, Vec<std::net::Ipv4Addr>)>>,
    pub took: Duration,
}

impl AppliedCut {
    /// The namespaces that hold state of this cut.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.changes.iter().map(|(ns, _)| ns.as_str())
    }
}

fn find<'a>(nodes: &'a [NodeNet], name: &str) -> Result<&'a NodeNet, NetError> {
    nodes
        .iter()
        .find(|n| n.name == name)
        .ok_or_else(|| NetError::UnknownNode(name.to_owned()))
}

/// The per-namespace changes of `grudge` for `backend` (pure; nothing is applied).
pub fn plan_changes(
    backend: NetBackend,
    nodes: &[NodeNet],
    grudge: &Grudge,
) -> Result<Vec<(String, Vec<String>)>, NetError> {
    let mut changes = Vec::new();
    match backend {
        NetBackend::Blackhole => {
            for (sender, receivers) in grudge.by_sender() {
                let sender = find(nodes, &sender)?;
                let lines = receivers
                    .iter()
                    .map(|r| find(nodes, r).map(|r| format!("route add blackhole {}/32", r.ip)))
                    .collect::<Result<Vec<_>, _>>()?;
                changes.push((sender.netns.clone(), lines));
            }
        }
        NetBackend::Nftables => {
            for (receiver, senders) in &grudge.0 {
                if senders.is_empty() {
                    continue;
                }
                let receiver = find(nodes, receiver)?;
                let ips = senders
                    .iter()
                    .map(|s| find(nodes, s).map(|s| s.ip.to_string()))
                    .collect::<Result<Vec<_>, _>>()?;
                // Priority -10 runs before any accept rule a system might install at 0.
                changes.push((
                    receiver.netns.clone(),
                    vec![
                        format!("add table inet {NFT_TABLE}"),
                        format!(
                            "add chain inet {NFT_TABLE} input {{ type filter hook input priority -10; policy accept; }}"
                        ),
                        format!("add rule inet {NFT_TABLE} input ip saddr {{ {} }} drop", ips.join(", ")),
                    ],
                ));
            }
        }
    }
    Ok(changes)
}

/// Per sender namespace, the peers it must not send to (the blackhole routes of `grudge`).
fn blackhole_routes(
    nodes: &[NodeNet],
    grudge: &Grudge,
) -> Result<Vec<(String, Vec<std::net::Ipv4Addr>)>, NetError> {
    grudge
        .by_sender()
        .into_iter()
        .map(|(sender, receivers)| {
            let sender = find(nodes, &sender)?;
            let ips = receivers
                .iter()
                .map(|r| find(nodes, r).map(|r| r.ip))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((sender.netns.clone(), ips))
        })
        .collect()
}

/// Puts `grudge` into the kernel, one job per namespace, in parallel. Blackhole routes go
/// through `routes` (netlink threads) when given, else through `ip -batch`.
pub fn apply(
    backend: NetBackend,
    nodes: &[NodeNet],
    grudge: &Grudge,
    routes: Option<&RouteWorkers>,
) -> Result<AppliedCut, NetError> {
    let started = Instant::now();
    let changes = plan_changes(backend, nodes, grudge)?;
    let cut = AppliedCut {
        backend,
        grudge: grudge.clone(),
        changes,
        routes: match backend {
            NetBackend::Blackhole => Some(blackhole_routes(nodes, grudge)?),
            NetBackend::Nftables => None,
        },
        took: Duration::ZERO,
    };
    let result = match (backend, routes) {
        (NetBackend::Blackhole, Some(routes)) => routes
            .apply(Change::Add, &blackhole_routes(nodes, grudge)?)
            .map_err(NetError::Netlink),
        (NetBackend::Blackhole, None) => {
            netns::ip_batches(&ip_jobs(&cut.changes, false)).map_err(NetError::from)
        }
        (NetBackend::Nftables, _) => nft_parallel(&cut.changes),
    };
    if let Err(e) = result {
        // Some namespaces may have their part already: take it out again.
        let _ = heal(&cut, None);
        return Err(e);
    }
    Ok(AppliedCut {
        took: started.elapsed(),
        ..cut
    })
}

fn ip_jobs(changes: &[(String, Vec<String>)], force: bool) -> Vec<IpBatch> {
    changes
        .iter()
        .map(|(ns, lines)| {
            let mut batch = IpBatch::new(Some(ns));
            batch.force = force;
            for line in lines {
                batch.line(line.clone());
            }
            batch
        })
        .collect()
}

/// Removes what `cut` put in. Returns how long it took. Idempotent.
pub fn heal(cut: &AppliedCut, routes: Option<&RouteWorkers>) -> Result<Duration, NetError> {
    let started = Instant::now();
    if let (NetBackend::Blackhole, Some(routes)) = (cut.backend, routes) {
        if let Some(jobs) = cut.routes.as_ref() {
            routes
                .apply(Change::Delete, jobs)
                .map_err(NetError::Netlink)?;
            return Ok(started.elapsed());
        }
    }
    let namespaces: Vec<String> = cut.namespaces().map(str::to_owned).collect();
    heal_namespaces(cut.backend, &namespaces)?;
    Ok(started.elapsed())
}

/// Removes every partition of `backend` from `namespaces` (missing state is fine).
pub fn heal_namespaces(backend: NetBackend, namespaces: &[String]) -> Result<(), NetError> {
    let existing: Vec<&String> = namespaces.iter().filter(|ns| netns::exists(ns)).collect();
    match backend {
        NetBackend::Blackhole => {
            // Only partitions make blackhole routes in the run's namespaces.
            let jobs: Vec<(String, Vec<String>)> = existing
                .iter()
                .map(|ns| ((*ns).clone(), vec!["route flush type blackhole".to_owned()]))
                .collect();
            netns::ip_batches(&ip_jobs(&jobs, true))?;
        }
        NetBackend::Nftables => {
            let jobs: Vec<(String, Vec<String>)> = existing
                .iter()
                .map(|ns| ((*ns).clone(), delete_table_script(NFT_TABLE)))
                .collect();
            nft_parallel(&jobs)?;
        }
    }
    Ok(())
}

/// Deletes a table whether or not it exists (`add` is idempotent; nft 1.0.6 has no
/// `destroy`).
pub fn delete_table_script(table: &str) -> Vec<String> {
    vec![
        format!("add table inet {table}"),
        format!("delete table inet {table}"),
    ]
}

/// Runs one `nft -f -` per namespace, in parallel; the first failure is returned after all
/// finished.
pub fn nft_parallel(jobs: &[(String, Vec<String>)]) -> Result<(), NetError> {
    let failures = netns::feed_parallel("nft", &["-f", "-"], jobs)?;
    match failures.into_iter().next() {
        Some((netns, message)) => Err(NetError::Nft { netns, message }),
        None => Ok(()),
    }
}

/// What a TCP probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The peer's kernel answered (a connection, or a refusal of a closed port).
    Reachable,
    /// No answer, or the local kernel refused to send (a blackhole route: EINVAL).
    Blocked(String),
}

impl Reach {
    pub fn is_blocked(&self) -> bool {
        matches!(self, Reach::Blocked(_))
    }

    pub fn describe(&self) -> String {
        match self {
            Reach::Reachable => "reachable".to_owned(),
            Reach::Blocked(why) => format!("blocked ({why})"),
        }
    }
}

/// The port probes connect to: the discard port, which no node listens on, so a reachable
/// peer answers at once with a refusal and no node ever sees a probe connection.
pub const PROBE_PORT: u16 = 9;

/// Connects from inside `from`'s namespace to `to` (port [`PROBE_PORT`]) once.
pub fn probe(from: &NodeNet, to: &NodeNet, timeout: Duration) -> Result<Reach, NetnsError> {
    let addr = SocketAddr::V4(SocketAddrV4::new(to.ip, PROBE_PORT));
    let handle = netns::spawn_in(&from.netns, move || {
        TcpStream::connect_timeout(&addr, timeout)
    })?;
    let result = handle
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("probe thread panicked")));
    Ok(match result {
        Ok(_) => Reach::Reachable,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Reach::Reachable,
        Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
            Reach::Blocked(format!("no answer within {timeout:?}"))
        }
        Err(e) => Reach::Blocked(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{RunId, TopologyPlan};

    #[test]
    fn blackhole_changes_go_on_the_senders() {
        let plan = TopologyPlan::new(RunId::parse("t1").unwrap(), 3).unwrap();
        let mut g = Grudge::none();
        g.add("n1", "n2"); // n1 must not hear n2: n2 gets the route to n1.
        let changes = plan_changes(NetBackend::Blackhole, &plan.nodes, &g).unwrap();
        assert_eq!(
            changes,
            vec![(
                "sb-t1-n2".to_owned(),
                vec!["route add blackhole 10.73.0.11/32".to_owned()]
            )]
        );
        let changes = plan_changes(NetBackend::Nftables, &plan.nodes, &g).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].0, "sb-t1-n1");
        assert!(changes[0]
            .1
            .last()
            .unwrap()
            .ends_with("ip saddr { 10.73.0.12 } drop"));
        assert!(changes[0].1.iter().all(|l| !l.contains("reject")));
        g.add("n9", "n1");
        assert!(
            matches!(plan_changes(NetBackend::Blackhole, &plan.nodes, &g), Err(NetError::UnknownNode(n)) if n == "n9")
        );
    }
}
