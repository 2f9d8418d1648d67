-- TRUNCATE bypasses the statement triggers that keep the counts; it empties the counts with
-- the records (records_count_truncate).
CREATE OR REPLACE FUNCTION records_count_truncate() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  TRUNCATE public.batch_count_deltas, public.batch_counts;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION records_count_truncate() IS
  'Trigger (AFTER TRUNCATE ON records): empties batch_count_deltas and batch_counts too.';
REVOKE ALL ON FUNCTION records_count_truncate() FROM PUBLIC;
