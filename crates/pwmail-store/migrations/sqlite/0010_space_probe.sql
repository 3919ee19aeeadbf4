-- A readiness probe's write while the database had no space: a row that
-- needs new pages, inserted and deleted in one transaction (sql.rs,
-- SPACE_PROBE_INSERT). Empty at rest.
CREATE TABLE space_probe (
    id  INTEGER PRIMARY KEY,
    at  INTEGER NOT NULL,
    pad BLOB NOT NULL
);
