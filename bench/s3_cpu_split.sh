#!/usr/bin/env bash
# Where the CPU of a 1 GiB upload into S3 goes, client and server apart:
# on a 2-core machine the local S3 server (s3s-fs) and the client share the
# cores, so every second of client CPU is a second the server waits for.
# For `lifeboat backup run` (a `path` resource, one S3 region: tar + zstd +
# SHA-256s + upload), `Vault::put` alone (examples/vault_put.rs) and
# `aws s3 cp`, interleaved RUNS times, prints wall time, the client's CPU
# (user + system, GNU time), the server's CPU over the same interval
# (/proc/PID/stat) and the client's page faults (perf stat).
#
#   bench/s3_cpu_split.sh                  # 1 GiB, 3 runs, the release build
#   PROFILE=profiling RUNS=5 bench/s3_cpu_split.sh
#
# Uses the s3s-fs and AWS CLI that bench/s3_vault.sh installs (run it once
# first); needs perf.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/s3s_server.sh
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
PROFILE=${PROFILE:-release}
CACHE=${BENCH_CACHE:-$HOME/.cache/lifeboat-bench}
S3S=$CACHE/s3s-fs-${S3S_FS_VERSION:-0.14.1}/bin/s3s-fs
AWS=$CACHE/awscli-${AWSCLI_VERSION:-1.46.3}/bin/aws
for tool in "$S3S" "$AWS"; do
  [ -x "$tool" ] || { echo "missing $tool: run bench/s3_vault.sh once first" >&2; exit 1; }
done
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 1; }
cargo build --profile "$PROFILE" --quiet --bin lifeboat --example vault_put
BIN=${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE/lifeboat
PUT=${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE/examples/vault_put

root=$(mktemp -d "${BENCH_DIR:-/dev/shm}/lifeboat-s3cpu.XXXXXX")
server=
cleanup() {
  stop_s3s
  rm -rf "$root"
}
trap cleanup EXIT
mkdir -p "$root/data" "$root/s3" "$root/plans"
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$root/data/blob.bin"
start_s3s
"$AWS" --endpoint-url "$endpoint" s3 mb s3://bench > /dev/null
write_s3_plan bench
server_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
# measure NAME CMD...: one line of figures; then empties the bucket.
measure() {
  local name=$1; shift
  local before after
  before=$(server_ticks)
  /usr/bin/time -f "%e %U %S" -o "$root/time" perf stat -x, -e page-faults -o "$root/perf" "$@" > /dev/null
  after=$(server_ticks)
  read -r wall user sys < "$root/time"
  faults=$(grep page-faults "$root/perf" | cut -d, -f1)
  echo "$name $wall $user $sys $(( after - before )) $faults" >> "$root/results"
  rm -rf "$root/s3/bench/"*
}
cat "$root/data/blob.bin" > /dev/null
for run in $(seq "$RUNS"); do
  echo "run $run of $RUNS..." >&2
  measure "lifeboat backup run" "$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" \
    --work-dir "$root/work" backup run bench
  measure "Vault::put" "$PUT" s3://bench/raw us-east-1 blob.bin "$root/data/blob.bin" "$endpoint"
  measure "aws s3 cp" "$AWS" --endpoint-url "$endpoint" s3 cp --only-show-errors \
    "$root/data/blob.bin" s3://bench/aws/blob.bin
done
python3 - "$root/results" "$SIZE_MIB" "$RUNS" "$(uptime | sed 's/.*load average: //')" <<'PY'
import os, statistics, sys
path, size_mib, runs, load = sys.argv[1:]
hz = os.sysconf("SC_CLK_TCK")
rows = {}
for line in open(path):
    *name, wall, user, sys_, ticks, faults = line.split()
    rows.setdefault(" ".join(name), []).append(
        (float(wall), float(user) + float(sys_), int(ticks) / hz, int(faults)))
print(f"data: {size_mib} MiB of random bytes; {os.cpu_count()} cores; median of {runs}; "
      f"load average at the end {load}")
print(f"{'':24}{'wall s':>8}{'client CPU s':>14}{'server CPU s':>14}{'page faults':>13}")
for name, v in rows.items():
    med = [statistics.median(x[i] for x in v) for i in range(4)]
    print(f"{name:24}{med[0]:>8.2f}{med[1]:>14.2f}{med[2]:>14.2f}{med[3]:>13.0f}")
    print(f"{'  runs (wall)':24}" + " ".join(f"{x[0]:.2f}" for x in v))
PY
