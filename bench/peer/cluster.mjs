// The benchmark peer on several processes: node's cluster module forks server.mjs WORKERS times
// (default 2); the workers share the port (the primary hands out connections, round-robin, as
// node's default on Linux) and one signing key, made here. Same env as server.mjs (PORT, ALG,
// FORMAT). Use FORMAT=jwt: the in-memory adapter is per process, so an opaque token is known
// only to the worker that issued it.
//
// Prints `peer ready http://127.0.0.1:PORT (N processes)` once every worker listens; SIGTERM or
// SIGINT stops the workers, then the primary.
import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const PORT = Number.parseInt(process.env.PORT || '18282', 10);
const ALG = process.env.ALG || 'EdDSA';
const WORKERS = Number.parseInt(process.env.WORKERS || '2', 10);

if (!(WORKERS >= 1)) {
  console.error(`WORKERS must be a positive number, got ${process.env.WORKERS}`);
  process.exit(2);
}

const kinds = {
  EdDSA: ['ed25519', {}],
  ES256: ['ec', { namedCurve: 'P-256' }],
  RS256: ['rsa', { modulusLength: 2048 }],
};
if (!kinds[ALG]) {
  console.error(`ALG must be EdDSA, ES256 or RS256, got ${ALG}`);
  process.exit(2);
}
const { privateKey } = generateKeyPairSync(...kinds[ALG]);
const key = {
  ...privateKey.export({ format: 'jwk' }), kid: `bench-${ALG.toLowerCase()}`, alg: ALG, use: 'sig',
};

cluster.setupPrimary({ exec: fileURLToPath(new URL('server.mjs', import.meta.url)) });
let listening = 0;
let closing = false;
for (let i = 0; i < WORKERS; i += 1) cluster.fork({ PEER_KEY: JSON.stringify(key) });
cluster.on('listening', () => {
  listening += 1;
  if (listening === WORKERS) console.log(`peer ready http://127.0.0.1:${PORT} (${WORKERS} processes)`);
});
cluster.on('exit', (worker, code) => {
  if (!closing) {
    console.error(`peer worker ${worker.process.pid} exited with ${code}`);
    process.exit(1);
  }
  if (Object.keys(cluster.workers).length === 0) process.exit(0);
});

function stop() {
  if (closing) return;
  closing = true;
  for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
