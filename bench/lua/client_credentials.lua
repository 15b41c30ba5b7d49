-- POST <token endpoint> grant_type=client_credentials&scope=read, client_secret_basic.
-- The same request for Tessera (/oauth/token) and the oidc-provider peer (/token): the path comes
-- from the URL given to wrk. BENCH_BASIC is the whole Authorization header value ("Basic ...").
-- Static request: no per-request Lua (the run measures the server, not the script).
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = assert(os.getenv("BENCH_BASIC"), "BENCH_BASIC is not set")
