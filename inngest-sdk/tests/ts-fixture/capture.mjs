// Reproduces the captures in WIRE.md.
//
//   node capture.mjs                      # spawns server.mjs + a fake event API
//   TARGET_URL=http://127.0.0.1:3000/api/inngest node capture.mjs
//                                         # drive an already running SDK
//                                         # (its INNGEST_BASE_URL must point at
//                                         #  FAKE_API_PORT, default 39877)
//
// Prints one JSON line per exchange:
//   {"case","request":{method,url,headers,body},"status","headers","body"}
// and, for each request the SDK made to the fake event/API server,
//   {"case","outbound":{method,url,headers,body}}
// Bodies are parsed as JSON when possible, otherwise left as strings.
// The request sequence is fixed (not derived from responses), so two SDKs
// receive byte-identical requests.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE_API_PORT = Number(process.env.FAKE_API_PORT ?? 39877);
const SDK_PORT = Number(process.env.SDK_PORT ?? 39878);
const TARGET_URL =
  process.env.TARGET_URL ?? `http://127.0.0.1:${SDK_PORT}/api/inngest`;
const APP = "diff-app";
const REQUEST_TIMEOUT_MS = Number(process.env.REQUEST_TIMEOUT_MS ?? 15000);

const sha1 = (s) => createHash("sha1").update(s).digest("hex");
const tryJson = (s) => {
  if (s === "") return s;
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
};

// JCS-like: recursively sorted keys, compact (what the Inngest server sends).
const canon = (v) => {
  if (Array.isArray(v)) return v.map(canon);
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = canon(v[k]);
    return o;
  }
  return v;
};

// ---------------------------------------------------------------- fake API
let currentCase = "";
const outbound = [];
let sentCounter = 0;
const fakeApi = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => {
    body += c;
  });
  req.on("end", () => {
    outbound.push({
      case: currentCase,
      outbound: {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: tryJson(body),
      },
    });
    res.setHeader("content-type", "application/json");
    if (req.method === "POST" && req.url.startsWith("/e/")) {
      const parsed = tryJson(body);
      const n = Array.isArray(parsed) ? parsed.length : 1;
      const ids = Array.from(
        { length: n },
        () => `01SENT${String(++sentCounter).padStart(20, "0")}`,
      );
      res.end(JSON.stringify({ ids, status: 200 }));
      return;
    }
    res.end("{}");
  });
});

// ------------------------------------------------------------ request body
const EVENT_TS = 1700000000000;
const event = (name, data = {}) =>
  canon({ data, id: "01EVT000000000000000000000", name, ts: EVENT_TS, user: {} });

/**
 * Build a §6.1 execution request body.
 * memo: array of [userStepIdWithRepeatSuffix, memoValue] in stack order.
 */
const execBody = ({
  ev,
  memo = [],
  attempt = 0,
  maxAttempts = 4,
  disable = false,
  stepId = "step",
}) => {
  const steps = {};
  const stack = [];
  for (const [id, value] of memo) {
    const h = sha1(id);
    steps[h] = value;
    stack.push(h);
  }
  return canon({
    ctx: {
      attempt,
      disable_immediate_execution: disable,
      env: "",
      fn_id: "x",
      max_attempts: maxAttempts,
      run_id: "01RUN",
      stack: { current: stack.length, stack },
      step_id: stepId,
      use_api: false,
    },
    event: ev,
    events: [ev],
    steps,
    use_api: false,
    version: 2,
  });
};

