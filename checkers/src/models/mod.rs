//! Sequential specifications the linearizability search checks against.

use crate::history::Value;
use std::str::FromStr;

/// The models `check --model` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// read / write on one register.
    Register,
    /// read / write / cas `[expected new]` on one register.
    CasRegister,
    /// A cas-register per key (independent keys).
    Kv,
    /// get / put / append on strings per key (Porcupine's kv).
    KvAppend,
    /// acquire / release.
    Mutex,
    /// add / read of a set.
    Set,
    /// enqueue / dequeue.
    FifoQueue,
}

impl ModelKind {
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Kv,
        ModelKind::KvAppend,
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::FifoQueue,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::KvAppend => "kv-append",
            ModelKind::Mutex => "mutex",
            ModelKind::Set => "set",
            ModelKind::FifoQueue => "fifo-queue",
        }
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ModelKind::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model `{s}`; expected one of: {}", names.join(", "))
            })
    }
}

/// A model and its initial state.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub kind: ModelKind,
    /// Initial value of each register (`Nil` = never written), initial string for kv-append
    /// (`Nil` = empty), ignored by the others.
    pub initial: Value,
}

impl ModelSpec {
    pub fn new(kind: ModelKind) -> Self {
        ModelSpec {
            kind,
            initial: Value::Nil,
        }
    }
}
