def Algorithm(ticker, initial_capital):  # noqa: N802
    return None
