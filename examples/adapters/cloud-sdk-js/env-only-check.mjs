// @sap/xssec and SAP Cloud SDK for JavaScript with nothing but
// `source .idprop/env.sh` (its NODE_OPTIONS preload sends `.test` requests
// through the gateway): validates a user token, fetches a client-credentials
// token, reads a destination. Prints one JSON line.
//   node env-only-check.mjs <user token>
import xssec from '@sap/xssec';
import { getDestination } from '@sap-cloud-sdk/connectivity';

const out = {};
const credentials = JSON.parse(process.env.VCAP_SERVICES).xsuaa[0].credentials;
const service = new xssec.XsuaaService(credentials);
try {
  const ctx = await xssec.createSecurityContext(service, { jwt: process.argv[2] });
  out.user = ctx.token.payload.user_name;
} catch (e) {
  out.error = e.message;
}
try {
  const cc = await service.fetchClientCredentialsToken();
  out.client_credentials = typeof cc.access_token === 'string';
} catch (e) {
  out.cc_error = e.message;
}
try {
  const d = await getDestination({ destinationName: 'client-credentials-example', jwt: process.argv[2] });
  out.destination_token = typeof d?.authTokens?.[0]?.value === 'string';
} catch (e) {
  out.destination_error = e.message;
}
console.log(JSON.stringify(out));
