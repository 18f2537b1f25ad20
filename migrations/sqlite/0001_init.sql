-- Taquilla schema (SQLite, the embedded backend). Mirrors migrations/postgres: times are
-- BIGINT milliseconds since the Unix epoch, money is BIGINT minor units.

CREATE TABLE venues (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    city TEXT NOT NULL DEFAULT ''
);

CREATE TABLE events (
    id                   TEXT PRIMARY KEY,
    venue_id             TEXT NOT NULL REFERENCES venues (id),
    name                 TEXT NOT NULL,
    artist               TEXT NOT NULL,
    starts_at            BIGINT NOT NULL,
    currency             TEXT NOT NULL,
    fee_per_ticket       BIGINT NOT NULL CHECK (fee_per_ticket >= 0),
    max_per_fan          BIGINT NOT NULL CHECK (max_per_fan > 0),
    capacity             BIGINT NOT NULL CHECK (capacity > 0),
    sale_state           TEXT NOT NULL DEFAULT 'NOT_OPEN'
        CHECK (sale_state IN ('NOT_OPEN', 'OPEN', 'PAUSED', 'SOLD_OUT', 'CLOSED')),
    sale_phase           TEXT NOT NULL DEFAULT 'GENERAL' CHECK (sale_phase IN ('PRESALE', 'GENERAL')),
    sale_opens_at        BIGINT NOT NULL DEFAULT 0,
    rate_per_minute      BIGINT NOT NULL DEFAULT 6000,
    burst                BIGINT NOT NULL DEFAULT 100,
    max_active           BIGINT NOT NULL DEFAULT 5000,
    pow_difficulty       BIGINT NOT NULL DEFAULT 0,
    shuffle_seed         TEXT,
    created_at           BIGINT NOT NULL
);

CREATE TABLE sections (
    event_id  TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    id        TEXT NOT NULL,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('SEATED', 'GENERAL_ADMISSION')),
    price     BIGINT NOT NULL CHECK (price >= 0),
    capacity  BIGINT NOT NULL CHECK (capacity > 0),
    position  BIGINT NOT NULL,
    PRIMARY KEY (event_id, id)
);

-- One row per seat or general-admission place: the seed's seat table. A lock is live while
-- locked_until is in the future; an expired lock counts as AVAILABLE for every reader and writer
-- before the sweeper resets it.
CREATE TABLE seats (
    event_id      TEXT NOT NULL,
    seat_id       BIGINT NOT NULL,
    section_id    TEXT NOT NULL,
    row_label     TEXT NOT NULL DEFAULT '',
    seat_number   BIGINT NOT NULL,
    price         BIGINT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'AVAILABLE'
        CHECK (status IN ('AVAILABLE', 'SOFT_LOCKED', 'HARD_LOCKED', 'SOLD')),
    locked_by     TEXT,
    locked_until  BIGINT,
    hold_id       TEXT,
    order_id      TEXT,
    sold_to       TEXT,
    sold_at       BIGINT,
    version       BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (event_id, seat_id),
    FOREIGN KEY (event_id, section_id) REFERENCES sections (event_id, id),
    CHECK (status NOT IN ('SOFT_LOCKED', 'HARD_LOCKED') OR (locked_by IS NOT NULL AND locked_until IS NOT NULL)),
    CHECK (status <> 'SOLD' OR (order_id IS NOT NULL AND sold_to IS NOT NULL AND sold_at IS NOT NULL))
);
CREATE INDEX seats_event_status ON seats (event_id, status);
CREATE INDEX seats_event_section_status ON seats (event_id, section_id, status);
CREATE INDEX seats_locked_until ON seats (locked_until) WHERE status IN ('SOFT_LOCKED', 'HARD_LOCKED');
CREATE INDEX seats_hold ON seats (hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX seats_order ON seats (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE holds (
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL REFERENCES events (id),
    fan_id      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('ACTIVE', 'CHECKED_OUT', 'RELEASED', 'EXPIRED')),
    seat_count  BIGINT NOT NULL CHECK (seat_count > 0),
    subtotal    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    order_id    TEXT
);
CREATE INDEX holds_fan ON holds (event_id, fan_id, state);
CREATE INDEX holds_expiry ON holds (expires_at) WHERE state = 'ACTIVE';

CREATE TABLE orders (
    id            TEXT PRIMARY KEY,
    event_id      TEXT NOT NULL REFERENCES events (id),
    fan_id        TEXT NOT NULL,
    hold_id       TEXT NOT NULL UNIQUE REFERENCES holds (id),
    state         TEXT NOT NULL
        CHECK (state IN ('PENDING_PAYMENT', 'PAID', 'EXPIRED', 'CANCELLED', 'REFUNDED')),
    subtotal      BIGINT NOT NULL,
    fees          BIGINT NOT NULL,
    total         BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    checkout_key  TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    paid_at       BIGINT
);
CREATE UNIQUE INDEX orders_checkout_key ON orders (fan_id, checkout_key);
CREATE INDEX orders_event_state ON orders (event_id, state, created_at);
CREATE INDEX orders_expiry ON orders (expires_at) WHERE state = 'PENDING_PAYMENT';

-- The seats of an order, kept after the seats themselves move on (expiry, refund).
CREATE TABLE order_items (
    order_id  TEXT NOT NULL REFERENCES orders (id),
    event_id  TEXT NOT NULL,
    seat_id   BIGINT NOT NULL,
    price     BIGINT NOT NULL,
    PRIMARY KEY (order_id, seat_id)
);
CREATE INDEX order_items_seat ON order_items (event_id, seat_id);

CREATE TABLE payments (
    id                        TEXT PRIMARY KEY,
    order_id                  TEXT NOT NULL REFERENCES orders (id),
    state                     TEXT NOT NULL
        CHECK (state IN ('PENDING', 'AUTHORIZED', 'CAPTURED', 'FAILED', 'VOIDED', 'REFUNDED')),
    amount                    BIGINT NOT NULL,
    currency                  TEXT NOT NULL,
    provider                  TEXT NOT NULL,
    provider_intent_id        TEXT,
    idempotency_key           TEXT NOT NULL,
    provider_idempotency_key  TEXT NOT NULL UNIQUE,
    failure_reason            TEXT,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);
CREATE UNIQUE INDEX payments_idempotency ON payments (order_id, idempotency_key);
-- Integrity backstop: an order is charged at most once.
CREATE UNIQUE INDEX payments_one_capture ON payments (order_id) WHERE state = 'CAPTURED';

CREATE TABLE tickets (
    id         TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL,
    seat_id    BIGINT NOT NULL,
    order_id   TEXT NOT NULL REFERENCES orders (id),
    fan_id     TEXT NOT NULL,
    code       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('VALID', 'REFUNDED')),
    issued_at  BIGINT NOT NULL
);
-- Integrity backstop: a seat has at most one valid ticket.
CREATE UNIQUE INDEX tickets_one_valid_per_seat ON tickets (event_id, seat_id) WHERE state = 'VALID';
CREATE INDEX tickets_order ON tickets (order_id);

CREATE TABLE bans (
    kind        TEXT NOT NULL CHECK (kind IN ('FINGERPRINT', 'IP')),
    value       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    event_id  TEXT,
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_event ON audit_log (event_id, at);
