"""The Prometheus metrics every layer reports to (the writer, runs, doors,
admission), served by `GET /metrics`; docs/deploy.md lists them.

Each worker process has its own registry and is scraped on its own port
(Prometheus' `instance` label tells them apart; sum across instances). The
event path is hot: labelled children are looked up once, not per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from streaming.stored import StoredEvent

disable_created_metrics()  # no `_created` series beside every counter: nobody graphs them

SSE = "sse"
WS = "ws"
TRANSPORTS = (SSE, WS)
OUTCOMES = ("completed", "failed", "cancelled")
REJECTIONS = ("too_many_runs", "rate_limited", "overloaded")

STREAMS_OPEN = Gauge(
    "valuecell_streams_open",
    "Clients following a conversation now: SSE responses, WebSocket deliveries (subscriptions and queries).",
    ["transport"],
)
WEBSOCKETS_OPEN = Gauge("valuecell_websockets_open", "Open WebSocket connections.")
RUNS_ACTIVE = Gauge("valuecell_runs_active", "Runs in progress on this worker (a run waiting for an answer included).")
RUNS_TOTAL = Counter("valuecell_runs_total", "Runs that ended, by agent and outcome.", ["agent", "outcome"])
EVENTS_TOTAL = Counter("valuecell_events_total", "Events stored, by event name.", ["event"])
WRITER_BACKLOG = Gauge("valuecell_event_writer_backlog", "Events handed to the event writer and not yet stored.")
STORE_BATCH_SECONDS = Histogram(
    "valuecell_event_store_batch_seconds",
    "Time to store one batch of events (one transaction).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EMIT_TO_PUBLISH_SECONDS = Histogram(
    "valuecell_event_emit_to_publish_seconds",
    "From a batch's oldest event being emitted to the batch being stored and published.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RESUMES_TOTAL = Counter(
    "valuecell_resumes_total",
    "Follows a client started from a point it gave: SSE GET /conversations/<id>/stream, WebSocket subscribe.",
    ["transport"],
)
REJECTED_TOTAL = Counter("valuecell_rejected_total", "New runs refused by admission control.", ["reason"])

# Every series a dashboard expects exists from the start (at 0).
_streams = {transport: STREAMS_OPEN.labels(transport=transport) for transport in TRANSPORTS}
_resumes = {transport: RESUMES_TOTAL.labels(transport=transport) for transport in TRANSPORTS}
_rejected = {reason: REJECTED_TOTAL.labels(reason=reason) for reason in REJECTIONS}
_events: dict[str, Counter] = {}


def stream_opened(transport: str) -> None:
    _streams[transport].inc()


def stream_closed(transport: str) -> None:
    _streams[transport].dec()


def resumed(transport: str) -> None:
    _resumes[transport].inc()


def rejected(reason: str) -> None:
    _rejected[reason].inc()


def run_started() -> None:
    RUNS_ACTIVE.inc()


def run_ended(agent: str, outcome: str, *, was_active: bool = True) -> None:
    """A run ended; `was_active=False` for one this worker did not start (the reaper's)."""
    if was_active:
        RUNS_ACTIVE.dec()
    RUNS_TOTAL.labels(agent=agent, outcome=outcome).inc()


def batch_written(batch: Sequence[StoredEvent], store_seconds: float) -> None:
    """One stored and published batch: its events by name, its store time, its oldest event's wait."""
    if not batch:
        return
    STORE_BATCH_SECONDS.observe(store_seconds)
    EMIT_TO_PUBLISH_SECONDS.observe(max(0.0, (datetime.now(UTC) - batch[0].created_at).total_seconds()))
    counts: dict[str, int] = {}
    for stored in batch:
        counts[stored.event] = counts.get(stored.event, 0) + 1
    for event, count in counts.items():
        child = _events.get(event)
        if child is None:
            child = _events[event] = EVENTS_TOTAL.labels(event=event)
        child.inc(count)


def backlog(events: int) -> None:
    WRITER_BACKLOG.set(events)
