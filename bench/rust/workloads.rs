//! The workloads: one execution request each, written once so every server gets the same bytes.
//!
//! Each is the call Inngest makes to run the next step of the benchmark function: `memoized`
//! steps already done ("first", then "middle" repeats), each memoized value a string of
//! `value_bytes` (or the step's own small result when 0). The body is built as Inngest sends it
//! (protocol §6.1: JCS-canonical, keys sorted, every hash of the stack in `steps`).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use inngest_sdk::signature::{SigningKey, sign as sign_body};
use inngest_sdk::step::hash_step_id;

use crate::Outcome;

/// One request shape to measure.
pub struct Workload {
    /// The name used in file names, results and the report.
    pub name: &'static str,
    /// Steps already completed in the run (0: the run's first request).
    pub memoized: usize,
    /// Bytes of each memoized value; 0 keeps each step's own small result.
    pub value_bytes: usize,
    /// Sent with `X-Inngest-Signature`, to servers in cloud mode.
    pub signed: bool,
}

/// Every workload, in report order. `scripts/bench.sh` picks some with `BENCH_WORKLOADS`.
pub const ALL: &[Workload] = &[
    Workload {
        name: "first-step",
        memoized: 0,
        value_bytes: 0,
        signed: false,
    },
    Workload {
        name: "memoized-1",
        memoized: 1,
        value_bytes: 0,
        signed: false,
    },
    Workload {
        name: "memoized-10",
        memoized: 10,
        value_bytes: 0,
        signed: false,
    },
    Workload {
        name: "memoized-100",
        memoized: 100,
        value_bytes: 0,
        signed: false,
    },
    Workload {
        name: "memoized-1000",
        memoized: 1000,
        value_bytes: 0,
        signed: false,
    },
    Workload {
        name: "100-steps-of-1kb",
        memoized: 100,
        value_bytes: 1024,
        signed: false,
    },
    // 250 × 16,000 bytes: a 4 MB state, the most Inngest inlines before switching to `use_api`.
    Workload {
        name: "4mb-state",
        memoized: 250,
        value_bytes: 16_000,
        signed: false,
    },
    Workload {
        name: "signed-first-step",
        memoized: 0,
        value_bytes: 0,
        signed: true,
    },
];

/// The function's composite id (app `bench`, function `bench`), as Inngest sends it in `fnId`.
const FN_ID: &str = "bench-bench";

/// The path and query every workload's request is sent to.
pub fn url_path() -> String {
    format!("/api/inngest?fnId={FN_ID}&stepId=step")
}

/// The step the server must report, and the value it must carry.
pub fn expected(workload: &Workload) -> (String, &'static str) {
    if workload.memoized == 0 {
        (hash_step_id("first", 0), "first")
    } else {
        (hash_step_id("final", 0), "final")
    }
}

/// The ids of the memoized steps in execution order: "first", then "middle" repeats.
fn memoized_ids(workload: &Workload) -> Vec<String> {
    (0..workload.memoized)
        .map(|index| match index {
            0 => hash_step_id("first", 0),
            n => hash_step_id("middle", u32::try_from(n - 1).unwrap_or(u32::MAX)),
        })
        .collect()
}

/// A memoized value: the step's own result, or `bytes` of text that needs no escaping.
fn value(index: usize, bytes: usize) -> String {
    match (index, bytes) {
        (0, 0) => "first".to_owned(),
        (_, 0) => "middle".to_owned(),
        _ => (b'a'..=b'z')
            .cycle()
            .skip(index % 26)
            .take(bytes)
            .map(char::from)
            .collect(),
    }
}

/// The request body, keys in JCS order (written by hand so no map type can reorder them).
pub fn body(workload: &Workload) -> String {
    let ids = memoized_ids(workload);
    let middle = workload.memoized.saturating_sub(1);
    let event = format!(
        r#"{{"data":{{"middle":{middle}}},"id":"01JBENCH00000000000000EVNT","name":"bench/run","ts":1764979200000,"user":{{}}}}"#
    );
    let stack = ids
        .iter()
        .map(|id| format!("\"{id}\""))
        .collect::<Vec<_>>()
        .join(",");
    let mut steps: Vec<(&String, String)> = ids
        .iter()
        .enumerate()
        .map(|(index, id)| (id, value(index, workload.value_bytes)))
        .collect();
    steps.sort();
    let mut memo = String::new();
    for (index, (id, value)) in steps.iter().enumerate() {
        let comma = if index == 0 { "" } else { "," };
        let _ = write!(memo, r#"{comma}"{id}":{{"data":"{value}"}}"#);
    }
    format!(
        r#"{{"ctx":{{"attempt":0,"disable_immediate_execution":false,"env":"","fn_id":"7d1c2a4e-5b6f-4c3d-9e8f-0a1b2c3d4e5f","max_attempts":4,"qi_id":"bench-queue-item","request_id":"bench-request","run_id":"01JBENCH0000000000000000RUN","stack":{{"current":{current},"stack":[{stack}]}},"step_id":"step","use_api":false}},"event":{event},"events":[{event}],"steps":{{{memo}}},"use_api":false,"version":2}}"#,
        current = ids.len(),
    )
}

/// Writes every workload's files into `dir`: `.body`, `.url-path` and `.expect`
/// (`<hash> <value>`), and `.signed` for the ones sent signed.
pub fn write_all(dir: &Path) -> Outcome {
    fs::create_dir_all(dir)?;
    for workload in ALL {
        let file = |ext: &str| dir.join(format!("{}.{ext}", workload.name));
        fs::write(file("body"), body(workload))?;
        fs::write(file("url-path"), url_path())?;
        let (hash, value) = expected(workload);
        fs::write(file("expect"), format!("{hash} {value}\n"))?;
        if workload.signed {
            fs::write(file("signed"), "")?;
        }
    }
    Ok(())
}

/// Signs every signed workload's body now with `key` into `.signature` (Inngest refuses a
/// signature older than 5 minutes, so the script signs again before each round).
pub fn sign(dir: &Path, key: &str) -> Outcome {
    let key = SigningKey::new(key);
    let now = chrono::Utc::now().timestamp();
    for workload in ALL.iter().filter(|workload| workload.signed) {
        let body = fs::read(dir.join(format!("{}.body", workload.name)))?;
        let header = sign_body(&key, &body, now);
        fs::write(dir.join(format!("{}.signature", workload.name)), header)?;
    }
    Ok(())
}

/// The workload named `name`.
pub fn find(name: &str) -> Result<&'static Workload, String> {
    ALL.iter()
        .find(|workload| workload.name == name)
        .ok_or_else(|| {
            let names: Vec<_> = ALL.iter().map(|workload| workload.name).collect();
            format!(
                "no workload named {name:?}; the workloads are {}",
                names.join(", ")
            )
        })
}
