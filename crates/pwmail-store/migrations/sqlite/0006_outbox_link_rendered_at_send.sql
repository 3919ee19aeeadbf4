-- A link email is rendered when it is sent, not when it is queued: its row
-- holds the link and what the templates need (the user's name, the link's
-- expiry), and its subject and bodies stay empty (subject '', bodies NULL).
-- The ~3 KiB of rendered text and HTML were written with the row, again
-- when it was claimed, and again when it settled; they were most of the
-- database's writes per API call. Notices (no link) are still stored
-- rendered. Rows queued before this keep their bodies and are sent as they
-- are.
ALTER TABLE outbox ADD COLUMN link TEXT;
ALTER TABLE outbox ADD COLUMN link_name TEXT;
ALTER TABLE outbox ADD COLUMN link_expires_at INTEGER;

-- As in 0002, and the link goes with the bodies.
DROP TRIGGER outbox_dead_link_email_revokes_its_link;
CREATE TRIGGER outbox_dead_link_email_revokes_its_link
AFTER UPDATE OF state ON outbox
WHEN NEW.state = 'dead' AND OLD.state <> 'dead' AND NEW.kind <> 'password_changed'
BEGIN
    UPDATE reset_links SET revoked_at = COALESCE(NEW.settled_at, NEW.created_at)
     WHERE user_id = NEW.user_id AND request_id = NEW.request_id
       AND used_at IS NULL AND revoked_at IS NULL;
    UPDATE outbox SET body_text = NULL, body_html = NULL, link = NULL, link_name = NULL
     WHERE id = NEW.id;
END;
