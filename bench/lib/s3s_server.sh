# Shared by bench/s3_vault.sh and bench/s3_cpu_split.sh: starts the local
# S3 server (s3s-fs at $S3S, its data in $root/s3) on a free loopback
# port, waits until it listens, and sets $server (its PID, for the
# caller's clean-up), $endpoint and the AWS environment every client of
# the benchmark reads (credentials of the server, no config files).
start_s3s() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  endpoint=http://127.0.0.1:$port
  "$S3S" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret-key "$root/s3" \
    > "$root/s3s.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
    sleep 0.1
  done
  # Plain HTTP to a local server: a CA bundle setting is of no use, and
  # rclone 1.60 (Debian's) fails to start with AWS_CA_BUNDLE set.
  unset AWS_CA_BUNDLE
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key AWS_EC2_METADATA_DISABLED=true
  export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
}

stop_s3s() {
  if [ -n "${server:-}" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
}

# write_s3_plan BUCKET [COPY_BUCKET]: the plan `bench` into $root/plans,
# one `path` resource ($root/data) backed up into s3://BUCKET in
# us-east-1 and, with COPY_BUCKET, copied into s3://COPY_BUCKET in us-west-2.
write_s3_plan() {
  local copy_to="" copy_region=""
  if [ -n "${2:-}" ]; then
    copy_to='copy_to = ["us-west-2"]'
    copy_region=$(printf '[regions.us-west-2]\nvault = "s3://%s/lifeboat"' "$2")
  fi
  cat > "$root/plans/bench.toml" <<TOML
name = "bench"
owner = "bench@example.com"
rto = "1h"
rpo = "1h"
[backup]
schedule = "0 * * * *"
primary_region = "us-east-1"
$copy_to
[regions.us-east-1]
vault = "s3://$1/lifeboat"
$copy_region
[aws]
endpoint_url = "$endpoint"
[[resources]]
name = "blob"
kind = "path"
path = "$root/data"
TOML
}
