-- Every index on seats is rewritten by every seat update (a status change defeats HOT updates),
-- so seats keeps only what the hot paths need: the primary key (holds, checkouts and sales go
-- by seat id), free seats by section (best available), and lapsed locks (the sweeper).
-- Holds and orders carry their seats, and the per-fan cap is counted from holds and orders,
-- which are written once each instead of once per seat.
DROP INDEX seats_event_status;
DROP INDEX seats_event_section_status;
DROP INDEX seats_hold;
DROP INDEX seats_order;
DROP INDEX seats_locked_by;
DROP INDEX seats_sold_to;
CREATE INDEX seats_available ON seats (event_id, section_id, seat_id) WHERE status = 'AVAILABLE';

-- The seat ids of a hold, comma-separated in seat order.
ALTER TABLE holds ADD COLUMN seat_ids TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN seat_count BIGINT NOT NULL DEFAULT 0;
CREATE INDEX orders_fan ON orders (event_id, fan_id, state);
