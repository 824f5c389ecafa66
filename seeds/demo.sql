-- Demo mentors and products for local development (`huckleberry dev`, scripts/dev.sh).
-- Fixed ids, and rows that already exist are left as they are, so loading this twice (or
-- after editing a demo row by hand) changes nothing. Never loaded in production.

INSERT INTO mentors (id, display_name, email, seat_capacity, clerk_id) VALUES
    ('de000000-0000-4000-8000-000000000001', 'Ada Lindqvist', 'ada@demo.huckleberry.art',
     3, 'user_demo_mentor_ada'),
    -- One seat only, so the demo can show a full mentor refusing a second buyer.
    ('de000000-0000-4000-8000-000000000002', 'Tomás Okafor', 'tomas@demo.huckleberry.art',
     1, 'user_demo_mentor_tomas')
ON CONFLICT DO NOTHING;

INSERT INTO mentorship_products
    (id, mentor_id, name, kind, price, currency, sessions_per_pack, validity_days, active)
VALUES
    ('de000000-0000-4000-8000-000000000101', 'de000000-0000-4000-8000-000000000001',
     'Portrait fundamentals: 4 one-on-one sessions', 'one_on_one', 240.00, 'eur', 4, 60, true),
    ('de000000-0000-4000-8000-000000000102', 'de000000-0000-4000-8000-000000000001',
     'Sketchbook circle: 6 group sessions', 'group', 90.00, 'eur', 6, 90, true),
    ('de000000-0000-4000-8000-000000000103', 'de000000-0000-4000-8000-000000000002',
     'Environment painting: 4 one-on-one sessions', 'one_on_one', 280.00, 'usd', 4, 60, true),
    -- A currency without decimals, to show amounts in their own minor units.
    ('de000000-0000-4000-8000-000000000104', 'de000000-0000-4000-8000-000000000002',
     'Character design critique: 2 sessions', 'one_on_one', 15000, 'jpy', 2, 30, true),
    -- Retired: checkout refuses it with product_inactive.
    ('de000000-0000-4000-8000-000000000105', 'de000000-0000-4000-8000-000000000001',
     'Watercolour basics (retired)', 'group', 60.00, 'eur', 4, 60, false)
ON CONFLICT DO NOTHING;
