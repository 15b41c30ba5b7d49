// Tessera as an OpenID Provider for the strict relying-party library openid-client (v6), with its
// default checks only: nothing here relaxes one (no allowInsecureRequests, no custom fetch, no
// clock tolerance, no skipped state, nonce or PKCE check). The issuer is https (nginx in front of
// Tessera, see run.sh); the sign-in and consent pages are driven over HTTP by ./agent.mjs.
//
// The environment comes from run.sh: OIDC_ISSUER, USER_EMAIL, USER_PASSWORD, REDIRECT_URI,
// POST_LOGOUT_REDIRECT_URI, PUBLIC_CLIENT_ID, BASIC_CLIENT_ID, BASIC_CLIENT_SECRET, ES256_CLIENT_ID,
// EDDSA_CLIENT_ID.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as client from "openid-client";

import { Agent, authorize, location } from "./agent.mjs";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through tests/oidc/run.sh`);
  return value;
}

const issuer = new URL(env("OIDC_ISSUER"));
const user = { email: env("USER_EMAIL"), password: env("USER_PASSWORD") };
const redirectUri = env("REDIRECT_URI");
const postLogoutRedirectUri = env("POST_LOGOUT_REDIRECT_URI");
const scope = "openid profile email offline_access";

/**
 * The authorization code flow as a relying party runs it: PKCE (S256), nonce and state made by the
 * library, the user signed in and consenting on Tessera's pages (through `agent`), the code
 * exchanged by authorizationCodeGrant with every check it makes by default.
 */
async function codeFlow(config, agent) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: codeChallenge,
    code_challenge_method: "S256",
    nonce,
    state,
  });
  const callback = await authorize(agent, authorizationUrl, { redirectUri, ...user });
  assert.equal(callback.searchParams.get("state"), state, "the redirect carries the state sent");
  assert.equal(callback.searchParams.get("iss"), issuer.href.replace(/\/$/, ""), "RFC 9207 iss in the redirect");
  assert.ok(callback.searchParams.get("code"), "the redirect carries a code");
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier,
    expectedNonce: nonce,
    expectedState: state,
  });
  return { tokens, nonce };
}

// The public client's run, shared by the tests below (they run in order, in this file).
const rp = { agent: new Agent() };

test("discovery: the library accepts Tessera's metadata at the https issuer", async () => {
  rp.config = await client.discovery(issuer, env("PUBLIC_CLIENT_ID"), undefined, client.None());
  const metadata = rp.config.serverMetadata();
  assert.equal(new URL(metadata.issuer).href, issuer.href);
  assert.equal(metadata.userinfo_endpoint, new URL("/oauth/userinfo", issuer).href);
  assert.equal(metadata.end_session_endpoint, new URL("/oauth/logout", issuer).href);
  assert.ok(metadata.id_token_signing_alg_values_supported.includes("RS256"), "RS256 is supported");
  assert.ok(metadata.code_challenge_methods_supported.includes("S256"), "PKCE S256 is advertised");
  assert.ok(metadata.supportsPKCE(), "the library sees PKCE support");
  assert.equal(metadata.authorization_response_iss_parameter_supported, true, "RFC 9207 is advertised");
});

test("code flow: sign-in and consent pages, then authorizationCodeGrant with PKCE, nonce and state", async () => {
  assert.ok(rp.config, "discovery ran");
  const { tokens, nonce } = await codeFlow(rp.config, rp.agent);
  assert.ok(tokens.access_token, "an access token");
  assert.equal(tokens.token_type.toLowerCase(), "bearer");
  assert.ok(tokens.id_token, "an ID token");
  assert.ok(tokens.refresh_token, "a refresh token (offline_access)");
  const claims = tokens.claims();
  assert.ok(claims.sub, "sub");
  assert.equal(claims.nonce, nonce, "the nonce sent");
  assert.equal(claims.aud, env("PUBLIC_CLIENT_ID"));
  assert.equal(typeof claims.auth_time, "number", "auth_time");
  assert.ok(claims.sid, "sid");
  assert.ok(claims.at_hash, "at_hash");
  assert.ok(rp.agent.cookie(issuer, "tessera_session"), "the agent holds a session cookie");
  rp.tokens = tokens;
  rp.claims = claims;
});

test("UserInfo: fetchUserInfo with the access token and the expected subject returns the email", async () => {
  assert.ok(rp.tokens, "the code flow ran");
  const info = await client.fetchUserInfo(rp.config, rp.tokens.access_token, rp.claims.sub);
  assert.equal(info.sub, rp.claims.sub);
  assert.equal(info.email, user.email);
});

test("refresh: refreshTokenGrant returns a new ID token for the same user and session", async () => {
  assert.ok(rp.tokens, "the code flow ran");
  const refreshed = await client.refreshTokenGrant(rp.config, rp.tokens.refresh_token);
  assert.ok(refreshed.access_token, "a new access token");
  assert.ok(refreshed.id_token, "a new ID token");
  assert.notEqual(refreshed.id_token, rp.tokens.id_token);
  const claims = refreshed.claims();
  // OpenID Connect Core 1.0 §12.2: the same iss, sub, aud, azp and auth_time as the original.
  assert.equal(claims.sub, rp.claims.sub);
  assert.equal(claims.iss, rp.claims.iss);
  assert.deepEqual(claims.aud, rp.claims.aud);
  assert.equal(claims.azp, rp.claims.azp);
  assert.equal(claims.auth_time, rp.claims.auth_time);
  rp.idTokenHint = refreshed.id_token;
  rp.refreshed = refreshed;
});

test("logout: buildEndSessionUrl signs the session out and returns to post_logout_redirect_uri with state", async () => {
  assert.ok(rp.idTokenHint, "the refresh ran");
  const state = client.randomState();
  const endSession = client.buildEndSessionUrl(rp.config, {
    id_token_hint: rp.idTokenHint,
    post_logout_redirect_uri: postLogoutRedirectUri,
    state,
  });
  assert.equal(endSession.origin + endSession.pathname, new URL("/oauth/logout", issuer).href);
  const response = await rp.agent.fetch(endSession);
  assert.equal(response.status, 303, await response.clone().text());
  const back = location(response, endSession);
  assert.equal(back.origin + back.pathname, postLogoutRedirectUri);
  assert.equal(back.searchParams.get("state"), state, "the state sent");
  // Signed out: the account page sends the agent to the sign-in page.
  const account = await rp.agent.fetch(new URL("/account", issuer));
  assert.equal(account.status, 303);
  assert.equal(location(account, issuer).pathname, "/login");
});

test("confidential client (client_secret_basic): code flow, UserInfo and refresh", async () => {
  const clientId = env("BASIC_CLIENT_ID");
  const config = await client.discovery(
    issuer,
    clientId,
    undefined,
    client.ClientSecretBasic(env("BASIC_CLIENT_SECRET")),
  );
  const agent = new Agent();
  const { tokens, nonce } = await codeFlow(config, agent);
  const claims = tokens.claims();
  assert.equal(claims.nonce, nonce);
  assert.equal(claims.aud, clientId);
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.email, user.email);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.equal(refreshed.claims().sub, claims.sub);
});

for (const [alg, variable] of [
  ["ES256", "ES256_CLIENT_ID"],
  ["EdDSA", "EDDSA_CLIENT_ID"],
]) {
  test(`ID tokens signed with ${alg} (id_token_signed_response_alg: ${alg}): code flow and refresh`, async () => {
    const clientId = env(variable);
    const config = await client.discovery(
      issuer,
      clientId,
      { id_token_signed_response_alg: alg },
      client.None(),
    );
    assert.ok(config.serverMetadata().id_token_signing_alg_values_supported.includes(alg), `${alg} is advertised`);
    const agent = new Agent();
    const { tokens, nonce } = await codeFlow(config, agent);
    const header = JSON.parse(Buffer.from(tokens.id_token.split(".")[0], "base64url").toString());
    assert.equal(header.alg, alg);
    const claims = tokens.claims();
    assert.equal(claims.nonce, nonce);
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.equal(refreshed.claims().sub, claims.sub);
  });
}
