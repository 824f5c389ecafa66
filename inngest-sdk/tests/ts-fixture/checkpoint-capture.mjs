// Captures what an SDK does on the wire with async checkpointing (CHECKPOINT.md).
//
//   node checkpoint-capture.mjs              # spawns checkpoint-server.mjs twice
//                                            # (dev and cloud mode) + a fake API
//   TARGET_URL=http://127.0.0.1:3000/api/inngest \
//   TARGET_CLOUD_URL=http://127.0.0.1:3001/api/inngest node checkpoint-capture.mjs
//                                            # drive already running SDK servers
//
// Env:
//   FAKE_API_PORT      port of the fake Inngest API (default 39887); the target
//                      SDKs must use http://127.0.0.1:$FAKE_API_PORT as API base
//   TARGET_URL         dev-mode target (no signing key); spawns TS when unset
//   TARGET_CLOUD_URL   cloud-mode target with INNGEST_SIGNING_KEY=SIGNING_KEY and
//                      INNGEST_SIGNING_KEY_FALLBACK=SIGNING_KEY_FALLBACK below;
//                      spawned when TARGET_URL is unset; cloud cases are skipped
//                      when TARGET_URL is set and this is not
//   CASES              optional comma-separated case names (default: all)
//   NORMALIZE=1        mask timing values (timestamps, durations, stacks)
//   SDK_PORT, SDK_CLOUD_PORT, REQUEST_TIMEOUT_MS
//
// Prints one JSON line per exchange:
//   {"case","request":{method,url,headers,body},"status","headers","body"}
// then, for each request the SDK made to the fake API during that exchange,
//   {"case","outbound":{method,url,headers,body},"answered":<status|"dropped">,"t_ms"}
// where t_ms is when it arrived, in ms since the exchange's request was sent.

import { spawn } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE_API_PORT = Number(process.env.FAKE_API_PORT ?? 39887);
const SDK_PORT = Number(process.env.SDK_PORT ?? 39888);
const SDK_CLOUD_PORT = Number(process.env.SDK_CLOUD_PORT ?? 39889);
const SPAWN = !process.env.TARGET_URL;
const TARGET_URL =
  process.env.TARGET_URL ?? `http://127.0.0.1:${SDK_PORT}/api/inngest`;
const TARGET_CLOUD_URL =
  process.env.TARGET_CLOUD_URL ??
  (SPAWN ? `http://127.0.0.1:${SDK_CLOUD_PORT}/api/inngest` : undefined);
const REQUEST_TIMEOUT_MS = Number(process.env.REQUEST_TIMEOUT_MS ?? 15000);
const NORMALIZE = /^(1|true)$/i.test(process.env.NORMALIZE ?? "");
const ONLY = process.env.CASES
  ? new Set(process.env.CASES.split(",").map((s) => s.trim()))
  : undefined;

const APP = "ckpt-app";
// Test keys (not secrets): hex, with the usual prefix.
export const SIGNING_KEY =
  "signkey-test-7468697320697320612074657374206b6579";
export const SIGNING_KEY_FALLBACK =
  "signkey-test-66616c6c6261636b206b6579";

// The ids an executor puts in ctx (protocol §6.1): a ULID run id, the
// function's UUID, an opaque queue item ref.
const RUN_ID = "01KCKPT0000000000000000000";
const FN_UUID = "6f1c2a4e-0b5d-4c1e-9a7f-3d2b1c0e9f8a";
const QI_ID = "cWktcmVmLWNrcHQ=";
const REQUEST_ID = "01KREQ00000000000000000000";
const JOB_ID = "job-ckpt";
const GENERATION_ID = 1;

const sha1 = (s) => createHash("sha1").update(s).digest("hex");
const stripPrefix = (key) => key.replace(/^signkey-\w+-/, "");
const hashedKey = (key) => {
  const prefix = key.match(/^signkey-\w+-/)?.[0] ?? "";
  const digest = createHash("sha256")
    .update(Buffer.from(stripPrefix(key), "hex"))
    .digest("hex");
  return `${prefix}${digest}`;
};
export const BEARER_PRIMARY = `Bearer ${hashedKey(SIGNING_KEY)}`;
export const BEARER_FALLBACK = `Bearer ${hashedKey(SIGNING_KEY_FALLBACK)}`;
const sign = (body, key) => {
  const t = Math.floor(Date.now() / 1000);
  const s = createHmac("sha256", stripPrefix(key)).update(body + t).digest("hex");
  return `t=${t}&s=${s}`;
};
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

