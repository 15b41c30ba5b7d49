#!/usr/bin/env python3
"""The client side of tests/twonode/run.sh: numbered scenarios against two Tessera nodes behind nginx.

Standard library only. Everything it needs comes from the environment run.sh sets: NGINX (the load
balancer's URL), NODE1 and NODE2 (the nodes' own URLs), NODE2_PID (the node killed in the last
scenario), TESSERA (the binary, for the CLI; the TESSERA_* settings are inherited). Prints one line
per scenario, `ok N - …` or `not ok N - … (why)`; run.sh counts them. Every loop is bounded.
"""

import html
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

NGINX = os.environ["NGINX"]
NODE1 = os.environ["NODE1"]
NODE2 = os.environ["NODE2"]
NODE2_PID = int(os.environ["NODE2_PID"])
TESSERA = os.environ["TESSERA"]
TIMEOUT = 5  # seconds, every HTTP request
REDIRECT = "http://127.0.0.1:9/callback"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body or b"null")

    def text(self):
        return self.body.decode("utf-8", "replace")


def request(method, url, headers=None, form=None, cookies=None, auth=None):
    """One HTTP request, no redirects followed; the response whatever its status."""
    headers = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if auth is not None:
        import base64

        pair = f"{urllib.parse.quote(auth[0], safe='')}:{urllib.parse.quote(auth[1], safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with OPENER.open(req, timeout=TIMEOUT) as res:
            out = Response(res.status, res.headers, res.read())
    except urllib.error.HTTPError as err:
        out = Response(err.code, err.headers, err.read())
    if cookies is not None:
        for line in out.headers.get_all("Set-Cookie") or []:
            name, _, rest = line.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
    return out


