"""Prometheus metrics: what was sent and how the relay answered, HTTP traffic, message counts
read from the database at scrape time, and the circuit breaker's state.

Everything lives in ``REGISTRY``, ours rather than prometheus_client's global default, so
that nothing imported by accident shows up in a scrape. Counters and histograms are kept per
process; the message gauges come from the database and so are the same from any process.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from postroom.db.engine import Database
from postroom.db.tables import MESSAGE_STATUSES, breakers, campaigns
from postroom.transports.base import Accepted, Outcome, Transient

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()

#: From a millisecond (a local capture) to the SMTP timeout's neighbourhood.
SEND_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Finer around the API's 20 ms p99 target.
HTTP_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

#: Campaigns whose messages still wait to be sent (spelled as campaigns.states spells them).
ACTIVE_CAMPAIGN_STATUSES = ("processing", "held", "scheduled", "sending", "paused")
#: The message statuses that make up the queue.
QUEUE_STATUSES = ("queued", "deferred", "sending")

#: The breakers' states (as the breakers table spells them) as gauge values.
BREAKER_STATES = {"closed": 0.0, "half_open": 0.5, "open": 1.0}

sends_total = Counter(
    "postroom_sends_total",
    "Delivery attempts by outcome: accepted, transient or permanent.",
    ["transport", "outcome"],
    registry=REGISTRY,
)
relay_replies_total = Counter(
    "postroom_relay_replies_total",
    "Delivery attempts by the relay's (or provider's) reply code; none when there was none.",
    ["transport", "code"],
    registry=REGISTRY,
)
send_seconds = Histogram(
    "postroom_send_seconds",
    "Time per message on the wire: a batch's send time divided by its size.",
    ["transport"],
    buckets=SEND_BUCKETS_SECONDS,
    registry=REGISTRY,
)
retries_total = Counter(
    "postroom_retries_total",
    "Transient outcomes: messages put back in the queue to be tried again.",
    ["transport"],
    registry=REGISTRY,
)
ingested_rows_total = Counter(
    "postroom_ingested_rows_total",
    "Recipient-file rows this process read and recorded: as messages, or as invalid or "
    "duplicate rows in the file report.",
    registry=REGISTRY,
)
http_requests_total = Counter(
    "postroom_http_requests_total",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
http_request_seconds = Histogram(
    "postroom_http_request_seconds",
    "HTTP request time, from the request to the end of the response.",
    ["method", "route", "status"],
    buckets=HTTP_BUCKETS_SECONDS,
    registry=REGISTRY,
)
_REPLY_CODE = re.compile(r"\d{3}")


def reply_code(outcome: Outcome) -> str:
    """The three-digit reply code an outcome carries, or ``none``."""
    if isinstance(outcome, Accepted):
        found = _REPLY_CODE.match(outcome.reply)
        return found.group() if found else "none"
    # Only real reply codes become label values: anything else would be an unbounded label.
    if outcome.code is not None and 100 <= outcome.code <= 999:
        return str(outcome.code)
    return "none"


def outcome_name(outcome: Outcome) -> str:
    if isinstance(outcome, Accepted):
        return "accepted"
    return "transient" if isinstance(outcome, Transient) else "permanent"


def record_sends(transport: str, outcomes: Sequence[Outcome], seconds: float) -> None:
    """Count one batch's outcomes and reply codes, and its time per message. Every transient
    outcome counts as a retry: the sender puts each one back in the queue."""
    if not outcomes:
        return
    for (outcome, code), times in Tally(
        (outcome_name(outcome), reply_code(outcome)) for outcome in outcomes
    ).items():
        sends_total.labels(transport, outcome).inc(times)
        relay_replies_total.labels(transport, code).inc(times)
        if outcome == "transient":
            retries_total.labels(transport).inc(times)
    per_message = send_seconds.labels(transport)
    for _ in outcomes:
        per_message.observe(seconds / len(outcomes))


class HttpRequestMetrics:
    """Records HTTP requests; keeps each label set's child so a request costs no lookup in
    prometheus_client's lock-guarded label table."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], Counter] = {}
        self._times: dict[tuple[str, str, int], Histogram] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        count = self._counts.get((method, route, status))
        if count is None:
            count = http_requests_total.labels(method, route, str(status))
            self._counts[(method, route, status)] = count
        count.inc()
        time = self._times.get((method, route, status))
        if time is None:
            time = http_request_seconds.labels(method, route, str(status))
            self._times[(method, route, status)] = time
        time.observe(seconds)


