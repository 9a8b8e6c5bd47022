#!/usr/bin/env bash
# Reliability drill (issue #5): damaged model bytes through SQL scoring. A linear model and a
# small random forest are trained; a scratch copy of each (its own name, version 1) has its
# `model` bytea overwritten DRILL_MUTATIONS times in all (as superuser, UPDATE) with a damaged copy
# of the original, and scored with customer_value(row, 'scratch_…@1') and customer_tier(…) over
# 20 rows (one with NULL features). Damage, chosen at random per attempt:
#   bitflip   1–4 random bits flipped           bytes     1–8 random bytes overwritten
#   truncate  cut at a random length             extend    1–64 random bytes appended
#   header    one header field (magic, format version, reserved, length, CRC) set at random
#   and, with the length and CRC-32 recomputed so the damage reaches the decoder and validation:
#   payload_crc  1–4 payload bytes overwritten   resize_crc  payload cut or extended
#   splice_crc   a slice of the payload copied over another place
# Each attempt runs in its own subtransaction (PL/pgSQL EXCEPTION block) and must either return a
# number or raise a clean ERROR. Invariants: the postmaster never restarts
# (pg_postmaster_start_time unchanged, no "terminated by signal" in the log), no internal error
# (XX000, what a caught Rust panic becomes), every attempt accounted for, and damage that did
# not recompute the checksum never yields a different number than the intact model.
#
# Usage: scripts/drills/sql_fuzz.sh      DRILL_MUTATIONS (5000)  DRILL_SEED (1)  DRILL_BATCH (250)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
source "$(dirname "$0")/drill_common.sh"
lock_install

MUTATIONS=${DRILL_MUTATIONS:-5000}
SEED=${DRILL_SEED:-1}
BATCH=${DRILL_BATCH:-250}

ensure_toolchain
install_extension
step "starting a throwaway cluster"
start_cluster
psql_run -c "CREATE EXTENSION customer_value"
make_customers customers 5000 5

step "two models and their scratch copies"
psql_run <<'SQL'
SELECT name, version, algorithm FROM customer_value.train('lin', 'customers', 'spend', 'linear');
SELECT name, version, algorithm
  FROM customer_value.train('rf', 'customers', 'spend', 'random_forest', '{"n_trees": 4, "max_depth": 5}');
INSERT INTO customer_value.models (name, version, algorithm, task, target, source, features, options,
                                   metrics, tiers, model, deployed, spec, profile)
SELECT 'scratch_' || name, 1, algorithm, task, target, source, features, options, metrics, tiers, model,
       false, spec, profile
  FROM customer_value.models WHERE name IN ('lin', 'rf');
CREATE TABLE fz_rows AS SELECT * FROM customers WHERE customer_id <= 19 ORDER BY customer_id;
INSERT INTO fz_rows (customer_id, f1, f2, f3, f4, f5, spend) VALUES (0, NULL, 1, NULL, 2, NULL, 0);
CREATE TABLE fz_results (attempt int, base text, kind text, outcome text, sqlstate text, message text);
CREATE TABLE fz_base AS
SELECT 'lin' AS base, (SELECT sum(customer_value(c, 'lin@1')) FROM fz_rows c) AS value,
       (SELECT model FROM customer_value.models WHERE name = 'lin') AS model
UNION ALL
SELECT 'rf', (SELECT sum(customer_value(c, 'rf@1')) FROM fz_rows c),
       (SELECT model FROM customer_value.models WHERE name = 'rf');

-- CRC-32 (IEEE, as crc32fast) of a bytea, table-driven
CREATE FUNCTION fz_crc32(data bytea) RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    tbl bigint[] := '{}';
    c bigint;
    i int;
    k int;
