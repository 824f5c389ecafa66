//! The memoized step state of one request, kept as byte ranges of the request body.
//!
//! Inngest sends every finished step's state in `steps`, keyed by the hex SHA-1 of its id. The
//! body is parsed once; each value stays where it is in the body until its step asks for it,
//! and is then decoded once, straight into the step's type. Step ids are hashed into a
//! 20-byte digest on the stack and looked up by it, so a replayed step costs no allocation
//! and no hex encoding.

use std::collections::HashMap;
use std::ops::Range;

use bytestring::ByteString;
use sha1::{Digest as _, Sha1};

/// A step id's SHA-1, as Inngest keys steps by it (in lowercase hex on the wire).
pub(crate) type StepDigest = [u8; 20];

/// The digest of the `repeat`-th occurrence of `id` in a run: `sha1(id)`, then
/// `sha1("id:1")`, `sha1("id:2")`...
pub(crate) fn digest_step_id(id: &str, repeat: u32) -> StepDigest {
    let mut sha = Sha1::new();
    sha.update(id.as_bytes());
    if repeat > 0 {
        let mut digits = [0u8; 11];
        sha.update(decimal(repeat, &mut digits));
    }
    sha.finalize().into()
}

/// `:n` in ASCII, written into `buffer` from its end.
fn decimal(mut n: u32, buffer: &mut [u8; 11]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        // n % 10 < 10, so the cast is exact.
        buffer[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    start -= 1;
    buffer[start] = b':';
    &buffer[start..]
}

/// The lowercase hex form of a digest, as step ids appear on the wire.
pub(crate) fn to_hex(digest: &StepDigest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(40);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// The `steps` object of a request as read: each key's digest (`None` for a key that is not
/// a SHA-1 in hex) with its value's text, a slice of the body.
#[derive(Default)]
pub(crate) struct StepSlices<'a>(pub(crate) Vec<(Option<StepDigest>, MemoText<'a>)>);

/// A memoized step's state as JSON text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MemoText<'a> {
    pub(crate) json: &'a str,
    /// The request's scan found it to be `{"data":"…"}`, without spaces, with nothing in the
    /// string to unescape.
    pub(crate) plain_data: bool,
}

impl<'a> MemoText<'a> {
    pub(crate) fn json(json: &'a str) -> Self {
        Self {
            json,
            plain_data: false,
        }
    }

    /// `json` must be `{"data":"…"}` with no escape or control character in the string.
    pub(crate) fn plain_data(json: &'a str) -> Self {
        Self {
            json,
            plain_data: true,
        }
    }
}

/// The value of each hex digit (either case); 0xff for any other byte.
const HEX_VALUES: [u8; 256] = {
    let mut table = [0xff_u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decodes 40 hex digits (either case) into a digest; anything else is `None`.
pub(crate) fn parse_hex_digest(hex: &[u8]) -> Option<StepDigest> {
    if hex.len() != 40 {
        return None;
    }
    let mut digest = [0u8; 20];
    let mut invalid = 0u8;
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (
            HEX_VALUES[usize::from(pair[0])],
            HEX_VALUES[usize::from(pair[1])],
        );
        // A non-digit has its high bit set: one check at the end instead of one per digit.
        invalid |= high | low;
        *byte = high << 4 | (low & 0x0f);
    }
    (invalid & 0x80 == 0).then_some(digest)
}

/// A digest as a map key, hashed by its first 8 bytes: one word for the hasher instead of 20
/// bytes, and as spread as the digest itself. The keys come from the request, so the hasher
/// is seeded per process: crafted keys cannot be made to collide.
#[derive(PartialEq, Eq)]
struct DigestKey(StepDigest);

impl std::hash::Hash for DigestKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

/// The memoized steps of a request, looked up by digest.
#[derive(Default)]
pub(crate) struct Memo {
    buffer: ByteString,
    /// Where each step's state sits in `buffer`, and whether it is plain data (see
    /// [`MemoText`]).
    ranges: HashMap<DigestKey, (Range<usize>, bool), foldhash::fast::RandomState>,
}

impl Memo {
    /// Indexes `steps`, parsed from `buffer`. Unfinished steps (`{"input": ...}`) and keys that
    /// are not a SHA-1 in hex are left out: no step of this SDK can ask for them.
    pub fn index(buffer: &ByteString, steps: StepSlices<'_>) -> Self {
        let mut ranges = HashMap::with_capacity_and_hasher(steps.0.len(), Default::default());
        let found = steps
            .0
            .into_iter()
            .filter(|(_, memo)| !is_unfinished(memo.json))
            .filter_map(|(digest, memo)| {
                let digest = digest?;
                // The value was borrowed from `buffer`, so it lies inside it.
                let range = range_within(buffer.as_bytes(), memo.json.as_bytes())?;
                Some((DigestKey(digest), (range, memo.plain_data)))
            });
        ranges.extend(found);
        Self {
            buffer: buffer.clone(),
            ranges,
        }
    }

    /// The state of the step with `digest`.
    pub fn get(&self, digest: &StepDigest) -> Option<MemoText<'_>> {
        let (range, plain_data) = self.ranges.get(&DigestKey(*digest))?;
        let json = self.buffer.get(range.clone())?;
        Some(MemoText {
            json,
            plain_data: *plain_data,
        })
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }
}

