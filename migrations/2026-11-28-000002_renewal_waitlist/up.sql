-- Renewal keeps the seat, and the waitlist.
--
-- A renewal's hold names the seat it renews (`renews_seat_id`, a live seat of the same buyer
-- and mentor). While that seat is live the hold takes no place of its own: the seat it renews
-- already counts, so a buyer can renew with a full mentor. When the renewal is paid the seat
-- moves to the new pack and the hold is settled (released, reason 'renewed'). If the renewed
-- seat is released first, the hold counts from that moment, like any purchase's hold: the
-- count does not change, so nobody can take the seat in between.
--
-- The waitlist: buyers in line for a full mentor (one live entry per buyer and mentor), and
-- offers of released seats to them, one at a time: an open offer is a seat reserved for one
-- buyer until it is taken (their checkout) or lapses. A seat never has two open offers, and
-- its first offer is made once, however often its release is announced. While buyers are in
-- line, a free seat is theirs: a checkout needs a seat free beyond those still waiting ahead.

ALTER TABLE seat_reservations
    ADD COLUMN renews_seat_id uuid REFERENCES seat_reservations (id),
    ADD CONSTRAINT seat_reservations_renews_another CHECK (renews_seat_id <> id);
ALTER TABLE seat_reservations DROP CONSTRAINT seat_reservations_release_reason_check;
ALTER TABLE seat_reservations ADD CONSTRAINT seat_reservations_release_reason_check
    CHECK (release_reason IN ('checkout_expired', 'refunded', 'grace_ended', 'pack_expired', 'renewed'));

CREATE TABLE waitlist_entries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mentor_id uuid NOT NULL REFERENCES mentors (id),
    user_id uuid NOT NULL REFERENCES users (id),
    status text NOT NULL DEFAULT 'waiting'
        CHECK (status IN ('waiting', 'offered', 'purchased', 'lapsed')),
    joined_at timestamptz NOT NULL DEFAULT now(),
    left_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status IN ('waiting', 'offered')) = (left_at IS NULL))
);
CREATE UNIQUE INDEX waitlist_entries_one_per_buyer
    ON waitlist_entries (mentor_id, user_id) WHERE status IN ('waiting', 'offered');
CREATE INDEX waitlist_entries_line
    ON waitlist_entries (mentor_id, joined_at, id) WHERE status = 'waiting';
CREATE INDEX waitlist_entries_user_idx ON waitlist_entries (user_id);

CREATE TABLE seat_offers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The released seat on offer.
    seat_id uuid NOT NULL REFERENCES seat_reservations (id),
    mentor_id uuid NOT NULL REFERENCES mentors (id),
    entry_id uuid NOT NULL UNIQUE REFERENCES waitlist_entries (id),
    user_id uuid NOT NULL REFERENCES users (id),
    -- The lapsed offer of the same seat this one follows (NULL for the seat's first offer).
    previous_offer_id uuid UNIQUE REFERENCES seat_offers (id),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'taken', 'lapsed')),
    expires_at timestamptz NOT NULL,
    -- The checkout that took it.
    order_id uuid UNIQUE REFERENCES orders (id),
    closed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'open') = (closed_at IS NULL)),
    CHECK ((status = 'taken') = (order_id IS NOT NULL))
);
CREATE UNIQUE INDEX seat_offers_one_open_per_seat ON seat_offers (seat_id) WHERE status = 'open';
CREATE UNIQUE INDEX seat_offers_first_per_seat
    ON seat_offers (seat_id) WHERE previous_offer_id IS NULL;
CREATE INDEX seat_offers_open_idx ON seat_offers (mentor_id, user_id) WHERE status = 'open';

-- Whether a seat in this state is a renewal's hold whose renewed seat is still live.
CREATE FUNCTION seat_renews_live_seat(seat_status text, renewed_seat uuid) RETURNS boolean
LANGUAGE sql AS $$
    SELECT seat_status = 'held' AND renewed_seat IS NOT NULL AND EXISTS (
        SELECT 1 FROM seat_reservations r
        WHERE r.id = renewed_seat AND r.status IN ('active', 'grace'));
$$;

