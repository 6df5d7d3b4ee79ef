"""What this process's runs are told (cancel, an answer has come) and their leases,
for all of them at once: not a listening task, a channel and a lease timer per run.

A message for a run of this process is handed to it directly. When the
channel layer crosses processes, one channel of the process's own joins the
control group of each of its runs, so another worker's cancel or answer
reaches it; one task receives for all of them. One task also renews the
leases of all the runs here, in one statement, and tells a run whose lease
another worker took over.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from conversations import services
from streaming.eventlog.groups import control_group
from streaming.eventlog.layer_outage import layer_outage
from streaming.eventlog.layer_receive import messages
from streaming.eventlog.subscription import crosses_processes

log = logging.getLogger(__name__)


class Controlled(Protocol):
    conversation_id: str
    holder: str

    def on_control(self, message: dict[str, Any]) -> None: ...

    def is_recorded(self) -> bool: ...

    def lease_lost(self) -> None: ...


class RunControl:
    def __init__(self) -> None:
        self._runs: dict[str, Controlled] = {}
        self._channel = ""
        self._receiving: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None

    # --- runs come and go ----------------------------------------------------------
    async def attach(self, run: Controlled) -> None:
        self._runs[run.conversation_id] = run  # before any await: reachable at once
        if self._renewing is None or self._renewing.done():
            self._renewing = self._start(self._renew(), "run-leases")
        layer = get_channel_layer()
        if crosses_processes(layer):
            # A failing layer (Redis down) must not stop the run: it is told in
            # process meanwhile, and looks for its answers in the database.
            try:
                await self._listen_on(layer)
                await layer.group_add(control_group(run.conversation_id), self._channel)
            except Exception as exc:
                layer_outage.failed(f"joining the control group of {run.conversation_id}", exc)

    async def detach(self, run: Controlled) -> None:
        if self._runs.get(run.conversation_id) is run:
            del self._runs[run.conversation_id]
        layer = get_channel_layer()
        if self._channel and crosses_processes(layer):
            try:
                await layer.group_discard(control_group(run.conversation_id), self._channel)
            except Exception as exc:
                layer_outage.failed(f"leaving the control group of {run.conversation_id}", exc)

    # --- messages ------------------------------------------------------------------
    async def send(self, conversation_id: str, message: dict[str, Any]) -> None:
        """Tell the conversation's run, wherever it runs (a no-op if it runs nowhere)."""
        if self.deliver(conversation_id, message):
            return
        layer = get_channel_layer()
        if crosses_processes(layer):
            await layer.group_send(control_group(conversation_id), {**message, "conversation_id": conversation_id})

    def deliver(self, conversation_id: str, message: dict[str, Any]) -> bool:
        run = self._runs.get(conversation_id)
        if run is None:
            return False
        run.on_control(message)
        return True

    async def _listen_on(self, layer: Any) -> None:
        if not self._channel:
            self._channel = await layer.new_channel("control.")
        if self._receiving is None or self._receiving.done():
            self._receiving = self._start(self._receive(layer), "run-control")

    async def _receive(self, layer: Any) -> None:
        async for message in messages(layer, self._channel, "run control", rejoin=self._rejoin_all):
            conversation_id = message.get("conversation_id")
            if isinstance(conversation_id, str):
                self.deliver(conversation_id, message)

    async def _rejoin_all(self) -> None:
        """Memberships vanish when Redis restarts: join every run's group again."""
        layer = get_channel_layer()
        if not crosses_processes(layer):
            return
        if not self._channel or self._receiving is None or self._receiving.done():
            try:
                await self._listen_on(layer)
            except Exception as exc:
                layer_outage.failed("listening for the runs' control messages", exc)
                return
        for conversation_id in list(self._runs):
            try:
                await layer.group_add(control_group(conversation_id), self._channel)
            except Exception as exc:
                layer_outage.failed(f"rejoining the control group of {conversation_id}", exc)
                return

    # --- leases --------------------------------------------------------------------
    async def _renew(self) -> None:
        """Renew the leases of every run here whose conversation is stored, every
        third of a lease; a run whose lease was taken over is told."""
        while self._runs:
            await asyncio.sleep(settings.VALUECELL_RUN_LEASE_SECONDS / 3)
            runs = {run.holder: run for run in self._runs.values() if run.is_recorded()}
            if runs:
                try:
                    held = await services.renew_leases(list(runs))
                except Exception:
                    log.exception("renewing the run leases failed; trying again later")
                    continue
                for holder, run in runs.items():
                    if holder not in held and self._runs.get(run.conversation_id) is run:
                        run.lease_lost()
            await self._rejoin_all()

    @staticmethod
    def _start(coroutine: Any, name: str) -> asyncio.Task[None]:
        # A fresh context: these outlive the run (and request) that started them.
        return asyncio.get_running_loop().create_task(coroutine, name=name, context=contextvars.Context())


_controls: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RunControl] = weakref.WeakKeyDictionary()


def run_control() -> RunControl:
    """This event loop's control (one per loop, like the event writer)."""
    loop = asyncio.get_running_loop()
    control = _controls.get(loop)
    if control is None:
        control = _controls[loop] = RunControl()
    return control
