// @sap/xssec, unchanged, against the idprop stack: validates a user token
// the stack minted (keys fetched from the mock UAA through the gateway) and
// fetches a client-credentials token. Prints one JSON line.
//   node xssec-check.mjs <user token>     (env: VCAP_SERVICES, HTTPS_PROXY, NODE_EXTRA_CA_CERTS)
import { bootstrap } from 'global-agent';
import xssec from '@sap/xssec';

// @sap/xssec ignores HTTPS_PROXY: Node's https agent is pointed at the proxy.
process.env.GLOBAL_AGENT_HTTPS_PROXY = process.env.HTTPS_PROXY || '';
bootstrap();

const credentials = JSON.parse(process.env.VCAP_SERVICES).xsuaa[0].credentials;
const service = new xssec.XsuaaService(credentials);
const out = {};
try {
  const ctx = await xssec.createSecurityContext(service, { jwt: process.argv[2] });
  out.user = ctx.getLogonName?.() ?? ctx.token.payload.user_name;
  out.zid = ctx.getZoneId?.() ?? ctx.token.payload.zid;
  // The application's scopes as xssec checks them ($XSAPPNAME.<local>).
  out.read = ctx.checkLocalScope('Read');
  out.admin = ctx.checkLocalScope('Admin');
  out.validated = true;
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
