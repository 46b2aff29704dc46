//! Timestamped lines on stderr: role changes and why, so a node's log explains a run.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static NODE_NAME: OnceLock<String> = OnceLock::new();

/// Names the node in every log line (set once at start).
pub fn set_node_name(name: String) {
    let _ = NODE_NAME.set(name);
}

/// The node's name for log lines (`?` before it is set).
pub fn node_name() -> &'static str {
    NODE_NAME.get().map(String::as_str).unwrap_or("?")
}

/// Wall-clock milliseconds since the Unix epoch (the clock faults skew this one).
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Formats a log line prefix: the wall clock (RFC 3339, what an operator compares with the
/// harness's fault timeline) and the node name.
pub fn prefix() -> String {
    format!(
        "{} {}",
        humantime::format_rfc3339_millis(SystemTime::now()),
        node_name()
    )
}

/// `log!("...")` writes one timestamped line to stderr.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("{} {}", $crate::log::prefix(), format_args!($($arg)*))
    };
}
