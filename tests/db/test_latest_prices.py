"""The tick's prices (MarketStore.latest_prices): every ticker's last close before the
minute, in one query."""

from __future__ import annotations

from datetime import UTC, datetime


def test_latest_prices_as_one_query_each(market_store, monkeypatch) -> None:
    start = int(datetime(2024, 6, 3, 13, 30, tzinfo=UTC).timestamp())
    market_store.insert_rows([(t, start + 60 * i, 1.0, 1.0, 1.0, k * 100.0 + i, 10)
                              for k, t in enumerate(("AAA", "BBB", "CCC")) for i in range(30)])
    tickers = {"AAA", "BBB", "CCC", "NONE"}
    befores = (start, start + 1, start + 60 * 10 + 30, start + 60 * 29, 2**40)
    wants = [{t: market_store.latest_price(t, before_ts=b) for t in tickers} for b in befores]

    def one_by_one(*args, **kwargs):
        raise AssertionError("asked ticker by ticker")

    monkeypatch.setattr(market_store, "latest_price", one_by_one)
    for before, want in zip(befores, wants, strict=True):
        assert market_store.latest_prices(tickers, before) == want
    monkeypatch.undo()
    assert market_store.latest_prices(tickers, start + 600)["BBB"] == 109.0
    assert market_store.latest_prices(tickers, start)["AAA"] is None
    assert market_store.latest_prices(set(), start) == {}
    assert market_store.latest_prices({"CCC"}, 2**40) == {"CCC": 229.0}
