-- Run every minute by the compose `loader` service: new orders and their payments keep the demo
-- warehouse fresh (stop the loader to watch freshness turn late).
INSERT INTO shop.orders (customer_id, amount, status)
SELECT 1 + (random() * 1999)::int, round((10 + random() * 190)::numeric, 2), 'paid'
FROM generate_series(1, 20);
INSERT INTO shop.payments (order_id, method, amount, paid_at)
SELECT o.id, 'card', o.amount, now()
FROM shop.orders o LEFT JOIN shop.payments p ON p.order_id = o.id
WHERE p.id IS NULL AND o.status = 'paid';
