-- Eight best-available holds of 4 seats in one call of the batch function the server uses
-- (migration 0007), each a fresh fan in a random LUX Tour event's 'pista'. For
-- docs/benchmarks-log.md, "Holds in batches": a database seeded with --seed lux-tour, then
--   pgbench -n -f hold-batch.sql -c 8 -j 2 -t 100 DBNAME   (holds = 8 x transactions)
\set n random(1, 2000000000)
SELECT count(*)
  FROM (SELECT array_agg(e ORDER BY g) AS e, array_agg(f ORDER BY g) AS f, array_agg(h ORDER BY g) AS h,
               array_agg(t ORDER BY g) AS t, array_agg(t + 600000 ORDER BY g) AS u,
               array_agg(l ORDER BY g) AS l
          FROM (SELECT g,
                       (ARRAY['lux-bcn-2026-04-13','lux-bcn-2026-04-15','lux-bcn-2026-04-17','lux-bcn-2026-04-18','lux-mad-2026-03-30','lux-mad-2026-04-01','lux-mad-2026-04-03','lux-mad-2026-04-04'])[1 + floor(random() * 8)::INT] AS e,
                       'fan-' || :client_id || '-' || :n || '-' || g AS f,
                       'hb-' || :client_id || '-' || :n || '-' || g AS h,
                       (extract(epoch from clock_timestamp()) * 1000)::BIGINT AS t,
                       :n::BIGINT * 8 + g AS l
                  FROM generate_series(0, 7) g) x) a,
       LATERAL taquilla_hold_batch(a.e, a.f, a.h, a.t, a.u, array_fill(4::BIGINT, ARRAY[8]), a.l,
                                   array_fill('pista'::TEXT, ARRAY[8]), array_fill(4, ARRAY[8]),
                                   array_fill(24::BIGINT, ARRAY[8]), 5000) b;
