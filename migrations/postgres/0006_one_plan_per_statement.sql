-- Every statement of the sales path has one sensible plan, whatever the statistics say.
--
-- The functions' statements are planned once per connection and the plan is kept. At a sale's
-- opening the statistics describe an event nobody has bought from yet (no seat locked, no
-- hold, no order), so partial indexes over locked seats, live holds and pending orders look
-- empty. A statement that implies such an index's predicate (a checkout's
-- `status = 'SOFT_LOCKED'` implies `status IN ('SOFT_LOCKED', 'HARD_LOCKED')`) could then scan
-- the whole index instead of going by primary key, and it did: under load a checkout read every
-- locked seat of every event (93 million index entries in 10 seconds). Fresh statistics are no
-- cure: with them a best-available hold walked the primary key in seat order through a whole
-- event looking for lapsed locks, and a payment start probed order_items once per seat.
--
-- So the indexes the sweeper needs (lapsed locks, holds and orders past their time) carry a
-- predicate no sales statement states: only a query that names it (the sweeper, the lapsed
-- candidates of a hold) can use them. Each predicate is implied by the rows' state through the
-- table's constraints and writes: a locked seat has a `locked_by` (a CHECK says so) and every
-- write that unlocks a seat clears it; a live hold has no order yet; a pending order is not
-- paid; a payment in flight has no failure reason.
DROP INDEX seats_locked_until;
-- By section, so a hold reads only its section's lapsed locks (with the lapse time alone, the
-- planner combined it with every primary key entry of the event); the sweeper reads it whole.
CREATE INDEX seats_lapse ON seats (event_id, section_id, locked_until) WHERE locked_by IS NOT NULL;
DROP INDEX holds_expiry;
CREATE INDEX holds_lapse ON holds (expires_at) WHERE state = 'ACTIVE' AND order_id IS NULL;
DROP INDEX orders_expiry;
CREATE INDEX orders_lapse ON orders (expires_at) WHERE state = 'PENDING_PAYMENT' AND paid_at IS NULL;
DROP INDEX payments_in_flight;
CREATE INDEX payments_unfinished ON payments (updated_at)
    WHERE state IN ('PENDING', 'AUTHORIZED') AND failure_reason IS NULL;

-- The hold, as in 0005, with two statements made plan-proof:
-- * the per-fan count reads the fan's orders by (event, fan) and sums what counts, instead of
--   asking for PAID orders, which an index of the event's orders by state also serves;
-- * lapsed candidates go by the lapse index and are then sorted (`seat_id + 0`): walking the
--   primary key in seat order, which avoids the sort, reads the whole event when few or no
--   locks have lapsed, the usual case.
CREATE OR REPLACE FUNCTION taquilla_hold(
    p_event TEXT, p_fan TEXT, p_hold TEXT, p_now BIGINT, p_until BIGINT, p_cap BIGINT,
    p_fan_lock BIGINT, p_seats BIGINT[], p_section TEXT, p_quantity INT, p_candidates BIGINT,
    p_budget_ms BIGINT)
