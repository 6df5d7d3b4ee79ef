"""A small registry of Python tools a model may call, and the market-data tools.

A tool has a name, a description, a pydantic model for its arguments (whose JSON
schema the model sees) and a sync or async callable that may also emit components.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streaming.agents import market
from streaming.events import ComponentType
from streaming.responses import AgentResponse, streaming

log = logging.getLogger(__name__)


class ToolError(Exception):
    """A tool refused its input; the message goes back to the model."""


@dataclass(frozen=True)
class ToolOutput:
    """A tool's result (what the model reads) and any components it emits for the user."""

    result: Any
    components: tuple[AgentResponse, ...] = ()
    is_error: bool = False

    @property
    def text(self) -> str:
        if isinstance(self.result, str):
            return self.result
        return json.dumps(self.result, ensure_ascii=False, default=str)


def _error(message: str) -> ToolOutput:
    return ToolOutput({"error": message}, is_error=True)


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    arguments: type[BaseModel]
    func: Callable[..., Any]

    def schema(self) -> dict[str, Any]:
        """The tool as an OpenAI `tools` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.arguments.model_json_schema(),
            },
        }


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def add(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def tool(self, name: str, description: str, arguments: type[BaseModel] = NoArguments) -> Callable:
        """Decorator: register a function whose keyword arguments are the model's fields."""

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            self.add(Tool(name, description, arguments, func))
            return func

        return register

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self._tools.values()]

    async def call(self, name: str, arguments: str) -> ToolOutput:
        """Run a tool on the model's JSON arguments; every failure is an error result for the model."""
        tool = self._tools.get(name)
        if tool is None:
            return _error(f"There is no tool named {name!r}. Available tools: {', '.join(self._tools)}.")
        try:
            raw = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            return _error(f"The arguments of {name} are not valid JSON: {exc}")
        try:
            parsed = tool.arguments.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            return _error(f"Invalid arguments for {name}: {problems}")
        kwargs = {key: getattr(parsed, key) for key in type(parsed).model_fields}
        try:
            if inspect.iscoroutinefunction(tool.func):
                result = await tool.func(**kwargs)
            else:
                result = await asyncio.to_thread(tool.func, **kwargs)
        except (ToolError, ValueError) as exc:
            return _error(str(exc))
        except Exception as exc:
            log.exception("tool %s failed", name)
            return _error(f"{name} failed: {type(exc).__name__}: {exc}")
        return result if isinstance(result, ToolOutput) else ToolOutput(result)


# --- the market-data tools ------------------------------------------------------------


class TickerArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ticker: str = Field(description="A ticker symbol, for example NVDA.", min_length=1, max_length=10)


class TickersArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tickers: list[str] = Field(description="One to five ticker symbols.", min_length=1, max_length=5)


def _pct(value: float) -> float:
    return round(value * 100, 2)


def list_tickers() -> dict[str, Any]:
    return {"tickers": market.known_tickers(), "note": "synthetic sample data, one year of daily closes"}


def load_prices(ticker: str) -> dict[str, Any]:
    series = market.load_prices(ticker)
    return {
        "ticker": series.ticker,
        "days": len(series.closes),
        "first_date": series.dates[0],
        "last_date": series.dates[-1],
        "first_close": series.closes[0],
        "last_close": series.closes[-1],
        "min_close": min(series.closes),
        "max_close": max(series.closes),
        "note": "synthetic sample data",
    }


def compute_statistics(ticker: str) -> dict[str, Any]:
    series = market.load_prices(ticker)
    drawdown, peak, trough = market.max_drawdown(series)
    return {
        "ticker": series.ticker,
        "total_return_pct": _pct(market.total_return(series)),
        "annualized_volatility_pct": _pct(market.annualized_volatility(series)),
        "max_drawdown_pct": _pct(drawdown),
        "drawdown_peak_date": peak,
        "drawdown_trough_date": trough,
        "first_close": series.closes[0],
        "last_close": series.closes[-1],
    }


def chart_prices(tickers: list[str]) -> ToolOutput:
    series = [market.load_prices(ticker) for ticker in dict.fromkeys(t.upper() for t in tickers)]
    names = [s.ticker for s in series]
    first = series[0]
    chart = {
        "title": f"Daily close, {first.dates[0]} to {first.dates[-1]} (synthetic)",
        "data": [["Date", *names]] + [[day, *(s.closes[i] for s in series)] for i, day in enumerate(first.dates)],
    }
    return ToolOutput(
        {"charted": names, "days": len(first.dates)},
        components=(streaming.component_generator(chart, ComponentType.FILTERED_LINE_CHART),),
    )


def market_tools() -> ToolRegistry:
    """The registry the `llm` agent offers: the demo agent's market-data tools."""
    registry = ToolRegistry()
    registry.add(Tool("list_tickers", "List the tickers that have sample price data.", NoArguments, list_tickers))
    registry.add(
        Tool(
            "load_prices",
            "Load one year of daily closes for a ticker; returns its date range and first, last, lowest and highest close.",
            TickerArguments,
            load_prices,
        )
    )
    registry.add(
        Tool(
            "compute_statistics",
            "Compute a ticker's total return, annualized volatility and maximum drawdown (percent) over the year.",
            TickerArguments,
            compute_statistics,
        )
    )
    registry.add(
        Tool(
            "chart_prices",
            "Show the user a line chart of the daily closes of up to five tickers.",
            TickersArguments,
            chart_prices,
        )
    )
    return registry
