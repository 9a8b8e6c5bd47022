-- Installs the extension once for the whole regression run; every other file assumes it.
CREATE EXTENSION customer_value;
-- The scoring functions resolve unqualified with the default search_path …
SELECT p.oid::regprocedure AS function, p.provolatile AS volatility, p.proparallel AS parallel, p.proisstrict AS strict
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proname IN ('customer_value', 'customer_tier')
 ORDER BY p.oid::regprocedure::text;
-- … and everything else lives in schema customer_value.
SELECT p.oid::regprocedure AS function
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'customer_value'
 ORDER BY p.oid::regprocedure::text;
-- Every public function and the model store are documented.
SELECT p.oid::regprocedure AS undocumented
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_value'
 WHERE obj_description(p.oid, 'pg_proc') IS NULL;
SELECT c.relname, obj_description(c.oid, 'pg_class') IS NOT NULL AS documented
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'customer_value' AND c.relkind IN ('r', 'v')
 ORDER BY 1;
-- The model store's columns, as the rest of the product relies on them.
SELECT attname, format_type(atttypid, atttypmod)
  FROM pg_attribute
 WHERE attrelid = 'customer_value.models'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
-- Test helpers shared by the golden files (schema regress; not part of the extension).
CREATE SCHEMA regress;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
-- The synthetic customers the tests train on, numbered first..last. Every attribute is a fixed
-- function of the number, so the data and every result drawn from them are the same on each
-- run; a test takes the columns it needs and may add its own target (e.g. a churn flag).
CREATE FUNCTION regress.customers(last int, first int DEFAULT 1)
RETURNS TABLE (customer_id int, orders int, tenure float8, days_inactive float8, basket numeric,
               vip boolean, spend float8)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT i,
       (i * 37) % 23,                                        -- orders: 0 to 22
       ((i * 71) % 13)::float8,                              -- tenure: 0 to 12 (noise for spend)
       ((i * 53) % 97)::float8,                              -- days_inactive: 0 to 96
       ((i * 53) % 97) / 4.0,                                -- basket: 0 to 24, in quarters
       i % 7 = 0,                                            -- vip: every 7th customer
       (10 + 2 * ((i * 37) % 23) + ((i * 17) % 5))::float8   -- spend: 10 + 2·orders + 0 to 4
  FROM generate_series(first, last) AS i
$$;
-- The table most tests train on: customers 1..n as name (customer_id primary key, orders,
-- tenure, spend), owned by the caller.
CREATE PROCEDURE regress.create_customers(name text, n int)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE %s (customer_id int PRIMARY KEY, orders int, tenure float8, spend float8)', name);
    EXECUTE format('INSERT INTO %s SELECT customer_id, orders, tenure, spend FROM regress.customers($1)', name)
      USING n;
END
$$;
