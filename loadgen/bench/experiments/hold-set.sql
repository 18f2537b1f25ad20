-- Eight best-available holds of 4 seats in one statement: one candidate read (SKIP LOCKED), one
-- per-fan cap check, one UPDATE and one INSERT for all eight. A sketch of set-based holds, not
-- the sales path: no seat adjacency, no lapsed locks, no all-or-nothing per hold when fewer than
-- 32 seats are left. For the comparison in docs/benchmarks-log.md, "Holds set-based":
--   pgbench -n -f hold-set.sql -c 8 -j 2 -t 100 DBNAME   (holds = 8 x transactions)
\set e random(1, 8)
\set n random(1, 2000000000)
WITH now_ AS (SELECT (extract(epoch from clock_timestamp())*1000)::bigint AS t),
fans AS (SELECT 'fan-' || :client_id || '-' || :n || '-' || g AS fan, g FROM generate_series(0, 7) g),
caps AS (SELECT f.g FROM fans f
          WHERE (SELECT COALESCE(SUM(h.seat_count), 0) FROM holds h WHERE h.event_id = (ARRAY['lux-bcn-2026-04-13','lux-bcn-2026-04-15','lux-bcn-2026-04-17','lux-bcn-2026-04-18','lux-mad-2026-03-30','lux-mad-2026-04-01','lux-mad-2026-04-03','lux-mad-2026-04-04'])[:e] AND h.fan_id = f.fan AND h.state = 'ACTIVE')
              + (SELECT COALESCE(SUM(o.seat_count), 0) FROM orders o WHERE o.event_id = (ARRAY['lux-bcn-2026-04-13','lux-bcn-2026-04-15','lux-bcn-2026-04-17','lux-bcn-2026-04-18','lux-mad-2026-03-30','lux-mad-2026-04-01','lux-mad-2026-04-03','lux-mad-2026-04-04'])[:e] AND o.fan_id = f.fan) + 4 <= 4),
cand AS (SELECT s.seat_id, row_number() OVER (ORDER BY s.seat_id) - 1 AS k
           FROM (SELECT seat_id FROM seats WHERE event_id = (ARRAY['lux-bcn-2026-04-13','lux-bcn-2026-04-15','lux-bcn-2026-04-17','lux-bcn-2026-04-18','lux-mad-2026-03-30','lux-mad-2026-04-01','lux-mad-2026-04-03','lux-mad-2026-04-04'])[:e] AND section_id = 'pista' AND status = 'AVAILABLE'
                  ORDER BY seat_id LIMIT 32 FOR UPDATE SKIP LOCKED) s),
pick AS (SELECT c.seat_id, f.fan, f.g FROM cand c JOIN fans f ON f.g = c.k / 4 JOIN caps ON caps.g = f.g),
upd AS (UPDATE seats s SET status = 'SOFT_LOCKED', locked_by = p.fan, locked_until = (SELECT t FROM now_) + 600000,
               hold_id = 'hb-' || :client_id || '-' || :n || '-' || p.g, order_id = NULL, version = s.version + 1,
               updated_at = (SELECT t FROM now_)
          FROM pick p WHERE s.event_id = (ARRAY['lux-bcn-2026-04-13','lux-bcn-2026-04-15','lux-bcn-2026-04-17','lux-bcn-2026-04-18','lux-mad-2026-03-30','lux-mad-2026-04-01','lux-mad-2026-04-03','lux-mad-2026-04-04'])[:e] AND s.seat_id = p.seat_id
        RETURNING s.seat_id, s.hold_id, s.locked_by, s.price)
INSERT INTO holds (id, event_id, fan_id, state, seat_count, subtotal, created_at, expires_at, seat_ids)
SELECT hold_id, (ARRAY['lux-bcn-2026-04-13','lux-bcn-2026-04-15','lux-bcn-2026-04-17','lux-bcn-2026-04-18','lux-mad-2026-03-30','lux-mad-2026-04-01','lux-mad-2026-04-03','lux-mad-2026-04-04'])[:e], min(locked_by), 'ACTIVE', count(*), sum(price), (SELECT t FROM now_), (SELECT t FROM now_) + 600000,
       string_agg(seat_id::text, ',' ORDER BY seat_id)
  FROM upd GROUP BY hold_id;
