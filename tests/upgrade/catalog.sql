-- A normalized description of everything the extension owns or grants, for comparing an
-- upgraded install with a fresh one: objects, function definitions and attributes, columns,
-- constraints, indexes, policies, views, comments and privileges (an aggregate by its support
-- functions and attributes: pg_get_functiondef does not describe aggregates).
\pset format unaligned
\pset tuples_only on
WITH ext AS (
    SELECT d.classid, d.objid
      FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_value'
     WHERE d.deptype = 'e'
)
SELECT line FROM (
    SELECT 'object ' || pg_describe_object(classid, objid, 0) AS line FROM ext
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || E'\n'
           || CASE WHEN p.prokind = 'a' THEN
                  (SELECT 'aggregate sfunc ' || a.aggtransfn || ' stype ' || a.aggtranstype::regtype
                          || ' sspace ' || a.aggtransspace || ' final ' || a.aggfinalfn
                          || ' combine ' || a.aggcombinefn || ' serial ' || a.aggserialfn
                          || ' deserial ' || a.aggdeserialfn || ' parallel ' || p.proparallel::text
                     FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
              ELSE pg_get_functiondef(p.oid) END
           || E'\n acl ' || coalesce(p.proacl::text, 'default')
           || E'\n comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
      FROM pg_proc p JOIN ext ON ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' kind ' || c.relkind::text
           || ' rls ' || c.relrowsecurity || ' force ' || c.relforcerowsecurity
           || ' options ' || coalesce(c.reloptions::text, '-')
           || ' acl ' || coalesce(c.relacl::text, 'default')
           || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
      FROM pg_class c JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = c.oid
    UNION ALL
    SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' #' || a.attnum
           || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull ' || a.attnotnull
           || ' default ' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-')
           || ' comment ' || coalesce(col_description(a.attrelid, a.attnum), '-')
      FROM pg_attribute a
      JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = a.attrelid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint ' || co.conrelid::regclass || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
      FROM pg_constraint co JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = co.conrelid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = i.indrelid
    UNION ALL
    SELECT 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' || cmd
           || ' ' || roles::text || ' ' || coalesce(qual, '-')
      FROM pg_policies WHERE schemaname = 'customer_value'
    UNION ALL
    SELECT 'view ' || c.oid::regclass || E'\n' || pg_get_viewdef(c.oid)
      FROM pg_class c JOIN ext ON ext.classid = 'pg_class'::regclass AND ext.objid = c.oid
     WHERE c.relkind = 'v'
    UNION ALL
    SELECT 'config_dump ' || unnest(e.extconfig::regclass[])::text FROM pg_extension e WHERE e.extname = 'customer_value'
    UNION ALL
    SELECT 'schema customer_value acl ' || coalesce(n.nspacl::text, 'default')
           || ' comment ' || coalesce(obj_description(n.oid, 'pg_namespace'), '-')
      FROM pg_namespace n WHERE n.nspname = 'customer_value'
    UNION ALL
    SELECT 'role ' || r.rolname || ' login ' || r.rolcanlogin
           || ' member of ' || coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname)
                                          FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                                         WHERE m.member = r.oid), '-')
      FROM pg_roles r WHERE r.rolname LIKE 'customer\_value\_%'
) AS described
ORDER BY line;
