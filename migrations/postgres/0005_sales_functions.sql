-- The sales path's writes in one round trip each.
--
-- Each function is the successful case of one store transaction (sql.rs: hold, checkout,
-- payment start, capture claim, sale completion), with the same statements in the same order
-- and therefore the same locks. Anything else (a seat just taken, a fan over the cap, a lapsed
-- hold, a replayed key) raises SQLSTATE TQ001: the statement, and so the whole transaction,
-- is rolled back, nothing has changed, and the server runs the general transaction, which
-- decides and explains every outcome. The functions never decide a refusal themselves, so the
-- general path stays the one definition of what is refused and why.
--
-- Called as single statements outside any explicit transaction: each call is its own
-- transaction, and `set_config(..., true)` lasts until its commit. So a call cannot be rolled
-- back by its caller giving up, as an explicit transaction is: instead each function waits at
-- most 20 ms for any lock (NOWAIT on the rows it locks first, a try-lock for the fan,
-- `lock_timeout` for everything else: row updates, unique-index and foreign-key checks; a wait
-- means someone else is busy with the same rows, and the general transaction waits for them),
-- and declines, rolling itself back, when it has run longer than the caller's budget
-- (`p_budget_ms`, what the caller has left with a margin), so a caller that timed out is not
-- left with a write it was told did not happen.

