-- A session lasts an hour (`models::session::SESSION_LENGTH`): a mentor's scheduled sessions
-- may not overlap, where before only the same start time was refused, so a booking a minute
-- later double-booked the mentor. An exclusion constraint, so two bookings made at once cannot
-- both pass a check; cancelled and ended sessions free their hour.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Adding a fixed number of hours to a timestamptz does not depend on the time zone (only days
-- and months do), so the span is immutable as an index expression must be.
CREATE FUNCTION session_span(starts timestamptz) RETURNS tstzrange
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT tstzrange(starts, starts + interval '1 hour') $$;

-- Sessions booked before this migration may already overlap: say which, rather than fail on
-- the constraint with no hint. Moving or cancelling one of each pair is a decision for people.
DO $$
DECLARE
    clashing text;
BEGIN
    SELECT string_agg(format('%s and %s (mentor %s)', a.id, b.id, a.mentor_id), '; ')
    INTO clashing
    FROM sessions a
    JOIN sessions b ON a.mentor_id = b.mentor_id AND a.id < b.id
    WHERE a.status = 'scheduled' AND b.status = 'scheduled'
      AND session_span(a.scheduled_at) && session_span(b.scheduled_at);
    IF clashing IS NOT NULL THEN
        RAISE EXCEPTION 'scheduled sessions overlap: %', clashing
            USING HINT = 'reschedule or cancel one session of each pair, then migrate again';
    END IF;
END
$$;

ALTER TABLE sessions ADD CONSTRAINT sessions_mentor_hour_free
    EXCLUDE USING gist (mentor_id WITH =, session_span(scheduled_at) WITH &&)
    WHERE (status = 'scheduled');
DROP INDEX sessions_one_per_mentor_slot;
