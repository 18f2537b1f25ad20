#!/usr/bin/env bash
# The full LUX Tour sale on one machine: 400,000 fans, 142,000 seats, 8 events, the server,
# PostgreSQL, Redis and the load generator all on this box. Records the load generator's
# results (--out), both processes' peak memory, and every second the CPU time of the server,
# the load generator, Redis and PostgreSQL (all its processes), from /proc, for the CPU budget,
# and every 2 s the server's queue, valve and shedding figures from /metrics (metrics.log); all
# of /metrics at the end (metrics-final.txt).
#
#   bash loadgen/bench/lux-sale.sh [postgres|cluster|embedded] [OUT_DIR]
#
# cluster: PostgreSQL and the waiting room on the Redis Cluster at CLUSTER_URL (default the
# three primaries bash .ci/redis-cluster starts); SERVER_FLAGS=--shared-rate-limits puts the
# rate limits and the abuse log there too.
#
# Uses target/release binaries (cargo build --release -p taquilla-server -p taquilla-loadgen);
# SERVER_BIN runs another build of the server (an A/B of two commits).
# USERS, HATCH_RATE, PRESALE_SECONDS and DURATION override the issue's figures
# (400000, 4000, 15, 540); extra load generator flags go in LOADGEN_FLAGS, extra server flags
# in SERVER_FLAGS; environment settings for one process only (e.g. TOKIO_WORKER_THREADS=1) in
# SERVER_ENV and LOADGEN_ENV.
set -euo pipefail
cd "$(dirname "$0")/../.."

backend=${1:-postgres}
out=${2:-results/lux-$backend-$(date +%Y%m%d-%H%M%S)}
USERS=${USERS:-400000}
HATCH_RATE=${HATCH_RATE:-4000}
PRESALE_SECONDS=${PRESALE_SECONDS:-15}
DURATION=${DURATION:-540}
PG=${PG:-postgres://postgres:postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
CLUSTER_URL=${CLUSTER_URL:-redis://127.0.0.1:17001,redis://127.0.0.1:17002,redis://127.0.0.1:17003}
PORT=${PORT:-50581}
ADMIN_PORT=${ADMIN_PORT:-9581}
server_bin=${SERVER_BIN:-target/release/taquilla-server}
loadgen_bin=target/release/taquilla-loadgen
[ -x "$server_bin" ] && [ -x "$loadgen_bin" ] || {
  echo "build first: cargo build --release -p taquilla-server -p taquilla-loadgen" >&2; exit 1; }

mkdir -p "$out"
data=$(mktemp -d)
db=taquilla_lux_$$
namespace=lux$$
flags=(--operator-token lux --log warn --data-dir "$data"
  --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT"
  --join-rate-per-ip 100000000 --sales-rate-per-ip 0 --join-rate-per-fingerprint 1000
  ${SERVER_FLAGS:-})
if [ "$backend" = postgres ] || [ "$backend" = cluster ]; then
  psql "$PG/postgres" -qc "CREATE DATABASE $db"
  flags+=(--database-url "$PG/$db" --redis-namespace "$namespace")
  if [ "$backend" = cluster ]; then
    flags+=(--redis-cluster --redis-url "$CLUSTER_URL")
  else
    flags+=(--redis-url "$REDIS_URL")
  fi
fi

server=
sampler=
scraper=
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
  [ -n "$server" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  if [ "$backend" = postgres ] || [ "$backend" = cluster ]; then
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db" || true
    redis-cli -u "$REDIS_URL" --scan --pattern "$namespace:*" | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null || true
    # On the cluster, each primary's keys (one UNLINK per key, since one command may not span
    # slots, pipelined).
    if [ "$backend" = cluster ]; then
      for node in ${CLUSTER_URL//,/ }; do
        redis-cli -u "$node" --scan --pattern "$namespace:*" | sed 's/^/UNLINK /' |
          redis-cli -u "$node" --pipe >/dev/null 2>&1 || true
      done
    fi
  fi
  rm -rf "$data"
}
trap cleanup EXIT

env ${SERVER_ENV:-} "$server_bin" "${flags[@]}" 2>"$out/server.log" &
server=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

# CPU time (user + system, clock ticks) of each party, every second: t, server, loadgen,
# redis, postgres. Redis's servers and PostgreSQL's postmaster outlive the run, so their ticks
# are counted from the sampler's start (PostgreSQL's: of the processes alive at each sample).
ticks() { awk '{ s = 0; n = split($0, f, ")"); split(f[n], g, " "); print g[12] + g[13] }' "/proc/$1/stat" 2>/dev/null || echo 0; }
sum_ticks() { local s=0 p; for p in "$@"; do s=$((s + $(ticks "$p"))); done; echo "$s"; }
(
  echo "t_s,server,loadgen,redis,postgres"
  start=$(date +%s.%N)
  redis0=$(sum_ticks $(pgrep -x redis-server))
  postgres0=$(sum_ticks $(pgrep -u postgres))
  while kill -0 "$server" 2>/dev/null; do
    lg=$(pgrep -f "^$loadgen_bin " | head -n 1 || true)
    printf '%.1f,%s,%s,%s,%s\n' "$(echo "$(date +%s.%N) - $start" | bc)" \
      "$(ticks "$server")" "$( [ -n "$lg" ] && ticks "$lg" || echo 0)" \
      "$(( $(sum_ticks $(pgrep -x redis-server)) - redis0 ))" \
      "$(( $(sum_ticks $(pgrep -u postgres)) - postgres0 ))"
    sleep 1
  done
) >"$out/cpu.csv" &
sampler=$!

# Every 2 s: seconds since start, then the metric lines that explain the sale's pace.
(
  start=$(date +%s)
  while kill -0 "$server" 2>/dev/null; do
    t=$(( $(date +%s) - start ))
    curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null |
      grep -E '^taquilla_(queue_(active|auto_limit|waiting|look_stretch)|watch_updates_total|sales_(shed_total|in_flight)|seats\{.*status="sold")|^taquilla_rpc_requests_total\{.*(HoldSeats|Checkout|Pay|Join)' |
      sed "s/^/$t /" || true
    sleep 2
  done
) >"$out/metrics.log" &
scraper=$!

set +e
env ${LOADGEN_ENV:-} /usr/bin/time -v "$loadgen_bin" --target "http://127.0.0.1:$PORT" --token lux --scenario lux \
  --users "$USERS" --hatch-rate "$HATCH_RATE" --presale-seconds "$PRESALE_SECONDS" \
  --duration "$DURATION" --out "$out" ${LOADGEN_FLAGS:-} >"$out/loadgen.log" 2>"$out/loadgen.time"
verdict=$?
set -e
# Everything the server counted (per-method latency histograms among it), once the crowd is done.
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$out/metrics-final.txt" 2>/dev/null || true
grep -E "VmHWM" "/proc/$server/status" >"$out/server.mem" || true
grep -E "Maximum resident|Elapsed" "$out/loadgen.time" || true
echo "server peak: $(cat "$out/server.mem")"
echo "load generator exit code $verdict; results in $out"
exit "$verdict"
