// Runs the official encryption middleware's own hooks on values, for the Rust SDK's
// differential test (tests/encryption.rs). Reads a JSON array of operations on stdin and
// writes a JSON array of results: {"ok": value} or {"error": message}.
//
// Each operation names the hook and the keys: the first key encrypts, every key decrypts
// (`key` + `fallbackDecryptionKeys`), as the middleware is configured in an app.
import { encryptionMiddleware } from "@inngest/middleware-encryption";

const middleware = (keys) => {
  const Encryption = encryptionMiddleware({ key: keys[0], fallbackDecryptionKeys: keys.slice(1) });
  return new Encryption({ client: undefined });
};

const hooks = {
  // A step's result as it leaves the function (wrapStepHandler).
  encrypt_step: (mw, { value }) => mw.wrapStepHandler({ next: async () => value }),
  // The function's return value (wrapFunctionHandler).
  encrypt_output: (mw, { value }) => mw.wrapFunctionHandler({ next: async () => value }),
  // Events sent (transformSendEvent): only data.encrypted is encrypted.
  encrypt_send: async (mw, { events }) => (await mw.transformSendEvent({ events })).events,
  // An invoke step's input (transformStepInput): its payload data, as event data.
  encrypt_invoke: async (mw, { data }) =>
    (await mw.transformStepInput({ stepInfo: { stepType: "invoke" }, input: [{ payload: { data } }] }))
      .input[0].payload.data,
  // A memoized step result as the function reads it (wrapStep).
  decrypt_step: (mw, { value }) => mw.wrapStep({ next: async () => value }),
  // The triggering event as the function sees it (transformFunctionInput).
  decrypt_event: async (mw, { event }) =>
    (await mw.transformFunctionInput({ ctx: { event, events: [event] } })).ctx.event,
};

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const operations = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = [];
for (const operation of operations) {
  try {
    results.push({ ok: await hooks[operation.op](middleware(operation.keys), operation) });
  } catch (error) {
    results.push({ error: String(error && error.message ? error.message : error) });
  }
}
process.stdout.write(JSON.stringify(results));
