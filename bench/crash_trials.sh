#!/usr/bin/env bash
# Crash trials (issue 13): kill -9 at random instants during backups (and
# their copies), drills, prunes, verifies, restores, the daemon's first
# backup and the daemon's own scheduled backups, drills and verifies, then
# check after each restart that nothing was lost or left:
#   - the catalog passes `PRAGMA integrity_check`;
#   - no point, backup run, job, drill or restore is left `running` once the
#     next run finished;
#   - no (plan, resource, region, run) holds two complete points;
#   - no drill scratch folder (work/drills/*) and no restore staging
#     (`.lifeboat-restore-*`) is left;
#   - no `.tmp-` file is left in a vault after the next prune;
#   - `lifeboat verify --read-data` passes on every complete point;
#   - a restore gives back exactly the data (diff -r, and the SQLite rows);
#   - the next backup, prune and drill succeed.
# Prints a table per phase killed and exits non-zero on any violation.
#
#   bench/crash_trials.sh                         # 100 trials, 200 MB of data
#   TRIALS=12 DATA_MB=32 bench/crash_trials.sh    # a quick try
#   PHASES="backup drill" SEED=7 bench/crash_trials.sh
#   LIFEBOAT_BIN=/path/to/lifeboat bench/crash_trials.sh   # default: the debug build
#
# The daemon cannot be killed at a random instant of a slot (cron slots are
# a minute apart), so each `daemon` trial starts it on a fresh catalog, where
# its plan has no point yet and gets a first backup (snapshot and copy) at
# once; the trial kills it somewhere in there, starts it again and waits for
# that backup to succeed. Each `busy` trial runs a daemon whose plan backs
# up every 2 s, drills every 3 s and verifies every 5 s (seconds-level
# cron), kills it after 0.5-6 s, whatever it is doing, starts it again until
# it has backed up and drilled once more, and stops it with SIGTERM. Every
# other phase kills the CLI command.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-100}
DATA_MB=${DATA_MB:-200}
SEED=${SEED:-$$}
PHASES=${PHASES:-"backup drill prune verify restore daemon busy"}
RANDOM=$SEED
for tool in sqlite3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ -n "${LIFEBOAT_BIN:-}" ]; then
  BIN=$LIFEBOAT_BIN
else
  cargo build --quiet
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug/lifeboat
fi
root=$(mktemp -d "${BENCH_DIR:-/tmp}/lifeboat-crash.XXXXXX")
daemon_pid=
cleanup() {
  if [ -n "$daemon_pid" ]; then kill -9 "$daemon_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$root"
}
trap cleanup EXIT
log="$root/log"
mkdir -p "$root/plans" "$root/data/files" "$root/restored"

# --- the data: DATA_MB of incompressible files, small files, a SQLite db ---
blobs=$(( DATA_MB >= 8 ? DATA_MB / 8 : 1 ))
for ((i = 0; i < blobs; i++)); do
  head -c "$(( (DATA_MB >= 8 ? 8 : DATA_MB) << 20 ))" /dev/urandom > "$root/data/files/blob-$i.bin"
done
mkdir -p "$root/data/files/small"
for ((i = 0; i < 300; i++)); do
  printf 'small file %d %d\n' "$i" "$RANDOM" > "$root/data/files/small/f$i.txt"
done
sqlite3 "$root/data/app.db" "CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT);
  INSERT INTO orders (note) VALUES ('first');"

