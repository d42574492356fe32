-- wrk script: POST /api/voice/session with a fresh user_id per request, and a JSON summary.
-- Each wrk thread runs its own Lua state; `setup` runs in the main state and numbers them.

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  non_2xx = 0
  s500 = 0
  s503 = 0
  s504 = 0
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"user_id":"bench-%d-%d","agent_id":"pm-agent","session_duration_hours":1}',
    thread_id, counter)
  return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    if status == 500 then s500 = s500 + 1
    elseif status == 503 then s503 = s503 + 1
    elseif status == 504 then s504 = s504 + 1
    end
  end
end

function done(summary, latency, requests)
  local totals = {non_2xx = 0, s500 = 0, s503 = 0, s504 = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non_2xx":%d,'
      .. '"s500":%d,"s503":%d,"s504":%d,'
      .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    totals.non_2xx, totals.s500, totals.s503, totals.s504, e.connect, e.read, e.write, e.timeout))
end
