-- A link email given up (dead) must not leave a live link behind, in the
-- database or anywhere: its link is revoked and its bodies cleared, in the
-- statement that marks it dead, whoever runs it. Notices without a link
-- ("password changed") keep their bodies so `pwmail outbox retry` can send
-- them again.
CREATE FUNCTION outbox_dead_link_email_revokes_its_link() RETURNS trigger AS $$
BEGIN
    IF NEW.state = 'dead' AND OLD.state <> 'dead' AND NEW.kind <> 'password_changed' THEN
        UPDATE reset_links SET revoked_at = COALESCE(NEW.settled_at, NEW.created_at)
         WHERE user_id = NEW.user_id AND request_id = NEW.request_id
           AND used_at IS NULL AND revoked_at IS NULL;
        NEW.body_text := NULL;
        NEW.body_html := NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER outbox_dead_link_email_revokes_its_link
BEFORE UPDATE OF state ON outbox
FOR EACH ROW EXECUTE FUNCTION outbox_dead_link_email_revokes_its_link();

-- Link emails that died before this rule.
UPDATE reset_links r SET revoked_at = COALESCE(o.settled_at, o.created_at)
  FROM outbox o
 WHERE o.user_id = r.user_id AND o.request_id = r.request_id
   AND o.state = 'dead' AND o.kind <> 'password_changed'
   AND r.used_at IS NULL AND r.revoked_at IS NULL;
UPDATE outbox SET body_text = NULL, body_html = NULL
 WHERE state = 'dead' AND kind <> 'password_changed';
