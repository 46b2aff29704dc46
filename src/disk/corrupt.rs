//! Corrupting a file of a node's disk (the layer's backing directory) while the node is
//! down: flipping bits in a region, truncating, or putting an older copy back. Pure file
//! operations, seeded by the caller's random source; each returns what it did, with a
//! checksum of the file's bytes before and after, as the fault's evidence.
//! [`corrupt_layer`] is what a `disk-corrupt` fault does to a mounted layer, the same in
//! this process and in a layer process of its own on a remote host.

use super::DiskLayer;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// How a file is corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CorruptStyle {
    /// 1 to [`MAX_FLIPPED_BITS`] bits flipped inside a region of at most [`REGION`] bytes
    /// at a random offset.
    BitFlip,
    /// The file cut at a random length shorter than its own.
    Truncate,
    /// The file overwritten with a copy of it kept earlier (a stale block or a restored
    /// backup).
    OldCopy,
}

impl CorruptStyle {
    pub const ALL: [CorruptStyle; 3] = [
        CorruptStyle::BitFlip,
        CorruptStyle::Truncate,
        CorruptStyle::OldCopy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CorruptStyle::BitFlip => "bit-flip",
            CorruptStyle::Truncate => "truncate",
            CorruptStyle::OldCopy => "old-copy",
        }
    }
}

/// The largest region bit flips land in.
pub const REGION: u64 = 64;
/// At most this many bits are flipped by one fault.
pub const MAX_FLIPPED_BITS: u32 = 4;

/// What one corruption did to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Corruption {
    /// The file, relative to the directory it was chosen in.
    pub file: PathBuf,
    pub style: CorruptStyle,
    /// The bytes changed: `[offset, offset + length)` of the file as it was before.
    pub offset: u64,
    pub length: u64,
    /// Bits flipped (bit flips only).
    pub bits: u32,
    pub size_before: u64,
    pub size_after: u64,
    /// FNV-1a (64-bit) of the file's bytes before and after.
    pub checksum_before: u64,
    pub checksum_after: u64,
}

impl fmt::Display for Corruption {
    /// `raft-log.jsonl: bit-flip of 3 bits in bytes 120..184 of 4096; fnv1a64 0x… -> 0x…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.style.name())?;
        match self.style {
            CorruptStyle::BitFlip => write!(
                f,
                " of {} bits in bytes {}..{} of {}",
                self.bits,
                self.offset,
                self.offset + self.length,
                self.size_before
            )?,
            CorruptStyle::Truncate => {
                write!(f, " from {} to {} bytes", self.size_before, self.size_after)?
            }
            CorruptStyle::OldCopy => write!(
                f,
                " ({} bytes replaced by an older copy of {} bytes)",
                self.size_before, self.size_after
            )?,
        }
        write!(
            f,
            "; fnv1a64 {:#018x} -> {:#018x}",
            self.checksum_before, self.checksum_after
        )
    }
}

/// FNV-1a, 64 bits: a checksum to tell the bytes before a corruption from those after.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Whether `path` (relative, `/`-separated) matches `pattern`, where `*` matches any run of
/// characters but `/`, `**` any run including `/`, and `?` one character but `/`.
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| go(rest, &s[i..])),
            [b'*', rest @ ..] => {
                let run = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
                (0..=run).any(|i| go(rest, &s[i..]))
            }
            [b'?', rest @ ..] => matches!(s, [c, tail @ ..] if *c != b'/' && go(rest, tail)),
            [c, rest @ ..] => matches!(s, [d, tail @ ..] if d == c && go(rest, tail)),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

