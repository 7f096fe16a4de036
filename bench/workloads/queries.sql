-- queries.sql: the sqlite3 workload of `hc-bench real`. Builds three tables
-- from recursive CTEs (@n orders; @n is set by the caller, e.g.
--   sqlite3 -cmd ".parameter set @n 20000" :memory: ".read queries.sql"),
-- then joins, GROUP BY, ORDER BY, index lookups, subqueries, window
-- functions, updates and deletes. Every ORDER BY breaks ties, so the output is
-- deterministic.
.headers off
.mode list

CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, city TEXT, since INTEGER);
CREATE TABLE products(id INTEGER PRIMARY KEY, name TEXT, category TEXT, cents INTEGER);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, product INTEGER,
                    qty INTEGER, day INTEGER, note TEXT);

WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @n / 10)
INSERT INTO customers
SELECT x, printf('cust%05d', (x * 7919) % 100003),
       (SELECT value FROM json_each('["Lyon","Oslo","Kyoto","Lima","Perth","Quito","Tunis","Hanoi"]')
        WHERE key = (x * 2654435761) % 4294967296 / 536870912),
       2000 + (x * x) % 25
FROM c;

WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500)
INSERT INTO products
SELECT x, 'prod-' || hex(x * 2654435761 % 4294967296),
       CASE x % 5 WHEN 0 THEN 'tools' WHEN 1 THEN 'books' WHEN 2 THEN 'food'
                  WHEN 3 THEN 'toys' ELSE 'garden' END,
       100 + (x * 7907) % 9900
FROM c;

WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @n)
INSERT INTO orders
SELECT x, 1 + (x * 48271) % 2147483647 % (@n / 10), 1 + (x * 16807) % 2147483647 % 500,
       1 + (x * x + 3 * x) % 9, (x * 7) % 365,
       CASE WHEN x % 13 = 0 THEN 'gift ' || (x % 101) ELSE NULL END
FROM c;

-- Aggregates over the whole table (full scans).
SELECT count(*), sum(qty), min(day), max(day), count(note) FROM orders;

-- Revenue by city: a three-way join without indexes on the join columns but
-- the primary keys, grouped and ordered.
SELECT c.city, count(*), sum(o.qty * p.cents)
FROM orders o JOIN customers c ON c.id = o.customer JOIN products p ON p.id = o.product
GROUP BY c.city ORDER BY 3 DESC, 1;

-- Index lookups: a correlated subquery per customer, before and after an index.
SELECT sum((SELECT count(*) FROM orders o WHERE o.customer = c.id AND o.qty > 4))
FROM customers c WHERE c.id % 10 = 0;
CREATE INDEX orders_customer ON orders(customer, day);
CREATE INDEX orders_product ON orders(product);
SELECT sum((SELECT count(*) FROM orders o WHERE o.customer = c.id AND o.qty > 4))
FROM customers c;
SELECT count(*), sum(qty) FROM orders WHERE customer BETWEEN 100 AND 300 AND day < 100;

-- Category by month, HAVING, ORDER BY on aggregates.
SELECT p.category, o.day / 31 AS month, count(*) AS n, sum(o.qty) AS q
FROM orders o JOIN products p ON p.id = o.product
GROUP BY 1, 2 HAVING n > 10 ORDER BY q DESC, 1, 2 LIMIT 12;

-- Subqueries: customers above the average spend, products never ordered in
-- the first quarter, the top product per category.
SELECT count(*), sum(spend) FROM (
  SELECT o.customer, sum(o.qty * p.cents) AS spend
  FROM orders o JOIN products p ON p.id = o.product GROUP BY o.customer)
WHERE spend > (SELECT avg(s) FROM (
  SELECT sum(o.qty * p.cents) AS s FROM orders o JOIN products p ON p.id = o.product
  GROUP BY o.customer));
SELECT count(*) FROM products p
WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.product = p.id AND o.day < 90 AND o.qty > 7);
SELECT category, name, units FROM (
  SELECT p.category, p.name, sum(o.qty) AS units,
         row_number() OVER (PARTITION BY p.category ORDER BY sum(o.qty) DESC, p.id) AS r
  FROM orders o JOIN products p ON p.id = o.product GROUP BY p.id)
WHERE r = 1 ORDER BY category;

-- Window functions over customers: running totals and ranks.
SELECT city, max(running), min(rnk) FROM (
  SELECT c.city, sum(o.qty) OVER (PARTITION BY c.city ORDER BY o.id) AS running,
         rank() OVER (PARTITION BY c.city ORDER BY o.qty DESC, o.id) AS rnk
  FROM orders o JOIN customers c ON c.id = o.customer WHERE o.day % 7 = 0)
GROUP BY city ORDER BY city;

-- Strings: LIKE, substr, group_concat, printf, a sort on an expression.
SELECT count(*) FROM customers WHERE name LIKE 'cust1%' OR name LIKE '%99';
SELECT substr(group_concat(name, ','), 1, 60) FROM (
  SELECT name FROM products ORDER BY substr(name, 6) DESC, id LIMIT 40);
SELECT printf('%s|%d|%.2f', city, count(*), avg(since)) FROM customers GROUP BY city ORDER BY city;
SELECT note, count(*) FROM orders WHERE note IS NOT NULL GROUP BY note ORDER BY 2 DESC, 1 LIMIT 5;

-- Writes: an update through an index, a delete with a subquery, a rebuilt
-- summary table, and a final check.
UPDATE orders SET qty = qty + 1 WHERE customer IN (SELECT id FROM customers WHERE city = 'Oslo');
DELETE FROM orders WHERE product IN (SELECT id FROM products WHERE category = 'toys') AND day % 2 = 1;
CREATE TABLE summary AS
  SELECT customer, count(*) AS n, sum(qty) AS q FROM orders GROUP BY customer;
CREATE INDEX summary_q ON summary(q);
SELECT count(*), sum(n), sum(q) FROM summary;
SELECT customer, q FROM summary ORDER BY q DESC, customer LIMIT 5;
SELECT count(*) FROM summary s JOIN customers c ON c.id = s.customer
WHERE s.q > (SELECT avg(q) FROM summary) AND c.since > 2010;
