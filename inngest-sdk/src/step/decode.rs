//! Decoding a memoized value into the step's type.
//!
//! A value is decoded once, straight into the type. A string with nothing to unescape, the
//! usual memo of a step returning text, is handed to the type as it lies in the body:
//! serde_json would search it byte by byte for escapes again, after the request's scan
//! already did, and at 4 MB of state that search was half of a request's instructions
//! (BENCHMARKS.md). Anything else, and any value that does not decode, goes through
//! serde_json, so errors read the same either way.

use serde::de::{DeserializeOwned, Visitor};
use serde_json::value::RawValue;

use crate::error::StepError;
use crate::json_string::plain_run_end;
use crate::step::MemoText;

/// The memo of `run` and `invoke` as it is on the wire: `{"data": X}` or `{"error": E}`.
#[derive(serde::Deserialize)]
pub(super) struct ResultMemo<'a> {
    #[serde(borrow, default)]
    pub(super) data: Option<&'a RawValue>,
    #[serde(default)]
    pub(super) error: Option<StepError>,
}

/// The same memo with its data decoded straight into the step's type, in one pass.
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
struct TypedResultMemo<T> {
    data: Option<T>,
    error: Option<StepError>,
}

/// Decodes a memoized value. Only when that fails is it read again, to name the path that did
/// not match in the error.
pub(super) fn decode<T: DeserializeOwned>(raw: &str, step: &str) -> Result<T, StepError> {
    if let Some(value) = PlainString::of(raw).and_then(|plain| T::deserialize(plain).ok()) {
        return Ok(value);
    }
    if let Ok(value) = serde_json::from_str(raw) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        StepError::new(
            "DeserializationError",
            format!("memoized result of step {step:?} does not match its type: {e}"),
        )
    })
}

/// Reads `{"data": X}` or `{"error": E}`, the memo of `run` and `invoke`.
pub(super) fn decode_result<T: DeserializeOwned>(
    memo: MemoText<'_>,
    step: &str,
) -> Result<T, StepError> {
    let raw = memo.json;
    if let Some(value) =
        PlainString::of_plain_data(memo).and_then(|plain| T::deserialize(plain).ok())
    {
        return Ok(value);
    }
    match serde_json::from_str::<TypedResultMemo<T>>(raw) {
        Ok(TypedResultMemo {
            error: Some(error), ..
        }) => Err(error),
        Ok(TypedResultMemo {
            data: Some(value), ..
        }) => Ok(value),
        // No data, or `"data": null`: the value is whatever null decodes into.
        Ok(TypedResultMemo { data: None, .. }) => decode("null", step),
        Err(_) => Err(explain_result_error::<T>(raw, step)),
    }
}

/// Why a memo did not decode: malformed, or data not matching the step's type (with its path).
fn explain_result_error<T: DeserializeOwned>(raw: &str, step: &str) -> StepError {
    let memo: ResultMemo<'_> = match serde_json::from_str(raw) {
        Ok(memo) => memo,
        Err(e) => {
            return StepError::new(
                "DeserializationError",
                format!("memoized state of step {step:?} is malformed: {e}"),
            );
        }
    };
    if let Some(error) = memo.error {
        return error;
    }
    let data = memo.data.map_or("null", RawValue::get);
    match decode::<T>(data, step) {
        Err(error) => error,
        Ok(_) => StepError::new(
            "DeserializationError",
            format!("memoized result of step {step:?} does not match its type"),
        ),
    }
}

/// A JSON string with no escape and no control character: its text is the string itself.
/// As a deserializer it answers as serde_json answers for such a string, and hands every
/// request it does not answer itself to serde_json.
#[derive(Clone, Copy)]
struct PlainString<'a> {
    /// The JSON, quotes included.
    json: &'a str,
    /// The text between the quotes.
    text: &'a str,
}

impl<'a> PlainString<'a> {
    fn of(json: &'a str) -> Option<Self> {
        let text = json.strip_prefix('"')?.strip_suffix('"')?;
        (plain_run_end(text.as_bytes(), 0) == text.len()).then_some(Self { json, text })
    }

    /// The string of a memo the request's scan found plain: no need to search it again.
    fn of_plain_data(memo: MemoText<'a>) -> Option<Self> {
        if !memo.plain_data {
            return None;
        }
        let json = memo.json.strip_prefix(r#"{"data":"#)?.strip_suffix('}')?;
        let text = json.strip_prefix('"')?.strip_suffix('"')?;
        Some(Self { json, text })
    }

    fn json(self) -> serde_json::Deserializer<serde_json::de::StrRead<'a>> {
        serde_json::Deserializer::from_str(self.json)
    }
}

