#!/usr/bin/env bash
# The README's test command, and all that .ci/run calls: installs everything, runs every test, type-checks test/, lints.
set -uo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Brokers the tests start for real (added here as broker tests land): redis-server, nats-server.
for bin in $(cat scripts/test-servers.txt 2>/dev/null); do
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$bin")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} from Debian packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null || exit 1
fi

npm ci --no-audit --no-fund --loglevel=error || exit 1
npm run build || exit 1
npx vitest run --reporter=default --reporter=json --outputFile=.vitest-report.json
status=$?
node scripts/test-summary.mjs .vitest-report.json || status=1
# Static checks run after the tests, so a finding never hides a test result; each one failing fails the run.
npm run --silent typecheck:test || status=1
npm run --silent lint || status=1
npm run --silent format:check || status=1
exit $status
