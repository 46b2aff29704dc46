//! Who leads: a small query per system, so faults can target the leader/primary.
//!
//! Queries run from the switch namespace, like clients (the controller's own namespace
//! cannot reach the nodes), on a short-lived thread each, nodes in parallel.

use crate::netns;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::Deserialize;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What one node says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub node: String,
    /// The node leads (etcd: its member id is the leader id; clusterkv: role `leader`).
    pub is_leader: bool,
    /// The term (raft) the node is in, to break ties between two self-declared leaders.
    pub term: u64,
    /// The node's wall clock in ms since the epoch, if it reports it (clock evidence).
    pub time_ms: Option<u64>,
}

/// Asks one node about its role. Blocking; called from a thread inside the switch namespace.
pub trait RoleQuery: Send + Sync {
    /// The system's name, for notes.
    fn system(&self) -> &str;
    fn status(&self, node: &str, addr: SocketAddr, timeout: Duration)
        -> Result<NodeStatus, String>;
}

/// etcd: `POST /v3/maintenance/status` on the JSON gateway; the member whose id equals the
/// reported leader id leads.
pub struct EtcdRoles;

#[derive(Deserialize)]
struct EtcdStatus {
    header: EtcdHeader,
    #[serde(default)]
    leader: Option<String>,
    #[serde(default, rename = "raftTerm")]
    raft_term: Option<String>,
}

#[derive(Deserialize)]
struct EtcdHeader {
    member_id: String,
}

impl RoleQuery for EtcdRoles {
    fn system(&self) -> &str {
        "etcd"
    }

    fn status(
        &self,
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<NodeStatus, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let body = runtime.block_on(async {
            tokio::time::timeout(timeout, http_post(addr, "/v3/maintenance/status", "{}"))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
        })?;
        let status: EtcdStatus =
            serde_json::from_slice(&body).map_err(|e| format!("unreadable status: {e}"))?;
        Ok(NodeStatus {
            node: node.to_owned(),
            is_leader: status.leader.as_deref() == Some(status.header.member_id.as_str()),
            term: status.raft_term.and_then(|t| t.parse().ok()).unwrap_or(0),
            time_ms: None,
        })
    }
}

async fn http_post(addr: SocketAddr, path: &str, body: &str) -> Result<Bytes, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        // Ends with an error whenever the peer goes away; the request sees that itself.
        let _ = conn.await;
    });
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let ok = response.status().is_success();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    driver.abort();
    if !ok {
        return Err(format!("http error: {}", String::from_utf8_lossy(&bytes)));
    }
    Ok(bytes)
}

/// clusterkv: the `{"op":"status"}` request of its JSON-lines protocol.
pub struct ClusterKvRoles;

#[derive(Deserialize)]
struct ClusterKvStatus {
    ok: bool,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    term: Option<u64>,
    #[serde(default)]
    time_ms: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

impl RoleQuery for ClusterKvRoles {
    fn system(&self) -> &str {
        "clusterkv"
    }

    fn status(
        &self,
        node: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<NodeStatus, String> {
        let status = clusterkv_status(addr, timeout)?;
        Ok(NodeStatus {
            node: node.to_owned(),
            is_leader: status
                .role
                .as_deref()
                .is_some_and(|r| r == "leader" || r == "primary"),
            term: status.term.unwrap_or(0),
            time_ms: status.time_ms,
        })
    }
}

fn clusterkv_status(addr: SocketAddr, timeout: Duration) -> Result<ClusterKvStatus, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"{\"op\":\"status\"}\n")
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let status: ClusterKvStatus =
        serde_json::from_str(&line).map_err(|e| format!("unreadable status {line:?}: {e}"))?;
    if !status.ok {
        return Err(status.error.unwrap_or_else(|| "status refused".to_owned()));
    }
    Ok(status)
}

/// Queries every `(node, addr)` in parallel from namespace `from_netns`.
pub fn statuses(
    query: &std::sync::Arc<dyn RoleQuery>,
    from_netns: &str,
    nodes: &[(String, SocketAddr)],
    timeout: Duration,
) -> Vec<Result<NodeStatus, String>> {
    let handles: Vec<_> = nodes
        .iter()
        .map(|(node, addr)| {
            let query = query.clone();
            let (node, addr) = (node.clone(), *addr);
            netns::spawn_in(from_netns, move || query.status(&node, addr, timeout))
                .map_err(|e| e.to_string())
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.and_then(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("status query panicked".to_owned()))
            })
        })
        .collect()
}

/// The leader among `statuses`: the self-declared leader with the highest term.
pub fn leader_of(statuses: &[Result<NodeStatus, String>]) -> Option<String> {
    statuses
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .filter(|s| s.is_leader)
        .max_by_key(|s| s.term)
        .map(|s| s.node.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(node: &str, is_leader: bool, term: u64) -> Result<NodeStatus, String> {
        Ok(NodeStatus {
            node: node.into(),
            is_leader,
            term,
            time_ms: None,
        })
    }

    #[test]
    fn the_newest_self_declared_leader_wins() {
        assert_eq!(
            leader_of(&[st("n1", false, 3), st("n2", true, 3), Err("down".into())]),
            Some("n2".into())
        );
        // A deposed leader behind a partition still believes it leads, in an older term.
        assert_eq!(
            leader_of(&[st("n1", true, 2), st("n3", true, 4)]),
            Some("n3".into())
        );
        assert_eq!(leader_of(&[st("n1", false, 1), Err("x".into())]), None);
    }

    #[test]
    fn etcd_status_json_is_understood() {
        let text = r#"{"header":{"cluster_id":"1","member_id":"42","revision":"3","raft_term":"2"},
                       "version":"3.4.23","leader":"42","raftIndex":"9","raftTerm":"2"}"#;
        let s: EtcdStatus = serde_json::from_str(text).unwrap();
        assert_eq!(s.leader.as_deref(), Some(s.header.member_id.as_str()));
        assert_eq!(s.raft_term.as_deref(), Some("2"));
    }
}
