//! The `command` system: any cluster the harness can start from command templates and talk
//! to through an external client program.
//!
//! A campaign describes how to start one node (a program and argument templates) and how
//! to run a client (another program). Placeholders such as `{ip}` or `{peers}` are
//! substituted per argument and each argument is passed to the program as one argv entry
//! — never through a shell — so an argument with spaces or `;` arrives intact.
//!
//! The client program speaks JSON lines over stdin/stdout; `docs/command-system.md`
//! specifies the protocol. One program runs per client process; it is restarted after it
//! dies, misbehaves or overruns a request's deadline.

use super::{
    BoxFuture, Client, ClusterSpec, Function, LaunchSpec, NodeSpec, Outcome, Readiness, Request,
    System,
};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use splitbrain_checkers::Value;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "node",
    "id",
    "ip",
    "port",
    "peer_port",
    "peers",
    "peer_ips",
    "data_dir",
    "cluster_size",
];

/// Errors in a command specification or its templates.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    #[error("template {template:?}: unknown placeholder {{{name}}} (known: {known})", known = PLACEHOLDERS.join(", "))]
    UnknownPlaceholder { template: String, name: String },
    #[error("template {template:?}: unclosed `{{` (write `{{{{` for a literal brace)")]
    UnclosedBrace { template: String },
    #[error("template {template:?}: stray `}}` (write `}}}}` for a literal brace)")]
    StrayBrace { template: String },
    #[error("{what}: the program is empty")]
    EmptyProgram { what: &'static str },
    #[error("readiness command is empty")]
    EmptyReadinessCommand,
    #[error("role command is empty")]
    EmptyRoleCommand,
    #[error("node {0} is not part of the cluster")]
    NodeNotInCluster(String),
    #[error("cannot run version command {program:?}: {message}")]
    Version { program: String, message: String },
    #[error("{what} program {program:?} not found ({where_})")]
    ProgramNotFound {
        what: &'static str,
        program: String,
        where_: String,
    },
}

/// How a campaign runs an arbitrary system (embedded in the campaign file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// Short name for tables and paths; `command` when absent.
    #[serde(default, deserialize_with = "crate::limits::option_path_name")]
    pub name: Option<String>,
    pub node: NodeCommand,
    pub client: ClientCommand,
    /// A command (argv, not templated) whose first line of output is the system's version.
    #[serde(default)]
    pub version: Option<Vec<String>>,
}

/// How to start one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCommand {
    #[serde(deserialize_with = "templates::one")]
    pub program: String,
    #[serde(default, deserialize_with = "templates::list")]
    pub args: Vec<String>,
    /// Extra environment; values are templates too.
    #[serde(default, deserialize_with = "templates::env")]
    pub env: BTreeMap<String, String>,
    /// The port clients connect to (`{port}`).
    pub port: u16,
    /// The port peers connect to (`{peer_port}`, and the port in `{peers}`); `port` when
    /// absent.
    #[serde(default)]
    pub peer_port: Option<u16>,
    pub readiness: ReadinessCommand,
    /// A command (argv, templated) run inside the node's network namespace that prints the
    /// node's role (`leader`, `follower`, `primary`, `replica`, …, optionally followed by
    /// its term), so faults aimed at the leader hit the node that leads. Absent: the
    /// system cannot say who leads.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "templates::option_list"
    )]
    pub role: Option<Vec<String>>,
    /// How long the `role` command may take before its node counts as not answering.
    #[serde(
        default = "default_role_timeout_ms",
        deserialize_with = "crate::limits::u64_in::<_, 100, MAX_ROLE_TIMEOUT_MS>"
    )]
    pub role_timeout_ms: u64,
}

fn default_role_timeout_ms() -> u64 {
    2_000
}

/// Longest `role_timeout_ms`: a minute.
pub const MAX_ROLE_TIMEOUT_MS: u64 = 60_000;

/// How to tell a node is ready. Written `{ tcp_port: 7000 }`,
/// `{ command: [program, arg, ...] }` or `{ client_read: KEY }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ReadinessFields", into = "ReadinessFields")]
pub enum ReadinessCommand {
    /// A TCP connect to the node's address at this port succeeds.
    TcpPort(u16),
    /// This argv (templated, first entry the program) exits 0.
    Command(Vec<String>),
    /// The client program, bound to the node, answers `ok` to a read of this key.
    ClientRead(Value),
}

/// The written form of [`ReadinessCommand`]: a map with exactly one of two keys (YAML
/// enums would otherwise need `!tags`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadinessFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tcp_port: Option<u16>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "templates::option_list"
    )]
    command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_read: Option<Value>,
}

impl TryFrom<ReadinessFields> for ReadinessCommand {
    type Error = String;
    fn try_from(fields: ReadinessFields) -> Result<Self, String> {
        match (fields.tcp_port, fields.command, fields.client_read) {
            (Some(port), None, None) => Ok(ReadinessCommand::TcpPort(port)),
            (None, Some(argv), None) => Ok(ReadinessCommand::Command(argv)),
            (None, None, Some(key)) if key != Value::Nil => Ok(ReadinessCommand::ClientRead(key)),
            (None, None, Some(_)) => Err("readiness `client_read` needs a key".to_owned()),
            _ => Err(
                "readiness needs exactly one of `tcp_port`, `command` and `client_read`".to_owned(),
            ),
        }
    }
}

