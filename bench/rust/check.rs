//! The answer check made before every measurement: a server that answers quickly but wrongly
//! must fail the run, not win it.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::Outcome;
use crate::workloads::{expected, find};

/// How to judge and keep one answer.
#[derive(Default)]
pub struct Check<'a> {
    /// Where to write the answer's status, headers and body (`<prefix>.status|headers|body`),
    /// for the bare server.
    capture: Option<&'a str>,
    /// The server checkpoints: it runs every remaining step in this one request, so the right
    /// answer is a `RunComplete` of the function's value, "done".
    checkpointing: bool,
}

impl<'a> Check<'a> {
    /// Reads `[--capture <prefix>] [--checkpointing]`.
    pub fn parse(options: &[&'a str]) -> Result<Self, Box<dyn std::error::Error>> {
        let mut check = Self::default();
        let mut options = options.iter();
        while let Some(option) = options.next() {
            match *option {
                "--capture" => {
                    check.capture = Some(options.next().ok_or("--capture needs a prefix")?)
                }
                "--checkpointing" => check.checkpointing = true,
                other => return Err(format!("unknown check option {other:?}").into()),
            }
        }
        Ok(check)
    }

    /// Sends `workload` from `dir` to `base` once. Passes when the answer is a 206 whose
    /// opcodes include a `StepRun` of the expected step with the expected value (or a
    /// `RunComplete` of "done" when checkpointing).
    pub fn run(&self, base: &str, dir: &Path, workload: &str) -> Outcome {
        let spec = find(workload)?;
        let read = |ext: &str| fs::read(dir.join(format!("{workload}.{ext}")));
        let url = format!("{base}{}", String::from_utf8(read("url-path")?)?);
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(read("body")?);
        if spec.signed {
            let signature = String::from_utf8(read("signature")?)?;
            request = request.header("x-inngest-signature", signature);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let response = runtime.block_on(request.send())?;
        let status = response.status();
        let headers: Vec<String> = response
            .headers()
            .iter()
            .map(|(name, value)| Ok(format!("{name}: {}", value.to_str()?)))
            .collect::<Result<_, reqwest::header::ToStrError>>()?;
        let body = runtime.block_on(response.bytes())?;

        let (hash, value) = expected(spec);
        let shown = String::from_utf8_lossy(&body[..body.len().min(600)]).into_owned();
        let ops: Value = serde_json::from_slice(&body).map_err(|error| {
            format!("{workload}: the answer ({status}) is not JSON ({error}): {shown}")
        })?;
        let (op, id, value) = match self.checkpointing {
            false => ("StepRun", Some(hash.as_str()), value),
            true => ("RunComplete", None, "done"),
        };
        let found = ops.as_array().into_iter().flatten().any(|answer| {
            answer["op"]
                .as_str()
                .is_some_and(|name| name.eq_ignore_ascii_case(op))
                && id.is_none_or(|id| answer["id"] == id)
                && (answer["data"] == value || answer["data"]["data"] == value)
        });
        if status != 206 || !found {
            return Err(format!(
                "{workload}: expected 206 with a {op} {} carrying {value:?}, got {status}: {shown}",
                id.map_or_else(String::new, |id| format!("of step {id}")),
            )
            .into());
        }
        if let Some(capture) = self.capture {
            fs::write(format!("{capture}.status"), status.as_u16().to_string())?;
            fs::write(format!("{capture}.headers"), headers.join("\n"))?;
            fs::write(format!("{capture}.body"), &body)?;
        }
        Ok(())
    }
}
