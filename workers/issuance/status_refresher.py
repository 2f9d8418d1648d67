"""Keeps the stored status list tokens fresh, in every issuance worker process.

Each pass signs the tokens that are due (new lists, changed bits, or half their life gone);
workers share the rows through ``FOR UPDATE SKIP LOCKED`` (``credbatch.signing.status_tokens``).
A failed pass, e.g. while the database is unreachable, is logged and tried again on the next
tick: the tokens served meanwhile are still valid for up to their ``ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from credbatch.signing.status_tokens import StatusTokenSigner

log = logging.getLogger(__name__)

PAGE = 100


async def run_status_refresher(
    signer: StatusTokenSigner, refresher_pool: asyncpg.Pool, stop: asyncio.Event, interval: float
) -> None:
    """Refresh due tokens every ``interval`` seconds until ``stop`` is set; the due ones are
    found on ``refresher_pool`` (the refresher's role)."""
    while not stop.is_set():
        try:
            # A full page of which this worker signed some means more may be due: go on at
            # once. A page it signed none of is being signed by other workers: wait.
            done = await signer.refresh_due(refresher_pool, PAGE)
            while done.found == PAGE and done.signed and not stop.is_set():
                done = await signer.refresh_due(refresher_pool, PAGE)
        except Exception:
            log.exception("status list refresh failed; trying again in %.1fs", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
