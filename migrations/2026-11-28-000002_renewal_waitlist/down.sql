DROP TRIGGER seat_offers_capacity ON seat_offers;
DROP FUNCTION enforce_mentor_offer_capacity();

-- The capacity rule of 2026-11-22-000003_seat_holds, on its columns.
DROP TRIGGER seat_reservations_capacity ON seat_reservations;
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
CREATE TRIGGER seat_reservations_capacity
    BEFORE INSERT OR UPDATE OF status, hold_expires_at, mentor_id ON seat_reservations
    FOR EACH ROW EXECUTE FUNCTION enforce_mentor_seat_capacity();

DROP FUNCTION mentor_waiting_ahead(uuid, uuid);
DROP FUNCTION mentor_seats_taken(uuid, uuid, uuid);
DROP FUNCTION seat_renews_live_seat(text, uuid);

DROP TABLE seat_offers;
DROP TABLE waitlist_entries;

-- A settled renewal hold freed no seat; the older reasons have no name for it, and it ended
-- as an unpaid hold does.
UPDATE seat_reservations SET release_reason = 'checkout_expired' WHERE release_reason = 'renewed';
ALTER TABLE seat_reservations DROP CONSTRAINT seat_reservations_release_reason_check;
ALTER TABLE seat_reservations ADD CONSTRAINT seat_reservations_release_reason_check
    CHECK (release_reason IN ('checkout_expired', 'refunded', 'grace_ended', 'pack_expired'));
ALTER TABLE seat_reservations DROP COLUMN renews_seat_id;
