-- wrk script: POST a stream of distinct, eligible referrals (contract §2).
-- args: programme, run tag, bearer key ("-" for none), local authority, pace_ms (0 = flat out),
--       serial base (default 0)
-- Every request is a new person (own family name and NINO), so each is accepted: the
-- realistic path through eligibility, the duplicate check and the outbox. NINOs derive
-- from (serial base + thread * 100000 + request number): runs against one programme must
-- pass serial bases at least 400000 apart (two threads), or a later run's people are
-- the earlier run's, and every referral comes back a duplicate.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  programme = args[1]
  run = args[2]
  key = args[3]
  area = args[4] or "Wigan"
  pace = tonumber(args[5] or "0")
  base = tonumber(args[6] or "0")
  n = 0
  headers = { ["Content-Type"] = "application/json" }
  if key ~= nil and key ~= "-" then
    headers["Authorization"] = "Bearer " .. key
  end
  -- NINO prefixes the contract allows (first letter not D,F,I,Q,U,V; second not D,F,I,O,Q,U,V)
  prefixes = { "AB", "CE", "EH", "GJ", "HK", "JL", "KM", "LP", "MR", "PS", "RT", "SW", "TX", "WY", "YZ" }
  template = '{"external_ref":"%s","programme":"%s","referred_on":"2024-02-03",'
    .. '"person":{"given_name":"Sam","family_name":"Bench%s","date_of_birth":"1981-05-17",'
    .. '"nino":"%s","postcode":"WN1 1AA","local_authority":"%s","gender":"female",'
    .. '"disability":false,"phone":"07700900123"},'
    .. '"circumstances":{"benefit":"ESA","months_out_of_work":30,"criminal_justice":"none",'
    .. '"treatment":"none"},"consent":{"given":true,"recorded_on":"2024-02-03"},'
    .. '"notes":"load test"}'
end

function delay()
  return pace
end

function request()
  n = n + 1
  local serial = base + tid * 100000 + n
  local ref = string.format("%s-%d-%d", run, tid, n)
  local prefix = prefixes[math.floor(serial / 1000000) % #prefixes + 1]
  local nino = string.format("%s%06d%s", prefix, serial % 1000000, "ABCD"):sub(1, 9)
  local body = string.format(template, ref, programme, ref, nino, area)
  return wrk.format("POST", "/v1/referrals", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,'
    .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