impl From<ReadinessCommand> for ReadinessFields {
    fn from(readiness: ReadinessCommand) -> Self {
        let mut fields = ReadinessFields {
            tcp_port: None,
            command: None,
            client_read: None,
        };
        match readiness {
            ReadinessCommand::TcpPort(port) => fields.tcp_port = Some(port),
            ReadinessCommand::Command(argv) => fields.command = Some(argv),
            ReadinessCommand::ClientRead(key) => fields.client_read = Some(key),
        }
        fields
    }
}

/// A readiness check through the campaign's client program: start it, send one read of
/// `key`, and call the node ready when the answer is `ok`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientReadProbe {
    /// The client program as bound to the node.
    pub client: LaunchSpec,
    pub key: Value,
}

/// Longest one readiness read may take (the node's remaining deadline may be shorter).
const CLIENT_READ_ATTEMPT: Duration = Duration::from_secs(5);
/// Shortest one readiness read is given, even when the node's deadline is nearer: a last
/// attempt cut to nothing would report only that it ran out, not what the client said.
const CLIENT_READ_ATTEMPT_MIN: Duration = Duration::from_secs(1);

impl ClientReadProbe {
    /// One attempt, with the program started in namespace `netns` (`None`: this one), for
    /// `budget` bounded to [`CLIENT_READ_ATTEMPT_MIN`]..[`CLIENT_READ_ATTEMPT`]. The error
    /// says why the node is not ready: the program's `fail`/`info` error, or what went wrong
    /// with the program.
    pub fn attempt(&self, netns: Option<&str>, budget: Duration) -> Result<(), String> {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let budget = budget.clamp(CLIENT_READ_ATTEMPT_MIN, CLIENT_READ_ATTEMPT);
        let program = self.client.program.display();
        let mut command = match netns {
            Some(netns) => {
                crate::netns::command(netns, &self.client.program).map_err(|e| e.to_string())?
            }
            None => std::process::Command::new(&self.client.program),
        };
        let mut child = command
            .args(&self.client.args)
            .envs(self.client.env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own group, so whatever it starts goes with it.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start client program {program}: {e}"))?;
        let deadline = std::time::Instant::now() + budget;
        let mut request = serde_json::to_string(&WireRequest {
            f: "read",
            key: Some(&self.key),
            value: &Value::Nil,
            timeout_ms: budget.as_millis().try_into().unwrap_or(u64::MAX),
        })
        .map_err(|e| e.to_string())?;
        request.push('\n');
        let answer = (|| {
            let mut stdin = child.stdin.take().expect("stdin is piped");
            stdin
                .write_all(request.as_bytes())
                .map_err(|e| format!("client program's stdin: {e}"))?;
            let mut stdout = child.stdout.take().expect("stdout is piped");
            use nix::fcntl::{fcntl, FcntlArg, OFlag};
            fcntl(stdout.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
                .map_err(|e| e.to_string())?;
            let mut line = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) => return Err("client program closed its output".to_owned()),
                    Ok(n) => {
                        line.extend_from_slice(&buf[..n]);
                        if let Some(end) = line.iter().position(|b| *b == b'\n') {
                            line.truncate(end);
                            return Ok(String::from_utf8_lossy(&line).into_owned());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if std::time::Instant::now() >= deadline {
                            return Err(format!(
                                "client program did not answer within {} ms",
                                budget.as_millis()
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(format!("reading the answer: {e}")),
                }
            }
        })();
        // Killed before it is reaped: its pid still names its group.
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = child.wait();
        let answer = answer?;
        match serde_json::from_str::<WireReply>(answer.trim_end()) {
            Ok(WireReply::Ok { .. }) => Ok(()),
            Ok(WireReply::Fail { error } | WireReply::Info { error }) => {
                Err(format!("the client's read: {error}"))
            }
            Err(e) => Err(format!("unreadable answer {answer:?}: {e}")),
        }
    }
}

/// How to run one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCommand {
    #[serde(deserialize_with = "templates::one")]
    pub program: String,
    /// Templated with the node the client is bound to.
    #[serde(default, deserialize_with = "templates::list")]
    pub args: Vec<String>,
    #[serde(default, deserialize_with = "templates::env")]
    pub env: BTreeMap<String, String>,
    /// How long past a request's `timeout_ms` the harness waits for the program's answer
    /// before it gives up and restarts the program.
    #[serde(
        default = "default_grace_ms",
        deserialize_with = "crate::limits::u64_in::<_, 0, MAX_GRACE_MS>"
    )]
    pub grace_ms: u64,
}

fn default_grace_ms() -> u64 {
    200
}

/// Longest `grace_ms`: an hour.
pub const MAX_GRACE_MS: u64 = 3_600_000;

/// Checks `template` against [`PLACEHOLDERS`] without expanding it.
pub fn check_template(template: &str) -> Result<(), CommandError> {
    let dummy: BTreeMap<&'static str, String> =
        PLACEHOLDERS.iter().map(|p| (*p, String::new())).collect();
    substitute(template, &dummy).map(drop)
}

/// Templates checked while the campaign is parsed, inside the parser's visitor, so that
/// an unknown placeholder or an unbalanced brace is reported with the line and column of
/// the template itself (exit 64), before anything starts.
mod templates {
    use serde::de::{Deserialize, Deserializer, Error, Visitor};
    use std::collections::BTreeMap;
    use std::fmt;

    struct Template(String);

