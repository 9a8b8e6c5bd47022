-- Scheduled retraining with the real pg_cron (Debian's postgresql-15-cron; the test cluster has
-- shared_preload_libraries = 'pg_cron' and cron.database_name = this database). A job is
-- scheduled, actually runs, and produces a new version. Not in a transaction: the pg_cron
-- worker must see the model, so this file cleans up after itself.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
-- Without pg_cron in this database: a clear error naming the missing extension.
SELECT customer_value.schedule_retraining('cron_spend', '* * * * *');
SELECT customer_value.unschedule_retraining('cron_spend');
CREATE EXTENSION pg_cron;

CALL regress.create_customers('public.cron_customers', 300);
SELECT version, deployed FROM customer_value.train('cron_spend', 'cron_customers', 'spend', 'linear');

-- Unknown models and bad schedules are refused.
SELECT customer_value.schedule_retraining('no_such_model', '* * * * *');
SELECT customer_value.schedule_retraining('cron_spend', 'every tuesday-ish');
SELECT customer_value.unschedule_retraining('no_such_model');

-- Every minute (pg_cron 1.4's finest granularity), with a forced deploy so the new version shows.
SELECT customer_value.schedule_retraining('cron_spend', '* * * * *', '{"deploy": "always"}') > 0 AS scheduled;
SELECT jobname, schedule, command, username = current_user AS as_me, database = current_database() AS here
  FROM cron.job WHERE jobname LIKE 'customer_value.retrain:%';
-- Rescheduling replaces the job rather than adding one.
SELECT customer_value.schedule_retraining('cron_spend', '* * * * *', '{"deploy": "always"}') > 0 AS rescheduled;
SELECT count(*) AS jobs FROM cron.job WHERE jobname = 'customer_value.retrain:cron_spend';

-- Wait (at most 150 s) for the job to run once and commit, and for pg_cron to record its end
-- (it marks the run succeeded just after the job's transaction commits).
DO $$
DECLARE
    waited int := 0;
BEGIN
    WHILE waited < 300 AND (NOT EXISTS (
            SELECT 1 FROM customer_value.training_runs WHERE model = 'cron_spend' AND kind = 'retrain')
        OR EXISTS (
            SELECT 1 FROM cron.job_run_details d JOIN cron.job j USING (jobid)
             WHERE j.jobname = 'customer_value.retrain:cron_spend' AND d.status IN ('starting', 'running')))
    LOOP
        PERFORM pg_sleep(0.5);
        waited := waited + 1;
    END LOOP;
END
$$;
SELECT version, kind, decision, reason, run_by
  FROM customer_value.training_runs WHERE model = 'cron_spend' ORDER BY id LIMIT 2;
SELECT version, deployed FROM customer_value.models WHERE name = 'cron_spend' ORDER BY version LIMIT 2;
SELECT status, return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
 WHERE j.jobname = 'customer_value.retrain:cron_spend' ORDER BY d.runid LIMIT 1;

-- The job re-runs the spec as its author, so only a role that can act as the author may
-- schedule it: a trainer who is not a member of the author role is refused up front.
CREATE ROLE cv_cron_trainer IN ROLE customer_value_trainer;
GRANT USAGE ON SCHEMA cron TO cv_cron_trainer;
SET ROLE cv_cron_trainer;
SELECT customer_value.schedule_retraining('cron_spend', '0 3 * * *');
RESET ROLE;
DROP OWNED BY cv_cron_trainer;
DROP ROLE cv_cron_trainer;

SELECT customer_value.unschedule_retraining('cron_spend') AS unscheduled;
SELECT count(*) AS jobs FROM cron.job WHERE jobname LIKE 'customer_value.retrain:%';

-- Clean up (a job may still be finishing: wait for it before deleting its model).
DO $$
BEGIN
    WHILE EXISTS (SELECT 1 FROM cron.job_run_details WHERE status IN ('starting', 'running')) LOOP
        PERFORM pg_sleep(0.2);
    END LOOP;
END
$$;
DELETE FROM customer_value.models WHERE name = 'cron_spend';
DELETE FROM customer_value.training_runs WHERE model = 'cron_spend';
DROP TABLE public.cron_customers;
DROP EXTENSION pg_cron;
