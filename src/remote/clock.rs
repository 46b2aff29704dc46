//! The hosts' own clocks (`ssh.set_clock: true`): a clock bump shifts a host's clock by its
//! offset with `date -s` and shifts it back by the opposite offset at the heal, so the
//! time that passed meanwhile is kept. For programs libfaketime cannot skew (Go, static).
//!
//! Each change is in the run's ownership record before it is made
//! ([`super::hosts::RemoteRecord::ClockOffset`]), and the host keeps the net offset the run
//! has applied in a file of the run's next to its directory ([`offset_file`]), changed in the
//! same command as the clock: `splitbrain cleanup --run` undoes what that file says (and
//! removes it), so a second cleanup finds nothing to undo.

/// The file on a host that holds the net offset (milliseconds) the run applied to its
/// clock: `<run root>.clock` (next to the run's directory, which goes before the clock may
/// be put back).
pub fn offset_file(run_root: &str) -> String {
    format!("{}.clock", run_root.trim_end_matches('/'))
}

/// The shell line that shifts the host's clock by `ms` (a shell arithmetic expression, in
/// milliseconds) and adds it to the net offset in `file` (a quoted path); prints the clock
/// after, in nanoseconds since the epoch.
pub fn shift_script(file: &str, ms: &str) -> String {
    format!(
        "off=$(({ms})); prev=$(cat {file} 2>/dev/null || echo 0); \
         now=$(date +%s%N) && new=$((now + off * 1000000)) && \
         echo $((prev + off)) >{file}.tmp && mv {file}.tmp {file} && \
         date -s \"@$((new / 1000000000)).$(printf %09d $((new % 1000000000)))\" >/dev/null && date +%s%N"
    )
}

/// The line that undoes the net offset `file` (a quoted path) holds and removes it; says
/// `removed` when there was an offset to undo.
pub fn undo_script(file: &str) -> String {
    format!(
        "if [ -e {file} ]; then net=$(cat {file}); if [ \"$net\" != 0 ]; then {} >/dev/null && echo removed; fi; rm -f {file}; fi",
        shift_script(file, "0 - net")
    )
}

/// The loop of a strobe of the host's clock (Jepsen's strobe): shifts it by `offset_ms`,
/// waits `period`, shifts it back, waits, and so on, each shift through [`shift_script`]
/// (so the net offset in `file`, a quoted path, follows the clock). SIGTERM ends it after
/// its next shift back: it leaves the net offset it found.
pub fn strobe_script(file: &str, offset_ms: i64, period: std::time::Duration) -> String {
    let wait = format!("sleep {:.3}", period.as_secs_f64());
    format!(
        "stop=; trap 'stop=1' TERM; while [ -z \"$stop\" ]; do {} >/dev/null; {wait}; {} >/dev/null; [ -n \"$stop\" ] || {wait}; done",
        shift_script(file, &offset_ms.to_string()),
        shift_script(file, &(-offset_ms).to_string()),
    )
}

/// The line that prints the host's clock, nanoseconds since the epoch.
pub const READ_SCRIPT: &str = "date +%s%N";

/// The host's clock minus the controller's, in milliseconds: `host_ns` read by the host
/// between `before` and `after` on the controller (taken as read at the midpoint).
pub fn skew_ms(host_ns: i128, before: std::time::SystemTime, after: std::time::SystemTime) -> i64 {
    let ns = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0)
    };
    let midpoint = (ns(before) + ns(after)) / 2;
    ((host_ns - midpoint) / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `dir` with a stand-in `date` in it that logs each `-s` request to the returned
    /// file and reads a fixed clock, 1000 s after the epoch (this machine's clock is never
    /// changed).
    fn stand_in_date(dir: &std::path::Path) -> std::path::PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.join("asked");
        let date = dir.join("date");
        std::fs::write(
            &date,
            format!(
                "#!/bin/sh\ncase \"$1\" in -s) echo \"$2\" >>{};; *) echo 1000000000000;; esac\n",
                log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&date, std::fs::Permissions::from_mode(0o755)).unwrap();
        log
    }

    /// The scripts against a stand-in `date` on `PATH` (this machine's clock is never
    /// changed): the offsets add up in the file, and the undo takes it to zero.
    #[test]
    fn shifts_add_up_in_the_offset_file_and_the_undo_puts_the_clock_back() {
        let dir = std::env::temp_dir().join(format!("sb-clock-{}", std::process::id()));
        let log = stand_in_date(&dir);
        let file = dir.join("run.clock").display().to_string();
        let sh = |line: &str| {
            let out = std::process::Command::new("sh")
                .args(["-c", line])
                .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
                .output()
                .unwrap();
            assert!(out.status.success(), "{line}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        sh(&shift_script(&file, "30000"));
        sh(&shift_script(&file, "-1500"));
        assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), "28500");
        assert_eq!(sh(&undo_script(&file)).trim(), "removed");
        assert!(!std::path::Path::new(&file).exists());
        assert_eq!(sh(&undo_script(&file)), "", "nothing left to undo");
        let asked = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            asked, "@1030.000000000\n@998.500000000\n@971.500000000\n",
            "each shift from the clock as read"
        );
    }

    /// The strobe's loop against the same kind of stand-in `date`: SIGTERM in the middle
    /// of it ends the loop only after a shift back, so the net offset it leaves is zero and
    /// every shift up has its shift back.
    #[test]
    fn a_strobe_stopped_by_sigterm_ends_after_a_shift_back() {
        let dir = std::env::temp_dir().join(format!("sb-clock-strobe-{}", std::process::id()));
        let log = stand_in_date(&dir);
        let file = dir.join("run.clock").display().to_string();
        let mut looping = std::process::Command::new("sh")
            .args([
                "-c",
                &strobe_script(&file, 20_000, std::time::Duration::from_millis(30)),
            ])
            .env("PATH", format!("{}:/usr/bin:/bin", dir.display()))
            .spawn()
            .unwrap();
        // Several flips, then SIGTERM at some point of a cycle.
        std::thread::sleep(std::time::Duration::from_millis(250));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(looping.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = looping.wait().unwrap();
        let net = std::fs::read_to_string(&file).unwrap();
        let asked = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(status.success(), "{status:?}");
        assert_eq!(net.trim(), "0", "the net offset left");
        let shifts: Vec<&str> = asked.lines().collect();
        assert!(shifts.len() >= 4 && shifts.len() % 2 == 0, "{shifts:?}");
        // From the fixed clock at 1000 s: up to 1020 s, back to 980 s (20 s before the
        // clock as read), and so on.
        assert!(
            shifts
                .chunks(2)
                .all(|pair| pair == ["@1020.000000000", "@980.000000000"]),
            "{shifts:?}"
        );
    }

    #[test]
    fn the_skew_is_taken_at_the_midpoint() {
        let t = |ms: u64| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        assert_eq!(skew_ms(31_000_000_000, t(1_000), t(1_000)), 30_000);
        assert_eq!(skew_ms(1_500_000_000, t(1_000), t(2_000)), 0);
        assert_eq!(skew_ms(500_000_000, t(1_000), t(1_000)), -500);
    }
}