-- Declines when the calling statement has run longer than the caller's budget.
CREATE FUNCTION taquilla_within_budget(p_budget_ms BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    IF clock_timestamp() > statement_timestamp() + p_budget_ms * INTERVAL '1 millisecond' THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'past the caller''s budget';
    END IF;
END
$$;

-- domain::inventory::choose_best, for candidates in seat order: adjacent seats in one row,
-- preferring a block that leaves no single orphan seat beside it, then the frontmost; without
-- room for an adjacent block, the frontmost free seats. NULL when there are too few.
-- A test compares the two on random seat maps.
CREATE FUNCTION taquilla_choose_best(ids BIGINT[], row_labels TEXT[], numbers BIGINT[], quantity INT)
RETURNS BIGINT[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    n INT := COALESCE(array_length(ids, 1), 0);
    run_start INT := 1;
    run_len INT;
    leaves_orphan INT := 0;
BEGIN
    IF quantity <= 0 OR n < quantity THEN
        RETURN NULL;
    END IF;
    FOR i IN 2 .. n + 1 LOOP
        IF i = n + 1 OR row_labels[i] <> row_labels[i - 1] OR numbers[i] <> numbers[i - 1] + 1 THEN
            run_len := i - run_start;
            IF run_len >= quantity THEN
                IF run_len - quantity <> 1 THEN
                    RETURN ids[run_start : run_start + quantity - 1];
                END IF;
                IF leaves_orphan = 0 THEN
                    leaves_orphan := run_start;
                END IF;
            END IF;
            run_start := i;
        END IF;
    END LOOP;
    IF leaves_orphan > 0 THEN
        RETURN ids[leaves_orphan : leaves_orphan + quantity - 1];
    END IF;
    RETURN ids[1 : quantity];
END
$$;

-- A hold: the per-fan lock and count, the seats (explicit, locked in seat order; or best
-- available among candidates others are not taking), the conditional update, the hold row.
-- Returns the held seats in seat order. Candidates are the free seats and the lapsed locks,
-- each read in seat order from its own index, as in sql.rs.
CREATE FUNCTION taquilla_hold(
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
         + (SELECT COALESCE(SUM(o.seat_count), 0) FROM orders o
             WHERE o.event_id = p_event AND o.fan_id = p_fan
               AND (o.state = 'PAID' OR (o.state = 'PENDING_PAYMENT' AND o.expires_at > p_now)))
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
                       AND s.status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND s.locked_until <= p_now
                     ORDER BY s.seat_id LIMIT p_candidates FOR UPDATE SKIP LOCKED)
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

-- A checkout: the hold (locked), its seats hard-locked for the order, the order and its items.
-- Returns the order's seats in seat order, with the hold's event.
CREATE FUNCTION taquilla_checkout(
    p_order TEXT, p_hold TEXT, p_fan TEXT, p_key TEXT, p_fee BIGINT, p_currency TEXT,
    p_now BIGINT, p_until BIGINT, p_budget_ms BIGINT)
RETURNS TABLE (event_id TEXT, seat_id BIGINT, section_id TEXT, row_label TEXT, seat_number BIGINT, price BIGINT)
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
BEGIN
    PERFORM set_config('lock_timeout', '20ms', true);
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM 1 FROM orders o WHERE o.fan_id = p_fan AND o.checkout_key = p_key;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'checkout: key already used';
    END IF;
    SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE NOWAIT;
    IF NOT FOUND OR h.fan_id <> p_fan OR h.state <> 'ACTIVE' THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'checkout: hold not active';
    END IF;
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
    VALUES (p_order, h.event_id, p_fan, p_hold, 'PENDING_PAYMENT', subtotal, p_fee * n,
            subtotal + p_fee * n, p_currency, p_until, p_key, p_now, p_now, n);
    INSERT INTO order_items (order_id, event_id, seat_id, price)
    SELECT p_order, h.event_id, u.id, u.price FROM unnest(r_ids, r_prices) AS u (id, price);
    UPDATE holds SET state = 'CHECKED_OUT', order_id = p_order WHERE id = p_hold;
    PERFORM taquilla_within_budget(p_budget_ms);
    RETURN QUERY SELECT h.event_id, u.* FROM unnest(r_ids, r_sections, r_rows, r_numbers, r_prices) u;
END
$$;

-- A payment's first attempt on an order: the order (locked) is the caller's, payable, and has
-- no attempt yet; the attempt is recorded PENDING, durably. Returns the order's columns on each
-- of its seats' rows.
CREATE FUNCTION taquilla_begin_payment(
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
    PERFORM 1 FROM order_items oi WHERE oi.order_id = p_order;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'payment: the order has no seats';
    END IF;
    INSERT INTO payments (id, order_id, state, amount, currency, provider, idempotency_key,
                          provider_idempotency_key, created_at, updated_at)
    VALUES (p_payment, p_order, 'PENDING', o.total, o.currency, p_provider, p_key, p_payment,
            p_now, p_now);
    PERFORM taquilla_within_budget(p_budget_ms);
    RETURN QUERY
        SELECT o.id, o.event_id, o.fan_id, o.hold_id, o.state, o.subtotal, o.fees, o.total,
               o.currency, o.expires_at, o.created_at, o.paid_at, oi.seat_id, s.section_id,
               s.row_label, s.seat_number, oi.price
          FROM order_items oi JOIN seats s ON s.event_id = oi.event_id AND s.seat_id = oi.seat_id
         WHERE oi.order_id = p_order ORDER BY oi.seat_id;
END
$$;

-- The capture claim: the order's seats are still hard-locked for it, so their lock (and the
-- order's time to pay) is extended over the capture and the attempt becomes AUTHORIZED.
CREATE FUNCTION taquilla_claim_for_capture(
    p_payment TEXT, p_intent TEXT, p_now BIGINT, p_until BIGINT, p_budget_ms BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    o orders%ROWTYPE;
    ids BIGINT[];
    extended BIGINT;
BEGIN
    PERFORM set_config('lock_timeout', '20ms', true);
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT * INTO o FROM orders WHERE id = (SELECT order_id FROM payments WHERE id = p_payment)
       FOR UPDATE NOWAIT;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'claim: no such payment';
    END IF;
    SELECT array_agg(oi.seat_id ORDER BY oi.seat_id) INTO ids FROM order_items oi WHERE oi.order_id = o.id;
    UPDATE seats s SET locked_until = GREATEST(s.locked_until, p_until), version = s.version + 1,
           updated_at = p_now
     WHERE s.event_id = o.event_id AND s.order_id = o.id AND s.status = 'HARD_LOCKED'
       AND s.locked_until > p_now AND s.seat_id = ANY (ids);
    GET DIAGNOSTICS extended = ROW_COUNT;
    IF o.state <> 'PENDING_PAYMENT' OR ids IS NULL OR extended <> array_length(ids, 1) THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'claim: the order lost its seats';
    END IF;
    UPDATE orders SET expires_at = GREATEST(expires_at, p_until), updated_at = p_now WHERE id = o.id;
    UPDATE payments SET state = 'AUTHORIZED', provider_intent_id = p_intent, updated_at = p_now
     WHERE id = p_payment AND state IN ('PENDING', 'AUTHORIZED');
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'claim: the attempt is no longer in flight';
    END IF;
    PERFORM taquilla_within_budget(p_budget_ms);
    RETURN TRUE;
END
$$;

-- The sale: seats SOLD, order PAID, payment CAPTURED, tickets issued; durably.
CREATE FUNCTION taquilla_complete_sale(
    p_payment TEXT, p_intent TEXT, p_now BIGINT, p_ticket_ids TEXT[], p_seat_ids BIGINT[],
    p_codes TEXT[], p_budget_ms BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
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
    RETURN TRUE;
END
$$;
