//! A set: `add` inserts an element, `read` observes the whole set (its value is the list of
//! elements, in any order). States are interned sorted element-id lists.

use super::{
    unknown_function, Compiled, Model, Outcome, RawOp, SequenceStates, StateId, ValueInterner,
};
use crate::history::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    Add(u32),
    /// An `ok` read that observed exactly this set (an interned state).
    Read(StateId),
}

#[derive(Debug, Default)]
pub(crate) struct SetModel<'h> {
    elements: ValueInterner<'h>,
    states: SequenceStates,
}

impl SetModel<'_> {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<'h> Model<'h> for SetModel<'h> {
    type Op = SetOp;

    fn initial(&mut self, _initial: &'h Value) -> StateId {
        self.states.intern(Vec::new())
    }

    fn compile(&mut self, op: &RawOp<'h>) -> Result<Compiled<SetOp>, String> {
        match op.f {
            "add" => Ok(match op.outcome {
                Outcome::Ok | Outcome::Indeterminate => {
                    Compiled::Op(SetOp::Add(self.elements.intern(op.input)))
                }
                Outcome::Failed { .. } => Compiled::Drop,
            }),
            "read" => match op.outcome {
                Outcome::Ok => {
                    let items: &'h [Value] = match op.output {
                        Value::List(items) => items,
                        Value::Nil => &[],
                        other => {
                            return Err(format!(
                                "a set read's value must be the list of elements, found {other}"
                            ))
                        }
                    };
                    let mut ids: Vec<u32> = items.iter().map(|v| self.elements.intern(v)).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    Ok(Compiled::Op(SetOp::Read(self.states.intern(ids))))
                }
                Outcome::Indeterminate | Outcome::Failed { .. } => Ok(Compiled::Drop),
            },
            f => Err(unknown_function("set", f, "add or read")),
        }
    }

    fn step(&mut self, state: StateId, op: SetOp) -> Option<StateId> {
        match op {
            SetOp::Read(observed) => (state == observed).then_some(state),
            SetOp::Add(e) => self.states.transition(state, u64::from(e), |elements| {
                let mut next = elements.to_vec();
                if let Err(at) = next.binary_search(&e) {
                    next.insert(at, e);
                }
                Some(next)
            }),
        }
    }

    fn render(&self, state: StateId) -> String {
        let mut rendered: Vec<String> = self
            .states
            .get(state)
            .iter()
            .map(|&e| self.elements.value(e).to_string())
            .collect();
        rendered.sort();
        format!("#{{{}}}", rendered.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(m: &mut SetModel<'static>, f: &'static str, input: Value, output: Value) -> SetOp {
        let raw = RawOp {
            f,
            input: Box::leak(Box::new(input)),
            output: Box::leak(Box::new(output)),
            outcome: Outcome::Ok,
        };
        match m.compile(&raw).unwrap() {
            Compiled::Op(o) => o,
            Compiled::Drop => panic!("dropped"),
        }
    }

    #[test]
    fn reads_see_the_set_in_any_order() {
        let mut m = SetModel::new();
        let s0 = m.initial(&Value::Nil);
        let add1 = compile(&mut m, "add", Value::Int(1), Value::Nil);
        let add2 = compile(&mut m, "add", Value::Int(2), Value::Nil);
        let read_21 = compile(
            &mut m,
            "read",
            Value::Nil,
            Value::List(vec![Value::Int(2), Value::Int(1)]),
        );
        let read_empty = compile(&mut m, "read", Value::Nil, Value::List(vec![]));
        assert_eq!(m.step(s0, read_empty), Some(s0));
        let s1 = m.step(s0, add1).unwrap();
        assert_eq!(m.step(s1, read_21), None);
        let s2 = m.step(s1, add2).unwrap();
        assert_eq!(m.step(s2, read_21), Some(s2));
        assert_eq!(m.step(s2, add1), Some(s2), "adding twice changes nothing");
        assert_eq!(m.render(s2), "#{1 2}");
    }

    #[test]
    fn a_read_must_return_a_list() {
        let mut m = SetModel::new();
        let raw = RawOp {
            f: "read",
            input: &Value::Nil,
            output: Box::leak(Box::new(Value::Int(3))),
            outcome: Outcome::Ok,
        };
        assert!(m.compile(&raw).unwrap_err().contains("list of elements"));
    }
}
