-- wrk script for scripts/bench.sh: POSTs one workload's request bytes (BENCH_REQUEST is the
-- path prefix: .body, and .signature for a signed workload) and prints one machine-readable
-- line with the counts and latency percentiles (microseconds).
local prefix = assert(os.getenv("BENCH_REQUEST"), "BENCH_REQUEST is required")

local function read(path)
  local file = io.open(path, "rb")
  if not file then return nil end
  local text = file:read("*a")
  file:close()
  return text
end

wrk.method = "POST"
wrk.body = assert(read(prefix .. ".body"), "no " .. prefix .. ".body")
wrk.headers["Content-Type"] = "application/json"
local signature = read(prefix .. ".signature")
if signature then
  wrk.headers["X-Inngest-Signature"] = signature
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH answered=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
