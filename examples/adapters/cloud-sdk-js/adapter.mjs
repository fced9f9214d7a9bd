// idprop adapter (protocol v1, consumer role) around the SAP Cloud SDK for
// JavaScript: every `call` is `executeHttpRequest` with the destination name
// and the user's JWT, against the stack's VCAP_SERVICES, proxy and CA
// variables, exactly as an application would run on SAP BTP.
//
//   idprop run --impl 'exec:node examples/adapters/cloud-sdk-js/adapter.mjs' --role consumer
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { bootstrap } from 'global-agent';
import { executeHttpRequest } from '@sap-cloud-sdk/http-client';
import * as sdk from '@sap-cloud-sdk/connectivity/internal';

// Finding: @sap/xssec (the SDK's service-token client) ignores HTTPS_PROXY
// and resolves the UAA host itself. Node's global agents are pointed at the
// proxy the harness gives, as an application behind a proxy would do.
// Only https: plain-http requests go to the Connectivity proxy the SDK names.
process.env.GLOBAL_AGENT_HTTPS_PROXY = process.env.HTTPS_PROXY || process.env.https_proxy || '';
process.env.GLOBAL_AGENT_NO_PROXY = process.env.NO_PROXY || '';
bootstrap();

// Reusable (protocol v1.2): the proxy and the bindings come from each
// request, and `reset` empties every cache the SDK keeps (tokens,
// destinations, keys, agents), so one process serves scenario after
// scenario. Node reads its CA bundle once, at start: a request naming a CA
// with other contents is refused rather than run against the wrong trust.
const pkg = { name: 'sap-cloud-sdk-js', version: '4.9.1', reusable: true };
const startCa = (() => { try { return readFileSync(process.env.NODE_EXTRA_CA_CERTS || '', 'utf8'); } catch { return null; } })();

function useNetwork(network) {
  if (!network) return null;
  global.GLOBAL_AGENT.HTTPS_PROXY = network.proxy || '';
  global.GLOBAL_AGENT.NO_PROXY = network.no_proxy || '';
  let ca = null;
  try { ca = readFileSync(network.ca_file, 'utf8'); } catch { /* judged below */ }
  return ca === startCa ? null : `the CA bundle ${network.ca_file} differs from the one this process started with`;
}

async function resetCaches() {
  for (const c of [sdk.clientCredentialsTokenCache, sdk.destinationCache, sdk.destinationServiceCache,
    sdk.agentCache, sdk.identityServicesCache, sdk.verificationKeyCache]) {
    await c?.clear?.();
  }
}

async function call(msg) {
  if (msg.env?.VCAP_SERVICES) process.env.VCAP_SERVICES = msg.env.VCAP_SERVICES;
  const req = msg.request || {};
  const destination = { destinationName: msg.destination };
  if (msg.user_token) destination.jwt = msg.user_token;
  try {
    const res = await executeHttpRequest(destination, {
      method: (req.method || 'GET').toLowerCase(),
      url: req.path || '/',
      headers: { custom: req.headers || {} },
      data: req.body ?? undefined,
      // Return every status as an answer, not as an exception.
      validateStatus: () => true,
      transformResponse: (d) => d,
    }, { fetchCsrf: false });
    return { status: res.status, headers: res.headers, body: typeof res.data === 'string' ? res.data : JSON.stringify(res.data) };
  } catch (e) {
    const causes = [];
    for (let c = e; c; c = c.cause) causes.push(c.message);
    console.error('call failed:', causes.join(' <- '), e.cause?.cause?.response?.status ?? '', e.cause?.cause?.cause?.message ?? '');
    return { error: causes.join(' <- ') };
  }
}

// stdout carries the protocol only: the SDK's logger writes to stdout too,
// so everything else goes to stderr (the harness keeps it for the report).
const protocolOut = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
const out = (o) => protocolOut(JSON.stringify(o) + '\n');
const rl = createInterface({ input: process.stdin });
const queue = [];
let busy = false;
rl.on('line', (line) => { if (line.trim()) { queue.push(line); pump(); } });
rl.on('close', () => { const wait = () => (busy || queue.length ? setTimeout(wait, 10) : process.exit(0)); wait(); });

async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const line = queue.shift();
    let msg;
    try { msg = JSON.parse(line); } catch (e) { out({ v: 1, id: 0, ok: false, error: { code: 'bad_request', message: e.message } }); continue; }
    const { id, op } = msg;
    const wrongCa = useNetwork(msg.network);
    if (op === 'hello') out({ v: 1, id, ok: true, result: { ...pkg, roles: ['consumer'] } });
    else if (op === 'reset') { await resetCaches(); out({ v: 1, id, ok: true, result: {} }); }
    else if (wrongCa) out({ v: 1, id, ok: false, error: { code: 'internal', message: wrongCa } });
    else if (op === 'call') out({ v: 1, id, ok: true, result: await call(msg) });
    else out({ v: 1, id, ok: false, error: { code: 'unsupported', message: `op ${op}` } });
  }
  busy = false;
}
