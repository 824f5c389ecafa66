//! CEL evaluation of `if` expressions (`event` is the trigger, `async` the candidate event),
//! with the `cel` crate rather than a hand-written parser.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// Serializes JSON so that integers stay CEL `int`s (serde_json would make every non-negative
/// integer a `uint`, and `event.data.n == 1` would then compare `uint` with `int`).
struct CelJson<'a>(&'a Value);

impl Serialize for CelJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => s.serialize_i64(i),
                (None, Some(u), _) => s.serialize_u64(u),
                (_, _, Some(f)) => s.serialize_f64(f),
                _ => s.serialize_unit(),
            },
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&CelJson(item))?;
                }
                seq.end()
            }
            Value::Object(obj) => {
                let mut map = s.serialize_map(Some(obj.len()))?;
                for (k, v) in obj {
                    map.serialize_entry(k, &CelJson(v))?;
                }
                map.end()
            }
            other => other.serialize(s),
        }
    }
}

/// Why an expression could not be evaluated.
#[derive(Debug, thiserror::Error)]
#[error("expression {expression:?}: {reason}")]
pub struct ExpressionError {
    expression: String,
    reason: String,
}

/// Evaluates `expression` with `event` and `async` bound. A missing field makes the
/// expression false, as on the Inngest server, rather than an error.
pub fn matches(
    expression: &str,
    event: &Value,
    candidate: &Value,
) -> Result<bool, ExpressionError> {
    let error = |reason: String| ExpressionError {
        expression: expression.to_owned(),
        reason,
    };
    let program = cel::Program::compile(expression).map_err(|e| error(e.to_string()))?;
    let mut context = cel::Context::default();
    let event = cel::to_value(CelJson(event)).map_err(|e| error(e.to_string()))?;
    let candidate = cel::to_value(CelJson(candidate)).map_err(|e| error(e.to_string()))?;
    context.add_variable_from_value("event", event);
    context.add_variable_from_value("async", candidate);
    match program.execute(&context) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(error(format!("evaluated to {other:?}, not a bool"))),
        Err(cel::ExecutionError::NoSuchKey(_)) => Ok(false),
        Err(e) => Err(error(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn evaluates_the_conformance_wait_expression() {
        let expr = "async.data.resume == true && async.data.id == event.data.id";
        let trigger = json!({"name": "tests/wait.test", "data": {"id": "123"}});
        let yes = json!({"name": "test/resume", "data": {"id": "123", "resume": true}});
        let other = json!({"name": "test/resume", "data": {"id": "456", "resume": true}});
        assert!(matches(expr, &trigger, &yes).expect("evaluates"));
        assert!(!matches(expr, &trigger, &other).expect("evaluates"));
    }

    #[test]
    fn integers_compare_with_int_literals() {
        let event = json!({"data": {"n": 1}});
        assert!(matches("event.data.n == 1", &event, &json!({})).expect("evaluates"));
    }

    #[test]
    fn a_missing_field_is_false_and_bad_syntax_is_an_error() {
        let event = json!({"data": {}});
        assert!(!matches("async.data.nope == 1", &event, &json!({"data": {}})).expect("evaluates"));
        assert!(matches("event.data ==", &event, &event).is_err());
    }
}
