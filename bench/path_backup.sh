#!/usr/bin/env bash
# Backup and drill of a `path` resource against the floor set by the
# standard tools on the same data in the same run:
#   backup floor:  tar -cf - . | zstd -1 -T0
#   drill floor:   zstd -d | tar -x, then sha256sum of every file
# Prints wall times, the ratios, and Lifeboat's peak resident memory.
#
#   bench/path_backup.sh            # ~600 MB: 20,000 small files + 4 large ones
#   SCALE=2 bench/path_backup.sh    # twice the data (memory must not grow with it)
#   LIFEBOAT_BIN=/path/to/lifeboat bench/path_backup.sh   # a binary already built
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-1}
for tool in zstd tar sha256sum python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install zstd tar coreutils python3 time)" >&2; exit 1; }
done
# LIFEBOAT_BIN: a binary already built (as the other bench scripts take it).
if [ -n "${LIFEBOAT_BIN:-}" ]; then
  BIN=$LIFEBOAT_BIN
else
  cargo build --release --quiet
  BIN=$PWD/target/release/lifeboat
fi

# On tmpfs by default: on a disk, creating thousands of files right after
# deleting thousands (ext4's inode allocator) dominates both sides and
# varies from run to run; BENCH_DIR=/some/disk/path to measure there.
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
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# Warm the page cache the same way for everyone.
tar -C "$data" -cf - . > /dev/null

t0=$(now); tar -C "$data" -cf - . | zstd -1 -T0 -q -o "$root/floor.tar.zst"; t1=$(now)
floor_backup=$(secs "$t0" "$t1")
mkdir "$root/out"
t0=$(now)
zstd -d -q -c "$root/floor.tar.zst" | tar -C "$root/out" -xf -
find "$root/out" -type f -print0 | xargs -0 sha256sum > /dev/null
t1=$(now)
floor_drill=$(secs "$t0" "$t1")
rm -rf "$root/out"

/usr/bin/time -f "%e %M" -o "$root/backup.time" "$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" --work-dir "$root/work" backup run bench > /dev/null
read -r lb_backup backup_kb < "$root/backup.time"
/usr/bin/time -f "%e %M" -o "$root/drill.time" "$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" --work-dir "$root/work" drill run bench --json > "$root/drill.json"
read -r lb_drill drill_kb < "$root/drill.time"
rto=$(python3 -c "import json;d=json.load(open('$root/drill.json'));print(d['rto_seconds'])")
passed=$(python3 -c "import json;d=json.load(open('$root/drill.json'));print(d['passed'])")
artifact=$(du -sb "$root/vault" | cut -f1)
floor_size=$(stat -c %s "$root/floor.tar.zst")

python3 - <<PY
b, fb = $lb_backup, $floor_backup
d, fd = $lb_drill, $floor_drill
print(f"data: {$bytes/1e6:.0f} MB in {$files} files; {__import__('os').cpu_count()} cores")
print(f"{'':34}{'floor':>10}{'lifeboat':>10}{'ratio':>8}")
print(f"{'backup (s)':34}{fb:>10.2f}{b:>10.2f}{b/fb:>8.2f}")
print(f"{'drill, whole command (s)':34}{fd:>10.2f}{d:>10.2f}{d/fd:>8.2f}")
print(f"{'drill RTO (restore + checks) (s)':34}{'':>10}{$rto:>10.2f}{$rto/fd:>8.2f}")
print(f"{'compressed size (MB)':34}{$floor_size/1e6:>10.1f}{$artifact/1e6:>10.1f}")
print(f"peak RSS: backup {$backup_kb/1024:.0f} MiB, drill {$drill_kb/1024:.0f} MiB; drill passed: $passed")
PY
