-- refresh_token rotation: POST /oauth/token grant_type=refresh_token&refresh_token=<token>.
-- Each request consumes one refresh token and the response carries its successor. Reusing a refresh
-- token revokes its whole family, so a token is never sent twice: every thread keeps its own pool;
-- request() pops a token, response() parses the new refresh_token and pushes it. A connection has at
-- most one request in flight, so a pool that starts with more tokens than the thread has connections
-- never runs dry unless responses fail (each failure loses one token).
--
--   wrk -t2 -c32 -s refresh.lua URL/oauth/token -- POOL_FILE THREADS
-- POOL_FILE: one refresh token per line (each from its own authorization-code exchange); thread i
-- takes lines i, i+THREADS, ... BENCH_BASIC: the client's Authorization header value.
-- done() prints "BENCH-LUA ok=N bad=N empty=N unparsed=N": bad = non-200 answers (400 invalid_grant
-- included), empty = requests sent with no token left (they fail and count as bad too).

local threads, counter = {}, 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = assert(args[1], "pool file"), tonumber(args[2] or "1")
  pool = {}
  local i = 0
  for line in io.lines(path) do
    if line ~= "" then
      if i % nthreads == id - 1 then pool[#pool + 1] = line end
      i = i + 1
    end
  end
  ok, bad, empty, unparsed = 0, 0, 0, 0
  req_headers = {
    ["Authorization"] = assert(os.getenv("BENCH_BASIC"), "BENCH_BASIC is not set"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
end

function request()
  local token = table.remove(pool)
  if token == nil then
    empty = empty + 1
    token = "pool-exhausted"
  end
  return wrk.format("POST", nil, req_headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  if status == 200 then
    local rt = body:match('"refresh_token"%s*:%s*"([^"]+)"')
    if rt then
      ok = ok + 1
      pool[#pool + 1] = rt
    else
      unparsed = unparsed + 1
    end
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, bad = 0, empty = 0, unparsed = 0 }
  for _, thread in ipairs(threads) do
    for k in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
  end
  io.write(string.format("BENCH-LUA ok=%d bad=%d empty=%d unparsed=%d\n", t.ok, t.bad, t.empty, t.unparsed))
end
