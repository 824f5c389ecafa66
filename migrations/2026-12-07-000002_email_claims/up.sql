-- An email is claimed ('sending') before it is sent, under its idempotency key, so two runs
-- sending the same email at once (a retry racing a duplicate) send it once: the second finds
-- the claim and tries again later. A claim older than its lease (the sender died) is taken over.
ALTER TABLE email_log DROP CONSTRAINT email_log_status_check;
ALTER TABLE email_log ADD CONSTRAINT email_log_status_check
    CHECK (status IN ('sending', 'sent', 'delivered', 'opened', 'bounced', 'complained'));
ALTER TABLE email_log ADD CONSTRAINT email_log_sent_has_an_id
    CHECK (status = 'sending' OR provider_message_id IS NOT NULL);
