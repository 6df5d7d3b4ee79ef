"""The `bench` agent: `k=N delay_ms=D` emits N message chunks, D ms apart.

Each chunk carries its emit time (epoch seconds) in `metadata.ts` so a client
can measure emit -> receive latency. Used by `make bench` and load tests.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

from streaming.agents.base import Agent, AgentContext, AgentError
from streaming.responses import AgentResponse, streaming

QUERY = re.compile(r"^\s*k=(\d+)(?:\s+delay_ms=(\d+(?:\.\d+)?))?\s*$")
MAX_CHUNKS = 1_000_000


class BenchAgent(Agent):
    name = "bench"
    description = "Load generator: 'k=N delay_ms=D' streams N message chunks D ms apart."

    async def stream(self, query: str, ctx: AgentContext) -> AsyncIterator[AgentResponse]:
        match = QUERY.match(query)
        if not match:
            raise AgentError("bench expects a query of the form 'k=N delay_ms=D', for example 'k=100 delay_ms=5'")
        count = int(match.group(1))
        delay = float(match.group(2) or 0) / 1000
        if count > MAX_CHUNKS:
            raise AgentError(f"bench emits at most {MAX_CHUNKS} chunks")
        for index in range(count):
            if delay:
                await asyncio.sleep(delay)
            yield streaming.message_chunk(f"chunk {index} ", metadata={"ts": time.time(), "i": index})