// Timing values differ per run; NORMALIZE=1 replaces them by "<masked>".
const MASKED_KEYS = new Set(["ts", "request_started_at", "stack", "timing", "t_ms", "server-timing", "x-inngest-signature"]);
const mask = (v) => {
  if (!NORMALIZE) return v;
  if (Array.isArray(v)) return v.map((x) => mask(x));
  if (v && typeof v === "object") {
    const o = {};
    for (const [k, x] of Object.entries(v)) {
      // ctx.stack (the memo order) is an object and stays; error stacks are strings.
      const timingValue = MASKED_KEYS.has(k) && x !== undefined && (k !== "stack" || typeof x === "string");
      o[k] = timingValue ? "<masked>" : mask(x);
    }
    return o;
  }
  return v;
};
const out = (line) => console.log(JSON.stringify(mask(line)));

// ---------------------------------------------------------------- fake API
// How the fake answers checkpoint calls; set per case:
//   {kind:"ok"}                       200 with an empty body (like the server)
//   {kind:"fail-first", k, status}    `status` for the first k calls, then 200
//   {kind:"always", status}           `status` for every call
//   {kind:"drop"}                     closes the connection without answering
//   {kind:"reject-primary"}           401 for the primary key's Bearer, 200 else
let apiMode = { kind: "ok" };
let checkpointCalls = 0;
let currentCase = "";
let exchangeStart = 0;
const outbound = [];
let sentCounter = 0;

const fakeApi = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => {
    body += c;
  });
  req.on("end", () => {
    const entry = {
      case: currentCase,
      outbound: { method: req.method, url: req.url, headers: req.headers, body: tryJson(body) },
      answered: 200,
      t_ms: Date.now() - exchangeStart,
    };
    outbound.push(entry);
    const reply = (status, payload) => {
      entry.answered = status;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(payload);
    };
    if (req.method === "POST" && req.url.startsWith("/v1/checkpoint/")) {
      checkpointCalls += 1;
      const err = (status) =>
        reply(status, JSON.stringify({ error: `fake API: ${status}`, status }));
      switch (apiMode.kind) {
        case "fail-first":
          if (checkpointCalls <= apiMode.k) return err(apiMode.status);
          break;
        case "always":
          return err(apiMode.status);
        case "drop":
          entry.answered = "dropped";
          req.socket.destroy();
          return;
        case "reject-primary":
          if (req.headers.authorization === BEARER_PRIMARY) return err(401);
          if (req.headers.authorization !== BEARER_FALLBACK) return err(401);
          break;
        default:
          break;
      }
      // The server's CheckpointAsyncSteps writes nothing on success.
      entry.answered = 200;
      res.writeHead(200);
      res.end();
      return;
    }
    if (req.method === "POST" && req.url.startsWith("/e/")) {
      const parsed = tryJson(body);
      const n = Array.isArray(parsed) ? parsed.length : 1;
      const ids = Array.from({ length: n }, () => `01SENT${String(++sentCounter).padStart(20, "0")}`);
      return reply(200, JSON.stringify({ ids, status: 200 }));
    }
    reply(200, "{}");
  });
});

// ------------------------------------------------------------ request body
const EVENT_TS = 1700000000000;
const event = (name, data = {}) =>
  canon({ data, id: "01EVT000000000000000000000", name, ts: EVENT_TS, user: {} });

/** A §6.1 call request body, as the executor sends it with checkpointing on. */
const execBody = ({ ev, memo = [], attempt = 0, maxAttempts = 4, disable = false, stepId = "step", qiId = QI_ID }) => {
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
      fn_id: FN_UUID,
      generation_id: GENERATION_ID,
      job_id: JOB_ID,
      max_attempts: maxAttempts,
      ...(qiId ? { qi_id: qiId } : {}),
      request_id: REQUEST_ID,
      run_id: RUN_ID,
      stack: { current: stack.length, stack },
      step_id: stepId,
      use_api: false,
    },
    defers: {},
    event: ev,
    events: [ev],
    steps,
    use_api: false,
    version: 2,
  });
};

