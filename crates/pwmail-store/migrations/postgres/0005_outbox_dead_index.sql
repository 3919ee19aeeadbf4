-- The dead messages, counted every 250 ms (the outbox depth) without
-- reading the table.
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';
