-- Chargebacks: money a provider took back without a refund (a Stripe dispute closed as lost,
-- a reversed PayPal capture). Each is recorded once, by its provider id; the payment keeps
-- their sum, recomputed from this table, so replaying an event changes nothing. A payment
-- and its order read `charged_back` once refunds and chargebacks took back all of it.
CREATE TABLE chargebacks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id uuid NOT NULL REFERENCES payments (id),
    -- Stripe dispute id or PayPal reversal id.
    provider_chargeback_id text NOT NULL,
    amount numeric(12, 2) NOT NULL CHECK (amount >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chargebacks_payment_provider_key UNIQUE (payment_id, provider_chargeback_id)
);

ALTER TABLE payments
    ADD COLUMN disputed_amount numeric(12, 2) NOT NULL DEFAULT 0,
    ADD CONSTRAINT payments_disputed_amount_check
        CHECK (disputed_amount >= 0 AND disputed_amount <= amount),
    ADD CONSTRAINT payments_disputed_amount_exact
        CHECK (disputed_amount = round(disputed_amount, currency_exponent(currency))),
    DROP CONSTRAINT payments_status_check,
    ADD CONSTRAINT payments_status_check
        CHECK (status IN ('completed', 'partially_refunded', 'refunded', 'charged_back'));

ALTER TABLE orders
    DROP CONSTRAINT orders_status_check,
    ADD CONSTRAINT orders_status_check CHECK (
        status IN ('pending', 'paid', 'expired', 'partially_refunded', 'refunded', 'charged_back')
    );

ALTER TABLE dashboard_access
    DROP CONSTRAINT dashboard_access_revoke_reason_check,
    ADD CONSTRAINT dashboard_access_revoke_reason_check
        CHECK (revoke_reason IN ('refunded', 'seat_released', 'pack_expired', 'charged_back'));
