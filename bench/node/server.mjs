// oauth2-mock-server started the way bench/compare.py starts idprop: one
// RS256 key (the same committed fixture key, so neither generates RSA keys
// at start-up), listening on loopback; prints "ready" when listening.
import { readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { OAuth2Server } from 'oauth2-mock-server';

const port = Number(process.argv[2] || 8090);
const pem = readFileSync(new URL('../../fixtures/keys/jwt-key-1.pem', import.meta.url), 'utf8');
const jwk = createPrivateKey(pem).export({ format: 'jwk' });
const server = new OAuth2Server();
await server.issuer.keys.add({ ...jwk, kid: 'key-1', alg: 'RS256', use: 'sig' });
await server.start(port, '127.0.0.1');
console.log('ready');
