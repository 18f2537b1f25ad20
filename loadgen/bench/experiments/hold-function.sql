-- One best-available hold of 4 seats per transaction through the sales function, as the server
-- calls it (a fresh fan each time, a random LUX Tour event's 'pista'). For the comparison in
-- docs/benchmarks-log.md, "Holds set-based": a database seeded with --seed lux-tour, then
--   pgbench -n -f hold-function.sql -c 8 -j 2 -t 300 DBNAME
\set e random(1, 8)
\set n random(1, 2000000000)
SELECT count(*) FROM taquilla_hold((ARRAY['lux-bcn-2026-04-13','lux-bcn-2026-04-15','lux-bcn-2026-04-17','lux-bcn-2026-04-18','lux-mad-2026-03-30','lux-mad-2026-04-01','lux-mad-2026-04-03','lux-mad-2026-04-04'])[:e], 'fan-' || :client_id || '-' || :n, 'h-' || :client_id || '-' || :n, (extract(epoch from clock_timestamp())*1000)::bigint, (extract(epoch from clock_timestamp())*1000)::bigint + 600000, 4, :n, NULL::bigint[], 'pista', 4, 24, 5000);
