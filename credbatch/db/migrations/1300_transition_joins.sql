-- 1300: statement triggers never join their transition tables by nested loop.
--
-- PL/pgSQL plans a query without parameters once per backend, at its first run, and keeps
-- that plan. In a trigger the planner sizes the transition tables (old_rows, new_rows) by what
-- they hold at that first run: a pooled connection whose first update out of QUEUED touched
-- 10 records keeps a nested loop of old_rows x new_rows, and a later statement over 20,000
-- records then compares 400 million pairs (94 s measured, one CPU busy throughout).
--
-- dispatch_note_in_flight needs no join: a row of dispatch_in_flight exists exactly for a
-- record whose new state is QUEUED, whatever its old one was (inserting a present row or
-- deleting an absent one does nothing). The others compare old and new state per record and
-- keep their join, planned without nested loops: the transition tables are then hashed, in time
-- linear in the statement's rows whatever size the plan was made for.

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

ALTER FUNCTION dispatch_note_pending() SET enable_nestloop = off;
ALTER FUNCTION webhook_batch_events() SET enable_nestloop = off;
ALTER FUNCTION webhook_record_events() SET enable_nestloop = off;
