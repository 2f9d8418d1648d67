-- Fair dispatch, the third step of a pick (outbox_claim composes the steps): the records
-- themselves, and the batch's virtual time after them.
--
-- Up to p_limit PENDING records of the batch in CSV row order, after row p_after (the records
-- this claim took from the batch before are still PENDING to it until the relay marks them),
-- locked FOR UPDATE SKIP LOCKED until the claim's transaction ends: another relay's records
-- are passed over, never waited for. The batch's virtual time moves from p_vtime, where its
-- pick started, by the records taken, so the tenant's next pick goes to its batch served
-- least (batches weigh alike). Fewer than asked means the batch may be done: its key is then
-- settled from its PENDING records, locked or not, dropped when none is left, its count set
-- again otherwise, and the claim skips the batch (short).
--
-- It runs only inside outbox_claim, as that function's owner and under its search_path and
-- planner settings; it has no SET clause of its own, which every call would pay for, and
-- names every table with its schema.
DROP FUNCTION IF EXISTS dispatch_take_records(uuid, uuid, integer, bigint);
CREATE OR REPLACE FUNCTION dispatch_take_records(
  p_tenant uuid, p_batch uuid, p_after integer, p_limit bigint, p_vtime double precision,
  OUT record_ids uuid[], OUT attempts integer[], OUT last_row integer, OUT taken bigint,
  OUT short boolean, OUT vtime double precision)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
  v_left bigint;
BEGIN
  SELECT array_agg(s.id ORDER BY s.row_number), array_agg(s.attempt ORDER BY s.row_number),
         max(s.row_number)
    INTO record_ids, attempts, last_row
  FROM (SELECT r.id, r.attempt, r.row_number
        FROM public.records r
        WHERE r.tenant_id = p_tenant AND r.batch_id = p_batch
          AND r.state = 'PENDING' AND r.row_number > p_after
        ORDER BY r.row_number
        LIMIT p_limit
        FOR UPDATE OF r SKIP LOCKED) s;
  taken := coalesce(cardinality(record_ids), 0);
  short := taken < p_limit;
  vtime := p_vtime + taken;
  IF short THEN
    SELECT count(*) INTO v_left FROM public.records r
    WHERE r.tenant_id = p_tenant AND r.batch_id = p_batch AND r.state = 'PENDING';
    IF v_left = 0 THEN
      DELETE FROM public.dispatch_batches d
      WHERE d.tenant_id = p_tenant AND d.batch_id = p_batch;
    ELSE
      -- A key passed over (nothing taken) keeps its virtual time.
      UPDATE public.dispatch_batches d
      SET pending = v_left,
          vtime = CASE WHEN dispatch_take_records.taken > 0 THEN dispatch_take_records.vtime
                       ELSE d.vtime END
      WHERE d.tenant_id = p_tenant AND d.batch_id = p_batch;
    END IF;
  ELSE
    UPDATE public.dispatch_batches d SET vtime = dispatch_take_records.vtime
    WHERE d.tenant_id = p_tenant AND d.batch_id = p_batch;
  END IF;
END
$$;
COMMENT ON FUNCTION dispatch_take_records(uuid, uuid, integer, bigint, double precision) IS
  'Fair dispatch, a step of outbox_claim: locks up to p_limit PENDING records of the batch '
  'after row p_after, in row order, and returns their ids and attempts, the last row taken, '
  'how many, whether that was fewer than asked (the batch''s key then settled from its '
  'PENDING records), and the batch''s virtual time: p_vtime plus the records taken.';
REVOKE ALL ON FUNCTION dispatch_take_records(uuid, uuid, integer, bigint, double precision)
  FROM PUBLIC;
