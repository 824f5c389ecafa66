-- Without chargebacks, money taken back is all "refunded": a chargeback's amount joins the
-- refunded amount (of the payment and of its order), and the statuses follow from that sum.
UPDATE payments
SET refunded_amount = LEAST(amount, refunded_amount + disputed_amount),
    status = CASE
        WHEN refunded_amount + disputed_amount >= amount THEN 'refunded'
        ELSE 'partially_refunded'
    END
WHERE disputed_amount > 0;

UPDATE orders o
SET refunded_amount = p.refunded_amount,
    status = p.status
FROM payments p
WHERE p.order_id = o.id AND p.disputed_amount > 0;

UPDATE dashboard_access SET revoke_reason = 'refunded' WHERE revoke_reason = 'charged_back';

ALTER TABLE dashboard_access
    DROP CONSTRAINT dashboard_access_revoke_reason_check,
    ADD CONSTRAINT dashboard_access_revoke_reason_check
        CHECK (revoke_reason IN ('refunded', 'seat_released', 'pack_expired'));

ALTER TABLE orders
    DROP CONSTRAINT orders_status_check,
    ADD CONSTRAINT orders_status_check
        CHECK (status IN ('pending', 'paid', 'expired', 'partially_refunded', 'refunded'));

ALTER TABLE payments
    DROP CONSTRAINT payments_status_check,
    ADD CONSTRAINT payments_status_check
        CHECK (status IN ('completed', 'partially_refunded', 'refunded')),
    DROP CONSTRAINT payments_disputed_amount_exact,
    DROP CONSTRAINT payments_disputed_amount_check,
    DROP COLUMN disputed_amount;

DROP TABLE chargebacks;
