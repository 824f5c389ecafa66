// The benchmark function served by the OFFICIAL TypeScript Inngest SDK (npm `inngest`, pinned in
// package.json) through its plain Node adapter, `inngest/node`. The same function as
// bench/rust/server.rs and bench/go/main.go: step "first", `event.data.middle` steps "middle",
// step "final"; every step returns a string.
//
// Env:
//   PORT                 required; listens on 127.0.0.1:$PORT
//   INNGEST_SIGNING_KEY  set: cloud mode, every request must be signed; unset: dev mode
//   BENCH_CHECKPOINTING  1: async checkpointing on (the v4 default); otherwise off
//   INNGEST_BASE_URL     where a checkpoint would be sent (scripts/bench.sh: a port nobody serves)
//
// Prints one line `READY` once listening.

import http from "node:http";
import { Inngest } from "inngest";
import { serve } from "inngest/node";

const port = Number.parseInt(process.env.PORT ?? "", 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error("PORT is required");
  process.exit(2);
}
const signingKey = process.env.INNGEST_SIGNING_KEY;

const inngest = new Inngest({
  id: "bench",
  isDev: !signingKey,
  ...(signingKey ? { signingKey } : {}),
  checkpointing: process.env.BENCH_CHECKPOINTING === "1",
  // Quiet: a log line per request would be part of what is measured.
  logger: { info() {}, warn() {}, error: console.error, debug() {} },
});

const bench = inngest.createFunction(
  { id: "bench", triggers: [{ event: "bench/run" }] },
  async ({ event, step }) => {
    await step.run("first", () => "first");
    for (let i = 0; i < event.data.middle; i++) {
      await step.run("middle", () => "middle");
    }
    await step.run("final", () => "final");
    return "done";
  },
);

const handler = serve({ client: inngest, functions: [bench] });

const server = http.createServer((req, res) => {
  if ((req.url ?? "").split("?")[0] === "/api/inngest") return handler(req, res);
  res.writeHead(404).end();
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => process.stdout.write("READY\n"));
// inngest 4.24.0 lets the "aborted" error of a request whose client went away (wrk closes its
// connections when a run ends, mid-upload on the 4 MB workload) escape as an unhandled
// rejection, which would end the process (Node's default). Keep serving; count them.
let abandoned = 0;
process.on("unhandledRejection", () => {
  abandoned += 1;
});
process.on("exit", () => {
  if (abandoned) console.error(`${abandoned} unhandled rejection(s) from abandoned requests`);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(0));
}
