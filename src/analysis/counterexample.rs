//! A counterexample in words: the one rendering of it, for the run's summary, its HTML and
//! JUnit reports, and `splitbrain check`.

use splitbrain_checkers::verdict::OpSummary;
use splitbrain_checkers::Counterexample;
use std::fmt;

/// Prefix operations spelt out before the one that breaks it.
const PREFIX_SHOWN: usize = 8;

/// Shows a counterexample over several lines: what broke, after what, and why. The first
/// line ([`CounterexampleText::headline`]) says it on its own.
pub struct CounterexampleText<'a>(pub &'a Counterexample);

impl CounterexampleText<'_> {
    /// The first line alone: `key 2 is not linearizable: process 1 read … cannot be placed.`
    pub fn headline(&self) -> String {
        let c = self.0;
        let key = c
            .key
            .as_ref()
            .map_or_else(|| "the register".to_owned(), |k| format!("key {k}"));
        format!(
            "{key} is not linearizable: {} cannot be placed.",
            describe_op(&c.operation)
        )
    }
}

impl fmt::Display for CounterexampleText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        let states = if c.states.is_empty() {
            "no state at all".to_owned()
        } else {
            c.states.join(" or ")
        };
        writeln!(f, "{}", self.headline())?;
        writeln!(
            f,
            "The longest linearizable prefix has {} operations; after it the value can only be {states}, which this operation contradicts.",
            c.prefix.len()
        )?;
        let skipped = c.prefix.len().saturating_sub(PREFIX_SHOWN);
        if skipped > 0 {
            writeln!(f, "  … {skipped} earlier operations")?;
        }
        for (i, op) in c.prefix.iter().enumerate().skip(skipped) {
            writeln!(f, "  {}. {}", i + 1, describe_op(op))?;
        }
        writeln!(f, "  ✗ {}", describe_op(&c.operation))
    }
}

fn describe_op(op: &OpSummary) -> String {
    let observed = match &op.output {
        // A read's invocation value is nil: show what it saw, even when that is nil too.
        Some(out) if *out != op.value || op.value.is_nil() => format!(" -> {out}"),
        _ => String::new(),
    };
    format!(
        "process {} {} {}{observed} ({}, event {})",
        op.process, op.f, op.value, op.outcome, op.index
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitbrain_checkers::Value;

    fn op(index: u64, f: &str, value: Value, output: Option<Value>) -> OpSummary {
        OpSummary {
            index,
            process: "1".into(),
            f: f.into(),
            value,
            output,
            outcome: "ok".into(),
        }
    }

    fn counterexample(prefix_len: u64) -> Counterexample {
        Counterexample {
            key: Some(Value::Int(2)),
            operation: op(99, "read", Value::Nil, Some(Value::Int(3))),
            prefix: (0..prefix_len)
                .map(|i| op(i, "write", Value::Int(i as i64), None))
                .collect(),
            states: vec!["1".into(), "2".into()],
        }
    }

    #[test]
    fn says_what_broke_after_what_and_why() {
        let text = CounterexampleText(&counterexample(2)).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "key 2 is not linearizable: process 1 read nil -> 3 (ok, event 99) cannot be placed.",
                "The longest linearizable prefix has 2 operations; after it the value can only be 1 or 2, which this operation contradicts.",
                "  1. process 1 write 0 (ok, event 0)",
                "  2. process 1 write 1 (ok, event 1)",
                "  ✗ process 1 read nil -> 3 (ok, event 99)",
            ]
        );
        assert_eq!(CounterexampleText(&counterexample(2)).headline(), lines[0]);
    }

    #[test]
    fn a_long_prefix_shows_its_last_operations_only() {
        let text = CounterexampleText(&counterexample(PREFIX_SHOWN as u64 + 3)).to_string();
        assert!(text.contains("  … 3 earlier operations\n"), "{text}");
        assert!(!text.contains("  3. "), "{text}");
        assert!(text.contains("  4. process 1 write 3"), "{text}");
        let register = Counterexample {
            key: None,
            states: Vec::new(),
            ..counterexample(0)
        };
        let text = CounterexampleText(&register).to_string();
        assert!(
            text.starts_with("the register is not linearizable"),
            "{text}"
        );
        assert!(text.contains("can only be no state at all"), "{text}");
    }
}
