-- The sales path's functions are defined in one file from here on,
-- `migrations/postgres-functions.sql`, which the server applies after the migrations whenever
-- its SHA-256 differs from the one recorded here. Migrations 0005-0007 hold their first
-- versions and the history of why they changed.
CREATE TABLE taquilla_functions (
    id INT PRIMARY KEY CHECK (id = 1),
    sha256 TEXT NOT NULL,
    applied_at BIGINT NOT NULL
);

-- Superseded by overloads that nothing has called since the server moved to them (0006):
-- the checkout that took the fee and currency from its caller, and the sale that answered only
-- whether it sold.
DROP FUNCTION taquilla_checkout(TEXT, TEXT, TEXT, TEXT, BIGINT, TEXT, BIGINT, BIGINT, BIGINT);
DROP FUNCTION taquilla_complete_sale(TEXT, TEXT, BIGINT, TEXT[], BIGINT[], TEXT[], BIGINT);
