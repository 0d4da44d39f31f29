-- wrk script for bench/api_throughput.py: one request per call, each to a random (key, id) pair.
--
--   wrk -t2 -c32 -d10s --latency -s bench/wrk/requests.lua http://127.0.0.1:8000 -- PAIRS MODE [NONCE]
--
-- PAIRS: a text file, one "<api key> <customer id>" pair per line (the benchmark writes it: every
--        customer of the tenants in the spread, so a random line is a random tenant weighted by
--        its number of customers, with one of its own customers).
-- MODE:  get       GET /v1/customers/<id>      with "Authorization: Bearer <key>"
--        post      POST /v1/customers          with the key and a small JSON body
--        post-idem the same plus an Idempotency-Key unique to this run, thread and request
--        raw       GET /raw/<id>                (ceiling app, no key)
--        sa        GET /sa/<id>                 (ceiling app, no key)
-- NONCE: makes Idempotency-Keys unique across runs (post-idem only).
--
-- At the end it prints one line, "BENCH_RESULT {json}", that the benchmark parses: request and
-- error counts and latency percentiles in microseconds.

local POST_BODY = '{"name":"Bench Customer","email":"bench@example.com","metadata":{"source":"wrk"}}'

local counter = 1

function setup(thread)
   thread:set("thread_id", counter)
   counter = counter + 1
end

local keys = {}
local ids = {}
local count = 0
local mode = nil
local nonce = "0"
local sent = 0

function init(args)
   local path = args[1]
   mode = args[2]
   nonce = args[3] or "0"
   if path == nil or mode == nil then
      error("usage: -- PAIRS MODE [NONCE]")
   end
   local file = assert(io.open(path, "r"))
   for line in file:lines() do
      local key, id = line:match("^(%S+)%s+(%d+)$")
      if key then
         count = count + 1
         keys[count] = key
         ids[count] = id
      end
   end
   file:close()
   if count == 0 then
      error("no pairs in " .. path)
   end
   math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end

function request()
   local i = math.random(count)
   if mode == "get" then
      return wrk.format("GET", "/v1/customers/" .. ids[i], { ["Authorization"] = "Bearer " .. keys[i] })
   elseif mode == "post" or mode == "post-idem" then
      local headers = { ["Authorization"] = "Bearer " .. keys[i], ["Content-Type"] = "application/json" }
      if mode == "post-idem" then
         sent = sent + 1
         headers["Idempotency-Key"] = "bench-" .. nonce .. "-" .. (thread_id or 0) .. "-" .. sent
      end
      return wrk.format("POST", "/v1/customers", headers, POST_BODY)
   elseif mode == "raw" then
      return wrk.format("GET", "/raw/" .. ids[i])
   elseif mode == "sa" then
      return wrk.format("GET", "/sa/" .. ids[i])
   end
   error("unknown mode " .. tostring(mode))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,'
         .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
         .. '"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
