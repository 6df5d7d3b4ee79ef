"""What runs report as they start and end: the runs gauge and counter, and one
log line per finished run (conversation, task, agent, outcome, events, duration).
"""

from __future__ import annotations

import logging
import time
import weakref

from streaming import metrics
from streaming.runtime.run import Ending, Run
from streaming.states import TaskStatus

log = logging.getLogger("streaming.runs")

_started: weakref.WeakKeyDictionary[Run, tuple[float, int]] = weakref.WeakKeyDictionary()


def outcome(ending: Ending | None) -> str:
    """completed, failed or cancelled; a run that stopped without an ending (its
    lease was taken over) failed."""
    if ending is not None and ending.status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED):
        return str(ending.status)
    return str(TaskStatus.FAILED)


def run_started(run: Run) -> None:
    _started[run] = (time.monotonic(), run.log.seq)
    metrics.run_started()


def run_finished(run: Run) -> None:
    started = _started.pop(run, None)
    began, first_seq = started if started is not None else (time.monotonic(), run.log.seq)
    ended = outcome(run.ending)
    metrics.run_ended(run.agent_name, ended, was_active=started is not None)
    events = run.log.seq - first_seq
    duration_ms = round((time.monotonic() - began) * 1000)
    log.info(
        "run finished: %s %s, %d events in %d ms",
        run.agent_name,
        ended,
        events,
        duration_ms,
        extra={
            "conversation_id": run.conversation_id,
            "task_id": run.task_id,
            "agent": run.agent_name,
            "outcome": ended,
            "events": events,
            "duration_ms": duration_ms,
        },
    )


def run_reaped(conversation_id: str, task_id: str, agent: str, events: int, duration_ms: int | None) -> None:
    """A run whose worker died, ended by another worker's reaper (failed)."""
    failed = str(TaskStatus.FAILED)
    metrics.run_ended(agent, failed, was_active=False)
    log.warning(
        "run finished by the reaper: %s %s, its worker stopped",
        agent,
        failed,
        extra={
            "conversation_id": conversation_id,
            "task_id": task_id,
            "agent": agent,
            "outcome": failed,
            "events": events,
            "duration_ms": duration_ms,
        },
    )
