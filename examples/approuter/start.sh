#!/bin/sh
# SAP's application router 23.0 (pinned in package-lock.json, Node 22 from the
# npm registry's `node` package), unchanged, against `idprop up`. TEST ONLY.
#
#   source .idprop/env.sh && examples/approuter/start.sh
#   open http://mytenant.localhost:5000/      (log in as alice / alice-password)
#
# What it adds to env.sh, and why:
# - TENANT_HOST_PATTERN: the stack's xsuaa binding has tenantmode "shared", so
#   approuter takes the tenant from the host: mytenant.localhost → mytenant.
# - VCAP_SERVICES without the `identity` binding: with both xsuaa and identity
#   bound, approuter asks SAP's internal tenantLoginInfo API for every tenant,
#   which no SAP page describes and idprop does not mock. This router is an
#   XSUAA application.
set -eu
cd "$(dirname "$0")"
[ -n "${VCAP_SERVICES:-}" ] || { echo "source .idprop/env.sh first (idprop up writes it)" >&2; exit 2; }
[ -x node_modules/.bin/node ] || npm ci --no-audit --no-fund --loglevel=error
NODE=node_modules/.bin/node
VCAP_SERVICES=$("$NODE" -e 'const v = JSON.parse(process.env.VCAP_SERVICES); delete v.identity; process.stdout.write(JSON.stringify(v))')
export VCAP_SERVICES
export TENANT_HOST_PATTERN="${TENANT_HOST_PATTERN:-^(.*)\.localhost\$}"
export PORT="${PORT:-5000}"
exec "$NODE" node_modules/@sap/approuter/approuter.js
