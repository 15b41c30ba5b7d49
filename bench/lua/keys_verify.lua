-- POST /v1/keys/verify {"key": "$BENCH_KEY"} (JSON). Static request.
wrk.method = "POST"
wrk.body = '{"key":"' .. assert(os.getenv("BENCH_KEY"), "BENCH_KEY is not set") .. '"}'
wrk.headers["Content-Type"] = "application/json"
