-- The trigger of an outbox row given up: a link email that went dead
-- revokes the link it carried (no one received it), and the row lets go of
-- its bodies and its link, so nothing readable of it stays.
CREATE OR REPLACE FUNCTION outbox_dead_link_email_revokes_its_link() RETURNS trigger AS $$
BEGIN
    IF NEW.state = 'dead' AND OLD.state <> 'dead' AND NEW.kind <> 'password_changed' THEN
        UPDATE reset_links SET revoked_at = COALESCE(NEW.settled_at, NEW.created_at)
         WHERE user_id = NEW.user_id AND request_id = NEW.request_id
           AND used_at IS NULL AND revoked_at IS NULL;
        NEW.body_text := NULL;
        NEW.body_html := NULL;
        NEW.link := NULL;
        NEW.link_name := NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
