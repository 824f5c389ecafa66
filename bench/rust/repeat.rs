//! `repeat <workload> <count>`: the workload's request through the SDK's handler in process,
//! `count` times, checked each time. Run under callgrind by `scripts/bench-instructions.sh`,
//! it gives the instructions a request costs: a count the machine's noise barely moves.

use bytes::Bytes;
use inngest_sdk::signature::{SigningKey, sign};
use inngest_sdk::{Client, Config, ServeHandler};

use crate::Outcome;
use crate::function::function;
use crate::workloads;

/// A fixed key: the count must not depend on a random one.
const SIGNING_KEY: &str = "signkey-test-62656e6368206b6579";

pub fn repeat(workload: &str, count: &str) -> Outcome {
    let workload = workloads::find(workload)?;
    let count: u32 = count.parse().map_err(|e| format!("count {count:?}: {e}"))?;
    let config = Config::new("bench");
    let config = match workload.signed {
        true => config.with_signing_key(SIGNING_KEY),
        false => config.dev(None),
    };
    let handler = ServeHandler::new(Client::new(config), (), [function()])?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let body = Bytes::from(workloads::body(workload));
    // Signed once: Inngest's 5 minutes are longer than any run of this command.
    let signature = workload.signed.then(|| {
        let now = chrono::Utc::now().timestamp();
        sign(&SigningKey::new(SIGNING_KEY), &body, now)
    });
    let path = workloads::url_path();
    for _ in 0..count {
        let mut request =
            http::Request::post(path.as_str()).header("content-type", "application/json");
        if let Some(signature) = &signature {
            request = request.header("x-inngest-signature", signature);
        }
        let answer = runtime.block_on(handler.handle(request.body(body.clone())?));
        if answer.status() != 206 {
            return Err(format!("{}: answered {}, not 206", workload.name, answer.status()).into());
        }
    }
    Ok(())
}