// ----------------------------------------------------------------- driver
const exec = async (name, fn, opts, { cloud = false, mode = { kind: "ok" }, idHeaders = true, settleMs = 50 } = {}) => {
  if (ONLY && !ONLY.has(name)) return;
  const base = cloud ? TARGET_CLOUD_URL : TARGET_URL;
  if (!base) return;
  apiMode = mode;
  checkpointCalls = 0;
  currentCase = name;
  const before = outbound.length;
  const query = `?fnId=${APP}-${fn}&stepId=${opts.stepId ?? "step"}`;
  const url = `${base}${query}`;
  const raw = JSON.stringify(execBody(opts));
  // The executor sends these headers too (httpdriver.go); TS reads the
  // request and generation ids from them, not from ctx.
  const headers = {
    "content-type": "application/json",
    "x-run-id": RUN_ID,
    ...(idHeaders
      ? {
          "x-request-id": REQUEST_ID,
          "x-inngest-generation-id": String(GENERATION_ID),
          "x-inngest-job-id": JOB_ID,
        }
      : {}),
    ...(cloud ? { "x-inngest-signature": sign(raw, SIGNING_KEY) } : {}),
  };
  const relUrl = url.slice(url.indexOf("/", url.indexOf("//") + 2));
  const request = { method: "POST", url: relUrl, headers, body: JSON.parse(raw) };
  exchangeStart = Date.now();
  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      headers,
      body: raw,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    out({ case: name, request, status: null, error: `${err.name}: no response within ${REQUEST_TIMEOUT_MS}ms` });
    return;
  }
  const text = await res.text();
  const elapsed = Date.now() - exchangeStart;
  const resHeaders = {};
  for (const [k, v] of res.headers) {
    if (k === "date" || k === "connection" || k === "keep-alive" || k === "transfer-encoding") continue;
    resHeaders[k] = v;
  }
  out({ case: name, request, status: res.status, headers: resHeaders, body: tryJson(text), t_ms: elapsed });
  // Anything sent after the response (none expected) still lands here.
  await new Promise((r) => setTimeout(r, settleMs));
  for (const o of outbound.slice(before)) out(o);
};

const sync = async (name) => {
  if (ONLY && !ONLY.has(name)) return;
  currentCase = name;
  const headers = {
    "content-type": "application/json",
    "x-inngest-sync-kind": "in_band",
    "x-inngest-server-kind": "dev",
  };
  const body = { url: "http://127.0.0.1:9999/api/inngest" };
  const res = await fetch(TARGET_URL, { method: "PUT", headers, body: JSON.stringify(body) });
  const text = await res.text();
  out({ case: name, request: { method: "PUT", url: "/api/inngest", headers, body }, status: res.status, headers: {}, body: tryJson(text) });
};

const A = { data: "A" };
const B = { data: "B" };

