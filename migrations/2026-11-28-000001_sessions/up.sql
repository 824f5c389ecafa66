-- Sessions over time. Mentors are users too, linked by their Clerk id (what the dashboard's
-- session token proves). A session belongs to a pack and its mentor; a mentor is never booked
-- twice at the same time; a completion or a no-show uses the session up and is counted against
-- the pack exactly once (`counted_at`).

ALTER TABLE mentors ADD COLUMN clerk_id text UNIQUE CHECK (clerk_id <> '');

ALTER TABLE sessions
    ADD COLUMN mentor_id uuid REFERENCES mentors (id),
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN counted_at timestamptz;
UPDATE sessions s SET mentor_id = p.mentor_id FROM session_packs p WHERE p.id = s.session_pack_id;
ALTER TABLE sessions ALTER COLUMN mentor_id SET NOT NULL;

ALTER TABLE sessions DROP CONSTRAINT sessions_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_ended_at
    CHECK ((status IN ('completed', 'no_show')) = (completed_at IS NOT NULL));
ALTER TABLE sessions ADD CONSTRAINT sessions_cancelled_at
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL));
ALTER TABLE sessions ADD CONSTRAINT sessions_counted_when_used
    CHECK (counted_at IS NULL OR status IN ('completed', 'no_show'));

CREATE UNIQUE INDEX sessions_one_per_mentor_slot
    ON sessions (mentor_id, scheduled_at) WHERE status = 'scheduled';
CREATE INDEX sessions_mentor_idx ON sessions (mentor_id, scheduled_at);
CREATE INDEX sessions_scheduled_idx ON sessions (session_pack_id) WHERE status = 'scheduled';

-- The inbox also carries the events this service announces itself (source 'app': a session
-- booked, completed...), written in the same transaction as the change they announce and
-- delivered by the same relay, so none is lost while Inngest is down.
ALTER TABLE webhook_inbox DROP CONSTRAINT webhook_inbox_provider_check;
ALTER TABLE webhook_inbox ADD CONSTRAINT webhook_inbox_provider_check
    CHECK (provider IN ('stripe', 'paypal', 'app'));
