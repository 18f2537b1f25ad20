-- Presale codes accepted for an event (comma-separated; a code starting with "VIP" grants the
-- VIP tier).
ALTER TABLE events ADD COLUMN presale_codes TEXT NOT NULL DEFAULT '';
