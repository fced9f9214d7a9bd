#!/usr/bin/env bash
# Side-by-side benchmark of idprop and what users would pick instead
# (oauth2-mock-server, pinned in bench/node), against the machine's RSA
# ceiling. Installs what it needs, then prints a markdown table of ratios.
#   bench/compare.sh            RUNS=10 DURATION=5 by default
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd bench/node && npm ci --no-audit --no-fund --silent)
cargo build --release --quiet
python3 bench/compare.py
