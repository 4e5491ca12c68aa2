-- wrk script used by bench/write_path.py, configured from the environment:
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_BODY    request body, sent as application/json (optional)
--   BENCH_TOKEN   bearer token for the Authorization header
--   BENCH_EXPECT  the status every response must have (default 200)
-- It counts responses with and without the expected status in every thread, and `done`
-- prints one machine-readable line with exact percentiles from wrk's latency histogram.

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.body = os.getenv("BENCH_BODY")
if wrk.body then
   wrk.headers["Content-Type"] = "application/json"
end
local token = os.getenv("BENCH_TOKEN")
if token then
   wrk.headers["Authorization"] = "Bearer " .. token
end
local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

-- Globals of each thread's Lua state, read back by `done` through thread:get().
expected = 0
unexpected = 0
first_unexpected = 0

function response(status, headers, body)
   if status == expect then
      expected = expected + 1
   else
      unexpected = unexpected + 1
      if first_unexpected == 0 then
         first_unexpected = status
      end
   end
end

function done(summary, latency, requests)
   local ok, bad, first_bad = 0, 0, 0
   for _, thread in ipairs(threads) do
      ok = ok + thread:get("expected")
      bad = bad + thread:get("unexpected")
      if first_bad == 0 then
         first_bad = thread:get("first_unexpected")
      end
   end
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "expected=%d unexpected=%d first_unexpected=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      ok, bad, first_bad, e.connect, e.read, e.write, e.status, e.timeout))
end