RETURNS TABLE (seat_id BIGINT, section_id TEXT, row_label TEXT, seat_number BIGINT, price BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    already BIGINT;
    wanted INT;
    chosen BIGINT[];
    c_ids BIGINT[];
    c_rows TEXT[];
    c_numbers BIGINT[];
    r_ids BIGINT[];
    r_sections TEXT[];
    r_rows TEXT[];
    r_numbers BIGINT[];
    r_prices BIGINT[];
BEGIN
    PERFORM set_config('lock_timeout', '20ms', true);
    PERFORM set_config('synchronous_commit', 'off', true);
    IF NOT pg_try_advisory_xact_lock(p_fan_lock) THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'hold: the fan has another hold in progress';
    END IF;
    SELECT (SELECT COALESCE(SUM(h.seat_count), 0) FROM holds h
             WHERE h.event_id = p_event AND h.fan_id = p_fan AND h.state = 'ACTIVE'
               AND h.expires_at > p_now)
         + (SELECT COALESCE(SUM(CASE WHEN o.state = 'PAID'
                                       OR (o.state = 'PENDING_PAYMENT' AND o.expires_at > p_now)
                                     THEN o.seat_count ELSE 0 END), 0)
              FROM orders o WHERE o.event_id = p_event AND o.fan_id = p_fan)
      INTO already;
    wanted := CASE WHEN p_seats IS NULL THEN p_quantity ELSE COALESCE(array_length(p_seats, 1), 0) END;
    IF wanted <= 0 OR already + wanted > p_cap THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'hold: over the per-fan cap';
    END IF;
    IF p_seats IS NULL THEN
        SELECT array_agg(c.seat_id ORDER BY c.seat_id), array_agg(c.row_label ORDER BY c.seat_id),
               array_agg(c.seat_number ORDER BY c.seat_id)
          INTO c_ids, c_rows, c_numbers
          FROM (WITH free AS (
                    SELECT s.seat_id, s.row_label, s.seat_number FROM seats s
                     WHERE s.event_id = p_event AND s.section_id = p_section AND s.status = 'AVAILABLE'
                     ORDER BY s.seat_id LIMIT p_candidates FOR UPDATE SKIP LOCKED),
                  lapsed AS (
                    SELECT s.seat_id, s.row_label, s.seat_number FROM seats s
                     WHERE s.event_id = p_event AND s.section_id = p_section
                       AND s.status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND s.locked_by IS NOT NULL
                       AND s.locked_until <= p_now
                     ORDER BY s.seat_id + 0 LIMIT p_candidates FOR UPDATE SKIP LOCKED)
                SELECT * FROM (SELECT * FROM free UNION ALL SELECT * FROM lapsed) u
                 ORDER BY u.seat_id LIMIT p_candidates) c;
        chosen := taquilla_choose_best(c_ids, c_rows, c_numbers, p_quantity);
        IF chosen IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'hold: too few free seats';
        END IF;
    ELSE
        SELECT array_agg(x ORDER BY x) INTO chosen FROM unnest(p_seats) x;
        PERFORM 1 FROM seats s WHERE s.event_id = p_event AND s.seat_id = ANY (chosen)
          ORDER BY s.seat_id FOR UPDATE NOWAIT;
    END IF;
    WITH taken AS (
        UPDATE seats s SET status = 'SOFT_LOCKED', locked_by = p_fan, locked_until = p_until,
               hold_id = p_hold, order_id = NULL, version = s.version + 1, updated_at = p_now
         WHERE s.event_id = p_event AND s.seat_id = ANY (chosen)
           AND (s.status = 'AVAILABLE'
                OR (s.status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND s.locked_until <= p_now))
        RETURNING s.seat_id, s.section_id, s.row_label, s.seat_number, s.price)
    SELECT array_agg(t.seat_id ORDER BY t.seat_id), array_agg(t.section_id ORDER BY t.seat_id),
           array_agg(t.row_label ORDER BY t.seat_id), array_agg(t.seat_number ORDER BY t.seat_id),
           array_agg(t.price ORDER BY t.seat_id)
      INTO r_ids, r_sections, r_rows, r_numbers, r_prices
      FROM taken t;
    IF COALESCE(array_length(r_ids, 1), 0) <> array_length(chosen, 1) THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'hold: a seat was taken';
    END IF;
    INSERT INTO holds (id, event_id, fan_id, state, seat_count, subtotal, created_at, expires_at, seat_ids)
    VALUES (p_hold, p_event, p_fan, 'ACTIVE', array_length(r_ids, 1),
            (SELECT SUM(x) FROM unnest(r_prices) x), p_now, p_until, array_to_string(r_ids, ','));
    PERFORM taquilla_within_budget(p_budget_ms);
    RETURN QUERY SELECT * FROM unnest(r_ids, r_sections, r_rows, r_numbers, r_prices);
END
$$;

-- The payment start, as in 0005, except that the order's seats are read in two steps (its
-- items by order, then their seats by primary key) instead of a join, which fresh statistics
-- turned into a probe of order_items for every seat of the event.
CREATE OR REPLACE FUNCTION taquilla_begin_payment(
    p_payment TEXT, p_order TEXT, p_fan TEXT, p_event TEXT, p_key TEXT, p_provider TEXT,
    p_now BIGINT, p_budget_ms BIGINT)
