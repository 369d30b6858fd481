# Sourced by scripts/bench.sh and scripts/cpu-per-op.sh: a fresh 3-node cluster of release
# nodes on loopback ports 7101-7103, data in a temp dir, stopped and removed on exit.
# Sets $connect (the client's --connect list), $dir and $pids; needs target/release/kvsh.
# usage: start_cluster [KVD_BINARY]   (default target/release/kvd; extra env: KVD_ENV; extra
#   `kvd start` flags: KVD_ARGS, e.g. KVD_ARGS="--shards 2")
# The three nodes share this machine's cores, so each runs cores/3 runtime workers (at least
# one; tokio's TOKIO_WORKER_THREADS, docs/configuration.md "Threads"); KVD_WORKERS overrides.
peers=1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103
connect=127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103

start_cluster() {
  local kvd=${1:-target/release/kvd}
  dir=$(mktemp -d)
  pids=()
  trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$dir"' EXIT
  local workers=${KVD_WORKERS:-$(( $(nproc) / 3 ))}
  (( workers >= 1 )) || workers=1
  for i in 1 2 3; do
    env TOKIO_WORKER_THREADS="$workers" ${KVD_ENV:-} RUST_LOG=warn "$kvd" start --id "$i" --listen "127.0.0.1:710$i" \
      --peers "$peers" --data "$dir/$i" ${KVD_ARGS:-} >"$dir/$i.log" 2>&1 &
    pids+=($!)
  done
  # Wait until every shard has a leader (a one-statement write to each shard succeeds).
  for _ in $(seq 1 50); do
    target/release/kvsh --connect "$connect" \
      -c "WRITE 0probe x; WRITE Fprobe x; WRITE Vprobe x; WRITE kprobe x" >/dev/null 2>&1 && break
    sleep 0.2
  done
  # Wait until every shard is led by its preferred replica (node (shard mod 3) + 1): a new
  # cluster hands leaderships over a few seconds after start (participant::shard::
  # HANDOVER_AFTER), and a handover during a measurement aborts the transactions that hold
  # locks there (LEADER_CHANGED).
  for _ in $(seq 1 100); do balanced && break; sleep 0.2; done
  balanced || echo "leaders are not spread over the nodes yet; measuring anyway" >&2
}

balanced() {
  target/release/kvsh --connect 127.0.0.1:7101 -c STATUS 2>/dev/null | awk '
    $1 == "[127.0.0.1:7102]" { exit }
    $1 ~ /^s[0-9]+$/ { n++; if ($6 != (substr($1, 2) % 3) + 1) bad = 1 }
    END { exit (n == 0 || bad) }'
}
