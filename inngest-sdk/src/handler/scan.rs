//! A JSON scanner for the call request: it checks the text as it goes and hands back where
//! each value lies, without building anything.
//!
//! Why not serde_json alone: keeping a memoized value as a `RawValue` makes serde_json check
//! it byte by byte, eight bytes at a time in strings, and that first pass was about a third of
//! the instructions of a request with 100 KB to 4 MB of state (BENCHMARKS.md). Here strings,
//! where the bytes of a state are, are searched in wide chunks. The grammar is the one
//! serde_json accepts when it skips a value (`IgnoredAny`, `RawValue`), so a body is refused
//! exactly when serde_json would refuse it; the tests hold the two side by side.

use std::fmt;

use crate::json_string::{plain_run_end, stops_in};
use crate::step::MemoText;

/// Why the text is not JSON, and at which byte.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ScanError {
    what: &'static str,
    at: usize,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

impl std::error::Error for ScanError {}

/// A cursor over JSON text.
pub(super) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    /// The open containers of the value being skipped (`[` or `{`); kept between values so
    /// that it is allocated at most once per scanner.
    open: Vec<u8>,
}

/// An object key as it is in the text, between its quotes.
pub(super) struct Key<'a> {
    raw: &'a str,
    escaped: bool,
}

impl Key<'_> {
    /// The key's text, unescaped when it has escapes. An escaped lone surrogate cannot be
    /// text: refused, as serde_json refuses it in a field name.
    pub(super) fn text(&self) -> Result<std::borrow::Cow<'_, str>, serde_json::Error> {
        if !self.escaped {
            return Ok(self.raw.into());
        }
        serde_json::from_str::<String>(&format!("\"{}\"", self.raw)).map(Into::into)
    }
}

