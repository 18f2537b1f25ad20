#!/usr/bin/env bash
# Sales-path throughput through gRPC, as a ratio against raw pgbench on the same PostgreSQL in
# the same run, then the same gRPC benchmark on the embedded (SQLite) backend.
#
#   bash loadgen/bench/sales-vs-pgbench.sh            # 15 s per measurement
#   SECONDS_RUN=30 CONCURRENCY=96 bash loadgen/bench/sales-vs-pgbench.sh
#   QUANTITY=2 bash loadgen/bench/sales-vs-pgbench.sh   # seats per order (default 4)
#   MIXED_QUANTITY=1 bash loadgen/bench/sales-vs-pgbench.sh  # 1 to QUANTITY seats an order, as
#                                                            # the LUX crowd's fans ask
#   SERVER_BIN=/tmp/other-server bash loadgen/bench/sales-vs-pgbench.sh  # another build of the
#                                                            # server (an A/B of two commits)
#
# Needs PostgreSQL reachable at $PG_URL (default postgres://postgres:postgres@127.0.0.1:5432) and pgbench.
set -euo pipefail
cd "$(dirname "$0")/../.."

PG_URL=${PG_URL:-postgres://postgres:postgres@127.0.0.1:5432}
SECONDS_RUN=${SECONDS_RUN:-15}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-32}
CONCURRENCY=${CONCURRENCY:-32}
QUANTITY=${QUANTITY:-4}
MIXED_QUANTITY=${MIXED_QUANTITY:-}
suffix=$$
baseline_db=taquilla_pgbench_$suffix
sales_db=taquilla_bench_$suffix
work=$(mktemp -d)
server_pid=""

cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $baseline_db WITH (FORCE)" \
    -c "DROP DATABASE IF EXISTS $sales_db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p taquilla-server -p taquilla-loadgen

start_server() { # $1: database url or empty
  local args=(--listen 127.0.0.1:50071 --admin-listen 127.0.0.1:9471 --operator-token bench
              --data-dir "$work/data" --log warn)
  [ -n "$1" ] && args+=(--database-url "$1")
  "${SERVER_BIN:-target/release/taquilla-server}" "${args[@]}" &
  server_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/50071) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not start" >&2
  exit 1
}

stop_server() {
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# CPU time (user + system, clock ticks) of a process, of several, and a sample of the server,
# the load generator ($1) and PostgreSQL's processes: time, then their ticks.
ticks() { awk '{ n = split($0, f, ")"); split(f[n], g, " "); print g[12] + g[13] }' "/proc/$1/stat" 2>/dev/null || echo 0; }
sum_ticks() { local s=0 p; for p in "$@"; do s=$((s + $(ticks "$p"))); done; echo "$s"; }
sample() { echo "$(date +%s.%N) $(ticks "$server_pid") $(ticks "$1") $(sum_ticks $(pgrep -u postgres))"; }

# Runs the sales benchmark; prints its report and, when the run is 15 s or longer, each
# party's CPU per order over its middle (8 s in, up to 2 s before the end: the seeding before
# it is left out), on stderr; then the tickets per second on stdout.
sales_bench() {
  target/release/taquilla-loadgen bench-sales --target http://127.0.0.1:50071 --token bench \
    --concurrency "$CONCURRENCY" --seconds "$SECONDS_RUN" --quantity "$QUANTITY" \
    ${MIXED_QUANTITY:+--mixed-quantity} >"$work/sales.out" &
  local loadgen=$! first="" last=""
  if [ "$SECONDS_RUN" -ge 15 ]; then
    sleep 8
    first=$(sample "$loadgen")
    sleep $((SECONDS_RUN - 10))
    last=$(sample "$loadgen")
  fi
  wait "$loadgen"
  cat "$work/sales.out" >&2
  if [ -n "$first" ]; then
    awk -v a="$first" -v b="$last" \
      -v o="$(grep -oP 'ORDERS_PER_SECOND=\K[0-9]+' "$work/sales.out")" 'BEGIN {
        split(a, x, " "); split(b, y, " "); w = y[1] - x[1]; n = o * w
        if (n > 0) printf "CPU per order over %.0f s (/proc): server %.2f ms, load generator %.2f ms, PostgreSQL %.2f ms\n",
          w, (y[2] - x[2]) * 10 / n, (y[3] - x[3]) * 10 / n, (y[4] - x[4]) * 10 / n }' >&2
  fi
  grep -oP 'TICKETS_PER_SECOND=\K[0-9]+' "$work/sales.out"
}

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(psql "$PG_URL/postgres" -tAc 'SHOW server_version')"

echo "== baseline: pgbench, one-seat conditional update ($PGBENCH_CLIENTS clients, ${SECONDS_RUN} s)"
psql "$PG_URL/postgres" -qc "CREATE DATABASE $baseline_db" -c "CREATE DATABASE $sales_db"
psql "$PG_URL/$baseline_db" -q \
  -c "CREATE TABLE bench_seats(event_id int, seat_id int, status text NOT NULL DEFAULT 'AVAILABLE', version int DEFAULT 0, updated_at timestamptz, PRIMARY KEY (event_id, seat_id))" \
  -c "INSERT INTO bench_seats(event_id, seat_id) SELECT 1, g FROM generate_series(1, 18000) g"
pgbench_tps() {
  pgbench -n -f loadgen/bench/pgbench-seat.sql -c "$PGBENCH_CLIENTS" -j 2 -T "$SECONDS_RUN" \
    "$PG_URL/$baseline_db" | tee "$work/pgbench.out" >&2
  grep -oP 'tps = \K[0-9.]+' "$work/pgbench.out" | head -n 1
}
baseline_before=$(pgbench_tps)

echo "== taquilla on PostgreSQL: hold -> checkout -> pay through gRPC ($CONCURRENCY buyers, ${SECONDS_RUN} s)"
start_server "$PG_URL/$sales_db"
pg_tickets=$(sales_bench | tail -n 1)
stop_server

# The machine's speed (above all its disk's, which bounds pgbench's durable commits) can drift
# within minutes: the baseline is measured on both sides of the run it is compared with.
echo "== baseline again: pgbench, after the PostgreSQL run"
baseline_after=$(pgbench_tps)
baseline=$(echo "($baseline_before + $baseline_after) / 2" | bc -l)

echo "== taquilla on SQLite (embedded): the same benchmark"
start_server ""
sqlite_tickets=$(sales_bench | tail -n 1)
stop_server

echo
printf 'pgbench baseline:            %8.0f seat updates/s (mean of %.0f before and %.0f after)\n' "$baseline" "$baseline_before" "$baseline_after"
printf 'taquilla, PostgreSQL:        %8d tickets/s   ratio %.2f\n' "$pg_tickets" "$(echo "$pg_tickets / $baseline" | bc -l)"
printf 'taquilla, SQLite (embedded): %8d tickets/s   ratio %.2f\n' "$sqlite_tickets" "$(echo "$sqlite_tickets / $baseline" | bc -l)"
# Counted as DESIGN.md words its target ("seat commits through gRPC"): every ticket sold is
# three committed conditional seat updates (held, hard-locked for the order, sold), each the
# kind of write one pgbench transaction makes. Seats held and never sold are not counted.
printf 'seat commits, PostgreSQL:    %8d /s         ratio %.2f\n' "$((3 * pg_tickets))" "$(echo "3 * $pg_tickets / $baseline" | bc -l)"
printf 'seat commits, SQLite:        %8d /s         ratio %.2f\n' "$((3 * sqlite_tickets))" "$(echo "3 * $sqlite_tickets / $baseline" | bc -l)"
