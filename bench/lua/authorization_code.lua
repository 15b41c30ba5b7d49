-- Authorization-code redemption: POST /oauth/token grant_type=authorization_code with code,
-- redirect_uri and code_verifier (PKCE S256; every code of the pool was issued for the same verifier).
-- A code is single-use, so each thread pops codes from its own share of a pre-generated pool.
--
--   wrk -t2 -c32 -s authorization_code.lua URL/oauth/token -- POOL_FILE THREADS
-- POOL_FILE: one code per line; thread i takes lines i, i+THREADS, ...
-- Env: BENCH_BASIC (client Authorization header value), BENCH_REDIRECT_URI (form-encoded already),
-- BENCH_VERIFIER. When a thread's pool is empty it still sends a request (with code "pool-exhausted",
-- answered 400), so a pool that is too small shows up as errors, never as silently fewer requests.
-- done() prints "BENCH-LUA ok=N bad=N empty=N left=N".

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
  ok, bad, empty, left = 0, 0, 0, #pool
  req_headers = {
    ["Authorization"] = assert(os.getenv("BENCH_BASIC"), "BENCH_BASIC is not set"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
  body_tail = "&redirect_uri=" .. assert(os.getenv("BENCH_REDIRECT_URI"), "BENCH_REDIRECT_URI is not set")
    .. "&code_verifier=" .. assert(os.getenv("BENCH_VERIFIER"), "BENCH_VERIFIER is not set")
end

function request()
  local code = table.remove(pool)
  if code == nil then
    empty = empty + 1
    code = "pool-exhausted"
  end
  left = #pool
  return wrk.format("POST", nil, req_headers, "grant_type=authorization_code&code=" .. code .. body_tail)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local t = { ok = 0, bad = 0, empty = 0, left = 0 }
  for _, thread in ipairs(threads) do
    for k in pairs(t) do t[k] = t[k] + (thread:get(k) or 0) end
  end
  io.write(string.format("BENCH-LUA ok=%d bad=%d empty=%d left=%d\n", t.ok, t.bad, t.empty, t.left))
end
