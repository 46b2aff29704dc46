//! Clock faults through libfaketime: preloaded into every node when a campaign has clock
//! faults, reading its offset from a file per node that the nemesis rewrites at run time.
//!
//! Settings (checked on the project's machines):
//! * `FAKETIME_DONT_FAKE_MONOTONIC=1`: only the wall clock moves, as with a real NTP step;
//!   faking the monotonic clock too makes timeouts never fire.
//! * `FAKETIME_NO_CACHE=1`: the offset file is re-read on every clock read, so a bump or a
//!   strobe applies at once (libfaketime otherwise caches it for about 10 s).
//! * `FAKETIME_TIMESTAMP_FILE`: holds a relative offset in seconds such as `+0`, `-90.5`.
//!   It is replaced atomically (write + rename), so a node never reads half a file.
//!
//! libfaketime works by interposing libc: it cannot skew Go programs (they read the clock
//! through the vDSO) nor static binaries (nothing is preloaded). [`check_binary`] refuses
//! those with the reason.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The offset file's name inside a node's directory.
pub const OFFSET_FILE: &str = "faketime-offset";

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("clock faults on node {node}: {binary}: {reason}")]
    Unskewable {
        node: String,
        binary: PathBuf,
        reason: String,
    },
    #[error("clock faults on node {node}: cannot find `{binary}` on PATH")]
    NotFound { node: String, binary: PathBuf },
    #[error("writing clock offset file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

/// The environment that preloads libfaketime (`lib`) reading offsets from `offset_file`.
pub fn faketime_env(lib: &Path, offset_file: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".to_owned(), lib.display().to_string()),
        (
            "FAKETIME_TIMESTAMP_FILE".to_owned(),
            offset_file.display().to_string(),
        ),
        ("FAKETIME_NO_CACHE".to_owned(), "1".to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
    ]
}

/// libfaketime's relative offset syntax for `offset_ms`, e.g. `+1.500`, `-90.000`.
pub fn offset_spec(offset_ms: i64) -> String {
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let abs = offset_ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Replaces the offset file atomically with `offset_ms`.
pub fn write_offset(path: &Path, offset_ms: i64) -> Result<(), ClockError> {
    let err = |source| ClockError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    // A file of the run directory: its mode is the run's (0644), not the umask's.
    let mut file = crate::results::create_file(&tmp).map_err(err)?;
    file.write_all(format!("{}\n", offset_spec(offset_ms)).as_bytes())
        .map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)
}

/// Reads the offset back (ms), for evidence.
pub fn read_offset(path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    let seconds: f64 = text.trim().parse().ok()?;
    Some((seconds * 1000.0).round() as i64)
}

/// `program` as a path: itself if it has a `/`, else the first match on `PATH`.
pub fn resolve_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.exists().then(|| program.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Why a binary cannot be skewed by libfaketime, if it cannot.
pub fn unskewable_reason(bytes: &[u8]) -> Option<String> {
    let elf = match goblin::elf::Elf::parse(bytes) {
        Ok(elf) => elf,
        // Scripts (`#!`) run an interpreter that is itself dynamically linked as a rule;
        // what we cannot parse we cannot judge, so it is let through.
        Err(_) => return None,
    };
    let is_go = elf
        .section_headers
        .iter()
        .any(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".go.buildinfo"));
    if is_go {
        return Some(
            "a Go binary (it has a .go.buildinfo section): Go reads the clock through the vDSO, \
             not libc, so libfaketime cannot skew it"
                .to_owned(),
        );
    }
    if elf.interpreter.is_none() {
        return Some(
            "statically linked (no PT_INTERP): nothing can be preloaded into it".to_owned(),
        );
    }
    None
}

/// Refuses clock faults for node `node` running `program`, naming why.
pub fn check_binary(node: &str, program: &Path) -> Result<(), ClockError> {
    let path = resolve_program(program).ok_or_else(|| ClockError::NotFound {
        node: node.to_owned(),
        binary: program.to_owned(),
    })?;
    let bytes = std::fs::read(&path).map_err(|e| ClockError::Unskewable {
        node: node.to_owned(),
        binary: path.clone(),
        reason: format!("cannot read it: {e}"),
    })?;
    match unskewable_reason(&bytes) {
        Some(reason) => Err(ClockError::Unskewable {
            node: node.to_owned(),
            binary: path,
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_written_in_libfaketime_syntax_and_read_back() {
        assert_eq!(offset_spec(0), "+0.000");
        assert_eq!(offset_spec(1500), "+1.500");
        assert_eq!(offset_spec(-90_000), "-90.000");
        assert_eq!(offset_spec(-5), "-0.005");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OFFSET_FILE);
        write_offset(&path, -12_345).unwrap();
        assert_eq!(read_offset(&path), Some(-12_345));
        write_offset(&path, 0).unwrap();
        assert_eq!(read_offset(&path), Some(0));
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn dynamic_c_binaries_pass_and_scripts_are_not_judged() {
        // /bin/sh is a dynamically linked C program on every supported system.
        let sh = std::fs::read("/bin/sh").unwrap();
        assert_eq!(unskewable_reason(&sh), None);
        assert_eq!(unskewable_reason(b"#!/bin/sh\necho hi\n"), None);
        assert!(check_binary("n1", Path::new("sh")).is_ok());
        let err = check_binary("n1", Path::new("splitbrain-no-such-binary")).unwrap_err();
        assert!(
            err.to_string().contains("n1") && err.to_string().contains("PATH"),
            "{err}"
        );
    }

    #[test]
    fn go_binaries_are_refused_by_their_buildinfo_section() {
        // Debian's etcd is a dynamically linked Go binary: the hard case.
        let Some(etcd) = resolve_program(Path::new("etcd")) else {
            println!(
                "go_binaries_are_refused_by_their_buildinfo_section: skipped: no etcd on PATH"
            );
            return;
        };
        let err = check_binary("n2", &etcd).unwrap_err().to_string();
        assert!(
            err.contains("n2") && err.contains("Go binary") && err.contains("vDSO"),
            "{err}"
        );
    }

    #[test]
    fn static_binaries_are_refused() {
        // The smallest valid static ELF: a header and no program headers at all.
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little endian
        elf[6] = 1; // version
        elf[16] = 2; // ET_EXEC
        elf[18] = 0x3e; // x86-64
        elf[20] = 1; // version
        elf[52] = 64; // e_ehsize
        elf[54] = 56; // e_phentsize
        elf[58] = 64; // e_shentsize
        let reason = unskewable_reason(&elf).expect("a static binary is refused");
        assert!(reason.contains("statically linked"), "{reason}");
    }
}