BEGIN
    FOR i IN 0..255 LOOP
        c := i;
        FOR k IN 1..8 LOOP
            IF c & 1 = 1 THEN c := 3988292384 # (c >> 1); ELSE c := c >> 1; END IF;
        END LOOP;
        tbl := tbl || c;
    END LOOP;
    c := 4294967295;
    FOR i IN 0..length(data) - 1 LOOP
        c := tbl[((c # get_byte(data, i)) & 255) + 1] # (c >> 8);
    END LOOP;
    RETURN c # 4294967295;
END $$;

CREATE FUNCTION fz_set_u32(b bytea, pos int, v bigint) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT set_byte(set_byte(set_byte(set_byte(b, pos, (v & 255)::int), pos + 1, ((v >> 8) & 255)::int),
                    pos + 2, ((v >> 16) & 255)::int), pos + 3, ((v >> 24) & 255)::int)
$$;
CREATE FUNCTION fz_byte() RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT floor(random() * 256)::int $$;
CREATE FUNCTION fz_below(n int) RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT floor(random() * n)::int $$;
CREATE FUNCTION fz_random_bytes(n int) RETURNS bytea LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(string_agg(set_byte('\x00'::bytea, 0, fz_byte()), ''::bytea), ''::bytea) FROM generate_series(1, n)
$$;
-- header (20 bytes) + payload; recomputes the payload length and CRC-32 fields
CREATE FUNCTION fz_seal(b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT fz_set_u32(fz_set_u32(b, 12, length(b) - 20), 16, fz_crc32(substring(b FROM 21)))
$$;

-- One mutation of m by kind k
CREATE FUNCTION fz_mutate(m bytea, k text) RETURNS bytea LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n int := length(m);
    p bytea := substring(m FROM 21);   -- payload
    i int;
    pos int;
    len int;
    src int;
BEGIN
    CASE k
    WHEN 'bitflip' THEN
        FOR i IN 1..1 + fz_below(4) LOOP
            pos := fz_below(n * 8);
            m := set_bit(m, pos, 1 - get_bit(m, pos));
        END LOOP;
    WHEN 'bytes' THEN
        FOR i IN 1..1 + fz_below(8) LOOP m := set_byte(m, fz_below(n), fz_byte()); END LOOP;
    WHEN 'truncate' THEN
        m := substring(m FROM 1 FOR fz_below(n));
    WHEN 'extend' THEN
        m := m || fz_random_bytes(1 + fz_below(64));
    WHEN 'header' THEN
        CASE fz_below(5)
        WHEN 0 THEN m := set_byte(m, fz_below(8), fz_byte());                                 -- magic
        WHEN 1 THEN m := set_byte(set_byte(m, 8, (ARRAY[0, 1, 2, 255])[1 + fz_below(4)]), 9,
                                  (ARRAY[0, 0, 1, 255])[1 + fz_below(4)]);                    -- format version
        WHEN 2 THEN m := set_byte(m, 10 + fz_below(2), fz_byte());                            -- reserved
        WHEN 3 THEN m := fz_set_u32(m, 12, (ARRAY[0, n - 21, n - 19, 4294967295, fz_below(1000000)])[1 + fz_below(5)]);
        ELSE        m := set_byte(m, 16 + fz_below(4), fz_byte());                            -- CRC
        END CASE;
    WHEN 'payload_crc' THEN
        FOR i IN 1..1 + fz_below(4) LOOP p := set_byte(p, fz_below(length(p)), fz_byte()); END LOOP;
        m := fz_seal(substring(m FROM 1 FOR 20) || p);
    WHEN 'resize_crc' THEN
        IF random() < 0.5 THEN p := substring(p FROM 1 FOR fz_below(length(p)));
        ELSE p := p || fz_random_bytes(1 + fz_below(16)); END IF;
        m := fz_seal(substring(m FROM 1 FOR 20) || p);
    WHEN 'splice_crc' THEN
        len := 1 + fz_below(least(32, length(p)));
        src := fz_below(length(p) - len + 1);
        pos := fz_below(length(p) - len + 1);
        p := overlay(p PLACING substring(p FROM src + 1 FOR len) FROM pos + 1 FOR len);
        m := fz_seal(substring(m FROM 1 FOR 20) || p);
    END CASE;
    RETURN m;
END $$;
SQL
psql_run -c "SELECT base, value, length(model) AS bytes, fz_crc32(substring(model FROM 21)) =
                    ((get_byte(model, 16) + (get_byte(model, 17) << 8) + (get_byte(model, 18) << 16))::bigint
                     + (get_byte(model, 19)::bigint << 24)) AS crc_matches_ours FROM fz_base"
check "our CRC-32 agrees with the stored one" "tt" "$(q "SELECT string_agg((fz_crc32(substring(model FROM 21)) = fz_set_u32_check)::text, '')
    FROM (SELECT model, (get_byte(model, 16) + (get_byte(model, 17) << 8) + (get_byte(model, 18) << 16))::bigint
                        + (get_byte(model, 19)::bigint << 24) AS fz_set_u32_check FROM fz_base) s" | sed 's/true/t/g')" \
    || die "the drill's CRC-32 is wrong: the *_crc mutations would not reach the decoder"

START_TIME=$(q "SELECT pg_postmaster_start_time()")
step "$MUTATIONS mutations in batches of $BATCH (seed $SEED)"
FUZZ_T0=$(now)
done_n=0 b=0
while [ "$done_n" -lt "$MUTATIONS" ]; do
    n=$(( MUTATIONS - done_n < BATCH ? MUTATIONS - done_n : BATCH ))
    if ! psql_run <<SQL
SELECT setseed(((($SEED * 7919 + $b) % 20000) - 10000) / 10000.0) \gset
DO \$\$
DECLARE
    kinds text[] := ARRAY['bitflip', 'bytes', 'truncate', 'extend', 'header', 'payload_crc', 'resize_crc', 'splice_crc'];
    i int;
    base_name text;
    kind text;
    orig bytea;
    orig_value float8;
    mutated bytea;
    v float8;
    t text;
    st text;
    msg text;
BEGIN
    FOR i IN $done_n + 1 .. $done_n + $n LOOP
        base_name := CASE WHEN i % 2 = 0 THEN 'lin' ELSE 'rf' END;
        kind := kinds[1 + fz_below(array_length(kinds, 1))];
        SELECT model, value INTO orig, orig_value FROM fz_base WHERE base = base_name;
        mutated := fz_mutate(orig, kind);
        RAISE LOG 'sql_fuzz attempt % base % kind % bytes %', i, base_name, kind, md5(mutated);
        BEGIN
            UPDATE customer_value.models SET model = mutated WHERE name = 'scratch_' || base_name AND version = 1;
            EXECUTE 'SELECT sum(customer_value(c, \$1)), min(customer_tier(c, \$1)) FROM fz_rows c'
               INTO v, t USING 'scratch_' || base_name || '@1';
            INSERT INTO fz_results VALUES (i, base_name, kind,
                CASE WHEN v IS NULL THEN 'null' WHEN v = orig_value THEN 'number, same' ELSE 'number, different' END,
                NULL, NULL);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            INSERT INTO fz_results VALUES (i, base_name, kind, 'error', st, msg);
        END;
    END LOOP;
END
\$\$;
SQL
    then
        echo "batch $b (attempts $((done_n + 1))–$((done_n + n))) failed; last attempts logged:"
        grep "sql_fuzz attempt" "$CLUSTER_DIR/server.log" | tail -3
        die "sql_fuzz batch $b failed (a crash?)"
    fi
    done_n=$((done_n + n)); b=$((b + 1))
    check "postmaster not restarted after $done_n attempts" "$START_TIME" "$(q "SELECT pg_postmaster_start_time()")" \
        || die "the server restarted"
done
SECS=$(elapsed "$FUZZ_T0")

check "attempts accounted for" "$MUTATIONS" "$(q "SELECT count(*) FROM fz_results")" || true
check "internal errors (XX000: a caught panic)" "0" "$(q "SELECT count(*) FROM fz_results WHERE sqlstate = 'XX000'")" || true
check "different numbers from damage that left the checksum alone" "0" \
    "$(q "SELECT count(*) FROM fz_results WHERE outcome = 'number, different' AND kind NOT LIKE '%_crc'")" || true
check "no crash in the server log" "" "$(crash_lines)" || true
check "postmaster start time" "$START_TIME" "$(q "SELECT pg_postmaster_start_time()")" || true

psql_run -P pager=off <<'SQL'
\echo '\n==== sql_fuzz: outcome by damage kind ===='
SELECT kind, count(*) AS attempts,
       count(*) FILTER (WHERE outcome = 'number, same') AS same_number,
       count(*) FILTER (WHERE outcome = 'number, different') AS other_number,
       count(*) FILTER (WHERE outcome = 'null') AS null,
       count(*) FILTER (WHERE outcome = 'error') AS error
  FROM fz_results GROUP BY ROLLUP (kind) ORDER BY kind NULLS LAST;
\echo '\n==== sql_fuzz: errors by SQLSTATE (and base model) ===='
SELECT sqlstate, count(*) AS errors, count(*) FILTER (WHERE base = 'lin') AS lin,
       count(*) FILTER (WHERE base = 'rf') AS rf, min(left(message, 90)) AS example_message
  FROM fz_results WHERE outcome = 'error' GROUP BY sqlstate ORDER BY errors DESC;
\echo '\n==== sql_fuzz: distinct error messages (numbers masked) ===='
SELECT left(regexp_replace(message, '[0-9]+', 'N', 'g'), 110) AS message, count(*)
  FROM fz_results WHERE outcome = 'error' GROUP BY 1 ORDER BY 2 DESC LIMIT 25;
SQL
{
    echo "figure|value"
    echo "mutations scored|$MUTATIONS (seed $SEED) in ${SECS}s"
    echo "postmaster restarts / crash lines in the log|$([ "$START_TIME" = "$(q "SELECT pg_postmaster_start_time()")" ] && echo 0 || echo 1) / $(crash_lines | wc -l)"
    echo "invariant violations|$DRILL_FAILURES"
} | summary "sql_fuzz"
finish
