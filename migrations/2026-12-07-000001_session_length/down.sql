CREATE UNIQUE INDEX sessions_one_per_mentor_slot
    ON sessions (mentor_id, scheduled_at) WHERE status = 'scheduled';
ALTER TABLE sessions DROP CONSTRAINT sessions_mentor_hour_free;
DROP FUNCTION session_span(timestamptz);
DROP EXTENSION IF EXISTS btree_gist;
