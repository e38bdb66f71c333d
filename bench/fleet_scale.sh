#!/usr/bin/env bash
# A fleet of daemons (`daemon --fleet`) sharing one PostgreSQL catalog,
# holding many plans (file vaults, tiny data), as issue 16 asks:
#   start-up (spawn -> every plan owned and spread over the daemons), how far start times fall from
#   slot + jitter, catalog statements and transactions per second (busy and
#   idle), resident memory and idle CPU per daemon, and the failover time
#   after `kill -9` of one daemon (until all its plans have a live owner).
#
#   bench/fleet_scale.sh                 # 3 daemons, 1000 plans, lease 30s, 4 busy minutes
#   DAEMONS=3 PLANS=300 MINUTES=2 LEASE=10s bench/fleet_scale.sh
#
# Starts its own throwaway PostgreSQL (initdb into a temporary folder, as
# the postgres user when run as root) on a free port, with
# pg_stat_statements, and removes it at the end. LIFEBOAT_BIN=... uses a
# binary already built.
set -euo pipefail
cd "$(dirname "$0")/.."
DAEMONS=${DAEMONS:-3}
PLANS=${PLANS:-1000}
MINUTES=${MINUTES:-4}
SCHEDULE=${SCHEDULE:-*/2 * * * *}
JITTER=${JITTER:-100s}
LEASE=${LEASE:-30s}
IDLE_SECONDS=${IDLE_SECONDS:-60}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pgbin" ] || pgbin=$(dirname "$(command -v initdb)")
for tool in initdb pg_ctl psql; do
  [ -x "$pgbin/$tool" ] || { echo "missing $pgbin/$tool (apt-get install postgresql)" >&2; exit 1; }
done
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ -n "${LIFEBOAT_BIN:-}" ]; then
  BIN=$LIFEBOAT_BIN
else
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/lifeboat
fi

root=$(mktemp -d "${BENCH_DIR:-/dev/shm}/lifeboat-fleet.XXXXXX")
chmod 755 "$root"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$root/pg" "$root/sock" "$root/plans" "$root/data"
[ "$(id -u)" = 0 ] && chown postgres: "$root/pg" "$root/sock"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  as_pg "$pgbin/pg_ctl" -D "$root/pg/data" -m immediate stop >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && echo "keeping $root" >&2 || rm -rf "$root"
}
trap cleanup EXIT
as_pg "$pgbin/initdb" -D "$root/pg/data" -U bench --auth=trust --no-locale -E UTF8 >/dev/null
as_pg "$pgbin/pg_ctl" -D "$root/pg/data" -l "$root/pg/log" -w \
  -o "-p $port -k $root/sock -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements -c max_connections=100" \
  start >/dev/null
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=bench
unset PGPASSWORD PGDATABASE PGSERVICE
sql() { "$pgbin/psql" -X -q -A -t -d lifeboat -c "$1"; }
"$pgbin/psql" -X -q -d postgres -c "CREATE DATABASE lifeboat" >/dev/null
sql "CREATE EXTENSION pg_stat_statements" >/dev/null
CATALOG="postgres://bench@127.0.0.1:$port/lifeboat"
echo "hello" > "$root/data/file.txt"

. bench/lib/scale_plans.sh
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }
owned() { sql "SELECT count(*) FROM leases WHERE kind = 'owner' AND expires_at > $(now_ms)"; }
# Statements (pg_stat_statements) and transactions (pg_stat_database).
counters() {
  echo "$(sql "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'lifeboat')") $(sql "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'lifeboat'")"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

write_plans "$SCHEDULE"
t0=$(date +%s.%N)
for n in $(seq 0 $((DAEMONS - 1))); do
  "$BIN" --catalog "$CATALOG" --plans "$root/plans" --work-dir "$root/work-$n" \
    daemon --fleet --fleet-lease "$LEASE" --listen 127.0.0.1:0 \
    --max-jobs 8 --max-jobs-per-region 8 --watch-interval 5s \
    > "$root/stdout-$n" 2> "$root/stderr-$n" &
  pids+=($!)
done
# Formed: every plan owned, and spread (each daemon owns some; the first
# to start takes them all until the others register).
owners() { sql "SELECT count(DISTINCT owner) FROM leases WHERE kind = 'owner' AND expires_at > $(now_ms)"; }
until [ "$(owned)" = "$PLANS" ] && [ "$(sql "SELECT count(*) FROM daemons")" = "$DAEMONS" ] \
    && [ "$(owners)" = "$(( PLANS < DAEMONS ? PLANS : DAEMONS ))" ]; do
  sleep 0.2
