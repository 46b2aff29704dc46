//! Partitions and packet loss through iptables, for hosts without `nft`: chains of the run's
//! own, jumped to from `INPUT` (and `OUTPUT` for loss), removed whole at the heal. Only the
//! run's chains and the jumps to them are ever touched; every other rule stays as it is.
//!
//! The command lines are built here; [`super::hosts::RemoteHosts`] runs them on the host
//! that has iptables but no nft ([`super::hosts::Firewall::Iptables`]).

use crate::cleanup::RunId;

/// What every iptables command line starts with: the `sbin` directories on `PATH`, and
/// `-w` on every call (wait for the xtables lock instead of failing).
const PRELUDE: &str = "PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin; ipt() { iptables -w \"$@\"; }; ";

/// The chain of a run's partitions on every host (jumped to from `INPUT`). At most 28
/// characters for a run id of 12 (iptables' limit).
pub fn partition_chain(run: &RunId) -> String {
    format!("splitbrain-{}", run.as_str())
}

/// The chain of a run's packet loss on every host (jumped to from `INPUT` and `OUTPUT`).
pub fn loss_chain(run: &RunId) -> String {
    format!("splitbrain-{}-loss", run.as_str())
}

/// Whether `chain` is one of `run`'s chains (cleanup removes nothing else).
pub fn is_run_chain(run: &RunId, chain: &str) -> bool {
    chain == partition_chain(run) || chain == loss_chain(run)
}

/// The line that makes `chain` (emptied when it is there already) with `rules` (each the
/// arguments of one `-A`), then jumps to it from each of `hooks` (once each).
fn chain_script(chain: &str, rules: &[String], hooks: &[&str]) -> String {
    let mut line = format!("{PRELUDE}{{ ipt -N {chain} 2>/dev/null || ipt -F {chain}; }}");
    for rule in rules {
        line.push_str(&format!(" && ipt -A {chain} {rule}"));
    }
    for hook in hooks {
        line.push_str(&format!(
            " && {{ ipt -C {hook} -j {chain} 2>/dev/null || ipt -I {hook} 1 -j {chain}; }}"
        ));
    }
    line
}

/// The partition: input from `drop_from` (IP addresses, checked by the caller) dropped.
/// The line, and the rules in one line for the record.
pub fn partition_script(chain: &str, drop_from: &[String]) -> (String, String) {
    let rule = format!("-s {} -j DROP", drop_from.join(","));
    (
        chain_script(chain, std::slice::from_ref(&rule), &["INPUT"]),
        format!("chain {chain} (from INPUT): {rule}"),
    )
}

/// The loss: `percent`% of the packets from and to `peers` dropped, both ways, counted by
/// the rules' own counters. The line, and the rules in one line for the record.
pub fn loss_script(chain: &str, peers: &[String], percent: u8) -> (String, String) {
    let probability = f64::from(percent.clamp(1, 100)) / 100.0;
    let set = peers.join(",");
    let statistic = format!("-m statistic --mode random --probability {probability:.5}");
    let input = format!("-s {set} {statistic} -j DROP");
    let output = format!("-d {set} {statistic} -j DROP");
    (
        chain_script(
            chain,
            &[input.clone(), output.clone()],
            &["INPUT", "OUTPUT"],
        ),
        format!("chain {chain} (from INPUT and OUTPUT): {input}; {output}"),
    )
}

/// Removes `chain`: every jump to it from `INPUT` and `OUTPUT`, its rules, the chain. Fails
/// only when the chain is still there afterwards; says `removed` when it was there.
pub fn remove_script(chain: &str) -> String {
    format!(
        "{PRELUDE}if ipt -n -L {chain} >/dev/null 2>&1; then \
         for hook in INPUT OUTPUT; do while ipt -D $hook -j {chain} 2>/dev/null; do :; done; done; \
         ipt -F {chain} && ipt -X {chain} && echo removed; fi; ! ipt -n -L {chain} >/dev/null 2>&1"
    )
}

/// The line that lists `chain` with its exact counters.
pub fn counters_script(chain: &str) -> String {
    format!("{PRELUDE}ipt -n -v -x -L {chain}")
}

