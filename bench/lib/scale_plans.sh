# Shared by bench/daemon_scale.sh and bench/fleet_scale.sh: writes $PLANS
# plans into $root/plans, each backing up one tiny `path` resource
# ($root/data) into file vaults in two regions with jitter $JITTER.
# Each file is written beside and renamed into place, so a daemon
# watching the folder never reads half a plan.
write_plans() { # $1 = backup schedule
  for i in $(seq -w 1 "$PLANS"); do
    cat > "$root/plans/p$i.toml.new" <<TOML
name = "p$i"
owner = "bench@example.com"
rto = "1h"
rpo = "1d"
[backup]
schedule = "$1"
jitter = "$JITTER"
start_window = "5m"
primary_region = "a"
copy_to = ["b"]
[regions.a]
vault = "file://$root/vaults/a"
[regions.b]
vault = "file://$root/vaults/b"
[[resources]]
name = "f"
kind = "path"
path = "$root/data"
[drill]
region = "b"
TOML
    mv "$root/plans/p$i.toml.new" "$root/plans/p$i.toml"
  done
}