RETURNS TABLE (id TEXT, event_id TEXT, fan_id TEXT, hold_id TEXT, state TEXT, subtotal BIGINT,
               fees BIGINT, total BIGINT, currency TEXT, expires_at BIGINT, created_at BIGINT,
               paid_at BIGINT, seat_id BIGINT, section_id TEXT, row_label TEXT,
               seat_number BIGINT, price BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    o orders%ROWTYPE;
    ids BIGINT[];
    prices BIGINT[];
BEGIN
    PERFORM set_config('lock_timeout', '20ms', true);
    SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE NOWAIT;
    IF NOT FOUND OR (p_fan IS NOT NULL AND o.fan_id <> p_fan)
       OR (p_event IS NOT NULL AND o.event_id <> p_event)
       OR o.state <> 'PENDING_PAYMENT' OR o.expires_at <= p_now THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'payment: order not payable by this caller';
    END IF;
    PERFORM 1 FROM payments p WHERE p.order_id = p_order;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'payment: not the first attempt';
    END IF;
    SELECT array_agg(oi.seat_id ORDER BY oi.seat_id), array_agg(oi.price ORDER BY oi.seat_id)
      INTO ids, prices FROM order_items oi WHERE oi.order_id = p_order;
    IF ids IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'payment: the order has no seats';
    END IF;
    INSERT INTO payments (id, order_id, state, amount, currency, provider, idempotency_key,
                          provider_idempotency_key, created_at, updated_at)
    VALUES (p_payment, p_order, 'PENDING', o.total, o.currency, p_provider, p_key, p_payment,
            p_now, p_now);
    PERFORM taquilla_within_budget(p_budget_ms);
    RETURN QUERY
        SELECT o.id, o.event_id, o.fan_id, o.hold_id, o.state, o.subtotal, o.fees, o.total,
               o.currency, o.expires_at, o.created_at, o.paid_at, s.seat_id, s.section_id,
               s.row_label, s.seat_number, prices[array_position(ids, s.seat_id)]
          FROM seats s
         WHERE s.event_id = o.event_id AND s.seat_id = ANY (ids)
         ORDER BY s.seat_id;
END
$$;

-- The checkout, as in 0005, but callable without reading the hold first: it checks the hold
-- is the caller's and, for a fan's pass, in the pass's event (`p_event`; NULL for an
-- operator), and takes the event's fee and currency from the event itself. Returns them with
-- the order's seats. (An overload: 0005's stays for nodes not yet upgraded.)
CREATE FUNCTION taquilla_checkout(
    p_order TEXT, p_hold TEXT, p_fan TEXT, p_event TEXT, p_key TEXT, p_now BIGINT,
    p_until BIGINT, p_budget_ms BIGINT)
