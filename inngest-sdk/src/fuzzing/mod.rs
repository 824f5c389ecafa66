//! The bodies of the fuzz targets in `fuzz/` and the tools to replay their corpus on stable.
//!
//! Not an API: this module exists for the `fuzz/` crate (feature `fuzzing`) and for this
//! crate's own tests, and may change at any time. Each target takes arbitrary bytes, feeds
//! them to one parser the way hostile input would reach it, and panics only when an invariant
//! breaks: the libFuzzer binaries and [`replay`] (run by `cargo test`) call the same functions.
//!
//! Inputs that carry headers use one format, readable in the corpus: leading lines that begin
//! with `@` form the head (`@name: value` is a header, `@?a=b` a query string), and the rest is
//! the body. An input with no such line is all body.

mod execution;
mod parsers;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

pub use execution::execution_request;
pub use parsers::{cron, duration, signature_header};

/// An input split into its head and body (see the module docs).
#[derive(Debug, Default)]
pub struct Input<'a> {
    /// `@name: value` lines, name and value trimmed, in order.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// The `@?...` line, without the `@?`.
    pub query: Option<&'a [u8]>,
    /// Everything after the head.
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits `data`.
    pub fn parse(data: &'a [u8]) -> Self {
        let mut input = Input {
            body: data,
            ..Input::default()
        };
        while input.body.first() == Some(&b'@') {
            let end = input
                .body
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(input.body.len());
            let line = &input.body[1..end];
            input.body = input.body.get(end + 1..).unwrap_or_default();
            if let Some(query) = line.strip_prefix(b"?") {
                input.query = Some(query);
            } else if let Some(colon) = line.iter().position(|&b| b == b':') {
                input
                    .headers
                    .push((line[..colon].trim_ascii(), line[colon + 1..].trim_ascii()));
            }
        }
        input
    }

    /// The last value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    }

    /// The head as an HTTP header map; a line that is not a valid header is left out, as an
    /// HTTP server would refuse it before any handler runs.
    pub fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name),
                http::HeaderValue::from_bytes(value),
            ) {
                map.append(name, value);
            }
        }
        map
    }
}

/// A xorshift64* generator: deterministic, so a failing replay fails the same way every run.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; zero is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        // The modulo bias is irrelevant for picking mutations.
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Fragments that tend to matter to JSON, header and duration parsers.
const TOKENS: [&[u8]; 24] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"0.000000000000000000001",
    b"\xff\xfe",
    b"\xc3\xa9",
    b"\n",
    b"&s=",
    b",v1=",
    b"\"_inngest\"",
    b"\"data\"",
    b"ms",
];

/// One to four random edits of `seed`: byte flips, insertions, deletions, repeats of a slice,
/// tokens, truncation and splices with `other`.
pub fn mutate(seed: &[u8], other: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.next_u64() as u8),
            2 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 if at < out.len() => {
                let end = (at + 1 + rng.below(32)).min(out.len());
                let slice = out[at..end].to_vec();
                for _ in 0..=rng.below(3) {
                    out.splice(at..at, slice.iter().copied());
                }
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            5 => out.truncate(at),
            _ => {
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
        }
    }
    out
}

/// Runs `target` on every file in `corpus` and on `mutations` deterministic mutations of them.
/// Panics, naming the input, when the target panics on one; also when the folder is empty, so a
/// moved corpus cannot make the replay pass by testing nothing.
pub fn replay(corpus: &Path, target: fn(&[u8]), mutations: usize) {
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus)
        .unwrap_or_else(|e| panic!("cannot read the corpus {}: {e}", corpus.display()))
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            let bytes = std::fs::read(&path).expect("a corpus file");
            (path.display().to_string(), bytes)
        })
        .collect();
    assert!(
        !seeds.is_empty(),
        "the corpus {} is empty",
        corpus.display()
    );
    seeds.sort();
    let run = |what: &str, input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            panic!(
                "the target panicked on {what}: {:?}",
                String::from_utf8_lossy(input)
            );
        }
    };
    for (name, bytes) in &seeds {
        run(name, bytes);
    }
    let mut rng = XorShift::new(0x5EED_F022);
    for i in 0..mutations {
        let (name, seed) = &seeds[rng.below(seeds.len())];
        let (_, other) = &seeds[rng.below(seeds.len())];
        let input = mutate(seed, other, &mut rng);
        run(&format!("mutation {i} of {name}"), &input);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(target: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target)
    }

    #[test]
    fn the_head_is_the_leading_at_lines_and_the_rest_is_body() {
        let input = Input::parse(b"@?fnId=a&stepId=b\n@X-Name:  v \n@junk\n{\"a\":\n1}");
        assert_eq!(input.query, Some(&b"fnId=a&stepId=b"[..]));
        assert_eq!(input.header("x-name"), Some(&b"v"[..]));
        assert_eq!(input.headers.len(), 1);
        assert_eq!(input.body, b"{\"a\":\n1}");
        assert_eq!(Input::parse(b"{\"@\":1}").body, b"{\"@\":1}");
        assert_eq!(Input::parse(b"@a: b").body, b"");
    }

    #[test]
    fn the_execution_seeds_reach_past_the_signature_and_the_parser() {
        let status = |seed: &str| {
            let data = std::fs::read(corpus("execution_request").join(seed)).expect("a seed");
            execution::execute(&data)
        };
        assert_eq!(status("steps_first_request"), Some(206));
        assert_eq!(status("steps_all_memoized"), Some(200));
        assert_eq!(status("steps_target_second_twin"), Some(206));
        assert_eq!(status("steps_target_not_reached"), Some(206));
        assert_eq!(status("strict_invoked"), Some(200));
        assert_eq!(status("strict_failure_handler"), Some(200));
        assert_eq!(status("strict_unknown_field"), Some(400));
        assert_eq!(status("echo_batch"), Some(200));
        assert_eq!(status("steps_use_api"), Some(500));
        assert_eq!(status("bad_signature"), Some(401));
        assert_eq!(status("unknown_fn_id"), Some(410));
    }

    #[test]
    fn execution_requests_from_the_corpus_and_their_mutations_hold_the_invariants() {
        replay(&corpus("execution_request"), execution_request, 3000);
    }

    #[test]
    fn signature_headers_from_the_corpus_and_their_mutations_hold_the_invariants() {
        replay(&corpus("signature_header"), signature_header, 3000);
    }

    #[test]
    fn durations_from_the_corpus_and_their_mutations_hold_the_invariants() {
        replay(&corpus("duration"), duration, 5000);
    }

    #[test]
    fn cron_schedules_from_the_corpus_and_their_mutations_hold_the_invariants() {
        replay(&corpus("cron"), cron, 5000);
    }
}
