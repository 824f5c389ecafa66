-- Identity and onboarding: Discord connections, OAuth states, dashboard access, the email log
-- and suppressed addresses.

-- One Discord account per user, and one user per Discord account.
CREATE TABLE discord_connections (
    user_id uuid PRIMARY KEY REFERENCES users (id),
    discord_user_id text NOT NULL UNIQUE,
    discord_username text NOT NULL,
    connected_at timestamptz NOT NULL DEFAULT now()
);

-- OAuth `state` values, stored as hashes, each usable once before it expires.
CREATE TABLE oauth_states (
    state_hash text PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- What a user may reach on the dashboard: a mentor, through a pack, until a date.
CREATE TABLE dashboard_access (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id),
    mentor_id uuid NOT NULL REFERENCES mentors (id),
    session_pack_id uuid NOT NULL UNIQUE REFERENCES session_packs (id),
    status text NOT NULL DEFAULT 'granted' CHECK (status IN ('granted', 'revoked')),
    granted_until timestamptz NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoke_reason text CHECK (revoke_reason IN ('refunded', 'seat_released', 'pack_expired')),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);
CREATE INDEX dashboard_access_user_idx ON dashboard_access (user_id) WHERE status = 'granted';

-- Every email we sent, with the provider's id and what became of it.
CREATE TABLE email_log (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid REFERENCES users (id),
    to_address text NOT NULL,
    kind text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    provider_message_id text UNIQUE,
    status text NOT NULL DEFAULT 'sent'
        CHECK (status IN ('sent', 'delivered', 'opened', 'bounced', 'complained')),
    sent_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_log_user_idx ON email_log (user_id);

-- Addresses that bounced or complained: nothing more is sent to them.
CREATE TABLE email_suppressions (
    address text PRIMARY KEY CHECK (address = lower(address)),
    reason text NOT NULL CHECK (reason IN ('bounced', 'complained')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- How each onboarding ended, once per order.
CREATE TABLE onboarding_outcomes (
    order_id uuid PRIMARY KEY REFERENCES orders (id),
    user_id uuid NOT NULL REFERENCES users (id),
    outcome text NOT NULL CHECK (outcome IN ('connected', 'connected_after_reminder', 'never_connected')),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
