DELETE FROM email_log WHERE status = 'sending';
ALTER TABLE email_log DROP CONSTRAINT email_log_sent_has_an_id;
ALTER TABLE email_log DROP CONSTRAINT email_log_status_check;
ALTER TABLE email_log ADD CONSTRAINT email_log_status_check
    CHECK (status IN ('sent', 'delivered', 'opened', 'bounced', 'complained'));
