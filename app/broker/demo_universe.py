"""The demo's market: the well-known US stocks and ETFs it lists, with their names and price
levels.

One table read by the simulated broker (which symbols exist, and their names: "AMZN ·
Amazon.com") and by the synthetic feed (the level its random walk starts from). As with a real
broker, a symbol outside the table is unknown to the demo. Two kinds of symbol are known
beside it (``known_symbols``): those of algorithms already in a demo's database (created on a
made-up ticker before the demo had a fixed market, they keep running after an upgrade) and
those the configuration names (``[demo] tickers`` and ``splits``). ``run --replay DATE``
lists the replayed market DB's tickers instead of this table.

The price levels are round figures of late 2024; the first ten are the demo's original ones
(a demo already running keeps its price levels).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from db.system import SystemStore


class Listing(NamedTuple):
    symbol: str
    name: str
    price: float  # the synthetic market's level (its random walk drifts a few % around it)


UNIVERSE: tuple[Listing, ...] = (
    # The demo's original ten (their levels unchanged).
    Listing("AAPL", "Apple", 190.0),
    Listing("MSFT", "Microsoft", 420.0),
    Listing("NVDA", "NVIDIA", 130.0),
    Listing("AMZN", "Amazon.com", 185.0),
    Listing("GOOGL", "Alphabet (Class A)", 170.0),
    Listing("META", "Meta Platforms", 560.0),
    Listing("TSLA", "Tesla", 250.0),
    Listing("SPY", "SPDR S&P 500 ETF Trust", 580.0),
    Listing("QQQ", "Invesco QQQ Trust", 500.0),
    Listing("AMD", "Advanced Micro Devices", 150.0),
    # Technology and communication.
    Listing("GOOG", "Alphabet (Class C)", 172.0),
    Listing("NFLX", "Netflix", 700.0),
    Listing("AVGO", "Broadcom", 170.0),
    Listing("ORCL", "Oracle", 175.0),
    Listing("CRM", "Salesforce", 290.0),
    Listing("ADBE", "Adobe", 500.0),
    Listing("INTC", "Intel", 23.0),
    Listing("CSCO", "Cisco Systems", 57.0),
    Listing("IBM", "IBM", 220.0),
    Listing("QCOM", "Qualcomm", 160.0),
    Listing("TXN", "Texas Instruments", 200.0),
    Listing("UBER", "Uber Technologies", 75.0),
    Listing("PYPL", "PayPal", 80.0),
    Listing("DIS", "Walt Disney", 95.0),
    Listing("T", "AT&T", 22.0),
    Listing("VZ", "Verizon", 42.0),
    # Financials.
    Listing("JPM", "JPMorgan Chase", 225.0),
    Listing("BAC", "Bank of America", 42.0),
    Listing("WFC", "Wells Fargo", 65.0),
    Listing("GS", "Goldman Sachs", 540.0),
    Listing("MS", "Morgan Stanley", 125.0),
    Listing("V", "Visa", 300.0),
    Listing("MA", "Mastercard", 520.0),
    Listing("BRK.B", "Berkshire Hathaway (Class B)", 460.0),
    # Health care.
    Listing("JNJ", "Johnson & Johnson", 155.0),
    Listing("PFE", "Pfizer", 28.0),
    Listing("UNH", "UnitedHealth Group", 580.0),
    Listing("LLY", "Eli Lilly", 800.0),
    Listing("MRK", "Merck", 100.0),
    Listing("ABBV", "AbbVie", 185.0),
    # Consumer.
    Listing("KO", "Coca-Cola", 65.0),
    Listing("PEP", "PepsiCo", 160.0),
    Listing("WMT", "Walmart", 85.0),
    Listing("COST", "Costco Wholesale", 900.0),
    Listing("HD", "Home Depot", 400.0),
    Listing("MCD", "McDonald's", 290.0),
    Listing("NKE", "Nike", 78.0),
    Listing("SBUX", "Starbucks", 98.0),
    Listing("F", "Ford Motor", 11.0),
    # Energy and industrials.
    Listing("XOM", "Exxon Mobil", 118.0),
    Listing("CVX", "Chevron", 155.0),
    Listing("BA", "Boeing", 155.0),
    Listing("CAT", "Caterpillar", 380.0),
    Listing("GE", "GE Aerospace", 180.0),
    # ETFs.
    Listing("IWM", "iShares Russell 2000 ETF", 225.0),
    Listing("DIA", "SPDR Dow Jones Industrial Average ETF", 430.0),
    Listing("VOO", "Vanguard S&P 500 ETF", 530.0),
    Listing("VTI", "Vanguard Total Stock Market ETF", 290.0),
    Listing("GLD", "SPDR Gold Shares", 245.0),
    Listing("TLT", "iShares 20+ Year Treasury Bond ETF", 92.0),
    Listing("XLF", "Financial Select Sector SPDR Fund", 48.0),
    Listing("XLE", "Energy Select Sector SPDR Fund", 90.0),
)

BY_SYMBOL: dict[str, Listing] = {x.symbol: x for x in UNIVERSE}
PRICES: dict[str, float] = {x.symbol: x.price for x in UNIVERSE}


def name_of(symbol: str) -> str | None:
    """The company or fund's name, or None for a symbol outside the table."""
    x = BY_SYMBOL.get(symbol)
    return x.name if x else None


def known_symbols(system: SystemStore, also: Iterable[str] = (),
                  listed: Iterable[str] | None = None) -> dict[str, str]:
    """The symbols a demo's broker knows, each with its name ('' when the table has none):
    ``listed`` (default: the table; a replay passes its market DB's tickers), plus the
    tickers of the algorithms already in ``system`` (a demo created before the fixed market
    keeps its algorithms), plus ``also`` (the configured demo tickers and splits)."""
    out = {x.symbol: x.name for x in UNIVERSE} if listed is None else {
        s: name_of(s) or "" for s in listed}
    for row in system.list_algorithms():
        out.setdefault(str(row["ticker"]), name_of(str(row["ticker"])) or "")
    for s in also:
        out.setdefault(s, name_of(s) or "")
    return out
