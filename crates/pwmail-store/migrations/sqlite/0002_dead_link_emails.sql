-- A link email given up (dead) must not leave a live link behind, in the
-- database or anywhere: its link is revoked and its bodies cleared, in the
-- statement that marks it dead, whoever runs it. Notices without a link
-- ("password changed") keep their bodies so `pwmail outbox retry` can send
-- them again.
CREATE TRIGGER outbox_dead_link_email_revokes_its_link
AFTER UPDATE OF state ON outbox
WHEN NEW.state = 'dead' AND OLD.state <> 'dead' AND NEW.kind <> 'password_changed'
BEGIN
    UPDATE reset_links SET revoked_at = COALESCE(NEW.settled_at, NEW.created_at)
     WHERE user_id = NEW.user_id AND request_id = NEW.request_id
       AND used_at IS NULL AND revoked_at IS NULL;
    UPDATE outbox SET body_text = NULL, body_html = NULL WHERE id = NEW.id;
END;

-- Link emails that died before this rule.
UPDATE reset_links SET revoked_at = (
        SELECT COALESCE(o.settled_at, o.created_at) FROM outbox o
         WHERE o.user_id = reset_links.user_id AND o.request_id = reset_links.request_id
           AND o.state = 'dead' AND o.kind <> 'password_changed')
 WHERE used_at IS NULL AND revoked_at IS NULL
   AND EXISTS (SELECT 1 FROM outbox o
                WHERE o.user_id = reset_links.user_id AND o.request_id = reset_links.request_id
                  AND o.state = 'dead' AND o.kind <> 'password_changed');
UPDATE outbox SET body_text = NULL, body_html = NULL
 WHERE state = 'dead' AND kind <> 'password_changed';
