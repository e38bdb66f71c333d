#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need,
# then runs every test. Called by .ci/run and by developers alike.
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests and benchmarks compare against (tar, zstd, sqlite3),
# the headless browser the HTML report test renders the page with, and
# PostgreSQL: the client tools Lifeboat runs (pg_dump, pg_restore, psql)
# and a server the tests start for themselves (initdb, pg_ctl: Debian keeps
# them in /usr/lib/postgresql/<version>/bin, off the PATH).
need=()
command -v zstd >/dev/null || need+=(zstd)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v chromium >/dev/null || need+=(chromium)
# age: the encryption tests decrypt vault objects without Lifeboat.
command -v age >/dev/null || need+=(age)
# openssl: the test PostgreSQL server's TLS certificate.
command -v openssl >/dev/null || need+=(openssl)
# promtool checks and unit-tests deploy/prometheus-rules.yml
# (tests/integration/metrics.rs). Debian's `prometheus` package ships it
# (Debian 12: 2.42); `promtool test rules` needs 2.x or later.
command -v promtool >/dev/null || need+=(prometheus)
pg_server_bin() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    { command -v initdb >/dev/null && command -v pg_ctl >/dev/null; }
}
pg_server_bin || need+=(postgresql)
# MariaDB: the server the SQL checks of restored RDS MySQL/MariaDB
# instances run against (the tests start their own, on a free port).
{ command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } || need+=(mariadb-server)
{ command -v pg_dump >/dev/null && command -v pg_restore >/dev/null && command -v psql >/dev/null; } ||
  need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing tools: ${need[*]} (install them, e.g. apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

if ! promtool --version 2>&1 | grep -Eq 'version ([2-9]|[1-9][0-9])\.'; then
  echo "promtool 2.x or later is needed (found: $(promtool --version 2>&1 | head -1))" >&2
  exit 1
fi

# moto's server mode: the S3/RDS-speaking server the AWS tests run against
# (5.2.3 or later: earlier versions break the Rust SDK's multipart uploads).
MOTO_VERSION=5.2.5
if ! .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

cargo test --locked --all-targets "$@"

# The catalog on PostgreSQL (--catalog postgres://…): the catalog's tests
# once more with every catalog they open on the suite's PostgreSQL server.
# The library's tests all open theirs through catalog::testing; of the
# integration tests, the scenarios that live on the catalog (backup, drill,
# report, restore, rebuild, verify, the daemon, leases, metrics), less two
# that are about the SQLite file itself (a symlinked path, relative paths).
# Only for the whole suite: with arguments (a filter), the run above is all.
if [ $# -eq 0 ]; then
  export LIFEBOAT_TEST_CATALOG=postgres
  cargo test --locked --lib
  cargo test --locked --test integration -- \
    cli:: daemon:: evidence_chain:: hooks:: leases:: local_loop:: metrics:: notify:: \
    rebuild:: report:: restore:: verify:: encryption::a_lost_catalog \
    --skip leases::a_second_daemon_through_a_symlinked_catalog \
    --skip local_loop::relative_plan_paths
else
  echo "scripts/test.sh: arguments given; the PostgreSQL-catalog pass runs only with the whole suite" >&2
fi
