#!/usr/bin/env bash
# Measures a fresh 3-node kvd cluster (release build, loopback, data in a temp dir) with the
# workloads and client counts of ../shared/peers/etcd-bench.sh, so the two can be compared in one
# sitting. Prints kvbench's JSON line for each workload. See docs/benchmarks.md.
# usage: scripts/bench.sh [SECS] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}; C=${2:-64}
cargo build --release -q --bin kvd --bin kvbench
dir=$(mktemp -d)
peers=1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103
connect=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$dir"' EXIT
for i in 1 2 3; do
  RUST_LOG=warn target/release/kvd start --id "$i" --listen "127.0.0.1:710$i" --peers "$peers" \
    --data "$dir/$i" >"$dir/$i.log" 2>&1 &
done
# Wait until every shard has a leader (a one-statement write to each shard succeeds).
for _ in $(seq 1 50); do
  target/release/kvsh --connect "$connect" -c "WRITE 0probe x; WRITE Fprobe x; WRITE Vprobe x; WRITE kprobe x" \
    >/dev/null 2>&1 && break
  sleep 0.2
done
# Wait until every shard is led by its preferred replica (node (shard mod 3) + 1): a new cluster
# hands leaderships over a few seconds after start (participant::shard::HANDOVER_AFTER), and a
# handover during a measurement aborts the transactions that hold locks there (LEADER_CHANGED).
balanced() {
  target/release/kvsh --connect 127.0.0.1:7101 -c STATUS 2>/dev/null | awk '
    $1 == "[127.0.0.1:7102]" { exit }
    $1 ~ /^s[0-9]+$/ { n++; if ($6 != (substr($1, 2) % 3) + 1) bad = 1 }
    END { exit (n == 0 || bad) }'
}
for _ in $(seq 1 100); do balanced && break; sleep 0.2; done
balanced || echo "bench.sh: leaders are not spread over the nodes yet; measuring anyway" >&2
bench() { target/release/kvbench --connect "$connect" --secs "$SECS" --json "$@" | tail -n 1; }
for w in put get txn2 rmw; do bench --workload "$w" --clients "$C" --keys 1000; done
bench --workload get --clients "$C" --keys 1000 --consistency causal
bench --workload put --clients 1
bench --workload deadlock --clients 8
