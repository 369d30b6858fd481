#!/usr/bin/env bash
# etcd's side of a sitting, with its rates over the window it really measured.
#
# The peer tool (../shared/peers/kvbench, run by etcd-bench.sh) sets its deadline before it
# preloads the keys (1,000 puts, one at a time) and before its workers connect, then divides its
# operations by the whole --secs: for get, sget, txn2 and rmw the window it measured is shorter
# than the one it divides by, by one to two seconds of eight. kvd's kvbench opens its window after
# its preload and connections. This script runs the same tool, unchanged, on the same etcd
# cluster, and for each of those workloads first measures that set-up alone (the tool with
# --secs 0: preload, connect, exit; the median of three) and prints, after the tool's own line,
# the rates over secs minus that set-up time. put has no preload and is printed as the tool
# prints it. See docs/benchmarks.md, "The peer tool's window".
# usage: scripts/etcd-window.sh [SECS] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}; C=${2:-64}
peers=$(readlink -f ../shared/peers)
target=${CARGO_TARGET_DIR:-${TMPDIR:-/tmp}/etcd-kvbench-target}
(cd "$peers/kvbench" && CARGO_TARGET_DIR=$target cargo build --release -q)
bin=$target/release/kvbench
trap '"$peers/etcd-cluster.sh" stop >/dev/null 2>&1' EXIT
"$peers/etcd-cluster.sh" start >/dev/null

# Seconds the tool takes with --secs 0 (start, preload, workers connected), median of three.
setup_secs() {
  local runs=()
  for _ in 1 2 3; do
    local start end
    start=$(date +%s.%N)
    "$bin" --workload "$1" --clients "$C" --secs 0 --keys 1000 >/dev/null
    end=$(date +%s.%N)
    runs+=("$(awk "BEGIN { print $end - $start }")")
  done
  printf '%s\n' "${runs[@]}" | sort -g | sed -n 2p
}

# The tool's line for workload $1, then its rates over the window it measured.
measure() {
  local setup line ops conflicts
  setup=$(setup_secs "$1")
  line=$("$bin" --workload "$1" --clients "$C" --secs "$SECS" --keys 1000)
  echo "$line"
  ops=$(sed -E 's/.* ops=([0-9]+).*/\1/' <<<"$line")
  conflicts=$(sed -E 's/.* conflicts=([0-9]+).*/\1/' <<<"$line")
  awk -v w="$1" -v setup="$setup" -v secs="$SECS" -v ops="$ops" -v conflicts="$conflicts" 'BEGIN {
    window = secs - setup
    printf "window workload=%s setup_s=%.3f window_s=%.3f ops_per_s=%.0f goodput_per_s=%.0f\n",
      w, setup, window, ops / window, (ops - conflicts) / window
  }'
}

"$bin" --workload put --clients "$C" --secs "$SECS" --keys 1000
for w in get sget txn2 rmw; do measure "$w"; done
"$bin" --workload put --clients 1 --secs "$SECS"
