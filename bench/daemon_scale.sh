#!/usr/bin/env bash
# The daemon holding many plans (file vaults, tiny data):
#   start-up time (spawn -> /readyz 200), how far actual start times fall
#   from slot + jitter under a per-minute schedule, resident memory, and
#   idle CPU once nothing is due.
#
#   bench/daemon_scale.sh              # 1000 plans backed up every 2 minutes, for 4 minutes
#   PLANS=200 MINUTES=2 SCHEDULE="* * * * *" JITTER=50s bench/daemon_scale.sh
#   LIFEBOAT_BIN=/path/to/lifeboat bench/daemon_scale.sh   # a binary already built
set -euo pipefail
cd "$(dirname "$0")/.."
PLANS=${PLANS:-1000}
MINUTES=${MINUTES:-4}
SCHEDULE=${SCHEDULE:-*/2 * * * *}
JITTER=${JITTER:-100s}
IDLE_SECONDS=${IDLE_SECONDS:-60}
for tool in sqlite3 curl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ -n "${LIFEBOAT_BIN:-}" ]; then
  BIN=$LIFEBOAT_BIN
else
  cargo build --release --quiet
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/lifeboat
fi
root=$(mktemp -d "${BENCH_DIR:-/dev/shm}/lifeboat-daemon.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null
  # KEEP_CATALOG=FILE keeps the catalog for a closer look at the jobs.
  [ -n "${KEEP_CATALOG:-}" ] && cp "$root/lifeboat.db" "$KEEP_CATALOG"
  rm -rf "$root"
}
trap cleanup EXIT
mkdir -p "$root/plans" "$root/data"
echo "hello" > "$root/data/file.txt"

. bench/lib/scale_plans.sh

write_plans "$SCHEDULE"
t0=$(date +%s.%N)
"$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" --work-dir "$root/work" \
  daemon --listen 127.0.0.1:0 --max-jobs 8 --max-jobs-per-region 8 --watch-interval 5s \
  > "$root/stdout" 2> "$root/stderr" &
pid=$!
until grep -q "health:" "$root/stdout" 2>/dev/null; do sleep 0.05; done
addr=$(sed -n 's/.*health:  http:\/\/\([^/]*\)\/.*/\1/p' "$root/stdout")
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")" = 200 ]; do sleep 0.05; done
t1=$(date +%s.%N)
startup=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
echo "started with $PLANS plans in ${startup}s; running backups ($SCHEDULE, jitter $JITTER) for $MINUTES minutes..." >&2
sleep $((MINUTES * 60))
rss_busy=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)

# Nothing due for a year: the daemon notices the edits and goes idle.
write_plans "0 0 1 1 *"
sleep 20
ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
hz=$(getconf CLK_TCK)
c0=$(ticks); s0=$(date +%s.%N)
sleep "$IDLE_SECONDS"
c1=$(ticks); s1=$(date +%s.%N)
# Plans are pruned hourly at :00 plus up to ten minutes of jitter: a
# minute inside that stretch is not idle (1,000 plans: ~1.7 prunes/s).
prunes=$(sqlite3 "$root/lifeboat.db" "SELECT count(*) FROM jobs WHERE kind = 'prune' AND started_at >= $(python3 -c "print(int($s0 * 1000))")")
rss_idle=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
kill -TERM "$pid"; wait "$pid" || true; pid=

# Only slots due after the daemon was ready count: a slot that fell due
# while it was starting runs late by design (within its start window), and
# first-run backups have no slot to be late for.
ready_ms=$(python3 -c "print(int($t1 * 1000))")
sqlite3 "$root/lifeboat.db" "SELECT started_at - scheduled_start FROM jobs WHERE kind = 'backup' AND status = 'succeeded' AND slot % 60000 = 0 AND scheduled_start >= $ready_ms" > "$root/late.txt"
python3 - "$root/late.txt" <<PY
import sys
late = sorted(int(x) for x in open(sys.argv[1]) if x.strip())
def pct(p): return late[min(len(late) - 1, int(p * len(late)))] if late else float("nan")
cpu = ($c1 - $c0) / $hz / ($s1 - $s0) * 100
print(f"plans: $PLANS; backups \"$SCHEDULE\" with jitter $JITTER for $MINUTES min, {len(late)} scheduled backups measured")
print(f"start-up (spawn -> /readyz 200): ${startup} s")
print(f"start - (slot + jitter), ms: p50 {pct(0.5)}  p99 {pct(0.99)}  max {late[-1] if late else 'n/a'}")
print(f"resident memory: {$rss_busy/1024:.0f} MiB while busy, {$rss_idle/1024:.0f} MiB idle")
print(f"idle CPU over ${IDLE_SECONDS} s: {cpu:.2f}% of one core ($prunes hourly prunes ran meanwhile)")
PY
