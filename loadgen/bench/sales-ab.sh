#!/usr/bin/env bash
# Two builds of the sales path, alternating in one run: how much faster is a change?
#
#   bash loadgen/bench/sales-ab.sh BEFORE_DIR AFTER_DIR
#
# Each directory holds a taquilla-server and taquilla-loadgen release build (copy them aside
# before building the other commit: both write target/release). One pgbench run first (the
# same yardstick as sales-vs-pgbench.sh), then ROUNDS (default 3) rounds of BEFORE and AFTER,
# each against a fresh PostgreSQL database, SECONDS_RUN (default 10) each, CONCURRENCY buyers.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 2 ] || { echo "usage: $0 BEFORE_DIR AFTER_DIR" >&2; exit 2; }
PG_URL=${PG_URL:-postgres://postgres:postgres@127.0.0.1:5432}
SECONDS_RUN=${SECONDS_RUN:-10}
CONCURRENCY=${CONCURRENCY:-32}
ROUNDS=${ROUNDS:-3}
suffix=$$
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS taquilla_ab_$suffix WITH (FORCE)" \
    -c "DROP DATABASE IF EXISTS taquilla_pgbench_$suffix WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

busy_and_steal() { # the machine's busy and stolen CPU time so far, in clock ticks (1/100 s)
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat
}

run() { # $1: build directory, $2: label
  local db=taquilla_ab_$suffix
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" 2>/dev/null
  "$1/taquilla-server" --listen 127.0.0.1:50072 --admin-listen 127.0.0.1:9472 --operator-token bench \
    --data-dir "$work/data-$RANDOM" --log warn --database-url "$PG_URL/$db" &
  server_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/50072) 2>/dev/null && break
    sleep 0.1
  done
  printf '%-7s ' "$2"
  local before after line orders
  before=$(busy_and_steal)
  line=$("$1/taquilla-loadgen" bench-sales --target http://127.0.0.1:50072 --token bench \
    --concurrency "$CONCURRENCY" --seconds "$SECONDS_RUN" | grep '^sold')
  after=$(busy_and_steal)
  orders=$(grep -oP 'in \K[0-9]+(?= orders)' <<<"$line")
  # The machine's CPU time per order (both cores, every process: PostgreSQL, server, load
  # generator): steadier than throughput when the machine's speed wanders during a run.
  echo "$line; $(awk -v b="$before" -v a="$after" -v o="$orders" 'BEGIN {
    split(b, x, " "); split(a, y, " ");
    printf "CPU %.3f ms/order, steal %.1f %%", (y[1] - x[1]) * 10 / o, (y[2] - x[2]) / ((y[1] - x[1]) + (y[2] - x[2]) + 1e-9) * 100 }')"
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

psql "$PG_URL/postgres" -qc "CREATE DATABASE taquilla_pgbench_$suffix"
psql "$PG_URL/taquilla_pgbench_$suffix" -q \
  -c "CREATE TABLE bench_seats(event_id int, seat_id int, status text NOT NULL DEFAULT 'AVAILABLE', version int DEFAULT 0, updated_at timestamptz, PRIMARY KEY (event_id, seat_id))" \
  -c "INSERT INTO bench_seats(event_id, seat_id) SELECT 1, g FROM generate_series(1, 18000) g"
echo "pgbench: $(pgbench -n -f loadgen/bench/pgbench-seat.sql -c 32 -j 2 -T "$SECONDS_RUN" \
  "$PG_URL/taquilla_pgbench_$suffix" 2>/dev/null | grep -oP 'tps = \K[0-9.]+') transactions/s"
for _ in $(seq 1 "$ROUNDS"); do
  run "$1" before
  run "$2" after
done
