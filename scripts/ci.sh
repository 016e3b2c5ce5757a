#!/usr/bin/env bash
# The README's test command, and all that .ci/run calls: installs everything, runs every test, type-checks test/, lints.
set -uo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Servers the tests start for real, one per line of scripts/test-servers.txt: `what[:package]`, where `what` is a
# command (looked up with command -v) or an absolute path that must exist (a module, not a binary), and `package` the
# Debian package that provides it (default: `what` itself). `#` starts a comment.
while IFS= read -r line || [ -n "$line" ]; do
  line="${line%%#*}"
  line="${line//[[:space:]]/}"
  [ -n "$line" ] || continue
  what="${line%%:*}"
  pkg="${line#*:}"
  if [ "${what:0:1}" = / ]; then
    [ -e "$what" ] || need_apt+=("$pkg")
  else
    command -v "$what" >/dev/null 2>&1 || need_apt+=("$pkg")
  fi
done < <(cat scripts/test-servers.txt 2>/dev/null)
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
npm run --silent deadcode || status=1
exit $status
