-- wrk script: POST /transactions with realistic bodies, as a cheap C client to compare
-- `ledgerguard load` against (Debian package `wrk`).
--
--   LEDGERGUARD_API_KEY="$(cat .ledgerguard/demo-api-key)" \
--     wrk -t2 -c50 -d30s --latency -s benchmarks/wrk/post_transactions.lua http://127.0.0.1:8000
--
-- LEDGERGUARD_API_KEY may hold several keys separated by commas (e.g. `paste -sd, <state
-- dir>/bench-api-keys`): requests take them in turn, so the per-key rate limit does not throttle a
-- run that stands in for many clients. Bodies follow ledgerguard.load.generator: USD/EUR/GBP/JPY
-- with their decimals, log-normal amounts, 1 % above 10,000 USD, optional terminal/merchant ids.
-- Non-2xx answers (429, 503, ...) are counted by wrk as "Non-2xx or 3xx responses".

local currencies = {
  -- code, cumulative share, decimals, rough USD per unit
  { "USD", 0.55, 2, 1.0 },
  { "EUR", 0.80, 2, 1.08 },
  { "GBP", 0.92, 2, 1.27 },
  { "JPY", 1.00, 0, 0.0067 },
}
local keys = {}
local next_key = 1
local counter = 0

local function split_keys(value)
  for key in string.gmatch(value or "", "[^,%s]+") do
    keys[#keys + 1] = key
  end
end

-- Box-Muller: a standard normal draw
local function normal()
  local u1, u2 = math.random(), math.random()
  return math.sqrt(-2 * math.log(u1 > 0 and u1 or 1e-12)) * math.cos(2 * math.pi * u2)
end

local function amount_text(usd, currency)
  local amount = usd / currency[4]
  if currency[3] == 0 then
    return string.format("%d", math.max(1, math.floor(amount + 0.5)))
  end
  local cents = math.max(1, math.floor(amount * 100 + 0.5))
  return string.format("%d.%02d", math.floor(cents / 100), cents % 100)
end

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0))
  split_keys(os.getenv("LEDGERGUARD_API_KEY"))
  if #keys == 0 then
    error("set LEDGERGUARD_API_KEY (e.g. $(cat .ledgerguard/demo-api-key))")
  end
  next_key = (thread_id or 1) % #keys + 1
end

function request()
  local pick, currency = math.random(), currencies[#currencies]
  for _, c in ipairs(currencies) do
    if pick <= c[2] then
      currency = c
      break
    end
  end
  local usd
  if math.random() < 0.01 then
    usd = 11000 * math.exp(math.random() * math.log(60000 / 11000))
  else
    usd = math.exp(math.log(35) + 1.2 * normal())
  end
  local parts = {
    string.format('{"user_id":%d,"amount":"%s","currency":"%s"',
      1000000 + math.floor(10000 * math.random() ^ 2), amount_text(usd, currency), currency[1]),
  }
  if math.random() < 0.7 then
    parts[#parts + 1] = string.format(',"terminal_id":%d', math.random(1, 2000))
  end
  if math.random() < 0.8 then
    parts[#parts + 1] = string.format(',"merchant_id":%d', math.random(1, 500))
  end
  parts[#parts + 1] = "}"
  local key = keys[next_key]
  next_key = next_key % #keys + 1
  return wrk.format("POST", "/transactions",
    { ["Content-Type"] = "application/json", ["X-API-Key"] = key }, table.concat(parts))
end

-- one JSON line at the end, for scripts (wrk's own summary is printed before it)
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    '{"tool":"wrk","requests":%d,"rps":%.1f,"p50_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
    '"non_2xx":%d,"socket_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status,
    e.connect + e.read + e.write, e.timeout))
end
