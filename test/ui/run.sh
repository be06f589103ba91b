#!/usr/bin/env bash
# Builds the service, starts it on a fresh embedded database, and drives
# Swagger UI in headless Chromium through the organization, member, audit-log,
# document and operator operations (swagger.js).
# Needs node/npm and Chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --silent --no-audit --no-fund
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/orgservice" ../../cmd/orgservice
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18090)
export OPERATOR_API_KEY=ui-operator-key-0123456789abcdef0123
(cd "$tmp" && HTTP_ADDR=127.0.0.1:$port DATA_DIR="$tmp/data" BCRYPT_COST=4 LOG_LEVEL=warn ./orgservice) &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
ORGSERVICE_URL=http://127.0.0.1:$port node swagger.js
