//! Targets for the small parsers: the `X-Inngest-Signature` header and signing keys, time
//! strings, and cron schedules.

use std::borrow::Cow;
use std::time::Duration;

use super::Input;
use crate::duration::{format_duration, parse_duration};
use crate::function::{FunctionOpts, Trigger};
use crate::handler::headers::SIGNATURE;
use crate::signature::{SIGNATURE_MAX_AGE_SECS, SignatureError, SigningKey, sign, verify};

const PRIMARY: &str =
    "signkey-test-8ee2262a15e8d3c42d6a840db7af3de2aab08ef632b32a37a687f24b34dba3ff";
const FALLBACK: &str = "signkey-prod-00ff";
const NOW: i64 = 1_700_000_000;

/// `@x-inngest-signature: ...` over the body, verified against two keys; then the same body
/// signed by this SDK, and the header's text used as a signing key.
///
/// Invariants: a header verifies only if it carries this body's MAC; a missing header is
/// `Missing`; what [`sign`] produces verifies with either key anywhere in the window, and not
/// for another body or outside the window; any key's bearer form keeps the prefix and ends in
/// a SHA-256.
pub fn signature_header(data: &[u8]) {
    let input = Input::parse(data);
    let body = input.body;
    let header = input.header(SIGNATURE).map(String::from_utf8_lossy);
    let (primary, fallback) = (SigningKey::new(PRIMARY), SigningKey::new(FALLBACK));
    let keys = [&primary, &fallback];

    match verify(header.as_deref(), body, &keys, NOW) {
        Ok(key) => {
            let header = header.as_deref().unwrap_or_default();
            let timestamp = last_value(header, "t")
                .and_then(|t| t.parse().ok())
                .expect("a verified header has a timestamp");
            let expected = sign(key, body, timestamp);
            let mac = expected.rsplit("s=").next().unwrap_or_default();
            assert!(
                header.to_ascii_lowercase().contains(mac),
                "{header:?} verified without this body's MAC"
            );
        }
        Err(SignatureError::Missing) => assert!(header.is_none()),
        Err(SignatureError::NoKey) => panic!("two keys are configured"),
        Err(_) => assert!(header.is_some()),
    }

    let skew = (body.len() as i64 % (2 * SIGNATURE_MAX_AGE_SECS + 1)) - SIGNATURE_MAX_AGE_SECS;
    for key in keys {
        let signed = sign(key, body, NOW + skew);
        assert_eq!(verify(Some(&signed), body, &keys, NOW), Ok(key));
        let mut other = body.to_vec();
        other.push(b'!');
        assert_eq!(
            verify(Some(&signed), &other, &keys, NOW),
            Err(SignatureError::Mismatch)
        );
        let late = sign(key, body, NOW + SIGNATURE_MAX_AGE_SECS + 1);
        assert_eq!(
            verify(Some(&late), body, &keys, NOW),
            Err(SignatureError::Expired)
        );
    }

    let text: Cow<'_, str> = header.unwrap_or_else(|| String::from_utf8_lossy(body));
    let key = SigningKey::new(text.as_ref());
    let hashed = key.hashed();
    let digest = &hashed.as_bytes()[hashed.len().saturating_sub(64)..];
    assert!(
        digest.len() == 64 && digest.iter().all(u8::is_ascii_hexdigit),
        "{hashed:?}"
    );
    assert!(text.trim().starts_with(&hashed[..hashed.len() - 64]));
    let signed = sign(&key, body, NOW);
    assert_eq!(verify(Some(&signed), body, &[&key], NOW), Ok(&key));
}

/// The value of the last `name=` pair of a `&`-separated header, as `verify` reads it.
fn last_value<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .next_back()
}

/// The input as a time string, and its first eight bytes as a count of nanoseconds.
///
/// Invariants: what parses formats to a string that parses back to the same duration (to the
/// nanosecond up to 2^53 ns, about 104 days; within f64 precision beyond); any duration formats
/// to digits and units only and parses back.
pub fn duration(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(parsed) = parse_duration(&text) {
        round_trips(parsed);
    }
    let mut nanos = [0u8; 8];
    let n = data.len().min(8);
    nanos[..n].copy_from_slice(&data[..n]);
    round_trips(Duration::from_nanos(u64::from_le_bytes(nanos)));
}

fn round_trips(d: Duration) {
    let text = format_duration(d);
    assert!(
        text.chars()
            .all(|c| c.is_ascii_digit() || "wdhmsun".contains(c)),
        "{text:?}"
    );
    let back = parse_duration(&text)
        .unwrap_or_else(|e| panic!("{text:?}, formatted from {d:?}, does not parse: {e}"));
    let (want, got) = (d.as_nanos(), back.as_nanos());
    if want <= 1 << 53 {
        assert_eq!(got, want, "{text:?}");
    } else {
        assert!(
            want.abs_diff(got) <= want / 1_000_000_000_000 + 1,
            "{text:?}: {got} ≠ {want}"
        );
    }
}

/// The input as a cron trigger's schedule (`TZ=<zone> <schedule>` sets the time zone), checked
/// as registration checks it.
///
/// Invariants: an accepted schedule has five fields and is synced exactly as written behind its
/// zone; whether a schedule is accepted does not depend on how its fields are spaced.
pub fn cron(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (timezone, schedule) = match text.strip_prefix("TZ=").and_then(|r| r.split_once(' ')) {
        Some((tz, schedule)) => (Some(tz), schedule),
        None => (None, text.as_ref()),
    };
    let trigger = |schedule: &str| {
        let trigger = Trigger::cron(schedule);
        match timezone {
            Some(tz) => trigger.with_timezone(tz),
            None => trigger,
        }
    };
    let accepted = |schedule: &str| {
        FunctionOpts::new("fuzz-cron")
            .with_trigger(trigger(schedule))
            .validate()
            .is_ok()
    };
    if !accepted(schedule) {
        return;
    }
    assert_eq!(schedule.split_whitespace().count(), 5, "{schedule:?}");
    let synced = trigger(schedule).to_json();
    let want = match timezone {
        Some(tz) => format!("TZ={tz} {schedule}"),
        None => schedule.to_owned(),
    };
    assert_eq!(synced["cron"].as_str(), Some(want.as_str()));
    let respaced = schedule.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        accepted(&respaced),
        "{schedule:?} is accepted, {respaced:?} is not"
    );
}