/// The non-empty regular files under `root` (relative paths, sorted: the choice among them
/// depends on the seed only), those matching `pattern` when given.
pub fn candidates(root: &Path, pattern: Option<&str>) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = rel.join(entry.file_name());
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() && entry.metadata()?.len() > 0 {
                let text = path.to_string_lossy();
                if pattern.is_none_or(|p| glob_matches(p, &text)) {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Flips 1 to [`MAX_FLIPPED_BITS`] bits inside a region of at most [`REGION`] bytes at a
/// random offset of `root/file` (non-empty).
pub fn flip_bits(root: &Path, file: &Path, rng: &mut impl Rng) -> io::Result<Corruption> {
    let path = root.join(file);
    let mut bytes = std::fs::read(&path)?;
    let size = bytes.len() as u64;
    if size == 0 {
        return Err(empty(&path));
    }
    let offset = rng.gen_range(0..size);
    let length = REGION.min(size - offset);
    let bits = rng.gen_range(1..=MAX_FLIPPED_BITS);
    let before = fnv1a64(&bytes);
    let mut flipped = std::collections::BTreeSet::new();
    while flipped.len() < bits.min(length as u32 * 8) as usize {
        flipped.insert(rng.gen_range(0..length * 8));
    }
    for bit in &flipped {
        bytes[(offset + bit / 8) as usize] ^= 1 << (bit % 8);
    }
    std::fs::write(&path, &bytes)?;
    Ok(Corruption {
        file: file.to_owned(),
        style: CorruptStyle::BitFlip,
        offset,
        length,
        bits: flipped.len() as u32,
        size_before: size,
        size_after: size,
        checksum_before: before,
        checksum_after: fnv1a64(&bytes),
    })
}

/// Cuts `root/file` (non-empty) at a random length shorter than its own.
pub fn truncate(root: &Path, file: &Path, rng: &mut impl Rng) -> io::Result<Corruption> {
    let path = root.join(file);
    let bytes = std::fs::read(&path)?;
    let size = bytes.len() as u64;
    if size == 0 {
        return Err(empty(&path));
    }
    let cut = rng.gen_range(0..size);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_len(cut)?;
    Ok(Corruption {
        file: file.to_owned(),
        style: CorruptStyle::Truncate,
        offset: cut,
        length: size - cut,
        bits: 0,
        size_before: size,
        size_after: cut,
        checksum_before: fnv1a64(&bytes),
        checksum_after: fnv1a64(&bytes[..cut as usize]),
    })
}

/// Overwrites `root/file` with `old`, an earlier copy of it.
pub fn put_back(root: &Path, file: &Path, old: &[u8]) -> io::Result<Corruption> {
    let path = root.join(file);
    let bytes = std::fs::read(&path)?;
    std::fs::write(&path, old)?;
    Ok(Corruption {
        file: file.to_owned(),
        style: CorruptStyle::OldCopy,
        offset: 0,
        length: bytes.len().max(old.len()) as u64,
        bits: 0,
        size_before: bytes.len() as u64,
        size_after: old.len() as u64,
        checksum_before: fnv1a64(&bytes),
        checksum_after: fnv1a64(old),
    })
}

/// What [`corrupt_layer`] came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LayerCorruption {
    /// A file was corrupted.
    Corrupted(Corruption),
    /// No non-empty file matches `pattern` (`*` when the campaign gave none).
    NoFile { pattern: String },
    /// `old-copy` with no older copy of any file kept yet: `file` is kept now, for a later
    /// fault; nothing changed.
    KeptForLater { file: PathBuf },
}

impl LayerCorruption {
    /// Whether bytes of the disk changed.
    pub fn changed(&self) -> bool {
        matches!(self, LayerCorruption::Corrupted(_))
    }
}

impl fmt::Display for LayerCorruption {
    /// The fault's evidence line (after the node's name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerCorruption::Corrupted(done) => write!(f, "{done}"),
            LayerCorruption::NoFile { pattern } => {
                write!(f, "no non-empty file matching {pattern} to corrupt")
            }
            LayerCorruption::KeptForLater { file } => write!(
                f,
                "old-copy: no older copy of any file kept yet; kept {} for a later fault, \
                 nothing changed",
                file.display()
            ),
        }
    }
}

/// Corrupts one file of `layer`'s disk (its backing directory) in `style`, among the
/// non-empty files matching `pattern` (any when `None`), the file, offset and bits drawn
/// from `seed`. What the node's killed process wrote reaches the disk first (a crash keeps
/// the page cache). Every file chosen is kept as it was (the first copy only), for a later
/// `old-copy` to put back; `old-copy` puts back a kept copy that differs from the file.
pub fn corrupt_layer(
    layer: &DiskLayer,
    style: CorruptStyle,
    pattern: Option<&str>,
    seed: u64,
) -> io::Result<LayerCorruption> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    layer.state().sync_all()?;
    let backing = layer.backing();
    let files = candidates(backing, pattern)?;
    let mut kept = layer.kept_copies();
    if style == CorruptStyle::OldCopy {
        let mut stale: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        for file in &files {
            if let Some(old) = kept.get(file) {
                if std::fs::read(backing.join(file))? != *old {
                    stale.push((file.clone(), old.clone()));
                }
            }
        }
        if !stale.is_empty() {
            let (file, old) = &stale[rng.gen_range(0..stale.len())];
            return Ok(LayerCorruption::Corrupted(put_back(backing, file, old)?));
        }
    }
    if files.is_empty() {
        return Ok(LayerCorruption::NoFile {
            pattern: pattern.unwrap_or("*").to_owned(),
        });
    }
    let file = files[rng.gen_range(0..files.len())].clone();
    let bytes = std::fs::read(backing.join(&file))?;
    kept.entry(file.clone()).or_insert(bytes);
    let done = match style {
        CorruptStyle::BitFlip => flip_bits(backing, &file, &mut rng)?,
        CorruptStyle::Truncate => truncate(backing, &file, &mut rng)?,
        CorruptStyle::OldCopy => return Ok(LayerCorruption::KeptForLater { file }),
    };
    Ok(LayerCorruption::Corrupted(done))
}

