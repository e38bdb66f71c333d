#!/usr/bin/env bash
# Upload of a 1 GiB point into an S3 vault and its server-side copy into a
# second region, against the AWS CLI and rclone on the same data and the
# same local S3 server (s3s-fs, a Rust S3 server, its data on tmpfs):
#   upload: lifeboat backup run   a `path` resource holding one file of random
#                                 bytes: tar + zstd + SHA-256s, streamed into
#                                 the vault as a parallel multipart upload
#           vault_put             the same file through Vault::put alone
#                                 (examples/vault_put.rs: no archive, no hashing)
#           aws s3 cp FILE s3://A/..., rclone copyto FILE remote:A/...
#   copy:   lifeboat's copy into the plan's copy_to region (server-side),
#           aws s3 cp s3://A/... s3://B/..., rclone copyto remote:A remote:B
# Lifeboat's upload and copy times are its catalog's (points.started_at to
# completed_at, in ms); the others are wall times. Peak RSS is GNU time's.
# Each figure is the median of RUNS runs (the tools interleaved).
#
#   bench/s3_vault.sh                  # 1 GiB, 3 runs
#   SIZE_MIB=4096 bench/s3_vault.sh    # 4 GiB: memory must not grow
#   PROFILE=profiling bench/s3_vault.sh   # the release code with line tables, for perf
#
# Installs what it needs into $BENCH_CACHE (default ~/.cache/lifeboat-bench):
# s3s-fs (cargo install), the AWS CLI (pip, in a venv); rclone and GNU time
# from apt when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib/s3s_server.sh
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
CACHE=${BENCH_CACHE:-$HOME/.cache/lifeboat-bench}
# 0.14.1: the newest s3s-fs that builds with Rust 1.95 (0.15 needs 1.96).
S3S_FS_VERSION=${S3S_FS_VERSION:-0.14.1}
AWSCLI_VERSION=${AWSCLI_VERSION:-1.46.3}

