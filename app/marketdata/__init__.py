"""Market data: Alpaca stream and backfill, the synthetic demo market, CSV bars."""
