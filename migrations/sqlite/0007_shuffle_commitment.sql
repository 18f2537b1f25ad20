-- The pre-queue shuffle's secret (taquilla_proto::fairness): a 32-byte seed and a 32-byte
-- nonce, 128 hex digits, drawn when the event is made. Only SHA-256(seed ‖ nonce), the
-- commitment, is shown until the sale opens; then both are revealed. Events made before this
-- migration that have not opened yet get theirs when a server next starts.
ALTER TABLE events ADD COLUMN shuffle_secret TEXT;
