#!/usr/bin/env bash
# Backup and drill of a `postgres` resource against the floor set by the
# PostgreSQL tools on the same server, same database, same run:
#   backup floor:  pg_dump --format=custom -f FILE
#   drill floor:   createdb + pg_restore --no-owner --no-privileges
#                  --exit-on-error --jobs=N (N = Lifeboat's: the core count)
#                  + dropdb
# Lifeboat's backup adds its exported snapshot, the packing (zstd, SHA-256s)
# and the vault's fsync + rename; its drill adds the download of the dump
# with its SHA-256 check, the feeding of pg_restore's workers, the built-in
# tables check and the catalog. DUMP_FORMAT picks the plan's `dump_format`
# (default `custom`, the plan's default).
#
#   bench/postgres.sh             # pgbench scale 64 + a text table: ~1.3 GB
#   SCALE=8 bench/postgres.sh     # ~170 MB, quicker
#   REPEAT=5 bench/postgres.sh    # runs of each, interleaved (default 3): medians
#   DUMP_FORMAT=directory bench/postgres.sh   # pg_dump --jobs=2, packed
#   LIFEBOAT_BIN=/path/to/lifeboat bench/postgres.sh   # another build (default: cargo build --release)
#
# Starts its own throwaway server (initdb into a temporary folder, as the
# postgres user when run as root) on a free port, and removes it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-64}
REPEAT=${REPEAT:-3}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pgbin" ] || pgbin=$(dirname "$(command -v initdb)")
for tool in initdb pg_ctl pgbench pg_dump pg_restore psql createdb dropdb; do
  [ -x "$pgbin/$tool" ] || { echo "missing $pgbin/$tool (apt-get install postgresql postgresql-client)" >&2; exit 1; }
done
for tool in python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install python3 time)" >&2; exit 1; }
done
if [ -n "${LIFEBOAT_BIN:-}" ]; then
  BIN=$LIFEBOAT_BIN
else
  cargo build --release --quiet
  BIN=$PWD/target/release/lifeboat
fi

base=${BENCH_DIR:-/dev/shm}
root=$(mktemp -d "$base/lifeboat-pgbench.XXXXXX")
chmod 755 "$root"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$root/pg" "$root/sock"
[ "$(id -u)" = 0 ] && chown postgres: "$root/pg" "$root/sock"
cleanup() {
  as_pg "$pgbin/pg_ctl" -D "$root/pg/data" -m immediate stop >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && echo "keeping $root" >&2 || rm -rf "$root"
}
trap cleanup EXIT
as_pg "$pgbin/initdb" -D "$root/pg/data" -U bench --auth=trust --no-locale -E UTF8 >/dev/null
as_pg "$pgbin/pg_ctl" -D "$root/pg/data" -l "$root/pg/log" -w \
  -o "-p $port -k $root/sock -c listen_addresses=127.0.0.1 -c max_wal_size=4GB" start >/dev/null
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=bench
unset PGPASSWORD PGDATABASE PGSERVICE
jobs=$(nproc); [ "$jobs" -gt 8 ] && jobs=8

echo "generating pgbench scale $SCALE..." >&2
"$pgbin/createdb" shop
"$pgbin/pgbench" -i -q -s "$SCALE" shop >/dev/null 2>&1
# pgbench rows compress to almost nothing; hex text does not, so the dump
# has some bulk for the streaming, hashing and vault writes to carry.
"$pgbin/psql" -XAtq shop -c "CREATE TABLE notes AS
  SELECT i AS id, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) AS body
  FROM generate_series(1, $SCALE * 50000) i; ALTER TABLE notes ADD PRIMARY KEY (id);"
db_bytes=$("$pgbin/psql" -XAtc "SELECT pg_database_size('shop')" shop)
rows=$("$pgbin/psql" -XAtc "SELECT count(*) FROM pgbench_accounts" shop)

mkdir -p "$root/plans"
cat > "$root/plans/bench.toml" <<TOML
name = "bench"
owner = "bench@example.com"
rto = "1h"
rpo = "1h"
[backup]
schedule = "0 * * * *"
primary_region = "local"
[regions.local]
vault = "file://$root/vault"
[[resources]]
name = "shop"
kind = "postgres"
url = "postgres://bench@127.0.0.1:$port/shop"
dump_format = "${DUMP_FORMAT:-custom}"
[drill]
region = "local"
[[drill.checks]]
resource = "shop"
sql = "SELECT count(*) FROM pgbench_accounts"
expect = $rows
TOML
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# Warm the cache the same way for everyone.
"$pgbin/pg_dump" -Fc shop > /dev/null

