#!/usr/bin/env bash
# Measures a fresh 3-node kvd cluster (release build, loopback, data in a temp dir) with the
# workloads and client counts of ../shared/peers/etcd-bench.sh, so the two can be compared in one
# sitting. Prints kvbench's JSON line for each workload. See docs/benchmarks.md.
# usage: scripts/bench.sh [SECS] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}; C=${2:-64}
cargo build --release -q --bin kvd --bin kvbench --bin kvsh
source scripts/local-cluster.sh
start_cluster
bench() { target/release/kvbench --connect "$connect" --secs "$SECS" --json "$@" | tail -n 1; }
for w in put get txn2 rmw; do bench --workload "$w" --clients "$C" --keys 1000; done
bench --workload get --clients "$C" --keys 1000 --consistency causal
bench --workload put --clients 1
bench --workload deadlock --clients 8
