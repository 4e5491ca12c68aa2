"""The HTTP side of telemetry: a request id for every request (X-Request-Id), its metric sample and log line,
and GET /metrics in Prometheus' text format, on the API's port for operators' tokens or, by config, on a
port of its own without one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

import redis
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from sanic import Blueprint, Sanic
from sanic.constants import HTTP_METHODS
from sanic.response import HTTPResponse

import config
import telemetry
from actors import broker, queues

logger = logging.getLogger("sector.http")


HEADER = "X-Request-Id"

#: The route label of requests no route matched (any path: labels must stay few).
UNMATCHED = "unmatched"

_METHODS = frozenset(str(method) for method in HTTP_METHODS)

def install(app: Sanic, settings: config.Settings) -> None:
    """The request-id middleware, the /metrics route, and the metrics port when `[metrics] port` is set."""
    log_requests = settings.http.access_log
    series: dict[tuple[str, str, int], object] = {}  # (method, route, status) -> its histogram (labels() costs)

    # First of the request middleware and last of the response middleware (Sanic: the highest priority).
    @app.on_request(priority=1000)
    async def begin(request):
        request.ctx.started = time.perf_counter()
        request.ctx.request_id = telemetry.request_id_from(request.headers.get(HEADER))
        telemetry.request_id.set(request.ctx.request_id)

    @app.on_response(priority=1000)
    async def end(request, response):
        rid = getattr(request.ctx, "request_id", None) or telemetry.request_id_from(None)
        response.headers[HEADER] = rid
        started = getattr(request.ctx, "started", None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        method = request.method if request.method in _METHODS else "other"
        route = request.route.uri if request.route is not None else UNMATCHED
        key = (method, route, response.status)
        histogram = series.get(key)
        if histogram is None:
            histogram = series[key] = telemetry.HTTP_DURATION.labels(method, route, str(response.status))
        histogram.observe(seconds)
        if log_requests:
            # The route, never the path: paths carry signed links' secrets (email verification, say).
            logger.info("%s %s answered %d in %.1f ms (request %s).", method, route, response.status, seconds * 1000,
                        rid, extra={"method": method, "route": route, "status": response.status,
                                    "duration_ms": round(seconds * 1000, 2), "request_id": rid})

    if settings.metrics.port:
        @app.main_process_start
        async def serve_metrics(app):
            serve_separately(settings.metrics.host, settings.metrics.port)

    # Guarded as the ops API is (imported here: the RosettaChat document imports this module for its
    # X-Request-Id header, and the guard imports the RosettaChat package).
    from handlers.ops.api import operator

    bp = Blueprint("ops_metrics")
    bp.add_route(operator(metrics), "/metrics", methods=["GET"], name="metrics")
    app.blueprint(bp)


async def metrics(request):
    """Every process's metrics and the queues' state, for an operator (as the ops API: an `ops` token)."""
    body = await asyncio.get_running_loop().run_in_executor(None, exposition)
    return HTTPResponse(body, content_type=CONTENT_TYPE_LATEST)


def exposition() -> bytes:
    """The text of a scrape: every process's counts added up, and the queues read now (blocking: a thread)."""
    return generate_latest(_scraped())


@functools.cache
def _scraped() -> CollectorRegistry:
    registry = telemetry.registry()
    registry.register(QueueCollector(broker.client, broker.namespace))
    return registry


def serve_separately(host: str, port: int) -> None:
    """GET /metrics without a token on host:port, from a thread of this process (Sanic's main process)."""
    try:
        start_http_server(port, addr=host, registry=_scraped())
    except OSError as e:
        raise RuntimeError(f"Cannot serve metrics on {host}:{port} ([metrics] host and port): {e}") from None
    logger.info("Serving metrics on http://%s:%d/metrics.", host, port)


class QueueCollector:
    """The state of every queue, read from Redis at each scrape (actors/queues.py)."""

    def __init__(self, client: redis.Redis, namespace: str):
        self.client, self.namespace = client, namespace

    def collect(self):
        up = GaugeMetricFamily("sector_queues_up", "Whether the queues' state could be read from Redis just now.")
        try:
            states = queues.snapshot(self.client, self.namespace)
        except redis.RedisError as e:
            logger.warning("Could not read the queues for a scrape: %s", e)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, text, value in (
                ("sector_queue_depth", "Messages waiting in the queue.", lambda s: s.depth),
                ("sector_queue_delayed", "Messages in the queue's delay queue (retries, delayed sends).",
                 lambda s: s.delayed),
                ("sector_queue_dead", "Dead-lettered messages of the queue.", lambda s: s.dead),
                ("sector_queue_oldest_age_seconds", "How long the oldest waiting message has waited (0: none).",
                 lambda s: s.oldest_age_s or 0.0)):
            family = GaugeMetricFamily(name, text, labels=["queue"])
            for state in states:
                family.add_metric([state.name], value(state))
            yield family


# The OpenAPI documents.

REQUEST_ID = {
    "description": "The request's id: the client's own `X-Request-Id` when it is at most 128 of `A-Z a-z 0-9 . _ -`, "
                   "else one made for it. The server's log lines of the request, and of the jobs it caused, name it.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"},
}


def with_request_id_header(document: dict) -> dict:
    """`document` (an OpenAPI 3 document) with X-Request-Id among the headers of every response."""
    components = document.setdefault("components", {})
    components["headers"] = {**components.get("headers", {}), HEADER: REQUEST_ID}
    responses = list(components.get("responses", {}).values())
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                responses += operation["responses"].values()
    ref = {"$ref": f"#/components/headers/{HEADER}"}
    for response in responses:
        if "$ref" not in response:  # a reference to a component response, which has it already
            response["headers"] = {**response.get("headers", {}), HEADER: ref}
    return document
