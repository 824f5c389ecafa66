-- Chargebacks: a dispute the seller lost takes money back without a refund. The payment
-- records the dispute and its amount (a charge has at most one dispute, so replaying the
-- event sets the same values), and payment and order read `charged_back`.
ALTER TABLE payments
    ADD COLUMN dispute_id text,
    ADD COLUMN disputed_amount numeric(12, 2) NOT NULL DEFAULT 0,
    ADD CONSTRAINT payments_disputed_amount_check
        CHECK (disputed_amount >= 0 AND disputed_amount <= amount),
    ADD CONSTRAINT payments_dispute_recorded CHECK ((dispute_id IS NULL) = (disputed_amount = 0)),
    ADD CONSTRAINT payments_disputed_amount_exact
        CHECK (disputed_amount = round(disputed_amount, currency_exponent(currency))),
    DROP CONSTRAINT payments_status_check,
    ADD CONSTRAINT payments_status_check
        CHECK (status IN ('completed', 'partially_refunded', 'refunded', 'charged_back'));

ALTER TABLE orders
    DROP CONSTRAINT orders_status_check,
    ADD CONSTRAINT orders_status_check
        CHECK (status IN ('pending', 'paid', 'expired', 'partially_refunded', 'refunded', 'charged_back'));
