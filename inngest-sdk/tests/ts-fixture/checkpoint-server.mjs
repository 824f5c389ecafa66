// Checkpointing fixture: serves the `ckpt-app` functions with the OFFICIAL
// TypeScript Inngest SDK (npm `inngest`, pinned to 4.24.0 in package.json),
// with its async checkpointing ON, so checkpoint-capture.mjs can record the
// checkpoint requests it sends to a fake Inngest API. See CHECKPOINT.md.
//
// Env:
//   PORT                 required; listens on 127.0.0.1:$PORT
//   INNGEST_BASE_URL     required; the fake Inngest API (checkpoints go there)
//   CKPT_CLOUD=1         cloud mode: signed requests, hashed signing key as
//                        Bearer (needs INNGEST_SIGNING_KEY, and
//                        INNGEST_SIGNING_KEY_FALLBACK for the fallback case);
//                        otherwise dev mode (INNGEST_DEV=1 semantics)
//   CKPT_EXIT_WITH_STDIN=1  exit when stdin closes (the capture driver holds it,
//                        so a killed driver never leaves this server behind)
//
// Prints exactly one line `READY` to stdout once listening.

import http from "node:http";
import { Inngest, referenceFunction } from "inngest";
import { serve } from "inngest/node";

const port = Number.parseInt(process.env.PORT ?? "", 10);
if (!Number.isInteger(port) || port <= 0) {
  console.error("PORT env var is required");
  process.exit(2);
}
const cloud = /^(1|true)$/i.test(process.env.CKPT_CLOUD ?? "");

const stderrLogger = {
  info: (...a) => console.error("[info]", ...a),
  warn: (...a) => console.error("[warn]", ...a),
  error: (...a) => console.error("[error]", ...a),
  debug: () => {},
};

const inngest = new Inngest({
  id: "ckpt-app",
  isDev: !cloud,
  baseUrl: process.env.INNGEST_BASE_URL,
  // `checkpointing` is left unset on purpose: TS 4.24.0 defaults it to `true`
  // (bufferedSteps 1, maxInterval 0, maxRuntime 10s for serve).
  logger: stderrLogger,
});

const pause = (ms) => new Promise((r) => setTimeout(r, ms));
const trigger = (name) => [{ event: `ckpt/${name}` }];

// Client default (safe: one step per checkpoint).
const three = inngest.createFunction(
  { id: "three", triggers: trigger("three") },
  async ({ step }) => {
    const a = await step.run("a", () => "A");
    const b = await step.run("b", () => "B");
    const c = await step.run("c", () => "C");
    return { a, b, c };
  },
);

const runSleepRun = inngest.createFunction(
  { id: "run-sleep-run", triggers: trigger("run-sleep-run") },
  async ({ step }) => {
    const before = await step.run("before", () => 1);
    await step.sleep("nap", "1m");
    const after = await step.run("after", () => 2);
    return { before, after };
  },
);

const runWait = inngest.createFunction(
  { id: "run-wait", triggers: trigger("run-wait") },
  async ({ step }) => {
    const before = await step.run("before", () => 1);
    const ev = await step.waitForEvent("wait", { event: "ckpt/resume", timeout: "1h" });
    return { before, got: ev ? ev.data : null };
  },
);

const runInvoke = inngest.createFunction(
  { id: "run-invoke", triggers: trigger("run-invoke") },
  async ({ step }) => {
    const before = await step.run("before", () => 1);
    const r = await step.invoke("call", {
      function: referenceFunction({ appId: "ckpt-app", functionId: "three" }),
      data: { from: "run-invoke" },
      timeout: "1m",
    });
    return { before, r };
  },
);

const runParallel = inngest.createFunction(
  { id: "run-parallel", triggers: trigger("run-parallel") },
  async ({ step }) => {
    const first = await step.run("first", () => 1);
    const [x, y] = await Promise.all([
      step.run("p1", () => 2),
      step.run("p2", () => 3),
    ]);
    return { first, x, y };
  },
);

// retries: 2 => max_attempts 3.
const stepError = inngest.createFunction(
  { id: "step-error", retries: 2, triggers: trigger("step-error") },
  async ({ step }) => {
    const ok = await step.run("ok", () => "fine");
    await step.run("fails", () => {
      throw new Error("boom");
    });
    return { ok };
  },
);

// A function error (not a step error) after a checkpointed step.
const fnError = inngest.createFunction(
  { id: "fn-error", triggers: trigger("fn-error") },
  async ({ step }) => {
    await step.run("ok", () => "fine");
    throw new Error("fn broke");
  },
);

// max_runtime 500ms; the first step alone takes 800ms.
const slow = inngest.createFunction(
  {
    id: "slow",
    checkpointing: { maxRuntime: "500ms" },
    triggers: trigger("slow"),
  },
  async ({ step }) => {
    const s1 = await step.run("s1", async () => {
      await pause(800);
      return 1;
    });
    const s2 = await step.run("s2", () => 2);
    const s3 = await step.run("s3", () => 3);
    return { s1, s2, s3 };
  },
);

// Go's ConfigBlended (3 steps or 3s), written as TS options.
const blended = inngest.createFunction(
  {
    id: "blended",
    checkpointing: { bufferedSteps: 3, maxInterval: "3s" },
    triggers: trigger("blended"),
  },
  async ({ step }) => {
    let sum = 0;
    for (const id of ["b1", "b2", "b3", "b4"]) {
      sum += await step.run(id, () => Number(id.slice(1)));
    }
    return { sum };
  },
);

// Go's ConfigPerformant (1000 steps), written as TS options.
const performant = inngest.createFunction(
  {
    id: "performant",
    checkpointing: { bufferedSteps: 1000 },
    triggers: trigger("performant"),
  },
  async ({ step }) => {
    const a = await step.run("a", () => "A");
    const b = await step.run("b", () => "B");
    const c = await step.run("c", () => "C");
    return { a, b, c };
  },
);

// maxInterval 500ms with a large buffer; four steps of 300ms each
// (step ends at ~300, 600, 900, 1200 ms; interval ticks at 500, 1000 ms).
const interval = inngest.createFunction(
  {
    id: "interval",
    checkpointing: { bufferedSteps: 100, maxInterval: "500ms" },
    triggers: trigger("interval"),
  },
  async ({ step }) => {
    const out = [];
    for (const id of ["i1", "i2", "i3", "i4"]) {
      out.push(
        await step.run(id, async () => {
          await pause(300);
          return id;
        }),
      );
    }
    return out;
  },
);

// Checkpointing off for this one function (client default is on).
const off = inngest.createFunction(
  { id: "off", checkpointing: false, triggers: trigger("off") },
  async ({ step }) => {
    const a = await step.run("a", () => "A");
    const b = await step.run("b", () => "B");
    return { a, b };
  },
);

const functions = [
  three,
  runSleepRun,
  runWait,
  runInvoke,
  runParallel,
  stepError,
  fnError,
  slow,
  blended,
  performant,
  interval,
  off,
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

process.on("unhandledRejection", (err) => {
  console.error("[fixture] unhandled rejection (kept alive):", err);
});
if (/^(1|true)$/i.test(process.env.CKPT_EXIT_WITH_STDIN ?? "")) {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
