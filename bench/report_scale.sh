#!/usr/bin/env bash
# `report` and `status` on a large catalog (issue 5): 100 plans, 3 regions,
# a year of 15-minute backups (one point per region: ~10.5 M point rows,
# 3.5 M backup runs and jobs), 50 weekly drills per plan (5,000 drills),
# retention `max_age = "30d"` (older points are `deleted`, as the daemon's
# pruning leaves them), and one run in 400 failed (each opens a short RPO
# breach). The catalog is written by sqlite3 with recursive CTEs on the
# schema the release binary migrates, then the commands are timed with
# GNU time (wall clock and peak RSS, median of RUNS runs).
#
#   bench/report_scale.sh                       # the figures in BENCHMARKS.md
#   PLANS=10 DAYS=60 bench/report_scale.sh      # a quick try
#   KEEP=1 bench/report_scale.sh                # keep the catalog and plans (folder printed)
#   REUSE=/tmp/lifeboat-report.XXXX bench/report_scale.sh   # measure again on a kept catalog
#   LIFEBOAT_BIN=/path/to/lifeboat bench/report_scale.sh     # another build (e.g. before a change)
set -euo pipefail
cd "$(dirname "$0")/.."
PLANS=${PLANS:-100}
DAYS=${DAYS:-365}
RUNS=${RUNS:-3}
for tool in sqlite3 /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ -n "${LIFEBOAT_BIN:-}" ]; then
  BIN=$LIFEBOAT_BIN
else
  cargo build --release --quiet
  BIN=$PWD/target/release/lifeboat
fi
if [ -n "${REUSE:-}" ]; then
  root=$REUSE KEEP=1
else
  root=$(mktemp -d "${BENCH_DIR:-/tmp}/lifeboat-report.XXXXXX")
fi
cleanup() { if [ -n "${KEEP:-}" ]; then echo "kept $root" >&2; else rm -rf "$root"; fi; }
trap cleanup EXIT
mkdir -p "$root/plans"
db=$root/lifeboat.db
gen=reused

generate() {

for i in $(seq 0 $((PLANS - 1))); do
  name=$(printf 'plan-%03d' "$i")
  cat > "$root/plans/$name.toml" <<TOML
name = "$name"
owner = "team-$i@example.com"
rto = "1h"
rpo = "30m"

[backup]
schedule = "*/15 * * * *"
jitter = "1m"
primary_region = "us-east-1"
copy_to = ["us-west-2", "eu-west-1"]

[retention]
max_age = "30d"

[regions.us-east-1]
vault = "file://$root/vaults/us-east-1"
[regions.us-west-2]
vault = "file://$root/vaults/us-west-2"
[regions.eu-west-1]
vault = "file://$root/vaults/eu-west-1"

[[resources]]
name = "db"
kind = "sqlite"
path = "$root/data/$name.db"

[drill]
schedule = "0 3 * * SUN"
jitter = "30m"
region = "us-west-2"
isolate_primary = true

[[drill.checks]]
name = "orders-present"
resource = "db"
sql = "SELECT count(*) > 0 FROM orders"
TOML
done

# The schema: whatever the binary's migrations make it. Only the commands
# that start a catalog create one: a backup of a plan whose source does not
# exist, whose failed run and point are then removed.
mkdir -p "$root/init"
cat > "$root/init/init.toml" <<TOML
name = "init"
owner = "bench@example.com"
rto = "1h"
rpo = "1h"
[backup]
schedule = "0 * * * *"
primary_region = "r"
[regions.r]
vault = "file://$root/vaults/init"
[[resources]]
name = "db"
kind = "sqlite"
path = "$root/nonexistent.db"
TOML
"$BIN" --catalog "$db" --plans "$root/init" --work-dir "$root/work" backup run init >/dev/null 2>&1 || true
sqlite3 "$db" "DELETE FROM points; DELETE FROM backup_runs; DELETE FROM sqlite_sequence;"

slots=$((DAYS * 96))
drills=$((DAYS / 7 < 50 ? DAYS / 7 : 50))
now=$(( $(date +%s) / 900 * 900 * 1000 ))
t0=$((now - DAYS * 86400000))
started=$(date +%s.%N)
sqlite3 "$db" <<SQL
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
PRAGMA temp_store = MEMORY;
BEGIN;
-- Slot s of plan p ran at t0 + s·15 min + p s (a stable jitter) and is
-- failed when (s·7919 + p·104729) % 400 = 0. Ids interleave the plans
-- in time order, as a daemon running them all writes them.
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < $slots - 1),
p(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM p WHERE j < $PLANS - 1),
x AS (SELECT i, j, $t0 + i * 900000 + j * 1000 AS at, (i * 7919 + j * 104729) % 400 = 0 AS failed
      FROM s CROSS JOIN p)
INSERT INTO backup_runs (id, plan, trigger, slot, started_at, finished_at, status, error)
SELECT i * $PLANS + j + 1, printf('plan-%03d', j), 'schedule', $t0 + i * 900000, at, at + 200000,
       CASE WHEN failed THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN failed THEN '1 point(s) failed' END
FROM x;
INSERT INTO jobs (plan, kind, slot, scheduled_start, status, started_at, finished_at, run_id, error)
SELECT plan, 'backup', slot, started_at, status, started_at, finished_at, id, error FROM backup_runs;
-- One point per region: the primary's after 1 min, the copies after 2
-- and 3. A failed run has a failed primary point and no copies. Points
-- past max_age were pruned 10 minutes later.
WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < $slots - 1),
p(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM p WHERE j < $PLANS - 1),
r(k, region) AS (VALUES (0, 'us-east-1'), (1, 'us-west-2'), (2, 'eu-west-1')),
x AS (SELECT i, j, k, region, (i * $PLANS + j) * 3 + k + 1 AS id, $t0 + i * 900000 + j * 1000 AS at,
             (i * 7919 + j * 104729) % 400 = 0 AS failed
      FROM s CROSS JOIN p CROSS JOIN r)
