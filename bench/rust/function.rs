//! The benchmark function, the same as `bench/ts/server.mjs` and `bench/go/main.go`: step
//! "first", `event.data.middle` steps "middle", then step "final"; every step returns a string.

use inngest_sdk::{Ctx, Error, Function, FunctionOpts, Trigger};
use serde::Deserialize;

/// The trigger event's data: how many "middle" steps run between "first" and "final".
#[derive(Deserialize)]
struct BenchRun {
    middle: u32,
}

/// The benchmark function, id `bench`, triggered by `bench/run`.
pub fn function() -> Function<()> {
    Function::new(
        FunctionOpts::new("bench").with_trigger(Trigger::event("bench/run")),
        |ctx: Ctx<BenchRun, ()>| async move {
            let _: String = ctx
                .step
                .run("first", || async { Ok::<_, Error>("first".to_owned()) })
                .await?;
            for _ in 0..ctx.event.data.middle {
                let _: String = ctx
                    .step
                    .run("middle", || async { Ok::<_, Error>("middle".to_owned()) })
                    .await?;
            }
            let _: String = ctx
                .step
                .run("final", || async { Ok::<_, Error>("final".to_owned()) })
                .await?;
            Ok("done")
        },
    )
}
