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

mod fifo_queue;
mod kv_append;
mod mutex;
mod register;
mod set;

pub(crate) use fifo_queue::FifoQueueModel;
pub(crate) use kv_append::KvAppendModel;
pub(crate) use mutex::MutexModel;
pub(crate) use register::RegisterModel;
pub(crate) use set::SetModel;

use rustc_hash::FxHashMap;

/// A model state during the search. Small models use the value itself (a register holds an
/// interned value id, a mutex 0 or 1); models whose states are collections intern each state
/// they reach in a table of their own, so that the search compares, hashes and stores states
/// as plain integers and never touches a [`Value`].
pub(crate) type StateId = u32;

/// How an operation ended, as far as a model needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Took effect; its output is what it observed.
    Ok,
    /// `info` or never completed: may take effect once after its invocation, or never.
    Indeterminate,
    /// Did not take effect. `observes` asks a cas to be read as an observation that the
    /// register did not hold the expected value.
    Failed { observes: bool },
}

/// One operation as the history gives it, before compilation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawOp<'h> {
    pub f: &'h str,
    /// What was asked (the invocation's value, or the `ok` completion's when the invocation
    /// carried none).
    pub input: &'h Value,
    /// What was observed (the `ok` completion's value; `Nil` otherwise).
    pub output: &'h Value,
    pub outcome: Outcome,
}

/// The result of compiling one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compiled<O> {
    /// An operation the search must (ok) or may (indeterminate) linearize.
    Op(O),
    /// An operation that constrains nothing: a failed one, or an indeterminate one that
    /// cannot change the state (a crashed read).
    Drop,
}

/// A sequential specification in the compact form the search runs on.
///
/// Every model instance serves one key: it owns the interning tables of that key's values and
/// states, so keys are checked in parallel without sharing anything.
pub(crate) trait Model<'h>: Send {
    /// A compiled operation: plain integers, cheap to copy.
    type Op: Copy + Send + Sync + std::fmt::Debug;
    /// The initial state.
    fn initial(&mut self, initial: &'h Value) -> StateId;
    /// Converts one operation; `Err` says what was expected instead.
    fn compile(&mut self, op: &RawOp<'h>) -> Result<Compiled<Self::Op>, String>;
    /// Applies `op` to `state`: the next state, or `None` when `op` is not legal there.
    fn step(&mut self, state: StateId, op: Self::Op) -> Option<StateId>;
    /// A state as a person reads it (counterexamples).
    fn render(&self, state: StateId) -> String;
}

/// Interns values borrowed from the history into dense ids.
#[derive(Debug, Default)]
pub(crate) struct ValueInterner<'h> {
    ids: FxHashMap<&'h Value, u32>,
    values: Vec<&'h Value>,
}

impl<'h> ValueInterner<'h> {
    pub fn intern(&mut self, value: &'h Value) -> u32 {
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values");
        self.values.push(value);
        self.ids.insert(value, id);
        id
    }
    pub fn value(&self, id: u32) -> &'h Value {
        self.values[id as usize]
    }
}

/// Interns model states that are sequences of value ids (a set's sorted elements, a queue's
/// contents) and caches transitions, so that repeated steps cost one hash look-up.
#[derive(Debug, Default)]
pub(crate) struct SequenceStates {
    ids: FxHashMap<Vec<u32>, StateId>,
    states: Vec<Vec<u32>>,
    transitions: FxHashMap<(StateId, u64), Option<StateId>>,
}

impl SequenceStates {
    pub fn intern(&mut self, seq: Vec<u32>) -> StateId {
        if let Some(&id) = self.ids.get(&seq) {
            return id;
        }
        let id = StateId::try_from(self.states.len()).expect("fewer than 2^32 states");
        self.states.push(seq.clone());
        self.ids.insert(seq, id);
        id
    }
    pub fn get(&self, id: StateId) -> &[u32] {
        &self.states[id as usize]
    }
    /// The cached result of transition `label` from `state`, computing it once with `next`.
    pub fn transition(
        &mut self,
        state: StateId,
        label: u64,
        next: impl FnOnce(&[u32]) -> Option<Vec<u32>>,
    ) -> Option<StateId> {
        if let Some(&cached) = self.transitions.get(&(state, label)) {
            return cached;
        }
        let result = next(self.get(state)).map(|seq| self.intern(seq));
        self.transitions.insert((state, label), result);
        result
    }
}

/// The message for a function a model does not have.
pub(crate) fn unknown_function(model: &str, f: &str, expected: &str) -> String {
    format!("model `{model}` has no function `{f}`; expected {expected}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_is_found_by_its_name_and_only_by_it() {
        for kind in ModelKind::ALL {
            assert_eq!(kind.name().parse::<ModelKind>(), Ok(kind));
        }
        assert_eq!("kv".parse::<ModelKind>(), Ok(ModelKind::Kv));
        let err = "queue".parse::<ModelKind>().unwrap_err();
        assert_eq!(
            err,
            "unknown model `queue`; expected one of: register, cas-register, kv, kv-append, mutex, set, fifo-queue"
        );
    }
}