    impl<'de> Deserialize<'de> for Template {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Check;
            impl Visitor<'_> for Check {
                type Value = Template;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a command template (a string)")
                }
                fn visit_str<E: Error>(self, v: &str) -> Result<Template, E> {
                    super::check_template(v).map_err(E::custom)?;
                    Ok(Template(v.to_owned()))
                }
            }
            d.deserialize_str(Check)
        }
    }

    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Template::deserialize(d).map(|t| t.0)
    }

    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(Vec::<Template>::deserialize(d)?
            .into_iter()
            .map(|t| t.0)
            .collect())
    }

    pub fn option_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        Ok(Option::<Vec<Template>>::deserialize(d)?
            .map(|list| list.into_iter().map(|t| t.0).collect()))
    }

    pub fn env<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
        Ok(BTreeMap::<String, Template>::deserialize(d)?
            .into_iter()
            .map(|(k, t)| (k, t.0))
            .collect())
    }
}

/// Substitutes `{name}` placeholders in `template`; `{{` and `}}` are literal braces.
pub fn substitute(
    template: &str,
    values: &BTreeMap<&'static str, String>,
) -> Result<String, CommandError> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => {
                return Err(CommandError::StrayBrace {
                    template: template.to_owned(),
                })
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(ch) => name.push(ch),
                        None => {
                            return Err(CommandError::UnclosedBrace {
                                template: template.to_owned(),
                            })
                        }
                    }
                }
                let value =
                    values
                        .get(name.as_str())
                        .ok_or_else(|| CommandError::UnknownPlaceholder {
                            template: template.to_owned(),
                            name: name.clone(),
                        })?;
                out.push_str(value);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

impl CommandSpec {
    /// Checks every template against the known placeholders, so a campaign fails at load
    /// time rather than when the first node starts.
    pub fn validate(&self) -> Result<(), CommandError> {
        let dummy: BTreeMap<&'static str, String> =
            PLACEHOLDERS.iter().map(|p| (*p, String::new())).collect();
        if self.node.program.is_empty() {
            return Err(CommandError::EmptyProgram { what: "node" });
        }
        if self.client.program.is_empty() {
            return Err(CommandError::EmptyProgram { what: "client" });
        }
        let node_templates = self.node.args.iter().chain(self.node.env.values());
        let client_templates = self.client.args.iter().chain(self.client.env.values());
        let readiness_templates: &[String] = match &self.node.readiness {
            ReadinessCommand::TcpPort(_) | ReadinessCommand::ClientRead(_) => &[],
            ReadinessCommand::Command(argv) if argv.is_empty() => {
                return Err(CommandError::EmptyReadinessCommand)
            }
            ReadinessCommand::Command(argv) => argv,
        };
        let role_templates: &[String] = match &self.node.role {
            Some(argv) if argv.is_empty() => return Err(CommandError::EmptyRoleCommand),
            Some(argv) => argv,
            None => &[],
        };
        for template in node_templates
            .chain(client_templates)
            .chain(readiness_templates)
            .chain(role_templates)
            .chain([&self.node.program, &self.client.program])
        {
            substitute(template, &dummy)?;
        }
        Ok(())
    }

    /// Checks that the node, client, readiness and role programs exist on this machine (a program
    /// with a `/` as a path, any other on `PATH`). A program named by a placeholder is only
    /// known per node and is left to the start of that node.
    pub fn find_programs(&self) -> Result<(), CommandError> {
        let readiness = match &self.node.readiness {
            ReadinessCommand::Command(argv) => argv.first(),
            ReadinessCommand::TcpPort(_) | ReadinessCommand::ClientRead(_) => None,
        };
        let programs = [
            ("node", Some(&self.node.program)),
            ("client", Some(&self.client.program)),
            ("readiness", readiness),
            (
                "role",
                self.node.role.as_ref().and_then(|argv| argv.first()),
            ),
        ];
        for (what, program) in programs {
            let Some(program) = program else { continue };
            let Ok(literal) = substitute(program, &BTreeMap::new()) else {
                continue; // names a placeholder
            };
            if let Err(where_) = find_program(&literal) {
                return Err(CommandError::ProgramNotFound {
                    what,
                    program: literal,
                    where_,
                });
            }
        }
        Ok(())
    }

    /// The placeholder values for `node` in `cluster`.
    pub fn values_for(
        &self,
        node: &NodeSpec,
        cluster: &ClusterSpec,
    ) -> BTreeMap<&'static str, String> {
        let peer_port = self.node.peer_port.unwrap_or(self.node.port);
        let peers = cluster
            .nodes
            .iter()
            .map(|n| format!("{}={}:{peer_port}", n.name, n.ip))
            .collect::<Vec<_>>()
            .join(",");
        let peer_ips = cluster
            .nodes
            .iter()
            .map(|n| n.ip.to_string())
            .collect::<Vec<_>>()
            .join(",");
        BTreeMap::from([
            ("node", node.name.clone()),
            ("id", node.id.to_string()),
            ("ip", node.ip.to_string()),
            ("port", self.node.port.to_string()),
            ("peer_port", peer_port.to_string()),
            ("peers", peers),
            ("peer_ips", peer_ips),
            ("data_dir", node.data_dir.display().to_string()),
            ("cluster_size", cluster.nodes.len().to_string()),
        ])
    }

    fn expand_all<'a>(
        templates: impl IntoIterator<Item = &'a String>,
        values: &BTreeMap<&'static str, String>,
    ) -> Result<Vec<String>, CommandError> {
        templates
            .into_iter()
            .map(|t| substitute(t, values))
            .collect()
    }

    fn expand_env(
        env: &BTreeMap<String, String>,
        values: &BTreeMap<&'static str, String>,
    ) -> Result<Vec<(String, String)>, CommandError> {
        env.iter()
            .map(|(k, v)| Ok((k.clone(), substitute(v, values)?)))
            .collect()
    }

    /// The client program's command line for a client bound to `node`.
    pub fn client_launch(
        &self,
        node: &NodeSpec,
        cluster: &ClusterSpec,
    ) -> Result<LaunchSpec, CommandError> {
        let values = self.values_for(node, cluster);
        Ok(LaunchSpec {
            program: program_path(substitute(&self.client.program, &values)?),
            args: Self::expand_all(&self.client.args, &values)?,
            env: Self::expand_env(&self.client.env, &values)?,
        })
    }
}

