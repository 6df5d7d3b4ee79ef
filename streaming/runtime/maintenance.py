"""Per-worker background duties: ending runs of crashed workers, clean shutdown.

`with_maintenance(app)` wraps the ASGI application so the first connection a
worker serves starts its reaper (and, under Daphne, a shutdown hook). The
reaper claims conversations whose run lease expired (their worker died), fails
their unfinished tasks with `task_failed` and `done`, and frees them for input.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.utils import timezone

from conversations import services
from conversations.models import Task
from conversations.selectors import last_thread_id, task_event_count, unfinished_tasks
from streaming import logs
from streaming.errors import ErrorCode, ServiceError
from streaming.eventlog.backend import event_store
from streaming.eventlog.numbering import ConversationLog
from streaming.factory import ResponseFactory, TaskContext
from streaming.runtime import observe
from streaming.runtime.idempotent import purge_expired_keys
from streaming.runtime.orchestrator import orchestrator
from streaming.runtime.overload import watch_backlog
from streaming.runtime.worker import WORKER_ID, new_holder
from streaming.states import ConversationStatus, TaskStatus

log = logging.getLogger(__name__)

_started: set[asyncio.AbstractEventLoop] = set()
_duties: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones


async def reap_once() -> list[str]:
    """End every run whose lease expired; return the conversations taken over."""
    reaped = []
    for conversation_id in await services.expired_runs():
        holder = new_holder()
        if not await services.take_over(conversation_id, holder):
            continue  # another worker got it first, or it was renewed
        log.warning("the run lease of %s expired; %s takes it over", conversation_id, WORKER_ID)
        token = logs.current_conversation.set(conversation_id)
        try:
            await _fail_abandoned_run(conversation_id, holder)
        except Exception:
            await services.release(conversation_id, holder)
            raise
        finally:
            logs.current_conversation.reset(token)
        reaped.append(conversation_id)
    return reaped


async def _fail_abandoned_run(conversation_id: str, holder: str) -> None:
    message = "The worker running this task stopped responding; the task was ended."
    factory = ResponseFactory(conversation_id)
    eventlog = ConversationLog(conversation_id, await event_store().last_seq(conversation_id), holder=holder)
    thread_id = await last_thread_id(conversation_id)
    tasks = await unfinished_tasks(conversation_id)
    if tasks:
        for task in tasks:
            ctx = TaskContext(conversation_id, thread_id or task.thread_id, task.id, task.agent_name)
            await services.set_task_status(task.id, TaskStatus.FAILED, message)
            await eventlog.emit(factory.task_failed(ctx, message))
    else:
        await eventlog.emit(factory.system_failed(thread_id, message))
    await eventlog.emit(factory.done(thread_id), then_status=ConversationStatus.IDLE)
    await eventlog.flush()
    for task in tasks:
        await _report_reaped(conversation_id, task)
    log.warning("ended the abandoned run of %s", conversation_id)


async def _report_reaped(conversation_id: str, task: Task) -> None:
    events = await task_event_count(conversation_id, task.id)
    began = task.started_at or task.created_at
    duration_ms = round((timezone.now() - began).total_seconds() * 1000) if began else None
    observe.run_reaped(conversation_id, task.id, task.agent_name, events, duration_ms)


async def _reaper() -> None:
    failing = False
    while True:
        try:
            if failing:
                await services.expired_runs(limit=1)  # is the database back?
                failing = False
                log.info("the reaper reaches the database again; it reaps after one lease")
                # While the database was down no run could renew its lease, so
                # every lease may look expired: give live runs, on any worker,
                # one whole lease to renew theirs before judging any.
                await asyncio.sleep(settings.VALUECELL_RUN_LEASE_SECONDS)
            await reap_once()
        except ServiceError as error:
            if error.code != ErrorCode.DATABASE_UNAVAILABLE:
                log.exception("the reaper failed; trying again later")
            elif not failing:
                log.warning("the reaper cannot reach the database; trying again every %gs", _interval())
            failing = True
        except Exception:
            log.exception("the reaper failed; trying again later")
            failing = True
        await asyncio.sleep(_interval())


def _interval() -> float:
    return settings.VALUECELL_REAPER_INTERVAL_SECONDS


async def _watch_loop_lag(interval: float = 0.25, warn_after: float = 0.5) -> None:
    """Warn when the event loop was blocked: every stream on this worker stalled with it."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        lag = loop.time() - started - interval
        if lag > warn_after:
            log.warning("event loop lag %.3fs: something blocked this worker's loop", lag)


async def _keep_layer_listening() -> None:
    """channels_redis' pub/sub receiver sleeps 100 ms between looks while its
    worker has no subscription, so on an idle worker the first event of a new
    stream waited up to 100 ms. A channel of the worker's own keeps it
    subscribed, and so listening (nothing is sent to it)."""
    layer = get_channel_layer()
    if not isinstance(layer, RedisPubSubChannelLayer):
        return
    try:
        await layer.new_channel("worker.")
    except Exception:
        log.warning("could not subscribe the worker's own channel; first events may wait up to 100 ms")


def _install_shutdown_hook() -> None:
    """Under Daphne (Twisted), give runs a bounded time to finish on SIGTERM."""
    try:
        from twisted.internet import reactor
        from twisted.internet.defer import Deferred
    except ImportError:
        return
    if not getattr(reactor, "running", False):
        return

    def before_shutdown():
        future = asyncio.ensure_future(orchestrator.shutdown(settings.VALUECELL_SHUTDOWN_GRACE_SECONDS))
        return Deferred.fromFuture(future)

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)  # type: ignore[arg-type]


def start() -> None:
    loop = asyncio.get_running_loop()
    if loop in _started:
        return
    _started.add(loop)
    # Fresh contexts: these outlive the request that happened to start them.
    for duty, name in (
        (_reaper, "run-reaper"),
        (_watch_loop_lag, "loop-lag-watch"),
        (_keep_layer_listening, "layer-listening"),
        (watch_backlog, "backlog-watch"),
        (purge_expired_keys, "idempotency-purge"),
    ):
        task = loop.create_task(duty(), name=name, context=contextvars.Context())
        _duties.add(task)
        task.add_done_callback(_duties.discard)
    _install_shutdown_hook()


def with_maintenance(app):
    async def application(scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            start()
        return await app(scope, receive, send)

    return application
