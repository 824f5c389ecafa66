//! Inngest time strings: the `str2duration` form the server parses (`1w2d3h4m5s`, `500ms`).

use std::time::Duration;

/// A time string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

const UNITS: [(&str, u128); 9] = [
    ("w", 7 * 24 * 3600 * 1_000_000_000),
    ("d", 24 * 3600 * 1_000_000_000),
    ("h", 3600 * 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
];

/// Formats a duration the way the Go SDK does (`str2duration.String`): largest units first,
/// zero parts skipped, `0s` for zero. `48h` becomes `2d`, `90m` becomes `1h30m`.
pub fn format_duration(d: Duration) -> String {
    let mut nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in UNITS.iter().filter(|(u, _)| *u != "µs") {
        let n = nanos / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            nanos -= n * size;
        }
    }
    out
}

/// Parses a time string such as `1h30m`, `2d`, `500ms` or `1.5h`.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit"))?;
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err("bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let size = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, size)| *size)
            .ok_or_else(|| err("unknown unit"))?;
        total += value * size as f64;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(err("out of range"));
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_go_sdk() {
        let cases = [
            (Duration::from_secs(2), "2s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(90 * 60), "1h30m"),
            (Duration::from_secs(48 * 3600), "2d"),
            (Duration::from_secs(72 * 3600), "3d"),
            (Duration::from_secs(8 * 24 * 3600 + 1), "1w1d1s"),
            (Duration::from_millis(1500), "1s500ms"),
            (Duration::ZERO, "0s"),
        ];
        for (d, want) in cases {
            assert_eq!(format_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn parses_every_unit_and_round_trips() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3us"), Ok(Duration::from_micros(3)));
        assert_eq!(parse_duration("3µs"), Ok(Duration::from_micros(3)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        for secs in [1, 59, 61, 3601, 90_061, 1_000_000] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn rejects_malformed_time_strings() {
        for bad in ["", "h", "10", "10y", "1h-2m", "abc"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
    }
}