/// Methods handed to serde_json on the string's JSON.
macro_rules! to_serde_json {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
                self.json().$method($($arg,)* visitor)
            }
        )*
    };
}

impl<'de> serde::Deserializer<'de> for PlainString<'de> {
    type Error = serde_json::Error;

    // What serde_json does with a string it can borrow.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_borrowed_str(self.text)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_borrowed_str(self.text)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_borrowed_str(self.text)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_borrowed_str(self.text)
    }

    /// Not null, so `Some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    to_serde_json! {
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        // serde_json's `RawValue` is read through a newtype of its own.
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_ignored_any();
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::fmt::Debug;

    use chrono::{DateTime, Utc};
    use serde_json::Value;

    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    enum Plan {
        Solo,
        Group,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Name(String);

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u32),
        Text(String),
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Order {
        id: u32,
    }

    /// Strings that need no unescaping and some that do, or that are not strings.
    const DATA: &[&str] = &[
        r#""""#,
        r#""Solo""#,
        r#""Group""#,
        r#""é""#,
        r#""x""#,
        r#""2026-12-07T11:00:00Z""#,
        r#""a text longer than one chunk of sixteen bytes, and of sixty-four bytes too, twice over""#,
        r#""with \"escapes\" \u00e9""#,
        r#""line\nbreak""#,
        "7",
        "null",
        r#"{"id":7}"#,
    ];

    /// `T` decodes from every memo as serde_json alone decodes it, and fails where it fails,
    /// both from a plain string itself (which the fallback to serde_json would hide) and
    /// through the memo.
    fn same_as_serde_json<T: DeserializeOwned + PartialEq + Debug>() {
        for data in DATA {
            if let Some(plain) = PlainString::of(data) {
                let want = serde_json::from_str::<T>(data).ok();
                assert_eq!(T::deserialize(plain).ok(), want, "plain {data}");
            }
            let want = serde_json::from_str::<Option<T>>(data)
                .ok()
                .map(|value| value.map_or_else(|| serde_json::from_str::<T>("null").ok(), Some));
            let want = want.flatten();
            let memo = format!(r#"{{"data":{data}}}"#);
            assert_eq!(
                decode_result::<T>(MemoText::json(&memo), "s").ok(),
                want,
                "{memo}"
            );
            if PlainString::of(data).is_some() {
                let plain = MemoText::plain_data(&memo);
                assert_eq!(decode_result::<T>(plain, "s").ok(), want, "plain {memo}");
            }
            let want = serde_json::from_str::<T>(data).ok();
            assert_eq!(decode::<T>(data, "s").ok(), want, "{data}");
        }
    }

    #[test]
    fn every_kind_of_type_decodes_a_plain_string_as_serde_json_does() {
        same_as_serde_json::<String>();
        same_as_serde_json::<Option<String>>();
        same_as_serde_json::<Option<Option<String>>>();
        same_as_serde_json::<Cow<'static, str>>();
        same_as_serde_json::<char>();
        same_as_serde_json::<Value>();
        same_as_serde_json::<Plan>();
        same_as_serde_json::<Name>();
        same_as_serde_json::<Either>();
        same_as_serde_json::<DateTime<Utc>>();
        same_as_serde_json::<u32>();
        same_as_serde_json::<Order>();
        same_as_serde_json::<Vec<u8>>();
        same_as_serde_json::<()>();
    }

    #[test]
    fn a_raw_value_keeps_the_quotes() {
        let raw: Box<RawValue> =
            decode_result(MemoText::plain_data(r#"{"data":"text"}"#), "s").expect("decodes");
        assert_eq!(raw.get(), r#""text""#);
    }

    #[test]
    fn only_a_string_with_nothing_to_unescape_is_plain() {
        assert!(PlainString::of(r#""plain text, é""#).is_some());
        assert!(PlainString::of(r#""""#).is_some());
        for not_plain in [
            r#""a\"b""#,
            r#""a\nb""#,
            "\"a\tb\"",
            r#""a"b""#,
            "7",
            "\"",
            "",
        ] {
            assert!(PlainString::of(not_plain).is_none(), "{not_plain}");
        }
    }

    #[test]
    fn a_plain_string_that_does_not_fit_the_type_is_explained_as_before() {
        let memo = MemoText::plain_data(r#"{"data":"seven"}"#);
        let error = decode_result::<u32>(memo, "count").expect_err("a string");
        assert_eq!(error.name, "DeserializationError");
        assert!(
            error
                .message
                .contains(r#"step "count" does not match its type"#)
                && error.message.contains("expected u32"),
            "{}",
            error.message
        );
    }
}
