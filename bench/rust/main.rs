//! The Rust half of the benchmark harness (`scripts/bench.sh`), one binary with these commands:
//!
//! - `sdk`: the benchmark function served by this SDK on axum (`PORT`; `INNGEST_SIGNING_KEY`
//!   set means cloud mode, every request signed; unset means dev mode).
//! - `bare <capture>`: the ceiling, a bare axum handler that reads the body and answers the
//!   exact status, headers and body this SDK answered (`<capture>.status|headers|body`).
//! - `fake-api`: accepts every request with 200 `{}`; the API the TypeScript SDK checkpoints to.
//! - `requests <dir>`: writes each workload's request (`<dir>/<workload>.body|url-path|expect`)
//!   once, so every server gets identical bytes; `sign <dir> <key>` signs the signed one now.
//! - `check <base-url> <dir> <workload> [--capture <prefix>] [--checkpointing]`: sends the
//!   workload once and fails loudly unless the answer is a 206 carrying the expected step (or,
//!   with `--checkpointing`, the whole run completed); `--capture` saves the answer.
//! - `report <results.tsv>`: medians over the rounds and ratios, as a Markdown table.
//! - `peak-private <pid>`: samples the process's private memory (`RssAnon`) every 10 ms until
//!   it exits, then prints the highest figure in KiB.
//! - `repeat <workload> <count>`: handles the workload's request `count` times in process, for
//!   `scripts/bench-instructions.sh` to count the instructions under callgrind.
//!
//! The function is the same in `bench/ts/server.mjs` and `bench/go/main.go`: step "first",
//! `event.data.middle` steps "middle", then step "final"; every step returns a string.

mod check;
mod function;
mod memory;
mod repeat;
mod report;
mod servers;
mod workloads;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["sdk"] => servers::serve_sdk(),
        ["bare", capture] => servers::serve_bare(capture),
        ["fake-api"] => servers::serve_fake_api(),
        ["requests", dir] => workloads::write_all(dir.as_ref()),
        ["sign", dir, key] => workloads::sign(dir.as_ref(), key),
        ["check", base, dir, workload, options @ ..] => check::Check::parse(options)
            .and_then(|check| check.run(base, dir.as_ref(), workload)),
        ["report", results] => report::print(results.as_ref()),
        ["peak-private", pid] => memory::sample_private_memory(pid),
        ["repeat", workload, count] => repeat::repeat(workload, count),
        _ => Err(
            "usage: bench_server sdk | bare <capture> | fake-api | requests <dir> | sign <dir> <key> \
             | check <base-url> <dir> <workload> [--capture <prefix>] [--checkpointing] | report <results.tsv> \
             | peak-private <pid> | repeat <workload> <count>"
                .into(),
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut message = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("bench_server: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Every command's error: a message for the person running the benchmark.
type Outcome = Result<(), Box<dyn std::error::Error>>;

#[cfg(test)]
mod tests {
    use crate::workloads::{ALL, body};

    #[test]
    fn every_body_is_json_with_its_memoized_steps_and_stack() {
        for workload in ALL {
            let body: serde_json::Value =
                serde_json::from_str(&body(workload)).expect("the body is JSON");
            let steps = body["steps"].as_object().expect("steps is an object");
            assert_eq!(steps.len(), workload.memoized, "{}", workload.name);
            assert_eq!(
                body["ctx"]["stack"]["stack"].as_array().map(Vec::len),
                Some(steps.len())
            );
            assert_eq!(
                body["event"]["data"]["middle"],
                workload.memoized.saturating_sub(1)
            );
        }
    }
}
