-- Fair dispatch, after records were taken from a batch (outbox_claim composes the steps): the
-- batch's virtual time moves from where its pick started by the records taken, so the
-- tenant's next pick goes to its batch served least (batches weigh alike).
--
-- It runs only inside outbox_claim, as that function's owner and under its search_path and
-- planner settings; it has no SET clause of its own, which every call would pay for, and
-- names every table with its schema.
CREATE OR REPLACE FUNCTION dispatch_advance_batch(p_tenant uuid, p_batch uuid,
                                                  p_vtime double precision, p_taken bigint)
RETURNS double precision
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  UPDATE public.dispatch_batches d SET vtime = p_vtime + p_taken
  WHERE d.tenant_id = p_tenant AND d.batch_id = p_batch;
  RETURN p_vtime + p_taken;
END
$$;
COMMENT ON FUNCTION dispatch_advance_batch(uuid, uuid, double precision, bigint) IS
  'Fair dispatch, a step of outbox_claim: sets the batch''s virtual time to p_vtime (where its '
  'pick started) plus the p_taken records taken from it, and returns it.';
REVOKE ALL ON FUNCTION dispatch_advance_batch(uuid, uuid, double precision, bigint) FROM PUBLIC;