impl<'a> Scanner<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            open: Vec::new(),
        }
    }

    fn error(&self, what: &'static str) -> ScanError {
        ScanError { what, at: self.pos }
    }

    /// The text from `start` to here. Both ends sit next to ASCII bytes (a token or a
    /// quote), so this never fails on checked text; it is `get`, not indexing, all the same.
    fn slice(&self, start: usize) -> Result<&'a str, ScanError> {
        self.text
            .get(start..self.pos)
            .ok_or_else(|| self.error("not at a character boundary"))
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// The next byte that is not whitespace, not consumed.
    fn peek_token(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
        self.peek()
    }

    /// Whether the next token is `null` (not consumed).
    pub(super) fn at_null(&mut self) -> bool {
        self.peek_token() == Some(b'n')
    }

    /// Reads the value that comes next with serde, straight into `T`, and moves past it: for
    /// a small value with fields to read, one pass instead of a scan and then a parse.
    pub(super) fn deserialize<T: serde::Deserialize<'a>>(
        &mut self,
    ) -> Result<T, serde_json::Error> {
        let rest = self.text.get(self.pos..).unwrap_or_default();
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        match values.next() {
            Some(value) => {
                let value = value?;
                self.pos += values.byte_offset();
                Ok(value)
            }
            None => serde_json::from_str(rest),
        }
    }

    /// Only whitespace is left.
    pub(super) fn end(&mut self) -> Result<(), ScanError> {
        match self.peek_token() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    /// Skips one value and returns its text.
    pub(super) fn value(&mut self) -> Result<&'a str, ScanError> {
        self.peek_token();
        let start = self.pos;
        self.open.clear();
        loop {
            // A value, or the start of a container.
            match self.peek_token() {
                Some(b'n') => self.literal(b"null")?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b'"') => {
                    self.string()?;
                }
                Some(open @ (b'[' | b'{')) => {
                    self.pos += 1;
                    self.open.push(open);
                    match (open, self.peek_token()) {
                        (b'[', Some(b']')) | (b'{', Some(b'}')) => self.pos += 1,
                        (b'{', _) => {
                            self.member_key()?;
                            continue;
                        }
                        _ => continue,
                    }
                    self.open.pop();
                }
                Some(_) => return Err(self.error("expected value")),
                None => return Err(self.error("EOF while parsing a value")),
            }
            // After a value: a comma and the next one, or the end of containers.
            loop {
                let Some(&container) = self.open.last() else {
                    return self.slice(start);
                };
                match (container, self.peek_token()) {
                    (_, Some(b',')) => {
                        self.pos += 1;
                        if container == b'{' {
                            self.member_key()?;
                        }
                        break;
                    }
                    (b'[', Some(b']')) | (b'{', Some(b'}')) => {
                        self.pos += 1;
                        self.open.pop();
                    }
                    (b'[', Some(_)) => return Err(self.error("expected `,` or `]`")),
                    (_, Some(_)) => return Err(self.error("expected `,` or `}`")),
                    (_, None) => return Err(self.error("EOF while parsing a container")),
                }
            }
        }
    }

    /// Skips a memoized step's state and returns its text, noting whether it is the usual
    /// memo of a step that returned text, `{"data":"…"}` written without spaces, with nothing
    /// in the string to unescape: the step's decoding then need not search it for escapes.
    pub(super) fn memo_value(&mut self) -> Result<MemoText<'a>, ScanError> {
        const DATA: &str = r#"{"data":""#;
        self.peek_token();
        let start = self.pos;
        if self
            .text
            .get(start..)
            .is_some_and(|rest| rest.starts_with(DATA))
        {
            // At the string's opening quote.
            self.pos += DATA.len() - 1;
            let data = self.string()?;
            if !data.escaped && self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(MemoText::plain_data(self.slice(start)?));
            }
            self.pos = start;
        }
        self.value().map(MemoText::json)
    }

    /// Skips one value and returns its text, like [`value`](Self::value), but without
    /// checking it again when it repeats `checked` byte for byte: Inngest sends the trigger
    /// event twice, as `event` and as `events[0]`. `checked` must be a value this scanner
    /// returned; it is only trusted when it ends on its own (an object, array or string), so
    /// that the bytes after it cannot extend it.
    pub(super) fn value_or_repeat(&mut self, checked: Option<&str>) -> Result<&'a str, ScanError> {
        self.peek_token();
        let start = self.pos;
        let rest = self.text.get(start..).unwrap_or_default();
        match checked {
            Some(checked) if checked.ends_with(['}', ']', '"']) && rest.starts_with(checked) => {
                self.pos += checked.len();
                self.slice(start)
            }
            _ => self.value(),
        }
    }

    /// An object member's key and its colon.
    fn member_key(&mut self) -> Result<Key<'a>, ScanError> {
        match self.peek_token() {
            Some(b'"') => {}
            Some(_) => return Err(self.error("key must be a string")),
            None => return Err(self.error("EOF while parsing an object")),
        }
        let key = self.string()?;
        match self.peek_token() {
            Some(b':') => self.pos += 1,
            Some(_) => return Err(self.error("expected `:`")),
            None => return Err(self.error("EOF while parsing an object")),
        }
        Ok(key)
    }

    /// Calls `member` for each member of the object that comes next, with the scanner at the
    /// member's value: `member` must skip it (with [`value`](Self::value) or otherwise).
    /// `Ok(false)` when the next value is not an object (nothing consumed).
    pub(super) fn object<E: From<ScanError>>(
        &mut self,
        mut member: impl FnMut(&mut Self, Key<'a>) -> Result<(), E>,
    ) -> Result<bool, E> {
        if self.peek_token() != Some(b'{') {
            return Ok(false);
        }
        self.pos += 1;
        if self.peek_token() == Some(b'}') {
            self.pos += 1;
            return Ok(true);
        }
        loop {
            let key = self.member_key()?;
            member(self, key)?;
            match self.peek_token() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(true);
                }
                Some(_) => return Err(self.error("expected `,` or `}`").into()),
                None => return Err(self.error("EOF while parsing an object").into()),
            }
        }
    }

    /// Each element's text of the array that comes next; `None` when the next value is not
    /// an array (nothing consumed). An element that repeats `checked` is not checked again
    /// (see [`value_or_repeat`](Self::value_or_repeat)).
    pub(super) fn array(
        &mut self,
        checked: Option<&str>,
    ) -> Result<Option<Vec<&'a str>>, ScanError> {
        if self.peek_token() != Some(b'[') {
            return Ok(None);
        }
        self.pos += 1;
        let mut elements = Vec::new();
        if self.peek_token() == Some(b']') {
            self.pos += 1;
            return Ok(Some(elements));
        }
        loop {
            elements.push(self.value_or_repeat(checked)?);
            match self.peek_token() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Some(elements));
                }
                Some(_) => return Err(self.error("expected `,` or `]`")),
                None => return Err(self.error("EOF while parsing a list")),
            }
        }
    }

    /// `true` or `false`; `None` for anything else (nothing consumed).
    pub(super) fn boolean(&mut self) -> Result<Option<bool>, ScanError> {
        match self.peek_token() {
            Some(b't') => self.literal(b"true").map(|()| Some(true)),
            Some(b'f') => self.literal(b"false").map(|()| Some(false)),
            _ => Ok(None),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), ScanError> {
        for &expected in word {
            match self.peek() {
                Some(b) if b == expected => self.pos += 1,
                Some(_) => return Err(self.error("expected ident")),
                None => return Err(self.error("EOF while parsing a value")),
            }
        }
        Ok(())
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as serde_json skips numbers.
    fn number(&mut self) -> Result<(), ScanError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("invalid number"));
            }
        }
        Ok(())
    }

    /// A string, from its opening quote through its closing one. Most are short keys and ids
    /// that end within eight bytes: those are read here, in one register, and the rest by
    /// [`long_string`](Self::long_string).
    #[inline]
    fn string(&mut self) -> Result<Key<'a>, ScanError> {
        let start = self.pos + 1;
        let bytes = self.text.as_bytes();
        if let Some(word) = bytes.get(start..).and_then(|rest| rest.first_chunk::<8>()) {
            let stops = stops_in(u64::from_le_bytes(*word));
            let end = start + (stops.trailing_zeros() / 8) as usize;
            if stops != 0 && bytes.get(end) == Some(&b'"') {
                self.pos = end;
                let raw = self.slice(start)?;
                self.pos += 1;
                return Ok(Key {
                    raw,
                    escaped: false,
                });
            }
        }
        self.long_string(start)
    }

    /// The string whose text starts at `start`, searched in wide chunks.
    fn long_string(&mut self, start: usize) -> Result<Key<'a>, ScanError> {
        self.pos = start;
        let mut escaped = false;
        loop {
            self.pos = plain_run_end(self.text.as_bytes(), self.pos);
            match self.peek() {
                Some(b'"') => {
                    let raw = self.slice(start)?;
                    self.pos += 1;
                    return Ok(Key { raw, escaped });
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 1;
                    self.escape()?;
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("EOF while parsing a string")),
            }
        }
    }

    /// The rest of an escape, after its backslash. Like serde_json when it skips, any four hex
    /// digits pass after `\u`: a lone surrogate fails only where text is decoded.
    fn escape(&mut self) -> Result<(), ScanError> {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
            Some(b'u') => {
                self.pos += 1;
                for _ in 0..4 {
                    match self.peek() {
                        Some(b) if b.is_ascii_hexdigit() => self.pos += 1,
                        Some(_) => return Err(self.error("invalid escape")),
                        None => return Err(self.error("EOF while parsing a string")),
                    }
                }
            }
            Some(_) => return Err(self.error("invalid escape")),
            None => return Err(self.error("EOF while parsing a string")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json says of `text` as one value (`IgnoredAny`).
    fn serde_accepts(text: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
    }

    fn scan_accepts(text: &str) -> bool {
        super::super::scans_as_json(text)
    }

    const SAMPLES: &[&str] = &[
        r#"{"a": [1, -2.5e+3, 0, "x\"\\\/\b\f\n\r\t\u00e9", true, false, null], "b": {}}"#,
        r#"  [ [], {}, [[{"k": [ ]}]] ]  "#,
        r#""a long string that spans more than one chunk of thirty-two bytes, twice over!""#,
        r#""\ud800""#,
        "0",
        "-0.0E-0",
        "1e5",
        r#"{"a":1,}"#,
        "[1,]",
        "[1 2]",
        r#"{"a" 1}"#,
        r#"{1: 2}"#,
        "01",
        "-",
        "1.",
        "1.e5",
        "1e",
        "+1",
        ".5",
        "tru",
        "nul",
        "truex",
        r#""\x""#,
        r#""\u12g4""#,
        "\"tab\there\"",
        "\"unterminated",
        "[",
        "{",
        r#"{"a":"#,
        "",
        "   ",
        "[] []",
        "{}}",
        "]",
        r#"{"a":[1,{"b":[2,3]}],"c":"d"}"#,
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "NaN",
        "Infinity",
        "\u{feff}{}",
    ];

    #[test]
    fn accepts_exactly_what_serde_json_accepts() {
        for text in SAMPLES {
            assert_eq!(scan_accepts(text), serde_accepts(text), "{text:?}");
        }
    }

    #[test]
    fn every_prefix_and_every_one_byte_change_is_judged_as_serde_json_judges_it() {
        // Prefixes cut values at every place; single-byte changes put every grammar rule's
        // neighbour (and control characters inside strings) everywhere.
        let bytes: &[u8] = b" \t\n\r\"\\/bfnrtu0123456789abcdefABCDEF-+.eE[]{},:xnul\x01\x1f";
        for text in SAMPLES {
            for end in 0..=text.len() {
                if let Some(prefix) = text.get(..end) {
                    assert_eq!(scan_accepts(prefix), serde_accepts(prefix), "{prefix:?}");
                }
            }
            for at in 0..text.len() {
                for &b in bytes {
                    let mut changed = text.as_bytes().to_vec();
                    changed[at] = b;
                    if let Ok(changed) = std::str::from_utf8(&changed) {
                        assert_eq!(scan_accepts(changed), serde_accepts(changed), "{changed:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_value_is_returned_as_its_text_and_members_are_visited_in_order() {
        let text = r#" { "a" : [1, {"b": "c"}] , "k\u0065y": "v" , "z": {"data": 2} } "#;
        let mut scanner = Scanner::new(text);
        let mut seen = Vec::new();
        let is_object = scanner
            .object(|scanner, key| {
                seen.push((key.text().expect("text").into_owned(), scanner.value()?));
                Ok::<_, ScanError>(())
            })
            .expect("scans");
        assert!(is_object && scanner.end().is_ok());
        assert_eq!(
            seen,
            [
                ("a".to_owned(), r#"[1, {"b": "c"}]"#),
                ("key".to_owned(), r#""v""#),
                ("z".to_owned(), r#"{"data": 2}"#),
            ]
        );
    }

    #[test]
    fn a_memo_of_plain_text_is_told_apart_and_every_memo_is_read_as_a_value() {
        let long = "a string of more than sixty-four bytes, so that it is searched in wide chunks";
        let memo = |text: &str| {
            let mut scanner = Scanner::new(text);
            let memo = scanner.memo_value();
            let mut again = Scanner::new(text);
            assert_eq!(
                memo.as_ref().ok().map(|m| m.json),
                again.value().ok(),
                "{text}"
            );
            memo.map(|m| m.plain_data)
        };
        for plain in [
            r#"{"data":"x"}"#,
            r#"{"data":""}"#,
            &format!(r#"{{"data":"{long}"}}"#),
        ] {
            assert_eq!(memo(plain), Ok(true), "{plain}");
        }
        let escaped = format!(r#"{{"data":"{long}\n"}}"#);
        for json in [
            &escaped,
            r#"{"data":"\u0041"}"#,
            r#"{"data": "x"}"#,
            r#"{"data":"x" }"#,
            r#"{"data":"x","error":null}"#,
            r#"{"data":1}"#,
            r#"{"error":{"name":"E","message":"m"}}"#,
            r#""x""#,
        ] {
            assert_eq!(memo(json), Ok(false), "{json}");
        }
        for broken in [r#"{"data":"x"#, "{\"data\":\"a\u{1}b\"}", r#"{"data":"x""#] {
            assert!(memo(broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn deep_nesting_needs_no_stack() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(scan_accepts(&deep));
        assert!(!scan_accepts(&deep[1..]));
    }

    #[test]
    fn a_repeat_is_taken_whole_only_when_it_ends_on_its_own() {
        let repeat = |text: &str, checked: &str| {
            let mut scanner = Scanner::new(text);
            scanner.value_or_repeat(Some(checked)).map(str::to_owned)
        };
        // Not checked again: even a text that is not JSON is taken, which shows the shortcut
        // is used (the parser only passes values it has checked).
        assert_eq!(
            repeat(r#" {"a":}, 1"#, r#"{"a":}"#).ok().as_deref(),
            Some(r#"{"a":}"#)
        );
        assert_eq!(
            repeat(r#""ab"]"#, r#""ab""#).ok().as_deref(),
            Some(r#""ab""#)
        );
        // A number could go on past the repeat: read again, to its real end.
        assert_eq!(repeat("123]", "12").ok().as_deref(), Some("123"));
        // Different bytes: checked as any value.
        assert_eq!(
            repeat(r#"{"a":2}"#, r#"{"a":1}"#).ok().as_deref(),
            Some(r#"{"a":2}"#)
        );
        assert!(repeat(r#"{"a":}"#, r#"{"a":1}"#).is_err());
    }

    #[test]
    fn a_stop_is_found_wherever_it_sits_in_a_string() {
        // Lengths around the 8-, 16- and 64-byte searches, with bytes either side of each stop
        // kind's value (and multi-byte characters, whose bytes have the high bit set).
        let fillers = ["x", "\u{7f}", " ", "!", "#", "[", "]", "é"];
        for filler in fillers {
            for len in (0..140).step_by(3) {
                let plain = filler.repeat(len);
                let text = format!("\"{plain}\"");
                let mut scanner = Scanner::new(&text);
                assert_eq!(
                    scanner.value().ok(),
                    Some(text.as_str()),
                    "{len} of {filler:?}"
                );
                for at in 0..len {
                    let with = |stop: &str| {
                        let mut chars: Vec<&str> = vec![filler; len];
                        chars[at] = stop;
                        format!("\"{}\"", chars.concat())
                    };
                    assert!(!scan_accepts(&with("\u{1}")), "control at {at} of {len}");
                    assert!(!scan_accepts(&with("\u{1f}")), "control at {at} of {len}");
                    assert!(
                        !scan_accepts(&with("\\")),
                        "lone backslash at {at} of {len}"
                    );
                    // A quote ends the string there, and what follows is not JSON.
                    let early = with("\"");
                    let ends = Scanner::new(&early).value().map(str::len);
                    assert_eq!(
                        ends.ok(),
                        Some(at * filler.len() + 2),
                        "quote at {at} of {len}"
                    );
                    assert!(!scan_accepts(&early), "quote at {at} of {len}");
                    assert!(scan_accepts(&with("\\n")), "escape at {at} of {len}");
                }
            }
        }
    }
}