/// Where `program` is: a path when it holds a `/`, else the first executable on `PATH`.
/// The error says where it was looked for.
fn find_program(program: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if executable(&path) {
            Ok(path)
        } else {
            Err("no executable file at that path".to_owned())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| format!("not on PATH: {}", path.to_string_lossy()))
}

/// A system started and driven entirely by a [`CommandSpec`].
#[derive(Debug, Clone)]
pub struct CommandSystem {
    spec: CommandSpec,
}

impl CommandSystem {
    /// Validates `spec` and wraps it.
    pub fn new(spec: CommandSpec) -> Result<Self, CommandError> {
        spec.validate()?;
        Ok(CommandSystem { spec })
    }

    pub fn spec(&self) -> &CommandSpec {
        &self.spec
    }

    fn cluster_of_one(node: &NodeSpec) -> ClusterSpec {
        ClusterSpec {
            nodes: vec![node.clone()],
        }
    }
}

impl System for CommandSystem {
    fn name(&self) -> &str {
        self.spec.name.as_deref().unwrap_or("command")
    }

    /// With a `role` command, each node is asked through it (in its own namespace); without
    /// one the system cannot say who leads: faults aimed at the leader hit a random node,
    /// and their records say so.
    fn role_query(&self, cluster: &ClusterSpec) -> Option<Arc<dyn super::RoleQuery>> {
        let argv = self.spec.node.role.as_ref()?;
        let probes = cluster
            .nodes
            .iter()
            .map(|node| {
                let values = self.spec.values_for(node, cluster);
                let expanded = CommandSpec::expand_all(argv, &values)
                    .expect("role templates are validated when the system is built");
                let probe = LaunchSpec {
                    program: program_path(expanded[0].clone()),
                    args: expanded[1..].to_vec(),
                    env: Vec::new(),
                };
                (node.name.clone(), probe)
            })
            .collect();
        Some(Arc::new(RoleCommand {
            system: self.name().to_owned(),
            timeout: Duration::from_millis(self.spec.node.role_timeout_ms),
            probes,
        }))
    }

    /// Only nodes with a `role` command are asked; the address is the client address, for
    /// the record (the command itself says where it connects).
    fn role_address(&self, node: &NodeSpec) -> Option<SocketAddr> {
        self.spec
            .node
            .role
            .as_ref()
            .map(|_| SocketAddr::new(node.ip.into(), self.spec.node.port))
    }

    fn version(&self) -> anyhow::Result<String> {
        // Called before anything starts: a program missing on this machine is reported
        // here (exit 69), not when the first node or client fails to start.
        self.spec.find_programs()?;
        let Some(argv) = self.spec.version.as_ref().filter(|a| !a.is_empty()) else {
            return Ok(format!("{} (version unknown)", self.spec.node.program));
        };
        let program = argv[0].clone();
        let output = std::process::Command::new(&program)
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| CommandError::Version {
                program: program.clone(),
                message: e.to_string(),
            })?;
        if !output.status.success() {
            return Err(CommandError::Version {
                program,
                message: format!("exited with {}", output.status),
            }
            .into());
        }
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text.lines().next().unwrap_or_default().trim().to_owned())
    }

    fn launch(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<LaunchSpec> {
        if !cluster.nodes.iter().any(|n| n.name == node.name) {
            return Err(CommandError::NodeNotInCluster(node.name.clone()).into());
        }
        let values = self.spec.values_for(node, cluster);
        Ok(LaunchSpec {
            program: program_path(substitute(&self.spec.node.program, &values)?),
            args: CommandSpec::expand_all(&self.spec.node.args, &values)?,
            env: CommandSpec::expand_env(&self.spec.node.env, &values)?,
        })
    }

    fn readiness(&self, node: &NodeSpec) -> Readiness {
        match &self.spec.node.readiness {
            ReadinessCommand::TcpPort(port) => {
                Readiness::TcpPort(SocketAddr::new(node.ip.into(), *port))
            }
            ReadinessCommand::Command(argv) => {
                // The trait gives no cluster here; `{peers}` and the like then name this
                // node alone. Templates were validated up front, so expansion cannot fail.
                let values = self.spec.values_for(node, &Self::cluster_of_one(node));
                let expanded = CommandSpec::expand_all(argv, &values)
                    .expect("readiness templates are validated when the system is built");
                Readiness::Command(LaunchSpec {
                    program: program_path(expanded[0].clone()),
                    args: expanded[1..].to_vec(),
                    env: Vec::new(),
                })
            }
            ReadinessCommand::ClientRead(key) => {
                // As for a readiness command, the client is templated with this node alone.
                let client = self
                    .spec
                    .client_launch(node, &Self::cluster_of_one(node))
                    .expect("client templates are validated when the system is built");
                Readiness::ClientRead(ClientReadProbe {
                    client,
                    key: key.clone(),
                })
            }
        }
    }

    fn client(&self, node: &NodeSpec, cluster: &ClusterSpec) -> anyhow::Result<Box<dyn Client>> {
        let launch = self.spec.client_launch(node, cluster)?;
        Ok(Box::new(CommandClient::new(
            launch,
            Duration::from_millis(self.spec.client.grace_ms),
        )))
    }
}

