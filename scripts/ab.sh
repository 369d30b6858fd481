#!/usr/bin/env bash
# Compares two kvd builds (or settings) on this machine by running them AT THE SAME TIME: two
# fresh 3-node clusters (ports 7101-7103 and 7201-7203, data in a temp dir), and each workload
# on both at once, each with its own kvbench. A swing in the machine's speed then hits both
# alike, so the ratio B/A says more than two runs one after the other (whose absolute numbers
# moved by up to 30% between identical runs here). Each cluster gets about half the machine,
# so absolute numbers are lower than scripts/bench.sh's. See docs/benchmarks.md.
# usage: scripts/ab.sh KVD_A KVD_B ROUNDS "kvbench args" ["kvbench args" ...]
#   ENV_A / ENV_B: environment for the nodes of A / B (e.g. ENV_B="RUST_LOG=warn X=1")
#   e.g. scripts/ab.sh /tmp/old/kvd target/release/kvd 3 "--workload put --clients 64 --secs 5"
set -euo pipefail
kvd_a=$(realpath "$1"); kvd_b=$(realpath "$2"); rounds=$3; shift 3
cd "$(dirname "$0")/.."

cargo build --release -q --bin kvbench --bin kvsh
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

# start_cluster PORT_PREFIX KVD ENV: three nodes on 127.0.0.1:${prefix}01..03.
start_cluster() {
  local prefix=$1 kvd=$2 env=$3 peers=""
  for i in 1 2 3; do peers+="${peers:+,}$i=127.0.0.1:${prefix}0$i"; done
  for i in 1 2 3; do
    env RUST_LOG=warn ${env} "$kvd" start --id "$i" --listen "127.0.0.1:${prefix}0$i" \
      --peers "$peers" --data "$dir/$prefix-$i" >"$dir/$prefix-$i.log" 2>&1 &
    pids+=($!)
  done
}

# balanced CONNECT: every shard is led by its preferred replica (see scripts/local-cluster.sh).
balanced() {
  target/release/kvsh --connect "$1" -c STATUS 2>/dev/null | awk '
    $1 ~ /^\[/ && n > 0 { exit }
    $1 ~ /^s[0-9]+$/ { n++; if ($6 != (substr($1, 2) % 3) + 1) bad = 1 }
    END { exit (n == 0 || bad) }'
}

start_cluster 71 "$kvd_a" "${ENV_A:-}"
start_cluster 72 "$kvd_b" "${ENV_B:-}"
a=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
b=127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203
for connect in "$a" "$b"; do
  for _ in $(seq 1 50); do
    target/release/kvsh --connect "$connect" \
      -c "WRITE 0probe x; WRITE Fprobe x; WRITE Vprobe x; WRITE kprobe x" >/dev/null 2>&1 && break
    sleep 0.2
  done
done
for _ in $(seq 1 100); do balanced "$a" && balanced "$b" && break; sleep 0.2; done
balanced "$a" && balanced "$b" || echo "leaders are not spread over the nodes yet; measuring anyway" >&2

for _ in $(seq 1 "$rounds"); do
  for args in "$@"; do
    target/release/kvbench --connect "$a" --json $args | tail -n 1 >"$dir/a.json" &
    bench_a=$!
    target/release/kvbench --connect "$b" --json $args | tail -n 1 >"$dir/b.json" &
    bench_b=$!
    wait "$bench_a" "$bench_b"
    python3 - "$dir/a.json" "$dir/b.json" "$args" <<'EOF'
import json, sys
a, b = (json.load(open(path)) for path in sys.argv[1:3])
print("%-50s A %7.0f  B %7.0f  B/A %.3f  p50 %6.1f / %6.1f ms" % (
    sys.argv[3][:50], a["goodput_per_s"], b["goodput_per_s"],
    b["goodput_per_s"] / max(a["goodput_per_s"], 1), a["p50_us"] / 1000, b["p50_us"] / 1000))
EOF
  done
done
