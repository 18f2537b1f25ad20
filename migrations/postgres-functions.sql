-- Every PL/pgSQL function of the PostgreSQL store, as it runs: this file is the one place to
-- read or change them. The server applies it after the migrations, in one transaction under an
-- advisory lock, whenever its SHA-256 differs from the one the database recorded
-- (`taquilla_functions`, migration 0009); so a node starting with a changed file redefines the
-- functions once, and the other nodes' starts find it applied. It only ever holds
-- `CREATE OR REPLACE FUNCTION`: a function is dropped (or its arguments change, which makes a
-- new overload) by a migration, and, as with migrations, a change must suit the nodes still
-- running the code before it until they are upgraded. Migrations 0005-0007 created the first
-- versions; a test checks the database holds exactly the functions defined here, with these
-- bodies.
--
-- The sales path's writes in one round trip each.
--
-- Each function is the successful case of one store transaction (server/src/store/holds.rs,
-- orders.rs and payments.rs: hold, checkout, payment start, capture claim, sale), with the
-- same statements in the same order and therefore the same locks. Anything else (a seat just taken, a fan over the cap, a lapsed
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
CREATE OR REPLACE FUNCTION taquilla_within_budget(p_budget_ms BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
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
CREATE OR REPLACE FUNCTION taquilla_choose_best(ids BIGINT[], row_labels TEXT[], numbers BIGINT[], quantity INT)
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
-- each read in seat order from its own index, as in holds.rs. Two statements are made
-- plan-proof (migration 0006):
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

-- Best-available holds that arrive together, in batches: one transaction and a fixed number of
-- set-based statements for many holds at once. The server gathers the holds that arrive while
-- earlier batches are in flight (server/src/store/postgres.rs, migration 0007).
--
-- One hold by `taquilla_hold` runs about eight statements, each with its executor start-up,
-- index descents and WAL, for four seats; a node under load has several such holds in flight
-- at once. This function takes a batch of them (parallel arrays, one element per hold) and
-- does the work of all with a fixed number of statements: the fans' locks, the fans' counts,
-- one candidate read for every (event, section) the batch asks for, one UPDATE of every chosen
-- seat, one INSERT of every hold. Each hold is still all-or-nothing, and still exactly what
-- `taquilla_hold` would have made of it:
--
-- * a hold whose fan's lock another transaction has, that is over the fan's cap (counting the
--   fan's earlier holds in this batch: the batch runs in one session, where the fan's lock is
--   re-entrant), or for which too few candidates are left, is left out of the answer and
--   changes nothing; the caller runs the general transaction for it, which decides;
-- * holds of one section choose in turn among the candidates the batch read, each from what
--   the ones before it left, with the same choice as the single hold (`taquilla_choose_best`);
--   so two holds of one batch never choose the same seat;
-- * candidates are read with SKIP LOCKED, so the batch never waits for a row lock, and the
--   UPDATE touches only rows it has locked: nothing in it can wait or deadlock.
--
-- Answers one row per held seat, tagged with the hold's 1-based place in the arrays.
CREATE OR REPLACE FUNCTION taquilla_hold_batch(
    p_events TEXT[], p_fans TEXT[], p_holds TEXT[], p_nows BIGINT[], p_untils BIGINT[],
    p_caps BIGINT[], p_fan_locks BIGINT[], p_sections TEXT[], p_quantities INT[],
    p_candidates BIGINT[], p_budget_ms BIGINT)
RETURNS TABLE (k INT, seat_id BIGINT, section_id TEXT, row_label TEXT, seat_number BIGINT,
               price BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n INT := COALESCE(array_length(p_holds, 1), 0);
    oldest BIGINT;
    locked BOOLEAN[];
    counted BIGINT[];
    -- The (event, section) groups, and every group's candidates in (group, seat) order.
    g_events TEXT[];
    g_sections TEXT[];
    c_groups INT[];
    c_ids BIGINT[];
    c_rows TEXT[];
    c_numbers BIGINT[];
    c_taken BOOLEAN[];
    -- Each hold's group and quantity once it has chosen (0 while it has not).
    h_group INT[];
    h_held INT[];
    gi INT;
    already BIGINT;
    f_ids BIGINT[];
    f_rows TEXT[];
    f_numbers BIGINT[];
    chosen BIGINT[];
    a_k INT[] := '{}';
    a_ids BIGINT[] := '{}';
    r_k INT[];
    r_ids BIGINT[];
    r_sections TEXT[];
    r_rows TEXT[];
    r_numbers BIGINT[];
    r_prices BIGINT[];
BEGIN
    PERFORM set_config('lock_timeout', '20ms', true);
    PERFORM set_config('synchronous_commit', 'off', true);
    IF n = 0 THEN
        RETURN;
    END IF;
    oldest := (SELECT min(x) FROM unnest(p_nows) x);
    -- The fans' locks first, then their counts: a count taken under the lock stays true until
    -- the commit.
    SELECT array_agg(pg_try_advisory_xact_lock(x.l) ORDER BY x.i)
      INTO locked FROM unnest(p_fan_locks) WITH ORDINALITY AS x (l, i);
    SELECT array_agg(
             (SELECT COALESCE(SUM(h.seat_count), 0) FROM holds h
               WHERE h.event_id = x.e AND h.fan_id = x.f AND h.state = 'ACTIVE'
                 AND h.expires_at > x.t)
           + (SELECT COALESCE(SUM(CASE WHEN o.state = 'PAID'
                                         OR (o.state = 'PENDING_PAYMENT' AND o.expires_at > x.t)
                                       THEN o.seat_count ELSE 0 END), 0)
                FROM orders o WHERE o.event_id = x.e AND o.fan_id = x.f)
           ORDER BY x.i)
      INTO counted FROM unnest(p_events, p_fans, p_nows) WITH ORDINALITY AS x (e, f, t, i);
    -- Every group's candidates in one statement: free seats and lapsed locks of its section,
    -- each from its own index (as in `taquilla_hold`), as many as its holds would read alone.
    -- A lapse is judged at the batch's earliest time, so it holds for every hold of the batch.
    SELECT array_agg(g.e ORDER BY g.gi), array_agg(g.s ORDER BY g.gi)
      INTO g_events, g_sections
      FROM (SELECT x.e, x.s, row_number() OVER (ORDER BY x.e, x.s)::INT AS gi
              FROM unnest(p_events, p_sections) AS x (e, s) GROUP BY x.e, x.s) g;
    WITH g AS (
        SELECT gs.gi, g_events[gs.gi] AS e, g_sections[gs.gi] AS s,
               (SELECT SUM(p_candidates[j]) FROM generate_subscripts(p_holds, 1) j
                 WHERE p_events[j] = g_events[gs.gi] AND p_sections[j] = g_sections[gs.gi]) AS lim
          FROM generate_subscripts(g_events, 1) AS gs (gi)),
    free AS (
        SELECT g.gi, g.lim, f.* FROM g CROSS JOIN LATERAL (
            SELECT s.seat_id, s.row_label, s.seat_number FROM seats s
             WHERE s.event_id = g.e AND s.section_id = g.s AND s.status = 'AVAILABLE'
             ORDER BY s.seat_id LIMIT g.lim FOR UPDATE SKIP LOCKED) f),
    lapsed AS (
        SELECT g.gi, g.lim, l.* FROM g CROSS JOIN LATERAL (
            SELECT s.seat_id, s.row_label, s.seat_number FROM seats s
             WHERE s.event_id = g.e AND s.section_id = g.s
               AND s.status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND s.locked_by IS NOT NULL
               AND s.locked_until <= oldest
             ORDER BY s.seat_id + 0 LIMIT g.lim FOR UPDATE SKIP LOCKED) l),
    ranked AS (
        SELECT u.*, row_number() OVER (PARTITION BY u.gi ORDER BY u.seat_id) AS r
          FROM (SELECT * FROM free UNION ALL SELECT * FROM lapsed) u)
    SELECT array_agg(c.gi ORDER BY c.gi, c.seat_id), array_agg(c.seat_id ORDER BY c.gi, c.seat_id),
           array_agg(c.row_label ORDER BY c.gi, c.seat_id),
           array_agg(c.seat_number ORDER BY c.gi, c.seat_id)
      INTO c_groups, c_ids, c_rows, c_numbers
      FROM ranked c WHERE c.r <= c.lim;
    c_taken := array_fill(false, ARRAY[COALESCE(array_length(c_ids, 1), 0)]);
    h_group := array_fill(0, ARRAY[n]);
    h_held := array_fill(0, ARRAY[n]);
    -- Each hold in turn, in the order it came.
    FOR i IN 1 .. n LOOP
        CONTINUE WHEN NOT locked[i] OR p_quantities[i] <= 0;
        already := counted[i];
        FOR j IN 1 .. i - 1 LOOP
            IF p_events[j] = p_events[i] AND p_fans[j] = p_fans[i] THEN
                already := already + h_held[j];
            END IF;
        END LOOP;
        CONTINUE WHEN already + p_quantities[i] > p_caps[i];
        gi := array_position(g_events, p_events[i]);
        WHILE g_sections[gi] <> p_sections[i] LOOP
            gi := gi + 1;
        END LOOP;
        f_ids := '{}';
        f_rows := '{}';
        f_numbers := '{}';
        FOR ci IN 1 .. COALESCE(array_length(c_ids, 1), 0) LOOP
            IF c_groups[ci] = gi AND NOT c_taken[ci] THEN
                f_ids := f_ids || c_ids[ci];
                f_rows := f_rows || c_rows[ci];
                f_numbers := f_numbers || c_numbers[ci];
            END IF;
        END LOOP;
        chosen := taquilla_choose_best(f_ids, f_rows, f_numbers, p_quantities[i]);
        CONTINUE WHEN chosen IS NULL;
        FOR ci IN 1 .. array_length(c_ids, 1) LOOP
            IF c_groups[ci] = gi AND c_ids[ci] = ANY (chosen) THEN
                c_taken[ci] := true;
            END IF;
        END LOOP;
        h_group[i] := gi;
        h_held[i] := p_quantities[i];
        a_k := a_k || array_fill(i, ARRAY[array_length(chosen, 1)]);
        a_ids := a_ids || chosen;
    END LOOP;
    IF COALESCE(array_length(a_ids, 1), 0) = 0 THEN
        RETURN;
    END IF;
    WITH taken AS (
        UPDATE seats s SET status = 'SOFT_LOCKED', locked_by = p_fans[u.k],
               locked_until = p_untils[u.k], hold_id = p_holds[u.k], order_id = NULL,
               version = s.version + 1, updated_at = p_nows[u.k]
          FROM unnest(a_k, a_ids) AS u (k, id)
         WHERE s.event_id = p_events[u.k] AND s.seat_id = u.id
           AND (s.status = 'AVAILABLE'
                OR (s.status IN ('SOFT_LOCKED', 'HARD_LOCKED') AND s.locked_until <= p_nows[u.k]))
        RETURNING u.k, s.seat_id, s.section_id, s.row_label, s.seat_number, s.price)
    SELECT array_agg(t.k ORDER BY t.k, t.seat_id), array_agg(t.seat_id ORDER BY t.k, t.seat_id),
           array_agg(t.section_id ORDER BY t.k, t.seat_id),
           array_agg(t.row_label ORDER BY t.k, t.seat_id),
           array_agg(t.seat_number ORDER BY t.k, t.seat_id),
           array_agg(t.price ORDER BY t.k, t.seat_id)
      INTO r_k, r_ids, r_sections, r_rows, r_numbers, r_prices
      FROM taken t;
    IF COALESCE(array_length(r_ids, 1), 0) <> array_length(a_ids, 1) THEN
        RAISE EXCEPTION USING ERRCODE = 'TQ001', MESSAGE = 'hold batch: a seat was taken';
    END IF;
    INSERT INTO holds (id, event_id, fan_id, state, seat_count, subtotal, created_at, expires_at,
                       seat_ids)
    SELECT p_holds[t.k], p_events[t.k], p_fans[t.k], 'ACTIVE', count(*), SUM(t.price),
           p_nows[t.k], p_untils[t.k], string_agg(t.id::TEXT, ',' ORDER BY t.id)
      FROM unnest(r_k, r_ids, r_prices) AS t (k, id, price)
     GROUP BY t.k;
    PERFORM taquilla_within_budget(p_budget_ms);
    RETURN QUERY SELECT * FROM unnest(r_k, r_ids, r_sections, r_rows, r_numbers, r_prices);
END
$$;

-- A checkout: the hold (locked) is the caller's and, for a fan's pass, in the pass's event
-- (`p_event`; NULL for an operator); its seats are hard-locked for the order; the order and
-- its items are written with the event's own fee and currency. Returns them with the order's
-- seats in seat order.
CREATE OR REPLACE FUNCTION taquilla_checkout(
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

-- A payment's first attempt on an order: the order (locked) is the caller's, payable, and has
-- no attempt yet; the attempt is recorded PENDING, durably. Returns the order's columns on each
-- of its seats' rows.
-- The order's seats are read in two steps (its items by order, then their seats by primary
-- key) instead of a join, which fresh statistics turned into a probe of order_items for every
-- seat of the event (migration 0006).
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

-- The capture claim: the order's seats are still hard-locked for it, so their lock (and the
-- order's time to pay) is extended over the capture and the attempt becomes AUTHORIZED.
CREATE OR REPLACE FUNCTION taquilla_claim_for_capture(
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

-- The sale: seats SOLD, order PAID, payment CAPTURED, tickets issued; durably. Answers the
-- order's time to pay as the sale found it (capture claims extend it), so the server can answer
-- with the paid order without reading it back.
CREATE OR REPLACE FUNCTION taquilla_sell(
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
