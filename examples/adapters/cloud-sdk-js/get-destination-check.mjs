// SAP Cloud SDK for JavaScript's getDestination against idprop's Destination
// service, unchanged: a missing name gives null (the SDK recognises the exact
// not-found answer), and a destination only the provider has, asked for with
// a subscriber user's JWT, falls back to the provider (subscriberFirst).
//   node get-destination-check.mjs <subscriber user JWT> <provider-only name>
// Prints one JSON line last.
import { bootstrap } from 'global-agent';
import { getDestination } from '@sap-cloud-sdk/connectivity';

process.env.GLOBAL_AGENT_HTTPS_PROXY = process.env.HTTPS_PROXY || process.env.https_proxy || '';
process.env.GLOBAL_AGENT_NO_PROXY = process.env.NO_PROXY || '';
bootstrap();

const [jwt, providerOnly] = process.argv.slice(2);
const out = {};
try {
  out.missing = await getDestination({ destinationName: 'no-such-destination', useCache: false });
} catch (e) {
  out.missing_error = e.message;
}
try {
  const d = await getDestination({ destinationName: providerOnly, jwt, useCache: false });
  out.fallback = d ? { name: d.name, url: d.url } : null;
} catch (e) {
  out.fallback_error = e.message;
}
process.stdout.write(JSON.stringify(out) + '\n');
