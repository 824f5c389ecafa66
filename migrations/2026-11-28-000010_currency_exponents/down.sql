-- Back to two decimals. An amount using the third decimal cannot be kept there: the rollback
-- refuses rather than rounding money.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM mentorship_products WHERE price <> round(price, 2))
        OR EXISTS (SELECT 1 FROM orders WHERE total_amount <> round(total_amount, 2)
            OR original_amount <> round(original_amount, 2)
            OR discount_amount <> round(discount_amount, 2)
            OR refunded_amount <> round(refunded_amount, 2))
        OR EXISTS (SELECT 1 FROM payments WHERE amount <> round(amount, 2)
            OR refunded_amount <> round(refunded_amount, 2))
    THEN
        RAISE EXCEPTION 'three-decimal amounts are stored; two decimals cannot hold them';
    END IF;
END;
$$;

ALTER TABLE payments
    DROP CONSTRAINT payments_amounts_exact,
    ALTER COLUMN amount TYPE numeric(12, 2),
    ALTER COLUMN refunded_amount TYPE numeric(12, 2);

ALTER TABLE orders
    DROP CONSTRAINT orders_amounts_exact,
    ALTER COLUMN total_amount TYPE numeric(12, 2),
    ALTER COLUMN original_amount TYPE numeric(12, 2),
    ALTER COLUMN discount_amount TYPE numeric(12, 2),
    ALTER COLUMN refunded_amount TYPE numeric(12, 2);

ALTER TABLE mentorship_products
    DROP CONSTRAINT mentorship_products_price_exact,
    ALTER COLUMN price TYPE numeric(12, 2);

DROP FUNCTION currency_exponent(text);
