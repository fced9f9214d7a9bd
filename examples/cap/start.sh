#!/bin/sh
# A minimal CAP service (@sap/cds 10.1, pinned in package-lock.json, Node 22
# from the npm registry's `node` package), unchanged, against `idprop up`.
# TEST ONLY. Nothing beyond env.sh:
#
#   source .idprop/env.sh && examples/cap/start.sh
#   T=$(cargo run -q -- token --tenant mytenant --user alice)
#   curl -H "Authorization: Bearer $T" 'http://localhost:4004/odata/v4/probe/onPremise()'
#   curl -H "Authorization: Bearer $T" 'http://localhost:4004/odata/v4/probe/internet()'
set -eu
cd "$(dirname "$0")"
[ -n "${VCAP_SERVICES:-}" ] || { echo "source .idprop/env.sh first (idprop up writes it)" >&2; exit 2; }
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund --loglevel=error
export PORT="${PORT:-4004}"
exec node_modules/.bin/node node_modules/@sap/cds/bin/serve.js
