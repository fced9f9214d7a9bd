// idprop's Node preload (TEST ONLY environments): `idprop up` writes this
// file to its state dir and `env.sh` puts it into NODE_OPTIONS, so Node
// clients reach the stack's virtual `.test` hosts with no change to the
// application. Node 20 ignores HTTPS_PROXY, and @sap/xssec calls
// `https.request` without an agent.
//
// Only requests to `*.test` hosts are touched:
// - https: tunnelled through the gateway with CONNECT (TLS end to end, SNI
//   and certificate checks as usual; the CA comes from NODE_EXTRA_CA_CERTS);
// - http: sent to the gateway in absolute form.
// Everything else, the Connectivity proxy on 127.0.0.1 included, is left
// alone. No dependencies: Node's own http, https, tls.
'use strict';
const http = require('http');
const https = require('https');
const tls = require('tls');

const gateway = process.env.IDPROP_GATEWAY ? new URL(process.env.IDPROP_GATEWAY) : null;
const isTest = (host) => typeof host === 'string' && /\.test\.?$/i.test(host.split(':')[0]);

if (gateway) {
  class TunnelAgent extends https.Agent {
    createConnection(options, callback) {
      const target = `${options.host}:${options.port || 443}`;
      const req = http.request({
        host: gateway.hostname,
        port: gateway.port || 80,
        method: 'CONNECT',
        path: target,
        headers: { host: target },
      });
      req.once('connect', (res, socket) => {
        if (res.statusCode !== 200) {
          socket.destroy();
          callback(new Error(`idprop gateway refused CONNECT ${target}: ${res.statusCode}`));
          return;
        }
        callback(null, tls.connect({ ...options, socket, servername: options.servername || options.host }));
      });
      req.once('error', callback);
      req.end();
    }
  }
  const tunnel = new TunnelAgent({ keepAlive: true });

  // Normalises request(url?, options?, callback?) to (options, callback).
  const normalise = (args) => {
    let [a, b, c] = args;
    let opts = {};
    if (typeof a === 'string' || a instanceof URL) {
      const u = new URL(a);
      opts = { protocol: u.protocol, hostname: u.hostname, port: u.port, path: u.pathname + u.search };
      if (typeof b === 'function') { c = b; b = undefined; }
      opts = { ...opts, ...(b || {}) };
    } else {
      opts = { ...(a || {}) };
      if (typeof b === 'function') c = b;
    }
    return [opts, c];
  };
  const hostOf = (o) => o.hostname || (o.host || '').split(':')[0];

  const origHttpsRequest = https.request;
  https.request = function (...args) {
    const [opts, cb] = normalise(args);
    if (isTest(hostOf(opts)) && (!opts.agent || opts.agent === https.globalAgent)) {
      opts.agent = tunnel;
    }
    return origHttpsRequest.call(https, opts, cb);
  };
  https.get = function (...args) {
    const r = https.request(...args);
    r.end();
    return r;
  };

  const origHttpRequest = http.request;
  http.request = function (...args) {
    const [opts, cb] = normalise(args);
    const host = hostOf(opts);
    if (opts.method !== 'CONNECT' && isTest(host) && !opts.agent) {
      const port = opts.port ? `:${opts.port}` : '';
      opts.path = `http://${host}${port}${opts.path || '/'}`;
      opts.headers = { host: `${host}${port}`, ...(opts.headers || {}) };
      opts.hostname = gateway.hostname;
      opts.host = gateway.hostname;
      opts.port = gateway.port || 80;
    }
    return origHttpRequest.call(http, opts, cb);
  };
  http.get = function (...args) {
    const r = http.request(...args);
    r.end();
    return r;
  };
}