done
t1=$(date +%s.%N)
startup=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
ready_ms=$(python3 -c "print(int($t1 * 1000))")
echo "$DAEMONS daemons own all $PLANS plans after ${startup}s; backups ($SCHEDULE, jitter $JITTER) for $MINUTES minutes..." >&2
share=$(sql "SELECT string_agg(n::text, ' ' ORDER BY n) FROM (SELECT count(*) AS n FROM leases WHERE kind = 'owner' GROUP BY owner) AS s")

# Busy: a minute in the middle of the backups.
sleep $((MINUTES * 60 / 2))
read -r st0 tx0 < <(counters); b0=$(date +%s.%N)
sleep 60
read -r st1 tx1 < <(counters); b1=$(date +%s.%N)
sleep $((MINUTES * 60 / 2 - 60 > 0 ? MINUTES * 60 / 2 - 60 : 0))
rss_busy=$(for p in "${pids[@]}"; do rss_mib "$p"; echo -n " "; done)
busy_ms=$(now_ms)

# Nothing due for a year: the daemons notice the edits and go idle.
write_plans "0 0 1 1 *"
sleep 30
declare -a c0
for i in "${!pids[@]}"; do c0[$i]=$(ticks "${pids[$i]}"); done
read -r ist0 itx0 < <(counters); s0=$(date +%s.%N)
sleep "$IDLE_SECONDS"
read -r ist1 itx1 < <(counters); s1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
cpu_idle=$(for i in "${!pids[@]}"; do
  python3 -c "print(f'{($(ticks "${pids[$i]}") - ${c0[$i]}) / $hz / ($s1 - $s0) * 100:.2f}', end=' ')"
done)
rss_idle=$(for p in "${pids[@]}"; do rss_mib "$p"; echo -n " "; done)

# Failover: kill -9 the first daemon; time until every plan has a live
# owner again that is not it.
victim_pid=${pids[0]}
victim=$(sql "SELECT id FROM daemons WHERE pid = $victim_pid")
victim_plans=$(sql "SELECT count(*) FROM leases WHERE kind = 'owner' AND owner = '$victim'")
kill -9 "$victim_pid"; k0=$(date +%s.%N)
until [ "$(sql "SELECT count(*) FROM leases WHERE kind = 'owner' AND expires_at > $(now_ms) AND owner != '$victim'")" = "$PLANS" ]; do
  sleep 0.1
done
k1=$(date +%s.%N)
failover=$(python3 -c "print(f'{$k1 - $k0:.1f}')")
for p in "${pids[@]:1}"; do kill -TERM "$p"; done
wait "${pids[@]:1}" 2>/dev/null || true
pids=()

# Only slots due after every plan was owned and before the idle edit count
# (a slot due while the fleet formed runs late by design, inside its
# start window; first-run backups have no slot to be late for).
sql "SELECT started_at - scheduled_start FROM jobs WHERE kind = 'backup' AND status = 'succeeded' AND slot % 60000 = 0 AND scheduled_start >= $ready_ms AND scheduled_start < $busy_ms" > "$root/late.txt"
twice=$(sql "SELECT count(*) FROM (SELECT plan, slot FROM backup_runs WHERE slot IS NOT NULL GROUP BY plan, slot HAVING count(*) > 1) AS t")
python3 - "$root/late.txt" <<PY
import sys
late = sorted(int(x) for x in open(sys.argv[1]) if x.strip())
def pct(p): return late[min(len(late) - 1, int(p * len(late)))] if late else float("nan")
busy = $b1 - $b0
idle = $s1 - $s0
print(f"daemons: $DAEMONS; plans: $PLANS (owned per daemon: $share); lease $LEASE")
print(f"backups \"$SCHEDULE\" with jitter $JITTER for $MINUTES min, {len(late)} scheduled backups measured, slots run twice: $twice")
print(f"start-up (spawn -> every plan owned, spread): ${startup} s")
print(f"start - (slot + jitter), ms: p50 {pct(0.5)}  p99 {pct(0.99)}  max {late[-1] if late else 'n/a'}")
print(f"catalog while busy: {($st1 - $st0) / busy:.1f} statements/s, {($tx1 - $tx0) / busy:.1f} transactions/s")
print(f"catalog while idle: {($ist1 - $ist0) / idle:.1f} statements/s, {($itx1 - $itx0) / idle:.1f} transactions/s")
print(f"resident memory per daemon, MiB: busy $rss_busy/ idle $rss_idle")
print(f"idle CPU per daemon over ${IDLE_SECONDS} s, % of one core: $cpu_idle")
print(f"failover after kill -9 of a daemon owning $victim_plans plans: ${failover} s (lease $LEASE)")
PY
