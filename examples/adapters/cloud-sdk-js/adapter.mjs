// idprop adapter (protocol v1, consumer role) around the SAP Cloud SDK for
// JavaScript: every `call` is `executeHttpRequest` with the destination name
// and the user's JWT, against the stack's VCAP_SERVICES, proxy and CA
// variables, exactly as an application would run on SAP BTP.
//
//   idprop run --impl 'exec:node examples/adapters/cloud-sdk-js/adapter.mjs' --role consumer
import { createInterface } from 'node:readline';
import { bootstrap } from 'global-agent';
import { executeHttpRequest } from '@sap-cloud-sdk/http-client';

// Finding: @sap/xssec (the SDK's service-token client) ignores HTTPS_PROXY
// and resolves the UAA host itself. Node's global agents are pointed at the
// proxy the harness gives, as an application behind a proxy would do.
// Only https: plain-http requests go to the Connectivity proxy the SDK names.
process.env.GLOBAL_AGENT_HTTPS_PROXY = process.env.HTTPS_PROXY || process.env.https_proxy || '';
process.env.GLOBAL_AGENT_NO_PROXY = process.env.NO_PROXY || '';
bootstrap();

const pkg = { name: 'sap-cloud-sdk-js', version: '4.9.1' };

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
    if (op === 'hello') out({ v: 1, id, ok: true, result: { ...pkg, roles: ['consumer'] } });
    else if (op === 'reset') out({ v: 1, id, ok: true, result: {} });
    else if (op === 'call') out({ v: 1, id, ok: true, result: await call(msg) });
    else out({ v: 1, id, ok: false, error: { code: 'unsupported', message: `op ${op}` } });
  }
  busy = false;
}