RETURNS TABLE (event_id TEXT, fee BIGINT, currency TEXT, seat_id BIGINT, section_id TEXT,
               row_label TEXT, seat_number BIGINT, price BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    h holds%ROWTYPE;
    ids BIGINT[];
    r_ids BIGINT[];
    r_sections TEXT[];
    r_rows TEXT[];
    r_numbers BIGINT[];
    r_prices BIGINT[];
    n INT;
    subtotal BIGINT;
    e_fee BIGINT;
    e_currency TEXT;
BEGIN
    PERFORM set_config('lock_timeout', '20ms', true);
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM 1 FROM orders o WHERE o.fan_id = p_fan AND o.checkout_key = p_key;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'checkout: key already used';
    END IF;
    SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE NOWAIT;
    IF NOT FOUND OR h.fan_id <> p_fan OR (p_event IS NOT NULL AND h.event_id <> p_event)
       OR h.state <> 'ACTIVE' THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'checkout: hold not active';
    END IF;
    SELECT e.fee_per_ticket, e.currency INTO e_fee, e_currency FROM events e WHERE e.id = h.event_id;
    ids := string_to_array(h.seat_ids, ',')::BIGINT[];
    WITH locked AS (
        UPDATE seats s SET status = 'HARD_LOCKED', order_id = p_order, locked_until = p_until,
               version = s.version + 1, updated_at = p_now
         WHERE s.event_id = h.event_id AND s.hold_id = p_hold AND s.status = 'SOFT_LOCKED'
           AND s.locked_until > p_now AND s.seat_id = ANY (ids)
        RETURNING s.seat_id, s.section_id, s.row_label, s.seat_number, s.price)
    SELECT array_agg(l.seat_id ORDER BY l.seat_id), array_agg(l.section_id ORDER BY l.seat_id),
           array_agg(l.row_label ORDER BY l.seat_id), array_agg(l.seat_number ORDER BY l.seat_id),
           array_agg(l.price ORDER BY l.seat_id)
      INTO r_ids, r_sections, r_rows, r_numbers, r_prices
      FROM locked l;
    n := COALESCE(array_length(r_ids, 1), 0);
    IF n = 0 OR n <> h.seat_count THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'checkout: the hold lapsed';
    END IF;
    subtotal := (SELECT SUM(x) FROM unnest(r_prices) x);
    INSERT INTO orders (id, event_id, fan_id, hold_id, state, subtotal, fees, total, currency,
                        expires_at, checkout_key, created_at, updated_at, seat_count)
    VALUES (p_order, h.event_id, p_fan, p_hold, 'PENDING_PAYMENT', subtotal, e_fee * n,
            subtotal + e_fee * n, e_currency, p_until, p_key, p_now, p_now, n);
    INSERT INTO order_items (order_id, event_id, seat_id, price)
    SELECT p_order, h.event_id, u.id, u.price FROM unnest(r_ids, r_prices) AS u (id, price);
    UPDATE holds SET state = 'CHECKED_OUT', order_id = p_order WHERE id = p_hold;
    PERFORM taquilla_within_budget(p_budget_ms);
    RETURN QUERY SELECT h.event_id, e_fee, e_currency, u.*
                   FROM unnest(r_ids, r_sections, r_rows, r_numbers, r_prices) u;
END
$$;

-- The sale, as `taquilla_complete_sale` in 0005 (which stays for nodes not yet upgraded), but
-- answering with the order's time to pay as the sale found it (capture claims extend it), so
-- the server can answer with the paid order without reading it back.
CREATE FUNCTION taquilla_sell(
    p_payment TEXT, p_intent TEXT, p_now BIGINT, p_ticket_ids TEXT[], p_seat_ids BIGINT[],
    p_codes TEXT[], p_budget_ms BIGINT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    o orders%ROWTYPE;
    sold BIGINT;
    n INT := COALESCE(array_length(p_seat_ids, 1), 0);
BEGIN
    PERFORM set_config('lock_timeout', '20ms', true);
    SELECT * INTO o FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = p_payment)
       FOR UPDATE NOWAIT;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'sale: no such payment';
    END IF;
    UPDATE seats s SET status = 'SOLD', sold_to = o.fan_id, sold_at = p_now, locked_by = NULL,
           locked_until = NULL, hold_id = NULL, version = s.version + 1, updated_at = p_now
     WHERE s.event_id = o.event_id AND s.order_id = o.id AND s.status = 'HARD_LOCKED'
       AND s.seat_id = ANY (p_seat_ids);
    GET DIAGNOSTICS sold = ROW_COUNT;
    IF n = 0 OR sold <> n THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'sale: the order lost its seats';
    END IF;
    UPDATE orders SET state = 'PAID', paid_at = p_now, updated_at = p_now
     WHERE id = o.id AND state = 'PENDING_PAYMENT';
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'sale: the order is not pending payment';
    END IF;
    UPDATE payments SET state = 'CAPTURED', provider_intent_id = p_intent, updated_at = p_now
     WHERE id = p_payment AND state IN ('PENDING', 'AUTHORIZED');
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'sale: the attempt is no longer in flight';
    END IF;
    INSERT INTO tickets (id, event_id, seat_id, order_id, fan_id, code, state, issued_at)
    SELECT t.id, o.event_id, t.seat_id, o.id, o.fan_id, t.code, 'VALID', p_now
      FROM unnest(p_ticket_ids, p_seat_ids, p_codes) AS t (id, seat_id, code);
    PERFORM taquilla_within_budget(p_budget_ms);
    RETURN o.expires_at;
END
$$;