http_requests = HttpRequestMetrics()


class MessageGauges(Collector):
    """``postroom_messages`` and ``postroom_queue_depth``, read at scrape time from the
    per-campaign counts (one aggregate over the campaigns table; no message row is read),
    and ``postroom_breaker_open`` from the breakers every worker shares."""

    def __init__(self, db: Database, transport: str, breaker: str | None = None) -> None:
        self.db = db
        self.transport = transport
        self.breaker = breaker  # the configured transport's breaker, listed even if never used

    def collect(self) -> Iterator[Metric]:
        try:
            totals, active = self._read_counts()
            breaker_states = self._read_breakers()
        except SQLAlchemyError as exc:
            # A scrape still shows the process's own metrics; the gauges are missing, not 0.
            log.warning("metrics: cannot read message counts: %s", exc)
            return
        messages = GaugeMetricFamily(
            "postroom_messages",
            "Messages by status, over all campaigns.",
            labels=["status", "transport"],
        )
        for status in MESSAGE_STATUSES:
            messages.add_metric([status, self.transport], totals[status])
        yield messages
        queue = GaugeMetricFamily(
            "postroom_queue_depth",
            "Messages waiting to be sent (queued) or on the wire (sending), of campaigns that "
            "are processing, scheduled or sending.",
            labels=["status"],
        )
        for status in QUEUE_STATUSES:
            queue.add_metric([status], active[status])
        yield queue
        breaker_open = GaugeMetricFamily(
            "postroom_breaker_open",
            "The circuit breaker of a transport: 0 closed, 0.5 half-open (probing), 1 open.",
            labels=["transport"],
        )
        if self.breaker is not None:
            breaker_states.setdefault(self.breaker, "closed")  # never failed: closed
        for transport, state in sorted(breaker_states.items()):
            breaker_open.add_metric([transport], BREAKER_STATES.get(state, 1.0))
        yield breaker_open

    def _read_breakers(self) -> dict[str, str]:
        with self.db.read_latest() as conn:
            return dict(conn.execute(select(breakers.c.transport, breakers.c.state)).all())

    def _read_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        # Grouped by campaign status: a handful of rows, whatever the number of campaigns.
        query = select(
            campaigns.c.status,
            *(func.sum(campaigns.c[f"{status}_count"]) for status in MESSAGE_STATUSES),
        ).group_by(campaigns.c.status)
        totals = dict.fromkeys(MESSAGE_STATUSES, 0)
        active = dict.fromkeys(MESSAGE_STATUSES, 0)
        with self.db.read_latest() as conn:
            for campaign_status, *counts in conn.execute(query):
                for status, count in zip(MESSAGE_STATUSES, counts, strict=True):
                    totals[status] += count or 0
                    if campaign_status in ACTIVE_CAMPAIGN_STATUSES:
                        active[status] += count or 0
        return totals, active


#: What ``/healthz`` on the metrics port answers: an HTTP status and a JSON body.
HealthAnswer = tuple[int, dict[str, Any]]


def serve_metrics(
    port: int, host: str = "127.0.0.1", *, health: Callable[[], HealthAnswer] | None = None
) -> WSGIServer:
    """Serve ``REGISTRY`` on ``host:port`` from a daemon thread, and ``health``'s answer on
    ``/healthz`` when given (a worker's liveness); ``shutdown()`` stops it."""
    metrics_app = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if health is None or environ.get("PATH_INFO") != "/healthz":
            return metrics_app(environ, start_response)
        status, body = health()
        payload = json.dumps(body).encode()
        start_response(
            f"{status} {HTTPStatus(status).phrase}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port)[0][0]

    server = make_server(host, port, app, Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(WSGIRequestHandler):
    """No access line per scrape or probe on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


#: The media type of ``exposition``'s output: text format 0.0.4, which every Prometheus reads
#: (the names here need none of 1.0.0's UTF-8).
EXPOSITION_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def exposition(gauges: MessageGauges | None = None) -> bytes:
    """This process's metrics, and the message gauges when given, in Prometheus text format."""
    if gauges is None:
        return generate_latest(REGISTRY)
    return generate_latest(REGISTRY) + generate_latest(gauges)
