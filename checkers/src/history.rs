//! The history: what every reader produces, every writer consumes and every checker reads.
//!
//! Semantics are Jepsen's. A history is a sequence of [`Event`]s in real-time order. A client
//! *process* invokes one operation at a time (`invoke`) and later completes it:
//!
//! * `ok`   — the operation took effect, and its value is what it observed or wrote;
//! * `fail` — the operation certainly did not take effect;
//! * `info` — indeterminate: it may take effect once, at any point after its invocation, or
//!   never. A process whose operation ended in `info` never invokes again (the harness
//!   continues its slot under a fresh process id).
//!
//! An invocation without a completion is treated exactly like `info`. Events of the
//! `nemesis` process record faults; checkers of client operations ignore them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A value in a history: what an operation wrote, read or compared. Deliberately close to
/// EDN/JSON so that histories from other tools round-trip without loss.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Value {
    /// No value (`nil` in EDN, `null` in JSON). A register that was never written holds it.
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Str(String),
    /// An EDN keyword, stored without its leading colon (`:timed-out` → `timed-out`).
    Keyword(String),
    /// A vector or list, e.g. a cas argument `[expected new]`.
    List(Vec<Value>),
    /// A map, kept as ordered pairs.
    Map(Vec<(Value, Value)>),
}

impl Value {
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// EDN-like rendering, used in tables and counterexamples.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Keyword(k) => write!(f, ":{k}"),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, " ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
            Value::Map(pairs) => {
                write!(f, "{{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

/// JSON mapping: nil↔null, bool, integer, string, array, object (keys rendered as strings).
/// Keywords become strings (JSON has no keywords).
impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Nil => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Str(x) | Value::Keyword(x) => s.serialize_str(x),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    match k {
                        Value::Str(x) | Value::Keyword(x) => map.serialize_entry(x, v)?,
                        other => map.serialize_entry(&other.to_string(), v)?,
                    }
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(
                    f,
                    "null, a boolean, an integer, a string, an array or an object"
                )
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Nil)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Nil)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
                Ok(Value::Int(i))
            }
            fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Value, E> {
                i64::try_from(u)
                    .map(Value::Int)
                    .map_err(|_| E::custom(format!("integer {u} does not fit in 64 signed bits")))
            }
            fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<Value, E> {
                Err(E::custom(format!(
                    "floating-point value {x} is not supported in histories (use an integer or a string)"
                )))
            }
            fn visit_str<E>(self, s: &str) -> Result<Value, E> {
                Ok(Value::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Value, E> {
                Ok(Value::Str(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut items = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(v) = a.next_element()? {
                    items.push(v);
                }
                Ok(Value::List(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    pairs.push((Value::Str(k), v));
                }
                Ok(Value::Map(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

/// Who performed an event: a numbered client process, or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => write!(f, "nemesis"),
        }
    }
}

/// The four event types of Jepsen's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// One line of a history: an invocation or a completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position in the history (0-based, dense after reading).
    pub index: u64,
    /// Nanoseconds since the run started (monotonic), when the recorder knew it.
    pub time: Option<u64>,
    pub process: Process,
    pub kind: EventType,
    /// The function: `read`, `write`, `cas`, `add`, `get`, `put`, `append`, ….
    pub f: String,
    /// The key for multi-key workloads; `None` for a single-register history.
    pub key: Option<Value>,
    pub value: Value,
    /// The node the client talked to, when known.
    pub node: Option<String>,
    /// Why an operation failed or is indeterminate, when known.
    pub error: Option<Value>,
}

/// A whole history as read from a file or recorded by a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
}

impl History {
    pub fn new(events: Vec<Event>) -> Self {
        History { events }
    }
    /// Client events only (nemesis events removed).
    pub fn client_events(&self) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(|e| matches!(e.process, Process::Client(_)))
    }
}
