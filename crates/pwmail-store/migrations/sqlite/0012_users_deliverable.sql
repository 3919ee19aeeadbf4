-- Whether mail can be addressed to the user's stored address (see
-- migrations/postgres/0012): 1 until Store::check_addresses says otherwise.
ALTER TABLE users ADD COLUMN deliverable INTEGER NOT NULL DEFAULT 1 CHECK (deliverable IN (0, 1));
