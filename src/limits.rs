//! What a campaign may ask for: every duration and count is range-checked while the file is
//! parsed, so a value out of range is reported with its line and column (exit 64) before
//! anything starts — never as an overflow once the cluster is up.
//!
//! Shared by the campaign and the sections other modules define (the systems', the
//! nemesis's): the lowest layer, it imports nothing of the crate.

use serde::de::{Deserialize, Deserializer, Error, Visitor};
use std::fmt;
use std::time::Duration;

/// Longest duration anywhere in a campaign: a week.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Largest cluster.
pub const MAX_NODES: usize = 9;
/// clusterkv's heartbeat: whole milliseconds, at most a minute.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(1);
pub const MAX_HEARTBEAT: Duration = Duration::from_secs(60);
/// clusterkv's election timeout: above the heartbeat, at most ten minutes.
pub const MAX_ELECTION_TIMEOUT: Duration = Duration::from_secs(600);
/// Most client processes.
pub const MAX_CONCURRENCY: usize = 1000;
/// Largest operation count (`ops_per_key`, `max_ops`, `min_ok_per_key`).
pub const MAX_OPS: u64 = 1_000_000_000_000;
/// Highest target rate, operations per second.
pub const MAX_RATE: f64 = 10_000_000.0;
/// Longest name that becomes a path component.
pub const MAX_NAME_LEN: usize = 100;
/// Largest campaign file.
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Most YAML aliases (`*name`) in a campaign file: each one repeats what it names.
pub const MAX_ALIASES: usize = 64;
/// Most keys in a transactional workload's active pool.
pub const MAX_TXN_KEYS: usize = 100_000;
/// Most micro-operations in one transaction.
pub const MAX_TXN_LENGTH: usize = 1_000;

/// A value checked inside the parser's visitor, so that serde_yaml reports the place of
/// the offending scalar itself (an error raised after deserializing would carry the place
/// of the enclosing map, or none).
struct Checked<T>(T);

/// Checks a string scalar.
struct StrCheck<T> {
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
}

impl<'de, T> Visitor<'de> for StrCheck<T> {
    type Value = Checked<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        (self.check)(v).map(Checked).map_err(E::custom)
    }
}

/// Checks an unsigned integer scalar against a range.
struct RangeCheck {
    min: u64,
    max: u64,
}

impl<'de> Visitor<'de> for RangeCheck {
    type Value = Checked<u64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an integer from {} to {}", self.min, self.max)
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
        if (self.min..=self.max).contains(&v) {
            Ok(Checked(v))
        } else {
            Err(E::custom(format!(
                "{v}: expected {} to {}",
                self.min, self.max
            )))
        }
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!(
                "{v}: expected {} to {}",
                self.min, self.max
            ))),
        }
    }
}

/// Checks a rate scalar.
struct RateCheck;

impl<'de> Visitor<'de> for RateCheck {
    type Value = Checked<f64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number of operations per second")
    }
    fn visit_f64<E: Error>(self, r: f64) -> Result<Self::Value, E> {
        if r.is_finite() && r > 0.0 && r <= MAX_RATE {
            Ok(Checked(r))
        } else {
            Err(E::custom(format!(
                "{r}: expected a positive rate of at most {MAX_RATE} operations per second"
            )))
        }
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_f64(v as f64)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
        self.visit_f64(v as f64)
    }
}

fn check_duration_text(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

fn check_path_name(name: &str) -> Result<String, String> {
    if is_path_name(name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "`{}`: expected 1 to {MAX_NAME_LEN} letters, digits, `-`, `_` or `.`, and not \
             `.` or `..` (it names a directory)",
            name.escape_default()
        ))
    }
}

macro_rules! checked_newtype {
    ($name:ident, $value:ty, |$d:ident| $body:expr) => {
        struct $name($value);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>($d: D) -> Result<Self, D::Error> {
                $body.map(|Checked(v)| $name(v))
            }
        }
    };
}

checked_newtype!(CheckedDuration, Duration, |d| d.deserialize_str(StrCheck {
    expecting: "a duration such as `30s` or `500ms`",
    check: check_duration_text,
}));
checked_newtype!(CheckedName, String, |d| d.deserialize_str(StrCheck {
    expecting: "a name",
    check: check_path_name,
}));
checked_newtype!(CheckedRate, f64, |d| d.deserialize_f64(RateCheck));

