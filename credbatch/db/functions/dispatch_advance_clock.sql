-- Fair dispatch, at the end of a claim (outbox_claim composes the steps): the clock, where a
-- tenant that becomes active (or comes back from being held back) starts.
--
-- It moves up to the least virtual time of the tenants still competing (those the claim
-- skipped, held back or done, excluded), so a tenant that becomes active starts level with
-- them, banking no credit for the time it was idle or held back. When the claim skipped every
-- tenant, it moves up to where the claim last served: a tenant served alone while the others
-- were held back would otherwise leave the clock behind, and the others would come back with
-- credit for the time they sat out. It never moves back. A relay that finds the clock locked
-- by another leaves it to that one rather than wait.
--
-- It runs only inside outbox_claim, as that function's owner and under its search_path and
-- planner settings; it has no SET clause of its own, which every call would pay for, and
-- names every table with its schema.
--
-- It returns whether it moved the clock, so that the claim calls it as an expression
-- (x := step(...)) rather than as a query of its own (PERFORM).
DROP FUNCTION IF EXISTS dispatch_advance_clock(double precision, uuid[], double precision);
CREATE OR REPLACE FUNCTION dispatch_advance_clock(p_clock double precision, p_skip uuid[],
                                                  p_served_at double precision)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_min double precision;
BEGIN
  SELECT min(d.vtime) INTO v_min FROM public.dispatch_tenants d
  WHERE d.tenant_id <> ALL (p_skip);
  v_min := coalesce(v_min, p_served_at);
  IF v_min > p_clock THEN
    PERFORM 1 FROM public.dispatch_clock c FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
      UPDATE public.dispatch_clock c SET tenant_clock = greatest(c.tenant_clock, v_min);
      RETURN true;
    END IF;
  END IF;
  RETURN false;
END
$$;
COMMENT ON FUNCTION dispatch_advance_clock(double precision, uuid[], double precision) IS
  'Fair dispatch, a step of outbox_claim: moves the clock (p_clock when the claim began) up to '
  'the least virtual time of the tenants outside p_skip, or to p_served_at, where the claim '
  'last served, when there is none. Returns whether it moved it (false when it need not, or '
  'another relay holds it).';
REVOKE ALL ON FUNCTION dispatch_advance_clock(double precision, uuid[], double precision)
  FROM PUBLIC;