fn empty(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is empty: nothing to corrupt", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(seed)
    }

    #[test]
    fn globs_match_within_and_across_directories() {
        assert!(glob_matches("raft-log.jsonl", "raft-log.jsonl"));
        assert!(glob_matches("raft-*", "raft-vote.json"));
        assert!(!glob_matches("raft-*", "member/raft-vote.json"));
        assert!(glob_matches("**/*.wal", "member/wal/0001.wal"));
        assert!(glob_matches("member/*/0?01.wal", "member/wal/0001.wal"));
        assert!(!glob_matches("*.wal", "member/wal/0001.wal"));
        assert!(!glob_matches("raft-log", "raft-log.jsonl"));
    }

    #[test]
    fn candidates_are_the_non_empty_files_matching_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.log"), b"x").unwrap();
        std::fs::write(dir.path().join("a.log"), b"x").unwrap();
        std::fs::write(dir.path().join("empty.log"), b"").unwrap();
        std::fs::write(dir.path().join("sub/c.log"), b"x").unwrap();
        let all = candidates(dir.path(), None).unwrap();
        assert_eq!(
            all,
            ["a.log", "b.log", "sub/c.log"].map(PathBuf::from).to_vec()
        );
        let top = candidates(dir.path(), Some("*.log")).unwrap();
        assert_eq!(top, ["a.log", "b.log"].map(PathBuf::from).to_vec());
    }

    #[test]
    fn bit_flips_change_only_bits_inside_the_region_and_are_seeded() {
        let dir = tempfile::tempdir().unwrap();
        let original: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let file = Path::new("f");
        let run = |seed| {
            std::fs::write(dir.path().join(file), &original).unwrap();
            let c = flip_bits(dir.path(), file, &mut rng(seed)).unwrap();
            (c, std::fs::read(dir.path().join(file)).unwrap())
        };
        let (c, after) = run(3);
        assert_eq!(run(3), (c.clone(), after.clone()), "seeded");
        assert_eq!(after.len(), original.len());
        let differing: u32 = original
            .iter()
            .zip(&after)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(differing, c.bits);
        assert!((1..=MAX_FLIPPED_BITS).contains(&c.bits));
        for (i, (a, b)) in original.iter().zip(&after).enumerate() {
            if a != b {
                assert!((c.offset..c.offset + c.length).contains(&(i as u64)));
            }
        }
        assert_eq!(c.checksum_before, fnv1a64(&original));
        assert_eq!(c.checksum_after, fnv1a64(&after));
        assert_ne!(c.checksum_before, c.checksum_after);
    }

    #[test]
    fn truncation_cuts_the_file_shorter() {
        let dir = tempfile::tempdir().unwrap();
        let file = Path::new("f");
        std::fs::write(dir.path().join(file), b"0123456789").unwrap();
        let c = truncate(dir.path(), file, &mut rng(1)).unwrap();
        let after = std::fs::read(dir.path().join(file)).unwrap();
        assert!(c.size_after < 10);
        assert_eq!(after, b"0123456789"[..c.size_after as usize]);
        assert_eq!(c.checksum_after, fnv1a64(&after));
        assert!(c
            .to_string()
            .contains(&format!("from 10 to {} bytes", c.size_after)));
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        assert!(truncate(dir.path(), Path::new("empty"), &mut rng(1)).is_err());
    }

    #[test]
    fn an_old_copy_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = Path::new("f");
        std::fs::write(dir.path().join(file), b"new and longer").unwrap();
        let c = put_back(dir.path(), file, b"old").unwrap();
        assert_eq!(std::fs::read(dir.path().join(file)).unwrap(), b"old");
        assert_eq!((c.size_before, c.size_after), (14, 3));
        assert_eq!(c.checksum_after, fnv1a64(b"old"));
        assert_eq!(c.checksum_before, fnv1a64(b"new and longer"));
    }
}
