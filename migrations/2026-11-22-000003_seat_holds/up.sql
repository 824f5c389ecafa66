-- A held seat counts against capacity until it is released (by the expiry webhook or the
-- abandoned-checkout sweep), not merely until its hold time passes: a buyer who paid at the
-- last minute, whose confirmation is delayed, still finds their seat. And one live hold per
-- buyer and mentor, so one account cannot hold every seat.

CREATE OR REPLACE FUNCTION enforce_mentor_seat_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    capacity integer;
    occupied integer;
BEGIN
    IF NEW.status = 'released' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status <> 'released' AND OLD.mentor_id = NEW.mentor_id THEN
        RETURN NEW;
    END IF;
    SELECT seat_capacity INTO capacity FROM mentors WHERE id = NEW.mentor_id FOR UPDATE;
    SELECT count(*) INTO occupied
    FROM seat_reservations
    WHERE mentor_id = NEW.mentor_id
      AND id <> NEW.id
      AND status IN ('held', 'active', 'grace');
    IF occupied + 1 > capacity THEN
        RAISE EXCEPTION 'mentor % has no free seat (capacity %)', NEW.mentor_id, capacity
            USING ERRCODE = 'check_violation', CONSTRAINT = 'mentor_seat_capacity';
    END IF;
    RETURN NEW;
END;
$$;

CREATE UNIQUE INDEX seat_reservations_one_hold_per_buyer
    ON seat_reservations (user_id, mentor_id)
    WHERE status = 'held';
