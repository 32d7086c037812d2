-- wrk script: POST a tiny prediction; print one machine-readable summary line.
-- Each request carries its send time (CLOCK_MONOTONIC, us) in its prediction id, which every
-- 2xx response echoes, so the latency of successful predictions is measured apart from fast
-- non-2xx answers (409) even with several connections per thread.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  ok_lat = {}
  n = 0
end

function request()
  n = n + 1
  local body = string.format('{"id":"b%d-%d-%d","input":{"text":"hi"}}', tid, n, now_us())
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    local sent = body:match('"id":"b%d+%-%d+%-(%d+)"')
    if sent then
      ok_lat[#ok_lat + 1] = now_us() - tonumber(sent)
    end
  end
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for _, v in ipairs(t:get("ok_lat")) do
      all[#all + 1] = v
    end
  end
  table.sort(all)
  local function pct(p)
    if #all == 0 then
      return 0
    end
    return all[math.max(1, math.ceil(#all * p / 100))]
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d socket_errors=%d non2xx=%d ok_p50_us=%d ok_p99_us=%d ok_timed=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status, pct(50), pct(99), #all))
end
