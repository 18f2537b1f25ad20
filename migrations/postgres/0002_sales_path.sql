-- Hot queries of the sales path.

-- Per-fan cap: a fan's live locks and purchases in one event.
CREATE INDEX seats_locked_by ON seats (event_id, locked_by) WHERE locked_by IS NOT NULL;
CREATE INDEX seats_sold_to ON seats (event_id, sold_to) WHERE sold_to IS NOT NULL;

-- Integrity backstop: at most one payment in flight per order, so two concurrent Pay calls with
-- different keys cannot both authorize.
CREATE UNIQUE INDEX payments_one_in_flight ON payments (order_id) WHERE state IN ('PENDING', 'AUTHORIZED');

-- The reconciler looks for payments stuck in flight.
CREATE INDEX payments_in_flight ON payments (updated_at) WHERE state IN ('PENDING', 'AUTHORIZED');
