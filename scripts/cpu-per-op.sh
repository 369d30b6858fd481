#!/usr/bin/env bash
# Node CPU per operation: a fresh 3-node cluster of KVD_BINARY, then each quoted kvbench
# argument list in turn; prints throughput, latency, causal staleness and the CPU the three
# nodes used (user + system, from /proc) divided by the operations. The steadier measure on a
# noisy 2-core machine when comparing two builds: alternate them. See docs/benchmarks.md.
# usage: scripts/cpu-per-op.sh KVD_BINARY "kvbench args" ["kvbench args" ...]
#   KVBENCH=path runs another kvbench build (a client change is part of the A/B).
#   e.g. scripts/cpu-per-op.sh target/release/kvd "--workload put --clients 64 --secs 6"
set -euo pipefail
cd "$(dirname "$0")/.."
kvd=$1; shift
cargo build --release -q --bin kvbench --bin kvsh
source scripts/local-cluster.sh
start_cluster "$kvd"
ticks() {
  local t=0
  for pid in "${pids[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$t"
}
hz=$(getconf CLK_TCK)
for args in "$@"; do
  t0=$(ticks)
  out=$("${KVBENCH:-target/release/kvbench}" --connect "$connect" --json $args | tail -n 1)
  t1=$(ticks)
  echo "$out" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read()); ticks, hz = int(sys.argv[1]), int(sys.argv[2])
us = ticks * 1e6 / hz / (d["ops"] or 1)
print("%s: %.0f ops/s, p50 %.1f ms, p99 %.1f ms, node CPU %.0f us/op, staleness p50/p99 %s/%s ms"
      % (d["workload"], d["ops_per_s"], d["p50_us"] / 1000, d["p99_us"] / 1000, us,
         d.get("staleness_p50_ms", "-"), d.get("staleness_p99_ms", "-")))' "$((t1 - t0))" "$hz"
done
