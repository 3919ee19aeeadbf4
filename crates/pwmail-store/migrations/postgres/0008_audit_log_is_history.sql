-- The audit log is history: a row says who did what to which ids, and it
-- must outlive what it names (an outbox row purged once sent, a token
-- revoked and removed). Its foreign keys also cost each API call four
-- checks, each an executor run of its own that locked the row it names,
-- two of them the caller's user and token rows, which every call shares.
-- With the two changes below, an issue's PostgreSQL instructions went from
-- 694,380 to 543,717 (bench/pg-issue-instructions.sh). Links and emails
-- keep their keys.
ALTER TABLE audit_log
    DROP CONSTRAINT audit_log_actor_user_id_fkey,
    DROP CONSTRAINT audit_log_actor_token_id_fkey,
    DROP CONSTRAINT audit_log_target_user_id_fkey,
    DROP CONSTRAINT audit_log_outbox_id_fkey;

-- No query reads the outbox by state through this index: the waiting,
-- leased and dead states have partial indexes of their own (0001, 0005),
-- and SQLite's outbox has gone without it since its 0005. Every queue,
-- claim and settle of a message wrote an entry to it.
DROP INDEX outbox_state;

-- The dead-link rule only where it applies: called for every claim and
-- settle before, to find out it had nothing to do.
DROP TRIGGER outbox_dead_link_email_revokes_its_link ON outbox;
CREATE TRIGGER outbox_dead_link_email_revokes_its_link
BEFORE UPDATE OF state ON outbox
FOR EACH ROW
WHEN (NEW.state = 'dead' AND OLD.state <> 'dead' AND NEW.kind <> 'password_changed')
EXECUTE FUNCTION outbox_dead_link_email_revokes_its_link();