def cli(*args):
    """Runs `tessera ARGS --json` against the shared database; its JSON output."""
    done = subprocess.run(
        [TESSERA, *args, "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"tessera {' '.join(args)}: {done.stdout} {done.stderr}")
    return json.loads(done.stdout)


def hidden(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    return html.unescape(m.group(1)) if m else None


def hidden_inputs(page):
    return [
        (html.unescape(n), html.unescape(v))
        for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)
    ]


def poll(what, bound, probe, every=0.05):
    """Calls probe() every `every` s until it is true; the time it took, or raises after `bound` s."""
    start = time.monotonic()
    while True:
        if probe():
            return time.monotonic() - start
        if time.monotonic() - start >= bound:
            raise AssertionError(f"{what}: not seen within {bound} s")
        time.sleep(every)


def check(cond, why):
    if not cond:
        raise AssertionError(why)


RESULTS = []


def scenario(name):
    def wrap(fn):
        n = len(RESULTS) + 1
        start = time.monotonic()
        try:
            note = fn()
            RESULTS.append(True)
            extra = f" ({note})" if note else ""
            print(f"ok {n} - {name}{extra} [{time.monotonic() - start:.2f} s]", flush=True)
        except Exception as err:  # noqa: BLE001 - any failure is a failed scenario
            RESULTS.append(False)
            print(f"not ok {n} - {name} ({type(err).__name__}: {err})", flush=True)
        return fn

    return wrap


def token(client_id, secret, via=NGINX, **extra):
    res = request(
        "POST",
        f"{via}/oauth/token",
        form={"grant_type": "client_credentials", **extra},
        auth=(client_id, secret),
    )
    check(res.status == 200, f"token endpoint answered {res.status}: {res.text()}")
    return res.json()


def auth_check(base, credential):
    return request("GET", f"{base}/v1/auth/check", {"Authorization": f"Bearer {credential}"})


def kid_of(jwt):
    import base64

    head = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


def jwks_kids(base):
    return {k["kid"] for k in request("GET", f"{base}/.well-known/jwks.json").json()["keys"]}


# Fixtures, made with the CLI against the shared database (as an operator would).
SERVICE = cli(
    "client", "create", "--name", "Two-node service", "--grant-type", "client_credentials",
    "--scope", "read", "--introspect",
)
ADMIN_KEY = cli("key", "create", "--name", "Two-node admin", "--type", "sk")["key"]
READ_KEY = cli("key", "create", "--name", "Two-node reader", "--type", "rk", "--scope", "read")


@scenario("client_credentials token and introspection through nginx, from both nodes")
def _():
    served = set()
    for _ in range(4):
        res = request(
            "POST", f"{NGINX}/oauth/token", form={"grant_type": "client_credentials"},
            auth=(SERVICE["client_id"], SERVICE["client_secret"]),
        )
        check(res.status == 200, f"token: {res.status} {res.text()}")
        served.add(res.headers.get("X-Upstream"))
        access = res.json()["access_token"]
    check(len(served) == 2, f"round robin should use both nodes, saw {served}")
    res = request(
        "POST", f"{NGINX}/oauth/introspect", form={"token": access},
        auth=(SERVICE["client_id"], SERVICE["client_secret"]),
    )
    body = res.json()
    check(res.status == 200 and body.get("active") is True, f"introspection: {res.status} {body}")
    check(body.get("client_id") == SERVICE["client_id"], f"introspection names the client: {body}")
    for node in (NODE1, NODE2):
        res = auth_check(node, access)
        check(res.status == 200, f"{node} accepts the token at forward-auth: {res.status}")
    return f"upstreams {sorted(served)}"


@scenario("authorization code with PKCE (sign-in, consent) and refresh, through nginx")
def _():
    import base64
    import hashlib
    import secrets

    email, password = "two-node@example.com", "a long two-node passphrase"
    done = subprocess.run(
        [TESSERA, "user", "create", "--email", email, "--password-stdin", "--json"],
        input=password + "\n", capture_output=True, text=True, timeout=60, check=False,
    )
    check(done.returncode == 0, f"user create: {done.stdout} {done.stderr}")
    app = cli(
        "client", "create", "--name", "Two-node web app", "--public", "--redirect-uri", REDIRECT,
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--scope", "read", "--scope", "offline_access",
    )
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT,
        "scope": "read offline_access", "state": "s-42", "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
    })
    jar = {}
    res = request("GET", f"{NGINX}/oauth/authorize?{query}", cookies=jar)
    check(res.status == 303, f"signed out: to the login page, got {res.status}")
    login = urllib.parse.urljoin(NGINX, res.headers["Location"])
    page = request("GET", login, cookies=jar).text()
    form = {
        "email": email, "password": password, "csrf_token": hidden(page, "csrf_token"),
        "return_to": hidden(page, "return_to"),
    }
    check(form["csrf_token"] and form["return_to"], "the login form's hidden fields")
    res = request("POST", f"{NGINX}/login", form=form, cookies=jar)
    check(res.status == 303, f"sign-in: {res.status} {res.text()[:200]}")
    consent = request("GET", urllib.parse.urljoin(NGINX, res.headers["Location"]), cookies=jar)
    check(consent.status == 200, f"consent page: {consent.status}")
    res = request(
        "POST", f"{NGINX}/oauth/authorize",
        form=hidden_inputs(consent.text()) + [("decision", "allow")], cookies=jar,
    )
    check(res.status == 303, f"consent: {res.status} {res.text()[:200]}")
    back = urllib.parse.urlparse(res.headers["Location"])
    params = dict(urllib.parse.parse_qsl(back.query))
    check(params.get("state") == "s-42" and params.get("code"), f"redirect: {back.geturl()}")
    res = request("POST", f"{NGINX}/oauth/token", form={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT,
        "client_id": app["client_id"], "code_verifier": verifier,
    })
    check(res.status == 200, f"code redemption: {res.status} {res.text()}")
    tokens = res.json()
    check(tokens.get("refresh_token"), f"a refresh token: {tokens}")
    for _ in range(2):  # one refresh per node, round robin
        res = request("POST", f"{NGINX}/oauth/token", form={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": app["client_id"],
        })
        check(res.status == 200, f"refresh: {res.status} {res.text()}")
        tokens = res.json()
    res = auth_check(NGINX, tokens["access_token"])
    check(res.status == 200, f"the refreshed token at forward-auth: {res.status}")


@scenario("forward-auth recipe: an API key reaches the test API, a missing or bad key does not")
def _():
    secret = READ_KEY["key"]
    for _ in range(4):
        res = request("GET", f"{NGINX}/api/hello", {"X-API-Key": secret})
        check(res.status == 200 and res.text() == "hello", f"with the key: {res.status} {res.text()}")
    res = request("GET", f"{NGINX}/api/hello")
    check(res.status == 401, f"without a key: {res.status}")
    bad = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    res = request("GET", f"{NGINX}/api/hello", {"X-API-Key": bad})
    check(res.status == 401, f"with a bad key: {res.status}")
    writer = cli("key", "create", "--name", "Two-node writer", "--type", "rk", "--scope", "write")
    res = request("GET", f"{NGINX}/api/hello", {"X-API-Key": writer["key"]})
    check(res.status == 403, f"without the read scope: {res.status}")


