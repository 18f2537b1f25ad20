#!/usr/bin/env bash
# Fault drill: a sale in progress on PostgreSQL + Redis with three server nodes, the load
# generator's fans spread over them, and one simulated payment provider that every node pays
# through. While the fans buy, in turn:
#   (a) one node is killed with SIGKILL (and started again 10 s later),
#   (b) Redis (append-only file, fsync always) is killed with SIGKILL and restarted,
#   (c) PostgreSQL is stopped in immediate mode (a crash: no checkpoint) and restarted,
#   (d) the payment provider is down for OUTAGE_SECONDS (60 by default).
# After each fault the operator audit must be clean; at the end the load generator's verdict
# (its ledger against the server's sales, no seat twice, nobody over the cap, every unsettled
# order looked up) must pass, the audit must be clean, and the provider's charges must equal
# the paid orders. Exits non-zero on any failure.
#
#   bash loadgen/bench/fault-drill.sh
#   FANS=6000 RATE=600 OUTAGE_SECONDS=60 bash loadgen/bench/fault-drill.sh
#
# Runs its own PostgreSQL cluster (initdb, port $PG_PORT) and Redis (port $REDIS_PORT) in a
# scratch directory, so restarting them touches nothing else. Needs PostgreSQL's server binaries
# (Debian: postgresql) and redis-server. Takes about 5 minutes plus a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."

FANS=${FANS:-4000}
RATE=${RATE:-400}            # fans admitted per minute
OUTAGE_SECONDS=${OUTAGE_SECONDS:-60}
DURATION=${DURATION:-480}    # the load generator's bound
PG_PORT=${PG_PORT:-55432}
REDIS_PORT=${REDIS_PORT:-56379}
SIM_PORT=${SIM_PORT:-50190}
NODE_PORTS=(50191 50192 50193)
ADMIN_PORTS=(9491 9492 9493)
TOKEN=drill-operator-token
KEY=drill-signing-key-0123456789abcdef
EVENT=drill-$(date +%s)

work=$(mktemp -d /tmp/taquilla-drill.XXXXXX)
chmod 755 "$work"
pids=()
node_pid=()
redis_pid=""
log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pg_bin/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  for pid in "${node_pid[@]}" "${pids[@]}" $redis_pid; do kill "$pid" 2>/dev/null || true; done
  as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -q -p taquilla-server -p taquilla-loadgen -p taquilla-ops
bin=target/release

wait_port() { for _ in $(seq 1 150); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

# --- dependencies -----------------------------------------------------------------------------
log "PostgreSQL: own cluster on port $PG_PORT"
mkdir -p "$work/pg" "$work/pgsock"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/pg" "$work/pgsock"
as_pg "$pg_bin/initdb" -D "$work/pg" --auth=trust -U postgres >/dev/null
start_pg() { as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w \
  -o "-p $PG_PORT -k $work/pgsock -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null; }
start_pg
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE taquilla"
DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/taquilla"

log "Redis: own server on port $REDIS_PORT, append-only file fsynced on every write"
mkdir -p "$work/redis"
start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$work/redis" --appendonly yes \
    --appendfsync always --save "" --logfile "$work/redis/redis.log" &
  redis_pid=$!
  wait_port "$REDIS_PORT"
}
start_redis

log "payment provider: taquilla-paysim on port $SIM_PORT"
$bin/taquilla-paysim serve --listen "127.0.0.1:$SIM_PORT" --log warn 2>"$work/paysim.log" &
pids+=($!)
wait_port "$SIM_PORT"

start_node() { # $1: index 0..2
  local i=$1
  $bin/taquilla-server --listen "127.0.0.1:${NODE_PORTS[$i]}" --admin-listen "127.0.0.1:${ADMIN_PORTS[$i]}" \
    --database-url "$DB_URL" --redis-url "redis://127.0.0.1:$REDIS_PORT" \
    --payment-provider-url "http://127.0.0.1:$SIM_PORT" \
    --operator-token "$TOKEN" --signing-key "$KEY" --data-dir "$work/node$i" \
    --join-rate-per-ip 100000000 --sales-rate-per-ip 0 --log warn 2>>"$work/node$i.log" &
  node_pid[$i]=$!
  wait_port "${NODE_PORTS[$i]}"
}
for i in 0 1 2; do start_node "$i"; done
log "three server nodes up: ${NODE_PORTS[*]}"

ops() { $bin/taquilla-ops --server "http://127.0.0.1:${NODE_PORTS[0]}" --token "$TOKEN" "$@"; }

# --- the sale ---------------------------------------------------------------------------------
cat >"$work/layout.toml" <<'LAYOUT'
[venue]
id = "drill-hall"
name = "Drill Hall"
city = "Madrid"

[[sections]]
id = "stalls"
name = "Stalls"
kind = "seated"
price = 70.00
row_count = 30
seats_per_row = 40

[[sections]]
id = "floor"
name = "Floor"
kind = "general_admission"
price = 45.00
capacity = 800
LAYOUT
ops event create --layout "$work/layout.toml" --id "$EVENT" --name "Fault drill" \
  --artist "The Faults" --starts-at +30d --fee 2.50 >/dev/null
ops admission set "$EVENT" --rate "$RATE" --max-active 1000 >/dev/null
ops sale open "$EVENT" --phase general >/dev/null
log "event $EVENT: 2,000 places, admission $RATE/min; $FANS fans over three nodes"

targets="http://127.0.0.1:${NODE_PORTS[0]},http://127.0.0.1:${NODE_PORTS[1]},http://127.0.0.1:${NODE_PORTS[2]}"
$bin/taquilla-loadgen --target "$targets" --token "$TOKEN" --users "$FANS" --hatch-rate 400 \
  --events "$EVENT" --duration "$DURATION" --out "$work/loadgen" -- --no-print-metrics \
  >"$work/loadgen.out" 2>&1 &
loadgen_pid=$!
started=$(date +%s)
at() { local wait=$(( started + $1 - $(date +%s) )); [ "$wait" -gt 0 ] && sleep "$wait"; return 0; }

audits_failed=0
audit() { # $1: after what
  if ops audit "$EVENT" >"$work/audit.out" 2>&1; then
    log "audit after $1: clean ($(grep -ciE 'ok|pass' "$work/audit.out") checks passed)"
  else
    log "audit after $1: FAILED"; cat "$work/audit.out"; audits_failed=$((audits_failed + 1))
  fi
}
sold() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d taquilla -tAc \
  "SELECT count(*) FILTER (WHERE status = 'SOLD') FROM seats WHERE event_id = '$EVENT'" 2>/dev/null || echo "?"; }

