#!/usr/bin/env bash
# The whole test suite: unit, scripted and property tests, the storage conformance suite,
# end-to-end tests against real kvd processes, and the deterministic chaos simulation with its
# canaries (deliberately broken variants that the checkers must catch).
# Usage: scripts/test.sh      CHAOS_SEEDS=N (default 50) sets the simulation budget.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# One profile for everything, so the workspace compiles once: tests, binaries, simulation.
cargo build --workspace --bins --tests
cargo nextest run --workspace --no-fail-fast
# At least 50 simulated runs of at least 30 simulated seconds each, two at a time; the first
# seeds run twice to prove a seed replays exactly.
cargo run -q -p chaos --bin chaos -- --seeds "${CHAOS_SEEDS:-50}" --secs 30 --jobs 2
cargo run -q -p chaos --bin chaos -- --seeds 10 --nodes 5 --secs 30 --jobs 2
cargo run -q -p chaos --bin chaos -- --seeds 4 --secs 30 --jobs 2 --check-determinism
cargo run -q -p chaos --bin chaos -- --seeds 4 --nodes 5 --secs 30 --jobs 2 --check-determinism
# Every third call between nodes that could be resent is delivered twice (docs/testing.md).
cargo run -q -p chaos --bin chaos -- --seeds 10 --secs 30 --jobs 2 --duplicate-calls 3
# ... and with the copy up to 200 ms late (a first delivery whose handler ran late).
cargo run -q -p chaos --bin chaos -- --seeds 10 --secs 30 --jobs 2 --duplicate-calls 3 \
  --duplicate-late-ms 200
# Twelve seeds each: a canary that a seed exposes with probability p goes unseen in all twelve
# with probability (1-p)^12 (follower-sequential-read: p about 0.37, caught in 12 of seeds 1-32;
# 5 of seeds 1-12 on 2026-12-05, 4 with the vote gates). A given build catches the same seeds
# every run.
for canary in ack-before-fsync release-locks-at-prepare follower-sequential-read \
  skip-safe-time-wait release-shared-before-end-locks yes-voter-aborts-alone \
  scan-reads-before-its-lock write-forgets-its-token read-skips-tombstones read-skips-own-write \
  fractured-snapshot no-deadlock-probes; do
  cargo run -q -p chaos --bin chaos -- --seeds 12 --secs 30 --jobs 2 --canary "$canary" | tail -n 1
done
# close-to-the-millisecond shows in about one seed of five (7 of seeds 1-36, 2026-12-07; 2 and
# 3 of 1-12 in the last runs): with twelve, a change that moves which seeds catch it would lose
# it once in about fifteen; with 24, once in about two hundred.
cargo run -q -p chaos --bin chaos -- --seeds 24 --secs 30 --jobs 2 \
  --canary close-to-the-millisecond | tail -n 1
# A resent one-statement WRITE applied twice shows only where calls are delivered twice; 24
# seeds, as seeds 1-12 catch it in 2 runs only (9 of 1-24, 2026-12-05).
cargo run -q -p chaos --bin chaos -- --seeds 24 --secs 30 --jobs 2 --duplicate-calls 3 \
  --duplicate-late-ms 200 --canary single-id-per-delivery | tail -n 1
