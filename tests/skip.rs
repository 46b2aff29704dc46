//! The workspace's one skip helper (`tests/common/skip.rs`): its line reaches the output of
//! `cargo test` past the capture of passing tests, and `SPLITBRAIN_REQUIRE` turns a skip of
//! what it names into a failure.

mod common;

use common::skip::{skip_as, skip_line, Need, Required, REQUIRE_VARIABLE};
use std::process::{Command, Output};

/// Set in a child run of this binary: the test then only skips, as a real test would.
const CHILD: &str = "SPLITBRAIN_SKIP_HELPER_CHILD";

/// Runs one test of this binary in a child, as `cargo test` runs it (output captured).
fn run_child(test: &str, require: Option<&str>) -> Output {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", test, "--test-threads=1"])
        .env(CHILD, "1");
    match require {
        Some(value) => child.env(REQUIRE_VARIABLE, value),
        None => child.env_remove(REQUIRE_VARIABLE),
    };
    child.output().expect("run this test binary")
}

#[test]
fn a_skip_is_shown_by_cargo_test_and_passes_when_not_required() {
    let test = "a_skip_is_shown_by_cargo_test_and_passes_when_not_required";
    if std::env::var_os(CHILD).is_some() {
        common::skip(test, Need::Root, "a reason");
        return;
    }
    for require in [None, Some(""), Some("etcd,chromium")] {
        let out = run_child(test, require);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{require:?}: {out:?}");
        assert!(
            stderr.contains(&format!("skipped: {test}: a reason\n")),
            "{require:?}: the line is not in the output: {stderr}"
        );
    }
}

#[test]
fn a_skip_of_something_required_fails_the_test() {
    let test = "a_skip_of_something_required_fails_the_test";
    if std::env::var_os(CHILD).is_some() {
        common::skip(test, Need::Etcd, "no etcd here");
        return;
    }
    for require in ["all", "etcd", "root, etcd"] {
        let out = run_child(test, Some(require));
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{require}: passed: {output}");
        assert!(
            output.contains(&format!("skipped: {test}: no etcd here"))
                && output.contains("SPLITBRAIN_REQUIRE requires `etcd`"),
            "{require}: {output}"
        );
    }
}

#[test]
fn the_requirement_is_all_or_a_list_of_known_names() {
    assert_eq!(Required::parse("all"), Ok(Required::All));
    assert_eq!(Required::parse(""), Ok(Required::Only(vec![])));
    assert_eq!(
        Required::parse("root, conformance,,nft"),
        Ok(Required::Only(vec![
            Need::Root,
            Need::Conformance,
            Need::Nftables
        ]))
    );
    let error = Required::parse("root,etdc").unwrap_err();
    assert!(
        error.contains("`etdc`") && error.contains("etcd"),
        "{error}"
    );
    for need in Need::ALL {
        assert_eq!(
            Required::parse(need.name()),
            Ok(Required::Only(vec![need])),
            "{need}"
        );
    }
}

#[test]
fn skip_as_panics_when_what_is_missing_is_required() {
    let panic = std::panic::catch_unwind(|| {
        skip_as("t", Need::Root, "r", &Required::Only(vec![Need::Root]));
    })
    .expect_err("required, so it fails");
    let message = panic.downcast_ref::<String>().expect("a message");
    assert!(message.starts_with(&skip_line("t", "r")), "{message}");
}
