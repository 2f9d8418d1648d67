-- The sweeper: every batch reaches a terminal state even when a job is lost.
--
-- A job can vanish between the relay and the worker's outcome: a queue purged by an operator,
-- a broker that lost a message, a worker killed after its issue transaction but before its
-- invitations were recorded (its messages are redelivered, but a job the worker decided to
-- retry and could not republish is gone). Such a record stays QUEUED or ISSUED with nothing
-- in flight for it, and its batch never completes. The relay process runs sweep_stuck every
-- few seconds; it finds records that made no progress (records.updated_at) for p_after
-- seconds, plus the back-off delay of their attempt (p_delays, the configured retry delays:
-- a record waiting in a delay queue is not stuck), and:
--
--   * QUEUED -> PENDING: the fair claim publishes it again (dispatch_note_pending counts it
--     into its batch's key like any record becoming PENDING);
--   * ISSUED: returned, with updated_at touched, for the caller to publish one job each
--     (attempt + 1, as the relay numbers jobs) before it commits; the worker then sends the
--     invitations not yet recorded as sent;
--   * open records (PENDING, QUEUED, stale ISSUED) of a CANCELLED batch -> CANCELLED: the
--     claim and the workers skip them, so nothing else would ever close them.
--
-- A record that was not really lost (a very slow worker) gets a second job; the worker's
-- per-record guards make that safe (one credential per record, *_sent_at per medium).
-- Rows are taken FOR UPDATE SKIP LOCKED, at most p_limit per pass: the sweeper never waits for
-- a relay or a worker and never holds many locks.
CREATE OR REPLACE FUNCTION sweep_stuck(p_after double precision, p_delays double precision[],
                                       p_limit integer)
RETURNS TABLE (tenant_id uuid, batch_id uuid, record_id uuid, attempt integer,
               traceparent text, action text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_limit integer := greatest(coalesce(p_limit, 0), 0);
  v_delays double precision[] := coalesce(p_delays, '{}');
  v_n integer := cardinality(coalesce(p_delays, '{}'));
BEGIN
  IF v_limit = 0 THEN
    RETURN;
  END IF;
  -- Oldest first along records_stuck_idx; the delay of attempt k is p_delays[min(k, n)].
  RETURN QUERY
  WITH stale AS (
    SELECT r.tenant_id, r.id, r.state, b.state AS batch_state
    FROM public.records r
    JOIN public.batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
    WHERE r.state IN ('QUEUED', 'ISSUED')
      AND r.updated_at < clock_timestamp() - make_interval(secs => p_after
            + CASE WHEN r.attempt >= 1 AND v_n > 0 THEN v_delays[least(r.attempt, v_n)]
                   ELSE 0 END)
    ORDER BY r.updated_at
    LIMIT v_limit
    FOR UPDATE OF r SKIP LOCKED
  ), moved AS (
    UPDATE public.records r
    SET state = CASE WHEN s.batch_state = 'CANCELLED' THEN 'CANCELLED'
                     WHEN r.state = 'QUEUED' THEN 'PENDING'
                     ELSE r.state END,
        queued_at = CASE WHEN r.state = 'QUEUED' THEN NULL ELSE r.queued_at END,
        updated_at = now()
    FROM stale s
    WHERE r.tenant_id = s.tenant_id AND r.id = s.id
    RETURNING r.tenant_id, r.batch_id, r.id, r.attempt, s.state AS was, r.state AS now_state
  )
  SELECT m.tenant_id, m.batch_id, m.id, m.attempt, b.traceparent,
         CASE WHEN m.now_state = 'CANCELLED' THEN 'cancelled'
              WHEN m.was = 'QUEUED' THEN 'requeued'
              ELSE 'republish' END
  FROM moved m
  JOIN public.batches b ON b.tenant_id = m.tenant_id AND b.id = m.batch_id;

  -- PENDING records of batches cancelled in the last day: the claim skips them for good.
  RETURN QUERY
  WITH open AS (
    SELECT r.tenant_id, r.id
    FROM public.batches b
    JOIN public.records r ON r.tenant_id = b.tenant_id AND r.batch_id = b.id
    WHERE b.cancelled_at > now() - interval '1 day' AND r.state = 'PENDING'
      AND r.updated_at < clock_timestamp() - make_interval(secs => p_after)
    LIMIT v_limit
    FOR UPDATE OF r SKIP LOCKED
  )
  UPDATE public.records r SET state = 'CANCELLED', updated_at = now()
  FROM open o
  WHERE r.tenant_id = o.tenant_id AND r.id = o.id
  RETURNING r.tenant_id, r.batch_id, r.id, r.attempt, NULL::text, 'cancelled'::text;
END
$$;
COMMENT ON FUNCTION sweep_stuck(double precision, double precision[], integer) IS
  'Sweeper (relay process): up to p_limit records QUEUED or ISSUED with no change for p_after '
  's plus their attempt''s retry delay (p_delays), locked SKIP LOCKED: QUEUED ones become '
  'PENDING (action requeued), ISSUED ones are returned to be published again (republish, '
  'updated_at touched), those of CANCELLED batches, and PENDING ones of batches cancelled in '
  'the last day, become CANCELLED (cancelled). Publish the republish rows, then commit.';
REVOKE ALL ON FUNCTION sweep_stuck(double precision, double precision[], integer) FROM PUBLIC;
SELECT grant_relay('EXECUTE',
                   'FUNCTION sweep_stuck(double precision, double precision[], integer)');
