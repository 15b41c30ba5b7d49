// A browser without a browser, for driving Tessera's sign-in and consent pages over HTTP: fetch with
// redirects left to the caller, a tiny cookie jar kept per origin (Tessera's cookies are `Secure`
// when the issuer is https; they are sent back only to an https origin), and the hidden inputs of
// a page's form read from its HTML.

/** Cookies per origin: origin -> Map(name -> { value, secure }). */
export class Agent {
  #jar = new Map();

  /** The value of cookie `name` for `origin` (a URL or an origin string), or undefined. */
  cookie(origin, name) {
    return this.#jar.get(new URL(origin).origin)?.get(name)?.value;
  }

  /** fetch(url, init) with this agent's cookies; never follows redirects (each 3xx is returned). */
  async fetch(url, init = {}) {
    const target = new URL(url);
    const headers = new Headers(init.headers);
    const cookies = this.#jar.get(target.origin);
    if (cookies?.size) {
      const https = target.protocol === "https:";
      const pairs = [...cookies].filter(([, c]) => https || !c.secure).map(([n, c]) => `${n}=${c.value}`);
      if (pairs.length) headers.set("cookie", pairs.join("; "));
    }
    const response = await fetch(target, { ...init, headers, redirect: "manual" });
    this.#store(target, response.headers.getSetCookie());
    return response;
  }

  #store(target, setCookies) {
    if (!setCookies.length) return;
    let cookies = this.#jar.get(target.origin);
    if (!cookies) this.#jar.set(target.origin, (cookies = new Map()));
    for (const line of setCookies) {
      const [pair, ...attributes] = line.split(";").map((s) => s.trim());
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let expired = false;
      let secure = false;
      for (const attribute of attributes) {
        const [key, v = ""] = attribute.split("=");
        switch (key.toLowerCase()) {
          case "max-age":
            if (Number(v) <= 0) expired = true;
            break;
          case "expires":
            if (Date.parse(v) <= Date.now()) expired = true;
            break;
          case "secure":
            secure = true;
            break;
        }
      }
      if (secure && target.protocol !== "https:") continue; // a Secure cookie over http is refused
      if (expired) cookies.delete(name);
      else cookies.set(name, { value, secure });
    }
  }
}

const entities = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, e) => {
    if (e[0] === "#") {
      const code = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return entities[e.toLowerCase()] ?? whole;
  });
}

function attribute(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, "i"));
  return m ? unescapeHtml(m[2] ?? m[3]) : undefined;
}

/** The forms of an HTML page: [{ method, action, fields: [[name, value]] }] (hidden inputs only). */
export function forms(html) {
  const out = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const fields = [];
    for (const input of m[2].matchAll(/<input\b[^>]*>/gi)) {
      if ((attribute(input[0], "type") ?? "").toLowerCase() !== "hidden") continue;
      const name = attribute(input[0], "name");
      if (name) fields.push([name, attribute(input[0], "value") ?? ""]);
    }
    out.push({
      method: (attribute(m[1], "method") ?? "get").toLowerCase(),
      action: attribute(m[1], "action") ?? "",
      fields,
    });
  }
  return out;
}

/** The one form of `html` posting to `action`, or an error naming the page. */
export function formTo(html, action) {
  const found = forms(html).filter((f) => f.method === "post" && f.action === action);
  if (found.length !== 1) {
    throw new Error(`expected one form posting to ${action}, found ${found.length} in:\n${html.slice(0, 2000)}`);
  }
  return found[0];
}

/** Where a 3xx response points, resolved against the URL it answered. */
export function location(response, base) {
  const to = response.headers.get("location");
  if (!to) throw new Error(`${response.status} without a Location header`);
  return new URL(to, base);
}

/**
 * Follows an authorization request the way a user would: signs in on Tessera's page when asked,
 * allows on the consent page when shown, and stops at the first redirect to `redirectUri`, which
 * it returns (the URL the relying party's callback would be called with). Every other answer fails.
 */
export async function authorize(agent, authorizationUrl, { redirectUri, email, password }) {
  let current = new URL(authorizationUrl);
  let response = await agent.fetch(current);
  const seen = [];
  for (let step = 0; step < 10; step++) {
    seen.push(`${response.status} ${current.pathname}`);
    if (response.status === 302 || response.status === 303) {
      const next = location(response, current);
      if (next.href.startsWith(redirectUri + "?") || next.href === redirectUri) return next;
      current = next;
      response = await agent.fetch(current);
      continue;
    }
    const body = await response.text();
    if (response.status !== 200) {
      throw new Error(`unexpected ${response.status} at ${current.href} (after ${seen.join(" -> ")}):\n${body.slice(0, 2000)}`);
    }
    const all = forms(body).filter((f) => f.method === "post");
    let form;
    let extra;
    if (all.some((f) => f.action === "/login")) {
      form = formTo(body, "/login");
      extra = [["email", email], ["password", password]];
    } else if (all.some((f) => f.action === "/oauth/authorize")) {
      form = formTo(body, "/oauth/authorize");
      extra = [["decision", "allow"]];
    } else {
      throw new Error(`neither a sign-in nor a consent page at ${current.href}:\n${body.slice(0, 2000)}`);
    }
    current = new URL(form.action, current);
    response = await agent.fetch(current, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams([...form.fields, ...extra]).toString(),
    });
  }
  throw new Error(`no redirect to ${redirectUri} after ${seen.join(" -> ")}`);
}
