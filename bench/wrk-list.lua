-- wrk script of the bench (bench/run.ts): GET <path> with a different bearer
-- token on every request, read from the file given after `--`; prints one
-- JSON line of results at the end (latencies in microseconds).
local tokens = {}
local index = 0
local path = "/api/v1/devices"

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    if #line > 0 then tokens[#tokens + 1] = "Bearer " .. line end
  end
  file:close()
  if args[2] then path = args[2] end
end

function request()
  index = index % #tokens + 1
  return wrk.format("GET", path, { ["Authorization"] = tokens[index] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d,"meanUs":%.1f,"maxUs":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
