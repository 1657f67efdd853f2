"""Delivery of the ``status_url`` callbacks: signed, in the background, retried. Shell.

Each callback is a ``POST`` of JSON (``core.outcomes.outcome_payload``) signed with the Standard
Webhooks scheme under ``CALLBACK_SECRET`` (headers ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``: ``v1,`` + base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``; the
``standardwebhooks`` package's ``Webhook.verify`` checks it on the receiving side).

Delivery never blocks a call: :meth:`CallbackSender.send` starts a task and returns. One
call's callbacks go out in order (each waits for the previous one of its call). An attempt that
fails (no connection, no answer within the timeout, a 429 or 5xx) is retried
:data:`RETRIES` times with exponential backoff (``backoff_s``, then twice that...), each
retry with the same ``webhook-id`` and a fresh timestamp and signature; any other answer
outside 2xx is final. The ``webhook-id`` is :func:`message_id`: the same for the same call and
outcome on every instance, so when a carrier's retried webhook makes two instances report
one outcome, a receiver that deduplicates on it (as the specification asks) sees it once. A
callback that is given up is logged (WARNING, in the call's log context, the URL's host only).
:meth:`CallbackSender.close` cancels what is still pending (shutdown).

Sources: Standard Webhooks specification
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md),
the ``standardwebhooks`` Python package (https://pypi.org/project/standardwebhooks/).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from standardwebhooks import Webhook

from .logs import call_context

log = logging.getLogger(__name__)

RETRIES = 3
"""Retries after the first attempt."""
BACKOFF_S = 1.0
"""Wait before the first retry, s; doubled before each next one."""
TIMEOUT_S = 10.0
"""Bound on one attempt, connect to last byte, s."""


def message_id(call_uuid: str, status: str) -> str:
    """The ``webhook-id`` of one outcome of one call: ``msg_`` + 32 hex characters of the
    SHA-256 of both (the call id itself is not shown).

    The specification: the id "will be the same when the same webhook is being resent", which
    a second report of the same outcome is (each outcome is reported once per call).
    """
    digest = hashlib.sha256(f"{call_uuid}\x00{status}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def signed_headers(webhook: Webhook, msg_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of ``body`` sent at ``at`` (aware), plus the JSON
    content type."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": webhook.sign(msg_id, at, body),
    }


class CallbackSender:
    """Sends the callbacks of one app.

    Args:
        http: the app's shared client session.
        secret: ``CALLBACK_SECRET`` (``whsec_`` + base64).
        retries: see :data:`RETRIES`.
        backoff_s: see :data:`BACKOFF_S`.
        timeout_s: see :data:`TIMEOUT_S`.
        clock: the wall clock (aware UTC ``datetime``), for the signature's timestamp.

    Attributes:
        delivered: how many callbacks were answered 2xx (for the tests and the log).
        given_up: how many were not.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        secret: str,
        *,
        retries: int = RETRIES,
        backoff_s: float = BACKOFF_S,
        timeout_s: float = TIMEOUT_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._http = http
        self._webhook = Webhook(secret)
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._tasks: set[asyncio.Task[bool]] = set()
        self.delivered = 0
        self.given_up = 0

    def send(
        self,
        call_uuid: str,
        url: str,
        payload: dict[str, Any],
        *,
        after: asyncio.Task[bool] | None = None,
    ) -> asyncio.Task[bool]:
        """Start delivering ``payload`` to ``url`` in the background, after ``after`` (the
        call's previous callback) has finished; the task's result says whether it was
        delivered. Never raises."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        task = asyncio.get_running_loop().create_task(
            self._deliver(call_uuid, url, body, str(payload.get("status")), after),
            name=f"callback-{call_uuid[:64]}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def pending(self) -> int:
        """Callbacks not finished yet."""
        return len(self._tasks)

    async def close(self) -> None:
        """Shutdown: cancel every pending callback and wait for them to stop."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _deliver(
        self, call_uuid: str, url: str, body: str, status: str, after: asyncio.Task[bool] | None
    ) -> bool:
        if after is not None and not after.done():
            await asyncio.wait({after})
        msg_id = message_id(call_uuid, status)
        host = urlsplit(url).hostname or "?"
        problem = ""
        with call_context(call_uuid[:64]):
            for attempt in range(self.retries + 1):
                if attempt:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
                retry, problem = await self._attempt(url, msg_id, body)
                if not problem:
                    self.delivered += 1
                    log.info("callback %s delivered to %s", status, host)
                    return True
                if not retry:
                    break
            self.given_up += 1
            log.warning(
                "callback %s to %s given up after %d attempt(s): %s",
                status,
                host,
                attempt + 1,
                problem,
            )
            return False

    async def _attempt(self, url: str, msg_id: str, body: str) -> tuple[bool, str]:
        """One POST: ``(retry?, problem)``; problem ``""`` on a 2xx answer."""
        headers = signed_headers(self._webhook, msg_id, self._clock(), body)
        try:
            async with self._http.post(
                url,
                data=body.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                await resp.read()
        except TimeoutError:
            return True, f"no answer within {self.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            return True, f"unreachable ({type(exc).__name__})"
        if 200 <= status < 300:
            return False, ""
        return status == 429 or status >= 500, f"HTTP {status}"
