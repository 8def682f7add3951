-- wrk script for GET benchmarks: one JSON line with rate, percentiles and non-2xx/3xx answers.
--   wrk -t1 -c50 -d10s -s infra/load/get.lua 'http://127.0.0.1:PORT/serving_num?event_id=demo'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  unexpected = 0
end

function response(status, headers, body)
  if status >= 400 then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("unexpected")
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"unexpected":%d,"socket_errors":%d,"secs":%.3f,"rps":%.1f,' ..
    '"p50_ms":%.3f,"p95_ms":%.3f,"p99_ms":%.3f}\n',
    summary.requests, bad, e.connect + e.read + e.write + e.timeout, secs,
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