lb() { /usr/bin/time -f "%e %M" -o "$1" "$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" --work-dir "$root/work" "${@:2}"; }
floor_backups=(); lb_backups=(); floor_drills=(); lb_drills=(); rtos=()
# Interleaved, so a disturbance (other load) hits both sides.
# Each timed run starts after an untimed CHECKPOINT, so none pays for the
# dirty buffers (or the dropped database) of the run before it; the order
# alternates (floor first in odd rounds, Lifeboat first in even ones).
settle() { "$pgbin/psql" -XAtqc "CHECKPOINT" shop; }
floor_backup() {
  settle; t0=$(now); "$pgbin/pg_dump" --format=custom -f "$root/floor.pgdump" shop; t1=$(now)
  floor_backups+=("$(secs "$t0" "$t1")")
}
lb_backup() {
  settle; LIFEBOAT_PG_BIN=$pgbin lb "$root/backup.time" backup run bench > /dev/null
  read -r t backup_kb < "$root/backup.time"; lb_backups+=("$t")
}
floor_drill() {
  settle; t0=$(now)
  "$pgbin/createdb" -T template0 floor_restore
  "$pgbin/pg_restore" --no-owner --no-privileges --exit-on-error --jobs="$jobs" -d floor_restore "$root/floor.pgdump"
  "$pgbin/psql" -XAtc "SELECT count(*) FROM pgbench_accounts" floor_restore >/dev/null
  "$pgbin/dropdb" floor_restore
  t1=$(now)
  floor_drills+=("$(secs "$t0" "$t1")")
}
lb_drill() {
  settle; LIFEBOAT_PG_BIN=$pgbin lb "$root/drill.time" drill run bench --json > "$root/drill.json"
  read -r t drill_kb < "$root/drill.time"; lb_drills+=("$t")
  rtos+=("$(python3 -c "import json;print(json.load(open('$root/drill.json'))['rto_seconds'])")")
}
for i in $(seq "$REPEAT"); do
  if [ $((i % 2)) = 1 ]; then floor_backup; lb_backup; else lb_backup; floor_backup; fi
done
for i in $(seq "$REPEAT"); do
  if [ $((i % 2)) = 1 ]; then floor_drill; lb_drill; else lb_drill; floor_drill; fi
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
floor_backup=$(med "${floor_backups[@]}"); lb_backup=$(med "${lb_backups[@]}")
floor_drill=$(med "${floor_drills[@]}"); lb_drill=$(med "${lb_drills[@]}"); rto=$(med "${rtos[@]}")
echo "runs: floor backup ${floor_backups[*]}; lifeboat backup ${lb_backups[*]}" >&2
echo "runs: floor drill ${floor_drills[*]}; lifeboat drill ${lb_drills[*]}; RTO ${rtos[*]}" >&2
passed=$(python3 -c "import json;d=json.load(open('$root/drill.json'));print(d['passed'])")
artifact=$(find "$root/vault" -name '*.pgdump' -printf '%s\n' | tail -1)
floor_size=$(stat -c %s "$root/floor.pgdump")

python3 - <<PY
b, fb = $lb_backup, $floor_backup
d, fd = $lb_drill, $floor_drill
print(f"database: {$db_bytes/1e6:.0f} MB (pgbench scale $SCALE, {$rows} accounts, {$SCALE * 50000} notes); {__import__('os').cpu_count()} cores; pg_restore --jobs=$jobs; dump_format ${DUMP_FORMAT:-custom}; median of $REPEAT")
print(f"{'':34}{'floor':>10}{'lifeboat':>10}{'ratio':>8}")
print(f"{'backup (s)':34}{fb:>10.2f}{b:>10.2f}{b/fb:>8.2f}")
print(f"{'drill, whole command (s)':34}{fd:>10.2f}{d:>10.2f}{d/fd:>8.2f}")
print(f"{'drill RTO (restore + checks) (s)':34}{'':>10}{$rto:>10.2f}{$rto/fd:>8.2f}")
print(f"{'dump size (MB)':34}{$floor_size/1e6:>10.1f}{$artifact/1e6:>10.1f}")
print(f"peak RSS: backup {$backup_kb/1024:.0f} MiB, drill {$drill_kb/1024:.0f} MiB; drill passed: $passed")
PY
