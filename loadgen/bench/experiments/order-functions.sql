-- One whole order of four tickets through the sales functions, each call its own transaction as
-- the server makes them: a best-available hold (one per call: the server batches them), the
-- checkout, the payment start (durable), the sale (durable). No server, no gRPC, no payment
-- provider: the database's own work per order, for the comparison in docs/benchmarks-log.md, "The
-- database's share alone". A database seeded with --seed lux-tour, reset before each run with
--   TRUNCATE tickets, payments, order_items, orders, holds CASCADE;
--   UPDATE seats SET status = 'AVAILABLE', locked_by = NULL, locked_until = NULL, hold_id = NULL,
--          order_id = NULL, sold_to = NULL, sold_at = NULL WHERE status <> 'AVAILABLE';
--   VACUUM seats;
-- then
--   pgbench -n -f order-functions.sql -c 8 -j 2 -T 10 DBNAME
-- (the eight standing areas hold 44,000 places: 11,000 orders, so keep runs short).
\set e random(1, 8)
\set n random(1, 2000000000)
\set now 1800000000000
SELECT (ARRAY['lux-bcn-2026-04-13','lux-bcn-2026-04-15','lux-bcn-2026-04-17','lux-bcn-2026-04-18','lux-mad-2026-03-30','lux-mad-2026-04-01','lux-mad-2026-04-03','lux-mad-2026-04-04'])[:e] AS ev \gset
SELECT count(*) AS held FROM taquilla_hold(':ev', 'fan-' || :client_id || '-' || :n, 'h-' || :client_id || '-' || :n, :now, :now + 600000, 4, :n, NULL::bigint[], 'pista', 4, 24, 5000) \gset
SELECT array_agg(seat_id ORDER BY seat_id) AS seats FROM taquilla_checkout('o-' || :client_id || '-' || :n, 'h-' || :client_id || '-' || :n, 'fan-' || :client_id || '-' || :n, ':ev', 'co-' || :n, :now, :now + 900000, 5000) \gset
SELECT count(*) AS rows FROM taquilla_begin_payment('p-' || :client_id || '-' || :n, 'o-' || :client_id || '-' || :n, 'fan-' || :client_id || '-' || :n, ':ev', 'pay-' || :n, 'simulated', :now, 5000) \gset
SELECT taquilla_sell('p-' || :client_id || '-' || :n, 'pi-' || :n, :now, (SELECT array_agg('t-' || :n || '-' || s) FROM unnest(':seats'::bigint[]) s), ':seats'::bigint[], (SELECT array_agg(repeat('x', 180) || s) FROM unnest(':seats'::bigint[]) s), 5000);