plan() { # $1 = name, $2 = vaults folder
  cat <<TOML
name = "$1"
owner = "sre@example.com"
rto = "1h"
rpo = "1d"
[backup]
schedule = "0 0 1 1 *"
primary_region = "primary"
copy_to = ["dr"]
[retention]
keep_last = 2
[regions.primary]
vault = "file://$2/primary"
[regions.dr]
vault = "file://$2/dr"
[[resources]]
name = "files"
kind = "path"
path = "$root/data/files"
[[resources]]
name = "db"
kind = "sqlite"
path = "$root/data/app.db"
[drill]
region = "dr"
[[drill.checks]]
name = "orders-present"
resource = "db"
sql = "SELECT count(*) > 0 FROM orders"
TOML
}
plan shop "$root/vaults" > "$root/plans/shop.toml"
mkdir -p "$root/dplans" "$root/bplans"
plan dshop "$root/dvaults" > "$root/dplans/dshop.toml"
# The busy daemon's plan: every kind of job, seconds apart.
plan bshop "$root/bvaults" | sed \
  -e 's|^schedule = "0 0 1 1 \*"|schedule = "*/2 * * * * *"\njitter = "0s"\nstart_window = "1s"|' \
  -e 's|^region = "dr"|region = "dr"\nschedule = "*/3 * * * * *"\njitter = "0s"|' \
  > "$root/bplans/bshop.toml"
printf '[verify]\nschedule = "*/5 * * * * *"\njitter = "0s"\nread_data = true\n' >> "$root/bplans/bshop.toml"

# Arrays, not functions: a function run in the background is a subshell,
# and kill -9 would hit the subshell and leave lifeboat running.
lb=("$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" --work-dir "$root/work")
dlb=("$BIN" --catalog "$root/daemon.db" --plans "$root/dplans" --work-dir "$root/dwork")
blb=("$BIN" --catalog "$root/busy.db" --plans "$root/bplans" --work-dir "$root/bwork")
now_ms() { date +%s%3N; }

# --- violations ----------------------------------------------------------
violations=0
declare -A trials=() landed=() bad=()
violation() { # $1 = phase, $2.. = what
  local phase=$1; shift
  violations=$((violations + 1))
  bad[$phase]=$(( ${bad[$phase]:-0} + 1 ))
  echo "VIOLATION [$phase trial $trial]: $*" | tee -a "$log" >&2
}
must() { # $1 = phase, $2 = what, then the command
  local phase=$1 what=$2; shift 2
  if ! "$@" >>"$log" 2>&1; then violation "$phase" "$what failed (see $log)"; fi
}
# Never creates the file (the daemon must find none, or its own); not
# read-only: after a kill -9 the first reader recovers the WAL's index.
q() { [ -f "$1" ] && sqlite3 -batch -noheader -cmd ".timeout 10000" "$1" "$2"; }

# Everything that must hold once the next runs finished.
check_catalog() { # $1 = phase, $2 = catalog, $3 = work dir, $4 = vaults
  local phase=$1 db=$2 work=$3 vaults=$4 n
  n=$(q "$db" "PRAGMA integrity_check")
  [ "$n" = ok ] || violation "$phase" "integrity_check: $n"
  for table in points backup_runs jobs drills restores; do
    n=$(q "$db" "SELECT count(*) FROM $table WHERE status = 'running'")
    if [ "$n" != 0 ]; then
      violation "$phase" "$n $table still running: $(q "$db" "SELECT * FROM $table WHERE status = 'running'" | tr '\n' ' ')"
    fi
  done
  n=$(q "$db" "SELECT count(*) FROM (SELECT 1 FROM points WHERE status = 'complete'
        GROUP BY plan, resource, region, run_id HAVING count(*) > 1)")
  [ "$n" = 0 ] || violation "$phase" "$n (plan, resource, region, run) with two complete points"
  n=$(q "$db" "SELECT count(*) FROM (SELECT 1 FROM jobs GROUP BY plan, kind, slot HAVING count(*) > 1)")
  [ "$n" = 0 ] || violation "$phase" "$n slots with two jobs"
  n=$(q "$db" "SELECT count(*) FROM points WHERE status = 'complete' AND (sha256 IS NULL OR completed_at IS NULL)")
  [ "$n" = 0 ] || violation "$phase" "$n complete points without hash or completion time"
  if [ -d "$work/drills" ] && [ -n "$(ls -A "$work/drills")" ]; then
    violation "$phase" "drill scratch left: $(ls -A "$work/drills" | tr '\n' ' ')"
  fi
  n=$(find "$root/restored" "$root/data" -name '*lifeboat-restore*' | head -3)
  [ -z "$n" ] || violation "$phase" "restore staging left: $n"
  n=$(find "$vaults" -name '*.tmp-*' 2>/dev/null | head -3)
  [ -z "$n" ] || violation "$phase" "temporary files left in the vault: $n"
}