/// Who leads, per the campaign's `role` command: run inside each node's network namespace,
/// its first line of output is the node's role, optionally followed by its term.
struct RoleCommand {
    system: String,
    /// How long one run of the command may take (`node.role_timeout_ms`).
    timeout: Duration,
    /// The expanded command per node.
    probes: BTreeMap<String, LaunchSpec>,
}

/// Role words meaning "this node leads" (leader-based and primary/replica systems alike).
pub const LEADING_ROLES: &[&str] = &["leader", "primary", "master"];
/// Role words meaning "this node does not lead".
pub const FOLLOWING_ROLES: &[&str] = &[
    "follower",
    "candidate",
    "replica",
    "secondary",
    "standby",
    "slave",
    "learner",
    "observer",
    "none",
];

/// Parses a role command's output: the first non-empty line, `ROLE [TERM]`, the role one of
/// [`LEADING_ROLES`] or [`FOLLOWING_ROLES`] (any case). Returns whether the node leads and
/// its term (0 when not given).
pub fn parse_role(output: &str) -> Result<(bool, u64), String> {
    let line = output
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| "the role command printed nothing".to_owned())?;
    let mut words = line.split_whitespace();
    let role = words.next().unwrap_or_default().to_ascii_lowercase();
    let leads = if LEADING_ROLES.contains(&role.as_str()) {
        true
    } else if FOLLOWING_ROLES.contains(&role.as_str()) {
        false
    } else {
        return Err(format!(
            "the role command printed {line:?}: expected one of {}, {} (then optionally a term)",
            LEADING_ROLES.join(", "),
            FOLLOWING_ROLES.join(", ")
        ));
    };
    let term = match words.next() {
        None => 0,
        Some(term) => term.parse().map_err(|_| {
            format!("the role command printed {line:?}: the term {term:?} is not an integer")
        })?,
    };
    if let Some(extra) = words.next() {
        return Err(format!(
            "the role command printed {line:?}: unexpected {extra:?} after the term"
        ));
    }
    Ok((leads, term))
}

impl super::RoleQuery for RoleCommand {
    fn system(&self) -> &str {
        &self.system
    }

    fn asks_from_node_namespace(&self) -> bool {
        true
    }

    /// Runs the node's role command (the calling thread is in the node's namespace, so the
    /// child is too), for at most `node.role_timeout_ms` (not the built-in systems' query
    /// `_timeout`: starting a program costs more than a request).
    fn status(
        &self,
        node: &str,
        _addr: SocketAddr,
        _timeout: Duration,
    ) -> Result<super::NodeStatus, String> {
        let probe = self
            .probes
            .get(node)
            .ok_or_else(|| format!("no role command for {node}"))?;
        let output = run_bounded(probe, self.timeout)?;
        let (is_leader, term) = parse_role(&output)?;
        Ok(super::NodeStatus {
            node: node.to_owned(),
            is_leader,
            term,
            time_ms: None,
        })
    }
}

/// Runs `probe` (stdin closed) for at most `timeout` and returns its standard output; a
/// failed exit, a start failure or the deadline is an error quoting its stderr.
fn run_bounded(probe: &LaunchSpec, timeout: Duration) -> Result<String, String> {
    use std::io::Read;
    let program = probe.program.display();
    let mut child = std::process::Command::new(&probe.program)
        .args(&probe.args)
        .envs(probe.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} did not finish within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    // What the program wrote is in the pipe by now; read it without blocking, so a helper it
    // left running with the pipe open cannot hold the caller.
    fn drain(pipe: Option<impl Read + std::os::fd::AsRawFd>) -> String {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let mut bytes = Vec::new();
        let Some(mut pipe) = pipe else {
            return String::new();
        };
        if fcntl(pipe.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).is_ok() {
            let mut buf = [0u8; 4096];
            while bytes.len() < 64 * 1024 {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => bytes.extend_from_slice(&buf[..n]),
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
    let stdout = drain(child.stdout.take());
    if status.success() {
        Ok(stdout)
    } else {
        let stderr = drain(child.stderr.take());
        Err(format!("{program} {status}: {}", stderr.trim()))
    }
}

/// A program as given in the campaign: a relative path with a `/` (`./bin/mykv`) is made
/// absolute against the controller's directory, since nodes run in their own data
/// directories; a bare name (`mykv`) is still looked up on `PATH`.
fn program_path(program: String) -> PathBuf {
    let path = PathBuf::from(program);
    if path.is_relative() && path.components().count() > 1 {
        std::path::absolute(&path).unwrap_or(path)
    } else {
        path
    }
}

/// One line the harness sends to the client program.
#[derive(Debug, Serialize)]
struct WireRequest<'a> {
    f: &'static str,
    /// Absent for a transaction: its micro-operations name their keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a Value>,
    value: &'a Value,
    timeout_ms: u64,
}

/// One line the client program answers.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum WireReply {
    Ok {
        #[serde(default)]
        value: Value,
    },
    Fail {
        #[serde(default)]
        error: String,
    },
    Info {
        #[serde(default)]
        error: String,
    },
}

fn wire_name(f: Function) -> &'static str {
    match f {
        Function::Read => "read",
        Function::Write => "write",
        Function::Cas => "cas",
        Function::Add => "add",
        Function::ReadSet => "read_set",
        Function::Txn => "txn",
    }
}

/// How much of the program's stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 2048;

/// A running client program.
struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr_tail: Arc<Mutex<VecDeque<u8>>>,
    stderr_reader: JoinHandle<()>,
}

