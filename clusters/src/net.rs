//! Server plumbing shared by every architecture: one TCP port, JSON lines, one request line
//! → one response line. A line with an `rpc` field is a peer message; anything else is a
//! client request.
//!
//! Peers talk through [`Peers`]: a pool of idle connections per peer, so steady traffic does
//! not churn through ephemeral ports.

use crate::config::Peer;
use crate::protocol::{ClientRequest, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Longest line accepted from anyone; a longer one closes the connection.
const MAX_LINE: usize = 16 * 1024 * 1024;

/// One architecture's request handlers.
pub trait Node: Send + Sync + 'static {
    fn handle_client(
        self: Arc<Self>,
        request: ClientRequest,
    ) -> impl Future<Output = Response> + Send;
    /// Handles a peer message (a JSON object with an `rpc` field); the reply is any JSON.
    fn handle_peer(self: Arc<Self>, message: Json) -> impl Future<Output = Json> + Send;
}

/// Accepts connections forever; each connection is served by its own task.
pub async fn serve<N: Node>(listener: TcpListener, node: Arc<N>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let node = Arc::clone(&node);
                tokio::spawn(async move {
                    let _ = serve_connection(stream, node).await;
                });
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(e) => {
                crate::log!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection<N: Node>(stream: TcpStream, node: Arc<N>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 || line.len() > MAX_LINE {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Json>(&line) {
            Ok(message) if message.get("rpc").is_some() => {
                Arc::clone(&node).handle_peer(message).await
            }
            Ok(message) => match serde_json::from_value::<ClientRequest>(message) {
                Ok(request) => to_json(&Arc::clone(&node).handle_client(request).await),
                Err(e) => to_json(&Response::fail(format!("bad-request: {e}"), true)),
            },
            Err(e) => to_json(&Response::fail(format!("bad-request: {e}"), true)),
        };
        let mut out = serde_json::to_vec(&reply).unwrap_or_default();
        out.push(b'\n');
        write.write_all(&out).await?;
    }
}

/// Serializes a reply; every type here is plain data, so this cannot fail.
pub fn to_json<T: Serialize>(value: &T) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

/// Why a message to a peer got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The connection could not be opened: the message certainly was not delivered.
    #[error("cannot connect to n{peer}: {source}")]
    Connect { peer: u64, source: std::io::Error },
    /// No answer in time: the message may or may not have been delivered and applied.
    #[error("n{peer} did not answer in time")]
    Timeout { peer: u64 },
    /// The connection broke after the message was sent.
    #[error("connection to n{peer} broke: {source}")]
    Io { peer: u64, source: std::io::Error },
    #[error("n{peer} answered something unexpected: {detail}")]
    BadReply { peer: u64, detail: String },
    #[error("n{0} is not a member of the cluster")]
    UnknownPeer(u64),
}

impl RpcError {
    /// Whether the peer may have received (and acted on) the message.
    pub fn maybe_delivered(&self) -> bool {
        !matches!(self, RpcError::Connect { .. } | RpcError::UnknownPeer(_))
    }
}

type Connection = (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
);

/// The other members of the cluster and pooled connections to them.
pub struct Peers {
    me: u64,
    members: Vec<Peer>,
    idle: Mutex<HashMap<u64, Vec<Connection>>>,
}

impl Peers {
    pub fn new(me: u64, members: Vec<Peer>) -> Arc<Self> {
        Arc::new(Peers {
            me,
            members,
            idle: Mutex::new(HashMap::new()),
        })
    }

    pub fn me(&self) -> u64 {
        self.me
    }

    /// Every member, this node included, by id.
    pub fn members(&self) -> &[Peer] {
        &self.members
    }

    /// Every member but this node.
    pub fn others(&self) -> impl Iterator<Item = &Peer> {
        self.members.iter().filter(move |p| p.id != self.me)
    }

    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Sends `request` to `peer` and waits up to `timeout` for its one-line reply.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        peer: u64,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, RpcError> {
        let addr = self
            .members
            .iter()
            .find(|p| p.id == peer)
            .ok_or(RpcError::UnknownPeer(peer))?
            .addr;
        let mut line = serde_json::to_vec(request).map_err(|e| RpcError::BadReply {
            peer,
            detail: e.to_string(),
        })?;
        line.push(b'\n');
        let deadline = tokio::time::Instant::now() + timeout;
        // A pooled connection is used only if the peer has not closed it (it restarted,
        // say): that is checked before anything is written. Once the request is written,
        // a failure is never retried here — the peer may have acted on the request before
        // it died, and a second copy could apply a write twice.
        let conn = match self.take_live_idle(peer) {
            Some(conn) => conn,
            None => {
                let stream = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
                    .await
                    .map_err(|_| RpcError::Connect {
                        peer,
                        source: std::io::ErrorKind::TimedOut.into(),
                    })?
                    .map_err(|source| RpcError::Connect { peer, source })?;
                let _ = stream.set_nodelay(true);
                let (read, write) = stream.into_split();
                (BufReader::new(read), write)
            }
        };
        let (reply, conn) = self
            .exchange(peer, conn, &line, deadline)
            .await
            .map_err(|e| e.unwrap_or(RpcError::Timeout { peer }))?;
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(peer)
            .or_default()
            .push(conn);
        serde_json::from_str(&reply).map_err(|e| RpcError::BadReply {
            peer,
            detail: format!("{e}: {}", reply.trim()),
        })
    }

    /// A pooled connection to `peer` that is still open: one whose peer closed it (EOF or
    /// reset waiting) or that holds unexpected bytes is dropped, and the next one tried.
    fn take_live_idle(&self, peer: u64) -> Option<Connection> {
        loop {
            let conn = self
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&peer)
                .and_then(Vec::pop)?;
            let mut probe = [0u8; 1];
            let idle_and_open = conn.0.buffer().is_empty()
                && matches!(
                    conn.0.get_ref().try_read(&mut probe),
                    Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock
                );
            if idle_and_open {
                return Some(conn);
            }
        }
    }

    async fn exchange(
        &self,
        peer: u64,
        (mut reader, mut writer): Connection,
        line: &[u8],
        deadline: tokio::time::Instant,
    ) -> Result<(String, Connection), Option<RpcError>> {
        let work = async {
            writer
                .write_all(line)
                .await
                .map_err(|source| RpcError::Io { peer, source })?;
            let mut reply = String::new();
            let n = reader
                .read_line(&mut reply)
                .await
                .map_err(|source| RpcError::Io { peer, source })?;
            if n == 0 {
                return Err(RpcError::Io {
                    peer,
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
            Ok(reply)
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(Ok(reply)) => Ok((reply, (reader, writer))),
            Ok(Err(e)) => Err(Some(e)),
            Err(_) => Err(Some(RpcError::Timeout { peer })),
        }
    }
}
