-- The PL/pgSQL functions as repeatable migrations: each function's current
-- text lives in one file (crates/pwmail-store/functions/postgres/), which
-- the store applies (CREATE OR REPLACE) whenever its checksum differs from
-- the one recorded here (src/postgres/functions.rs). A change to a function
-- is an edit of its file, never a copied migration.
CREATE TABLE pwmail_functions (
    name        TEXT PRIMARY KEY,
    -- SHA-256 (hex) of the file applied.
    checksum    TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
