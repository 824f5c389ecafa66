-- Payments: mentors and their products, buyers, orders, payments, session packs, seats,
-- sessions, and the inbox of provider webhooks. Every status is a closed set checked here;
-- money is numeric; times are timestamptz.

CREATE TABLE mentors (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name text NOT NULL CHECK (display_name <> ''),
    email text NOT NULL,
    seat_capacity integer NOT NULL CHECK (seat_capacity >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mentorship_products (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mentor_id uuid NOT NULL REFERENCES mentors (id),
    name text NOT NULL CHECK (name <> ''),
    kind text NOT NULL CHECK (kind IN ('one_on_one', 'group')),
    price numeric(12, 2) NOT NULL CHECK (price >= 0),
    currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    sessions_per_pack integer NOT NULL CHECK (sessions_per_pack > 0),
    validity_days integer NOT NULL CHECK (validity_days > 0),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mentorship_products_mentor_idx ON mentorship_products (mentor_id);

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    clerk_id text NOT NULL UNIQUE,
    email text,
    first_name text,
    last_name text,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id),
    product_id uuid NOT NULL REFERENCES mentorship_products (id),
    provider text NOT NULL CHECK (provider IN ('stripe', 'paypal')),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'paid', 'expired', 'partially_refunded', 'refunded')),
    currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    -- The price when ordered; replaced by what was charged once paid.
    total_amount numeric(12, 2) NOT NULL CHECK (total_amount >= 0),
    original_amount numeric(12, 2) CHECK (original_amount >= 0),
    discount_amount numeric(12, 2) CHECK (discount_amount >= 0),
    discount_code text,
    refunded_amount numeric(12, 2) NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    -- Stripe Checkout Session id or PayPal order id.
    provider_checkout_id text UNIQUE,
    checkout_expires_at timestamptz NOT NULL,
    paid_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'pending' OR status = 'expired') = (paid_at IS NULL))
);
CREATE INDEX orders_user_idx ON orders (user_id);

CREATE TABLE payments (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id uuid NOT NULL UNIQUE REFERENCES orders (id),
    provider text NOT NULL CHECK (provider IN ('stripe', 'paypal')),
    -- Stripe PaymentIntent id or PayPal capture id.
    provider_payment_id text NOT NULL,
    amount numeric(12, 2) NOT NULL CHECK (amount >= 0),
    currency text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status text NOT NULL DEFAULT 'completed'
        CHECK (status IN ('completed', 'partially_refunded', 'refunded')),
    refunded_amount numeric(12, 2) NOT NULL DEFAULT 0
        CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_provider_payment_key UNIQUE (provider, provider_payment_id)
);

CREATE TABLE session_packs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id),
    mentor_id uuid NOT NULL REFERENCES mentors (id),
    product_id uuid NOT NULL REFERENCES mentorship_products (id),
    payment_id uuid NOT NULL UNIQUE REFERENCES payments (id),
    total_sessions integer NOT NULL CHECK (total_sessions > 0),
    remaining_sessions integer NOT NULL
        CHECK (remaining_sessions >= 0 AND remaining_sessions <= total_sessions),
    status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'depleted', 'expired', 'refunded')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_packs_user_idx ON session_packs (user_id);
CREATE INDEX session_packs_expiry_idx ON session_packs (expires_at) WHERE status = 'active';

-- A seat is held when checkout starts, becomes active when paid (bound to the pack), may enter
-- a grace period, and is released. One seat per order and per pack.
CREATE TABLE seat_reservations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mentor_id uuid NOT NULL REFERENCES mentors (id),
    user_id uuid NOT NULL REFERENCES users (id),
    order_id uuid NOT NULL UNIQUE REFERENCES orders (id),
    session_pack_id uuid UNIQUE REFERENCES session_packs (id),
    status text NOT NULL CHECK (status IN ('held', 'active', 'grace', 'released')),
    hold_expires_at timestamptz,
    seat_expires_at timestamptz,
    grace_period_ends_at timestamptz,
    released_at timestamptz,
    release_reason text
        CHECK (release_reason IN ('checkout_expired', 'refunded', 'grace_ended', 'pack_expired')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'held' OR hold_expires_at IS NOT NULL),
    CHECK (status NOT IN ('active', 'grace') OR session_pack_id IS NOT NULL),
    CHECK ((status = 'released') = (released_at IS NOT NULL))
);
CREATE INDEX seat_reservations_mentor_idx ON seat_reservations (mentor_id)
    WHERE status <> 'released';

-- A mentor's held (unexpired), active and grace seats never exceed the capacity. The mentor
-- row is locked first, so concurrent purchases for one mentor are serialized here and each sees
-- the seats the others committed.
CREATE FUNCTION enforce_mentor_seat_capacity() RETURNS trigger
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

CREATE TRIGGER seat_reservations_capacity
    BEFORE INSERT OR UPDATE OF status, hold_expires_at, mentor_id ON seat_reservations
    FOR EACH ROW EXECUTE FUNCTION enforce_mentor_seat_capacity();

CREATE TABLE sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_pack_id uuid NOT NULL REFERENCES session_packs (id),
    scheduled_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'scheduled'
        CHECK (status IN ('scheduled', 'completed', 'cancelled', 'no_show')),
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);
CREATE INDEX sessions_pack_idx ON sessions (session_pack_id);

-- Provider webhooks, stored before they are answered, so none is lost if Inngest is down.
CREATE TABLE webhook_inbox (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider text NOT NULL CHECK (provider IN ('stripe', 'paypal')),
    provider_event_id text NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    -- The Inngest event to deliver; NULL for event types we do not handle.
    inngest_event jsonb,
    received_at timestamptz NOT NULL DEFAULT now(),
    forwarded_at timestamptz,
    forward_attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    CONSTRAINT webhook_inbox_provider_event_key UNIQUE (provider, provider_event_id)
);
CREATE INDEX webhook_inbox_pending_idx ON webhook_inbox (next_attempt_at)
    WHERE forwarded_at IS NULL AND inngest_event IS NOT NULL;
