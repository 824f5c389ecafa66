DELETE FROM webhook_inbox WHERE provider = 'app';
ALTER TABLE webhook_inbox DROP CONSTRAINT webhook_inbox_provider_check;
ALTER TABLE webhook_inbox ADD CONSTRAINT webhook_inbox_provider_check
    CHECK (provider IN ('stripe', 'paypal'));
DROP INDEX sessions_scheduled_idx;
DROP INDEX sessions_mentor_idx;
DROP INDEX sessions_one_per_mentor_slot;
ALTER TABLE sessions DROP CONSTRAINT sessions_counted_when_used;
ALTER TABLE sessions DROP CONSTRAINT sessions_cancelled_at;
ALTER TABLE sessions DROP CONSTRAINT sessions_ended_at;
-- A no-show had no completion time before; the old rule allows only completions to have one.
UPDATE sessions SET completed_at = NULL WHERE status = 'no_show';
ALTER TABLE sessions ADD CONSTRAINT sessions_check
    CHECK ((status = 'completed') = (completed_at IS NOT NULL));
ALTER TABLE sessions
    DROP COLUMN counted_at,
    DROP COLUMN cancelled_at,
    DROP COLUMN mentor_id;
ALTER TABLE mentors DROP COLUMN clerk_id;
