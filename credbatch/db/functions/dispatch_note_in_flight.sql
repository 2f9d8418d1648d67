-- Keeps dispatch_in_flight equal to the records in state QUEUED, for every way a record
-- enters or leaves QUEUED (the relay's mark, a worker's outcome, a cancel, the sweeper, a
-- test's insert), from statement triggers (records_in_flight_insert, _update, _delete).
--
-- It needs no join of the transition tables: a row of dispatch_in_flight exists exactly for
-- a record whose new state is QUEUED, whatever its old one was (inserting a present row or
-- deleting an absent one does nothing), so each probe is a primary-key lookup, linear in the
-- statement's rows whatever plan PL/pgSQL cached for the statement.
CREATE OR REPLACE FUNCTION dispatch_note_in_flight() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO public.dispatch_in_flight (tenant_id, record_id, batch_id)
    SELECT n.tenant_id, n.id, n.batch_id FROM new_rows n WHERE n.state = 'QUEUED'
    ON CONFLICT DO NOTHING;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM public.dispatch_in_flight f USING old_rows o
    WHERE o.state = 'QUEUED' AND f.tenant_id = o.tenant_id AND f.record_id = o.id;
  ELSE
    -- Most statements (a worker stamping a send) move nothing into or out of QUEUED.
    IF NOT EXISTS (SELECT 1 FROM old_rows WHERE state = 'QUEUED')
       AND NOT EXISTS (SELECT 1 FROM new_rows WHERE state = 'QUEUED') THEN
      RETURN NULL;
    END IF;
    -- Each probe is a primary-key lookup: linear in the statement's rows.
    DELETE FROM public.dispatch_in_flight f USING new_rows n
    WHERE n.state <> 'QUEUED' AND f.tenant_id = n.tenant_id AND f.record_id = n.id;
    INSERT INTO public.dispatch_in_flight (tenant_id, record_id, batch_id)
    SELECT n.tenant_id, n.id, n.batch_id FROM new_rows n WHERE n.state = 'QUEUED'
    ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch_note_in_flight() IS
  'Trigger (AFTER INSERT / UPDATE / DELETE ON records, per statement): keeps '
  'dispatch_in_flight equal to the records in state QUEUED.';
REVOKE ALL ON FUNCTION dispatch_note_in_flight() FROM PUBLIC;
