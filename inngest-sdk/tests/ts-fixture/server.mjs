// Wire-diff fixture: serves the `diff-app` functions with the OFFICIAL
// TypeScript Inngest SDK (npm `inngest`, pinned to 4.24.0 in package.json),
// so a Rust test can send identical requests to both SDKs and compare.
//
// Env:
//   PORT                          required; listens on 127.0.0.1:$PORT
//   INNGEST_DEV=1                 dev mode (no signature checks)
//   INNGEST_ALLOW_IN_BAND_SYNC=1  in-band sync (also the TS default)
//   INNGEST_BASE_URL              event API + REST API base (fake event API)
//   TS_FIXTURE_CHECKPOINTING=1    optional: keep the TS v4 default of
//                                 async checkpointing (off here, see WIRE.md)
//
// Prints exactly one line `READY` to stdout once listening.

import http from "node:http";
import {
  Inngest,
  NonRetriableError,
  RetryAfterError,
  referenceFunction,
} from "inngest";
import { serve } from "inngest/node";

const port = Number.parseInt(process.env.PORT ?? "", 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error("PORT env var is required");
  process.exit(2);
}

const checkpointing = /^(1|true)$/i.test(
  process.env.TS_FIXTURE_CHECKPOINTING ?? "",
);

// Keep stdout clean (only READY goes there): route SDK logs to stderr.
const stderrLogger = {
  info: (...a) => console.error("[info]", ...a),
  warn: (...a) => console.error("[warn]", ...a),
  error: (...a) => console.error("[error]", ...a),
  debug: () => {},
};

const inngest = new Inngest({
  id: "diff-app",
  isDev: true,
  // Explicit so the fixture does not depend on the env var alone; the env
  // var INNGEST_BASE_URL is also honoured by the SDK itself.
  ...(process.env.INNGEST_BASE_URL
    ? { baseUrl: process.env.INNGEST_BASE_URL }
    : {}),
  // TS v4 defaults to async checkpointing when ctx.fn_id is set; the classic
  // (Go-like) protocol is what we compare against, so disable it by default.
  checkpointing,
  logger: stderrLogger,
});

const simple = inngest.createFunction(
  { id: "simple", triggers: [{ event: "diff/simple" }] },
  async ({ event }) => ({ ok: true, echo: event.data }),
);

const serial = inngest.createFunction(
  { id: "serial", triggers: [{ event: "diff/serial" }] },
  async ({ step }) => {
    const a = await step.run("a", () => "A");
    const b = await step.run("b", () => ({ a, n: 2 }));
    await step.sleep("nap", "2s");
    return { a, b };
  },
);

const loop = inngest.createFunction(
  { id: "loop", triggers: [{ event: "diff/loop" }] },
  async ({ step }) => {
    let sum = 0;
    for (let i = 0; i < 3; i++) {
      sum += await step.run("item", () => i * 2);
    }
    return { sum };
  },
);

const parallel = inngest.createFunction(
  { id: "parallel", triggers: [{ event: "diff/parallel" }] },
  async ({ step }) => {
    const [x, y] = await Promise.all([
      step.run("p1", () => 1),
      step.run("p2", () => 2),
    ]);
    return { x, y };
  },
);

const stepError = inngest.createFunction(
  { id: "step-error", retries: 2, triggers: [{ event: "diff/step-error" }] },
  async ({ step }) => {
    try {
      await step.run("fails", () => {
        throw new Error("boom");
      });
      return { caught: null };
    } catch (e) {
      return { caught: e.message };
    }
  },
);

const fnError = inngest.createFunction(
  { id: "fn-error", triggers: [{ event: "diff/fn-error" }] },
  async () => {
    throw new Error("fn broke");
  },
);

const nonRetriable = inngest.createFunction(
  { id: "non-retriable", triggers: [{ event: "diff/non-retriable" }] },
  async () => {
    throw new NonRetriableError("stop here");
  },
);

const retryAfter = inngest.createFunction(
  { id: "retry-after", triggers: [{ event: "diff/retry-after" }] },
  async () => {
    // v4: number = milliseconds, string = time string, Date = absolute.
    throw new RetryAfterError("later", "30s");
  },
);

const sleeper = inngest.createFunction(
  { id: "sleeper", triggers: [{ event: "diff/sleep" }] },
  async ({ step }) => {
    await step.sleep("nap", "1h30m");
    await step.sleepUntil("until", "2030-01-02T03:04:05Z");
    return "woke";
  },
);

const waiter = inngest.createFunction(
  { id: "waiter", triggers: [{ event: "diff/wait" }] },
  async ({ step }) => {
    const ev = await step.waitForEvent("wait", {
      event: "diff/resume",
      timeout: "1h",
      if: "async.data.id == event.data.id",
    });
    return { got: ev ? ev.data : null };
  },
);

const invoker = inngest.createFunction(
  { id: "invoker", triggers: [{ event: "diff/invoke" }] },
  async ({ step }) => {
    const r = await step.invoke("call", {
      function: referenceFunction({ appId: "diff-app", functionId: "simple" }),
      data: { from: "invoker" },
      timeout: "1m",
    });
    return { r };
  },
);

const sender = inngest.createFunction(
  { id: "sender", triggers: [{ event: "diff/send" }] },
  async ({ step }) => {
    const res = await step.sendEvent("send", {
      name: "diff/sent",
      data: { x: 1 },
    });
    return res;
  },
);

const configured = inngest.createFunction(
  {
    id: "configured",
    triggers: [
      { event: "diff/configured", if: "event.data.ok == true" },
      { cron: "TZ=Europe/Paris 0 9 * * 1" },
    ],
    retries: 3,
    concurrency: [{ limit: 2, key: "event.data.user" }],
    throttle: { limit: 5, period: "1m", burst: 2 },
    debounce: { period: "10s", key: "event.data.user" },
    priority: { run: "event.data.prio" },
    cancelOn: [
      {
        event: "diff/cancel",
        if: "async.data.id == event.data.id",
        timeout: "1h",
      },
    ],
    idempotency: "event.data.id",
    timeouts: { start: "10s", finish: "1h" },
    onFailure: async () => null,
  },
  async () => null,
);

const functions = [
  simple,
  serial,
  loop,
  parallel,
  stepError,
  fnError,
  nonRetriable,
  retryAfter,
  sleeper,
  waiter,
  invoker,
  sender,
  configured,
];

const handler = serve({ client: inngest, functions });

const server = http.createServer((req, res) => {
  const path = (req.url ?? "").split("?")[0];
  if (path === "/api/inngest") return handler(req, res);
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ message: "not found" }));
});

server.listen(port, "127.0.0.1", () => {
  process.stdout.write("READY\n");
});

// inngest 4.24.0 lets a JSON.parse error on a malformed POST/PUT body escape
// as an unhandled rejection, which would kill the process (Node's default).
// Keep serving instead; the request itself still gets the SDK's answer.
process.on("unhandledRejection", (err) => {
  console.error("[fixture] unhandled rejection (kept alive):", err);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
