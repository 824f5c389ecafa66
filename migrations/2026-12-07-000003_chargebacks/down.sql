-- A charged-back payment and order read as refunded again (what the refund path left).
UPDATE orders SET status = 'refunded' WHERE status = 'charged_back';
UPDATE payments SET status = 'refunded' WHERE status = 'charged_back';

ALTER TABLE orders
    DROP CONSTRAINT orders_status_check,
    ADD CONSTRAINT orders_status_check
        CHECK (status IN ('pending', 'paid', 'expired', 'partially_refunded', 'refunded'));

ALTER TABLE payments
    DROP CONSTRAINT payments_status_check,
    ADD CONSTRAINT payments_status_check
        CHECK (status IN ('completed', 'partially_refunded', 'refunded')),
    DROP CONSTRAINT payments_disputed_amount_exact,
    DROP CONSTRAINT payments_dispute_recorded,
    DROP CONSTRAINT payments_disputed_amount_check,
    DROP COLUMN disputed_amount,
    DROP COLUMN dispute_id;