impl Running {
    /// SIGKILLs the program's whole process group (it leads its own), so helpers it
    /// started die with it. Only called before the program is reaped: until then its
    /// pid, which is also the group id, cannot be reused.
    fn kill_group(&self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    fn stderr_tail(&self) -> String {
        let tail = self.stderr_tail.lock().expect("stderr buffer lock");
        let bytes: Vec<u8> = tail.iter().copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_group();
        self.stderr_reader.abort();
    }
}

/// A client that forwards each request to an external program (JSON lines over
/// stdin/stdout).
pub struct CommandClient {
    launch: LaunchSpec,
    grace: Duration,
    running: Option<Running>,
}

/// Why an exchange with the program failed, and whether the request had left.
enum ExchangeError {
    /// The program never received the request (it could not start, or its stdin was
    /// closed).
    NotDelivered(String),
    /// The program received the request but gave no usable answer.
    NoAnswer(String),
}

impl CommandClient {
    pub fn new(launch: LaunchSpec, grace: Duration) -> Self {
        CommandClient {
            launch,
            grace,
            running: None,
        }
    }

    fn start(&self) -> std::io::Result<Running> {
        let mut command = tokio::process::Command::new(&self.launch.program);
        command
            .args(&self.launch.args)
            .envs(self.launch.env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C in the terminal goes to the controller,
            // which decides when clients stop.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_BYTES)));
        let tail = Arc::clone(&stderr_tail);
        let stderr_reader = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut tail = tail.lock().expect("stderr buffer lock");
                tail.extend(&buf[..n]);
                let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
                tail.drain(..excess);
            }
        });
        Ok(Running {
            child,
            stdin,
            stdout,
            stderr_tail,
            stderr_reader,
        })
    }

    /// Kills the program (if any) and reaps it, returning how it ended and its last words.
    async fn stop(&mut self) -> String {
        let Some(mut running) = self.running.take() else {
            return String::new();
        };
        // Kill first, reap second: a program that already exited is a zombie until
        // reaped, so its group id still names its own group.
        running.kill_group();
        let status = match running.child.wait().await {
            Ok(status) if status.signal() == Some(Signal::SIGKILL as i32) => "killed".to_owned(),
            Ok(status) => format!("exited with {status}"),
            Err(e) => format!("could not be reaped: {e}"),
        };
        // With the group dead its stderr reaches end of file; wait briefly for the reader
        // to keep the last words.
        let _ = tokio::time::timeout(Duration::from_millis(200), &mut running.stderr_reader).await;
        let tail = running.stderr_tail();
        if tail.is_empty() {
            status
        } else {
            format!("{status}; stderr: {tail}")
        }
    }

    async fn exchange(&mut self, request: &Request) -> Result<WireReply, ExchangeError> {
        let deadline = Instant::now() + request.timeout + self.grace;
        if self.running.is_none() {
            let started = self.start().map_err(|e| {
                ExchangeError::NotDelivered(format!(
                    "cannot start client program {}: {e}",
                    self.launch.program.display()
                ))
            })?;
            self.running = Some(started);
        }
        let running = self.running.as_mut().expect("program was just started");
        let mut line = serde_json::to_string(&WireRequest {
            f: wire_name(request.f),
            key: (request.f != Function::Txn).then_some(&request.key),
            value: &request.value,
            timeout_ms: request.timeout.as_millis().try_into().unwrap_or(u64::MAX),
        })
        .map_err(|e| ExchangeError::NotDelivered(format!("cannot encode request: {e}")))?;
        line.push('\n');
        // A write to a pipe whose reader is gone fails without delivering anything.
        match timeout_at(deadline, running.stdin.write_all(line.as_bytes())).await {
            Err(_) => {
                return Err(ExchangeError::NoAnswer(
                    "timed out writing the request".into(),
                ))
            }
            Ok(Err(e)) => {
                return Err(ExchangeError::NotDelivered(format!(
                    "client program's stdin is closed: {e}"
                )))
            }
            Ok(Ok(())) => {}
        }
        if let Err(e) = running.stdin.flush().await {
            return Err(ExchangeError::NoAnswer(format!(
                "flushing the request: {e}"
            )));
        }
        let mut answer = String::new();
        match timeout_at(deadline, running.stdout.read_line(&mut answer)).await {
            Err(_) => Err(ExchangeError::NoAnswer(format!(
                "client program did not answer within {} ms",
                (request.timeout + self.grace).as_millis()
            ))),
            Ok(Err(e)) => Err(ExchangeError::NoAnswer(format!("reading the answer: {e}"))),
            Ok(Ok(0)) => Err(ExchangeError::NoAnswer(
                "client program closed its output".into(),
            )),
            Ok(Ok(_)) => serde_json::from_str(answer.trim_end()).map_err(|e| {
                ExchangeError::NoAnswer(format!("unreadable answer {:?}: {e}", answer.trim_end()))
            }),
        }
    }

    /// Performs one request through the program.
    pub async fn perform(&mut self, request: &Request) -> Outcome {
        let is_read = matches!(request.f, Function::Read | Function::ReadSet);
        match self.exchange(request).await {
            Ok(WireReply::Ok { value }) if is_read => Outcome::Ok(value),
            // A transaction's reads are in its completed value, which must be the request
            // with the reads filled in; anything else leaves its effect unknown.
            Ok(WireReply::Ok { value }) if request.f == Function::Txn => {
                match super::txn::check_completion(&request.value, &value) {
                    Ok(()) => Outcome::Ok(value),
                    Err(e) => {
                        self.stop().await;
                        Outcome::Info(format!("client program's transaction reply: {e}"))
                    }
                }
            }
            // What a write, cas or add did is its request's value; an echo that differs
            // must not rewrite the history.
            Ok(WireReply::Ok { .. }) => Outcome::Ok(request.value.clone()),
            Ok(WireReply::Fail { error }) => Outcome::Fail(error),
            // A read has no effect, whatever the program thinks.
            Ok(WireReply::Info { error }) if is_read => Outcome::Fail(error),
            Ok(WireReply::Info { error }) => Outcome::Info(error),
            Err(error) => {
                // Its state is unknown (it may still be working on this request): start
                // a fresh program for the next one.
                let ended = self.stop().await;
                let (delivered, message) = match error {
                    ExchangeError::NotDelivered(m) => (false, m),
                    ExchangeError::NoAnswer(m) => (true, m),
                };
                let message = if ended.is_empty() {
                    message
                } else {
                    format!("{message} (client program {ended})")
                };
                if is_read || !delivered {
                    Outcome::Fail(message)
                } else {
                    Outcome::Info(message)
                }
            }
        }
    }
}

