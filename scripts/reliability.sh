#!/usr/bin/env bash
# Runs the reliability suite (connection faults, SIGKILL crash loop, bad
# inputs, secrets grep) and writes its summary table to docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export BANJIA_RELIABILITY_OUT=$out BANJIA_REQUIRE_SERVERS=1
go test -count=1 -timeout 20m -run '^(TestConnectionFaults|TestServerFaults|TestForeignMailOnTarget|TestBadInputs)$' ./migrate/
go test -count=1 -timeout 20m -run '^(TestCrashLoop|TestEndToEnd20x500)$' ./cmd/banjia/
{
  cat docs/reliability.head.md
  echo
  echo "Measured on $(date -u +%Y-%m-%d) on $(nproc) cores; reproduce with \`make reliability\`."
  echo
  echo "| trial | what was done | corpus | result | settings |"
  echo "|---|---|---|---|---|"
  cat "$out"/faults.md "$out"/serverfaults-*.md "$out"/foreign.md "$out"/crash.md "$out"/badinput.md "$out"/secrets.md 2>/dev/null
  if [ -f "$out/badinput-items.md" ]; then
    echo
    echo "## Bad inputs, item by item"
    echo
    cat "$out/badinput-items.md"
  fi
} > docs/reliability.md
echo "wrote docs/reliability.md"
