"""The `demo` agent: deterministic, offline market research over SYNTHETIC prices.

A query naming known tickers gets reasoning, real tool calls (load prices,
return, volatility, max drawdown), a line chart, a report and a streamed
summary quoting the computed figures. A query naming none asks which ticker.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from streaming.agents import market
from streaming.agents.base import Agent, AgentContext
from streaming.events import ComponentType
from streaming.responses import AgentResponse, streaming

MAX_QUESTIONS = 3


def _pct(value: float) -> str:
    return f"{value * 100:+.2f}%"


def _words(text: str) -> list[str]:
    """Split text into chunks of a few words, keeping every character."""
    return re.findall(r"\S+\s*|\s+", text)


@dataclass(frozen=True)
class Figures:
    """What the tools computed for one ticker."""

    series: market.PriceSeries
    ret: float
    vol: float
    mdd: float
    peak: str
    trough: str


class DemoAgent(Agent):
    """An agent is an async generator of responses: reasoning, tool calls,
    components and message chunks, built with `streaming.*`. Each step below
    is one such generator; `ctx.ask()` waits for the user's answer."""

    name = "demo"
    description = "Market research on synthetic sample prices (AAPL, MSFT, NVDA, …): returns, volatility, drawdown, chart and report."

    async def _pause(self) -> None:
        delay = settings.VALUECELL_DEMO_CHUNK_DELAY_MS / 1000
        await asyncio.sleep(delay)

    async def stream(self, query: str, ctx: AgentContext) -> AsyncIterator[AgentResponse]:
        tickers = await self._tickers(query, ctx)
        if not tickers:
            yield streaming.message_chunk(
                "I still could not find a ticker I know, so I stopped here. "
                f"Try one of {', '.join(market.known_tickers())}."
            )
            return
        async for response in self._reason(tickers):
            yield response
        figures: dict[str, Figures] = {}
        for ticker in tickers:
            async for response in self._analyse(ticker, ctx, figures):
                yield response
        yield streaming.component_generator(_chart(figures), ComponentType.FILTERED_LINE_CHART)
        yield streaming.component_generator(_report(figures), ComponentType.REPORT)
        for chunk in _words(_summary(figures)):
            yield streaming.message_chunk(chunk)
            await self._pause()

    async def _tickers(self, query: str, ctx: AgentContext) -> list[str]:
        """The tickers the query names (three at most), asking the user while it names none."""
        tickers = market.find_tickers(query)
        asked = 0
        while not tickers and asked < MAX_QUESTIONS:
            asked += 1
            query = await ctx.ask(
                f"Which ticker should I analyse? I could not find one in “{query.strip()[:200]}”. "
                f"I have synthetic sample data for {', '.join(market.known_tickers())}."
            )
            tickers = market.find_tickers(query)
        return tickers[:3]

    async def _reason(self, tickers: list[str]) -> AsyncIterator[AgentResponse]:
        yield streaming.reasoning_started()
        plan = (
            f"The user asks about {', '.join(tickers)}. I will load a year of daily closes, "
            "compute the total return, the annualized volatility of daily log returns and the maximum drawdown, "
            "then chart the series and write a short report."
        )
        for chunk in _words(plan):
            yield streaming.reasoning(chunk)
            await self._pause()
        yield streaming.reasoning_completed()

    async def _analyse(
        self, ticker: str, ctx: AgentContext, figures: dict[str, Figures]
    ) -> AsyncIterator[AgentResponse]:
        """Four tool calls, each started then completed with its result."""
        call = f"{ctx.task_id}-{ticker.lower()}"
        yield streaming.tool_call_started(f"{call}-load", "load_prices")
        series = market.load_prices(ticker)
        await self._pause()
        yield streaming.tool_call_completed(
            f"Loaded {len(series.closes)} daily closes for {ticker} from {series.dates[0]} to {series.dates[-1]} "
            "(synthetic sample data).",
            f"{call}-load",
            "load_prices",
        )
        yield streaming.tool_call_started(f"{call}-return", "compute_return")
        ret = market.total_return(series)
        yield streaming.tool_call_completed(
            f"{ticker} total return: {_pct(ret)} ({series.closes[0]:.2f} → {series.closes[-1]:.2f})",
            f"{call}-return",
            "compute_return",
        )
        yield streaming.tool_call_started(f"{call}-vol", "compute_volatility")
        vol = market.annualized_volatility(series)
        yield streaming.tool_call_completed(
            f"{ticker} annualized volatility: {vol * 100:.2f}%", f"{call}-vol", "compute_volatility"
        )
        yield streaming.tool_call_started(f"{call}-mdd", "compute_max_drawdown")
        mdd, peak, trough = market.max_drawdown(series)
        yield streaming.tool_call_completed(
            f"{ticker} max drawdown: {_pct(mdd)} (peak {peak}, trough {trough})",
            f"{call}-mdd",
            "compute_max_drawdown",
        )
        figures[ticker] = Figures(series, ret, vol, mdd, peak, trough)


def _chart(figures: dict[str, Figures]) -> dict[str, Any]:
    tickers = list(figures)
    first = figures[tickers[0]].series
    return {
        "title": f"Daily close, {first.dates[0]} to {first.dates[-1]} (synthetic)",
        "data": [["Date", *tickers]]
        + [[day, *(figures[t].series.closes[i] for t in tickers)] for i, day in enumerate(first.dates)],
    }


def _report(figures: dict[str, Figures]) -> dict[str, Any]:
    rows = "\n".join(
        f"| {t} | {f.series.closes[0]:.2f} | {f.series.closes[-1]:.2f} | {_pct(f.ret)} | {f.vol * 100:.2f}% "
        f"| {_pct(f.mdd)} |"
        for t, f in figures.items()
    )
    return {
        "title": f"{', '.join(figures)}: one year in review",
        "data": (
            "| Ticker | First close | Last close | Return | Volatility | Max drawdown |\n"
            "|---|---:|---:|---:|---:|---:|\n"
            f"{rows}\n\n"
            "_Figures computed from synthetic sample data shipped with valuecell-streaming; not investment advice._"
        ),
    }


def _summary(figures: dict[str, Figures]) -> str:
    parts = [
        f"**{ticker}** moved {_pct(f.ret)} over the year, from {f.series.closes[0]:.2f} to {f.series.closes[-1]:.2f}, "
        f"with an annualized volatility of {f.vol * 100:.2f}% and a maximum drawdown of {_pct(f.mdd)} "
        f"(from its peak on {f.peak} to {f.trough})."
        for ticker, f in figures.items()
    ]
    if len(figures) > 1:
        best = max(figures, key=lambda t: figures[t].ret)
        parts.append(f"Of these, **{best}** had the best return.")
    parts.append("These figures come from synthetic sample data, so treat them as a demonstration only.")
    return " ".join(parts)
