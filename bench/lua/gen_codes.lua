-- Code-pool generator (not a measurement): GET /oauth/authorize?... with a signed-in session cookie
-- for a client the user has already consented to answers 303 with ?code=... directly. Each thread
-- appends the codes it receives to OUT_PREFIX.<thread id>, one per line, and stops after COUNT codes.
--
--   wrk -t2 -c8 -d60s -s gen_codes.lua 'URL/oauth/authorize?response_type=code&...' -- OUT_PREFIX COUNT
-- Env: BENCH_COOKIE (the Cookie header value). done() prints "BENCH-LUA codes=N bad=N".

local threads, counter = {}, 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  out = assert(io.open(assert(args[1], "out prefix") .. "." .. id, "w"))
  out:setvbuf("line")
  want = tonumber(args[2] or "1000")
  codes, bad = 0, 0
  wrk.headers["Cookie"] = assert(os.getenv("BENCH_COOKIE"), "BENCH_COOKIE is not set")
end

function response(status, headers, body)
  local loc = headers["location"] or headers["Location"]
  local code = loc and loc:match("[?&]code=([^&]+)")
  if (status == 302 or status == 303) and code then
    if codes < want then
      out:write(code, "\n")
      codes = codes + 1
    end
    if codes >= want then wrk.thread:stop() end
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local c, b = 0, 0
  for _, thread in ipairs(threads) do
    c = c + (thread:get("codes") or 0)
    b = b + (thread:get("bad") or 0)
  end
  io.write(string.format("BENCH-LUA codes=%d bad=%d\n", c, b))
end
