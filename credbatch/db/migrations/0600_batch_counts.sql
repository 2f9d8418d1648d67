-- 0600: record counts per batch and state, kept incrementally, so a progress read costs the
-- same for a batch of ten records and one of a million.
--
-- Writers never update a shared row. Every statement that changes records (INSERT, UPDATE,
-- DELETE, whichever function or role runs it) appends, from a STATEMENT-level trigger over
-- its transition tables, one signed row per (batch, state) it changed to
-- batch_count_deltas: a group of 500 records moving QUEUED -> ISSUED adds two rows
-- (+500 ISSUED, -500 QUEUED). Workers in several processes only ever insert distinct rows,
-- so they neither wait for each other nor hold a lock that a reader or another worker needs.
-- The deltas become visible with the records they describe (same transaction).
--
-- A batch's counts are the sum of its rows in batch_counts (one per state) and in
-- batch_count_deltas, read in one statement (one snapshot). batch_counts_fold moves the
-- deltas into batch_counts in one statement (DELETE ... RETURNING feeding an upsert), so a
-- reader sees either the deltas or their fold, never both or neither; a delta committed
-- after the fold's snapshot is not deleted and is folded next time, and two folds never fold
-- the same delta (the second finds it deleted and skips it).
--
-- Both tables carry no personal data; readers reach them only through the batches row they
-- may see (RLS on batches), so their policy is the tenant alone.

CREATE TABLE batch_count_deltas (
  tenant_id   uuid        NOT NULL,
  batch_id    uuid        NOT NULL,
  id          bigint      GENERATED ALWAYS AS IDENTITY,
  state       text        NOT NULL,
  n           bigint      NOT NULL,
  last_update timestamptz,
  PRIMARY KEY (tenant_id, batch_id, id)
);
COMMENT ON TABLE batch_count_deltas IS
  'Signed changes of the number of a batch''s records per state, one row per (batch, state) '
  'per statement that changed records (appended by the records_count_* triggers, never '
  'updated). Folded into batch_counts by batch_counts_fold.';
COMMENT ON COLUMN batch_count_deltas.last_update IS
  'Latest records.updated_at among the records that entered the state (NULL for the rows '
  'that count records leaving it).';
ALTER TABLE batch_count_deltas ENABLE ROW LEVEL SECURITY;
ALTER TABLE batch_count_deltas FORCE ROW LEVEL SECURITY;
CREATE POLICY batch_count_deltas_isolation ON batch_count_deltas FOR SELECT
  USING (tenant_id = app_tenant());
SELECT grant_app('SELECT', 'TABLE batch_count_deltas');

CREATE TABLE batch_counts (
  tenant_id   uuid        NOT NULL,
  batch_id    uuid        NOT NULL,
  state       text        NOT NULL,
  n           bigint      NOT NULL,
  last_update timestamptz,
  PRIMARY KEY (tenant_id, batch_id, state)
);
COMMENT ON TABLE batch_counts IS
  'Folded record counts per batch and state: plus the batch''s rows in batch_count_deltas, '
  'the number of its records in each state. Written only by batch_counts_fold.';
COMMENT ON COLUMN batch_counts.last_update IS
  'Latest records.updated_at of a record entering this state, as far as folded.';
ALTER TABLE batch_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE batch_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY batch_counts_isolation ON batch_counts FOR SELECT
  USING (tenant_id = app_tenant());
SELECT grant_app('SELECT', 'TABLE batch_counts');

-- Only the owner writes both tables: the trigger and fold functions below are SECURITY
-- DEFINER, so the count rows are written the same way whoever changed the records (an
-- application role transaction under RLS, or the relay's SECURITY DEFINER functions of 0005
-- running as the owner with no tenant set), and the application role cannot write a count
-- that no record change produced.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY batch_count_deltas_owner ON batch_count_deltas TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY batch_counts_owner ON batch_counts TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
END
$$;

