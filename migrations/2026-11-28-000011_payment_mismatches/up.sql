-- Payments a provider confirmed that do not match their order (amount, currency or the
-- provider's checkout): never fulfilled, kept here for an operator to settle (refund or
-- honour by hand). What the provider claimed is stored as given, so it is unconstrained.
CREATE TABLE payment_mismatches (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id uuid NOT NULL REFERENCES orders (id),
    provider text NOT NULL CHECK (provider IN ('stripe', 'paypal')),
    provider_payment_id text NOT NULL,
    -- The checkout the payment belongs to, as the provider says (Stripe session or PayPal order).
    provider_checkout_id text NOT NULL,
    reason text NOT NULL CHECK (reason <> ''),
    expected_amount numeric NOT NULL,
    expected_currency text NOT NULL,
    paid_amount numeric NOT NULL,
    paid_original_amount numeric NOT NULL,
    paid_discount_amount numeric NOT NULL,
    paid_currency text NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now(),
    -- A repeated delivery of the same payment is one mismatch.
    CONSTRAINT payment_mismatches_provider_payment_key UNIQUE (provider, provider_payment_id)
);
CREATE INDEX payment_mismatches_order_idx ON payment_mismatches (order_id);
