-- The expiry sweep: an invited holder who never claimed before the claim link ran out is
-- shown as such (EXPIRED), counted, reported and announced (record.expired), instead of
-- staying INVITED for ever. The relay process runs it every few seconds; a pass takes at
-- most p_limit INVITED records whose credential's claim_expires_at has passed, oldest
-- invitation first, FOR UPDATE SKIP LOCKED (a claim, a resend or a revocation holding one is
-- never waited for; the next pass finds it again if it is still INVITED), in one short
-- transaction. ResendInvitations and UpdateRecordContact make an EXPIRED record PENDING again
-- and give it a new link lifetime.
--
-- The walk reads INVITED records in invitation order until it has p_limit expired ones, so a
-- pass that finds none reads every INVITED record's index entry and credential: run it every
-- few seconds, not in a tight loop.
CREATE OR REPLACE FUNCTION sweep_expired(p_limit integer)
RETURNS TABLE (tenant_id uuid, batch_id uuid, record_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  IF coalesce(p_limit, 0) <= 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
  WITH due AS (
    SELECT r.tenant_id, r.id
    FROM public.records r
    JOIN public.credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id
    WHERE r.state = 'INVITED' AND c.claim_expires_at <= clock_timestamp()
    ORDER BY r.invited_at
    LIMIT p_limit
    FOR UPDATE OF r SKIP LOCKED
  )
  UPDATE public.records r
  SET state = 'EXPIRED', expired_at = now(), updated_at = now()
  FROM due d
  WHERE r.tenant_id = d.tenant_id AND r.id = d.id AND r.state = 'INVITED'
  RETURNING r.tenant_id, r.batch_id, r.id;
END
$$;
COMMENT ON FUNCTION sweep_expired(integer) IS
  'Expiry sweep (relay process): up to p_limit INVITED records of any tenant whose claim link '
  'ran out (credentials.claim_expires_at passed), locked SKIP LOCKED, become EXPIRED; returns '
  'them.';
REVOKE ALL ON FUNCTION sweep_expired(integer) FROM PUBLIC;
SELECT grant_relay('EXECUTE', 'FUNCTION sweep_expired(integer)');
