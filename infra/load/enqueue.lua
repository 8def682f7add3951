-- wrk script: visitors joining the line (POST /assign_queue_num), at wrk's full speed.
-- Counts statuses per thread and prints one JSON line with the rate, percentiles and errors
-- (anything but 202, plus socket errors and timeouts).
--   WR_EVENT=burst wrk -t2 -c128 -d10s -s infra/load/enqueue.lua http://127.0.0.1:PORT/assign_queue_num

local event = os.getenv("WR_EVENT") or "demo"
wrk.method = "POST"
wrk.body = '{"event_id":"' .. event .. '"}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  accepted = 0
  unexpected = 0
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  else
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("accepted")
    bad = bad + thread:get("unexpected")
  end
  local e = summary.errors
  local socket = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"accepted":%d,"unexpected":%d,"socket_errors":%d,"secs":%.3f,"rps":%.1f,' ..
    '"p50_ms":%.2f,"p95_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
    summary.requests, ok, bad, socket, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