impl Client for CommandClient {
    fn invoke<'a>(&'a mut self, request: &'a Request) -> BoxFuture<'a, Outcome> {
        Box::pin(self.perform(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn cluster() -> ClusterSpec {
        ClusterSpec {
            nodes: (1..=3)
                .map(|id| NodeSpec {
                    name: format!("n{id}"),
                    id,
                    ip: Ipv4Addr::new(10, 9, 0, id as u8),
                    data_dir: PathBuf::from(format!("/d/n{id}")),
                })
                .collect(),
        }
    }

    fn spec_yaml() -> &'static str {
        r#"
node:
  program: /usr/bin/kv
  args: ["--id={id}", "--listen", "{ip}:{port}", "--peers", "{peers}", "{{literal}}"]
  env: { DATA: "{data_dir}" }
  port: 7000
  peer_port: 7001
  readiness: { tcp_port: 7000 }
client:
  program: python3
  args: ["client.py", "{ip}", "{port}"]
"#
    }

    #[test]
    fn yaml_spec_expands_per_node() {
        let spec: CommandSpec = serde_yaml::from_str(spec_yaml()).unwrap();
        let system = CommandSystem::new(spec).unwrap();
        let cluster = cluster();
        let launch = system.launch(&cluster.nodes[1], &cluster).unwrap();
        assert_eq!(launch.program, PathBuf::from("/usr/bin/kv"));
        assert_eq!(
            launch.args,
            vec![
                "--id=2",
                "--listen",
                "10.9.0.2:7000",
                "--peers",
                "n1=10.9.0.1:7001,n2=10.9.0.2:7001,n3=10.9.0.3:7001",
                "{literal}",
            ]
        );
        assert_eq!(launch.env, vec![("DATA".to_owned(), "/d/n2".to_owned())]);
        assert_eq!(
            system.readiness(&cluster.nodes[2]),
            Readiness::TcpPort("10.9.0.3:7000".parse().unwrap())
        );
        let client = system
            .spec()
            .client_launch(&cluster.nodes[0], &cluster)
            .unwrap();
        assert_eq!(client.args, vec!["client.py", "10.9.0.1", "7000"]);
    }

    #[test]
    fn unknown_fields_and_placeholders_are_rejected() {
        let typo = spec_yaml().replace("peer_port: 7001", "peer_prot: 7001");
        assert!(serde_yaml::from_str::<CommandSpec>(&typo).is_err());
        let mut spec: CommandSpec = serde_yaml::from_str(spec_yaml()).unwrap();
        spec.client.args.push("{hostname}".to_owned());
        assert_eq!(
            spec.validate(),
            Err(CommandError::UnknownPlaceholder {
                template: "{hostname}".to_owned(),
                name: "hostname".to_owned()
            })
        );
    }

    #[test]
    fn readiness_command_is_templated() {
        let yaml = spec_yaml().replace(
            "readiness: { tcp_port: 7000 }",
            "readiness: { command: [probe, \"{ip}:{port}\"] }",
        );
        let system = CommandSystem::new(serde_yaml::from_str(&yaml).unwrap()).unwrap();
        let Readiness::Command(probe) = system.readiness(&cluster().nodes[0]) else {
            panic!("expected a command readiness");
        };
        assert_eq!(probe.program, PathBuf::from("probe"));
        assert_eq!(probe.args, vec!["10.9.0.1:7000"]);
    }

    #[test]
    fn readiness_needs_exactly_one_way() {
        let both = spec_yaml().replace(
            "readiness: { tcp_port: 7000 }",
            "readiness: { tcp_port: 7000, command: [probe] }",
        );
        let err = serde_yaml::from_str::<CommandSpec>(&both).unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
        let typo = spec_yaml().replace("tcp_port: 7000 }", "tcp: 7000 }");
        assert!(serde_yaml::from_str::<CommandSpec>(&typo).is_err());
    }

    #[test]
    fn role_output_is_a_role_word_and_an_optional_term() {
        assert_eq!(parse_role("leader 7\n"), Ok((true, 7)));
        assert_eq!(parse_role("\n  Primary\n"), Ok((true, 0)));
        assert_eq!(parse_role("master"), Ok((true, 0)));
        assert_eq!(parse_role("follower 3"), Ok((false, 3)));
        assert_eq!(parse_role("replica\nignored"), Ok((false, 0)));
        for bad in ["", "boss", "leader x", "leader 3 extra", "1 leader"] {
            assert!(parse_role(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_role_command_is_templated_per_node_and_run_for_its_answer() {
        let cluster = cluster();
        let plain = CommandSystem::new(serde_yaml::from_str(spec_yaml()).unwrap()).unwrap();
        assert!(plain.role_query(&cluster).is_none());
        assert_eq!(plain.role_address(&cluster.nodes[0]), None);
        let yaml = spec_yaml().replace(
            "readiness: { tcp_port: 7000 }",
            "readiness: { tcp_port: 7000 }\n  role: [sh, -c, 'if [ {id} = 2 ]; then echo leader 4; else echo follower 4; fi']",
        );
        let system = CommandSystem::new(serde_yaml::from_str(&yaml).unwrap()).unwrap();
        let query = system.role_query(&cluster).expect("a role query");
        assert!(query.asks_from_node_namespace());
        assert_eq!(
            system.role_address(&cluster.nodes[1]),
            Some("10.9.0.2:7000".parse().unwrap())
        );
        let addr = "127.0.0.1:1".parse().unwrap();
        let timeout = Duration::from_secs(5);
        let n2 = query.status("n2", addr, timeout).unwrap();
        assert!(n2.is_leader && n2.term == 4, "{n2:?}");
        assert!(!query.status("n1", addr, timeout).unwrap().is_leader);
        let yaml = yaml.replace("echo follower 4", "echo oops >&2; exit 3");
        let system = CommandSystem::new(serde_yaml::from_str(&yaml).unwrap()).unwrap();
        let query = system.role_query(&cluster).unwrap();
        let err = query.status("n1", addr, timeout).unwrap_err();
        assert!(err.contains("oops"), "{err}");
        let yaml = spec_yaml().replace(
            "readiness: { tcp_port: 7000 }",
            "readiness: { tcp_port: 7000 }\n  role: [\"{nope}\"]",
        );
        let err = serde_yaml::from_str::<CommandSpec>(&yaml).unwrap_err();
        assert!(err.to_string().contains("{nope}"), "{err}");
    }

    #[test]
    fn braces_must_balance() {
        let values = BTreeMap::new();
        assert!(matches!(
            substitute("{open", &values),
            Err(CommandError::UnclosedBrace { .. })
        ));
        assert!(matches!(
            substitute("close}", &values),
            Err(CommandError::StrayBrace { .. })
        ));
        assert_eq!(substitute("a {{b}} c", &values).unwrap(), "a {b} c");
    }

    #[test]
    fn unknown_placeholders_are_refused_while_parsing_with_line_and_column() {
        let yaml = spec_yaml().replace("\"{port}\"]\n", "\"{prot}\"]\n");
        let err = serde_yaml::from_str::<CommandSpec>(&yaml)
            .unwrap_err()
            .to_string();
        assert!(err.contains("{prot}"), "{err}");
        assert!(err.contains("line 11 column 31"), "{err}");
        let yaml = spec_yaml().replace("DATA: \"{data_dir}\"", "DATA: \"{dir}\"");
        let err = serde_yaml::from_str::<CommandSpec>(&yaml)
            .unwrap_err()
            .to_string();
        assert!(err.contains("{dir}") && err.contains("line 5"), "{err}");
        let yaml = spec_yaml().replace(
            "readiness: { tcp_port: 7000 }",
            "readiness: { command: [probe, \"{nope}\"] }",
        );
        let err = serde_yaml::from_str::<CommandSpec>(&yaml)
            .unwrap_err()
            .to_string();
        assert!(err.contains("{nope}") && err.contains("line 8"), "{err}");
        // A literal shell `${VAR}` is written with doubled braces.
        let yaml = spec_yaml().replace("\"{{literal}}\"", "\"${{HOME}}\"");
        let system = CommandSystem::new(serde_yaml::from_str(&yaml).unwrap()).unwrap();
        let cluster = cluster();
        let launch = system.launch(&cluster.nodes[0], &cluster).unwrap();
        assert_eq!(launch.args.last().unwrap(), "${HOME}");
    }

    #[test]
    fn a_missing_program_is_found_before_anything_starts() {
        let yaml = spec_yaml().replace("/usr/bin/kv", "/bin/sh");
        let spec: CommandSpec = serde_yaml::from_str(&yaml).unwrap();
        spec.find_programs().unwrap();
        let yaml = spec_yaml().replace("/usr/bin/kv", "/nonexistent/kv");
        let spec: CommandSpec = serde_yaml::from_str(&yaml).unwrap();
        assert!(matches!(
            spec.find_programs(),
            Err(CommandError::ProgramNotFound { what: "node", .. })
        ));
        let yaml = yaml
            .replace("/nonexistent/kv", "/bin/sh")
            .replace("program: python3", "program: no-such-client-program");
        let spec: CommandSpec = serde_yaml::from_str(&yaml).unwrap();
        assert!(matches!(
            spec.find_programs(),
            Err(CommandError::ProgramNotFound { what: "client", .. })
        ));
        // A program named by a placeholder is only known per node.
        let yaml = spec_yaml()
            .replace("/usr/bin/kv", "\"{data_dir}/kv\"")
            .replace("program: python3", "program: sh");
        let spec: CommandSpec = serde_yaml::from_str(&yaml).unwrap();
        spec.find_programs().unwrap();
    }

    #[test]
    fn a_relative_program_path_is_made_absolute_a_bare_name_is_left_to_path() {
        let relative = program_path("./bin/mykv".to_owned());
        assert!(relative.is_absolute(), "{}", relative.display());
        assert!(relative.ends_with("bin/mykv"), "{}", relative.display());
        assert_eq!(program_path("mykv".to_owned()), PathBuf::from("mykv"));
        assert_eq!(
            program_path("/usr/bin/mykv".to_owned()),
            PathBuf::from("/usr/bin/mykv")
        );
    }
}