need=()
command -v rclone >/dev/null || need+=(rclone)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing: ${need[*]} (apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
S3S=$CACHE/s3s-fs-$S3S_FS_VERSION/bin/s3s-fs
if [ ! -x "$S3S" ]; then
  echo "installing s3s-fs $S3S_FS_VERSION into $CACHE (a few minutes)..." >&2
  cargo install --quiet --locked s3s-fs --version "$S3S_FS_VERSION" --features binary \
    --root "$CACHE/s3s-fs-$S3S_FS_VERSION"
fi
AWS=$CACHE/awscli-$AWSCLI_VERSION/bin/aws
if [ ! -x "$AWS" ]; then
  echo "installing the AWS CLI $AWSCLI_VERSION into $CACHE..." >&2
  python3 -m venv "$CACHE/awscli-$AWSCLI_VERSION"
  "$CACHE/awscli-$AWSCLI_VERSION/bin/pip" install --quiet --disable-pip-version-check "awscli==$AWSCLI_VERSION"
fi
PROFILE=${PROFILE:-release}
cargo build --profile "$PROFILE" --quiet --bin lifeboat --example vault_put
BIN=${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE/lifeboat
PUT=${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE/examples/vault_put

base=${BENCH_DIR:-/dev/shm}
root=$(mktemp -d "$base/lifeboat-s3bench.XXXXXX")
server=
cleanup() {
  stop_s3s
  if [ -n "${KEEP:-}" ]; then echo "keeping $root" >&2; else rm -rf "$root"; fi
}
trap cleanup EXIT
mkdir -p "$root/data" "$root/s3" "$root/plans"
echo "generating $SIZE_MIB MiB of random data..." >&2
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$root/data/blob.bin"

start_s3s
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
  RCLONE_CONFIG_BENCH_ENDPOINT=$endpoint RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=bench \
  RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=bench-secret-key RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true
aws() { "$AWS" --endpoint-url "$endpoint" "$@"; }
aws s3 mb s3://bench-use1 > /dev/null
aws s3 mb s3://bench-usw2 --region us-west-2 > /dev/null

write_s3_plan bench-use1 bench-usw2
lb() { "$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" --work-dir "$root/work" "$@"; }
# timed NAME CMD...: appends "NAME seconds peak_kb" to the results.
timed() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$root/time" "$@" > /dev/null
  echo "$name $(cat "$root/time")" >> "$root/results"
}
empty_buckets() { rm -rf "$root/s3/bench-use1/"* "$root/s3/bench-usw2/"*; }

# Warm the page cache the same way for everyone.
cat "$root/data/blob.bin" > /dev/null
for run in $(seq "$RUNS"); do
  echo "run $run of $RUNS..." >&2
  /usr/bin/time -f "%e %M" -o "$root/time" "$BIN" --catalog "$root/lifeboat.db" --plans "$root/plans" \
    --work-dir "$root/work" backup run bench > /dev/null
  read -r _ kb < "$root/time"
  python3 - "$root/lifeboat.db" "$kb" >> "$root/results" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
run = db.execute("SELECT max(run_id) FROM points").fetchone()[0]
rows = db.execute(
    "SELECT region, status, (completed_at - started_at) / 1000.0, size_bytes FROM points "
    "WHERE run_id = ? AND resource = 'blob' ORDER BY id", (run,)).fetchall()
(r1, s1, up, size), (r2, s2, copy, _) = rows
assert s1 == s2 == "complete", rows
print(f"lifeboat-upload {up:.3f} {sys.argv[2]}")
print(f"lifeboat-copy {copy:.3f} {sys.argv[2]}")
print(f"lifeboat-size {size} 0")
PY
  empty_buckets
  /usr/bin/time -f "%e %M" -o "$root/time" "$PUT" s3://bench-use1/raw us-east-1 blob.bin \
    "$root/data/blob.bin" "$endpoint" > "$root/put.out"
  read -r _ kb < "$root/time"
  read -r _ secs < "$root/put.out"
  echo "vault-put $secs $kb" >> "$root/results"
  empty_buckets
  timed aws-upload "$AWS" --endpoint-url "$endpoint" s3 cp --only-show-errors "$root/data/blob.bin" s3://bench-use1/aws/blob.bin
  timed aws-copy "$AWS" --endpoint-url "$endpoint" s3 cp --only-show-errors s3://bench-use1/aws/blob.bin s3://bench-usw2/aws/blob.bin
  empty_buckets
  timed rclone-upload rclone copyto "$root/data/blob.bin" bench:bench-use1/rclone/blob.bin
  timed rclone-copy rclone copyto bench:bench-use1/rclone/blob.bin bench:bench-usw2/rclone/blob.bin
  empty_buckets
done

python3 - "$root/results" "$SIZE_MIB" "$RUNS" \
  "$S3S_FS_VERSION" "$("$AWS" --version 2>&1 | cut -d' ' -f1)" "$(rclone version | head -1)" <<'PY'
import os, statistics, sys
path, size_mib, runs, s3s, awscli, rclone = sys.argv[1:]
res = {}
for line in open(path):
    name, secs, kb = line.split()
    res.setdefault(name, []).append((float(secs), int(kb)))
mb = int(size_mib) * 1048576 / 1e6
print(f"data: {size_mib} MiB of random bytes in one file; {os.cpu_count()} cores; "
      f"s3s-fs {s3s} on tmpfs; {awscli}, {rclone}; median of {runs}")
for name, v in res.items():
    if name != "lifeboat-size":
        print(f"runs: {name} " + " ".join(f"{s:.2f}" for s, _ in v))
def row(label, name, note=""):
    v = res[name]
    s = statistics.median(x for x, _ in v)
    kb = max(k for _, k in v)
    print(f"{label:38}{s:>8.2f}{mb / s:>8.0f}{kb / 1024:>9.0f} MiB{note}")
print(f"{'':38}{'s':>8}{'MB/s':>8}{'peak RSS':>13}")
print("upload")
row("  lifeboat backup (archive + upload)", "lifeboat-upload", "  (RSS: whole backup run)")
row("  lifeboat Vault::put (raw)", "vault-put")
row("  aws s3 cp", "aws-upload")
row("  rclone copyto", "rclone-upload")
print("server-side copy to the other region")
row("  lifeboat (copy point)", "lifeboat-copy", "  (RSS: whole backup run)")
row("  aws s3 cp s3:// s3://", "aws-copy")
row("  rclone copyto (server-side)", "rclone-copy")
artifact = statistics.median(s for s, _ in res["lifeboat-size"])
print(f"lifeboat artifact: {artifact / 1e6:.1f} MB (tar + zstd of {mb:.1f} MB)")
PY
