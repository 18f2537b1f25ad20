#!/usr/bin/env bash
# Interleaved A/B of the waiting room under a crowd of idle watchers: two builds of the server
# (and load generator), run alternately on one machine against one Redis, with the same
# `bench-queue` command. Machines are noisy: compare the two builds' figures within a run.
#
#   A=/tmp/base-bin B=/tmp/new-bin WATCHERS=400000 ROUNDS=2 bash loadgen/bench/queue-ab.sh
#
# A and B are directories holding taquilla-server and taquilla-loadgen release binaries
# (build one commit, copy target/release/taquilla-{server,loadgen} aside, build the other).
# Each run starts a fresh server (Redis waiting room under a namespace of its own, SQLite
# inventory in a temporary directory), runs bench-queue against it and stops it.
set -euo pipefail

A=${A:?directory with build A\'s binaries}
B=${B:?directory with build B\'s binaries}
WATCHERS=${WATCHERS:-400000}
CONNECTIONS=${CONNECTIONS:-200}
ROUNDS=${ROUNDS:-2}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PORT=${PORT:-50571}
ADMIN_PORT=${ADMIN_PORT:-9571}

redis_pid=$(pgrep -x redis-server | head -n 1 || true)
[ -n "$redis_pid" ] || { echo "Redis is not running on this machine" >&2; exit 1; }

run_one() {
  local label=$1 bin=$2 round=$3
  local dir namespace server
  dir=$(mktemp -d)
  namespace="qab$$r${round}${label}"
  "$bin/taquilla-server" --operator-token bench --log warn --data-dir "$dir" \
    --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --redis-url "$REDIS_URL" --redis-namespace "$namespace" \
    --join-rate-per-ip 100000000 --sales-rate-per-ip 0 --join-rate-per-fingerprint 1000 &
  server=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
  done
  echo "=== round $round, build $label ($bin) ==="
  "$bin/taquilla-loadgen" bench-queue --target "http://127.0.0.1:$PORT" --token bench \
    --watchers "$WATCHERS" --connections "$CONNECTIONS" --seconds 10 --join-concurrency 256 \
    --server-pid "$server" --redis-pid "$redis_pid" || echo "(bench-queue failed)"
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$namespace:*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null
  rm -rf "$dir"
}

for round in $(seq 1 "$ROUNDS"); do
  run_one A "$A" "$round"
  run_one B "$B" "$round"
done
