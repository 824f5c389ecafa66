//! The search of JSON string text for the bytes that end a run of plain text: a quote, a
//! backslash or a control character. The request scanner uses it to find where strings end,
//! and the decoding of memoized values to tell a string that needs no unescaping.

/// Bytes that end a run of plain string bytes: a quote, a backslash or a control character
/// (JSON forbids them raw).
const STOPS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Where the run of plain string bytes starting at `from` ends: at a stop (see [`STOPS`]) or
/// the end. Chunks are tested with no branch inside them, which the compiler turns into vector
/// compares: 16 bytes at a time, 64 after 64 bytes; the chunk with the stop is then searched
/// eight bytes at a time, and the last few bytes of the text one by one.
pub(crate) fn plain_run_end(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    let mut short = 0;
    while let Some(chunk) = bytes.get(at..).and_then(|rest| rest.first_chunk::<16>()) {
        if has_stop(chunk) {
            return at + first_stop(chunk);
        }
        at += 16;
        short += 1;
        if short == 4 {
            while let Some(chunk) = bytes.get(at..).and_then(|rest| rest.first_chunk::<64>()) {
                if has_stop(chunk) {
                    break;
                }
                at += 64;
            }
            short = 0;
        }
    }
    while let Some(&b) = bytes.get(at) {
        if STOPS[usize::from(b)] {
            break;
        }
        at += 1;
    }
    at
}

fn has_stop<const N: usize>(chunk: &[u8; N]) -> bool {
    let hits = chunk.iter().fold(0_u8, |hits, &b| {
        hits | u8::from(b == b'"') | u8::from(b == b'\\') | u8::from(b < 0x20)
    });
    hits != 0
}

/// The position of the first stop in a chunk that has one.
fn first_stop(chunk: &[u8; 16]) -> usize {
    let (low, high) = chunk.split_at(8);
    let word = |half: &[u8]| u64::from_le_bytes(half.try_into().unwrap_or_default());
    match stops_in(word(low)) {
        0 => 8 + (stops_in(word(high)).trailing_zeros() / 8) as usize,
        stops => (stops.trailing_zeros() / 8) as usize,
    }
}

/// The high bit of each byte of `word` that is a stop, exactly (eight bytes in one register).
pub(crate) fn stops_in(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = !LOW7;
    // The high bit set in each byte that is not zero.
    let nonzero = |x: u64| ((x & LOW7) + LOW7) | x;
    let quote = !nonzero(word ^ (u64::from(b'"') * 0x0101_0101_0101_0101));
    let backslash = !nonzero(word ^ (u64::from(b'\\') * 0x0101_0101_0101_0101));
    // Below 0x20: neither the high bit nor, once 0x60 is added to the low seven, a carry.
    let control = !(((word & LOW7) + 0x6060_6060_6060_6060) | word);
    (quote | backslash | control) & HIGH
}
