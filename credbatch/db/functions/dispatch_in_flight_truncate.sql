-- TRUNCATE bypasses the statement triggers that keep dispatch_in_flight; it empties the
-- in-flight rows too (records_in_flight_truncate).
CREATE OR REPLACE FUNCTION dispatch_in_flight_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  TRUNCATE public.dispatch_in_flight;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch_in_flight_truncate() IS
  'Trigger (AFTER TRUNCATE ON records): empties dispatch_in_flight too.';
REVOKE ALL ON FUNCTION dispatch_in_flight_truncate() FROM PUBLIC;
