//! The one parser for durations given on the command line.
//!
//! A bare number is seconds, as in Jepsen's `--time-limit 20`; anything else is a
//! humantime duration with units (`20s`, `1m30s`, `500ms`). Either is at most a campaign's
//! longest duration ([`MAX_DURATION`], a week), so an absurd value is a usage error, never an
//! overflow once the cluster is up.

use crate::limits::MAX_DURATION;
use std::time::Duration;

/// Parses `20`, `2.5` (seconds) or `20s`, `1m30s`, `500ms` (with units), at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_unbounded(text)?;
    if duration > MAX_DURATION {
        return Err(format!(
            "`{}` is out of range: at most {} ({} seconds)",
            text.trim(),
            humantime::format_duration(MAX_DURATION),
            MAX_DURATION.as_secs()
        ));
    }
    Ok(duration)
}

fn parse_unbounded(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let expected =
        "expected seconds (`20`, `2.5`) or a duration with units (`20s`, `1m30s`, `500ms`)";
    if text.is_empty() {
        return Err(format!("an empty duration: {expected}"));
    }
    if text.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        let seconds: f64 = text
            .parse()
            .map_err(|_| format!("`{text}` is not a number of seconds: {expected}"))?;
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("`{text}` seconds is out of range: {expected}"));
    }
    humantime::parse_duration(text).map_err(|e| format!("`{text}`: {e}; {expected}"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(parse_duration("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 7 "), Ok(Duration::from_secs(7)));
    }

    #[test]
    fn a_fractional_number_is_seconds() {
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(".5"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn units_are_read_as_humantime() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2 min"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn nonsense_is_rejected_with_what_is_expected() {
        for bad in ["", "-5", "1.2.3", "twenty", "20 parsecs", "1e400"] {
            let error = parse_duration(bad).expect_err(bad);
            assert!(error.contains("expected seconds"), "{bad}: {error}");
        }
    }

    #[test]
    fn more_than_a_week_is_out_of_range() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 24 * 3600)));
        for too_long in ["99999999", "500000000000y", "8d", "604801"] {
            let error = parse_duration(too_long).expect_err(too_long);
            assert!(error.contains("out of range"), "{too_long}: {error}");
        }
    }

    #[test]
    fn a_huge_number_of_seconds_is_out_of_range_not_a_panic() {
        let error = parse_duration(&"9".repeat(400)).expect_err("out of range");
        assert!(error.contains("out of range"), "{error}");
    }
}
