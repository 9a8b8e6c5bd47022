-- Dump and restore: the model store (the extension's configuration tables) travels with a plain
-- pg_dump, and a backup role with pg_read_all_data dumps every model, restricted ones too, with
-- --enable-row-security (a plain pg_dump turns row security off, which Postgres refuses for any
-- role the policies apply to: that needs the owner or BYPASSRLS). In databases of its own,
-- outside a transaction: the dumps are other sessions.
\set VERBOSITY terse
CREATE DATABASE cv_dump_source;
CREATE DATABASE cv_dump_restored;
\c cv_dump_source
CREATE EXTENSION customer_value;
CREATE TABLE customers AS
SELECT i AS customer_id, (i % 13)::int AS orders, (i % 29)::float8 AS tenure,
       (5 + 3 * (i % 13) + 0.5 * (i % 29) + (i % 7))::float8 AS spend
  FROM generate_series(1, 300) AS i;
ALTER TABLE customers ADD PRIMARY KEY (customer_id);
SELECT version FROM customer_value.train('dump_open', 'customers', 'spend', 'linear');
SELECT version FROM customer_value.train('dump_secret', 'customers', 'spend', 'linear');
CREATE ROLE cv_dump_finance NOLOGIN;
SELECT customer_value.restrict_model('dump_secret', ARRAY['cv_dump_finance']);
CREATE ROLE cv_dump_backup LOGIN IN ROLE pg_read_all_data;
-- the backup role dumps both models' rows
\! pg_dump --enable-row-security --data-only --table=customer_value.models -U cv_dump_backup cv_dump_source | sed -n '/^COPY customer_value.models/,/^\\\./p' | grep -c 'dump_'
-- without --enable-row-security it cannot: Postgres refuses to turn row security off for it
\! pg_dump --data-only --table=customer_value.models -U cv_dump_backup cv_dump_source 2>&1 >/dev/null | grep -o 'query would be affected by row-level security policy for table "models"'
-- a whole-database dump restored into a new database keeps every version and scores identically
\! pg_dump cv_dump_source | psql -q -v ON_ERROR_STOP=1 -d cv_dump_restored >/dev/null && echo restored
SELECT round(sum(customer_value(c, 'dump_open'))::numeric, 6) AS original_total FROM customers c;
\c cv_dump_restored
SELECT name, version, deployed, allowed_roles FROM customer_value.models ORDER BY name, version;
SELECT round(sum(customer_value(c, 'dump_open'))::numeric, 6) AS restored_total FROM customers c;
\c customer_value_regress
DROP DATABASE cv_dump_source;
DROP DATABASE cv_dump_restored;
DROP ROLE cv_dump_backup;
DROP ROLE cv_dump_finance;
