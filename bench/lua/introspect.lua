-- POST <introspection endpoint> token=<access token>, the caller authenticating with client_secret_basic.
-- Tessera: /oauth/introspect with a JWT access token; peer: /token/introspection with an opaque token.
-- BENCH_BASIC: Authorization header value; BENCH_TOKEN: the token to introspect. Static request.
wrk.method = "POST"
wrk.body = "token=" .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = assert(os.getenv("BENCH_BASIC"), "BENCH_BASIC is not set")