-- Rows whose state did not change (the worker stamping email_sent_at on an ISSUED record)
-- net to zero and add nothing.
CREATE FUNCTION records_count_changes() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO public.batch_count_deltas (tenant_id, batch_id, state, n, last_update)
    SELECT tenant_id, batch_id, state, count(*), max(updated_at)
    FROM new_rows GROUP BY tenant_id, batch_id, state;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO public.batch_count_deltas (tenant_id, batch_id, state, n, last_update)
    SELECT tenant_id, batch_id, state, -count(*), NULL
    FROM old_rows GROUP BY tenant_id, batch_id, state;
  ELSE
    INSERT INTO public.batch_count_deltas (tenant_id, batch_id, state, n, last_update)
    SELECT c.tenant_id, c.batch_id, c.state, sum(c.n), max(c.last_update)
    FROM (
      SELECT tenant_id, batch_id, state, 1 AS n, updated_at AS last_update FROM new_rows
      UNION ALL
      SELECT tenant_id, batch_id, state, -1, NULL FROM old_rows
    ) c
    GROUP BY c.tenant_id, c.batch_id, c.state
    HAVING sum(c.n) <> 0;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION records_count_changes() IS
  'Trigger (AFTER INSERT / UPDATE / DELETE ON records FOR EACH STATEMENT): appends the '
  'statement''s net change of records per (batch, state) to batch_count_deltas. SECURITY '
  'DEFINER: it writes only aggregates of rows the statement itself changed.';
REVOKE ALL ON FUNCTION records_count_changes() FROM PUBLIC;

-- One trigger per event: a trigger with transition tables serves a single event.
CREATE TRIGGER records_count_inserts
  AFTER INSERT ON records REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION records_count_changes();
CREATE TRIGGER records_count_updates
  AFTER UPDATE ON records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION records_count_changes();
CREATE TRIGGER records_count_deletes
  AFTER DELETE ON records REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION records_count_changes();

-- TRUNCATE bypasses the row triggers above; it empties the counts with the records.
CREATE FUNCTION records_count_truncate() RETURNS trigger
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
CREATE TRIGGER records_count_truncate
  AFTER TRUNCATE ON records
  FOR EACH STATEMENT EXECUTE FUNCTION records_count_truncate();

-- p_batch NULL folds every batch of the tenant; p_tenant NULL every tenant (a maintenance
-- job). One statement: the deltas it deletes are exactly the ones it adds to batch_counts.
CREATE FUNCTION batch_counts_fold(p_tenant uuid, p_batch uuid) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH moved AS (
    DELETE FROM public.batch_count_deltas d
    WHERE (p_tenant IS NULL OR d.tenant_id = p_tenant)
      AND (p_batch IS NULL OR d.batch_id = p_batch)
    RETURNING d.tenant_id, d.batch_id, d.state, d.n, d.last_update
  ), folded AS (
    INSERT INTO public.batch_counts AS c (tenant_id, batch_id, state, n, last_update)
    SELECT tenant_id, batch_id, state, sum(n), max(last_update)
    FROM moved GROUP BY tenant_id, batch_id, state
    ON CONFLICT (tenant_id, batch_id, state) DO UPDATE
      SET n = c.n + EXCLUDED.n,
          last_update = greatest(c.last_update, EXCLUDED.last_update)
  )
  -- A data-modifying WITH runs to completion whether or not its output is read.
  SELECT count(*)::integer FROM moved
$$;
COMMENT ON FUNCTION batch_counts_fold(uuid, uuid) IS
  'Moves the deltas of batch p_batch of tenant p_tenant (NULL: all) into batch_counts in one '
  'statement; returns the number of delta rows folded. Changes no count a reader sees.';
REVOKE ALL ON FUNCTION batch_counts_fold(uuid, uuid) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION batch_counts_fold(uuid, uuid)');

-- Counts of the records already there. The triggers exist from here on and CREATE TRIGGER
-- locked records against writes until this migration commits, so no change is missed or
-- counted twice.
INSERT INTO batch_counts (tenant_id, batch_id, state, n, last_update)
SELECT tenant_id, batch_id, state, count(*), max(updated_at)
FROM records GROUP BY tenant_id, batch_id, state;

-- Readers take every batch's counts from the tables above, finished or not (a record of a
-- finished batch can still change, e.g. INVITED -> CLAIMED), so the counts stored once when a
-- batch finished (0401), and the trigger that scanned all its records to store them, go.
DROP TRIGGER batches_final_counts ON batches;
DROP FUNCTION batches_final_counts();
ALTER TABLE batches DROP COLUMN final_counts;
