DROP INDEX seat_reservations_one_hold_per_buyer;

CREATE OR REPLACE FUNCTION enforce_mentor_seat_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    capacity integer;
    occupied integer;
BEGIN
    IF NEW.status = 'released' OR (NEW.status = 'held' AND NEW.hold_expires_at <= now()) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status IN ('active', 'grace') AND NEW.status IN ('active', 'grace') THEN
        RETURN NEW;
    END IF;
    SELECT seat_capacity INTO capacity FROM mentors WHERE id = NEW.mentor_id FOR UPDATE;
    SELECT count(*) INTO occupied
    FROM seat_reservations
    WHERE mentor_id = NEW.mentor_id
      AND id <> NEW.id
      AND (status IN ('active', 'grace') OR (status = 'held' AND hold_expires_at > now()));
    IF occupied + 1 > capacity THEN
        RAISE EXCEPTION 'mentor % has no free seat (capacity %)', NEW.mentor_id, capacity
            USING ERRCODE = 'check_violation', CONSTRAINT = 'mentor_seat_capacity';
    END IF;
    RETURN NEW;
END;
$$;
