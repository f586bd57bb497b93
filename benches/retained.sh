#!/usr/bin/env bash
# Retained replay: N retained QoS 1 messages on r/0 .. r/N-1, then a new `#` subscriber
# (mosquitto_sub, the same client for every broker) timed until it has all N, three runs,
# after a baseline of the same client fetching one retained message.
#
#   cargo build --release -p midge -p midge-bench
#   benches/retained.sh midge 10000       # or: mosquitto 100000 (N a multiple of 10,000)
set -euo pipefail
who=$1
n=$2
target="${CARGO_TARGET_DIR:-target}/release"
port=18840
scratch=$(mktemp -d)
trap 'kill "$broker" 2>/dev/null || true; rm -rf "$scratch"' EXIT
ulimit -n 20000
if [ "$who" = midge ]; then
    MIDGE__LOG__LEVEL=warn MIDGE__ADMIN__PORT=0 "$target/midge" -p $port \
        --data-dir "$scratch/data" >"$scratch/log" 2>&1 &
else
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_connections -1\nlog_dest none\n' \
        $port >"$scratch/mosquitto.conf"
    mosquitto -c "$scratch/mosquitto.conf" >/dev/null 2>&1 &
fi
broker=$!
sleep 1.2
# 10,000 publishing clients per round (the open-files limit), one retained message each.
for round in $(seq 0 $((n / 10000 - 1))); do
    "$target/midge-bench" pub -p $port -c 10000 -n $((round * 10000)) --count 1 -r -q 1 -s 64 \
        -t 'r/%i' --connect-rate 0 --quiet >/dev/null 2>&1
done
elapsed() {
    local start end
    start=$(date +%s.%N)
    timeout 60 mosquitto_sub -p $port -q 0 "$@" >/dev/null || true
    end=$(date +%s.%N)
    python3 -c "print(round($end - $start, 3))"
}
echo "$who baseline (one retained message): $(elapsed -t r/1 -C 1 -i rt-base) s"
for run in 1 2 3; do
    echo "$who $n retained, run $run: $(elapsed -t 'r/#' -C "$n" -i "rt-sub-$run") s"
done
