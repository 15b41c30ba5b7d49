// Benchmark peer: node-oidc-provider configured for the client_credentials
// load used against Tessera. See README.md in this folder.
//
// Env:
//   PORT    listen port on 127.0.0.1 (default 18282)
//   ALG     JWS alg for JWT access tokens: EdDSA (default) | ES256 | RS256
//   FORMAT  access token format: jwt (default) | opaque
//           (oidc-provider refuses to introspect JWT access tokens, so the
//           introspection scenario needs FORMAT=opaque)
//   PEER_KEY  the signing key as a JWK (set by cluster.mjs for its workers; otherwise one is
//           generated here)
// Several processes on one port: cluster.mjs (WORKERS=N), which forks this file N times.
import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const PORT = Number.parseInt(process.env.PORT || '18282', 10);
const HOST = '127.0.0.1';
const ALG = process.env.ALG || 'EdDSA';
const FORMAT = (process.env.FORMAT || 'jwt').toLowerCase();
const ISSUER = `http://${HOST}:${PORT}`;
const AUDIENCE = 'https://api.bench';
const SCOPE = 'read write';
const TTL = 15 * 60; // same as Tessera's default access_token_ttl

if (!['jwt', 'opaque'].includes(FORMAT)) {
  console.error(`FORMAT must be jwt or opaque, got ${FORMAT}`);
  process.exit(2);
}

function signingKey(alg) {
  let pair;
  switch (alg) {
    case 'EdDSA':
      pair = generateKeyPairSync('ed25519');
      break;
    case 'ES256':
      pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      break;
    case 'RS256':
      pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      break;
    default:
      console.error(`ALG must be EdDSA, ES256 or RS256, got ${alg}`);
      process.exit(2);
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
  return {
    ...jwk, kid: `bench-${alg.toLowerCase()}`, alg, use: 'sig',
  };
}

// exactly one signing key, for the chosen alg (the cluster's primary makes it for all workers)
const keys = [process.env.PEER_KEY ? JSON.parse(process.env.PEER_KEY) : signingKey(ALG)];

const resourceServer = {
  scope: SCOPE,
  audience: AUDIENCE,
  accessTokenTTL: TTL,
  accessTokenFormat: FORMAT,
  ...(FORMAT === 'jwt' ? { jwt: { sign: { alg: ALG } } } : {}),
};

const configuration = {
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-0123456789',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: SCOPE,
    // never used (no response types), but client metadata validation requires
    // the keystore to support it; defaults to RS256 otherwise
    id_token_signed_response_alg: ALG,
  }],
  scopes: ['openid', 'offline_access', 'read', 'write'],
  jwks: { keys },
  cookies: {
    // fixed, random-looking keys so the provider does not run with dev keys
    keys: [
      'c1b0f3e5a7d94f2e8b6a0d3c5e7f9a1b',
      '5d8e2a4c6f0b1d3e7a9c2e4f6b8d0a1c',
    ],
  },
  ttl: {
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || TTL,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // same rule as the library default, defined here so it does not log a
      // "you SHOULD change it" notice on first use
      allowedPolicy: async (ctx, client, token) => !(
        client.clientAuthMethod === 'none' && token.clientId !== ctx.oidc.client.clientId
      ),
    },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // a request without `resource` gets the benchmark resource server, so
      // `grant_type=client_credentials&scope=read` yields the configured format
      defaultResource: async () => AUDIENCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator === AUDIENCE) return resourceServer;
        throw new errors.InvalidTarget();
      },
    },
  },
  // no CORS needed for the benchmark; avoids the default's log notice
  clientBasedCORS: () => false,
};

const provider = new Provider(ISSUER, configuration);
provider.proxy = false;

const server = provider.listen(PORT, HOST, () => {
  // in a cluster the primary says when every worker listens
  if (!cluster.isWorker) console.log(`peer ready ${ISSUER}`);
});

let closing = false;
function shutdown() {
  if (closing) return;
  closing = true;
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
