-- An emergency rollback never waits behind a running retrain of the same model, and the retrain
-- does not deploy over it. A second session (dblink) runs a slow retrain; this one deploys the
-- old version meanwhile with a 2-second lock_timeout. Not in a transaction: the other session
-- must see the model, so this file cleans up after itself.
\set VERBOSITY terse
CREATE EXTENSION dblink;
CALL regress.create_customers('public.rb_customers', 300);
-- a source that takes 3 seconds to read
SELECT version FROM customer_value.train('rb', 'SELECT c.* FROM public.rb_customers c, (SELECT pg_sleep(0)) AS s', 'spend', 'linear');
SELECT version FROM customer_value.train('rb', 'SELECT c.* FROM public.rb_customers c, (SELECT pg_sleep(3)) AS s', 'spend', 'linear', '{"deploy": "always"}');
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s',
       split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'),
       current_database(), current_user));
SELECT dblink_send_query('other', $$SELECT decision, reason FROM customer_value.retrain('rb', '{"deploy": "always"}')$$);
SELECT pg_sleep(1);
SET lock_timeout = '2s';
SELECT customer_value.deploy('rb', 1) AS previous;
RESET lock_timeout;
SELECT * FROM dblink_get_result('other') AS r(decision text, reason text);
SELECT dblink_disconnect('other');
SELECT version, deployed FROM customer_value.models WHERE name = 'rb' ORDER BY version;
DELETE FROM customer_value.models WHERE name = 'rb';
DELETE FROM customer_value.training_runs WHERE model = 'rb';
DROP TABLE public.rb_customers;
DROP EXTENSION dblink;