INSERT INTO points (id, plan, resource, kind, region, run_id, source_point_id, status, started_at,
                    data_time, completed_at, deleted_at, size_bytes, content_bytes, file_count,
                    sha256, location, flags, error)
SELECT id, printf('plan-%03d', j), 'db', 'sqlite', region, i * $PLANS + j + 1,
       CASE WHEN k > 0 THEN (i * $PLANS + j) * 3 + 1 END,
       CASE WHEN failed THEN 'failed'
            WHEN at + 50 + 2592000000 + 600000 <= $now THEN 'deleted' ELSE 'complete' END,
       at, at + 50,
       CASE WHEN NOT failed THEN at + 60000 * (k + 1) END,
       CASE WHEN NOT failed AND at + 50 + 2592000000 + 600000 <= $now THEN at + 50 + 2592000000 + 600000 END,
       1048576, 4194304, 1,
       printf('%016x%016x%016x%016x', id * 2654435761, id * 40503, id * 7919, id * 104729),
       printf('file://$root/vaults/%s/plan-%03d/db/%d-%d.db.zst', region, j, at, id),
       '',
       CASE WHEN failed THEN 'snapshot in region us-east-1: source unavailable' END
FROM x WHERE NOT (failed AND k > 0);
-- Weekly drills from us-west-2, one in 20 failed; each restored the copy
-- of the slot before it and ran two checks.
WITH RECURSIVE d(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM d WHERE k < $drills - 1),
p(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM p WHERE j < $PLANS - 1),
x AS (SELECT k, j, $t0 + (k * 7 + 3) * 86400000 + 10800000 + j * 17000 AS at,
             90000 + (j * 37 + k * 11) % 60000 AS rto, (k * 3 + j) % 20 = 0 AS failed
      FROM d CROSS JOIN p)
INSERT INTO drills (id, plan, region, trigger, status, started_at, finished_at, rto_ms, rpo_ms,
                    rto_objective_ms, rpo_objective_ms, choose_ms, restore_ms, checks_ms, cleanup_ms, error)
SELECT k * $PLANS + j + 1, printf('plan-%03d', j), 'us-west-2', 'schedule',
       CASE WHEN failed THEN 'failed' ELSE 'passed' END, at, at + rto + 5000,
       CASE WHEN NOT failed THEN rto END, 600000 + (j * 1000) % 900000, 3600000, 1800000,
       10, rto - 2000, 1990, 5000,
       CASE WHEN failed THEN 'check orders-present failed' END
FROM x;
INSERT INTO drill_points (drill_id, point_id)
SELECT id, ((started_at - $t0 - CAST(substr(plan, 6) AS INTEGER) * 1000) / 900000 * $PLANS
            + CAST(substr(plan, 6) AS INTEGER)) * 3 + 2
FROM drills;
INSERT INTO drill_checks (drill_id, name, resource, passed, detail, ms)
SELECT id, 'restore', 'db', 1, 'database copy matches the manifest''s sha256', 900 FROM drills;
INSERT INTO drill_checks (drill_id, name, resource, passed, detail, ms)
SELECT id, 'orders-present', 'db', status = 'passed',
       CASE WHEN status = 'passed' THEN 'returned 1' ELSE 'returned 0, which is not true' END, 40
FROM drills;
COMMIT;
ANALYZE;
SQL
gen="$(python3 -c "import time; print(f'{time.time() - $started:.0f}')") s"
}
[ -n "${REUSE:-}" ] || generate
# Migrations the binary adds (indexes) are applied once, outside the timings.
"$BIN" --catalog "$db" --plans "$root/plans" status >/dev/null

count() { sqlite3 "$db" "$1"; }
points=$(count "SELECT COUNT(*) FROM points")
complete=$(count "SELECT COUNT(*) FROM points WHERE status = 'complete'")
size=$(du -m "$db" | cut -f1)

# Median wall time and peak RSS of RUNS runs of a command.
measure() {
  local label=$1; shift
  local times=() rss=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$root/time.txt" "$BIN" --catalog "$db" --plans "$root/plans" "$@" >"$root/out.txt" 2>"$root/err.txt" || {
      code=$?; [ "$code" = 1 ] || { echo "$label failed ($code):" >&2; cat "$root/err.txt" >&2; exit 1; }
    }
    read -r t m < <(tail -1 "$root/time.txt")
    times+=("$t")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  printf '%-34s %8.2f s %8d MiB    (runs: %s)\n' "$label" "$median" $((rss / 1024)) "${times[*]}"
}

echo "catalog: $PLANS plans, 3 regions, $DAYS days of 15-minute points: $points point rows ($complete complete), $(count "SELECT COUNT(*) FROM drills") drills, $(count "SELECT COUNT(*) FROM backup_runs") runs; $size MB; generated: $gen"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %12s\n' "command (median of $RUNS)" "time" "peak RSS"
measure "report (30d default, md)" report
measure "report --since 365d (md)" report --since 365d
measure "report --since 365d --format json" report --since 365d --format json
measure "report (30d, html)" report --format html
measure "status" status
echo "targets: report < 2 s, status < 0.2 s, peak RSS < 200 MB"
