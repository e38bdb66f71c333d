#!/usr/bin/env bash
# `lifeboat restore` of a `path` resource against the floor and the peer,
# on the same data in the same run (the tree of bench/path_backup.sh):
#   floor: zstd -d | tar -x of a tar.zst of the tree, then sha256sum of
#          every file (decompress, write, and hash what was written)
#   peer:  restic restore --verify from a restic repository of the tree
#   lifeboat: restore --to a new folder (restore, verify every byte
#          against the manifest, the plan's checks, put in place), and
#          drill run (the same restore into its scratch folder, the checks,
#          the catalog's drill record; the scratch removed)
# RUNS rounds (default 3), the three tools alternating within each round;
# prints each round, the medians and the ratios, and the load average.
#
#   bench/restore.sh               # ~600 MB: 20,000 small files + 4 large ones
#   RUNS=5 SCALE=2 bench/restore.sh
#   LIFEBOAT_BIN=target/debug/lifeboat RUNS=1 bench/restore.sh   # try the script
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-1}
RUNS=${RUNS:-3}
for tool in zstd tar sha256sum python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install zstd tar coreutils python3)" >&2; exit 1; }
done
if ! command -v restic >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq restic >/dev/null
  else
    echo "missing restic (apt-get install restic)" >&2; exit 1
  fi
fi
# LIFEBOAT_BIN: a binary already built (to try the script; figures come
# from the release build).
if [ -z "${LIFEBOAT_BIN:-}" ]; then
  cargo build --release --quiet
fi
BIN=${LIFEBOAT_BIN:-$PWD/target/release/lifeboat}

# On tmpfs by default (see bench/path_backup.sh); BENCH_DIR to measure on a disk.
base=${BENCH_DIR:-/dev/shm}
root=$(mktemp -d "$base/lifeboat-bench.XXXXXX")
[ -n "${KEEP:-}" ] && echo "keeping $root" >&2 || trap 'rm -rf "$root"' EXIT
data=$root/data
echo "generating data in $data (scale $SCALE)..." >&2
python3 bench/lib/gen_tree.py "$data" "$SCALE"
bytes=$(du -sb "$data" | cut -f1)
files=$(find "$data" -type f | wc -l)

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
name = "tree"
kind = "path"
path = "$data"
[drill]
region = "local"
TOML
lb() { "$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" --work-dir "$root/work" "$@"; }
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); python3 -c "print(f'{$t1 - $t0:.2f}')"; }

echo "backing up with each tool..." >&2
lb backup run bench >/dev/null
tar -C "$data" -cf - . | zstd -1 -T0 -q -o "$root/floor.tar.zst"
export RESTIC_REPOSITORY=$root/restic RESTIC_PASSWORD=bench
restic init --quiet >/dev/null
(cd "$data" && restic backup --quiet . >/dev/null)

floor() {
  mkdir "$root/out"
  zstd -d -q -c "$root/floor.tar.zst" | tar -C "$root/out" -xf -
  find "$root/out" -type f -print0 | xargs -0 sha256sum > /dev/null
}
peer() { restic restore latest --verify --quiet --target "$root/out"; }
ours() { lb restore bench --to "$root/out" --json > "$root/restore.json"; }
drill() { lb drill run bench --json > "$root/drill.json"; }

f=(); p=(); l=(); d=()
for run in $(seq "$RUNS"); do
  sync; f+=("$(timed floor)"); rm -rf "$root/out"
  sync; p+=("$(timed peer)"); rm -rf "$root/out"
  sync; l+=("$(timed ours)")
  python3 -c "import json,sys; d=json.load(open('$root/restore.json')); sys.exit(d['status'] != 'succeeded')" ||
    { echo "lifeboat restore did not succeed: $(cat "$root/restore.json")" >&2; exit 1; }
  diff -r --no-dereference "$data" "$root/out" >/dev/null ||
    { echo "the restored tree differs from the source" >&2; exit 1; }
  rm -rf "$root/out"
  sync; d+=("$(timed drill)")
  python3 -c "import json,sys; d=json.load(open('$root/drill.json')); sys.exit(d['status'] != 'passed')" ||
    { echo "lifeboat drill did not pass: $(cat "$root/drill.json")" >&2; exit 1; }
  echo "run $run: floor ${f[-1]} s, restic ${p[-1]} s, lifeboat restore ${l[-1]} s, drill ${d[-1]} s" >&2
done

python3 - "${f[*]}" "${p[*]}" "${l[*]}" "${d[*]}" <<PY
import os, statistics, sys
f, p, l, d = (statistics.median(map(float, a.split())) for a in sys.argv[1:5])
print(f"data: {$bytes/1e6:.0f} MB in {$files} files; {os.cpu_count()} cores; median of $RUNS runs; load average {os.getloadavg()[0]:.2f}")
print(f"{'restore (s)':40}{'time':>8}{'restore / it':>14}{'drill / it':>12}")
print(f"{'floor: zstd -d | tar -x + sha256sum':40}{f:>8.2f}{l/f:>14.2f}{d/f:>12.2f}")
print(f"{'restic restore --verify':40}{p:>8.2f}{l/p:>14.2f}{d/p:>12.2f}")
print(f"{'lifeboat restore':40}{l:>8.2f}")
print(f"{'lifeboat drill run':40}{d:>8.2f}")
print("runs (s): floor " + "${f[*]}" + "; restic " + "${p[*]}" + "; restore " + "${l[*]}" + "; drill " + "${d[*]}")
PY
