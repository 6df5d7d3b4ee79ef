"""Market-data tools over the shipped SYNTHETIC sample prices.

Plain functions with real arithmetic; the demo agent (and any tool-using agent)
calls them and reports their results.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "sample_prices.csv"


@dataclass(frozen=True)
class PriceSeries:
    ticker: str
    dates: tuple[str, ...]
    closes: tuple[float, ...]


@cache
def _table() -> dict[str, PriceSeries]:
    with DATA_FILE.open() as handle:
        rows = list(csv.reader(line for line in handle if not line.startswith("#")))
    header, body = rows[0], rows[1:]
    dates = tuple(row[0] for row in body)
    return {
        ticker: PriceSeries(ticker, dates, tuple(float(row[col]) for row in body))
        for col, ticker in enumerate(header[1:], start=1)
    }


def known_tickers() -> list[str]:
    return list(_table())


def find_tickers(text: str) -> list[str]:
    """Known tickers named in `text` (case-insensitive, whole words), in order of appearance."""
    found: list[str] = []
    for word in re.findall(r"[A-Za-z]{1,6}", text):
        ticker = word.upper()
        if ticker in _table() and ticker not in found:
            found.append(ticker)
    return found


def load_prices(ticker: str) -> PriceSeries:
    try:
        return _table()[ticker.upper()]
    except KeyError:
        raise ValueError(f"no sample data for ticker {ticker!r}; known: {', '.join(known_tickers())}") from None


def total_return(series: PriceSeries) -> float:
    """Return over the whole series, as a fraction (0.12 == +12%)."""
    return series.closes[-1] / series.closes[0] - 1


def annualized_volatility(series: PriceSeries) -> float:
    """Standard deviation of daily log returns, annualized over 252 trading days."""
    logs = [math.log(b / a) for a, b in zip(series.closes, series.closes[1:])]
    mean = sum(logs) / len(logs)
    variance = sum((r - mean) ** 2 for r in logs) / (len(logs) - 1)
    return math.sqrt(variance) * math.sqrt(252)


def max_drawdown(series: PriceSeries) -> tuple[float, str, str]:
    """Largest peak-to-trough fall as a (negative) fraction, with its peak and trough dates."""
    peak_price, peak_date = series.closes[0], series.dates[0]
    worst, worst_peak, worst_trough = 0.0, series.dates[0], series.dates[0]
    for day, price in zip(series.dates, series.closes):
        if price > peak_price:
            peak_price, peak_date = price, day
        drawdown = price / peak_price - 1
        if drawdown < worst:
            worst, worst_peak, worst_trough = drawdown, peak_date, day
    return worst, worst_peak, worst_trough
