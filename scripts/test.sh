#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need,
# then runs every test. Called by .ci/run and by developers alike.
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests and benchmarks compare against (tar, zstd, sqlite3),
# and the headless browser the HTML report test renders the page with.
need=()
command -v zstd >/dev/null || need+=(zstd)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}"
  else
    echo "missing tools: ${need[*]} (install them, e.g. apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

cargo test --locked --all-targets "$@"
