//! `junit.xml`: one test case per checker, so a CI server shows which check failed and why.
//!
//! `valid` is a pass; `invalid` is a `<failure>` whose text is the counterexample in words;
//! `unknown` is an `<error>` (the check could not decide: a limit was hit or the evidence is
//! too thin), so it is never mistaken for a pass.

use super::Checked;
use crate::analysis::{CounterexampleText, RunFacts};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use splitbrain_checkers::Verdict;

/// One test suite for one run: `<campaign> on <system>`, a case per checker.
pub fn suite(facts: &RunFacts, checked: &Checked) -> TestSuite {
    let campaign = facts.campaign;
    let mut suite = TestSuite::new(format!(
        "{} on {} (seed {})",
        campaign.name,
        campaign.system.name(),
        facts.seed
    ));
    suite.set_time(facts.main_elapsed);
    suite.add_property(Property::new("seed", facts.seed.to_string()));
    suite.add_property(Property::new("run_id", facts.run_id));
    suite.add_property(Property::new("system", campaign.system.name()));
    suite.add_property(Property::new("verdict", checked.verdict.as_str()));
    for outcome in &checked.results.checkers {
        let status = match outcome.verdict {
            Verdict::Valid => TestCaseStatus::success(),
            Verdict::Invalid => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type("invalid");
                s.set_message(&outcome.detail);
                s.set_description(match &outcome.counterexample {
                    Some(cex) => CounterexampleText(cex).to_string(),
                    None => outcome.detail.clone(),
                });
                s
            }
            Verdict::Unknown => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_type("unknown");
                s.set_message(format!("unknown: {}", outcome.detail));
                s
            }
        };
        let mut case = TestCase::new(outcome.checker.clone(), status);
        case.set_classname(format!("splitbrain.{}", campaign.name));
        case.set_system_out(format!("{}: {}", outcome.verdict, outcome.detail));
        suite.add_test_case(case);
    }
    suite
}

/// A JUnit report of several runs, one suite each.
pub fn report(suites: impl IntoIterator<Item = TestSuite>) -> Report {
    let mut report = Report::new("splitbrain");
    report.add_test_suites(suites);
    report
}

/// Renders a report as XML.
pub fn to_xml(report: &Report) -> Result<String, quick_junit::SerializeError> {
    report.to_string()
}
