"""Webhooks: the final state of an operation POSTed to the URL its bulk request named."""

from __future__ import annotations

import asyncio
import logging

import httpx

from raysearch.errors import InvalidRequest
from raysearch.ingest.validation import check_webhook
from raysearch.ops.operation import Operation
from raysearch.retry import Backoff

log = logging.getLogger("raysearch.webhooks")


def webhook_sender(settings):
    """A Notify (ops/tracker.py): POST the operation's view, retried with backoff on a
    5xx or a network error. The URL is checked again against the current settings (it
    was checked at intake, but an operation resumed from a checkpoint may predate them);
    redirects are not followed."""
    backoff = Backoff(base=settings.backoff_base_s, cap=60.0)

    async def send(op: Operation) -> None:
        try:
            check_webhook(op.webhook, settings.webhook_allowed_hosts)
        except InvalidRequest as exc:
            log.warning("webhook of %s not sent: %s", op.operation_id, exc.reason)
            return
        body = op.view()
        async with httpx.AsyncClient(timeout=10, follow_redirects=False, trust_env=False) as client:
            for attempt in range(settings.webhook_attempts):
                try:
                    r = await client.post(op.webhook, json=body)
                    if r.status_code < 500:
                        return
                except httpx.HTTPError as exc:
                    log.warning("webhook %s failed: %s", op.webhook, exc)
                await asyncio.sleep(backoff.delay(attempt))

    return send