// ----------------------------------------------------------------- driver
const send = async (name, { method = "POST", query = "", headers = {}, body }) => {
  currentCase = name;
  const before = outbound.length;
  const url = `${TARGET_URL}${query}`;
  const reqHeaders = {
    ...(body !== undefined ? { "content-type": "application/json" } : {}),
    ...headers,
  };
  const rawBody =
    body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const relUrl = url.slice(url.indexOf("/", url.indexOf("//") + 2));
  let res;
  try {
    res = await fetch(url, {
      method,
      headers: reqHeaders,
      body: rawBody,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    // e.g. inngest-js 4.24.0 never answers a POST whose body is not JSON
    console.log(
      JSON.stringify({
        case: name,
        request: { method, url: relUrl, headers: reqHeaders, body: rawBody ?? null },
        status: null,
        error: `${err.name}: no response within ${REQUEST_TIMEOUT_MS}ms`,
      }),
    );
    return;
  }
  const text = await res.text();
  const resHeaders = {};
  for (const [k, v] of res.headers) {
    if (k === "date" || k === "connection" || k === "keep-alive") continue;
    resHeaders[k] = v;
  }
  console.log(
    JSON.stringify({
      case: name,
      request: {
        method,
        url: relUrl,
        headers: reqHeaders,
        body: rawBody === undefined ? null : tryJson(rawBody),
      },
      status: res.status,
      headers: resHeaders,
      body: tryJson(text),
    }),
  );
  // give the fake API a tick, then flush what this exchange caused
  await new Promise((r) => setTimeout(r, 20));
  for (const o of outbound.slice(before)) console.log(JSON.stringify(o));
};

const exec = (name, fn, opts) =>
  send(name, {
    query: `?fnId=${APP}-${fn}&stepId=${opts.stepId ?? "step"}`,
    body: execBody(opts),
  });

const ERR_BOOM = { error: { name: "Error", message: "boom" } };

async function run() {
  // -- introspection / sync
  await send("get", { method: "GET" });
  await send("get-with-signature", {
    method: "GET",
    headers: { "x-inngest-signature": "t=1700000000&s=00" },
  });
  await send("sync-in-band", {
    method: "PUT",
    headers: {
      "x-inngest-sync-kind": "in_band",
      "x-inngest-server-kind": "dev",
    },
    body: { url: "http://127.0.0.1:9999/api/inngest" },
  });

  // -- simple
  const evSimple = event("diff/simple", { hello: "world" });
  await exec("simple", "simple", { ev: evSimple });

  // -- serial
  const evSerial = event("diff/serial");
  await exec("serial-1", "serial", { ev: evSerial });
  await exec("serial-2", "serial", { ev: evSerial, memo: [["a", { data: "A" }]] });
  const serialMemo = [
    ["a", { data: "A" }],
    ["b", { data: { a: "A", n: 2 } }],
  ];
  await exec("serial-3", "serial", { ev: evSerial, memo: serialMemo });
  await exec("serial-4", "serial", { ev: evSerial, memo: [...serialMemo, ["nap", null]] });
  // targeted stepId that the code never reaches
  await exec("serial-unknown-stepid", "serial", {
    ev: evSerial,
    memo: serialMemo,
    stepId: sha1("nope"),
    disable: true,
  });

  // -- loop
  const evLoop = event("diff/loop");
  await exec("loop-1", "loop", { ev: evLoop });
  await exec("loop-2", "loop", { ev: evLoop, memo: [["item", { data: 0 }]] });
  await exec("loop-3", "loop", {
    ev: evLoop,
    memo: [
      ["item", { data: 0 }],
      ["item:1", { data: 2 }],
    ],
  });
  await exec("loop-4", "loop", {
    ev: evLoop,
    memo: [
      ["item", { data: 0 }],
      ["item:1", { data: 2 }],
      ["item:2", { data: 4 }],
    ],
  });

  // -- parallel
  const evPar = event("diff/parallel");
  await exec("parallel-1", "parallel", { ev: evPar });
  await exec("parallel-p1", "parallel", { ev: evPar, stepId: sha1("p1"), disable: true });
  await exec("parallel-p2", "parallel", {
    ev: evPar,
    stepId: sha1("p2"),
    disable: true,
    memo: [["p1", { data: 1 }]],
  });
  await exec("parallel-final", "parallel", {
    ev: evPar,
    disable: true,
    memo: [
      ["p1", { data: 1 }],
      ["p2", { data: 2 }],
    ],
  });
  // partial state with immediate execution allowed
  await exec("parallel-partial", "parallel", {
    ev: evPar,
    memo: [["p1", { data: 1 }]],
  });

  // -- step-error (retries: 2 => max_attempts 3)
  const evSE = event("diff/step-error");
  await exec("step-error-attempt0", "step-error", { ev: evSE, maxAttempts: 3 });
  await exec("step-error-attempt2-last", "step-error", {
    ev: evSE,
    attempt: 2,
    maxAttempts: 3,
  });
  await exec("step-error-replay", "step-error", {
    ev: evSE,
    maxAttempts: 3,
    memo: [["fails", ERR_BOOM]],
  });

  // -- fn-error
  const evFE = event("diff/fn-error");
  await exec("fn-error-attempt0", "fn-error", { ev: evFE });
  await exec("fn-error-attempt3-last", "fn-error", { ev: evFE, attempt: 3 });

  // -- non-retriable / retry-after
  await exec("non-retriable", "non-retriable", { ev: event("diff/non-retriable") });
  await exec("retry-after", "retry-after", { ev: event("diff/retry-after") });

  // -- sleeper
  const evSleep = event("diff/sleep");
  await exec("sleeper-1", "sleeper", { ev: evSleep });
  await exec("sleeper-2", "sleeper", { ev: evSleep, memo: [["nap", null]] });
  await exec("sleeper-3", "sleeper", {
    ev: evSleep,
    memo: [
      ["nap", null],
      ["until", null],
    ],
  });

  // -- waiter
  const evWait = event("diff/wait", { id: "w1" });
  await exec("waiter-1", "waiter", { ev: evWait });
  const resume = canon({
    data: { id: "w1", extra: true },
    id: "01RESUME0000000000000000000",
    name: "diff/resume",
    ts: EVENT_TS + 1000,
    user: {},
  });
  await exec("waiter-2-matched", "waiter", { ev: evWait, memo: [["wait", resume]] });
  await exec("waiter-2-timeout", "waiter", { ev: evWait, memo: [["wait", null]] });

  // -- invoker
  const evInv = event("diff/invoke");
  await exec("invoker-1", "invoker", { ev: evInv });
  await exec("invoker-2-data", "invoker", {
    ev: evInv,
    memo: [["call", { data: { ok: true, echo: { from: "invoker" } } }]],
  });
  await exec("invoker-2-error", "invoker", {
    ev: evInv,
    memo: [["call", { error: { name: "Error", message: "fn broke" } }]],
  });

  // -- sender
  const evSend = event("diff/send");
  await exec("sender-1", "sender", { ev: evSend });
  await exec("sender-2", "sender", {
    ev: evSend,
    memo: [["send", { data: { ids: ["01SENT00000000000000000001"] } }]],
  });

  // -- configured + its failure handler
  await exec("configured", "configured", { ev: event("diff/configured", { ok: true }) });
  await exec("configured-failure", "configured-failure", {
    ev: event("inngest/function.failed", {
      error: { name: "Error", message: "x" },
      event: event("diff/configured", { ok: true }),
      function_id: "diff-app-configured",
      run_id: "01RUN",
    }),
  });

  // -- event name vs triggers (TS validates it)
  await exec("wrong-event-name", "loop", { ev: event("diff/serial") });
  await exec("invoked-event", "simple", {
    ev: event("inngest/function.invoked", { from: "invoker" }),
  });

  // -- odd requests
  await send("bad-fnid", {
    query: "?fnId=diff-app-nope&stepId=step",
    body: execBody({ ev: evSimple }),
  });
  await send("bare-fnid", {
    query: "?fnId=simple&stepId=step",
    body: execBody({ ev: evSimple }),
  });
  await send("no-fnid", { query: "", body: execBody({ ev: evSimple }) });
  await send("malformed-body", {
    query: `?fnId=${APP}-simple&stepId=step`,
    body: "{not json",
  });
  await send("probe-trust", { query: "?probe=trust", body: {} });
  await send("sync-out-of-band", {
    method: "PUT",
    headers: { "x-inngest-server-kind": "dev" },
    body: { url: "http://127.0.0.1:9999/api/inngest" },
  });
}

// ------------------------------------------------------------------ main
let child;
const stop = () => {
  if (child && child.exitCode === null) child.kill("SIGTERM");
  fakeApi.close();
};

try {
  await new Promise((r) => fakeApi.listen(FAKE_API_PORT, "127.0.0.1", r));
  if (!process.env.TARGET_URL) {
    child = spawn(process.execPath, [path.join(here, "server.mjs")], {
      cwd: here,
      env: {
        ...process.env,
        PORT: String(SDK_PORT),
        INNGEST_DEV: "1",
        INNGEST_ALLOW_IN_BAND_SYNC: "1",
        INNGEST_BASE_URL: `http://127.0.0.1:${FAKE_API_PORT}`,
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise((resolve, reject) => {
      let buf = "";
      child.stdout.on("data", (c) => {
        buf += c;
        if (buf.includes("READY\n")) resolve();
      });
      child.on("exit", (code) => reject(new Error(`server exited ${code}`)));
      setTimeout(() => reject(new Error("server not READY in 20s")), 20000);
    });
  }
  await run();
} finally {
  stop();
}
