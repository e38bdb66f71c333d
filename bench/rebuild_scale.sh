#!/usr/bin/env bash
# `catalog rebuild` of a large vault (issue 12: 10,000 points in under
# 10 s from a file:// vault). One real backup of a small folder gives a
# point's artifact and manifest; the vault is then filled with N points
# made from it (each manifest naming its own point, data time and key;
# artifacts hard-linked, so the vault is N real manifests and N artifact
# entries without N copies of the bytes), the catalog is deleted, and the
# rebuild into a new catalog is timed with GNU time (wall clock and peak
# RSS, median of RUNS runs; each run into a fresh catalog).
#
#   bench/rebuild_scale.sh                  # the figures in BENCHMARKS.md
#   POINTS=1000 bench/rebuild_scale.sh      # a quick try
#   LIFEBOAT_BIN=/path/to/lifeboat bench/rebuild_scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
POINTS=${POINTS:-10000}
RUNS=${RUNS:-3}
for tool in /usr/bin/time python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ -n "${LIFEBOAT_BIN:-}" ]; then
  BIN=$LIFEBOAT_BIN
else
  cargo build --release --quiet
  BIN=$PWD/target/release/lifeboat
fi
root=$(mktemp -d "${BENCH_DIR:-/tmp}/lifeboat-rebuild.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/plans" "$root/data"
for i in $(seq 1 20); do head -c 4096 /dev/urandom > "$root/data/f$i"; done
cat > "$root/plans/shop.toml" <<TOML
name = "shop"
owner = "sre@example.com"
rto = "1h"
rpo = "30m"

[backup]
schedule = "*/15 * * * *"
primary_region = "primary"

[regions.primary]
vault = "file://$root/vault"

[[resources]]
name = "files"
kind = "path"
path = "$root/data"

[drill]
schedule = "0 3 * * *"
region = "primary"
TOML
lb() { "$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" --work-dir "$root/work" "$@"; }
lb backup run shop >/dev/null

python3 - "$root/vault/shop/files" "$POINTS" <<'PY'
import json, os, sys, datetime
folder, n = sys.argv[1], int(sys.argv[2])
[manifest] = [f for f in os.listdir(folder) if f.endswith(".manifest.json")]
base = manifest[: -len(".manifest.json")]
artifact = os.path.join(folder, base + ".tar.zst")
m = json.load(open(os.path.join(folder, manifest)))
t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
for i in range(2, n + 1):
    t = t0 + datetime.timedelta(minutes=15 * i)
    stamp = t.strftime("%Y%m%dT%H%M%S") + "000Z"
    name = f"{stamp}-p{i}"
    m["point"]["id"] = i
    m["data_time"] = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with open(os.path.join(folder, name + ".manifest.json"), "w") as f:
        json.dump(m, f)
    os.link(artifact, os.path.join(folder, name + ".tar.zst"))
PY

times=()
for run in $(seq 1 "$RUNS"); do
  rm -f "$root"/lifeboat.db*
  /usr/bin/time -f '%e %M' -o "$root/time" "$BIN" --catalog "$root/lifeboat.db" \
    --plans "$root/plans" --work-dir "$root/work" catalog rebuild --from primary >"$root/out"
  read -r secs rss <"$root/time"
  echo "run $run: $(cat "$root/out")"
  echo "run $run: ${secs} s, peak RSS $((rss / 1024)) MiB"
  times+=("$secs")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
echo "catalog rebuild of $POINTS points from a file:// vault: median ${median} s (target < 10 s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
