// @sap/xssec's IdentityService, unchanged, against the idprop stack's IAS
// tenant: validates a token with the `identity` binding of VCAP_SERVICES
// (discovery and keys fetched from the tenant through the gateway) and
// fetches a client-credentials token. Prints one JSON line.
//   node ias-check.mjs <token>     (env: VCAP_SERVICES, HTTPS_PROXY, NODE_EXTRA_CA_CERTS)
import { bootstrap } from 'global-agent';
import xssec from '@sap/xssec';

process.env.GLOBAL_AGENT_HTTPS_PROXY = process.env.HTTPS_PROXY || '';
bootstrap();

const credentials = JSON.parse(process.env.VCAP_SERVICES).identity[0].credentials;
const service = new xssec.IdentityService(credentials);
const out = {};
try {
  const ctx = await xssec.createSecurityContext(service, { jwt: process.argv[2] });
  out.validated = true;
  out.email = ctx.token.payload.email ?? null;
  out.user_uuid = ctx.token.payload.user_uuid ?? null;
} catch (e) {
  out.validated = false;
  out.error = e.message;
}
try {
  const cc = await service.fetchClientCredentialsToken();
  out.client_credentials = typeof cc.access_token === 'string' && cc.access_token.split('.').length === 3;
} catch (e) {
  out.client_credentials = false;
  out.cc_error = e.message;
}
console.log(JSON.stringify(out));
