-- Best-available holds that arrive together, in batches: one transaction and a fixed number of
-- set-based statements for many holds at once. The server gathers the holds that arrive while
-- earlier batches are in flight (server/src/store/postgres.rs).
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
CREATE FUNCTION taquilla_hold_batch(
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

