"""The tool registry and the market-data tools the `llm` agent offers."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from streaming.agents import market
from streaming.agents.llm.tools import Tool, ToolError, ToolOutput, ToolRegistry, market_tools
from streaming.events import CommonResponseEvent


class Numbers(BaseModel):
    a: int
    b: int


def registry_with_examples() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool("add", "Add two numbers.", Numbers)
    def add(a: int, b: int) -> int:
        return a + b

    @registry.tool("slow_add", "Add two numbers, eventually.", Numbers)
    async def slow_add(a: int, b: int) -> dict:
        await asyncio.sleep(0)
        return {"sum": a + b}

    @registry.tool("picky", "Refuses everything.")
    def picky() -> None:
        raise ToolError("I refuse.")

    @registry.tool("buggy", "Has a bug.")
    def buggy() -> None:
        raise RuntimeError("oops")

    return registry


def test_schemas_are_openai_function_tools():
    [schema] = [s for s in registry_with_examples().schemas() if s["function"]["name"] == "add"]
    assert schema["type"] == "function"
    assert schema["function"]["description"] == "Add two numbers."
    parameters = schema["function"]["parameters"]
    assert parameters["type"] == "object"
    assert set(parameters["properties"]) == {"a", "b"} and parameters["required"] == ["a", "b"]


async def test_sync_and_async_callables_run_on_validated_arguments():
    registry = registry_with_examples()
    assert (await registry.call("add", '{"a": 2, "b": "3"}')) == ToolOutput(5)
    output = await registry.call("slow_add", '{"a": 2, "b": 3}')
    assert output.text == '{"sum": 5}' and not output.is_error


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("nope", "{}", "There is no tool named 'nope'. Available tools: add, slow_add, picky, buggy."),
        ("add", "{a: 1", "The arguments of add are not valid JSON: "),
        ("add", '{"a": 1}', "Invalid arguments for add: b: Field required"),
        ("add", "[1, 2]", "Invalid arguments for add: arguments: Input should be a valid dictionary"),
        ("picky", "", "I refuse."),
        ("buggy", "{}", "buggy failed: RuntimeError: oops"),
    ],
)
async def test_every_failure_is_an_error_result_for_the_model(name, arguments, message):
    output = await registry_with_examples().call(name, arguments)
    assert output.is_error
    assert output.result["error"].startswith(message)
    assert json.loads(output.text) == output.result


def test_a_name_is_registered_once():
    registry = ToolRegistry()
    tool = Tool("x", "X.", Numbers, lambda a, b: a)
    registry.add(tool)
    with pytest.raises(ValueError, match="already registered"):
        registry.add(tool)


def test_market_tools_are_offered_with_their_schemas():
    registry = market_tools()
    assert registry.names() == ["list_tickers", "load_prices", "compute_statistics", "chart_prices"]
    by_name = {s["function"]["name"]: s["function"]["parameters"] for s in registry.schemas()}
    assert by_name["compute_statistics"]["required"] == ["ticker"]
    assert by_name["chart_prices"]["properties"]["tickers"]["maxItems"] == 5
    assert by_name["list_tickers"]["properties"] == {}


async def test_compute_statistics_reports_the_market_module_figures():
    output = await market_tools().call("compute_statistics", '{"ticker": "aapl"}')
    series = market.load_prices("AAPL")
    drawdown, peak, trough = market.max_drawdown(series)
    assert output.result == {
        "ticker": "AAPL",
        "total_return_pct": round(market.total_return(series) * 100, 2),
        "annualized_volatility_pct": round(market.annualized_volatility(series) * 100, 2),
        "max_drawdown_pct": round(drawdown * 100, 2),
        "drawdown_peak_date": peak,
        "drawdown_trough_date": trough,
        "first_close": series.closes[0],
        "last_close": series.closes[-1],
    }


async def test_an_unknown_ticker_is_an_error_naming_the_known_ones():
    output = await market_tools().call("load_prices", '{"ticker": "ZZZZ"}')
    assert output.is_error
    assert output.result["error"] == (
        f"no sample data for ticker 'ZZZZ'; known: {', '.join(market.known_tickers())}"
    )


async def test_chart_prices_emits_a_line_chart_component():
    output = await market_tools().call("chart_prices", '{"tickers": ["nvda", "NVDA", "msft"]}')
    assert output.result == {"charted": ["NVDA", "MSFT"], "days": len(market.load_prices("NVDA").dates)}
    [component] = output.components
    assert component.event == CommonResponseEvent.COMPONENT_GENERATOR
    assert component.payload.component_type == "filtered_line_chart"
    chart = json.loads(component.payload.content)
    assert chart["data"][0] == ["Date", "NVDA", "MSFT"]
    assert chart["data"][1][1] == market.load_prices("NVDA").closes[0]
