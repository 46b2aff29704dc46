//! A FIFO queue: `enqueue v` appends, `dequeue` removes the head and returns it (`nil` when
//! the queue is empty). States are interned sequences of value ids.

use super::{
    unknown_function, Compiled, Model, Outcome, RawOp, SequenceStates, StateId, ValueInterner,
};
use crate::history::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueOp {
    Enqueue(u32),
    /// An `ok` dequeue that returned this value.
    Dequeue(u32),
    /// An `ok` dequeue that found the queue empty.
    DequeueEmpty,
    /// A dequeue whose result is unknown (crashed): removes whatever is at the head.
    DequeueAny,
}

impl QueueOp {
    /// A distinct transition label per operation, for the transition cache.
    fn label(self) -> u64 {
        match self {
            QueueOp::Enqueue(v) => u64::from(v),
            QueueOp::Dequeue(v) => (1 << 32) | u64::from(v),
            QueueOp::DequeueEmpty => 2 << 32,
            QueueOp::DequeueAny => 3 << 32,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct FifoQueueModel<'h> {
    values: ValueInterner<'h>,
    states: SequenceStates,
}

impl FifoQueueModel<'_> {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<'h> Model<'h> for FifoQueueModel<'h> {
    type Op = QueueOp;

    fn initial(&mut self, _initial: &'h Value) -> StateId {
        self.states.intern(Vec::new())
    }

    fn compile(&mut self, op: &RawOp<'h>) -> Result<Compiled<QueueOp>, String> {
        match op.f {
            "enqueue" => {
                if op.input.is_nil() {
                    return Err("enqueue expects a value (nil means an empty dequeue)".to_owned());
                }
                Ok(match op.outcome {
                    Outcome::Ok | Outcome::Indeterminate => {
                        Compiled::Op(QueueOp::Enqueue(self.values.intern(op.input)))
                    }
                    Outcome::Failed { .. } => Compiled::Drop,
                })
            }
            "dequeue" => Ok(match op.outcome {
                Outcome::Ok if op.output.is_nil() => Compiled::Op(QueueOp::DequeueEmpty),
                Outcome::Ok => Compiled::Op(QueueOp::Dequeue(self.values.intern(op.output))),
                Outcome::Indeterminate => Compiled::Op(QueueOp::DequeueAny),
                Outcome::Failed { .. } => Compiled::Drop,
            }),
            f => Err(unknown_function("fifo-queue", f, "enqueue or dequeue")),
        }
    }

    fn step(&mut self, state: StateId, op: QueueOp) -> Option<StateId> {
        self.states.transition(state, op.label(), |queue| match op {
            QueueOp::Enqueue(v) => {
                let mut next = Vec::with_capacity(queue.len() + 1);
                next.extend_from_slice(queue);
                next.push(v);
                Some(next)
            }
            QueueOp::Dequeue(v) => (queue.first() == Some(&v)).then(|| queue[1..].to_vec()),
            QueueOp::DequeueEmpty => queue.is_empty().then(Vec::new),
            // A crashed dequeue on an empty queue has no effect; not linearizing it is the
            // same, so it is not offered as a step.
            QueueOp::DequeueAny => (!queue.is_empty()).then(|| queue[1..].to_vec()),
        })
    }

    fn render(&self, state: StateId) -> String {
        let items: Vec<String> = self
            .states
            .get(state)
            .iter()
            .map(|&v| self.values.value(v).to_string())
            .collect();
        format!("[{}]", items.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(
        m: &mut FifoQueueModel<'static>,
        f: &'static str,
        input: Value,
        output: Value,
        outcome: Outcome,
    ) -> QueueOp {
        let raw = RawOp {
            f,
            input: Box::leak(Box::new(input)),
            output: Box::leak(Box::new(output)),
            outcome,
        };
        match m.compile(&raw).unwrap() {
            Compiled::Op(o) => o,
            Compiled::Drop => panic!("dropped"),
        }
    }

    #[test]
    fn dequeues_come_out_in_enqueue_order() {
        let mut m = FifoQueueModel::new();
        let s0 = m.initial(&Value::Nil);
        let enq1 = compile(&mut m, "enqueue", Value::Int(1), Value::Nil, Outcome::Ok);
        let enq2 = compile(&mut m, "enqueue", Value::Int(2), Value::Nil, Outcome::Ok);
        let deq1 = compile(&mut m, "dequeue", Value::Nil, Value::Int(1), Outcome::Ok);
        let deq2 = compile(&mut m, "dequeue", Value::Nil, Value::Int(2), Outcome::Ok);
        let deq_empty = compile(&mut m, "dequeue", Value::Nil, Value::Nil, Outcome::Ok);
        let deq_any = compile(
            &mut m,
            "dequeue",
            Value::Nil,
            Value::Nil,
            Outcome::Indeterminate,
        );
        assert_eq!(m.step(s0, deq_empty), Some(s0));
        assert_eq!(m.step(s0, deq_any), None);
        let s1 = m.step(s0, enq1).unwrap();
        let s12 = m.step(s1, enq2).unwrap();
        assert_eq!(m.render(s12), "[1 2]");
        assert_eq!(m.step(s12, deq2), None);
        let s2 = m.step(s12, deq1).unwrap();
        assert_eq!(m.render(s2), "[2]");
        assert_eq!(m.step(s12, deq_any), Some(s2));
        assert_eq!(m.step(s2, deq2), Some(s0));
    }

    #[test]
    fn enqueue_of_nil_is_an_error() {
        let mut m = FifoQueueModel::new();
        let raw = RawOp {
            f: "enqueue",
            input: &Value::Nil,
            output: &Value::Nil,
            outcome: Outcome::Ok,
        };
        assert!(m
            .compile(&raw)
            .unwrap_err()
            .contains("enqueue expects a value"));
    }
}
