//! A mutex: `acquire` is legal only when it is free, `release` only when it is held.
//! The state is 0 (free) or 1 (held).

use super::{unknown_function, Compiled, Model, Outcome, RawOp, StateId};
use crate::history::Value;

const FREE: StateId = 0;
const HELD: StateId = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MutexOp {
    Acquire,
    Release,
}

#[derive(Debug, Default)]
pub(crate) struct MutexModel;

impl<'h> Model<'h> for MutexModel {
    type Op = MutexOp;

    fn initial(&mut self, _initial: &'h Value) -> StateId {
        FREE
    }

    fn compile(&mut self, op: &RawOp<'h>) -> Result<Compiled<MutexOp>, String> {
        let kind = match op.f {
            "acquire" | "lock" => MutexOp::Acquire,
            "release" | "unlock" => MutexOp::Release,
            f => return Err(unknown_function("mutex", f, "acquire or release")),
        };
        Ok(match op.outcome {
            Outcome::Ok | Outcome::Indeterminate => Compiled::Op(kind),
            Outcome::Failed { .. } => Compiled::Drop,
        })
    }

    fn step(&mut self, state: StateId, op: MutexOp) -> Option<StateId> {
        match (op, state) {
            (MutexOp::Acquire, FREE) => Some(HELD),
            (MutexOp::Release, HELD) => Some(FREE),
            _ => None,
        }
    }

    fn render(&self, state: StateId) -> String {
        if state == HELD { "held" } else { "free" }.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_and_release_alternate() {
        let mut m = MutexModel;
        let s = m.initial(&Value::Nil);
        assert_eq!(m.render(s), "free");
        assert_eq!(m.step(s, MutexOp::Release), None);
        let held = m.step(s, MutexOp::Acquire).unwrap();
        assert_eq!(m.render(held), "held");
        assert_eq!(m.step(held, MutexOp::Acquire), None);
        assert_eq!(m.step(held, MutexOp::Release), Some(s));
    }

    #[test]
    fn failed_operations_are_dropped_and_unknown_ones_rejected() {
        let mut m = MutexModel;
        let raw = RawOp {
            f: "acquire",
            input: &Value::Nil,
            output: &Value::Nil,
            outcome: Outcome::Failed { observes: false },
        };
        assert_eq!(m.compile(&raw).unwrap(), Compiled::Drop);
        let raw = RawOp { f: "read", ..raw };
        assert!(m.compile(&raw).unwrap_err().contains("acquire or release"));
    }
}
