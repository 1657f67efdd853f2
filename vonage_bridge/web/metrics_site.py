"""``GET /metrics`` (Prometheus text format) on a port of its own, ``METRICS_PORT``: a small
aiohttp site beside the service, started and stopped by the app's ``cleanup_ctx``
(:func:`metrics_site`), so the figures stay off the public service (Fly.io scrapes the
port named in ``fly.toml``'s ``[metrics]``). ``METRICS_PORT=0`` serves nothing.

Sources: Prometheus exposition formats
(https://prometheus.io/docs/instrumenting/exposition_formats/), the Python client's
``generate_latest`` (https://prometheus.github.io/client_python/exporting/http/),
Fly.io custom metrics (https://fly.io/docs/monitoring/metrics/#custom-metrics).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..errors import ConfigError
from ..metrics import METRICS
from .keys import SETTINGS

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
METRICS_RUNNER = web.AppKey("metrics_runner", web.AppRunner)
"""The metrics site's runner, present while ``/metrics`` is served (``METRICS_PORT`` not 0)."""


def metrics_app(registry: CollectorRegistry) -> web.Application:
    """The metrics site: ``GET /metrics`` answers ``registry`` in the Prometheus text format
    (prometheus-client's ``CONTENT_TYPE_LATEST``: ``text/plain; version=1.0.0;
    charset=utf-8`` in current releases, ``version=0.0.4`` in older ones); nothing else is
    served (404)."""

    async def scrape(request: web.Request) -> web.Response:
        """``GET /metrics``: 200 with every metric of ``registry``, text format."""
        # A few ms of the loop's time per scrape (every 15 s or so); a thread would not
        # help: the library's text rendering holds the GIL.
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get(METRICS_PATH, scrape)
    return app


async def metrics_site(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: serve :data:`~..metrics.METRICS` on ``METRICS_HOST`` (default
    ``HOST``):``METRICS_PORT`` while the app runs (one INFO line saying where, or that it is
    off).

    Raises:
        ConfigError: the port cannot be bound (in use, privileged, an address not of this
            machine): one line naming ``METRICS_PORT`` and the host's variable.
    """
    settings = app[SETTINGS]
    port = settings.metrics.port
    if not settings.metrics.enabled:
        log.info("metrics off (METRICS_PORT=0)")
        yield
        return
    host = settings.metrics.host or settings.server.host
    host_var = "METRICS_HOST" if settings.metrics.host else "HOST"
    runner = web.AppRunner(metrics_app(METRICS.registry), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else " ".join(str(exc).split())
        raise ConfigError(
            [f"METRICS_PORT={port}: cannot serve metrics on {host_var}={host!r}: {reason}"]
        ) from exc
    app[METRICS_RUNNER] = runner
    log.info("metrics on http://%s:%d%s (METRICS_PORT)", host, port, METRICS_PATH)
    try:
        yield
    finally:
        await runner.cleanup()