-- A mentor's taken seats: held, active and grace seats (but a renewal's hold only once its
-- renewed seat is gone) and open offers; `except_seat` and `except_offer` are left out (the row
-- being written).
CREATE FUNCTION mentor_seats_taken(mentor uuid, except_seat uuid, except_offer uuid)
RETURNS bigint
LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM seat_reservations s
            WHERE s.mentor_id = mentor
              AND s.id IS DISTINCT FROM except_seat
              AND s.status IN ('held', 'active', 'grace')
              AND NOT seat_renews_live_seat(s.status, s.renews_seat_id))
         + (SELECT count(*) FROM seat_offers o
            WHERE o.mentor_id = mentor
              AND o.id IS DISTINCT FROM except_offer
              AND o.status = 'open');
$$;

-- Buyers waiting for a mentor ahead of `buyer`: all who wait when the buyer is not in line,
-- else those who joined before them.
CREATE FUNCTION mentor_waiting_ahead(mentor uuid, buyer uuid) RETURNS bigint
LANGUAGE sql AS $$
    SELECT count(*) FROM waitlist_entries w
    WHERE w.mentor_id = mentor
      AND w.status = 'waiting'
      AND w.user_id <> buyer
      AND NOT EXISTS (
          SELECT 1 FROM waitlist_entries mine
          WHERE mine.mentor_id = mentor
            AND mine.user_id = buyer
            AND mine.status IN ('waiting', 'offered')
            AND (mine.joined_at, mine.id) < (w.joined_at, w.id));
$$;

-- A seat (or an offer) takes a place only if one is free beyond the seats taken and the buyers
-- waiting ahead. The mentor row is locked first, so writers for one mentor are serialized and
-- each sees what the others committed. A live seat changing state keeps its place (a renewal's
-- hold has none while its renewed seat is live, so it cannot become active then).
CREATE OR REPLACE FUNCTION enforce_mentor_seat_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    capacity integer;
    taken bigint;
    ahead bigint;
BEGIN
    IF NEW.renews_seat_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.renews_seat_id IS DISTINCT FROM OLD.renews_seat_id)
       AND NOT EXISTS (
           SELECT 1 FROM seat_reservations r
           WHERE r.id = NEW.renews_seat_id
             AND r.user_id = NEW.user_id
             AND r.mentor_id = NEW.mentor_id) THEN
        RAISE EXCEPTION 'seat % renews a seat of another buyer or mentor', NEW.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'seat_renews_own_seat';
    END IF;
    IF NEW.status = 'released' OR seat_renews_live_seat(NEW.status, NEW.renews_seat_id) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status <> 'released' AND OLD.mentor_id = NEW.mentor_id
       AND NOT seat_renews_live_seat(OLD.status, OLD.renews_seat_id) THEN
        RETURN NEW;
    END IF;
    SELECT seat_capacity INTO capacity FROM mentors WHERE id = NEW.mentor_id FOR UPDATE;
    taken := mentor_seats_taken(NEW.mentor_id, NEW.id, NULL);
    ahead := mentor_waiting_ahead(NEW.mentor_id, NEW.user_id);
    IF taken + ahead + 1 > capacity THEN
        RAISE EXCEPTION 'mentor % has no free seat (capacity %)', NEW.mentor_id, capacity
            USING ERRCODE = 'check_violation', CONSTRAINT = 'mentor_seat_capacity';
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER seat_reservations_capacity ON seat_reservations;
CREATE TRIGGER seat_reservations_capacity
    BEFORE INSERT OR UPDATE OF status, hold_expires_at, mentor_id, renews_seat_id
    ON seat_reservations
    FOR EACH ROW EXECUTE FUNCTION enforce_mentor_seat_capacity();

CREATE FUNCTION enforce_mentor_offer_capacity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    capacity integer;
    taken bigint;
    ahead bigint;
BEGIN
    IF NEW.status <> 'open' OR (TG_OP = 'UPDATE' AND OLD.status = 'open') THEN
        RETURN NEW;
    END IF;
    SELECT seat_capacity INTO capacity FROM mentors WHERE id = NEW.mentor_id FOR UPDATE;
    taken := mentor_seats_taken(NEW.mentor_id, NULL, NEW.id);
    ahead := mentor_waiting_ahead(NEW.mentor_id, NEW.user_id);
    IF taken + ahead + 1 > capacity THEN
        RAISE EXCEPTION 'mentor % has no free seat to offer (capacity %)', NEW.mentor_id, capacity
            USING ERRCODE = 'check_violation', CONSTRAINT = 'mentor_seat_capacity';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER seat_offers_capacity
    BEFORE INSERT OR UPDATE OF status, mentor_id ON seat_offers
    FOR EACH ROW EXECUTE FUNCTION enforce_mentor_offer_capacity();
