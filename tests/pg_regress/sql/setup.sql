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