@scenario("shared rate limit: a key limited to 10 gets exactly 10 through both nodes together")
def _():
    limited = cli(
        "key", "create", "--name", "Two-node limited", "--type", "rk", "--scope", "read",
        "--rate-limit", "10",
    )
    statuses, upstreams = [], set()
    for _ in range(16):
        res = auth_check(NGINX, limited["key"])
        statuses.append(res.status)
        upstreams.add(res.headers.get("X-Upstream"))
    allowed = statuses.count(200)
    check(len(upstreams) == 2, f"both nodes answered: {upstreams}")
    check(allowed == 10 and statuses.count(429) == 6, f"10 allowed then 429, got {statuses}")
    return f"{allowed} allowed of 16 across {len(upstreams)} nodes"


@scenario("signing-key rotation (tessera signing-key rotate --now) seen by both nodes within 1 s")
def _():
    before = jwks_kids(NODE2)
    kid = cli("signing-key", "rotate", "--now")["kid"]
    check(kid not in before, "a new kid")
    took = max(poll(f"{node} publishes {kid}", 1.0, lambda n=node: kid in jwks_kids(n))
               for node in (NODE1, NODE2))
    # Tokens from either node are signed by the new key and verify on both nodes.
    for via in (NODE1, NODE2):
        access = token(SERVICE["client_id"], SERVICE["client_secret"], via=via)["access_token"]
        check(kid_of(access) == kid, f"{via} signs with the new key")
        for node in (NODE1, NODE2):
            res = auth_check(node, access)
            check(res.status == 200, f"{node} verifies a token of {via}: {res.status}")
    return f"published by both after {took * 1000:.0f} ms"


@scenario("an API key revoked on node 1 is refused by node 2 within 1 s")
def _():
    key = cli("key", "create", "--name", "Two-node revoked", "--type", "rk", "--scope", "read")
    for node in (NODE1, NODE2, NODE1, NODE2):  # cached on both
        check(auth_check(node, key["key"]).status == 200, f"{node} accepts the key")
    res = request("POST", f"{NODE1}/v1/keys/{key['id']}/revoke",
                  {"Authorization": f"Bearer {ADMIN_KEY}"})
    check(res.status == 200, f"revocation on node 1: {res.status} {res.text()}")
    check(auth_check(NODE1, key["key"]).status == 401, "node 1 refuses at once")
    took = poll("node 2 refuses", 1.0, lambda: auth_check(NODE2, key["key"]).status == 401)
    return f"node 2 refused after {took * 1000:.0f} ms"


@scenario("node 2 killed (SIGKILL) under load: no client-visible errors beyond those in flight")
def _():
    workers, total = 4, 400
    lock = threading.Lock()
    counts = {"done": 0, "bad": [], "upstreams": {}}
    killed = threading.Event()
    secret = READ_KEY["key"]

    def work():
        while True:
            with lock:
                if counts["done"] >= total:
                    return
                counts["done"] += 1
                n = counts["done"]
            if n % 2:
                res = request("GET", f"{NGINX}/api/hello", {"X-API-Key": secret})
                good = res.status == 200 and res.text() == "hello"
            else:
                try:
                    res = request(
                        "POST", f"{NGINX}/oauth/token", form={"grant_type": "client_credentials"},
                        auth=(SERVICE["client_id"], SERVICE["client_secret"]),
                    )
                    good = res.status == 200
                except OSError as err:
                    res, good = Response(0, {}, str(err).encode()), False
            with lock:
                up = res.headers.get("X-Upstream") if res.status else None
                counts["upstreams"][up] = counts["upstreams"].get(up, 0) + 1
                if not good:
                    counts["bad"].append((n, res.status))
                if n == total // 4 and not killed.is_set():
                    os.kill(NODE2_PID, signal.SIGKILL)
                    killed.set()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    check(not any(t.is_alive() for t in threads), "the load finished within 90 s")
    check(killed.is_set(), "node 2 was killed")
    bad = counts["bad"]
    check(len(bad) <= workers, f"at most {workers} errors (requests in flight), got {bad}")
    return (f"{total} requests in {time.monotonic() - start:.1f} s, {len(bad)} not 2xx "
            f"(allowed {workers}; request number and status: {bad}), "
            f"by upstream {counts['upstreams']}")


passed = RESULTS.count(True)
failed = RESULTS.count(False)
print(f"scenarios: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