/// Where `part` lies in `buffer`, when it is a slice of it: text parsed from a request body
/// is kept as offsets into the body instead of being copied.
pub(crate) fn range_within(buffer: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(buffer.as_ptr() as usize)?;
    let range = start..start.checked_add(part.len())?;
    (range.end <= buffer.len()).then_some(range)
}

/// Steps Inngest has not finished are sent as `{"input": ...}`; they are not memoized results.
fn is_unfinished(raw: &str) -> bool {
    raw.trim_start().starts_with(r#"{"input""#)
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;

    /// The memo of a body's `steps` (the request's reading of them is tested with it).
    fn memo_of(body: &str) -> Memo {
        #[derive(serde::Deserialize)]
        struct Body<'a> {
            #[serde(borrow)]
            steps: HashMap<&'a str, &'a RawValue>,
        }
        let buffer = ByteString::from(body);
        let parsed: Body<'_> = serde_json::from_str(&buffer).expect("parses");
        let steps = parsed
            .steps
            .into_iter()
            .map(|(key, raw)| (parse_hex_digest(key.as_bytes()), MemoText::json(raw.get())))
            .collect();
        Memo::index(&buffer, StepSlices(steps))
    }

    #[test]
    fn repeats_hash_with_their_count() {
        for repeat in [0, 1, 9, 10, 999, u32::MAX] {
            let want = match repeat {
                0 => Sha1::digest(b"step"),
                n => Sha1::digest(format!("step:{n}").as_bytes()),
            };
            assert_eq!(digest_step_id("step", repeat), <StepDigest>::from(want));
        }
        assert_eq!(
            to_hex(&digest_step_id("my-step-id", 1)),
            "f47c6228c581af870aa285200cf95ec3ac59bb6a"
        );
    }

    #[test]
    fn values_are_found_by_digest_and_unfinished_or_foreign_keys_are_left_out() {
        let a = to_hex(&digest_step_id("a", 0));
        let b = to_hex(&digest_step_id("b", 0));
        let c = to_hex(&digest_step_id("c", 0));
        let memo = memo_of(&format!(
            r#"{{"steps":{{"{b}": {{"data": [1, 2]}}, "{a}":{{"data":"x"}}, "{c}": {{"input":[1]}}, "nothex":{{"data":1}}}}}}"#
        ));
        assert_eq!(memo.len(), 2);
        let json = |name| memo.get(&digest_step_id(name, 0)).map(|memo| memo.json);
        assert_eq!(json("a"), Some(r#"{"data":"x"}"#));
        assert_eq!(json("b"), Some(r#"{"data": [1, 2]}"#));
        assert_eq!(json("c"), None);
    }
}