# (a) a node dies
at 20; log "(a) SIGKILL node 2 (port ${NODE_PORTS[1]}); sold so far: $(sold)"
kill -9 "${node_pid[1]}"; wait "${node_pid[1]}" 2>/dev/null || true
at 30; start_node 1; log "(a) node 2 started again"
at 35; audit "(a) node killed"

# (b) Redis crashes and restarts on its append-only file
at 45; log "(b) SIGKILL Redis; sold so far: $(sold)"
kill -9 "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
sleep 2; start_redis; log "(b) Redis restarted"
at 55; audit "(b) Redis restarted"

# (c) PostgreSQL crashes (immediate stop: no checkpoint, crash recovery on start) and restarts
at 65; log "(c) PostgreSQL immediate stop; sold so far: $(sold)"
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null
sleep 2; start_pg; log "(c) PostgreSQL restarted"
at 80; audit "(c) PostgreSQL restarted"

# (d) the payment provider is down for every node
at 90; log "(d) payment provider outage for ${OUTAGE_SECONDS} s; sold so far: $(sold)"
$bin/taquilla-paysim outage on --target "http://127.0.0.1:$SIM_PORT" >/dev/null
sleep "$OUTAGE_SECONDS"
$bin/taquilla-paysim outage off --target "http://127.0.0.1:$SIM_PORT" >/dev/null
log "(d) payment provider back; sold so far: $(sold)"
audit "(d) provider outage"

log "waiting for the load generator's verdict"
set +e; wait "$loadgen_pid"; loadgen_rc=$?; set -e
ended=$(date +%s)
audit "the sale"

paid=$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d taquilla -tAc \
  "SELECT count(*) FROM orders WHERE event_id = '$EVENT' AND state = 'PAID'")
sim_stats=$($bin/taquilla-paysim stats --target "http://127.0.0.1:$SIM_PORT")
charges=$(grep -oP '"charges":\K[0-9]+' <<<"$sim_stats")
refunds=$(grep -oP '"refunded":\K[0-9]+' <<<"$sim_stats")
sold_final=$(sold)

echo
echo "== load generator (exit $loadgen_rc) =="
grep -E 'verdict|VERDICT|tickets|sold out|Sold|errors|UNAVAILABLE|RESOURCE_EXHAUSTED|p99|outcome' "$work/loadgen.out" | head -60 || true
echo
echo "== drill =="
echo "run time:               $((ended - started)) s"
echo "seats sold:             $sold_final of 2000"
echo "paid orders:            $paid"
echo "provider charges:       $charges (refunded since: $refunds)"
echo "audits failed:          $audits_failed"
cp "$work/loadgen.out" "${DRILL_OUT:-/tmp/taquilla-drill-loadgen.out}" 2>/dev/null || true

status=0
[ "$loadgen_rc" -eq 0 ] || { echo "FAIL: the load generator's verdict failed"; status=1; }
[ "$audits_failed" -eq 0 ] || { echo "FAIL: $audits_failed audits failed"; status=1; }
# The drill refunds nothing: a charge without a paid order is a fan who paid and lost the seats.
[ "$paid" = "$charges" ] || { echo "FAIL: $paid paid orders but $charges charges"; status=1; }
[ "$refunds" = "0" ] || { echo "FAIL: $refunds charges were refunded"; status=1; }
[ "$status" -eq 0 ] && echo "DRILL OK: nothing lost"
exit "$status"
