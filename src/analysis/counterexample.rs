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
