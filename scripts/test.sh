#!/usr/bin/env bash
# The whole test suite: unit, scripted and property tests, the storage conformance suite,
# end-to-end tests against real kvd processes, and the deterministic chaos simulation.
# Usage: scripts/test.sh            (CHAOS_SEEDS=N to change the simulation budget)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# One profile for everything, so the workspace compiles once: tests, binaries, simulation.
cargo build --workspace --bins --tests
cargo nextest run --workspace --no-fail-fast
cargo run -q -p chaos --bin chaos -- --seeds "${CHAOS_SEEDS:-50}"
