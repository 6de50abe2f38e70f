# Sourced by scripts/bench.sh and scripts/bench-fleet.sh: a Garage (S3
# server) on free loopback ports in a temp dir, for one run. The caller
# defines log and die, and stops it by $garage_pid (kill, wait).
#
# start_garage DIR sets: s3_port key_id secret conf garage_pid, and
# garage_cli (the garage CLI on that configuration).

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

garage_cli() { env -u GARAGE_RPC_HOST -u GARAGE_RPC_SECRET garage -c "$conf" "$@"; }

start_garage() {
    local work=$1
    s3_port=$(free_port) rpc_port=$(free_port) admin_port=$(free_port)
    # Fixed credentials: this Garage lives on loopback in a temp dir for one run.
    key_id=GK70726f6d736e61702d62656e
    secret=62656e6368206f6e6c792c206e6f7420612072656164206b657920617420616c
    conf=$work/garage.toml
    cat >"$conf" <<EOF
metadata_dir = "$work/garage/meta"
data_dir = "$work/garage/data"
db_engine = "lmdb"
replication_factor = 1
# Store objects as sent, like AWS S3: stored bytes are what the tools upload.
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(printf '5eed%.0s' {1..16})"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
EOF

    log "starting Garage on 127.0.0.1:$s3_port"
    RUST_LOG=garage=warn garage -c "$conf" server >"$work/garage.log" 2>&1 &
    garage_pid=$!
    for _ in $(seq 240); do
        garage_cli status >/dev/null 2>&1 && break
        kill -0 "$garage_pid" 2>/dev/null || { tail -n 30 "$work/garage.log" >&2; die "garage exited"; }
        sleep 0.25
    done
    node_id=$(garage_cli node id -q 2>/dev/null) || { tail -n 30 "$work/garage.log" >&2; die "garage did not come up"; }
    garage_cli layout assign -z dc1 -c 100G "${node_id%%@*}" >/dev/null
    garage_cli layout apply --version 1 >/dev/null
    garage_cli key import --yes -n promsnap-bench "$key_id" "$secret" >/dev/null
    for _ in $(seq 240); do
        (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break
        sleep 0.25
    done
}
