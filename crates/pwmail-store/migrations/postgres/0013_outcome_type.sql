-- What the issue functions answer, as a type of its own instead of text, so
-- that the store decodes it in one place (src/postgres/issue.rs, Outcome)
-- and a misspelt outcome fails in PostgreSQL, not as an unknown string. The
-- functions that return it are re-created from their files
-- (functions/postgres/) after this.
CREATE TYPE pwmail_outcome AS ENUM (
    'issued', 'cooling_down', 'disabled', 'no_user', 'throttled', 'undeliverable',
    'key_in_flight', 'stored'
);
