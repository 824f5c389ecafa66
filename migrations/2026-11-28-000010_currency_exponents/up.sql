-- Money in every currency's own decimals (ISO 4217): 0 for JPY, 3 for KWD. The columns hold
-- three decimals (ten integer digits, as before), and every amount must be exact in its
-- currency, so a yen amount with decimals or a dinar amount beyond fils cannot be stored.
-- `src/money.rs` keeps the same table.

CREATE FUNCTION currency_exponent(code text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN lower(code) IN ('bif', 'clp', 'djf', 'gnf', 'isk', 'jpy', 'kmf', 'krw', 'pyg',
                             'rwf', 'ugx', 'uyi', 'vnd', 'vuv', 'xaf', 'xof', 'xpf') THEN 0
        WHEN lower(code) IN ('bhd', 'iqd', 'jod', 'kwd', 'lyd', 'omr', 'tnd') THEN 3
        ELSE 2
    END
$$;

ALTER TABLE mentorship_products
    ALTER COLUMN price TYPE numeric(13, 3),
    ADD CONSTRAINT mentorship_products_price_exact
        CHECK (price = round(price, currency_exponent(currency)));

ALTER TABLE orders
    ALTER COLUMN total_amount TYPE numeric(13, 3),
    ALTER COLUMN original_amount TYPE numeric(13, 3),
    ALTER COLUMN discount_amount TYPE numeric(13, 3),
    ALTER COLUMN refunded_amount TYPE numeric(13, 3),
    ADD CONSTRAINT orders_amounts_exact CHECK (
        total_amount = round(total_amount, currency_exponent(currency))
        AND original_amount = round(original_amount, currency_exponent(currency))
        AND discount_amount = round(discount_amount, currency_exponent(currency))
        AND refunded_amount = round(refunded_amount, currency_exponent(currency))
    );

ALTER TABLE payments
    ALTER COLUMN amount TYPE numeric(13, 3),
    ALTER COLUMN refunded_amount TYPE numeric(13, 3),
    ADD CONSTRAINT payments_amounts_exact CHECK (
        amount = round(amount, currency_exponent(currency))
        AND refunded_amount = round(refunded_amount, currency_exponent(currency))
    );
