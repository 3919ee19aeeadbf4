-- A readiness probe's write while the database had no space: a row that
-- needs new pages, inserted and deleted in one transaction (sql.rs,
-- SPACE_PROBE_INSERT). Stored out of line and uncompressed, so its
-- 64 KiB of zeros take 64 KiB. Empty at rest.
CREATE TABLE space_probe (
    id  BIGSERIAL PRIMARY KEY,
    at  BIGINT NOT NULL,
    pad BYTEA NOT NULL
);
ALTER TABLE space_probe ALTER COLUMN pad SET STORAGE EXTERNAL;
