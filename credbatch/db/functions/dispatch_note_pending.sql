-- Keeps the fair-dispatch keys of the batches whose records become PENDING: the upload's
-- INSERT, RetryFailedRecords' FAILED -> PENDING, the sweeper's QUEUED -> PENDING.
-- Statement-level, with transition tables (records_dispatch_insert, records_dispatch_update):
-- an upload's INSERT of 2,000 records touches its batch's key once, not 2,000 times.
CREATE OR REPLACE FUNCTION dispatch_note_pending() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
-- PL/pgSQL plans a query without parameters once per backend, at its first run, and keeps
-- that plan, sizing the transition tables by what they held then: a pooled connection whose
-- first statement changed a few records would keep a nested loop of old_rows x new_rows and
-- compare every pair of a later statement over thousands. Without nested loops the
-- transition tables are hashed, in time linear in the statement's rows whatever size the
-- plan was made for.
SET enable_nestloop = off
AS $$
DECLARE
  v_tenants uuid[];
  v_locked integer;
BEGIN
  -- The counts go straight from the transition table into the keys, which hand back their
  -- tenants: one query where an aggregate into arrays, an insert from them and a DISTINCT
  -- over them were three (a one-row upload spent about 150 µs in this trigger).
  IF TG_OP = 'INSERT' THEN
    WITH counted AS (
      INSERT INTO dispatch_batches AS d (tenant_id, batch_id, pending)
      SELECT n.tenant_id, n.batch_id, count(*) FROM new_rows n
      WHERE n.state = 'PENDING'
      GROUP BY n.tenant_id, n.batch_id
      ORDER BY n.tenant_id, n.batch_id
      ON CONFLICT (tenant_id, batch_id) DO UPDATE SET pending = d.pending + excluded.pending
      RETURNING d.tenant_id
    )
    SELECT array_agg(DISTINCT c.tenant_id) INTO v_tenants FROM counted c;
  ELSE
    -- Workers update records all the time and never to PENDING: leave at once.
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE state = 'PENDING') THEN
      RETURN NULL;
    END IF;
    WITH counted AS (
      INSERT INTO dispatch_batches AS d (tenant_id, batch_id, pending)
      SELECT n.tenant_id, n.batch_id, count(*)
      FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
      WHERE n.state = 'PENDING' AND o.state <> 'PENDING'
      GROUP BY n.tenant_id, n.batch_id
      ORDER BY n.tenant_id, n.batch_id
      ON CONFLICT (tenant_id, batch_id) DO UPDATE SET pending = d.pending + excluded.pending
      RETURNING d.tenant_id
    )
    SELECT array_agg(DISTINCT c.tenant_id) INTO v_tenants FROM counted c;
  END IF;
  IF v_tenants IS NULL THEN
    RETURN NULL;
  END IF;
  -- The tenant row must exist when this transaction commits. FOR KEY SHARE keeps a relay
  -- from deleting it meanwhile (it sees no batch of the tenant, ours being uncommitted) yet
  -- lets relays serve the tenant's other batches (they lock it FOR NO KEY UPDATE). A relay
  -- that deleted it first makes the lock find nothing: insert it again.
  LOOP
    INSERT INTO dispatch_tenants (tenant_id) SELECT unnest(v_tenants) ORDER BY 1
    ON CONFLICT DO NOTHING;
    SELECT count(*) INTO v_locked FROM (
      SELECT 1 FROM dispatch_tenants t WHERE t.tenant_id = ANY (v_tenants)
      ORDER BY t.tenant_id FOR KEY SHARE) s;
    EXIT WHEN v_locked = cardinality(v_tenants);
  END LOOP;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch_note_pending() IS
  'Trigger (AFTER INSERT / UPDATE ON records, per statement): counts the records that became '
  'PENDING into their batch''s dispatch key and makes sure the tenant''s key exists.';
REVOKE ALL ON FUNCTION dispatch_note_pending() FROM PUBLIC;
