-- The keys that sign ticket codes (Ed25519, tq2.<kid>.…). Only ids and states are stored: each
-- key's private half is derived from the service's signing secret and its id, so every node
-- signs with the same keys and no private key is kept here. One key is active (signs new
-- tickets); keys rotated out keep verifying the codes they signed until retired.
CREATE TABLE ticket_keys (
    kid        TEXT PRIMARY KEY,
    state      TEXT NOT NULL CHECK (state IN ('active', 'verifying', 'retired')),
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE UNIQUE INDEX ticket_keys_one_active ON ticket_keys (state) WHERE state = 'active';

-- Door check-in: when and at which gate a ticket was first scanned (NULL until it is). A ticket
-- is admitted once: the scan that sets these wins, every later one is told about it.
ALTER TABLE tickets ADD COLUMN checked_in_at BIGINT;
ALTER TABLE tickets ADD COLUMN checked_in_gate TEXT;
