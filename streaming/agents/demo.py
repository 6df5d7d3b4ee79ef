"""The `demo` agent: deterministic, offline market research over SYNTHETIC prices.

A query naming known tickers gets reasoning, real tool calls (load prices,
return, volatility, max drawdown), a line chart, a report and a streamed
summary quoting the computed figures. A query naming none asks which ticker.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from django.conf import settings

from streaming.events import ComponentType
from streaming.responses import AgentResponse, streaming
from streaming.agents import market
from streaming.agents.base import Agent, AgentContext

MAX_QUESTIONS = 3


def _pct(value: float) -> str:
    return f"{value * 100:+.2f}%"


def _words(text: str) -> list[str]:
    """Split text into chunks of a few words, keeping every character."""
    return re.findall(r"\S+\s*|\s+", text)


class DemoAgent(Agent):
    name = "demo"
    description = "Market research on synthetic sample prices (AAPL, MSFT, NVDA, …): returns, volatility, drawdown, chart and report."

    async def _pause(self) -> None:
        delay = settings.VALUECELL_DEMO_CHUNK_DELAY_MS / 1000
        await asyncio.sleep(delay)

    async def stream(self, query: str, ctx: AgentContext) -> AsyncIterator[AgentResponse]:
        tickers = market.find_tickers(query)
        asked = 0
        while not tickers:
            if asked == MAX_QUESTIONS:
                yield streaming.message_chunk(
                    "I still could not find a ticker I know, so I stopped here. "
                    f"Try one of {', '.join(market.known_tickers())}."
                )
                return
            asked += 1
            answer = await ctx.ask(
                f"Which ticker should I analyse? I could not find one in “{query.strip()[:200]}”. "
                f"I have synthetic sample data for {', '.join(market.known_tickers())}."
            )
            query = answer
            tickers = market.find_tickers(answer)
        tickers = tickers[:3]

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

        stats = {}
        for ticker in tickers:
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
            stats[ticker] = (series, ret, vol, mdd, peak, trough)

        first = stats[tickers[0]][0]
        chart = {
            "title": f"Daily close, {first.dates[0]} to {first.dates[-1]} (synthetic)",
            "data": [["Date", *tickers]]
            + [[day, *(stats[t][0].closes[i] for t in tickers)] for i, day in enumerate(first.dates)],
        }
        yield streaming.component_generator(chart, ComponentType.FILTERED_LINE_CHART)

        rows = "\n".join(
            f"| {t} | {s[0].closes[0]:.2f} | {s[0].closes[-1]:.2f} | {_pct(s[1])} | {s[2] * 100:.2f}% | {_pct(s[3])} |"
            for t, s in stats.items()
        )
        report = {
            "title": f"{', '.join(tickers)}: one year in review",
            "data": (
                "| Ticker | First close | Last close | Return | Volatility | Max drawdown |\n"
                "|---|---:|---:|---:|---:|---:|\n"
                f"{rows}\n\n"
                "_Figures computed from synthetic sample data shipped with valuecell-streaming; not investment advice._"
            ),
        }
        yield streaming.component_generator(report, ComponentType.REPORT)

        parts = []
        for ticker, (series, ret, vol, mdd, peak, trough) in stats.items():
            parts.append(
                f"**{ticker}** moved {_pct(ret)} over the year, from {series.closes[0]:.2f} to {series.closes[-1]:.2f}, "
                f"with an annualized volatility of {vol * 100:.2f}% and a maximum drawdown of {_pct(mdd)} "
                f"(from its peak on {peak} to {trough})."
            )
        if len(stats) > 1:
            best = max(stats, key=lambda t: stats[t][1])
            parts.append(f"Of these, **{best}** had the best return.")
        parts.append("These figures come from synthetic sample data, so treat them as a demonstration only.")
        for chunk in _words(" ".join(parts)):
            yield streaming.message_chunk(chunk)
            await self._pause()