# Run "$@" in the background and kill -9 it after $1 ms; sets `hit` to 1
# when it was still running then.
kill_after() {
  local ms=$1; shift
  "$@" >>"$log" 2>&1 &
  local pid=$!
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then hit=1; else hit=0; fi
  wait "$pid" 2>/dev/null || true
}
rand_ms() { # uniform in [0, $1)
  echo $(( (RANDOM * 32768 + RANDOM) % ($1 > 0 ? $1 : 1) ))
}
timed() { # runs "$@", prints its wall time in ms
  local t0; t0=$(now_ms)
  "$@" >>"$log" 2>&1 || { echo "calibration: $* failed (see $log)" >&2; exit 1; }
  echo $(( $(now_ms) - t0 ))
}

# --- calibration: how long each phase lasts here -------------------------
echo "data: $DATA_MB MB in $root; calibrating..." >&2
declare -A dur=()
dur[backup]=$(timed "${lb[@]}" backup run shop)
dur[drill]=$(timed "${lb[@]}" drill run shop)
dur[verify]=$(timed "${lb[@]}" verify shop --read-data)
dur[restore]=$(timed "${lb[@]}" restore shop --to "files=$root/restored/files" --to "db=$root/restored/app.db")
rm -rf "$root/restored/files" "$root/restored/app.db"
"${lb[@]}" backup run shop >>"$log" 2>&1
"${lb[@]}" backup run shop >>"$log" 2>&1
dur[prune]=$(timed "${lb[@]}" prune shop)
stop_daemon() { # SIGTERM: a graceful stop, which must leave nothing running
  kill -TERM "$daemon_pid" 2>/dev/null || true
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=
}
daemon_backup() { # starts the daemon on a fresh catalog, waits for its backup
  "${dlb[@]}" daemon --listen 127.0.0.1:0 >>"$log" 2>&1 &
  daemon_pid=$!
  wait_daemon_backup
  stop_daemon
}
# Until a backup run succeeded and no run or job is running: a job the
# killed daemon left `running` is recorded interrupted once the new one has
# started (a SIGTERM before the process set its handlers, in its first
# milliseconds, ends it as a kill would).
wait_daemon_backup() {
  local deadline=$(( $(date +%s) + 120 )) ok
  while :; do
    ok=$(q "$root/daemon.db" "SELECT (SELECT count(*) FROM backup_runs WHERE status = 'succeeded') > 0
          AND (SELECT count(*) FROM backup_runs WHERE status = 'running') = 0
          AND (SELECT count(*) FROM jobs WHERE status = 'running') = 0" 2>/dev/null || true)
    [ "$ok" = 1 ] && return 0
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    kill -0 "$daemon_pid" 2>/dev/null || return 1
    sleep 0.1
  done
}
dur[daemon]=$(timed daemon_backup)
rm -rf "$root/daemon.db"* "$root/dvaults" "$root/dwork"
for p in "${!dur[@]}"; do echo "  $p lasts ${dur[$p]} ms" >&2; done

# --- one trial per phase --------------------------------------------------
# The phase's own name for where the kill landed: a backup's snapshot or
# its copy, from which of its points exist.
backup_where() { # $1 = catalog
  local run dr
  run=$(q "$1" "SELECT max(id) FROM backup_runs" 2>/dev/null || true)
  [ -n "$run" ] || { echo "start"; return; }
  dr=$(q "$1" "SELECT count(*) FROM points WHERE run_id = $run AND region = 'dr'" || echo 0)
  if [ "${dr:-0}" -gt 0 ]; then echo "copy"; else echo "snapshot"; fi
}

# What the next runs must do after any kill: back up, prune, verify every
# byte, drill. Then the catalog checks.
next_runs() { # $1 = phase
  must "$1" "next backup" "${lb[@]}" backup run shop
  must "$1" "next prune" "${lb[@]}" prune shop
  must "$1" "verify --read-data" "${lb[@]}" verify shop --read-data
  must "$1" "next drill" "${lb[@]}" drill run shop
  check_catalog "$1" "$root/lifeboat.db" "$root/work" "$root/vaults"
}

trial_backup() {
  sqlite3 "$root/data/app.db" "INSERT INTO orders (note) VALUES ('trial $trial')"
  kill_after "$(rand_ms $(( dur[backup] * 11 / 10 )))" "${lb[@]}" backup run shop
  where=$(backup_where "$root/lifeboat.db")
  next_runs backup
}
trial_drill() {
  kill_after "$(rand_ms $(( dur[drill] * 11 / 10 )))" "${lb[@]}" drill run shop
  next_runs drill
}
trial_verify() {
  kill_after "$(rand_ms $(( dur[verify] * 11 / 10 )))" "${lb[@]}" verify shop --read-data
  next_runs verify
}
trial_prune() {
  # Something to delete: one point per resource and region past keep_last.
  must prune "backup before the prune" "${lb[@]}" backup run shop
  kill_after "$(rand_ms $(( dur[prune] * 11 / 10 )))" "${lb[@]}" prune shop
  next_runs prune
}
trial_restore() {
  local files=$root/restored/files-$trial db=$root/restored/app-$trial.db
  kill_after "$(rand_ms $(( dur[restore] * 11 / 10 )))" \
    "${lb[@]}" restore shop --to "files=$files" --to "db=$db"
  # The next restore finishes the job: into the same places, replacing
  # whatever the killed one put in place.
  must restore "next restore" "${lb[@]}" restore shop --to "files=$files" --to "db=$db" --overwrite
  if ! diff -r "$root/data/files" "$files" >>"$log" 2>&1; then
    violation restore "restored files differ from the data"
  fi
  local want got
  want=$(q "$root/data/app.db" "SELECT count(*) FROM orders")
  got=$(q "$db" "SELECT count(*) FROM orders" 2>&1 || true)
  [ "$want" = "$got" ] || violation restore "restored db has $got orders, the data $want"
  next_runs restore
  rm -rf "$files" "$db"
}
trial_daemon() {
  sqlite3 "$root/data/app.db" "INSERT INTO orders (note) VALUES ('trial $trial')"
  "${dlb[@]}" daemon --listen 127.0.0.1:0 >>"$log" 2>&1 &
  daemon_pid=$!
  local ms; ms=$(rand_ms $(( dur[daemon] * 11 / 10 )))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if kill -9 "$daemon_pid" 2>/dev/null; then hit=1; else hit=0; fi
  wait "$daemon_pid" 2>/dev/null || true
  where=$(backup_where "$root/daemon.db")
  # Started again, it records what was interrupted and backs up at once.
  "${dlb[@]}" daemon --listen 127.0.0.1:0 >>"$log" 2>&1 &
  daemon_pid=$!
  if ! wait_daemon_backup; then violation daemon "no backup succeeded after the restart"; fi
  stop_daemon
  must daemon "next prune" "${dlb[@]}" prune dshop
  must daemon "verify --read-data" "${dlb[@]}" verify dshop --read-data
  must daemon "next drill" "${dlb[@]}" drill run dshop
  must daemon "next backup" "${dlb[@]}" backup run dshop
  check_catalog daemon "$root/daemon.db" "$root/dwork" "$root/dvaults"
  rm -rf "$root/daemon.db"* "$root/dvaults" "$root/dwork"
}

# Jobs of the busy daemon that succeeded since $1 (ms) of kind $2.
busy_done() {
  q "$root/busy.db" "SELECT count(*) FROM jobs WHERE kind = '$2' AND status = 'succeeded' AND started_at >= $1" 2>/dev/null || echo 0
}
trial_busy() {
  sqlite3 "$root/data/app.db" "INSERT INTO orders (note) VALUES ('trial $trial')"
  "${blb[@]}" daemon --listen 127.0.0.1:0 >>"$log" 2>&1 &
  daemon_pid=$!
  local ms; ms=$(( 500 + $(rand_ms 5500) ))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if kill -9 "$daemon_pid" 2>/dev/null; then hit=1; else hit=0; fi
  wait "$daemon_pid" 2>/dev/null || true
  where=$(q "$root/busy.db" "SELECT group_concat(kind, '+') FROM (SELECT DISTINCT kind FROM jobs WHERE status = 'running' ORDER BY kind)" 2>/dev/null || true)
  where=${where:-idle}
  # Started again: it records what was interrupted and goes on; it must
  # back up and drill successfully once more before it is stopped.
  local restarted; restarted=$(now_ms)
  "${blb[@]}" daemon --listen 127.0.0.1:0 >>"$log" 2>&1 &
  daemon_pid=$!
  local deadline=$(( $(date +%s) + 60 ))
  while [ "$(busy_done "$restarted" backup)" = 0 ] || [ "$(busy_done "$restarted" drill)" = 0 ]; do
    if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 "$daemon_pid" 2>/dev/null; then
      violation busy "no backup and drill succeeded within 60 s of the restart"
      break
    fi
    sleep 0.2
  done
  stop_daemon
  must busy "next prune" "${blb[@]}" prune bshop
  must busy "verify --read-data" "${blb[@]}" verify bshop --read-data
  must busy "next drill" "${blb[@]}" drill run bshop
  check_catalog busy "$root/busy.db" "$root/bwork" "$root/bvaults"
  rm -rf "$root/busy.db"* "$root/bvaults" "$root/bwork"
}

read -r -a phases <<<"$PHASES"
declare -A where_counts=()
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for ((trial = 1; trial <= TRIALS; trial++)); do
  phase=${phases[$(( (trial - 1) % ${#phases[@]} ))]}
  hit=0 where=
  "trial_$phase"
  trials[$phase]=$(( ${trials[$phase]:-0} + 1 ))
  landed[$phase]=$(( ${landed[$phase]:-0} + hit ))
  if [ -n "$where" ] && [ "$hit" = 1 ]; then
    where_counts["$phase/$where"]=$(( ${where_counts["$phase/$where"]:-0} + 1 ))
  fi
  echo "trial $trial/$TRIALS: $phase$( [ "$hit" = 1 ] && echo " killed${where:+ during $where}" || echo " (had finished)"); violations so far: $violations" >&2
done
elapsed=$(( $(date +%s) - t_start ))

echo
printf '%-10s %7s %13s %11s\n' phase trials "killed alive" violations
for phase in "${phases[@]}"; do
  printf '%-10s %7s %13s %11s\n' "$phase" "${trials[$phase]:-0}" "${landed[$phase]:-0}" "${bad[$phase]:-0}"
done
for k in "${!where_counts[@]}"; do echo "  $k: ${where_counts[$k]} kills"; done | sort
echo
kills=0
for phase in "${phases[@]}"; do kills=$(( kills + ${landed[$phase]:-0} )); done
echo "$kills kills landed while the command ran"
echo "$TRIALS trials, $violations violations, ${elapsed}s, $DATA_MB MB, seed $SEED"
echo "calibrated durations (ms): $(for p in "${!dur[@]}"; do printf '%s=%s ' "$p" "${dur[$p]}"; done)"
echo "load average: $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end ($(nproc) cores)"
[ "$violations" = 0 ]