/// An integer within `MIN..=MAX`.
struct CheckedCount<const MIN: u64, const MAX: u64>(u64);
impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for CheckedCount<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_u64(RangeCheck { min: MIN, max: MAX })
            .map(|Checked(v)| CheckedCount(v))
    }
}

/// A duration written like `30s`, at most [`MAX_DURATION`].
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    CheckedDuration::deserialize(d).map(|v| v.0)
}

/// An optional [`duration`].
pub fn option_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<CheckedDuration>::deserialize(d)?.map(|v| v.0))
}

/// Parses a duration and checks it against [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}"))?;
    check_duration(d).map_err(|e| format!("`{text}`: {e}"))
}

/// `d` if it is at most [`MAX_DURATION`].
pub fn check_duration(d: Duration) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err(format!(
            "expected at most {} ({}s)",
            humantime::format_duration(MAX_DURATION),
            MAX_DURATION.as_secs()
        ));
    }
    Ok(d)
}

pub fn u64_in<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<u64, D::Error> {
    CheckedCount::<MIN, MAX>::deserialize(d).map(|v| v.0)
}

pub fn option_u64_in<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Option<u64>, D::Error> {
    Ok(Option::<CheckedCount<MIN, MAX>>::deserialize(d)?.map(|v| v.0))
}

pub fn usize_in<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<usize, D::Error> {
    u64_in::<D, MIN, MAX>(d).map(|v| v as usize)
}

pub fn option_usize_in<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Option<usize>, D::Error> {
    Ok(option_u64_in::<D, MIN, MAX>(d)?.map(|v| v as usize))
}

/// A rate in operations per second: positive, finite, at most [`MAX_RATE`].
pub fn option_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<CheckedRate>::deserialize(d)?.map(|v| v.0))
}

/// Whether `name` may become one path component: `[A-Za-z0-9_.-]+`, not `.` or `..`,
/// at most [`MAX_NAME_LEN`] characters.
pub fn is_path_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A name that becomes a directory (see [`is_path_name`]).
pub fn path_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    CheckedName::deserialize(d).map(|v| v.0)
}

/// An optional [`path_name`].
pub fn option_path_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<CheckedName>::deserialize(d)?.map(|v| v.0))
}

/// How many YAML aliases (`*name`) `text` holds, counted without parsing (so an alias
/// bomb is refused before it expands). Quoted scalars and comments are skipped; a `*`
/// inside a plain scalar is not an alias (`a*b`), one that starts a node is.
pub fn count_aliases(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut count = 0;
    let mut i = 0;
    // The byte before the current one outside quotes (what a node may follow).
    let mut prev = b'\n';
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' if prev.is_ascii_whitespace() => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' | b'"' if is_node_start(prev) => {
                // A quoted scalar: skip to its end (`''` and `\"` are escapes).
                i += 1;
                while i < bytes.len() {
                    if b == b'"' && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == b {
                        if b == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            b'*' if is_node_start(prev) => count += 1,
            _ => {}
        }
        prev = b;
        i += 1;
    }
    count
}

/// Line and column (1-based) of the first `key:` in `text` whose value `is_culprit`
/// accepts, for errors found after parsing (when serde_yaml's position is no longer at
/// hand): the key is found again in the text, in block or flow style.
pub fn locate_key(
    text: &str,
    key: &str,
    is_culprit: impl Fn(&str) -> bool,
) -> Option<(usize, usize)> {
    for (line_no, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(found) = line[from..].find(key) {
            let at = from + found;
            from = at + key.len();
            let before_ok = line[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
            let rest = line[from..].trim_start();
            if !before_ok || !rest.starts_with(':') {
                continue;
            }
            let value = rest[1..]
                .split([',', '}', '#'])
                .next()
                .unwrap_or_default()
                .trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .trim_start_matches(['+', '-']);
            if is_culprit(value) {
                return Some((line_no + 1, at + 1));
            }
        }
    }
    None
}

fn is_node_start(prev: u8) -> bool {
    prev.is_ascii_whitespace() || b":-[{,?".contains(&prev)
}
