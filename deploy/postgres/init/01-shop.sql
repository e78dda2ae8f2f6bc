-- The demo "shop" warehouse for the docker-compose stack (and tests/it/telemetry.rs, which loads
-- this same file into the test PostgreSQL). Deterministic: every 10th customer has no email, so
-- the email null rate is exactly 0.1; orders span the last ~41 days, one every 3 minutes.
CREATE SCHEMA shop;

CREATE TABLE shop.customers (
    id bigint PRIMARY KEY,
    email text,
    country text NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO shop.customers (id, email, country, created_at)
SELECT i,
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
       (ARRAY['DE', 'FR', 'US', 'GB'])[1 + i % 4],
       now() - (i * 20 || ' minutes')::interval
FROM generate_series(1, 2000) AS i;

CREATE TABLE shop.orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    amount numeric(10, 2),
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO shop.orders (customer_id, amount, status, created_at)
SELECT 1 + i % 2000,
       round((10 + (i * 37) % 190)::numeric, 2),
       (ARRAY['placed', 'paid', 'shipped', 'delivered'])[1 + i % 4],
       now() - (i * 3 || ' minutes')::interval
FROM generate_series(1, 20000) AS i;

CREATE TABLE shop.payments (
    id bigserial PRIMARY KEY,
    order_id bigint NOT NULL,
    method text,
    amount numeric(10, 2) NOT NULL,
    paid_at timestamptz NOT NULL
);
INSERT INTO shop.payments (order_id, method, amount, paid_at)
SELECT id, (ARRAY['card', 'paypal', 'bank_transfer', 'gift_card'])[1 + id::int % 4], amount, created_at + interval '2 minutes'
FROM shop.orders
WHERE status <> 'placed';

ANALYZE;
