-- Providers' throttles hold a tenant's dispatch back. When the SMS provider answers 429 (or
-- the SMTP relay a "try later" throttle), the worker retries the job after the provider's
-- Retry-After without counting an attempt, and records here until when that channel of the
-- tenant is throttled. Meanwhile the claim dispatches none of the tenant's batches that use
-- the channel: their records wait PENDING in the outbox, where they occupy no broker or
-- worker slot and are not sent to a provider that would only refuse them again. The mark
-- lives on the tenant's dispatch key (dispatch_tenants), so it lasts while the tenant has
-- work to dispatch.
CREATE OR REPLACE FUNCTION dispatch_throttle(p_medium text, p_seconds double precision)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_tenant uuid := public.app_tenant();
  v_until timestamptz;
BEGIN
  IF v_tenant IS NULL THEN
    RAISE EXCEPTION 'dispatch_throttle needs a tenant transaction'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_medium NOT IN ('EMAIL', 'SMS') OR p_seconds IS NULL OR NOT p_seconds > 0 THEN
    RAISE EXCEPTION 'dispatch_throttle: unknown medium or no positive delay'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- At most an hour, as the workers read Retry-After: a mistaken value cannot park a tenant.
  v_until := clock_timestamp() + make_interval(secs => least(p_seconds, 3600));
  -- Only ever extended, so concurrent workers' marks keep the latest.
  IF p_medium = 'EMAIL' THEN
    UPDATE public.dispatch_tenants d
    SET email_throttled_until = greatest(coalesce(d.email_throttled_until, v_until), v_until)
    WHERE d.tenant_id = v_tenant;
  ELSE
    UPDATE public.dispatch_tenants d
    SET sms_throttled_until = greatest(coalesce(d.sms_throttled_until, v_until), v_until)
    WHERE d.tenant_id = v_tenant;
  END IF;
END
$$;
COMMENT ON FUNCTION dispatch_throttle(text, double precision) IS
  'Workers, in a tenant transaction: the provider of p_medium (EMAIL or SMS) throttled the '
  'tenant; its batches using that medium are not dispatched for p_seconds (at most 3600). '
  'A no-op when the tenant has nothing to dispatch.';
REVOKE ALL ON FUNCTION dispatch_throttle(text, double precision) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION dispatch_throttle(text, double precision)');