async function run() {
  // Sync payload: does the function config carry a `checkpoint` object?
  await sync("sync-in-band");

  // (a) three sequential steps, then return (client default: 1 step per checkpoint).
  const evThree = event("ckpt/three");
  await exec("three", "three", { ev: evThree });
  // The same run resumed with one step memoized.
  await exec("three-resumed", "three", { ev: evThree, memo: [["a", A]] });
  // Every step memoized: the function returns without running a step.
  await exec("three-all-memoized", "three", { ev: evThree, memo: [["a", A], ["b", B], ["c", { data: "C" }]] });
  // On a retry (attempt 1) TS does not checkpoint the first step it runs.
  await exec("three-attempt1", "three", { ev: evThree, attempt: 1 });
  // Checkpointing is off for a targeted step and for disable_immediate_execution.
  await exec("three-targeted", "three", { ev: evThree, stepId: sha1("a"), disable: true });
  await exec("three-disabled", "three", { ev: evThree, disable: true });
  // Without ctx.qi_id: TS still checkpoints, fails before sending anything
  // (5 attempts with backoff), then falls back (WIRE.md §5's mystery).
  await exec("three-no-qi-id", "three", { ev: evThree, qiId: null });
  // Without the x-request-id / x-inngest-generation-id headers (ids in ctx only).
  await exec("three-no-id-headers", "three", { ev: evThree, memo: [["a", A], ["b", B]] }, { idHeaders: false });
  // Checkpointing off for this function.
  await exec("off", "off", { ev: event("ckpt/off") });

  // (b) run, sleep, run.
  const evSleep = event("ckpt/run-sleep-run");
  await exec("run-sleep-run", "run-sleep-run", { ev: evSleep });
  await exec("run-sleep-run-woken", "run-sleep-run", {
    ev: evSleep,
    memo: [["before", { data: 1 }], ["nap", null]],
  });
  // other async ops after a step
  await exec("run-wait", "run-wait", { ev: event("ckpt/run-wait") });
  await exec("run-invoke", "run-invoke", { ev: event("ckpt/run-invoke") });
  await exec("run-parallel", "run-parallel", { ev: event("ckpt/run-parallel") });

  // (c) a retriable step error after a successful step, then the last attempt.
  const evErr = event("ckpt/step-error");
  await exec("step-error", "step-error", { ev: evErr, maxAttempts: 3 });
  await exec("step-error-retry", "step-error", {
    ev: evErr,
    maxAttempts: 3,
    attempt: 1,
    memo: [["ok", { data: "fine" }]],
  });
  await exec("step-error-last", "step-error", {
    ev: evErr,
    maxAttempts: 3,
    attempt: 2,
    memo: [["ok", { data: "fine" }]],
  });
  await exec("fn-error", "fn-error", { ev: event("ckpt/fn-error") });

  // (d) checkpoint API failures.
  await exec("api-500-twice", "three", { ev: evThree }, { mode: { kind: "fail-first", k: 2, status: 500 } });
  await exec("api-500-always", "three", { ev: evThree }, { mode: { kind: "always", status: 500 } });
  await exec("api-unreachable", "three", { ev: evThree }, { mode: { kind: "drop" } });
  await exec("api-400", "three", { ev: evThree }, { mode: { kind: "always", status: 400 } });
  await exec("api-409-stale", "three", { ev: evThree }, { mode: { kind: "always", status: 409 } });

  // (e) cloud mode: 401 for the primary key's hash, 200 for the fallback's.
  await exec("cloud-three", "three", { ev: evThree }, { cloud: true });
  await exec("cloud-401-primary", "three", { ev: evThree }, { cloud: true, mode: { kind: "reject-primary" } });

  // (f) max_runtime 500ms exceeded inside the first step.
  await exec("slow", "slow", { ev: event("ckpt/slow") });

  // (g) Go's presets as TS options.
  await exec("blended", "blended", { ev: event("ckpt/blended") });
  await exec("performant", "performant", { ev: event("ckpt/performant") });
  await exec("interval", "interval", { ev: event("ckpt/interval") });
}

// ------------------------------------------------------------------ main
const children = [];
const stop = () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  fakeApi.close();
};

const spawnServer = (port, extraEnv) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, "checkpoint-server.mjs")], {
      cwd: here,
      env: {
        ...process.env,
        PORT: String(port),
        INNGEST_BASE_URL: `http://127.0.0.1:${FAKE_API_PORT}`,
        CKPT_EXIT_WITH_STDIN: "1",
        ...extraEnv,
      },
      stdio: ["pipe", "pipe", "inherit"],
    });
    children.push(child);
    let buf = "";
    child.stdout.on("data", (c) => {
      buf += c;
      if (buf.includes("READY\n")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`checkpoint-server exited ${code}`)));
    setTimeout(() => reject(new Error("checkpoint-server not READY in 20s")), 20000);
  });

try {
  await new Promise((r) => fakeApi.listen(FAKE_API_PORT, "127.0.0.1", r));
  if (SPAWN) {
    const devEnv = { INNGEST_DEV: "1", INNGEST_ALLOW_IN_BAND_SYNC: "1" };
    for (const k of ["INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK", "INNGEST_EVENT_KEY", "CKPT_CLOUD"]) devEnv[k] = "";
    await Promise.all([
      spawnServer(SDK_PORT, devEnv),
      spawnServer(SDK_CLOUD_PORT, {
        CKPT_CLOUD: "1",
        INNGEST_DEV: "0",
        INNGEST_SIGNING_KEY: SIGNING_KEY,
        INNGEST_SIGNING_KEY_FALLBACK: SIGNING_KEY_FALLBACK,
        INNGEST_EVENT_KEY: "test-event-key",
      }),
    ]);
  }
  await run();
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  stop();
  // Idle keep-alive connections (the target's API client pools them) and the servers'
  // start-up timers would hold the process open long after the capture is written.
  fakeApi.closeAllConnections();
  process.exit();
}
