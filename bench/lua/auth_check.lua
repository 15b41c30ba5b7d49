-- GET /v1/auth/check with "Authorization: Bearer $BENCH_TOKEN": an API key, a JWT access token, or
-- (the bad-key scenario) a well-formed key whose checksum is wrong. Static request; the harness
-- counts unexpected statuses from wrk's Non-2xx line and from the server's /metrics counters.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set")