/// The packets dropped by the rules of an `iptables -n -v -x -L` listing.
pub fn sum_dropped(listing: &str) -> u64 {
    listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let packets = words.next()?.parse::<u64>().ok()?;
            let _bytes = words.next()?;
            (words.next()? == "DROP").then_some(packets)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_id() -> RunId {
        RunId::parse("abcdefabcdef").unwrap()
    }

    #[test]
    fn chain_names_fit_iptables_and_only_the_runs_are_its_own() {
        let run = run_id();
        assert!(loss_chain(&run).len() <= 28, "{}", loss_chain(&run));
        assert!(is_run_chain(&run, "splitbrain-abcdefabcdef"));
        assert!(is_run_chain(&run, "splitbrain-abcdefabcdef-loss"));
        assert!(!is_run_chain(&run, "INPUT"));
        assert!(!is_run_chain(&run, "splitbrain-other"));
    }

    #[test]
    fn rules_jump_from_the_hooks_once_and_drop_what_they_must() {
        let (line, rules) = partition_script("sb", &["10.0.0.2".into(), "10.0.0.3".into()]);
        assert!(
            line.contains("ipt -A sb -s 10.0.0.2,10.0.0.3 -j DROP"),
            "{line}"
        );
        assert!(
            line.contains("ipt -C INPUT -j sb 2>/dev/null || ipt -I INPUT 1 -j sb"),
            "{line}"
        );
        assert!(!line.contains("OUTPUT"), "{line}");
        assert_eq!(rules, "chain sb (from INPUT): -s 10.0.0.2,10.0.0.3 -j DROP");
        let (line, _) = loss_script("sbl", &["10.0.0.2".into()], 30);
        assert!(
            line.contains("-s 10.0.0.2 -m statistic --mode random --probability 0.30000 -j DROP"),
            "{line}"
        );
        assert!(line.contains("-d 10.0.0.2 -m statistic"), "{line}");
        assert!(line.contains("ipt -I OUTPUT 1 -j sbl"), "{line}");
        let remove = remove_script("sb");
        assert!(remove.contains("ipt -D $hook -j sb"), "{remove}");
        assert!(remove.contains("ipt -X sb"), "{remove}");
    }

    #[test]
    fn dropped_packets_are_summed_from_the_listing() {
        let listing = "Chain c1 (2 references)\n    pkts      bytes target     prot opt in     out     source               destination\n      12      400 DROP       0    --  *      *       10.0.0.2             0.0.0.0/0            statistic mode random probability 0.29999999981\n       3        9 DROP       0    --  *      *       0.0.0.0/0            10.0.0.2\n       7        9 ACCEPT     0    --  *      *       0.0.0.0/0            10.0.0.2\n";
        assert_eq!(sum_dropped(listing), 15);
    }

    /// The scripts against a real iptables, in a network namespace of the test's own.
    #[test]
    fn the_scripts_make_and_remove_only_the_runs_chain_in_a_throwaway_namespace() {
        let have = std::process::Command::new("unshare")
            .args(["--net", "sh", "-c", &format!("{PRELUDE}ipt -S >/dev/null")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !have {
            eprintln!("skipped: needs root and iptables");
            return;
        }
        let (make, _) = loss_script("sbl", &["10.0.0.2".into()], 30);
        let script = format!(
            "{PRELUDE}ipt -N other && ipt -A INPUT -j other && {make} && {make} && ipt -S && echo ---; {} && ipt -S",
            remove_script("sbl")
        );
        let out = std::process::Command::new("unshare")
            .args(["--net", "sh", "-c", &script])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (before, after) = text.split_once("---").unwrap();
        // Made twice: the chain emptied and refilled, one jump from each hook.
        assert_eq!(before.matches("-A INPUT -j sbl").count(), 1, "{before}");
        assert_eq!(before.matches("-A OUTPUT -j sbl").count(), 1, "{before}");
        assert_eq!(before.matches("-A sbl ").count(), 2, "{before}");
        assert!(after.contains("removed"), "{after}");
        assert!(!after.contains("sbl"), "{after}");
        assert!(after.contains("-A INPUT -j other"), "{after}");
    }
}
